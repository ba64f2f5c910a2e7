# asyncunwind fixture: eager_tasks
#
# Eager tasks (Python 3.12+): the main task (Task-1, eager_main, itself not
# eager) installs asyncio.eager_task_factory, then creates
#   eager-parent  which, during its eager first step, creates eager-child
#                 (eager too, suspended at once) and awaits it;
#   eager-quick   which creates eager-orphan and returns within its eager
#                 first step, so it is done before create_task returns.
# eager-child sits under eager-parent (await link); eager-parent under
# Task-1 with the agent (weak link), a root without it.  eager-orphan's
# creator is done, so it is a root either way.  Expected:
# expected/eager_tasks.txt and .noagent.txt.  Prints "READY <pid>" once both
# suspended leaves have started.  Exits with an error before Python 3.12.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
KEEP = []  # tasks nobody awaits, kept alive
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


async def eager_child_work():
    started()
    await never_done()


async def eager_orphan_work():
    started()
    await never_done()


async def eager_parent_work():
    await asyncio.create_task(eager_child_work(), name="eager-child")


async def eager_quick_work():
    KEEP.append(asyncio.create_task(eager_orphan_work(), name="eager-orphan"))


async def eager_main():
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
    KEEP.append(asyncio.create_task(eager_parent_work(), name="eager-parent"))
    KEEP.append(asyncio.create_task(eager_quick_work(), name="eager-quick"))
    await never_done()


def main():
    if sys.version_info < (3, 12):
        sys.exit("eager_tasks.py needs Python 3.12+ (asyncio.eager_task_factory)")
    asyncio.run(eager_main())


if __name__ == "__main__":
    main()
