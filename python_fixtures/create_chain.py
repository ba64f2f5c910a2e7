# asyncunwind fixture: create_chain
#
# A chain of create_task awaited in turn: the main task (Task-1, running
# chain_main) creates and awaits chain-a, which creates and awaits chain-b,
# and so on down to chain-d, which waits on a future that never completes.
# Every link is an await link, so the stacks are the same with and without
# the agent: one stack, leaf chain-d.  Expected: expected/create_chain.txt.
# Prints "READY <pid>" from a callback that chain-d queues just before it
# suspends.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def never_done():
    fut = asyncio.get_running_loop().create_future()
    HELD.append(fut)
    return fut


async def step_d():
    asyncio.get_running_loop().call_soon(announce)
    await never_done()


async def step_c():
    await asyncio.create_task(step_d(), name="chain-d")


async def step_b():
    await asyncio.create_task(step_c(), name="chain-c")


async def step_a():
    await asyncio.create_task(step_b(), name="chain-b")


async def chain_main():
    await asyncio.create_task(step_a(), name="chain-a")


def main():
    asyncio.run(chain_main())


if __name__ == "__main__":
    main()
