#!/usr/bin/env bash
# What the agent costs per task in instructions, which unlike time does not
# move with the machine's other tenants: callgrind counts the `create`
# workload of bench/agent_overhead.py at two sizes, with and without the
# agent, and the difference divided by the difference in tasks is the cost
# of one task (start-up and warm-up cancel out).
#
#   bench/agent_instructions.sh [-a AGENT_DIR] [-r ROOT] [-w WORKLOAD] PYTHON...
#
#   PYTHON     an interpreter's path (inside ROOT with -r)
#   AGENT_DIR  the agent's directory (default: agent/)
#   ROOT       run in this chroot (e.g. /var/lib/asyncunwind/sid, for sid's
#              3.14 and 3.15), with /proc mounted in a mount namespace of
#              its own; valgrind must be installed there too
#   WORKLOAD   create (default) or uvloop (the same on uvloop's loop)
#
# Prints, per interpreter: instructions per task without and with the
# agent, and the extra in per cent.  Needs valgrind (and root for -r).
set -euo pipefail
cd "$(dirname "$0")/.."
agent=agent root="" workload=create
while getopts "a:r:w:h" opt; do
  case "$opt" in
    a) agent="$OPTARG" ;;
    r) root="$OPTARG" ;;
    w) workload="$OPTARG" ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
small=1000 large=4000
if [[ -n "$root" ]]; then
  [[ -x "$root/usr/bin/valgrind" ]] || { echo "agent_instructions: no valgrind in $root (chroot $root apt-get install valgrind)" >&2; exit 2; }
  tmp="$(mktemp -d "$root/tmp/agent_instructions.XXXXXX")"
  inside="${tmp#"$root"}"
  cp bench/agent_overhead.py "$tmp/"
  mkdir "$tmp/agent" && cp "$agent"/*.py "$tmp/agent/"
  script="$inside/agent_overhead.py" agent_path="$inside/agent" out_inside="$inside/cg.out"
  run=(unshare -m sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root")
else
  command -v valgrind >/dev/null || { echo "agent_instructions: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
  tmp="$(mktemp -d)"
  script=bench/agent_overhead.py agent_path="$agent" out_inside="$tmp/cg.out"
  run=()
fi
trap 'rm -rf "$tmp"' EXIT

count() {  # PYTHON PYTHONPATH N -> instructions of one run
  rm -f "$tmp/cg.out"
  "${run[@]}" env -u PYTHONPATH ${2:+PYTHONPATH=$2} PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0 \
    valgrind --tool=callgrind --callgrind-out-file="$out_inside" -q \
    "$1" "$script" --child "$workload" "$3" 1 cpu >/dev/null 2>&1
  sed -n 's/^summary: //p; s/^totals: //p' "$tmp/cg.out" | head -n1
}

# A run of N creates N + N/10 tasks (the child warms up with a tenth).
tasks=$(( large + large / 10 - small - small / 10 ))
for py in "$@"; do
  plain=$(( ($(count "$py" "" $large) - $(count "$py" "" $small)) / tasks ))
  with=$(( ($(count "$py" "$agent_path" $large) - $(count "$py" "$agent_path" $small)) / tasks ))
  awk -v py="$py" -v p="$plain" -v a="$with" \
    'BEGIN { printf "%-40s plain %7d  agent %7d instructions/task  extra %+.1f %%\n", py, p, a, 100 * (a - p) / p }'
done
