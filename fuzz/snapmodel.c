#include "fuzz/snapmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "au_bytes.h"
#include "fuzz/check.h"

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL, "out of memory (%zu bytes)", n);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    CHECK(q != NULL, "out of memory (%zu bytes)", n);
    return q;
}

void model_free(model *m) {
    for (uint32_t i = 0; i < m->nregions; i++) free(m->regions[i].data);
    free(m->regions);
    free(m->failed);
    free(m->threads);
    free(m->extra);
    memset(m, 0, sizeof *m);
}

int model_parse_pair(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2, model *a,
                     model *b) {
    if (model_parse(d1, s1, a) != 0) {
        memset(b, 0, sizeof *b);
        return -1;
    }
    if (model_parse(d2, s2, b) != 0) {
        model_free(a);
        return -1;
    }
    return 0;
}

mregion *model_add_region(model *m, uint64_t addr, const uint8_t *bytes, uint32_t len) {
    if (m->nregions == m->regions_cap) {
        m->regions_cap = m->regions_cap * 2 + 8;
        m->regions = xrealloc(m->regions, m->regions_cap * sizeof *m->regions);
    }
    mregion *g = &m->regions[m->nregions++];
    g->addr = addr;
    g->len = len;
    g->cap = len + 64;
    g->data = xmalloc(g->cap);
    if (bytes) memcpy(g->data, bytes, len);
    else memset(g->data, 0, len);
    return g;
}

void model_drop_region(model *m, uint32_t i) {
    free(m->regions[i].data);
    memmove(&m->regions[i], &m->regions[i + 1], (m->nregions - i - 1) * sizeof *m->regions);
    m->nregions--;
}

void model_add_failed(model *m, uint64_t addr, uint64_t len) {
    if (m->nfailed == m->failed_cap) {
        m->failed_cap = m->failed_cap * 2 + 8;
        m->failed = xrealloc(m->failed, m->failed_cap * sizeof *m->failed);
    }
    m->failed[m->nfailed++] = (mfailed){addr, len};
}

int model_parse(const uint8_t *data, size_t size, model *m) {
    memset(m, 0, sizeof *m);
    au_snapshot *s = NULL;
    if (au_snapshot_parse(NULL, data, size, &s) != AU_OK) return -1;
    au_snapshot_free(s);
    m->threads = xmalloc(AU_SNAP_MAX_THREADS * sizeof *m->threads);
    size_t at = AU_SNAP_HEADER_SIZE;
    for (;;) { /* valid: every record is complete and END is last */
        uint32_t type = au_rd32(data + at), len = au_rd32(data + at + 4);
        const uint8_t *p = data + at + 8;
        at += 8 + (((size_t)len + 7) & ~(size_t)7);
        switch (type) {
        case AU_SNAP_META: {
            m->pid = au_rd32(p);
            m->version = au_rd32(p + 4);
            m->runtime = au_rd64(p + 8);
            m->time_ns = au_rd64(p + 16);
            uint32_t skip = AU_SNAP_META_SIZE;
            if (len >= AU_SNAP_META_ASYNC_SIZE) {
                m->has_async = 1;
                m->asyncio_debug = au_rd64(p + 24);
                m->agent = au_rd64(p + 32);
                skip = AU_SNAP_META_ASYNC_SIZE;
            }
            m->extra_len = len - skip;
            m->extra = xmalloc(m->extra_len);
            memcpy(m->extra, p + skip, m->extra_len);
            break;
        }
        case AU_SNAP_THREAD: {
            mthread *t = &m->threads[m->nthreads++];
            t->id = au_rd64(p);
            t->len = len - 8;
            memcpy(t->name, p + 8, t->len);
            break;
        }
        case AU_SNAP_REGION:
            model_add_region(m, au_rd64(p), p + 8, len - 8);
            break;
        case AU_SNAP_FAILED:
            model_add_failed(m, au_rd64(p), au_rd64(p + 8));
            break;
        case AU_SNAP_END:
            return 0;
        default: /* unknown records are dropped */
            break;
        }
    }
}

static int cmp_region(const void *a, const void *b) {
    const mregion *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int cmp_failed(const void *a, const void *b) {
    const mfailed *x = a, *y = b;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

void model_normalize(model *m) {
    if (m->nregions) qsort(m->regions, m->nregions, sizeof *m->regions, cmp_region);
    uint32_t k = 0;
    uint64_t end = 0;
    for (uint32_t i = 0; i < m->nregions; i++) {
        mregion *g = &m->regions[i];
        int bad = g->len == 0 || g->len > AU_SNAP_MAX_REGION || g->addr == 0 ||
                  g->addr > UINT64_MAX - g->len || (k > 0 && g->addr < end);
        if (bad) {
            free(g->data);
            continue;
        }
        end = g->addr + g->len;
        m->regions[k++] = *g;
    }
    m->nregions = k;
    if (m->nfailed) qsort(m->failed, m->nfailed, sizeof *m->failed, cmp_failed);
    k = 0;
    for (uint32_t i = 0; i < m->nfailed; i++) {
        if (k && m->failed[k - 1].addr == m->failed[i].addr &&
            m->failed[k - 1].len == m->failed[i].len)
            continue;
        m->failed[k++] = m->failed[i];
    }
    m->nfailed = k;
}

static size_t rec_size(size_t payload) { return 8 + ((payload + 7) & ~(size_t)7); }

static uint32_t meta_len(const model *m) {
    return (m->has_async ? AU_SNAP_META_ASYNC_SIZE : AU_SNAP_META_SIZE) + m->extra_len;
}

size_t model_size(const model *m) {
    size_t n = AU_SNAP_HEADER_SIZE + rec_size(meta_len(m)) + rec_size(0);
    for (uint32_t i = 0; i < m->nthreads; i++) n += rec_size(8 + m->threads[i].len);
    for (uint32_t i = 0; i < m->nregions; i++) n += rec_size(8 + (size_t)m->regions[i].len);
    n += (size_t)m->nfailed * rec_size(16);
    return n;
}

static uint8_t *put_rec(uint8_t *o, uint32_t type, uint32_t len) {
    au_wr32(o, type);
    au_wr32(o + 4, len);
    memset(o + 8, 0, ((size_t)len + 7) & ~(size_t)7); /* zero padding */
    return o + 8;
}

size_t model_write(const model *m, uint8_t *out) {
    uint8_t *o = out;
    memcpy(o, AU_SNAP_MAGIC, 8);
    au_wr32(o + 8, AU_SNAP_VERSION);
    au_wr32(o + 12, AU_SNAP_HEADER_SIZE);
    o += AU_SNAP_HEADER_SIZE;
    uint32_t ml = meta_len(m);
    uint8_t *p = put_rec(o, AU_SNAP_META, ml);
    au_wr32(p, m->pid);
    au_wr32(p + 4, m->version);
    au_wr64(p + 8, m->runtime);
    au_wr64(p + 16, m->time_ns);
    if (m->has_async) {
        au_wr64(p + 24, m->asyncio_debug);
        au_wr64(p + 32, m->agent);
    }
    if (m->extra_len) memcpy(p + ml - m->extra_len, m->extra, m->extra_len);
    o += rec_size(ml);
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const mthread *t = &m->threads[i];
        p = put_rec(o, AU_SNAP_THREAD, 8 + t->len);
        au_wr64(p, t->id);
        if (t->len) memcpy(p + 8, t->name, t->len);
        o += rec_size(8 + t->len);
    }
    for (uint32_t i = 0; i < m->nregions; i++) {
        const mregion *g = &m->regions[i];
        p = put_rec(o, AU_SNAP_REGION, 8 + g->len);
        au_wr64(p, g->addr);
        memcpy(p + 8, g->data, g->len);
        o += rec_size(8 + (size_t)g->len);
    }
    for (uint32_t i = 0; i < m->nfailed; i++) {
        p = put_rec(o, AU_SNAP_FAILED, 16);
        au_wr64(p, m->failed[i].addr);
        au_wr64(p + 8, m->failed[i].len);
        o += rec_size(16);
    }
    put_rec(o, AU_SNAP_END, 0);
    o += rec_size(0);
    return (size_t)(o - out);
}

size_t model_emit(const model *m, uint8_t *out, size_t max_size) {
    size_t n = model_size(m);
    if (n > max_size) return 0;
    size_t w = model_write(m, out);
    CHECK(w == n, "model_write wrote %zu bytes, model_size %zu", w, n);
    au_snapshot *s = NULL;
    int rc = au_snapshot_parse(NULL, out, n, &s);
    CHECK(rc == AU_OK, "the mutator wrote an invalid snapshot: %d", rc);
    au_snapshot_free(s);
    return n;
}

uint32_t model_find(const model *m, uint64_t addr) {
    uint32_t lo = 0, hi = m->nregions;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->regions[mid].addr <= addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return UINT32_MAX;
    const mregion *g = &m->regions[lo - 1];
    return addr - g->addr < g->len ? lo - 1 : UINT32_MAX;
}

uint8_t *model_bytes(const model *m, uint64_t addr, uint32_t len) {
    uint32_t i = model_find(m, addr);
    if (i == UINT32_MAX) return NULL;
    const mregion *g = &m->regions[i];
    return len <= g->len - (addr - g->addr) ? g->data + (addr - g->addr) : NULL;
}

uint64_t model_gap_after(const model *m, uint32_t i) {
    const mregion *g = &m->regions[i];
    uint64_t end = g->addr + g->len;
    return i + 1 < m->nregions ? m->regions[i + 1].addr - end : UINT64_MAX - end;
}

uint64_t model_gap_before(const model *m, uint32_t i) {
    const mregion *g = &m->regions[i];
    return i ? g->addr - (m->regions[i - 1].addr + m->regions[i - 1].len) : g->addr - 1;
}

/* ---- random choices ----------------------------------------------------- */

uint64_t rnd(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t below(rng *r, uint32_t n) { return n ? (uint32_t)(rnd(r) % n) : 0; }

uint32_t pick_region(const model *m, rng *r) {
    if (below(r, 2)) return below(r, m->nregions);
    uint64_t total = 0;
    for (uint32_t i = 0; i < m->nregions; i++) total += m->regions[i].len;
    uint64_t x = rnd(r) % total;
    for (uint32_t i = 0; i < m->nregions; i++) {
        if (x < m->regions[i].len) return i;
        x -= m->regions[i].len;
    }
    return m->nregions - 1;
}

uint32_t pick_word(const mregion *g, rng *r) {
    uint32_t first = (uint32_t)((8 - (g->addr & 7)) & 7);
    if (first + 8 > g->len) return UINT32_MAX;
    uint32_t nwords = (g->len - first) / 8;
    return first + 8 * below(r, nwords);
}

uint64_t some_pointer(const model *m, rng *r) {
    if (m->nregions == 0) return rnd(r);
    const mregion *g = &m->regions[pick_region(m, r)];
    switch (below(r, 10)) {
    case 0: case 1: case 2: case 3: return g->addr;
    case 4: case 5: case 6: return g->addr + (g->len > 8 ? 8 * below(r, g->len / 8) : 0);
    case 7: return g->addr + 8 * (1 + below(r, 8));
    case 8: return g->addr - 8 * (1 + below(r, 8));
    default: return g->addr + below(r, 8);
    }
}

static const uint64_t INTERESTING[] = {
    0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400,
    0xfff, 0x1000, 0xffff, 0x10000, 0xffffff, 0x1000000, 0x1000001, 0x3fffffff, 0x40000000,
    0x40000001, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
    0x8000000000000000ull, 0xffffffffffffffffull, 0xfffffffffffffff8ull, 0xffffffffffffff00ull,
    0x00007ffffffff000ull, 0x0000800000000000ull, 0xfffffffffffffffeull,
};
#define NINTERESTING (sizeof INTERESTING / sizeof *INTERESTING)

uint64_t interesting_value(uint64_t old, rng *r) {
    switch (below(r, 6)) {
    case 0: case 1: return INTERESTING[below(r, NINTERESTING)];
    case 2: return old + 1 + below(r, 16);
    case 3: return old - 1 - below(r, 16);
    case 4: return old ^ (1ull << below(r, 64));
    default: return below(r, 2) ? old + 8 * (1 + below(r, 32)) : old - 8 * (1 + below(r, 32));
    }
}
