/* Smoke test of python_fixtures/ and tests/pythons: every fixture under every
 * interpreter reaches READY, runs the expected executable, settles (blocking
 * fixtures: every thread asleep), and is killed and reaped.  Missing
 * interpreters are skipped with their reason, or fail under CI=true.  Tagged
 * external: it depends on interpreters outside the workspace. */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/pythons.h"

#define FIXTURE_DIR "python_fixtures"

typedef struct fixture_info {
  const char *name;
  int blocks;      /* every thread ends up in time.sleep */
  int min_threads; /* OS threads once READY */
  int max_threads; /* 0: no upper bound */
} fixture_info;

static const fixture_info kFixtures[] = {
    {"deep_recursion", 1, 1, 1}, {"threads", 1, 4, 4},
    {"cpu_bound", 0, 1, 1},      {"generators", 1, 1, 1},
    {"unicode_names", 1, 1, 1},  {"spawner", 0, 1, 0},
    {"lambdas", 1, 1, 1},
};
#define N_FIXTURES (sizeof kFixtures / sizeof kFixtures[0])

typedef struct test_case {
  const py_interp *interp;
  const fixture_info *fixture;
  char name[96];
} test_case;

static int count_tasks(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
  int n = 0;
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* 1 when /proc/PID/maps maps a file whose name contains "python3.<minor>"
 * (libpython3.X.so for shared builds, the python3.X executable otherwise). */
static int maps_show_version(pid_t pid, int minor) {
  char path[64], needle[32], line[4096];
  snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
  snprintf(needle, sizeof needle, "python3.%d", minor);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  int found = 0;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    for (char *s = strstr(line, needle); s != NULL && !found;
         s = strstr(s + 1, needle)) {
      char next = s[strlen(needle)];
      found = next < '0' || next > '9';
    }
  }
  fclose(f);
  return found;
}

/* 'R', 'S', ... from /proc/PID/stat, or 0. */
static char proc_state(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *rp = strrchr(buf, ')');
  return (rp != NULL && rp[1] == ' ') ? rp[2] : 0;
}

static void test_fixture(void **state) {
  const test_case *tc = *state;
  PY_REQUIRE(tc->interp);

  char path[256];
  snprintf(path, sizeof path, FIXTURE_DIR "/%s.py", tc->fixture->name);
  py_proc proc;
  if (py_spawn_fixture(tc->interp, path, NULL, &proc) != 0) {
    fail_msg("%s: %s", tc->name, proc.error);
  }
  pid_t pid = proc.pid;

  /* Collect every verdict first, kill, then assert: a failed assertion
   * longjmps and must not leave the fixture running. */
  char problem[1200] = "";
  if (!py_exe_matches(&proc)) {
    snprintf(problem, sizeof problem, "exe: %s", proc.error);
  } else if (!maps_show_version(pid, tc->interp->minor)) {
    snprintf(problem, sizeof problem, "/proc/%ld/maps shows no python3.%d",
             (long)pid, tc->interp->minor);
  } else if (tc->fixture->blocks && py_wait_sleeping(&proc, 10000) != 0) {
    snprintf(problem, sizeof problem, "settle: %s", proc.error);
  } else if (!tc->fixture->blocks && proc_state(pid) == 0) {
    snprintf(problem, sizeof problem, "no /proc/%ld/stat", (long)pid);
  }
  int tasks = count_tasks(pid);
  if (problem[0] == '\0' &&
      (tasks < tc->fixture->min_threads ||
       (tc->fixture->max_threads && tasks > tc->fixture->max_threads))) {
    snprintf(problem, sizeof problem, "%d OS threads, expected %d..%d", tasks,
             tc->fixture->min_threads, tc->fixture->max_threads);
  }
  print_message("%-36s pid %-7ld READY after %4ld ms, %d threads, %s\n",
                tc->name, (long)pid, proc.ready_ms, tasks, proc.script);

  int kill_rc = py_kill(&proc);
  int status;
  errno = 0;
  pid_t w = waitpid(pid, &status, WNOHANG);
  int reap_errno = errno;

  if (problem[0] != '\0') fail_msg("%s: %s", tc->name, problem);
  assert_int_equal(kill_rc, 0);
  assert_int_equal(proc.pid, -1);
  assert_int_equal(proc.out_fd, -1);
  /* Reaped: no zombie, no such child any more. */
  assert_int_equal(w, -1);
  assert_int_equal(reap_errno, ECHILD);
  assert_int_equal(kill(pid, 0), -1);
}

/* The interpreter table: fixed names and versions; every missing entry says
 * why; every available entry can be executed. */
static void test_interpreter_table(void **state) {
  (void)state;
  static const char *const names[] = {
      "pyenv-3.9",          "pyenv-3.10", "pyenv-3.11", "pyenv-3.12",
      "pyenv-3.13",         "debian-3.11-static",       "sid-3.13",
      "sid-3.14",           "sid-3.15",
  };
  static const int minors[] = {9, 10, 11, 12, 13, 11, 13, 14, 15};
  size_t n;
  const py_interp *all = py_interpreters(&n);
  assert_int_equal(n, sizeof names / sizeof names[0]);
  for (size_t i = 0; i < n; i++) {
    const py_interp *p = &all[i];
    assert_string_equal(p->name, names[i]);
    assert_int_equal(p->major, 3);
    assert_int_equal(p->minor, minors[i]);
    assert_ptr_equal(py_interpreter(names[i]), p);
    if (p->available) {
      assert_string_equal(p->reason, "");
      assert_true(p->argc >= 1 && p->argv[p->argc] == NULL);
      assert_int_equal(p->argv[0][0], '/');
      assert_int_equal(access(p->argv[0], X_OK), 0);
      assert_int_equal(access(p->exe, X_OK), 0);
      print_message("  %-20s %s%s%s\n", p->name, p->exe,
                    p->chroot_root[0] ? " in chroot " : "", p->chroot_root);
    } else {
      assert_true(strlen(p->reason) > 0);
      print_message("  %-20s MISSING: %s\n", p->name, p->reason);
    }
  }
  assert_null(py_interpreter("pyenv-2.7"));
}

/* CI=true turns a missing interpreter into a failure; otherwise a skip. */
static void test_ci_policy(void **state) {
  (void)state;
  const char *old = getenv("CI");
  char *saved = old ? strdup(old) : NULL;
  py_interp missing;
  memset(&missing, 0, sizeof missing);
  snprintf(missing.name, sizeof missing.name, "pyenv-3.99");
  snprintf(missing.reason, sizeof missing.reason, "(policy test) none");
  py_interp present = missing;
  present.available = 1;

  unsetenv("CI");
  int fatal_unset = py_missing_is_fatal();
  py_status st_unset = py_require_status(&missing);
  setenv("CI", "false", 1);
  py_status st_false = py_require_status(&missing);
  setenv("CI", "true", 1);
  int fatal_true = py_missing_is_fatal();
  py_status st_true = py_require_status(&missing);
  py_status st_present = py_require_status(&present);
  setenv("CI", "1", 1);
  py_status st_one = py_require_status(&missing);

  if (saved != NULL) {
    setenv("CI", saved, 1);
    free(saved);
  } else {
    unsetenv("CI");
  }
  assert_int_equal(fatal_unset, 0);
  assert_int_equal(st_unset, PY_SKIP);
  assert_int_equal(st_false, PY_SKIP);
  assert_int_equal(fatal_true, 1);
  assert_int_equal(st_true, PY_FAIL);
  assert_int_equal(st_present, PY_RUN);
  assert_int_equal(st_one, PY_FAIL);
}

static const py_interp *first_available(void) {
  size_t n;
  const py_interp *all = py_interpreters(&n);
  for (size_t i = 0; i < n; i++) {
    if (all[i].available) return &all[i];
  }
  return NULL;
}

/* Error paths leave nothing running and say why. */
static void test_spawn_errors(void **state) {
  (void)state;
  const py_interp *p = first_available();
  if (p == NULL) {
    if (py_missing_is_fatal()) fail_msg("no interpreter at all under CI");
    print_message("SKIP: no interpreter available\n");
    skip();
  }
  py_proc proc;
  assert_int_equal(py_spawn_fixture(p, FIXTURE_DIR "/no_such.py", NULL, &proc),
                   -1);
  assert_non_null(strstr(proc.error, "no_such.py"));
  assert_int_equal(proc.pid, -1);

  /* int("not-a-number") raises before READY: exit status 1. */
  const char *const bad_args[] = {"not-a-number", NULL};
  assert_int_equal(py_spawn_fixture(p, FIXTURE_DIR "/deep_recursion.py",
                                    bad_args, &proc),
                   -1);
  print_message("  expected error: %s\n", proc.error);
  assert_non_null(strstr(proc.error, "exited before READY (exit status 1)"));
  assert_int_equal(proc.pid, -1);
  assert_int_equal(proc.out_fd, -1);
  int status;
  assert_int_equal(waitpid(-1, &status, WNOHANG), -1); /* no children */
  assert_int_equal(py_kill(&proc), 0);                 /* idempotent */

  /* Arguments reach the fixture: a 7-deep recursion is fine too. */
  const char *const depth_args[] = {"7", NULL};
  assert_int_equal(py_spawn_fixture(p, FIXTURE_DIR "/deep_recursion.py",
                                    depth_args, &proc),
                   0);
  assert_int_equal(py_kill(&proc), 0);
  assert_int_equal(py_kill(&proc), 0);
}

/* Every fixture has its expectation file next to it. */
static void test_expectation_files(void **state) {
  (void)state;
  for (size_t i = 0; i < N_FIXTURES; i++) {
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, FIXTURE_DIR "/expected/%s.txt",
             kFixtures[i].name);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0);
  }
}

int main(void) {
  size_t n_interp;
  const py_interp *interps = py_interpreters(&n_interp);
  size_t n_cases = n_interp * N_FIXTURES;
  size_t n_tests = n_cases + 4;
  test_case *cases = calloc(n_cases, sizeof *cases);
  struct CMUnitTest *tests = calloc(n_tests, sizeof *tests);
  if (cases == NULL || tests == NULL) return 2;

  size_t k = 0;
  tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_interpreter_table);
  tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_ci_policy);
  tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_expectation_files);
  tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_spawn_errors);
  for (size_t i = 0; i < n_interp; i++) {
    for (size_t j = 0; j < N_FIXTURES; j++) {
      test_case *tc = &cases[i * N_FIXTURES + j];
      tc->interp = &interps[i];
      tc->fixture = &kFixtures[j];
      snprintf(tc->name, sizeof tc->name, "%s/%s", interps[i].name,
               kFixtures[j].name);
      tests[k++] = (struct CMUnitTest){tc->name, test_fixture, NULL, NULL, tc};
    }
  }
  int failed = _cmocka_run_group_tests("fixtures", tests, k, NULL, NULL);
  free(tests);
  free(cases);
  return failed;
}
