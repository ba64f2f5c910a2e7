# asyncunwind fixture: many_tasks
#
# Many idle tasks: the main task (Task-1, many_main) creates COUNT tasks
# (default 1,000; the checks also run 10,000) in four shapes, by index i:
#   idle-sleep-<i>   i % 4 == 0   idle_sleep: asyncio.sleep(3600)
#   idle-event-<i>   i % 4 == 1   idle_event: an Event that is never set
#   idle-future-<i>  i % 4 == 2   idle_future -> idle_future_inner: a future
#   idle-queue-<i>   i % 4 == 3   idle_queue: get() on an empty Queue
# with <i> in five digits (idle-sleep-00000, ...), then waits on a future.
# Nobody awaits the idle tasks: with the agent they sit under Task-1 (weak
# links), without it each is a root.  Expected: expected/many_tasks.txt and
# .noagent.txt (wildcard blocks per shape, exact ones for a few tasks), for
# any COUNT >= 1000.  Usage:
#     python many_tasks.py [COUNT]
# Prints "READY <pid>" once every task has started.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

COUNT = 1000
HELD = []  # never-completing futures, kept alive (and their waiters with them)
KEEP = []  # tasks nobody awaits, kept alive
PENDING = [0]  # tasks still to start


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


async def idle_sleep():
    started()
    await asyncio.sleep(3600)


async def idle_event(event):
    started()
    await event.wait()


async def idle_future_inner():
    await never_done()


async def idle_future():
    started()
    await idle_future_inner()


async def idle_queue(queue):
    started()
    await queue.get()


def make_idle(i, event, queue):
    if i % 4 == 0:
        return asyncio.create_task(idle_sleep(), name="idle-sleep-%05d" % i)
    if i % 4 == 1:
        return asyncio.create_task(idle_event(event), name="idle-event-%05d" % i)
    if i % 4 == 2:
        return asyncio.create_task(idle_future(), name="idle-future-%05d" % i)
    return asyncio.create_task(idle_queue(queue), name="idle-queue-%05d" % i)


async def many_main(count):
    event = asyncio.Event()
    queue = asyncio.Queue()
    PENDING[0] = count
    for i in range(count):
        KEEP.append(make_idle(i, event, queue))
    await never_done()


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else COUNT
    asyncio.run(many_main(count))


if __name__ == "__main__":
    main()
