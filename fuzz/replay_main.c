/* main() of every <name>_regression test (see fuzz.bzl): replays each input
 * of a fuzz corpus through the harness's LLVMFuzzerTestOneInput, so the
 * corpus is a regression suite under plain `bazel test` with any compiler.
 *
 * usage: replay PATH...   (each PATH a file, or a directory walked
 *                          recursively; names starting with '.' are skipped)
 *
 * A crash or sanitizer report fails the test by itself; we print which
 * input it was.  A harness returning anything but 0 or -1 (libFuzzer's two
 * legal values), an unreadable input, a missing PATH, or no input at all
 * counts as a failure: an empty replay must never pass silently.
 * The last line is "N passed, M failed". */
#define _XOPEN_SOURCE 700 /* scandir, sigaction, fchdir under -std=c11 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a harness, hence weak: NULL when the harness has none. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Present only when linked with ASan/UBSan (gcc's or clang's runtime). */
void __sanitizer_set_death_callback(void (*callback)(void))
    __attribute__((weak));

static const char *current; /* the input being replayed, for crash notes */
static unsigned long passed, failed;

/* Async-signal-safe: runs from signal handlers and sanitizer deaths. */
static void put_stderr(const char *s) {
  ssize_t r = write(2, s, strlen(s));
  (void)r;
}

static void name_current_input(void) {
  const char *name = current;
  if (name == NULL) return;
  current = NULL; /* once, though a sanitizer death may end in SIGABRT */
  put_stderr("replay: crashed on input ");
  put_stderr(name);
  put_stderr("\n");
}

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static struct sigaction previous[sizeof fatal_signals / sizeof *fatal_signals];

/* Names the input, then hands the signal to whoever had it before (ASan
 * prints its own report there) or to the default action. */
static void on_fatal_signal(int sig, siginfo_t *info, void *uc) {
  name_current_input();
  for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++) {
    if (fatal_signals[i] != sig) continue;
    const struct sigaction *old = &previous[i];
    if (old->sa_flags & SA_SIGINFO) {
      old->sa_sigaction(sig, info, uc);
      return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
      old->sa_handler(sig);
      return;
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_crash_notes(void) {
  if (__sanitizer_set_death_callback) {
    __sanitizer_set_death_callback(name_current_input);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++) {
    sigaction(fatal_signals[i], &sa, &previous[i]);
  }
}

static void fail(const char *path, const char *why) {
  printf("FAIL %s: %s\n", path, why);
  fflush(stdout);
  failed++;
}

static void replay_file(const char *path, off_t size) {
  /* An exact-size heap copy, so ASan catches reads past the input. */
  uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
  FILE *f = fopen(path, "rb");
  if (buf == NULL || f == NULL ||
      fread(buf, 1, (size_t)size, f) != (size_t)size) {
    fail(path, buf == NULL ? "out of memory" : strerror(errno));
  } else {
    current = path;
    int rc = LLVMFuzzerTestOneInput(buf, (size_t)size);
    current = NULL;
    if (rc == 0 || rc == -1) {
      passed++;
    } else {
      char why[64];
      snprintf(why, sizeof why, "LLVMFuzzerTestOneInput returned %d", rc);
      fail(path, why);
    }
  }
  if (f != NULL) fclose(f);
  free(buf);
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

static void replay_path(const char *path) {
  struct stat st;
  /* stat(), not lstat() or d_type: runfiles are symlinks. */
  if (stat(path, &st) != 0) {
    fail(path, strerror(errno));
  } else if (S_ISREG(st.st_mode)) {
    replay_file(path, st.st_size);
  } else if (S_ISDIR(st.st_mode)) {
    struct dirent **names;
    int n = scandir(path, &names, not_hidden, alphasort); /* stable order */
    if (n < 0) {
      fail(path, strerror(errno));
      return;
    }
    for (int i = 0; i < n; i++) {
      size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
      char *child = malloc(len);
      if (child != NULL) {
        snprintf(child, len, "%s/%s", path, names[i]->d_name);
        replay_path(child);
        free(child);
      } else {
        fail(path, "out of memory");
      }
      free(names[i]);
    }
    free(names);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  char **paths = argv + 1; /* the hook may change argv: keep ours */
  int npaths = argc - 1;
  install_crash_notes();
  if (LLVMFuzzerInitialize) {
    /* The hook may chdir (run_from_workspace.h); our paths are relative to
     * where we started, so come back afterwards. */
    int start_dir = open(".", O_RDONLY | O_DIRECTORY);
    LLVMFuzzerInitialize(&argc, &argv);
    if (start_dir >= 0) {
      if (fchdir(start_dir) != 0) perror("replay: fchdir");
      close(start_dir);
    }
  }
  for (int i = 0; i < npaths; i++) {
    unsigned long before = passed + failed;
    replay_path(paths[i]);
    if (passed + failed == before) {
      fail(paths[i], "no inputs (an empty corpus must not pass)");
    }
  }
  printf("%lu passed, %lu failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
