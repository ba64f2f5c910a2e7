/* Interpreters for live tests, and a launcher for python_fixtures/.
 *
 * Live tests run a fixture under every interpreter the project supports and
 * read it from outside.  py_interpreters() lists them, in a fixed order:
 *
 *   name                  runs                                   link
 *   pyenv-3.9 .. 3.13     $(pyenv root)/versions/3.X.N/bin/python3.X  shared
 *   debian-3.11-static    /usr/bin/python3.11                    static
 *   sid-3.13 .. 3.15      /usr/sbin/chroot ROOT /usr/bin/python3.1X   static
 *
 * pyenv root: $PYENV_ROOT, else /root/.pyenv, else ~/.pyenv from the passwd
 * entry (Bazel tests have neither HOME nor pyenv on PATH); the highest
 * 3.X.N directory wins.  ROOT: $ASYNCUNWIND_SID_ROOT, else
 * /var/lib/asyncunwind/sid, built by tools/sid_chroot.sh; it counts only
 * when its completion stamp exists, and needs root (chroot(2)).
 *
 * A missing interpreter has available == 0 and a reason.  Policy: a test
 * reports it as a skip with the reason, except when the environment has
 * CI=true (or CI=1), where it is a failure: CI must have every interpreter.
 * Bazel passes CI to tests only with --test_env=CI.  PY_REQUIRE() applies the
 * policy in a cmocka test.
 *
 * Not thread-safe: call from the test's main thread.
 */
#ifndef ASYNCUNWIND_TESTS_PYTHONS_H
#define ASYNCUNWIND_TESTS_PYTHONS_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define PY_READY_TIMEOUT_MS 20000 /* spawn to READY line */
#define PY_KILL_TIMEOUT_MS 10000  /* SIGKILL to reaped */

typedef enum py_kind {
  PY_KIND_PYENV,         /* pyenv shared build, on the host */
  PY_KIND_DEBIAN_STATIC, /* Debian's /usr/bin/python3.11 */
  PY_KIND_SID_CHROOT,    /* sid's python3.1X inside the chroot */
} py_kind;

typedef struct py_interp {
  char name[32]; /* "pyenv-3.12", "debian-3.11-static", "sid-3.14" */
  py_kind kind;
  int major, minor; /* the version this entry must be */
  int shared;       /* 1: runtime in libpython3.X.so; 0: in the executable */
  int available;    /* 0: see reason */
  char reason[512]; /* why it is unavailable; "" when available */
  /* Host path of the interpreter's executable (for the chroot entries
   * ROOT/usr/bin/python3.1X).  Set whenever it could be determined. */
  char exe[PATH_MAX];
  /* The chroot directory for PY_KIND_SID_CHROOT, else "". */
  char chroot_root[PATH_MAX];
  /* argv prefix to run it, NULL-terminated (argc entries); points into this
   * struct.  Append a script path and its arguments. */
  const char *argv[4];
  int argc;
  char argv_store_[2][PATH_MAX];
} py_interp;

/* All interpreters (available or not), in the order above; *count is set.
 * Discovery runs once; the array lives until exit. */
const py_interp *py_interpreters(size_t *count);

/* The entry called `name`, or NULL. */
const py_interp *py_interpreter(const char *name);

/* Whether `name` is in `list`, interpreter names separated by commas (as
 * the benchmarks' --au_python takes them); a NULL list holds every name. */
int py_listed(const char *list, const char *name);

/* 0 when every name in `list` (NULL: no names) is one of
 * py_interpreters(); otherwise prints "TOOL: unknown interpreter 'X' in
 * --au_python" on stderr for each name that is not, and returns -1. */
int py_check_list(const char *tool, const char *list);

/* 1 when a missing interpreter must fail the test (CI=true or CI=1). */
int py_missing_is_fatal(void);

/* What a test should do about interpreter p. */
typedef enum py_status { PY_RUN = 0, PY_SKIP, PY_FAIL } py_status;

/* PY_RUN when p is available.  Otherwise prints the reason on stderr and
 * returns PY_SKIP, or PY_FAIL under CI (py_missing_is_fatal()). */
py_status py_require_status(const py_interp *p);

/* In a cmocka test (include cmocka.h first): return normally when p is
 * available, else print the reason and skip() -- or fail under CI. */
#define PY_REQUIRE(p)                                                       \
  do {                                                                      \
    switch (py_require_status(p)) {                                         \
      case PY_RUN: break;                                                   \
      case PY_SKIP: skip(); break;                                          \
      case PY_FAIL: fail_msg("%s is missing and CI=true", (p)->name); break; \
    }                                                                       \
  } while (0)

/* A running fixture. */
typedef struct py_proc {
  pid_t pid; /* the Python process (chroot(8) execs it: same pid); -1 */
  int out_fd; /* read end of its stdout pipe; -1 when closed */
  const py_interp *interp;
  char script[PATH_MAX];   /* the fixture's path as the target sees it */
  char copy_dir[PATH_MAX]; /* host directory py_kill deletes, or "" */
  long ready_ms;           /* spawn-to-READY time */
  char error[1024];        /* why py_spawn_fixture failed */
  /* py_spawn_opts.agent_dir as the target sees it (first on its
   * PYTHONPATH), or "" without one. */
  char agent_dir[PATH_MAX];
} py_proc;

/* Options of py_spawn_fixture_opts.  Zero-initialise, then set what is
 * needed: {0} is py_spawn_fixture's behaviour. */
typedef struct py_spawn_opts {
  /* Extra environment entries "NAME=value", NULL-terminated (may be NULL),
   * added after the PYTHON* variables are removed: they may set PYTHON*
   * ones (PYTHONDONTWRITEBYTECODE=1, PYTHONPATH=..., ...). */
  const char *const *env;
  /* A directory of Python files the target must see, e.g. "agent" (the
   * runfiles of //agent:files: the asyncunwind agent, docs/AGENT.md), or
   * NULL.  Its path as the target sees it goes first on PYTHONPATH, before
   * a PYTHONPATH from env, and into py_proc.agent_dir.  Host interpreters
   * see it where it is (made absolute).  For the chroot entries its files
   * must all resolve (symlinks followed, as Bazel's runfiles are) into one
   * host directory, which the child bind-mounts on ROOT/srv/asyncunwind-
   * agent over a tmpfs on ROOT/srv, in its private mount namespace
   * (PY_CHROOT_AGENT_DIR inside); when it cannot mount, or the files are
   * spread out, the files are copied into the fixture's copy directory
   * (ROOT/tmp/asyncunwind-fixtures/XXXXXX/asyncunwind-agent/). */
  const char *agent_dir;
  /* 1: the target may write in /tmp (a fixture that writes scratch
   * files).  Host interpreters can.  For the chroot entries the child
   * mounts a private tmpfs on ROOT/tmp (Bazel's sandbox leaves ROOT
   * read-only); the copy fallback has a writable ROOT/tmp already. */
  int writable_tmp;
} py_spawn_opts;

/* Where the chroot entries see py_spawn_opts.agent_dir when mounted. */
#define PY_CHROOT_AGENT_DIR "/srv/asyncunwind-agent"

/* Runs `fixture_path` (e.g. "python_fixtures/threads.py", relative to the
 * cwd) under p with the extra arguments `args` (NULL-terminated, may be
 * NULL), stdin /dev/null, stdout piped, stderr inherited, PYTHON* variables
 * removed from the environment, and SIGKILL on the caller's exit
 * (PR_SET_PDEATHSIG).  Waits up to PY_READY_TIMEOUT_MS for the line
 * "READY <pid>" and checks that pid is the child's.
 *
 * For the chroot entries the fixture must be visible inside ROOT: the child
 * enters a private mount namespace and bind-mounts the fixture's directory
 * on ROOT/mnt (nothing is written; works in Bazel's read-only sandbox), or,
 * when it cannot mount, the file is copied to a fresh
 * ROOT/tmp/asyncunwind-fixtures/XXXXXX/ that py_kill removes
 * (ASYNCUNWIND_FIXTURE_COPY=1 forces the copy, to test that path).
 *
 * Returns 0 with *out describing the running process, or -1 with
 * out->error set and nothing left running.  On success call py_kill. */
int py_spawn_fixture(const py_interp *p, const char *fixture_path,
                     const char *const *args, py_proc *out);

/* py_spawn_fixture with options (NULL: none, the same as
 * py_spawn_fixture).  With an agent directory:
 *
 *   const char *env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
 *   py_spawn_opts opts = {.env = env, .agent_dir = "agent"};
 *   py_spawn_fixture_opts(p, "python_fixtures/x.py", NULL, &opts, &proc);
 *
 * and `data = ["//agent:files"]` on the test. */
int py_spawn_fixture_opts(const py_interp *p, const char *fixture_path,
                          const char *const *args, const py_spawn_opts *opts,
                          py_proc *out);

/* Waits up to timeout_ms until every thread of the fixture sits in a sleep
 * system call (clock_nanosleep, nanosleep, select, pselect6, epoll_wait,
 * epoll_pwait(2), poll, ppoll, futex): the blocking
 * fixtures are then at their documented lines, not between READY and the
 * sleep.  Returns 0, or -1 on timeout or error (see out->error). */
int py_wait_sleeping(py_proc *proc, int timeout_ms);

/* 1 when /proc/PID/exe is the interpreter's executable (same device and
 * inode as p->exe), else 0 (reason in proc->error). */
int py_exe_matches(py_proc *proc);

/* SIGKILLs and reaps the fixture (bounded by PY_KILL_TIMEOUT_MS), closes
 * the pipe, removes a chroot copy.  Idempotent.  Returns 0, or -1 if the
 * process could not be reaped in time. */
int py_kill(py_proc *proc);

#endif /* ASYNCUNWIND_TESTS_PYTHONS_H */
