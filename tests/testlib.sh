# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are the sourcing script's
# Shared by the end-to-end shell tests (sh_test), so that they do not each
# carry a copy of the same preamble: where the fixtures and interpreters are,
# a scratch directory, the processes to kill on exit, the pass/fail/skip
# counters and their checks, and the closing summary.
#
# Source it from a test script, with the workspace as the current directory
# (as Bazel runs tests), after `set -uo pipefail`:
#   . "$(dirname "$0")/testlib.sh"
# It defines:
#   fixtures, sid, pyenv  python_fixtures/, the sid chroot, pyenv's root
#   tmp                   a scratch directory, removed on exit
#   pids                  processes to kill -9 (and reap) on exit: pids+=("$pid")
#   ok, bad MSG, skip MSG count a pass, a failure, a skip; a skip is a
#                         failure when CI=true (CI must have every
#                         interpreter and tool)
#   want/wont FILE PATTERN WHAT  FILE has (has no) line matching PATTERN (-E)
#   expect_exit CODE PATTERN -- COMMAND...  exit code and a stderr (or
#                         stdout) pattern (grep's basic syntax); COMMAND's
#                         stdin is $expect_exit_stdin when set, else inherited
#   start NAME ARGV...    runs a fixture until it prints READY; sets $pid
#   summary               prints the counts; its status is the test's
# Each script keeps its own `tool` (its arguments differ).

fixtures="$(pwd)/python_fixtures"
sid="${ASYNCUNWIND_SID_ROOT:-/var/lib/asyncunwind/sid}"
pyenv="${PYENV_ROOT:-/root/.pyenv}"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
skipped=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
skip() {
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then bad "missing under CI: $*"; return; fi
  skipped=$((skipped + 1))
  echo "SKIP: $*"
}

want() { if grep -Eq -- "$2" "$1"; then ok; else bad "$3: no '$2' in $1: $(head -c 2000 "$1")"; fi; }
wont() { if grep -Eq -- "$2" "$1"; then bad "$3: '$2' in $1: $(grep -E -- "$2" "$1" | head -3)"; else ok; fi; }

expect_exit() {
  local code=$1 pattern=$2
  shift 3
  if [ -n "${expect_exit_stdin:-}" ]; then
    "$@" >"$tmp/out" 2>"$tmp/err" <"$expect_exit_stdin"
  else
    "$@" >"$tmp/out" 2>"$tmp/err"
  fi
  local got=$?
  if [ "$got" -ne "$code" ]; then
    bad "$* exited $got, wanted $code: $(cat "$tmp/err")"
  elif ! grep -q -- "$pattern" "$tmp/err" "$tmp/out"; then
    bad "$*: no '$pattern' in: $(cat "$tmp/err")"
  else
    ok
  fi
}

# start NAME ARGV...: run ARGV in the background (stdin /dev/null, stdout in
# $tmp/NAME.ready, stderr dropped), set $pid and add it to pids, wait up to
# start_polls x 50 ms for READY, then start_settle seconds for the fixture to
# reach its sleeps; with start_strict set, never READY is a failure.
start_polls=200
start_settle=0.3
start_strict=
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.ready" 2>/dev/null </dev/null &
  pid=$!
  pids+=("$pid")
  for _ in $(seq "$start_polls"); do
    grep -q READY "$tmp/$name.ready" 2>/dev/null && break
    sleep 0.05
  done
  if [ -n "$start_strict" ]; then grep -q READY "$tmp/$name.ready" || bad "$name: never READY"; fi
  sleep "$start_settle"
}

summary() {
  echo "$pass passed, $fail failed, $skipped skipped"
  [ "$fail" -eq 0 ]
}
