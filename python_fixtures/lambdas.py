# asyncunwind fixture: lambdas
#
# A lambda whose whole body sits on its def line, called from outer(), calls
# hold(), which blocks in time.sleep() (a C call).  On 3.9 such a lambda has
# an empty line table (every instruction is on co_firstlineno); the reader
# once showed its line as "?".  Expected stack: expected/lambdas.txt.
# Prints "READY <pid>" just before blocking.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import os
import sys
import time


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def hold():
    announce()
    while True:
        time.sleep(3600)


def outer():
    return (lambda: hold())()


def main():
    outer()


if __name__ == "__main__":
    main()
