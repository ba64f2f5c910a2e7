#!/usr/bin/env bash
# The long versions of the fault and soak tests (issue 11, "Faults and
# soak"); each short version runs in `bazel test //...`.
#
#   tools/soak.sh [churn] [stops] [mutated]     (default: all three)
#
#   churn    //tests:churn_test for 60 s per interpreter (AU_CHURN_SECONDS)
#   stops    //tests:faults_test with 30 stop/continue cycles mid-record
#   mutated  100,000 mutated golden snapshots through `asyncunwind replay`
#            (fuzz/mutated_replay.c; MUTATED_COUNT overrides)
# Prints each test's log.  Runs with nice and --jobs=2 (a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(churn stops mutated)
bt=(nice -n 10 bazel test --jobs=2 --nocache_test_results --test_output=all)
for w in "${what[@]}"; do
  case "$w" in
    churn) "${bt[@]}" --test_timeout=900 --test_env=AU_CHURN_SECONDS=60 //tests:churn_test ;;
    stops) "${bt[@]}" --test_timeout=900 --test_env=FAULTS_STOPS=30 //tests:faults_test ;;
    mutated)
      "${bt[@]}" --test_timeout=14400 --test_env=MUTATED_COUNT="${MUTATED_COUNT:-100000}" \
        //tests:mutated_replay_test ;;
    *) echo "tools/soak.sh: unknown part '$w' (churn, stops, mutated)" >&2; exit 2 ;;
  esac
done
