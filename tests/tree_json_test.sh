#!/usr/bin/env bash
# The tree and JSON formats, offline, on every golden snapshot
# (corpus/golden/, CPython 3.9-3.15, with and without the agent):
#  - `replay --format json` is valid JSON that matches
#    docs/schema/sample.schema.json (Debian's python3-jsonschema), is
#    consistent with itself, and gives back exactly the recorded collapsed
#    stacks and the tree that `--format tree` prints
#    (tests/check_sample_json.py);
#  - the task trees of the seed program, gather_tree, taskgroup_tree and
#    deadlock (a cycle, shown) are exactly python_fixtures/expected/*.tree,
#    on every version.
# Needs no Python target, only /usr/bin/python3 for the checker.
set -uo pipefail
tool="$1"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
if ! "$py" -c 'import jsonschema' 2>/dev/null; then
  echo "FAIL: $py has no jsonschema module (tools/setup.sh installs python3-jsonschema)"
  exit 1
fi
shopt -s nullglob
snaps=(corpus/golden/*.snap)
[ "${#snaps[@]}" -gt 0 ] || { echo "no snapshots under corpus/golden"; exit 1; }
# Every sample's JSON and tree, written out, then checked in one run of the
# checker (a Python start-up per snapshot would dominate the test).
: >"$tmp/list"
i=0
for snap in "${snaps[@]}"; do
  i=$((i + 1))
  if "$tool" replay "$snap" --format json >"$tmp/$i.json" 2>"$tmp/err" &&
     "$tool" replay "$snap" --format tree >"$tmp/$i.tree" 2>>"$tmp/err"; then
    printf '%s\t%s\t%s\n' "$tmp/$i.json" "${snap%.snap}.collapsed" "$tmp/$i.tree" >>"$tmp/list"
  else
    fail=$((fail + 1))
    echo "FAIL: $snap: $(cat "$tmp/err")"
  fi
done
if "$py" tests/check_sample_json.py docs/schema/sample.schema.json --list "$tmp/list"; then
  pass=$((pass + $(wc -l <"$tmp/list")))
else
  fail=$((fail + 1))
  echo "FAIL: the checker refused a sample (above)"
fi

# The task lines of the tree, bars as spaces (the form of expected/*.tree).
task_lines() { grep -E '── ' | sed 's/│/ /g'; }
for scenario in seed gather_tree taskgroup_tree deadlock; do
  for agent in .agent ""; do
    want=python_fixtures/expected/$scenario.tree
    [ -z "$agent" ] && [ -f "python_fixtures/expected/$scenario.noagent.tree" ] &&
      want=python_fixtures/expected/$scenario.noagent.tree
    matched=0
    for snap in corpus/golden/*-"$scenario$agent".snap; do
      matched=$((matched + 1))
      "$tool" replay "$snap" --format tree | task_lines >"$tmp/got"
      if diff <(grep -v '^#' "$want") "$tmp/got" >"$tmp/diff"; then
        pass=$((pass + 1))
      else
        fail=$((fail + 1))
        echo "FAIL: $snap: tree differs from $want:"
        head -20 "$tmp/diff"
      fi
    done
    # seed, gather_tree, deadlock: 9 interpreters; taskgroup_tree: 7 (3.11+);
    # only seed and deadlock are recorded with the agent too.
    [ -n "$agent" ] && [ "$scenario" != seed ] && [ "$scenario" != deadlock ] && continue
    if [ "$matched" -lt 7 ]; then
      fail=$((fail + 1))
      echo "FAIL: only $matched golden snapshots of $scenario$agent"
    fi
  done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
