#!/bin/sh
# Where the time of a task-aware sample goes: runs one case of
# //bench:task_bench under `perf record` (cpu-clock: this VM has no
# hardware counters) and splits the samples taken inside the timed loop by
# the source file of the function they landed in, grouped by stage:
#
#   syscalls      the kernel (process_vm_readv), its libc wrapper and the
#                 live memory source (core/memory/mem_live.c)
#   page view     finding pages and copying bytes out of them
#                 (core/memory/view.c; inlined memcpy and hashing)
#   snapshot      serving reads from a snapshot (core/memory/snapshot.c)
#   parsing       Python objects, tasks, coroutine chains, links
#                 (core/cpython/pyobjects.c, core/asyncio/*)
#   code, lines   code objects and line tables (pycode.c, linetable.c)
#   threads       threads and frames (pythreads.c, pyctx.c)
#   resolving     the link resolver (core/resolve/resolver.c)
#   naming        the sampler joining it all (core/sample/sampler.c)
#   other         the rest (libc, the benchmark)
#
# Rendering is not part of a sample; `task_bench --au_source=render`
# times it.  The microseconds are the stage's share of the mean CPU time
# per sample measured under perf (a little above the plain run's).
#
# Usage: bench/profile_tasks.sh [INTERP [COUNT [live|snapshot [SECONDS]]]]
#   defaults: pyenv-3.12 1000 live 3; CPU=N pins the run to vCPU N (default
#   0: this VM's two vCPUs differ in speed, see README.md)
# Needs perf (linux-perf) and root or perf_event_paranoid <= 1.
set -eu

interp=${1:-pyenv-3.12}
count=${2:-1000}
source=${3:-live}
seconds=${4:-3}
cpu=${CPU:-0}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Frame pointers and line info for the call graph and the file split; an
# output tree of its own, so the plain -c opt build stays as it is.
bazel build -c opt --copt=-g --copt=-fno-omit-frame-pointer --strip=never \
    --platform_suffix=profile //bench:task_bench >/dev/null 2>&1 ||
    bazel build -c opt --copt=-g --copt=-fno-omit-frame-pointer --strip=never \
        --platform_suffix=profile //bench:task_bench
bin=$(bazel info -c opt --platform_suffix=profile bazel-bin 2>/dev/null)/bench/task_bench
data=$(mktemp /tmp/profile_tasks.XXXXXX)
trap 'rm -f "$data" "$data.txt" "$data.out"' EXIT

cd "$bin.runfiles/asyncunwind"
taskset -c "$cpu" perf record -q --no-inherit -e cpu-clock -F 4000 -g -o "$data" "$bin" \
    --au_python="$interp" --au_tasks="$count" --au_source="$source" \
    --benchmark_min_time="$seconds" >"$data.out" 2>/dev/null || true
grep -E "^tasks/" "$data.out" || true

# Self time by source file, only samples under run_tasks (the timed loop);
# --no-inherit above keeps the fixture (a child) out: perf cannot resolve
# the chroot interpreters' files from the host.
perf report -i "$data" --comm task_bench --no-children --sort parent,dso,srcfile \
    -p '^run_tasks$' -x -g none 2>/dev/null | grep '%' >"$data.txt" || true

us=$(awk '/^tasks\//{for(i=1;i<=NF;i++) if($i ~ /^us_cpu=/){v=substr($i,8); m=1; if(v ~ /k$/){m=1000; sub(/k$/,"",v)}; print v*m}}' "$data.out")
awk -v src="$source" -v interp="$interp" -v count="$count" -v us="${us:-0}" '
function stage(dso, file) {
    if (dso ~ /kernel/ || file ~ /^(mem_live\.c|process_vm_readv\.c)$/) return "syscalls"
    if (file ~ /^(view\.c|string_fortified\.h|internal\.h)$/) return "page view"
    if (file == "snapshot.c") return "snapshot"
    if (file ~ /^(pyobjects\.c|pytasks\.c|pycoro\.c|pylinks\.c|pyagent\.c|bytes\.h)$/) return "parsing"
    if (file ~ /^(pycode\.c|linetable\.c)$/) return "code, lines"
    if (file ~ /^(pythreads\.c|pyctx\.c)$/) return "threads"
    if (file == "resolver.c") return "resolving"
    if (file == "sampler.c") return "naming"
    return "other"
}
{
    pct = $1; sub(/%/, "", pct)
    # columns: percent, parent, dso, source file (absent for the kernel)
    s = stage($3, NF >= 4 ? $4 : "")
    by[s] += pct; total += pct
}
END {
    if (total == 0) { print "no samples in the timed loop"; exit 1 }
    printf "\nwhere a %s sample of %s tasks on %s spends its time (%.0f us CPU per sample under perf):\n", src, count, interp, us
    n = split("syscalls|page view|snapshot|parsing|code, lines|threads|resolving|naming|other", order, "|")
    for (i = 1; i <= n; i++)
        if (by[order[i]] > 0)
            printf "  %-12s %5.1f%%  %8.1f us\n", order[i], 100 * by[order[i]] / total, us * by[order[i]] / total
}' "$data.txt"
