/*
 * Fuzz target `recorder`: the recorder memory source (au_recorder_open,
 * core/memory/recorder.c) reading a target whose memory changes between reads,
 * and the replay of what it wrote (au_recorder_write, au_snapshot_parse,
 * au_memsrc_snapshot_open).
 *
 * A recording must be ONE consistent view of the target even while the
 * target writes, unmaps and remaps memory between reads (docs/SNAPSHOT.md,
 * "How the recorder keeps one view"), and the replay of its snapshot must
 * give exactly what the recorder returned.  A live process cannot be
 * steered read by read, so the target here is a fake held by the harness:
 * 40 pages of 4 KiB at fixed addresses (page 0 and the one after it, a
 * page behind a hole, a run of 35 adjacent pages, and the top two pages of
 * the 64-bit address space), each mapped or not.  The fake inner source
 * serves a read iff every byte lies on a mapped page, computing addresses
 * modulo 2^64, so it happily serves address 0 and reads that wrap: the
 * recorder must refuse those itself.
 *
 * The input is a script of operations on the target and batches of reads
 * through the recorder; every read is logged (address, length, batch,
 * status and, on success, bytes).  Checked:
 *   model    every read's status and bytes, and read()'s return value (the
 *            first failing status), equal those of a reference model
 *            written from the rules alone: a map "first value seen" per
 *            byte of the 40 pages and a list of failed (address, length):
 *              - a 0-byte read succeeds (the fake, like the live source,
 *                serves it);
 *              - a read whose (address, length) failed before fails;
 *              - one at address 0 or whose range reaches 2^64 fails, and
 *                counts as failed from then on;
 *              - one the target serves gets, per byte, the first value
 *                seen, and the target's current byte where none was;
 *              - one the target refuses is served from first values when
 *                every byte has one, else it fails for good;
 *   fields   addr, buf and len of each au_read are left alone; the buffers
 *            have exactly len bytes, so ASan sees a write past them;
 *   stats    the recorder's counters equal the fake source's after every
 *            batch (docs: "the stats are inner's");
 *   again    after the script, the target changes everywhere (every page
 *            unmapped, or every page given new contents) and every batch
 *            of the script is read again: each read gives exactly what it
 *            gave the first time (this needs no model);
 *   write    au_recorder_write succeeds; a second write gives the same
 *            bytes, or AU_ERR_IO when the writer fails its k-th call;
 *   replay   au_snapshot_parse accepts the file, META and threads come
 *            back, and every logged read, in its batch, replayed through
 *            au_memsrc_snapshot_open gives the logged status and bytes;
 *            the replay's counters count exactly those reads;
 *   nomem    optionally the recorder's allocator fails its k-th call:
 *            after that nothing is compared (the recording is unusable by
 *            design), but au_recorder_write must say AU_ERR_NOMEM;
 *   alloc    every free passes the size the block was allocated with, and
 *            nothing is outstanding at the end (LeakSanitizer also runs).
 * A violation prints what failed and aborts.
 *
 * ---------------------------------------------------------------------------
 * Input format.  Every byte string is valid; reads past the end give 0.
 * Integers are little-endian.
 *
 *   byte 0   F  bits 0-2  the second write's writer fails its k-th call,
 *                         k = {never,1,2,3,4,6,9,14}[F & 7]
 *               bits 3-4  threads in META (0..3)
 *               bit 5     before reading again: unmap every page (else
 *                         give every page new contents)
 *               bits 6-7  3: the recorder's allocator fails its k-th
 *                         call, k = 1 + A % 64
 *   byte 1   A
 *   bytes 2-6   bit i of this 40-bit integer set: page i starts unmapped
 *               (so a short input starts with everything mapped)
 *   then operations until the end of the input.  Opcode o, x = o >> 3:
 *     o&7 0-3  READ    1 + (x & 7) reads, one batch; each read is:
 *                K, mode K & 7, y = K >> 3:
 *                0-2  AT     S u16:O u16:L  page S % 40, offset
 *                             O % 12288 - 4096 from its base, length
 *                             L % 9001 (crosses pages, holes, the top)
 *                3    SAME   the y-th most recent read again (the batch's
 *                            own earlier reads included: duplicates)
 *                4    NEAR   i8:DA i8:DL  the y-th most recent read moved
 *                            by DA bytes and grown by DL (overlaps)
 *                5    EDGE   B1 B2, by y & 3:
 *                            0  address B1 % 16 (0 included), length
 *                               B2 % 32
 *                            1  address 2^64 - a, a = 1 + B1 % 64, length
 *                               a - 1 + B2 % 8 (ends below 2^64, at it,
 *                               or wraps)
 *                            2  length 0 at page B1 % 40, offset B2
 *                            3  from page 38 + 32 * B1 to 16 * B2 bytes
 *                               past 2^64 (wraps into page 0)
 *                6-7  SMALL  S u16:O B  page S % 40, offset O % 4160 - 32,
 *                            length B % 65
 *     o&7 4    WRITE   S u16:O B V  bytes V, V + s, V + 2s, ... (s = 2x+1)
 *                      at page S % 40, offset O % 4096, 1 + B bytes (cut
 *                      at the page's end)
 *     o&7 5    UNMAP   S
 *     o&7 6    MAP     S  mapped again (or still), with new contents
 *     o&7 7    CHANGE  every page gets new contents
 * Caps: 128 operations, 384 reads and 128 KiB read in the script; reading
 * again doubles that.  What does not fit is dropped.  New contents are a
 * hash of the address and a generation number, so every byte differs.
 *
 * Example: 00 00 | 00 00 00 00 00 | 00 00 02 00 10 08 00 (8 bytes at the
 * start of page 2)  06 02 (page 2 gets new contents)  08 03 03 (that read
 * twice in one batch: both times the first values).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncunwind.h"
#include "fuzz/fuzz_helpers.h"
#include "fuzz/run_from_workspace.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    au_fuzz_run_from_workspace();
    return 0;
}

/* The model, the checks and the fake's content generator loop over every
 * byte read (their tracing cost 40% of the run time); the recorder's own
 * coverage is what should guide the fuzzer: NO_COV. */

#define PAGE 4096u
#define NPAGES 40u
#define RUN_FIRST 3u   /* pages 3..37: 35 adjacent pages */
#define RUN_PAGES 35u
#define RUN_BASE 0x7f0000010000ull
#define MAX_OPS 128u
#define MAX_READS 384u            /* in the script; as many again after */
#define MAX_BYTES (128u << 10)    /* read in the script; as many again */
#define MAX_LEN 9000u             /* of an AT read */
#define MAX_BATCH 8u

/* ========================================================================
 * The fake target: NPAGES pages, each mapped or not.
 * ===================================================================== */

static uint64_t page_base(uint32_t i) {
    if (i == 0) return 0;                 /* addresses near 0 */
    if (i == 1) return 0x1000;            /* follows page 0 */
    if (i == 2) return 0x3000;            /* a hole (0x2000) before it */
    if (i < RUN_FIRST + RUN_PAGES) return RUN_BASE + (uint64_t)(i - RUN_FIRST) * PAGE;
    return UINT64_MAX - (NPAGES - i) * (uint64_t)PAGE + 1; /* the top two */
}

/* The page holding address a, or -1. */
static int page_of(uint64_t a) {
    uint64_t base = a & ~(uint64_t)(PAGE - 1);
    if (base >= RUN_BASE && base - RUN_BASE < (uint64_t)RUN_PAGES * PAGE)
        return (int)(RUN_FIRST + (base - RUN_BASE) / PAGE);
    if (base >= page_base(RUN_FIRST + RUN_PAGES))
        return (int)(NPAGES - 1 - (UINT64_MAX - a) / PAGE);
    return base == 0 ? 0 : base == 0x1000 ? 1 : base == 0x3000 ? 2 : -1;
}

typedef struct fake_page {
    uint32_t gen;  /* contents: a hash of (address, gen), then writes */
    uint8_t mapped;
    uint8_t ready; /* data holds the contents (else made on first use) */
    uint8_t data[PAGE];
} fake_page;

typedef struct target {
    fake_page pages[NPAGES];
    uint32_t next_gen;
} target;

static target T;

static uint64_t splitmix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Contents are made lazily: most inputs touch a few pages of the 40. */
NO_COV static uint8_t *page_data(uint32_t i) {
    fake_page *p = &T.pages[i];
    if (!p->ready) {
        uint64_t base = page_base(i);
        for (uint32_t k = 0; k < PAGE; k += 8) {
            uint64_t v = splitmix((base + k) ^ (uint64_t)p->gen << 52);
            memcpy(p->data + k, &v, 8);
        }
        p->ready = 1;
    }
    return p->data;
}

static void new_contents(uint32_t i) {
    T.pages[i].gen = ++T.next_gen;
    T.pages[i].ready = 0;
}

static void target_reset(uint64_t unmapped_mask) {
    T.next_gen = 0;
    for (uint32_t i = 0; i < NPAGES; i++) {
        T.pages[i].mapped = !(unmapped_mask >> i & 1);
        new_contents(i);
    }
}

/* Copies [addr, addr + len), addresses modulo 2^64, into buf; 1 when every
 * byte is on a mapped page.  On failure buf holds what was readable, then
 * junk: the caller must not use it. */
static int target_copy(uint64_t addr, uint8_t *buf, uint32_t len, uint64_t *pages) {
    for (uint32_t at = 0; at < len;) {
        uint64_t a = addr + at; /* wraps on purpose */
        uint32_t off = (uint32_t)(a & (PAGE - 1));
        uint32_t n = len - at < PAGE - off ? len - at : PAGE - off;
        int i = page_of(a);
        if (i < 0 || !T.pages[i].mapped) {
            memset(buf + at, 0xee, len - at);
            return 0;
        }
        memcpy(buf + at, page_data((uint32_t)i) + off, n);
        ++*pages;
        at += n;
    }
    return 1;
}

/* ========================================================================
 * The fake inner source: the target, read the way a live source would
 * report it (0-byte reads succeed; stats count the traffic).
 * ===================================================================== */

static int fake_read(au_memsrc *self, au_read *reads, uint32_t n) {
    int first = AU_OK;
    self->stats.requests += n;
    if (n) self->stats.syscalls++;
    for (uint32_t i = 0; i < n; i++) {
        au_read *r = &reads[i];
        uint64_t pages = 0;
        r->status = target_copy(r->addr, r->buf, r->len, &pages) ? AU_OK : AU_ERR_READ;
        self->stats.pages += pages;
        if (r->status == AU_OK) {
            self->stats.bytes += r->len;
        } else {
            self->stats.failures++;
            if (first == AU_OK) first = r->status;
        }
    }
    return first;
}

/* ========================================================================
 * The reference model: the rules of docs/SNAPSHOT.md, byte by byte.
 * ===================================================================== */

typedef struct model {
    uint8_t seen[NPAGES][PAGE];  /* a first value is known */
    uint8_t first[NPAGES][PAGE]; /* that value */
    uint8_t cleared[NPAGES];     /* seen[] was reset for this input */
    struct {
        uint64_t addr;
        uint32_t len;
    } failed[2 * MAX_READS];
    uint32_t nfailed;
} model;

static model M;

static void model_reset(void) {
    memset(M.cleared, 0, sizeof M.cleared);
    M.nfailed = 0;
}

/* The page holding address a, its seen[] cleared on first use in this
 * input; -1 for an address on no page. */
NO_COV static int model_page(uint64_t a) {
    int i = page_of(a);
    if (i >= 0 && !M.cleared[i]) {
        memset(M.seen[i], 0, PAGE);
        M.cleared[i] = 1;
    }
    return i;
}

/* How many of the left bytes from a lie on a's page. */
static uint32_t on_page(uint64_t a, uint32_t left) {
    uint32_t off = (uint32_t)(a & (PAGE - 1));
    return left < PAGE - off ? left : PAGE - off;
}

NO_COV static int model_failed(uint64_t addr, uint32_t len) {
    for (uint32_t i = 0; i < M.nfailed; i++)
        if (M.failed[i].addr == addr && M.failed[i].len == len) return 1;
    return 0;
}

static int model_fail(uint64_t addr, uint32_t len) {
    CHECK(M.nfailed < 2 * MAX_READS, "model: too many failures");
    M.failed[M.nfailed].addr = addr;
    M.failed[M.nfailed].len = len;
    M.nfailed++;
    return AU_ERR_READ;
}

/* What the recorder must answer to one read, reads taken in order; fills
 * exp[0, len) on AU_OK.  Page by page only for speed: the rules are per
 * byte. */
NO_COV static int model_read(uint64_t addr, uint32_t len, uint8_t *exp) {
    if (len == 0) return AU_OK;
    if (model_failed(addr, len)) return AU_ERR_READ;
    /* 2^64 - addr bytes reach the end of the address space. */
    if (addr == 0 || len >= 0 - addr) return model_fail(addr, len);
    /* Does the target hold every byte now; has every byte a first value? */
    int mapped = 1, known = 1;
    for (uint32_t at = 0, n; at < len && (mapped || known); at += n) {
        uint64_t a = addr + at;
        n = on_page(a, len - at);
        int i = model_page(a);
        if (i < 0) return model_fail(addr, len);
        mapped &= T.pages[i].mapped;
        if (known) known = !memchr(M.seen[i] + (a & (PAGE - 1)), 0, n);
    }
    if (!mapped && !known) return model_fail(addr, len);
    /* Served: first values, and the target's bytes where there are none
     * (then it holds them all), which become first values. */
    for (uint32_t at = 0, n; at < len; at += n) {
        uint64_t a = addr + at;
        uint32_t off = (uint32_t)(a & (PAGE - 1));
        n = on_page(a, len - at);
        int i = model_page(a);
        uint8_t *seen = M.seen[i] + off, *first = M.first[i] + off;
        if (!memchr(seen, 0, n)) { /* the common case, made fast */
            memcpy(exp + at, first, n);
            continue;
        }
        const uint8_t *now = page_data((uint32_t)i) + off;
        for (uint32_t k = 0; k < n; k++) {
            if (!seen[k]) {
                seen[k] = 1;
                first[k] = now[k];
            }
            exp[at + k] = first[k];
        }
    }
    return AU_OK;
}

/* ========================================================================
 * The log of every read, grouped in batches.
 * ===================================================================== */

#define MAX_LOG (2 * MAX_READS)

typedef struct logent {
    uint64_t addr;
    uint32_t len;
    int32_t status;
    uint32_t off; /* of its bytes in log_bytes, on AU_OK */
} logent;

typedef struct logbook {
    logent e[MAX_LOG];
    uint32_t n;
    uint32_t batch_start[MAX_LOG + 1]; /* batch b: e[start[b], start[b+1]) */
    uint32_t nbatches;
    uint64_t bytes;          /* requested so far */
    uint8_t data[2 * MAX_BYTES];
    uint32_t data_used;
} logbook;

static logbook L;

/* ========================================================================
 * Reading through a source, batch by batch.
 * ===================================================================== */

typedef struct plan {
    uint64_t addr;
    uint32_t len;
} plan;

/* Issues one batch through m into exact-size buffers.  The caller frees
 * them (free_batch). */
static int issue(au_memsrc *m, const plan *p, uint32_t n, au_read *rd) {
    void *bufs[MAX_BATCH];
    for (uint32_t i = 0; i < n; i++) {
        bufs[i] = malloc(p[i].len ? p[i].len : 1);
        CHECK(bufs[i], "out of memory");
        memset(bufs[i], 0xa5, p[i].len);
        rd[i] = (au_read){p[i].addr, bufs[i], p[i].len, 0x7eadbeef};
    }
    int rc = m->read(m, rd, n);
    int first = AU_OK;
    for (uint32_t i = 0; i < n; i++) {
        CHECK(rd[i].addr == p[i].addr && rd[i].buf == bufs[i] && rd[i].len == p[i].len,
              "read %u of %u (%#" PRIx64 "+%u): fields changed", i, n, p[i].addr, p[i].len);
        if (first == AU_OK) first = rd[i].status;
    }
    CHECK(rc == first, "batch of %u: read() returned %d, the first failure is %d", n, rc,
          first);
    return rc;
}

static void free_batch(au_read *rd, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) free(rd[i].buf);
}

static void check_stats(const au_memsrc *rec, const au_memsrc *inner) {
    const au_mem_stats *a = &rec->stats, *b = &inner->stats;
    CHECK(a->requests == b->requests && a->failures == b->failures &&
              a->syscalls == b->syscalls && a->bytes == b->bytes && a->pages == b->pages,
          "recorder stats %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
          ", inner %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
          a->requests, a->failures, a->syscalls, a->bytes, a->pages, b->requests,
          b->failures, b->syscalls, b->bytes, b->pages);
}

typedef struct session {
    au_memsrc inner;
    au_memsrc *rec;
    test_alloc *ta;
    uint8_t exp[16384]; /* > any read's length */
} session;

/* One batch through the recorder: checked against the model (unless an
 * allocation failed: the recording is unusable then) and logged. */
NO_COV static void record_batch(session *s, const plan *p, uint32_t n) {
    au_read rd[MAX_BATCH];
    issue(s->rec, p, n, rd);
    check_stats(s->rec, &s->inner);
    int checked = !s->ta->failed;
    for (uint32_t i = 0; i < n; i++) {
        logent *e = &L.e[L.n++];
        *e = (logent){p[i].addr, p[i].len, rd[i].status, L.data_used};
        if (e->status == AU_OK) {
            memcpy(L.data + L.data_used, rd[i].buf, e->len);
            L.data_used += e->len;
        }
        if (!checked) continue;
        CHECK(e->len <= sizeof s->exp, "read too long for the model");
        int want = model_read(e->addr, e->len, s->exp);
        CHECK(e->status == want, "read %u of %u at %#" PRIx64 "+%u: status %d, model %d", i,
              n, e->addr, e->len, e->status, want);
        if (want == AU_OK && memcmp(rd[i].buf, s->exp, e->len) != 0) {
            uint32_t k = 0;
            while (((uint8_t *)rd[i].buf)[k] == s->exp[k]) k++;
            CHECK(0, "read %u of %u at %#" PRIx64 "+%u: byte %u (%#" PRIx64 ") is %#x, model %#x",
                  i, n, e->addr, e->len, k, e->addr + k, ((uint8_t *)rd[i].buf)[k],
                  s->exp[k]);
        }
    }
    L.batch_start[++L.nbatches] = L.n;
    free_batch(rd, n);
}

/* Batch b of the log again through m: the same status and bytes. */
NO_COV static void check_batch_again(au_memsrc *m, uint32_t b, const char *what) {
    plan p[MAX_BATCH];
    au_read rd[MAX_BATCH];
    uint32_t from = L.batch_start[b], n = L.batch_start[b + 1] - from;
    for (uint32_t i = 0; i < n; i++) p[i] = (plan){L.e[from + i].addr, L.e[from + i].len};
    issue(m, p, n, rd);
    for (uint32_t i = 0; i < n; i++) {
        const logent *e = &L.e[from + i];
        CHECK(rd[i].status == e->status,
              "%s: batch %u read %u at %#" PRIx64 "+%u: status %d, %d before", what, b, i,
              e->addr, e->len, rd[i].status, e->status);
        CHECK(e->status != AU_OK || memcmp(rd[i].buf, L.data + e->off, e->len) == 0,
              "%s: batch %u read %u at %#" PRIx64 "+%u: other bytes than before", what, b, i,
              e->addr, e->len);
    }
    free_batch(rd, n);
}

/* Batch b read again as batch c gave the same statuses and bytes. */
NO_COV static void check_same(uint32_t b, uint32_t c) {
    uint32_t n = L.batch_start[b + 1] - L.batch_start[b];
    for (uint32_t i = 0; i < n; i++) {
        const logent *e = &L.e[L.batch_start[b] + i], *g = &L.e[L.batch_start[c] + i];
        CHECK(g->status == e->status &&
                  (e->status != AU_OK || memcmp(L.data + g->off, L.data + e->off, e->len) == 0),
              "again: batch %u read %u at %#" PRIx64 "+%u: status %d, %d before%s", b, i,
              e->addr, e->len, g->status, e->status,
              g->status == e->status ? ", other bytes" : "");
    }
}

/* ========================================================================
 * Decoding the script.
 * ===================================================================== */

/* The k-th most recent read planned (this batch's included), or NULL. */
static const plan *recent(const plan *batch, uint32_t nbatch, uint32_t k, plan *tmp) {
    uint32_t total = L.n + nbatch;
    if (!total) return NULL;
    k %= total;
    if (k < nbatch) return &batch[nbatch - 1 - k];
    const logent *e = &L.e[L.n - 1 - (k - nbatch)];
    *tmp = (plan){e->addr, e->len};
    return tmp;
}

static plan plan_read(fh_input *s, const plan *batch, uint32_t nbatch) {
    uint8_t k = fh_u8(s), mode = k & 7, y = k >> 3;
    plan q = {page_base(1), 16}, tmp;
    switch (mode) {
    case 3: /* SAME */
    case 4: { /* NEAR */
        const plan *r = recent(batch, nbatch, y, &tmp);
        if (r) q = *r;
        if (mode == 4) {
            int8_t da = (int8_t)fh_u8(s), dl = (int8_t)fh_u8(s);
            q.addr += (uint64_t)(int64_t)da;
            int64_t len = (int64_t)q.len + dl;
            q.len = len < 0 ? 0 : len > (int64_t)MAX_LEN ? MAX_LEN : (uint32_t)len;
        }
        break;
    }
    case 5: { /* EDGE */
        uint8_t b1 = fh_u8(s), b2 = fh_u8(s);
        switch (y & 3) {
        case 0:
            q = (plan){b1 % 16u, b2 % 32u};
            break;
        case 1: {
            uint32_t a = 1u + b1 % 64u;
            q = (plan){0 - (uint64_t)a, a - 1 + b2 % 8u};
            break;
        }
        case 2:
            q = (plan){page_base(b1 % NPAGES) + b2, 0};
            break;
        default:
            q = (plan){page_base(NPAGES - 2) + 32u * b1, 2 * PAGE - 32u * b1 + 16u * b2};
        }
        break;
    }
    case 6:
    case 7: { /* SMALL */
        uint64_t base = page_base(fh_u8(s) % NPAGES);
        uint32_t off = fh_u16(s) % (PAGE + 64);
        q = (plan){base + off - 32, fh_u8(s) % 65u};
        break;
    }
    default: { /* AT */
        uint64_t base = page_base(fh_u8(s) % NPAGES);
        uint32_t off = fh_u16(s) % (3 * PAGE);
        q = (plan){base + off - PAGE, fh_u16(s) % (MAX_LEN + 1)};
    }
    }
    return q;
}

/* Plans one batch and records it; 0 once a cap is reached. */
static int op_read(session *ss, fh_input *s, uint8_t x) {
    plan p[MAX_BATCH];
    uint32_t want = 1 + (x & 7), n = 0;
    int room = 1;
    while (n < want) {
        plan q = plan_read(s, p, n);
        if (L.n + n >= MAX_READS || L.bytes + q.len > MAX_BYTES) {
            room = 0;
            break;
        }
        L.bytes += q.len;
        p[n++] = q;
    }
    if (n) record_batch(ss, p, n);
    return room;
}

static void op_write(fh_input *s, uint8_t x) {
    uint32_t i = fh_u8(s) % NPAGES, off = fh_u16(s) % PAGE, len = 1u + fh_u8(s);
    uint8_t v = fh_u8(s), step = (uint8_t)(2 * x + 1);
    if (len > PAGE - off) len = PAGE - off;
    uint8_t *d = page_data(i);
    for (uint32_t k = 0; k < len; k++) d[off + k] = (uint8_t)(v + k * step);
}

static void run_script(session *ss, fh_input *s) {
    for (uint32_t ops = 0; s->pos < s->n && ops < MAX_OPS; ops++) {
        uint8_t o = fh_u8(s), x = o >> 3;
        switch (o & 7) {
        case 4:
            op_write(s, x);
            break;
        case 5:
            T.pages[fh_u8(s) % NPAGES].mapped = 0;
            break;
        case 6: {
            uint32_t i = fh_u8(s) % NPAGES;
            T.pages[i].mapped = 1;
            new_contents(i);
            break;
        }
        case 7:
            for (uint32_t i = 0; i < NPAGES; i++) new_contents(i);
            break;
        default:
            if (!op_read(ss, s, x)) return;
        }
    }
}

/* ========================================================================
 * Writing and replaying.
 * ===================================================================== */

typedef struct sink {
    uint8_t *data;
    size_t len, cap;
    uint32_t calls, fail_at; /* call fail_at (1-based) fails; 0 = never */
} sink;

static int sink_write(void *ud, const void *buf, size_t len) {
    sink *k = ud;
    if (++k->calls == k->fail_at) return -1;
    if (k->len + len > k->cap) {
        size_t cap = (k->len + len) * 2;
        uint8_t *p = realloc(k->data, cap);
        CHECK(p, "out of memory");
        k->data = p;
        k->cap = cap;
    }
    memcpy(k->data + k->len, buf, len);
    k->len += len;
    return 0;
}

static const au_snapshot_thread threads[3] = {{101, "MainThread", 10, 0, 0x7f00c0de0700ull},
                                               {102, "", 0, 0, 0},
                                               {UINT64_MAX, "asyncio_0", 9, 0, UINT64_MAX}};

static void check_meta(const au_snapshot *snap, const au_snapshot_meta *want) {
    const au_snapshot_meta *m = au_snapshot_get_meta(snap);
    CHECK(m && m->pid == want->pid && m->py_version_hex == want->py_version_hex &&
              m->runtime_addr == want->runtime_addr && m->time_ns == want->time_ns,
          "META did not come back");
    CHECK(m->nthreads == want->nthreads, "%u threads, wrote %u", m->nthreads, want->nthreads);
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const au_snapshot_thread *a = &m->threads[i], *b = &want->threads[i];
        CHECK(a->native_id == b->native_id && a->pthread_id == b->pthread_id &&
                  a->name_len == b->name_len &&
                  memcmp(a->name, b->name, b->name_len) == 0,
              "thread %u did not come back", i);
    }
}

/* Replays the whole log from the written file. */
static void replay_log(const sink *file, const au_snapshot_meta *meta, au_allocator *al) {
    au_snapshot *snap = NULL;
    int rc = au_snapshot_parse(al, file->data, file->len, &snap);
    CHECK(rc == AU_OK, "the recorder wrote a snapshot the parser refuses: %d (%s)", rc,
          au_status_str(rc));
    check_meta(snap, meta);
    au_memsrc *rp = NULL;
    CHECK(au_memsrc_snapshot_open(al, snap, &rp) == AU_OK, "snapshot_open");
    for (uint32_t b = 0; b < L.nbatches; b++) check_batch_again(rp, b, "replay");
    uint64_t fails = 0, bytes = 0;
    for (uint32_t i = 0; i < L.n; i++) {
        if (L.e[i].status != AU_OK) fails++;
        else bytes += L.e[i].len;
    }
    CHECK(rp->stats.requests == L.n && rp->stats.failures == fails && rp->stats.bytes == bytes,
          "replay stats %" PRIu64 "/%" PRIu64 "/%" PRIu64 ", log %u/%" PRIu64 "/%" PRIu64,
          rp->stats.requests, rp->stats.failures, rp->stats.bytes, L.n, fails, bytes);
    au_memsrc_destroy(rp);
    au_snapshot_free(snap);
}

/* Writes the recording twice (the second time through a writer that may
 * fail) and replays it.  After a failed allocation only the write's status
 * is checked: the recording is unusable then, by design. */
static void write_and_replay(session *ss, uint8_t f, au_allocator *al) {
    static const uint32_t fail_calls[8] = {0, 1, 2, 3, 4, 6, 9, 14};
    au_snapshot_meta meta = {4242, 0x030c01f0, 0x7f0000010040ull, 1764000000000000000ull,
                             (f >> 3) & 3u, threads, 0x7f0000020000ull, 0x7f0000030000ull};
    sink one = {0}, two = {0};
    two.fail_at = fail_calls[f & 7];
    int rc = au_recorder_write(ss->rec, &meta, sink_write, &one);
    if (ss->ta->failed) {
        CHECK(rc == AU_ERR_NOMEM, "allocation failed, yet au_recorder_write gave %d", rc);
        free(one.data);
        return;
    }
    CHECK(rc == AU_OK, "au_recorder_write: %d (%s)", rc, au_status_str(rc));
    ss->ta->fail_at = 0; /* the write's allocations passed: no more failures */
    rc = au_recorder_write(ss->rec, &meta, sink_write, &two);
    if (two.fail_at && two.fail_at <= one.calls) {
        CHECK(rc == AU_ERR_IO, "the writer failed call %u of %u, yet the write gave %d",
              two.fail_at, one.calls, rc);
    } else {
        CHECK(rc == AU_OK && two.len == one.len && memcmp(two.data, one.data, one.len) == 0,
              "a second write differs (rc %d, %zu bytes, %zu before)", rc, two.len, one.len);
    }
    replay_log(&one, &meta, al);
    free(one.data);
    free(two.data);
}

/* ========================================================================
 * Entry point
 * ===================================================================== */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fh_input s = {data, size, 0};
    uint8_t f = fh_u8(&s), a = fh_u8(&s);
    uint64_t unmapped = 0;
    for (int i = 0; i < 5; i++) unmapped |= (uint64_t)fh_u8(&s) << (8 * i);
    target_reset(unmapped);
    model_reset();
    L.n = L.nbatches = L.data_used = 0;
    L.batch_start[0] = 0;
    L.bytes = 0;

    static session ss; /* 16 KiB of scratch: not on the stack */
    test_alloc ta = {.fail_at = (f >> 6) == 3 ? 1u + a % 64u : 0};
    au_allocator al = {ta_realloc, &ta};
    memset(&ss.inner, 0, sizeof ss.inner);
    ss.inner.read = fake_read;
    ss.ta = &ta;
    ss.rec = NULL;
    int rc = au_recorder_open(&al, &ss.inner, &ss.rec);
    if (rc != AU_OK) {
        CHECK(rc == AU_ERR_NOMEM && ta.failed && ta.live == 0, "au_recorder_open: %d", rc);
        return 0;
    }
    check_stats(ss.rec, &ss.inner);

    run_script(&ss, &s);

    /* The target changes everywhere; every batch must read as before. */
    uint32_t nscript = L.nbatches;
    for (uint32_t i = 0; i < NPAGES; i++) {
        if (f & 0x20) T.pages[i].mapped = 0;
        else new_contents(i);
    }
    for (uint32_t b = 0; b < nscript; b++) {
        const logent *e = &L.e[L.batch_start[b]];
        plan p[MAX_BATCH];
        uint32_t n = L.batch_start[b + 1] - L.batch_start[b];
        for (uint32_t i = 0; i < n; i++) p[i] = (plan){e[i].addr, e[i].len};
        record_batch(&ss, p, n);
        if (!ta.failed) check_same(b, L.nbatches - 1);
    }

    write_and_replay(&ss, f, &al);
    au_memsrc_destroy(ss.rec);
    CHECK(ta.live == 0, "%" PRId64 " blocks leaked", ta.live);
    return 0;
}
