# asyncunwind fixture: taskgroup_tree
#
# TaskGroups, nested (Python 3.11+).  The main task (Task-1, tg_main) runs a
# TaskGroup holding tg-outer-1 and tg-inner-holder, and waits in the group's
# __aexit__.  tg-inner-holder runs a TaskGroup holding tg-inner-1 and,
# inside it, a second TaskGroup holding tg-nested-1; it waits in the inner
# body, so its groups hold their tasks while the body still runs.  A group's
# tasks sit under the group's parent task (strong links), so the stacks are
# the same with and without the agent.  Expected:
# expected/taskgroup_tree.txt.  Prints "READY <pid>" once the three leaves
# have started.  Exits with an error before Python 3.11.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
PENDING = [3]  # leaves still to start


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


async def tg_leaf():
    started()
    await never_done()


async def inner_group():
    async with asyncio.TaskGroup() as group:
        group.create_task(tg_leaf(), name="tg-inner-1")
        async with asyncio.TaskGroup() as nested:
            nested.create_task(tg_leaf(), name="tg-nested-1")
            await never_done()


async def tg_main():
    async with asyncio.TaskGroup() as group:
        group.create_task(tg_leaf(), name="tg-outer-1")
        group.create_task(inner_group(), name="tg-inner-holder")


def main():
    if sys.version_info < (3, 11):
        sys.exit("taskgroup_tree.py needs Python 3.11+ (asyncio.TaskGroup)")
    asyncio.run(tg_main())


if __name__ == "__main__":
    main()
