#!/usr/bin/env bash
# A coroutine frame is named after its generator's __qualname__ only if
# that generator still runs the frame's code (3.9, 3.10): the 3.9 golden
# snapshot of async_gen.py, with the generator pointed at other code, must
# name the frame by its code (tests/stale_generator_test.py says how).
set -euo pipefail
exec /usr/bin/python3 tests/stale_generator_test.py "$1"
