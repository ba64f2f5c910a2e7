/*
 * The `pipeline` target's mutator (mutator.h): it parses the snapshot into
 * a model (snapmodel.h), mutates inside it and writes a valid file back, so
 * the fuzzer spends its time on memory contents rather than on the
 * container, which the `snapshot` target covers.
 *
 * One to four of: aligned words of region payloads replaced by pointers
 * into other (or the same) regions at small offsets, preferring words that
 * hold pointers already; by 0, -1, huge and boundary values or small
 * changes of the old value; 1-, 2- and 4-byte fields; bytes mutated by
 * libFuzzer's own LLVMFuzzerMutate (dictionary and comparison operands
 * included); words copied; regions shifted, dropped, duplicated elsewhere
 * (with a pointer retargeted to the copy), split, merged, truncated,
 * extended; META py_version_hex set to supported versions and neighbours,
 * runtime_addr, the _AsyncioDebug and agent addresses to other regions,
 * the option bits of time_ns (sampler_check.c) changed; FAILED records
 * added (usually for a read the sampler really makes: it is run on the
 * input, recording its reads) or removed; threads added or removed.
 * Unparseable inputs get LLVMFuzzerMutate.  The cross-over merges the
 * regions of two snapshots and sometimes swaps META.
 */
#include <stdlib.h>
#include <string.h>

#include "au_bytes.h"
#include "fuzz/mutator.h"
#include "fuzz/sampler_check.h"
#include "fuzz/snapmodel.h"

enum {
    M_WORD_PTR, M_WORD_VAL, M_NARROW, M_BYTES, M_COPY_WORD, M_SHIFT, M_DROP, M_DUP, M_SPLIT,
    M_MERGE, M_TRUNC, M_EXTEND, M_VERSION, M_RUNTIME, M_ASYNC_ADDR, M_TIME, M_FAIL_ADD,
    M_FAIL_DEL, M_THREAD, M_COUNT
};

static const uint8_t WEIGHTS[M_COUNT] = {
    [M_WORD_PTR] = 20, [M_WORD_VAL] = 14, [M_NARROW] = 8,  [M_BYTES] = 10,  [M_COPY_WORD] = 5,
    [M_SHIFT] = 3,     [M_DROP] = 3,      [M_DUP] = 4,     [M_SPLIT] = 2,   [M_MERGE] = 2,
    [M_TRUNC] = 3,     [M_EXTEND] = 3,    [M_VERSION] = 4, [M_RUNTIME] = 3, [M_ASYNC_ADDR] = 2,
    [M_TIME] = 6,      [M_FAIL_ADD] = 5,  [M_FAIL_DEL] = 2, [M_THREAD] = 1,
};

static const uint32_t VERSIONS[] = {
    0x030900f0, 0x030912f0, 0x030a00f0, 0x030a0df0, 0x030b00f0, 0x030b07f0, 0x030b02f0,
    0x030c00f0, 0x030c01f0, 0x030d00f0, 0x030d00a1, 0x030e00f0, 0x030e0af0, 0x030e0af1,
    0x030f00a1, 0x030f02f0, 0x030800f0, 0x031000f0, 0x0309ffff, 0x03090000, 0, 0xffffffff,
    0x02070000, 0x04000000,
};
#define NVERSIONS (sizeof VERSIONS / sizeof *VERSIONS)

/* A read the sampler makes on this input (recorded by running it). */
static int recorded_read(const uint8_t *data, size_t size, rng *r, uint64_t *addr,
                         uint32_t *len) {
    sc_recording rec;
    int found = 0;
    if (sc_record(data, size, 0, 8192, &rec) && rec.nreads) {
        /* Prefer reads that succeeded: failing those changes things. */
        uint32_t k = below(r, rec.nreads);
        for (uint32_t t = 0; t < 8 && rec.reads[k].status != 0; t++) k = below(r, rec.nreads);
        *addr = rec.reads[k].addr;
        *len = rec.reads[k].len;
        found = 1;
    }
    sc_recording_free(&rec);
    return found;
}

/* One mutation of m; returns 0 when it did not apply. */
static int mutate_once(model *m, rng *r, const uint8_t *orig, size_t orig_size) {
    uint32_t total = 0;
    for (int k = 0; k < M_COUNT; k++) total += WEIGHTS[k];
    uint32_t x = below(r, total);
    int op = 0;
    while (x >= WEIGHTS[op]) x -= WEIGHTS[op++];
    if (m->nregions == 0 && op < M_VERSION && op != M_DUP) op = M_VERSION + (int)below(r, 4);
    switch (op) {
    case M_WORD_PTR:
    case M_WORD_VAL: {
        mregion *g = NULL;
        uint32_t off = UINT32_MAX;
        if (op == M_WORD_PTR && below(r, 3)) {
            /* Prefer a word that already points into the snapshot. */
            for (int t = 0; t < 16 && off == UINT32_MAX; t++) {
                g = &m->regions[pick_region(m, r)];
                uint32_t o = pick_word(g, r);
                if (o != UINT32_MAX && model_find(m, au_rd64(g->data + o)) != UINT32_MAX) off = o;
            }
        }
        for (int t = 0; t < 8 && off == UINT32_MAX; t++) {
            g = &m->regions[pick_region(m, r)];
            off = pick_word(g, r);
        }
        if (off == UINT32_MAX) return 0;
        uint64_t old = au_rd64(g->data + off);
        au_wr64(g->data + off, op == M_WORD_PTR ? some_pointer(m, r) : interesting_value(old, r));
        return 1;
    }
    case M_NARROW: {
        mregion *g = &m->regions[pick_region(m, r)];
        uint32_t w = 1u << below(r, 3);
        if (g->len < w) w = 1;
        uint32_t off = below(r, g->len - w + 1);
        if (below(r, 2)) off &= ~(w - 1);
        uint64_t old = 0;
        for (uint32_t i = 0; i < w; i++) old |= (uint64_t)g->data[off + i] << (8 * i);
        uint64_t v = below(r, 3) ? interesting_value(old, r) : rnd(r);
        for (uint32_t i = 0; i < w; i++) g->data[off + i] = (uint8_t)(v >> (8 * i));
        return 1;
    }
    case M_BYTES: {
        uint32_t i = pick_region(m, r);
        mregion *g = &m->regions[i];
        uint64_t room = model_gap_after(m, i);
        uint32_t maxlen = g->len + (room < 64 ? (uint32_t)room : 64);
        if (g->cap < maxlen) {
            g->data = xrealloc(g->data, maxlen);
            g->cap = maxlen;
        }
        size_t n;
        if (LLVMFuzzerMutate) {
            n = LLVMFuzzerMutate(g->data, g->len, maxlen);
        } else {
            g->data[below(r, g->len)] ^= (uint8_t)(1u << below(r, 8));
            n = g->len;
        }
        g->len = n ? (uint32_t)n : 1;
        return 1;
    }
    case M_COPY_WORD: {
        mregion *a = &m->regions[pick_region(m, r)], *b = &m->regions[pick_region(m, r)];
        uint32_t oa = pick_word(a, r), ob = pick_word(b, r);
        if (oa == UINT32_MAX || ob == UINT32_MAX) return 0;
        memmove(b->data + ob, a->data + oa, 8);
        return 1;
    }
    case M_SHIFT: {
        uint32_t i = pick_region(m, r);
        mregion *g = &m->regions[i];
        uint64_t d;
        switch (below(r, 4)) {
        case 0: d = 1 + below(r, 7); break;
        case 1: d = 4096; break;
        default: d = 8 * (1 + (uint64_t)below(r, 16));
        }
        if (below(r, 2)) {
            if (model_gap_after(m, i) < d) return 0;
            g->addr += d;
        } else {
            if (model_gap_before(m, i) < d) return 0;
            g->addr -= d;
        }
        return 1;
    }
    case M_DROP:
        model_drop_region(m, pick_region(m, r));
        return 1;
    case M_DUP: {
        if (m->nregions == 0) return 0;
        uint32_t i = pick_region(m, r);
        uint32_t len = m->regions[i].len;
        uint64_t src = m->regions[i].addr;
        /* Where: after the last region, in a gap, or anywhere. */
        uint64_t at;
        const mregion *last = &m->regions[m->nregions - 1];
        switch (below(r, 3)) {
        case 0: at = (last->addr + last->len + 7 + 8 * below(r, 64)) & ~7ull; break;
        case 1: {
            uint32_t j = below(r, m->nregions);
            at = (m->regions[j].addr + m->regions[j].len + 7) & ~7ull;
            break;
        }
        default: at = rnd(r) & 0x00007ffffffffff8ull; break;
        }
        if (at == 0 || at > UINT64_MAX - len) return 0;
        uint8_t *copy = xmalloc(len);
        memcpy(copy, m->regions[i].data, len);
        model_add_region(m, at, copy, len);
        free(copy);
        model_normalize(m); /* drops the copy if it overlaps */
        /* Point some word that pointed at the original to the copy. */
        if (below(r, 2) && m->nregions) {
            for (int t = 0; t < 32; t++) {
                mregion *g = &m->regions[pick_region(m, r)];
                uint32_t o = pick_word(g, r);
                if (o == UINT32_MAX) continue;
                uint64_t v = au_rd64(g->data + o);
                if (v >= src && v - src < len) {
                    au_wr64(g->data + o, at + (v - src));
                    break;
                }
            }
        }
        return 1;
    }
    case M_SPLIT: {
        uint32_t i = pick_region(m, r);
        mregion g = m->regions[i];
        if (g.len < 2) return 0;
        uint32_t k = 1 + below(r, g.len - 1);
        if (below(r, 2) && g.len > 16) k = (k + 7) & ~7u;
        if (k >= g.len) return 0;
        model_add_region(m, g.addr + k, g.data + k, g.len - k);
        m->regions[i].len = k;
        model_normalize(m);
        return 1;
    }
    case M_MERGE: {
        if (m->nregions < 2) return 0;
        uint32_t i = below(r, m->nregions - 1);
        mregion *a = &m->regions[i], *b = &m->regions[i + 1];
        uint64_t gap = b->addr - (a->addr + a->len);
        if (gap > 64 || (uint64_t)a->len + gap + b->len > AU_SNAP_MAX_REGION) return 0;
        uint32_t n = a->len + (uint32_t)gap + b->len;
        uint8_t *d = xmalloc(n + 64);
        memcpy(d, a->data, a->len);
        memset(d + a->len, 0, (size_t)gap);
        memcpy(d + a->len + gap, b->data, b->len);
        free(a->data);
        a->data = d;
        a->len = n;
        a->cap = n + 64;
        model_drop_region(m, i + 1);
        return 1;
    }
    case M_TRUNC: {
        mregion *g = &m->regions[pick_region(m, r)];
        if (g->len < 2) return 0;
        uint32_t k = 1 + below(r, below(r, 2) ? 8 : g->len - 1);
        if (k >= g->len) return 0;
        if (below(r, 2)) {
            g->len -= k;
        } else {
            memmove(g->data, g->data + k, g->len - k);
            g->addr += k;
            g->len -= k;
        }
        return 1;
    }
    case M_EXTEND: {
        uint32_t i = pick_region(m, r);
        mregion *g = &m->regions[i];
        uint32_t k = below(r, 2) ? 8 : 1 + below(r, 64);
        if (model_gap_after(m, i) < k || g->len + k > AU_SNAP_MAX_REGION) return 0;
        if (g->cap < g->len + k) {
            g->cap = g->len + k + 64;
            g->data = xrealloc(g->data, g->cap);
        }
        for (uint32_t j = 0; j < k; j++) g->data[g->len + j] = below(r, 2) ? 0 : (uint8_t)rnd(r);
        g->len += k;
        return 1;
    }
    case M_VERSION:
        if (below(r, 4)) m->version = VERSIONS[below(r, NVERSIONS)];
        else m->version += below(r, 2) ? 0x10000u : (uint32_t)-0x10000; /* a neighbour */
        return 1;
    case M_RUNTIME:
        m->runtime = below(r, 4) ? some_pointer(m, r) : interesting_value(m->runtime, r);
        return 1;
    case M_ASYNC_ADDR: {
        m->has_async = 1;
        uint64_t *f = below(r, 2) ? &m->asyncio_debug : &m->agent;
        switch (below(r, 3)) {
        case 0: *f = 0; break;
        case 1: *f = some_pointer(m, r); break;
        default: *f = interesting_value(*f, r); break;
        }
        return 1;
    }
    case M_TIME: {
        /* The option bits (sampler_check.c): one, a group, or all at 0. */
        uint64_t c = sc_time_mix(m->time_ns);
        switch (below(r, 5)) {
        case 0: c ^= 1ull << below(r, 43); break;
        case 1: c = (c & ~0xffffffull) | (rnd(r) & 0x3fffff); break;
        case 2: c = (c & ~0xffffull) | 0xc000u | (rnd(r) & 0x3fff); break;
        case 3: /* sampler options on, at random */
            c = (c & ~(0x7fffull << 22)) | 3ull << 22 | (rnd(r) & 0x1fff) << 24;
            break;
        default: c &= ~0x7ffffffffffull; break;
        }
        m->time_ns = sc_time_mix(c);
        return 1;
    }
    case M_FAIL_ADD: {
        uint64_t addr;
        uint32_t len;
        if (below(r, 4) && recorded_read(orig, orig_size, r, &addr, &len)) {
            model_add_failed(m, addr, len);
        } else {
            if (m->nregions == 0) return 0;
            const mregion *g = &m->regions[pick_region(m, r)];
            static const uint32_t lens[] = {1, 5, 8, 16, 24, 64, 256};
            model_add_failed(m, g->addr + (below(r, 2) ? 0 : 8 * below(r, g->len / 8 + 1)),
                             below(r, 4) ? lens[below(r, 7)] : g->len);
        }
        model_normalize(m);
        return 1;
    }
    case M_FAIL_DEL:
        if (m->nfailed == 0) return 0;
        m->failed[below(r, m->nfailed)] = m->failed[m->nfailed - 1];
        m->nfailed--;
        model_normalize(m);
        return 1;
    case M_THREAD:
        if (m->nthreads && below(r, 2)) {
            m->threads[below(r, m->nthreads)] = m->threads[m->nthreads - 1];
            m->nthreads--;
        } else if (m->nthreads < AU_SNAP_MAX_THREADS) {
            mthread *t = &m->threads[m->nthreads++];
            t->id = rnd(r) & 0xffff;
            t->len = below(r, 17);
            for (uint32_t j = 0; j < t->len; j++) t->name[j] = (uint8_t)('a' + below(r, 26));
        }
        return 1;
    }
    return 0;
}

static size_t fallback_mutate(uint8_t *data, size_t size, size_t max_size, rng *r) {
    if (LLVMFuzzerMutate) return LLVMFuzzerMutate(data, size, max_size);
    if (size) data[below(r, (uint32_t)size)] ^= (uint8_t)(1u << below(r, 8));
    return size;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    rng r = {seed * 0x9e3779b97f4a7c15ull + size};
    model m;
    if (model_parse(data, size, &m) != 0) return fallback_mutate(data, size, max_size, &r);
    /* Work on a copy of the input: the recorded-read mutation samples the
     * original. */
    uint8_t *orig = xmalloc(size);
    memcpy(orig, data, size);
    int n = 1;
    while (n < 4 && below(&r, 3) == 0) n++;
    int applied = 0;
    for (int i = 0; i < n * 4 && applied < n; i++) applied += mutate_once(&m, &r, orig, size);
    model_normalize(&m);
    size_t out = model_emit(&m, data, max_size);
    model_free(&m);
    if (out == 0) {
        /* Too big: one size-neutral change of the original instead. */
        model_parse(orig, size, &m);
        for (int i = 0; i < 8; i++)
            if (m.nregions && mutate_once(&m, &r, orig, size)) break;
        model_normalize(&m);
        out = model_emit(&m, data, max_size);
        model_free(&m);
        if (out == 0) {
            memcpy(data, orig, size);
            out = size;
        }
    }
    free(orig);
    return out;
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2,
                                 uint8_t *out, size_t max_out, unsigned int seed) {
    rng r = {seed * 0xbf58476d1ce4e5b9ull + s1 + s2};
    model a, b;
    if (model_parse_pair(d1, s1, d2, s2, &a, &b) != 0) return 0;
    /* B's regions join A's where they fit (normalize drops overlaps). */
    uint32_t keep = 1 + below(&r, 3); /* take 1/keep of them */
    for (uint32_t i = 0; i < b.nregions; i++)
        if (below(&r, keep) == 0)
            model_add_region(&a, b.regions[i].addr, b.regions[i].data, b.regions[i].len);
    if (below(&r, 4) == 0) {
        a.version = b.version;
        a.runtime = b.runtime;
        a.has_async = b.has_async;
        a.asyncio_debug = b.asyncio_debug;
        a.agent = b.agent;
    }
    for (uint32_t i = 0; i < b.nfailed; i++)
        if (below(&r, 2)) model_add_failed(&a, b.failed[i].addr, b.failed[i].len);
    model_normalize(&a);
    /* Too big: drop random regions until it fits. */
    while (model_size(&a) > max_out && a.nregions) model_drop_region(&a, below(&r, a.nregions));
    size_t n = model_emit(&a, out, max_out);
    model_free(&a);
    model_free(&b);
    return n;
}
