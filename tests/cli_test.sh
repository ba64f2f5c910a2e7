#!/usr/bin/env bash
# The asyncunwind command line, end to end: every documented exit code and
# message, `dump` (text and collapsed) against live CPython processes on
# pyenv 3.12, Debian's static 3.11 and sid's 3.14 (in the chroot), and
# `snapshot` -> `replay` giving the very same output; the short options,
# `dump --format tree`, snapshot's formats and --no-agent, --attempts 1.
#
# A missing interpreter is reported as a skip with its reason, and fails the
# test when CI=true (CI must have all of them).
set -uo pipefail
tool="$(pwd)/$1"
# fixtures, sid, pyenv, tmp, pids, ok/bad/skip, expect_exit, start, summary
. "$(dirname "$0")/testlib.sh"

# ---- command line and errors -------------------------------------------------
expect_exit 0 "usage: asyncunwind" -- "$tool" --help
expect_exit 0 "exit codes" -- "$tool" -h
# Each command's own page: its usage line and the options it takes.
expect_exit 0 "usage: asyncunwind dump --pid PID" -- "$tool" dump --help
expect_exit 0 "--attempts N" -- "$tool" dump -h
expect_exit 0 "usage: asyncunwind tree --pid PID" -- "$tool" tree --help
expect_exit 0 "\[await\], \[strong\] or \[weak\]" -- "$tool" tree --help
expect_exit 0 "usage: asyncunwind snapshot --pid PID -o FILE" -- "$tool" snapshot --help
expect_exit 0 "usage: asyncunwind replay FILE" -- "$tool" replay --help
expect_exit 0 "usage: asyncunwind agent-path" -- "$tool" agent-path --help
expect_exit 0 "usage: asyncunwind record" -- "$tool" record --help
expect_exit 2 "missing command" -- "$tool"
expect_exit 2 "unknown command" -- "$tool" frobnicate
expect_exit 2 "pid is required" -- "$tool" dump
expect_exit 2 "positive process id" -- "$tool" dump --pid abc
expect_exit 2 "text, collapsed, tree or json" -- "$tool" dump --pid 1 --format xml
expect_exit 2 "needs -o FILE" -- "$tool" snapshot --pid 1
expect_exit 2 "needs a snapshot FILE" -- "$tool" replay
expect_exit 3 "no such process" -- "$tool" dump --pid 2147483647
expect_exit 5 "not a Python process" -- "$tool" dump --pid $$
expect_exit 7 "cannot open" -- "$tool" replay "$tmp/missing.snap"
expect_exit 2 "agent-path takes no arguments" -- "$tool" agent-path --pid 1
expect_exit 2 "replay takes only" -- "$tool" replay x.snap --no-agent
# A usage error names the argument at fault.
expect_exit 2 "unknown option '--frob'" -- "$tool" dump --frob
expect_exit 2 "unknown option '-x'" -- "$tool" dump -x --pid 1
expect_exit 2 "a value is missing after '--pid'" -- "$tool" dump --pid
expect_exit 2 "unexpected argument 'extra'" -- "$tool" dump --pid 1 extra
expect_exit 2 "too many arguments, from 'b.snap'" -- "$tool" replay a.snap b.snap
expect_exit 2 "-o is for snapshot" -- "$tool" dump --pid 1 -o x.snap

# ---- agent-path ----------------------------------------------------------------
# It writes the agent the binary carries into a directory named after the
# files' digest, under the user's cache, and prints it; a second run finds
# it complete; with no HOME and no XDG_CACHE_HOME, /tmp/asyncunwind-UID.
agent_dir=$(env -u HOME XDG_CACHE_HOME="$tmp/cache" "$tool" agent-path)
if [ -f "$agent_dir/sitecustomize.py" ] && [ -f "$agent_dir/asyncunwind_agent.py" ] &&
   [ "${agent_dir#"$tmp/cache/asyncunwind/agent-"}" != "$agent_dir" ]; then ok; else
  bad "agent-path printed '$agent_dir', without the agent's files under the cache"; fi
again=$(env -u HOME XDG_CACHE_HOME="$tmp/cache" "$tool" agent-path)
if [ "$again" = "$agent_dir" ]; then ok; else bad "agent-path moved: $agent_dir then $again"; fi
if cmp -s "$agent_dir/sitecustomize.py" "$(pwd)/agent/sitecustomize.py"; then ok; else
  bad "agent-path wrote a sitecustomize.py that is not agent/'s"; fi
tmp_dir=$(env -u HOME -u XDG_CACHE_HOME "$tool" agent-path)
case "$tmp_dir" in "/tmp/asyncunwind-$(id -u)/agent-"*) ok ;; *) bad "agent-path without HOME: $tmp_dir" ;; esac
printf 'garbage' >"$tmp/garbage.snap"
expect_exit 7 "not a valid snapshot" -- "$tool" replay "$tmp/garbage.snap"

# ---- live processes ----------------------------------------------------------
# start NAME ARGV... (testlib.sh): run a fixture, wait for READY, set $pid.

check_live() {
  local name=$1
  "$tool" dump --pid "$pid" >"$tmp/$name.txt" 2>"$tmp/err" || { bad "$name: dump failed: $(cat "$tmp/err")"; return; }
  for want in "alpha_inner (.*threads.py:24)" "beta_deep (.*threads.py:34)" \
              "gamma_only (.*threads.py:48)" "main_wait (.*threads.py:54)" \
              "^Process $pid: CPython 3\\."; do
    grep -q -- "$want" "$tmp/$name.txt" || bad "$name: no '$want' in dump: $(cat "$tmp/$name.txt")"
  done
  "$tool" dump --pid "$pid" --format collapsed >"$tmp/$name.col" || bad "$name: collapsed failed"
  [ "$(wc -l <"$tmp/$name.col")" -eq 4 ] || bad "$name: collapsed should have 4 lines"
  grep -q ";beta_entry (.*threads.py:42);beta_mid (.*threads.py:38);beta_deep (.*threads.py:34) 1$" \
    "$tmp/$name.col" || bad "$name: collapsed beta stack: $(cat "$tmp/$name.col")"
  "$tool" snapshot --pid "$pid" -o "$tmp/$name.snap" >"$tmp/$name.live" 2>/dev/null || bad "$name: snapshot failed"
  "$tool" replay "$tmp/$name.snap" >"$tmp/$name.replayed" || bad "$name: replay failed"
  cmp -s "$tmp/$name.live" "$tmp/$name.replayed" || bad "$name: replay differs from live"
  ok
}

py312=$(ls -d "$pyenv"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)
if [ -n "$py312" ]; then
  start pyenv312 "$py312" "$fixtures/threads.py"
  check_live pyenv312
  # The seed program with the agent (PYTHONPATH=$(asyncunwind agent-path)):
  # Task-not_awaited under its creator; with --no-agent, a root of its own.
  start seed312 env PYTHONPATH="$agent_dir" "$py312" "$fixtures/seed.py"
  "$tool" dump --pid "$pid" --format collapsed >"$tmp/seed.col" 2>"$tmp/err" || bad "seed: dump: $(cat "$tmp/err")"
  grep -q ";\[Task-1\];parent (.*seed.py:35);\[Task-not_awaited\];func_not_awaited (.*seed.py:24);sleep (.*tasks.py:[0-9]*) 1$" \
    "$tmp/seed.col" && ok || bad "seed: Task-not_awaited not under parent: $(cat "$tmp/seed.col")"
  "$tool" dump --pid "$pid" >"$tmp/seed.txt" 2>/dev/null
  grep -q "^    \[Task-not_awaited\] created by Task-1$" "$tmp/seed.txt" && ok || bad "seed: text: $(cat "$tmp/seed.txt")"
  "$tool" dump --pid "$pid" --format collapsed --no-agent >"$tmp/seed.noagent" 2>/dev/null
  grep -q "select ([^)]*);\[Task-not_awaited\];func_not_awaited" "$tmp/seed.noagent" && ok ||
    bad "seed --no-agent: Task-not_awaited should be a root: $(cat "$tmp/seed.noagent")"
  "$tool" snapshot --pid "$pid" -o "$tmp/seed.snap" >"$tmp/seed.live" 2>/dev/null || bad "seed: snapshot failed"
  "$tool" replay "$tmp/seed.snap" >"$tmp/seed.replayed" || bad "seed: replay failed"
  cmp -s "$tmp/seed.live" "$tmp/seed.replayed" && grep -q "created by Task-1" "$tmp/seed.replayed" && ok ||
    bad "seed: replay differs from live, or lost the weak link"
  # dump --format tree is tree; short options are the long ones.
  "$tool" tree --pid "$pid" >"$tmp/seed.tree" 2>/dev/null
  "$tool" dump -p "$pid" -f tree >"$tmp/seed.dumptree" 2>/dev/null
  grep -q "── \[weak\] Task-not_awaited$" "$tmp/seed.tree" && cmp -s "$tmp/seed.tree" "$tmp/seed.dumptree" && ok ||
    bad "dump -p -f tree should print what tree prints: $(cat "$tmp/seed.tree") vs $(cat "$tmp/seed.dumptree")"
  # snapshot prints in the format asked for, and replay gives it back.
  "$tool" snapshot -p "$pid" --output "$tmp/seedc.snap" -f collapsed >"$tmp/seedc.live" 2>/dev/null ||
    bad "snapshot -f collapsed failed"
  "$tool" replay "$tmp/seedc.snap" --format collapsed >"$tmp/seedc.replayed" 2>/dev/null
  grep -q ";\[Task-1\];parent (.*seed.py:35);\[Task-not_awaited\];func_not_awaited" "$tmp/seedc.live" &&
    cmp -s "$tmp/seedc.live" "$tmp/seedc.replayed" && ok ||
    bad "snapshot -f collapsed, then replay: $(cat "$tmp/seedc.live") vs $(cat "$tmp/seedc.replayed")"
  # snapshot --no-agent: the agent's records ignored.
  "$tool" snapshot --pid "$pid" -o "$tmp/seedna.snap" --no-agent >"$tmp/seedna.live" 2>/dev/null
  want "$tmp/seedna.live" "Task-not_awaited" "snapshot --no-agent: the task"
  wont "$tmp/seedna.live" "created by" "snapshot --no-agent: a weak link"
  # --attempts 1 takes exactly one sample (the count comes from the hook
  # bench/dump_retry.sh reads); more than 1,000 is refused.
  ASYNCUNWIND_RETRY_STATS=1 "$tool" dump --pid "$pid" --attempts 1 >/dev/null 2>"$tmp/att.err"
  want "$tmp/att.err" "retry stats: attempts 1, " "--attempts 1: one sample"
  expect_exit 2 "from 1 to 1000" -- "$tool" tree --pid "$pid" --attempts 1001
  # Exit 7: the snapshot's file cannot be written.
  expect_exit 7 "cannot write" -- "$tool" snapshot --pid "$pid" -o "$tmp/no/such/dir/x.snap"
  # Exit 6: a snapshot without the memory a sample reads (its REGION
  # records dropped) cannot be replayed.
  "$py312" - "$tmp/seed.snap" "$tmp/noregions.snap" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
out, at = bytearray(data[:16]), 16
while at + 8 <= len(data):
    kind, n = struct.unpack_from("<II", data, at)
    end = at + 8 + ((n + 7) & ~7)
    if kind != 3:  # REGION: bytes of the target (docs/SNAPSHOT.md)
        out += data[at:end]
    at = end
open(sys.argv[2], "wb").write(out)
EOF
  expect_exit 6 "could not be read" -- "$tool" replay "$tmp/noregions.snap"
  # Permission: another user may not read a root process.
  if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
    expect_exit 4 "CAP_SYS_PTRACE" -- setpriv --reuid=65534 --regid=65534 --clear-groups "$tool" dump --pid "$pid"
    # Root without CAP_SYS_PTRACE: the hint says so, rather than "run as root".
    expect_exit 4 "you are root, but without CAP_SYS_PTRACE" -- \
      setpriv --bounding-set=-sys_ptrace "$tool" dump --pid "$pid"
  else
    skip "the permission cases need root and setpriv (util-linux)"
  fi
  # More tasks than a sample holds (65,536): the first ones, and a sample
  # that says it was cut, on stderr and in JSON ("truncated"), not partial.
  start many312 "$py312" "$fixtures/many_tasks.py" 65600
  "$tool" dump --pid "$pid" --format json >"$tmp/many.json" 2>"$tmp/many.err" || bad "many: dump: $(cat "$tmp/many.err")"
  grep -q "warning: the sample was cut at a limit (more than 65,536 tasks): the rest is not shown" "$tmp/many.err" && ok ||
    bad "many: no warning of the cut: $(cat "$tmp/many.err")"
  grep -q "^hint: a sample holds at most 65,536 tasks, 1,024 threads and 40,960 pages (160 MiB) of the target" "$tmp/many.err" && ok ||
    bad "many: the hint should spell the limits out: $(cat "$tmp/many.err")"
  grep -q '"partial":false,"truncated":true,' "$tmp/many.json" && grep -q '"tasks":\[' "$tmp/many.json" && ok ||
    bad "many: JSON should be truncated, not partial: $(head -c 400 "$tmp/many.json")"
  n=$(grep -o '"name":"idle-[a-z]*-[0-9]*"' "$tmp/many.json" | sort -u | wc -l)
  [ "$n" -ge 65535 ] && [ "$n" -le 65536 ] && ok || bad "many: $n idle tasks, want 65,535 or 65,536 of 65,600"
  kill "$pid" 2>/dev/null
  # A gather of 2,000 children (coroutines and tasks), all of them tasks of
  # a Python subclass of asyncio.Task: every child under the holder.
  start gather312 "$py312" "$fixtures/big_gather.py"
  "$tool" dump --pid "$pid" --format collapsed >"$tmp/gather.col" 2>"$tmp/gather.err" || bad "big_gather: dump: $(cat "$tmp/gather.err")"
  n=$(grep -c ";\[holder\];holder (.*big_gather.py:[0-9]*);\[[^]]*\];leaf (.*big_gather.py:31)" "$tmp/gather.col")
  [ "$n" -eq 2000 ] && [ "$(wc -l <"$tmp/gather.col")" -eq 2000 ] && ok ||
    bad "big_gather: $n of $(wc -l <"$tmp/gather.col") stacks under the holder, want 2000 of 2000"
  kill "$pid" 2>/dev/null
else
  skip "pyenv 3.12 not found under $pyenv"
fi

# 3.9 and 3.10 keep only pthread ids: threads are still shown by their
# Linux TIDs (found in glibc's thread descriptors), and a snapshot keeps
# the mapping, so that its replay shows the same TIDs.
for minor in 9 10; do
  py=$(ls -d "$pyenv"/versions/3.$minor.*/bin/python3.$minor 2>/dev/null | tail -1)
  if [ -z "$py" ]; then skip "pyenv 3.$minor not found under $pyenv"; continue; fi
  start "pyenv3$minor" "$py" "$fixtures/threads.py"
  check_live "pyenv3$minor"
  heads=$(grep -o '^Thread [^ ]*' "$tmp/pyenv3$minor.txt" | cut -d' ' -f2)
  n=0
  for tid in $heads; do
    [ -d "/proc/$pid/task/$tid" ] && n=$((n + 1)) || bad "3.$minor: thread '$tid' is no TID of $pid"
  done
  [ "$n" -eq 4 ] && ok || bad "3.$minor: $n of 4 threads shown by TID: $heads"
  grep -q "^Thread $pid \"MainThread\"" "$tmp/pyenv3$minor.replayed" && ok ||
    bad "3.$minor: the replay should show the main thread as $pid: $(grep '^Thread' "$tmp/pyenv3$minor.replayed")"
  kill "$pid" 2>/dev/null
done

# An interpreter outside 3.9-3.15: refused with the version named.
py38=$(ls -d "$pyenv"/versions/3.8.*/bin/python3.8 2>/dev/null | tail -1)
if [ -n "$py38" ]; then
  start pyenv38 "$py38" -c 'import os, time; print("READY", os.getpid(), flush=True); time.sleep(60)'
  expect_exit 5 "runs CPython 3.8: unsupported" -- "$tool" dump --pid "$pid"
  expect_exit 5 "unsupported version" -- "$tool" record --pid "$pid" -d 0.3
fi

if [ -x /usr/bin/python3.11 ]; then
  start debian311 /usr/bin/python3.11 "$fixtures/threads.py"
  check_live debian311
else
  skip "/usr/bin/python3.11 not found"
fi

if [ -x "$sid/usr/bin/python3.14" ] && [ "$(id -u)" = 0 ]; then
  # The fixture must be visible inside the chroot: bind-mount its folder on
  # the chroot's /mnt in a private mount namespace (nothing is written).
  # Runfiles are symlinks whose targets do not exist inside the chroot, so
  # bind the real folder.
  real=$(dirname "$(readlink -f "$fixtures/threads.py")")
  start sid314 unshare --mount sh -c \
    "mount --bind '$real' '$sid/mnt' && exec /usr/sbin/chroot '$sid' /usr/bin/python3.14 /mnt/threads.py"
  check_live sid314
  # 3.14 names OS threads after threading.Thread.name.
  grep -q '"worker-alpha"' "$tmp/sid314.txt" || bad "sid314: thread names: $(cat "$tmp/sid314.txt")"
else
  skip "sid chroot with python3.14 not found at $sid (tools/sid_chroot.sh builds it; needs root)"
fi

summary
