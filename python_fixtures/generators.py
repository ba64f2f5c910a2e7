# asyncunwind fixture: generators
#
# A pipeline of four generators, source() -> double() -> relay() ->
# to_text(), consumed by main().  relay() delegates with "yield from"; the
# others use for loops.  After three items have flowed through, source()
# blocks in time.sleep() (a C call) while every stage is running, so the
# stack is main, to_text, relay, double, source.  Expected stack:
# expected/generators.txt.  Prints "READY <pid>" just before blocking.
# Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import os
import sys
import time


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


def source():
    n = 0
    while n < 3:
        yield n
        n += 1
    announce()
    while True:
        time.sleep(3600)


def double(items):
    for x in items:
        yield 2 * x


def relay(items):
    yield from items


def to_text(items):
    for x in items:
        yield "item %d" % x


def main():
    seen = []
    for text in to_text(relay(double(source()))):
        seen.append(text)


if __name__ == "__main__":
    main()
