# asyncunwind fixture: task_churn
#
# Tasks created and finished at a steady rate, for the churn soak
# (//tests:churn_test, tools/soak.sh): every 10 ms the main task (Task-1,
# churn_main) starts the batch that keeps the count at RATE tasks per
# second (default 10,000), then waits for it.  Half the tasks (churn_leaf)
# yield once and return; the other half (churn_parent) start a child task
# (churn_leaf) and await it, so task graphs with strong links and (with the
# agent) weak links are born and die all the time.  A batch that falls
# behind (a loaded machine) is caught up by at most one more second's worth
# of tasks, never by an unbounded burst.
# Usage:
#     python task_churn.py [RATE]
# Prints "READY <pid>" after the first batch, then "CREATED <n>" (tasks
# created so far, children included) once a second; runs until killed.
# Not deterministic: no expected/ file (the tests count, not match).
# Runs on CPython 3.9+.
import asyncio
import os
import sys
import time

RATE = 10000
TICK = 0.01
# A batch never exceeds four ticks' worth of tasks, so at most a few
# hundred are pending at once however far behind a loaded machine leaves
# the schedule: the rate drops instead of the batches growing.
BATCH_MAX = int(RATE * TICK * 4)
CREATED = [0]


async def churn_leaf():
    await asyncio.sleep(0)


async def churn_parent():
    CREATED[0] += 1
    await asyncio.get_running_loop().create_task(churn_leaf())


async def churn_main():
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    next_report = start + 1.0
    ready = False
    # Batches of RATE * TICK tasks (children count: half start one).
    while True:
        now = time.monotonic()
        due = int((now - start) * RATE) - CREATED[0]
        n = max(1, min(due, BATCH_MAX)) * 2 // 3
        batch = []
        for i in range(n):
            coro = churn_parent() if i % 2 else churn_leaf()
            batch.append(loop.create_task(coro))
        CREATED[0] += n
        await asyncio.gather(*batch)
        if not ready:
            ready = True
            sys.stdout.write("READY %d\n" % os.getpid())
            sys.stdout.flush()
        if now >= next_report:
            sys.stdout.write("CREATED %d\n" % CREATED[0])
            sys.stdout.flush()
            next_report += 1.0
        delay = start + (CREATED[0] / RATE) - time.monotonic()
        await asyncio.sleep(min(max(delay, 0), TICK))


def main():
    global RATE, BATCH_MAX
    if len(sys.argv) > 1:
        RATE = int(sys.argv[1])
        BATCH_MAX = max(1, int(RATE * TICK * 4))
    asyncio.run(churn_main())


if __name__ == "__main__":
    main()
