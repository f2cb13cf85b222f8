"""A Python `websockets` client with permessage-deflate, for tests/interop_python.rs.

Connects to the URL given, checks that permessage-deflate was agreed, sends text and binary
messages (small, large, repeated) and checks each echo, then closes with 1000. Exits 0 on
success and prints what failed otherwise.
Usage: python client.py ws://127.0.0.1:<port>/ [client_max_window_bits]
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


async def main():
    url = sys.argv[1]
    bits = int(sys.argv[2]) if len(sys.argv) > 2 else True
    factory = ClientPerMessageDeflateFactory(client_max_window_bits=bits)
    async with connect(url, compression=None, extensions=[factory], max_size=None) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert agreed.startswith("permessage-deflate"), f"not agreed: {agreed!r}"
        messages = [
            '{"jsonrpc":"2.0","method":"subscribe","params":["trades"]}',
            "é" * 5000,
            bytes(range(256)) * 400,
            "",
            '{"jsonrpc":"2.0","method":"subscribe","params":["trades"]}',
        ]
        for message in messages:
            await ws.send(message)
            echoed = await ws.recv()
            assert echoed == message, f"echo differs for a {type(message).__name__} of {len(message)}"
        await ws.close(1000, "done")
    print(f"ok {agreed}")


asyncio.run(main())
