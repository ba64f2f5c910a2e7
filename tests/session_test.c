/* The recording loop and the CPU state, through the public API, on real
 * CPython processes:
 *   - AU_SAMPLER_CPU_STATE on every interpreter: each thread of threads.py
 *     gets its own TID (3.9 and 3.10 through the pthread -> TID map), the
 *     main thread the process id; sleeping threads are never on CPU, and
 *     cpu_bound.py's spinning thread is;
 *   - au_session: the deadlines (never more ticks than deadlines; at an
 *     interval shorter than a sample every tick is long), the stop
 *     callback, the target killed mid-record (an end, not an error), and
 *     the statistics against the profile's;
 *   - /proc: a thread's state past a name full of parentheses, the task
 *     list, children appearing and disappearing;
 *   - the time histogram's median, within its 1/32 precision. */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "au_proctask.h"
#include "pythons.h"
#include "au_timehist.h"

static void spawn(const py_interp *p, const char *fixture, int sleeping, py_proc *proc) {
    if (py_spawn_fixture(p, fixture, NULL, proc)) fail_msg("%s: %s", p->name, proc->error);
    if (sleeping && py_wait_sleeping(proc, 10000)) {
        py_kill(proc);
        fail_msg("%s %s: %s", p->name, fixture, proc->error);
    }
}

static int is_task_of(int pid, uint64_t tid) {
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/task/%llu", pid, (unsigned long long)tid);
    return stat(path, &st) == 0;
}

/* ---- CPU state ----------------------------------------------------------- */

static void check_cpu_state(const py_interp *p) {
    au_sampler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.flags = AU_SAMPLER_CPU_STATE | AU_SAMPLER_NO_TASKS;

    /* threads.py: four threads, all asleep. */
    py_proc proc;
    spawn(p, "python_fixtures/threads.py", 1, &proc);
    au_sampler *s;
    assert_int_equal(au_sampler_open_pid(NULL, proc.pid, &opt, &s), AU_OK);
    const au_sample *smp;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
        assert_int_equal(smp->nthreads, 4);
        int main_seen = 0;
        for (uint32_t i = 0; i < smp->nthreads; i++) {
            const au_sample_thread *t = &smp->threads[i];
            if (!t->native_id) fail_msg("%s: thread %u has no TID", p->name, i);
            if (!is_task_of(proc.pid, t->native_id))
                fail_msg("%s: TID %llu is no thread of %d", p->name, (unsigned long long)t->native_id,
                         proc.pid);
            for (uint32_t j = 0; j < i; j++) assert_int_not_equal(t->native_id, smp->threads[j].native_id);
            main_seen += t->native_id == (uint64_t)proc.pid;
            if (t->flags & AU_THREAD_ON_CPU) fail_msg("%s: a sleeping thread is on CPU", p->name);
        }
        assert_int_equal(main_seen, 1);
    }
    /* Without the flag, no thread is flagged on CPU, and the TIDs are the
     * same: on 3.9/3.10 the first sample maps the pthreads, the second
     * reads the TIDs with its frames, and from the third on they come in
     * the warm batch with the rest (one syscall, as on 3.11+). */
    uint64_t tids[4];
    for (uint32_t i = 0; i < 4; i++) tids[i] = smp->threads[i].native_id;
    au_sampler *plain;
    opt.flags = AU_SAMPLER_NO_TASKS;
    assert_int_equal(au_sampler_open_pid(NULL, proc.pid, &opt, &plain), AU_OK);
    for (int round = 0; round < 4; round++) {
        assert_int_equal(au_sampler_sample(plain, &smp), AU_OK);
        assert_int_equal(smp->nthreads, 4);
        for (uint32_t i = 0; i < smp->nthreads; i++) {
            assert_false(smp->threads[i].flags & AU_THREAD_ON_CPU);
            assert_int_equal(smp->threads[i].native_id, tids[i]);
        }
        au_sampler_stats st;
        au_sampler_get_stats(plain, &st);
        if (round >= 2) assert_int_equal(st.mem.syscalls, 1);
    }
    au_sampler_free(plain);
    au_sampler_free(s);
    py_kill(&proc);

    /* cpu_bound.py: one thread, spinning: on CPU (running or runnable) in
     * most samples; a few may catch it preempted on a busy machine. */
    spawn(p, "python_fixtures/cpu_bound.py", 0, &proc);
    opt.flags = AU_SAMPLER_CPU_STATE | AU_SAMPLER_NO_TASKS;
    assert_int_equal(au_sampler_open_pid(NULL, proc.pid, &opt, &s), AU_OK);
    int on = 0;
    for (int round = 0; round < 20; round++) {
        assert_int_equal(au_sampler_sample(s, &smp), AU_OK);
        assert_int_equal(smp->nthreads, 1);
        assert_int_equal(smp->threads[0].native_id, proc.pid);
        on += (smp->threads[0].flags & AU_THREAD_ON_CPU) != 0;
    }
    if (on < 10) fail_msg("%s: the spinning thread was on CPU in %d samples of 20", p->name, on);
    au_sampler_free(s);
    py_kill(&proc);
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* spawner.py: threads start and end all the time, and TIDs are reused.
 * Every sample succeeds or fails cleanly, every TID given is (or just
 * was) the process's, and the descriptors the CPU state keeps open are
 * bounded and closed with the sampler. */
static void check_cpu_churn(const py_interp *p) {
    py_proc proc;
    spawn(p, "python_fixtures/spawner.py", 0, &proc);
    int fds_before = count_fds();
    au_sampler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.flags = AU_SAMPLER_CPU_STATE | AU_SAMPLER_NO_TASKS;
    au_sampler *s;
    assert_int_equal(au_sampler_open_pid(NULL, proc.pid, &opt, &s), AU_OK);
    int good = 0, max_fds = 0;
    for (int i = 0; i < 300; i++) {
        const au_sample *smp;
        if (au_sampler_sample(s, &smp) != AU_OK) continue;
        good++;
        for (uint32_t t = 0; t < smp->nthreads; t++) {
            /* Two thread states may share a pthread on 3.9/3.10: a new
             * thread's state carries its creator's pthread id until the
             * thread starts, and glibc reuses an ended thread's
             * descriptor for the next.  Different pthreads never share a
             * TID. */
            for (uint32_t u = 0; u < t && smp->threads[t].native_id; u++)
                if (smp->threads[t].thread_id != smp->threads[u].thread_id)
                    assert_int_not_equal(smp->threads[t].native_id, smp->threads[u].native_id);
        }
        int fds = count_fds() - fds_before;
        if (fds > max_fds) max_fds = fds;
    }
    au_sampler_free(s);
    assert_true(good >= 250);
    /* The live source's descriptors, and at most AU_STAT_FDS (8) kept. */
    assert_true(max_fds <= 8 + 4);
    assert_int_equal(count_fds(), fds_before);
    py_kill(&proc);
}

static void test_cpu_churn(void **state) {
    (void)state;
    const char *names[] = {"pyenv-3.9", "pyenv-3.12"};
    for (size_t i = 0; i < 2; i++) {
        const py_interp *p = py_interpreter(names[i]);
        assert_non_null(p);
        PY_REQUIRE(p);
        check_cpu_churn(p);
    }
}

#define CPU_TEST(fn, name)                        \
    static void fn(void **state) {                \
        (void)state;                              \
        const py_interp *p = py_interpreter(name); \
        assert_non_null(p);                       \
        PY_REQUIRE(p);                            \
        check_cpu_state(p);                       \
    }
CPU_TEST(test_cpu_pyenv_3_9, "pyenv-3.9")
CPU_TEST(test_cpu_pyenv_3_10, "pyenv-3.10")
CPU_TEST(test_cpu_pyenv_3_11, "pyenv-3.11")
CPU_TEST(test_cpu_pyenv_3_12, "pyenv-3.12")
CPU_TEST(test_cpu_pyenv_3_13, "pyenv-3.13")
CPU_TEST(test_cpu_debian_3_11_static, "debian-3.11-static")
CPU_TEST(test_cpu_sid_3_13, "sid-3.13")
CPU_TEST(test_cpu_sid_3_14, "sid-3.14")
CPU_TEST(test_cpu_sid_3_15, "sid-3.15")

/* ---- the session ----------------------------------------------------------- */

typedef struct stopper {
    int calls, stop_at, kill_at;
    py_proc *proc;
    int progress_calls;
} stopper;

static int stop_cb(void *ud) {
    stopper *st = ud;
    st->calls++;
    if (st->kill_at && st->calls == st->kill_at) py_kill(st->proc);
    return st->stop_at && st->calls >= st->stop_at;
}

static void progress_cb(void *ud, const au_session_stats *st) {
    stopper *sp = ud;
    sp->progress_calls++;
    assert_int_equal(st->end, 0);
}

static au_session *new_session(au_profile **prof, uint64_t interval, uint64_t duration,
                               stopper *sp) {
    assert_int_equal(au_profile_new(NULL, NULL, prof), AU_OK);
    au_session_options o;
    memset(&o, 0, sizeof o);
    o.interval_ns = interval;
    o.duration_ns = duration;
    o.stop = stop_cb;
    o.progress = progress_cb;
    o.progress_ns = 50000000;
    o.ud = sp;
    au_session *s;
    assert_int_equal(au_session_new(NULL, &o, *prof, &s), AU_OK);
    return s;
}

static void check_consistent(const au_session_stats *st, const au_profile *prof) {
    au_profile_stats ps;
    au_profile_get_stats(prof, &ps);
    assert_int_equal(ps.samples, st->samples - st->errors);
    /* The median (its bucket's lower bound, within 1/32 below the true
     * one) is kept between the exact min and max. */
    assert_true(st->time_min_ns <= st->time_median_ns);
    assert_true(st->time_median_ns <= st->time_max_ns);
    assert_true(st->time_total_ns >= st->time_min_ns * st->samples);
    assert_true(st->long_ticks <= st->ticks);
}

static void test_session(void **state) {
    (void)state;
    const py_interp *p = py_interpreter("pyenv-3.12");
    assert_non_null(p);
    PY_REQUIRE(p);
    py_proc proc;
    spawn(p, "python_fixtures/seed.py", 1, &proc);

    /* A duration, at 20 ms: never more ticks than deadlines (late ticks
     * skip to the next deadline, they do not catch up). */
    stopper sp = {0};
    au_profile *prof;
    au_session *s = new_session(&prof, 20000000, 300000000, &sp);
    assert_int_equal(au_session_add_pid(s, proc.pid, 0), AU_OK);
    assert_int_equal(au_session_run(s), AU_OK);
    au_session_stats st;
    au_session_get_stats(s, &st);
    assert_int_equal(st.end, AU_SESSION_END_DURATION);
    assert_true(st.elapsed_ns >= 300000000);
    assert_true(st.ticks >= 1 && st.ticks <= 300 / 20 + 1);
    assert_int_equal(st.samples, st.ticks);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.processes, 1);
    assert_int_equal(st.processes_seen, 1);
    /* The seed program's three tasks, every sample. */
    assert_int_equal(st.tasks_min, 3);
    assert_int_equal(st.tasks_max, 3);
    assert_int_equal(st.tasks_total, 3 * st.samples);
    assert_true(sp.progress_calls >= 1);
    check_consistent(&st, prof);
    au_session_free(s);
    au_profile_free(prof);

    /* The stop callback, polled once per tick: stopping at its 6th call
     * leaves exactly 5 ticks.  At 1 ns every tick ends past its next
     * deadline: all are long, and none waited. */
    memset(&sp, 0, sizeof sp);
    sp.stop_at = 6;
    s = new_session(&prof, 1, 0, &sp);
    assert_int_equal(au_session_add_pid(s, proc.pid, 0), AU_OK);
    assert_int_equal(au_session_run(s), AU_OK);
    au_session_get_stats(s, &st);
    assert_int_equal(st.end, AU_SESSION_END_STOPPED);
    assert_int_equal(st.ticks, 5);
    assert_int_equal(st.long_ticks, 5);
    assert_int_equal(st.samples, 5);
    check_consistent(&st, prof);
    au_session_free(s);
    au_profile_free(prof);

    /* The target killed (and reaped) before the 20th tick: the record
     * ends, what it counted stays, and the exit is no error.  (At 1 ns no
     * tick sleeps, so the callback is polled once per tick.) */
    memset(&sp, 0, sizeof sp);
    sp.kill_at = 20;
    sp.proc = &proc;
    s = new_session(&prof, 1, 10000000000ull, &sp);
    assert_int_equal(au_session_add_pid(s, proc.pid, 0), AU_OK);
    assert_int_equal(au_session_run(s), AU_OK);
    au_session_get_stats(s, &st);
    assert_int_equal(st.end, AU_SESSION_END_GONE);
    assert_int_equal(st.samples, 19);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.processes, 0);
    check_consistent(&st, prof);
    au_profile_stats ps;
    au_profile_get_stats(prof, &ps);
    assert_int_equal(ps.samples, 19);
    assert_true(ps.stacks >= 2);
    au_session_free(s);
    au_profile_free(prof);

    /* Errors of adding a process. */
    memset(&sp, 0, sizeof sp);
    s = new_session(&prof, 0, 0, &sp);
    assert_int_equal(au_session_add_pid(s, 0x7fffffff, 0), AU_ERR_NOPROC);
    assert_int_equal(au_session_add_pid(s, 0x7fffffff, AU_SESSION_WAIT), AU_ERR_NOPROC);
    assert_int_equal(au_session_add_pid(s, getpid(), 0), AU_ERR_NOTPYTHON);
    /* Nothing to sample: the run ends at once. */
    assert_int_equal(au_session_run(s), AU_OK);
    au_session_get_stats(s, &st);
    assert_int_equal(st.end, AU_SESSION_END_GONE);
    assert_int_equal(st.samples, 0);
    au_session_free(s);
    au_profile_free(prof);
}

/* ---- /proc: threads, states, children -------------------------------------- */

static void test_proctask(void **state) {
    (void)state;
    int pid = getpid();
    uint64_t self = (uint64_t)syscall(SYS_gettid);
    /* A thread name with the characters that could fool a parser: the
     * state is after the last ')'. */
    char old[16] = {0};
    prctl(PR_GET_NAME, old, 0, 0, 0);
    prctl(PR_SET_NAME, "a) S (b) Z", 0, 0, 0);
    char st = 0;
    uint64_t stack = 0;
    assert_int_equal(au_proc_stat(pid, self, &st, &stack), AU_OK);
    assert_int_equal(st, 'R'); /* this thread, reading its own state */
    assert_true(stack != 0);
    prctl(PR_SET_NAME, old, 0, 0, 0);
    assert_int_equal(au_proc_thread_state(pid, 0x7ffffffe, &st), AU_ERR_NOPROC);
    assert_int_equal(au_proc_thread_state(0x7fffffff, 1, &st), AU_ERR_NOPROC);

    uint64_t tids[64];
    uint32_t n = 0, found = 0;
    assert_int_equal(au_proc_tasks(pid, tids, 64, &n), AU_OK);
    for (uint32_t i = 0; i < n; i++) found += tids[i] == self;
    assert_int_equal(found, 1);
    assert_int_equal(au_proc_tasks(pid, tids, 0, &n), AU_ERR_LIMIT);

    /* A child, sleeping, in the children list; none once reaped. */
    pid_t kid = fork();
    if (kid == 0) {
        pause();
        _exit(0);
    }
    int kids[16];
    n = 0;
    int rc = au_proc_children(pid, kids, 16, &n);
    found = 0;
    for (uint32_t i = 0; i < n; i++) found += kids[i] == kid;
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    if (rc == AU_ERR_UNSUPPORTED) skip(); /* a kernel without children files */
    assert_int_equal(rc, AU_OK);
    assert_int_equal(found, 1);
    n = 0;
    assert_int_equal(au_proc_children(pid, kids, 16, &n), AU_OK);
    for (uint32_t i = 0; i < n; i++) assert_int_not_equal(kids[i], kid);
}

/* ---- the time histogram ------------------------------------------------------ */

static void test_timehist(void **state) {
    (void)state;
    static au_timehist h;
    memset(&h, 0, sizeof h);
    assert_int_equal(au_timehist_median(&h), 0);
    /* Small values are exact. */
    for (uint64_t v = 1; v <= 9; v++) au_timehist_add(&h, v);
    assert_int_equal(au_timehist_median(&h), 5);
    /* Any spread: the median's bucket holds the true median, so the
     * answer is at most 1/32 below it, never above. */
    uint64_t seeds[] = {1, 7, 12345, 999999937ull};
    for (size_t k = 0; k < sizeof seeds / sizeof *seeds; k++) {
        memset(&h, 0, sizeof h);
        uint64_t x = seeds[k], vals[1001];
        for (int i = 0; i < 1001; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            vals[i] = (x >> 20) % 50000000ull + 1000; /* 1 us .. 50 ms */
            au_timehist_add(&h, vals[i]);
        }
        /* The true median by counting. */
        uint64_t med = 0;
        for (int i = 0; i < 1001; i++) {
            int below = 0, equal = 0;
            for (int j = 0; j < 1001; j++) {
                below += vals[j] < vals[i];
                equal += vals[j] == vals[i];
            }
            if (below <= 500 && below + equal > 500) med = vals[i];
        }
        uint64_t got = au_timehist_median(&h);
        assert_true(got <= med);
        assert_true(med - got <= med / 32 + 1);
    }
    /* The largest value has a bucket too. */
    au_timehist_add(&h, UINT64_MAX);
    assert_int_equal(h.bucket[AU_TIMEHIST_BUCKETS - 1], 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timehist),
        cmocka_unit_test(test_proctask),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_cpu_churn),
        cmocka_unit_test(test_cpu_pyenv_3_9),
        cmocka_unit_test(test_cpu_pyenv_3_10),
        cmocka_unit_test(test_cpu_pyenv_3_11),
        cmocka_unit_test(test_cpu_pyenv_3_12),
        cmocka_unit_test(test_cpu_pyenv_3_13),
        cmocka_unit_test(test_cpu_debian_3_11_static),
        cmocka_unit_test(test_cpu_sid_3_13),
        cmocka_unit_test(test_cpu_sid_3_14),
        cmocka_unit_test(test_cpu_sid_3_15),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
