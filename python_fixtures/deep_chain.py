# asyncunwind fixture: deep_chain
#
# A 300-deep coroutine chain in one task: the main task (Task-1, deep_main)
# awaits deep-chain, which runs descend(300): descend awaits descend(n - 1)
# down to descend(1), which waits on a future.  deep-chain's frames are 299
# descend frames at the recursive await, then one at the final await.  Same
# with and without the agent.  Expected: expected/deep_chain.txt.  Usage:
#     python deep_chain.py [DEPTH]
# Prints "READY <pid>" from a callback queued just before the innermost
# await.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

DEPTH = 300
HELD = []  # never-completing futures, kept alive (and their waiters with them)


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def never_done():
    fut = asyncio.get_running_loop().create_future()
    HELD.append(fut)
    return fut


async def descend(depth):
    if depth > 1:
        return await descend(depth - 1)
    asyncio.get_running_loop().call_soon(announce)
    await never_done()


async def deep_main(depth):
    await asyncio.create_task(descend(depth), name="deep-chain")


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else DEPTH
    sys.setrecursionlimit(max(1000, depth + 200))
    asyncio.run(deep_main(depth))


if __name__ == "__main__":
    main()
