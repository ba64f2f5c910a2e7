#!/usr/bin/env bash
# `asyncunwind record`, end to end, on real CPython processes:
#   - its command line: --help, --version, every documented exit code;
#   - -- COMMAND: the seed program started with the agent, its
#     Task-not_awaited under parent, the command ended with the record;
#   - on every interpreter: --pid on the seed program, and --subprocesses on
#     python_fixtures/children.py (a parent, two children, a grandchild);
#   - --cpu on on_cpu.py / cpu_bound.py: only what runs on a CPU (3.9 and
#     3.10 keep no TID: this is the pthread -> TID map at work);
#   - a target that forks and execs, followed;
#   - --pid's options: stdout without -o, --format over the extension,
#     the short spellings, --no-agent, intervals and durations with units,
#     an output that cannot be written, a process it may not read; and a
#     command's own PYTHONPATH kept behind the agent's;
#   - the end of a record: the duration, SIGINT, SIGTERM, the target killed
#     mid-record; each writes what was collected, and the statistics.
#
# A missing interpreter is a skip with its reason, and a failure when
# CI=true (CI must have all of them).
set -uo pipefail
tool="$(pwd)/$1"
# fixtures, sid, pyenv, tmp, pids, ok/bad/skip, want/wont, expect_exit, start,
# summary
. "$(dirname "$0")/testlib.sh"
# expect_exit's commands get /dev/null as stdin (a record's COMMAND inherits it).
expect_exit_stdin=/dev/null

# ---- command line and errors -------------------------------------------------
expect_exit 0 "usage: asyncunwind record" -- "$tool" record --help
expect_exit 0 "exit codes" -- "$tool" record -h
expect_exit 0 "^asyncunwind [0-9]" -- "$tool" --version
expect_exit 0 "record (--pid PID | -- COMMAND" -- "$tool" --help
expect_exit 2 "what to record" -- "$tool" record
expect_exit 2 "not both" -- "$tool" record --pid 1 -- true
expect_exit 2 "collapsed, speedscope or svg" -- "$tool" record --format xml --pid 1
expect_exit 2 "each file's extension chooses" -- "$tool" record --format svg -o a.svg -o b.txt --pid 1
expect_exit 2 "is given once" -- "$tool" record -o - -o - --pid 1
expect_exit 2 "at most 4 times" -- "$tool" record -o 1 -o 2 -o 3 -o 4 -o 5 --pid 1
expect_exit 2 "--interval takes a time" -- "$tool" record --interval 1parsec --pid 1
expect_exit 2 "--duration takes a positive time" -- "$tool" record --duration 0 --pid 1
expect_exit 2 "unknown option '--frob'" -- "$tool" record --frob --pid 1
expect_exit 2 "a value is missing after '-d'" -- "$tool" record --pid 1 -d
expect_exit 3 "no such process" -- "$tool" record --pid 2147483647
expect_exit 5 "not a Python process" -- "$tool" record --pid $$
expect_exit 7 "cannot write" -- "$tool" record -o "$tmp/no/such/dir/x.txt" --pid $$
expect_exit 8 "cannot run /no/such/command" -- "$tool" record -- /no/such/command
expect_exit 5 "no Python process was sampled" -- "$tool" record -d 2 -- sleep 0.3

agent_dir=$(env XDG_CACHE_HOME="$tmp/cache" "$tool" agent-path)

# stop PID: kill a fixture started by start, quietly.
stop() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# start NAME ARGV... (testlib.sh): run a fixture, wait for READY (up to
# 20 s, a failure if never), set $pid.
start_polls=400
start_strict=1

# record NAME ARGS...: asyncunwind record -o $tmp/NAME.txt ARGS, stats in
# $tmp/NAME.err; fails the test on a non-zero exit.
record() {
  local name=$1
  shift
  "$tool" record -o "$tmp/$name.txt" "$@" 2>"$tmp/$name.err" </dev/null >/dev/null
  local rc=$?
  [ "$rc" -eq 0 ] && ok || bad "$name: record exited $rc: $(cat "$tmp/$name.err")"
}

# Statistics in austin's form, every time.
check_stats() {
  local name=$1
  want "$tmp/$name.err" "^  samples +[1-9][0-9]* \(" "$name: samples"
  want "$tmp/$name.err" "^  errors +[0-9]+ of [0-9]+ \([0-9.]+%\)" "$name: errors"
  want "$tmp/$name.err" "^  sample time +min [0-9.]+ .s, avg [0-9.]+ .s, median [0-9.]+ .s, max" "$name: times"
  want "$tmp/$name.err" "^  long +[0-9]+ of [0-9]+ rounds" "$name: long samples"
  want "$tmp/$name.err" "^  tasks/sample +min [0-9]+, avg [0-9.]+, max [0-9]+" "$name: tasks"
  # stderr is no TTY here: no status line.
  wont "$tmp/$name.err" "recording:" "$name: status line without a TTY"
}

# The seed program's stacks: Task-not_awaited under parent with the agent.
seed_under_parent=";\[Task-1\];parent \([^)]*seed.py:35\);\[Task-not_awaited\];func_not_awaited \([^)]*seed.py:24\);sleep \([^)]*\) [0-9]+$"
children_pattern() { echo ";\[Task-1\];child_main \([^)]*\);\[child-$1\];child_work \([^)]*children.py:[0-9]+\);sleep \([^)]*\) [0-9]+$"; }

# check_children NAME: every process of the tree, each its own root.
check_children() {
  local name=$1
  for c in 0 1 0.0; do want "$tmp/$name.txt" "$(children_pattern "$c")" "$name: child-$c"; done
  want "$tmp/$name.txt" ";\[parent-waiter\];parent_wait \(" "$name: the parent"
  want "$tmp/$name.err" "; 4 processes sampled" "$name: four processes"
  # each stack under its process, then its thread
  wont "$tmp/$name.txt" "^thread " "$name: a stack without its process"
  want "$tmp/$name.txt" "^process [0-9]+;thread [0-9a-fx]+ " "$name: process roots"
}

# ---- every interpreter: --pid and --subprocesses -------------------------------
# run_interp NAME PREFIX... : PREFIX runs a fixture (python, or chroot).
run_interp() {
  local name=$1 agent=$2 dir=$3
  shift 3
  if [ "$agent" = yes ]; then
    start "$name-seed" env PYTHONPATH="$agent_dir" "$@" "$dir/seed.py"
  else
    start "$name-seed" "$@" "$dir/seed.py"
  fi
  record "$name-seed" --pid "$pid" --duration 1
  check_stats "$name-seed"
  want "$tmp/$name-seed.err" "^asyncunwind record: [1-9]\.[0-9]+ s, the duration elapsed; 1 process sampled" "$name: duration"
  if [ "$agent" = yes ]; then
    want "$tmp/$name-seed.txt" "$seed_under_parent" "$name --pid: Task-not_awaited under parent"
  else
    want "$tmp/$name-seed.txt" ";\[Task-awaited\];func_awaited \([^)]*seed.py:28\);sleep \(" "$name --pid: the seed's tasks"
  fi
  # wall mode: idle tasks count; cpu mode: a sleeping program has none.
  record "$name-seedcpu" --pid "$pid" --duration 0.5 --cpu
  wont "$tmp/$name-seedcpu.txt" "func_not_awaited|func_awaited" "$name --cpu: idle tasks"
  stop "$pid"

  start "$name-children" "$@" "$dir/children.py"
  record "$name-children" --pid "$pid" --subprocesses --duration 1
  check_children "$name-children"
  stop "$pid"

  start "$name-oncpu" "$@" "$dir/on_cpu.py"
  record "$name-oncpu" --pid "$pid" --duration 1 --cpu
  want "$tmp/$name-oncpu.txt" ";\[cpu-spinner\];spin_task \([^)]*\);crunch \([^)]*\);spin \([^)]*on_cpu.py:[0-9]+\) [0-9]+$" \
    "$name --cpu: the running task"
  wont "$tmp/$name-oncpu.txt" "cpu-idle|cpu-spinner-child" "$name --cpu: idle tasks"
  record "$name-onwall" --pid "$pid" --duration 0.3
  want "$tmp/$name-onwall.txt" "\[cpu-idle-2\];idle_two" "$name wall: idle tasks"
  stop "$pid"
}

for v in 3.9 3.10 3.11 3.12 3.13; do
  py=$(ls -d "$pyenv"/versions/$v.*/bin/python$v 2>/dev/null | tail -1)
  if [ -n "$py" ]; then run_interp "pyenv-$v" yes "$fixtures" "$py"; else skip "pyenv $v not found under $pyenv"; fi
done
if [ -x /usr/bin/python3.11 ]; then run_interp debian-3.11 yes "$fixtures" /usr/bin/python3.11; else skip "/usr/bin/python3.11 not found"; fi

# sid's interpreters in the chroot: the fixtures bind-mounted on its /mnt in
# a private mount namespace (runfiles are symlinks: bind the real folder).
real=$(dirname "$(readlink -f "$fixtures/seed.py")")
for v in 3.13 3.14 3.15; do
  if [ -x "$sid/usr/bin/python$v" ] && [ "$(id -u)" = 0 ]; then
    run_interp "sid-$v" no /mnt unshare --mount sh -c \
      "mount --bind '$real' '$sid/mnt' && exec /usr/sbin/chroot '$sid' /usr/bin/python$v \"\$0\"" 
  else
    skip "sid chroot with python$v not found at $sid (tools/sid_chroot.sh builds it; needs root)"
  fi
done

# ---- -- COMMAND, and how records end ------------------------------------------
py312=$(ls -d "$pyenv"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
py39=$(ls -d "$pyenv"/versions/3.9.*/bin/python3.9 2>/dev/null | tail -1)
if [ -n "$py312" ] && [ -n "$py39" ]; then
  # The agent goes on the command's PYTHONPATH: weak links show.
  for py in "$py312" "$py39"; do
    record launch --duration 3 -- "$py" "$fixtures/seed.py"
    want "$tmp/launch.txt" "$seed_under_parent" "-- $py: Task-not_awaited under parent"
    check_stats launch
    # With --no-agent the agent is not loaded: a root of its own.
    record launch-noagent --duration 3 --no-agent -- "$py" "$fixtures/seed.py"
    want "$tmp/launch-noagent.txt" "select \([^)]*\);\[Task-not_awaited\];func_not_awaited" "-- --no-agent"
    wont "$tmp/launch-noagent.txt" "$seed_under_parent" "-- --no-agent: a weak link"
  done
  # The command is ended with the record (nothing left running).
  if pgrep -f "$fixtures/seed.py" >/dev/null; then bad "the command outlived its record"; else ok; fi

  # -s (--subprocesses) from the start of the tree, ended by SIGINT once the
  # whole tree is ready (the parent prints READY after its children).
  "$tool" record -o "$tmp/launch-children.txt" -d 60 -s -- "$py312" "$fixtures/children.py" \
    >"$tmp/launch-children.out" 2>"$tmp/launch-children.err" </dev/null &
  rpid=$!
  pids+=("$rpid")
  for _ in $(seq 600); do grep -q READY "$tmp/launch-children.out" && break; sleep 0.05; done
  sleep 0.5
  kill -INT "$rpid"
  wait "$rpid" && ok || bad "launch-children: record failed: $(cat "$tmp/launch-children.err")"
  check_children launch-children

  # A target that forks and execs (the same executable, same pid): the
  # forked child followed, the exec'd program opened again.
  for py in "$py312" "$py39"; do
    "$tool" record -o "$tmp/forkexec.txt" -d 60 --subprocesses -- "$py" "$fixtures/fork_exec.py" \
      >"$tmp/forkexec.out" 2>"$tmp/forkexec.err" </dev/null &
    rpid=$!
    pids+=("$rpid")
    for _ in $(seq 600); do grep -q READY "$tmp/forkexec.out" && break; sleep 0.05; done
    sleep 0.5
    kill -INT "$rpid"
    wait "$rpid" && ok || bad "fork_exec: record failed: $(cat "$tmp/forkexec.err")"
    want "$tmp/forkexec.txt" ";\[before-exec\];before_exec \(" "$py fork_exec: before the exec"
    want "$tmp/forkexec.txt" ";\[forked-child\];forked_wait \(" "$py fork_exec: the forked child"
    want "$tmp/forkexec.txt" "$seed_under_parent" "$py fork_exec: after the exec"
    want "$tmp/forkexec.err" "; 2 processes sampled" "$py fork_exec: two processes"
    # Each process's threads under their own roots (TIDs, on 3.9 too).
    r1=$(grep "\[forked-child\]" "$tmp/forkexec.txt" | head -1 | cut -d';' -f1)
    r2=$(grep "\[before-exec\]" "$tmp/forkexec.txt" | head -1 | cut -d';' -f1)
    [ -n "$r1" ] && [ "$r1" != "$r2" ] && ok || bad "$py fork_exec: one root for both processes: '$r1' '$r2'"
  done

  # A daemon (double fork: its parent exits at once, before any scan): the
  # recorder, subreaper of the command's tree, adopts it, follows it after
  # the command exited, and ends when it ends (2 s in).
  "$tool" record -o "$tmp/daemon.txt" -d 60 --subprocesses -- "$py312" "$fixtures/daemon.py" 2 \
    >"$tmp/daemon.out" 2>"$tmp/daemon.err" </dev/null
  rc=$?
  dpid=$(awk '/READY/ {print $2}' "$tmp/daemon.out")
  [ "$rc" -eq 0 ] && [ -n "$dpid" ] && ok || bad "daemon: record exited $rc, READY '$dpid': $(cat "$tmp/daemon.err")"
  want "$tmp/daemon.txt" ";\[daemon-task\];daemon_work \(" "daemon: the daemon's task"
  # (The first child lives a moment: a scan that lands then samples it
  # too.  The launcher may not be sampled at all: it exits as soon as
  # that child has, and on a loaded machine it has been gone before its
  # Python could be found, with only the daemon sampled.  Hence 1 to 3;
  # that the daemon was followed is the check above.)
  want "$tmp/daemon.err" "; [123] process(es)? sampled" "daemon: the daemon, and perhaps the launcher"
  [ -n "$dpid" ] && ! kill -0 "$dpid" 2>/dev/null && ok || bad "daemon: $dpid outlived its record"

  # A child that is not Python, left running, does not keep the record
  # going once the target exited.
  t0=$(date +%s)
  "$tool" record -o "$tmp/helper.txt" -d 30 --subprocesses -- "$py312" -c \
    'import subprocess, time; print(subprocess.Popen(["sleep", "30"]).pid, flush=True); time.sleep(1)' \
    >"$tmp/helper.out" 2>"$tmp/helper.err" </dev/null
  t1=$(date +%s)
  helper=$(head -1 "$tmp/helper.out")
  [ -n "$helper" ] && pids+=("$helper")
  [ $((t1 - t0)) -lt 15 ] && ok || bad "a non-Python child kept the record going ($((t1 - t0)) s)"
  # (The child is Python for a moment, between its fork and its exec of
  # sleep: a scan that lands there samples it too, hence 1 or 2.)
  want "$tmp/helper.err" "the target exited; [12] process(es)? sampled" "non-Python child"
  [ -n "$helper" ] && kill "$helper" 2>/dev/null

  # Formats from -o's extension and from --format: the same stacks.
  "$tool" record -o "$tmp/fmt.json" -d 0.5 -- "$py312" "$fixtures/seed.py" 2>"$tmp/fmt.err" >/dev/null
  want "$tmp/fmt.err" "wrote .*fmt.json \(speedscope\)" "format from .json"
  grep -q '"\$schema": *"https://www.speedscope.app/file-format-schema.json"' "$tmp/fmt.json" && ok ||
    bad "fmt.json is not speedscope's: $(head -c 300 "$tmp/fmt.json")"
  "$tool" record -o "$tmp/fmt.out" --format speedscope -d 0.5 -- "$py312" "$fixtures/seed.py" 2>"$tmp/fmt.err" >/dev/null
  want "$tmp/fmt.err" "wrote .*fmt.out \(speedscope\)" "--format speedscope"
  start fmtseed "$py312" "$fixtures/seed.py"
  "$tool" record -o "$tmp/fmt.svg" -d 0.5 --pid "$pid" 2>"$tmp/fmt.err" >/dev/null
  stop "$pid"
  want "$tmp/fmt.err" "wrote .*fmt.svg \(svg\)" "format from .svg"
  want "$tmp/fmt.svg" "<svg" "svg output"
  want "$tmp/fmt.svg" "func_not_awaited" "svg output: the seed's frames"
  "$tool" record -o "$tmp/fmt.folded" -d 0.5 -- "$py312" "$fixtures/seed.py" 2>"$tmp/fmt.err" >/dev/null
  want "$tmp/fmt.err" "wrote .*fmt.folded \(collapsed\)" "collapsed by default"
  # Several outputs of one record: a flame graph, and the stacks on stdout.
  start multiseed env PYTHONPATH="$agent_dir" "$py312" "$fixtures/seed.py"
  "$tool" record -o "$tmp/multi.svg" -o - -d 0.5 --pid "$pid" 2>"$tmp/multi.err" >"$tmp/multi.out"
  stop "$pid"
  want "$tmp/multi.err" "wrote .*multi.svg \(svg\)" "-o twice: the svg"
  want "$tmp/multi.svg" "func_not_awaited" "-o twice: the svg's frames"
  want "$tmp/multi.out" "$seed_under_parent" "-o twice: the stacks on stdout"

  # --pid records: collapsed stacks on stdout without -o, --format over the
  # file's extension, the short options, --no-agent, intervals and
  # durations with units, and the write and permission failures.
  start optseed env PYTHONPATH="$agent_dir" "$py312" "$fixtures/seed.py"
  "$tool" record --pid "$pid" -d 0.3 >"$tmp/stdout.txt" 2>"$tmp/stdout.err" </dev/null
  want "$tmp/stdout.txt" "$seed_under_parent" "no -o: collapsed stacks on stdout"
  "$tool" record -p "$pid" -d 0.3 -f svg -o "$tmp/short.out" -i 2ms 2>"$tmp/short.err" </dev/null >/dev/null
  want "$tmp/short.err" "wrote .*short.out \(svg\)" "-p -f svg -o"
  want "$tmp/short.err" "\(interval 2.00 ms\)" "-i 2ms"
  want "$tmp/short.out" "<svg" "-f svg: a flame graph"
  "$tool" record --pid "$pid" -d 0.3 --format collapsed -o "$tmp/fmtc.json" 2>"$tmp/fmtc.err" </dev/null
  want "$tmp/fmtc.err" "wrote .*fmtc.json \(collapsed\)" "--format collapsed over .json"
  want "$tmp/fmtc.json" "$seed_under_parent" "--format collapsed: the stacks"
  record pidnoagent --pid "$pid" -d 0.3 --no-agent
  want "$tmp/pidnoagent.txt" "select \([^)]*\);\[Task-not_awaited\];func_not_awaited" "--pid --no-agent: a root"
  wont "$tmp/pidnoagent.txt" "$seed_under_parent" "--pid --no-agent: a weak link"
  record ivdefault --pid "$pid" -d 0.3
  want "$tmp/ivdefault.err" "\(interval 1.00 ms\)" "the default interval"
  record ivbare --pid "$pid" -d 0.3 --interval 250
  want "$tmp/ivbare.err" "\(interval 250.0 us\)" "--interval 250: microseconds"
  record ivzero --pid "$pid" -d 0.3 --interval 0
  want "$tmp/ivzero.err" "\(interval 1 ns\)" "--interval 0: as fast as possible"
  t0=$(date +%s%N)
  record dms --pid "$pid" --duration 500ms
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  [ "$ms" -ge 500 ] && [ "$ms" -lt 5000 ] && ok || bad "--duration 500ms took $ms ms"
  want "$tmp/dms.err" "the duration elapsed" "--duration 500ms"
  expect_exit 7 "cannot write" -- "$tool" record -o /dev/full --pid "$pid" -d 0.3
  if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
    expect_exit 4 "CAP_SYS_PTRACE" -- \
      setpriv --reuid=65534 --regid=65534 --clear-groups "$tool" record --pid "$pid" -d 0.3
  else
    skip "record's permission case needs root and setpriv (util-linux)"
  fi
  stop "$pid"
  # -- COMMAND with a PYTHONPATH of its own: the agent goes first (weak
  # links show) and the command still imports from the path it had.
  mkdir -p "$tmp/own"
  echo 'MARK = 1' >"$tmp/own/own_mark.py"
  PYTHONPATH="$tmp/own" "$tool" record -o "$tmp/pypath.txt" -d 3 -- "$py312" -c \
    "import own_mark, runpy; runpy.run_path('$fixtures/seed.py', run_name='__main__')" \
    2>"$tmp/pypath.err" </dev/null >/dev/null
  want "$tmp/pypath.txt" "$seed_under_parent" "PYTHONPATH of the command's own, and the agent's weak links"

  # The duration is honoured: -d 1 on a target that lives on.
  start cpubound "$py312" "$fixtures/cpu_bound.py"
  t0=$(date +%s%N)
  record dur --pid "$pid" -d 1 --interval 500us
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  [ "$ms" -ge 1000 ] && [ "$ms" -lt 10000 ] && ok || bad "-d 1 took $ms ms"
  want "$tmp/dur.err" "interval 500.0 us" "--interval 500us"
  want "$tmp/dur.txt" ";recurse \([^)]*\);spin \([^)]*cpu_bound.py:[0-9]+\) [0-9]+$" "cpu_bound stacks"
  # --cpu on a spinning program: its one stack, every sample.
  record durcpu --pid "$pid" -d 0.5 --cpu
  n=$(grep -vc ";spin (" "$tmp/durcpu.txt")
  [ "$n" -eq 0 ] && ok || bad "--cpu cpu_bound: $n stacks not in spin: $(cat "$tmp/durcpu.txt")"
  want "$tmp/durcpu.txt" ";spin \([^)]*cpu_bound.py:[0-9]+\) [0-9]+$" "--cpu cpu_bound"

  # SIGINT and SIGTERM end a record, which writes what it has.
  for sig in INT TERM; do
    "$tool" record -o "$tmp/sig.txt" --pid "$pid" -d 60 2>"$tmp/sig.err" </dev/null &
    rpid=$!
    sleep 1
    kill -"$sig" "$rpid"
    wait "$rpid"
    rc=$?
    [ "$rc" -eq 0 ] && ok || bad "SIG$sig: exited $rc: $(cat "$tmp/sig.err")"
    want "$tmp/sig.err" "stopped by a signal" "SIG$sig"
    want "$tmp/sig.txt" ";spin \(" "SIG$sig: stacks written"
  done
  stop "$pid"

  # The target killed mid-record: the record ends, with the data so far.
  "$tool" record -o "$tmp/killed.txt" -d 60 -- "$py312" "$fixtures/cpu_bound.py" >"$tmp/killed.out" 2>"$tmp/killed.err" </dev/null &
  rpid=$!
  pids+=("$rpid")
  for _ in $(seq 200); do grep -q READY "$tmp/killed.out" && break; sleep 0.05; done
  sleep 0.5
  kill -9 "$(awk '/READY/ {print $2}' "$tmp/killed.out")" 2>/dev/null
  wait "$rpid"
  rc=$?
  [ "$rc" -eq 0 ] && ok || bad "killed target: record exited $rc: $(cat "$tmp/killed.err")"
  want "$tmp/killed.err" "the target exited" "killed target: why it ended"
  want "$tmp/killed.txt" ";spin \(" "killed target: stacks written"
  check_stats killed

  # The status line, on a TTY only (script(1) gives one).
  if command -v script >/dev/null; then
    script -qec "'$tool' record -o '$tmp/tty.txt' -d 0.6 -- '$py312' '$fixtures/seed.py'" /dev/null >"$tmp/tty.log" 2>&1
    want "$tmp/tty.log" "recording: [0-9.]+ s, [0-9]+ samples, [0-9]+ errors" "status line on a TTY"
  fi
else
  skip "pyenv 3.12 and 3.9 needed for the -- COMMAND cases"
fi

summary
