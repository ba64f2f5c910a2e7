# asyncunwind fixture: churn
#
# A process that never holds still, for `dump`'s retries (docs/CLI.md):
#  - WORKERS threads recurse to a random depth (1-150 frames), unwind and
#    start again, so their stacks grow and shrink all the time;
#  - a spawner thread keeps up to SPAWNED short-lived threads alive, each
#    recursing a little and exiting, so thread states come and go;
#  - the main thread runs an event loop that creates batches of tasks that
#    recurse in sync code, yield once and finish, so the task sets change
#    too.
# Any one read of its memory may meet a frame that is being popped or a
# thread that is exiting: a sample taken at a random instant is partial
# with some probability, which is what dump's retries are for.
# Prints "READY <pid>" once every part has run a while; runs until
# killed.  Not deterministic (expected/churn.txt gives the shape only).
# Runs on CPython 3.9+.
import asyncio
import os
import random
import sys
import threading

WORKERS = 4
SPAWNED = 4


def recurse(n):
    if n <= 0:
        total = 0
        for i in range(300):
            total += i
        return total
    return recurse(n - 1) + 1


def worker(seed):
    rng = random.Random(seed)
    while True:
        recurse(rng.randrange(1, 150))


def short_lived(depth):
    recurse(depth)


def spawner(started):
    rng = random.Random(1)
    alive = []
    while True:
        alive = [t for t in alive if t.is_alive()]
        while len(alive) < SPAWNED:
            t = threading.Thread(target=short_lived, args=(rng.randrange(1, 60),),
                                 name="short-lived", daemon=True)
            t.start()
            alive.append(t)
        started.set()
        recurse(rng.randrange(1, 30))


async def churn_leaf(depth):
    recurse(depth)
    await asyncio.sleep(0)
    recurse(depth // 2)


async def churn_tasks():
    rng = random.Random(2)
    rounds = 0
    while True:
        batch = [asyncio.create_task(churn_leaf(rng.randrange(1, 40)), name="churn")
                 for _ in range(rng.randrange(1, 40))]
        await asyncio.gather(*batch)
        rounds += 1
        if rounds == 20:
            sys.stdout.write("READY %d\n" % os.getpid())
            sys.stdout.flush()


def main():
    for i in range(WORKERS):
        threading.Thread(target=worker, args=(10 + i,), name="worker-%d" % i,
                         daemon=True).start()
    started = threading.Event()
    threading.Thread(target=spawner, args=(started,), name="spawner", daemon=True).start()
    started.wait()
    asyncio.run(churn_tasks())


if __name__ == "__main__":
    main()
