#!/usr/bin/env bash
# A partial stack's note comes first, on the root side, in the collapsed
# and text formats: golden snapshots of seed.py on 3.9-3.15, each with one
# recorded region dropped so that a thread's frames cannot all be read
# (tests/partial_note_test.py says how).
set -euo pipefail
exec /usr/bin/python3 tests/partial_note_test.py "$1"
