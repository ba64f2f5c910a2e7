# asyncunwind fixture: many_gathered
#
# many_tasks.py's COUNT idle tasks (default 1,000), in its four shapes and
# with its names, but the main task gathers them instead of waiting on a
# future of its own: every idle task has a strong link (gather's
# done-callback on each of them, and the _GatheringFuture the main task
# waits on), so a sample reads and resolves COUNT strong links.  For
# //bench:task_bench --au_fixture=gathered; no expected stacks of its own.
# Usage:
#     python many_gathered.py [COUNT]
# Prints "READY <pid>" once every task has started.  Runs on CPython 3.9+.
import asyncio
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the fixtures
import many_tasks  # noqa: E402


async def gathered_main(count):
    event = asyncio.Event()
    queue = asyncio.Queue()
    many_tasks.PENDING[0] = count
    for i in range(count):
        many_tasks.KEEP.append(many_tasks.make_idle(i, event, queue))
    await asyncio.gather(*many_tasks.KEEP)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else many_tasks.COUNT
    asyncio.run(gathered_main(count))


if __name__ == "__main__":
    main()
