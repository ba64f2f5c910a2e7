# asyncunwind fixture: two_loops
#
# Event loops on two threads at once.  Thread loop-alpha runs a loop whose
# root task alpha-root awaits alpha-worker; thread loop-beta runs a loop
# whose root task beta-root gathers beta-worker-1 and beta-worker-2.  Each
# thread's stacks hold its own tasks only, below its own frames.  The main
# thread runs no loop and sleeps in main_wait() (a thread stack without
# tasks).  Root tasks are named (run_until_complete on a named task), so no
# name depends on which thread starts first.  Same with and without the
# agent.  Expected: expected/two_loops.txt.  Prints "READY <pid>" once both
# loops have their workers suspended.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys
import threading
import time

HELD = []  # never-completing futures, kept alive (and their waiters with them)


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def never_done():
    fut = asyncio.get_running_loop().create_future()
    HELD.append(fut)
    return fut


async def alpha_work():
    await never_done()


async def alpha_root(ready):
    worker = asyncio.create_task(alpha_work(), name="alpha-worker")
    asyncio.get_running_loop().call_soon(ready.set)
    await worker


async def beta_work():
    await never_done()


async def beta_root(ready):
    first = asyncio.create_task(beta_work(), name="beta-worker-1")
    second = asyncio.create_task(beta_work(), name="beta-worker-2")
    asyncio.get_running_loop().call_soon(ready.set)
    await asyncio.gather(first, second)


def run_loop(root, name, ready):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(loop.create_task(root(ready), name=name))


def main_wait():
    announce()
    while True:
        time.sleep(3600)


def main():
    events = []
    for thread_name, root, task_name in (("loop-alpha", alpha_root, "alpha-root"), ("loop-beta", beta_root, "beta-root")):
        ready = threading.Event()
        events.append(ready)
        thread = threading.Thread(name=thread_name, target=run_loop, args=(root, task_name, ready))
        thread.daemon = True
        thread.start()
    for ready in events:
        if not ready.wait(30):
            sys.exit("an event loop did not start")
    main_wait()


if __name__ == "__main__":
    main()
