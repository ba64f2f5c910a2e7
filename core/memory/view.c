/*
 * One sample's view of target memory, by whole pages (see au_view.h).
 *
 * Pages live in one array, numbered in the order they were fetched; an
 * open-addressing table maps a page number to its index.  Table slots carry
 * the sample's stamp, so starting a sample clears nothing.
 */
#include <string.h>

#include "au_internal.h"
#include "au_view.h"

#define PAGE AU_VIEW_PAGE
#define NONE UINT32_MAX
#define MAX_RANGE (1u << 20)
#define TLB_MIN 1024u  /* TLB places to start with (16 KiB) */
#define TLB_MAX 16384u /* and at most (256 KiB) */
#define MISSING 1 /* check_pages: a page is not fetched (not a status) */

enum {
    PG_OK = 1u << 0,       /* fetched */
    PG_FAILED = 1u << 1,   /* its read failed */
    PG_USED = 1u << 2,     /* served a read this sample */
    PG_PREFETCH = 1u << 3, /* fetched for the previous sample's sake */
    PG_KEEP = 1u << 4,     /* served a read that was not transient: the
                              next sample prefetches it */
};

/* A place of the TLB (struct au_view). */
typedef struct au_vtlb {
    uint64_t pn;
    uint32_t idx, gen;
} au_vtlb;

/* One slot of the page table: a probe touches one cache line, not three
 * arrays (a 10,000-task sample looks pages up some 100,000 times). */
typedef struct au_vslot {
    uint64_t key;   /* page number */
    uint32_t val;   /* index in the page arrays */
    uint32_t stamp; /* live when equal to the view's stamp */
} au_vslot;

struct au_view {
    au_allocator alloc;
    au_memsrc *src;
    uint32_t max_pages;
    int exact;
    int transient;
    au_view_stats stats;

    /* This sample's pages: data[i * PAGE], its number and flags. */
    uint8_t *data;
    uint64_t *pageno;
    uint8_t *flags;
    uint32_t npages;
    uint32_t data_cap, pageno_cap, flags_cap; /* in pages (data: bytes/PAGE) */
    uint32_t moves; /* times data moved (au_view_moves) */

    /* The last page looked up at each of tlb_mask + 1 places (by page
     * number): most reads fall on a page read a moment before, and this
     * answers them with one compare instead of a hash probe.  An entry
     * counts when its gen is this sample's.  Eight places a page, from
     * 1,024 to 16,384 (256 KiB), grown with the pages: a 10,000-task
     * sample holds some 2,300 pages, and with 4,096 places so many of them
     * shared a place that its batches (au_view_want) took 4.6 million
     * instructions, 21 times those of 1,000 tasks; with 16,384, 2.2
     * million, 10 times (callgrind, pyenv 3.12).  A small program's view
     * keeps to 16 KiB (a fuzzer opens thousands of views a second). */
    au_vtlb *tlb;
    uint32_t tlb_mask, tlb_gen;

    /* Page number -> index; a slot counts when its stamp is this sample's. */
    au_vslot *tab;
    uint32_t tab_cap, stamp;

    /* Pages the last sample used (au_view_begin's prefetch list), and the
     * batch being built. */
    uint64_t *prev;
    uint32_t nprev, prev_cap;
    uint64_t *merge; /* sort_prev's buffer */
    uint32_t merge_cap;
    uint32_t *pending;
    au_read *reads;
    uint32_t pending_cap, reads_cap;
};

static int view_grow(au_view *v, void *pptr, uint32_t *cap, size_t need, size_t elem) {
    return au_grow(&v->alloc, &v->stats.allocations, (void **)pptr, cap, need, elem);
}

static uint32_t slot_of(const au_view *v, uint64_t pn) {
    uint32_t mask = v->tab_cap - 1, i = (uint32_t)au_mix64(pn) & mask;
    while (v->tab[i].stamp == v->stamp && v->tab[i].key != pn) i = (i + 1) & mask;
    return i;
}

/* The page table's answer for pn, remembered in the TLB; find's slow
 * path, kept out of line so that the TLB hit inlines into every reader. */
static AU_NOINLINE uint32_t find_probe(au_view *v, uint64_t pn) {
    uint32_t k = (uint32_t)pn & v->tlb_mask;
    uint32_t i = slot_of(v, pn);
    if (v->tab[i].stamp != v->stamp) return NONE;
    v->tlb[k].pn = pn;
    v->tlb[k].idx = v->tab[i].val;
    v->tlb[k].gen = v->tlb_gen;
    return v->tab[i].val;
}

/* The index of page pn, or NONE. */
static inline uint32_t find(au_view *v, uint64_t pn) {
    uint32_t k = (uint32_t)pn & v->tlb_mask;
    if (v->tlb[k].gen == v->tlb_gen && v->tlb[k].pn == pn) return v->tlb[k].idx;
    return find_probe(v, pn);
}

/* Whether every page of [addr, addr+len) is one the TLB knows this sample
 * (fetched, failed or refused: a read of it needs no fetch). */
static inline int tlb_knows(const au_view *v, uint64_t addr, uint32_t len) {
    for (uint64_t pn = addr / PAGE, last = (addr + len - 1) / PAGE; pn <= last; pn++) {
        uint32_t k = (uint32_t)pn & v->tlb_mask;
        if (v->tlb[k].gen != v->tlb_gen || v->tlb[k].pn != pn) return 0;
    }
    return 1;
}

/* Keep the table at most half full for n pages: rebuilt from the page
 * array when it grows. */
static int view_table_fit(au_view *v, uint32_t n) {
    if ((uint64_t)n * 2 <= v->tab_cap) return AU_OK;
    uint32_t cap = v->tab_cap ? v->tab_cap : 1024;
    while ((uint64_t)cap < (uint64_t)n * 2) cap *= 2;
    void *mem = v->alloc.realloc(v->alloc.ud, NULL, 0, (size_t)cap * sizeof *v->tab);
    if (!mem) return AU_ERR_NOMEM;
    v->stats.allocations++;
    AU_FREE_ARRAY(&v->alloc, v->tab, v->tab_cap);
    v->tab = mem;
    memset(v->tab, 0, (size_t)cap * sizeof *v->tab);
    v->tab_cap = cap;
    v->stamp = 1;
    for (uint32_t i = 0; i < v->npages; i++) {
        uint32_t s = slot_of(v, v->pageno[i]);
        v->tab[s] = (au_vslot){v->pageno[i], i, v->stamp};
    }
    return AU_OK;
}

/* The TLB at eight places a page for n pages, within TLB_MIN..TLB_MAX.
 * A new TLB knows nothing (its gens are 0; a sample's is at least 1). */
static int tlb_fit(au_view *v, size_t n) {
    uint32_t places = v->tlb ? v->tlb_mask + 1 : 0, want = TLB_MIN;
    while (want < TLB_MAX && want < 8 * n) want *= 2;
    if (want <= places) return AU_OK;
    au_vtlb *t = v->alloc.realloc(v->alloc.ud, NULL, 0, (size_t)want * sizeof *t);
    if (!t) return AU_ERR_NOMEM;
    v->stats.allocations++;
    memset(t, 0, (size_t)want * sizeof *t);
    if (v->tlb) v->alloc.realloc(v->alloc.ud, v->tlb, (size_t)places * sizeof *t, 0);
    v->tlb = t;
    v->tlb_mask = want - 1;
    return AU_OK;
}

/* Make room for `more` pages beyond npages.  The arrays a sample's
 * prefetch needs (its list, the batch, its reads, the TLB) grow with the
 * pages of the sample before it, so the sample after a warm-up allocates
 * nothing. */
static int room_for(au_view *v, uint32_t more) {
    size_t need = (size_t)v->npages + more;
    uint32_t data_pages = v->data_cap;
    if (view_grow(v, &v->pageno, &v->pageno_cap, need, sizeof *v->pageno) ||
        view_grow(v, &v->flags, &v->flags_cap, need, sizeof *v->flags) ||
        view_grow(v, &v->data, &data_pages, need, PAGE) || view_table_fit(v, (uint32_t)need) ||
        view_grow(v, &v->prev, &v->prev_cap, need, sizeof *v->prev) ||
        view_grow(v, &v->merge, &v->merge_cap, need, sizeof *v->merge) ||
        view_grow(v, &v->pending, &v->pending_cap, need, sizeof *v->pending) ||
        view_grow(v, &v->reads, &v->reads_cap, need, sizeof *v->reads) || tlb_fit(v, need))
        return AU_ERR_NOMEM;
    if (data_pages != v->data_cap) v->moves++; /* grown: it may have moved */
    v->data_cap = data_pages;
    return AU_OK;
}

/* Queue page pn for fetching unless it is known.  Returns AU_OK, or
 * AU_ERR_LIMIT when the sample is at max_pages. */
static int queue(au_view *v, uint64_t pn, uint32_t *npending) {
    /* A warm sample asks mostly for pages it has: the TLB knows them. */
    uint32_t k = (uint32_t)pn & v->tlb_mask;
    if (v->tlb[k].gen == v->tlb_gen && v->tlb[k].pn == pn) return AU_OK;
    uint32_t s = slot_of(v, pn);
    /* Known or queued now, the reads that follow find it in the TLB. */
    if (v->tab[s].stamp == v->stamp) {
        v->tlb[k].pn = pn;
        v->tlb[k].idx = v->tab[s].val;
        v->tlb[k].gen = v->tlb_gen;
        return AU_OK;
    }
    if (v->npages == v->max_pages) {
        v->stats.limited++;
        return AU_ERR_LIMIT;
    }
    uint32_t i = v->npages++;
    v->pageno[i] = pn;
    v->flags[i] = 0;
    v->tab[s] = (au_vslot){pn, i, v->stamp};
    v->tlb[k].pn = pn;
    v->tlb[k].idx = i;
    v->tlb[k].gen = v->tlb_gen;
    v->pending[(*npending)++] = i;
    return AU_OK;
}

static int valid_range(uint64_t addr, uint32_t len) {
    return len <= MAX_RANGE && addr >= PAGE && addr + len >= addr && len > 0;
}

/* Pages a range spans (valid ranges only). */
static uint32_t span(uint64_t addr, uint32_t len) {
    return (uint32_t)((addr + len - 1) / PAGE - addr / PAGE + 1);
}

static int fetch(au_view *v, uint32_t npending, uint8_t extra_flag) {
    if (npending == 0) return AU_OK;
    if (view_grow(v, &v->reads, &v->reads_cap, npending, sizeof *v->reads)) return AU_ERR_NOMEM;
    for (uint32_t k = 0; k < npending; k++) {
        uint32_t i = v->pending[k];
        v->reads[k] = (au_read){v->pageno[i] * PAGE, v->data + (size_t)i * PAGE, PAGE, AU_OK};
    }
    v->stats.batches++;
    v->src->read(v->src, v->reads, npending);
    for (uint32_t k = 0; k < npending; k++) {
        uint32_t i = v->pending[k];
        if (v->reads[k].status == AU_OK) {
            v->flags[i] = (uint8_t)(PG_OK | extra_flag);
            v->stats.fetched++;
            if (extra_flag) v->stats.prefetched++;
        } else {
            v->flags[i] = PG_FAILED;
            v->stats.failed++;
        }
    }
    return AU_OK;
}

int au_view_want(au_view *v, const au_range *ranges, uint32_t n) {
    if (!v || (!ranges && n)) return AU_ERR_ARG;
    if (v->exact) return AU_OK;
    /* A warm sample asks mostly for objects on pages it has (its prefetch
     * fetched them): TLB compares answer those, and only the other ranges
     * are counted and queued (not, as before, every range after the first
     * one the TLB did not know).  A page the TLB does not know may still be
     * in the table: queue finds it there.  Every page not in the table is
     * in a range the TLB does not know, so the count covers the pages
     * the second pass can add, even if queueing evicts TLB entries. */
    uint64_t total = 0;
    for (uint32_t k = 0; k < n; k++)
        if (valid_range(ranges[k].addr, ranges[k].len) && !tlb_knows(v, ranges[k].addr, ranges[k].len))
            total += span(ranges[k].addr, ranges[k].len);
    if (total == 0) return AU_OK;
    if (total > v->max_pages - v->npages) total = v->max_pages - v->npages;
    if (room_for(v, (uint32_t)total) ||
        view_grow(v, &v->pending, &v->pending_cap, total ? total : 1, sizeof *v->pending))
        return AU_ERR_NOMEM;
    uint32_t npending = 0;
    int rc = AU_OK;
    for (uint32_t k = 0; k < n; k++) {
        if (!valid_range(ranges[k].addr, ranges[k].len) || tlb_knows(v, ranges[k].addr, ranges[k].len))
            continue;
        uint64_t first = ranges[k].addr / PAGE, last = (ranges[k].addr + ranges[k].len - 1) / PAGE;
        for (uint64_t pn = first; pn <= last; pn++)
            if (queue(v, pn, &npending) != AU_OK) rc = AU_ERR_LIMIT;
    }
    int frc = fetch(v, npending, 0);
    return frc ? frc : rc;
}

/* Page index i served a read: counted once, and kept for the next
 * sample's prefetch unless the read was transient. */
static inline void mark_used(au_view *v, uint32_t i) {
    if (!(v->flags[i] & PG_USED)) v->stats.used++;
    v->flags[i] |= v->transient ? PG_USED : PG_USED | PG_KEEP;
}

/* The status of reading [addr, addr+len) from fetched pages, marking them
 * used: AU_OK, AU_ERR_READ (a page failed), or MISSING. */
static int check_pages(au_view *v, uint64_t addr, uint32_t len) {
    uint64_t first = addr / PAGE, last = (addr + len - 1) / PAGE;
    for (uint64_t pn = first; pn <= last; pn++) {
        uint32_t i = find(v, pn);
        if (i == NONE) return MISSING;
        if (v->flags[i] & PG_FAILED) return AU_ERR_READ;
        if (!(v->flags[i] & PG_OK)) return MISSING; /* refused by the limit */
    }
    for (uint64_t pn = first; pn <= last; pn++) mark_used(v, find(v, pn));
    return AU_OK;
}

/* au_view_read's slow path: a read over several pages, of a page not
 * fetched yet, or in exact mode.  Out of line, so that the fast path keeps
 * few registers to save. */
static AU_NOINLINE int read_slow(au_view *v, uint64_t addr, void *out, uint32_t len) {
    if (!valid_range(addr, len)) return AU_ERR_READ;
    if (v->exact) {
        v->stats.batches++;
        int erc = au_mem_read1(v->src, addr, out, len);
        return erc == AU_ERR_NOMEM ? erc : erc ? AU_ERR_READ : AU_OK;
    }
    int rc = check_pages(v, addr, len);
    if (rc == MISSING) {
        au_range r = {addr, len};
        int wrc = au_view_want(v, &r, 1);
        if (wrc == AU_ERR_NOMEM) return wrc;
        rc = check_pages(v, addr, len);
        if (rc == MISSING) return wrc == AU_ERR_LIMIT ? AU_ERR_LIMIT : AU_ERR_READ;
    }
    if (rc != AU_OK) return rc;
    uint8_t *o = out;
    while (len) {
        uint32_t i = find(v, addr / PAGE), off = (uint32_t)(addr % PAGE);
        uint32_t n = PAGE - off < len ? PAGE - off : len;
        memcpy(o, v->data + (size_t)i * PAGE + off, n);
        o += n;
        addr += n;
        len -= n;
    }
    return AU_OK;
}

/* The bytes of page index i at offset off, marked used: the fast path of
 * au_view_read and au_view_bytes. */
static inline const uint8_t *use_page(au_view *v, uint32_t i, uint32_t off) {
    mark_used(v, i);
    return v->data + (size_t)i * PAGE + off;
}

int au_view_read(au_view *v, uint64_t addr, void *out, uint32_t len) {
    if (!v || (!out && len)) return AU_ERR_ARG;
    if (len == 0) return AU_OK;
    /* The usual read: a few bytes of one page already fetched (in exact
     * mode no page is ever fetched, and an invalid range is no page's). */
    uint64_t pn = addr / PAGE;
    if ((addr + len - 1) / PAGE == pn && addr >= PAGE && !v->exact) {
        uint32_t i = find(v, pn);
        if (i != NONE && (v->flags[i] & PG_OK)) {
            const uint8_t *src = use_page(v, i, (uint32_t)(addr % PAGE));
            /* Most reads are one pointer: a fixed-size copy is inlined. */
            if (len == 8) memcpy(out, src, 8);
            else memcpy(out, src, len);
            return AU_OK;
        }
    }
    return read_slow(v, addr, out, len);
}

const uint8_t *au_view_bytes(au_view *v, uint64_t addr, uint32_t len, uint8_t *scratch) {
    if (!v || len == 0) return NULL;
    if (v->exact) {
        /* One read of the whole span, not one per field the caller then
         * decodes: a 1,000-task sample makes some 13,200 reads instead
         * of 28,000.  The snapshot holds the span; a replay whose span
         * reaches past what was recorded (a snapshot recorded field by
         * field, or by a version with shorter spans) fails it, and the
         * caller reads the fields, which lie inside what was recorded.
         * (read_slow's exact branch, inlined here: going through it cost
         * a replayed 1,000-task sample 5 % more instructions, 7.01
         * against 6.64 million.) */
        if (!valid_range(addr, len)) return NULL;
        v->stats.batches++;
        return au_mem_read1(v->src, addr, scratch, len) == AU_OK ? scratch : NULL;
    }
    /* The usual look: bytes on one page already fetched.  Such a range is
     * valid without valid_range's checks: it cannot wrap (its last byte
     * would be on a low page), is shorter than a page, and page 0 is never
     * fetched. */
    if ((addr + len - 1) / PAGE == addr / PAGE) {
        uint32_t i = find(v, addr / PAGE);
        if (i != NONE && (v->flags[i] & PG_OK)) return use_page(v, i, (uint32_t)(addr % PAGE));
    }
    if (!valid_range(addr, len)) return NULL;
    return read_slow(v, addr, scratch, len) == AU_OK ? scratch : NULL;
}

const uint8_t *au_view_peek(au_view *v, uint64_t addr, uint32_t len) {
    if (!v || v->exact || len == 0 || !valid_range(addr, len) || span(addr, len) != 1) return NULL;
    if (check_pages(v, addr, len) != AU_OK) return NULL;
    return v->data + (size_t)find(v, addr / PAGE) * PAGE + addr % PAGE;
}

uint32_t au_view_moves(const au_view *v) { return v ? v->moves : 0; }

void au_view_prefetch(au_view *v, uint64_t addr, uint32_t len) {
    if (!v || v->exact || !valid_range(addr, len)) return;
    uint32_t i = find(v, addr / PAGE);
    if (i == NONE || !(v->flags[i] & PG_OK)) return;
    uint32_t off = (uint32_t)(addr % PAGE), end = off + (len < 512 ? len : 512);
    if (end > PAGE) end = PAGE;
    const uint8_t *base = v->data + (size_t)i * PAGE;
    for (uint32_t at = off & ~63u; at < end; at += 64) AU_PREFETCH(base + at);
}

/* Sort v->prev.  The pages of a sample are numbered in fetch order, and
 * a warm sample fetches its prefetch first, itself sorted: so the list is
 * a sorted run followed by the few pages the sample added.  Only those
 * are sorted, then merged in (a heapsort of the whole list was some 5% of
 * a 1,000-task sample). */
static int sort_prev(au_view *v) {
    uint32_t n = v->nprev, run = n ? 1 : 0;
    while (run < n && v->prev[run - 1] < v->prev[run]) run++;
    if (run == n) return AU_OK;
    if (view_grow(v, &v->merge, &v->merge_cap, n, sizeof *v->merge)) return AU_ERR_NOMEM;
    au_sort(v->prev + run, n - run, sizeof *v->prev, au_cmp_u64);
    uint32_t a = 0, b = run, k = 0;
    while (a < run && b < n) v->merge[k++] = v->prev[a] <= v->prev[b] ? v->prev[a++] : v->prev[b++];
    while (a < run) v->merge[k++] = v->prev[a++];
    while (b < n) v->merge[k++] = v->prev[b++];
    uint64_t *t = v->prev;
    uint32_t tc = v->prev_cap;
    v->prev = v->merge;
    v->prev_cap = v->merge_cap;
    v->merge = t;
    v->merge_cap = tc;
    return AU_OK;
}

int au_view_begin(au_view *v, int prefetch) {
    if (!v) return AU_ERR_ARG;
    memset(&v->stats, 0, sizeof v->stats);
    /* Remember what the ending sample used (beyond one-off searches), then
     * forget it. */
    uint32_t used = 0;
    for (uint32_t i = 0; i < v->npages; i++) used += (v->flags[i] & PG_KEEP) != 0;
    if (view_grow(v, &v->prev, &v->prev_cap, used ? used : 1, sizeof *v->prev)) return AU_ERR_NOMEM;
    v->nprev = 0;
    for (uint32_t i = 0; i < v->npages; i++)
        if (v->flags[i] & PG_KEEP) v->prev[v->nprev++] = v->pageno[i];
    /* In address order, the prefetch reaches the memory source sorted:
     * its own sort then takes one pass, and neighbours coalesce. */
    if (sort_prev(v)) return AU_ERR_NOMEM;
    v->npages = 0;
    if (++v->tlb_gen == 0) {
        memset(v->tlb, 0, (size_t)(v->tlb_mask + 1) * sizeof *v->tlb);
        v->tlb_gen = 1;
    }
    if (++v->stamp == 0) { /* wrapped: clear the stamps once */
        for (uint32_t k = 0; k < v->tab_cap; k++) v->tab[k].stamp = 0;
        v->stamp = 1;
    }
    if (!prefetch || v->nprev == 0) return AU_OK;
    uint32_t n = v->nprev < v->max_pages ? v->nprev : v->max_pages;
    if (room_for(v, n) || view_grow(v, &v->pending, &v->pending_cap, n, sizeof *v->pending))
        return AU_ERR_NOMEM;
    uint32_t npending = 0, mask = v->tab_cap - 1;
    for (uint32_t k = 0; k < n; k++) {
        /* The table is cold here (the last sample's pages went through the
         * cache since): its slots are hinted a few pages ahead. */
        if (k + 8 < n) AU_PREFETCH(&v->tab[(uint32_t)au_mix64(v->prev[k + 8]) & mask]);
        queue(v, v->prev[k], &npending);
    }
    return fetch(v, npending, PG_PREFETCH);
}

int au_view_set_transient(au_view *v, int on) {
    if (!v) return 0;
    int was = v->transient;
    v->transient = on != 0;
    return was;
}

void au_view_set_exact(au_view *v, int exact) {
    if (v) v->exact = exact != 0;
}

void au_view_get_stats(const au_view *v, au_view_stats *out) {
    if (!out) return;
    /* A NULL context has all-zero counters: the caller reads them either
     * way (and gcc, inlining across the amalgamation, checks that). */
    if (v)
        *out = v->stats;
    else
        memset(out, 0, sizeof *out);
}

int au_view_new(const au_allocator *alloc, au_memsrc *src, uint32_t max_pages, au_view **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (!src) return AU_ERR_ARG;
    au_allocator a;
    au_view *v = au_alloc_zeroed(alloc, sizeof *v, &a);
    if (!v) return AU_ERR_NOMEM;
    v->alloc = a;
    v->src = src;
    v->max_pages = max_pages ? max_pages : AU_VIEW_DEFAULT_MAX_PAGES;
    if (v->max_pages > AU_VIEW_MAX_PAGES) v->max_pages = AU_VIEW_MAX_PAGES;
    if (view_table_fit(v, 1) || tlb_fit(v, 1)) {
        au_view_free(v);
        return AU_ERR_NOMEM;
    }
    *out = v;
    return AU_OK;
}

void au_view_free(au_view *v) {
    if (!v) return;
    au_allocator a = v->alloc;
    au_free_array(&a, v->data, v->data_cap, PAGE);
    AU_FREE_ARRAY(&a, v->pageno, v->pageno_cap);
    AU_FREE_ARRAY(&a, v->flags, v->flags_cap);
    AU_FREE_ARRAY(&a, v->tab, v->tab_cap);
    AU_FREE_ARRAY(&a, v->prev, v->prev_cap);
    AU_FREE_ARRAY(&a, v->merge, v->merge_cap);
    AU_FREE_ARRAY(&a, v->pending, v->pending_cap);
    AU_FREE_ARRAY(&a, v->reads, v->reads_cap);
    AU_FREE_ARRAY(&a, v->tlb, (size_t)v->tlb_mask + 1);
    a.realloc(a.ud, v, sizeof *v, 0);
}
