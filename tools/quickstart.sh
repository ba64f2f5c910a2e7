#!/bin/bash
# The quick start (README.md): on a fresh Debian or Ubuntu machine, install
# whatever is missing (tools/setup.sh), build the tool, and profile the
# bundled demo, python_fixtures/seed.py, for a few seconds.  It prints the
# demo's task-aware stacks, busiest first, and writes the flame graph.
#
#   tools/quickstart.sh [-d SECONDS] [-o DIR] [-p PYTHON]
#
# The demo is README's seed program: `parent` creates Task-not_awaited and
# Task-awaited and awaits only the second.  With the agent (which record
# loads into the command it starts), Task-not_awaited shows under parent.
set -euo pipefail

seconds=5
outdir=.
python=python3
usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  echo
  echo "options: -d SECONDS of recording (default 5), -o DIR for demo.svg and"
  echo "demo.collapsed (default .), -p PYTHON to run the demo with (default python3)"
}
while getopts "d:o:p:h" opt; do
  case "$opt" in
    d) seconds="$OPTARG" ;;
    o) outdir="$OPTARG" ;;
    p) python="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
cd "$root"

echo "== 1/3 installing what is missing (tools/setup.sh)"
tools/setup.sh

echo "== 2/3 building (bazel build //:asyncunwind)"
bazel build //:asyncunwind
tool="$root/bazel-bin/asyncunwind"

if ! command -v "$python" >/dev/null; then
  echo "quickstart: no $python to run the demo with" >&2
  echo "hint: give a CPython 3.9-3.15 with -p, e.g. -p python3.12" >&2
  exit 2
fi

echo "== 3/3 profiling the demo for ${seconds} s:" \
  "asyncunwind record -d $seconds -o demo.svg -o demo.collapsed -- $python python_fixtures/seed.py"
# The demo prints one READY line of its own.
"$tool" record -d "$seconds" -o "$outdir/demo.svg" -o "$outdir/demo.collapsed" \
  -- "$python" python_fixtures/seed.py

# The task-aware stacks, busiest first, each frame by its name alone (the
# collapsed file keeps "name (file:line)"), the thread's frames up to the
# event loop shortened to "...".
echo
echo "The demo's task-aware stacks (samples, then the stack, root first):"
sort -t' ' -k1,1 "$outdir/demo.collapsed" |
  awk '{ n = $NF; $NF = ""; print n "\t" $0 }' |
  sort -rn -k1,1 |
  grep -F '[Task-' |
  head -8 |
  sed -E 's/ \([^;]*:([0-9]+|\?)\)//g; s/^([0-9]+)\t([^;]*);.*;([^;]*select);/\1\t\2;...;\3;/; s/ +$//'
echo
echo "Flame graph: $outdir/demo.svg (open it in a browser: click to zoom, Ctrl-F or 'Search' to find)"
echo "Collapsed stacks: $outdir/demo.collapsed (flamegraph.pl, inferno, speedscope.app)"
echo "Next: bazel test //...   (the whole suite, CPython 3.9-3.15)"
