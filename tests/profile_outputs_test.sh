#!/usr/bin/env bash
# A profile's three outputs, each checked by its real consumer
# (tests/profile_consumers.mjs: speedscope's own importer in headless
# chromium, speedscope's published schema with ajv, the SVG flame graph in
# headless chromium):
#   - golden snapshots of several interpreters and fixtures, aggregated
#     offline by tests/profile_write (the seed among them);
#   - the seed program, live under pyenv 3.12 with the agent: in every
#     format func_not_awaited sits under parent;
#   - a live target whose names hold markup and scripts
#     (tests/data/profile/hostile_names.py): they stay text.
#
# node, chromium and the npm packages come from tools/setup.sh
# (tools/node_tools.sh puts the packages in /var/lib/asyncunwind/node or
# $ASYNCUNWIND_NODE_ROOT).  Anything missing is a skip with its reason, and
# fails the test when CI=true.
set -uo pipefail
writer="$(pwd)/$1"
tool="$(pwd)/$2"
here="$(pwd)"
node_root="${ASYNCUNWIND_NODE_ROOT:-/var/lib/asyncunwind/node}"
# pyenv, tmp, pids, ok/bad/skip, start, summary
. "$(dirname "$0")/testlib.sh"
# chromium and npm want a home; the test environment has none.
export HOME="$tmp/home"
mkdir -p "$HOME"

# consumers NAME [flags]: the checks of profile_consumers.mjs on
# $tmp/NAME.{collapsed,json,svg}.
consumers() {
  local name=$1
  shift
  echo "--- $name"
  if node "$here/tests/profile_consumers.mjs" "$node_root" /usr/bin/chromium "$tmp/$name" "$@" \
      >"$tmp/$name.log" 2>&1; then
    ok
  else
    bad "$name: $(grep -v '^ok:' "$tmp/$name.log")"
  fi
  grep -c '^ok:' "$tmp/$name.log" | sed 's/$/ checks passed/'
}

# write NAME ARGS...: the three outputs of one profile.
write() {
  local name=$1
  shift
  "$writer" collapsed "$@" >"$tmp/$name.collapsed" &&
    "$writer" speedscope --title "${title:-$name}" "$@" >"$tmp/$name.json" &&
    "$writer" svg --title "${title:-$name}" "$@" >"$tmp/$name.svg"
}

missing=""
command -v node >/dev/null || missing="node (apt-get install nodejs)"
[ -x /usr/bin/chromium ] || missing="${missing:+$missing, }chromium (apt-get install chromium)"
[ -f "$node_root/.asyncunwind-node-complete" ] ||
  missing="${missing:+$missing, }npm packages in $node_root (tools/node_tools.sh)"
if [ -n "$missing" ]; then
  skip "missing $missing; tools/setup.sh installs them"
  summary
  exit
fi

# ---- golden snapshots, offline ---------------------------------------------
g=corpus/golden
if write golden --repeat 2 $g/pyenv-3.9-seed.agent.snap $g/pyenv-3.12-seed.agent.snap \
    $g/sid-3.15-seed.agent.snap $g/pyenv-3.12-gather_tree.snap $g/sid-3.14-taskgroup_tree.snap \
    $g/pyenv-3.12-threads.snap $g/pyenv-3.13-deadlock.agent.snap $g/pyenv-3.12-unicode_names.snap \
    $g/pyenv-3.11-on_cpu.snap $g/debian-3.11-static-many_tasks.snap; then
  consumers golden --seed --search 'func_|Task-'
else
  bad "profile_write failed on the golden snapshots"
fi

# ---- live targets ------------------------------------------------------------
# start NAME ARGV... (testlib.sh): run a fixture, wait for READY, set $pid.
start_settle=0.2

py312=$(ls -d "$pyenv"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
if [ -n "$py312" ]; then
  agent_dir=$("$tool" agent-path)
  start seed env PYTHONPATH="$agent_dir" "$py312" python_fixtures/seed.py
  if write seed --pid "$pid" --samples 20; then
    grep -q ";\[Task-not_awaited\];func_not_awaited (.*seed.py:24);sleep (.*) 20$" "$tmp/seed.collapsed" ||
      bad "seed: 20 samples of func_not_awaited expected: $(cat "$tmp/seed.collapsed")"
    consumers seed --seed --search 'func_not_awaited'
  else
    bad "profile_write could not sample the seed program (pid $pid)"
  fi
  start hostile "$py312" tests/data/profile/hostile_names.py
  if title='<script>alert("title")</script>]]>&' write hostile --pid "$pid" --samples 5; then
    consumers hostile --hostile --search 'victim'
  else
    bad "profile_write could not sample hostile_names.py (pid $pid)"
  fi
else
  skip "pyenv 3.12 not found under $pyenv"
fi

summary
