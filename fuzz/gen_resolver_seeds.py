#!/usr/bin/env python3
"""Writes the seed corpus of fuzz target `resolver` into corpus/resolver/.

    python3 fuzz/gen_resolver_seeds.py [OUT_DIR]     (default corpus/resolver)

Each seed is a small program in the input language documented at the top of
fuzz/resolver_fuzz.c; the helpers below are a tiny assembler for it.  The
files are committed: rerun this only to change or add seeds (it rewrites
the files it owns, named seed_*, and leaves others such as regression
inputs found by the fuzzer alone).  Deterministic: no randomness.
"""
import struct

from seed_corpus import write_seeds

# ---- header -----------------------------------------------------------------
DEPTH = [0, 1, 2, 3, 4, 7, 16, 2**32 - 1]
CAP = [0, 1, 2, 3, 5, 9, 32, 300]


COUNTS = [(0, 0), (2**32 - 1, 2**32 - 1), (3, 5), (40, 80)]


def hdr(depth=0, cap=0, counts=(0, 0), real_defaults=False, nomem=None):
    """depth: max_depth (0 = default); cap: the extra au_stack_entries cap
    (0 = none); counts: (max_tasks, max_links) from COUNTS; real_defaults:
    keep max_depth even for 257..1536 tasks; nomem: also resolve with an
    allocator that fails after 3 * nomem allocations (0..7)."""
    h0 = DEPTH.index(depth) | CAP.index(cap) << 3 | COUNTS.index(counts) << 6
    h1 = (8 if real_defaults else 0)
    if nomem is not None:
        h1 |= 0x10 | nomem << 5
    return bytes([h0, h1])


# ---- operands ---------------------------------------------------------------
def ID(v):
    """A task id: 1..63 in one byte, anything else raw."""
    if v == 0 or 0 < v < 0x40:
        return bytes([v])
    if v == 2**64 - 1:
        return b"\xfe"
    return b"\xff" + struct.pack("<Q", v)


def RECENT(k):
    """The id of the k-th most recent task."""
    return bytes([0x40 + k])


def HIGH(k):
    """((k & 63) << 40) | 0x2a: ids that share their low bits."""
    return bytes([0x80 + k])


def FID(v):
    """Frame id 0xf000 + v for 1 <= v < 0x80, 0 for 0, else raw."""
    if v == 0:
        return b"\x00"
    if 0xF000 < v < 0xF080:
        return bytes([v - 0xF000])
    return b"\xff" + struct.pack("<Q", v)


def F(v):
    """Shorthand: small frame number -> frame id 0xf000 + v."""
    return 0xF000 + v


def THREADFRAME(k):
    """Thread frame number k."""
    return bytes([0x80 + k])


# ---- opcodes ----------------------------------------------------------------
def task(id, awaits=0, creator=0, frames=(), running=False, name_len=0,
         raw_ids=None):
    fl = (1 if running else 0) | name_len << 1 | len(frames) << 3
    ids = raw_ids or (ID(id) + ID(awaits) + ID(creator))
    return bytes([0x00, fl]) + ids + b"".join(FID(f) for f in frames)


def link(child, parent):
    return b"\x01" + ID(child) + ID(parent)


def thread(*frames):
    out = b""
    frames = list(frames)
    while frames:
        part, frames = frames[:16], frames[16:]
        out += bytes([(len(part) - 1) << 4 | 0x02])
        out += b"".join(FID(f) for f in part)
    return out


def chain(n8, shape, a=0, top=None):
    return bytes([a << 4 | 0x03, n8, shape]) + (ID(top) if shape & 4 else b"")


def fanout(n8, shape, parent, a=0, q=None, shared=None):
    out = bytes([a << 4 | 0x04, n8, shape]) + ID(parent)
    if shape & 32:
        out += ID(q)
    if shape & 128:
        out += FID(shared)
    return out


def set_field(sel, field, value):
    return bytes([field << 4 | 0x05, sel]) + ID(value)


def splice(sel, k=0, a=0):
    return bytes([a << 4 | 0x06, sel, k])


def dup(sel):
    return bytes([0x07, sel])


def bulk(pairs):
    return bytes([0x08, len(pairs) - 1]) + b"".join(
        bytes([c, p]) for c, p in pairs)


def pool(a, bs):
    return bytes([a << 4 | 0x09]) + bytes(bs)


def null(bit):
    return bytes([bit << 4 | 0x0A])


# Generator sizes: N8 < 0xf8 gives 1 + N8 % 16 tasks.
def small(n):
    assert 1 <= n <= 16
    return n - 1


def big(n, a):
    """The N8 giving n tasks with opcode nibble a: (N8 - 0xf7) << (5 +
    (a & 3)) = n."""
    k, rem = divmod(n, 1 << (5 + (a & 3)))
    assert rem == 0 and 1 <= k <= 8, (n, a)
    return 0xF7 + k


# Chain/fan-out kinds.
AWAIT, STRONG, WEAK, MIXED = 0, 1, 2, 3

# The event loop's frames under every task: main -> run -> run_forever ->
# _run_once -> select.
LOOP = [F(1), F(2), F(3), F(4)]
SELECT = F(5)

SEEDS = {
    # docs/RESOLVER.md's seed scenario, idle: Task-1 runs parent(), which
    # created Task-not_awaited (2) and Task-awaited (3) and awaits 3.
    "seed_scenario_idle":
        hdr() + thread(*LOOP, SELECT)
        + task(1, awaits=3, frames=[F(10)], name_len=3)
        + task(2, creator=1, frames=[F(20), F(21)], name_len=3)
        + task(3, creator=1, frames=[F(30), F(31)], name_len=3),
    # The same with Task-not_awaited on CPU: its coroutine frames and a
    # synchronous frame sit on the thread stack above the loop.
    "seed_scenario_running":
        hdr() + thread(*LOOP, F(20), F(21), F(22))
        + task(1, awaits=3, frames=[F(10)])
        + task(2, creator=1, frames=[F(20), F(21)], running=True)
        + task(3, creator=1, frames=[F(30), F(31)]),
    # Task 3 created by 1 but awaited by 2: the await link wins.
    "seed_created_by_a_awaited_by_b":
        hdr() + thread(*LOOP)
        + task(1, frames=[F(10)]) + task(2, awaits=3, frames=[F(11)])
        + task(3, creator=1, frames=[F(12)]),
    # The creator finished: the weak link names an absent task (ignored).
    "seed_creator_finished":
        hdr() + thread(*LOOP)
        + task(3, creator=9, frames=[F(12)]) + task(4, creator=3),
    # Strong beats weak: 3 created by 1, held by 2 (e.g. shield).
    "seed_strong_and_weak":
        hdr() + thread(*LOOP)
        + task(1, frames=[F(10)]) + task(2, frames=[F(11)])
        + task(3, creator=1, frames=[F(12)]) + link(3, 2),
    # gather(): 1 holds five children by strong links, and created them.
    "seed_gather":
        hdr() + thread(*LOOP) + task(1, frames=[F(10)])
        + fanout(small(5), STRONG | 4, 1, a=1 << 2),
    # A TaskGroup with 2048 children under a chain of 3.
    "seed_taskgroup_2048":
        hdr(real_defaults=True) + thread(*LOOP) + chain(small(3), AWAIT)
        + fanout(big(2048, 3), STRONG | 4, 0x100080, a=3 | 1 << 2),
    # A chain of 1040 awaits (16, then 1024 under its deepest task): cut at
    # the default depth of 1024.
    "seed_deep_chain_default_depth":
        hdr(real_defaults=True) + thread(*LOOP) + chain(small(16), AWAIT)
        + chain(big(1024, 2), AWAIT | 4, a=2, top=0x100000 + 15 * 0x40),
    # Depth 3, chains of 10 in all three kinds, plus one root attached.
    "seed_deep_chain_depth3":
        hdr(depth=3) + thread(*LOOP) + task(1, frames=[F(9)])
        + chain(small(10), AWAIT | 4, a=1 << 2, top=1)
        + chain(small(10), STRONG, a=1 << 2)
        + chain(small(10), WEAK, a=1 << 2),
    # A pure await cycle of three: a deadlock; its lowest id gets a stack.
    "seed_await_cycle":
        hdr() + thread(*LOOP) + chain(small(3), AWAIT | 8, a=1 << 2),
    # A strong-link cycle of five with a task hanging below (no
    # representative needed) and a two-cycle next to it.
    "seed_cycle_with_hanger":
        hdr() + thread(*LOOP) + chain(small(5), STRONG | 8, a=1 << 2)
        + task(1, creator=0x100080, frames=[F(9)])
        + task(2, awaits=3) + task(3, awaits=2),
    # A cycle closed by weak links: every member a leaf (two creators).
    "seed_weak_cycle":
        hdr() + task(1, creator=2, frames=[F(1)])
        + task(2, creator=1, frames=[F(2)]),
    # A mixed cycle of eight: await, strong and weak links in turn.
    "seed_mixed_cycle":
        hdr(cap=5) + chain(small(8), MIXED | 8),
    # Self links of all three kinds, all ignored.
    "seed_self_links":
        hdr() + thread(*LOOP) + task(1, awaits=1, creator=1, frames=[F(9)])
        + link(1, 1),
    # Duplicated ids (both copies ignored), id 0, links to them.
    "seed_duplicates":
        hdr() + thread(*LOOP)
        + task(5, frames=[F(50)]) + task(5, frames=[F(51)])
        + task(0, awaits=6) + task(6, awaits=5, creator=5)
        + task(7, creator=6) + link(7, 5) + link(5, 7) + link(0, 0)
        + dup(0),
    # Unknown, raw, UINT64_MAX and equal-low-bits ids.
    "seed_unknown_ids":
        hdr() + thread(*LOOP)
        + task(1, awaits=0x3E, creator=0x1234567890ABCDEF)
        + task(2**64 - 1, awaits=1)
        + bytes([0x00, 0x08]) + HIGH(1) + HIGH(2) + HIGH(0) + FID(F(7))
        + bytes([0x00, 0x08]) + HIGH(2) + ID(0) + HIGH(1) + FID(F(8))
        + link(0x2A, 2**64 - 1) + link(0x77, 1),
    # The running task spliced into the thread stack, and an idle task it
    # awaits (so R is an ancestor in another stack too).
    "seed_running_spliced":
        hdr() + thread(*LOOP, F(40), F(41), F(42), F(43))
        + task(1, awaits=2, frames=[F(40), F(41)], running=True)
        + task(2, frames=[F(60)]) + task(3, creator=1, frames=[F(61)]),
    # Running flags the thread stack does not confirm: no frame, frames
    # elsewhere, frame id 0; the confirmed one wins.
    "seed_running_unconfirmed":
        hdr() + thread(*LOOP, F(40), 0)
        + task(1, frames=[F(70)], running=True)
        + task(2, running=True)
        + task(3, frames=[0], running=True)
        + task(4, frames=[F(40)], running=True),
    # Two candidates share their outermost frame: lowest id wins; a third
    # sits higher on the thread stack and loses to both.
    "seed_running_tie":
        hdr() + thread(*LOOP, F(40), F(41))
        + task(9, frames=[F(40)], running=True)
        + task(8, frames=[F(40), F(50)], running=True)
        + task(7, frames=[F(41)], running=True),
    # Splice op: the running task's frames appended to the thread stack
    # with two synchronous frames, from a generated chain.
    "seed_running_chain":
        hdr() + thread(*LOOP) + chain(small(6), MIXED | 16 | 32 | 128,
                                      a=2 << 2)
        + splice(3, a=1 | 2 << 1),
    # Ties at level 1: two awaiters; one of them is the creator.
    "seed_tie_await_creator":
        hdr() + task(1) + task(2) + task(3, awaits=5) + task(4, awaits=5)
        + task(5, creator=4, frames=[F(5)]),
    # Ties at level 1 and 2 without the creator: lowest id; the loser is
    # a stranded waiter and gets its own stack.
    "seed_tie_lowest_stranded":
        hdr() + task(9, awaits=5) + task(3, awaits=5) + task(5)
        + task(6) + link(6, 8) + link(6, 7) + task(7) + task(8),
    # Fan-in: 16 tasks await the same task (a lock, an event).
    "seed_fan_in":
        hdr() + task(1, frames=[F(1)])
        + fanout(small(16), AWAIT, 1, a=1 << 2),
    # Fan-out with two parents each, duplicated ids in pairs, running
    # children sharing one frame.
    "seed_fanout_two_parents_dups":
        hdr() + thread(*LOOP, F(44)) + task(1) + task(2)
        + fanout(small(9), STRONG | 16 | 32 | 64 | 128, 1, q=2, shared=F(44)),
    # R awaits a task that another task also awaits.
    "seed_running_awaits":
        hdr() + thread(*LOOP, F(40)) + task(1, awaits=3, frames=[F(40)],
                                            running=True)
        + task(2, awaits=3, frames=[F(41)]) + task(3, frames=[F(42)]),
    # No task: the bare thread stack.
    "seed_thread_only":
        hdr() + thread(*LOOP, SELECT) + task(0) + link(1, 2),
    # Nothing at all beyond the header.
    "seed_empty":
        hdr(),
    # Entries fetched with cap 2 as well: every stack cut.
    "seed_cap2":
        hdr(cap=2) + thread(*LOOP) + task(1, frames=[F(9)])
        + task(2, creator=1),
    # Cap 1 and depth 1.
    "seed_cap1_depth1":
        hdr(depth=1, cap=1) + task(1) + task(2, creator=1),
    # Cap 3 on stacks of 5 entries.
    "seed_cap3":
        hdr(cap=3) + thread(F(1), F(2), F(3)) + task(1, frames=[F(9)])
        + task(2, frames=[F(8)]) + task(3, frames=[F(7)]),
    # More tasks than max_tasks (3): AU_ERR_LIMIT.
    "seed_limit_tasks":
        hdr(counts=(3, 5)) + task(1) + task(2) + task(3) + task(4),
    # More links than max_links (5): AU_ERR_LIMIT.
    "seed_limit_links":
        hdr(counts=(3, 5)) + task(1) + bulk([(1, 2)] * 6),
    # NULL thread frames with a count: AU_ERR_ARG.
    "seed_null_frames":
        hdr() + thread(F(1)) + task(1) + null(0),
    # A NULL coroutine frame array with a count: AU_ERR_ARG.
    "seed_null_task_frames":
        hdr() + task(1, frames=[F(1)]) + null(3),
    # The seed scenario with allocation failures after 0, 3 and 21
    # allocations, and with every limit at its maximum.
    "seed_nomem_0":
        hdr(nomem=0) + thread(*LOOP, SELECT)
        + task(1, awaits=3, frames=[F(10)]) + task(2, creator=1)
        + task(3, creator=1),
    "seed_nomem_3":
        hdr(nomem=1, depth=2**32 - 1) + thread(*LOOP) + pool(3, range(16))
        + bulk([(i, (i * 5) % 17) for i in range(17)]),
    "seed_nomem_21_max_limits":
        hdr(nomem=7, depth=2**32 - 1, counts=(2**32 - 1, 2**32 - 1))
        + thread(*LOOP) + chain(small(12), MIXED | 8 | 16)
        + fanout(small(9), AWAIT | 4, 0x100040),
    # Too many tasks and a NULL coroutine frame array: AU_ERR_LIMIT (the
    # counts are checked before the tasks' arrays).
    "seed_limit_before_null_task_frames":
        hdr(counts=(3, 5)) + task(1, frames=[F(1)]) + task(2) + task(3)
        + task(4) + null(3),
    # Duplicated tasks flagged running, one confirmed by the thread stack:
    # ignored tasks are not counted in running_ignored.
    "seed_running_duplicates":
        hdr() + thread(*LOOP, F(40)) + task(5, frames=[F(40)], running=True)
        + dup(0) + task(6, frames=[F(40)], running=True),
    # A random graph on ids 1..32 (pool) plus 40 random strong links.
    "seed_pool_graph":
        hdr() + thread(*LOOP, F(3), F(7))
        + pool(7, [(i * 37 + 11) & 0xFF for i in range(32)])
        + bulk([((i * 7) % 33, (i * 13 + 5) % 33) for i in range(40)]),
    # A mixed chain with creators set, a fan-out under its middle.
    "seed_mixed_chain_fanout":
        hdr(depth=16) + chain(small(12), MIXED | 16, a=1 << 2)
        + fanout(small(12), MIXED | 4, 0x100100, a=1 << 2),
    # SET and SPLICE on existing tasks: rewire an await into a cycle, move
    # an id onto another (duplicate), toggle a running flag.
    "seed_set_ops":
        hdr() + thread(*LOOP) + chain(small(4), AWAIT, a=1 << 2)
        + set_field(0, 0, 0x100000) + set_field(1, 2, 0x100000)
        + set_field(2, 3, 0) + splice(2, k=2),
    # Big and limited together: a weak chain of 1024 (all leaves), depth
    # 7, cap 9.
    "seed_big_weak_chain_limits":
        hdr(depth=7, cap=9) + chain(big(1024, 2), WEAK, a=2),
}


def main():
    write_seeds("resolver", SEEDS)


if __name__ == "__main__":
    main()
