# asyncunwind fixture: await_beats_weak
#
# A task created by one task and awaited by another.  The main task (Task-1,
# abw_main) creates creator-a and awaiter-b.  creator-a creates shared-child
# and hands it to awaiter-b through a future, then waits forever; awaiter-b
# awaits shared-child.  shared-child's parent is awaiter-b (an await link
# beats the weak link to its creator, creator-a).  With the agent, creator-a
# and awaiter-b sit under Task-1 (weak links); without it they are roots.
# Expected: expected/await_beats_weak.txt and .noagent.txt.  Prints
# "READY <pid>" from a callback awaiter-b queues before it suspends (by then
# the others are suspended).  Runs on CPython 3.9+.
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


async def shared_work():
    await never_done()


async def make_and_publish(published):
    child = asyncio.create_task(shared_work(), name="shared-child")
    published.set_result(child)
    await never_done()


async def await_published(published):
    child = await published
    asyncio.get_running_loop().call_soon(announce)
    await child


async def abw_main():
    published = asyncio.get_running_loop().create_future()
    creator = asyncio.create_task(make_and_publish(published), name="creator-a")
    awaiter = asyncio.create_task(await_published(published), name="awaiter-b")
    await never_done()
    return creator, awaiter


def main():
    asyncio.run(abw_main())


if __name__ == "__main__":
    main()
