#!/usr/bin/env python3
"""Check vectors for core/asyncio/agent_region.c, from a real CPython.

The agent (agent/asyncunwind_agent.py) writes, in each record of its
region, hash((task, task_ref, creator, creator_ref)) & (2**64 - 1), and the
reader recomputes it in C (au_agent_check).  This script asks CPython itself
for that hash over a fixed set of 4-tuples: addresses as the agent sees
them, and the edges of CPython's int hash (around 2**61 - 1, the modulus)
and of 64 bits.  Run it with every interpreter the agent supports:

    for py in ~/.pyenv/versions/3.{9.18,10.13,11.7,12.1,13.0}/bin/python3 \\
              /usr/bin/python3.11; do
        $py tools/gen_agent_check_vectors.py --out tests/data/agent_check
    done
    # 3.13, 3.14 and 3.15 from the sid chroot of tools/sid_chroot.sh
    # (ROOT=/var/lib/asyncunwind/sid): the script needs nothing but itself,
    #   cp tools/gen_agent_check_vectors.py $ROOT/tmp/
    #   chroot $ROOT /usr/bin/python3.14 /tmp/gen_agent_check_vectors.py \\
    #       --out /tmp/agent_check
    # then copy $ROOT/tmp/agent_check/* into tests/data/agent_check/.

Output: <out>/<python version>.txt: a line "python <version>", then one
line per vector, "task task_ref creator creator_ref check" in hex.
tests/agent_region_test.c replays every file.  The tuples are the same for
every version (a fixed splitmix64 sequence), so the files differ only in
their first line as long as CPython's tuple hash does not change.
"""

import argparse
import os
import sys

M64 = (1 << 64) - 1
MODULUS = (1 << 61) - 1  # sys.hash_info.modulus on 64-bit builds


def splitmix64(state):
    """The splitmix64 generator: (next state, output), all in 64 bits."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def vectors():
    edges = [0, 1, 2, 0x7F, 0x1000, MODULUS - 1, MODULUS, MODULUS + 1,
             2 * MODULUS, 1 << 61, (1 << 62) + 5, (1 << 63) - 1, 1 << 63,
             M64 - 1, M64, 0x00007F0000000000, 0x0000555555554000]
    out = []
    for e in edges:  # each edge in each position
        for pos in range(4):
            t = [0x7F3A12345670, 0x7F3A12345A10, 0x7F3A12349000,
                 0x7F3A1234A020]
            t[pos] = e
            out.append(tuple(t))
    state = 20261204
    for k in range(256):
        vals = []
        for _ in range(4):
            state, r = splitmix64(state)
            if k % 4 == 0:
                vals.append(r)  # any 64-bit value
            elif k % 4 == 1:
                vals.append(r & 0x7FFFFFFFFFF0)  # a user-space address
            elif k % 4 == 2:
                vals.append(0x7F0000000000 + (r & 0xFFFFFFF0))  # heap-like
            else:
                vals.append(r >> (r & 63))  # any width
        out.append(tuple(vals))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="directory to write into")
    args = p.parse_args()
    if sys.hash_info.width != 64 or sys.hash_info.modulus != MODULUS:
        raise SystemExit("needs a 64-bit CPython (hash width %d)"
                         % sys.hash_info.width)
    version = "%d.%d.%d" % sys.version_info[:3]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, version + ".txt")
    with open(path, "w") as f:
        f.write("python %s\n" % version)
        for t in vectors():
            f.write("%x %x %x %x %x\n" % (t + (hash(t) & M64,)))
    print(path)


if __name__ == "__main__":
    main()
