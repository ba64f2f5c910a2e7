#!/usr/bin/env bash
# Golden test: replay every snapshot in corpus/golden/ (recorded by
# tools/make_golden.py on each CPython version, 3.9 to 3.15) with
# `asyncunwind replay`, offline, and require exactly what `asyncunwind
# snapshot` printed when the snapshot was taken.  Needs no Python.
set -euo pipefail
tool="$1"
pass=0
fail=0
shopt -s nullglob
snaps=(corpus/golden/*.snap)
if [ "${#snaps[@]}" -eq 0 ]; then
  echo "no snapshots under corpus/golden" >&2
  exit 1
fi
for snap in "${snaps[@]}"; do
  want="${snap%.snap}.txt"
  for format in text collapsed; do
    got=$("$tool" replay "$snap" --format "$format")
    if [ "$format" = text ]; then
      expected=$(cat "$want")
    else
      # The collapsed form of the same sample, derived from the text form:
      # one line per thread, frames root first.
      expected=$(awk '
        /^Thread / { if (line != "") print line " 1"; id = $2;
                     name = ""; if (match($0, /"[^"]*"/)) name = " (" substr($0, RSTART + 1, RLENGTH - 2) ")";
                     line = "thread " id name; next }
        /^    / { sub(/^    /, ""); gsub(/;/, ":"); line = line ";" $0 }
        END { if (line != "") print line " 1" }' "$want")
    fi
    if [ "$got" == "$expected" ]; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1))
      echo "FAIL: $snap ($format)"
      diff <(echo "$expected") <(echo "$got") | head -20 || true
    fi
  done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
