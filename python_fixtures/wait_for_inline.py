# asyncunwind fixture: wait_for_inline
#
# asyncio.wait_for on a bare coroutine, Python 3.12+: wait_for awaits the
# coroutine itself (inside asyncio.timeout), so no task is made and its
# frames continue the caller's chain: one task, Task-1, whose stack reads
# wait_for_main / wait_for / inline_outer / inline_inner.  (Up to 3.11
# wait_for wraps the coroutine in a task of its own named Task-2, held by a
# strong link; waiters.py covers that mechanism with a named task.)  Same
# with and without the agent.  Expected: expected/wait_for_inline.txt.
# Prints "READY <pid>" from a callback queued just before the innermost
# await.  Exits with an error before Python 3.12.
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


async def inline_inner():
    asyncio.get_running_loop().call_soon(announce)
    await never_done()


async def inline_outer():
    await inline_inner()


async def wait_for_main():
    await asyncio.wait_for(inline_outer(), 3600)


def main():
    if sys.version_info < (3, 12):
        sys.exit("wait_for_inline.py needs Python 3.12+ (wait_for awaits coroutines inline)")
    asyncio.run(wait_for_main())


if __name__ == "__main__":
    main()
