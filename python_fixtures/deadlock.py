# asyncunwind fixture: deadlock
#
# Tasks that await each other.  The main task (Task-1, deadlock_main)
# creates two rings of tasks that all run await_partner(), which awaits the
# task the box names for it:
#   a pair:  dead-low awaits dead-high, dead-high awaits dead-low;
#   a ring:  cycle-1 awaits cycle-2, cycle-2 awaits cycle-3, cycle-3 awaits
#            cycle-1; cycle-2 also creates cycle-hanger, which waits on a
#            future.
# The names follow the tasks' addresses (the reader's task ids), lowest
# first, so that docs/RESOLVER.md's "lowest id" choices are known in
# advance: a closed cycle that no stack shows gets one stack, for its
# lowest-id member, with a cycle marker.  With the agent cycle-hanger hangs
# below cycle-2 (weak link) and its stack shows the ring; without it,
# cycle-hanger is a root and the ring gets its own stack, for cycle-1.
# Expected: expected/deadlock.txt and .noagent.txt.  Prints "READY <pid>"
# once every task has started.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
KEEP = []  # tasks nobody awaits, kept alive
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


async def hang_below():
    started()
    await never_done()


async def await_partner(box):
    me = asyncio.current_task()
    if box["spawner"] is me:
        KEEP.append(asyncio.create_task(hang_below(), name="cycle-hanger"))
    started()
    await box[me]


async def deadlock_main():
    box = {}
    pair = sorted([asyncio.create_task(await_partner(box), name="dead") for _ in range(2)], key=id)
    ring = sorted([asyncio.create_task(await_partner(box), name="cycle") for _ in range(3)], key=id)
    pair[0].set_name("dead-low")
    pair[1].set_name("dead-high")
    ring[0].set_name("cycle-1")
    ring[1].set_name("cycle-2")
    ring[2].set_name("cycle-3")
    box[pair[0]] = pair[1]
    box[pair[1]] = pair[0]
    box[ring[0]] = ring[1]
    box[ring[1]] = ring[2]
    box[ring[2]] = ring[0]
    box["spawner"] = ring[1]
    await never_done()


def main():
    asyncio.run(deadlock_main())


if __name__ == "__main__":
    main()
