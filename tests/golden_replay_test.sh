#!/usr/bin/env bash
# Golden test: replay every snapshot in corpus/golden/ (recorded by
# tools/make_golden.py on each CPython version, 3.9 to 3.15, for the thread
# fixtures and every asyncio scenario) with `asyncunwind replay`, offline,
# and require exactly what `asyncunwind snapshot` printed when the snapshot
# was taken (.txt), and the collapsed form recorded beside it (.collapsed).
# Needs no Python.
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
      expected=$(cat "${snap%.snap}.collapsed")
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
