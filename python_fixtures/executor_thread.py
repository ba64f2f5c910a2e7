# asyncunwind fixture: executor_thread
#
# run_in_executor: the main task (Task-1, executor_main) awaits
# executor-waiter, which awaits loop.run_in_executor(pool, blocking_work).
# The pool's one worker thread, blocker_0, sits in blocking_work ->
# blocking_wait, in time.sleep() (a C call).  executor-waiter awaits a
# future, not a task, so it is a leaf; blocker_0 runs no loop, so its stack
# is a thread stack without tasks.  Same with and without the agent.
# Expected: expected/executor_thread.txt.  The worker queues "READY <pid>"
# on the loop just before it sleeps.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import asyncio
import concurrent.futures
import os
import sys
import time


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def blocking_wait(loop):
    loop.call_soon_threadsafe(announce)
    while True:
        time.sleep(3600)


def blocking_work(loop):
    blocking_wait(loop)


async def wait_for_worker(pool):
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(pool, blocking_work, loop)


async def executor_main():
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="blocker")
    await asyncio.create_task(wait_for_worker(pool), name="executor-waiter")


def main():
    asyncio.run(executor_main())


if __name__ == "__main__":
    main()
