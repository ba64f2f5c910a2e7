# asyncunwind fixture: fork_exec
#
# A process that forks, then execs, for a recorder that must follow both.
# Before asyncio starts, the process forks a child that runs a task named
# "forked-child" suspended in forked_wait() (and exits soon after its
# parent does).  The parent runs a task named "before-exec", suspended in
# before_exec() for half a second, then replaces itself (os.execv, same
# pid) with the same interpreter running seed.py from this directory, which
# prints "READY <pid>" once its tasks are suspended.  Runs on CPython 3.9+.
import asyncio
import os
import sys


async def watch_parent(ppid):
    while os.getppid() == ppid:
        await asyncio.sleep(0.2)


async def forked_wait(ppid):
    await watch_parent(ppid)


async def forked_main(ppid):
    await asyncio.create_task(forked_wait(ppid), name="forked-child")


async def before_exec():
    await asyncio.sleep(0.5)


async def parent_main():
    await asyncio.create_task(before_exec(), name="before-exec")


def main():
    ppid = os.getpid()
    if os.fork() == 0:
        asyncio.run(forked_main(ppid))
        os._exit(0)
    asyncio.run(parent_main())
    seed = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed.py")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, seed])


if __name__ == "__main__":
    main()
