/*
 * Snapshots: the file format (docs/SNAPSHOT.md), its parser, and a memory
 * source that serves reads from a parsed snapshot.
 *
 * A snapshot file is untrusted input (it may come from anyone, and the
 * fuzzer feeds it garbage), so the parser checks every size against the
 * bytes that remain, caps every count, and requires regions to be sorted
 * and disjoint: that check is linear and lets replay use a binary search
 * without sorting, and it means no two regions can disagree about a byte.
 */
#include <string.h>

#include "asyncunwind.h"
#include "au_bytes.h"
#include "au_internal.h"
#include "au_snapshot_format.h"

typedef struct region {
    uint64_t addr;
    uint64_t len;
    const uint8_t *data;
} region;

typedef struct failed {
    uint64_t addr;
    uint64_t len;
} failed;

typedef struct counts {
    uint32_t meta, threads, regions, failures;
} counts;

/* One slot of the page index: the regions that start on page pn are
 * regions[lo, hi). */
typedef struct pslot {
    uint64_t pn; /* page number + 1 (0: empty) */
    uint32_t lo, hi;
} pslot;

#define SNAP_PAGE 4096u

struct au_snapshot {
    au_allocator alloc;
    au_snapshot_meta meta;
    au_snapshot_thread *threads;
    region *regions;
    failed *failures;
    uint32_t nregions, nfailures;
    counts cap; /* array sizes, for the allocator */
    /* Page index: a replay's read finds its region by the page it is on,
     * not by a search of every region (a 1,000-task sample makes some
     * 31,000 reads of 20,000 regions, mostly not in address order). */
    pslot *pages;
    uint32_t pages_cap; /* a power of two, at least twice the pages */
};


/* Walks the records of a file.  Fills counts on the first pass (s == NULL)
 * and the arrays on the second. */

static int walk_records(const uint8_t *data, size_t len, counts *c, au_snapshot *s) {
    if (len < AU_SNAP_HEADER_SIZE || memcmp(data, AU_SNAP_MAGIC, 8) != 0) return AU_ERR_FORMAT;
    if (au_rd32(data + 8) != AU_SNAP_VERSION) return AU_ERR_UNSUPPORTED;
    if (au_rd32(data + 12) != AU_SNAP_HEADER_SIZE) return AU_ERR_FORMAT;
    size_t at = AU_SNAP_HEADER_SIZE;
    uint32_t nrec = 0, prev = 0;
    uint64_t last_region_end = 0, last_fail_addr = 0, last_fail_len = 0;
    memset(c, 0, sizeof *c);
    for (;;) {
        if (len - at < 8) return AU_ERR_FORMAT; /* no END record */
        uint32_t type = au_rd32(data + at), plen = au_rd32(data + at + 4);
        at += 8;
        if (plen > len - at) return AU_ERR_FORMAT;
        const uint8_t *p = data + at;
        size_t padded = ((size_t)plen + 7) & ~(size_t)7;
        if (padded > len - at) return AU_ERR_FORMAT;
        at += padded;
        if (++nrec > AU_SNAP_MAX_RECORDS) return AU_ERR_LIMIT;
        if (nrec == 1 && type != AU_SNAP_META) return AU_ERR_FORMAT;
        uint32_t before = prev;
        prev = type;
        switch (type) {
        case AU_SNAP_META:
            if (c->meta++ || plen < AU_SNAP_META_SIZE) return AU_ERR_FORMAT;
            if (s) {
                s->meta.pid = au_rd32(p);
                s->meta.py_version_hex = au_rd32(p + 4);
                s->meta.runtime_addr = au_rd64(p + 8);
                s->meta.time_ns = au_rd64(p + 16);
                if (plen >= AU_SNAP_META_ASYNC_SIZE) {
                    s->meta.asyncio_debug_addr = au_rd64(p + 24);
                    s->meta.agent_addr = au_rd64(p + 32);
                }
            }
            break;
        case AU_SNAP_THREAD:
            if (plen < 8 || plen - 8 > AU_SNAP_MAX_NAME) return AU_ERR_FORMAT;
            if (c->threads >= AU_SNAP_MAX_THREADS) return AU_ERR_LIMIT;
            if (s) {
                au_snapshot_thread *t = &s->threads[c->threads];
                t->native_id = au_rd64(p);
                t->name = (const char *)p + 8;
                t->name_len = plen - 8;
                t->unused = 0;
                t->pthread_id = 0; /* unless a PTHREAD record follows */
            }
            c->threads++;
            break;
        case AU_SNAP_PTHREAD:
            /* Belongs to the THREAD record just before it, at most one. */
            if (plen != 8 || before != AU_SNAP_THREAD) return AU_ERR_FORMAT;
            if (s) s->threads[c->threads - 1].pthread_id = au_rd64(p);
            break;
        case AU_SNAP_REGION: {
            if (plen <= 8 || plen - 8 > AU_SNAP_MAX_REGION) return AU_ERR_FORMAT;
            uint64_t addr = au_rd64(p), rlen = plen - 8;
            if (addr == 0 || addr + rlen < addr) return AU_ERR_FORMAT;
            if (c->regions && addr < last_region_end) return AU_ERR_FORMAT;
            last_region_end = addr + rlen;
            if (s) s->regions[c->regions] = (region){addr, rlen, p + 8};
            c->regions++;
            break;
        }
        case AU_SNAP_FAILED: {
            if (plen != 16) return AU_ERR_FORMAT;
            uint64_t addr = au_rd64(p), flen = au_rd64(p + 8);
            if (c->failures && (addr < last_fail_addr ||
                                (addr == last_fail_addr && flen <= last_fail_len)))
                return AU_ERR_FORMAT;
            last_fail_addr = addr;
            last_fail_len = flen;
            if (s) s->failures[c->failures] = (failed){addr, flen};
            c->failures++;
            break;
        }
        case AU_SNAP_END:
            if (plen != 0 || at != len) return AU_ERR_FORMAT;
            return c->meta ? AU_OK : AU_ERR_FORMAT;
        default:
            /* Unknown records are skipped, unless marked must-understand. */
            if (type & AU_SNAP_CRITICAL) return AU_ERR_UNSUPPORTED;
        }
    }
}

/* Arrays hold at least one element so that a NULL always means failure. */
static size_t array_size(uint32_t n, size_t elem) { return (size_t)(n ? n : 1) * elem; }

void au_snapshot_free(au_snapshot *s) {
    if (!s) return;
    au_allocator a = s->alloc;
    if (s->threads) a.realloc(a.ud, s->threads, array_size(s->cap.threads, sizeof *s->threads), 0);
    if (s->regions) a.realloc(a.ud, s->regions, array_size(s->cap.regions, sizeof *s->regions), 0);
    if (s->failures)
        a.realloc(a.ud, s->failures, array_size(s->cap.failures, sizeof *s->failures), 0);
    AU_FREE_ARRAY(&a, s->pages, s->pages_cap);
    a.realloc(a.ud, s, sizeof *s, 0);
}

static uint32_t page_slot(const au_snapshot *s, uint64_t pn) {
    uint32_t mask = s->pages_cap - 1, i = (uint32_t)au_mix64(pn) & mask;
    while (s->pages[i].pn && s->pages[i].pn != pn + 1) i = (i + 1) & mask;
    return i;
}

/* The page index over the regions (sorted and disjoint: parsed). */
static int index_pages(au_snapshot *s) {
    uint32_t distinct = 0;
    for (uint32_t k = 0; k < s->nregions; k++)
        distinct += !k || s->regions[k].addr / SNAP_PAGE != s->regions[k - 1].addr / SNAP_PAGE;
    uint32_t cap = 16;
    while (cap < 2ull * distinct) cap *= 2;
    s->pages = s->alloc.realloc(s->alloc.ud, NULL, 0, (size_t)cap * sizeof *s->pages);
    if (!s->pages) return AU_ERR_NOMEM;
    memset(s->pages, 0, (size_t)cap * sizeof *s->pages);
    s->pages_cap = cap;
    for (uint32_t k = 0; k < s->nregions;) {
        uint64_t pn = s->regions[k].addr / SNAP_PAGE;
        uint32_t lo = k;
        while (k < s->nregions && s->regions[k].addr / SNAP_PAGE == pn) k++;
        s->pages[page_slot(s, pn)] = (pslot){pn + 1, lo, k};
    }
    return AU_OK;
}

int au_snapshot_parse(const au_allocator *alloc, const uint8_t *data, size_t len,
                      au_snapshot **out) {
    if (!out || (!data && len)) return AU_ERR_ARG;
    *out = NULL;
    counts c;
    int rc = walk_records(data, len, &c, NULL);
    if (rc) return rc;
    au_allocator a;
    au_snapshot *s = au_alloc_zeroed(alloc, sizeof *s, &a);
    if (!s) return AU_ERR_NOMEM;
    s->alloc = a;
    s->cap = c;
    s->threads = a.realloc(a.ud, NULL, 0, array_size(c.threads, sizeof *s->threads));
    s->regions = a.realloc(a.ud, NULL, 0, array_size(c.regions, sizeof *s->regions));
    s->failures = a.realloc(a.ud, NULL, 0, array_size(c.failures, sizeof *s->failures));
    if (!s->threads || !s->regions || !s->failures) {
        au_snapshot_free(s);
        return AU_ERR_NOMEM;
    }
    rc = walk_records(data, len, &c, s);
    if (rc) { /* cannot differ from the first pass, but never trust that */
        au_snapshot_free(s);
        return rc;
    }
    s->nregions = c.regions;
    s->nfailures = c.failures;
    s->meta.nthreads = c.threads;
    s->meta.threads = s->threads;
    if ((rc = index_pages(s))) {
        au_snapshot_free(s);
        return rc;
    }
    *out = s;
    return AU_OK;
}

const au_snapshot_meta *au_snapshot_get_meta(const au_snapshot *s) {
    return s ? &s->meta : NULL;
}

/* ---- replay ------------------------------------------------------------- */

typedef struct replay {
    au_memsrc base;
    au_allocator alloc;
    const au_snapshot *snap;
    uint32_t hint; /* region_after's last answer */
} replay;

static int was_failed(const au_snapshot *s, uint64_t addr, uint64_t len) {
    uint32_t lo = 0, hi = s->nfailures;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const failed *f = &s->failures[mid];
        if (f->addr < addr || (f->addr == addr && f->len < len)) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->nfailures && s->failures[lo].addr == addr && s->failures[lo].len == len;
}

/* The index after the last region starting at or before addr (0: none).
 * *hint is the answer of the previous call: a sample reads an object's
 * fields one after another, so the same region, or the next, usually
 * answers again without a search. */
static uint32_t region_after(const au_snapshot *s, uint64_t addr, uint32_t *hint) {
    uint32_t h = *hint;
    if (h > 0 && h <= s->nregions && s->regions[h - 1].addr <= addr) {
        if (h == s->nregions || s->regions[h].addr > addr) return h;
        if (h + 1 == s->nregions || s->regions[h + 1].addr > addr) return *hint = h + 1;
    }
    /* The regions starting on addr's page, when there are some: the
     * answer is among them, or it is the one before them (which may reach
     * onto the page).  A page no region starts on (inside a long region,
     * or outside every region) is searched for among all. */
    uint32_t lo = 0, hi = s->nregions;
    uint32_t slot = page_slot(s, addr / SNAP_PAGE);
    if (s->pages[slot].pn) {
        lo = s->pages[slot].lo;
        hi = s->pages[slot].hi;
        if (s->regions[lo].addr > addr) return *hint = lo;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->regions[mid].addr <= addr) lo = mid + 1;
        else hi = mid;
    }
    return *hint = lo;
}

static int serve(const au_snapshot *s, au_read *r, uint32_t *hint) {
    if (r->len == 0) return AU_OK;
    if (!r->buf) return AU_ERR_ARG;
    if (r->addr + r->len < r->addr || was_failed(s, r->addr, r->len)) return AU_ERR_READ;
    /* The last region starting at or before addr is the only candidate. */
    uint32_t lo = region_after(s, r->addr, hint);
    if (lo == 0) return AU_ERR_READ;
    /* Copy from that region and, while the read goes on, from the regions
     * that follow it without a gap (the writer splits large regions). */
    uint8_t *dst = r->buf;
    uint64_t addr = r->addr, left = r->len;
    for (uint32_t k = lo - 1; k < s->nregions; k++) {
        const region *g = &s->regions[k];
        if (addr < g->addr || addr - g->addr >= g->len) return AU_ERR_READ;
        uint64_t off = addr - g->addr, n = g->len - off < left ? g->len - off : left;
        memcpy(dst, g->data + off, (size_t)n);
        dst += n;
        addr += n;
        left -= n;
        if (left == 0) return AU_OK;
    }
    return AU_ERR_READ;
}

static int replay_read(au_memsrc *self, au_read *reads, uint32_t n) {
    replay *p = (replay *)self;
    int first = AU_OK;
    p->base.stats.requests += n;
    for (uint32_t i = 0; i < n; i++) {
        reads[i].status = serve(p->snap, &reads[i], &p->hint);
        if (reads[i].status != AU_OK) {
            p->base.stats.failures++;
            if (first == AU_OK) first = reads[i].status;
        } else {
            p->base.stats.bytes += reads[i].len;
        }
    }
    return first;
}

static void replay_destroy(au_memsrc *self) {
    replay *p = (replay *)self;
    au_allocator a = p->alloc;
    a.realloc(a.ud, p, sizeof *p, 0);
}

int au_memsrc_snapshot_open(const au_allocator *alloc, const au_snapshot *s, au_memsrc **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (!s) return AU_ERR_ARG;
    au_allocator a;
    replay *p = au_alloc_zeroed(alloc, sizeof *p, &a);
    if (!p) return AU_ERR_NOMEM;
    p->base.read = replay_read;
    p->base.destroy = replay_destroy;
    p->alloc = a;
    p->snap = s;
    *out = &p->base;
    return AU_OK;
}
