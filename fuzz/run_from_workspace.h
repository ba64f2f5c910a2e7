/* Lets `bazel run //fuzz:<name>_fuzzer -- NEW_DIR corpus/<name>` resolve
 * relative paths against the directory the user ran bazel from, as any
 * command would, instead of the fuzzer's runfiles tree.  Call it first
 * thing in LLVMFuzzerInitialize: libFuzzer and libAFLDriver call that hook
 * before they open any corpus directory or write any artifact. */
#ifndef AU_FUZZ_RUN_FROM_WORKSPACE_H
#define AU_FUZZ_RUN_FROM_WORKSPACE_H

/* chdir()s to $BUILD_WORKING_DIRECTORY when `bazel run` set it; otherwise
 * (direct runs, afl-fuzz, `bazel test`) it does nothing. */
void au_fuzz_run_from_workspace(void);

#endif
