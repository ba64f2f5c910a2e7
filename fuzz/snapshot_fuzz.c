/*
 * Fuzz target `snapshot`: the snapshot parser (au_snapshot_parse) and the
 * snapshot memory source (au_memsrc_snapshot_open) over arbitrary bytes.
 * The input is a whole snapshot file (docs/SNAPSHOT.md).
 *
 * Every input is also parsed by a small, independent parser written here
 * from docs/SNAPSHOT.md (ref_parse below); it knows the regions, FAILED
 * records, threads and META by their offsets in the raw bytes.
 *
 * Checked on every input:
 *   accept   the core accepts the file iff the reference does, and on
 *            refusal both give the same status (FORMAT, UNSUPPORTED or
 *            LIMIT: the first error in file order);
 *   nomem    the same parse with an allocator that fails its k-th call
 *            (k from the input) gives the same result or AU_ERR_NOMEM,
 *            and leaks nothing either way;
 *   meta     pid, py_version_hex, runtime_addr, time_ns and the thread
 *            list equal the reference's; every thread name points into
 *            the input buffer, exactly at the name bytes of its record,
 *            and is at most 256 bytes;
 *   reads    ~40 reads through the memory source (single and batched),
 *            chosen from the input: inside regions, whole regions,
 *            straddling region starts and ends (touching neighbours or
 *            gaps), spanning several regions, at FAILED addresses (exact
 *            and off by one), huge lengths (up to 4 GiB - 1, into an
 *            address-space reservation), wrap-around at the top of the
 *            address space, address 0, zero lengths, a NULL buffer.
 *            Expected result from a naive byte-wise lookup over the
 *            reference's regions: a read succeeds iff it does not wrap,
 *            is not exactly a FAILED (address, length), and every byte
 *            lies in a region; then the buffer holds exactly those bytes.
 *            A failed read has status AU_ERR_READ; a NULL buffer with a
 *            non-zero length is refused (AU_ERR_ARG or AU_ERR_READ).
 *            read() returns the first failing status; the au_read
 *            addr/buf/len fields are left alone;
 *   stats    requests, failures and bytes count exactly the reads served,
 *            failed and the bytes of successful reads; syscalls stay 0;
 *   alloc    every free/resize passes the size the block was allocated
 *            with; nothing is outstanding after au_snapshot_free.
 * A violation prints what failed and aborts.
 *
 * Reads are driven by a byte stream: the META payload's bytes past the 24
 * the format defines (which the parser must accept and ignore), then a
 * PRNG seeded with a hash of the whole input.  So the fuzzer can steer
 * reads directly, and every valid file still gets many.
 *
 * Core behaviour the reference follows although docs/SNAPSHOT.md does not
 * say it (see the "UNDOCUMENTED" notes): a REGION at address 0 is refused;
 * a region or read may not end exactly at 2^64; padding bytes need not be
 * zero; FAILED records may wrap or have length 0; a 0-byte read succeeds
 * even when a FAILED record names it.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE under -std=c11 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "asyncunwind.h"
#include "fuzz/fuzz_helpers.h"
#include "fuzz/run_from_workspace.h"
#include "au_snapshot_format.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    au_fuzz_run_from_workspace();
    return 0;
}

/* ========================================================================
 * The reference parser, from docs/SNAPSHOT.md alone.
 * ===================================================================== */

typedef struct ref_region {
    uint64_t addr, len;
    size_t off; /* of the region's bytes in the input */
} ref_region;

typedef struct ref_failed {
    uint64_t addr, len;
} ref_failed;

typedef struct ref_thread {
    uint64_t id;
    size_t off; /* of the name in the input */
    uint32_t len;
    uint64_t pthread; /* from a PTHREAD record right after it, else 0 */
} ref_thread;

typedef struct ref_snap {
    int status;
    uint32_t pid, version;
    uint64_t runtime, time_ns;
    size_t meta_off, meta_len; /* META payload */
    ref_region *regions;
    ref_failed *failed;
    ref_thread *threads;
    uint32_t nregions, nfailed, nthreads;
} ref_snap;

static void ref_free(ref_snap *r) {
    free(r->regions);
    free(r->failed);
    free(r->threads);
}

/* Fills r; r->status is the verdict.  Arrays are sized for the worst case
 * (every record is at least 8 bytes). */
static void ref_parse(const uint8_t *d, size_t n, ref_snap *r) {
    memset(r, 0, sizeof *r);
    size_t maxrec = n / 8 + 1;
    r->regions = malloc(maxrec * sizeof *r->regions);
    r->failed = malloc(maxrec * sizeof *r->failed);
    r->threads = malloc(maxrec * sizeof *r->threads);
    CHECK(r->regions && r->failed && r->threads, "out of memory");
    static const uint8_t magic[8] = {0x89, 'A', 'U', 'S', 'N', 'P', '\r', '\n'};
    if (n < 16 || memcmp(d, magic, 8) != 0) {
        r->status = AU_ERR_FORMAT;
        return;
    }
    if (au_rd32(d + 8) != 1) {
        r->status = AU_ERR_UNSUPPORTED;
        return;
    }
    if (au_rd32(d + 12) != 16) {
        r->status = AU_ERR_FORMAT;
        return;
    }
    size_t at = 16;
    uint64_t nrec = 0;
    uint32_t last_type = 0;
    int have_meta = 0;
    for (;;) {
        if (n - at < 8) { /* the file ends without END */
            r->status = AU_ERR_FORMAT;
            return;
        }
        uint32_t type = au_rd32(d + at), len = au_rd32(d + at + 4);
        size_t p = at + 8;
        /* Payload, then padding to a multiple of 8, all inside the file. */
        uint64_t padded = ((uint64_t)len + 7) / 8 * 8;
        if ((uint64_t)(n - p) < padded) {
            r->status = AU_ERR_FORMAT;
            return;
        }
        at = p + (size_t)padded;
        if (++nrec > (1u << 22)) {
            r->status = AU_ERR_LIMIT;
            return;
        }
        if (nrec == 1 && type != 1) { /* META comes first */
            r->status = AU_ERR_FORMAT;
            return;
        }
        uint32_t prev_type = last_type;
        last_type = type;
        switch (type) {
        case 1: /* META: exactly once, at least 24 bytes */
            if (have_meta || len < 24) {
                r->status = AU_ERR_FORMAT;
                return;
            }
            have_meta = 1;
            r->pid = au_rd32(d + p);
            r->version = au_rd32(d + p + 4);
            r->runtime = au_rd64(d + p + 8);
            r->time_ns = au_rd64(d + p + 16);
            r->meta_off = p;
            r->meta_len = len;
            break;
        case 2: /* THREAD: u64 id, name of at most 256 bytes */
            if (len < 8 || len - 8 > 256) {
                r->status = AU_ERR_FORMAT;
                return;
            }
            if (r->nthreads >= 4096) {
                r->status = AU_ERR_LIMIT;
                return;
            }
            r->threads[r->nthreads++] = (ref_thread){au_rd64(d + p), p + 8, len - 8, 0};
            break;
        case 6: /* PTHREAD: u64, right after a THREAD record */
            if (len != 8 || prev_type != 2) {
                r->status = AU_ERR_FORMAT;
                return;
            }
            r->threads[r->nthreads - 1].pthread = au_rd64(d + p);
            break;
        case 3: { /* REGION: u64 addr, 1 byte .. 16 MiB; sorted, disjoint */
            if (len < 9 || len - 8 > (16u << 20)) {
                r->status = AU_ERR_FORMAT;
                return;
            }
            uint64_t addr = au_rd64(d + p), rlen = len - 8;
            /* UNDOCUMENTED: address 0 is refused, and so is a region that
             * ends exactly at 2^64 (its end is not representable). */
            if (addr == 0 || addr > UINT64_MAX - rlen) {
                r->status = AU_ERR_FORMAT;
                return;
            }
            if (r->nregions) {
                const ref_region *last = &r->regions[r->nregions - 1];
                if (addr < last->addr + last->len) {
                    r->status = AU_ERR_FORMAT;
                    return;
                }
            }
            r->regions[r->nregions++] = (ref_region){addr, rlen, p + 8};
            break;
        }
        case 4: { /* FAILED: u64 addr, u64 len; sorted by (addr, len), unique */
            if (len != 16) {
                r->status = AU_ERR_FORMAT;
                return;
            }
            uint64_t addr = au_rd64(d + p), flen = au_rd64(d + p + 8);
            if (r->nfailed) {
                const ref_failed *last = &r->failed[r->nfailed - 1];
                if (addr < last->addr || (addr == last->addr && flen <= last->len)) {
                    r->status = AU_ERR_FORMAT;
                    return;
                }
            }
            r->failed[r->nfailed++] = (ref_failed){addr, flen};
            break;
        }
        case 5: /* END: empty, last */
            r->status = (len == 0 && at == n && have_meta) ? AU_OK : AU_ERR_FORMAT;
            return;
        default:
            if (type & 0x80000000u) {
                r->status = AU_ERR_UNSUPPORTED;
                return;
            }
        }
    }
}

/* The naive replay: what a read of [addr, addr+len) must give. */
static int ref_read(const ref_snap *r, const uint8_t *d, uint64_t addr, uint64_t len,
                    uint8_t *out) {
    /* UNDOCUMENTED: 0 bytes always succeed, even at a FAILED address. */
    if (len == 0) return AU_OK;
    if (addr > UINT64_MAX - len) return AU_ERR_READ; /* wraps (or ends at 2^64) */
    for (uint32_t i = 0; i < r->nfailed; i++)
        if (r->failed[i].addr == addr && r->failed[i].len == len) return AU_ERR_READ;
    uint64_t at = addr, end = addr + len;
    while (at < end) {
        const ref_region *hit = NULL;
        for (uint32_t i = 0; i < r->nregions; i++) {
            const ref_region *g = &r->regions[i];
            if (at >= g->addr && at - g->addr < g->len) {
                hit = g;
                break;
            }
        }
        if (!hit) return AU_ERR_READ;
        uint64_t off = at - hit->addr;
        uint64_t n = hit->len - off < end - at ? hit->len - off : end - at;
        if (out) memcpy(out + (at - addr), d + hit->off + off, (size_t)n);
        at += n;
    }
    return AU_OK;
}

/* ========================================================================
 * The read script.
 * ===================================================================== */

typedef struct stream {
    const uint8_t *p;
    size_t left;
    uint64_t rng;
} stream;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t next8(stream *s) {
    if (s->left) {
        s->left--;
        return *s->p++;
    }
    return (uint8_t)splitmix(&s->rng);
}

static uint32_t next32(stream *s) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)next8(s) << (8 * i);
    return v;
}

static uint64_t next64(stream *s) {
    return next32(s) | (uint64_t)next32(s) << 32;
}

/* An address-space reservation for reads of up to 4 GiB - 1 bytes: a
 * read that long can only fail, but the source may fill part of it. */
#define BIG_READ (1u << 20)
static uint8_t *big_buf;

static uint8_t *get_big_buf(void) {
    if (!big_buf) {
        void *p = mmap(NULL, (size_t)1 << 32, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        CHECK(p != MAP_FAILED, "cannot reserve 4 GiB of address space");
        big_buf = p;
    }
    return big_buf;
}

typedef struct planned {
    uint64_t addr;
    uint32_t len;
    int null_buf;
} planned;

/* Pick one read from the script. */
static planned plan_read(stream *s, const ref_snap *r) {
    planned q = {0, 0, 0};
    uint8_t kind = next8(s) % 12;
    uint64_t total = 0;
    for (uint32_t i = 0; i < r->nregions; i++) total += r->regions[i].len;
    if (r->nregions == 0 && kind <= 5) kind = 6 + kind % 6;
    if (r->nfailed == 0 && kind == 6) kind = 7;
    const ref_region *g = r->nregions ? &r->regions[next8(s) % r->nregions] : NULL;
    switch (kind) {
    case 0: { /* inside one region */
        uint64_t off = next32(s) % g->len;
        q.addr = g->addr + off;
        q.len = (uint32_t)(1 + next32(s) % (g->len - off));
        break;
    }
    case 1: /* exactly one region */
        q.addr = g->addr;
        q.len = (uint32_t)g->len;
        break;
    case 2: { /* straddling its end: into the next region or a gap */
        uint32_t a = next8(s) % 17, b = next8(s) % 17;
        if (a > g->len) a = (uint32_t)g->len;
        q.addr = g->addr + g->len - a;
        q.len = a + b ? a + b : 1;
        break;
    }
    case 3: { /* straddling its start */
        uint32_t a = next8(s) % 17, b = 1 + next8(s) % 16;
        q.addr = g->addr - a;
        q.len = a + b;
        break;
    }
    case 4: { /* from a region's start to the end of a later one */
        uint32_t i = (uint32_t)(g - r->regions);
        uint32_t j = i + next8(s) % (r->nregions - i);
        uint64_t end = r->regions[j].addr + r->regions[j].len;
        uint64_t len = end - g->addr;
        q.addr = g->addr;
        q.len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        break;
    }
    case 5: { /* huge: longer than anything the snapshot holds */
        static const uint32_t lens[] = {UINT32_MAX, 0x80000000u, 0x7fffffffu,
                                        (16u << 20) + 1, 0};
        uint32_t l = lens[next8(s) % 5];
        if (l == 0) l = total >= UINT32_MAX ? UINT32_MAX : (uint32_t)total + 1;
        q.addr = g->addr + (next8(s) & 1 ? 0 : next32(s) % g->len);
        q.len = l;
        break;
    }
    case 6: { /* a FAILED record, exactly or off by one */
        const ref_failed *f = &r->failed[next8(s) % r->nfailed];
        uint8_t how = next8(s) % 4;
        q.addr = f->addr + (how == 3);
        uint64_t len = f->len + (how == 1) - (how == 2);
        q.len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        break;
    }
    case 7: { /* wrap-around at the top of the address space */
        uint32_t a = next8(s) % 32;
        q.addr = UINT64_MAX - a;
        q.len = a + 1 + next8(s) % 8; /* ends at 2^64 or past it */
        if (next8(s) & 1) q.len = a; /* ends just below 2^64 (or 0 bytes) */
        break;
    }
    case 8: /* address 0 or a small address */
        q.addr = next8(s) % 16;
        q.len = next8(s) % 16;
        break;
    case 9: /* zero bytes somewhere */
        q.addr = g ? g->addr + next8(s) % 8 : next64(s);
        q.len = 0;
        break;
    case 10: /* a NULL buffer */
        q.addr = g ? g->addr : next64(s);
        q.len = 1 + next8(s) % 8;
        q.null_buf = 1;
        break;
    default: /* anywhere */
        q.addr = next64(s);
        q.len = next8(s);
        break;
    }
    return q;
}

typedef struct issued {
    au_read rd;
    planned q;
    uint8_t *owned; /* heap buffer to free, or NULL */
} issued;

static void prepare(issued *x, planned q) {
    x->q = q;
    x->owned = NULL;
    void *buf = NULL;
    if (!q.null_buf) {
        if (q.len > BIG_READ) {
            buf = get_big_buf();
        } else {
            x->owned = malloc(q.len ? q.len : 1); /* exact size: ASan */
            CHECK(x->owned, "out of memory");
            memset(x->owned, 0xa5, q.len ? q.len : 1);
            buf = x->owned;
        }
    }
    x->rd = (au_read){q.addr, buf, q.len, 0x7eadbeef};
}

/* Checks one served read against the reference; returns its status. */
static int verify(const issued *x, const ref_snap *r, const uint8_t *d, uint64_t *bytes) {
    const au_read *rd = &x->rd;
    CHECK(rd->addr == x->q.addr && rd->len == x->q.len, "read %#" PRIx64 "+%u: fields changed",
          x->q.addr, x->q.len);
    int want = ref_read(r, d, x->q.addr, x->q.len, NULL);
    if (x->q.null_buf && x->q.len) {
        /* A caller error: refused, as AU_ERR_ARG or as a failed read. */
        CHECK(rd->status == AU_ERR_ARG || rd->status == AU_ERR_READ,
              "read %#" PRIx64 "+%u (NULL buffer): status %d", x->q.addr, x->q.len,
              rd->status);
        return rd->status;
    }
    if (want == AU_OK) {
        CHECK(rd->status == AU_OK, "read %#" PRIx64 "+%u: status %d, expected success",
              x->q.addr, x->q.len, rd->status);
        if (x->q.len) {
            uint8_t *exp = malloc(x->q.len);
            CHECK(exp, "out of memory");
            ref_read(r, d, x->q.addr, x->q.len, exp);
            CHECK(memcmp(exp, rd->buf, x->q.len) == 0,
                  "read %#" PRIx64 "+%u: wrong bytes", x->q.addr, x->q.len);
            free(exp);
        }
        *bytes += x->q.len;
    } else {
        CHECK(rd->status == want, "read %#" PRIx64 "+%u: status %d, expected %d", x->q.addr,
              x->q.len, rd->status, want);
    }
    return rd->status;
}

static void check_stats(const au_memsrc *m, const au_mem_stats *before, uint64_t n,
                        uint64_t nfail, uint64_t bytes) {
    const au_mem_stats *st = &m->stats;
    CHECK(st->requests - before->requests == n, "requests +%" PRIu64 ", expected +%" PRIu64,
          st->requests - before->requests, n);
    CHECK(st->failures - before->failures == nfail,
          "failures +%" PRIu64 ", expected +%" PRIu64, st->failures - before->failures, nfail);
    CHECK(st->bytes - before->bytes == bytes, "bytes +%" PRIu64 ", expected +%" PRIu64,
          st->bytes - before->bytes, bytes);
    CHECK(st->syscalls == 0, "a snapshot made %" PRIu64 " syscalls", st->syscalls);
}

static void exercise_reads(au_memsrc *m, const ref_snap *r, const uint8_t *d, size_t n) {
    stream s;
    s.p = d + r->meta_off + 24;
    s.left = r->meta_len - 24;
    s.rng = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) s.rng = (s.rng ^ d[i]) * 0x100000001b3ull;

    /* Single reads. */
    for (int i = 0; i < 24; i++) {
        issued x;
        prepare(&x, plan_read(&s, r));
        au_mem_stats before = m->stats;
        int rc = m->read(m, &x.rd, 1);
        uint64_t bytes = 0;
        int st = verify(&x, r, d, &bytes);
        CHECK(rc == st, "read() returned %d, the read's status is %d", rc, st);
        check_stats(m, &before, 1, st != AU_OK, bytes);
        free(x.owned);
    }
    /* Batches. */
    for (int b = 0; b < 3; b++) {
        issued xs[8];
        uint32_t k = 1 + next8(&s) % 8;
        for (uint32_t i = 0; i < k; i++) prepare(&xs[i], plan_read(&s, r));
        au_read rds[8];
        for (uint32_t i = 0; i < k; i++) rds[i] = xs[i].rd;
        au_mem_stats before = m->stats;
        int rc = m->read(m, rds, k);
        int first = AU_OK;
        uint64_t nfail = 0, bytes = 0;
        for (uint32_t i = 0; i < k; i++) {
            xs[i].rd = rds[i];
            int st = verify(&xs[i], r, d, &bytes);
            if (st != AU_OK) {
                nfail++;
                if (first == AU_OK) first = st;
            }
        }
        CHECK(rc == first, "batch of %u: read() returned %d, first failure %d", k, rc, first);
        check_stats(m, &before, k, nfail, bytes);
        for (uint32_t i = 0; i < k; i++) free(xs[i].owned);
    }
    /* au_mem_read1 agrees with the batch path. */
    if (r->nregions) {
        const ref_region *g = &r->regions[0];
        uint8_t tmp[16];
        uint32_t len = g->len < 16 ? (uint32_t)g->len : 16;
        int want = ref_read(r, d, g->addr, len, NULL);
        int rc = au_mem_read1(m, g->addr, tmp, len);
        CHECK(rc == want, "au_mem_read1 of region 0: %d, expected %d", rc, want);
        CHECK(rc != AU_OK || memcmp(tmp, d + g->off, len) == 0,
              "au_mem_read1 of region 0: wrong bytes");
    }
}

/* ========================================================================
 * Entry point
 * ===================================================================== */

static void check_meta(const au_snapshot *snap, const ref_snap *r, const uint8_t *d, size_t n) {
    const au_snapshot_meta *m = au_snapshot_get_meta(snap);
    CHECK(m != NULL, "no meta");
    CHECK(m->pid == r->pid && m->py_version_hex == r->version &&
              m->runtime_addr == r->runtime && m->time_ns == r->time_ns,
          "meta %u %#x %#" PRIx64 " %" PRIu64 " vs reference %u %#x %#" PRIx64 " %" PRIu64,
          m->pid, m->py_version_hex, m->runtime_addr, m->time_ns, r->pid, r->version,
          r->runtime, r->time_ns);
    CHECK(m->nthreads == r->nthreads, "%u threads, reference %u", m->nthreads, r->nthreads);
    CHECK(m->nthreads == 0 || m->threads != NULL, "threads NULL");
    const char *lo = (const char *)d, *hi = (const char *)d + n;
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const au_snapshot_thread *t = &m->threads[i];
        const ref_thread *rt = &r->threads[i];
        CHECK(t->native_id == rt->id, "thread %u id", i);
        CHECK(t->pthread_id == rt->pthread, "thread %u pthread id", i);
        CHECK(t->name_len <= AU_SNAP_MAX_NAME, "thread %u name of %u bytes", i, t->name_len);
        CHECK(t->name_len == 0 || (t->name >= lo && t->name <= hi &&
                                   t->name_len <= (size_t)(hi - t->name)),
              "thread %u name outside the input", i);
        CHECK(t->name_len == rt->len, "thread %u name length %u, reference %u", i,
              t->name_len, rt->len);
        CHECK(t->name_len == 0 || t->name == lo + rt->off,
              "thread %u name at +%td, reference +%zu", i, t->name - lo, rt->off);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ref_snap ref;
    ref_parse(data, size, &ref);

    uint64_t h = 0;
    for (size_t i = 0; i < size && i < 64; i++) h = h * 31 + data[i];

    /* 1. Allocation failure: the k-th call fails (k = 1..4, or never). */
    {
        test_alloc ta = {.fail_at = 1 + (h >> 7) % 5};
        au_allocator al = {ta_realloc, &ta};
        au_snapshot *s = NULL;
        int rc = au_snapshot_parse(&al, data, size, &s);
        if (ta.failed && rc == AU_ERR_NOMEM) {
            CHECK(s == NULL, "NOMEM with a snapshot");
        } else {
            CHECK(rc == ref.status, "parse (failing allocator): %d, reference %d", rc,
                  ref.status);
        }
        if (rc == AU_OK) {
            au_memsrc *m = NULL;
            int mrc = au_memsrc_snapshot_open(&al, s, &m);
            CHECK(mrc == AU_OK || (ta.failed && mrc == AU_ERR_NOMEM),
                  "snapshot_open: %d", mrc);
            au_memsrc_destroy(m);
        }
        au_snapshot_free(s);
        CHECK(ta.live == 0, "%" PRId64 " blocks leaked (failing allocator)", ta.live);
    }

    /* 2. The real parse. */
    test_alloc ta = {0};
    au_allocator al = {ta_realloc, &ta};
    au_snapshot *s = (au_snapshot *)&ta; /* must be reset */
    int rc = au_snapshot_parse(&al, data, size, &s);
    CHECK(rc == ref.status, "parse: %d (%s), reference %d (%s)", rc, au_status_str(rc),
          ref.status, au_status_str(ref.status));
    CHECK(rc == AU_OK || rc == AU_ERR_FORMAT || rc == AU_ERR_UNSUPPORTED ||
              rc == AU_ERR_LIMIT,
          "undocumented status %d", rc);
    if (rc != AU_OK) {
        CHECK(s == NULL, "error, but *out is not NULL");
        CHECK(ta.live == 0, "%" PRId64 " blocks leaked after an error", ta.live);
        ref_free(&ref);
        return 0;
    }
    CHECK(s != NULL, "AU_OK without a snapshot");
    check_meta(s, &ref, data, size);

    au_memsrc *m = NULL;
    CHECK(au_memsrc_snapshot_open(&al, s, &m) == AU_OK && m, "snapshot_open");
    CHECK(m->stats.requests == 0 && m->stats.failures == 0 && m->stats.bytes == 0 &&
              m->stats.syscalls == 0,
          "fresh source with non-zero stats");
    exercise_reads(m, &ref, data, size);
    au_memsrc_destroy(m);
    au_snapshot_free(s);
    CHECK(ta.live == 0, "%" PRId64 " blocks leaked", ta.live);
    ref_free(&ref);
    return 0;
}
