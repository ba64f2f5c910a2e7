# asyncunwind fixture: address_reuse (run it with the agent, agent/)
#
# A task dies and a new task is born at its address, while the agent's pair
# for the dead task (its weakref, and its creator's) is still in the
# agent's records list.  The reader must not give the new task that
# creator: the pair names the dead task's weakref, which the list keeps
# alive and which now refers to None.
#
#   main() (Task-1) warms the allocator up with tasks that come and go
#   (3.14+ hands a freed task's memory to the next task only then; 3.13
#   only without it), then
#   creates "first" and lets it finish and die; the list compacts only when
#   it is full, so the pair of "first" (creator Task-1) stays.  A callback,
#   outside any task (so that they have no creator and no pair of their
#   own), then constructs tasks until one lands at the address "first" had:
#   "reused", which sleeps.
#
# Then, on SIGUSR1, the state a reader meets when the list whose address
# it read was freed and its memory taken by another list: the region's
# header names a list that does not name itself, holding weakrefs to
# "reused" and Task-1, side by side like a pair.
#
# Expected: "reused" is a root in both states (tests/agent_reuse_test.c,
# not an expectation file).  Prints "READY <pid>", then "STALE <task_ref>
# <creator_ref> <dead task address>" (hex): the stale pair, and after
# SIGUSR1 "FOREIGN <list address>".  Exits 2 if the agent is not loaded or
# the pair of "first" is missing, 3 if no task lands at its address.
import asyncio
import gc
import os
import signal
import sys
import weakref

HELD = []  # keeps "reused" and the foreign list alive


async def body():
    return None


async def hold():
    await asyncio.sleep(3600)


def pair_of(ns, task):
    """The (task_ref, creator_ref) of the agent's pair for task."""
    records = ns["records"]
    for i in range(2, len(records) - 1, 2):
        r = records[i]
        if r is not None and r is not records[i + 1] and r() is task:
            return r, records[i + 1]
    return None


async def main():
    import asyncunwind_agent as agent
    if agent._engine is None:
        sys.exit(2)
    ns = agent._engine.ns
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    # Only 3.14+ needs it; on sid's 3.13 it leaves the freed task's block in
    # a pool that new tasks do not draw from first.
    warm = [asyncio.create_task(body())
            for _ in range(50 if sys.version_info >= (3, 14) else 0)]
    await asyncio.gather(*warm)
    del warm
    first = asyncio.create_task(body(), name="first")
    await first
    pair = pair_of(ns, first)
    generation = ns["generation"]
    if pair is None:
        sys.exit(2)
    holder = [first]
    del first
    spare = [hold() for _ in range(20000)]
    # The loop's handles that woke us still hold "first" for a step.
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    found = []

    def construct():
        # "first" dies here: the very next allocations are the new tasks.
        address = id(holder[0])
        holder.clear()
        tries = []
        for coro in spare:
            task = asyncio.Task(coro, loop=loop, name="reused")
            if id(task) == address:
                found.append((task, address))
                break
            tries.append(task)
        for task in tries:
            task.cancel()
        for coro in spare[len(tries) + len(found):]:
            coro.close()
    loop.call_soon(construct)
    await asyncio.sleep(0)
    del spare
    if not found:
        sys.exit(3)
    reused, address = found[0]
    HELD.append(reused)
    # The stale pair: still in the current list, its task weakref dead.
    if (pair[0]() is not None or pair[1]() is not me or
            ns["generation"] != generation or
            not any(r is pair[0] for r in ns["records"])):
        sys.exit(2)
    stale = "STALE %x %x %x\n" % (id(pair[0]), id(pair[1]), address)
    del pair, reused
    loop.add_signal_handler(signal.SIGUSR1, foreign_list, me)
    loop.call_soon(announce, stale)
    # Not awaiting "reused": its only possible parent is the stale pair's
    # creator, Task-1, which it must not get.
    await asyncio.sleep(3600)


def foreign_list(main_task):
    """Points the region's header at a list that is not the agent's."""
    import asyncunwind_agent as agent
    ns = agent._engine.ns
    foreign = [None, None, weakref.ref(HELD[0]), weakref.ref(main_task)]
    HELD.append(foreign)
    ns["words"][4] = id(foreign)  # the header's list address (offset 32)
    sys.stdout.write("FOREIGN %x\n" % id(foreign))
    sys.stdout.flush()


def announce(stale):
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.write(stale)
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
