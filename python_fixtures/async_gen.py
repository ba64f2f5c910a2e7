# asyncunwind fixture: async_gen
#
# Async generators and async context managers inside tasks.  The main task
# (Task-1, async_gen_main) gathers five tasks, each suspended inside one:
#   agen-for        consume_with_for: `async for` over ticker(), which
#                   waits before its first yield;
#   agen-asend      drive_with_asend: primes echo() with asend(None), then
#                   awaits asend("ping"), inside which echo() waits;
#   acm-enter       enter_slow_gate: SlowGate.__aenter__ waits;
#   acm-exit        exit_slow_exit: SlowExit.__aexit__ waits (the body ran);
#   acm-contextlib  use_held_resource: a @contextlib.asynccontextmanager,
#                   whose generator held_resource() waits before its yield.
# A task's frames follow the chain into the generator (through the
# async_generator_asend object that `async for`, asend() and anext() await).
# All links are strong, so the stacks are the same with and without the
# agent.  Expected: expected/async_gen.txt.  Prints "READY <pid>" once the
# five waits have started.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import contextlib
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
PENDING = [5]  # waits still to start


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


async def ticker():
    started()
    await never_done()
    yield "tick"


async def echo():
    received = yield "primed"
    started()
    await never_done()
    yield received


class SlowGate:
    async def __aenter__(self):
        started()
        await never_done()

    async def __aexit__(self, *exc_info):
        return False


class SlowExit:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        started()
        await never_done()


@contextlib.asynccontextmanager
async def held_resource():
    started()
    await never_done()
    yield "resource"


async def consume_with_for():
    async for tick in ticker():
        return tick


async def drive_with_asend():
    gen = echo()
    await gen.asend(None)
    await gen.asend("ping")


async def enter_slow_gate():
    async with SlowGate(): pass


async def exit_slow_exit():
    async with SlowExit(): pass


async def use_held_resource():
    async with held_resource(): pass


async def async_gen_main():
    by_for = asyncio.create_task(consume_with_for(), name="agen-for")
    by_asend = asyncio.create_task(drive_with_asend(), name="agen-asend")
    entering = asyncio.create_task(enter_slow_gate(), name="acm-enter")
    exiting = asyncio.create_task(exit_slow_exit(), name="acm-exit")
    by_contextlib = asyncio.create_task(use_held_resource(), name="acm-contextlib")
    await asyncio.gather(by_for, by_asend, entering, exiting, by_contextlib)


def main():
    asyncio.run(async_gen_main())


if __name__ == "__main__":
    main()
