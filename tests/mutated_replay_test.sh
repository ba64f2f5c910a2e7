#!/usr/bin/env bash
# 2,000 mutated golden snapshots (every CPython version and scenario of
# corpus/golden/) through `asyncunwind replay`, each in its own process:
# each ends in a result or a clear error, never a crash or a hang
# (fuzz/mutated_replay.c says exactly what passes).  The 100,000 of the
# long run: tools/soak.sh.  MUTATED_COUNT and MUTATED_SEED override.
set -uo pipefail
driver="$(pwd)/$1"
tool="$(pwd)/$2"
"$driver" "$tool" corpus/golden "${MUTATED_COUNT:-2000}" "${MUTATED_SEED:-1}"
