#!/usr/bin/env python3
"""Delay relay for the v6lab (the kernel here has no netem).

Reads a JSON list of {"listen": [addr, port], "target": [addr, port], "delay_ms": N}
and relays TCP from listen to target, holding every chunk in each direction for
delay_ms before passing it on (order kept).  The connection itself is accepted at
once.  Runs inside the world namespace; lab/up starts it, lab/down stops it.
"""
import asyncio
import json
import os
import sys


async def pump(reader, writer, delay):
    q = asyncio.Queue()

    async def sender():
        loop = asyncio.get_running_loop()
        while True:
            due, data = await q.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    task = asyncio.create_task(sender())
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(65536)
            await q.put((loop.time() + delay, data or None))
            if not data:
                break
        await task
    except (OSError, asyncio.CancelledError):
        task.cancel()
    finally:
        writer.close()


def handler(target, delay):
    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.wait_for(asyncio.open_connection(*target), 5)
        except (OSError, asyncio.TimeoutError):
            cwriter.close()
            return
        await asyncio.gather(pump(creader, swriter, delay), pump(sreader, cwriter, delay),
                             return_exceptions=True)
    return handle


async def main(cfg):
    servers = []
    for r in cfg:
        h = handler(tuple(r["target"]), r["delay_ms"] / 1000)
        servers.append(await asyncio.start_server(h, r["listen"][0], r["listen"][1], reuse_address=True))
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    cfg_path, pidfile = sys.argv[1], sys.argv[2]
    with open(cfg_path) as f:
        cfg = json.load(f)
    if os.fork():
        sys.exit(0)
    os.setsid()
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    asyncio.run(main(cfg))
