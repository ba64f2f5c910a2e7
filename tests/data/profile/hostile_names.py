# A target whose names attack the outputs (tests/profile_outputs_test.sh):
# a coroutine's qualified name and a task's name hold markup, a script, a
# CDATA end, JSON quoting, the collapsed form's separators, a control
# character and non-ASCII text.  The outputs must carry them as text only.
# Prints "READY <pid>" once the task sleeps.  CPython 3.11+ (co_qualname).
import asyncio
import os
import sys

HOSTILE = '</title><script>alert("svg")</script>]]>&amp;"; x\\y\n\x01\'é😀'


def announce():
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()


async def victim():
    await asyncio.sleep(3600)


victim.__code__ = victim.__code__.replace(co_qualname="victim" + HOSTILE)


async def main():
    task = asyncio.create_task(victim(), name="task" + HOSTILE)
    asyncio.get_running_loop().call_soon(announce)
    await task


asyncio.run(main())
