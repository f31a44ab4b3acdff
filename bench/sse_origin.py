"""A tiny SSE origin for the first-event latency figure: `python sse_origin.py PORT DELAY_MS`.

Every request (any method, any path) is answered at once with `text/event-stream` and one
event; a second event follows DELAY_MS later, then the connection closes (no length, no
chunking: the body ends at the close, which nginx in front re-chunks). A proxy that buffered
the stream could not deliver the first event before the second one exists, so the first-event
latency seen through a Worker shows both its added latency and that it streams.
Plain asyncio, no framework: the origin itself should add as little as possible.
"""

import asyncio
import sys

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
FIRST = b'id: 0\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":0}}\n\n'
SECOND = (
    b'id: 1\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"pong"}]}}\n\n'
)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        writer.write(HEAD + FIRST)
        await writer.drain()
        await asyncio.sleep(delay)
        writer.write(SECOND)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client went away early: nothing to answer
    finally:
        writer.close()


async def main(port: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: answer(r, w, delay), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) / 1000))
