"""RFC 7591 Dynamic Client Registration, as the gateway's shim answers it: every registration gets
the one Access client id as a public client; redirect URIs are checked against the allowlist
(RFC 8252 §7.3 loopback on any port, the hosted callbacks of known clients), never a secret."""

import json
from pathlib import Path

import pytest
from oauth_flow import assert_oauth_error, http

# The allowlist cases the native tests use too: every redirect URI seen from real clients, open
# redirects and lookalikes (RFC 9700 §4.1, RFC 6749 §3.1.2: no fragment), refused registrations.
VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "redirect_uris.json").read_text())
SEEN_FROM_REAL_CLIENTS = VECTORS["allowed"]
OPEN_REDIRECTS_AND_LOOKALIKES = [*VECTORS["refused"], "http://localhost/" + "a" * 3000]


def register(stack, body, **kwargs):
    return http.post(stack.worker.url + "/register", json=body, **kwargs)


@pytest.mark.parametrize("redirect_uri", SEEN_FROM_REAL_CLIENTS)
def test_redirect_uris_of_real_clients_are_accepted(stack, redirect_uri):
    response = register(stack, {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"})
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == [redirect_uri]  # echoed as sent, not normalised


@pytest.mark.parametrize("redirect_uri", OPEN_REDIRECTS_AND_LOOKALIKES)
def test_open_redirects_and_lookalikes_are_rejected(stack, redirect_uri):
    response = register(stack, {"redirect_uris": ["http://localhost:1/callback", redirect_uri]})
    assert_oauth_error(response, 400, "invalid_redirect_uri")


def test_claude_code_registration(any_stack):
    """The exact request Claude Code sends; RFC 7591 §3.2.1 answer."""
    stack = any_stack
    response = register(
        stack,
        {
            "client_name": "Claude Code (local)",
            "redirect_uris": ["http://localhost:51234/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
            "scope": "openid email mcp:tools",
        },
    )
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "*"
    info = response.json()
    assert info["client_id"] == stack.emulator.client_id
    assert isinstance(info["client_id_issued_at"], int)
    assert info["redirect_uris"] == ["http://localhost:51234/callback"]
    assert info["grant_types"] == ["authorization_code", "refresh_token"]
    assert info["response_types"] == ["code"]
    assert info["token_endpoint_auth_method"] == "none"
    assert info["client_name"] == "Claude Code (local)"
    assert info["scope"] == "openid email"  # unknown scopes are dropped, not refused
    assert info["application_type"] == "native"
    assert "client_secret" not in info


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic", "none", None])
def test_the_answer_never_contains_a_secret(any_stack, method):
    """A client asking to be confidential is registered as public: the Access secret never leaves
    the edge (RFC 7591 §3.2.1 lets the server replace requested values)."""
    body = {"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"]}
    if method:
        body["token_endpoint_auth_method"] = method
    response = register(any_stack, body)
    assert response.status_code == 201
    info = response.json()
    assert info["token_endpoint_auth_method"] == "none"
    assert not {"client_secret", "client_secret_expires_at", "registration_access_token"} & info.keys()
    assert any_stack.emulator.client_secret not in response.text


ACCEPTED = {case["name"]: case["body"] for case in VECTORS["registration_accepted"]}


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_application_type_fits_the_redirect_uris_and_is_echoed(stack, body):
    """OpenID Connect Dynamic Client Registration §2, which the 2026-07-28 MCP revision has
    clients send (SEP-837): native with loopback or a private-use scheme, web with https; older
    clients omit it. The refused combinations are among the bad metadata below."""
    response = register(stack, body)
    assert response.status_code == 201, response.text
    assert response.json().get("application_type") == body.get("application_type")


BAD_METADATA = {case["name"]: (case["body"], case["error"]) for case in VECTORS["registration_refused"]}


@pytest.mark.parametrize("body, error", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_bad_metadata_is_refused(stack, body, error):
    """RFC 7591 §3.2.2."""
    assert_oauth_error(register(stack, body), 400, error)


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"a string"', "null", "", '{"redirect_uris": ["http://localhost:1/cb"]'])
def test_a_body_that_is_not_a_json_object_is_invalid_client_metadata(stack, body):
    response = http.post(stack.worker.url + "/register", content=body, headers={"Content-Type": "application/json"})
    assert_oauth_error(response, 400, "invalid_client_metadata")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_registration_must_be_json(stack, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(
        stack.worker.url + "/register", content=b'{"redirect_uris":["http://localhost:1/cb"]}', headers=headers
    )
    assert_oauth_error(response, 415, "invalid_request")


def test_a_json_media_type_with_parameters_is_json(stack):
    response = http.post(
        stack.worker.url + "/register",
        content=b'{"redirect_uris":["http://localhost:1/cb"]}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def _huge_body() -> bytes:
    return b'{"redirect_uris":["http://localhost:1/cb"],"client_name":"' + b"x" * 20_000 + b'"}'


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_huge_body_is_refused(stack, framing):
    """16 KiB is far above any real registration; larger bodies are refused before parsing,
    whether the size is declared or only discovered while reading."""
    body = _huge_body()
    content = body if framing == "content-length" else iter([body[:8000], body[8000:]])
    response = http.post(stack.worker.url + "/register", content=content, headers={"Content-Type": "application/json"})
    assert_oauth_error(response, 413, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_only_post_registers(stack, method):
    response = http.request(method, stack.worker.url + "/register")
    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["allow"] == "POST, OPTIONS"
