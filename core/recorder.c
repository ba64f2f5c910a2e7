/*
 * The recorder: a memory source that forwards every read to another source
 * and keeps what came back, then writes it out as a snapshot.
 *
 * Reads are kept in arrival order.  At write time the successful ones are
 * merged into disjoint regions; where two reads of one sample overlap and
 * disagree (the target changed between them), the first read's bytes win.
 * The sampler reads an address at most once per sample, so in practice
 * nothing disagrees and a replay sees exactly what the live sample saw.
 * Failed reads are written too, so that a replay fails where live failed.
 *
 * Recording is not the sampling hot path: it may allocate freely.
 */
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "internal.h"
#include "snapshot_format.h"

typedef struct entry {
    uint64_t addr;
    uint64_t data_off; /* into data; unused for failures */
    uint32_t len;
    uint32_t ok;
    uint32_t seq;
} entry;

typedef struct recorder {
    au_memsrc base;
    au_allocator alloc;
    au_memsrc *inner;
    entry *entries;
    uint8_t *data;
    uint32_t nentries, entries_cap;
    uint64_t data_len, data_cap;
    int err; /* sticky: a failed allocation makes the recording unusable */
} recorder;

static int keep(recorder *r, const au_read *rd) {
    if (au_grow(&r->alloc, NULL, (void **)&r->entries, &r->entries_cap, (size_t)r->nentries + 1,
                sizeof *r->entries))
        return AU_ERR_NOMEM;
    entry *e = &r->entries[r->nentries];
    *e = (entry){rd->addr, 0, rd->len, rd->status == AU_OK, r->nentries};
    if (e->ok) {
        uint64_t need = r->data_len + rd->len;
        if (need > r->data_cap) {
            uint64_t ncap = r->data_cap * 2 > need ? r->data_cap * 2 : need;
            if (ncap > SIZE_MAX) return AU_ERR_NOMEM;
            uint8_t *p = r->alloc.realloc(r->alloc.ud, r->data, (size_t)r->data_cap, (size_t)ncap);
            if (!p) return AU_ERR_NOMEM;
            r->data = p;
            r->data_cap = ncap;
        }
        e->data_off = r->data_len;
        memcpy(r->data + r->data_len, rd->buf, rd->len);
        r->data_len = need;
    }
    r->nentries++;
    return AU_OK;
}

static int rec_read(au_memsrc *self, au_read *reads, uint32_t n) {
    recorder *r = (recorder *)self;
    int rc = r->inner->read(r->inner, reads, n);
    r->base.stats = r->inner->stats;
    for (uint32_t i = 0; i < n && !r->err; i++)
        if (reads[i].len) r->err = keep(r, &reads[i]);
    return rc;
}

static void rec_destroy(au_memsrc *self) {
    recorder *r = (recorder *)self;
    au_allocator a = r->alloc;
    if (r->entries) a.realloc(a.ud, r->entries, (size_t)r->entries_cap * sizeof *r->entries, 0);
    if (r->data) a.realloc(a.ud, r->data, (size_t)r->data_cap, 0);
    a.realloc(a.ud, r, sizeof *r, 0);
}

int au_recorder_open(const au_allocator *alloc, au_memsrc *inner, au_memsrc **out) {
    if (!inner || !out) return AU_ERR_ARG;
    au_allocator a = au_alloc_or_libc(alloc);
    recorder *r = a.realloc(a.ud, NULL, 0, sizeof *r);
    if (!r) return AU_ERR_NOMEM;
    memset(r, 0, sizeof *r);
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

static void le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v) {
    le32(p, (uint32_t)v);
    le32(p + 4, (uint32_t)(v >> 32));
}

/* A record whose payload is head (hlen bytes) followed by body. */
static void record(writer *w, uint32_t type, const void *head, uint32_t hlen, const void *body,
                   uint32_t blen) {
    static const uint8_t zeros[8] = {0};
    uint8_t h[8];
    le32(h, type);
    le32(h + 4, hlen + blen);
    put(w, h, 8);
    put(w, head, hlen);
    put(w, body, blen);
    put(w, zeros, (8 - (hlen + blen) % 8) % 8);
}

/* Successful reads first, then failures; each part by address, length,
 * and arrival. */
static int by_ok_addr(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->ok != y->ok) return x->ok ? -1 : 1;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_seq_desc(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* Write the merged region made of the successful entries e[0..n): fill a
 * buffer with the latest reads first so the earliest read's bytes win. */
static int write_region(recorder *r, writer *w, entry *e, uint32_t n, uint64_t start,
                        uint64_t end) {
    size_t len = (size_t)(end - start);
    uint8_t *buf = r->alloc.realloc(r->alloc.ud, NULL, 0, len);
    if (!buf) return AU_ERR_NOMEM;
    qsort(e, n, sizeof *e, by_seq_desc);
    for (uint32_t i = 0; i < n; i++) memcpy(buf + (e[i].addr - start), r->data + e[i].data_off, e[i].len);
    /* Records are capped in size; adjacent chunks replay as one region. */
    for (size_t off = 0; off < len; off += AU_SNAP_MAX_REGION) {
        uint32_t chunk = (uint32_t)(len - off < AU_SNAP_MAX_REGION ? len - off : AU_SNAP_MAX_REGION);
        uint8_t head[8];
        le64(head, start + off);
        record(w, AU_SNAP_REGION, head, 8, buf + off, chunk);
    }
    r->alloc.realloc(r->alloc.ud, buf, len, 0);
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
    le32(head + 8, AU_SNAP_VERSION);
    le32(head + 12, AU_SNAP_HEADER_SIZE);
    put(&w, head, sizeof head);
    uint8_t m[AU_SNAP_META_SIZE];
    le32(m, meta->pid);
    le32(m + 4, meta->py_version_hex);
    le64(m + 8, meta->runtime_addr);
    le64(m + 16, meta->time_ns);
    record(&w, AU_SNAP_META, m, sizeof m, NULL, 0);
    uint32_t nthreads = meta->nthreads < AU_SNAP_MAX_THREADS ? meta->nthreads : AU_SNAP_MAX_THREADS;
    for (uint32_t i = 0; i < nthreads; i++) {
        const au_snapshot_thread *t = &meta->threads[i];
        uint8_t id[8];
        le64(id, t->native_id);
        uint32_t nl = t->name_len < AU_SNAP_MAX_NAME ? t->name_len : AU_SNAP_MAX_NAME;
        record(&w, AU_SNAP_THREAD, id, 8, t->name, nl);
    }

    qsort(r->entries, r->nentries, sizeof *r->entries, by_ok_addr);
    uint32_t i = 0;
    while (i < r->nentries && r->entries[i].ok && w.rc == AU_OK) {
        /* A region: this read and every following one that overlaps or
         * touches what is gathered so far. */
        uint64_t start = r->entries[i].addr, end = start + r->entries[i].len;
        uint32_t k = i + 1;
        for (; k < r->nentries && r->entries[k].ok && r->entries[k].addr <= end; k++) {
            uint64_t e = r->entries[k].addr + r->entries[k].len;
            if (e > end) end = e;
        }
        int rc = write_region(r, &w, &r->entries[i], k - i, start, end);
        if (rc) return rc;
        i = k;
    }
    for (uint32_t first = i; i < r->nentries && w.rc == AU_OK; i++) {
        const entry *e = &r->entries[i];
        if (i > first && e->addr == e[-1].addr && e->len == e[-1].len) continue;
        uint8_t f[16];
        le64(f, e->addr);
        le64(f + 8, e->len);
        record(&w, AU_SNAP_FAILED, f, 16, NULL, 0);
    }
    record(&w, AU_SNAP_END, NULL, 0, NULL, 0);
    return w.rc;
}
