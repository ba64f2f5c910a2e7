# -*- coding: utf-8 -*-
# asyncunwind fixture: unicode_names
#
# Function names of every PEP 393 string kind, all NFKC-stable (Python
# NFKC-normalises identifiers, so e.g. U+1D518 would silently become "U"):
#   café_crème        UCS1: Latin-1 (é U+00E9, è U+00E8)
#   λειτουργία_函数    UCS2: Greek and CJK (BMP)
#   𐌰𐌱𐌲_𠀀            UCS4: Gothic U+10330.. and CJK Ext. B U+20000
#   long_nnn...n      ASCII, exactly 5,000 characters
# The long function is compiled from a string whose co_filename is the
# non-ASCII (UCS4) virtual path VIRTUAL_FILE, which exists nowhere on disk.
# The main thread blocks in the long function in time.sleep() (a C call).
# Expected stack: expected/unicode_names.txt.  Prints "READY <pid>" just
# before blocking.  Runs on CPython 3.9+.
# Line numbers are part of the contract: edit expected/ with any change here.
import os
import sys
import time

LONG_NAME = "long_" + "n" * (5000 - len("long_"))
VIRTUAL_FILE = "/asyncunwind-fixtures/ünïcödé_файл_𐌰.py"
LONG_SOURCE = (
    "def " + LONG_NAME + "():\n"
    "    announce()\n"
    "    while True:\n"
    "        time.sleep(3600)\n"
)


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


_namespace = {"announce": announce, "time": time}
exec(compile(LONG_SOURCE, VIRTUAL_FILE, "exec"), _namespace)
LONG_FUNCTION = _namespace[LONG_NAME]


def 𐌰𐌱𐌲_𠀀():
    LONG_FUNCTION()


def λειτουργία_函数():
    𐌰𐌱𐌲_𠀀()


def café_crème():
    λειτουργία_函数()


def main():
    café_crème()


if __name__ == "__main__":
    main()
