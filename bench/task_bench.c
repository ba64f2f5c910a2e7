/*
 * task_bench: the cost of one task-aware au_sampler_sample() of an asyncio
 * program with 1,000 and 10,000 idle tasks, and of the parts around it.
 *
 * The target is python_fixtures/many_tasks.py COUNT: the main task and
 * COUNT idle tasks in four shapes, coroutine chains of one to three
 * frames, all asleep in the event loop (so every sample reads the same
 * state).  With --au_fixture=gathered the target is
 * python_fixtures/many_gathered.py COUNT instead: the same tasks, gathered
 * by the main task, so that every sample also reads and resolves COUNT
 * strong links (cases named gathered/... instead of tasks/...).  For
 * every interpreter of tests/pythons.h and both counts:
 *
 *   tasks/live/<count>/<interp>      the fixture stays alive and the loop
 *                                    samples it (au_sampler_open_pid):
 *                                    system calls included
 *   tasks/snapshot/<count>/<interp>  one sample of the same process is
 *                                    recorded (AU_SAMPLER_RECORD) into a
 *                                    buffer; the loop samples the parsed
 *                                    snapshot (au_sampler_open_snapshot):
 *                                    no system call.  A replay reads exact
 *                                    ranges, a binary search each, not
 *                                    pages (core/memory/au_view.h), so its
 *                                    page counters are 0
 *   tasks/fetch/<count>/<interp>     every page a warm sample reads, in
 *                                    one batch through the live memory
 *                                    source, as a view's prefetch reads
 *                                    them: what the system calls of a
 *                                    warm sample cost, alone.  The pages
 *                                    are those of the fourth sample of a
 *                                    sampler that reads the live process
 *                                    by whole pages, as a live one does
 *                                    (au_sampler_open_image), through a
 *                                    source that notes them
 *   tasks/floor/<count>/<interp>     the same batch, then one 8-byte read
 *                                    of every 64-byte line of the pages
 *                                    fetched, in page order: a lower
 *                                    bound for any sample that fetches
 *                                    whole pages and then looks at what
 *                                    it fetched (a warm sample's reads
 *                                    span most of each page)
 *   tasks/render/<count>/<interp>    au_render of the snapshot's sample,
 *                                    collapsed, to a sink: what printing
 *                                    a sample costs (not part of a sample)
 *
 * One fixture process per interpreter and count serves them all, spawned
 * at the first benchmark that needs it and killed at exit.  The sampler
 * is opened once per run, outside the loop, and one untimed sample warms
 * it (code cache, buffers, the previous sample's pages): the loop measures
 * warm samples, each one the whole pipeline (threads and frames, tasks,
 * coroutine chains, links, resolving, naming).
 *
 * Columns: Time is wall-clock time per sample, CPU the sampling thread's
 * CPU time (user + system: process_vm_readv is system time of the caller);
 * Google Benchmark sizes the loop on CPU time.  Counters, per sample:
 *   us_med, us_p90  the median and 90th percentile of the samples' own
 *                   wall-clock times (each sample timed on its own)
 *   us_cpu_med      the median of the samples' own CPU times (reading the
 *                   thread's CPU clock costs about 1 us here, half of it
 *                   inside the span)
 *   us_cpu_p10      their 10th percentile: on a machine shared with other
 *                   work, closer to what a sample costs undisturbed
 *   us_cpu          the CPU time, mean over the loop
 *   syscalls        read system calls (0 for snapshots)
 *   reads           reads the memory source served (a snapshot serves
 *                   every object read; a live view fetches whole pages)
 *   pages           distinct pages those calls touched, summed over calls
 *   bytes           bytes transferred, gaps of merged runs included (for
 *                   render: bytes of output)
 *   fetched, used   pages the asyncio model's view fetched, and of those
 *                   the pages some read used
 *   tasks           tasks found (COUNT + 1: the main task too)
 *   allocs          heap allocations the sampler counted (stats)
 *   heap_allocs     allocations through the au_allocator it was given
 *
 * After the benchmarks, a table per kind: for every interpreter the median
 * us per sample at each count (over every timed sample of every run and
 * repetition), wall clock and CPU time, the ratio of the largest count to
 * the smallest (10 means cost linear in tasks), and the counters.
 *
 * Own flags (removed before the benchmark flags are parsed):
 *   --au_strict            fail when a warm sample allocates (either count),
 *                          misses tasks, or is partial (the smoke test;
 *                          timings are never asserted)
 *   --au_no_agent          open samplers with AU_SAMPLER_NO_AGENT: without
 *                          the agent's region a sampler looks for it again
 *                          every 64 samples, which reads /proc/PID/maps and
 *                          allocates (see the smoke test in BUILD)
 *   --au_python=A,B,...    only these interpreters (default: all)
 *   --au_tasks=N,M         only these task counts (default: 1000,10000)
 *   --au_source=KIND       only live, snapshot, fetch, floor or render
 *                          (default: all five)
 *
 * A missing interpreter is skipped with its reason on stderr, or fails the
 * run when CI=true (tests/pythons.h policy).
 *
 *   bazel build -c opt //bench:task_bench
 *   cd bazel-bin/bench/task_bench.runfiles/asyncunwind
 *   taskset -c 0 ../../task_bench --benchmark_repetitions=5 \
 *       --benchmark_report_aggregates_only=true
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_shim.h"
#include "bench/counting_alloc.h"
#include "core/asyncunwind.h"
#include "core/sample/au_sampler.h"
#include "tests/membuf.h"
#include "tests/pythons.h"

/* --au_fixture: the program sampled, and the first part of the cases'
 * names. */
typedef struct shape {
    const char *option, *path, *prefix;
} shape;
static const shape shapes[] = {
    {"idle", "python_fixtures/many_tasks.py", "tasks"},
    /* The same tasks, gathered by the main task: a strong link each. */
    {"gathered", "python_fixtures/many_gathered.py", "gathered"},
};
#define SLEEP_WAIT_MS 20000
#define MAX_INTERPS 16
#define MAX_COUNTS 4
#define DEFAULT_COUNTS "1000,10000"

typedef enum src_kind {
    SRC_LIVE,
    SRC_SNAPSHOT,
    SRC_FETCH,
    SRC_FLOOR,
    SRC_RENDER,
    SRC_COUNT
} src_kind;
static const char *const src_names[SRC_COUNT] = {"live", "snapshot", "fetch", "floor", "render"};

/* ---- one fixture process per interpreter and task count ------------------ */

typedef struct target {
    const shape *shape;
    const py_interp *interp;
    uint32_t count;
    int state;      /* 0: not spawned, 1: running, -1: failed (see error) */
    int snap_state; /* the same for the recorded snapshot */
    char error[1400];
    py_proc proc;
    membuf snap;
} target;

/* A growable array of per-sample times. */
typedef struct durations {
    uint64_t *ns;
    size_t n, cap;
} durations;

static int dur_push(durations *d, uint64_t v) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 4096;
        uint64_t *p = realloc(d->ns, cap * sizeof *p);
        if (!p) return -1;
        d->ns = p;
        d->cap = cap;
    }
    d->ns[d->n++] = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of d, sorted in place; 0 when empty. */
static double quantile_us(durations *d, double q) {
    if (!d->n) return 0;
    qsort(d->ns, d->n, sizeof *d->ns, cmp_u64);
    size_t i = (size_t)(q * (double)(d->n - 1) + 0.5);
    return (double)d->ns[i] / 1000.0;
}

/* Per-sample counters, summed over samples. */
typedef struct counters {
    uint64_t samples, syscalls, reads, pages, bytes, fetched, used, tasks, allocs, heap;
    uint64_t partial, wrong_tasks;
} counters;

typedef struct bench_case {
    target *t;
    src_kind kind;
    int strict;
    uint32_t flags; /* au_sampler_options.flags */
    durations all;     /* every timed sample of every run, wall clock */
    durations all_cpu; /* the same, the thread's CPU time */
    counters sum;  /* every timed sample of every run */
} bench_case;

static int spawn_target(target *t) {
    char arg[16];
    snprintf(arg, sizeof arg, "%u", (unsigned)t->count);
    const char *args[] = {arg, NULL};
    if (py_spawn_fixture(t->interp, t->shape->path, args, &t->proc) != 0) {
        snprintf(t->error, sizeof t->error, "%s: %s", t->interp->name, t->proc.error);
        return -1;
    }
    /* READY comes once every task started; the loop then settles in
     * epoll_wait. */
    if (py_wait_sleeping(&t->proc, SLEEP_WAIT_MS) != 0) {
        snprintf(t->error, sizeof t->error, "%s: %s", t->interp->name, t->proc.error);
        py_kill(&t->proc);
        return -1;
    }
    return 0;
}

static int ensure_running(target *t) {
    if (t->state == 0) t->state = spawn_target(t) == 0 ? 1 : -1;
    return t->state > 0 ? 0 : -1;
}

/* Is this many_tasks.py's sample?  Writes why not into msg. */
static int check_sample(const au_sample *smp, uint32_t count, char *msg, size_t cap) {
    if (!(smp->flags & AU_SAMPLE_ASYNCIO) || (smp->flags & AU_SAMPLE_PARTIAL) ||
        smp->ntasks != count + 1) {
        snprintf(msg, cap, "sample flags 0x%x, %u tasks; expected asyncio, not partial, %u tasks",
                 smp->flags, smp->ntasks, count + 1);
        return -1;
    }
    return 0;
}

/* Record one sample of the running target into t->snap. */
static int ensure_snapshot(target *t) {
    if (t->snap_state) return t->snap_state > 0 ? 0 : -1;
    t->snap_state = -1;
    if (ensure_running(t) != 0) return -1;
    au_sampler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.flags = AU_SAMPLER_RECORD;
    au_sampler *s = NULL;
    const au_sample *smp;
    char why[256] = "";
    const char *step = "au_sampler_open_pid";
    int rc = au_sampler_open_pid(NULL, t->proc.pid, &opt, &s);
    if (rc == AU_OK) {
        step = "recorded sample";
        rc = au_sampler_sample(s, &smp);
        if (rc == AU_OK && check_sample(smp, t->count, why, sizeof why) != 0) rc = AU_ERR_CORRUPT;
    }
    if (rc == AU_OK) {
        step = "au_sampler_write_snapshot";
        rc = au_sampler_write_snapshot(s, membuf_write, &t->snap);
    }
    au_sampler_free(s);
    if (rc != AU_OK) {
        snprintf(t->error, sizeof t->error, "%s pid %d: %s: %s%s%s", t->interp->name,
                 (int)t->proc.pid, step, au_status_str(rc), why[0] ? ": " : "", why);
        return -1;
    }
    t->snap_state = 1;
    return 0;
}

/* ---- one run ---------------------------------------------------------------- */

typedef struct fixture {
    bench_case *bc;
    counting_alloc alloc;
    au_allocator allocator;
    au_snapshot *snap;
    au_sampler *s;
    const au_sample *smp; /* SRC_RENDER: the sample rendered */
    au_memsrc *mem;       /* SRC_FETCH, SRC_FLOOR: the live process */
    au_read *reads;       /* SRC_FETCH, SRC_FLOOR: one whole page each */
    uint8_t *pages;
    uint32_t npages;
    uint64_t out_bytes;   /* SRC_RENDER: bytes rendered */
    uint64_t heap_before; /* allocator count when the loop starts */
    durations run;        /* this run's samples, wall clock */
    durations run_cpu;    /* the same, the thread's CPU time */
    counters sum;
} fixture;

static volatile uint32_t g_sink;

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fixture_free(fixture *f) {
    if (f->mem) au_memsrc_destroy(f->mem);
    free(f->reads);
    free(f->pages);
    au_sampler_free(f->s);
    au_snapshot_free(f->snap);
    free(f->run.ns);
    free(f->run_cpu.ns);
    free(f);
}

/* ---- fetch: the page reads alone ------------------------------------------ */

/* A memory source that serves reads from the live process and, while on,
 * notes the page numbers they touch (with repeats). */
typedef struct watcher {
    au_memsrc base;
    au_memsrc *inner;
    uint64_t *pages;
    size_t n, cap;
    int on, oom;
} watcher;

static int watch_read(au_memsrc *self, au_read *reads, uint32_t n) {
    watcher *w = (watcher *)self;
    int rc = w->inner->read(w->inner, reads, n);
    self->stats = w->inner->stats;
    for (uint32_t k = 0; w->on && k < n; k++) {
        if (!reads[k].len) continue;
        for (uint64_t p = reads[k].addr / 4096; p <= (reads[k].addr + reads[k].len - 1) / 4096; p++) {
            if (w->n == w->cap) {
                size_t c = w->cap ? 2 * w->cap : 1024;
                uint64_t *q = realloc(w->pages, c * sizeof *q);
                if (!q) {
                    w->oom = 1;
                    return rc;
                }
                w->pages = q;
                w->cap = c;
            }
            w->pages[w->n++] = p;
        }
    }
    return rc;
}

static void watch_destroy(au_memsrc *self) { (void)self; }

static int cmp_page(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The distinct pages (ascending) that a warm sample of the target reads,
 * into *out (malloc'd); their count, or -1 with msg written.  The sampler
 * reads the live process through the recorded snapshot's META, by whole
 * pages as a live sampler does; three samples warm it, the fourth is
 * watched. */
static long warm_pages(fixture *f, uint64_t **out, char *msg, size_t cap) {
    target *t = f->bc->t;
    watcher w = {{watch_read, watch_destroy, {0}}, f->mem, NULL, 0, 0, 0, 0};
    au_sampler *s = NULL;
    const au_sample *smp = NULL;
    const char *step = "au_snapshot_parse";
    char why[256] = "";
    int rc = au_snapshot_parse(&f->allocator, t->snap.data, t->snap.len, &f->snap);
    if (rc == AU_OK) {
        step = "au_sampler_open_image";
        rc = au_sampler_open_image(&f->allocator, f->snap, &w.base, NULL, &s);
    }
    for (int k = 0; k < 4 && rc == AU_OK; k++) {
        step = "watched sample";
        w.on = k == 3;
        rc = au_sampler_sample(s, &smp);
        if (rc == AU_OK && check_sample(smp, t->count, why, sizeof why) != 0) rc = AU_ERR_CORRUPT;
    }
    au_sampler_free(s);
    if (rc == AU_OK && (w.oom || w.n == 0)) rc = w.oom ? AU_ERR_NOMEM : AU_ERR_READ;
    if (rc != AU_OK) {
        snprintf(msg, cap, "%s: %s: %s%s%s", t->interp->name, step, au_status_str(rc),
                 why[0] ? ": " : "", why);
        free(w.pages);
        return -1;
    }
    qsort(w.pages, w.n, sizeof *w.pages, cmp_page);
    size_t n = 0;
    for (size_t i = 0; i < w.n; i++)
        if (!n || w.pages[n - 1] != w.pages[i]) w.pages[n++] = w.pages[i];
    *out = w.pages;
    return (long)n;
}

static int setup_fetch(fixture *f, char *msg, size_t cap) {
    target *t = f->bc->t;
    uint64_t *pg = NULL;
    int rc = au_memsrc_live_open(&f->allocator, t->proc.pid, &f->mem);
    if (rc != AU_OK) {
        snprintf(msg, cap, "%s: au_memsrc_live_open: %s", t->interp->name, au_status_str(rc));
        return -1;
    }
    long n = warm_pages(f, &pg, msg, cap);
    if (n <= 0) return -1;
    f->npages = (uint32_t)n;
    f->reads = calloc((size_t)n, sizeof *f->reads);
    f->pages = malloc((size_t)n * 4096);
    rc = f->reads && f->pages ? AU_OK : AU_ERR_NOMEM;
    for (long i = 0; rc == AU_OK && i < n; i++)
        f->reads[i] = (au_read){pg[i] * 4096, f->pages + (size_t)i * 4096, 4096, AU_OK};
    free(pg);
    /* A warm-up batch grows the source's buffers. */
    if (rc == AU_OK) rc = f->mem->read(f->mem, f->reads, f->npages);
    if (rc != AU_OK) {
        snprintf(msg, cap, "%s: fetching %u pages: %s", t->interp->name, f->npages,
                 au_status_str(rc));
        return -1;
    }
    return 0;
}

/* SRC_FLOOR's look at what was fetched: one 8-byte read of every 64-byte
 * line, in page order (the kindest order for the CPU's prefetchers). */
static uint64_t touch_lines(const uint8_t *pages, uint32_t npages) {
    uint64_t acc = 0;
    for (size_t at = 0; at < (size_t)npages * 4096; at += 64) {
        uint64_t v;
        memcpy(&v, pages + at, 8);
        acc += v;
    }
    return acc;
}

/* SRC_FETCH: every page a warm sample uses, in one batch, as the view's
 * prefetch reads them: the system calls' share of a live sample.
 * SRC_FLOOR: then a look at every line of them. */
static int run_fetch(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    au_mem_stats before = f->mem->stats;
    uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = clock_ns(CLOCK_MONOTONIC);
    int rc = f->mem->read(f->mem, f->reads, f->npages);
    if (rc == AU_OK && f->bc->kind == SRC_FLOOR) g_sink += (uint32_t)touch_lines(f->pages, f->npages);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (rc != AU_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "fetch: %s", au_status_str(rc));
        bench_error(ctx, msg);
        return 1;
    }
    if (dur_push(&f->run, t1 - t0) != 0 || dur_push(&f->run_cpu, c1 - c0) != 0) {
        bench_error(ctx, "out of memory");
        return 1;
    }
    counters *c = &f->sum;
    c->samples++;
    c->syscalls += f->mem->stats.syscalls - before.syscalls;
    c->reads += f->mem->stats.requests - before.requests;
    c->pages += f->mem->stats.pages - before.pages;
    c->bytes += f->mem->stats.bytes - before.bytes;
    c->fetched += f->npages;
    c->tasks += f->bc->t->count + 1;
    return 0;
}

/* The renderer's output goes nowhere; only its size is kept. */
static int sink(void *ud, const void *buf, size_t len) {
    (void)buf;
    *(uint64_t *)ud += len;
    return 0;
}

static int setup_tasks(void *arg, void **out, bench_ctx *ctx) {
    bench_case *bc = arg;
    target *t = bc->t;
    char msg[1600];
    if ((bc->kind == SRC_LIVE ? ensure_running(t) : ensure_snapshot(t)) != 0) {
        bench_error(ctx, t->error);
        return -1;
    }
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        bench_error(ctx, "out of memory");
        return -1;
    }
    f->bc = bc;
    f->allocator = counting_allocator(&f->alloc);
    if (bc->kind == SRC_FETCH || bc->kind == SRC_FLOOR) {
        if (setup_fetch(f, msg, sizeof msg) != 0) {
            fixture_free(f);
            bench_error(ctx, msg);
            return -1;
        }
        f->heap_before = f->alloc.allocations;
        *out = f;
        return 0;
    }
    int rc;
    const char *step;
    if (bc->kind != SRC_LIVE) {
        step = "au_snapshot_parse";
        rc = au_snapshot_parse(&f->allocator, t->snap.data, t->snap.len, &f->snap);
        if (rc == AU_OK) {
            step = "au_sampler_open_snapshot";
            au_sampler_options opt;
            memset(&opt, 0, sizeof opt);
            opt.flags = bc->flags;
            rc = au_sampler_open_snapshot(&f->allocator, f->snap, &opt, &f->s);
        }
    } else {
        step = "au_sampler_open_pid";
        au_sampler_options opt;
        memset(&opt, 0, sizeof opt);
        opt.flags = bc->flags;
        rc = au_sampler_open_pid(&f->allocator, t->proc.pid, &opt, &f->s);
    }
    const au_sample *smp = NULL;
    if (rc == AU_OK) {
        step = "warm-up au_sampler_sample";
        rc = au_sampler_sample(f->s, &smp);
    }
    if (rc != AU_OK) {
        snprintf(msg, sizeof msg, "%s %s: %s", t->interp->name, step, au_status_str(rc));
        fixture_free(f);
        bench_error(ctx, msg);
        return -1;
    }
    char why[256];
    if (check_sample(smp, t->count, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "%s warm-up sample: %s", t->interp->name, why);
        fixture_free(f);
        bench_error(ctx, msg);
        return -1;
    }
    if (bc->kind == SRC_RENDER) { /* warm the renderer too */
        f->smp = smp;
        if ((rc = au_render(f->s, smp, AU_FORMAT_COLLAPSED, sink, &f->out_bytes)) != AU_OK) {
            snprintf(msg, sizeof msg, "%s au_render: %s", t->interp->name, au_status_str(rc));
            fixture_free(f);
            bench_error(ctx, msg);
            return -1;
        }
        f->out_bytes = 0;
    }
    f->heap_before = f->alloc.allocations;
    *out = f;
    return 0;
}

/* SRC_RENDER: one au_render of the same sample, collapsed (one line per
 * stack, what flame-graph tools read). */
static int run_render(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = clock_ns(CLOCK_MONOTONIC);
    int rc = au_render(f->s, f->smp, AU_FORMAT_COLLAPSED, sink, &f->out_bytes);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (rc != AU_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "au_render: %s", au_status_str(rc));
        bench_error(ctx, msg);
        return 1;
    }
    if (dur_push(&f->run, t1 - t0) != 0 || dur_push(&f->run_cpu, c1 - c0) != 0) {
        bench_error(ctx, "out of memory");
        return 1;
    }
    f->sum.samples++;
    f->sum.tasks += f->smp->ntasks;
    return 0;
}

static int run_tasks(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    const au_sample *smp;
    uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = clock_ns(CLOCK_MONOTONIC);
    int rc = au_sampler_sample(f->s, &smp);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (rc != AU_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "au_sampler_sample: %s", au_status_str(rc));
        bench_error(ctx, msg);
        return 1;
    }
    if (dur_push(&f->run, t1 - t0) != 0 || dur_push(&f->run_cpu, c1 - c0) != 0) {
        bench_error(ctx, "out of memory");
        return 1;
    }
    au_sampler_stats st;
    au_sampler_get_stats(f->s, &st);
    counters *c = &f->sum;
    c->samples++;
    c->syscalls += st.mem.syscalls;
    c->reads += st.mem.requests;
    c->pages += st.mem.pages;
    c->bytes += st.mem.bytes;
    c->fetched += st.pages;
    c->used += st.pages_used;
    c->tasks += smp->ntasks;
    c->allocs += st.allocations;
    c->partial += (smp->flags & AU_SAMPLE_PARTIAL) != 0;
    c->wrong_tasks += smp->ntasks != f->bc->t->count + 1;
    g_sink = smp->nstacks;
    return 0;
}

static void counters_add(counters *to, const counters *c) {
    to->samples += c->samples;
    to->syscalls += c->syscalls;
    to->reads += c->reads;
    to->pages += c->pages;
    to->bytes += c->bytes;
    to->fetched += c->fetched;
    to->used += c->used;
    to->tasks += c->tasks;
    to->allocs += c->allocs;
    to->heap += c->heap;
    to->partial += c->partial;
    to->wrong_tasks += c->wrong_tasks;
}

static void teardown_tasks(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    bench_case *bc = f->bc;
    counters *c = &f->sum;
    c->heap = f->alloc.allocations - f->heap_before;
    if (bc->kind == SRC_RENDER) c->bytes = f->out_bytes;
    double n = c->samples ? (double)c->samples : 1.0;
    bench_counter_ns_per_item(ctx, "us_cpu", 1000.0);
    for (size_t i = 0; i < f->run.n; i++)
        if (dur_push(&bc->all, f->run.ns[i]) != 0 || dur_push(&bc->all_cpu, f->run_cpu.ns[i]) != 0)
            break;
    bench_counter(ctx, "us_med", quantile_us(&f->run, 0.5), 0);
    bench_counter(ctx, "us_p90", quantile_us(&f->run, 0.9), 0);
    bench_counter(ctx, "us_cpu_med", quantile_us(&f->run_cpu, 0.5), 0);
    bench_counter(ctx, "us_cpu_p10", quantile_us(&f->run_cpu, 0.1), 0);
    bench_counter(ctx, "syscalls", (double)c->syscalls / n, 0);
    bench_counter(ctx, "reads", (double)c->reads / n, 0);
    bench_counter(ctx, "pages", (double)c->pages / n, 0);
    bench_counter(ctx, "bytes", (double)c->bytes / n, 0);
    bench_counter(ctx, "fetched", (double)c->fetched / n, 0);
    bench_counter(ctx, "used", (double)c->used / n, 0);
    bench_counter(ctx, "tasks", (double)c->tasks / n, 0);
    bench_counter(ctx, "allocs", (double)c->allocs / n, 0);
    bench_counter(ctx, "heap_allocs", (double)c->heap / n, 0);
    counters_add(&bc->sum, c);
    if (bc->strict && c->samples) {
        char msg[256] = "";
        if (c->allocs || c->heap)
            snprintf(msg, sizeof msg,
                     "%llu warm samples allocated: stats %llu, allocator %llu",
                     (unsigned long long)c->samples, (unsigned long long)c->allocs,
                     (unsigned long long)c->heap);
        else if (c->partial || c->wrong_tasks)
            snprintf(msg, sizeof msg,
                     "of %llu warm samples, %llu partial and %llu without %u tasks",
                     (unsigned long long)c->samples, (unsigned long long)c->partial,
                     (unsigned long long)c->wrong_tasks, bc->t->count + 1);
        if (msg[0]) bench_error(ctx, msg);
    }
    fixture_free(f);
}

/* ---- the scaling tables ------------------------------------------------------ */

static double per(uint64_t v, const counters *c) {
    return c->samples ? (double)v / (double)c->samples : 0;
}

/* One row of a table: a quantity at each count, then the ratio of the
 * largest count's to the smallest's. */
static void print_row(const double *v, size_t ncounts) {
    for (size_t z = 0; z < ncounts; z++)
        if (v[z] > 0) printf(" %9.1f", v[z]);
        else printf(" %9s", "-");
    if (ncounts > 1) {
        if (v[0] > 0 && v[ncounts - 1] > 0) printf(" %7.2f", v[ncounts - 1] / v[0]);
        else printf(" %7s", "-");
    }
}

static void print_tables(bench_case *cases, size_t nc, const uint32_t *counts, size_t ncounts) {
    double load[3] = {-1, -1, -1};
    FILE *lf = fopen("/proc/loadavg", "re");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(lf);
    }
    for (int k = 0; k < SRC_COUNT; k++) {
        int any = 0;
        for (size_t i = 0; i < nc; i++) any |= cases[i].kind == (src_kind)k && cases[i].all.n;
        if (!any) continue;
        if (k == SRC_FETCH)
            printf("\nFetching the pages a warm sample uses, one batch (the system calls of a "
                   "live sample):\nmedian us per batch, wall clock and CPU time; then per "
                   "batch\n");
        else if (k == SRC_FLOOR)
            printf("\nThe same batch, then one read of every 64-byte line fetched (a lower "
                   "bound for a\nsample that fetches whole pages): median us, wall clock and "
                   "CPU time; then per batch\n");
        else if (k == SRC_RENDER)
            printf("\nRendering a sample (au_render, collapsed): median us per call over every "
                   "timed call,\nwall clock and CPU time; then bytes of output, allocations\n");
        else
            printf("\nTask-aware sample, %s: median us per sample over every timed sample, "
                   "wall clock and CPU time;\nthen per sample: read syscalls, pages they "
                   "touched, bytes, view pages fetched / used, allocations\n",
                   k == SRC_LIVE ? "live process" : "snapshot in memory");
        printf("%-19s %s", "", "wall");
        for (size_t z = 1; z < ncounts; z++) printf("%10s", "");
        printf("%s  %s\n", ncounts > 1 ? "        " : "", "cpu");
        printf("%-19s", "interpreter");
        for (int half = 0; half < 2; half++) {
            for (size_t z = 0; z < ncounts; z++) printf(" %9u", (unsigned)counts[z]);
            if (ncounts > 1) printf(" %7s", "ratio");
            printf(" ");
        }
        printf("\n");
        const py_interp *seen[MAX_INTERPS];
        size_t nseen = 0;
        for (size_t i = 0; i < nc; i++) {
            const py_interp *p = cases[i].t->interp;
            int dup = 0;
            for (size_t j = 0; j < nseen; j++) dup |= seen[j] == p;
            if (dup || nseen == MAX_INTERPS) continue;
            seen[nseen++] = p;
            bench_case *by[MAX_COUNTS] = {NULL};
            for (size_t j = 0; j < nc; j++)
                for (size_t z = 0; z < ncounts; z++)
                    if (cases[j].t->interp == p && cases[j].kind == (src_kind)k &&
                        cases[j].t->count == counts[z])
                        by[z] = &cases[j];
            double wall[MAX_COUNTS] = {0}, cpu[MAX_COUNTS] = {0};
            int row = 0;
            for (size_t z = 0; z < ncounts; z++)
                if (by[z] && by[z]->all.n) {
                    wall[z] = quantile_us(&by[z]->all, 0.5);
                    cpu[z] = quantile_us(&by[z]->all_cpu, 0.5);
                    row = 1;
                }
            if (!row) continue;
            printf("%-19s", p->name);
            print_row(wall, ncounts);
            printf(" ");
            print_row(cpu, ncounts);
            printf("\n");
            for (size_t z = 0; z < ncounts; z++) {
                const counters *c = by[z] ? &by[z]->sum : NULL;
                if (!c || !c->samples) continue;
                if (k == SRC_RENDER) {
                    printf("%19s %6u tasks: %9.0f bytes of collapsed output, %4.2f allocs\n", "",
                           (unsigned)counts[z], per(c->bytes, c), per(c->allocs + c->heap, c));
                    continue;
                }
                if (k == SRC_FETCH || k == SRC_FLOOR) {
                    printf("%19s %6u tasks: %3.0f syscalls %5.0f pages %9.0f bytes, %4.2f allocs\n",
                           "", (unsigned)counts[z], per(c->syscalls, c), per(c->pages, c),
                           per(c->bytes, c), per(c->allocs + c->heap, c));
                    continue;
                }
                printf("%19s %6u tasks: %3.0f syscalls %5.0f pages %9.0f bytes %5.0f fetched "
                       "%5.0f used %4.2f allocs\n",
                       "", (unsigned)counts[z], per(c->syscalls, c), per(c->pages, c),
                       per(c->bytes, c), per(c->fetched, c), per(c->used, c),
                       per(c->allocs + c->heap, c));
            }
        }
    }
    if (load[0] >= 0)
        printf("\nload average at the end: %.2f %.2f %.2f (2 cores, shared)\n", load[0], load[1],
               load[2]);
}

/* ---- main ------------------------------------------------------------------ */

static int parse_counts(const char *list, uint32_t *counts, size_t *n) {
    *n = 0;
    for (const char *p = list; *p;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < 1 || v > 100000 || *n == MAX_COUNTS) return -1;
        counts[(*n)++] = (uint32_t)v;
        p = *end ? end + 1 : end;
    }
    /* Ascending, so the ratio is largest / smallest. */
    for (size_t i = 1; i < *n; i++)
        for (size_t j = i; j > 0 && counts[j - 1] > counts[j]; j--) {
            uint32_t x = counts[j];
            counts[j] = counts[j - 1];
            counts[j - 1] = x;
        }
    return *n ? 0 : -1;
}

int main(int argc, char **argv) {
    static target targets[MAX_INTERPS * MAX_COUNTS];
    static bench_case cases[MAX_INTERPS * MAX_COUNTS * SRC_COUNT];
    int strict = bench_take_flag(&argc, argv, "--au_strict");
    uint32_t flags = bench_take_flag(&argc, argv, "--au_no_agent") ? AU_SAMPLER_NO_AGENT : 0;
    const char *only = bench_take_value(&argc, argv, "--au_python");
    const char *count_list = bench_take_value(&argc, argv, "--au_tasks");
    const char *source = bench_take_value(&argc, argv, "--au_source");
    const char *fixture = bench_take_value(&argc, argv, "--au_fixture");
    const shape *shp = NULL;
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        if (!strcmp(fixture ? fixture : "idle", shapes[k].option)) shp = &shapes[k];
    if (!shp) {
        fprintf(stderr, "task_bench: --au_fixture is idle (many_tasks.py) or gathered "
                        "(many_gathered.py)\n");
        return 1;
    }
    uint32_t counts[MAX_COUNTS];
    size_t ncounts;
    if (parse_counts(count_list ? count_list : DEFAULT_COUNTS, counts, &ncounts) != 0) {
        fprintf(stderr, "task_bench: --au_tasks takes up to %d counts in 1..100000\n",
                MAX_COUNTS);
        return 1;
    }
    int source_ok = source == NULL;
    for (int k = 0; k < SRC_COUNT; k++) source_ok |= source && !strcmp(source, src_names[k]);
    if (!source_ok) {
        fprintf(stderr, "task_bench: --au_source is live, snapshot, fetch, floor or render\n");
        return 1;
    }
    size_t ninterp, nt = 0, nc = 0;
    const py_interp *all = py_interpreters(&ninterp);
    if (ninterp > MAX_INTERPS) ninterp = MAX_INTERPS;
    int missing_fatal = 0;
    if (py_check_list("task_bench", only) != 0) return 1;

    for (size_t i = 0; i < ninterp; i++) {
        const py_interp *p = &all[i];
        if (!py_listed(only, p->name)) continue;
        if (py_require_status(p) == PY_FAIL) missing_fatal = 1;
        if (!p->available) continue;
        for (size_t z = 0; z < ncounts; z++) {
            target *t = &targets[nt++];
            t->shape = shp;
            t->interp = p;
            t->count = counts[z];
            t->proc.pid = -1;
            t->proc.out_fd = -1;
        }
    }
    /* Grouped by source, then count, then interpreter: the live runs of a
     * size side by side, as in the tables. */
    for (int k = 0; k < SRC_COUNT; k++) {
        if (source && strcmp(source, src_names[k])) continue;
        for (size_t z = 0; z < ncounts; z++) {
            for (size_t i = 0; i < nt; i++) {
                if (targets[i].count != counts[z]) continue;
                bench_case *bc = &cases[nc++];
                bc->t = &targets[i];
                bc->kind = (src_kind)k;
                bc->strict = strict;
                bc->flags = flags;
                char name[96];
                snprintf(name, sizeof name, "%s/%s/%u/%s", shp->prefix, src_names[k],
                         (unsigned)counts[z], targets[i].interp->name);
                bench_run_fn run = k == SRC_RENDER                      ? run_render
                                   : k == SRC_FETCH || k == SRC_FLOOR ? run_fetch
                                                                      : run_tasks;
                if (bench_register(&(bench_spec){.name = name, .arg = bc, .setup = setup_tasks,
                                                 .run = run, .teardown = teardown_tasks,
                                                 .unit = BENCH_UNIT_US}))
                    return 1;
            }
        }
    }
    int rc = 0;
    if (nc == 0) {
        fprintf(stderr, "task_bench: no interpreter available: nothing to run%s\n",
                missing_fatal ? " (and CI=true)" : "");
    } else {
        rc = bench_main(argc, argv);
        print_tables(cases, nc, counts, ncounts);
    }
    for (size_t i = 0; i < nt; i++) {
        if (targets[i].state > 0) py_kill(&targets[i].proc);
        membuf_free(&targets[i].snap);
    }
    for (size_t i = 0; i < nc; i++) {
        free(cases[i].all.ns);
        free(cases[i].all_cpu.ns);
    }
    if (missing_fatal) {
        fprintf(stderr, "task_bench: interpreters are missing and CI=true\n");
        return rc ? rc : 3;
    }
    return rc;
}
