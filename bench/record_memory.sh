#!/bin/bash
# record_memory: the sampler's memory over a long record of many tasks
# (issue 10, "Sampler memory": 10,000 tasks over 10 minutes, RSS flat and
# at most 32 MB).
#
#   bench/record_memory.sh [-n TASKS] [-d SECONDS] [-i INTERVAL] [-p PYTHON] [-t TOOL]
#
# Starts python_fixtures/many_tasks.py TASKS with the agent, attaches
# `asyncunwind record --pid` for SECONDS at INTERVAL (record's default
# unless given), reads the recorder's VmRSS from /proc every 10 s, and
# prints the series, then min/max and the growth between the first
# minute's end and the last reading.  Exit status 1 when the last RSS is
# above 32 MiB or grew by more than 10% after the first minute.
set -euo pipefail

tasks=10000
seconds=600
interval=""
python=""
tool=""
while getopts "n:d:i:p:t:h" opt; do
  case "$opt" in
    n) tasks="$OPTARG" ;;
    d) seconds="$OPTARG" ;;
    i) interval="$OPTARG" ;;
    p) python="$OPTARG" ;;
    t) tool="$OPTARG" ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [[ -z "$tool" ]]; then
  bazel build -c opt //:asyncunwind >/dev/null 2>&1
  tool="$root/bazel-bin/asyncunwind"
fi
if [[ -z "$python" ]]; then
  python="$(ls -d "${PYENV_ROOT:-/root/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)"
  [[ -n "$python" ]] || python=python3
fi

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

PYTHONPATH="$("$tool" agent-path)" "$python" python_fixtures/many_tasks.py "$tasks" >"$tmp/fixture.out" &
target=$!
pids+=("$target")
for _ in $(seq 1200); do grep -q READY "$tmp/fixture.out" && break; sleep 0.05; done
grep -q READY "$tmp/fixture.out" || { echo "record_memory: the fixture never got ready" >&2; exit 1; }

args=(record --pid "$target" -d "$seconds" -o "$tmp/profile.txt")
[[ -z "$interval" ]] || args+=(-i "$interval")
"$tool" "${args[@]}" 2>"$tmp/record.err" &
rec=$!
pids+=("$rec")

echo "record_memory: $tasks tasks on $("$python" -c 'import sys; print(sys.version.split()[0])'), $seconds s, interval ${interval:-default}"
printf '%8s %10s\n' "t (s)" "RSS (KiB)"
series=()
t=0
while kill -0 "$rec" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$rec/status" 2>/dev/null || true)
  if [[ -n "$rss" ]]; then
    printf '%8d %10d\n' "$t" "$rss"
    series+=("$t:$rss")
  fi
  sleep 10
  t=$((t + 10))
done
wait "$rec" || { echo "record_memory: record failed:" >&2; cat "$tmp/record.err" >&2; exit 1; }
cat "$tmp/record.err"

python3 - "${series[@]}" <<'EOF'
import sys
pts = [tuple(map(int, a.split(":"))) for a in sys.argv[1:]]
if not pts:
    print("no readings"); sys.exit(1)
rss = [r for _, r in pts]
after = [r for t, r in pts if t >= 60] or rss
base, last = after[0], rss[-1]
growth = (last - base) / base * 100 if base else 0.0
print("RSS min %d KiB, max %d KiB, last %d KiB (%.1f MiB); after the first minute: %d -> %d KiB (%+.1f%%)"
      % (min(rss), max(rss), last, last / 1024, base, last, growth))
ok = last <= 32 * 1024 and growth <= 10.0
print("within the bounds (<= 32 MiB, <= 10% growth)" if ok else "OUT OF BOUNDS")
sys.exit(0 if ok else 1)
EOF
