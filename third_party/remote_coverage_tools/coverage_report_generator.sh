#!/bin/bash
# Bazel calls this with --reports_file=FILE (one lcov path a line) and
# --output_file=OUT.  lcov tools accept concatenated records, so
# concatenating is a valid merge.
set -euo pipefail
reports="" out=""
for arg in "$@"; do
  case "$arg" in
    --reports_file=*) reports="${arg#*=}" ;;
    --output_file=*) out="${arg#*=}" ;;
  esac
done
[[ -n "$reports" && -n "$out" ]] || {
  echo "coverage_report_generator: need --reports_file and --output_file" >&2
  exit 1
}
: > "$out"
while IFS= read -r f; do
  [[ -n "$f" && -s "$f" ]] && cat "$f" >> "$out"
done < "$reports"
exit 0
