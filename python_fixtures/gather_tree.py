# asyncunwind fixture: gather_tree
#
# gather in three forms.  The main task (Task-1, gather_main) first gathers
# two bare coroutines, which gather wraps in tasks it names itself.  They
# are the first tasks after Task-1, so they are Task-2 (gathered_coro_x) and
# Task-3 (gathered_coro_y) on every version (up to 3.12 the name counter
# counts named tasks too, from 3.13 unnamed ones only).  Then it gathers
# that gather's future (a nested gather) and two holder tasks:
#   holder-tasks   gathers the tasks g-task-1 and g-task-2;
#   holder-nested  gathers gather(nested-1, nested-2) and nested-3.
# A gather's future is no task, so Task-2 and Task-3 sit right under Task-1,
# and nested-1..3 all under holder-nested.  Every link is strong, so the
# stacks are the same with and without the agent.  Expected:
# expected/gather_tree.txt.  Prints "READY <pid>" once the seven leaves
# have started.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
PENDING = [7]  # leaves still to start


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


async def gathered_one():
    started()
    await never_done()


async def gathered_two():
    started()
    await never_done()


async def gathered_coro_x():
    started()
    await never_done()


async def gathered_coro_y():
    started()
    await never_done()


async def nested_leaf():
    started()
    await never_done()


async def gather_of_tasks():
    one = asyncio.create_task(gathered_one(), name="g-task-1")
    two = asyncio.create_task(gathered_two(), name="g-task-2")
    await asyncio.gather(one, two)


async def gather_nested():
    first = asyncio.create_task(nested_leaf(), name="nested-1")
    second = asyncio.create_task(nested_leaf(), name="nested-2")
    third = asyncio.create_task(nested_leaf(), name="nested-3")
    await asyncio.gather(asyncio.gather(first, second), third)


async def gather_main():
    bare = asyncio.gather(gathered_coro_x(), gathered_coro_y())
    by_tasks = asyncio.create_task(gather_of_tasks(), name="holder-tasks")
    nested = asyncio.create_task(gather_nested(), name="holder-nested")
    await asyncio.gather(bare, by_tasks, nested)


def main():
    asyncio.run(gather_main())


if __name__ == "__main__":
    main()
