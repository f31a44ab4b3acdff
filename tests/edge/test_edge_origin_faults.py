"""What the client gets when the origin fails: a JSON error from the gateway, never the origin's
HTML or its redirect to a login page the client cannot use."""

import time

import pytest
from edge_stack import ORIGIN_TIMEOUT_SECONDS


def assert_gateway_error(response, status: int, error: str, challenge: str | None = None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    assert "<html" not in response.text.lower()
    assert "location" not in response.headers
    assert response.headers.get("www-authenticate") == challenge


@pytest.fixture
def origin_down(gateway):
    """The fake origin stopped: its port is closed. Back on the same port afterwards."""
    gateway.origin.stop()
    yield
    gateway.origin.restart()


def test_origin_down_is_502(gateway, origin_down):
    response = gateway.call("GET", "/echo", gateway.mint())
    assert_gateway_error(response, 502, "temporarily_unavailable")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/login-page", id="login-page-200"),
        pytest.param("/login-page?status=403", id="login-page-403"),
        pytest.param("/login-redirect", id="redirect-to-access-login"),
        pytest.param("/login-redirect?to=relative", id="relative-redirect-to-access-login"),
    ],
)
def test_access_login_page_at_the_origin_is_502(gateway, path):
    """The origin is itself behind Access and the gateway has no (valid) service token."""
    assert_gateway_error(gateway.call("GET", path, gateway.mint()), 502, "temporarily_unavailable")


def test_origin_401_becomes_the_edges_invalid_token(gateway):
    """The origin refused a token the edge accepted (typically its clock a second ahead at exp).
    Its own challenge would point the client at the origin's metadata; the edge's tells the
    client to refresh with the gateway."""
    response = gateway.call("GET", "/unauthorized", gateway.mint())
    assert_gateway_error(response, 401, "invalid_token", challenge=gateway.invalid_token_challenge)
    assert "origin.example" not in response.text


@pytest.mark.parametrize("seconds, status", [(0.5, 200), (ORIGIN_TIMEOUT_SECONDS + 2, 504)])
def test_origin_headers_timeout(gateway, seconds, status):
    """ORIGIN_TIMEOUT_SECONDS=2 bounds the wait for the origin's headers."""
    token = gateway.mint()
    started = time.monotonic()
    response = gateway.call("GET", f"/slow?seconds={seconds}", token)
    elapsed = time.monotonic() - started
    if status == 504:
        assert_gateway_error(response, 504, "temporarily_unavailable")
        assert ORIGIN_TIMEOUT_SECONDS - 0.1 <= elapsed < ORIGIN_TIMEOUT_SECONDS + 1.5, elapsed
    else:
        assert response.status_code == 200 and response.json() == {"slow": True}
