"""Single requests over raw sockets, for figures a load generator cannot give: the SSE first
event latency, and the first answer of a freshly spawned workerd. No HTTP library, so the
client adds only a few microseconds, the same for every variant."""

import json
import socket
import time
from urllib.parse import urlsplit

MCP_BODY = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping", "arguments": {}}},
    separators=(",", ":"),
)


def mcp_headers(token: str | None) -> dict[str, str]:
    """What a streamable-HTTP MCP client sends with a tools/call."""
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18",
        "mcp-session-id": "bench-session",
    }
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


LIST_BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, separators=(",", ":"))


def _request(url: str, path: str, token: str | None, keep_alive: bool, body: str = MCP_BODY) -> bytes:
    parts = urlsplit(url)
    head = [f"POST {path} HTTP/1.1", f"host: {parts.netloc}", f"content-length: {len(body)}"]
    head += [] if keep_alive else ["connection: close"]
    head += [f"{name}: {value}" for name, value in mcp_headers(token).items()]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _status(received: bytes) -> int:
    return int(received.split(b" ", 2)[1])


class KeepAliveClient:
    """Requests on one keep-alive connection (as MCP clients keep theirs), connecting again only
    when the server closed it."""

    def __init__(self, url: str, token: str | None):
        self.url, self.token, self.sock = url, token, None

    def send(self, path: str, body: str = MCP_BODY) -> float:
        """Sends a request; the time it was sent, for what the caller measures."""
        self.sock = self.sock or _connect(self.url)
        started = time.perf_counter()
        self.sock.sendall(_request(self.url, path, self.token, keep_alive=True, body=body))
        return started

    def close(self) -> None:
        if self.sock:
            self.sock.close()
        self.sock = None


class SseClient(KeepAliveClient):
    """POST /sse: the time to the first complete event, and to the stream's end."""

    def first_event(self) -> tuple[float, float]:
        """Seconds until the first complete event arrived, and until the stream ended."""
        started = self.send("/sse")
        received, first, chunked = b"", None, None
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:  # the server closed the connection: the stream ended with it
                self.close()
                break
            received += chunk
            head, separator, body = received.partition(b"\r\n\r\n")
            if not separator:
                continue
            if chunked is None:
                chunked = b"transfer-encoding: chunked" in head.lower()
            if first is None and b"data:" in body and b"\n\n" in body[body.index(b"data:") :]:
                first = time.perf_counter() - started
            if chunked and body.endswith(b"\r\n0\r\n\r\n"):
                break
        ended = time.perf_counter() - started
        if _status(received) != 200 or first is None:
            raise RuntimeError(f"{self.url}/sse: no event stream: {received[:300]!r}")
        return first, ended


class ListClient(KeepAliveClient):
    """POST tools/list to `path`: the time to the answer's first body byte, and the answer's
    body (for the check that the gateway filtered it)."""

    def __init__(self, url: str, token: str | None, path: str):
        super().__init__(url, token)
        self.path = path

    def first_byte(self) -> tuple[float, bytes]:
        started = self.send(self.path, LIST_BODY)
        received, first = b"", None
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{self.url}{self.path}: the connection closed mid-answer")
            received += chunk
            head, separator, body = received.partition(b"\r\n\r\n")
            if not separator:
                continue
            if first is None and body:
                first = time.perf_counter() - started
            lowered = head.lower()
            if b"transfer-encoding: chunked" in lowered:
                if body.endswith(b"\r\n0\r\n\r\n"):
                    break
            elif b"content-length:" in lowered:
                length = int(lowered.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                if len(body) >= length:
                    break
        if _status(received) != 200:
            raise RuntimeError(f"{self.url}{self.path}: {received[:300]!r}")
        return first, body


def mcp_ok(url: str, token: str | None) -> bool:
    """One POST /mcp; True for a 200 (False while nothing listens yet)."""
    try:
        sock = _connect(url)
    except OSError:
        return False
    with sock:
        sock.sendall(_request(url, "/mcp", token, keep_alive=False))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return bool(received) and _status(received) == 200
