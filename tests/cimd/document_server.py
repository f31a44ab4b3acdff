"""Client ID Metadata Documents over HTTPS, from threads of the test process.

    docs = DocumentServer.start()          # https://<TEST_HOSTS>:8443 (support/netns.py's namespace)
    url = docs.url("/app.json")            # https://client.example.test:8443/app.json
    docs.serve("/app.json", Answer(body=client_metadata(url, ["http://localhost/cb"]), cache_control="max-age=300"))
    docs.fetches("/app.json")              # how many requests that path received
    docs.stop()

Each path answers what `serve` last set for it (404 otherwise), whatever the host name, so the
same path may be requested as client.example.test or other.example.test. An `Answer` is a
status, a body (a dict is sent as JSON), a media type, an optional Cache-Control, whether the
body is sent chunked (no Content-Length, so only counting it tells its size), and one of the
faults a document host can have:

    fault="slow"       headers only after SLOW_SECONDS (the Worker gives up after 5 s)
    fault="stall"      headers and half the body at once, the rest after SLOW_SECONDS
    fault="endless"    200 JSON, chunked, that never ends: chunks until the reader leaves
                       (at most ENDLESS_LIMIT bytes, so a reader that never stops cannot hang a run)
    fault="redirect"   302 to `location` (a document a redirect-follower would accept)

The certificate (TEST_HOST_CERT, TEST_HOST_KEY) is the one netns.py made for TEST_HOSTS; TLS is
negotiated in the request's own thread, so a stuck client holds up nobody else.
"""

import json
import os
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from support.netns import TEST_HOSTS

PORT = 8443
SLOW_SECONDS = 12
ENDLESS_LIMIT = 64 * 1024 * 1024
CHUNK = b"x" * 1024


def client_metadata(client_id: str, redirect_uris: list[str], client_name: str = "Example MCP Client", **more) -> dict:
    """A document every rule accepts (public client, PKCE), plus `more` fields."""
    return {
        "client_id": client_id,
        "client_name": client_name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **more,
    }


@dataclass
class Answer:
    body: dict | list | str | bytes = b""
    status: int = 200
    content_type: str = "application/json"
    cache_control: str | None = None
    chunked: bool = False
    fault: Literal["slow", "stall", "endless", "redirect"] | None = None
    location: str | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return (self.body if isinstance(self.body, str) else json.dumps(self.body)).encode()


@dataclass
class _State:
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: dict[str, list[dict]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def do_GET(self):  # noqa: N802 (the http.server name)
        state = self.server.state
        path = self.path.partition("?")[0]
        with state.lock:
            state.requests.setdefault(path, []).append({"host": self.headers.get("host"), "headers": dict(self.headers)})
            answer = state.answers.get(path)
        if answer is None:
            return self._send(404, "text/plain", b"no document here\n")
        if answer.fault == "slow" and state.stopping.wait(SLOW_SECONDS):
            return
        if answer.fault == "redirect":
            return self._send(302, "text/plain", b"", location=answer.location)
        if answer.fault == "endless":
            return self._endless(answer)
        body = answer.payload()
        self._send(answer.status, answer.content_type, body, chunked=answer.chunked, stall=answer.fault == "stall",
                   cache_control=answer.cache_control)

    def _send(self, status: int, content_type: str, body: bytes, chunked=False, stall=False, **headers: str | None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            if value is not None:
                self.send_header(name.replace("_", "-").title(), value)
        self.end_headers()
        if chunked:
            parts = (body[at : at + len(CHUNK)] for at in range(0, len(body), len(CHUNK)))
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
        if stall:
            self.wfile.write(body[: len(body) // 2])
            if self.server.state.stopping.wait(SLOW_SECONDS):
                return
            body = body[len(body) // 2 :]
        self.wfile.write(body)

    def _endless(self, answer: Answer):
        self.send_response(200)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        chunk = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
        try:
            self.wfile.write(b'%x\r\n{"client_name": "\r\n' % len(b'{"client_name": "'))
            for _ in range(ENDLESS_LIMIT // len(CHUNK)):
                if self.server.state.stopping.is_set():
                    return
                self.wfile.write(chunk)
        except OSError:  # the reader left, as it should
            pass

    def log_message(self, format, *args):  # the request lists are the log
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext, state: _State):
        super().__init__(("127.0.0.1", PORT), _Handler)
        self.context = context
        self.state = state

    def finish_request(self, request, client_address):
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that gave up during the handshake
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a reader leaving mid-answer is a test's point, not a failure


class DocumentServer:
    def __init__(self, server: _Server):
        self._server = server
        self._state = server.state
        self._thread = threading.Thread(target=server.serve_forever, name="document-server", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls) -> "DocumentServer":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.environ["TEST_HOST_CERT"], os.environ["TEST_HOST_KEY"])
        return cls(_Server(context, _State()))

    @staticmethod
    def url(path: str, host: str = TEST_HOSTS[0]) -> str:
        return f"https://{host}:{PORT}{path}"

    def serve(self, path: str, answer: Answer) -> None:
        with self._state.lock:
            self._state.answers[path] = answer

    def requests(self, path: str) -> list[dict]:
        with self._state.lock:
            return list(self._state.requests.get(path, []))

    def fetches(self, path: str) -> int:
        return len(self.requests(path))

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
