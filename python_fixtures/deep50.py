# asyncunwind fixture: deep50
#
# The main thread stands exactly 50 Python frames deep and blocks there:
# <module>, main(), 47 frames of descend(), then bottom(), which sleeps in
# time.sleep() (a C call, so bottom() is the innermost Python frame).  The
# target of //bench:sample_bench (one sample of a 50-frame stack).
# Expected stack: expected/deep50.txt.  Usage:
#     python deep50.py
# Prints "READY <pid>" once the recursion is complete.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import os
import sys
import time

FRAMES = 50
DESCEND = FRAMES - 3  # <module> + main() + DESCEND x descend() + bottom()


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def bottom():
    announce()
    while True:
        time.sleep(3600)


def descend(n):
    if n > 1:
        return descend(n - 1)
    return bottom()


def main():
    descend(DESCEND)


if __name__ == "__main__":
    main()
