# asyncunwind fixture: threads
#
# Three named worker threads, each with its own stack, plus the main thread;
# all four block in time.sleep() (a C call) at a known line.  Expected stacks:
# expected/threads.txt (worker frames below threading.py's bootstrap frames,
# which vary by version).  Thread names are ASCII and <= 15 bytes, so they
# equal the OS thread names that CPython 3.14+ sets.  Prints "READY <pid>"
# once every thread has reached its blocking function.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import os
import sys
import threading
import time


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def alpha_inner(ready):
    ready.set()
    while True:
        time.sleep(3600)


def alpha_outer(ready):
    alpha_inner(ready)


def beta_deep(ready):
    ready.set()
    while True:
        time.sleep(3600)


def beta_mid(ready):
    beta_deep(ready)


def beta_entry(ready):
    beta_mid(ready)


def gamma_only(ready):
    ready.set()
    while True:
        time.sleep(3600)


def main_wait():
    announce()
    while True:
        time.sleep(3600)


def main():
    workers = [
        ("worker-alpha", alpha_outer),
        ("worker-beta", beta_entry),
        ("worker-gamma", gamma_only),
    ]
    events = []
    for name, target in workers:
        ready = threading.Event()
        events.append(ready)
        t = threading.Thread(name=name, target=target, args=(ready,))
        t.daemon = True
        t.start()
    for ready in events:
        if not ready.wait(30):
            sys.exit("a worker thread did not start")
    main_wait()


if __name__ == "__main__":
    main()
