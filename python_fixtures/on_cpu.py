# asyncunwind fixture: on_cpu
#
# A task on CPU in synchronous code.  The main task (Task-1, cpu_main)
# creates cpu-idle-1 (waits on a future) and cpu-idle-2 (asyncio.sleep),
# then awaits cpu-spinner.  cpu-spinner (spin_task) creates
# cpu-spinner-child, lets it start, then calls crunch() -> spin(), which
# spins forever on one line: the loop never runs again.  cpu-spinner is the
# running task: its stack ends in the thread's own frames from spin_task on
# (spin_task, crunch, spin), and every stack of the thread starts with the
# thread's frames up to the loop's Handle._run.  Where cpu-spinner is an
# ancestor (of cpu-spinner-child, with the agent) its own coroutine frame,
# spin_task at the crunch() call, is shown.  Without the agent cpu-idle-1,
# cpu-idle-2 and cpu-spinner-child are roots.  Expected: expected/on_cpu.txt
# and .noagent.txt.  Prints "READY <pid>" when it starts spinning.  Runs on
# CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import os
import sys

HELD = []  # never-completing futures, kept alive (and their waiters with them)
KEEP = []  # tasks nobody awaits, kept alive


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def never_done():
    fut = asyncio.get_running_loop().create_future()
    HELD.append(fut)
    return fut


def spin():
    announce()
    x = 1
    while True: x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def crunch():
    spin()


async def idle_one():
    await never_done()


async def idle_two():
    await asyncio.sleep(3600)


async def spinner_child_work():
    await never_done()


async def spin_task():
    KEEP.append(asyncio.create_task(spinner_child_work(), name="cpu-spinner-child"))
    await asyncio.sleep(0)
    crunch()


async def cpu_main():
    KEEP.append(asyncio.create_task(idle_one(), name="cpu-idle-1"))
    KEEP.append(asyncio.create_task(idle_two(), name="cpu-idle-2"))
    await asyncio.create_task(spin_task(), name="cpu-spinner")


def main():
    asyncio.run(cpu_main())


if __name__ == "__main__":
    main()
