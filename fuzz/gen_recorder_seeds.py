#!/usr/bin/env python3
"""Writes the seed corpus of fuzz target `recorder` into corpus/recorder/.

    python3 fuzz/gen_recorder_seeds.py [OUT_DIR]     (default corpus/recorder)

Each seed is a script in the input language documented at the top of
fuzz/recorder_fuzz.c (a fake target's pages, operations on them, batches
of reads through the recorder); the helpers below are a tiny assembler for
it.  The files are committed: rerun this only to change or add seeds (it
rewrites the files it owns, named seed_*, and leaves others such as
regression inputs found by the fuzzer alone).  Deterministic.
"""
import struct

from seed_corpus import write_seeds

# ---- the fake target's pages ------------------------------------------------
P0, P1, P2 = 0, 1, 2          # 0x0, 0x1000, 0x3000 (0x2000 is a hole)
TOP2, TOP1 = 38, 39           # 2^64 - 8 KiB, 2^64 - 4 KiB


def RUN(i):
    """Page i (0..34) of the run of adjacent pages at 0x7f0000010000."""
    assert 0 <= i < 35
    return 3 + i


# ---- header -----------------------------------------------------------------
WRITER_FAIL = [None, 1, 2, 3, 4, 6, 9, 14]


def hdr(writer_fail=None, threads=0, unmap_all=False, nomem=None,
        unmapped=()):
    """writer_fail: the second write's writer fails this call (1-based);
    threads: META threads (0..3); unmap_all: before reading again, unmap
    every page (else new contents everywhere); nomem: the recorder's
    allocator fails this call (1..64); unmapped: pages that start
    unmapped."""
    f = WRITER_FAIL.index(writer_fail) | threads << 3
    f |= 0x20 if unmap_all else 0
    a = 0
    if nomem is not None:
        assert 1 <= nomem <= 64
        f |= 0xC0
        a = nomem - 1
    mask = 0
    for p in unmapped:
        mask |= 1 << p
    return bytes([f, a]) + mask.to_bytes(5, "little")


# ---- reads ------------------------------------------------------------------
def AT(page, off, length):
    """length bytes at page's base + off (-4096 <= off < 8192)."""
    assert -4096 <= off < 8192 and 0 <= length <= 9000
    return bytes([0, page]) + struct.pack("<HH", off + 4096, length)


def SMALL(page, off, length):
    """A short read: -32 <= off < 4128, length <= 64."""
    assert -32 <= off < 4128 and 0 <= length <= 64
    return bytes([6, page]) + struct.pack("<H", off + 32) + bytes([length])


def SAME(k):
    """The k-th most recent read again (0: the last one)."""
    assert 0 <= k < 32
    return bytes([3 | k << 3])


def NEAR(k, da, dl):
    """The k-th most recent read, da bytes further and dl bytes longer."""
    assert 0 <= k < 32 and -128 <= da < 128 and -128 <= dl < 128
    return bytes([4 | k << 3]) + struct.pack("<bb", da, dl)


def LOW(addr, length):
    """A read at a small address (0 included)."""
    assert 0 <= addr < 16 and 0 <= length < 32
    return bytes([5 | 0 << 3, addr, length])


def TOP(a, extra):
    """A read at 2^64 - a (1 <= a <= 64) of a - 1 + extra bytes: extra 0
    ends just below 2^64, 1 at it, more wraps."""
    assert 1 <= a <= 64 and 0 <= extra < 8
    return bytes([5 | 1 << 3, a - 1, extra])


def EMPTY(page, off):
    """A 0-byte read at page's base + off (off < 256)."""
    return bytes([5 | 2 << 3, page, off])


def ACROSS(b1, b2):
    """From page 38 + 32 * b1 to 16 * b2 bytes past 2^64 (into page 0)."""
    return bytes([5 | 3 << 3, b1, b2])


# ---- operations -------------------------------------------------------------
def read(*reads):
    """One batch of 1..8 reads."""
    assert 1 <= len(reads) <= 8
    return bytes([(len(reads) - 1) << 3]) + b"".join(reads)


def write(page, off, n, value, x=0):
    """n (1..256) bytes value, value + s, ... (s = 2x + 1) at page + off."""
    assert 1 <= n <= 256 and 0 <= x < 32
    return bytes([4 | x << 3, page]) + struct.pack("<H", off) + bytes(
        [n - 1, value])


def unmap(page):
    return bytes([5, page])


def remap(page):
    """Mapped again (or still), with new contents."""
    return bytes([6, page])


def change():
    """Every page gets new contents."""
    return bytes([7])


def batches(reads):
    """Reads in batches of 8."""
    reads = list(reads)
    return b"".join(read(*reads[i:i + 8]) for i in range(0, len(reads), 8))


# ---- seeds ------------------------------------------------------------------
# tests/memsrc_test.c's test_recording_is_one_view, step by step: the
# target writes over bytes read before; a read across a page boundary.
ONE_VIEW_WRITE = (
    read(AT(RUN(0), 100, 64))
    + write(RUN(0), 100, 200, 0xAA)
    + read(AT(RUN(0), 132, 64))       # 32 first values, 32 new bytes
    + read(SAME(1))                   # the first read: unchanged
    + read(AT(RUN(0), 4096 - 16, 32)))

# ... then a page is unmapped and mapped again with new contents.
ONE_VIEW_UNMAP = (
    read(AT(RUN(2), 0, 64))
    + unmap(RUN(2))
    + read(AT(RUN(2), 8, 16))         # every byte read before: served
    + read(AT(RUN(2), 32, 64))        # half never was: fails
    + remap(RUN(2))
    + read(SAME(0))                   # failed once, fails again
    + read(AT(RUN(2), 100, 8)))       # new bytes: the new contents

SEEDS = {
    "seed_one_read": hdr() + read(AT(RUN(0), 100, 64)),
    "seed_one_view_write": hdr(threads=1) + ONE_VIEW_WRITE,
    "seed_one_view_unmap_remap": hdr() + ONE_VIEW_UNMAP,
    "seed_one_view_all": hdr(threads=3) + ONE_VIEW_WRITE + ONE_VIEW_UNMAP,
    # Long reads across adjacent pages, into an unmapped page, and past the
    # end of the run; a failed read repeated after the page came back.
    "seed_page_crossing":
        hdr(unmapped=[RUN(5)])
        + read(AT(RUN(0), 4000, 9000), AT(RUN(3), 2000, 9000))
        + remap(RUN(5))
        + read(SAME(0), NEAR(0, 1, 0), AT(RUN(34), 4000, 200))
        + write(RUN(1), 0, 256, 7, x=3)
        + read(AT(RUN(0), 0, 9000), AT(RUN(1), -8, 16)),
    # Duplicates and overlaps inside one batch, then the target changes and
    # the same batch comes again.
    "seed_batch_duplicates":
        hdr()
        + read(AT(RUN(0), 0, 100), SAME(0), SAME(0), NEAR(0, 50, 0),
               AT(RUN(0), 50, 100), SAME(1), NEAR(2, -10, 20), SAME(5))
        + change()
        + read(SAME(7), SAME(7), SAME(7), SAME(7), SAME(7), SAME(7),
               SAME(7), SAME(7))
        + read(AT(RUN(0), 90, 200), NEAR(0, -100, 100)),
    # A read fails (half its bytes unmapped); the page comes back and a
    # larger read covers it all; the failed read still fails, a neighbour
    # succeeds; then everything it covers is unmapped and served anyway.
    "seed_failed_then_covered":
        hdr(unmapped=[RUN(1)])
        + read(AT(RUN(0), 4000, 200))
        + remap(RUN(1))
        + read(AT(RUN(0), 3900, 400))
        + read(SAME(1), NEAR(1, 1, 0))
        + unmap(RUN(0)) + unmap(RUN(1))
        + read(NEAR(2, 1, -2), SAME(3), NEAR(3, 0, -1)),
    # Address 0 and small addresses, with page 0 mapped: the fake serves
    # address 0, the recorder must refuse it; reads across page 0 -> 1 and
    # page 1 -> the hole at 0x2000.
    "seed_address_zero":
        hdr()
        + read(LOW(0, 8), LOW(1, 8), LOW(0, 0), LOW(15, 31), SAME(3))
        + read(AT(P0, 0, 9000), AT(P1, -100, 200), AT(P1, 4000, 200))
        + read(SAME(2), SAME(3), SAME(4), LOW(0, 8)),
    # The top of the address space: ends below 2^64, at it, and wraps (the
    # fake serves wrapped reads when pages 38, 39 and 0 are mapped).
    "seed_top_and_wrap":
        hdr()
        + read(TOP(1, 0), TOP(16, 0), TOP(16, 1), TOP(16, 5), TOP(64, 7))
        + read(ACROSS(0, 0), ACROSS(100, 10), AT(TOP1, 0, 4095),
               AT(TOP2, 4000, 4000), AT(TOP1, 4000, 9000))
        + unmap(TOP1)
        + read(SAME(1), NEAR(1, 1, -1), SAME(3), TOP(16, 0), TOP(16, 1))
        + read(AT(P0, -4096, 9000)),
    # 0-byte reads: at address 0, at the top, on an unmapped page.
    "seed_zero_length":
        hdr(unmapped=[RUN(7)])
        + read(EMPTY(P0, 0), EMPTY(TOP1, 255), EMPTY(RUN(7), 3),
               AT(RUN(7), 0, 0), LOW(0, 0), SAME(0))
        + read(AT(RUN(7), 10, 20), NEAR(0, 0, -20), SAME(1)),
    # Every one of the 40 pages read (the recorder's page table grows),
    # then 40 different failing reads (its failure table grows).
    "seed_many_pages_and_failures":
        hdr()
        + batches([SMALL(RUN(i), 4090, 12) for i in range(34)]
                  + [SMALL(p, 100, 8) for p in (P0, P1, P2, TOP2, TOP1)]
                  + [SMALL(RUN(34), 0, 8)])
        + unmap(RUN(0))
        + batches(SMALL(RUN(0), 100, n) for n in range(1, 41))
        + batches(SMALL(RUN(0), 100, n) for n in range(1, 41, 5)),
    # The target changes everywhere, then reading again with everything
    # unmapped: every successful read is served from first values.
    "seed_unmap_everything":
        hdr(unmap_all=True, threads=2)
        + read(AT(RUN(10), 0, 9000), AT(RUN(10), 100, 100), SMALL(P2, 0, 64))
        + change()
        + read(AT(RUN(10), 50, 9000), NEAR(0, 100, -100)),
    # The second write's writer fails early, late, never.
    "seed_writer_fails_1": hdr(writer_fail=1) + ONE_VIEW_UNMAP,
    "seed_writer_fails_4": hdr(writer_fail=4, threads=3) + ONE_VIEW_WRITE,
    "seed_writer_fails_14": hdr(writer_fail=14, threads=1) + ONE_VIEW_UNMAP,
    # The recorder's allocator fails: at open, on the first page, while a
    # table grows, and never (the write's own allocation, then nothing).
    "seed_nomem_open": hdr(nomem=1) + read(AT(RUN(0), 0, 64)),
    "seed_nomem_first_page": hdr(nomem=2) + ONE_VIEW_WRITE + ONE_VIEW_UNMAP,
    "seed_nomem_table_growth":
        hdr(nomem=36)
        + batches([SMALL(RUN(i), 4090, 12) for i in range(34)]),
    "seed_nomem_late": hdr(nomem=64) + ONE_VIEW_UNMAP,
}


def main():
    write_seeds("recorder", SEEDS)


if __name__ == "__main__":
    main()
