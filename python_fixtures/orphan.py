# asyncunwind fixture: orphan
#
# A creator that finishes before its child.  The main task (Task-1,
# orphan_main) awaits short-lived, which creates orphan and returns at once.
# orphan creates orphan-child and waits forever.  short-lived is done, so it
# is no task of the sample: orphan has no live creator and is a root, with or
# without the agent.  With the agent orphan-child sits under orphan (weak
# link); without it orphan-child is a root too.  Expected:
# expected/orphan.txt and .noagent.txt.  Prints "READY <pid>" from a
# callback Task-1 queues after short-lived is done.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
KEEP = []  # tasks nobody awaits, kept alive


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def never_done():
    fut = asyncio.get_running_loop().create_future()
    HELD.append(fut)
    return fut


async def orphan_child_work():
    await never_done()


async def orphan_work():
    KEEP.append(asyncio.create_task(orphan_child_work(), name="orphan-child"))
    await never_done()


async def spawn_and_return():
    KEEP.append(asyncio.create_task(orphan_work(), name="orphan"))


async def orphan_main():
    await asyncio.create_task(spawn_and_return(), name="short-lived")
    asyncio.get_running_loop().call_soon(announce)
    await never_done()


def main():
    asyncio.run(orphan_main())


if __name__ == "__main__":
    main()
