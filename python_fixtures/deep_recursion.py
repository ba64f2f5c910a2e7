# asyncunwind fixture: deep_recursion
#
# The main thread recurses DEPTH (default 500) frames of descend() deep, then
# blocks in bottom() in time.sleep() (a C call, so bottom() is the innermost
# Python frame).  Expected stack: expected/deep_recursion.txt.  Usage:
#     python deep_recursion.py [DEPTH]
# Prints "READY <pid>" once the recursion is complete.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import os
import sys
import time

DEPTH = 500


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
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else DEPTH
    sys.setrecursionlimit(max(1000, depth + 100))
    descend(depth)


if __name__ == "__main__":
    main()
