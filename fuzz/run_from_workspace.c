/* See run_from_workspace.h. */
#define _POSIX_C_SOURCE 200809L /* chdir() under -std=c11 */

#include "fuzz/run_from_workspace.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void au_fuzz_run_from_workspace(void) {
  /* `bazel run` starts binaries in their runfiles tree and records the
   * user's directory here; `bazel test` and direct runs leave it unset. */
  const char *dir = getenv("BUILD_WORKING_DIRECTORY");
  if (dir == NULL || dir[0] == '\0') return;
  if (chdir(dir) != 0) {
    /* Not fatal: paths then resolve in the runfiles tree, as without us. */
    perror("au_fuzz_run_from_workspace: chdir($BUILD_WORKING_DIRECTORY)");
  }
}
