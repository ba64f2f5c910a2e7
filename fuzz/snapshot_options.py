#!/usr/bin/env python3
"""Set the options a snapshot is sampled with by the pipeline and links
fuzz targets: they come from the low bits of META time_ns (the table is at
the top of fuzz/sampler_check.c), which this rewrites.  For making
reproducers of a finding under a chosen configuration.

    fuzz/snapshot_options.py IN OUT [NAME=VALUE ...]

Names and the values each takes (indices into sampler_check.c's tables,
or 0/1 for flags); anything not given is 0, the default:

    max_frames (0-15), max_threads (0-3), max_name (0-7), cache (0-7),
    full_cache (0/1: the 4,096-entry default), fault (0/1),
    fault_sel (0-63), max_tasks (0-7), max_coro (0-7), max_depth (0-7),
    resolver_limits (0-3), no_tasks, no_agent, record (0/1),
    image (0/1: runs X and V, the live path over a memory image)

Reader limits are used when any of the first four is given; sampler
options when any of max_tasks .. no_agent is.  `word=0x...` gives the
option word itself.  Prints the option word written.
"""
import struct
import sys

FIELDS = {  # name: (shift, width)
    "max_frames": (0, 4), "max_threads": (4, 2), "max_name": (6, 3),
    "cache": (9, 3), "fault": (12, 1), "full_cache": (13, 1),
    "fault_sel": (16, 6), "max_tasks": (24, 3), "max_coro": (27, 3),
    "max_depth": (30, 3), "resolver_limits": (33, 2), "no_tasks": (35, 1),
    "no_agent": (36, 1),
}
READER = ("max_frames", "max_threads", "max_name", "cache")
SAMPLER = ("max_tasks", "max_coro", "max_depth", "resolver_limits",
           "no_tasks", "no_agent")
MASK = (1 << 43) - 1


def mix(t):
    """sc_time_mix: its own inverse."""
    return t ^ ((t & 0x1FFFFF) << 22)


def word_of(args):
    word = 0
    given = dict(a.split("=", 1) for a in args)
    if "word" in given:
        return int(given.pop("word"), 0) & MASK
    for name, value in given.items():
        if name in ("record", "image"):
            continue
        shift, width = FIELDS[name]
        v = int(value, 0)
        if v >= 1 << width:
            sys.exit(f"{name}={v}: at most {(1 << width) - 1}")
        word |= v << shift
    if any(n in given for n in READER):
        word |= 1 << 14
    if any(n in given for n in SAMPLER):
        word |= 3 << 22
    if given.get("record", "0") == "0":
        word |= 1 << 40  # bits 40-42 at 0 run the round trip
    if given.get("image", "0") == "0":
        word |= 1 << 37  # bits 37-38 at 0 run X and V
    return word


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, dst, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    data = bytearray(open(src, "rb").read())
    if data[:8] != b"\x89AUSNP\r\n" or struct.unpack_from("<I", data, 16)[0] != 1:
        sys.exit(f"{src}: not a snapshot starting with its META record")
    word = word_of(args)
    old = struct.unpack_from("<Q", data, 16 + 8 + 16)[0]
    struct.pack_into("<Q", data, 16 + 8 + 16, mix((old & ~MASK) | word))
    open(dst, "wb").write(data)
    print(f"{dst}: option word {word:#x}")


if __name__ == "__main__":
    main()
