# asyncunwind fixture: cpu_bound
#
# The main thread recurses DEPTH (default 40) frames of recurse() deep, then
# spins forever in spin() on pure Python arithmetic: the process stays on
# CPU and the innermost frame is always spin() at its one-line loop.
# Expected stack: expected/cpu_bound.txt.  Usage:
#     python cpu_bound.py [DEPTH]
# Prints "READY <pid>" when it starts spinning.  Runs on CPython 3.9+.
# Also the target of the "austin-style" sampling statistics benchmark.
# Line numbers are part of the contract: edit expected/ with any change here.
import os
import sys

DEPTH = 40


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def spin():
    announce()
    x = 1
    while True: x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def recurse(n):
    if n > 1:
        return recurse(n - 1)
    return spin()


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else DEPTH
    sys.setrecursionlimit(max(1000, depth + 100))
    recurse(depth)


if __name__ == "__main__":
    main()
