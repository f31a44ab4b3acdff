"""GET /authorization: exact redirect_uri matching, HTML errors, the redirect Access sends back."""

import pytest
from emulator_flows import OTHER_REDIRECT_URI, REDIRECT_URI, STATE, authorize, http, location_query

HTML = "text/html; charset=utf-8"


def test_login_redirects_with_code_and_state_but_no_iss(emulator):
    response = authorize(emulator, code_challenge="c" * 43)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?code=")
    assert list(location_query(response)) == ["code", "state"]
    assert location_query(response)["state"] == STATE
    assert response.headers["cache-control"] == "no-store"


def test_last_authorization_query_is_recorded(emulator):
    authorize(emulator, code_challenge="c" * 43, resource="https://mcp.example.com/mcp")
    stats = emulator.stats()
    assert stats["last_authorization"] == {
        "response_type": "code",
        "client_id": emulator.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": STATE,
        "code_challenge_method": "S256",
        "code_challenge": "c" * 43,
        "resource": "https://mcp.example.com/mcp",
    }
    assert stats["counts"] == {"authorization": 1}


def test_every_registered_redirect_uri_is_accepted(emulator):
    response = authorize(emulator, redirect_uri=OTHER_REDIRECT_URI)
    assert response.headers["location"].startswith(OTHER_REDIRECT_URI + "?code=")


def test_redirect_uri_keeps_its_own_query(emulator):
    emulator.configure(redirect_uris=["https://app.example/cb?tenant=7"])
    response = authorize(emulator, redirect_uri="https://app.example/cb?tenant=7")
    assert response.headers["location"].startswith("https://app.example/cb?tenant=7&code=")


@pytest.mark.parametrize(
    "overrides",
    [
        # No RFC 8252 loopback port wildcard: another port is another string.
        {"redirect_uri": "http://localhost:53682/callback"},
        {"redirect_uri": "http://127.0.0.1:8765/callback"},
        {"redirect_uri": REDIRECT_URI + "/"},
        {"redirect_uri": None},
        {"client_id": "some-other-client"},
        {"client_id": None},
    ],
)
def test_bad_client_or_redirect_uri_gets_an_html_page_never_a_redirect(emulator, overrides):
    response = authorize(emulator, **overrides)
    assert response.status_code == 400
    assert response.headers["content-type"] == HTML
    assert "location" not in response.headers
    assert response.text.startswith("<!DOCTYPE html>")


def test_error_switch_redirects_with_the_error_and_state(emulator):
    emulator.configure(authorization_error="access_denied")
    response = authorize(emulator)
    assert response.status_code == 302
    assert response.headers["location"] == f"{REDIRECT_URI}?error=access_denied&state={STATE}"


def test_error_redirect_without_state_has_no_state(emulator):
    emulator.configure(authorization_error="access_denied")
    assert authorize(emulator, state=None).headers["location"] == f"{REDIRECT_URI}?error=access_denied"


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": "c" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "c" * 43, "code_challenge_method": None}, "invalid_request"),
    ],
)
def test_invalid_requests_redirect_with_an_oauth_error(emulator, overrides, error):
    response = authorize(emulator, **overrides)
    assert response.headers["location"] == f"{REDIRECT_URI}?error={error}&state={STATE}"


def test_redirect_uri_list_can_change_at_runtime(emulator):
    emulator.configure(redirect_uris=["http://localhost:9999/callback"])
    assert authorize(emulator).status_code == 400
    assert authorize(emulator, redirect_uri="http://localhost:9999/callback").status_code == 302


def test_client_id_change_moves_the_issuer_path(emulator):
    new_issuer = emulator.configure(client_id="renamed-app")["issuer"]
    assert new_issuer == f"{emulator.base_url}/cdn-cgi/access/sso/oidc/renamed-app"
    assert http.get(emulator.issuer + "/authorization").status_code == 404
    response = http.get(
        new_issuer + "/authorization",
        params={"client_id": "renamed-app", "redirect_uri": REDIRECT_URI, "response_type": "code"},
    )
    assert response.status_code == 302
