"""Fuzz targets: one libFuzzer-style harness, three ways to run it.

A harness is a C file that defines

    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

and, optionally, LLVMFuzzerInitialize.  Give it this one line so that
`bazel run` resolves relative paths against your directory:

    #include "fuzz/run_from_workspace.h"
    int LLVMFuzzerInitialize(int *argc, char ***argv) {
      (void)argc; (void)argv;
      au_fuzz_run_from_workspace();  /* <- the line */
      return 0;
    }

In fuzz/BUILD:

    au_fuzz_target(
        name = "resolver",
        srcs = ["resolver_fuzz.c"],
        deps = ["//core"],
        dict = "resolver.dict",  # optional: fuzz/resolver.dict, -dict= / -x
    )

and put seed inputs in corpus/resolver/ (corpus/BUILD needs no edit).  That
gives:

  resolver_regression  cc_test, any compiler: replays corpus/resolver/.
                       Part of plain `bazel test //...`.
  resolver_fuzzer      the fuzzer (tag au_fuzzer).  libFuzzer under
                       --config=fuzz, AFL++ persistent mode under
                       --config=afl.  Needs clang; skipped silently under gcc.

  resolver_afl_mutator.so  with mutator = "...": the target's mutator as
                       AFL++'s custom mutator (tools/fuzz.sh -e afl uses it).

    mkdir -p NEW_DIR
    bazel run --config=fuzz //fuzz:resolver_fuzzer -- NEW_DIR corpus/resolver
    tools/fuzz.sh -t 60 resolver          # what CI runs (libFuzzer)
    tools/fuzz.sh -e afl -t 60 resolver   # AFL++

Give NEW_DIR first (it must exist): libFuzzer writes new inputs into its
first directory, and corpus/ is committed.  To replay one input:
bazel-bin/fuzz/resolver_regression path/to/crash-file.

Fuzzing is documented in README.md ("Fuzz", and "OSS-Fuzz" for the build
without Bazel).  oss-fuzz/fuzz_targets.py evaluates this file and
fuzz/BUILD as Python to find every target: keep both within what Starlark
and Python share (no Starlark-only builtins), and put clang-only copts
under select() on //fuzz:compiler_clang, the branch it takes.
tools/ossfuzz_check.sh fails if what it finds differs from `bazel query`.
"""

# config_settings in fuzz/BUILD (the engine one follows .bazelrc's --define).
_ENGINE_AFL = "//fuzz:engine_afl"
_CLANG = "//fuzz:compiler_clang"
_INCOMPATIBLE = "//fuzz:incompatible"

# Linked explicitly: under Bazel, afl-cc never sees -fsanitize=fuzzer (it
# sits in an @params file that afl-cc does not read).
_AFL_DRIVER = "/usr/lib/afl/libAFLDriver.a"

def _file_path(label):
    """Workspace-relative path of a source file label (for CI scripts)."""
    if label.startswith("//"):
        pkg, _, target = label[2:].partition(":")
        return pkg + "/" + target
    return native.package_name() + "/" + label.lstrip(":")

def au_fuzz_target(name, srcs, deps = [], corpus = None, dict = None, mutator = None,
                   regression_size = "small"):
    """Declares <name>_fuzzer and <name>_regression from one harness.

    Args:
      name: target name; the seed corpus is corpus/<name>/.
      srcs: the harness source(s).
      deps: libraries the harness uses.
      corpus: another corpus/ subdirectory to use instead of <name>.
      dict: optional dictionary file (label) passed as -dict= / -x.
      mutator: optional source in srcs that defines LLVMFuzzerCustomMutator
        and LLVMFuzzerCustomCrossOver (fuzz/mutator.h): it is also built,
        with afl_mutator.c, as <name>_afl_mutator.so, which tools/fuzz.sh
        gives AFL++ as its custom mutator.
      regression_size: the <name>_regression test's size: "small" (60 s)
        suits a replay of small inputs; a corpus of whole snapshots replayed
        under ASan needs "medium" (300 s).
    """
    corpus_name = corpus or name
    corpus_dir = "corpus/" + corpus_name
    corpus_files = "//corpus:" + corpus_name

    # alwayslink: under --config=afl, main() comes from libAFLDriver.a at
    # the end of the link line and refers to LLVMFuzzerTestOneInput only
    # weakly, so the harness object would be dropped and main would call
    # address 0.
    native.cc_library(
        name = name + "_harness",
        srcs = srcs,
        deps = deps + ["//fuzz:run_from_workspace"],
        alwayslink = True,
    )

    # CI (tools/fuzz.sh) reads the seed corpus and dictionary from the tags.
    tags = ["au_fuzzer", "au_corpus=" + corpus_dir]
    if dict:
        tags.append("au_dict=" + _file_path(dict))
    if mutator:
        # Loaded into afl-fuzz itself, so built without AFL's
        # instrumentation: in the default configuration (fuzz.sh builds it
        # so), like any other target of //... .
        native.cc_binary(
            name = name + "_afl_mutator.so",
            srcs = [mutator, "afl_mutator.c"],
            deps = deps,
            linkshared = True,
        )
        tags.append("au_afl_mutator=" + native.package_name() + "/" + name + "_afl_mutator.so")

    native.cc_binary(
        name = name + "_fuzzer",
        deps = [":" + name + "_harness"],
        linkopts = select({
            _ENGINE_AFL: [_AFL_DRIVER],
            # --config=fuzz, and any other clang build (e.g. --config=clang).
            "//conditions:default": ["-fsanitize=fuzzer"],
        }),
        # Both engines need clang (afl-clang-fast reports itself as clang);
        # under gcc the target is skipped silently by `//...`.
        target_compatible_with = select({
            _CLANG: [],
            "//conditions:default": [_INCOMPATIBLE],
        }),
        data = [corpus_files] + ([dict] if dict else []),
        tags = tags,
    )

    native.cc_test(
        name = name + "_regression",
        deps = [
            ":" + name + "_harness",
            "//fuzz:replay_main",
        ],
        args = [corpus_dir],
        data = [corpus_files],
        # A replay of a few hundred small inputs: well under a second, a few
        # under ASan; a replay that hangs should fail within a minute.
        size = regression_size,
        tags = ["au_fuzz_regression"],
    )

def au_corpus_filegroups():
    """In corpus/BUILD: one public filegroup per subdirectory, named after it.

    So a new corpus/<name>/ needs no BUILD edit: Bazel re-evaluates these
    globs whenever an entry is added to or removed from corpus/.
    """
    files = native.glob(["*"])
    for entry in native.glob(["*"], exclude_directories = 0):
        if entry in files:
            continue
        native.filegroup(
            name = entry,
            srcs = native.glob([entry + "/**"]),
            visibility = ["//visibility:public"],
        )
