"""Sealed token mode over HTTP: the Worker's own access tokens are accepted by the deployment that
sealed them, for its own MCP URL, until they expire; anything else — a tampered or truncated
token, another deployment's token (another key, or the same key for another MCP URL), an expired
one, a sealed code or refresh token presented as a bearer — is 401 `invalid_token`, and the
origin never sees the request."""

import base64
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from support.browser import play_browser
from support.stack import pkce_pair
from support.worker import start_worker

REDIRECT_URI = "http://localhost:53683/callback"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "sealed", "version": "1"}}}


def login(stack) -> dict:
    """A whole authorization through the Worker; returns the code and the token response."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code", "client_id": stack.emulator.client_id, "redirect_uri": REDIRECT_URI,
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", "resource": stack.worker.mcp_url,
    }
    location = play_browser(f"{stack.worker.url}/authorize?{urlencode(params)}", REDIRECT_URI + "?")
    (code,) = parse_qs(urlsplit(location).query)["code"]
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI, "client_id": stack.emulator.client_id}
    response = httpx.post(stack.worker.url + "/token", data=form)
    assert response.status_code == 200, response.text
    return {"code": code, **response.json()}


def call(worker_url: str, token: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
    return httpx.post(worker_url + "/mcp", json=INITIALIZE, headers=headers)


def flip(token: str, byte: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[byte % len(raw)] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def issued(sealed_stack):
    return login(sealed_stack)


def test_the_sealed_token_works_where_it_was_sealed(sealed_stack, issued):
    assert issued["access_token"].count(".") == 0, "the client holds the Worker's token, not Access's"
    assert call(sealed_stack.worker.url, issued["access_token"]).status_code == 200


CASES = [
    "bit flip in the header", "bit flip in the nonce", "bit flip in the ciphertext", "bit flip in the tag",
    "truncated", "extended", "the sealed code", "the sealed refresh token",
]


def refused(issued: dict, case: str) -> str:
    token = issued["access_token"]
    return {
        "bit flip in the header": flip(token, 0),
        "bit flip in the nonce": flip(token, 10),
        "bit flip in the ciphertext": flip(token, 60),
        "bit flip in the tag": flip(token, -1),
        "truncated": token[:-6],
        "extended": token + "AAAA",
        "the sealed code": issued["code"],
        "the sealed refresh token": issued["refresh_token"],
    }[case]


@pytest.mark.parametrize("case", CASES)
def test_tampered_and_misused_sealed_values_are_invalid_token(sealed_stack, issued, case):
    seen = len(sealed_stack.origin.requests())
    response = call(sealed_stack.worker.url, refused(issued, case))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert len(sealed_stack.origin.requests()) == seen, "the origin saw the request"


def test_another_deployments_key_is_invalid_token(stack, issued):
    """The default stack runs with its own sealing key (auto mode opens sealed tokens too)."""
    response = call(stack.worker.url, issued["access_token"])
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")


def test_the_same_key_for_another_mcp_url_is_refused(sealed_stack, issued):
    twin = start_worker(
        sealed_stack.emulator, origin_url=sealed_stack.origin.base_url, TOKEN_MODE="sealed",
        SEALING_KEYS=sealed_stack.worker.settings["SEALING_KEYS"], PUBLIC_ORIGIN="http://localhost:1",
    )
    try:
        response = call(twin.url, issued["access_token"])
        assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
        # Nor does its refresh token: Access is not asked.
        token_requests = sealed_stack.emulator.stats()["counts"].get("token", 0)
        form = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": sealed_stack.emulator.client_id}
        response = httpx.post(twin.url + "/token", data=form)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
        assert sealed_stack.emulator.stats()["counts"].get("token", 0) == token_requests
    finally:
        twin.stop()


def test_an_expired_sealed_token_is_invalid_token(sealed_stack):
    sealed_stack.emulator.configure(access_token_ttl=2)
    short = login(sealed_stack)
    assert short["expires_in"] <= 2
    assert call(sealed_stack.worker.url, short["access_token"]).status_code == 200  # now opened and cached
    time.sleep(short["expires_in"] + 1)
    seen_by_origin = len(sealed_stack.origin.requests())
    response = call(sealed_stack.worker.url, short["access_token"])
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]
    assert len(sealed_stack.origin.requests()) == seen_by_origin, "refused at the edge, not by the origin"
