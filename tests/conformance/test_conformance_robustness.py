"""No 5xx for a client's mistake. Every bad-input test in this folder asserts its exact 4xx status;
this sweep adds malformed requests no well-behaved client sends — broken encodings, absurd sizes,
odd methods — on every endpoint, in both Access modes. A 5xx means "our fault or Access's", and
a client retries or gives up on it; a 4xx tells it to fix the request."""

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from oauth_flow import assert_oauth_error, http

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
JSON_PAGE = ("application/json", "text/html")

# name: (method, path, headers, body, expected status)
MALFORMED = {
    "authorize: invalid percent-encoding": ("GET", "/authorize?client_id=%zz&redirect_uri=%", {}, None, 400),
    "authorize: invalid UTF-8": ("GET", "/authorize?client_id=%ff%fe&state=%c0%af", {}, None, 400),
    "authorize: no query": ("GET", "/authorize", {}, None, 400),
    "authorize: 60 kB query": ("GET", "/authorize?state=" + "a" * 60_000, {}, None, 400),
    "authorize: garbage consent cookie": ("GET", "/authorize", {"Cookie": "mcpgw_consent_x=" + "a" * 4000}, None, 400),
    "consent: empty form": ("POST", "/authorize", FORM, b"", 400),
    "consent: garbage ticket": ("POST", "/authorize", {**FORM, "Cookie": "mcpgw_csrf=x"}, b"ticket=x&decision=approve", 400),
    "consent: invalid UTF-8": ("POST", "/authorize", FORM, b"ticket=\xff\xfe&decision=approve", 400),
    "consent: no content type": ("POST", "/authorize", {}, b"ticket=x&decision=approve", 415),
    "consent: PUT": ("PUT", "/authorize", {}, None, 405),
    "callback: no query": ("GET", "/callback", {}, None, 400),
    "callback: 10 kB state": ("GET", "/callback?code=x&state=" + "A" * 10_000, {}, None, 400),
    "callback: NUL state": ("GET", "/callback?code=x&state=%00", {}, None, 400),
    "callback: error without state": ("GET", "/callback?error=access_denied", {}, None, 400),
    "callback: POST": ("POST", "/callback", FORM, b"code=x", 405),
    "token: empty form": ("POST", "/token", FORM, b"", 401),
    "token: only separators": ("POST", "/token", FORM, b"&&&=&=x", 401),
    "token: invalid UTF-8": ("POST", "/token", FORM, b"\xff\xfe\x00grant_type=x", 400),
    "token: Bearer instead of Basic": ("POST", "/token", {**FORM, "Authorization": "Bearer abc"}, b"grant_type=x", 401),
    "token: Basic without colon": ("POST", "/token", {**FORM, "Authorization": "Basic YWJj"}, b"grant_type=x", 401),
    "token: JSON": ("POST", "/token", JSON, b'{"grant_type":"authorization_code"}', 415),
    "token: 20 kB form": ("POST", "/token", FORM, b"code=" + b"x" * 20_000, 413),
    "register: 8000-deep JSON": ("POST", "/register", JSON, b"[" * 8000 + b"]" * 8000, 400),
    "register: invalid UTF-8": ("POST", "/register", JSON, b'{"client_name":"\xff"}', 400),
    "register: JSON null": ("POST", "/register", JSON, b"null", 400),
    "register: duplicate keys": (
        "POST",
        "/register",
        JSON,
        b'{"redirect_uris":["http://localhost:1/cb"],"redirect_uris":["https://evil.example/cb"]}',
        400,
    ),
    "mcp: 9 kB bearer": ("POST", "/mcp", {**JSON, "Authorization": "Bearer " + "a" * 9000}, b"{}", 401),
    "mcp: alg none JWT": (
        "POST",
        "/mcp",
        {**JSON, "Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
        b"{}",
        401,
    ),
    "mcp: scheme only": ("POST", "/mcp", {**JSON, "Authorization": "Bearer"}, b"{}", 401),
    "mcp: TRACE": ("TRACE", "/mcp", {}, None, 401),
    "unknown path": ("GET", "/admin", {}, None, 404),
    "metadata: PATCH": ("PATCH", "/.well-known/oauth-authorization-server", {}, None, 405),
    "metadata: POST": ("POST", "/.well-known/oauth-protected-resource", JSON, b"{}", 405),
}


@pytest.mark.parametrize("method, path, headers, body, status", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_the_clients_fault(any_stack, method, path, headers, body, status):
    response = http.request(method, any_stack.worker.url + path, headers=headers, content=body)
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith(JSON_PAGE)
    assert response.headers["cache-control"] == "no-store"
    assert "location" not in response.headers
    # Internal reasons are logged, never sent: no stack traces, Rust panics or upstream pages.
    for leak in ("panicked", "RuntimeError", "Traceback", "unwrap", "Access denied"):
        assert leak not in response.text


def test_head_on_metadata_has_no_body(stack):
    response = http.head(stack.worker.url + "/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.content == b""


# --- Bodies: the media type before a byte is read, then at most 16 KiB however they are framed -----

MAX_BODY_BYTES = 16 * 1024
# name: (path, the media type the endpoint takes, the content type of its errors)
BODY_ENDPOINTS = {
    "token": ("/token", "application/x-www-form-urlencoded", "application/json"),
    "register": ("/register", "application/json", "application/json"),
    "consent": ("/authorize", "application/x-www-form-urlencoded", "text/html"),
}


def assert_body_refused(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith(error_type)
    if error_type == "application/json":
        assert_oauth_error(response, status, "invalid_request")
    else:
        assert response.headers["x-frame-options"] == "DENY" and str(status) in response.text


def unfinished_chunked_post(url: str, path: str, content_type: str, sent: bytes) -> httpx.Response:
    """POSTs a chunked body that never ends (no last chunk): only a Worker that answers without
    reading the whole body answers at all. The safety timeout makes "never" a failure."""
    address = urlsplit(url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    parts = [sent[i : i + 4096] for i in range(0, len(sent), 4096)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    with socket.create_connection((address.hostname, address.port), timeout=15) as connection:
        connection.sendall(head + chunks)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                data = connection.recv(65536)
                if not data:
                    break
                received += data
        except TimeoutError:
            pytest.fail("no answer while the body was still arriving: the Worker waited for all of it")
    status_line, _, rest = received.partition(b"\r\n")
    header_block = rest.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in header_block.split("\r\n") if ":" in line]
    return httpx.Response(int(status_line.split()[1]), headers=headers)


@pytest.mark.parametrize("path, media_type, error_type", BODY_ENDPOINTS.values(), ids=BODY_ENDPOINTS.keys())
def test_an_oversized_chunked_body_is_refused_in_the_endpoints_format(stack, path, media_type, error_type):
    """No Content-Length to check: the size is counted as the body is read."""
    chunks = (b"a" * 1024 for _ in range(20))
    response = http.post(stack.worker.url + path, content=chunks, headers={"Content-Type": media_type})
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_body_refused(response, 413, error_type)


@pytest.mark.parametrize("path, media_type, error_type", BODY_ENDPOINTS.values(), ids=BODY_ENDPOINTS.keys())
def test_reading_stops_at_the_limit(stack, path, media_type, error_type):
    """An endless body is refused once it passes the limit, not held in memory as it grows."""
    response = unfinished_chunked_post(stack.worker.url, path, media_type, b"a" * (MAX_BODY_BYTES + 4096))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(error_type)


@pytest.mark.parametrize("path, media_type, error_type", BODY_ENDPOINTS.values(), ids=BODY_ENDPOINTS.keys())
def test_a_wrong_media_type_is_refused_before_the_body_is_read(stack, path, media_type, error_type):
    response = unfinished_chunked_post(stack.worker.url, path, "text/plain", b"a" * 4096)
    assert response.status_code == 415
    assert response.headers["content-type"].startswith(error_type)
