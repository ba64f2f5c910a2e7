# asyncunwind fixture: anyio_groups
#
# anyio's task groups on its asyncio backend, the structured concurrency
# most asyncio libraries outside the standard library use (sid's
# python3-anyio, 4.x).  anyio runs every child through its own wrapper
# coroutine (TaskHandle._run_coro) and waits in TaskGroup.__aexit__ on a
# future of its own; the reader finds each child's group through anyio's
# done-callback, and the group's task through its cancel scope (3.11+), and
# from 3.14 anyio also publishes them (asyncio.future_add_to_awaited_by).
# The agent must not break anyio's cancel scopes (agent_checks.py, anyio).
#
# The main task (__main__.main) runs a group holding outer-worker, inner
# and served (started with tg.start, which waits for task_status.started()).
# inner creates plain with asyncio.create_task (a weak link only, on every
# version) and runs a group holding inner-worker and shielded (inside a
# shielded CancelScope).  Expected: expected/anyio_groups.txt and
# .noagent.txt.  Prints "READY <pid>" once the five leaves have started.
# Exits with an error where anyio cannot be imported.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

try:
    import anyio
except ImportError:
    sys.exit("anyio_groups.py: needs anyio (sid's python3-anyio)")

KEEP = []  # tasks nobody awaits, kept alive
PENDING = [5]  # leaves still to start


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def started():
    PENDING[0] -= 1
    if PENDING[0] == 0:
        asyncio.get_running_loop().call_soon(announce)


async def worker():
    started()
    await anyio.sleep(3600)


async def shielded():
    with anyio.CancelScope(shield=True):
        started()
        await anyio.sleep(3600)


async def plain():
    started()
    await asyncio.Event().wait()


async def served(*, task_status=anyio.TASK_STATUS_IGNORED):
    task_status.started()
    started()
    await anyio.sleep(3600)


async def inner_group():
    KEEP.append(asyncio.create_task(plain(), name="plain"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, name="inner-worker")
        tg.start_soon(shielded, name="shielded")


async def main():
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, name="outer-worker")
        tg.start_soon(inner_group, name="inner")
        await tg.start(served, name="served")


anyio.run(main)
