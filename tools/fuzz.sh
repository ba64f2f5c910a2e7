#!/bin/bash
# Run one fuzz target for a bounded time, with libFuzzer or AFL++.
# .ci/run uses it for every target; humans use it the same way.
#
#   tools/fuzz.sh [-e libfuzzer|afl] [-t SECONDS] [-o DIR] [-n] TARGET [-- ARGS]
#
#   TARGET      a name given to au_fuzz_target in fuzz/BUILD (resolver), or
#               a full label of a *_fuzzer (//fuzz:resolver_fuzzer)
#   -e ENGINE   libfuzzer (default; --config=fuzz, ASan+UBSan) or afl
#               (--config=afl, afl-fuzz)
#   -t SECONDS  how long to fuzz (default 60)
#   -o DIR      keep the run's corpus, artifacts and log in DIR (default: a
#               temporary directory, removed if the run is clean)
#   -n          do not build (the caller already built with the config)
#   ARGS        passed on to the fuzzer (libFuzzer) or afl-fuzz
#
# The seed corpus (corpus/<name>/) is only read: new inputs go to DIR.
# Exit status: 0 clean; 1 on a crash, leak, timeout, OOM or failure to
# start, after printing the report and where the reproducer is.
set -euo pipefail

engine=libfuzzer seconds=60 out="" build=1
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "e:t:o:nh" opt; do
  case "$opt" in
    e) engine="$OPTARG" ;;
    t) seconds="$OPTARG" ;;
    o) out="$OPTARG" ;;
    n) build=0 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
target="$1"
shift
[[ "${1:-}" == "--" ]] && shift
case "$engine" in
  libfuzzer) config=fuzz ;;
  afl) config=afl ;;
  *) usage ;;
esac
[[ "$target" == //* ]] || target="//fuzz:${target}_fuzzer"

cd "$(dirname "$0")/.."  # the workspace root: corpus paths are relative

# au_fuzz_target records the seed corpus and dictionary in the tags.
rule="$(bazel query --output=build "$target" 2>&1)" || {
  grep "ERROR" <<<"$rule" >&2 || true
  echo "fuzz.sh: cannot query $target" >&2
  exit 2
}
tag() {  # prints the value of tag NAME=..., or nothing
  { grep -o "\"$1=[^\"]*\"" <<<"$rule" || true; } | head -n1 |
    sed 's/^"[^=]*=//; s/"$//'
}
corpus="$(tag au_corpus)"
dict="$(tag au_dict)"
afl_mutator="$(tag au_afl_mutator)"  # a structure-aware mutator, for AFL++
[[ -n "$corpus" ]] || { echo "fuzz.sh: $target is not an au_fuzz_target fuzzer" >&2; exit 2; }

if [[ "$build" == 1 ]]; then
  bazel build --config="$config" "$target"
  # Loaded into afl-fuzz itself: the default configuration, no AFL.
  if [[ "$engine" == afl && -n "$afl_mutator" ]]; then
    bazel build "//${afl_mutator%/*}:${afl_mutator##*/}"
  fi
fi
pkg="${target#//}"
pkg="${pkg%%:*}"
bin="$(bazel info --config="$config" bazel-bin 2>/dev/null)/$pkg/${target##*:}"
[[ -x "$bin" ]] || { echo "fuzz.sh: $bin not built (--config=$config)" >&2; exit 2; }

if [[ -n "$out" ]]; then
  mkdir -p "$out"
  work="$(cd "$out" && pwd)"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")"
fi
log="$work/$engine.log"
# Hard stop well past the fuzzer's own limit, should it ignore it.
deadline=$((seconds + 300))

fail() {
  echo "----- last lines of $log -----"
  tail -n 150 "$log"
  echo "fuzz.sh: FAIL $target ($engine): $*"
  echo "fuzz.sh: corpus, reproducers and full log kept in $work"
  exit 1
}

# UBSan prints no stack trace unless asked (libFuzzer builds have UBSan).
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
echo "fuzz.sh: $target with $engine for ${seconds}s (seeds: $corpus${dict:+, dict: $dict})"
if [[ "$engine" == libfuzzer ]]; then
  mkdir -p "$work/corpus" "$work/artifacts"
  # The new-input directory comes first: libFuzzer writes into it, and
  # never into the committed seed corpus given second.
  rc=0
  timeout "$deadline" "$bin" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" ${dict:+-dict="$dict"} "$@" \
    "$work/corpus" "$corpus" >"$log" 2>&1 || rc=$?
  # Non-zero on any crash, leak, timeout or OOM; artifacts double-check.
  [[ "$rc" == 0 ]] || fail "libFuzzer exited with status $rc"
  if [[ -n "$(ls -A "$work/artifacts")" ]]; then
    fail "artifacts written: $(ls "$work/artifacts")"
  fi
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$log" || true
else
  if [[ -n "$afl_mutator" ]]; then
    lib="$(bazel info bazel-bin 2>/dev/null)/$afl_mutator"
    [[ -f "$lib" ]] || { echo "fuzz.sh: $lib not built (bazel build //...)" >&2; exit 2; }
    # Its mutations only, and no trimming: AFL++'s own byte mutations and
    # cuts would mostly break the container.
    export AFL_CUSTOM_MUTATOR_LIBRARY="$lib" AFL_CUSTOM_MUTATOR_ONLY=1 AFL_DISABLE_TRIM=1
    echo "fuzz.sh: custom mutator $afl_mutator"
  fi
  # AFL_NO_AFFINITY: do not die when other afl-fuzz runs hold the cores.
  rc=0
  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    AFL_NO_AFFINITY=1 timeout "$deadline" afl-fuzz -V "$seconds" \
    -i "$corpus" -o "$work/out" ${dict:+-x "$dict"} "$@" -- "$bin" \
    >"$log" 2>&1 || rc=$?
  [[ "$rc" == 0 ]] || fail "afl-fuzz exited with status $rc (did it start?)"
  stats="$work/out/default/fuzzer_stats"
  [[ -f "$stats" ]] || fail "afl-fuzz wrote no $stats"
  crashes="$(find "$work/out/default/crashes" -type f ! -name README.txt)"
  [[ -z "$crashes" ]] || fail "crashes found: $crashes"
  # afl-fuzz 4.04c only warns about (and skips) a seed that crashes.
  if grep -q "results in a crash" "$log"; then
    fail "a seed input crashes (see 'results in a crash' in the log)"
  fi
  grep -E '^(execs_done|execs_per_sec|corpus_count|saved_hangs)' "$stats"
fi
echo "fuzz.sh: OK $target ($engine, ${seconds}s)"
[[ -n "$out" ]] || rm -rf "$work"
