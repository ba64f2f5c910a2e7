# asyncunwind fixture: big_gather
#
# One task, holder, gathers 2,000 children: 1,000 bare coroutines and
# 1,000 tasks named gt-<i>, every one asleep in leaf().  Every task is an
# instance of a Python subclass of asyncio.Task (MyTask, from a task
# factory), as some frameworks make them.  Every child must sit under
# holder: the strong links of one gather do not run out at any count.
# Prints "READY <pid>" once the children are suspended.  Checked by
# tests/cli_test.sh.  Runs on CPython 3.9+.
import asyncio
import os
import sys

CHILDREN = 1000  # of each kind
PENDING = [2 * CHILDREN]  # children still to start


class MyTask(asyncio.Task):
    pass


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


async def leaf():
    PENDING[0] -= 1
    if PENDING[0] == 0:
        asyncio.get_running_loop().call_soon(announce)
    await asyncio.sleep(3600)


async def holder():
    tasks = [asyncio.create_task(leaf(), name="gt-%d" % i) for i in range(CHILDREN)]
    await asyncio.gather(*[leaf() for _ in range(CHILDREN)], *tasks)


async def main():
    asyncio.get_running_loop().set_task_factory(
        lambda loop, coro, **kw: MyTask(coro, loop=loop, **kw))
    await asyncio.create_task(holder(), name="holder")


asyncio.run(main())
