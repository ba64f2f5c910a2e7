# asyncunwind fixture: spawner
#
# The main thread runs forever in spawn_forever(): it starts a short-lived
# thread named "spawned-<i>" (each computes a little and exits), keeps at
# most MAX_ALIVE of them alive, and does some arithmetic of its own in
# between.  Thread states appear and vanish continuously, so a reader must
# cope with threads that die under it.  Stacks are not deterministic;
# expected/spawner.txt gives the shape.  Usage:
#     python spawner.py [N]
# Prints "READY <pid>" once N (default 100) threads have been spawned and
# keeps spawning afterwards.  Runs on CPython 3.9+.
import os
import sys
import threading

READY_AFTER = 100
MAX_ALIVE = 8


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def short_task(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def main_work():
    x = 1
    for _ in range(2000):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def spawn_forever(ready_after):
    alive = []
    spawned = 0
    while True:
        alive = [t for t in alive if t.is_alive()]
        if len(alive) < MAX_ALIVE:
            t = threading.Thread(name="spawned-%d" % spawned,
                                 target=short_task, args=(20000,))
            t.daemon = True
            t.start()
            alive.append(t)
            spawned += 1
            if spawned == ready_after:
                announce()
        main_work()


def main():
    ready_after = int(sys.argv[1]) if len(sys.argv) > 1 else READY_AFTER
    spawn_forever(ready_after)


if __name__ == "__main__":
    main()
