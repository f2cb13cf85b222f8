"""A Python `websockets` echo server with permessage-deflate, for tests/interop_python.rs.

Binds 127.0.0.1 on a free port, prints "port <n>" and then, for each connection, the
extensions it agreed on stderr. Echoes every message; stops when stdin closes (the test ends).
Usage: python echo_server.py [server_max_window_bits] [client_no_context_takeover]
"""
import asyncio
import sys

from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    bits = int(sys.argv[1]) if len(sys.argv) > 1 else None
    no_takeover = len(sys.argv) > 2 and sys.argv[2] == "1"
    factory = ServerPerMessageDeflateFactory(
        server_max_window_bits=bits,
        client_no_context_takeover=no_takeover,
    )
    async with serve(echo, "127.0.0.1", 0, compression=None, extensions=[factory],
                     max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
