# asyncunwind fixture: busy_service
#
# A small asyncio service that never holds still, for reading a busy
# process without stopping it (//tests:torn_stacks_test): an echo server
# on a local socket, four clients that each send a line, read the echo,
# queue it and sleep 10 ms, three consumers that take from the queue and
# hand each item to a worker thread (asyncio.to_thread) under a
# semaphore, and a ticker that does a little sync work every 50 ms.
# Tasks run, suspend and resume hundreds of times a second, and worker
# threads come and go from the executor, so a sample taken at any instant
# may meet a frame that is being pushed or popped.
# Prints "READY <pid>" once every part has run a while; runs until killed.
# Not deterministic: no expected/ file (the test checks shapes).
# Runs on CPython 3.9+.
import asyncio
import os
import time


async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
    writer.close()


async def client(port, i, queue):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while True:
        writer.write(b"ping %d %d\n" % (i, n))
        await writer.drain()
        await reader.readline()
        await queue.put((i, n))
        await asyncio.sleep(0.01)
        n += 1


async def consumer(queue, gate):
    while True:
        await queue.get()
        async with gate:
            await asyncio.to_thread(time.sleep, 0.001)
        queue.task_done()


async def ticker():
    while True:
        await asyncio.sleep(0.05)
        sum(range(20000))


class Service:
    async def run(self):
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        queue = asyncio.Queue(maxsize=5)
        gate = asyncio.Semaphore(2)
        keep = [asyncio.create_task(ticker(), name="ticker")]
        keep += [asyncio.create_task(consumer(queue, gate), name=f"consumer-{i}") for i in range(3)]
        clients = asyncio.gather(*(client(port, i, queue) for i in range(4)))
        await asyncio.sleep(0.5)
        print("READY", os.getpid(), flush=True)
        await clients


if __name__ == "__main__":
    asyncio.run(Service().run())
