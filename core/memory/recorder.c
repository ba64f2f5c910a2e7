/*
 * The recorder: a memory source that forwards every read to another source
 * and keeps what came back, then writes it out as a snapshot.
 *
 * A recording is one consistent view of the target's memory, so that a
 * replay gives exactly what the live sample gave.  The target keeps
 * running while it is read: a frame's bytes can change between two reads
 * of one sample, and a freed thread's memory can be unmapped or reused
 * (python_fixtures/spawner.py does both all the time).  So:
 *   - each byte keeps the value of its first successful read: a later read
 *     covering it gets that value, whatever the target holds by then;
 *   - a read that failed fails again when repeated (same address and
 *     length), even if the memory has appeared since;
 *   - a failed read whose bytes were all read before is served from them;
 *   - an empty read succeeds, whatever the wrapped source said.
 * That is exactly what a replay of the written snapshot does (regions of
 * first-read bytes; failures matched by address and length, checked
 * first), so replay equals live by construction, not by luck.  A recorder
 * is meant for one sample: across samples it would freeze the target.
 *
 * Bytes are kept per 4 KiB page with a bit per byte saying whether it was
 * read, found through a hash table: each read costs time linear in its
 * length whatever the order and overlap of the reads, and at write time
 * the pages, sorted, give the disjoint regions directly.
 *
 * Recording is not the sampling hot path: it may allocate freely.
 */
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "au_bytes.h"
#include "au_internal.h"
#include "au_snapshot_format.h"

#define RPAGE 4096u
#define RPAGE_SHIFT 12

typedef struct rpage {
    uint64_t pageno;
    uint64_t valid[RPAGE / 64]; /* bit i set: byte i was read */
    uint8_t data[RPAGE];
} rpage;

typedef struct rfail {
    uint64_t addr, len;
} rfail;

/* Open addressing over an array's indices: a slot holds index + 1, 0 is
 * empty; at most half full, so every probe ends. */
typedef struct itab {
    uint32_t *slot;
    uint32_t cap; /* 0 or a power of two */
} itab;

typedef struct recorder {
    au_memsrc base;
    au_allocator alloc;
    au_memsrc *inner;
    rpage *pages;
    rfail *fails;
    uint32_t npages, pages_cap, nfails, fails_cap;
    itab page_tab, fail_tab;
    int err; /* sticky: a failed allocation makes the recording unusable */
} recorder;

static uint64_t page_key(uint64_t pageno) { return au_mix64(pageno); }
static uint64_t fail_key(uint64_t addr, uint64_t len) { return au_mix64(addr ^ au_mix64(len)); }
static uint64_t page_hash(const recorder *r, uint32_t i) { return page_key(r->pages[i].pageno); }
static uint64_t fail_hash(const recorder *r, uint32_t i) {
    return fail_key(r->fails[i].addr, r->fails[i].len);
}

static void tab_put(uint32_t *slot, uint32_t cap, uint64_t h, uint32_t idx) {
    uint32_t j = (uint32_t)h & (cap - 1);
    while (slot[j]) j = (j + 1) & (cap - 1);
    slot[j] = idx + 1;
}

/* Make room in t for n entries, rebuilding it larger when needed. */
static int tab_fit(recorder *r, itab *t, uint32_t n,
                   uint64_t (*hash)(const recorder *, uint32_t)) {
    if ((uint64_t)n * 2 <= t->cap) return AU_OK;
    uint64_t cap = t->cap ? (uint64_t)t->cap * 2 : 64;
    while (cap < (uint64_t)n * 2) cap *= 2;
    if (cap > (1ull << 31)) return AU_ERR_NOMEM;
    uint32_t *slot = r->alloc.realloc(r->alloc.ud, NULL, 0, (size_t)cap * sizeof *slot);
    if (!slot) return AU_ERR_NOMEM;
    memset(slot, 0, (size_t)cap * sizeof *slot);
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slot[i]) tab_put(slot, (uint32_t)cap, hash(r, t->slot[i] - 1), t->slot[i] - 1);
    AU_FREE_ARRAY(&r->alloc, t->slot, t->cap);
    t->slot = slot;
    t->cap = (uint32_t)cap;
    return AU_OK;
}

static rpage *find_page(recorder *r, uint64_t pageno) {
    const itab *t = &r->page_tab;
    if (!t->cap) return NULL;
    for (uint32_t j = (uint32_t)page_key(pageno) & (t->cap - 1); t->slot[j];
         j = (j + 1) & (t->cap - 1))
        if (r->pages[t->slot[j] - 1].pageno == pageno) return &r->pages[t->slot[j] - 1];
    return NULL;
}

/* The page, added with nothing read if it is new.  Pointers into pages are
 * invalidated by the next call. */
static rpage *get_page(recorder *r, uint64_t pageno) {
    rpage *p = find_page(r, pageno);
    if (p) return p;
    if (tab_fit(r, &r->page_tab, r->npages + 1, page_hash) ||
        au_grow(&r->alloc, NULL, (void **)&r->pages, &r->pages_cap, (size_t)r->npages + 1,
                sizeof *r->pages))
        return NULL;
    p = &r->pages[r->npages];
    p->pageno = pageno;
    memset(p->valid, 0, sizeof p->valid);
    tab_put(r->page_tab.slot, r->page_tab.cap, page_key(pageno), r->npages++);
    return p;
}

static int has_fail(const recorder *r, uint64_t addr, uint64_t len) {
    const itab *t = &r->fail_tab;
    if (!t->cap) return 0;
    for (uint32_t j = (uint32_t)fail_key(addr, len) & (t->cap - 1); t->slot[j];
         j = (j + 1) & (t->cap - 1)) {
        const rfail *f = &r->fails[t->slot[j] - 1];
        if (f->addr == addr && f->len == len) return 1;
    }
    return 0;
}

static int add_fail(recorder *r, uint64_t addr, uint64_t len) {
    if (tab_fit(r, &r->fail_tab, r->nfails + 1, fail_hash) ||
        au_grow(&r->alloc, NULL, (void **)&r->fails, &r->fails_cap, (size_t)r->nfails + 1,
                sizeof *r->fails))
        return AU_ERR_NOMEM;
    r->fails[r->nfails] = (rfail){addr, len};
    tab_put(r->fail_tab.slot, r->fail_tab.cap, fail_key(addr, len), r->nfails++);
    return AU_OK;
}

/* The bits of bytes [i, i + n) of one 64-byte group (i % 64 + n <= 64). */
static uint64_t group_mask(uint32_t i, uint32_t n) {
    return (n == 64 ? ~0ull : (1ull << n) - 1) << (i & 63);
}

/* Bytes [off, off + n) of page p: those already read are copied into buf,
 * the others are taken from buf and marked read. */
static void merge(rpage *p, uint32_t off, uint8_t *buf, uint32_t n) {
    for (uint32_t i = off, end = off + n; i < end;) {
        uint32_t take = 64 - (i & 63);
        if (take > end - i) take = end - i;
        uint64_t mask = group_mask(i, take), had = p->valid[i >> 6] & mask;
        uint8_t *b = buf + (i - off);
        if (had == mask) {
            memcpy(b, p->data + i, take);
        } else if (!had) {
            memcpy(p->data + i, b, take);
        } else {
            for (uint32_t k = 0; k < take; k++) {
                if (had >> ((i + k) & 63) & 1) b[k] = p->data[i + k];
                else p->data[i + k] = b[k];
            }
        }
        p->valid[i >> 6] |= mask;
        i += take;
    }
}

static int covers(const rpage *p, uint32_t off, uint32_t n) {
    for (uint32_t i = off, end = off + n; i < end;) {
        uint32_t take = 64 - (i & 63);
        if (take > end - i) take = end - i;
        uint64_t mask = group_mask(i, take);
        if ((p->valid[i >> 6] & mask) != mask) return 0;
        i += take;
    }
    return 1;
}

/* The piece of [a, a + left) within a's page: its page number and offset
 * in the page; returns its length. */
static uint32_t piece(uint64_t a, uint64_t left, uint64_t *pageno, uint32_t *off) {
    *pageno = a >> RPAGE_SHIFT;
    *off = (uint32_t)(a & (RPAGE - 1));
    return left < RPAGE - *off ? (uint32_t)left : RPAGE - *off;
}

/* Make one read of a batch agree with everything recorded before it. */
static int settle(recorder *r, au_read *rd) {
    uint64_t addr = rd->addr, len = rd->len, pageno;
    uint8_t *buf = rd->buf;
    uint32_t off, n;
    if (!buf) return AU_OK; /* the source refused it as an argument error */
    if (has_fail(r, addr, len)) {
        rd->status = AU_ERR_READ;
        return AU_OK;
    }
    /* A snapshot cannot hold address 0 or a range that reaches the end of
     * the address space; no user-space read succeeds there anyway. */
    if (addr == 0 || addr + len < addr) {
        rd->status = AU_ERR_READ;
        return add_fail(r, addr, len);
    }
    if (rd->status == AU_OK) {
        for (uint64_t at = 0; at < len; at += n) {
            n = piece(addr + at, len - at, &pageno, &off);
            rpage *p = get_page(r, pageno);
            if (!p) return AU_ERR_NOMEM;
            merge(p, off, buf + at, n);
        }
        return AU_OK;
    }
    /* It failed now: serve it if every byte was read before, else it is a
     * failure for good (a failed read's buffer is unspecified, so what was
     * copied before a gap turned up does not matter). */
    for (uint64_t at = 0; at < len; at += n) {
        n = piece(addr + at, len - at, &pageno, &off);
        const rpage *p = find_page(r, pageno);
        if (!p || !covers(p, off, n)) return add_fail(r, addr, len);
        memcpy(buf + at, p->data + off, n);
    }
    rd->status = AU_OK;
    return AU_OK;
}

static int rec_read(au_memsrc *self, au_read *reads, uint32_t n) {
    recorder *r = (recorder *)self;
    int rc = r->inner->read(r->inner, reads, n);
    r->base.stats = r->inner->stats;
    if (r->err) return rc;
    rc = AU_OK;
    for (uint32_t i = 0; i < n; i++) {
        if (!reads[i].len) reads[i].status = AU_OK; /* as a replay says */
        else if (!r->err) r->err = settle(r, &reads[i]);
        if (rc == AU_OK) rc = reads[i].status;
    }
    return rc;
}

static void rec_destroy(au_memsrc *self) {
    recorder *r = (recorder *)self;
    au_allocator a = r->alloc;
    AU_FREE_ARRAY(&a, r->pages, r->pages_cap);
    AU_FREE_ARRAY(&a, r->fails, r->fails_cap);
    AU_FREE_ARRAY(&a, r->page_tab.slot, r->page_tab.cap);
    AU_FREE_ARRAY(&a, r->fail_tab.slot, r->fail_tab.cap);
    a.realloc(a.ud, r, sizeof *r, 0);
}

int au_recorder_open(const au_allocator *alloc, au_memsrc *inner, au_memsrc **out) {
    if (!out) return AU_ERR_ARG;
    *out = NULL;
    if (!inner) return AU_ERR_ARG;
    au_allocator a;
    recorder *r = au_alloc_zeroed(alloc, sizeof *r, &a);
    if (!r) return AU_ERR_NOMEM;
    r->base.read = rec_read;
    r->base.destroy = rec_destroy;
    r->alloc = a;
    r->inner = inner;
    *out = &r->base;
    return AU_OK;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct writer {
    int (*write)(void *ud, const void *buf, size_t len);
    void *ud;
    int rc;
} writer;

static void put(writer *w, const void *buf, size_t len) {
    if (w->rc == AU_OK && len && w->write(w->ud, buf, len) != 0) w->rc = AU_ERR_IO;
}


/* A record is its header, plen bytes of payload put by the caller, then
 * padding to 8 bytes. */
static void begin_record(writer *w, uint32_t type, uint32_t plen) {
    uint8_t h[8];
    au_wr32(h, type);
    au_wr32(h + 4, plen);
    put(w, h, 8);
}

static void end_record(writer *w, uint32_t plen) {
    static const uint8_t zeros[8] = {0};
    put(w, zeros, (8 - plen % 8) % 8);
}

static void record(writer *w, uint32_t type, const void *head, uint32_t hlen, const void *body,
                   uint32_t blen) {
    begin_record(w, type, hlen + blen);
    put(w, head, hlen);
    put(w, body, blen);
    end_record(w, hlen + blen);
}

typedef struct page_ref {
    uint64_t pageno;
    uint32_t idx;
} page_ref;

static int by_pageno(const void *a, const void *b) {
    const page_ref *x = a, *y = b;
    return x->pageno < y->pageno ? -1 : x->pageno > y->pageno;
}

static int by_addr_len(const void *a, const void *b) {
    const rfail *x = a, *y = b;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* How many bytes from i on, within the page, are read (want 1) or not. */
static uint32_t run_in_page(const rpage *p, uint32_t i, int want) {
    uint32_t n = 0;
    while (i + n < RPAGE) {
        uint32_t j = i + n;
        uint64_t g = p->valid[j >> 6];
        if (!(j & 63) && g == (want ? ~0ull : 0)) {
            n += 64;
        } else if ((int)(g >> (j & 63) & 1) == want) {
            n++;
        } else {
            break;
        }
    }
    return n;
}

/* Every run of read bytes, across pages that follow each other, as region
 * records of at most AU_SNAP_MAX_REGION bytes, in address order. */
static int write_regions(recorder *r, writer *w) {
    if (!r->npages) return AU_OK;
    page_ref *ord = r->alloc.realloc(r->alloc.ud, NULL, 0, (size_t)r->npages * sizeof *ord);
    if (!ord) return AU_ERR_NOMEM;
    for (uint32_t k = 0; k < r->npages; k++) ord[k] = (page_ref){r->pages[k].pageno, k};
    qsort(ord, r->npages, sizeof *ord, by_pageno);
    uint32_t k = 0, i = 0;
    while (k < r->npages && w->rc == AU_OK) {
        i += run_in_page(&r->pages[ord[k].idx], i, 0);
        if (i == RPAGE) {
            k++;
            i = 0;
            continue;
        }
        /* Measure the run from page k, byte i, then write it. */
        uint64_t len = 0;
        for (uint32_t kk = k, ii = i;;) {
            uint32_t s = run_in_page(&r->pages[ord[kk].idx], ii, 1);
            len += s;
            if (len >= AU_SNAP_MAX_REGION) {
                len = AU_SNAP_MAX_REGION;
                break;
            }
            if (ii + s < RPAGE || kk + 1 == r->npages || ord[kk + 1].pageno != ord[kk].pageno + 1)
                break;
            kk++;
            ii = 0;
        }
        uint8_t head[8];
        au_wr64(head, (ord[k].pageno << RPAGE_SHIFT) + i);
        begin_record(w, AU_SNAP_REGION, 8 + (uint32_t)len);
        put(w, head, 8);
        for (uint64_t left = len; left;) {
            uint32_t take = RPAGE - i;
            if (take > left) take = (uint32_t)left;
            put(w, r->pages[ord[k].idx].data + i, take);
            left -= take;
            i += take;
            if (i == RPAGE) {
                k++;
                i = 0;
            }
        }
        end_record(w, 8 + (uint32_t)len);
    }
    AU_FREE_ARRAY(&r->alloc, ord, r->npages);
    return AU_OK;
}

static int write_failures(recorder *r, writer *w) {
    if (!r->nfails) return AU_OK;
    rfail *f = r->alloc.realloc(r->alloc.ud, NULL, 0, (size_t)r->nfails * sizeof *f);
    if (!f) return AU_ERR_NOMEM;
    memcpy(f, r->fails, (size_t)r->nfails * sizeof *f);
    qsort(f, r->nfails, sizeof *f, by_addr_len);
    for (uint32_t i = 0; i < r->nfails; i++) {
        uint8_t b[16];
        au_wr64(b, f[i].addr);
        au_wr64(b + 8, f[i].len);
        record(w, AU_SNAP_FAILED, b, 16, NULL, 0);
    }
    AU_FREE_ARRAY(&r->alloc, f, r->nfails);
    return AU_OK;
}

int au_recorder_write(au_memsrc *self, const au_snapshot_meta *meta,
                      int (*write)(void *ud, const void *buf, size_t len), void *ud) {
    if (!self || self->read != rec_read || !meta || !write) return AU_ERR_ARG;
    recorder *r = (recorder *)self;
    if (r->err) return r->err;
    writer w = {write, ud, AU_OK};

    uint8_t head[AU_SNAP_HEADER_SIZE];
    memcpy(head, AU_SNAP_MAGIC, 8);
    au_wr32(head + 8, AU_SNAP_VERSION);
    au_wr32(head + 12, AU_SNAP_HEADER_SIZE);
    put(&w, head, sizeof head);
    uint8_t m[AU_SNAP_META_ASYNC_SIZE];
    au_wr32(m, meta->pid);
    au_wr32(m + 4, meta->py_version_hex);
    au_wr64(m + 8, meta->runtime_addr);
    au_wr64(m + 16, meta->time_ns);
    au_wr64(m + 24, meta->asyncio_debug_addr);
    au_wr64(m + 32, meta->agent_addr);
    record(&w, AU_SNAP_META, m, sizeof m, NULL, 0);
    uint32_t nthreads = meta->nthreads < AU_SNAP_MAX_THREADS ? meta->nthreads : AU_SNAP_MAX_THREADS;
    for (uint32_t i = 0; i < nthreads; i++) {
        const au_snapshot_thread *t = &meta->threads[i];
        uint8_t id[8];
        au_wr64(id, t->native_id);
        uint32_t nl = t->name_len < AU_SNAP_MAX_NAME ? t->name_len : AU_SNAP_MAX_NAME;
        record(&w, AU_SNAP_THREAD, id, 8, t->name, nl);
        if (t->pthread_id) {
            au_wr64(id, t->pthread_id);
            record(&w, AU_SNAP_PTHREAD, id, 8, NULL, 0);
        }
    }
    int rc = write_regions(r, &w);
    if (rc == AU_OK) rc = write_failures(r, &w);
    if (rc) return rc;
    record(&w, AU_SNAP_END, NULL, 0, NULL, 0);
    return w.rc;
}
