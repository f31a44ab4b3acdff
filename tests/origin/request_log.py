"""Test hook for the origin: one JSON line per HTTP request it receives, so tests can prove what the
origin did and did not see. Records whether credentials were present, never their values; the one
exception is the identity headers the gateway sets (not secrets), whose every value is kept so tests
can prove a client's forged value never arrives."""

import json
import os
import sys
import time

# Set by the gateway from the validated token; any value a client sends must never arrive.
IDENTITY_HEADERS = (
    "x-gateway-user-email",
    "x-gateway-user-sub",
    "x-gateway-user-groups",
    "cf-access-authenticated-user-email",
)


class RequestLog:
    """ASGI wrapper writing {ts, method, path, host, authorization, headers, identity, status} per
    request; `identity` maps each identity header received to the list of its values."""

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
        pairs = [(name.decode("latin-1").lower(), value) for name, value in scope["headers"]]
        headers = dict(pairs)
        entry = {
            "ts": time.time(),
            "method": scope["method"],
            "path": scope["path"],
            "host": headers.get("host", b"").decode("latin-1"),
            "authorization": "authorization" in headers,
            "headers": sorted(headers),  # names only: values may be credentials
            "identity": {
                name: [value.decode("latin-1") for key, value in pairs if key == name]
                for name in IDENTITY_HEADERS
                if name in headers
            },
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
