# asyncunwind fixture: children
#
# A process tree of asyncio programs, for following subprocesses.  The
# parent starts two children running this file (sys.executable, so the
# same interpreter); child 0 starts a grandchild of its own.  Each child's
# main task awaits a task named "child-<path>" (child-0, child-1,
# child-0.0) suspended in child_work(); the parent's main task awaits
# "parent-waiter", suspended in parent_wait().  Expected collapsed stacks:
#     ...;[Task-1];parent_main;[parent-waiter];parent_wait;sleep
#     ...;[Task-1];child_main;[child-0];child_work;sleep          (and 1, 0.0)
# Children exit soon after their parent does (each watches its parent id),
# so killing the parent cleans up the tree.  Prints "READY <pid>" once
# every descendant is ready.  Usage:
#     python children.py               the parent
#     python children.py child PATH N  a child, with N children of its own
# Runs on CPython 3.9+.
import asyncio
import os
import subprocess
import sys


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def start_children(prefix, n):
    """Start n children and wait for each one's READY line."""
    procs = []
    for i in range(n):
        path = "%s%d" % (prefix, i)
        nkids = 1 if path == "0" else 0
        p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "child", path, str(nkids)],
            stdout=subprocess.PIPE,
        )
        line = p.stdout.readline()
        if not line.startswith(b"READY"):
            raise SystemExit("child %s did not start" % path)
        procs.append(p)
    return procs


async def watch_parent(ppid):
    while os.getppid() == ppid:
        await asyncio.sleep(0.2)
    os._exit(0)


async def child_work():
    await asyncio.sleep(3600)


async def child_main(path, ppid):
    watcher = asyncio.create_task(watch_parent(ppid), name="watcher")
    work = asyncio.create_task(child_work(), name="child-" + path)
    asyncio.get_running_loop().call_soon(announce)
    await work
    return watcher


async def parent_wait():
    await asyncio.sleep(3600)


async def parent_main():
    waiter = asyncio.create_task(parent_wait(), name="parent-waiter")
    asyncio.get_running_loop().call_soon(announce)
    await waiter


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        path, nkids = sys.argv[2], int(sys.argv[3])
        ppid = os.getppid()
        kids = start_children(path + ".", nkids)
        asyncio.run(child_main(path, ppid))
        return kids
    kids = start_children("", 2)
    asyncio.run(parent_main())
    return kids


if __name__ == "__main__":
    main()
