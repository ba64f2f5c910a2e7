/*
 * The asyncunwind agent (agent/) on every interpreter of tests/pythons.h.
 *
 *  - checks: tests/agent_checks.py runs its checks inside the interpreter,
 *    with the agent first on PYTHONPATH (loading with and without the
 *    program's own sitecustomize, every creation path, no wrapping, no task
 *    kept alive, bounded records, arguments and exceptions as without the
 *    agent, fork, a full region, silent failures, exit); every check must
 *    pass.  uvloop's check must pass where the interpreter has uvloop (sid's
 *    3.14 under CI), anyio's (task groups, cancel scopes) where it has
 *    anyio (sid's 3.13-3.15 under CI).
 *  - from outside: agent_checks.py `serve` holds a known task tree and
 *    forks a child that creates one more task; this test finds the regions
 *    in /proc/PID/maps, reads their headers, the records lists they name
 *    and the weakrefs in them with process_vm_readv as the sampler does,
 *    parses them with core/asyncio/agent_region.c, and resolves every pair
 *    as the reader must (both items weakref objects, their referents the
 *    tasks).  The child has one region of its own, with its pid, naming its
 *    copy of the list, with the parent's records and its own; the parent's
 *    list does not have the child's.
 *
 * Missing interpreters are skipped with their reason, or fail under
 * CI=true.  Tagged external: it runs interpreters outside the workspace.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "au_agent_region.h"
#include "asyncunwind.h"
#include "au_procmaps.h"
#include "tests/pythons.h"

#define CHECKS "tests/agent_checks.py"
#define AGENT_DIR "agent"
#define CHECKS_TIMEOUT_MS 600000
#define SERVE_TIMEOUT_MS 60000
/* PyListObject and PyWeakReference on every default (not free-threaded)
 * build of 3.9 to 3.15: PyObject_HEAD (refcount, type), then ob_size and
 * ob_item, or wr_object. */
#define OB_TYPE_OFFSET 8
#define LIST_SIZE_OFFSET 16
#define LIST_ITEM_OFFSET 24
#define WR_OBJECT_OFFSET 16
/* Items of a records list read at most. */
#define MAX_ITEMS 65536

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the fixture's output line by line (after READY). */
typedef struct line_reader {
  int fd;
  char buf[1 << 16];
  size_t len;
  int eof;
} line_reader;

/* The next line into out (without '\n'): 1, or 0 at EOF, or -1 at the
 * deadline. */
static int next_line(line_reader *r, char *out, size_t cap, long deadline) {
  for (;;) {
    char *nl = memchr(r->buf, '\n', r->len);
    if (nl != NULL || (r->eof && r->len > 0) ||
        r->len == sizeof r->buf) {
      size_t n = nl != NULL ? (size_t)(nl - r->buf) : r->len;
      size_t keep = n < cap ? n : cap - 1;
      memcpy(out, r->buf, keep);
      out[keep] = '\0';
      size_t used = nl != NULL ? n + 1 : n;
      memmove(r->buf, r->buf + used, r->len - used);
      r->len -= used;
      return 1;
    }
    if (r->eof) return 0;
    long left = deadline - now_ms();
    if (left <= 0) return -1;
    struct pollfd pfd = {r->fd, POLLIN, 0};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return -1;
    ssize_t got = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      r->eof = 1;
    } else {
      r->len += (size_t)got;
    }
  }
}

/* Runs agent_checks.py with args (NULL-terminated) under p, the agent first
 * on its PYTHONPATH. */
/* Starts agent_checks.py `args` under p with the agent, and r reading its
 * output; fails the test when it does not start. */
static void spawn_agent_fixture(const py_interp *p, const char *const *args,
                                py_proc *proc, line_reader *r) {
  static const char *const env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
  py_spawn_opts opts = {0};
  opts.env = env;
  opts.agent_dir = AGENT_DIR;
  opts.writable_tmp = 1;
  if (py_spawn_fixture_opts(p, CHECKS, args, &opts, proc) != 0) {
    fail_msg("%s: %s", p->name, proc->error);
  }
  memset(r, 0, sizeof *r);
  r->fd = proc->out_fd;
}

/* ------------------------------------------------------------------------ */
/* The checks inside the interpreter                                         */

/* Runs agent_checks.py `args` under p; fails on a FAIL line or no DONE
 * line, else returns the counts (uvloop_skipped, anyio_skipped: that
 * check was skipped). */
static void run_checks(const py_interp *p, const char *const *args,
                       int *passed, int *failed, int *skipped,
                       int *uvloop_skipped, int *anyio_skipped) {
  py_proc proc;
  static line_reader r;
  spawn_agent_fixture(p, args, &proc, &r);
  long deadline = now_ms() + CHECKS_TIMEOUT_MS;
  static char line[8192], failures[16384];
  failures[0] = '\0';
  int rc;
  *passed = *failed = *skipped = -1;
  *uvloop_skipped = *anyio_skipped = 0;
  while ((rc = next_line(&r, line, sizeof line, deadline)) == 1) {
    if (strncmp(line, "FAIL ", 5) == 0) {
      size_t used = strlen(failures);
      snprintf(failures + used, sizeof failures - used, "\n  %.2000s", line);
    } else if (strncmp(line, "SKIP ", 5) == 0) {
      print_message("%s: %s\n", p->name, line);
      if (strncmp(line, "SKIP uvloop:", 12) == 0) *uvloop_skipped = 1;
      if (strncmp(line, "SKIP anyio:", 11) == 0) *anyio_skipped = 1;
    } else if (sscanf(line, "DONE passed=%d failed=%d skipped=%d", passed,
                      failed, skipped) == 3) {
      break;
    }
  }
  py_kill(&proc);
  if (rc == -1) fail_msg("%s: no DONE line in time%s", p->name, failures);
  if (*passed < 0) fail_msg("%s: no DONE line%s", p->name, failures);
  if (*failed != 0) {
    fail_msg("%s: %d checks failed:%s", p->name, *failed, failures);
  }
}

/* 1 if a module's check is expected to skip: where the interpreter has no
 * such package (not `expected`), or where it should and did not, which
 * CI does not accept (the sid chroot failed to install it). */
static int module_skip(const py_interp *p, int expected, int skipped, const char *pkg) {
  if (!expected) return 1;
  if (skipped && py_missing_is_fatal()) {
    fail_msg("%s: no %s (tools/sid_chroot.sh installs it)", p->name, pkg);
  }
  return skipped;
}

static void test_checks(void **state) {
  const py_interp *p = *state;
  PY_REQUIRE(p);
  static const char *const args[] = {"checks", NULL};
  int passed, failed, skipped, uvloop_skipped, anyio_skipped;
  run_checks(p, args, &passed, &failed, &skipped, &uvloop_skipped,
             &anyio_skipped);
  /* Every check ran: eager tasks exist from 3.12, uvloop only where sid
   * installed it (3.14), anyio only in sid (3.13-3.15, pure Python). */
  int sid = p->kind == PY_KIND_SID_CHROOT;
  int expected_skips = (p->minor < 12) +
                       module_skip(p, sid && p->minor == 14, uvloop_skipped, "python3-uvloop") +
                       module_skip(p, sid, anyio_skipped, "python3-anyio");
  assert_int_equal(skipped, expected_skips);
  assert_true(passed >= 19);
  print_message("%s: %d checks passed, %d skipped\n", p->name, passed,
                skipped);
}

/* ------------------------------------------------------------------------ */
/* Reading the regions from outside                                          */

typedef struct expected {
  uint64_t f[4]; /* task, task_ref, creator, creator_ref */
} expected;

static int read_mem(pid_t pid, uint64_t addr, void *buf, size_t len) {
  struct iovec local = {buf, len};
  struct iovec remote = {(void *)(uintptr_t)addr, len};
  ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return got == (ssize_t)len ? 0 : -1;
}

typedef struct region {
  int count;                /* agent mappings in the process */
  au_agent_header hdr;      /* of the one whose pid is the process's */
  expected recs[64];        /* its pairs, resolved */
  size_t nrecs;
} region;

static uint64_t read_word(pid_t pid, uint64_t addr) {
  uint64_t v;
  assert_int_equal(read_mem(pid, addr, &v, 8), 0);
  return v;
}

/* Finds pid's agent regions, reads the list the one it writes names, and
 * resolves each pair as the reader must. */
static void read_region(pid_t pid, uint64_t weakref_type, region *out) {
  static char text[1 << 20];
  static au_map maps[4096];
  static uint64_t items[MAX_ITEMS];
  static au_agent_pair pairs[MAX_ITEMS / 2];
  size_t len;
  uint32_t nmaps;
  memset(out, 0, sizeof *out);
  assert_int_equal(au_maps_read(pid, text, sizeof text, &len), AU_OK);
  assert_int_equal(au_maps_parse(text, len, maps, 4096, &nmaps, NULL), AU_OK);
  int found = 0;
  for (uint32_t i = 0; i < nmaps; i++) {
    const au_map *m = &maps[i];
    if (!au_agent_is_region_path(text + m->path_off, m->path_len)) continue;
    out->count++;
    uint8_t head[AU_AGENT_HEADER_SIZE];
    assert_int_equal(read_mem(pid, m->start, head, sizeof head), 0);
    au_agent_header h;
    assert_int_equal(au_agent_parse_header(head, sizeof head, &h), AU_OK);
    if (h.pid != (uint32_t)pid) continue;
    assert_false(found);
    found = 1;
    out->hdr = h;
  }
  if (!found) fail_msg("pid %ld: no agent region of its own", (long)pid);
  uint64_t size = read_word(pid, out->hdr.list + LIST_SIZE_OFFSET);
  uint64_t base = read_word(pid, out->hdr.list + LIST_ITEM_OFFSET);
  assert_true(size >= 2 && size <= MAX_ITEMS);
  assert_int_equal(read_mem(pid, base, items, 8 * size), 0);
  size_t np;
  au_agent_stats st;
  assert_int_equal(au_agent_pairs(items, size, out->hdr.list, pairs,
                                  MAX_ITEMS / 2, &np, &st),
                   AU_OK);
  assert_int_equal(st.invalid, 0);
  assert_int_equal(st.odd, 0);
  /* The reader's validation: weakref objects, referring to the tasks (the
   * caller compares). */
  for (size_t k = 0; k < np; k++) {
    const au_agent_pair *p = &pairs[k];
    assert_true(read_word(pid, p->task_ref + OB_TYPE_OFFSET) == weakref_type);
    assert_true(read_word(pid, p->creator_ref + OB_TYPE_OFFSET) ==
                weakref_type);
    assert_true(out->nrecs < 64);
    expected *e = &out->recs[out->nrecs++];
    e->f[0] = read_word(pid, p->task_ref + WR_OBJECT_OFFSET);
    e->f[1] = p->task_ref;
    e->f[2] = read_word(pid, p->creator_ref + WR_OBJECT_OFFSET);
    e->f[3] = p->creator_ref;
  }
}

static int has_record(const region *g, const expected *e) {
  for (size_t k = 0; k < g->nrecs; k++) {
    if (memcmp(g->recs[k].f, e->f, sizeof e->f) == 0) return 1;
  }
  return 0;
}

static int parse_record(const char *line, const char *tag, expected *e) {
  char fmt[64];
  snprintf(fmt, sizeof fmt, "%s %%lx %%lx %%lx %%lx", tag);
  unsigned long v[4];
  if (sscanf(line, fmt, &v[0], &v[1], &v[2], &v[3]) != 4) return 0;
  for (int i = 0; i < 4; i++) e->f[i] = v[i];
  return 1;
}

static void test_from_outside(void **state) {
  const py_interp *p = *state;
  PY_REQUIRE(p);
  static const char *const args[] = {"serve", NULL};
  py_proc proc;
  static line_reader r;
  spawn_agent_fixture(p, args, &proc, &r);
  long deadline = now_ms() + SERVE_TIMEOUT_MS;
  expected recs[16], child_rec = {{0}};
  int nrecs = 0, have_child_rec = 0, serving = 0;
  long child = -1;
  unsigned long weakref_type = 0;
  char line[1024], problem[1024] = "";
  while (!serving && next_line(&r, line, sizeof line, deadline) == 1) {
    if (nrecs < 16 && parse_record(line, "RECORD", &recs[nrecs])) {
      nrecs++;
    } else if (parse_record(line, "CHILDRECORD", &child_rec)) {
      have_child_rec = 1;
    } else if (sscanf(line, "CHILD %ld", &child) == 1) {
    } else if (sscanf(line, "WEAKREF %lx", &weakref_type) == 1) {
    } else if (strcmp(line, "SERVING") == 0) {
      serving = 1;
    } else if (strcmp(line, "CHILDDONE") != 0) {
      snprintf(problem, sizeof problem, "unexpected output: %.900s", line);
      break;
    }
  }
  if (!serving || nrecs != 6 || !have_child_rec || child <= 0 ||
      !weakref_type) {
    py_kill(&proc);
    fail_msg("%s: serve: %s (SERVING %d, %d records, child record %d, "
             "child %ld)",
             p->name, problem, serving, nrecs, have_child_rec, child);
  }
  /* Collect, kill, then assert: a failed assertion longjmps. */
  static region parent, kid;
  read_region(proc.pid, weakref_type, &parent);
  read_region((pid_t)child, weakref_type, &kid);
  py_kill(&proc); /* the child notices and exits */

  assert_int_equal(parent.count, 1);
  assert_int_equal(parent.nrecs, 6);
  for (int k = 0; k < nrecs; k++) assert_true(has_record(&parent, &recs[k]));
  assert_false(has_record(&parent, &child_rec));
  assert_true(parent.hdr.generation >= 1);

  assert_int_equal(kid.count, 1); /* the parent's region is unmapped */
  assert_int_equal(kid.hdr.pid, child);
  assert_true(kid.hdr.list == parent.hdr.list); /* its copy of the list */
  for (int k = 0; k < nrecs; k++) assert_true(has_record(&kid, &recs[k]));
  assert_true(has_record(&kid, &child_rec));
  assert_int_equal(kid.nrecs, 7);
  print_message("%s: %zu records in the parent, %zu in the child\n", p->name,
                parent.nrecs, kid.nrecs);
}

/* The launcher's copy fallback (no mount namespace): the agent's files are
 * copied into the chroot, and /tmp there is writable.  It writes into
 * ROOT/tmp, which Bazel's sandbox makes read-only: then it is skipped. */
static void test_chroot_copy(void **state) {
  (void)state;
  size_t n;
  const py_interp *all = py_interpreters(&n);
  const py_interp *p = NULL;
  for (size_t i = 0; i < n && p == NULL; i++) {
    if (all[i].kind == PY_KIND_SID_CHROOT) p = &all[i];
  }
  assert_non_null(p);
  PY_REQUIRE(p);
  char tmp[PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s/tmp", p->chroot_root);
  if (access(tmp, W_OK) != 0) {
    print_message("SKIP: %s is not writable here (Bazel's sandbox; run with "
                  "--spawn_strategy=standalone to test the copy)\n", tmp);
    skip();
  }
  static const char *const args[] = {
      "checks", "patched_here", "creation_paths",
      "loading_with_app_sitecustomize", NULL};
  assert_int_equal(setenv("ASYNCUNWIND_FIXTURE_COPY", "1", 1), 0);
  int passed, failed, skipped, uvloop_skipped, anyio_skipped;
  run_checks(p, args, &passed, &failed, &skipped, &uvloop_skipped,
             &anyio_skipped);
  assert_int_equal(passed, 3);
}

static int unset_copy(void **state) {
  (void)state;
  return unsetenv("ASYNCUNWIND_FIXTURE_COPY");
}

/* py_spawn_opts: the agent's directory goes first on PYTHONPATH, before
 * one from opts.env, and the target sees the directory where
 * py_proc.agent_dir says (host and chroot interpreters). */
static void test_launcher_pythonpath(void **state) {
  (void)state;
  size_t n;
  const py_interp *all = py_interpreters(&n);
  int ran = 0;
  for (size_t i = 0; i < n; i++) {
    const py_interp *p = &all[i];
    if (!p->available || (p->kind != PY_KIND_PYENV &&
                          p->kind != PY_KIND_SID_CHROOT)) {
      continue;
    }
    static const char *const env[] = {"PYTHONDONTWRITEBYTECODE=1",
                                      "PYTHONPATH=/nonexistent/a:/b", NULL};
    static const char *const args[] = {"environ", NULL};
    py_spawn_opts opts = {0};
    opts.env = env;
    opts.agent_dir = AGENT_DIR;
    py_proc proc;
    if (py_spawn_fixture_opts(p, CHECKS, args, &opts, &proc) != 0) {
      fail_msg("%s: %s", p->name, proc.error);
    }
    static line_reader r;
    memset(&r, 0, sizeof r);
    r.fd = proc.out_fd;
    char pythonpath[PATH_MAX + 64] = "", agent[PATH_MAX + 64] = "";
    long deadline = now_ms() + SERVE_TIMEOUT_MS;
    int ok = next_line(&r, pythonpath, sizeof pythonpath, deadline) == 1 &&
             next_line(&r, agent, sizeof agent, deadline) == 1;
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "PYTHONPATH=%s:/nonexistent/a:/b",
             proc.agent_dir);
    char want_agent[PATH_MAX + 64];
    snprintf(want_agent, sizeof want_agent, "AGENT_DIR=%s", proc.agent_dir);
    int mounted = proc.copy_dir[0] == '\0';
    py_kill(&proc);
    assert_true(ok);
    assert_string_equal(pythonpath, want);
    assert_string_equal(agent, want_agent);
    if (p->kind == PY_KIND_SID_CHROOT && mounted) {
      assert_string_equal(proc.agent_dir, PY_CHROOT_AGENT_DIR);
    }
    ran++;
  }
  if (ran == 0) skip();
}

int main(void) {
  size_t n;
  const py_interp *all = py_interpreters(&n);
  struct CMUnitTest tests[64];
  char names[64][96];
  size_t k = 0;
  tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_launcher_pythonpath);
  tests[k++] = (struct CMUnitTest)cmocka_unit_test_teardown(
      test_chroot_copy, unset_copy);
  for (size_t i = 0; i < n && k + 2 <= 64; i++) {
    snprintf(names[k], sizeof names[k], "checks %s", all[i].name);
    tests[k] = (struct CMUnitTest){names[k], test_checks, NULL, NULL,
                                   (void *)&all[i]};
    k++;
    snprintf(names[k], sizeof names[k], "from outside %s", all[i].name);
    tests[k] = (struct CMUnitTest){names[k], test_from_outside, NULL, NULL,
                                   (void *)&all[i]};
    k++;
  }
  return _cmocka_run_group_tests("agent_test", tests, k, NULL, NULL);
}
