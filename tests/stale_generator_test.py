#!/usr/bin/env python3
"""A coroutine's qualified name is taken only from the generator that runs
the frame's code (CPython 3.9 and 3.10, whose code objects have no
qualified name; core/cpython/pycode.c, name_generators).

The reader meets a frame first and its generator (f_gen) a moment later.
In a busy target the generator may have finished and its memory gone to
another coroutine by then, whose __qualname__ would name the frame: `sleep`
showed as `StreamReader.readline` before the check.  A live process cannot
be made to do that on demand, so this test makes the snapshot do it: in
the 3.9 golden snapshot of python_fixtures/async_gen.py it points the
generator of `SlowGate.__aenter__` at other code (gi_code), and replays.
Before: `SlowGate.__aenter__`; after: the code's own name, `__aenter__`.

usage: stale_generator_test.py ASYNCUNWIND
"""
import json
import struct
import subprocess
import sys
import tempfile

from snapshot_records import regions

SNAP = "corpus/golden/pyenv-3.9-async_gen.snap"
QUALNAME = "SlowGate.__aenter__"
# CPython 3.9's layouts (core/cpython/pyoffsets_table.c, the 3.9 entry):
# PyGenObject.gi_frame and gi_code, PyFrameObject.f_code.
GEN_FRAME, GEN_CODE, FRAME_CODE = 16, 32, 32


def u64(data, regs, addr):
    for base, off, n in regs:
        if base <= addr and addr + 8 <= base + n:
            return struct.unpack_from("<Q", data, off + addr - base)[0]
    return None


def replay(tool, path, fmt):
    return subprocess.run([tool, "replay", path, "-f", fmt], check=True,
                          capture_output=True, text=True).stdout


def main():
    tool = sys.argv[1]
    sample = json.loads(replay(tool, SNAP, "json"))
    codes = {int(f["code"], 16) for f in sample["frames"] if f["qualname"] == QUALNAME}
    if len(codes) != 1:
        sys.exit(f"FAIL: {SNAP} should have one code object named {QUALNAME}, has {len(codes)}")
    code = codes.pop()
    data = bytearray(open(SNAP, "rb").read())
    regs = regions(data)
    # The generators running that code: gi_code is the code, and gi_frame
    # a frame whose f_code is the code.
    gens = []
    for base, off, n in regs:
        for p in range(off + (-base % 8), off + n - 7, 8):
            if struct.unpack_from("<Q", data, p)[0] != code:
                continue
            gen = base + (p - off) - GEN_CODE
            frame = u64(data, regs, gen + GEN_FRAME)
            if frame and u64(data, regs, frame + FRAME_CODE) == code:
                gens.append(p)
    if not gens:
        sys.exit(f"FAIL: no generator of {QUALNAME} found in {SNAP}")
    before = replay(tool, SNAP, "collapsed")
    if QUALNAME not in before:
        sys.exit(f"FAIL: the unchanged snapshot does not name {QUALNAME}")
    for p in gens:
        struct.pack_into("<Q", data, p, code + 0x1000)  # some other code
    with tempfile.NamedTemporaryFile(suffix=".snap") as f:
        f.write(data)
        f.flush()
        after = replay(tool, f.name, "collapsed")
    if QUALNAME in after:
        sys.exit(f"FAIL: a generator that runs other code still names the frame {QUALNAME}")
    if ";__aenter__ (" not in after:
        sys.exit("FAIL: the frame lost its own name too:\n" + after)
    print(f"PASS: {len(gens)} generator(s) of {QUALNAME} pointed elsewhere; "
          "the frame is named __aenter__")


if __name__ == "__main__":
    main()
