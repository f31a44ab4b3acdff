"""Refresh in the field, black-box: the reuse grace (REFRESH_REUSE_GRACE_SECONDS), rotation and
refresh errors, against the Access emulator in strict rotation mode (a used-up refresh token
presented again revokes the whole login at Access, RFC 9700 §4.14.2).

Strict rotation makes every test here also prove that the gateway never sends Access one
refresh token twice where it shares an answer: had it done so, the login would be revoked and
the next refresh would fail. Retries, races and the window are counted at the emulator, never
timed: the only waits are for the window of a Worker whose window is 1 s, and for the runtime's
cache, bounded by counts.
"""

import base64
import hashlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
from nacl.exceptions import CryptoError
from oauth_flow import assert_oauth_error, authorize, exchange, http, post_token

from support.stack import start_emulator, start_origin
from support.worker import free_port, sealing_key, start_worker

USER_EMAIL = "user@example.com"  # who logs in at the emulators started here
# A wait bounded by count, for what the runtime does after it answered (the emulator's counts).
POLL, POLLS = 0.05, 400


def tokens_of(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["access_token"] and body["refresh_token"], body
    return body


def login(stack) -> dict:
    return tokens_of(exchange(stack, authorize(stack)))


def refresh(stack, refresh_token: str, **form) -> httpx.Response:
    return post_token(
        stack,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": stack.emulator.client_id, **form},
    )


def refreshes_at_access(stack) -> int:
    return stack.emulator.stats()["counts"].get("token", 0)


def revocations(stack) -> int:
    return stack.emulator.stats()["counts"].get("refresh_reuse_revocations", 0)


def assert_works(stack, tokens: dict) -> None:
    """The access token gets an MCP session from the origin (which checks the Access JWT too)."""
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "refresh-test", "version": "1"}}
    answer = http.post(
        stack.worker.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        headers={"authorization": f"Bearer {tokens['access_token']}", "accept": "application/json, text/event-stream"},
    )
    assert answer.status_code == 200, answer.text


def eventually(check, what: str):
    for _ in range(POLLS):
        if result := check():
            return result
        time.sleep(POLL)
    raise AssertionError(f"never: {what}")


@pytest.fixture
def strict(request):
    """The session stack (or the one named by `request.param`) with Access rotating strictly."""
    stack = request.getfixturevalue(getattr(request, "param", "stack"))
    stack.emulator.configure(strict_rotation=True)
    return stack


# --- The reuse grace -------------------------------------------------------------------------------


def lose_the_answer(stack, refresh_token: str) -> None:
    """Sends a refresh and goes away once Access has it, before the answer: a cut connection,
    a killed process. The emulator holds the refresh a moment (token_delay_ms) so that the client
    is gone while Access rotates the token. Returns once the gateway has finished the exchange
    (its log line for the request)."""
    asked, logged = refreshes_at_access(stack), token_lines(stack)
    body = urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": stack.emulator.client_id})
    url = urlsplit(stack.worker.url)
    with socket.create_connection((url.hostname, url.port)) as client:
        client.sendall(
            (
                f"POST /token HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
            ).encode()
        )
        eventually(lambda: refreshes_at_access(stack) > asked, "Access received the refresh")
    eventually(lambda: token_lines(stack) > logged, "the gateway finished the lost exchange")


def token_lines(stack) -> int:
    return sum(line["route"] == "token" for line in stack.worker.request_log())


@pytest.mark.parametrize("strict", ["stack", "sealed_stack"], indirect=True)
def test_a_retry_after_a_lost_answer_gets_a_working_pair(strict):
    stack = strict
    held = login(stack)["refresh_token"]
    stack.emulator.configure(token_delay_ms=500)
    lose_the_answer(stack, held)
    asked = refreshes_at_access(stack)

    retried = tokens_of(refresh(stack, held))  # the client still holds the old token, and retries

    assert refreshes_at_access(stack) == asked, "the lost exchange's answer, not a second exchange"
    assert retried["refresh_token"] != held
    assert_works(stack, retried)
    stack.emulator.configure(token_delay_ms=0)
    assert_works(stack, tokens_of(refresh(stack, retried["refresh_token"])))
    assert revocations(stack) == 0


@pytest.mark.parametrize("count", [3, 10])
def test_concurrent_refreshes_with_one_token_all_get_one_working_pair(strict, count):
    """N tabs or processes sharing one refresh token refresh at once (a real CLI client sends
    two every time it lists its servers): all get the same new pair, from one exchange at Access,
    and that pair's refresh token goes on, once for each of them."""
    stack = strict
    held = login(stack)["refresh_token"]
    stack.emulator.configure(token_delay_ms=300)  # all N arrive while the first is at Access
    asked = refreshes_at_access(stack)
    with ThreadPoolExecutor(count) as pool:
        answers = [tokens_of(answer) for answer in pool.map(lambda _: refresh(stack, held), range(count))]

    assert refreshes_at_access(stack) == asked + 1
    assert len({answer["refresh_token"] for answer in answers}) == 1
    assert len({answer["access_token"] for answer in answers}) == 1
    assert_works(stack, answers[0])
    # Each resulting token's next refresh works: one more exchange at Access, shared again.
    stack.emulator.configure(token_delay_ms=0)
    nexts = [tokens_of(refresh(stack, answer["refresh_token"])) for answer in answers]
    assert refreshes_at_access(stack) == asked + 2
    assert len({answer["refresh_token"] for answer in nexts}) == 1
    assert_works(stack, tokens_of(refresh(stack, nexts[-1]["refresh_token"])))
    assert revocations(stack) == 0


def test_another_scope_is_another_refresh(strict):
    """Only identical refreshes share an answer: the same token asked for another scope goes to
    Access, which has used it up."""
    stack = strict
    held = login(stack)["refresh_token"]
    tokens_of(refresh(stack, held))
    assert_oauth_error(refresh(stack, held, scope="openid email"), 400, "invalid_grant")


# --- After the window, and without it -------------------------------------------------------------


@pytest.fixture(scope="module")
def windows():
    """One emulator and origin, three Workers in front: a 1 s window, the grace off, and refresh
    tokens that live 1 s (REFRESH_TOKEN_TTL_SECONDS)."""
    settings = {
        "short": {"REFRESH_REUSE_GRACE_SECONDS": "1"},
        "off": {"REFRESH_REUSE_GRACE_SECONDS": "0"},
        "expiring": {"REFRESH_TOKEN_TTL_SECONDS": "1"},
    }
    ports = {name: free_port() for name in settings}
    emulator = start_emulator(
        redirect_uris=[f"http://127.0.0.1:{port}/callback" for port in ports.values()], email=USER_EMAIL
    )
    origin = start_origin(emulator.base_url, emulator.client_id, USER_EMAIL)
    workers = {
        name: start_worker(emulator, origin_url=origin.base_url, port=ports[name], **settings[name]) for name in settings
    }
    yield {name: SimpleNamespace(emulator=emulator, origin=origin, worker=worker) for name, worker in workers.items()}
    for worker in workers.values():
        worker.stop()
    origin.stop()
    emulator.stop()


@pytest.fixture
def window(windows):
    for stack in windows.values():
        stack.emulator.reset()
    return windows


def test_reuse_after_the_window_is_invalid_grant_as_access_decides(window):
    stack = window["short"]
    held = login(stack)["refresh_token"]
    renewed = tokens_of(refresh(stack, held))
    asked = refreshes_at_access(stack)
    time.sleep(2.5)  # past the 1 s window, whatever second the refresh fell in

    refused = refresh(stack, held)

    assert_oauth_error(refused, 400, "invalid_grant")
    assert refreshes_at_access(stack) == asked + 1, "Access decided"
    assert_works(stack, tokens_of(refresh(stack, renewed["refresh_token"])))


def test_without_the_grace_a_retry_is_refused_by_a_rotating_access(window):
    stack = window["off"]
    held = login(stack)["refresh_token"]
    tokens_of(refresh(stack, held))
    assert_oauth_error(refresh(stack, held), 400, "invalid_grant")


# --- Refused refreshes are invalid_grant -----------------------------------------------------------


def flipped(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


REFUSED = {
    "garbage": lambda stack, held: "not-a-refresh-token",
    "truncated": lambda stack, held: held[:-6],
    "one character changed": lambda stack, held: flipped(held),
    "a sealed code": lambda stack, held: authorize(stack).code,
    "the access token": lambda stack, held: login(stack)["access_token"],
}


@pytest.mark.parametrize("kind", REFUSED)
def test_a_malformed_refresh_token_is_invalid_grant(stack, kind):
    held = login(stack)["refresh_token"]
    presented = REFUSED[kind](stack, held)
    asked = refreshes_at_access(stack)
    assert_oauth_error(refresh(stack, presented), 400, "invalid_grant")
    assert refreshes_at_access(stack) == asked, "Access is not asked"


def test_an_expired_refresh_token_is_invalid_grant(window):
    stack = window["expiring"]
    held = login(stack)["refresh_token"]
    time.sleep(2.5)  # past its 1 s lifetime
    asked = refreshes_at_access(stack)
    assert_oauth_error(refresh(stack, held), 400, "invalid_grant")
    assert refreshes_at_access(stack) == asked


def test_access_down_is_temporarily_unavailable_and_the_token_still_works_after(strict):
    stack = strict
    held = login(stack)["refresh_token"]
    stack.emulator.configure(token_fault="server_error")
    down = refresh(stack, held)
    assert down.status_code == 502 and down.json()["error"] == "temporarily_unavailable", down.text
    stack.emulator.configure(token_fault=None)
    assert_works(stack, tokens_of(refresh(stack, held)))


# --- Another isolate of the location, and what is kept -------------------------------------------


@pytest.fixture(scope="module")
def two_isolates(tmp_path_factory):
    """Two Workers as two isolates of one location: the same settings and public origin, the
    runtime's cache in one shared folder. Logins go through the first."""
    port, state = free_port(), tmp_path_factory.mktemp("location")
    emulator = start_emulator(redirect_uris=[f"http://127.0.0.1:{port}/callback"], email=USER_EMAIL)
    origin = start_origin(emulator.base_url, emulator.client_id, USER_EMAIL)
    shared = {"PUBLIC_ORIGIN": f"http://127.0.0.1:{port}", "SEALING_KEYS": sealing_key()}
    first = start_worker(emulator, origin_url=origin.base_url, port=port, persist_to=state, **shared)
    second = start_worker(emulator, origin_url=origin.base_url, persist_to=state, **shared)
    yield (
        SimpleNamespace(emulator=emulator, origin=origin, worker=first),
        SimpleNamespace(emulator=emulator, origin=origin, worker=second),
    )
    for part in (second, first, origin, emulator):
        part.stop()


def test_another_isolate_answers_with_the_winners_pair(two_isolates):
    """The same refresh token at two isolates at once: Access rotates it for one and refuses the
    other, which finds the winner's answer in the location's cache instead of answering
    invalid_grant. (With reuse detection at Access that second exchange would revoke the login:
    isolates share nothing faster than the cache, so the grace holds across them only where
    Access refuses a reuse without revoking; docs/tokens.md, "Refresh tokens".)"""
    first, second = two_isolates
    first.emulator.reset()
    held = login(first)["refresh_token"]
    # The second isolate warm (its wasm compiled, Access's discovery read) and Access slow, so
    # both requests reach Access before either answer is kept.
    assert http.get(second.worker.url + "/.well-known/oauth-authorization-server").status_code == 200
    first.emulator.configure(token_delay_ms=1000)
    asked = refreshes_at_access(first)
    with ThreadPoolExecutor(2) as pool:
        answers = [tokens_of(answer) for answer in pool.map(lambda stack: refresh(stack, held), (first, second))]
    assert refreshes_at_access(first) == asked + 2, "each isolate asked Access once"
    assert answers[0]["refresh_token"] == answers[1]["refresh_token"]
    assert_works(first, answers[0])
    # A retry at the other isolate too is answered without Access.
    assert tokens_of(refresh(second, held))["refresh_token"] == answers[0]["refresh_token"]
    assert refreshes_at_access(first) == asked + 2


def grace_key(presented: str) -> tuple[str, bytes]:
    """The cache entry's name and the key its answer is sealed under, as the Worker derives them
    from the refresh token presented (src/oauth/refresh_grace.rs, no scope): only a holder of that
    token can compute either."""
    derive = lambda label: hashlib.sha256(label + b"\0" + presented.encode()).digest()  # noqa: E731
    name = base64.urlsafe_b64encode(derive(b"mcp-access-gateway/refresh-grace/name")).rstrip(b"=").decode()
    return name, derive(b"mcp-access-gateway/refresh-grace/key")


def open_sealed(sealed: str, key: bytes) -> dict:
    """A sealed value (src/primitives/seal.rs: version, key id, XChaCha20-Poly1305 nonce, ciphertext) opened."""
    raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    version, key_id, nonce, ciphertext = raw[:1], raw[1:5], raw[5:29], raw[29:]
    plaintext = crypto_aead_xchacha20poly1305_ietf_decrypt(
        ciphertext, version + key_id + b"mcp-access-gateway/refresh-grace", nonce, key
    )
    return json.loads(plaintext)


def test_nothing_kept_is_readable_without_the_old_refresh_token(two_isolates):
    """The location's cache holds the answer only sealed under a key derived from the refresh
    token it answered, under a name derived from it: no token, code or identity in the clear,
    and no other token (the new one included) opens it."""
    first, _ = two_isolates
    first.emulator.reset()
    old = login(first)["refresh_token"]
    answer = tokens_of(refresh(first, old))
    name, key = grace_key(old)
    secrets = {
        "the old refresh token": old,
        "the new refresh token": answer["refresh_token"],
        "the access token": answer["access_token"],
        "Access's refresh token": first.emulator.stats()["last_token_request"]["form"]["refresh_token"],
        "the user's email": USER_EMAIL,
    }

    # The runtime's Cache API storage: the entries' metadata, and their bodies as blobs.
    cache = Path(first.worker.state) / "v3" / "cache"

    def files() -> list[str]:
        return [path.read_bytes().decode("latin-1") for path in cache.rglob("*") if path.is_file()]

    def kept() -> list[str]:
        return [text.strip() for text in files() if text.strip().startswith("A") and " " not in text.strip()]

    (sealed,) = eventually(lambda: [text for text in kept() if _opens(text, key)], "the answer is kept")
    everything = "".join(files())
    for what, value in secrets.items():
        assert value not in everything, f"{what} is kept in the clear"
    assert name in everything, "the entry is named by the token's hash"
    stored = open_sealed(sealed, key)["v"]
    assert stored["r"]["refresh_token"] == answer["refresh_token"]
    assert stored["r"]["access_token"] == answer["access_token"]
    for other in (answer["refresh_token"], old[:-1], login(first)["refresh_token"]):
        assert not _opens(sealed, grace_key(other)[1]), "only the old refresh token's key opens it"


def _opens(sealed: str, key: bytes) -> bool:
    try:
        open_sealed(sealed, key)
        return True
    except (CryptoError, ValueError):
        return False
