"""A Python `websockets` echo server that pings its clients, for the keepalive tests of
tests/interop_python.rs.

Binds 127.0.0.1 on a free port, prints "port <n>", pings every client every <interval> seconds
and closes it with 1011 ("keepalive ping timeout") when no pong comes within <timeout>
seconds (websockets' own keepalive). Prints "closed <code>" on stderr for each connection.
Stops when stdin closes (the test ends).
Usage: python keepalive_server.py <interval> <timeout>
"""
import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    finally:
        print(f"closed {ws.close_code}", file=sys.stderr, flush=True)


async def main():
    interval = float(sys.argv[1])
    timeout = float(sys.argv[2])
    async with serve(echo, "127.0.0.1", 0, ping_interval=interval, ping_timeout=timeout,
                     compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
