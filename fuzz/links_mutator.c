/*
 * The `links` target's mutator (mutator.h): it corrupts only what links
 * are made of, on top of a valid snapshot, so that the fuzzer spends its
 * time on the link graph rather than on finding the tasks again.
 *
 * Which bytes are link bytes is learnt by running the sampler on the input
 * (sc_record) through a memory source that tags every read with what the
 * asyncio model was reading at the time (au_sampler_phase).  Reads made in
 * AU_AT_PHASE_LINKS are everything pylinks.c follows: fut_callback0, the
 * fut_callbacks list and its (callback, context) tuples, the callbacks'
 * types, functions and code objects' filenames, closures and their cells,
 * functools.partial's args, bound methods' __self__, the futures in
 * between, gathers' _children, TaskGroups' _parent_task, and the local
 * slots of coroutine frames.  Reads made in AU_AT_PHASE_AGENT (the agent's
 * header, its records list, the list's items and the weakrefs they name)
 * are link bytes too, and the agent's region address in META is mutated
 * (L_AGENT).  A task's own fields (fut_waiter, the callbacks, 3.14+
 * awaited_by) are read with the task, through one window (au_asyncctx.h),
 * before the link phase: the pointer words (and zeros) of each task's
 * first TASK_SPAN bytes past its header are link words too.
 *
 * One to four of, each confined to those bytes (or to a copy it adds):
 *   L_TASK    a link word points at a task (another, or its own)
 *   L_OBJ     a link word points at another object of the link graph
 *   L_SELF    a link word points at the object holding it, or at itself
 *   L_FREED   a link word points at a copy of a task or link object whose
 *             header is wrecked (refcount 0, type gone or another's): a
 *             freed and reused address
 *   L_STALE   a link word points where nothing was read (unmapped)
 *   L_VALUE   a link word gets 0, -1, a boundary or a near value (sizes,
 *             counts, pointers off by a little)
 *   L_BYTE    a byte of a link read set (is_set flags, string states)
 *   L_SWAP    two link words swapped
 *   L_CYCLE   two tasks' same link field pointed at each other (at itself
 *             for one task): await and awaited_by cycles, self links
 *   L_SHARE   a task's link field copied from another's (two tasks waiting
 *             on one future, sharing one callback list)
 *   L_FANOUT  a link word points at a new container (tuple or list: the
 *             type of what it pointed at) of 2 to 300 equal items: a
 *             callback list of 64 equal callbacks, a closure of 16 equal
 *             cells, the same future or task held over and over
 *   L_SPRAY   one pointer written into many link words at once (every
 *             frame slot, every cell): one object found everywhere
 *   L_FAIL    a FAILED record for a link read (it fails on replay)
 *   L_BYTES   libFuzzer's own byte mutations, inside one link read
 *   L_AGENT   META's agent region address moved (0, a region, an object)
 * An input without link bytes gets one word changed anywhere.  The
 * cross-over merges the corruptions of two inputs made from the same
 * snapshot (regions at the same address and of the same length).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_helpers.h"
#include "fuzz/mutator.h"
#include "fuzz/sampler_check.h"
#include "fuzz/snapmodel.h"
#include "au_pyoffsets.h"
#include "au_pytasks.h"

enum {
    L_TASK, L_OBJ, L_SELF, L_FREED, L_STALE, L_VALUE, L_BYTE, L_SWAP, L_CYCLE, L_SHARE,
    L_FANOUT, L_SPRAY, L_FAIL, L_BYTES, L_AGENT, L_COUNT
};

static const uint8_t WEIGHTS[L_COUNT] = {
    [L_TASK] = 20, [L_OBJ] = 14, [L_SELF] = 8,  [L_FREED] = 8, [L_STALE] = 5,
    [L_VALUE] = 10, [L_BYTE] = 6, [L_SWAP] = 5, [L_CYCLE] = 12, [L_SHARE] = 6,
    [L_FANOUT] = 6, [L_SPRAY] = 4, [L_FAIL] = 5, [L_BYTES] = 5, [L_AGENT] = 2,
};

#define MAX_READS 65536u
#define MAX_WORDS 65536u
#define TASK_SPAN 512u /* link fields of a task lie within this of its start */

typedef struct links {
    sc_recording rec;
    const sc_read **reads; /* the link reads that succeeded */
    uint32_t nreads;
    uint64_t *words; /* 8-aligned addresses of words inside them */
    uint32_t nwords;
    uint64_t *objs; /* link words' values that point into the snapshot,
                       and the tasks: sorted, unique */
    uint32_t nobjs;
} links;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int link_phase(uint32_t phase) {
    return phase == AU_AT_PHASE_LINKS || phase == AU_AT_PHASE_AGENT;
}

/* Samples orig (flags as the harness) and gathers its link bytes, as they
 * stand in m. */
static void find_links(const uint8_t *orig, size_t size, const model *m, links *L) {
    memset(L, 0, sizeof *L);
    if (!sc_record(orig, size, SC_ASYNCIO | SC_NO_RECORD, MAX_READS, &L->rec)) return;
    L->reads = xmalloc((size_t)(L->rec.nreads ? L->rec.nreads : 1) * sizeof *L->reads);
    L->words = xmalloc(MAX_WORDS * sizeof *L->words);
    for (uint32_t i = 0; i < L->rec.nreads; i++) {
        const sc_read *r = &L->rec.reads[i];
        if (!link_phase(r->phase) || r->status != 0 || r->len == 0 ||
            !model_bytes(m, r->addr, r->len))
            continue;
        L->reads[L->nreads++] = r;
        for (uint64_t a = (r->addr + 7) & ~7ull; a + 8 <= r->addr + r->len && L->nwords < MAX_WORDS;
             a += 8)
            L->words[L->nwords++] = a;
    }
    /* A task's own pointer fields (fut_waiter above all), past its object
     * header: the model reads them with the task, before the link phase.
     * A word counts when it is 0 or points at an object of the snapshot. */
    for (uint32_t j = 0; j < L->rec.ntasks; j++) {
        uint64_t t = L->rec.tasks[j];
        for (uint64_t a = t + 16; a + 8 <= t + TASK_SPAN && L->nwords < MAX_WORDS; a += 8) {
            const uint8_t *p = model_bytes(m, a, 8);
            if (!p) break;
            uint64_t v = au_rd64(p);
            if (v == 0 || (!(v & 7) && model_find(m, v) != UINT32_MAX)) L->words[L->nwords++] = a;
        }
    }
    L->objs = xmalloc(((size_t)L->nwords + L->rec.ntasks + 1) * sizeof *L->objs);
    for (uint32_t i = 0; i < L->nwords; i++) {
        uint64_t v = au_rd64(model_bytes(m, L->words[i], 8));
        if (v && !(v & 7) && model_find(m, v) != UINT32_MAX) L->objs[L->nobjs++] = v;
    }
    for (uint32_t j = 0; j < L->rec.ntasks; j++) L->objs[L->nobjs++] = L->rec.tasks[j];
    if (L->nobjs) qsort(L->objs, L->nobjs, sizeof *L->objs, cmp_u64);
    uint32_t k = 0;
    for (uint32_t i = 0; i < L->nobjs; i++)
        if (k == 0 || L->objs[k - 1] != L->objs[i]) L->objs[k++] = L->objs[i];
    L->nobjs = k;
}

static void links_free(links *L) {
    sc_recording_free(&L->rec);
    free(L->reads);
    free(L->words);
    free(L->objs);
    memset(L, 0, sizeof *L);
}

/* The bytes of a link word in m (NULL if a mutation moved them away). */
static uint8_t *word_at(const model *m, uint64_t addr) { return model_bytes(m, addr, 8); }

static int set_word(model *m, uint64_t addr, uint64_t v) {
    uint8_t *p = word_at(m, addr);
    if (!p) return 0;
    au_wr64(p, v);
    return 1;
}

static uint64_t pick_task(const links *L, rng *r) {
    uint64_t t = L->rec.tasks[below(r, L->rec.ntasks)];
    return below(r, 8) ? t : t + 8 * below(r, 4); /* sometimes a little inside */
}

/* The object holding the word at addr: the last known object at or before
 * it, within TASK_SPAN; else the word itself. */
static uint64_t owner(const links *L, uint64_t addr) {
    uint32_t lo = 0, hi = L->nobjs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (L->objs[mid] <= addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo && addr - L->objs[lo - 1] < TASK_SPAN) return L->objs[lo - 1];
    return addr;
}

/* A copy of the object at obj (what the snapshot holds of its first bytes)
 * after the last region, its header wrecked; returns its address or 0. */
static uint64_t freed_copy(model *m, uint64_t obj, rng *r) {
    uint32_t len = 64 + 8 * below(r, 32);
    uint32_t i = model_find(m, obj);
    if (i == UINT32_MAX) return 0;
    const mregion *g = &m->regions[i];
    if (len > g->len - (obj - g->addr)) len = (uint32_t)(g->len - (obj - g->addr));
    if (len < 16) return 0;
    const mregion *last = &m->regions[m->nregions - 1];
    uint64_t at = (last->addr + last->len + 4096 + 8 * below(r, 512)) & ~7ull;
    if (at < last->addr || at > UINT64_MAX - len) return 0;
    uint8_t *copy = xmalloc(len);
    memcpy(copy, g->data + (obj - g->addr), len);
    au_wr64(copy, 0); /* ob_refcnt */
    switch (below(r, 3)) {
    case 0: au_wr64(copy + 8, 0); break; /* ob_type gone */
    case 1: /* the type of another object of the snapshot */
        au_wr64(copy + 8, au_rd64(m->regions[pick_region(m, r)].data) & ~7ull);
        break;
    default: au_wr64(copy + 8, interesting_value(au_rd64(copy + 8), r)); break;
    }
    model_add_region(m, at, copy, len);
    free(copy);
    model_normalize(m);
    return model_find(m, at) != UINT32_MAX ? at : 0;
}

/* A new container where the link word at w pointed: the type of the old
 * one, n equal items.  Tuples keep their items inline and lists behind a
 * pointer, at the same offset up to 3.13: item 0 points at item 1, so the
 * object reads as either (n - 1 equal items as a list). */
static int fanout(model *m, const links *L, uint64_t w, rng *r) {
    const au_py_offsets *o = au_py_offsets_for(m->version);
    uint8_t *pw = word_at(m, w);
    if (!o || !pw) return 0;
    uint64_t old = au_rd64(pw);
    uint8_t *t = model_bytes(m, old + o->ob_type, 8);
    if (!t) return 0;
    static const uint32_t counts[] = {2, 3, 16, 17, 64, 65, 256, 300};
    uint32_t n = counts[below(r, 8)];
    uint64_t item = below(r, 3) == 0 && L->rec.ntasks ? pick_task(L, r)
                    : below(r, 2)                     ? L->objs[below(r, L->nobjs)]
                                                      : old;
    uint32_t items = o->tuple_ob_item, len = items + 8 * (n + 1);
    if (o->list_ob_item + 8 > len) return 0;
    const mregion *last = &m->regions[m->nregions - 1];
    uint64_t at = (last->addr + last->len + 4096 + 8 * below(r, 512)) & ~7ull;
    if (at < last->addr || at > UINT64_MAX - len) return 0;
    uint8_t *b = xmalloc(len);
    memset(b, 0, len);
    au_wr64(b + o->ob_type, au_rd64(t));
    au_wr64(b + o->var_ob_size, n);
    for (uint32_t i = 0; i <= n; i++) au_wr64(b + items + 8 * i, item);
    if (o->list_ob_item == items) au_wr64(b + items, at + items + 8);
    else au_wr64(b + o->list_ob_item, at + items);
    model_add_region(m, at, b, len);
    free(b);
    model_normalize(m);
    return model_find(m, at) != UINT32_MAX && set_word(m, w, at);
}

/* A task's link word, by its offset in the task: the word's address when
 * it is one, else 0. */
static uint64_t task_word(const links *L, uint64_t task, rng *r) {
    uint32_t n = 0;
    uint64_t pick = 0;
    for (uint32_t i = 0; i < L->nwords; i++) /* reservoir sampling */
        if (L->words[i] >= task && L->words[i] - task < TASK_SPAN && below(r, ++n) == 0)
            pick = L->words[i];
    return pick;
}


static int mutate_once(model *m, const links *L, rng *r) {
    uint32_t total = 0;
    for (int k = 0; k < L_COUNT; k++) total += WEIGHTS[k];
    uint32_t x = below(r, total);
    int op = 0;
    while (x >= WEIGHTS[op]) x -= WEIGHTS[op++];
    if (!L->nwords && op != L_CYCLE && op != L_SHARE && op != L_AGENT) return 0;
    /* Words can come from tasks alone, with no read of the link phase. */
    if (!L->nreads && (op == L_BYTE || op == L_FAIL || op == L_BYTES)) return 0;
    uint64_t w = L->nwords ? L->words[below(r, L->nwords)] : 0;
    switch (op) {
    case L_TASK:
        return L->rec.ntasks && set_word(m, w, pick_task(L, r));
    case L_OBJ:
        return L->nobjs && set_word(m, w, L->objs[below(r, L->nobjs)]);
    case L_SELF:
        return set_word(m, w, below(r, 4) ? owner(L, w) : w);
    case L_FREED: {
        uint64_t obj = L->rec.ntasks && below(r, 2) ? L->rec.tasks[below(r, L->rec.ntasks)]
                       : L->nobjs ? L->objs[below(r, L->nobjs)]
                                  : 0;
        uint64_t copy = obj ? freed_copy(m, obj, r) : 0;
        return copy && set_word(m, w, copy);
    }
    case L_STALE: {
        const mregion *g = &m->regions[pick_region(m, r)];
        uint64_t v;
        switch (below(r, 3)) {
        case 0: v = (g->addr + g->len + 8 * below(r, 8) + 7) & ~7ull; break;
        case 1: v = m->nfailed ? m->failed[below(r, m->nfailed)].addr : 8; break;
        default: v = g->addr - 8 * (1 + below(r, 64)); break;
        }
        return model_find(m, v) == UINT32_MAX && set_word(m, w, v);
    }
    case L_VALUE: {
        uint8_t *p = word_at(m, w);
        if (!p) return 0;
        au_wr64(p, interesting_value(au_rd64(p), r));
        return 1;
    }
    case L_BYTE: {
        /* Prefer the short reads: flags and string states. */
        const sc_read *rd = L->reads[below(r, L->nreads)];
        for (int t = 0; t < 8 && rd->len >= 8; t++) rd = L->reads[below(r, L->nreads)];
        uint8_t *p = model_bytes(m, rd->addr, rd->len);
        if (!p) return 0;
        static const uint8_t vals[] = {0, 1, 2, 3, 0x7f, 0x80, 0xfe, 0xff};
        uint32_t i = below(r, rd->len);
        p[i] = below(r, 3) ? vals[below(r, 8)] : (uint8_t)(p[i] ^ (1u << below(r, 8)));
        return 1;
    }
    case L_SWAP: {
        uint64_t w2 = L->words[below(r, L->nwords)];
        uint8_t *a = word_at(m, w), *b = word_at(m, w2);
        if (!a || !b || a == b) return 0;
        uint8_t t[8];
        memcpy(t, a, 8);
        memcpy(a, b, 8);
        memcpy(b, t, 8);
        return 1;
    }
    case L_CYCLE:
    case L_SHARE: {
        if (!L->rec.ntasks) return 0;
        uint64_t a = L->rec.tasks[below(r, L->rec.ntasks)];
        uint64_t b = below(r, 4) ? L->rec.tasks[below(r, L->rec.ntasks)] : a;
        uint64_t fa = task_word(L, a, r);
        if (!fa) return 0;
        uint64_t off = fa - a;
        uint8_t *pb = word_at(m, b + off);
        if (op == L_SHARE) return pb && set_word(m, fa, au_rd64(pb));
        int done = set_word(m, fa, b); /* a -> b; b -> a: a cycle, or a self link */
        if (pb && a != b) au_wr64(pb, a);
        return done;
    }
    case L_FANOUT:
        return fanout(m, L, w, r);
    case L_SPRAY: {
        /* Into every link word of one read length (32: frame slots), or
         * into one word in 1 to 16 (any). */
        uint64_t v = L->rec.ntasks && below(r, 3) == 0 ? pick_task(L, r)
                     : L->nobjs                         ? L->objs[below(r, L->nobjs)]
                                                        : w;
        uint32_t len = below(r, 2) ? 32 : 0, every = 1 + below(r, 16);
        int done = 0;
        for (uint32_t i = 0; i < L->nreads; i++) {
            const sc_read *rd = L->reads[i];
            if (len ? rd->len != len : below(r, every) != 0) continue;
            for (uint64_t a = (rd->addr + 7) & ~7ull; a + 8 <= rd->addr + rd->len; a += 8)
                done |= set_word(m, a, v);
        }
        return done;
    }
    case L_FAIL: {
        const sc_read *rd = L->reads[below(r, L->nreads)];
        model_add_failed(m, rd->addr, rd->len);
        model_normalize(m);
        return 1;
    }
    case L_BYTES: {
        const sc_read *rd = L->reads[below(r, L->nreads)];
        uint8_t *p = model_bytes(m, rd->addr, rd->len);
        if (!p) return 0;
        if (LLVMFuzzerMutate) {
            /* Its output may be shorter: the rest keeps its bytes. */
            uint8_t *tmp = xmalloc(rd->len);
            memcpy(tmp, p, rd->len);
            size_t n = LLVMFuzzerMutate(tmp, rd->len, rd->len);
            memcpy(p, tmp, n < rd->len ? n : rd->len);
            free(tmp);
        } else {
            p[below(r, rd->len)] ^= (uint8_t)(1u << below(r, 8));
        }
        return 1;
    }
    case L_AGENT:
        /* The agent's records are fed from here (docs/AGENT.md). */
        m->has_async = 1;
        switch (below(r, 3)) {
        case 0: m->agent = 0; break;
        case 1: m->agent = m->regions[pick_region(m, r)].addr; break;
        default: m->agent = L->nobjs ? L->objs[below(r, L->nobjs)] : some_pointer(m, r); break;
        }
        return 1;
    }
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    rng r = {seed * 0x9e3779b97f4a7c15ull + size};
    model m;
    if (model_parse(data, size, &m) != 0) {
        if (LLVMFuzzerMutate) return LLVMFuzzerMutate(data, size, max_size);
        return size;
    }
    links L;
    find_links(data, size, &m, &L);
    int n = 1;
    while (n < 4 && below(&r, 3) == 0) n++;
    int applied = 0;
    for (int i = 0; i < n * 8 && applied < n; i++) applied += mutate_once(&m, &L, &r);
    if (!applied && m.nregions) { /* no links here: one word anywhere */
        mregion *g = &m.regions[pick_region(&m, &r)];
        uint32_t off = pick_word(g, &r);
        if (off != UINT32_MAX) au_wr64(g->data + off, some_pointer(&m, &r));
    }
    links_free(&L);
    model_normalize(&m);
    size_t out = model_emit(&m, data, max_size);
    model_free(&m);
    return out ? out : size; /* too big (a copy added): the input as it was */
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2,
                                 uint8_t *out, size_t max_out, unsigned int seed) {
    rng r = {seed * 0xbf58476d1ce4e5b9ull + s1 + s2};
    model a, b;
    if (model_parse_pair(d1, s1, d2, s2, &a, &b) != 0) return 0;
    /* Where both hold a region at the same place, of the same length, B's
     * differing bytes come over in runs: two corruptions of one snapshot
     * become one. */
    int merged = 0;
    for (uint32_t i = 0, j = 0; i < a.nregions && j < b.nregions;) {
        mregion *x = &a.regions[i];
        const mregion *y = &b.regions[j];
        if (x->addr < y->addr) {
            i++;
        } else if (y->addr < x->addr) {
            j++;
        } else {
            if (x->len == y->len && memcmp(x->data, y->data, x->len) != 0 && below(&r, 2)) {
                memcpy(x->data, y->data, x->len);
                merged = 1;
            }
            i++;
            j++;
        }
    }
    for (uint32_t i = 0; i < b.nfailed; i++)
        if (below(&r, 2)) model_add_failed(&a, b.failed[i].addr, b.failed[i].len), merged = 1;
    model_normalize(&a);
    size_t n = merged ? model_emit(&a, out, max_out) : 0;
    model_free(&a);
    model_free(&b);
    return n;
}
