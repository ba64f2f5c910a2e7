# asyncunwind fixture: hostile_names
#
# Names that output formats must escape: tasks named with quotes,
# backslashes, line breaks, control characters, a lone surrogate (which
# the reader turns into U+FFFD) and a character beyond the BMP; and a thread
# that has no threading.Thread (so its name is the kernel's,
# /proc/PID/task/TID/comm) renamed with prctl(PR_SET_NAME) to bytes that
# are not UTF-8 at all.  `--format json` must still be valid JSON and give
# the names back (tests/cli_test.sh).  Prints "READY <pid>" once every task
# waits and the thread is renamed; holds until killed.  The thread name
# needs CPython 3.11+ (earlier versions do not record thread ids, so the
# kernel's names are not looked up) and ctypes; the tasks run on 3.9+.
import _thread
import asyncio
import ctypes
import os
import sys
import time

TASK_NAMES = ['quote"back\\slash', "line\nbreak", "ctl\x01\x1f", "lone\udcff",
              "emoji\U0001F600"]
THREAD_NAME = b'x\xff"\\\n\x01y\xc3'  # 8 bytes: a stray byte, a cut sequence
PR_SET_NAME = 15
RENAMED = []


def raw_thread():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(THREAD_NAME), 0, 0, 0)
    RENAMED.append(True)
    while True:
        time.sleep(3600)


async def hold():
    await asyncio.get_running_loop().create_future()


async def main():
    _thread.start_new_thread(raw_thread, ())
    tasks = [asyncio.create_task(hold(), name=n) for n in TASK_NAMES]
    while not RENAMED:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # every task has started and waits
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main())
