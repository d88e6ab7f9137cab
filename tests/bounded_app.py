"""A small ASGI app served by `odavl_pipeline.bounded_http` in a process of its own:
`python -m tests.bounded_app PORT HEAD_SECONDS BODY_SECONDS LARGEST_BODY CONNECTIONS PROXIES`
(PROXIES comma-separated, or empty).
Each request is answered with JSON: the client address and scheme it was given, and the
length of the body it read."""

import json
import sys

from odavl_pipeline.bounded_http import Bounds, serve


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    length = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        length += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    reply = json.dumps(
        {"client": scope["client"][0], "scheme": scope["scheme"], "body": length}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(reply)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": reply})


if __name__ == "__main__":
    port, head, body, largest, connections, proxies = sys.argv[1:]
    serve(
        app,
        "127.0.0.1",
        int(port),
        Bounds(float(head), float(body), int(largest), int(connections)),
        trusted_proxies=[proxy for proxy in proxies.split(",") if proxy],
        log_level="warning",
    )
