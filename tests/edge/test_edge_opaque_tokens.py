"""Access for SaaS may hand out opaque access tokens (reported; only the id_token is a JWT). With
TOKEN_MODE=passthrough (the gateway fixture) the edge has nothing to validate them with, so the
token exchange must say so plainly instead of handing the client a token that fails every MCP
request and sends it round a login loop. (TOKEN_MODE=auto seals them instead: see
tests/conformance/test_conformance_token.py.)"""

from urllib.parse import parse_qs, urlencode, urlsplit

from support.browser import play_browser
from support.stack import pkce_pair

REDIRECT_URI = "http://localhost:53682/callback"


def test_opaque_access_token_is_a_clear_server_error(gateway):
    gateway.emulator.configure(opaque_access_token=True)
    token_requests = gateway.emulator.stats()["counts"].get("token", 0)
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": gateway.emulator.client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "edge-state",
        "scope": "openid email",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": gateway.worker.mcp_url,
    }
    location = play_browser(f"{gateway.worker.url}/authorize?{urlencode(params)}", REDIRECT_URI + "?")
    (code,) = parse_qs(urlsplit(location).query)["code"]
    gateway.remember(code)
    gateway.remember(verifier)
    response = gateway.http.post(
        gateway.worker.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
            "client_id": gateway.emulator.client_id,
            "resource": gateway.worker.mcp_url,
        },
    )
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "server_error"
    assert "opaque" in body["error_description"] and "TOKEN_MODE" in body["error_description"]
    assert "access_token" not in body
    assert gateway.emulator.stats()["counts"]["token"] == token_requests + 1, "Access was asked, and its answer kept back"
