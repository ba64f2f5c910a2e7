#!/usr/bin/env bash
# `asyncunwind tree` and `--format json` on live CPython processes (pyenv
# 3.9, 3.12, 3.13 and Debian's static 3.11), with and without the agent:
#  - the task trees of the seed program, gather_tree, taskgroup_tree (3.11+),
#    deadlock (cycles shown) and many_as_completed (ten as_completed holders:
#    the frame slots searched by passes, then by their index) are exactly
#    python_fixtures/expected/*.tree;
#  - `tree --format json` and `dump --format json` validate against
#    docs/schema/sample.schema.json and agree with `tree` and with
#    `dump --format collapsed` (tests/check_sample_json.py);
#  - hostile names (python_fixtures/hostile_names.py: quotes, line breaks,
#    control characters, a kernel thread name that is not UTF-8) come back
#    from the JSON as Python reads them;
#  - the command line's new errors and exit codes.
# A missing interpreter is a skip, and a failure when CI=true.
set -uo pipefail
tool="$(pwd)/$1"
schema="$(pwd)/docs/schema/sample.schema.json"
checker="$(pwd)/tests/check_sample_json.py"
py=/usr/bin/python3
# fixtures, pyenv, tmp, pids, ok/bad/skip, expect_exit, summary
. "$(dirname "$0")/testlib.sh"

expect_exit 2 "tree's --format is text or json" -- "$tool" tree --pid 1 --format collapsed
expect_exit 2 "text, collapsed, tree or json" -- "$tool" dump --pid 1 --format xml
expect_exit 2 "attempts needs a number" -- "$tool" dump --pid 1 --attempts 0
expect_exit 2 "attempts needs a number" -- "$tool" dump --pid 1 --attempts -3
expect_exit 2 "replay takes only" -- "$tool" replay x.snap --attempts 3
expect_exit 3 "no such process" -- "$tool" tree --pid 2147483647
expect_exit 0 "tree --pid PID" -- "$tool" --help
"$py" -c 'import jsonschema' 2>/dev/null || bad "$py has no jsonschema (tools/setup.sh installs python3-jsonschema)"
agent_dir=$(XDG_CACHE_HOME="$tmp/cache" "$tool" agent-path)

# start NAME ARGV...: run a fixture, wait for READY, set $pid; its stderr
# kept, a status, no settling (unlike testlib.sh's start, replaced here).
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.ready" 2>"$tmp/$name.stderr" </dev/null &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    grep -q READY "$tmp/$name.ready" 2>/dev/null && return 0
    sleep 0.05
  done
  bad "$name never became READY: $(cat "$tmp/$name.stderr")"
  return 1
}

task_lines() { grep -E '── ' | sed 's/│/ /g'; }

# check_tree NAME EXPECTED [--no-agent]: tree, its JSON and dump's JSON.
check_tree() {
  local name=$1 want=$2
  shift 2
  "$tool" tree --pid "$pid" "$@" >"$tmp/$name.tree" 2>"$tmp/err" || { bad "$name: tree: $(cat "$tmp/err")"; return; }
  if diff <(grep -v '^#' "$want") <(task_lines <"$tmp/$name.tree") >"$tmp/diff"; then ok; else
    bad "$name: tree differs from $want: $(cat "$tmp/diff")"; fi
  "$tool" tree --pid "$pid" --format json "$@" >"$tmp/$name.tjson" 2>"$tmp/err" || bad "$name: tree json"
  "$py" "$checker" "$schema" "$tmp/$name.tjson" /dev/null "$tmp/$name.tree" 2>"$tmp/err" &&
    ok || bad "$name: tree --format json: $(cat "$tmp/err")"
  "$tool" dump --pid "$pid" --format json "$@" >"$tmp/$name.json" 2>"$tmp/err" || bad "$name: dump json"
  "$tool" dump --pid "$pid" --format collapsed "$@" >"$tmp/$name.col" 2>"$tmp/err" || bad "$name: collapsed"
  "$py" "$checker" "$schema" "$tmp/$name.json" "$tmp/$name.col" 2>"$tmp/err" &&
    ok || bad "$name: dump --format json: $(cat "$tmp/err")"
}

run_interp() {
  local label=$1 exe=$2 minor=$3
  for scenario in seed gather_tree taskgroup_tree deadlock many_as_completed; do
    [ "$scenario" = taskgroup_tree ] && [ "$minor" -lt 11 ] && continue
    start "$label-$scenario" env PYTHONPATH="$agent_dir" "$exe" "$fixtures/$scenario.py" || continue
    check_tree "$label-$scenario" "$fixtures/expected/$scenario.tree"
    local noagent="$fixtures/expected/$scenario.noagent.tree"
    [ -f "$noagent" ] || noagent="$fixtures/expected/$scenario.tree"
    check_tree "$label-$scenario-noagent" "$noagent" --no-agent
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
}

found=0
for v in 3.9 3.12 3.13; do
  exe=$(ls -d "$pyenv"/versions/$v.*/bin/python$v 2>/dev/null | tail -1)
  if [ -n "$exe" ]; then run_interp "pyenv$v" "$exe" "${v#3.}"; found=1; else skip "pyenv $v not found under $pyenv"; fi
done
if [ -x /usr/bin/python3.11 ]; then run_interp debian311 /usr/bin/python3.11 11; else skip "/usr/bin/python3.11 not found"; fi

# Hostile names, exactly as Python reads them back from the JSON.
exe=$(ls -d "$pyenv"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
if [ -n "$exe" ] && start hostile "$exe" "$fixtures/hostile_names.py"; then
  "$tool" dump --pid "$pid" --format json >"$tmp/hostile.json" 2>"$tmp/err" || bad "hostile: dump: $(cat "$tmp/err")"
  "$py" "$checker" "$schema" "$tmp/hostile.json" 2>"$tmp/err" && ok || bad "hostile: $(cat "$tmp/err")"
  "$py" - "$tmp/hostile.json" <<'PY' && ok || bad "hostile: names not given back"
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
tasks = sorted(t["name"] for t in doc["tasks"])
want = sorted(['quote"back\\slash', "line\nbreak", "ctl\x01\x1f", "lone\ufffd",
               "emoji\U0001F600", "Task-1"])
threads = sorted(t["name"] for t in doc["threads"])
# the kernel's name: stray 0xff and the cut 0xc3 each become U+FFFD
want_threads = sorted(["MainThread", 'x\ufffd"\\\n\x01y\ufffd'])
if tasks != want or threads != want_threads:
    print("tasks", tasks, "threads", threads)
    sys.exit(1)
PY
  "$tool" tree --pid "$pid" >"$tmp/hostile.tree" 2>&1 && grep -q 'quote"back\\slash' "$tmp/hostile.tree" && ok ||
    bad "hostile: tree: $(cat "$tmp/hostile.tree")"
elif [ -z "$exe" ]; then
  skip "pyenv 3.12 not found"
fi
[ "$found" = 1 ] || skip "no pyenv interpreter"
summary
