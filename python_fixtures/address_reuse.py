# asyncunwind fixture: address_reuse (run it with the agent, agent/)
#
# A task dies and a new task is born at its address; the agent's record of
# the dead task (which named its creator) is still in the region.  The
# reader must not give the new task that creator: the record names the dead
# task's weakref, which the agent keeps alive and which now refers to None.
#
#   main() (Task-1) creates "first" and lets it finish and die; the agent
#   frees the slot lazily, so the record of "first" (creator Task-1) stays.
#   It then constructs tasks directly (asyncio.Task(...), which the agent
#   does not see, so they have no record) until one lands at the address
#   "first" had: "reused", which sleeps.  The record of "first" is written
#   back, byte for byte, in case its slot was taken meanwhile.
#
# 3.14 and 3.15 (Debian's builds) do not hand a freed task's memory to the
# next task, so there the record such a reuse would leave is made instead:
# the dead task's record, its address changed to the new task's.
#
# Expected: "reused" is a root (expected/address_reuse.txt), and the region
# holds a record, with a valid check, whose task is its address
# (tests/agent_reuse_test.c checks both).  Prints "READY <pid>".  Exits 2
# if the agent is not loaded.
import asyncio
import gc
import os
import struct
import sys


async def first_body():
    return None


async def hold():
    await asyncio.sleep(3600)


def find_record(agent, address):
    ns = agent._engine.ns
    region = ns["region"]
    for slot in range(ns["used"]):
        at = 64 + 40 * slot
        if int.from_bytes(region[at:at + 8], "little") == address:
            return bytes(region[at:at + 40])
    return None


async def main():
    import asyncunwind_agent as agent
    if agent._engine is None:
        sys.exit(2)
    loop = asyncio.get_running_loop()
    first = asyncio.create_task(first_body(), name="first")
    await first
    address = id(first)
    record = find_record(agent, address)
    if record is None:
        sys.exit(2)
    # Tasks are constructed directly, not through create_task: the agent
    # does not see them, so "reused" has no record of its own.
    spare = [hold() for _ in range(10000)]
    tries = []
    del first
    # The loop's handles that woke us still hold "first" for a step.
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    reused = None
    for coro in spare:
        task = asyncio.Task(coro, loop=loop, name="reused")
        tries.append(task)
        if id(task) == address:
            reused = tries.pop()
            break
    for task in tries:
        task.cancel()
    for coro in spare[len(tries) + 1:]:
        coro.close()
    del tries, spare
    region = agent._engine.ns["region"]
    if reused is None:
        # 3.14+ does not hand a freed task's memory to the next task
        # (seen with Debian's builds): make the record such a reuse leaves,
        # the dead task's record with its address changed to the new
        # task's (and a check that matches: only the weakref is stale).
        reused = asyncio.Task(hold(), loop=loop, name="reused")
        fields = struct.unpack("<4Q", record[:32])
        address = id(reused)
        fields = (address,) + fields[1:]
        record = struct.pack("<4Qq", *fields, hash(fields))
        region[64:104] = record
    elif find_record(agent, address) != record:
        # The record of "first" must still be there: put it back if its
        # slot was taken meanwhile.
        region[64:104] = record
    loop.call_soon(announce)
    # Not awaiting "reused": its only possible parent is the stale record's
    # creator, Task-1, which it must not get.
    keep = reused
    await asyncio.sleep(3600)
    return keep


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
