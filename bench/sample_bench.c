/*
 * sample_bench: the cost of one au_pyreader_sample() of a 50-frame stack.
 *
 * The target is python_fixtures/deep50.py: one thread, exactly 50 Python
 * frames, blocked in time.sleep (so every sample reads the same state).
 * For every interpreter of tests/pythons.h (pyenv 3.9-3.13, Debian's static
 * 3.11, sid's 3.14/3.15 in the chroot) two benchmarks:
 *
 *   sample/snapshot/<interp>  the fixture is spawned once, one sample is
 *                             recorded (au_recorder_open + au_recorder_write
 *                             into a buffer), the process is killed; the
 *                             timed loop samples au_memsrc_snapshot_open()
 *                             of the parsed snapshot: the reader's own cost,
 *                             without system calls
 *   sample/live/<interp>      the fixture stays alive (asleep) and the loop
 *                             samples it through au_memsrc_live_open()
 *
 * In both the reader is created once, outside the loop, and one untimed
 * sample warms its code cache first: the loop measures warm samples.
 *
 * Columns, per sample, in microseconds: Time is wall-clock time, CPU the
 * sampling thread's CPU time (user + system: a live sample is mostly
 * process_vm_readv).  Google Benchmark sizes the loop on CPU time, which
 * other load on this 2-core machine inflates far less than wall time; on
 * an idle machine the two agree.  Counters, per sample and averaged over
 * the timed iterations (the memory and cache counters come from
 * au_pyreader_get_stats):
 *   us_per_sample  the CPU time, as a plain number in microseconds
 *   syscalls       system calls (0 for snapshots)
 *   reads          au_read requests served by the memory source
 *   pages          distinct pages touched, summed over calls
 *   bytes          bytes transferred, gaps of merged runs included
 *   batches        read batches the reader issued
 *   allocs         heap allocations the reader counted (stats.allocations)
 *   heap_allocs    allocations through the au_allocator given to the reader
 *                  and the memory source (both counted)
 *   code_hits, code_misses   code-object cache, per sample
 *   frames         frames of the sampled thread (50)
 *
 * Own flags (removed before the benchmark flags are parsed):
 *   --au_strict            also fail when a warm sample allocates, misses the
 *                          code cache or reads a partial stack (the smoke
 *                          test; timings are never asserted)
 *   --au_python=A,B,...    only these interpreters (default: all of them)
 *
 * A missing interpreter is skipped with its reason on stderr, or fails the
 * run when CI=true (tests/pythons.h policy).
 *
 *   bazel run -c opt //bench:sample_bench -- --benchmark_repetitions=5 \
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
#include "tests/membuf.h"
#include "tests/pythons.h"

#define FIXTURE "python_fixtures/deep50.py"
#define EXPECT_FRAMES 50u
#define EXPECT_LEAF "bottom"
#define EXPECT_LEAF_LINE 27 /* the time.sleep line of deep50.py */
#define SLEEP_WAIT_MS 10000
#define MAX_INTERPS 16

/* ---- one interpreter x memory source -------------------------------------- */

typedef enum src_kind { SRC_SNAPSHOT, SRC_LIVE } src_kind;

typedef struct bench_case {
    const py_interp *interp;
    src_kind kind;
    int strict;
    /* Prepared on the first setup and kept until exit: Google Benchmark
     * calls setup several times per benchmark. */
    int prepared;      /* 0: not yet, 1: ready, -1: failed (see error) */
    char error[1200];
    membuf snap;       /* SRC_SNAPSHOT: the recorded sample */
    py_proc proc;      /* SRC_LIVE: the running fixture */
    int proc_running;
    au_pyruntime rt;   /* SRC_LIVE */
} bench_case;

typedef struct fixture {
    bench_case *bc;
    counting_alloc alloc;
    au_allocator allocator;
    au_snapshot *snap;
    au_memsrc *mem;
    au_pyreader *r;
    au_pysample s;
    uint64_t heap_before; /* allocator count when the loop starts */
    /* Sums over the timed samples. */
    uint64_t syscalls, requests, pages, bytes, failures, batches, allocations;
    uint64_t code_hits, code_misses, frames, partial;
} fixture;

static volatile uint32_t g_sink;

static int name_is(const char *s, uint32_t n, const char *want) {
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

/* Is this deep50.py's stack?  Writes why not into msg. */
static int check_stack(const au_pyreader *r, const au_pysample *s, char *msg, size_t cap) {
    if (s->nthreads != 1) {
        snprintf(msg, cap, "%u threads, expected 1", s->nthreads);
        return -1;
    }
    const au_pythread *t = &s->threads[0];
    if (t->flags != 0 || t->nframes != EXPECT_FRAMES) {
        snprintf(msg, cap, "thread flags 0x%x, %u frames; expected 0x0, %u", t->flags,
                 t->nframes, EXPECT_FRAMES);
        return -1;
    }
    const au_pycode *outer = au_pyreader_code(r, t->frames[0].code);
    const au_pycode *leaf = au_pyreader_code(r, t->frames[t->nframes - 1].code);
    if (outer == NULL || leaf == NULL || !name_is(outer->name, outer->name_len, "<module>") ||
        !name_is(leaf->name, leaf->name_len, EXPECT_LEAF) ||
        t->frames[t->nframes - 1].line != EXPECT_LEAF_LINE) {
        snprintf(msg, cap, "expected <module> ... %s:%d, got %.*s ... %.*s:%d", EXPECT_LEAF,
                 EXPECT_LEAF_LINE, outer ? (int)outer->name_len : 1, outer ? outer->name : "?",
                 leaf ? (int)leaf->name_len : 1, leaf ? leaf->name : "?",
                 t->frames[t->nframes - 1].line);
        return -1;
    }
    return 0;
}

/* Spawn deep50.py under bc->interp and wait until it sleeps at its line. */
static int spawn(bench_case *bc) {
    if (py_spawn_fixture(bc->interp, FIXTURE, NULL, &bc->proc) != 0) {
        snprintf(bc->error, sizeof bc->error, "%s: %s", bc->interp->name, bc->proc.error);
        return -1;
    }
    if (py_wait_sleeping(&bc->proc, SLEEP_WAIT_MS) != 0) {
        snprintf(bc->error, sizeof bc->error, "%s: %s", bc->interp->name, bc->proc.error);
        py_kill(&bc->proc);
        return -1;
    }
    return 0;
}

/* Record one sample of a fresh fixture into bc->snap, then kill it. */
static int prepare_snapshot(bench_case *bc) {
    if (spawn(bc) != 0) return -1;
    int pid = bc->proc.pid, rc;
    au_memsrc *live = NULL, *rec = NULL;
    au_pyreader *r = NULL;
    au_pyruntime rt;
    au_pysample s;
    char why[512] = "";
    const char *step = "au_memsrc_live_open";
    if ((rc = au_memsrc_live_open(NULL, pid, &live)) != AU_OK) goto out;
    step = "au_pyruntime_find";
    if ((rc = au_pyruntime_find(NULL, pid, live, &rt)) != AU_OK) goto out;
    step = "au_recorder_open";
    if ((rc = au_recorder_open(NULL, live, &rec)) != AU_OK) goto out;
    /* The reader reads through the recorder from its creation on, so the
     * snapshot also holds what au_pyreader_new reads (3.13+ debug offsets). */
    step = "au_pyreader_new";
    if ((rc = au_pyreader_new(NULL, rec, rt.py_version_hex, rt.runtime_addr, NULL, &r)) != AU_OK)
        goto out;
    step = "au_pyreader_sample";
    if ((rc = au_pyreader_sample(r, &s)) != AU_OK) goto out;
    step = "recorded stack";
    if (check_stack(r, &s, why, sizeof why) != 0) {
        rc = AU_ERR_CORRUPT;
        goto out;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    au_snapshot_meta meta = {(uint32_t)pid, rt.py_version_hex, rt.runtime_addr,
                             (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec, 0,
                             NULL, 0, 0};
    step = "au_recorder_write";
    rc = au_recorder_write(rec, &meta, membuf_write, &bc->snap);
out:
    if (rc != AU_OK)
        snprintf(bc->error, sizeof bc->error, "%s pid %d: %s: %s%s%s", bc->interp->name, pid,
                 step, au_status_str(rc), why[0] ? ": " : "", why);
    au_pyreader_free(r);
    if (rec) au_memsrc_destroy(rec);
    if (live) au_memsrc_destroy(live);
    py_kill(&bc->proc);
    return rc == AU_OK ? 0 : -1;
}

/* Start a fixture that stays alive until exit. */
static int prepare_live(bench_case *bc) {
    if (spawn(bc) != 0) return -1;
    bc->proc_running = 1;
    au_memsrc *live = NULL;
    int rc = au_memsrc_live_open(NULL, bc->proc.pid, &live);
    if (rc == AU_OK) rc = au_pyruntime_find(NULL, bc->proc.pid, live, &bc->rt);
    if (live) au_memsrc_destroy(live);
    if (rc != AU_OK) {
        snprintf(bc->error, sizeof bc->error, "%s pid %d: %s", bc->interp->name,
                 (int)bc->proc.pid, au_status_str(rc));
        return -1;
    }
    return 0;
}

static void fixture_free(fixture *f) {
    au_pyreader_free(f->r);
    if (f->mem) au_memsrc_destroy(f->mem);
    au_snapshot_free(f->snap);
    free(f);
}

static int setup_sample(void *arg, void **out, bench_ctx *ctx) {
    bench_case *bc = arg;
    char msg[1400];
    if (bc->prepared == 0)
        bc->prepared = (bc->kind == SRC_SNAPSHOT ? prepare_snapshot(bc) : prepare_live(bc)) == 0
                           ? 1
                           : -1;
    if (bc->prepared < 0) {
        bench_error(ctx, bc->error);
        return -1;
    }
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        bench_error(ctx, "out of memory");
        return -1;
    }
    f->bc = bc;
    f->allocator = counting_allocator(&f->alloc);
    int rc;
    uint32_t version;
    uint64_t runtime;
    const char *step;
    if (bc->kind == SRC_SNAPSHOT) {
        step = "au_snapshot_parse";
        rc = au_snapshot_parse(&f->allocator, bc->snap.data, bc->snap.len, &f->snap);
        if (rc == AU_OK) {
            step = "au_memsrc_snapshot_open";
            rc = au_memsrc_snapshot_open(&f->allocator, f->snap, &f->mem);
        }
        const au_snapshot_meta *m = au_snapshot_get_meta(f->snap);
        version = m ? m->py_version_hex : 0;
        runtime = m ? m->runtime_addr : 0;
    } else {
        step = "au_memsrc_live_open";
        rc = au_memsrc_live_open(&f->allocator, bc->proc.pid, &f->mem);
        version = bc->rt.py_version_hex;
        runtime = bc->rt.runtime_addr;
    }
    if (rc == AU_OK) {
        step = "au_pyreader_new";
        rc = au_pyreader_new(&f->allocator, f->mem, version, runtime, NULL, &f->r);
    }
    if (rc == AU_OK) { /* warm-up: fills the code cache, grows the buffers */
        step = "warm-up au_pyreader_sample";
        rc = au_pyreader_sample(f->r, &f->s);
    }
    if (rc != AU_OK) {
        snprintf(msg, sizeof msg, "%s: %s", step, au_status_str(rc));
        fixture_free(f);
        bench_error(ctx, msg);
        return -1;
    }
    char why[512];
    if (check_stack(f->r, &f->s, why, sizeof why) != 0) {
        snprintf(msg, sizeof msg, "warm-up sample: %s", why);
        fixture_free(f);
        bench_error(ctx, msg);
        return -1;
    }
    f->heap_before = f->alloc.allocations;
    *out = f;
    return 0;
}

static int run_sample(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    int rc = au_pyreader_sample(f->r, &f->s);
    if (rc != AU_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "au_pyreader_sample: %s", au_status_str(rc));
        bench_error(ctx, msg);
        return 1;
    }
    au_pyreader_stats st;
    au_pyreader_get_stats(f->r, &st);
    f->syscalls += st.mem.syscalls;
    f->requests += st.mem.requests;
    f->pages += st.mem.pages;
    f->bytes += st.mem.bytes;
    f->failures += st.mem.failures;
    f->batches += st.batches;
    f->allocations += st.allocations;
    f->code_hits += st.code_hits;
    f->code_misses += st.code_misses;
    if (f->s.nthreads) {
        f->frames += f->s.threads[0].nframes;
        f->partial += (f->s.threads[0].flags & AU_THREAD_PARTIAL) != 0;
    }
    g_sink = f->s.nthreads;
    return 0;
}

static void teardown_sample(void *fx, bench_ctx *ctx) {
    fixture *f = fx;
    int64_t it = bench_iterations(ctx);
    double n = it > 0 ? (double)it : 1.0;
    uint64_t heap = f->alloc.allocations - f->heap_before;
    /* ns per 1/1000 iteration == us per iteration, on the time column's
     * clock (the thread's CPU time here). */
    bench_counter_ns_per_item(ctx, "us_per_sample", 1000.0);
    bench_counter(ctx, "syscalls", (double)f->syscalls / n, 0);
    bench_counter(ctx, "reads", (double)f->requests / n, 0);
    bench_counter(ctx, "pages", (double)f->pages / n, 0);
    bench_counter(ctx, "bytes", (double)f->bytes / n, 0);
    bench_counter(ctx, "batches", (double)f->batches / n, 0);
    bench_counter(ctx, "allocs", (double)f->allocations / n, 0);
    bench_counter(ctx, "heap_allocs", (double)heap / n, 0);
    bench_counter(ctx, "code_hits", (double)f->code_hits / n, 0);
    bench_counter(ctx, "code_misses", (double)f->code_misses / n, 0);
    bench_counter(ctx, "frames", (double)f->frames / n, 0);
    bench_label(ctx, f->bc->kind == SRC_SNAPSHOT ? "snapshot in memory" : "live, asleep");

    if (f->bc->strict && it > 0) {
        char msg[256];
        msg[0] = '\0';
        if (f->allocations || heap)
            snprintf(msg, sizeof msg, "warm samples allocated: stats %llu, allocator %llu",
                     (unsigned long long)f->allocations, (unsigned long long)heap);
        else if (f->code_misses)
            snprintf(msg, sizeof msg, "warm samples missed the code cache %llu times",
                     (unsigned long long)f->code_misses);
        else if (f->partial || f->failures || f->frames != (uint64_t)it * EXPECT_FRAMES)
            snprintf(msg, sizeof msg,
                     "warm samples: %llu partial, %llu failed reads, %llu frames in %lld "
                     "samples",
                     (unsigned long long)f->partial, (unsigned long long)f->failures,
                     (unsigned long long)f->frames, (long long)it);
        if (msg[0]) bench_error(ctx, msg);
    }
    fixture_free(f);
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
    static bench_case cases[2 * MAX_INTERPS];
    int strict = bench_take_flag(&argc, argv, "--au_strict");
    const char *only = bench_take_value(&argc, argv, "--au_python");
    size_t ninterp, nc = 0;
    const py_interp *all = py_interpreters(&ninterp);
    if (ninterp > MAX_INTERPS) ninterp = MAX_INTERPS;
    int missing_fatal = 0;
    if (py_check_list("sample_bench", only) != 0) return 1;

    for (int kind = SRC_SNAPSHOT; kind <= SRC_LIVE; kind++) {
        for (size_t i = 0; i < ninterp; i++) {
            const py_interp *p = &all[i];
            if (!py_listed(only, p->name)) continue;
            if (kind == SRC_SNAPSHOT) { /* report each missing one once */
                py_status st = py_require_status(p);
                if (st == PY_FAIL) missing_fatal = 1;
            }
            if (!p->available) continue;
            bench_case *bc = &cases[nc++];
            bc->interp = p;
            bc->kind = (src_kind)kind;
            bc->strict = strict;
            bc->proc.pid = -1;
            bc->proc.out_fd = -1;
            char name[96];
            snprintf(name, sizeof name, "sample/%s/%s",
                     kind == SRC_SNAPSHOT ? "snapshot" : "live", p->name);
            if (bench_register(&(bench_spec){.name = name, .arg = bc, .setup = setup_sample,
                                             .run = run_sample, .teardown = teardown_sample,
                                             .unit = BENCH_UNIT_US}))
                return 1;
        }
    }
    int rc = 0;
    if (nc == 0) {
        fprintf(stderr, "sample_bench: no interpreter available: nothing to run%s\n",
                missing_fatal ? " (and CI=true)" : "");
    } else {
        rc = bench_main(argc, argv);
    }
    for (size_t i = 0; i < nc; i++) {
        if (cases[i].proc_running) py_kill(&cases[i].proc);
        membuf_free(&cases[i].snap);
    }
    if (missing_fatal) {
        fprintf(stderr, "sample_bench: interpreters are missing and CI=true\n");
        return rc ? rc : 3;
    }
    return rc;
}
