# asyncunwind fixture: seed_uvloop
#
# The seed program (seed.py) on a uvloop loop: parent(), the main task
# (unnamed, so "Task-1"), creates Task-not_awaited and Task-awaited and
# awaits only the second.  uvloop runs its loop in C, so the thread's
# frames stop at asyncio.Runner.run.  Needs uvloop (sid's python3.14) and
# Python 3.11+ (asyncio.Runner); exits with an error without them.
# Expected: expected/seed_uvloop.txt and .noagent.txt.  Prints
# "READY <pid>" from a callback queued after both children's first step.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

try:
    import uvloop
except ImportError:
    uvloop = None


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


async def func_not_awaited():
    await asyncio.sleep(3600)


async def func_awaited():
    await asyncio.sleep(3600)


async def parent():
    t_not_awaited = asyncio.create_task(func_not_awaited(), name="Task-not_awaited")
    t_awaited = asyncio.create_task(func_awaited(), name="Task-awaited")
    asyncio.get_running_loop().call_soon(announce)
    await t_awaited
    return t_not_awaited


def main():
    if uvloop is None or sys.version_info < (3, 11):
        sys.exit("seed_uvloop.py needs uvloop and Python 3.11+")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(parent())


if __name__ == "__main__":
    main()
