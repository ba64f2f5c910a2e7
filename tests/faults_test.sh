#!/usr/bin/env bash
# Faults on real CPython processes, end to end through the command line:
#   - SIGSTOP: a stopped target is still sampled: `dump` and `record` of a
#     stopped process give its stacks with no failed sample and no hang,
#     a record whose target is stopped and continued midway goes on to its
#     duration without errors, and after SIGCONT all is as before;
#   - valgrind memcheck (Debian's valgrind) on `dump`, `snapshot`, `record`
#     and `replay` of the seed program with the agent, and on `replay` of
#     one golden snapshot per CPython version: no error, no definite or
#     indirect leak.  process_vm_readv works under valgrind (it reads the
#     other process; valgrind checks this one's buffers).
# The other faults are elsewhere: the target killed mid-record and fork +
# exec under --subprocesses (record_test.sh), a pid reused
# (pid_reuse_test.c), task churn (churn_test.c), mutated snapshots
# (mutated_replay_test.sh).  FAULTS_STOPS=N (default 3) stop/continue
# cycles in the midway record; tools/soak.sh runs many.
#
# A missing interpreter or valgrind is a skip, and a failure when CI=true.
set -uo pipefail
tool="$(pwd)/$1"
# fixtures, sid, pyenv, tmp, pids, ok/bad/skip, want/wont, expect_exit,
# start, summary
. "$(dirname "$0")/testlib.sh"
expect_exit_stdin=/dev/null
start_polls=400
start_strict=1
agent_dir=$(env XDG_CACHE_HOME="$tmp/cache" "$tool" agent-path)
seed_under_parent=";\[Task-1\];parent \([^)]*seed.py:35\);\[Task-not_awaited\];func_not_awaited \([^)]*seed.py:24\);sleep \([^)]*\) [0-9]+$"
stops=${FAULTS_STOPS:-3}

# no_errors NAME: the record's statistics say no sample failed.
no_errors() { want "$tmp/$1.err" "^  errors +0 of [1-9][0-9]* \(" "$1: no failed sample"; }

# ---- SIGSTOP ------------------------------------------------------------------
sigstop() {
  local name=$1 py=$2
  start "$name" env PYTHONPATH="$agent_dir" "$py" "$fixtures/seed.py"
  local target=$pid
  kill -STOP "$target"
  expect_exit 0 "func_not_awaited" -- "$tool" dump --pid "$target"
  # bounded: a hang is a failure, not a stuck test
  timeout 60 "$tool" record -o "$tmp/$name-stopped.txt" --pid "$target" -d 1 2>"$tmp/$name-stopped.err" </dev/null
  local rc=$?
  [ "$rc" -eq 0 ] && ok || bad "$name: record of a stopped target exited $rc: $(cat "$tmp/$name-stopped.err")"
  want "$tmp/$name-stopped.err" "the duration elapsed; 1 process sampled" "$name stopped: the record's end"
  no_errors "$name-stopped"
  want "$tmp/$name-stopped.txt" "$seed_under_parent" "$name stopped: stacks"
  # still stopped: sampling did not continue it
  grep -q '^State:.*T' "/proc/$target/status" && ok || bad "$name: the target is no longer stopped"
  kill -CONT "$target"

  # Stopped and continued during a record, $stops times.
  timeout 120 "$tool" record -o "$tmp/$name-cycles.txt" --pid "$target" -d $((stops + 2)) \
    2>"$tmp/$name-cycles.err" </dev/null &
  local rpid=$!
  pids+=("$rpid")
  sleep 0.5
  for _ in $(seq "$stops"); do
    kill -STOP "$target"
    sleep 0.5
    kill -CONT "$target"
    sleep 0.5
  done
  wait "$rpid"
  rc=$?
  [ "$rc" -eq 0 ] && ok || bad "$name: record across stops exited $rc: $(cat "$tmp/$name-cycles.err")"
  want "$tmp/$name-cycles.err" "the duration elapsed; 1 process sampled" "$name cycles: the record's end"
  no_errors "$name-cycles"
  want "$tmp/$name-cycles.txt" "$seed_under_parent" "$name cycles: stacks"
  expect_exit 0 "func_not_awaited" -- "$tool" dump --pid "$target"
  kill -9 "$target" 2>/dev/null
  wait "$target" 2>/dev/null
}

# ---- valgrind --------------------------------------------------------------------
vg() {  # NAME ARGS...: the tool under memcheck; stdout in $tmp/NAME.out
  local name=$1
  shift
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect "$tool" "$@" >"$tmp/$name.out" 2>"$tmp/$name.vg" </dev/null
  local rc=$?
  if [ "$rc" -eq 99 ] || grep -q "^==[0-9]*==" "$tmp/$name.vg"; then
    bad "$name: memcheck: $(head -c 3000 "$tmp/$name.vg")"
  elif [ "$rc" -ne 0 ]; then
    bad "$name: exited $rc under valgrind: $(head -c 1000 "$tmp/$name.vg")"
  else
    ok
  fi
}

memcheck() {
  local name=$1 py=$2
  start "$name" env PYTHONPATH="$agent_dir" "$py" "$fixtures/seed.py"
  vg "$name-dump" dump --pid "$pid"
  want "$tmp/$name-dump.out" "func_not_awaited" "$name: dump under valgrind"
  vg "$name-snapshot" snapshot --pid "$pid" -o "$tmp/$name.snap"
  vg "$name-replay" replay "$tmp/$name.snap" --format json
  want "$tmp/$name-replay.out" "func_not_awaited" "$name: replay under valgrind"
  vg "$name-record" record --pid "$pid" -d 1 -o "$tmp/$name-record.txt"
  want "$tmp/$name-record.txt" "$seed_under_parent" "$name: record under valgrind"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

py312=$(ls -d "$pyenv"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
py39=$(ls -d "$pyenv"/versions/3.9.*/bin/python3.9 2>/dev/null | tail -1)
for py in "$py312" "$py39" /usr/bin/python3.11; do
  if [ -z "$py" ] || [ ! -x "$py" ]; then skip "an interpreter (pyenv 3.12, 3.9, /usr/bin/python3.11) is missing"; continue; fi
  sigstop "stop-$(basename "$py")" "$py"
done

# Under --config=asan the tool carries ASan's runtime, which cannot run
# under valgrind (ASan's own checks cover that build): memcheck is for the
# plain build.
if grep -qa "__asan_init" "$tool"; then
  echo "valgrind: skipped, $tool is built with AddressSanitizer (--config=asan)"
elif command -v valgrind >/dev/null; then
  for py in "$py312" /usr/bin/python3.11; do
    [ -n "$py" ] && [ -x "$py" ] && memcheck "vg-$(basename "$py")" "$py"
  done
  # One golden snapshot of each version: the offline path alone.
  for v in pyenv-3.9 pyenv-3.10 pyenv-3.11 pyenv-3.12 pyenv-3.13 debian-3.11-static sid-3.13 sid-3.14 sid-3.15; do
    snap=corpus/golden/$v-seed.agent.snap
    [ -f "$snap" ] || snap=corpus/golden/$v-seed.snap
    if [ -f "$snap" ]; then
      vg "vg-golden-$v" replay "$snap"
    else
      bad "no golden seed snapshot for $v"
    fi
  done
else
  skip "valgrind not installed (tools/setup.sh installs it)"
fi

summary
