"""The relay between the gateway and the real origins: one gateway (ORIGIN_URL = this relay)
reaches every origin, and the relay can change the origin's answer in the one way a test asks.

    python relay.py --port PORT --origin ts1-json=http://127.0.0.1:P1 --origin python=... 

The request's query picks the origin and the change (the relay removes these parameters):
`origin=NAME`; `frame=lf|cr|crlf` rewrites only the line ends of an SSE answer (real SDK origins
each use one framing; all three are legal SSE); `corrupt=dup` repeats the `jsonrpc` member of each
JSON-RPC message of the answer, JSON or SSE, which JSON.parse and Python's json accept and a
strict reader refuses. Anything else passes byte for byte: the method, the headers but the
hop-by-hop ones, the body, and the answer.
"""

import argparse
import json
import re
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
LINE_ENDS = {"lf": b"\n", "cr": b"\r", "crlf": b"\r\n"}
RELAY_PARAMETERS = {"origin", "frame", "corrupt"}


def duplicate_jsonrpc(text: str) -> str:
    """The same JSON-RPC message (or batch) with its `jsonrpc` member written twice."""
    value = json.loads(text)
    if isinstance(value, list):
        return "[" + ",".join(duplicate_jsonrpc(json.dumps(item)) for item in value) + "]"
    return '{"jsonrpc":"2.0",' + json.dumps(value, separators=(",", ":"))[1:]


class SseRewriter:
    """Rewrites an SSE stream's line ends (any of CR, LF, CRLF in) and, if asked, its data lines."""

    def __init__(self, end: bytes, corrupt: bool):
        self.end = end
        self.corrupt = corrupt
        self.pending = b""

    def push(self, chunk: bytes) -> bytes:
        self.pending += chunk
        # A CR at the end may be the first half of a CRLF: keep it for the next chunk.
        cut = len(self.pending) - 1 if self.pending.endswith(b"\r") else len(self.pending)
        lines = re.split(rb"\r\n|\r|\n", self.pending[:cut])
        self.pending = lines.pop() + self.pending[cut:]
        return b"".join(self.line(line) + self.end for line in lines)

    def finish(self) -> bytes:
        rest, self.pending = self.pending, b""
        return self.line(rest) if rest else b""

    def line(self, line: bytes) -> bytes:
        if self.corrupt and line.startswith(b"data:") and line[5:].strip():
            return b"data: " + duplicate_jsonrpc(line[5:].decode()).encode()
        return line


def build_app(origins: dict[str, str]) -> Starlette:
    client = httpx.AsyncClient(timeout=60, follow_redirects=False)
    client.headers.clear()  # no default headers: the origin gets the gateway's, and only those

    async def relay(request: Request) -> Response:
        params = request.query_params
        origin = origins.get(params.get("origin", ""))
        if origin is None:
            return Response(f"unknown origin {params.get('origin')!r}", status_code=404)
        frame, corrupt = params.get("frame"), params.get("corrupt") == "dup"
        query = urlencode([(k, v) for k, v in params.multi_items() if k not in RELAY_PARAMETERS])
        url = origin + request.url.path + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
        upstream = await client.send(
            client.build_request(request.method, url, headers=headers, content=await request.body()), stream=True
        )
        answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        media_type = upstream.headers.get("content-type", "")
        if corrupt and media_type.startswith("application/json"):
            body = await upstream.aread()
            await upstream.aclose()
            return Response(duplicate_jsonrpc(body.decode()), status_code=upstream.status_code, headers=answer_headers)
        rewriter = None
        if media_type.startswith("text/event-stream") and (frame in LINE_ENDS or corrupt):
            rewriter = SseRewriter(LINE_ENDS.get(frame, b"\n"), corrupt)

        async def stream():
            try:
                async for chunk in upstream.aiter_raw():
                    yield rewriter.push(chunk) if rewriter else chunk
                if rewriter:
                    yield rewriter.finish()
            finally:
                await upstream.aclose()

        return StreamingResponse(stream(), status_code=upstream.status_code, headers=answer_headers)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", relay, methods=methods)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--origin", action="append", default=[], help="NAME=BASE_URL")
    args = parser.parse_args()
    origins = dict(item.split("=", 1) for item in args.origin)
    uvicorn.run(build_app(origins), host="127.0.0.1", port=args.port, log_level="warning")
