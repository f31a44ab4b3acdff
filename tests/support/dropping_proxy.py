"""An HTTP proxy on loopback that loses answers: what a client sees when its connection is cut
after the server did the work (a network cut, a killed process, a timeout).

    with DroppingProxy(worker.url, drops=1) as proxy:
        ...  # clients use proxy.url; the first refresh is sent on, its answer never comes back
        proxy.dropped  # how many answers were lost

Every request is passed to `upstream` as it came (its body whole, its answer streamed back as it
arrives, so SSE streams work); the first `drops` token requests with `grant_type=refresh_token`
are sent on too, their answers read whole, and then the client's connection is closed without a
byte of them. Runs in a thread of the test process.
"""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx

# Not passed on in either direction: the proxy frames its own answers (chunked).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


class DroppingProxy:
    def __init__(self, upstream: str, drops: int = 1):
        self.upstream = upstream
        self.dropped = 0
        self._drops = drops
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=httpx.Timeout(60, read=None), follow_redirects=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _drops_this(self, method: str, path: str, body: bytes) -> bool:
        if method != "POST" or not path.startswith("/token"):
            return False
        if parse_qs(body.decode(errors="replace")).get("grant_type") != ["refresh_token"]:
            return False
        with self._lock:
            if self.dropped >= self._drops:
                return False
            self.dropped += 1
            return True

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: the tests read the clients' own traces
                pass

            def relay(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
                url = proxy.upstream + self.path
                if proxy._drops_this(self.command, self.path, body):
                    proxy._client.request(self.command, url, headers=headers, content=body).read()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                with proxy._client.stream(self.command, url, headers=headers, content=body) as answer:
                    self.send_response_only(answer.status_code)
                    for name, value in answer.headers.multi_items():
                        if name.lower() not in HOP_BY_HOP:
                            self.send_header(name, value)
                    framed = self.command != "HEAD" and answer.status_code not in (204, 304)
                    if framed:
                        self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    try:
                        for chunk in answer.iter_raw() if framed else ():
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                        if framed:
                            self.wfile.write(b"0\r\n\r\n")
                            self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True

            do_GET = do_POST = do_DELETE = do_OPTIONS = do_HEAD = relay

        return Handler

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
