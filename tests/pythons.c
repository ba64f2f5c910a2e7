/* Interpreter discovery and fixture launcher for live tests: see pythons.h. */
#define _GNU_SOURCE

#include "tests/pythons.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SID_DEFAULT_ROOT "/var/lib/asyncunwind/sid"
#define SID_STAMP ".asyncunwind-sid-complete"
#define CHROOT_BIN "/usr/sbin/chroot"
#define CHROOT_COPY_DIR "/tmp/asyncunwind-fixtures" /* inside ROOT */
#define CHROOT_BIND_DIR "/mnt"                      /* inside ROOT */
#define CHROOT_AGENT_MNT "/srv" /* inside ROOT: a tmpfs, for the next line */
#define CHROOT_AGENT_NAME "asyncunwind-agent"
#define CHROOT_TMP "/tmp" /* inside ROOT: a tmpfs with writable_tmp */

/* snprintf that reports truncation as failure (-1). */
static int fmt(char *buf, size_t n, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static int fmt(char *buf, size_t n, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int r = vsnprintf(buf, n, f, ap);
  va_end(ap);
  return (r < 0 || (size_t)r >= n) ? -1 : 0;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_exec_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
         access(path, X_OK) == 0;
}

/* ------------------------------------------------------------------------ */
/* Discovery                                                                */

/* Room for every entry discover_*() makes (9 today), with headroom. */
#define MAX_INTERPS 16
static py_interp g_interps[MAX_INTERPS];
static size_t g_count;
static int g_discovered;

/* Finds the pyenv root: $PYENV_ROOT, /root/.pyenv, <passwd home>/.pyenv.
 * Returns 0, or -1 with `tried` listing the candidates. */
static int find_pyenv_root(char *out, size_t n, char *tried, size_t tn) {
  const char *cands[3] = {getenv("PYENV_ROOT"), "/root/.pyenv", NULL};
  char home_cand[PATH_MAX] = "";
  struct passwd *pw = getpwuid(getuid());
  if (pw != NULL && pw->pw_dir != NULL &&
      fmt(home_cand, sizeof home_cand, "%s/.pyenv", pw->pw_dir) == 0) {
    cands[2] = home_cand;
  }
  size_t used = 0;
  tried[0] = '\0';
  for (int i = 0; i < 3; i++) {
    if (cands[i] == NULL || cands[i][0] == '\0') continue;
    char versions[PATH_MAX];
    if (fmt(versions, sizeof versions, "%s/versions", cands[i]) == 0 &&
        is_dir(versions) && fmt(out, n, "%s", cands[i]) == 0) {
      return 0;
    }
    int w = snprintf(tried + used, tn - used, "%s%s", used ? ", " : "",
                     cands[i]);
    if (w > 0 && used + (size_t)w < tn) used += (size_t)w;
  }
  return -1;
}

/* Highest "3.<minor>.<digits>" directory under root/versions, or -1. */
static int find_pyenv_version(const char *root, int minor, char *out,
                              size_t n) {
  char versions[PATH_MAX];
  if (fmt(versions, sizeof versions, "%s/versions", root) != 0) return -1;
  DIR *d = opendir(versions);
  if (d == NULL) return -1;
  char prefix[16];
  snprintf(prefix, sizeof prefix, "3.%d.", minor);
  size_t plen = strlen(prefix);
  long best = -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, plen) != 0) continue;
    const char *patch = e->d_name + plen;
    if (*patch == '\0' || strspn(patch, "0123456789") != strlen(patch) ||
        strlen(patch) > 6) {
      continue; /* "3.13.0t", "3.12-dev", ... are other builds */
    }
    long v = strtol(patch, NULL, 10);
    if (v > best && fmt(out, n, "%s", e->d_name) == 0) best = v;
  }
  closedir(d);
  return best >= 0 ? 0 : -1;
}

static py_interp *new_entry(const char *name, py_kind kind, int minor,
                            int shared) {
  if (g_count == MAX_INTERPS) {
    fprintf(stderr, "pythons.c: more than %d interpreters; raise MAX_INTERPS\n",
            MAX_INTERPS);
    abort();
  }
  py_interp *p = &g_interps[g_count++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->kind = kind;
  p->major = 3;
  p->minor = minor;
  p->shared = shared;
  return p;
}

static void set_reason(py_interp *p, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
static void set_reason(py_interp *p, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(p->reason, sizeof p->reason, f, ap);
  va_end(ap);
  p->available = 0;
}

static void set_direct(py_interp *p) {
  p->argv[0] = p->exe;
  p->argv[1] = NULL;
  p->argc = 1;
  p->available = 1;
}

static void discover_pyenv(void) {
  char root[PATH_MAX], tried[1024];
  int have_root = find_pyenv_root(root, sizeof root, tried, sizeof tried);
  for (int minor = 9; minor <= 13; minor++) {
    char name[32], ver[64];
    snprintf(name, sizeof name, "pyenv-3.%d", minor);
    py_interp *p = new_entry(name, PY_KIND_PYENV, minor, 1);
    if (have_root != 0) {
      set_reason(p, "no pyenv root (tried $PYENV_ROOT, %s)", tried);
    } else if (find_pyenv_version(root, minor, ver, sizeof ver) != 0) {
      set_reason(p, "no 3.%d.N under %s/versions", minor, root);
    } else if (fmt(p->exe, sizeof p->exe, "%s/versions/%s/bin/python3.%d",
                   root, ver, minor) != 0) {
      set_reason(p, "path too long under %s", root);
    } else if (!is_exec_file(p->exe)) {
      set_reason(p, "%s is not an executable file", p->exe);
    } else {
      set_direct(p);
    }
  }
}

static void discover_debian(void) {
  py_interp *p = new_entry("debian-3.11-static", PY_KIND_DEBIAN_STATIC, 11, 0);
  snprintf(p->exe, sizeof p->exe, "/usr/bin/python3.11");
  if (!is_exec_file(p->exe)) {
    set_reason(p, "%s missing (apt-get install python3.11)", p->exe);
  } else {
    set_direct(p);
  }
}

static void discover_sid(void) {
  const char *root = getenv("ASYNCUNWIND_SID_ROOT");
  if (root == NULL || root[0] == '\0') root = SID_DEFAULT_ROOT;
  for (int minor = 13; minor <= 15; minor++) {
    char name[32], stamp[PATH_MAX];
    snprintf(name, sizeof name, "sid-3.%d", minor);
    py_interp *p = new_entry(name, PY_KIND_SID_CHROOT, minor, 0);
    if (fmt(p->chroot_root, sizeof p->chroot_root, "%s", root) != 0 ||
        fmt(p->exe, sizeof p->exe, "%s/usr/bin/python3.%d", root, minor) != 0 ||
        fmt(stamp, sizeof stamp, "%s/%s", root, SID_STAMP) != 0) {
      set_reason(p, "ASYNCUNWIND_SID_ROOT is too long");
    } else if (access(stamp, F_OK) != 0) {
      set_reason(p,
                 "no complete sid chroot at %s (missing %s; build it with "
                 "tools/sid_chroot.sh)",
                 root, SID_STAMP);
    } else if (!is_exec_file(p->exe)) {
      set_reason(p, "%s missing (rebuild with tools/sid_chroot.sh)", p->exe);
    } else if (geteuid() != 0) {
      set_reason(p, "running it needs chroot(2), i.e. root (euid is %d)",
                 (int)geteuid());
    } else if (!is_exec_file(CHROOT_BIN)) {
      set_reason(p, "%s missing", CHROOT_BIN);
    } else {
      snprintf(p->argv_store_[0], sizeof p->argv_store_[0], "%s", root);
      snprintf(p->argv_store_[1], sizeof p->argv_store_[1],
               "/usr/bin/python3.%d", minor);
      p->argv[0] = CHROOT_BIN;
      p->argv[1] = p->argv_store_[0];
      p->argv[2] = p->argv_store_[1];
      p->argv[3] = NULL;
      p->argc = 3;
      p->available = 1;
    }
  }
}

const py_interp *py_interpreters(size_t *count) {
  if (!g_discovered) {
    g_count = 0;
    discover_pyenv();
    discover_debian();
    discover_sid();
    g_discovered = 1;
  }
  *count = g_count;
  return g_interps;
}

const py_interp *py_interpreter(const char *name) {
  size_t n;
  const py_interp *all = py_interpreters(&n);
  for (size_t i = 0; i < n; i++) {
    if (strcmp(all[i].name, name) == 0) return &all[i];
  }
  return NULL;
}

/* The name at *p in a comma-separated list, its length in *len; *p moves
 * past it and its comma. */
static const char *list_next(const char **p, size_t *len) {
  const char *name = *p, *comma = strchr(name, ',');
  *len = comma ? (size_t)(comma - name) : strlen(name);
  *p = name + *len + (comma != NULL);
  return name;
}

int py_listed(const char *list, const char *name) {
  if (list == NULL) return 1;
  size_t n = strlen(name), len;
  for (const char *p = list; *p;) {
    const char *item = list_next(&p, &len);
    if (len == n && memcmp(item, name, n) == 0) return 1;
  }
  return 0;
}

int py_check_list(const char *tool, const char *list) {
  size_t n, len;
  const py_interp *all = py_interpreters(&n);
  int rc = 0;
  for (const char *p = list; p && *p;) {
    const char *item = list_next(&p, &len);
    int found = 0;
    for (size_t i = 0; i < n; i++)
      found |= strlen(all[i].name) == len && memcmp(all[i].name, item, len) == 0;
    if (!found) {
      fprintf(stderr, "%s: unknown interpreter '%.*s' in --au_python\n", tool, (int)len, item);
      rc = -1;
    }
  }
  return rc;
}

int py_missing_is_fatal(void) {
  const char *ci = getenv("CI");
  return ci != NULL && (strcasecmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

py_status py_require_status(const py_interp *p) {
  if (p->available) return PY_RUN;
  if (py_missing_is_fatal()) {
    fprintf(stderr, "FAIL %s: unavailable under CI=true: %s\n", p->name,
            p->reason);
    return PY_FAIL;
  }
  fprintf(stderr, "SKIP %s: %s\n", p->name, p->reason);
  return PY_SKIP;
}

/* ------------------------------------------------------------------------ */
/* Launcher                                                                 */

static void proc_error(py_proc *out, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
static void proc_error(py_proc *out, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(out->error, sizeof out->error, f, ap);
  va_end(ap);
}

/* Kills (if running) and reaps pid within timeout_ms.  Returns the wait
 * status, or -1 if it could not be reaped (errno set). */
static int kill_and_reap(pid_t pid, int timeout_ms) {
  kill(pid, SIGKILL);
  long deadline = now_ms() + timeout_ms;
  for (long delay = 1;; delay = delay < 20 ? delay * 2 : 20) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;
    if (now_ms() >= deadline) {
      errno = ETIMEDOUT;
      return -1;
    }
    sleep_ms(delay);
  }
}

static void describe_status(int status, char *buf, size_t n) {
  if (status < 0) {
    snprintf(buf, n, "not reaped: %s", strerror(errno));
  } else if (WIFEXITED(status)) {
    snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
  } else {
    snprintf(buf, n, "wait status 0x%x", (unsigned)status);
  }
}

/* Removes the files in dir and in its subdirectories (`depth` levels
 * deep), then dir. */
static void remove_tree(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
        continue;
      }
      char path[PATH_MAX];
      if (fmt(path, sizeof path, "%s/%s", dir, e->d_name) != 0) continue;
      if (depth > 0 && is_dir(path)) {
        remove_tree(path, depth - 1);
      } else {
        unlink(path);
      }
    }
    closedir(d);
  }
  rmdir(dir);
}

/* A copy directory holds the fixture and, with an agent, its directory. */
static void remove_copy_dir(const char *dir) { remove_tree(dir, 1); }

static int copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0) return -1;
  int outfd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (outfd < 0) {
    int e = errno;
    close(in);
    errno = e;
    return -1;
  }
  char buf[65536];
  int rc = 0;
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      rc = (int)r;
      break;
    }
    for (ssize_t off = 0; off < r;) {
      ssize_t w = write(outfd, buf + off, (size_t)(r - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        rc = -1;
        break;
      }
      off += w;
    }
    if (rc != 0) break;
  }
  int e = errno;
  close(in);
  if (close(outfd) != 0 && rc == 0) {
    e = errno;
    rc = -1;
  }
  errno = e;
  return rc;
}

/* Copies the regular files of `from` (symlinks followed; no dot files, no
 * subdirectories) into the new directory `to`. */
static int copy_dir_files(const char *from, const char *to) {
  if (mkdir(to, 0755) != 0) return -1;
  DIR *d = opendir(from);
  if (d == NULL) return -1;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    char src[PATH_MAX], dst[PATH_MAX];
    struct stat st;
    if (e->d_name[0] == '.') continue;
    if (fmt(src, sizeof src, "%s/%s", from, e->d_name) != 0 ||
        fmt(dst, sizeof dst, "%s/%s", to, e->d_name) != 0) {
      errno = ENAMETOOLONG;
      rc = -1;
    } else if (stat(src, &st) == 0 && S_ISREG(st.st_mode)) {
      rc = copy_file(src, dst);
    }
  }
  int err = errno;
  closedir(d);
  errno = err;
  return rc;
}

/* Copies host_script into a fresh ROOT/tmp/asyncunwind-fixtures/XXXXXX/,
 * and the files of agent_dir (if not NULL) into its asyncunwind-agent/. */
static int make_chroot_copy(const py_interp *p, const char *host_script,
                            const char *base, const char *agent_dir,
                            py_proc *out) {
  char dir[PATH_MAX], dst[PATH_MAX];
  if (fmt(dir, sizeof dir, "%s%s", p->chroot_root, CHROOT_COPY_DIR) != 0 ||
      (mkdir(dir, 0755) != 0 && errno != EEXIST) ||
      fmt(out->copy_dir, sizeof out->copy_dir, "%s/XXXXXX", dir) != 0 ||
      mkdtemp(out->copy_dir) == NULL) {
    int e = errno;
    out->copy_dir[0] = '\0';
    errno = e;
    return -1;
  }
  char agent_dst[PATH_MAX];
  if (fmt(dst, sizeof dst, "%s/%s", out->copy_dir, base) != 0 ||
      copy_file(host_script, dst) != 0 ||
      fmt(out->script, sizeof out->script, "%s%s/%s", CHROOT_COPY_DIR,
          out->copy_dir + strlen(dir), base) != 0 ||
      (agent_dir != NULL &&
       (fmt(agent_dst, sizeof agent_dst, "%s/%s", out->copy_dir,
            CHROOT_AGENT_NAME) != 0 ||
        copy_dir_files(agent_dir, agent_dst) != 0 ||
        fmt(out->agent_dir, sizeof out->agent_dir, "%s%s/%s",
            CHROOT_COPY_DIR, out->copy_dir + strlen(dir),
            CHROOT_AGENT_NAME) != 0))) {
    int e = errno;
    remove_copy_dir(out->copy_dir);
    out->copy_dir[0] = '\0';
    out->agent_dir[0] = '\0';
    errno = e;
    return -1;
  }
  return 0;
}

/* What the child reports on its error pipe when it cannot exec. */
enum { STAGE_MOUNT = 1, STAGE_EXEC = 2, STAGE_SETUP = 3 };
struct child_err {
  int stage;
  int err;
};

typedef struct spawn_plan {
  char *const *argv;
  char *const *envp;
  const char *bind_src; /* NULL: no mount namespace */
  const char *bind_dst;
  /* In the mount namespace, optional (NULL: not wanted): */
  const char *agent_src; /* bound read-only on agent_dst, made in a */
  const char *agent_mnt; /* tmpfs mounted on agent_mnt */
  const char *agent_dst;
  const char *tmp_dst; /* a tmpfs (writable_tmp) */
} spawn_plan;

/* Child side: only async-signal-safe calls. */
static void child_exec(const spawn_plan *plan, pid_t parent, int devnull,
                       int out_w, int err_w) {
  struct child_err ce = {STAGE_SETUP, 0};
  sigset_t none;
  sigemptyset(&none);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) goto fail;
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0) goto fail;
  if (plan->bind_src != NULL) {
    ce.stage = STAGE_MOUNT;
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(plan->bind_src, plan->bind_dst, NULL, MS_BIND, NULL) != 0) {
      goto fail;
    }
    if (plan->agent_src != NULL &&
        (mount("tmpfs", plan->agent_mnt, "tmpfs", MS_NOSUID | MS_NODEV,
               "mode=0755") != 0 ||
         mkdir(plan->agent_dst, 0755) != 0 ||
         mount(plan->agent_src, plan->agent_dst, NULL, MS_BIND, NULL) != 0 ||
         mount(NULL, plan->agent_dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY,
               NULL) != 0)) {
      goto fail;
    }
    if (plan->tmp_dst != NULL &&
        mount("tmpfs", plan->tmp_dst, "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=1777") != 0) {
      goto fail;
    }
  }
  ce.stage = STAGE_EXEC;
  execve(plan->argv[0], plan->argv, plan->envp);
fail:
  ce.err = errno;
  ssize_t w = write(err_w, &ce, sizeof ce);
  (void)w;
  _exit(127);
}

/* Forks and execs; on success out->pid and out->out_fd are set.  Returns 0,
 * -1 (error in out->error), or -2 when the child could not set up its mount
 * namespace (nothing left running; the caller may fall back). */
static int fork_exec(const spawn_plan *plan, py_proc *out, long deadline) {
  int outp[2], errp[2];
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    proc_error(out, "open /dev/null: %s", strerror(errno));
    return -1;
  }
  if (pipe2(outp, O_CLOEXEC) != 0) {
    proc_error(out, "pipe2: %s", strerror(errno));
    close(devnull);
    return -1;
  }
  if (pipe2(errp, O_CLOEXEC) != 0) {
    proc_error(out, "pipe2: %s", strerror(errno));
    close(devnull);
    close(outp[0]);
    close(outp[1]);
    return -1;
  }
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) child_exec(plan, parent, devnull, outp[1], errp[1]);
  int fork_errno = errno;
  close(devnull);
  close(outp[1]);
  close(errp[1]);
  if (pid < 0) {
    close(outp[0]);
    close(errp[0]);
    proc_error(out, "fork: %s", strerror(fork_errno));
    return -1;
  }
  /* EOF on the error pipe means execve succeeded. */
  struct child_err ce;
  ssize_t got = 0;
  for (;;) {
    struct pollfd pfd = {errp[0], POLLIN, 0};
    long left = deadline - now_ms();
    int r = poll(&pfd, 1, left > 0 ? (int)left : 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      got = -2; /* timeout or poll error */
      break;
    }
    got = read(errp[0], &ce, sizeof ce);
    if (got < 0 && errno == EINTR) continue;
    break;
  }
  close(errp[0]);
  if (got == 0) {
    out->pid = pid;
    out->out_fd = outp[0];
    return 0;
  }
  close(outp[0]);
  int status = kill_and_reap(pid, PY_KILL_TIMEOUT_MS);
  (void)status;
  if (got == (ssize_t)sizeof ce) {
    if (ce.stage == STAGE_MOUNT) {
      proc_error(out,
                 "private mount namespace / bind mount of %s on %s%s%s%s: "
                 "%s",
                 plan->bind_src, plan->bind_dst,
                 plan->agent_src != NULL ? " / agent directory on " : "",
                 plan->agent_src != NULL ? plan->agent_dst : "",
                 plan->tmp_dst != NULL ? " / tmpfs on /tmp" : "",
                 strerror(ce.err));
      return -2;
    }
    proc_error(out, "%s %s: %s",
               ce.stage == STAGE_EXEC ? "execve" : "child setup for",
               plan->argv[0], strerror(ce.err));
  } else {
    proc_error(out, "child of %s did not exec in time", plan->argv[0]);
  }
  return -1;
}

/* Reads the first line, and nothing after it; expects "READY <pid>". */
static int wait_ready(py_proc *out, long deadline) {
  char line[256];
  size_t len = 0;
  for (;;) {
    struct pollfd pfd = {out->out_fd, POLLIN, 0};
    long left = deadline - now_ms();
    if (left <= 0) {
      proc_error(out, "no READY line within %d ms (got %zu bytes)",
                 PY_READY_TIMEOUT_MS, len);
      return -1;
    }
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      proc_error(out, "poll: %s", strerror(errno));
      return -1;
    }
    if (r == 0) continue;
    /* One byte at a time: whatever follows the READY line stays in the
     * pipe for the caller (a fixture may print more at once). */
    ssize_t n = read(out->out_fd, line + len, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      proc_error(out, "read: %s", strerror(errno));
      return -1;
    }
    if (n == 0) {
      char st[96];
      describe_status(kill_and_reap(out->pid, PY_KILL_TIMEOUT_MS), st,
                      sizeof st);
      out->pid = -1;
      line[len] = '\0';
      proc_error(out, "fixture exited before READY (%s); output: \"%s\"", st,
                 line);
      return -1;
    }
    len += (size_t)n;
    line[len] = '\0';
    char *nl = strchr(line, '\n');
    if (nl != NULL) {
      *nl = '\0';
      long pid;
      char extra;
      if (sscanf(line, "READY %ld%c", &pid, &extra) != 1) {
        proc_error(out, "expected \"READY <pid>\", got \"%s\"", line);
        return -1;
      }
      if (pid != (long)out->pid) {
        proc_error(out, "READY pid %ld is not the spawned pid %ld", pid,
                   (long)out->pid);
        return -1;
      }
      return 0;
    }
    if (len == sizeof line - 1) {
      proc_error(out, "first line too long: \"%.60s...\"", line);
      return -1;
    }
  }
}

/* Builds argv = prefix + script + args, and envp = environ - PYTHON*
 * + extra (a PYTHONPATH among extra comes after agent_path, if any, in
 * *pythonpath, a malloc'd "PYTHONPATH=..." the caller frees). */
static int build_vectors(const py_interp *p, const char *script,
                         const char *const *args, const char *const *extra,
                         const char *agent_path, char ***argv_out,
                         char ***envp_out, char **pythonpath) {
  size_t nargs = 0, nenv = 0, nextra = 0;
  while (args != NULL && args[nargs] != NULL) nargs++;
  while (environ != NULL && environ[nenv] != NULL) nenv++;
  while (extra != NULL && extra[nextra] != NULL) nextra++;
  *pythonpath = NULL;
  if (agent_path != NULL) {
    const char *more = NULL;
    for (size_t i = 0; i < nextra; i++) {
      if (strncmp(extra[i], "PYTHONPATH=", 11) == 0) more = extra[i] + 11;
    }
    size_t n = 12 + strlen(agent_path) + (more ? 1 + strlen(more) : 0);
    *pythonpath = malloc(n);
    if (*pythonpath == NULL) return -1;
    snprintf(*pythonpath, n, "PYTHONPATH=%s%s%s", agent_path,
             more && *more ? ":" : "", more ? more : "");
  }
  char **argv = calloc((size_t)p->argc + 2 + nargs, sizeof *argv);
  char **envp = calloc(nenv + nextra + 2, sizeof *envp);
  if (argv == NULL || envp == NULL) {
    free(argv);
    free(envp);
    free(*pythonpath);
    *pythonpath = NULL;
    return -1;
  }
  size_t k = 0;
  for (int i = 0; i < p->argc; i++) argv[k++] = (char *)p->argv[i];
  argv[k++] = (char *)script;
  for (size_t i = 0; i < nargs; i++) argv[k++] = (char *)args[i];
  argv[k] = NULL;
  k = 0;
  for (size_t i = 0; i < nenv; i++) {
    if (strncmp(environ[i], "PYTHON", 6) != 0) envp[k++] = environ[i];
  }
  for (size_t i = 0; i < nextra; i++) {
    if (*pythonpath == NULL || strncmp(extra[i], "PYTHONPATH=", 11) != 0) {
      envp[k++] = (char *)extra[i];
    }
  }
  if (*pythonpath != NULL) envp[k++] = *pythonpath;
  envp[k] = NULL;
  *argv_out = argv;
  *envp_out = envp;
  return 0;
}

/* Runs script; `plan` gives the mounts (argv and envp are filled in here),
 * opts the extra environment, out->agent_dir the agent's path. */
static int spawn_with(const py_interp *p, const char *script,
                      const char *const *args, const py_spawn_opts *opts,
                      spawn_plan plan, py_proc *out, long deadline) {
  if (fmt(out->script, sizeof out->script, "%s", script) != 0) {
    proc_error(out, "script path too long");
    return -1;
  }
  char **argv, **envp, *pythonpath;
  if (build_vectors(p, out->script, args, opts->env,
                    out->agent_dir[0] ? out->agent_dir : NULL, &argv, &envp,
                    &pythonpath) != 0) {
    proc_error(out, "out of memory");
    return -1;
  }
  plan.argv = argv;
  plan.envp = envp;
  int rc = fork_exec(&plan, out, deadline);
  free(argv);
  free(envp);
  free(pythonpath);
  return rc;
}

/* The one host directory that the files of `dir` resolve into (symlinks
 * followed), as Bazel's runfiles do.  Returns 0, or -1 (error in out) when
 * there is none or they are spread out. */
static int files_home_dir(const char *dir, char *home, size_t n,
                          py_proc *out) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    proc_error(out, "agent directory %s: %s", dir, strerror(errno));
    return -1;
  }
  int files = 0, rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    char path[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (e->d_name[0] == '.' || fmt(path, sizeof path, "%s/%s", dir,
                                   e->d_name) != 0 ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
        realpath(path, real) == NULL) {
      continue;
    }
    *strrchr(real, '/') = '\0';
    if (files++ == 0) {
      if (fmt(home, n, "%s", real[0] ? real : "/") != 0) rc = -1;
    } else if (strcmp(home, real[0] ? real : "/") != 0) {
      proc_error(out, "the files of %s live in %s and %s", dir, home, real);
      rc = -1;
    }
  }
  closedir(d);
  if (rc == 0 && files == 0) {
    proc_error(out, "no files in agent directory %s", dir);
    rc = -1;
  }
  return rc;
}

int py_spawn_fixture(const py_interp *p, const char *fixture_path,
                     const char *const *args, py_proc *out) {
  return py_spawn_fixture_opts(p, fixture_path, args, NULL, out);
}

int py_spawn_fixture_opts(const py_interp *p, const char *fixture_path,
                          const char *const *args, const py_spawn_opts *opts,
                          py_proc *out) {
  static const py_spawn_opts none = {0};
  if (opts == NULL) opts = &none;
  memset(out, 0, sizeof *out);
  out->pid = -1;
  out->out_fd = -1;
  out->interp = p;
  long start = now_ms();
  long deadline = start + PY_READY_TIMEOUT_MS;
  if (!p->available) {
    proc_error(out, "%s is unavailable: %s", p->name, p->reason);
    return -1;
  }
  if (access(fixture_path, R_OK) != 0) {
    proc_error(out, "fixture %s: %s", fixture_path, strerror(errno));
    return -1;
  }
  if (opts->agent_dir != NULL && !is_dir(opts->agent_dir)) {
    proc_error(out, "agent directory %s: not a directory", opts->agent_dir);
    return -1;
  }
  spawn_plan plan = {0};
  int rc;
  if (p->kind != PY_KIND_SID_CHROOT) {
    if (opts->agent_dir != NULL &&
        realpath(opts->agent_dir, out->agent_dir) == NULL) {
      proc_error(out, "realpath %s: %s", opts->agent_dir, strerror(errno));
      return -1;
    }
    rc = spawn_with(p, fixture_path, args, opts, plan, out, deadline);
  } else {
    /* Make the fixture visible inside the chroot: bind its directory on
     * ROOT/mnt in the child's own mount namespace (and the agent's on
     * ROOT/srv/asyncunwind-agent, and a tmpfs on ROOT/tmp, if asked), else
     * copy them in. */
    char real[PATH_MAX], dir[PATH_MAX], dst[PATH_MAX], script[PATH_MAX];
    char agent_home[PATH_MAX], agent_mnt[PATH_MAX], agent_dst[PATH_MAX];
    char tmp_dst[PATH_MAX];
    if (realpath(fixture_path, real) == NULL) {
      proc_error(out, "realpath %s: %s", fixture_path, strerror(errno));
      return -1;
    }
    const char *slash = strrchr(real, '/');
    const char *base = slash + 1;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - real), real);
    if (dir[0] == '\0') snprintf(dir, sizeof dir, "/");
    if (fmt(dst, sizeof dst, "%s%s", p->chroot_root, CHROOT_BIND_DIR) != 0 ||
        fmt(script, sizeof script, "%s/%s", CHROOT_BIND_DIR, base) != 0 ||
        fmt(agent_mnt, sizeof agent_mnt, "%s%s", p->chroot_root,
            CHROOT_AGENT_MNT) != 0 ||
        fmt(agent_dst, sizeof agent_dst, "%s/%s", agent_mnt,
            CHROOT_AGENT_NAME) != 0 ||
        fmt(tmp_dst, sizeof tmp_dst, "%s%s", p->chroot_root, CHROOT_TMP) !=
            0) {
      proc_error(out, "path too long");
      return -1;
    }
    plan.bind_src = dir;
    plan.bind_dst = dst;
    if (opts->writable_tmp) plan.tmp_dst = tmp_dst;
    const char *force_copy = getenv("ASYNCUNWIND_FIXTURE_COPY");
    if (force_copy != NULL && strcmp(force_copy, "1") == 0) {
      rc = -2;
      proc_error(out, "ASYNCUNWIND_FIXTURE_COPY=1");
    } else if (!is_dir(dst)) {
      rc = -2;
      proc_error(out, "no directory %s", dst);
    } else if (opts->agent_dir != NULL &&
               files_home_dir(opts->agent_dir, agent_home, sizeof agent_home,
                              out) != 0) {
      rc = -2; /* why is in out->error */
    } else if (opts->agent_dir != NULL && !is_dir(agent_mnt)) {
      rc = -2;
      proc_error(out, "no directory %s", agent_mnt);
    } else {
      if (opts->agent_dir != NULL) {
        plan.agent_src = agent_home;
        plan.agent_mnt = agent_mnt;
        plan.agent_dst = agent_dst;
        snprintf(out->agent_dir, sizeof out->agent_dir, "%s",
                 PY_CHROOT_AGENT_DIR);
      }
      rc = spawn_with(p, script, args, opts, plan, out, deadline);
    }
    if (rc == -2) {
      char why[sizeof out->error];
      snprintf(why, sizeof why, "%s", out->error);
      out->agent_dir[0] = '\0';
      if (make_chroot_copy(p, real, base, opts->agent_dir, out) != 0) {
        proc_error(out,
                   "cannot make %s visible in %s: %s; and copying it into "
                   "%s%s failed: %s",
                   fixture_path, p->chroot_root, why, p->chroot_root,
                   CHROOT_COPY_DIR, strerror(errno));
        return -1;
      }
      char copied[PATH_MAX];
      snprintf(copied, sizeof copied, "%s", out->script);
      spawn_plan direct = {0};
      rc = spawn_with(p, copied, args, opts, direct, out, deadline);
    }
  }
  if (rc != 0) {
    if (out->copy_dir[0] != '\0') remove_copy_dir(out->copy_dir);
    out->copy_dir[0] = '\0';
    return -1;
  }
  if (wait_ready(out, deadline) != 0) {
    char saved[sizeof out->error];
    memcpy(saved, out->error, sizeof saved);
    py_kill(out);
    memcpy(out->error, saved, sizeof saved);
    return -1;
  }
  out->ready_ms = now_ms() - start;
  return 0;
}

static int is_sleep_syscall(long nr) {
  switch (nr) {
#ifdef SYS_clock_nanosleep
    case SYS_clock_nanosleep:
#endif
#ifdef SYS_nanosleep
    case SYS_nanosleep:
#endif
#ifdef SYS_select
    case SYS_select:
#endif
#ifdef SYS_pselect6
    case SYS_pselect6:
#endif
    /* An idle asyncio loop waits in epoll (selectors.EpollSelector) or
     * poll; a thread blocked on a lock, a queue or an event in futex. */
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
#ifdef SYS_epoll_pwait
    case SYS_epoll_pwait:
#endif
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
#endif
#ifdef SYS_poll
    case SYS_poll:
#endif
#ifdef SYS_ppoll
    case SYS_ppoll:
#endif
#ifdef SYS_futex
    case SYS_futex:
#endif
      return 1;
    default:
      return 0;
  }
}

/* 1: every task sleeps; 0: not yet; -1: error (out->error). */
static int all_tasks_sleeping(py_proc *proc) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/task", (long)proc->pid);
  DIR *d = opendir(path);
  if (d == NULL) {
    proc_error(proc, "opendir %s: %s", path, strerror(errno));
    return -1;
  }
  int result = 1, tasks = 0;
  struct dirent *e;
  while (result == 1 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char sc[128], buf[64];
    snprintf(sc, sizeof sc, "%s/%.20s/syscall", path, e->d_name);
    int fd = open(sc, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; /* the task just exited */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    char *end;
    long nr = strtol(buf, &end, 10);
    tasks++;
    if (end == buf || !is_sleep_syscall(nr)) result = 0; /* "running", ... */
  }
  closedir(d);
  if (result == 1 && tasks == 0) {
    proc_error(proc, "no readable task under %s", path);
    return -1;
  }
  return result;
}

int py_wait_sleeping(py_proc *proc, int timeout_ms) {
  if (proc->pid <= 0) {
    proc_error(proc, "no process");
    return -1;
  }
  long deadline = now_ms() + timeout_ms;
  for (;;) {
    int r = all_tasks_sleeping(proc);
    if (r == 1) return 0;
    if (r < 0) return -1;
    if (now_ms() >= deadline) {
      proc_error(proc, "threads of pid %ld not all asleep after %d ms",
                 (long)proc->pid, timeout_ms);
      return -1;
    }
    sleep_ms(5);
  }
}

int py_exe_matches(py_proc *proc) {
  char link[64];
  struct stat a, b;
  snprintf(link, sizeof link, "/proc/%ld/exe", (long)proc->pid);
  if (stat(link, &a) != 0) {
    proc_error(proc, "stat %s: %s", link, strerror(errno));
    return 0;
  }
  if (stat(proc->interp->exe, &b) != 0) {
    proc_error(proc, "stat %s: %s", proc->interp->exe, strerror(errno));
    return 0;
  }
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    char target[PATH_MAX];
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    proc_error(proc, "%s is %s, not %s", link, target, proc->interp->exe);
    return 0;
  }
  return 1;
}

int py_kill(py_proc *proc) {
  int rc = 0;
  if (proc->pid > 0) {
    if (kill_and_reap(proc->pid, PY_KILL_TIMEOUT_MS) < 0 && errno != ECHILD) {
      proc_error(proc, "pid %ld not reaped within %d ms", (long)proc->pid,
                 PY_KILL_TIMEOUT_MS);
      rc = -1;
    }
    proc->pid = -1;
  }
  if (proc->out_fd >= 0) {
    close(proc->out_fd);
    proc->out_fd = -1;
  }
  if (proc->copy_dir[0] != '\0') {
    remove_copy_dir(proc->copy_dir);
    proc->copy_dir[0] = '\0';
  }
  return rc;
}
