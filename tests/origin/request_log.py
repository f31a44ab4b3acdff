"""Test hook for the origin: one JSON line per HTTP request it receives, so tests can prove what the
origin did and did not see. Records whether credentials were present, never their values."""

import json
import os
import sys
import time


class RequestLog:
    """ASGI wrapper writing {ts, method, path, host, authorization, headers, status} per request."""

    def __init__(self, app, path: str | None):
        self._app = app
        self._path = path

    def _write(self, entry: dict) -> None:
        line = json.dumps(entry) + "\n"
        if self._path is None:
            sys.stderr.write(line)
            return
        with open(self._path, "a", encoding="utf-8") as sink:
            sink.write(line)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self._app(scope, receive, send)
        headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
        entry = {
            "ts": time.time(),
            "method": scope["method"],
            "path": scope["path"],
            "host": headers.get("host", b"").decode("latin-1"),
            "authorization": "authorization" in headers,
            "headers": sorted(headers),  # names only: values may be credentials
        }
        logged = False

        # Logged when the response starts, so a long SSE stream is visible while it is open.
        async def send_and_log(message):
            nonlocal logged
            if message["type"] == "http.response.start" and not logged:
                logged = True
                self._write({**entry, "status": message["status"]})
            await send(message)

        try:
            await self._app(scope, receive, send_and_log)
        finally:
            if not logged:
                self._write({**entry, "status": None})


def install_request_log(mcp) -> None:
    """Wrap the app FastMCP builds in `mcp.run(transport="streamable-http")`, leaving that call as is."""
    build = mcp.streamable_http_app
    mcp.streamable_http_app = lambda: RequestLog(build(), os.environ.get("ORIGIN_REQUEST_LOG"))
