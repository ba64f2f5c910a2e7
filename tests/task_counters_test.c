/*
 * The cost bounds of a warm task-aware sample, as deterministic counters:
 * python_fixtures/many_tasks.py with 1,000 idle tasks (coroutine chains of
 * at most 8 frames), sampled live from outside on every interpreter of
 * tests/pythons.h.  After one warm-up sample, a warm sample must
 *
 *   - make at most 32 read system calls,
 *   - fetch at most 1.2 pages for every page a read used (the view's
 *     prefetch of the previous sample's pages must not overshoot),
 *   - allocate nothing: neither through the au_allocator the sampler was
 *     given (the public allocator hook, counted here) nor by its own count,
 *   - find all 1,001 tasks (the idle ones and the main task), none partial.
 *
 * Each interpreter runs it twice: without the agent, and with it (agent/,
 * first on PYTHONPATH), where the warm sample also reads the agent's
 * header, records list and 2,000 weakrefs, and must give each of the 1,000
 * tasks its creator, the main task, within the same bounds.
 *
 * The frame-only warm path has its own bound: python_fixtures/cpu_bound.py,
 * a 40-frame recursion spinning on CPU, read with au_pyreader_sample alone.
 * Once its stack stays put, a warm sample is the one batch that fetches
 * what the previous sample read: exactly one read system call, no
 * allocation, the whole 40-frame stack.
 *
 * A process without asyncio costs the frame-only path too, except for one
 * sample in 64 where the asyncio model looks for it
 * (python_fixtures/late_asyncio.py); once the program imports asyncio, a
 * sample within 64 finds its task.
 *
 * The same process read under lower limits (au_sampler_options) shows
 * what a limit does: with max_tasks 100 a sample holds the first 100
 * tasks, with max_pages 64 or 256 at most that many pages (no task at
 * 64); either way the
 * sample says it was cut (AU_SAMPLE_TRUNCATED, not PARTIAL: no retry
 * changes it), and a sample within the limits never says so.
 *
 * Counters only, never timings (bench/task_bench.c times the same sample,
 * bench/austin_stats.c the frame-only one).
 * A missing interpreter is a skip with its reason, or a failure with
 * CI=true (tests/pythons.h).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "pythons.h"

#define FIXTURE "python_fixtures/many_tasks.py"
#define NTASKS 1000u
#define SETTLE_MS 20000
#define MAX_DEPTH 8u         /* coroutine frames per task the bounds assume */
#define MAX_SYSCALLS 32u
#define MAX_FETCH_RATIO 1.2  /* pages fetched per page used */
#define WARM_SAMPLES 3       /* each checked on its own */

/* The public allocator hook, counting every allocation and resize. */
static void *counting_realloc(void *ud, void *ptr, size_t old, size_t size) {
    (void)old;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    (*(uint64_t *)ud)++;
    return realloc(ptr, size);
}

typedef struct test_case {
    const py_interp *interp;
    int agent; /* started with the agent, whose weak links must show */
    char name[80];
} test_case;

/* Samples of pid under max_tasks, then max_pages, lower than it needs. */
static void check_limits(const test_case *tc, pid_t pid) {
    static const struct {
        uint32_t max_tasks, max_pages;
    } lims[] = {{100, 0}, {0, 64}, {0, 256}};
    for (size_t k = 0; k < sizeof lims / sizeof *lims; k++) {
        au_sampler_options opt;
        memset(&opt, 0, sizeof opt);
        opt.max_tasks = lims[k].max_tasks;
        opt.max_pages = lims[k].max_pages;
        au_sampler *s = NULL;
        assert_int_equal(au_sampler_open_pid(NULL, pid, &opt, &s), AU_OK);
        const au_sample *smp;
        for (int i = 0; i < 2; i++) { /* cold, then warm */
            assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
            print_message("%s max_tasks %u max_pages %u: %u tasks, %u frames, flags 0x%x\n",
                          tc->name, opt.max_tasks, opt.max_pages, smp->ntasks, smp->nframes,
                          smp->flags);
            assert_true(smp->flags & AU_SAMPLE_TRUNCATED);
            assert_false(smp->flags & AU_SAMPLE_PARTIAL);
            au_sampler_stats st;
            au_sampler_get_stats(s, &st);
            if (opt.max_tasks) assert_int_equal(smp->ntasks, opt.max_tasks);
            if (opt.max_pages) assert_true(st.pages <= opt.max_pages);
            /* 64 pages do not hold one task: the search for the task sets
             * is cut, and tried again (not remembered as "no asyncio"). */
            if (opt.max_pages == 64) assert_int_equal(smp->ntasks, 0);
            /* 256 pages hold the tasks, not everything of theirs: frames
             * or names are left out on some versions, other objects (the
             * thread names' search) on others. */
        }
        au_sampler_free(s);
    }
}

static void test_warm_sample_bounds(void **state) {
    const test_case *tc = *state;
    PY_REQUIRE(tc->interp);
    char count[16];
    snprintf(count, sizeof count, "%u", NTASKS);
    const char *args[] = {count, NULL};
    py_proc proc;
    py_spawn_opts opts = {0};
    opts.agent_dir = tc->agent ? "agent" : NULL;
    if (py_spawn_fixture_opts(tc->interp, FIXTURE, args, &opts, &proc) != 0)
        fail_msg("%s", proc.error);
    if (py_wait_sleeping(&proc, SETTLE_MS) != 0) {
        py_kill(&proc);
        fail_msg("%s", proc.error);
    }
    uint64_t allocs = 0;
    au_allocator a = {counting_realloc, &allocs};
    au_sampler *s = NULL;
    int rc = au_sampler_open_pid(&a, proc.pid, NULL, &s);
    if (rc != AU_OK) {
        py_kill(&proc);
        fail_msg("au_sampler_open_pid(%d): %s", (int)proc.pid, au_status_str(rc));
    }
    const au_sample *smp;
    assert_int_equal(au_sampler_sample(s, &smp), AU_OK); /* the warm-up */
    for (int k = 0; k < WARM_SAMPLES; k++) {
        uint64_t before = allocs;
        assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
        uint64_t heap = allocs - before;
        au_sampler_stats st;
        au_sampler_get_stats(s, &st);
        uint32_t depth = 0, created = st.creators;
        for (uint32_t i = 0; i < smp->ntasks; i++)
            if (smp->tasks[i].nframes > depth) depth = smp->tasks[i].nframes;
        print_message("%s warm sample %d: %u tasks (depth %u, %u with a creator), %llu "
                      "syscalls, %llu pages touched, %u fetched for %u used, %llu bytes; "
                      "allocations: %llu (hook), %llu (stats)\n",
                      tc->name, k + 1, smp->ntasks, depth, created,
                      (unsigned long long)st.mem.syscalls, (unsigned long long)st.mem.pages,
                      st.pages, st.pages_used, (unsigned long long)st.mem.bytes,
                      (unsigned long long)heap, (unsigned long long)st.allocations);
        /* What the bounds assume of the target. */
        assert_true(smp->flags & AU_SAMPLE_ASYNCIO);
        assert_false(smp->flags & AU_SAMPLE_PARTIAL);
        assert_false(smp->flags & AU_SAMPLE_TRUNCATED);
        assert_int_equal(smp->ntasks, NTASKS + 1);
        assert_true(depth >= 1 && depth <= MAX_DEPTH);
        assert_int_equal(created, tc->agent ? NTASKS : 0);
        /* The bounds. */
        assert_true(st.mem.syscalls <= MAX_SYSCALLS);
        assert_true(st.pages_used > 0);
        assert_true((double)st.pages <= MAX_FETCH_RATIO * (double)st.pages_used);
        assert_int_equal(heap, 0);
        assert_int_equal(st.allocations, 0);
    }
    au_sampler_free(s);
    if (!tc->agent) check_limits(tc, proc.pid);
    py_kill(&proc);
}

#define CPU_FIXTURE "python_fixtures/cpu_bound.py"
#define CPU_FRAMES 40u     /* <module>, main, 37 x recurse, spin */
#define CPU_SETTLE_TRIES 2000 /* samples to wait for the stack to settle */

/* The frames of a sample's first thread, innermost last; 0 if none. */
static uint32_t first_thread_frames(const au_pysample *s) {
    return s->nthreads ? s->threads[0].nframes : 0;
}

static void test_warm_frames_one_batch(void **state) {
    const test_case *tc = *state;
    PY_REQUIRE(tc->interp);
    char depth[16];
    snprintf(depth, sizeof depth, "%u", CPU_FRAMES - 3);
    const char *args[] = {depth, NULL};
    py_proc proc;
    if (py_spawn_fixture(tc->interp, CPU_FIXTURE, args, &proc) != 0) fail_msg("%s", proc.error);
    uint64_t allocs = 0;
    au_allocator a = {counting_realloc, &allocs};
    au_memsrc *mem = NULL;
    au_pyreader *r = NULL;
    au_pyruntime rt;
    int rc = au_memsrc_live_open(&a, proc.pid, &mem);
    if (rc == AU_OK) rc = au_pyruntime_find(&a, proc.pid, mem, &rt);
    if (rc == AU_OK) rc = au_pyreader_new(&a, mem, rt.py_version_hex, rt.runtime_addr, NULL, &r);
    if (rc != AU_OK) {
        if (mem) au_memsrc_destroy(mem);
        py_kill(&proc);
        fail_msg("attaching to %d: %s", (int)proc.pid, au_status_str(rc));
    }
    /* READY is printed from announce(), called by spin(): wait until the
     * stack is the spinning one in two samples in a row (one sample read
     * while announce() returns could be torn), then take one sample more
     * to record it. */
    au_pysample smp;
    int tries = 0, settled = 0;
    do {
        assert_int_equal(au_pyreader_sample(r, &smp), AU_OK);
        settled = first_thread_frames(&smp) == CPU_FRAMES ? settled + 1 : 0;
    } while (settled < 2 && ++tries < CPU_SETTLE_TRIES);
    assert_int_equal(first_thread_frames(&smp), CPU_FRAMES);
    assert_int_equal(au_pyreader_sample(r, &smp), AU_OK);
    for (int k = 0; k < WARM_SAMPLES; k++) {
        uint64_t before = allocs;
        assert_int_equal(au_pyreader_sample(r, &smp), AU_OK);
        au_pyreader_stats st;
        au_pyreader_get_stats(r, &st);
        print_message("%s warm frame-only sample %d: %u frames, %llu syscalls, %llu pages, "
                      "%llu bytes, %llu reads, %u batches, %u code hits; allocations: %llu "
                      "(hook), %llu (stats)\n",
                      tc->name, k + 1, first_thread_frames(&smp),
                      (unsigned long long)st.mem.syscalls, (unsigned long long)st.mem.pages,
                      (unsigned long long)st.mem.bytes, (unsigned long long)st.mem.requests,
                      st.batches, st.code_hits, (unsigned long long)(allocs - before),
                      (unsigned long long)st.allocations);
        assert_int_equal(smp.nthreads, 1);
        assert_int_equal(smp.threads[0].nframes, CPU_FRAMES);
        assert_int_equal(smp.threads[0].flags, 0);
        const au_pycode *spin = au_pyreader_code(r, smp.threads[0].frames[CPU_FRAMES - 1].code);
        assert_non_null(spin);
        assert_int_equal(spin->name_len, 4);
        assert_memory_equal(spin->name, "spin", 4);
        /* The bound: everything in the one prefetch batch. */
        assert_int_equal(st.mem.syscalls, 1);
        assert_int_equal(st.batches, 1);
        assert_int_equal(st.code_misses, 0);
        assert_int_equal(allocs - before, 0);
        assert_int_equal(st.allocations, 0);
    }
    au_pyreader_free(r);
    au_memsrc_destroy(mem);
    py_kill(&proc);
}

/* ---- a process without asyncio, until it imports it ------------------- */

#define LATE_FIXTURE "python_fixtures/late_asyncio.py"
#define IDLE_EVERY 64 /* core/sample/sampler.c */
#define ASYNC_TIMEOUT_MS 30000

/* Waits up to timeout_ms for the line `want` on the fixture's stdout. */
static int wait_line(py_proc *proc, const char *want, int timeout_ms) {
    char line[256];
    size_t len = 0;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        struct pollfd pfd = {proc->out_fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        char c;
        while (read(proc->out_fd, &c, 1) == 1) {
            if (c == '\n') {
                line[len] = 0;
                if (strcmp(line, want) == 0) return 0;
                len = 0;
            } else if (len + 1 < sizeof line) {
                line[len++] = c;
            }
            if (poll(&pfd, 1, 0) <= 0) break;
        }
    }
    return -1;
}

/* Without asyncio the model looks once in IDLE_EVERY samples; the samples
 * between cost the frame-only path's one system call.  Once the program
 * imports asyncio and creates a task, a sample within IDLE_EVERY finds it. */
static void test_idle_then_asyncio(void **state) {
    const test_case *tc = *state;
    PY_REQUIRE(tc->interp);
    py_proc proc;
    if (py_spawn_fixture(tc->interp, LATE_FIXTURE, NULL, &proc) != 0) fail_msg("%s", proc.error);
    if (py_wait_sleeping(&proc, SETTLE_MS) != 0) {
        py_kill(&proc);
        fail_msg("%s", proc.error);
    }
    au_sampler *s = NULL;
    int rc = au_sampler_open_pid(NULL, proc.pid, NULL, &s);
    if (rc != AU_OK) {
        py_kill(&proc);
        fail_msg("au_sampler_open_pid(%d): %s", (int)proc.pid, au_status_str(rc));
    }
    const au_sample *smp;
    au_sampler_stats st;
    for (int k = 0; k < 2; k++) assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
    uint32_t looks = 0, idle = 0;
    for (int k = 0; k < 2 * IDLE_EVERY; k++) {
        assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
        au_sampler_get_stats(s, &st);
        assert_int_equal(smp->ntasks, 0);
        if (st.pages) {
            looks++;
            continue;
        }
        idle++;
        assert_int_equal(st.mem.syscalls, 1);
    }
    print_message("%s: %u looks and %u idle samples of %d\n", tc->name, looks, idle,
                  2 * IDLE_EVERY);
    assert_int_equal(looks, 2);

    kill(proc.pid, SIGUSR1);
    if (wait_line(&proc, "ASYNC", ASYNC_TIMEOUT_MS) != 0) {
        py_kill(&proc);
        fail_msg("%s: the fixture did not print ASYNC after SIGUSR1", tc->name);
    }
    int found = -1;
    for (int k = 0; k <= IDLE_EVERY && found < 0; k++) {
        assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
        for (uint32_t i = 0; i < smp->ntasks; i++)
            if (smp->tasks[i].name_len == 4 && memcmp(smp->tasks[i].name, "late", 4) == 0)
                found = k;
    }
    print_message("%s: task 'late' found %d samples after ASYNC\n", tc->name, found);
    assert_true(found >= 0);
    assert_true(smp->flags & AU_SAMPLE_ASYNCIO);
    au_sampler_free(s);
    py_kill(&proc);
}

int main(void) {
    size_t n;
    const py_interp *interps = py_interpreters(&n);
    test_case *cases = calloc(4 * n + 1, sizeof *cases);
    struct CMUnitTest *tests = calloc(4 * n + 1, sizeof *tests);
    if (cases == NULL || tests == NULL) return 2;
    for (size_t i = 0; i < 2 * n; i++) {
        test_case *c = &cases[i];
        c->interp = &interps[i / 2];
        c->agent = (int)(i % 2);
        snprintf(c->name, sizeof c->name, "warm_sample_bounds/%s%s", c->interp->name,
                 c->agent ? "/agent" : "");
        tests[i] = (struct CMUnitTest){c->name, test_warm_sample_bounds, NULL, NULL, c};
    }
    for (size_t i = 0; i < n; i++) {
        test_case *c = &cases[2 * n + i];
        c->interp = &interps[i];
        snprintf(c->name, sizeof c->name, "warm_frames_one_batch/%s", c->interp->name);
        tests[2 * n + i] = (struct CMUnitTest){c->name, test_warm_frames_one_batch, NULL, NULL, c};
    }
    for (size_t i = 0; i < n; i++) {
        test_case *c = &cases[3 * n + i];
        c->interp = &interps[i];
        snprintf(c->name, sizeof c->name, "idle_then_asyncio/%s", c->interp->name);
        tests[3 * n + i] = (struct CMUnitTest){c->name, test_idle_then_asyncio, NULL, NULL, c};
    }
    int failed = _cmocka_run_group_tests("task_counters", tests, 4 * n, NULL, NULL);
    free(tests);
    free(cases);
    return failed;
}
