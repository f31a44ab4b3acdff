"""Discovery as a strict MCP client walks it: the 401 challenge (RFC 6750, RFC 9728 §5.1), protected
resource metadata (RFC 9728), authorization server metadata (RFC 8414) and its OpenID Connect
Discovery alias, and CORS for browser-based clients."""

import re

import pytest
from oauth_flow import http

PRM = "/.well-known/oauth-protected-resource"
AS_METADATA = "/.well-known/oauth-authorization-server"
OIDC = "/.well-known/openid-configuration"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}
DISCOVER = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}}
JSON_AND_SSE = {"Accept": "application/json, text/event-stream"}


def challenge_params(header: str) -> dict[str, str]:
    """The auth-params of a `Bearer` challenge (RFC 9110 §11.2), quoted strings unquoted."""
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer", header
    params = dict(re.findall(r'([A-Za-z_]+)="([^"]*)"', rest))
    assert rest.count("=") == len(params), f"unparsed parameters in {header}"
    return params


# --- RFC 6750 §3 / RFC 9728 §5.1: the unauthenticated request learns where to go -----------------

UNAUTHENTICATED = {
    "POST initialize": ("POST", INITIALIZE, {**JSON_AND_SSE, "MCP-Protocol-Version": "2025-11-25"}),
    "POST server/discover (2026-07-28)": (
        "POST",
        DISCOVER,
        {**JSON_AND_SSE, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"},
    ),
    "GET (SSE probe)": ("GET", None, {"Accept": "text/event-stream", "MCP-Protocol-Version": "2025-11-25"}),
    "DELETE": ("DELETE", None, {"Mcp-Session-Id": "abc", "MCP-Protocol-Version": "2025-11-25"}),
}


@pytest.mark.parametrize("method, body, headers", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
def test_unauthenticated_mcp_request_gets_a_bare_bearer_challenge(any_stack, method, body, headers):
    worker = any_stack.worker
    seen_by_origin = len(any_stack.origin.requests())
    response = http.request(method, worker.mcp_url, json=body, headers=headers)
    assert response.status_code == 401  # never 405 for GET/DELETE, never 400 for server/discover
    params = challenge_params(response.headers["www-authenticate"])
    assert params == {
        "resource_metadata": f"{worker.url}{PRM}/mcp",
        "scope": "openid email profile",
    }, "RFC 6750 §3.1: no error code without credentials"
    assert response.headers["cache-control"] == "no-store"
    # Browser-based clients must be able to read the challenge.
    assert "www-authenticate" in response.headers["access-control-expose-headers"]
    assert len(any_stack.origin.requests()) == seen_by_origin, "nothing unauthenticated reaches the origin"


def test_challenge_leads_to_the_authorization_server(stack):
    """The walk of a client that reads the 401: challenge → PRM → AS metadata, all absolute URLs."""
    response = http.post(stack.worker.mcp_url, json=INITIALIZE, headers=JSON_AND_SSE)
    resource_metadata = challenge_params(response.headers["www-authenticate"])["resource_metadata"]
    prm = http.get(resource_metadata).json()
    assert prm["resource"] == stack.worker.mcp_url
    (issuer,) = prm["authorization_servers"]
    metadata = http.get(issuer + AS_METADATA).json()
    assert metadata["issuer"] == issuer


def test_a_garbage_bearer_token_is_invalid_token(stack):
    response = http.post(stack.worker.mcp_url, json=INITIALIZE, headers={**JSON_AND_SSE, "Authorization": "Bearer x.y.z"})
    assert response.status_code == 401
    params = challenge_params(response.headers["www-authenticate"])
    assert params["error"] == "invalid_token"
    assert params["resource_metadata"] == f"{stack.worker.url}{PRM}/mcp"


def test_an_unsupported_authorization_scheme_gets_a_bare_challenge(stack):
    """RFC 6750 §3.1: credentials of another scheme are "no authentication information"."""
    response = http.post(stack.worker.mcp_url, json=INITIALIZE, headers={**JSON_AND_SSE, "Authorization": "Basic Zm9vOmJhcg=="})
    assert response.status_code == 401
    assert "error" not in challenge_params(response.headers["www-authenticate"])


def metadata(url: str) -> dict:
    """A metadata document, answered as every one must be: JSON, not stored, readable cross-origin."""
    response = http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "*"
    return response.json()


# --- RFC 9728: protected resource metadata ------------------------------------------------------


@pytest.mark.parametrize("path", [PRM, PRM + "/mcp"], ids=["root", "path-inserted"])
def test_protected_resource_metadata(any_stack, path):
    worker = any_stack.worker
    document = metadata(worker.url + path)
    assert document["resource"] == worker.mcp_url  # RFC 9728 §3.3: the URL the client used
    assert document["authorization_servers"] == [worker.url]
    assert document["scopes_supported"] == ["openid", "email", "profile"]
    assert document["bearer_methods_supported"] == ["header"]


def test_protected_resource_metadata_for_another_path_does_not_exist(stack):
    response = http.get(stack.worker.url + PRM + "/other")
    assert response.status_code == 404


# --- RFC 8414 and OpenID Connect Discovery ------------------------------------------------------


@pytest.mark.parametrize("path", [AS_METADATA, OIDC])
def test_authorization_server_metadata(any_stack, path):
    worker = any_stack.worker
    m = metadata(worker.url + path)
    issuer = worker.url
    assert m["issuer"] == issuer  # RFC 8414 §3.3: byte-identical, no trailing slash
    assert m["authorization_endpoint"] == issuer + "/authorize"
    assert m["token_endpoint"] == issuer + "/token"
    assert m["registration_endpoint"] == issuer + "/register"
    assert m["response_types_supported"] == ["code"]
    assert m["code_challenge_methods_supported"] == ["S256"]  # never "plain" (RFC 9700 §2.1.1)
    assert m["authorization_response_iss_parameter_supported"] is True  # RFC 9207 §3
    assert m["client_id_metadata_document_supported"] is True  # draft-ietf-oauth-client-id-metadata-document §5
    # A secret is only accepted where the Worker holds one to compare it with.
    holds_secret = "ACCESS_CLIENT_SECRET" in worker.settings
    assert m["token_endpoint_auth_methods_supported"] == (
        ["none", "client_secret_basic", "client_secret_post"] if holds_secret else ["none"]
    )
    assert m["grant_types_supported"] == ["authorization_code", "refresh_token"]  # the emulator offers refresh
    assert "openid" in m["scopes_supported"]
    # OpenID Connect Discovery 1.0 §3 REQUIRED fields (the TypeScript SDK rejects documents without them).
    assert m["jwks_uri"] == any_stack.emulator.issuer + "/jwks"
    assert m["subject_types_supported"] == ["public"]
    assert m["id_token_signing_alg_values_supported"] == ["RS256"]
    # Access's non-standard spellings never leak through.
    assert "token_endpoint_auth_methods" not in m
    assert not {"refresh_tokens", "authorization_code_with_pkce"} & set(m["grant_types_supported"])


def test_both_discovery_documents_are_the_same(stack):
    assert http.get(stack.worker.url + AS_METADATA).json() == http.get(stack.worker.url + OIDC).json()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_issuer_is_the_url_the_client_derived_it_from(stack, host):
    """RFC 8414 §3.3 / OIDC Discovery §4.3: with no PUBLIC_ORIGIN, the issuer is the origin the
    client addressed, byte for byte, and everything published is consistent with it."""
    origin = stack.worker.url.replace("127.0.0.1", host)
    metadata = http.get(origin + AS_METADATA).json()
    assert metadata["issuer"] == origin
    assert metadata["token_endpoint"] == origin + "/token"
    prm = http.get(origin + PRM + "/mcp").json()
    assert prm == {**prm, "resource": origin + "/mcp", "authorization_servers": [origin]}


@pytest.mark.parametrize(
    "path",
    [AS_METADATA + "/mcp", OIDC + "/mcp", "/mcp" + OIDC, "/.well-known/oauth-authorization-server/"],
)
def test_metadata_is_only_at_the_issuer_derived_urls(stack, path):
    """The issuer has no path, so no path-inserted variant exists (a client that finds one would
    compare its issuer against a different URL)."""
    response = http.get(stack.worker.url + path)
    assert response.status_code == 404
    assert "issuer" not in response.text


# --- CORS (browser-based clients such as MCP Inspector) -----------------------------------------

PREFLIGHTS = {
    PRM: "GET, HEAD, OPTIONS",
    PRM + "/mcp": "GET, HEAD, OPTIONS",
    AS_METADATA: "GET, HEAD, OPTIONS",
    OIDC: "GET, HEAD, OPTIONS",
    "/register": "POST, OPTIONS",
    "/token": "POST, OPTIONS",
    "/mcp": "GET, POST, DELETE, OPTIONS",
}


@pytest.mark.parametrize("path, methods", PREFLIGHTS.items(), ids=PREFLIGHTS.keys())
def test_cors_preflight(stack, path, methods):
    response = http.options(
        stack.worker.url + path,
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": methods.split(", ")[0],
            "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version, mcp-param-region",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == methods
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version", "mcp-session-id", "last-event-id"} <= allowed
    assert {"mcp-method", "mcp-name"} <= allowed  # 2026-07-28 request headers
    # Mcp-Param-* has any name: only the wildcard admits them, which browsers honour without
    # credentials; it never covers Authorization, which stays listed.
    assert "*" in allowed
    assert "access-control-allow-credentials" not in response.headers  # tokens travel in headers, not cookies


@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
@pytest.mark.parametrize("path", ["/authorize", "/callback"])
def test_browser_endpoints_have_no_cors(stack, path, method):
    """The consent form and the callback are top-level navigations; no script may read them."""
    response = http.request(method, stack.worker.url + path, headers={"Origin": "https://evil.example"})
    assert response.status_code < 500
    assert not any(name.startswith("access-control-") for name in response.headers)
