# asyncunwind fixture: late_asyncio
#
# Starts without asyncio: prints "READY <pid>" and sleeps until SIGUSR1.  Then it imports asyncio and runs a loop whose main task
# creates the task "late" (which waits forever), yields once, prints
# "ASYNC" and awaits it.  A sampler that looked at the process before the
# signal, and found no asyncio, must find the tasks afterwards.
# Runs on CPython 3.9+.
import os
import signal
import sys
import time

go = False


def on_usr1(signum, frame):
    global go
    go = True


def main():
    signal.signal(signal.SIGUSR1, on_usr1)
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()
    while not go:
        time.sleep(0.05)
    import asyncio

    async def late():
        await asyncio.Event().wait()

    async def amain():
        task = asyncio.create_task(late(), name="late")
        await asyncio.sleep(0)
        sys.stdout.write("ASYNC\n")
        sys.stdout.flush()
        await task

    asyncio.run(amain())


if __name__ == "__main__":
    main()
