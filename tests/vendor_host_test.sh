#!/bin/bash
# examples/ built the way a vendoring project builds it: the two amalgamated
# files (//:amalgamation) copied next to the host's sources, then plain
# `make` and `cc`, no Bazel.  Then the host runs:
#   - `links`: the resolver fed a task graph the host built in-process;
#     its output is known exactly (strong, await and weak links, the
#     running task's synchronous frames);
#   - `sample PID`: the sampler on the seed program (python_fixtures/seed.py)
#     started with the agent, under every pyenv and Debian interpreter
#     found: Task-not_awaited must sit under its creator Task-1 / parent,
#     which only the agent's weak link can tell, with the seed's own frame
#     names and lines;
#   - every allocation it made through its allocator was given back.
#
# Usage (Bazel): vendor_host_test.sh ASYNCUNWIND_C ASYNCUNWIND_H TOOL
# (TOOL: //:asyncunwind, for `asyncunwind agent-path`).
set -uo pipefail
. "$(dirname "$0")/testlib.sh"

amal_c=$(readlink -f "$1")
amal_h=$(readlink -f "$2")
tool=$(readlink -f "$3")
examples="$(pwd)/examples"

# ---- build: make, cc, the two files --------------------------------------------
mkdir -p "$tmp/host"
# Runfiles are symlinks into Bazel's tree: copy the bytes.
cp -L "$examples/Makefile" "$examples/vendor_host.c" "$amal_c" "$amal_h" "$tmp/host/"
if make -C "$tmp/host" CC=cc >"$tmp/make.log" 2>&1; then
  ok
else
  bad "make: $(tail -c 3000 "$tmp/make.log")"
  summary
  exit 1
fi
host="$tmp/host/vendor_host"

# ---- links known in-process ----------------------------------------------------
cat >"$tmp/links.want" <<'EOF'
request-8 (running): main run_forever [server] serve [request-8] render escape_html
db: main run_forever [server] serve [request-7] handle [db] query_db recv
logger: main run_forever [server] serve [logger] flush_logs
task server: root
task request-7: strong under server
task db: await under request-7
task logger: weak under server
task request-8: strong under server
EOF
if "$host" links >"$tmp/links.out" 2>"$tmp/links.err"; then ok; else bad "links exited $?: $(cat "$tmp/links.err")"; fi
if diff -u "$tmp/links.want" "$tmp/links.out" >"$tmp/links.diff"; then ok; else bad "links output: $(cat "$tmp/links.diff")"; fi
want "$tmp/links.err" ", 0 live$" "links: every allocation freed"

# ---- a live process through the sampler ----------------------------------------
agent_dir=$(env XDG_CACHE_HOME="$tmp/cache" "$tool" agent-path)
start_polls=400
start_strict=1
seed_weak=";\[Task-1\];parent \([^)]*seed\.py:35\);\[Task-not_awaited\];func_not_awaited \([^)]*seed\.py:24\);sleep \([^)]*\)$"
seed_awaited=";\[Task-1\];parent \([^)]*seed\.py:35\);\[Task-awaited\];func_awaited \([^)]*seed\.py:28\);sleep \([^)]*\)$"

sample_seed() {
  local name=$1 py=$2
  start "$name" env PYTHONPATH="$agent_dir" "$py" "$fixtures/seed.py"
  if "$host" sample "$pid" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
    ok
  else
    bad "$name: sample exited $?: $(cat "$tmp/$name.err")"
  fi
  want "$tmp/$name.out" "^# pid $pid, CPython 3\.[0-9]+, 1 threads, 3 tasks, 2 stacks, agent$" "$name: the sample"
  want "$tmp/$name.out" "^thread [0-9]+;<module> \([^)]*seed\.py:44\);main \([^)]*seed\.py:40\);" "$name: the thread's frames"
  want "$tmp/$name.out" "$seed_weak" "$name: Task-not_awaited under its creator"
  want "$tmp/$name.out" "$seed_awaited" "$name: Task-awaited under its awaiter"
  want "$tmp/$name.err" ", 0 live$" "$name: every allocation freed"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

found=0
for v in 3.9 3.10 3.11 3.12 3.13; do
  py=$(ls -d "$pyenv"/versions/$v.*/bin/python$v 2>/dev/null | tail -1)
  if [ -n "$py" ]; then
    sample_seed "pyenv-$v" "$py"
    found=$((found + 1))
  else
    skip "pyenv $v not found under $pyenv"
  fi
done
if [ -x /usr/bin/python3.11 ]; then
  sample_seed debian-3.11 /usr/bin/python3.11
  found=$((found + 1))
else
  skip "/usr/bin/python3.11 not found"
fi
if [ "$found" -eq 0 ]; then bad "no interpreter: nothing was sampled"; fi

# A pid that is not a Python process: a clean error, no stack.
if "$host" sample $$ >"$tmp/bash.out" 2>"$tmp/bash.err"; then
  bad "sampling bash succeeded: $(cat "$tmp/bash.out")"
else
  want "$tmp/bash.err" "^vendor_host: open: " "not Python: the open fails"
fi

summary
