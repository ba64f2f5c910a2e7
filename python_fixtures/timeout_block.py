# asyncunwind fixture: timeout_block
#
# asyncio.timeout (Python 3.11+) adds no frame and no link: the main task
# (Task-1, timeout_main) creates timeout-leaf, then awaits timeout-child
# inside `async with asyncio.timeout(3600)` (an await link).  timeout-leaf
# waits on a future inside its own asyncio.timeout; nobody awaits it, so it
# sits under its creator Task-1 with the agent (weak link) and is a root
# without it.  Expected: expected/timeout_block.txt and .noagent.txt.
# Prints "READY <pid>" once both children have started.  Exits with an
# error before Python 3.11.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
PENDING = [2]  # leaves still to start


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


async def timed_child():
    started()
    await never_done()


async def wait_inside_timeout():
    started()
    async with asyncio.timeout(3600):
        await never_done()


async def timeout_main():
    leaf = asyncio.create_task(wait_inside_timeout(), name="timeout-leaf")
    child = asyncio.create_task(timed_child(), name="timeout-child")
    async with asyncio.timeout(3600):
        await child
    return leaf


def main():
    if sys.version_info < (3, 11):
        sys.exit("timeout_block.py needs Python 3.11+ (asyncio.timeout)")
    asyncio.run(timeout_main())


if __name__ == "__main__":
    main()
