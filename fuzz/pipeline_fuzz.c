/*
 * Fuzz target `pipeline`: the whole stack-unwinding pipeline over a
 * corrupted memory snapshot.  The input is a snapshot file
 * (docs/SNAPSHOT.md): it is parsed (au_snapshot_parse), served through the
 * snapshot memory source, and read by au_pyreader with the META record's
 * py_version_hex and runtime_addr, exactly as `asyncunwind replay` does.
 * The seeds are real snapshots of Python 3.9-3.15 processes
 * (corpus/golden/), so the reader starts from real interpreter state and
 * the mutator corrupts it.
 *
 * ---------------------------------------------------------------------------
 * The run.  The low bits of META time_ns choose the reader's limits:
 *
 *   bits 14-15   0: au_pyreader_new(limits = NULL), the defaults; else
 *                limits from (0 = the library default):
 *   bits 0-3     max_frames     {0,1,2,3,4,5,7,8,12,16,32,64,100,1000,
 *                                2^31, UINT32_MAX}
 *   bits 4-5     max_threads    {0,1,2,UINT32_MAX}
 *   bits 6-8     max_name       {0,1,2,3,8,64,2^30,UINT32_MAX}
 *   bits 9-11    cache_entries  {0,1,16,17,33,64,256,1000}
 *                (the default, 4096 entries, costs ~1 ms per reader)
 *   bit 12       also run reader C (allocation failure, below)
 *   bits 16-21   C's failing allocation: call 1 + (bits % 48)
 *
 * Reader A (a size-checking allocator that fills new memory with 0x00)
 * samples 3 times; reader B, over a second memory source on the same
 * snapshot (allocator filling with 0x5A: a pointer read from uninitialised
 * memory is NULL in A and wild in B), does the same; reader C, when
 * bit 12 is set, has an allocator that refuses exactly one call and
 * samples 3 times.  One reader per input, created and freed each time, so
 * leaks are caught (LeakSanitizer, and the allocators' own block count).
 *
 * Checked:
 *   status   au_pyreader_new: AU_OK, or UNSUPPORTED (exactly when the
 *            version is outside 3.9-3.15), ARG (runtime 0), READ/FORMAT/
 *            CORRUPT (3.13+ debug offsets); au_pyreader_sample: AU_OK or
 *            AU_ERR_READ (and AU_ERR_NOMEM only for reader C);
 *   bounds   nthreads <= max_threads, nframes <= max_frames per thread;
 *            a TRUNCATED sample has exactly max_threads threads, a
 *            TRUNCATED thread exactly max_frames frames; flags are known
 *            bits; thread states are distinct, non-zero, 8-aligned; frame
 *            addresses are non-zero, 8-aligned and distinct in a thread;
 *   code     every frame's code index resolves (au_pyreader_code != NULL)
 *            or is UINT32_MAX (then line == -1); frames of one sample with
 *            the same code address share the index, different addresses
 *            never do; every byte of name, qualname and filename is read
 *            (copied: ASan checks them); they are valid UTF-8 of at most
 *            max_name code points, or exactly max_name plus "...";
 *   determinism  readers A and B give byte-identical renders (threads,
 *            frames, names, lines, statuses and stats) for every sample;
 *            since A and B allocate through allocators that fill fresh
 *            memory differently, an output that depends on uninitialised
 *            memory shows up here too;
 *   cache    every sample of a reader (and of C, after its allocation
 *            failure) has the same threads and frames (addresses, code
 *            addresses, flags) as A's first; where a frame resolves in both,
 *            name, qualname, filename, first line and line are equal: the
 *            second sample takes the cache-validation path, and a cache hit
 *            must give what a fresh read gives;
 *   memory   the reader's stats.mem.requests equals the au_read entries it
 *            really issued (counted by a wrapping memory source), batches
 *            equals the read calls, syscalls are 0; requests stay under a
 *            bound derived from the limits and the sample's size
 *            (request_bound); no au_read asks for a NULL buffer, or (under
 *            ASan) a buffer that is not addressable over its whole length.
 * A violation prints what failed and the renders, and aborts.  Under
 * `<name>_regression`, each input also gets a 20 s watchdog (a hang fails
 * fast instead of timing out) and the mutator is self-tested on it (every
 * output must parse).
 *
 * AU_PIPELINE_PRINT=1 prints the readers' samples.
 *
 * ---------------------------------------------------------------------------
 * The mutator (LLVMFuzzerCustomMutator) parses the container into a model
 * (META, threads, regions, FAILED records), mutates inside it and writes a
 * valid file back (regions sorted and disjoint, FAILED sorted and unique);
 * every output is re-parsed with au_snapshot_parse as a self-check.  One to
 * four of: aligned words of region payloads replaced by pointers into
 * other (or the same) regions at small offsets, preferring words that hold
 * pointers already; by 0, -1, huge and boundary values or small changes of
 * the old value; 1-, 2- and 4-byte fields; bytes mutated by libFuzzer's
 * own LLVMFuzzerMutate (dictionary and comparison operands included); words
 * copied; regions shifted, dropped, duplicated elsewhere (with a pointer
 * retargeted to the copy), split, merged, truncated, extended; META
 * py_version_hex set to supported versions and neighbours, runtime_addr to
 * other regions, the limit bits changed; FAILED records added (usually for
 * a read the reader really makes: it is run on the input, recording its
 * reads) or removed; threads added or removed.  Unparseable inputs get
 * LLVMFuzzerMutate.  LLVMFuzzerCustomCrossOver merges the regions of two
 * snapshots and sometimes swaps META.
 */
#define _DEFAULT_SOURCE /* sigaction, alarm under -std=c11 */

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "fuzz/run_from_workspace.h"
#include "snapshot_format.h"

/* libFuzzer's mutator; absent in the regression test and under AFL++. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size) __attribute__((weak));
/* Present under ASan only. */
void *__asan_region_is_poisoned(void *beg, size_t size) __attribute__((weak));

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2,
                                 uint8_t *out, size_t max_out, unsigned int seed);

static int regression_mode; /* running as <name>_regression */
static int print_renders;   /* AU_PIPELINE_PRINT: show reader A's samples */

/* What is being checked, for failure reports. */
static const char *cur_a, *cur_b;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) fail_check(__LINE__, #cond, __VA_ARGS__);              \
    } while (0)

static void fail_check(int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void fail_check(int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "pipeline_fuzz: line %d: check failed: %s\n  ", line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (cur_a) fprintf(stderr, "---- first render ----\n%s", cur_a);
    if (cur_b) fprintf(stderr, "---- second render ----\n%s", cur_b);
    abort();
}

/* ========================================================================
 * Small helpers
 * ===================================================================== */

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "pipeline_fuzz: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "pipeline_fuzz: out of memory\n");
        abort();
    }
    return q;
}

/* A growable text buffer. */
typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tprintf(text *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->s ? t->s + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) abort();
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n + 64;
        t->s = xrealloc(t->s, t->cap);
    }
}

static void tbytes(text *t, const char *p, uint32_t n) {
    tprintf(t, "\"");
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') tprintf(t, "%c", c);
        else tprintf(t, "\\x%02x", c);
    }
    tprintf(t, "\"");
}

/* ========================================================================
 * Allocators: size-checked, counting, filling, optionally failing once.
 * ===================================================================== */

typedef struct test_alloc {
    uint8_t fill;      /* fresh bytes get this value (the first FILL_MAX) */
    uint64_t calls;    /* allocations and growths */
    uint64_t fail_at;  /* that call (1-based) returns NULL; 0 = never */
    int failed;
    int64_t live;
    size_t big_request; /* the largest request over BIG_ALLOC */
} test_alloc;

#define BIG_ALLOC ((size_t)1 << 30)
#define FILL_MAX ((size_t)1 << 16)

#define BLOCK_MAGIC 0x5eedf00dull
#define BIG_MAGIC 0xb16b10c5ull
#define HUGE_ALLOC ((size_t)16 << 30)

/* A block in its own mapping: header page, then the bytes. */
static size_t *big_map(size_t size) {
    size_t total = size + 4096;
    uint8_t *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    size_t *h = (size_t *)(p + 4096) - 2;
    h[0] = size;
    h[1] = BIG_MAGIC;
    ((size_t *)p)[0] = total;
    return h;
}

static void free_block(size_t *h) {
    if (h[1] == BIG_MAGIC) {
        uint8_t *base = (uint8_t *)(h + 2) - 4096;
        munmap(base, ((size_t *)base)[0]);
    } else {
        free(h);
    }
}

static void *ta_realloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    test_alloc *a = ud;
    if (ptr) {
        size_t *h = (size_t *)ptr - 2;
        CHECK(h[1] == BLOCK_MAGIC || h[1] == BIG_MAGIC, "allocator: a block that is not ours");
        CHECK(h[0] == old_size, "allocator: old_size %zu, the block has %zu", old_size, h[0]);
    } else {
        CHECK(old_size == 0, "allocator: old_size %zu for a new block", old_size);
    }
    if (new_size == 0) {
        if (ptr) {
            a->live--;
            free_block((size_t *)ptr - 2);
        }
        return NULL;
    }
    if (++a->calls == a->fail_at) {
        a->failed = 1;
        return NULL;
    }
    if (new_size > BIG_ALLOC || (ptr && ((size_t *)ptr - 2)[1] == BIG_MAGIC)) {
        /* Over 1 GiB: noted (whether asking was legitimate is checked by
         * the caller), and served from reserved address space, backed only
         * where touched, so that a reader that under-sizes such a block or
         * misreads next to it is caught; over 16 GiB: refused, and the
         * reader must report AU_ERR_NOMEM. */
        if (new_size > BIG_ALLOC && new_size > a->big_request) a->big_request = new_size;
        if (new_size > HUGE_ALLOC) return NULL;
        size_t *h = big_map(new_size);
        if (!h) return NULL;
        if (ptr) {
            size_t *old = (size_t *)ptr - 2;
            memcpy(h + 2, ptr, old_size < new_size ? old_size : new_size);
            free_block(old);
        } else {
            a->live++;
        }
        return h + 2;
    }
    size_t *h = realloc(ptr ? (size_t *)ptr - 2 : NULL, new_size + 2 * sizeof(size_t));
    if (!h) return NULL;
    if (!ptr) a->live++;
    if (new_size > old_size) {
        size_t n = new_size - old_size;
        memset((uint8_t *)(h + 2) + old_size, a->fill, n < FILL_MAX ? n : FILL_MAX);
    }
    h[0] = new_size;
    h[1] = BLOCK_MAGIC;
    return h + 2;
}

/* ========================================================================
 * A memory source around another: counts and checks what the reader asks.
 * ===================================================================== */

typedef struct checkmem {
    au_memsrc base;
    au_memsrc *inner;
    uint64_t calls, requests;
    uint64_t max_len; /* longest read allowed */
    /* Recording (for the mutator's FAILED records). */
    au_read *log;
    uint32_t nlog, log_cap;
} checkmem;

static int checkmem_read(au_memsrc *self, au_read *reads, uint32_t n) {
    checkmem *c = (checkmem *)self;
    c->calls++;
    c->requests += n;
    for (uint32_t i = 0; i < n; i++) {
        const au_read *r = &reads[i];
        if (r->len == 0) continue;
        CHECK(r->buf != NULL, "the reader passed a NULL buffer (read %#" PRIx64 "+%u)",
              r->addr, r->len);
        CHECK(r->len <= c->max_len, "read %#" PRIx64 "+%u is longer than %" PRIu64, r->addr,
              r->len, c->max_len);
        if (__asan_region_is_poisoned)
            CHECK(__asan_region_is_poisoned(r->buf, r->len) == NULL,
                  "read %#" PRIx64 "+%u into a buffer not addressable over its length",
                  r->addr, r->len);
    }
    int rc = c->inner->read(c->inner, reads, n);
    c->base.stats = c->inner->stats;
    for (uint32_t i = 0; i < n && c->log; i++) {
        if (c->nlog == c->log_cap) break;
        c->log[c->nlog++] = reads[i];
    }
    return rc;
}

static void checkmem_destroy(au_memsrc *self) {
    checkmem *c = (checkmem *)self;
    au_memsrc_destroy(c->inner);
}

static void checkmem_init(checkmem *c, au_memsrc *inner, uint64_t max_len) {
    memset(c, 0, sizeof *c);
    c->base.read = checkmem_read;
    c->base.destroy = checkmem_destroy;
    c->inner = inner;
    c->max_len = max_len;
}

/* ========================================================================
 * Limits from time_ns
 * ===================================================================== */

typedef struct run_config {
    int use_limits;
    au_pyreader_limits lim; /* as passed */
    au_pyreader_limits eff; /* effective */
    int fault;
    uint32_t fault_at;
} run_config;

static const uint32_t MAX_FRAMES[16] = {0, 1, 2, 3, 4, 5, 7, 8, 12, 16, 32, 64, 100, 1000,
                                        1u << 31, UINT32_MAX};
static const uint32_t MAX_THREADS[4] = {0, 1, 2, UINT32_MAX};
static const uint32_t MAX_NAME[8] = {0, 1, 2, 3, 8, 64, 1u << 30, UINT32_MAX};
static const uint32_t CACHE[8] = {0, 1, 16, 17, 33, 64, 256, 1000};

static run_config decode_config(uint64_t time_ns) {
    run_config c;
    memset(&c, 0, sizeof c);
    uint32_t b = (uint32_t)time_ns;
    c.use_limits = (b >> 14) & 3;
    if (c.use_limits) {
        c.lim.max_frames = MAX_FRAMES[b & 15];
        c.lim.max_threads = MAX_THREADS[(b >> 4) & 3];
        c.lim.max_name = MAX_NAME[(b >> 6) & 7];
        c.lim.cache_entries = CACHE[(b >> 9) & 7];
    }
    /* Defaults for 0, then the documented maxima (asyncunwind.h). */
    c.eff.max_frames = c.lim.max_frames ? c.lim.max_frames : 4096;
    c.eff.max_threads = c.lim.max_threads ? c.lim.max_threads : 1024;
    c.eff.max_name = c.lim.max_name ? c.lim.max_name : 1024;
    c.eff.cache_entries = c.lim.cache_entries ? c.lim.cache_entries : 4096;
    if (c.eff.max_frames > (1u << 20)) c.eff.max_frames = 1u << 20;
    if (c.eff.max_threads > (1u << 16)) c.eff.max_threads = 1u << 16;
    if (c.eff.max_name > 4096) c.eff.max_name = 4096;
    if (c.eff.cache_entries > (1u << 20)) c.eff.cache_entries = 1u << 20;
    c.fault = (b >> 12) & 1;
    c.fault_at = 1 + ((b >> 16) & 63) % 48;
    return c;
}

static int supported_version(uint32_t v) {
    uint32_t mm = v >> 16;
    return mm >= 0x0309 && mm <= 0x030F;
}

/* ========================================================================
 * Copies of samples, their checks and renders
 * ===================================================================== */

typedef struct fcopy {
    uint64_t addr, code_addr;
    int32_t line;
    uint32_t code;
    int resolved;
    int32_t firstlineno;
    size_t str_off; /* name, qualname, filename in the copy's strings */
    uint32_t lens[3];
} fcopy;

typedef struct tcopy {
    uint64_t tstate, thread_id, native_id;
    int64_t interp_id;
    uint32_t flags, nframes;
    size_t first; /* into frames */
} tcopy;

typedef struct scopy {
    int rc;
    uint32_t nthreads, flags;
    tcopy *threads;
    fcopy *frames;
    size_t nframes;
    char *strs;
    size_t strs_len;
    au_pyreader_stats stats;
    uint64_t calls, requests; /* as counted by checkmem */
} scopy;

static void scopy_free(scopy *s) {
    free(s->threads);
    free(s->frames);
    free(s->strs);
    memset(s, 0, sizeof *s);
}

/* Valid UTF-8 (no overlongs, surrogates or values past U+10FFFF)?  Counts
 * code points. */
static int utf8_valid(const unsigned char *s, uint32_t n, uint64_t *cps) {
    uint64_t count = 0;
    uint32_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        uint32_t need, cp;
        if (c < 0x80) {
            i++;
            count++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < need) return 0;
        for (uint32_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
            (need == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
        count++;
    }
    *cps = count;
    return 1;
}

static void check_name(const char *what, const char *p, uint32_t n, uint32_t max_name) {
    CHECK(n == 0 || p != NULL, "%s: NULL with %u bytes", what, n);
    uint64_t cps = 0;
    CHECK(utf8_valid((const unsigned char *)p, n, &cps), "%s: invalid UTF-8 (%u bytes)", what,
          n);
    int cut = cps == (uint64_t)max_name + 3 && n >= 3 && memcmp(p + n - 3, "...", 3) == 0;
    CHECK(cps <= max_name || cut, "%s: %" PRIu64 " code points, max_name %u", what, cps,
          max_name);
}

/* Copy (and check) one sample.  Reads every byte the reader hands out. */
static void take_sample(au_pyreader *r, const run_config *cfg, const checkmem *cm,
                        uint64_t calls0, uint64_t req0, int rc, const au_pysample *out,
                        scopy *s) {
    memset(s, 0, sizeof *s);
    s->rc = rc;
    s->calls = cm->calls - calls0;
    s->requests = cm->requests - req0;
    if (rc != AU_OK) return;
    au_pyreader_get_stats(r, &s->stats);
    s->nthreads = out->nthreads;
    s->flags = out->flags;
    CHECK(out->nthreads <= cfg->eff.max_threads, "%u threads, max_threads %u", out->nthreads,
          cfg->eff.max_threads);
    CHECK((out->flags & ~AU_THREAD_TRUNCATED) == 0, "sample flags %#x", out->flags);
    CHECK(!(out->flags & AU_THREAD_TRUNCATED) || out->nthreads == cfg->eff.max_threads,
          "sample TRUNCATED with %u threads (max %u)", out->nthreads, cfg->eff.max_threads);
    CHECK(out->nthreads == 0 || out->threads != NULL, "threads NULL");
    s->threads = xmalloc((size_t)out->nthreads * sizeof *s->threads);
    size_t total = 0;
    for (uint32_t i = 0; i < out->nthreads; i++) total += out->threads[i].nframes;
    s->frames = xmalloc(total * sizeof *s->frames);
    s->nframes = total;
    text strs = {NULL, 0, 0};
    size_t at = 0;
    for (uint32_t i = 0; i < out->nthreads; i++) {
        const au_pythread *t = &out->threads[i];
        tcopy *tc = &s->threads[i];
        *tc = (tcopy){t->tstate, t->thread_id, t->native_id, t->interp_id, t->flags,
                      t->nframes, at};
        CHECK(t->tstate != 0 && (t->tstate & 7) == 0, "thread %u: tstate %#" PRIx64, i,
              t->tstate);
        for (uint32_t j = 0; j < i; j++)
            CHECK(out->threads[j].tstate != t->tstate, "threads %u and %u share tstate %#" PRIx64,
                  j, i, t->tstate);
        CHECK((t->flags & ~(AU_THREAD_TRUNCATED | AU_THREAD_PARTIAL | AU_THREAD_CYCLE)) == 0,
              "thread %u flags %#x", i, t->flags);
        CHECK(t->nframes <= cfg->eff.max_frames, "thread %u: %u frames, max_frames %u", i,
              t->nframes, cfg->eff.max_frames);
        /* TRUNCATED may come with fewer than max_frames frames: a walk is
         * also cut after 2 x max_frames frames of any kind, C-owned frames
         * included (the bound above still holds). */
        CHECK(t->nframes == 0 || t->frames != NULL, "thread %u: frames NULL", i);
        for (uint32_t k = 0; k < t->nframes; k++) {
            const au_pyframe *f = &t->frames[k];
            fcopy *fc = &s->frames[at + k];
            memset(fc, 0, sizeof *fc);
            fc->addr = f->addr;
            fc->code_addr = f->code_addr;
            fc->line = f->line;
            fc->code = f->code;
            CHECK(f->addr != 0 && (f->addr & 7) == 0, "thread %u frame %u: address %#" PRIx64,
                  i, k, f->addr);
            for (uint32_t j = 0; j < k; j++)
                CHECK(t->frames[j].addr != f->addr,
                      "thread %u: frames %u and %u share address %#" PRIx64, i, j, k, f->addr);
            const au_pycode *c = au_pyreader_code(r, f->code);
            if (f->code == UINT32_MAX) {
                CHECK(c == NULL, "code UINT32_MAX resolves");
                CHECK(f->line == -1, "thread %u frame %u: no code, line %d", i, k, f->line);
                continue;
            }
            CHECK(c != NULL, "thread %u frame %u: code index %u does not resolve", i, k,
                  f->code);
            CHECK(f->code_addr != 0 && (f->code_addr & 7) == 0,
                  "thread %u frame %u: resolved code at %#" PRIx64, i, k, f->code_addr);
            fc->resolved = 1;
            fc->firstlineno = c->firstlineno;
            fc->str_off = strs.len;
            const char *p[3] = {c->name, c->qualname, c->filename};
            uint32_t n[3] = {c->name_len, c->qualname_len, c->filename_len};
            static const char *const what[3] = {"name", "qualname", "filename"};
            for (int w = 0; w < 3; w++) {
                check_name(what[w], p[w], n[w], cfg->eff.max_name);
                fc->lens[w] = n[w];
                size_t need = strs.len + n[w] + 1;
                if (need > strs.cap) {
                    strs.cap = need * 2;
                    strs.s = xrealloc(strs.s, strs.cap);
                }
                if (n[w]) memcpy(strs.s + strs.len, p[w], n[w]); /* every byte: ASan */
                strs.len += n[w];
            }
        }
        at += t->nframes;
    }
    s->strs = strs.s;
    s->strs_len = strs.len;
    /* Code indices: one per code address within a sample. */
    for (size_t a = 0; a < total; a++) {
        if (!s->frames[a].resolved) continue;
        for (size_t b = a + 1; b < total && b < a + 64; b++) {
            if (!s->frames[b].resolved) continue;
            int same_addr = s->frames[a].code_addr == s->frames[b].code_addr;
            int same_idx = s->frames[a].code == s->frames[b].code;
            CHECK(same_addr == same_idx,
                  "frames %zu and %zu: code %#" PRIx64 " index %u, code %#" PRIx64 " index %u",
                  a, b, s->frames[a].code_addr, s->frames[a].code, s->frames[b].code_addr,
                  s->frames[b].code);
        }
    }
    CHECK(au_pyreader_code(r, UINT32_MAX) == NULL, "au_pyreader_code(UINT32_MAX)");
}

/* The requests one sample may make, from the limits and what it returned:
 *   1 (interpreters.head) + 64 interpreters x 3 fields
 *   + per thread walked (returned, plus one per interpreter whose list
 *     ended on a failed read): 6 tstate fields + cframe + chunks
 *     (1 + 2 x 64) + 2 reads (a window, then the frame alone) per frame
 *     visited, bounded by the frame-address set (2 x max_frames rounded up
 *     to a power of two, at least 16), + 2
 *   + 8 (type checks) + 13 per frame (header, 3 rounds x 4 objects). */
static uint64_t request_bound(const run_config *cfg, const scopy *s) {
    uint64_t seen = 16;
    while (seen < 2 * (uint64_t)cfg->eff.max_frames) seen <<= 1;
    uint64_t per_thread = 6 + 1 + 1 + 2 * 64 + 2 * seen + 2;
    return 1 + 3 * 64 + ((uint64_t)s->nthreads + 64) * per_thread + 8 +
           13 * (uint64_t)s->nframes;
}

static void check_stats(const run_config *cfg, const scopy *s) {
    if (s->rc != AU_OK) return;
    CHECK(s->stats.mem.requests == s->requests,
          "stats.mem.requests %" PRIu64 ", the source served %" PRIu64, s->stats.mem.requests,
          s->requests);
    CHECK(s->stats.batches == s->calls, "stats.batches %u, read calls %" PRIu64,
          s->stats.batches, s->calls);
    CHECK(s->stats.mem.syscalls == 0, "syscalls %" PRIu64 " from a snapshot",
          s->stats.mem.syscalls);
    uint64_t bound = request_bound(cfg, s);
    CHECK(s->requests <= bound, "%" PRIu64 " requests, bound %" PRIu64, s->requests, bound);
}

static void render(text *t, const scopy *s, int with_stats) {
    tprintf(t, "sample rc=%d threads=%u flags=%#x\n", s->rc, s->nthreads, s->flags);
    for (uint32_t i = 0; i < s->nthreads; i++) {
        const tcopy *tc = &s->threads[i];
        tprintf(t,
                " thread tstate=%#" PRIx64 " id=%#" PRIx64 " native=%" PRIu64 " interp=%" PRId64
                " flags=%#x frames=%u\n",
                tc->tstate, tc->thread_id, tc->native_id, tc->interp_id, tc->flags, tc->nframes);
        for (uint32_t k = 0; k < tc->nframes; k++) {
            const fcopy *f = &s->frames[tc->first + k];
            tprintf(t, "  frame %#" PRIx64 " code=%#" PRIx64 " idx=%u line=%d", f->addr,
                    f->code_addr, f->code, f->line);
            if (f->resolved) {
                const char *p = s->strs + f->str_off;
                tprintf(t, " first=%d ", f->firstlineno);
                for (int w = 0; w < 3; w++) {
                    tbytes(t, p, f->lens[w]);
                    p += f->lens[w];
                    tprintf(t, w < 2 ? " " : "");
                }
            }
            tprintf(t, "\n");
        }
    }
    if (with_stats && s->rc == AU_OK) {
        const au_pyreader_stats *st = &s->stats;
        tprintf(t,
                " stats requests=%" PRIu64 " failures=%" PRIu64 " bytes=%" PRIu64
                " batches=%u hits=%u misses=%u evictions=%u allocations=%" PRIu64 "\n",
                st->mem.requests, st->mem.failures, st->mem.bytes, st->batches, st->code_hits,
                st->code_misses, st->code_evictions, st->allocations);
    }
}

/* Same threads and frames; names equal where both resolve. */
static void check_consistent(const char *what, const scopy *a, const scopy *b) {
    if (a->rc != AU_OK || b->rc != AU_OK) return;
    text ta = {NULL, 0, 0}, tb = {NULL, 0, 0};
    render(&ta, a, 0);
    render(&tb, b, 0);
    cur_a = ta.s;
    cur_b = tb.s;
    CHECK(a->nthreads == b->nthreads && a->flags == b->flags, "%s: threads %u/%#x vs %u/%#x",
          what, a->nthreads, a->flags, b->nthreads, b->flags);
    for (uint32_t i = 0; i < a->nthreads; i++) {
        const tcopy *x = &a->threads[i], *y = &b->threads[i];
        CHECK(x->tstate == y->tstate && x->thread_id == y->thread_id &&
                  x->native_id == y->native_id && x->interp_id == y->interp_id &&
                  x->flags == y->flags && x->nframes == y->nframes,
              "%s: thread %u differs", what, i);
        for (uint32_t k = 0; k < x->nframes; k++) {
            const fcopy *f = &a->frames[x->first + k], *g = &b->frames[y->first + k];
            CHECK(f->addr == g->addr && f->code_addr == g->code_addr,
                  "%s: thread %u frame %u differs", what, i, k);
            if (!f->resolved || !g->resolved) continue;
            int same = f->firstlineno == g->firstlineno && f->line == g->line;
            for (int w = 0; w < 3; w++) same &= f->lens[w] == g->lens[w];
            same = same && memcmp(a->strs + f->str_off, b->strs + g->str_off,
                                  (size_t)f->lens[0] + f->lens[1] + f->lens[2]) == 0;
            CHECK(same, "%s: thread %u frame %u (code %#" PRIx64 "): names or lines differ", what,
                  i, k, f->code_addr);
        }
    }
    cur_a = cur_b = NULL;
    free(ta.s);
    free(tb.s);
}

/* ========================================================================
 * One reader's run
 * ===================================================================== */

#define NSAMPLES 3

typedef struct reader_run {
    int new_rc;
    scopy s[NSAMPLES];
    int64_t leaked;
} reader_run;

static uint64_t max_read_len(const run_config *cfg) {
    /* 16 MiB: _Py_DebugOffsets values are capped there (a header may be
     * that long); + 4 bytes per kept character of a name. */
    return (20ull << 20) + 4ull * cfg->eff.max_name;
}

/* With limits no larger than the defaults, memory is bounded by the
 * snapshot and the limits: a request over 1 GiB is a bug.  (Larger limits
 * may ask for more; the reader must then fail cleanly.) */
static void check_big(const run_config *cfg, const test_alloc *ta, const char *what) {
    int modest = cfg->eff.max_name <= 1024 && cfg->eff.max_frames <= 4096 &&
                 cfg->eff.max_threads <= 1024;
    CHECK(!ta->big_request || !modest,
          "%s asked the allocator for %zu bytes (max_frames %u, max_threads %u, max_name %u)",
          what, ta->big_request, cfg->eff.max_frames, cfg->eff.max_threads, cfg->eff.max_name);
}

static void run_reader(const au_snapshot *snap, const run_config *cfg, test_alloc *ta,
                       int expect_nomem, reader_run *out) {
    const au_snapshot_meta *meta = au_snapshot_get_meta(snap);
    memset(out, 0, sizeof *out);
    au_allocator al = {ta_realloc, ta};
    au_memsrc *inner = NULL;
    int rc = au_memsrc_snapshot_open(NULL, snap, &inner);
    CHECK(rc == AU_OK, "au_memsrc_snapshot_open: %d", rc);
    checkmem cm;
    checkmem_init(&cm, inner, max_read_len(cfg));
    au_pyreader *r = NULL;
    rc = au_pyreader_new(&al, &cm.base, meta->py_version_hex, meta->runtime_addr,
                         cfg->use_limits ? &cfg->lim : NULL, &r);
    out->new_rc = rc;
    if (!supported_version(meta->py_version_hex))
        CHECK(rc == AU_ERR_UNSUPPORTED || (rc == AU_ERR_ARG && meta->runtime_addr == 0),
              "au_pyreader_new(version %#x): %d", meta->py_version_hex, rc);
    else if (meta->runtime_addr == 0)
        CHECK(rc == AU_ERR_ARG, "au_pyreader_new(runtime 0): %d", rc);
    else
        CHECK(rc == AU_OK || rc == AU_ERR_READ || rc == AU_ERR_FORMAT ||
                  rc == AU_ERR_CORRUPT || rc == AU_ERR_UNSUPPORTED ||
                  (rc == AU_ERR_NOMEM && (ta->failed || ta->big_request)),
              "au_pyreader_new(version %#x, runtime %#" PRIx64 "): %d (%s)",
              meta->py_version_hex, meta->runtime_addr, rc, au_status_str(rc));
    CHECK((rc == AU_OK) == (r != NULL), "au_pyreader_new: status %d, reader %p", rc, (void *)r);
    check_big(cfg, ta, "au_pyreader_new");
    if (rc == AU_OK && (meta->py_version_hex >> 16) < 0x030D)
        CHECK(cm.requests == 0, "au_pyreader_new read %" PRIu64 " times before 3.13",
              cm.requests);
    for (int i = 0; r && i < NSAMPLES; i++) {
        au_pysample smp;
        uint64_t calls0 = cm.calls, req0 = cm.requests;
        int failed_before = ta->failed;
        ta->big_request = 0;
        rc = au_pyreader_sample(r, &smp);
        check_big(cfg, ta, "au_pyreader_sample");
        int nomem_ok = (expect_nomem && ta->failed && !failed_before) || ta->big_request;
        CHECK(rc == AU_OK || rc == AU_ERR_READ || (rc == AU_ERR_NOMEM && nomem_ok),
              "au_pyreader_sample #%d: %d (%s)", i + 1, rc, au_status_str(rc));
        take_sample(r, cfg, &cm, calls0, req0, rc, &smp, &out->s[i]);
        if (!nomem_ok || rc == AU_OK) check_stats(cfg, &out->s[i]);
    }
    au_pyreader_free(r);
    au_memsrc_destroy(&cm.base);
    out->leaked = ta->live;
    CHECK(ta->live == 0, "%" PRId64 " blocks leaked by the reader", ta->live);
}

static void reader_run_free(reader_run *rr) {
    for (int i = 0; i < NSAMPLES; i++) scopy_free(&rr->s[i]);
}

/* ========================================================================
 * Entry points
 * ===================================================================== */

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "pipeline_fuzz: input took more than 20 s (hang)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    au_fuzz_run_from_workspace();
    if (argc && *argc > 0 && argv && *argv && (*argv)[0]) {
        const char *a0 = (*argv)[0];
        size_t n = strlen(a0);
        static const char suffix[] = "_regression";
        regression_mode = n >= sizeof suffix - 1 &&
                          strcmp(a0 + n - (sizeof suffix - 1), suffix) == 0;
    }
    const char *e = getenv("AU_PIPELINE_PRINT");
    print_renders = e && *e && strcmp(e, "0") != 0;
    if (regression_mode) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
    }
    return 0;
}

static void self_test_mutator(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (regression_mode) alarm(20);
    au_snapshot *snap = NULL;
    if (au_snapshot_parse(NULL, data, size, &snap) != AU_OK) {
        if (regression_mode) alarm(0);
        return 0;
    }
    const au_snapshot_meta *meta = au_snapshot_get_meta(snap);
    run_config cfg = decode_config(meta->time_ns);

    test_alloc ta_a = {0x00, 0, 0, 0, 0, 0}, ta_b = {0x5A, 0, 0, 0, 0, 0};
    reader_run A, B;
    run_reader(snap, &cfg, &ta_a, 0, &A);
    run_reader(snap, &cfg, &ta_b, 0, &B);

    /* Determinism: A and B identical, stats included. */
    CHECK(A.new_rc == B.new_rc, "au_pyreader_new: %d vs %d", A.new_rc, B.new_rc);
    for (int i = 0; i < NSAMPLES; i++) {
        text ta = {NULL, 0, 0}, tb = {NULL, 0, 0};
        render(&ta, &A.s[i], 1);
        render(&tb, &B.s[i], 1);
        cur_a = ta.s;
        cur_b = tb.s;
        CHECK(ta.len == tb.len && memcmp(ta.s, tb.s, ta.len) == 0,
              "readers A and B differ in sample %d", i + 1);
        cur_a = cur_b = NULL;
        free(ta.s);
        free(tb.s);
    }
    if (print_renders) {
        text t = {NULL, 0, 0};
        tprintf(&t, "version %#x runtime %#" PRIx64 " limits %s frames %u threads %u name %u "
                "cache %u, new %d\n", meta->py_version_hex, meta->runtime_addr,
                cfg.use_limits ? "set" : "NULL", cfg.eff.max_frames, cfg.eff.max_threads,
                cfg.eff.max_name, cfg.eff.cache_entries, A.new_rc);
        for (int i = 0; i < NSAMPLES; i++) render(&t, &A.s[i], 1);
        tprintf(&t, "reader B:\n");
        for (int i = 0; i < NSAMPLES; i++) render(&t, &B.s[i], 1);
        fputs(t.s, stderr);
        free(t.s);
    }
    /* The cache: later samples agree with the first. */
    for (int i = 1; i < NSAMPLES; i++) check_consistent("sample 1 vs later", &A.s[0], &A.s[i]);

    /* C: one allocation fails; what succeeds must agree with A. */
    if (cfg.fault && A.new_rc == AU_OK) {
        test_alloc ta_c = {0xC3, 0, cfg.fault_at, 0, 0, 0};
        reader_run C;
        run_reader(snap, &cfg, &ta_c, 1, &C);
        if (print_renders) {
            text t = {NULL, 0, 0};
            tprintf(&t, "reader C: allocation %u fails; new %d\n", cfg.fault_at, C.new_rc);
            for (int i = 0; i < NSAMPLES; i++) render(&t, &C.s[i], 1);
            fputs(t.s, stderr);
            free(t.s);
        }
        for (int i = 0; i < NSAMPLES; i++)
            if (C.new_rc == AU_OK)
                check_consistent("A vs allocation-failure reader", &A.s[0], &C.s[i]);
        reader_run_free(&C);
    }
    reader_run_free(&A);
    reader_run_free(&B);
    au_snapshot_free(snap);
    if (regression_mode) {
        self_test_mutator(data, size);
        alarm(0);
    }
    return 0;
}

/* ========================================================================
 * The snapshot model (for the mutator)
 * ===================================================================== */

typedef struct mregion {
    uint64_t addr;
    uint32_t len, cap;
    uint8_t *data;
} mregion;

typedef struct mfailed {
    uint64_t addr, len;
} mfailed;

typedef struct mthread {
    uint64_t id;
    uint32_t len;
    uint8_t name[AU_SNAP_MAX_NAME];
} mthread;

typedef struct model {
    uint32_t pid, version;
    uint64_t runtime, time_ns;
    uint8_t *extra; /* META payload past 24 bytes */
    uint32_t extra_len;
    mthread *threads;
    uint32_t nthreads;
    mregion *regions;
    uint32_t nregions, regions_cap;
    mfailed *failed;
    uint32_t nfailed, failed_cap;
} model;

static void model_free(model *m) {
    for (uint32_t i = 0; i < m->nregions; i++) free(m->regions[i].data);
    free(m->regions);
    free(m->failed);
    free(m->threads);
    free(m->extra);
    memset(m, 0, sizeof *m);
}

static mregion *add_region(model *m, uint64_t addr, const uint8_t *bytes, uint32_t len) {
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

static void add_failed(model *m, uint64_t addr, uint64_t len) {
    if (m->nfailed == m->failed_cap) {
        m->failed_cap = m->failed_cap * 2 + 8;
        m->failed = xrealloc(m->failed, m->failed_cap * sizeof *m->failed);
    }
    m->failed[m->nfailed++] = (mfailed){addr, len};
}

/* 0 when data is a valid snapshot (model filled), -1 otherwise. */
static int model_parse(const uint8_t *data, size_t size, model *m) {
    memset(m, 0, sizeof *m);
    au_snapshot *s = NULL;
    if (au_snapshot_parse(NULL, data, size, &s) != AU_OK) return -1;
    au_snapshot_free(s);
    m->threads = xmalloc(AU_SNAP_MAX_THREADS * sizeof *m->threads);
    size_t at = AU_SNAP_HEADER_SIZE;
    for (;;) { /* valid: every record is complete and END is last */
        uint32_t type = le32(data + at), len = le32(data + at + 4);
        const uint8_t *p = data + at + 8;
        at += 8 + (((size_t)len + 7) & ~(size_t)7);
        switch (type) {
        case AU_SNAP_META:
            m->pid = le32(p);
            m->version = le32(p + 4);
            m->runtime = le64(p + 8);
            m->time_ns = le64(p + 16);
            m->extra_len = len - AU_SNAP_META_SIZE;
            m->extra = xmalloc(m->extra_len);
            memcpy(m->extra, p + AU_SNAP_META_SIZE, m->extra_len);
            break;
        case AU_SNAP_THREAD: {
            mthread *t = &m->threads[m->nthreads++];
            t->id = le64(p);
            t->len = len - 8;
            memcpy(t->name, p + 8, t->len);
            break;
        }
        case AU_SNAP_REGION:
            add_region(m, le64(p), p + 8, len - 8);
            break;
        case AU_SNAP_FAILED:
            add_failed(m, le64(p), le64(p + 8));
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

/* Sort, and drop what the format does not allow (empty, too long, at 0,
 * wrapping or overlapping regions; duplicate FAILED records). */
static void model_normalize(model *m) {
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

static size_t model_size(const model *m) {
    size_t n = AU_SNAP_HEADER_SIZE + rec_size(AU_SNAP_META_SIZE + m->extra_len) + rec_size(0);
    for (uint32_t i = 0; i < m->nthreads; i++) n += rec_size(8 + m->threads[i].len);
    for (uint32_t i = 0; i < m->nregions; i++) n += rec_size(8 + (size_t)m->regions[i].len);
    n += (size_t)m->nfailed * rec_size(16);
    return n;
}

static uint8_t *put_rec(uint8_t *o, uint32_t type, uint32_t len) {
    put32(o, type);
    put32(o + 4, len);
    memset(o + 8, 0, ((size_t)len + 7) & ~(size_t)7); /* zero padding */
    return o + 8;
}

/* Writes the file (model_size bytes) to out. */
static size_t model_write(const model *m, uint8_t *out) {
    uint8_t *o = out;
    memcpy(o, AU_SNAP_MAGIC, 8);
    put32(o + 8, AU_SNAP_VERSION);
    put32(o + 12, AU_SNAP_HEADER_SIZE);
    o += AU_SNAP_HEADER_SIZE;
    uint8_t *p = put_rec(o, AU_SNAP_META, AU_SNAP_META_SIZE + m->extra_len);
    put32(p, m->pid);
    put32(p + 4, m->version);
    put64(p + 8, m->runtime);
    put64(p + 16, m->time_ns);
    if (m->extra_len) memcpy(p + AU_SNAP_META_SIZE, m->extra, m->extra_len);
    o += rec_size(AU_SNAP_META_SIZE + m->extra_len);
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const mthread *t = &m->threads[i];
        p = put_rec(o, AU_SNAP_THREAD, 8 + t->len);
        put64(p, t->id);
        if (t->len) memcpy(p + 8, t->name, t->len);
        o += rec_size(8 + t->len);
    }
    for (uint32_t i = 0; i < m->nregions; i++) {
        const mregion *g = &m->regions[i];
        p = put_rec(o, AU_SNAP_REGION, 8 + g->len);
        put64(p, g->addr);
        memcpy(p + 8, g->data, g->len);
        o += rec_size(8 + (size_t)g->len);
    }
    for (uint32_t i = 0; i < m->nfailed; i++) {
        p = put_rec(o, AU_SNAP_FAILED, 16);
        put64(p, m->failed[i].addr);
        put64(p + 8, m->failed[i].len);
        o += rec_size(16);
    }
    put_rec(o, AU_SNAP_END, 0);
    o += rec_size(0);
    return (size_t)(o - out);
}

/* ========================================================================
 * The mutator
 * ===================================================================== */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(rng *r, uint32_t n) { return n ? (uint32_t)(rnd(r) % n) : 0; }

/* A region, bigger ones more likely (they hold more of the target). */
static uint32_t pick_region(const model *m, rng *r) {
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

/* The region holding addr, or UINT32_MAX. */
static uint32_t find_region(const model *m, uint64_t addr) {
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

/* Room after region i (to the next one, or the top of the space). */
static uint64_t gap_after(const model *m, uint32_t i) {
    const mregion *g = &m->regions[i];
    uint64_t end = g->addr + g->len;
    return i + 1 < m->nregions ? m->regions[i + 1].addr - end : UINT64_MAX - end;
}

static uint64_t gap_before(const model *m, uint32_t i) {
    const mregion *g = &m->regions[i];
    return i ? g->addr - (m->regions[i - 1].addr + m->regions[i - 1].len) : g->addr - 1;
}

/* Offset in region g of a word aligned in the target's address space, or
 * UINT32_MAX when the region holds none. */
static uint32_t pick_word(const mregion *g, rng *r) {
    uint32_t first = (uint32_t)((8 - (g->addr & 7)) & 7);
    if (first + 8 > g->len) return UINT32_MAX;
    uint32_t nwords = (g->len - first) / 8;
    return first + 8 * below(r, nwords);
}

/* A pointer into the snapshot: a region's start, or inside it, or just
 * around it. */
static uint64_t some_pointer(const model *m, rng *r) {
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

static uint64_t interesting_value(uint64_t old, rng *r) {
    switch (below(r, 6)) {
    case 0: case 1: return INTERESTING[below(r, NINTERESTING)];
    case 2: return old + 1 + below(r, 16);
    case 3: return old - 1 - below(r, 16);
    case 4: return old ^ (1ull << below(r, 64));
    default: return below(r, 2) ? old + 8 * (1 + below(r, 32)) : old - 8 * (1 + below(r, 32));
    }
}

enum {
    M_WORD_PTR, M_WORD_VAL, M_NARROW, M_BYTES, M_COPY_WORD, M_SHIFT, M_DROP, M_DUP, M_SPLIT,
    M_MERGE, M_TRUNC, M_EXTEND, M_VERSION, M_RUNTIME, M_TIME, M_FAIL_ADD, M_FAIL_DEL, M_THREAD,
    M_COUNT
};

static const uint8_t WEIGHTS[M_COUNT] = {
    [M_WORD_PTR] = 20, [M_WORD_VAL] = 14, [M_NARROW] = 8, [M_BYTES] = 10, [M_COPY_WORD] = 5,
    [M_SHIFT] = 3,     [M_DROP] = 3,      [M_DUP] = 4,    [M_SPLIT] = 2,  [M_MERGE] = 2,
    [M_TRUNC] = 3,     [M_EXTEND] = 3,    [M_VERSION] = 4, [M_RUNTIME] = 3, [M_TIME] = 5,
    [M_FAIL_ADD] = 5,  [M_FAIL_DEL] = 2,  [M_THREAD] = 1,
};

static const uint32_t VERSIONS[] = {
    0x030900f0, 0x030912f0, 0x030a00f0, 0x030a0df0, 0x030b00f0, 0x030b07f0, 0x030b02f0,
    0x030c00f0, 0x030c01f0, 0x030d00f0, 0x030d00a1, 0x030e00f0, 0x030e0af0, 0x030e0af1,
    0x030f00a1, 0x030f02f0, 0x030800f0, 0x031000f0, 0x0309ffff, 0x03090000, 0, 0xffffffff,
    0x02070000, 0x04000000,
};
#define NVERSIONS (sizeof VERSIONS / sizeof *VERSIONS)

/* A read the reader makes on this input (recorded by running it). */
static int recorded_read(const uint8_t *data, size_t size, rng *r, uint64_t *addr,
                         uint32_t *len) {
    au_snapshot *snap = NULL;
    if (au_snapshot_parse(NULL, data, size, &snap) != AU_OK) return 0;
    const au_snapshot_meta *meta = au_snapshot_get_meta(snap);
    run_config cfg = decode_config(meta->time_ns);
    au_memsrc *inner = NULL;
    int found = 0;
    if (au_memsrc_snapshot_open(NULL, snap, &inner) == AU_OK) {
        checkmem cm;
        checkmem_init(&cm, inner, max_read_len(&cfg));
        au_read log[4096];
        cm.log = log;
        cm.log_cap = 4096;
        au_pyreader *pr = NULL;
        if (au_pyreader_new(NULL, &cm.base, meta->py_version_hex, meta->runtime_addr,
                            cfg.use_limits ? &cfg.lim : NULL, &pr) == AU_OK) {
            au_pysample smp;
            /* Later samples make the cache-validation reads only. */
            int n = 1 + (int)below(r, 2);
            for (int i = 0; i < n; i++) {
                if (i == n - 1) cm.nlog = 0;
                au_pyreader_sample(pr, &smp);
            }
            au_pyreader_free(pr);
        }
        if (cm.nlog) {
            /* Prefer reads that succeeded: failing those changes things. */
            uint32_t k = below(r, cm.nlog);
            for (uint32_t t = 0; t < 8 && log[k].status != AU_OK; t++) k = below(r, cm.nlog);
            *addr = log[k].addr;
            *len = log[k].len;
            found = 1;
        }
        au_memsrc_destroy(&cm.base);
    }
    au_snapshot_free(snap);
    return found;
}

/* One mutation of m; returns 0 when it did not apply. */
static int mutate_once(model *m, rng *r, const uint8_t *orig, size_t orig_size) {
    uint32_t total = 0;
    for (int k = 0; k < M_COUNT; k++) total += WEIGHTS[k];
    uint32_t x = below(r, total);
    int op = 0;
    while (x >= WEIGHTS[op]) x -= WEIGHTS[op++];
    if (m->nregions == 0 && op < M_VERSION && op != M_DUP) op = M_VERSION + (int)below(r, 3);
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
                if (o != UINT32_MAX && find_region(m, le64(g->data + o)) != UINT32_MAX) off = o;
            }
        }
        for (int t = 0; t < 8 && off == UINT32_MAX; t++) {
            g = &m->regions[pick_region(m, r)];
            off = pick_word(g, r);
        }
        if (off == UINT32_MAX) return 0;
        uint64_t old = le64(g->data + off);
        put64(g->data + off, op == M_WORD_PTR ? some_pointer(m, r) : interesting_value(old, r));
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
        uint64_t room = gap_after(m, i);
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
            if (gap_after(m, i) < d) return 0;
            g->addr += d;
        } else {
            if (gap_before(m, i) < d) return 0;
            g->addr -= d;
        }
        return 1;
    }
    case M_DROP: {
        uint32_t i = pick_region(m, r);
        free(m->regions[i].data);
        memmove(&m->regions[i], &m->regions[i + 1],
                (m->nregions - i - 1) * sizeof *m->regions);
        m->nregions--;
        return 1;
    }
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
        add_region(m, at, copy, len);
        free(copy);
        model_normalize(m); /* drops the copy if it overlaps */
        /* Point some word that pointed at the original to the copy. */
        if (below(r, 2) && m->nregions) {
            for (int t = 0; t < 32; t++) {
                mregion *g = &m->regions[pick_region(m, r)];
                uint32_t o = pick_word(g, r);
                if (o == UINT32_MAX) continue;
                uint64_t v = le64(g->data + o);
                if (v >= src && v - src < len) {
                    put64(g->data + o, at + (v - src));
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
        add_region(m, g.addr + k, g.data + k, g.len - k);
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
        free(b->data);
        a->data = d;
        a->len = n;
        a->cap = n + 64;
        memmove(&m->regions[i + 1], &m->regions[i + 2],
                (m->nregions - i - 2) * sizeof *m->regions);
        m->nregions--;
        return 1;
    }
    case M_TRUNC: {
        uint32_t i = pick_region(m, r);
        mregion *g = &m->regions[i];
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
        uint32_t k = 1 + below(r, 64);
        if (below(r, 2)) k = 8;
        if (gap_after(m, i) < k || g->len + k > AU_SNAP_MAX_REGION) return 0;
        if (g->cap < g->len + k) {
            g->cap = g->len + k + 64;
            g->data = xrealloc(g->data, g->cap);
        }
        for (uint32_t j = 0; j < k; j++) g->data[g->len + j] = below(r, 2) ? 0 : (uint8_t)rnd(r);
        g->len += k;
        return 1;
    }
    case M_VERSION:
        if (below(r, 4)) {
            m->version = VERSIONS[below(r, NVERSIONS)];
        } else {
            /* A neighbouring minor, same patch level. */
            m->version += below(r, 2) ? 0x10000u : (uint32_t)-0x10000;
        }
        return 1;
    case M_RUNTIME:
        if (below(r, 4)) m->runtime = some_pointer(m, r);
        else m->runtime = interesting_value(m->runtime, r);
        return 1;
    case M_TIME:
        switch (below(r, 3)) {
        case 0: m->time_ns ^= 1ull << below(r, 22); break;
        case 1: m->time_ns = (m->time_ns & ~0xffffffull) | (rnd(r) & 0x3fffff); break;
        default: m->time_ns = (m->time_ns & ~0xffffull) | 0x8000u | (rnd(r) & 0x7fff); break;
        }
        return 1;
    case M_FAIL_ADD: {
        uint64_t addr;
        uint32_t len;
        if (below(r, 4) && recorded_read(orig, orig_size, r, &addr, &len)) {
            add_failed(m, addr, len);
        } else {
            if (m->nregions == 0) return 0;
            const mregion *g = &m->regions[pick_region(m, r)];
            static const uint32_t lens[] = {1, 5, 8, 16, 24, 64, 256};
            add_failed(m, g->addr + (below(r, 2) ? 0 : 8 * below(r, g->len / 8 + 1)),
                       below(r, 4) ? lens[below(r, 7)] : g->len);
        }
        model_normalize(m);
        return 1;
    }
    case M_FAIL_DEL:
        if (m->nfailed == 0) return 0;
        {
            uint32_t k = below(r, m->nfailed);
            m->failed[k] = m->failed[m->nfailed - 1];
            m->nfailed--;
        }
        model_normalize(m);
        return 1;
    case M_THREAD:
        if (m->nthreads && below(r, 2)) {
            uint32_t k = below(r, m->nthreads);
            m->threads[k] = m->threads[m->nthreads - 1];
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

/* Writes m to out if it fits; checks the result parses.  0 if too big. */
static size_t emit(const model *m, uint8_t *out, size_t max_size) {
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

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    rng r = {seed * 0x9e3779b97f4a7c15ull + size};
    model m;
    if (model_parse(data, size, &m) != 0) return fallback_mutate(data, size, max_size, &r);
    /* Work on a copy of the input: the recorded-read mutation runs the
     * reader on the original, which has already been executed. */
    uint8_t *orig = xmalloc(size);
    memcpy(orig, data, size);
    int n = 1;
    while (n < 4 && below(&r, 3) == 0) n++;
    int applied = 0;
    for (int i = 0; i < n * 4 && applied < n; i++) applied += mutate_once(&m, &r, orig, size);
    model_normalize(&m);
    size_t out = emit(&m, data, max_size);
    model_free(&m);
    if (out == 0) {
        /* Too big: one size-neutral change of the original instead. */
        model_parse(orig, size, &m);
        for (int i = 0; i < 8; i++)
            if (m.nregions && mutate_once(&m, &r, orig, size)) break;
        model_normalize(&m);
        out = emit(&m, data, max_size);
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
    if (model_parse(d1, s1, &a) != 0) return 0;
    if (model_parse(d2, s2, &b) != 0) {
        model_free(&a);
        return 0;
    }
    /* B's regions join A's where they fit (normalize drops overlaps). */
    uint32_t keep = 1 + below(&r, 3); /* take 1/keep of them */
    for (uint32_t i = 0; i < b.nregions; i++)
        if (below(&r, keep) == 0) add_region(&a, b.regions[i].addr, b.regions[i].data,
                                             b.regions[i].len);
    if (below(&r, 4) == 0) {
        a.version = b.version;
        a.runtime = b.runtime;
    }
    for (uint32_t i = 0; i < b.nfailed; i++)
        if (below(&r, 2)) add_failed(&a, b.failed[i].addr, b.failed[i].len);
    model_normalize(&a);
    /* Too big: drop random regions until it fits. */
    while (model_size(&a) > max_out && a.nregions) {
        uint32_t i = below(&r, a.nregions);
        free(a.regions[i].data);
        memmove(&a.regions[i], &a.regions[i + 1], (a.nregions - i - 1) * sizeof *a.regions);
        a.nregions--;
    }
    size_t n = emit(&a, out, max_out);
    model_free(&a);
    model_free(&b);
    return n;
}

/* Under the regression test: every mutator output of a valid input must
 * be valid (emit() checks), and so must cross-overs. */
static void self_test_mutator(const uint8_t *data, size_t size) {
    size_t cap = size * 2 + 4096;
    uint8_t *buf = xmalloc(cap), *out = xmalloc(cap);
    for (unsigned seed = 1; seed <= 8; seed++) {
        memcpy(buf, data, size);
        size_t n = LLVMFuzzerCustomMutator(buf, size, cap, seed);
        CHECK(n > 0 && n <= cap, "mutator returned %zu", n);
        au_snapshot *s = NULL;
        CHECK(au_snapshot_parse(NULL, buf, n, &s) == AU_OK, "mutator output (seed %u) invalid",
              seed);
        au_snapshot_free(s);
        size_t c = LLVMFuzzerCustomCrossOver(data, size, buf, n, out, cap, seed);
        CHECK(c <= cap, "cross-over returned %zu", c);
    }
    free(buf);
    free(out);
}
