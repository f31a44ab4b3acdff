"""A second, freshly started Worker with non-default settings, so that what it advertises is
derived from a discovery document it has never cached (the Worker caches Access's discovery for an
hour per isolate): Access without refresh tokens, a configured public origin (issuer), consent
that is never remembered, a server name for the consent page, and SCOPES with offline_access.

Advertisement and enforcement must come from the same value: without refresh at Access the gateway
neither advertises nor registers nor relays the refresh_token grant."""

import pytest
from oauth_flow import (
    REDIRECT_URI,
    Browser,
    assert_error_page,
    assert_oauth_error,
    assert_redirect_error,
    authorization_url,
    authorize,
    exchange,
    http,
    pkce_pair,
    post_token,
    ticket_of,
)
from support.stack import free_port, start_emulator
from support.worker import start_worker

SERVER_NAME = "Example Tools <MCP>"


class ConfiguredStack:
    def __init__(self):
        port = free_port()
        self.public_origin = f"http://localhost:{port}"
        self.emulator = start_emulator(redirect_uris=[f"{self.public_origin}/callback"], refresh_tokens=False)
        try:
            self.worker = start_worker(
                self.emulator,
                origin_url="http://127.0.0.1:9",  # never reached: these tests stop before MCP
                port=port,
                PUBLIC_ORIGIN=self.public_origin,
                CONSENT_TTL_SECONDS="0",
                SERVER_NAME=SERVER_NAME,
                SCOPES="openid email offline_access",
            )
        except Exception:
            self.emulator.stop()
            raise

    def stop(self):
        self.worker.stop()
        self.emulator.stop()


@pytest.fixture(scope="module")
def configured():
    started = ConfiguredStack()
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def reset_configured_emulator(request):
    yield
    if "configured" in request.fixturenames:
        request.getfixturevalue("configured").emulator.reset()


def test_the_configured_public_origin_is_the_issuer_whatever_host_was_asked(configured):
    """The Worker is reached on 127.0.0.1 but published as PUBLIC_ORIGIN (RFC 8414 §3.3)."""
    public = configured.public_origin
    metadata = http.get(configured.worker.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == public
    assert metadata["authorization_endpoint"] == public + "/authorize"
    prm = http.get(configured.worker.url + "/.well-known/oauth-protected-resource/mcp").json()
    assert prm["resource"] == public + "/mcp"
    assert prm["authorization_servers"] == [public]
    assert prm["resource_name"] == SERVER_NAME
    challenge = http.post(configured.worker.url + "/mcp", json={}).headers["www-authenticate"]
    assert f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"' in challenge


def test_offline_access_is_for_the_authorization_server_only(configured):
    """The 2026-07-28 MCP revision: the resource names the scopes it wants, and offline_access is
    not one of them (a client wanting refresh finds it in the authorization server metadata).
    Access is still asked for it when a client names no scope."""
    prm = http.get(configured.worker.url + "/.well-known/oauth-protected-resource/mcp").json()
    assert prm["scopes_supported"] == ["openid", "email"]
    challenge = http.post(configured.worker.url + "/mcp", json={}).headers["www-authenticate"]
    assert 'scope="openid email"' in challenge
    metadata = http.get(configured.worker.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["scopes_supported"] == ["openid", "email", "offline_access"]
    grant = authorize(configured, at=configured.public_origin, resource=configured.public_origin + "/mcp", scope=None)
    assert grant.access_request["scope"] == "openid email offline_access"


def test_refresh_is_not_advertised_when_access_does_not_offer_it(configured):
    metadata = http.get(configured.worker.url + "/.well-known/openid-configuration").json()
    assert metadata["grant_types_supported"] == ["authorization_code"]


def test_refresh_is_not_registered_when_not_advertised(configured):
    url = configured.worker.url + "/register"
    body = {"redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code", "refresh_token"]}
    assert_oauth_error(http.post(url, json=body), 400, "invalid_client_metadata")
    plain = http.post(url, json={"redirect_uris": [REDIRECT_URI]})
    assert plain.status_code == 201 and plain.json()["grant_types"] == ["authorization_code"]


def test_refresh_is_not_relayed_when_not_advertised(configured):
    form = {"grant_type": "refresh_token", "refresh_token": "r", "client_id": configured.emulator.client_id}
    assert_oauth_error(post_token(configured, form), 400, "unsupported_grant_type")
    assert configured.emulator.stats()["counts"].get("token", 0) == 0


def test_the_resource_is_the_public_one(configured):
    """RFC 8707: the canonical resource is PUBLIC_ORIGIN + MCP path, not the host that was asked."""
    _, challenge = pkce_pair()
    url = authorization_url(configured, challenge, resource=configured.worker.mcp_url)  # 127.0.0.1
    response = http.get(url)
    assert_redirect_error(response, REDIRECT_URI, "invalid_target", issuer=configured.public_origin)


def test_a_full_flow_uses_the_public_origin_everywhere(configured):
    grant = authorize(configured, at=configured.public_origin, resource=configured.public_origin + "/mcp")
    assert grant.iss == configured.public_origin
    assert grant.access_request["redirect_uri"] == configured.public_origin + "/callback"
    response = exchange(configured, grant, resource=configured.public_origin + "/mcp")
    assert response.status_code == 200, response.text


def test_consent_that_is_never_remembered(configured):
    _, challenge = pkce_pair()
    public = configured.public_origin
    url = authorization_url(configured, challenge, at=public, resource=public + "/mcp")
    browser = Browser()
    page = browser.get(url)
    assert "Example Tools &lt;MCP&gt;" in page.text  # SERVER_NAME, escaped
    assert "You will be asked every time." in page.text
    answer = browser.submit_consent(configured.public_origin, ticket_of(page), "approve")
    assert answer.status_code == 302
    assert "set-cookie" not in answer.headers
    assert browser.get(url).status_code == 200, "asked again"



def test_a_consent_post_must_name_the_public_origin(configured):
    """The form is the public origin's: a post whose `Origin` is any other one (here the host the
    Worker was reached at) is refused."""
    _, challenge = pkce_pair()
    public = configured.public_origin
    url = authorization_url(configured, challenge, at=public, resource=public + "/mcp")
    browser = Browser()
    ticket = ticket_of(browser.get(url))
    refused = browser.submit_consent(configured.public_origin, ticket, "approve", origin=configured.worker.url)
    assert_error_page(refused, "invalid_request")
    assert configured.emulator.stats()["counts"].get("authorization", 0) == 0
