"""Tokens the gateway must accept, and the checks beyond the signature: audience, allowlists,
time with leeway, and the verified-token cache never outliving a token's validity."""

import json
import time

import pytest
from edge_stack import ALLOWED_EMAIL, LEEWAY_SECONDS


def sse_result(response) -> dict:
    """The JSON-RPC message of a one-event SSE answer, as the seed's origin sends it."""
    data = [line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")]
    assert len(data) == 1, response.text
    return json.loads(data[0])


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_minted_token_reaches_the_real_origin(real, scheme):
    """RFC 7235 §2.1: the scheme is case-insensitive. The origin verifies the forwarded bearer
    itself (FORWARD_BEARER defaults to true) and answers initialize."""
    seen_by_origin = len(real.origin.requests())
    response = real.initialize(None, headers={"authorization": f"{scheme} {real.mint()}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["mcp-session-id"]
    assert sse_result(response)["result"]["serverInfo"]["name"] == "minimal-mcp"
    (arrived,) = real.origin.requests()[seen_by_origin:]
    assert (arrived["method"], arrived["path"], arrived["status"]) == ("POST", "/mcp", 200)
    assert arrived["authorization"], "the bearer is forwarded by default"


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(lambda e: e.callback, id="callback-url"),
        pytest.param(lambda e: e.emulator.client_id, id="client-id"),
        pytest.param(lambda e: [e.emulator.client_id], id="array-client-id"),
        pytest.param(lambda e: ["https://other.example/callback", e.emulator.client_id], id="array-with-client-id"),
        pytest.param(lambda e: ["https://other.example/callback", e.callback], id="array-with-callback-url"),
    ],
)
def test_accepted_audiences(gateway, aud):
    """The default audiences: the Worker's /callback (Access's aud = redirect URI) and the client
    id, as a string or inside an array (RFC 7519 §4.1.3). The seed's origin refuses array
    audiences itself, so this goes to the fake origin."""
    assert gateway.call("GET", "/echo", gateway.mint(aud=aud(gateway))).status_code == 200


@pytest.mark.parametrize("id_claim", [{"nonce": "n-0S6_WzA2Mj"}, {"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}])
def test_an_id_token_is_refused_as_an_access_token(gateway, id_claim):
    """Access's id_token has the client id as audience, which the default audiences accept: its
    OpenID Connect claims (the gateway always sends Access a nonce) keep it from passing as an
    access token, and it never reaches the origin."""
    seen_by_origin = len(gateway.origin.requests())
    id_token = gateway.mint(aud=gateway.emulator.client_id, **id_claim)
    response = gateway.call("GET", "/echo", id_token)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert len(gateway.origin.requests()) == seen_by_origin


@pytest.mark.parametrize(
    "claims, status",
    [
        pytest.param({}, 200, id="by-group"),
        pytest.param({"email": ALLOWED_EMAIL, "groups": []}, 200, id="by-email"),
        pytest.param({"email": ALLOWED_EMAIL.upper(), "groups": []}, 200, id="by-email-any-case"),
        pytest.param({"groups": []}, 403, id="neither"),
        pytest.param({"email": None, "groups": None}, 403, id="no-email-no-groups"),
    ],
)
def test_allowlists(gateway, claims, status):
    """ALLOWED_EMAILS=someone@else.example, ALLOWED_GROUPS=engineering: any match admits. A valid
    token that matches none gets 403 — no challenge, and nothing telling the client to sign in
    again (that would loop) — and never reaches the origin."""
    seen_by_origin = len(gateway.origin.requests())
    response = gateway.call("GET", "/echo", gateway.mint(**claims))
    assert response.status_code == status, response.text
    if status == 200:
        return
    assert "www-authenticate" not in response.headers
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "access_denied"
    assert "invalid_token" not in response.text
    assert len(gateway.origin.requests()) == seen_by_origin


@pytest.mark.parametrize(
    "claims, status",
    [
        pytest.param(lambda t: {"nbf": t + 2}, 200, id="nbf-within-leeway"),
        pytest.param(lambda t: {"nbf": t + LEEWAY_SECONDS + 3}, 401, id="nbf-beyond-leeway"),
        pytest.param(lambda t: {"iat": t + 2, "nbf": None}, 200, id="iat-within-leeway"),
        pytest.param(lambda t: {"iat": t + LEEWAY_SECONDS + 3, "nbf": None}, 401, id="iat-beyond-leeway"),
        pytest.param(lambda t: {"exp": t - 1}, 401, id="exp-a-second-ago-no-leeway"),
    ],
)
def test_leeway_covers_nbf_but_never_exp(gateway, claims, status):
    """JWT_LEEWAY_SECONDS=3 on this gateway absorbs clock skew right after issuance; `exp` is
    strict, because the origin verifies the same JWT again without leeway (docs/defaults.md). The Worker's
    clock ticks in whole seconds, hence the margins."""
    t = int(time.time())
    response = gateway.call("GET", "/echo", gateway.mint(**{"iat": t - 60, **claims(t)}))
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == gateway.invalid_token_challenge


def test_verified_token_cache_never_outlives_the_token(gateway):
    """The second request is served from the verified-token cache; once exp has passed, the
    cached verdict must not be reused."""
    t = int(time.time())
    token = gateway.mint(iat=t, nbf=t, exp=t + 2)
    assert [gateway.call("GET", "/echo", token).status_code for _ in range(2)] == [200, 200]
    time.sleep(max(0.0, t + 2 + 0.05 - time.time()))
    response = gateway.call("GET", "/echo", token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == gateway.invalid_token_challenge
