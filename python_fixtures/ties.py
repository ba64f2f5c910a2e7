# asyncunwind fixture: ties
#
# Ties between parents, and stranded waiters (docs/RESOLVER.md, rule 1 and
# rule 2).  The main task (Task-1, ties_main) creates four tasks, named
# after their addresses (the reader's task ids), lowest first:
#   tie-low, tie-high      both await tie-shared, which tie-high created;
#   gather-low, gather-high  both gather gather-shared, which gather-high
#                          created.
# At each level the creator wins a tie, else the lowest id.  So with the
# agent tie-shared sits under tie-high and gather-shared under gather-high,
# and tie-low and gather-low, waiting on a task that went under another
# parent, are stranded waiters with stacks of their own (under Task-1, their
# creator).  Without the agent the lowest id wins: tie-shared sits under
# tie-low, gather-shared under gather-low, and tie-high and gather-high are
# stranded roots.  Expected: expected/ties.txt and .noagent.txt.  Prints
# "READY <pid>" once every task has started.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
PENDING = [6]  # tasks still to start


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def never_done():
    fut = asyncio.get_running_loop().create_future()
    HELD.append(fut)
    return fut


def started():
    PENDING[0] -= 1
    if PENDING[0] == 0:
        asyncio.get_running_loop().call_soon(announce)


async def tie_target():
    started()
    await never_done()


async def gather_tie_target():
    started()
    await never_done()


async def tie_waiter(box):
    if box["tie-creator"] is asyncio.current_task():
        box["tie"].set_result(asyncio.create_task(tie_target(), name="tie-shared"))
    shared = await box["tie"]
    started()
    await shared


async def gather_tie_holder(box):
    if box["gather-creator"] is asyncio.current_task():
        box["gather"].set_result(asyncio.create_task(gather_tie_target(), name="gather-shared"))
    shared = await box["gather"]
    started()
    await asyncio.gather(shared)


async def ties_main():
    loop = asyncio.get_running_loop()
    box = {"tie": loop.create_future(), "gather": loop.create_future()}
    waiters = sorted([asyncio.create_task(tie_waiter(box), name="tie") for _ in range(2)], key=id)
    holders = sorted([asyncio.create_task(gather_tie_holder(box), name="gather") for _ in range(2)], key=id)
    waiters[0].set_name("tie-low")
    waiters[1].set_name("tie-high")
    holders[0].set_name("gather-low")
    holders[1].set_name("gather-high")
    box["tie-creator"] = waiters[1]
    box["gather-creator"] = holders[1]
    await never_done()


def main():
    asyncio.run(ties_main())


if __name__ == "__main__":
    main()
