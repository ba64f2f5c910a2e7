# asyncunwind fixture: waiters
#
# The other ways to hold a task: the main task (Task-1, waiters_main)
# gathers four holders, each waiting on its own tasks in one way:
#   holder-wait          asyncio.wait([wait-1, wait-2], FIRST_COMPLETED)
#   holder-as-completed  for f in asyncio.as_completed([ac-1, ac-2]): await f
#   holder-shield        await asyncio.shield(shielded)
#   holder-wait-for      await asyncio.wait_for(wait-for-target, 3600)
# Each leaf sits under its holder: a strong link (wait_for: a strong link up
# to 3.11, an await link from 3.12, where wait_for awaits the task itself),
# so the stacks are the same with and without the agent.  Expected:
# expected/waiters.txt.  Prints "READY <pid>" once the six leaves have
# started.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
PENDING = [6]  # leaves still to start


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


async def wait_member():
    started()
    await never_done()


async def as_completed_member():
    started()
    await never_done()


async def shielded_work():
    started()
    await never_done()


async def wait_for_target():
    started()
    await never_done()


async def use_wait():
    first = asyncio.create_task(wait_member(), name="wait-1")
    second = asyncio.create_task(wait_member(), name="wait-2")
    await asyncio.wait([first, second], return_when=asyncio.FIRST_COMPLETED)


async def use_as_completed():
    first = asyncio.create_task(as_completed_member(), name="ac-1")
    second = asyncio.create_task(as_completed_member(), name="ac-2")
    for next_done in asyncio.as_completed([first, second]):
        await next_done


async def use_shield():
    inner = asyncio.create_task(shielded_work(), name="shielded")
    await asyncio.shield(inner)


async def use_wait_for():
    target = asyncio.create_task(wait_for_target(), name="wait-for-target")
    await asyncio.wait_for(target, 3600)


async def waiters_main():
    by_wait = asyncio.create_task(use_wait(), name="holder-wait")
    by_as_completed = asyncio.create_task(use_as_completed(), name="holder-as-completed")
    by_shield = asyncio.create_task(use_shield(), name="holder-shield")
    by_wait_for = asyncio.create_task(use_wait_for(), name="holder-wait-for")
    await asyncio.gather(by_wait, by_as_completed, by_shield, by_wait_for)


def main():
    asyncio.run(waiters_main())


if __name__ == "__main__":
    main()
