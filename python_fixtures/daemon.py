# asyncunwind fixture: daemon
#
# A program that daemonizes the classic way, for a recorder that must
# follow the daemon (record --subprocesses -- COMMAND: the recorder is the
# child subreaper of the command's tree).  The launcher forks; the child
# starts a session and forks the daemon, then exits at once, so the daemon
# is orphaned before any scan can find it under its parent; the launcher
# waits for that child and exits too.  The daemon runs an asyncio loop with
# a task named "daemon-task" suspended in daemon_work(), prints
# "READY <pid>" (its own pid) once the task is suspended, and lives for
# DURATION seconds (default 30).  Usage: python daemon.py [DURATION]
# Runs on CPython 3.9+.
import asyncio
import os
import sys

DURATION = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


async def daemon_work():
    asyncio.get_running_loop().call_soon(announce)
    await asyncio.sleep(DURATION)


async def daemon_main():
    await asyncio.create_task(daemon_work(), name="daemon-task")


def main():
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            asyncio.run(daemon_main())
        os._exit(0)
    os.waitpid(child, 0)


main()
