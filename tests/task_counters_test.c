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
 * Counters only, never timings (bench/task_bench.c times the same sample).
 * A missing interpreter is a skip with its reason, or a failure with
 * CI=true (tests/pythons.h).
 */
#define _GNU_SOURCE
#include <setjmp.h>
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
    py_kill(&proc);
}

int main(void) {
    size_t n;
    const py_interp *interps = py_interpreters(&n);
    test_case *cases = calloc(2 * n + 1, sizeof *cases);
    struct CMUnitTest *tests = calloc(2 * n + 1, sizeof *tests);
    if (cases == NULL || tests == NULL) return 2;
    for (size_t i = 0; i < 2 * n; i++) {
        test_case *c = &cases[i];
        c->interp = &interps[i / 2];
        c->agent = (int)(i % 2);
        snprintf(c->name, sizeof c->name, "warm_sample_bounds/%s%s", c->interp->name,
                 c->agent ? "/agent" : "");
        tests[i] = (struct CMUnitTest){c->name, test_warm_sample_bounds, NULL, NULL, c};
    }
    int failed = _cmocka_run_group_tests("task_counters", tests, 2 * n, NULL, NULL);
    free(tests);
    free(cases);
    return failed;
}
