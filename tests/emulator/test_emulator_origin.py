"""The bug report's curl verification, automated against the emulator and the seed's origin, and the
tokens that origin must refuse."""

import dataclasses
import json
import secrets
import time

import pytest
from access_emulator.keys import SigningKey
from emulator_flows import REDIRECT_URI, claims, http, location_query
from support.stack import pkce_pair

MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl-test", "version": "1.0"},
    },
}
NO_TOKEN_CHALLENGE = (
    'Bearer error="invalid_token", error_description="Authentication required", '
    'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
)


def _mcp(origin, token: str | None, message: dict, session_id: str | None = None):
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if session_id is not None:
        headers["Mcp-Session-Id"] = session_id
    return http.post(origin.url, json=message, headers=headers)


def _sse_result(response) -> dict:
    # The origin answers a POST with an SSE stream holding one `data:` line: the JSON-RPC response.
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    (data,) = [line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")]
    return json.loads(data)


def _curl_tokens(emulator) -> dict:
    """Steps 10-13 of the bug report: PKCE pair, /authorization, code from the redirect, POST /token."""
    verifier, challenge = pkce_pair()
    state = "test-" + secrets.token_urlsafe(8)
    redirect = http.get(
        emulator.issuer + "/authorization",
        params={
            "response_type": "code",
            "client_id": emulator.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert redirect.status_code == 302
    callback = location_query(redirect)
    assert callback["state"] == state
    response = http.post(
        emulator.issuer + "/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200
    return response.json()


def _curl_token(emulator) -> str:
    return _curl_tokens(emulator)["access_token"]


def _initialize_status(origin, token: str | None) -> int:
    return _mcp(origin, token, INITIALIZE).status_code


def test_curl_verification_drives_a_full_mcp_session(emulator, origin):
    token = _curl_token(emulator)

    response = _mcp(origin, token, INITIALIZE)
    session_id = response.headers["mcp-session-id"]
    result = _sse_result(response)["result"]
    assert (result["protocolVersion"], result["serverInfo"]["name"]) == ("2025-06-18", "minimal-mcp")

    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized", "params": {}}
    assert _mcp(origin, token, initialized, session_id).status_code == 202

    tools = _sse_result(_mcp(origin, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session_id))
    assert [tool["name"] for tool in tools["result"]["tools"]] == ["ping"]

    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "ping", "arguments": {"message": "hello from curl"}},
    }
    assert _sse_result(_mcp(origin, token, call, session_id)) == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {
            "content": [{"type": "text", "text": "pong: hello from curl"}],
            "structuredContent": {"result": "pong: hello from curl"},
            "isError": False,
        },
    }


def test_request_log_shows_requests_but_never_the_token(emulator, origin):
    token = _curl_token(emulator)
    seen_before = len(origin.requests())
    assert _initialize_status(origin, None) == 401
    assert _initialize_status(origin, token) == 200
    entries = origin.requests()[seen_before:]
    assert [(e["method"], e["path"], e["authorization"], e["status"]) for e in entries] == [
        ("POST", "/mcp", False, 401),
        ("POST", "/mcp", True, 200),
    ]
    assert "authorization" in entries[1]["headers"] and "authorization" not in entries[0]["headers"]
    assert entries[1]["host"] == origin.base_url.removeprefix("http://")
    assert token not in origin.request_log.read_text()


def test_no_token_gets_the_origins_challenge(origin):
    response = _mcp(origin, None, INITIALIZE)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == NO_TOKEN_CHALLENGE


@pytest.mark.parametrize("aud_mode", ["redirect_uri", "client_id"])
def test_origin_accepts_a_string_aud(emulator, origin, aud_mode):
    emulator.configure(aud_mode=aud_mode)
    assert _initialize_status(origin, _curl_token(emulator)) == 200


def test_origin_refuses_an_array_aud(emulator, origin):
    # The seed copies aud into AccessToken.client_id, a string: an array fails validation, so 401.
    emulator.configure(aud_mode="array")
    token = _curl_token(emulator)
    assert claims(token)["aud"] == [emulator.client_id]
    assert _initialize_status(origin, token) == 401


def test_origin_refuses_another_users_token(emulator, origin):
    emulator.configure(email="intruder@example.com")
    assert _initialize_status(origin, _curl_token(emulator)) == 401


@pytest.mark.parametrize("same_kid", [False, True], ids=["unknown-kid", "forged-with-known-kid"])
def test_origin_refuses_a_token_signed_by_an_unknown_key(emulator, origin, same_kid):
    genuine = _curl_token(emulator)
    forger = SigningKey.generate()
    if same_kid:
        forger = dataclasses.replace(forger, kid=emulator.control("config")["kids"][0])
    assert _initialize_status(origin, forger.sign(claims(genuine))) == 401


@pytest.mark.parametrize(
    "claims_override",
    [{"exp": int(time.time()) - 60}, {"iss": "https://other.cloudflareaccess.com"}, {"email": None}],
    ids=["expired", "wrong-iss", "no-email"],
)
def test_origin_refuses_invalid_claims(emulator, origin, claims_override):
    token = emulator.control("mint", {"claims": claims_override})["token"]
    assert _initialize_status(origin, token) == 401
    assert _initialize_status(origin, emulator.control("mint")["token"]) == 200


def test_origin_refuses_opaque_access_tokens_but_takes_the_id_token(emulator, origin):
    # What the Worker must decide for itself: the seed only understands JWTs, and it accepts an
    # id_token as a bearer because nothing distinguishes the two for it (issuer and email match).
    emulator.configure(opaque_access_token=True)
    tokens = _curl_tokens(emulator)
    assert "." not in tokens["access_token"]
    assert _initialize_status(origin, tokens["access_token"]) == 401
    assert _initialize_status(origin, tokens["id_token"]) == 200


def test_origin_caches_jwks_so_a_rotated_key_is_refused(emulator, origin):
    # The seed caches the JWKS for an hour and does not refetch on an unknown kid: right after an
    # Access key rotation it refuses every new token. (reset() restores the key the origin knows.)
    assert _initialize_status(origin, _curl_token(emulator)) == 200
    emulator.control("rotate-key")
    assert _initialize_status(origin, _curl_token(emulator)) == 401
    assert emulator.stats()["counts"].get("jwks", 0) == 0


@pytest.mark.parametrize(
    "header, value, status, text",
    [
        ("Host", "mcp.example.com", 421, "Invalid Host header"),
        ("Origin", "https://claude.ai", 403, "Invalid Origin header"),
    ],
)
def test_origin_refuses_non_loopback_host_and_origin_headers(emulator, origin, header, value, status, text):
    # FastMCP bound to 127.0.0.1 turns on DNS-rebinding protection: a proxy in front of it must send a
    # loopback Host and must not forward a browser's Origin header.
    token = _curl_token(emulator)
    response = http.post(
        origin.url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}", header: value}
    )
    assert (response.status_code, response.text) == (status, text)
