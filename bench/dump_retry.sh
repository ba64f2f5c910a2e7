#!/usr/bin/env bash
# How often a cold `asyncunwind dump` of a busy process is partial, with
# one attempt (what dump did before it retried) and with the default
# retries (docs/CLI.md), on python_fixtures/churn.py.  Each dump is a new
# process, so each is cold, as a user's is.
#
#   bench/dump_retry.sh TOOL N PYTHON...
#     TOOL    the asyncunwind binary (bazel-bin/asyncunwind)
#     N       dumps per interpreter and setting (the issue used 200)
#     PYTHON  interpreters, e.g. /root/.pyenv/versions/3.9.18/bin/python3.9
#
# Prints, per interpreter, partial dumps out of N for --attempts 1 and for
# the default, and the attempts the retrying dumps took (from
# ASYNCUNWIND_RETRY_STATS=1's line on stderr).
set -uo pipefail
tool=$1
n=$2
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT
pid=
for py in "$@"; do
  "$py" "$here/python_fixtures/churn.py" >"$tmp/ready" 2>/dev/null </dev/null &
  pid=$!
  for _ in $(seq 400); do grep -q READY "$tmp/ready" && break; sleep 0.05; done
  ver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  for setting in 1 default; do
    partial=0
    failed=0
    : >"$tmp/attempts"
    for _ in $(seq "$n"); do
      if [ "$setting" = 1 ]; then
        ASYNCUNWIND_RETRY_STATS=1 "$tool" dump --pid "$pid" --attempts 1 >/dev/null 2>"$tmp/err"
      else
        ASYNCUNWIND_RETRY_STATS=1 "$tool" dump --pid "$pid" >/dev/null 2>"$tmp/err"
      fi
      [ $? -eq 0 ] || failed=$((failed + 1))
      grep -q "every sample was partial" "$tmp/err" && partial=$((partial + 1))
      sed -n 's/^asyncunwind: retry stats: attempts \([0-9]*\).*/\1/p' "$tmp/err" >>"$tmp/attempts"
    done
    dist=$(sort -n "$tmp/attempts" | uniq -c | awk '{printf "%s%sx%s", sep, $1, $2; sep=" "}')
    printf '%-8s attempts=%-8s partial %3d/%d  failed %d  attempts used: %s\n' \
      "$ver" "$setting" "$partial" "$n" "$failed" "$dist"
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
