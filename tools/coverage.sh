#!/usr/bin/env bash
# Line and branch coverage of core/ by the whole test suite, with clang's
# source-based coverage (-fprofile-instr-generate -fcoverage-mapping).
#
#   tools/coverage.sh [-o DIR] [-r] [-- EXTRA BAZEL TEST ARGS]
#
# -r: no test run, only the report of the profiles already in DIR/raw.
# What runs: `bazel test //...` built with --config=coverage (.bazelrc), which
# includes every <name>_regression test, so every committed corpus/ is
# replayed too.  Every instrumented process (test binaries, and the
# asyncunwind binary the shell tests run) writes a raw profile into
# DIR/raw; they are merged into DIR/core.profdata and reported per file of
# core/ with llvm-cov (lines and branches), then a TOTAL line.  DIR defaults
# to a fresh temporary directory; DIR/report.txt keeps the table.
# COVERAGE_OUTPUT_BASE=DIR gives the run a Bazel server of its own.
#
# Why not `bazel coverage`: Bazel 4 drives it through gcov-style lcov
# merging (third_party's stub), which knows nothing of clang's profiles;
# a plain test run with LLVM_PROFILE_FILE is all source-based coverage
# needs.  Test results are never taken from the cache (a cached test
# writes no profile).
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
report_only=
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    -r) report_only=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "usage: tools/coverage.sh [-o DIR] [-r] [-- BAZEL ARGS]" >&2; exit 2 ;;
  esac
done
# The tools of the clang that compiles (14 on bookworm); plain names too.
find_tool() {
  local t
  for t in "$1-14" "$1"; do command -v "$t" >/dev/null && { echo "$t"; return; }; done
  echo "tools/coverage.sh: $1 not found (apt-get install llvm-14)" >&2
  exit 1
}
profdata=$(find_tool llvm-profdata)
cov=$(find_tool llvm-cov)

[ -n "$out" ] || out=$(mktemp -d /tmp/asyncunwind-coverage.XXXXXX)
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
[ -n "$report_only" ] || rm -rf "$out/raw"
mkdir -p "$out/raw"

# %p: one file per process (tests start the tool many times); %m: one per
# instrumented binary, merged across runs of it by the runtime itself.
# The sandbox may write there (--sandbox_writable_path).
# COVERAGE_OUTPUT_BASE: a Bazel output base of its own (a second server),
# so that the long run does not hold the workspace's server.
bazel=(bazel)
[ -z "${COVERAGE_OUTPUT_BASE:-}" ] || bazel+=(--output_base="$COVERAGE_OUTPUT_BASE")
# With a second output base, the workspace's bazel-<name> symlink points
# into the other one, where //... would find Bazel's own packages: leave it
# out (each top folder is named instead), and make no symlinks of this run's own (--symlink_prefix=/).
targets=(//:all)
for d in */; do
  case "$d" in bazel-*) continue ;; esac
  [ -n "$(find "$d" -name BUILD -print -quit)" ] && targets+=("//${d%/}/...")
done
links=()
[ -z "${COVERAGE_OUTPUT_BASE:-}" ] || links=(--symlink_prefix=/)
status=0
[ -n "$report_only" ] || nice -n 10 "${bazel[@]}" test --config=coverage --jobs=2 --nocache_test_results "${links[@]}" \
  --sandbox_writable_path="$out/raw" \
  --test_env=LLVM_PROFILE_FILE="$out/raw/%p-%m.profraw" "$@" -- "${targets[@]}" || status=$?
if [ "$status" -ne 0 ]; then
  echo "tools/coverage.sh: some tests failed (exit $status); the report covers what ran" >&2
fi

shopt -s nullglob
raws=("$out"/raw/*.profraw)
[ ${#raws[@]} -gt 0 ] || { echo "tools/coverage.sh: no profiles written" >&2; exit 1; }
"$profdata" merge -sparse "${raws[@]}" -o "$out/core.profdata"

# Every instrumented executable of the coverage build: llvm-cov reads the
# coverage mapping from each binary that links the core.
bin=$("${bazel[@]}" info --config=coverage bazel-bin)
objects=()
while IFS= read -r f; do
  # linked programs only (objects repeat what the programs hold)
  if readelf -h "$f" 2>/dev/null | grep -Eq 'Type: +(EXEC|DYN)' &&
    readelf -S "$f" 2>/dev/null | grep -q __llvm_covmap; then
    [ ${#objects[@]} -eq 0 ] && objects+=("$f") || objects+=(-object "$f")
  fi
done < <(find "$bin" -type f -perm -u+x ! -name '*.so' ! -name '*.o' ! -name '*.a' ! -name '*.lo' \
  ! -name '*.sh' ! -path '*.runfiles/*' ! -path '*/_objs/*' | sort)
[ ${#objects[@]} -gt 0 ] || { echo "tools/coverage.sh: no instrumented binaries under $bin" >&2; exit 1; }

# Paths in the mapping are relative to Bazel's execution root.
execroot=$("${bazel[@]}" info --config=coverage execution_root)
"$cov" report -instr-profile="$out/core.profdata" "${objects[@]}" \
  -compilation-dir="$execroot" -show-branch-summary -show-region-summary=false \
  -show-instantiation-summary=false \
  -ignore-filename-regex='(^|/)(bench|cli|fuzz|tests|tools|third_party|external)/' |
  tee "$out/report.txt"
echo "profiles: $out (report.txt, core.profdata)"
exit "$status"
