#!/usr/bin/env bash
# Reading a busy process without stopping it never shows a stack that no
# thread had: `record` samples python_fixtures/busy_service.py (tasks that
# run and suspend hundreds of times a second, worker threads that come and
# go) for 2 s on every interpreter, and every thread's stack must start
# where a thread's stack starts (`<module>`, or threading's `_bootstrap`)
# or with the note that says it was read in part (`[partial stack]`,
# `[frame chain loops]`; docs/CLI.md), or be empty: a thread being born
# or ending runs no Python for a moment (a new thread's state even carries
# its creator's ids until the thread sets its own).  Before the reader checked the
# shapes of a torn chain (core/cpython/pythreads.c, walk_frames), 1-3 % of
# the main thread's stacks started elsewhere on every version (a stack of
# a coroutine's frames alone, or none at all, or `<unknown>` frames), most
# of them unmarked.  Allowed: 0.1 % of the stacks, for what no check
# catches (a link to a frame that was freed and reused in between).
# Also required: some stacks marked at all (over all interpreters), so
# that the fixture is known to be busy enough to test anything.  Where the
# note goes in every output is tested without a live process, where it
# cannot depend on the machine's load: tests/partial_note_test.py.
# A missing interpreter is a skip, and a failure when CI=true.
set -uo pipefail
tool="$(pwd)/$1"
# fixtures, sid, pyenv, tmp, pids, ok/bad/skip, start, summary
. "$(dirname "$0")/testlib.sh"
start_strict=1
marked_all=0

# check NAME: the record of NAME, counted by how each stack starts.
check() {
  local name=$1 f="$tmp/$1.collapsed"
  # "thread TID (name);FIRST;..." COUNT: the entry after the thread's.
  read -r total marked empty torn < <(awk '
    { c = $NF; total += c
      rest = $0; sub(/^(process [0-9]+;)?thread [^;]*;/, "", rest)
      if (rest ~ /^\[(partial stack|frame chain loops)\]/) marked += c
      else if ($0 !~ /;/) empty += c
      else if (rest !~ /^(<module>|(Thread\.)?_bootstrap) \(/) { torn += c; if (shown++ < 3) print "  " substr($0, 1, 300) > "/dev/stderr" } }
    END { print total + 0, marked + 0, empty + 0, torn + 0 }' "$f")
  echo "$name: $total stacks, $marked marked partial, $empty empty, $torn starting elsewhere"
  marked_all=$((marked_all + marked))
  [ "$total" -ge 1000 ] && ok || bad "$name: only $total stacks recorded"
  [ $((torn * 1000)) -le "$total" ] && ok || bad "$name: $torn of $total stacks start where no thread's stack starts"
}

# run NAME DIR PREFIX...: PREFIX runs the fixture found in DIR.
run() {
  local name=$1 dir=$2
  shift 2
  start "$name" "$@" "$dir/busy_service.py"
  if grep -q READY "$tmp/$name.ready"; then
    "$tool" record --pid "$pid" --duration 2 -o "$tmp/$name.collapsed" 2>"$tmp/$name.err" ||
      bad "$name: record failed: $(cat "$tmp/$name.err")"
    check "$name"
  fi
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

for v in 3.9 3.10 3.11 3.12 3.13; do
  py=$(ls -d "$pyenv"/versions/$v.*/bin/python$v 2>/dev/null | tail -1)
  if [ -n "$py" ]; then run "pyenv-$v" "$fixtures" "$py"; else skip "pyenv $v not found under $pyenv"; fi
done
if [ -x /usr/bin/python3.11 ]; then run debian-3.11 "$fixtures" /usr/bin/python3.11; else skip "/usr/bin/python3.11 not found"; fi
# sid's interpreters in the chroot, the fixtures bind-mounted on its /mnt in
# a private mount namespace (runfiles are symlinks: bind the real folder).
real=$(dirname "$(readlink -f "$fixtures/busy_service.py")")
for v in 3.13 3.14 3.15; do
  if [ -x "$sid/usr/bin/python$v" ] && [ "$(id -u)" = 0 ]; then
    run "sid-$v" /mnt unshare --mount sh -c \
      "mount --bind '$real' '$sid/mnt' && exec /usr/sbin/chroot '$sid' /usr/bin/python$v \"\$0\""
  else
    skip "sid chroot with python$v not found at $sid (tools/sid_chroot.sh builds it; needs root)"
  fi
done
[ "$marked_all" -ge 1 ] && ok || bad "no stack marked partial on any interpreter: is the fixture busy?"
summary
