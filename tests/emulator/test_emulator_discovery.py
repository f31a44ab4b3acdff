"""Discovery: issuer with a path, OIDC location only, Access's non-standard document, and its standard form."""

import pytest
from emulator_flows import http


def _discovery(emulator) -> dict:
    response = http.get(emulator.issuer + "/.well-known/openid-configuration")
    assert response.status_code == 200
    return response.json()


def _endpoints(issuer: str) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorization",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "userinfo_endpoint": f"{issuer}/userinfo",
    }


COMMON = {
    "response_types_supported": ["code"],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "scopes_supported": ["openid", "email", "profile", "groups", "offline_access"],
    "claims_supported": ["aud", "email", "exp", "groups", "iat", "iss", "nbf", "nonce", "sub"],
}


def test_issuer_has_the_access_path(emulator):
    assert emulator.issuer == f"{emulator.base_url}/cdn-cgi/access/sso/oidc/{emulator.client_id}"
    assert emulator.base_url.startswith("http://127.0.0.1:")


def test_document_has_access_quirks_by_default(emulator):
    assert _discovery(emulator) == {
        **_endpoints(emulator.issuer),
        **COMMON,
        "grant_types_supported": ["refresh_tokens", "authorization_code_with_pkce"],
        "token_endpoint_auth_methods": ["client_secret_basic", "client_secret_post"],
    }


def test_each_quirk_switches_to_the_standard_form(emulator):
    emulator.configure(quirk_grant_types=False, quirk_auth_methods_key=False, quirk_no_code_challenge_methods=False)
    assert _discovery(emulator) == {
        **_endpoints(emulator.issuer),
        **COMMON,
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    }


@pytest.mark.parametrize(
    "switch, replaced, standard",
    [
        (
            "quirk_grant_types",
            "grant_types_supported",
            {"grant_types_supported": ["authorization_code", "refresh_token"]},
        ),
        (
            "quirk_auth_methods_key",
            "token_endpoint_auth_methods",
            {"token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]},
        ),
        ("quirk_no_code_challenge_methods", None, {"code_challenge_methods_supported": ["S256"]}),
    ],
)
def test_each_quirk_switches_alone(emulator, switch, replaced, standard):
    default = _discovery(emulator)
    emulator.configure(**{switch: False})
    assert _discovery(emulator) == {**{k: v for k, v in default.items() if k != replaced}, **standard}


def test_pkce_without_secret_advertises_none(emulator):
    emulator.configure(pkce_without_secret=True)
    assert _discovery(emulator)["token_endpoint_auth_methods"] == ["client_secret_basic", "client_secret_post", "none"]


def test_public_base_changes_issuer_and_endpoints(emulator):
    # Requests still reach the emulator at emulator.issuer; only the published URLs change.
    emulator.configure(public_base="https://team.cloudflareaccess.com")
    issuer = f"https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/{emulator.client_id}"
    document = _discovery(emulator)
    assert {name: document[name] for name in _endpoints(issuer)} == _endpoints(issuer)
    assert emulator.control("config")["issuer"] == issuer


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server/cdn-cgi/access/sso/oidc/{client_id}",
        "/.well-known/openid-configuration/cdn-cgi/access/sso/oidc/{client_id}",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/cdn-cgi/access/sso/oidc/{client_id}/.well-known/oauth-authorization-server",
        "/cdn-cgi/access/sso/oidc/another-app/.well-known/openid-configuration",
    ],
)
def test_no_discovery_elsewhere_and_404s_are_recorded(emulator, path):
    path = path.format(client_id=emulator.client_id)
    assert http.get(emulator.base_url + path).status_code == 404
    stats = emulator.stats()
    assert stats["not_found"] == [path]
    assert stats["counts"] == {}


def test_discovery_down_answers_an_html_page(emulator):
    emulator.configure(discovery_down=True)
    response = http.get(emulator.issuer + "/.well-known/openid-configuration")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
