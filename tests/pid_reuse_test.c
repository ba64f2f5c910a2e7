/* A pid reused by another process: the sampler answers AU_ERR_NOPROC,
 * never a stack of the new process.
 *
 * Each case starts a fixture with address randomisation off (as `setarch
 * -R` does), samples it, kills and reaps it, then starts another process
 * at exactly the same pid (clone3 with set_tid, or /proc/sys/kernel/
 * ns_last_pid as a fallback: both need root) and samples again with the
 * sampler opened on the first one:
 *   - the same interpreter running another fixture: with randomisation
 *     off its runtime sits at the same address, so reads by pid succeed and
 *     would give the new program's stacks as the old one's;
 *   - a process that is not Python at all.
 * A fresh sampler on the new process must work (it is a real Python
 * process, read correctly when asked for).  And a record (au_session)
 * whose target's pid is given to another Python midway ends with the
 * target, never following the new process as if it were an exec.  Runs interpreters outside the
 * workspace (`external`); without the privileges to choose a pid, or an
 * interpreter, it skips (a failure under CI=true). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "asyncunwind.h"
#include "pythons.h"

typedef struct child {
    pid_t pid;
    int out; /* its stdout */
} child;

/* fork, or clone3 at pid `at` (0: any).  Returns 0 in the child, the pid
 * in the parent, -1 with errno set. */
static pid_t fork_at(pid_t at) {
    if (!at) return fork();
    pid_t tid[1] = {at};
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    ca.set_tid = (uint64_t)(uintptr_t)tid;
    ca.set_tid_size = 1;
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r >= 0 || (errno != ENOSYS && errno != E2BIG)) return (pid_t)r;
    /* No clone3: ask for the pid after at - 1 (racy with other forks on
     * the machine; the caller checks the pid it got). */
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char num[16];
    int n = snprintf(num, sizeof num, "%d", (int)at - 1);
    ssize_t w = write(fd, num, (size_t)n);
    close(fd);
    if (w != n) return -1;
    return fork();
}

/* Runs argv with ASLR off at pid `at` (0: any), stdout piped; waits for a
 * line with READY when `ready`.  Returns 0, or -1 (errno kept). */
static int run_at(pid_t at, char *const argv[], int ready, child *c) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) return -1;
    pid_t pid = fork_at(at);
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        personality(ADDR_NO_RANDOMIZE);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    c->pid = pid;
    c->out = fds[0];
    if (!ready) return 0;
    char buf[4096];
    size_t len = 0;
    while (len + 1 < sizeof buf) {
        ssize_t r = read(c->out, buf + len, sizeof buf - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        if (strstr(buf, "READY")) return 0;
    }
    errno = EPIPE;
    return -1;
}

static void reap(child *c) {
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    close(c->out);
}

static int has_frame(const au_sample *smp, const char *name) {
    for (uint32_t i = 0; i < smp->nframes; i++) {
        const au_sample_frame *f = &smp->frames[i];
        if (f->qualname && f->qualname_len == strlen(name) && !memcmp(f->qualname, name, f->qualname_len))
            return 1;
    }
    return 0;
}

/* Samples until one succeeds (the fixture may be between two states). */
static int sample_ok(au_sampler *s, const au_sample **smp) {
    int rc = AU_ERR_READ;
    for (int i = 0; i < 50 && rc != AU_OK; i++) rc = au_sampler_sample(s, smp);
    return rc;
}

/* The second process at the pid of the first; `python` selects which. */
static void reuse_case(const py_interp *p, int python) {
    char seed[] = "python_fixtures/seed.py", threads[] = "python_fixtures/threads.py";
    char exe[PATH_MAX];
    snprintf(exe, sizeof exe, "%s", p->exe);
    char *first_argv[] = {exe, seed, NULL};
    char sleep_exe[] = "/bin/sleep", forever[] = "600";
    char *second_argv[] = {exe, threads, NULL};
    char *other_argv[] = {sleep_exe, forever, NULL};
    for (int attempt = 0;; attempt++) {
        child a, b;
        if (run_at(0, first_argv, 1, &a)) fail_msg("%s: seed.py did not start: %s", p->name, strerror(errno));
        au_sampler *s;
        assert_int_equal(au_sampler_open_pid(NULL, a.pid, NULL, &s), AU_OK);
        const au_sample *smp;
        assert_int_equal(sample_ok(s, &smp), AU_OK);
        assert_true(has_frame(smp, "func_not_awaited"));
        pid_t old = a.pid;
        reap(&a);
        if (run_at(old, python ? second_argv : other_argv, python, &b)) {
            au_sampler_free(s);
            if (errno == EEXIST && attempt < 3) continue; /* someone else took it first */
            if (errno == EPERM) {
                if (py_missing_is_fatal()) fail_msg("cannot choose a pid (clone3 set_tid: EPERM)");
                skip();
            }
            fail_msg("%s: no process at pid %d: %s", p->name, (int)old, strerror(errno));
        }
        if (b.pid != old) {
            /* ns_last_pid lost a race with another fork: try again. */
            reap(&b);
            au_sampler_free(s);
            if (attempt < 3) continue;
            fail_msg("pid %d was not given back", (int)old);
        }
        if (!python) {
            /* exec'd: sleep's own image, not the forked copy of this test */
            for (int i = 0; i < 200; i++) {
                char link[64], path[PATH_MAX];
                snprintf(link, sizeof link, "/proc/%d/exe", (int)b.pid);
                ssize_t n = readlink(link, path, sizeof path - 1);
                if (n > 0 && (path[n] = 0, strstr(path, "sleep"))) break;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        /* Every later sample of the old process says it is gone. */
        for (int i = 0; i < 3; i++) {
            smp = (const au_sample *)1;
            int rc = au_sampler_sample(s, &smp);
            if (rc != AU_ERR_NOPROC)
                fail_msg("%s: sampling pid %d after its reuse by %s: %s (%d), not 'no such process'", p->name,
                         (int)old, python ? "threads.py" : "sleep", au_status_str(rc), rc);
            assert_null(smp);
        }
        au_sampler_free(s);
        if (python) {
            /* The new process is read fine when asked for by itself. */
            au_sampler *fresh;
            assert_int_equal(au_sampler_open_pid(NULL, b.pid, NULL, &fresh), AU_OK);
            assert_int_equal(sample_ok(fresh, &smp), AU_OK);
            assert_false(has_frame(smp, "func_not_awaited"));
            au_sampler_free(fresh);
        } else {
            au_sampler *fresh;
            assert_int_equal(au_sampler_open_pid(NULL, b.pid, NULL, &fresh), AU_ERR_NOTPYTHON);
        }
        reap(&b);
        return;
    }
}

static void test_reuse(void **state) {
    (void)state;
    /* A shared build (runtime in libpython) and a static one. */
    static const char *const names[] = {"pyenv-3.12", "debian-3.11-static"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const py_interp *p = py_interpreter(names[i]);
        assert_non_null(p);
        PY_REQUIRE(p);
        reuse_case(p, 1);
        reuse_case(p, 0);
    }
}

/* ---- a record: au_session -------------------------------------------------- */

typedef struct reuse_ctx {
    const py_interp *p;
    child a, b;
    int polls, swapped, failed;
} reuse_ctx;

/* The stop callback, polled before every tick: after some ticks of the
 * seed program, it gives the seed's pid to threads.py (the session's loop
 * waits meanwhile), then lets the record go on. */
static int swap_target(void *ud) {
    reuse_ctx *c = ud;
    if (c->swapped || ++c->polls < 20) return c->polls > 100000;
    char exe[PATH_MAX], threads[] = "python_fixtures/threads.py";
    snprintf(exe, sizeof exe, "%s", c->p->exe);
    char *argv[] = {exe, threads, NULL};
    pid_t old = c->a.pid;
    reap(&c->a);
    c->swapped = 1;
    if (run_at(old, argv, 1, &c->b) || c->b.pid != old) c->failed = errno ? errno : -1;
    return 0;
}

struct buf {
    char data[1 << 16];
    size_t len;
};

static int to_buf(void *ud, const void *p, size_t n) {
    struct buf *b = ud;
    if (n > sizeof b->data - 1 - b->len) n = sizeof b->data - 1 - b->len;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return AU_OK;
}

/* A record of the seed program whose pid goes to another Python midway
 * ends when the seed exits ("the target exited"), with the seed's stacks
 * and none of the new process's, instead of following it as an exec. */
static void test_session_reuse(void **state) {
    (void)state;
    reuse_ctx c;
    memset(&c, 0, sizeof c);
    c.p = py_interpreter("pyenv-3.12");
    assert_non_null(c.p);
    PY_REQUIRE(c.p);
    char exe[PATH_MAX], seed[] = "python_fixtures/seed.py";
    snprintf(exe, sizeof exe, "%s", c.p->exe);
    char *argv[] = {exe, seed, NULL};
    if (run_at(0, argv, 1, &c.a)) fail_msg("seed.py did not start: %s", strerror(errno));
    au_profile *prof;
    assert_int_equal(au_profile_new(NULL, NULL, &prof), AU_OK);
    au_session_options opt;
    memset(&opt, 0, sizeof opt);
    opt.duration_ns = 10ull * 1000000000ull; /* ends long before, when the seed is gone */
    opt.stop = swap_target;
    opt.ud = &c;
    au_session *ses;
    assert_int_equal(au_session_new(NULL, &opt, prof, &ses), AU_OK);
    assert_int_equal(au_session_add_pid(ses, c.a.pid, 0), AU_OK);
    assert_int_equal(au_session_run(ses), AU_OK);
    au_session_stats st;
    au_session_get_stats(ses, &st);
    au_session_free(ses);
    if (c.failed == EPERM) {
        au_profile_free(prof);
        if (py_missing_is_fatal()) fail_msg("cannot choose a pid (clone3 set_tid: EPERM)");
        skip();
    }
    if (c.b.pid > 0) reap(&c.b);
    assert_int_equal(c.failed, 0);
    assert_true(c.swapped);
    static struct buf out;
    out.len = 0;
    assert_int_equal(au_profile_write(prof, AU_FORMAT_COLLAPSED, NULL, to_buf, &out), AU_OK);
    au_profile_free(prof);
    if (st.end != AU_SESSION_END_GONE)
        fail_msg("the record went on after its target exited (end %u, %llu samples, %u seen):\n%s", st.end,
                 (unsigned long long)st.samples, st.processes_seen, out.data);
    assert_non_null(strstr(out.data, "func_not_awaited"));
    /* threads.py's frames, which a record that followed the pid would show */
    if (strstr(out.data, "alpha_inner") || strstr(out.data, "main_wait"))
        fail_msg("the new process's stacks are in the record:\n%s", out.data);
    assert_int_equal(st.processes_seen, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reuse), cmocka_unit_test(test_session_reuse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
