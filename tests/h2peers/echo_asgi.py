"""A plain ASGI WebSocket echo app for hypercorn, used by tests/h2peers/run.

Served by `tests/h2peers/run hypercorn PORT` (cleartext: HTTP/1.1 upgrades and
HTTP/2 with prior knowledge) and `tests/h2peers/run hypercorn-tls ...` (TLS with
ALPN h2 and http/1.1). Over HTTP/2, hypercorn itself advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL=1 and turns every CONNECT stream into a
WebSocket (RFC 8441), answering `:status 200`; over HTTP/1.1 it answers `101`.

What this app does:
- accepts every WebSocket; when the client offered subprotocols
  (sec-websocket-protocol), it picks the first one;
- echoes each text message as text and each binary message as binary,
  unchanged (hypercorn reassembles fragmented messages and sends each echo as
  one frame);
- answers plain HTTP requests with 200 and a short text, so a script can check
  that the server is up.

Handled by hypercorn (wsproto), not here: Ping is answered with Pong, and a
Close from the client is answered with a Close carrying the same code and
reason. hypercorn also agrees to permessage-deflate when the client offers it.
Needs nothing but hypercorn.
"""


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif kind == "websocket":
        await websocket_echo(scope, receive, send)
    elif kind == "http":
        await http_info(scope, receive, send)


async def websocket_echo(scope, receive, send):
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    accept = {"type": "websocket.accept"}
    subprotocols = scope.get("subprotocols") or []
    if subprotocols:
        accept["subprotocol"] = subprotocols[0]
    await send(accept)
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message.get("text") or ""})
        elif message["type"] == "websocket.disconnect":
            return


async def http_info(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"h2peers hypercorn WebSocket echo (HTTP/%s)\n" % scope.get(
        "http_version", "?"
    ).encode("ascii")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
