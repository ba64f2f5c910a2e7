/*
 * Every check of one sample of a corrupted snapshot (sampler_check.h).
 *
 * The input is a snapshot file (docs/SNAPSHOT.md).  It is parsed, and the
 * sampler replays it (au_sampler_open_snapshot_via, through `watchmem`, a
 * memory source that counts and checks every read), samples it, writes
 * out every stack (au_sample_stack_entries) and renders it in every format
 * (au_render: text, collapsed, tree, JSON, the last checked to be valid
 * JSON by fuzz/json_syntax.c), as `asyncunwind replay` does, then checks.
 *
 * ---------------------------------------------------------------------------
 * Options.  The low bits of META time_ns choose them (0 = the default):
 *
 *   bits 14-15   0: reader limits all 0 (the defaults); else from
 *     bits 0-3     max_frames     {0,1,2,3,4,5,7,8,12,16,32,64,100,1000,
 *                                  4097, 2^20}
 *     bits 4-5     max_threads    {0,1,2,UINT32_MAX}
 *     bits 6-8     max_name       {0,1,2,3,8,64,2^30,UINT32_MAX}
 *     bits 9-11    cache_entries  {0,1,16,17,33,64,256,1000}
 *                (with bits 14-15 at 0, cache_entries is 256 unless bit 13
 *                is set: the default 4,096-entry cache costs most of the
 *                time of an input, zeroing it for each of the samplers)
 *   bit 12       also run C (allocation failure, below)
 *   bits 16-21   C's failing allocation: 1 + bits * (A's allocations) / 64
 *   bits 22-23   3: sampler options from (else all 0, the defaults)
 *     bits 24-26   max_tasks        {0,1,2,3,5,16,64,1000}
 *     bits 27-29   max_coro_frames  {0,1,2,3,4,8,32,2000}
 *     bits 30-32   resolver max_depth {0,1,2,3,4,16,2^31,UINT32_MAX}
 *     bits 33-34   resolver max_tasks/max_links {0/0, 2/1000, 1000/2, 5/5}
 *     bit 35       AU_SAMPLER_NO_TASKS (not under SC_ASYNCIO)
 *     bit 36       AU_SAMPLER_NO_AGENT
 *   bits 37-38   0: also run X and V (the live path, below)
 *   bits 40-42   0: also run R (the recording round trip, below), unless
 *                SC_NO_RECORD
 * Bits 22-42 are first XORed with bits 0-20: real snapshots carry real
 * times, whose low bits are as good as random and high bits change
 * slowly, so the seeds spread over all the options.
 *
 * Runs (each a sampler of its own, opened and freed on every input):
 *   A  allocator filling fresh memory with 0x00; samples twice;
 *   B  the same with 0x5A: a value read from uninitialised memory differs
 *      between A and B; samples once;
 *   C  (bit 12) an allocator that refuses one call, chosen among the calls
 *      A made; samples twice (the second with memory again) and renders;
 *   R  (bits 40-42) AU_SAMPLER_RECORD: samples once, writes the snapshot
 *      of what it read, and a fourth sampler replays that file.
 *   X, V  (bits 37-38) the snapshot as a memory image (every page a region
 *      touches mapped, its other bytes a fill, other pages unmapped): X
 *      reads it by exact ranges, as a replay does; V as a live process is
 *      read, by whole pages through the view, with windows, peeks and the
 *      next sample's prefetch (au_sampler_open_image), and samples twice.
 *      The exact path and the live path see the same memory, so they must
 *      give the same sample.  (A replay alone never takes the live path.)
 *
 * Checked on every sample:
 *   status   open: AU_OK, or UNSUPPORTED (exactly when the version is
 *            outside 3.9-3.15), ARG (runtime 0), READ/FORMAT/CORRUPT
 *            (3.13+ debug offsets), NOMEM (C, or a request over 1 GiB);
 *            sample: AU_OK or AU_ERR_READ (asyncunwind.h: nothing else
 *            but NOMEM, which only C or a huge request may see); render:
 *            AU_OK; every status is a valid au_status;
 *   shape    every index in range (threads' frames, tasks and stacks,
 *            tasks' thread, parent and frames, stacks' thread and leaf);
 *            flags are known bits; TRUNCATED iff stats.limits names a
 *            limit (max_threads with that many threads kept, max_pages
 *            only on the live path); threads within max_threads (plus the
 *            one pseudo-thread of loops no thread runs), frames within
 *            max_frames, tasks within max_tasks and one per 8 bytes of
 *            input, coroutine frames within max_coro_frames; thread
 *            frames non-zero, 8-aligned, distinct per thread;
 *   names    frame names and task names valid UTF-8 within their limits
 *            (a longer one cut to the limit plus "..."); every byte read
 *            (ASan); a frame with no name has line -1;
 *   stacks   at most one per task (or one per thread without tasks);
 *            each fetched whole into an exact-size buffer (ASan), its
 *            length the measured one and within thread frames + tasks +
 *            their frames + 1; fetched again cut short: the same prefix
 *            and a TRUNCATED entry; entries name frames and tasks of
 *            their own thread; TASK markers count ntasks and end with the
 *            leaf; a CYCLE entry exactly in CYCLE stacks, naming a task of
 *            the chain; one TRUNCATED entry exactly in depth-cut stacks;
 *   graph    per thread, the resolver's input (au_sampler_thread_input)
 *            matches the sample (tasks, frame ids, links within the
 *            thread); the reference resolver (ref_resolver.c) on that
 *            input gives the same stacks, entries, parents and link
 *            kinds; independently: consecutive TASK markers are
 *            parent/child, a task's link kind is the first of await >
 *            strong > weak that it has a candidate for, its parent is such
 *            a candidate, and every present task appears in a stack
 *            unless a stack of its thread was cut at max_depth;
 *   reads    the source's counters equal the reads it served; the
 *            reader's part (made outside the asyncio model) equals its
 *            stats; no syscalls, no pages (exact replay; V reads pages:
 *            as many as its view's stats say); every read has
 *            a buffer addressable over its length (ASan) and a bounded
 *            length; requests stay within a bound from the limits and
 *            what was found (reader_bound, MODEL_PER_WORD); bytes within
 *            requests x input; at most AU_AT_MAX_PARENTS strong links per
 *            task;
 *   memory   the allocations a sample makes equal stats.allocations;
 *            nothing is left allocated after au_sampler_free (LSan and the
 *            allocator's count); with modest limits, no request over 1 GiB;
 *   render   both formats render; the collapsed form has one line per
 *            stack (and per thread without one), each ending in " 1"; a
 *            writer that fails gives AU_ERR_IO;
 *   profile  the sample in a profile (default and tiny limits, wall and cpu
 *            mode) counts every stack once per weight; each writer's output
 *            is valid UTF-8, and the SVG holds one script and one CDATA end;
 *   determinism  A and B agree byte for byte (renders, samples, stats);
 *            A's second sample (warm caches) agrees with its first, names
 *            and lines compared where both resolved (a sample fetches at
 *            most 1,024 new code objects, so a cold one may name fewer);
 *   faults   C's calls give AU_ERR_NOMEM or succeed; what succeeds, and
 *            C's sample after a failure, agrees with A like A's second;
 *   record   R's replayed snapshot parses and gives R's sample exactly;
 *            without FAILED records, R agrees with A;
 *   live     V's first sample equals X's (stats aside) unless V alone was
 *            cut by the view's page limit; V's second agrees with its
 *            first as A's does.
 * A violation prints what failed and the samples involved, and aborts.
 */
#define _DEFAULT_SOURCE /* sigaction, alarm under -std=c11 */

#include "fuzz/sampler_check.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncunwind.h"
#include "fuzz/fuzz_helpers.h"
#include "fuzz/json_syntax.h"
#include "fuzz/ref_resolver.h"
#include "fuzz/run_from_workspace.h"
#include "fuzz/snapmodel.h"
#include "au_profile.h"
#include "au_pytasks.h"
#include "au_sampler.h"

#define NONE UINT32_MAX

/* Present under ASan only. */
void *__asan_region_is_poisoned(void *beg, size_t size) __attribute__((weak));

static int regression_mode, print_samples;

/* ========================================================================
 * Text
 * ===================================================================== */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void tput(text *t, const char *p, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = 0;
}

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tprintf(text *t, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    tput(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Bytes from the target, escaped. */
static void tbytes(text *t, const char *p, uint32_t n) {
    tput(t, "\"", 1);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') tput(t, (const char *)&c, 1);
        else tprintf(t, "\\x%02x", c);
    }
    tput(t, "\"", 1);
}

static void text_free(text *t) {
    free(t->s);
    memset(t, 0, sizeof *t);
}

static int text_eq(const text *a, const text *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

/* ========================================================================
 * Options
 * ===================================================================== */

typedef struct config {
    au_sampler_options opt;
    /* Effective limits (defaults for 0, clamped as documented). */
    uint32_t max_frames, max_threads, max_name, max_tasks, max_coro_frames, max_depth;
    int fault;
    uint32_t fault_sel; /* 0..63 */
    int roundtrip;
    int image;
} config;

/* Up to the maximum, 2^20 frames: a reader's seen set grows with the
 * walk (until 2026-12-06 it was sized 4 x max_frames at creation, 16 MiB
 * to zero for this one, and the table stopped at 20,000). */
static const uint32_t MAX_FRAMES[16] = {0, 1, 2, 3, 4, 5, 7, 8, 12, 16, 32, 64, 100, 1000,
                                        4097, 1u << 20};
static const uint32_t MAX_THREADS[4] = {0, 1, 2, UINT32_MAX};
static const uint32_t MAX_NAME[8] = {0, 1, 2, 3, 8, 64, 1u << 30, UINT32_MAX};
static const uint32_t CACHE[8] = {0, 1, 16, 17, 33, 64, 256, 1000};
static const uint32_t MAX_TASKS[8] = {0, 1, 2, 3, 5, 16, 64, 1000};
static const uint32_t MAX_CORO[8] = {0, 1, 2, 3, 4, 8, 32, 2000};
static const uint32_t MAX_DEPTH[8] = {0, 1, 2, 3, 4, 16, 1u << 31, UINT32_MAX};
static const uint32_t R_TASKS[4] = {0, 2, 1000, 5}, R_LINKS[4] = {0, 1000, 2, 5};

static uint32_t clamp(uint32_t v, uint32_t def, uint32_t max) {
    v = v ? v : def;
    return v > max ? max : v;
}

/* Real timestamps change their high bits slowly: the low ones are mixed
 * in. */
uint64_t sc_time_mix(uint64_t t) { return t ^ (t & 0x1fffffull) << 22; }

static config decode(uint64_t time_ns, unsigned flags) {
    config c;
    memset(&c, 0, sizeof c);
    uint64_t b = sc_time_mix(time_ns);
    au_pyreader_limits *l = &c.opt.reader;
    if ((b >> 14) & 3) {
        l->max_frames = MAX_FRAMES[b & 15];
        l->max_threads = MAX_THREADS[(b >> 4) & 3];
        l->max_name = MAX_NAME[(b >> 6) & 7];
        l->cache_entries = CACHE[(b >> 9) & 7];
    } else if (!((b >> 13) & 1)) {
        l->cache_entries = 256;
    }
    if (((b >> 22) & 3) == 3) {
        c.opt.max_tasks = MAX_TASKS[(b >> 24) & 7];
        c.opt.max_coro_frames = MAX_CORO[(b >> 27) & 7];
        c.opt.resolver.max_depth = MAX_DEPTH[(b >> 30) & 7];
        c.opt.resolver.max_tasks = R_TASKS[(b >> 33) & 3];
        c.opt.resolver.max_links = R_LINKS[(b >> 33) & 3];
        if (((b >> 35) & 1) && !(flags & SC_ASYNCIO)) c.opt.flags |= AU_SAMPLER_NO_TASKS;
        if ((b >> 36) & 1) c.opt.flags |= AU_SAMPLER_NO_AGENT;
    }
    /* The defaults and maxima of asyncunwind.h. */
    c.max_frames = clamp(l->max_frames, 4096, 1u << 20);
    c.max_threads = clamp(l->max_threads, 1024, 1u << 16);
    c.max_name = clamp(l->max_name, 1024, 4096);
    c.max_tasks = clamp(c.opt.max_tasks, 65536, 1u << 24);
    c.max_coro_frames = clamp(c.opt.max_coro_frames, 1024, UINT32_MAX);
    c.max_depth = clamp(c.opt.resolver.max_depth, AU_DEFAULT_MAX_DEPTH, UINT32_MAX);
    c.fault = (b >> 12) & 1;
    c.fault_sel = (b >> 16) & 63;
    c.roundtrip = ((b >> 40) & 7) == 0 && !(flags & SC_NO_RECORD);
    c.image = ((b >> 37) & 3) == 0;
    return c;
}

static int supported_version(uint32_t v) {
    uint32_t mm = v >> 16;
    return mm >= 0x0309 && mm <= 0x030F;
}

static int valid_status(int rc) { return rc <= AU_OK && rc >= AU_ERR_NOT_FOUND; }

/* ========================================================================
 * A memory source around another: counts, checks and records the reads.
 * ===================================================================== */

typedef struct watchmem {
    au_memsrc base;
    au_memsrc *inner;
    const au_sampler *sampler; /* for the phase; NULL while opening */
    uint64_t max_len;
    uint64_t calls, requests;             /* everything */
    uint64_t outside_calls, outside_reqs; /* outside the asyncio model */
    sc_read *log;
    uint32_t nlog, log_cap;
} watchmem;

static int watch_read(au_memsrc *self, au_read *reads, uint32_t n) {
    watchmem *w = (watchmem *)self;
    uint32_t phase = w->sampler ? au_sampler_phase(w->sampler) : AU_AT_PHASE_NONE;
    w->calls++;
    w->requests += n;
    if (phase == AU_AT_PHASE_NONE) {
        w->outside_calls++;
        w->outside_reqs += n;
    }
    for (uint32_t i = 0; i < n; i++) {
        const au_read *r = &reads[i];
        if (r->len == 0) continue;
        CHECK(r->buf != NULL, "a read with a NULL buffer (%#" PRIx64 "+%u)", r->addr, r->len);
        CHECK(r->len <= w->max_len, "read %#" PRIx64 "+%u is longer than %" PRIu64, r->addr,
              r->len, w->max_len);
        if (__asan_region_is_poisoned)
            CHECK(__asan_region_is_poisoned(r->buf, r->len) == NULL,
                  "read %#" PRIx64 "+%u into a buffer not addressable over its length", r->addr,
                  r->len);
    }
    int rc = w->inner->read(w->inner, reads, n);
    w->base.stats = w->inner->stats;
    for (uint32_t i = 0; i < n && w->log && w->nlog < w->log_cap; i++)
        w->log[w->nlog++] = (sc_read){reads[i].addr, reads[i].len, reads[i].status, phase};
    return rc;
}

static void watch_destroy(au_memsrc *self) { (void)self; }

static void watch_init(watchmem *w, au_memsrc *inner, uint64_t max_len) {
    memset(w, 0, sizeof *w);
    w->base.read = watch_read;
    w->base.destroy = watch_destroy;
    w->inner = inner;
    w->max_len = max_len;
}

/* ========================================================================
 * The snapshot as a memory image, for X and V.
 * ===================================================================== */

/* The image's pages are the view's: V fetches them whole. */
#define IMAGE_PAGE AU_VIEW_PAGE
#define IMAGE_FILL 0xA7u

typedef struct imagemem {
    au_memsrc base;
    const model *m; /* the input's regions, sorted and disjoint */
} imagemem;

/* The first region that ends after addr. */
static uint32_t image_first(const model *m, uint64_t addr) {
    uint32_t lo = 0, hi = m->nregions;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->regions[mid].addr + m->regions[mid].len <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Whether some region touches page pn: the first one ending after the
 * page's start either starts before it (and reaches onto it) or starts
 * on it. */
static int image_mapped(const model *m, uint64_t pn) {
    uint64_t at = pn * IMAGE_PAGE;
    uint32_t k = image_first(m, at);
    return k < m->nregions && (m->regions[k].addr < at || m->regions[k].addr - at < IMAGE_PAGE);
}

/* A read succeeds when every page it touches is mapped: its bytes are the
 * recorded ones where there are some, the fill elsewhere. */
static int image_serve(const model *m, au_read *r) {
    if (r->len == 0) return AU_OK;
    if (!r->buf || r->addr + r->len < r->addr) return AU_ERR_READ;
    uint64_t end = r->addr + r->len;
    for (uint64_t pn = r->addr / IMAGE_PAGE; pn <= (end - 1) / IMAGE_PAGE; pn++)
        if (!image_mapped(m, pn)) return AU_ERR_READ;
    memset(r->buf, IMAGE_FILL, r->len);
    for (uint32_t k = image_first(m, r->addr); k < m->nregions && m->regions[k].addr < end; k++) {
        const mregion *g = &m->regions[k];
        uint64_t from = g->addr > r->addr ? g->addr : r->addr;
        uint64_t to = g->addr + g->len < end ? g->addr + g->len : end;
        memcpy((uint8_t *)r->buf + (from - r->addr), g->data + (from - g->addr), to - from);
    }
    return AU_OK;
}

static int image_read(au_memsrc *self, au_read *reads, uint32_t n) {
    imagemem *im = (imagemem *)self;
    int first = AU_OK;
    im->base.stats.requests += n;
    for (uint32_t i = 0; i < n; i++) {
        reads[i].status = image_serve(im->m, &reads[i]);
        if (reads[i].status == AU_OK) {
            im->base.stats.bytes += reads[i].len;
        } else {
            im->base.stats.failures++;
            if (first == AU_OK) first = reads[i].status;
        }
    }
    return first;
}

static void image_destroy(au_memsrc *self) { (void)self; }

/* A source of its own (its counters are its runs') over the image m. */
static void image_init(imagemem *im, const model *m) {
    memset(im, 0, sizeof *im);
    im->base.read = image_read;
    im->base.destroy = image_destroy;
    im->m = m;
}

/* 16 MiB: _Py_DebugOffsets values are capped there (a header may be that
 * long); + 4 bytes per kept character of a name. */
static uint64_t max_read_len(const config *c) { return (20ull << 20) + 4ull * c->max_name; }

/* ========================================================================
 * One sample, checked and written down
 * ===================================================================== */

/* What a sample leaves for the comparisons once the sampler moved on. */
typedef struct shot {
    int rc;
    text full;      /* everything: names, lines, stats */
    text shape;     /* without frame names, lines and stats */
    text render[2]; /* AU_FORMAT_TEXT, AU_FORMAT_COLLAPSED */
    int render_rc[2];
    uint32_t nframes;
    uint32_t flags;      /* the sample's */
    uint32_t limits;     /* its stats.limits */
    uint64_t *name_hash; /* per frame: its names and line, 0 unresolved */
} shot;

static void shot_free(shot *s) {
    text_free(&s->full);
    text_free(&s->shape);
    text_free(&s->render[0]);
    text_free(&s->render[1]);
    free(s->name_hash);
    memset(s, 0, sizeof *s);
}

/* What a check failure prints: the samples being compared. */
typedef struct context {
    const char *what;
    const text *a, *b;
} context;

static void print_context(void *ud) {
    const context *c = ud;
    fprintf(stderr, "while checking: %s\n", c->what);
    if (c->a && c->a->s) fprintf(stderr, "---- first ----\n%s\n", c->a->s);
    if (c->b && c->b->s) fprintf(stderr, "---- second ----\n%s\n", c->b->s);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
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

/* A name: n bytes at p, every one read (copied: ASan checks them), valid
 * UTF-8 of at most max code points, or exactly max plus "...". */
static void check_name(const char *what, uint32_t i, const char *p, uint32_t n, uint32_t max) {
    CHECK(n == 0 || p != NULL, "%s %u: NULL with %u bytes", what, i, n);
    if (n == 0) return;
    char *copy = xmalloc(n);
    memcpy(copy, p, n);
    uint64_t cps = 0;
    CHECK(utf8_valid((const unsigned char *)copy, n, &cps), "%s %u: invalid UTF-8 (%u bytes)",
          what, i, n);
    int cut = cps == (uint64_t)max + 3 && n >= 3 && memcmp(copy + n - 3, "...", 3) == 0;
    CHECK(cps <= max || cut, "%s %u: %" PRIu64 " code points, at most %u", what, i, cps, max);
    free(copy);
}

/* A growable writer for au_render, failing past a cap (a render that
 * large is stopped, identically in every run) or at a chosen call. */
typedef struct sink {
    text *t;
    size_t cap;
    uint32_t calls, fail_call; /* fail_call 0: never */
} sink;

#define RENDER_CAP ((size_t)16 << 20)

static int sink_write(void *ud, const void *buf, size_t len) {
    sink *k = ud;
    k->calls++;
    if (k->fail_call && k->calls == k->fail_call) return -1;
    if (k->t->len + len > k->cap) return -1;
    tput(k->t, buf, len);
    return 0;
}

/* Entries of every stack, fetched once per sample. */
#define FETCH_BUDGET (1u << 20) /* entries per sample held at once */

typedef struct stackents {
    uint64_t len;   /* measured */
    au_entry *e;    /* whole, or NULL when over the budget */
} stackents;

/* Reads a sample may make.  The reader's share, from the limits and what
 * it returned: 1 (interpreters.head) + 64 interpreters x 3 fields; per
 * thread walked (returned, plus one per interpreter whose list ended on a
 * failed read): 6 tstate fields + cframe + chunks (1 + 2 x 64) + 2 reads
 * (a window, then the frame alone) per frame visited, bounded by the
 * frame-address set (2 x max_frames rounded up to a power of two, at
 * least 16), + 2; + 8 (type checks) + 13 per frame (header, 3 rounds x 4
 * objects). */
static uint64_t reader_bound(const config *c, uint64_t nthreads, uint64_t nframes) {
    uint64_t seen = 16;
    while (seen < 2 * (uint64_t)c->max_frames) seen <<= 1;
    uint64_t per_thread = 6 + 1 + 1 + 2 * 64 + 2 * seen + 2;
    return 1 + 3 * 64 + (nthreads + 64) * per_thread + 8 + 13 * nframes;
}

/* The asyncio model's share is bounded by what the input can hold: every
 * read it makes in exact mode is of an object found through memory, and
 * every loop over objects is bounded (by count limits, and by reads that
 * fail once they leave the snapshot).  MODEL_PER_WORD is a generous cost
 * per 8 bytes of input, measured at a few hundred on the golden
 * snapshots; what exceeds it is quadratic or worse. */
#define MODEL_BASE 100000u
#define MODEL_PER_WORD 4096u

typedef struct run {
    const char *name;
    const config *cfg;
    const au_snapshot *snap;
    size_t input_size;
    test_alloc ta;
    au_allocator al;
    au_memsrc *src; /* opened on snap, or the caller's (owned 0) */
    int owned;
    int paged;      /* V: the live path (au_sampler_open_image) */
    watchmem w;
    au_sampler *s;
    int open_rc;
} run;

/* How often `needle` occurs in t, which holds no NUL (XML text cannot). */
static uint64_t occurrences(const text *t, const char *needle) {
    uint64_t n = 0;
    for (const char *p = t->s; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The sample in a profile (core/profile/), twice: with the default limits
 * and with tiny ones, in wall mode and in cpu mode with every thread
 * flagged on CPU; then each writer.  Every stack counts (a full table
 * counts it as dropped), counts add up, and every output is valid UTF-8
 * whatever the names hold; the SVG keeps its one script. */
static void check_profile(run *R, const au_sample *smp, uint64_t want) {
    static const au_profile_limits tiny = {4, 16, 256, 8, 0};
    for (int v = 0; v < 2; v++) {
        uint64_t before = R->ta.calls;
        au_profile *p = NULL;
        int rc = au_profile_new(&R->al, v ? &tiny : NULL, &p);
#define REFUSED (R->ta.fail_at > before && R->ta.fail_at <= R->ta.calls)
        CHECK(rc == AU_OK || (rc == AU_ERR_NOMEM && REFUSED), "au_profile_new: %d", rc);
        if (rc != AU_OK) continue;
        rc = au_profile_add(p, R->s, smp, 0, 3);
        CHECK(rc == AU_OK || (rc == AU_ERR_NOMEM && REFUSED), "au_profile_add: %d", rc);
        au_profile_stats st;
        au_profile_get_stats(p, &st);
        if (rc == AU_OK) {
            CHECK(st.stacks_added == want && st.samples == 1,
                  "profile: %" PRIu64 " stacks added, the sample has %" PRIu64, st.stacks_added,
                  want);
            uint64_t total = 0;
            for (uint32_t i = 0; i < au_profile_nstacks(p); i++) {
                const uint32_t *ids;
                uint32_t n;
                total += au_profile_stack(p, i, &ids, &n);
                CHECK(n >= 1 && n <= (v ? 8u : 2048u) + 2, "profile stack %u: %u names", i, n);
            }
            CHECK(total == 3 * want, "profile counts add up to %" PRIu64 ", want %" PRIu64, total,
                  3 * want);
            CHECK(!v || (st.stacks <= 4 && st.names <= 16 && st.text_bytes <= 256),
                  "tiny profile: %u stacks, %u names, %" PRIu64 " bytes", st.stacks, st.names,
                  st.text_bytes);
        } else {
            CHECK(st.samples == 0 && st.stacks == 0, "a refused add left %u stacks", st.stacks);
        }
        if (smp->nthreads) {
            au_sample_thread *th = xmalloc(smp->nthreads * sizeof *th);
            for (uint32_t i = 0; i < smp->nthreads; i++) {
                th[i] = smp->threads[i];
                th[i].flags |= AU_THREAD_ON_CPU;
            }
            au_sample cpu = *smp;
            cpu.threads = th;
            au_profile_stats s0, s1;
            au_profile_get_stats(p, &s0);
            int crc = au_profile_add(p, R->s, &cpu, AU_PROFILE_CPU, 1);
            CHECK(crc == AU_OK || (crc == AU_ERR_NOMEM && REFUSED), "cpu au_profile_add: %d", crc);
            au_profile_get_stats(p, &s1);
            CHECK(crc != AU_OK || s1.stacks_added - s0.stacks_added <= want,
                  "cpu mode counted %" PRIu64 " of %" PRIu64 " stacks",
                  s1.stacks_added - s0.stacks_added, want);
            free(th);
        }
        for (uint32_t fmt = AU_FORMAT_COLLAPSED; fmt <= AU_FORMAT_SVG; fmt++) {
            text t = {0};
            sink k = {&t, RENDER_CAP, 0, 0};
            uint64_t wbefore = R->ta.calls;
            int wrc = au_profile_write(p, fmt, "fuzz", sink_write, &k);
            int wrefused = R->ta.fail_at > wbefore && R->ta.fail_at <= R->ta.calls;
            CHECK(wrc == AU_OK || (wrc == AU_ERR_IO && t.len + 4096 >= RENDER_CAP) ||
                      (wrc == AU_ERR_NOMEM && wrefused),
                  "au_profile_write(format %u): %d", fmt, wrc);
            if (wrc != AU_OK) {
                text_free(&t);
                continue;
            }
            uint64_t cps;
            CHECK(t.len <= UINT32_MAX && utf8_valid((const unsigned char *)t.s, (uint32_t)t.len, &cps),
                  "profile format %u: invalid UTF-8", fmt);
            if (fmt == AU_FORMAT_SVG)
                CHECK(strlen(t.s) == t.len && occurrences(&t, "<script") == 1 && occurrences(&t, "]]>") == 1,
                      "svg: %" PRIu64 " scripts, %" PRIu64 " CDATA ends", occurrences(&t, "<script"),
                      occurrences(&t, "]]>"));
            if (fmt == AU_FORMAT_SPEEDSCOPE)
                CHECK(t.len > 2 && t.s[0] == '{' && !strcmp(t.s + t.len - 2, "}\n"),
                      "speedscope: not one object");
            text_free(&t);
        }
#undef REFUSED
        au_profile_free(p);
    }
}

/* The thread input of thread ti against the sample, the reference
 * resolver on it, and the graph rules. */
static void check_graph(run *R, const au_sample *smp, uint32_t ti, const stackents *E) {
    const au_sample_thread *th = &smp->threads[ti];
    const au_thread_sample *in = au_sampler_thread_input(R->s, ti);
    CHECK(in != NULL, "thread %u: no resolver input", ti);
    CHECK(in->ntasks == th->ntasks && in->nframes == th->nframes,
          "thread %u: input has %u tasks, %u frames; sample %u, %u", ti, in->ntasks,
          in->nframes, th->ntasks, th->nframes);
    for (uint32_t f = 0; f < in->nframes; f++)
        CHECK(in->frames[f] == (uint64_t)th->first_frame + f + 1,
              "thread %u frame %u: id %" PRIu64, ti, f, in->frames[f]);
    for (uint32_t j = 0; j < in->ntasks; j++) {
        const au_task *a = &in->tasks[j];
        const au_sample_task *o = &smp->tasks[th->first_task + j];
        CHECK(a->id == o->id && a->nframes == o->nframes && a->flags == o->flags &&
                  a->name == o->name && a->name_len == o->name_len,
              "thread %u task %u: resolver input differs from the sample", ti, j);
        for (uint32_t f = 0; f < a->nframes; f++) {
            uint64_t id = a->frames[f], own = (uint64_t)o->first_frame + f + 1;
            /* A running task's outermost frame is spliced by identity:
             * it takes the id of the same frame on its thread. */
            int spliced = f == 0 && (o->flags & AU_TASK_RUNNING) && id >= th->first_frame + 1 &&
                          id <= (uint64_t)th->first_frame + th->nframes &&
                          smp->frames[id - 1].addr == smp->frames[o->first_frame].addr;
            CHECK(id == own || spliced, "thread %u task %u frame %u: id %" PRIu64, ti, j, f, id);
        }
        CHECK(!(a->flags & AU_TASK_RUNNING) ||
                  (a->nframes && a->frames[0] != (uint64_t)o->first_frame + 1),
              "thread %u task %u: RUNNING, but its frame is not on the thread", ti, j);
    }
    /* Present tasks: a non-zero id no other task of the thread has. */
    uint32_t n = in->ntasks;
    uint8_t *present = xmalloc(n ? n : 1);
    for (uint32_t j = 0; j < n; j++) {
        present[j] = in->tasks[j].id != 0;
        for (uint32_t k = 0; k < n && present[j]; k++)
            if (k != j && in->tasks[k].id == in->tasks[j].id) present[j] = 0;
    }
#define FIND(id_, out_, any_)                                                        \
    do {                                                                             \
        (out_) = NONE;                                                               \
        for (uint32_t q_ = 0; q_ < n && (id_); q_++)                                 \
            if ((any_ || present[q_]) && in->tasks[q_].id == (id_)) (out_) = q_;     \
    } while (0)
    for (uint32_t l = 0; l < in->nlinks; l++) {
        uint32_t c, p;
        FIND(in->links[l].child, c, 1);
        FIND(in->links[l].parent, p, 1);
        CHECK(c != NONE && p != NONE,
              "thread %u link %u: %#" PRIx64 " -> %#" PRIx64 " not both tasks of the thread", ti,
              l, in->links[l].child, in->links[l].parent);
    }
    /* The reference resolver on the same input. */
    ref_result ref;
    int rrc = ref_resolve(in, &R->cfg->opt.resolver, &ref);
    CHECK(rrc == AU_OK, "thread %u: the reference resolver says %d, the sampler resolved it", ti,
          rrc);
    CHECK(ref.nstacks == th->nstacks, "thread %u: %u stacks, the reference %u", ti, th->nstacks,
          ref.nstacks);
    for (uint32_t j = 0; j < n; j++) {
        const au_sample_task *o = &smp->tasks[th->first_task + j];
        uint32_t want = ref.parent[j] == NONE ? NONE : th->first_task + ref.parent[j];
        CHECK(o->parent == want && o->link == ref.link[j],
              "thread %u task %u: parent %u (link %u), the reference %u (link %u)", ti, j,
              o->parent, o->link, want, ref.link[j]);
    }
    for (uint32_t k = 0; k < th->nstacks; k++) {
        uint32_t sk = th->first_stack + k;
        const au_sample_stack *st = &smp->stacks[sk];
        const ref_stack *rs = &ref.stacks[k];
        uint32_t leaf = rs->leaf_task == NONE ? NONE : th->first_task + rs->leaf_task;
        CHECK(st->leaf == leaf && st->flags == rs->flags && st->ntasks == rs->ntasks,
              "thread %u stack %u: leaf %u flags %#x ntasks %u; reference %u %#x %u", ti, k,
              st->leaf, st->flags, st->ntasks, leaf, rs->flags, rs->ntasks);
        uint64_t rlen = ref_stack_entries(&ref, k, NULL, 0);
        CHECK(rlen == E[sk].len, "thread %u stack %u: %" PRIu64 " entries, the reference %" PRIu64,
              ti, k, E[sk].len, rlen);
        if (!E[sk].e) continue;
        au_entry *re = xmalloc((size_t)rlen * sizeof *re);
        ref_stack_entries(&ref, k, re, (uint32_t)rlen);
        for (uint64_t i = 0; i < rlen; i++) {
            au_entry want_e = re[i];
            if (want_e.kind == AU_ENTRY_FRAME) want_e.id -= 1;
            else if (want_e.task != NONE) want_e.task += th->first_task;
            const au_entry *got = &E[sk].e[i];
            CHECK(got->kind == want_e.kind && got->id == want_e.id && got->task == want_e.task,
                  "thread %u stack %u entry %" PRIu64 ": kind %u id %#" PRIx64
                  " task %u; reference %u %#" PRIx64 " %u",
                  ti, k, i, got->kind, got->id, got->task, want_e.kind, want_e.id, want_e.task);
        }
        free(re);
    }
    ref_result_free(&ref);

    /* Independently of the reference: link precedence (await > strong >
     * weak), chains, cycles and cover. */
    for (uint32_t j = 0; j < n; j++) {
        const au_sample_task *o = &smp->tasks[th->first_task + j];
        if (!present[j]) {
            CHECK(o->parent == NONE && o->link == AU_LINK_NONE,
                  "thread %u task %u: ignored (id shared or 0), yet it has a parent", ti, j);
            continue;
        }
        uint64_t id = in->tasks[j].id;
        int await = 0, strong = 0, weak = 0;
        for (uint32_t q = 0; q < n; q++)
            if (q != j && present[q] && in->tasks[q].awaits == id) await = 1;
        for (uint32_t l = 0; l < in->nlinks; l++) {
            uint32_t p;
            FIND(in->links[l].parent, p, 0);
            if (in->links[l].child == id && p != NONE && p != j) strong = 1;
        }
        uint32_t cr;
        FIND(in->tasks[j].creator, cr, 0);
        weak = cr != NONE && cr != j;
        uint32_t kind = await ? AU_LINK_AWAIT : strong ? AU_LINK_STRONG : weak ? AU_LINK_WEAK
                                                                              : AU_LINK_NONE;
        CHECK(o->link == kind, "thread %u task %u: link %u, but the first it has is %u", ti, j,
              o->link, kind);
        if (kind == AU_LINK_NONE) {
            CHECK(o->parent == NONE, "thread %u task %u: a root with a parent", ti, j);
            continue;
        }
        CHECK(o->parent >= th->first_task && o->parent < th->first_task + n,
              "thread %u task %u: parent %u outside the thread", ti, j, o->parent);
        const au_task *p = &in->tasks[o->parent - th->first_task];
        int ok = 0;
        if (kind == AU_LINK_AWAIT) ok = p->awaits == id;
        if (kind == AU_LINK_WEAK) ok = in->tasks[j].creator == p->id;
        for (uint32_t l = 0; kind == AU_LINK_STRONG && l < in->nlinks; l++)
            ok |= in->links[l].child == id && in->links[l].parent == p->id;
        CHECK(ok, "thread %u task %u: parent %u is no candidate of link kind %u", ti, j,
              o->parent, kind);
    }
    uint8_t *seen = xmalloc(n ? n : 1);
    memset(seen, 0, n ? n : 1);
    int depth_cut = 0, all_fetched = 1;
    for (uint32_t k = 0; k < th->nstacks; k++) {
        uint32_t sk = th->first_stack + k;
        const au_sample_stack *st = &smp->stacks[sk];
        if (st->flags & AU_STACK_TRUNCATED_DEPTH) depth_cut = 1;
        if (!E[sk].e) {
            all_fetched = 0;
            continue;
        }
        uint32_t markers = 0, cycles = 0, truncs = 0, prev = NONE, last = NONE, closing = NONE;
        for (uint64_t i = 0; i < E[sk].len; i++) {
            const au_entry *e = &E[sk].e[i];
            if (e->kind == AU_ENTRY_TASK) {
                uint32_t j = e->task - th->first_task;
                CHECK(present[j], "thread %u stack %u: task %u is not present", ti, k, j);
                seen[j] = 1;
                CHECK(prev == NONE || smp->tasks[e->task].parent == prev,
                      "thread %u stack %u: task %u under %u, its parent is %u", ti, k, e->task,
                      prev, smp->tasks[e->task].parent);
                prev = last = e->task;
                markers++;
            } else if (e->kind == AU_ENTRY_CYCLE) {
                CHECK(markers == 0, "thread %u stack %u: a CYCLE entry after a task", ti, k);
                closing = e->task;
                cycles++;
            } else if (e->kind == AU_ENTRY_TRUNCATED) {
                CHECK(markers == 0, "thread %u stack %u: a TRUNCATED entry after a task", ti, k);
                truncs++;
            }
        }
        CHECK(markers == st->ntasks && last == st->leaf,
              "thread %u stack %u: %u task markers ending with %u; ntasks %u, leaf %u", ti, k,
              markers, last, st->ntasks, st->leaf);
        CHECK(cycles == ((st->flags & AU_STACK_CYCLE) != 0),
              "thread %u stack %u: %u CYCLE entries, flags %#x", ti, k, cycles, st->flags);
        CHECK(truncs == ((st->flags & AU_STACK_TRUNCATED_DEPTH) != 0),
              "thread %u stack %u: %u TRUNCATED entries, flags %#x", ti, k, truncs, st->flags);
        if (cycles) {
            int in_chain = 0;
            for (uint64_t i = 0; i < E[sk].len; i++)
                in_chain |= E[sk].e[i].kind == AU_ENTRY_TASK && E[sk].e[i].task == closing;
            CHECK(in_chain, "thread %u stack %u: the cycle returns to %u, not in the chain", ti,
                  k, closing);
            /* The chain's root side is parented by the task it closes on. */
            uint32_t top = NONE;
            for (uint64_t i = 0; i < E[sk].len && top == NONE; i++)
                if (E[sk].e[i].kind == AU_ENTRY_TASK) top = E[sk].e[i].task;
            CHECK(smp->tasks[top].parent == closing,
                  "thread %u stack %u: the top task %u has parent %u, the cycle says %u", ti, k,
                  top, smp->tasks[top].parent, closing);
        }
    }
    if (!depth_cut && all_fetched)
        for (uint32_t j = 0; j < n; j++)
            CHECK(!present[j] || seen[j], "thread %u: present task %u is in no stack", ti, j);
#undef FIND
    free(seen);
    free(present);
}

/* Checks the sample and writes it down into out. */
static void take(run *R, int rc, const au_sample *smp, uint64_t calls0, uint64_t outside_calls0,
                 uint64_t outside_reqs0, uint64_t req0, uint64_t alloc_calls0, shot *out) {
    const config *c = R->cfg;
    memset(out, 0, sizeof *out);
    out->rc = rc;
    text *F = &out->full, *S = &out->shape;
    tprintf(F, "%s: sample rc=%d\n", R->name, rc);
    tprintf(S, "%s: sample rc=%d\n", R->name, rc);
    if (rc != AU_OK) {
        CHECK(smp == NULL, "%s: sample failed (%d) and gave a sample", R->name, rc);
        return;
    }
    CHECK(smp != NULL, "%s: sample AU_OK without a sample", R->name);
    out->flags = smp->flags;
    au_sampler_stats st;
    au_sampler_get_stats(R->s, &st);
    out->limits = st.limits;
    uint64_t alloc_calls = R->ta.calls - alloc_calls0;

    /* ---- shape ---- */
    CHECK((smp->flags & ~(AU_SAMPLE_TRUNCATED | AU_SAMPLE_ASYNCIO | AU_SAMPLE_AGENT |
                          AU_SAMPLE_PARTIAL)) == 0,
          "sample flags %#x", smp->flags);
    CHECK(smp->py_version_hex == au_snapshot_get_meta(R->snap)->py_version_hex, "version");
    CHECK(smp->nthreads == 0 || smp->threads, "threads NULL");
    CHECK(smp->ntasks == 0 || smp->tasks, "tasks NULL");
    CHECK(smp->nstacks == 0 || smp->stacks, "stacks NULL");
    CHECK(smp->nframes == 0 || smp->frames, "frames NULL");
    uint32_t real_threads = 0, pseudo = 0;
    uint64_t thread_frames = 0, coro_frames = 0;
    for (uint32_t i = 0; i < smp->nthreads; i++) {
        const au_sample_thread *t = &smp->threads[i];
        CHECK((t->flags & ~(AU_THREAD_TRUNCATED | AU_THREAD_PARTIAL | AU_THREAD_CYCLE |
                            AU_THREAD_NO_LOOP)) == 0,
              "thread %u flags %#x", i, t->flags);
        if (t->flags & AU_THREAD_NO_LOOP) {
            CHECK(i == smp->nthreads - 1 && t->nframes == 0 && t->ntasks > 0,
                  "thread %u: the pseudo-thread must come last, with tasks and no frames", i);
            pseudo++;
        } else {
            real_threads++;
        }
        CHECK(t->nframes <= c->max_frames, "thread %u: %u frames, max_frames %u", i, t->nframes,
              c->max_frames);
        CHECK((uint64_t)t->first_frame + t->nframes <= smp->nframes, "thread %u frames", i);
        CHECK((uint64_t)t->first_task + t->ntasks <= smp->ntasks, "thread %u tasks", i);
        CHECK((uint64_t)t->first_stack + t->nstacks <= smp->nstacks, "thread %u stacks", i);
        CHECK(t->nstacks <= (t->ntasks ? t->ntasks : 1), "thread %u: %u stacks for %u tasks", i,
              t->nstacks, t->ntasks);
        CHECK(t->name_len <= 4 * 256 + 3, "thread %u: name of %u bytes", i, t->name_len);
        CHECK(t->name_len == 0 || t->name, "thread %u: name NULL", i);
        if (t->name_len) {
            char *copy = xmalloc(t->name_len);
            memcpy(copy, t->name, t->name_len); /* every byte: ASan */
            free(copy);
        }
        thread_frames += t->nframes;
        for (uint32_t k = 0; k < t->nframes; k++) {
            const au_sample_frame *f = &smp->frames[t->first_frame + k];
            CHECK(f->addr != 0 && (f->addr & 7) == 0, "thread %u frame %u: address %#" PRIx64, i,
                  k, f->addr);
            for (uint32_t j = 0; j < k; j++)
                CHECK(smp->frames[t->first_frame + j].addr != f->addr,
                      "thread %u: frames %u and %u share %#" PRIx64, i, j, k, f->addr);
        }
        if (i > 0) {
            const au_sample_thread *p = &smp->threads[i - 1];
            CHECK(t->first_frame == p->first_frame + p->nframes &&
                      t->first_task == p->first_task + p->ntasks &&
                      t->first_stack == p->first_stack + p->nstacks,
                  "thread %u: not laid out after thread %u", i, i - 1);
        }
    }
    CHECK(pseudo <= 1 && real_threads <= c->max_threads, "%u threads (max %u) and %u pseudo",
          real_threads, c->max_threads, pseudo);
    /* TRUNCATED says that a limit cut the sample, and stats.limits which:
     * max_threads only when that many threads were kept, the view's
     * max_pages only on the live path (exact reads have no pages). */
    CHECK(((smp->flags & AU_SAMPLE_TRUNCATED) != 0) == (st.limits != 0) &&
              (st.limits & ~(AU_LIMIT_THREADS | AU_LIMIT_TASKS | AU_LIMIT_PAGES |
                             AU_LIMIT_LINKS)) == 0,
          "sample flags %#x, limits %#x", smp->flags, st.limits);
    CHECK(!(st.limits & AU_LIMIT_THREADS) || real_threads == c->max_threads,
          "max_threads cut the sample, with %u threads, max %u", real_threads, c->max_threads);
    CHECK(!(st.limits & AU_LIMIT_PAGES) || R->paged, "%s: max_pages cut exact reads", R->name);
    CHECK(smp->ntasks <= c->max_tasks && smp->ntasks <= R->input_size / 8,
          "%u tasks: max_tasks %u, input of %zu bytes", smp->ntasks, c->max_tasks,
          R->input_size);
    CHECK(!(c->opt.flags & AU_SAMPLER_NO_TASKS) || (smp->ntasks == 0 && !pseudo),
          "NO_TASKS, yet %u tasks", smp->ntasks);
    for (uint32_t j = 0; j < smp->ntasks; j++) {
        const au_sample_task *t = &smp->tasks[j];
        CHECK((t->flags & ~AU_TASK_RUNNING) == 0, "task %u flags %#x", j, t->flags);
        CHECK(t->thread < smp->nthreads, "task %u: thread %u", j, t->thread);
        const au_sample_thread *th = &smp->threads[t->thread];
        CHECK(j >= th->first_task && j < th->first_task + th->ntasks,
              "task %u: not among its thread's", j);
        CHECK(t->parent == NONE || t->parent < smp->ntasks, "task %u: parent %u", j, t->parent);
        CHECK(t->link <= AU_LINK_WEAK && (t->link == AU_LINK_NONE) == (t->parent == NONE),
              "task %u: link %u, parent %u", j, t->link, t->parent);
        CHECK(t->nframes <= c->max_coro_frames, "task %u: %u frames, max_coro_frames %u", j,
              t->nframes, c->max_coro_frames);
        CHECK(t->first_frame >= thread_frames || t->nframes == 0,
              "task %u: its frames among the threads'", j);
        CHECK((uint64_t)t->first_frame + t->nframes <= smp->nframes, "task %u frames", j);
        CHECK(t->id != 0 && (t->id & 7) == 0, "task %u: id %#" PRIx64, j, t->id);
        check_name("task name", j, t->name, t->name_len, 256);
        coro_frames += t->nframes;
    }
    CHECK(thread_frames + coro_frames == smp->nframes,
          "%u frames: %" PRIu64 " of threads, %" PRIu64 " of tasks", smp->nframes, thread_frames,
          coro_frames);
    for (uint32_t i = 0; i < smp->nframes; i++) {
        const au_sample_frame *f = &smp->frames[i];
        if (!f->qualname) {
            CHECK(f->line == -1 && f->qualname_len == 0 && f->filename == NULL,
                  "frame %u: no name, yet line %d", i, f->line);
            continue;
        }
        CHECK(f->filename != NULL || f->filename_len == 0, "frame %u: filename NULL", i);
        check_name("frame qualname", i, f->qualname, f->qualname_len, c->max_name);
        check_name("frame filename", i, f->filename, f->filename_len, c->max_name);
    }

    /* ---- stacks ---- */
    stackents *E = xmalloc((size_t)(smp->nstacks ? smp->nstacks : 1) * sizeof *E);
    uint64_t budget = FETCH_BUDGET;
    for (uint32_t k = 0; k < smp->nstacks; k++) {
        const au_sample_stack *st = &smp->stacks[k];
        CHECK(st->thread < smp->nthreads, "stack %u: thread %u", k, st->thread);
        const au_sample_thread *th = &smp->threads[st->thread];
        CHECK(k >= th->first_stack && k < th->first_stack + th->nstacks,
              "stack %u: not among its thread's", k);
        CHECK((st->flags & ~(AU_STACK_RUNNING | AU_STACK_CYCLE | AU_STACK_TRUNCATED_DEPTH |
                             AU_STACK_THREAD_ONLY)) == 0,
              "stack %u flags %#x", k, st->flags);
        CHECK(st->leaf == NONE ? (st->flags & AU_STACK_THREAD_ONLY) && st->ntasks == 0
                               : st->leaf >= th->first_task &&
                                     st->leaf < th->first_task + th->ntasks &&
                                     st->ntasks >= 1 && st->ntasks <= th->ntasks &&
                                     st->ntasks <= c->max_depth,
              "stack %u: leaf %u, ntasks %u, flags %#x", k, st->leaf, st->ntasks, st->flags);
        uint64_t bound = (uint64_t)th->nframes + 1 + th->ntasks;
        for (uint32_t j = 0; j < th->ntasks; j++) bound += smp->tasks[th->first_task + j].nframes;
        uint64_t len = au_sample_stack_entries(R->s, k, NULL, 0);
        CHECK(len <= bound, "stack %u: %" PRIu64 " entries, at most %" PRIu64, k, len, bound);
        E[k].len = len;
        E[k].e = NULL;
        if (len == 0 || len > budget) continue;
        budget -= len;
        au_entry *e = xmalloc((size_t)len * sizeof *e); /* exact: ASan sees overruns */
        uint64_t got = au_sample_stack_entries(R->s, k, e, (uint32_t)len);
        CHECK(got == len, "stack %u: %" PRIu64 " entries measured, %" PRIu64 " fetched", k, len,
              got);
        for (uint64_t i = 0; i < len; i++) {
            const au_entry *x = &e[i];
            switch (x->kind) {
            case AU_ENTRY_FRAME:
                CHECK(x->id < smp->nframes && x->task == NONE, "stack %u entry %" PRIu64 ": frame %" PRIu64,
                      k, i, x->id);
                break;
            case AU_ENTRY_TASK:
            case AU_ENTRY_CYCLE:
                CHECK(x->task >= th->first_task && x->task < th->first_task + th->ntasks &&
                          x->id == smp->tasks[x->task].id,
                      "stack %u entry %" PRIu64 ": task %u id %#" PRIx64, k, i, x->task, x->id);
                break;
            case AU_ENTRY_TRUNCATED:
                break;
            default:
                CHECK(0, "stack %u entry %" PRIu64 ": kind %u", k, i, x->kind);
            }
        }
        if (len >= 2) { /* cut short: the root side, then TRUNCATED */
            uint32_t cap = (uint32_t)(len / 2);
            au_entry *p = xmalloc((size_t)cap * sizeof *p);
            CHECK(au_sample_stack_entries(R->s, k, p, cap) == len, "stack %u: cut fetch", k);
            CHECK(memcmp(p, e, (size_t)(cap - 1) * sizeof *p) == 0 &&
                      p[cap - 1].kind == AU_ENTRY_TRUNCATED,
                  "stack %u: fetched with cap %u, not its prefix and a TRUNCATED entry", k, cap);
            free(p);
        }
        E[k].e = e;
    }
    CHECK(au_sample_stack_entries(R->s, smp->nstacks, NULL, 0) == 0, "a stack past the end");
    for (uint32_t i = 0; i < smp->nthreads; i++) check_graph(R, smp, i, E);

    /* ---- reads and allocations ---- */
    uint64_t calls = R->w.calls - calls0, requests = R->w.requests - req0;
    uint64_t out_calls = R->w.outside_calls - outside_calls0;
    uint64_t out_reqs = R->w.outside_reqs - outside_reqs0;
    CHECK(st.mem.requests == requests, "stats: %" PRIu64 " requests, the source served %" PRIu64,
          st.mem.requests, requests);
    CHECK(st.mem.syscalls == 0 && (R->paged || (st.pages == 0 && st.pages_used == 0)),
          "a snapshot replay made %" PRIu64 " syscalls and fetched %u pages", st.mem.syscalls,
          st.pages);
    CHECK(st.pages_used <= st.pages, "%u pages used of %u fetched", st.pages_used, st.pages);
    /* A recorder (AU_SAMPLER_RECORD) serves some reads itself. */
    int recording = (c->opt.flags & AU_SAMPLER_RECORD) != 0;
    CHECK(recording || (st.reader.mem.requests == out_reqs && st.reader.batches == out_calls),
          "reader stats: %" PRIu64 " requests in %u batches; outside the model %" PRIu64
          " in %" PRIu64,
          st.reader.mem.requests, st.reader.batches, out_reqs, out_calls);
    CHECK(calls <= requests, "%" PRIu64 " calls for %" PRIu64 " requests", calls, requests);
    uint64_t rb = reader_bound(c, real_threads, thread_frames);
    CHECK(out_reqs <= rb, "the reader made %" PRIu64 " requests, bound %" PRIu64, out_reqs, rb);
    uint64_t mb = MODEL_BASE + (uint64_t)MODEL_PER_WORD * (R->input_size / 8);
    CHECK(requests - out_reqs <= mb,
          "the asyncio model made %" PRIu64 " requests for %zu bytes of input, bound %" PRIu64,
          requests - out_reqs, R->input_size, mb);
    /* A page read is a page, however small the input. */
    uint64_t per_read = R->paged && R->input_size < IMAGE_PAGE ? IMAGE_PAGE : R->input_size;
    CHECK(st.mem.bytes <= requests * per_read,
          "%" PRIu64 " bytes in %" PRIu64 " requests from %zu bytes", st.mem.bytes, requests,
          R->input_size);
    CHECK(st.tasks == smp->ntasks, "stats.tasks %u, %u tasks", st.tasks, smp->ntasks);
    CHECK(st.links <= AU_AT_MAX_PARENTS * (uint64_t)st.tasks, "%u strong links for %u tasks",
          st.links, st.tasks);
    /* A refused call is no allocation made (the sample may do without). */
    uint64_t refused = R->ta.fail_at > alloc_calls0 && R->ta.fail_at <= R->ta.calls;
    CHECK(st.allocations + refused == alloc_calls || (recording && st.allocations < alloc_calls),
          "%s: stats.allocations %" PRIu64 ", the allocator saw %" PRIu64, R->name,
          st.allocations, alloc_calls);

    /* ---- render ---- */
    for (int fmt = 0; fmt < 2; fmt++) {
        sink k = {&out->render[fmt], RENDER_CAP, 0, 0};
        uint64_t before = R->ta.calls;
        int rrc = au_render(R->s, smp, (uint32_t)fmt, sink_write, &k);
        out->render_rc[fmt] = rrc;
        int refused = R->ta.fail_at > before && R->ta.fail_at <= R->ta.calls;
        CHECK(rrc == AU_OK || (rrc == AU_ERR_IO && out->render[fmt].len + 4096 >= RENDER_CAP) ||
                  (rrc == AU_ERR_NOMEM && refused),
              "au_render(format %d): %d", fmt, rrc);
        if (rrc != AU_OK || fmt != AU_FORMAT_COLLAPSED) continue;
        /* One line per stack, and per thread without one; each ends " 1". */
        uint64_t want = smp->nstacks, lines = 0;
        for (uint32_t i = 0; i < smp->nthreads; i++) want += smp->threads[i].nstacks == 0;
        if (out->render[fmt].len == 0) {
            CHECK(want == 0, "collapsed: empty, for %" PRIu64 " stacks", want);
            continue;
        }
        /* Target text may hold any byte but a line break (NUL included). */
        const char *s = out->render[fmt].s, *end = s + out->render[fmt].len;
        for (const char *p = s, *nl; p < end && (nl = memchr(p, '\n', (size_t)(end - p)));
             p = nl + 1) {
            CHECK(nl - p >= 2 && nl[-2] == ' ' && nl[-1] == '1', "collapsed line %" PRIu64
                  " does not end in \" 1\"", lines);
            lines++;
        }
        CHECK(lines == want && (lines == 0 || end[-1] == '\n'),
              "collapsed: %" PRIu64 " lines, %" PRIu64 " stacks and stackless threads", lines, want);
    }
    /* The tree and JSON formats: bounded, and JSON valid whatever bytes
     * the corrupted target gave its names. */
    for (uint32_t fmt = AU_FORMAT_TREE; fmt <= AU_FORMAT_JSON; fmt++) {
        text t = {0};
        sink k = {&t, RENDER_CAP, 0, 0};
        uint64_t before = R->ta.calls;
        int rrc = au_render(R->s, smp, fmt, sink_write, &k);
        int refused = R->ta.fail_at > before && R->ta.fail_at <= R->ta.calls;
        CHECK(rrc == AU_OK || (rrc == AU_ERR_IO && t.len + 4096 >= RENDER_CAP) ||
                  (rrc == AU_ERR_NOMEM && refused),
              "au_render(format %u): %d", fmt, rrc);
        if (rrc == AU_OK && fmt == AU_FORMAT_JSON) {
            size_t bad = json_syntax_error(t.s, t.len);
            CHECK(bad == 0, "JSON output invalid at byte %zu of %zu", bad - 1, t.len);
        }
        text_free(&t);
    }
    {
        text t = {0};
        sink k = {&t, RENDER_CAP, 0, 1};
        uint64_t before = R->ta.calls;
        int rrc = au_render(R->s, smp, AU_FORMAT_TEXT, sink_write, &k);
        int refused = R->ta.fail_at > before && R->ta.fail_at <= R->ta.calls;
        CHECK(rrc == AU_ERR_IO || (rrc == AU_ERR_NOMEM && refused),
              "au_render with a failing writer: %d", rrc);
        text_free(&t);
    }

    /* ---- profiles ---- */
    {
        uint64_t want = smp->nstacks;
        for (uint32_t i = 0; i < smp->nthreads; i++) want += smp->threads[i].nstacks == 0;
        check_profile(R, smp, want);
    }

    /* ---- written down ---- */
    out->nframes = smp->nframes;
    out->name_hash = xmalloc((size_t)(smp->nframes ? smp->nframes : 1) * sizeof *out->name_hash);
    tprintf(F, "flags=%#x version=%#x exact=%u threads=%u tasks=%u stacks=%u frames=%u\n",
            smp->flags, smp->py_version_hex, smp->version_exact, smp->nthreads, smp->ntasks,
            smp->nstacks, smp->nframes);
    tprintf(S, "flags=%#x threads=%u tasks=%u stacks=%u frames=%u\n", smp->flags, smp->nthreads,
            smp->ntasks, smp->nstacks, smp->nframes);
    for (int w = 0; w < 2; w++) {
        text *T = w ? S : F;
        for (uint32_t i = 0; i < smp->nthreads; i++) {
            const au_sample_thread *t = &smp->threads[i];
            tprintf(T, " thread %u native=%" PRIu64 " id=%#" PRIx64 " flags=%#x frames=%u+%u "
                    "tasks=%u+%u stacks=%u+%u name=", i, t->native_id, t->thread_id, t->flags,
                    t->first_frame, t->nframes, t->first_task, t->ntasks, t->first_stack,
                    t->nstacks);
            tbytes(T, t->name, t->name_len);
            tput(T, "\n", 1);
        }
        for (uint32_t j = 0; j < smp->ntasks; j++) {
            const au_sample_task *t = &smp->tasks[j];
            tprintf(T, " task %u id=%#" PRIx64 " flags=%#x thread=%u parent=%u link=%u frames=%u+%u name=",
                    j, t->id, t->flags, t->thread, t->parent, t->link, t->first_frame, t->nframes);
            tbytes(T, t->name, t->name_len);
            tput(T, "\n", 1);
        }
        for (uint32_t i = 0; i < smp->nframes; i++) {
            const au_sample_frame *f = &smp->frames[i];
            tprintf(T, " frame %u addr=%#" PRIx64 " code=%#" PRIx64, i, f->addr, f->code_addr);
            if (T == F) {
                tprintf(T, " line=%d ", f->line);
                if (f->qualname) {
                    tbytes(T, f->qualname, f->qualname_len);
                    tput(T, " ", 1);
                    tbytes(T, f->filename, f->filename_len);
                } else {
                    tput(T, "-", 1);
                }
            }
            tput(T, "\n", 1);
        }
        for (uint32_t k = 0; k < smp->nstacks; k++) {
            const au_sample_stack *st = &smp->stacks[k];
            tprintf(T, " stack %u thread=%u leaf=%u flags=%#x ntasks=%u len=%" PRIu64 ":", k,
                    st->thread, st->leaf, st->flags, st->ntasks, E[k].len);
            for (uint64_t i = 0; E[k].e && i < E[k].len; i++)
                tprintf(T, " %u:%" PRIu64 ":%d", E[k].e[i].kind, E[k].e[i].id,
                        (int)E[k].e[i].task);
            tput(T, "\n", 1);
        }
    }
    tprintf(F, " stats requests=%" PRIu64 " failures=%" PRIu64 " bytes=%" PRIu64
            " reader=%" PRIu64 "/%u hits=%u misses=%u evictions=%u tasks=%u links=%u "
            "creators=%u allocations=%" PRIu64 "\n",
            st.mem.requests, st.mem.failures, st.mem.bytes, st.reader.mem.requests,
            st.reader.batches, st.reader.code_hits, st.reader.code_misses,
            st.reader.code_evictions, st.tasks, st.links, st.creators, st.allocations);
    for (uint32_t i = 0; i < smp->nframes; i++) {
        const au_sample_frame *f = &smp->frames[i];
        uint64_t h = 0;
        if (f->qualname) {
            h = fnv(0xcbf29ce484222325ull, f->qualname, f->qualname_len);
            h = fnv(h, "\0", 1);
            h = fnv(h, f->filename, f->filename_len);
            h = fnv(h, &f->line, sizeof f->line) | 1;
        }
        out->name_hash[i] = h;
    }
    for (uint32_t k = 0; k < smp->nstacks; k++) free(E[k].e);
    free(E);
}

/* A second sample of the same target: the same shape, and the same names
 * and lines wherever both named the frame. */
static void check_consistent(const char *what, const shot *a, const shot *b) {
    if (a->rc != AU_OK || b->rc != AU_OK) return;
    context ctx = {what, &a->shape, &b->shape};
    check_on_failure(print_context, &ctx);
    /* The first line names the run. */
    const char *sa = strchr(a->shape.s, '\n'), *sb = strchr(b->shape.s, '\n');
    CHECK(sa && sb && strcmp(sa, sb) == 0, "%s: the samples differ in shape", what);
    for (uint32_t i = 0; i < a->nframes; i++)
        CHECK(!a->name_hash[i] || !b->name_hash[i] || a->name_hash[i] == b->name_hash[i],
              "%s: frame %u has different names or lines", what, i);
    check_on_failure(NULL, NULL);
}

/* Byte for byte, the run names aside. */
static void check_identical(const char *what, const shot *a, const shot *b, int with_stats) {
    context ctx = {what, &a->full, &b->full};
    check_on_failure(print_context, &ctx);
    CHECK(a->rc == b->rc, "%s: status %d vs %d", what, a->rc, b->rc);
    const char *sa = strchr(a->full.s, '\n'), *sb = strchr(b->full.s, '\n');
    size_t na = strlen(sa), nb = strlen(sb);
    if (!with_stats) { /* the stats line is the last */
        const char *la = strstr(sa, "\n stats "), *lb = strstr(sb, "\n stats ");
        if (la) na = (size_t)(la - sa);
        if (lb) nb = (size_t)(lb - sb);
    }
    CHECK(na == nb && memcmp(sa, sb, na) == 0, "%s: the samples differ", what);
    for (int f = 0; f < 2; f++) {
        ctx.a = &a->render[f];
        ctx.b = &b->render[f];
        CHECK(a->render_rc[f] == b->render_rc[f] && text_eq(&a->render[f], &b->render[f]),
              "%s: the renders (format %d) differ", what, f);
    }
    check_on_failure(NULL, NULL);
}

/* ========================================================================
 * Runs
 * ===================================================================== */

static void print_shot(const shot *s) {
    if (!print_samples) return;
    fprintf(stderr, "%s", s->full.s ? s->full.s : "");
    if (s->render[0].s) fprintf(stderr, "%s\n", s->render[0].s);
}

/* Opens R's sampler and checks the status, which it returns. */
/* src NULL: a replay of snap (opened here); else the caller's source, read
 * by pages when paged (V). */
static int run_open_on(run *R, const au_snapshot *snap, const config *cfg, const char *name,
                       uint8_t fill, uint64_t fail_at, size_t input_size, au_memsrc *src,
                       int paged) {
    memset(R, 0, sizeof *R);
    R->name = name;
    R->cfg = cfg;
    R->snap = snap;
    R->input_size = input_size;
    R->ta.fill = fill;
    R->ta.fail_at = fail_at;
    R->al = (au_allocator){ta_realloc, &R->ta};
    R->paged = paged;
    int rc = AU_OK;
    if (src) {
        R->src = src;
    } else {
        rc = au_memsrc_snapshot_open(NULL, snap, &R->src);
        CHECK(rc == AU_OK, "au_memsrc_snapshot_open: %d", rc);
        R->owned = 1;
    }
    watch_init(&R->w, R->src, max_read_len(cfg));
    const au_snapshot_meta *m = au_snapshot_get_meta(snap);
    rc = paged ? au_sampler_open_image(&R->al, snap, &R->w.base, &cfg->opt, &R->s)
               : au_sampler_open_snapshot_via(&R->al, snap, &R->w.base, &cfg->opt, &R->s);
    R->open_rc = rc;
    CHECK(valid_status(rc), "%s: au_sampler_open_snapshot: %d", name, rc);
    CHECK((rc == AU_OK) == (R->s != NULL), "%s: open status %d, sampler %p", name, rc,
          (void *)R->s);
    int nomem_ok = R->ta.failed || R->ta.big_request;
    if (!supported_version(m->py_version_hex))
        CHECK(rc == AU_ERR_UNSUPPORTED || (rc == AU_ERR_ARG && m->runtime_addr == 0) ||
                  (rc == AU_ERR_NOMEM && nomem_ok),
              "%s: open (version %#x): %d", name, m->py_version_hex, rc);
    else if (m->runtime_addr == 0)
        CHECK(rc == AU_ERR_ARG || (rc == AU_ERR_NOMEM && nomem_ok), "%s: open (runtime 0): %d",
              name, rc);
    else
        CHECK(rc == AU_OK || rc == AU_ERR_READ || rc == AU_ERR_FORMAT || rc == AU_ERR_CORRUPT ||
                  rc == AU_ERR_UNSUPPORTED || (rc == AU_ERR_NOMEM && nomem_ok),
              "%s: open (version %#x, runtime %#" PRIx64 "): %d (%s)", name, m->py_version_hex,
              m->runtime_addr, rc, au_status_str(rc));
    if (rc == AU_OK && (m->py_version_hex >> 16) < 0x030D)
        CHECK(R->w.requests == 0, "%s: opening read %" PRIu64 " times before 3.13", name,
              R->w.requests);
    R->w.sampler = R->s;
    return rc;
}

static int run_open(run *R, const au_snapshot *snap, const config *cfg, const char *name,
                    uint8_t fill, uint64_t fail_at, size_t input_size) {
    return run_open_on(R, snap, cfg, name, fill, fail_at, input_size, NULL, 0);
}

/* With limits no larger than the defaults, memory is bounded by the
 * snapshot and the limits: a request over 1 GiB is a bug.  (Larger limits
 * may ask for more; the sampler must then fail cleanly.) */
static void check_big(const run *R) {
    const config *c = R->cfg;
    int modest = c->max_name <= 1024 && c->max_frames <= 4096 && c->max_threads <= 1024;
    CHECK(!R->ta.big_request || !modest, "%s asked the allocator for %zu bytes", R->name,
          R->ta.big_request);
}

static void run_sample(run *R, shot *out) {
    const au_sample *smp = NULL;
    uint64_t calls0 = R->w.calls, oc0 = R->w.outside_calls, or0 = R->w.outside_reqs;
    uint64_t req0 = R->w.requests, ac0 = R->ta.calls;
    int failed_before = R->ta.failed;
    R->ta.big_request = 0;
    int rc = au_sampler_sample(R->s, &smp);
    check_big(R);
    int nomem_ok = (R->ta.failed && !failed_before) || R->ta.big_request;
    CHECK(valid_status(rc), "%s: au_sampler_sample: %d", R->name, rc);
    CHECK(rc == AU_OK || rc == AU_ERR_READ || (rc == AU_ERR_NOMEM && nomem_ok),
          "%s: au_sampler_sample: %d (%s)", R->name, rc, au_status_str(rc));
    take(R, rc, smp, calls0, oc0, or0, req0, ac0, out);
    print_shot(out);
}

static void run_close(run *R) {
    au_sampler_free(R->s);
    R->s = NULL;
    if (R->owned) au_memsrc_destroy(R->src);
    CHECK(R->ta.live == 0, "%s: %" PRId64 " blocks left allocated after au_sampler_free", R->name,
          R->ta.live);
}

static int write_buf(void *ud, const void *buf, size_t len) {
    text *t = ud;
    tput(t, buf, len);
    return 0;
}

/* R: record, write, replay; R's sample and the replay's must agree. */
static void run_roundtrip(const au_snapshot *snap, const config *cfg, size_t size,
                          int has_failed, const shot *a1) {
    config rc_cfg = *cfg;
    rc_cfg.opt.flags |= AU_SAMPLER_RECORD;
    run R;
    if (run_open(&R, snap, &rc_cfg, "R", 0x11, 0, size) != AU_OK) {
        run_close(&R);
        return;
    }
    shot r1;
    run_sample(&R, &r1);
    /* A recorder serves a read whose bytes it has seen even where a FAILED
     * record of the file says it fails (docs/SNAPSHOT.md): without any,
     * recording changes nothing. */
    if (!has_failed) check_identical("A vs R (recording)", a1, &r1, 0);
    text file = {0};
    int wrc = r1.rc == AU_OK ? au_sampler_write_snapshot(R.s, write_buf, &file) : AU_ERR_ARG;
    CHECK(r1.rc != AU_OK || wrc == AU_OK, "au_sampler_write_snapshot: %d", wrc);
    run_close(&R);
    if (r1.rc == AU_OK) {
        au_snapshot *s2 = NULL;
        int prc = au_snapshot_parse(NULL, (const uint8_t *)file.s, file.len, &s2);
        CHECK(prc == AU_OK, "the recorded snapshot does not parse: %d", prc);
        run P;
        int orc = run_open(&P, s2, cfg, "R-replay", 0x22, 0, file.len);
        CHECK(orc == AU_OK, "the recorded snapshot does not open: %d", orc);
        shot p1;
        run_sample(&P, &p1);
        check_identical("R vs its replay", &r1, &p1, 0);
        shot_free(&p1);
        run_close(&P);
        au_snapshot_free(s2);
    }
    text_free(&file);
    shot_free(&r1);
}

/* X and V: the exact path and the live path over one memory image. */
static void run_image(const au_snapshot *snap, const config *cfg, const uint8_t *data,
                      size_t size) {
    model m;
    CHECK(model_parse(data, size, &m) == 0, "a parsed snapshot does not parse as a model");
    imagemem xi, vi;
    image_init(&xi, &m);
    image_init(&vi, &m);
    run X, V;
    shot x1 = {0}, v[2] = {{0}};
    int xrc = run_open_on(&X, snap, cfg, "X", 0x00, 0, size, &xi.base, 0);
    if (xrc == AU_OK) run_sample(&X, &x1);
    run_close(&X);
    int vrc = run_open_on(&V, snap, cfg, "V", 0x00, 0, size, &vi.base, 1);
    CHECK(xrc == vrc, "open: exact %d vs paged %d", xrc, vrc);
    if (vrc == AU_OK) {
        run_sample(&V, &v[0]);
        run_sample(&V, &v[1]);
        /* The view's page limit (max_pages) cuts only V. */
        int cut = (v[0].limits & AU_LIMIT_PAGES) != 0;
        if (!cut) check_identical("X vs V (exact reads vs the live path)", &x1, &v[0], 0);
        check_consistent("V's first vs V's second sample", &v[0], &v[1]);
    }
    run_close(&V);
    shot_free(&x1);
    shot_free(&v[0]);
    shot_free(&v[1]);
    model_free(&m);
}

/* ========================================================================
 * Entry points
 * ===================================================================== */

/* Does the (valid) snapshot file hold FAILED records? */
static int has_failed_records(const uint8_t *data, size_t size) {
    for (size_t at = AU_SNAP_HEADER_SIZE; at + 8 <= size;) {
        uint32_t type = au_rd32(data + at), len = au_rd32(data + at + 4);
        if (type == AU_SNAP_FAILED) return 1;
        at += 8 + (((size_t)len + 7) & ~(size_t)7);
    }
    return 0;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "sampler_check: input took more than 30 s (hang)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    abort();
}

int sc_init(int *argc, char ***argv) {
    au_fuzz_run_from_workspace();
    if (argc && *argc > 0 && argv && *argv && (*argv)[0]) {
        const char *a0 = (*argv)[0];
        size_t n = strlen(a0);
        static const char suffix[] = "_regression";
        regression_mode = n >= sizeof suffix - 1 && strcmp(a0 + n - (sizeof suffix - 1), suffix) == 0;
    }
    const char *e = getenv("AU_FUZZ_PRINT");
    print_samples = e && *e && strcmp(e, "0") != 0;
    if (regression_mode) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
    }
    return regression_mode;
}

void sc_check(const uint8_t *data, size_t size, unsigned flags) {
    if (regression_mode) alarm(30);
    au_snapshot *snap = NULL;
    if (au_snapshot_parse(NULL, data, size, &snap) != AU_OK) {
        if (regression_mode) alarm(0);
        return;
    }
    const au_snapshot_meta *meta = au_snapshot_get_meta(snap);
    config cfg = decode(meta->time_ns, flags);

    run A, B;
    shot a[2] = {{0}}, b1 = {0};
    int arc = run_open(&A, snap, &cfg, "A", 0x00, 0, size);
    if (arc == AU_OK) {
        run_sample(&A, &a[0]);
        run_sample(&A, &a[1]);
    }
    uint64_t a_calls = A.ta.calls;
    run_close(&A);
    int brc = run_open(&B, snap, &cfg, "B", 0x5A, 0, size);
    CHECK(arc == brc, "open: %d vs %d", arc, brc);
    if (brc == AU_OK) {
        run_sample(&B, &b1);
        check_identical("A vs B", &a[0], &b1, 1);
        check_consistent("A's first vs A's second sample", &a[0], &a[1]);
    }
    run_close(&B);

    if (cfg.fault && arc == AU_OK) {
        run C;
        uint64_t k = 1 + (cfg.fault_sel * (a_calls ? a_calls : 1)) / 64;
        if (run_open(&C, snap, &cfg, "C", 0xC3, k, size) == AU_OK) {
            shot c[2] = {{0}};
            run_sample(&C, &c[0]);
            run_sample(&C, &c[1]);
            check_consistent("A vs C (one allocation refused)", &a[0], &c[0]);
            check_consistent("A vs C (after a refused allocation)", &a[0], &c[1]);
            CHECK(c[1].rc == a[0].rc, "C's sample after a refused allocation: %d, A's %d",
                  c[1].rc, a[0].rc);
            shot_free(&c[0]);
            shot_free(&c[1]);
        } else {
            CHECK(C.open_rc == AU_ERR_NOMEM && C.ta.failed, "C: open %d", C.open_rc);
        }
        run_close(&C);
    }
    if (cfg.roundtrip && arc == AU_OK) {
        run_roundtrip(snap, &cfg, size, has_failed_records(data, size), &a[0]);
    }
    if (cfg.image && arc == AU_OK) run_image(snap, &cfg, data, size);
    shot_free(&a[0]);
    shot_free(&a[1]);
    shot_free(&b1);
    au_snapshot_free(snap);
    if (regression_mode) alarm(0);
}

int sc_record(const uint8_t *data, size_t size, unsigned flags, uint32_t max_reads,
              sc_recording *out) {
    memset(out, 0, sizeof *out);
    au_snapshot *snap = NULL;
    if (au_snapshot_parse(NULL, data, size, &snap) != AU_OK) return 0;
    const au_snapshot_meta *meta = au_snapshot_get_meta(snap);
    config cfg = decode(meta->time_ns, flags);
    au_memsrc *src = NULL;
    int ok = 0;
    if (au_memsrc_snapshot_open(NULL, snap, &src) == AU_OK) {
        watchmem w;
        watch_init(&w, src, max_read_len(&cfg));
        w.log = xmalloc((size_t)(max_reads ? max_reads : 1) * sizeof *w.log);
        w.log_cap = max_reads;
        au_sampler *s = NULL;
        if (au_sampler_open_snapshot_via(NULL, snap, &w.base, &cfg.opt, &s) == AU_OK) {
            w.sampler = s;
            const au_sample *smp = NULL;
            if (au_sampler_sample(s, &smp) == AU_OK) {
                out->tasks = xmalloc((size_t)(smp->ntasks ? smp->ntasks : 1) * sizeof *out->tasks);
                for (uint32_t j = 0; j < smp->ntasks; j++) out->tasks[j] = smp->tasks[j].id;
                out->ntasks = smp->ntasks;
            }
            au_sampler_free(s);
            ok = 1;
        }
        out->reads = w.log;
        out->nreads = w.nlog;
        out->version = meta->py_version_hex;
        au_memsrc_destroy(src);
    }
    au_snapshot_free(snap);
    return ok;
}

void sc_recording_free(sc_recording *r) {
    free(r->reads);
    free(r->tasks);
    memset(r, 0, sizeof *r);
}
