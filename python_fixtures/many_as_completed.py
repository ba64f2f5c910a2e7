# asyncunwind fixture: many_as_completed
#
# Ten holders (holder-0 .. holder-9), gathered by the main task (Task-1),
# each waiting on asyncio.as_completed over three tasks of its own
# (child-K-0 .. child-K-2) that never finish.  as_completed records its
# children only in the done-callback it hangs on each: a closure whose
# cells the holder's _wait_for_one frame holds too (3.9-3.12), or a bound
# method of the iterator that frame runs (3.13+).  The reader finds the
# holder by comparing those objects with the tasks' first frame slots: the
# first 8 distinct objects by a pass over the slots, the rest through an
# index of them (core/asyncio/pylinks.c, SCAN_KEYS).  Ten holders ask for
# more than 8, so both ways are used.  Every child sits under its own
# holder by a strong link, with and without the agent.  Expected:
# expected/many_as_completed.tree.  Prints "READY <pid>" once the thirty
# children have started.  Runs on CPython 3.9+.
import asyncio
import os
import sys

HOLDERS = 10
CHILDREN = 3
PENDING = [HOLDERS * CHILDREN]  # children still to start


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


async def child():
    PENDING[0] -= 1
    if PENDING[0] == 0:
        asyncio.get_running_loop().call_soon(announce)
    await asyncio.sleep(3600)


async def holder(k):
    tasks = [asyncio.create_task(child(), name="child-%d-%d" % (k, j)) for j in range(CHILDREN)]
    for done in asyncio.as_completed(tasks):
        await done


async def main():
    holders = [asyncio.create_task(holder(k), name="holder-%d" % k) for k in range(HOLDERS)]
    await asyncio.gather(*holders)


asyncio.run(main())
