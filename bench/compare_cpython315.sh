#!/bin/sh
# asyncunwind beside CPython 3.15's own async-aware sampler, on the same
# process: python_fixtures/many_tasks.py COUNT under sid's python3.15 in
# the chroot of tools/sid_chroot.sh.
#
#   1. CPython's sampler, in the chroot (it reads /proc there, so /proc is
#      mounted for the run and unmounted after, unless it was mounted
#      already):
#        python3.15 -m profiling.sampling attach --async-aware \
#            --async-mode all -d SECONDS PID
#      at its default rate (1 kHz), which it cannot reach on a thousand
#      tasks: it samples back to back, and its own summary ("Captured N
#      samples in T seconds") gives the rate it achieved.  Its output
#      (pstats) is computed after sampling and not timed.
#   2. asyncunwind's //bench:task_rate on the same process for as long,
#      back to back: au_sampler_sample alone, then with au_render
#      (collapsed) after each sample, as a profiler printing stacks.
#
# Both run pinned to the same CPU (CPU, default 0: this VM's vCPU 1 is
# about 1.6x slower, README.md).  Printed per tool:
# samples, samples/s, time per sample (for CPython: 1 / its rate; it runs
# back to back), and the ratios asyncunwind / CPython.
#
# Usage: bench/compare_cpython315.sh [SECONDS [COUNT]]   (defaults 10 1000)
# Needs root (chroot, mount); ASYNCUNWIND_SID_ROOT overrides the chroot.
set -eu

seconds=${1:-10}
count=${2:-1000}
cpu=${CPU:-0}
root=${ASYNCUNWIND_SID_ROOT:-/var/lib/asyncunwind/sid}
repo=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "compare_cpython315: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (chroot and mount)"
[ -x "$root/usr/bin/python3.15" ] || die "no $root/usr/bin/python3.15 (tools/sid_chroot.sh builds it)"

cd "$repo"
bazel build -c opt //bench:task_rate >/dev/null 2>&1 || bazel build -c opt //bench:task_rate
rate_bin=$(bazel info -c opt bazel-bin 2>/dev/null)/bench/task_rate
[ -x "$rate_bin" ] || die "no $rate_bin"

work=$(mktemp -d "$root/tmp/asyncunwind-compare.XXXXXX")
inside=${work#"$root"}
cp python_fixtures/many_tasks.py "$work/"
pid=
mounted=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    [ -n "$mounted" ] && umount "$root/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The fixture, in the chroot; READY <pid> once every task has started.
/usr/sbin/chroot "$root" /usr/bin/python3.15 "$inside/many_tasks.py" "$count" \
    >"$work/fixture.out" 2>&1 &
pid=$! # chroot(8) execs the interpreter: the same process
for _ in $(seq 1 200); do
    grep -q '^READY' "$work/fixture.out" 2>/dev/null && break
    sleep 0.1
done
ready=$(awk '/^READY/ {print $2}' "$work/fixture.out")
[ "$ready" = "$pid" ] || die "the fixture did not start: $(cat "$work/fixture.out")"
sleep 1 # let the loop settle in epoll_wait

if ! mountpoint -q "$root/proc"; then
    mount -t proc proc "$root/proc"
    mounted=1
fi

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "many_tasks.py $count under sid python3.15 ($(/usr/sbin/chroot "$root" /usr/bin/python3.15 -V 2>&1)), pid $pid; $seconds s each, pinned to CPU $cpu; load $load"

echo
echo "== CPython 3.15: python3.15 -m profiling.sampling attach --async-aware --async-mode all -d $seconds $pid"
taskset -c "$cpu" /usr/sbin/chroot "$root" /usr/bin/python3.15 -m profiling.sampling attach \
    --async-aware --async-mode all -d "$seconds" "$pid" >"$work/cpython.out" 2>&1 ||
    die "CPython's sampler failed: $(tail -5 "$work/cpython.out")"
grep -E '^(Captured|Sample rate|Error rate|Warning: missed)' "$work/cpython.out" | sed 's/^/  /'
cpy_n=$(awk '/^Captured/ {print $2}' "$work/cpython.out")
cpy_t=$(awk '/^Captured/ {print $5}' "$work/cpython.out")
[ -n "$cpy_n" ] && [ -n "$cpy_t" ] || die "no 'Captured N samples in T seconds' line"

echo
echo "== asyncunwind: task_rate --pid $pid --seconds $seconds"
taskset -c "$cpu" "$rate_bin" --pid "$pid" --seconds "$seconds" >"$work/au.out" ||
    die "task_rate failed: $(cat "$work/au.out")"
grep -v '^RESULT' "$work/au.out" | sed 's/^/  /'
echo
echo "== asyncunwind: task_rate --pid $pid --seconds $seconds --render"
taskset -c "$cpu" "$rate_bin" --pid "$pid" --seconds "$seconds" --render >"$work/aur.out" ||
    die "task_rate --render failed: $(cat "$work/aur.out")"
grep -v '^RESULT' "$work/aur.out" | sed 's/^/  /'

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$1"; }
echo
awk -v cn="$cpy_n" -v ct="$cpy_t" \
    -v an="$(field "$work/au.out" samples)" -v at="$(field "$work/au.out" seconds)" \
    -v am="$(field "$work/au.out" median_us)" \
    -v rn="$(field "$work/aur.out" samples)" -v rt="$(field "$work/aur.out" seconds)" \
    -v rm="$(field "$work/aur.out" median_us)" -v count="$count" '
BEGIN {
    cr = cn / ct; cus = 1e6 / cr
    ar = an / at; aus = 1e6 / ar
    rr = rn / rt; rus = 1e6 / rr
    printf "%-44s %9s %12s %12s %9s\n", "", "samples/s", "us/sample", "median us", "x CPython"
    printf "%-44s %9.1f %12.0f %12s %9s\n", "CPython 3.15 profiling.sampling (all tasks)", cr, cus, "-", "1.0"
    printf "%-44s %9.1f %12.0f %12.0f %9.1f\n", "asyncunwind au_sampler_sample", ar, aus, am, ar / cr
    printf "%-44s %9.1f %12.0f %12.0f %9.1f\n", "asyncunwind sample + au_render (collapsed)", rr, rus, rm, rr / cr
    printf "\n(us/sample = 1 / samples/s: both sample back to back; %d tasks)\n", count + 1
}'
