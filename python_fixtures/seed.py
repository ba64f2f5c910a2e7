# asyncunwind fixture: seed
#
# The program of the issue (README.md, "Why weak links matter"): parent(),
# the main task (unnamed, so "Task-1"), creates Task-not_awaited and
# Task-awaited and awaits only the second.  Both children sleep for an hour.
# With weak links (the agent), Task-not_awaited sits under its creator:
#     ... [Task-1] / parent / [Task-not_awaited] / func_not_awaited / sleep
# without them it is a root of its own.  Expected stacks:
# expected/seed.txt (agent) and expected/seed.noagent.txt.  Prints
# "READY <pid>" from a callback queued after both children's first step,
# so every task is suspended by then.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys


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
    asyncio.run(parent())


if __name__ == "__main__":
    main()
