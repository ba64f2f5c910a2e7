#!/bin/bash
# A long libFuzzer campaign over every fuzz target, then (with -m) the
# inputs that found new coverage merged into the committed seed corpora.
#
#   tools/fuzz_campaign.sh [-t SECONDS] [-j JOBS] [-o DIR] [-m] [TARGET...]
#
#   -t SECONDS  wall-clock time per target (default 1800: 30 minutes)
#   -j JOBS     targets fuzzed at once (default: the number of CPUs)
#   -o DIR      keep each target's run in DIR/TARGET (default: a new
#               directory under ${TMPDIR:-/tmp}, kept and printed)
#   -m          merge: add to corpus/TARGET/ the fewest new inputs that
#               reach the edges the corpus does not (libFuzzer -merge=1
#               with -use_counters=0: new edges, not new hit counts, so
#               each file added reaches at least one new edge)
#   TARGET      names given to au_fuzz_target in fuzz/BUILD (default: all)
#
# Each target runs through tools/fuzz.sh (libFuzzer, ASan + UBSan, its
# dictionary), niced so that the machine stays usable.  The table at the
# end gives, per target: CPU seconds the fuzzer got, executions, executions
# per CPU second, coverage (cov, ft) at start and end, new inputs written,
# inputs merged and the edges they add to the corpus, and the result.
# Exit status 1 if any target failed (its reproducer is in
# DIR/TARGET/artifacts).
set -euo pipefail

seconds=1800 jobs="$(nproc)" out="" merge=0
usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "t:j:o:mh" opt; do
  case "$opt" in
    t) seconds="$OPTARG" ;;
    j) jobs="$OPTARG" ;;
    o) out="$OPTARG" ;;
    m) merge=1 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ "$seconds" =~ ^[0-9]+$ && "$jobs" =~ ^[1-9][0-9]*$ ]] || usage

cd "$(dirname "$0")/.."
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t labels < <(bazel query 'attr(tags, au_fuzzer, //...)' 2>/dev/null)
  targets=()
  for l in "${labels[@]}"; do t="${l##*:}"; targets+=("${t%_fuzzer}"); done
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz_campaign: no fuzz targets" >&2; exit 2; }
if [[ -n "$out" ]]; then mkdir -p "$out"; else out="$(mktemp -d "${TMPDIR:-/tmp}/au-campaign.XXXXXX")"; fi
out="$(cd "$out" && pwd)"

mapfile -t build < <(printf '//fuzz:%s_fuzzer\n' "${targets[@]}")
bazel build --config=fuzz "${build[@]}"
bin_dir="$(bazel info --config=fuzz bazel-bin 2>/dev/null)/fuzz"
echo "fuzz_campaign: ${#targets[@]} targets, ${seconds}s each, $jobs at a time, in $out"

run_one() {  # TARGET: fuzz it, with its CPU time measured around fuzz.sh
  local t="$1" rc=0
  mkdir -p "$out/$t"
  /usr/bin/time -o "$out/$t/time" -f '%U %S %e' \
    nice -n 10 tools/fuzz.sh -n -t "$seconds" -o "$out/$t" "$t" >"$out/$t/fuzz.out" 2>&1 || rc=$?
  echo "$rc" >"$out/$t/rc"
}

running=0
for t in "${targets[@]}"; do
  if [[ $running -ge $jobs ]]; then wait -n || true; running=$((running - 1)); fi
  echo "fuzz_campaign: $(date +%T) start $t"
  run_one "$t" &
  running=$((running + 1))
done
wait

corpus_of() {  # TARGET: its seed corpus directory, from the rule's tags
  bazel query --output=build "//fuzz:${1}_fuzzer" 2>/dev/null |
    grep -o '"au_corpus=[^"]*"' | head -n1 | sed 's/^"au_corpus=//; s/"$//'
}

failed=()
printf '\n%-13s %7s %12s %9s %-13s %-13s %6s %12s  %s\n' target cpu_s execs exec/cpu_s \
  "cov,ft start" "cov,ft end" new merged/edges result
for t in "${targets[@]}"; do
  d="$out/$t" log="$out/$t/libfuzzer.log"
  rc="$(cat "$d/rc" 2>/dev/null || echo 1)"
  read -r user sys _ <"$d/time" || { user=0 sys=0; }
  cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')"
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" 2>/dev/null | awk '{print $2}')"
  execs="${execs:-0}"
  rate="$(awk -v e="$execs" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? e / c : 0) }')"
  start="$(grep -m1 -E 'INITED' "$log" 2>/dev/null | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1,\2/' || true)"
  end="$(grep -E 'DONE|cov: ' "$log" 2>/dev/null | tail -n1 | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1,\2/' || true)"
  new="$(find "$d/corpus" -type f 2>/dev/null | wc -l)"
  merged=-
  result=ok
  if [[ "$rc" != 0 ]]; then
    result="FAILED (see $d)"
    failed+=("$t")
  elif [[ "$merge" == 1 && "$new" -gt 0 ]]; then
    seeds="$(corpus_of "$t")"
    before="$(find "$seeds" -type f | wc -l)"
    "$bin_dir/${t}_fuzzer" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 \
      -merge_control_file="$d/merge_control" "$seeds" "$d/corpus" >"$d/merge.log" 2>&1 ||
      { result="merge failed ($d/merge.log)"; failed+=("$t"); }
    merged="$(($(find "$seeds" -type f | wc -l) - before))/$(grep -oE '[0-9]+ new coverage edges' "$d/merge.log" | awk '{print $1}')"
  fi
  printf '%-13s %7s %12s %9s %-13s %-13s %6s %12s  %s\n' "$t" "$cpu" "$execs" "$rate" \
    "${start:-?}" "${end:-?}" "$new" "$merged" "$result"
done
echo "fuzz_campaign: runs kept in $out"
[[ ${#failed[@]} -eq 0 ]] || { echo "fuzz_campaign: FAILED: ${failed[*]}"; exit 1; }
