"""Which request headers cross the proxy, checked against what the fake origin received (/echo).

The gateway runs with FORWARD_BEARER=false and a service token for the origin; the default
(bearer forwarded) is checked on a Worker with default settings. workerd consumes some
connection-level headers (Connection, Keep-Alive, TE, Upgrade) before the Worker runs, so for
those the rows below guard the end result rather than the Worker's own rule.
"""

from urllib.parse import urlsplit

import pytest
from edge_stack import SERVICE_TOKEN_ID, SERVICE_TOKEN_SECRET
from support.fake_origin import ORIGIN_COOKIES

# The 2026-07-28 revision's request headers included: Mcp-Name in its base64 form (for a
# name that is not plain ASCII) and Mcp-Param-* under any name.
KEPT = {
    "mcp-session-id": "session-1234",
    "mcp-protocol-version": "2026-07-28",
    "last-event-id": "42",
    "accept": "application/json, text/event-stream",
    "mcp-method": "tools/call",
    "mcp-name": "=?base64?cMOpbmc=?=",
    "mcp-param-region": "eu-west-1",
    "mcp-param-x_tenant.id": "=?base64?w6nDqA==?=",
    "content-type": "application/json",
    "user-agent": "edge-tests/1.0",
    "x-custom": "kept as is",
}
DROPPED = {
    "cookie": "session=abc; CF_Authorization=xyz",
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-proto": "http",
    "x-real-ip": "203.0.113.7",
    "forwarded": "for=203.0.113.7;proto=http",
    # Forged addressing, routing and method headers a framework at the origin may trust.
    "x-forwarded-host": "admin.internal.example",
    "x-forwarded-port": "8443",
    "x-forwarded-prefix": "/admin",
    "x-forwarded-uri": "/admin/delete",
    "x-original-url": "/admin/delete",
    "x-rewrite-url": "/admin/delete",
    "x-http-method-override": "DELETE",
    "x-http-method": "DELETE",
    "x-method-override": "DELETE",
    "true-client-ip": "10.0.0.1",
    "keep-alive": "timeout=5",
    "te": "trailers",
    "trailer": "x-checksum",
    "upgrade": "h2c",
    "proxy-authorization": "Basic dXNlcjpwYXNz",
    "proxy-connection": "keep-alive",
}
# What workerd itself adds to a subrequest.
ADDED_BY_RUNTIME = {"host", "content-length", "accept-encoding", "cf-worker"}
IDENTITY = {"x-gateway-user-email", "x-gateway-user-sub", "x-gateway-user-groups", "cf-access-authenticated-user-email"}
BODY = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ping"}}'


@pytest.fixture(scope="module")
def echoed(_gateway):
    """One request carrying every header under test; what the origin got, and the client's answer."""
    token = _gateway.mint()
    headers = [
        *KEPT.items(),
        *DROPPED.items(),
        ("origin", "https://evil.example"),
        ("cf-access-client-id", "forged-id"),
        ("cf-access-client-secret", "forged-secret"),
    ]
    response = _gateway.call("POST", "/echo?cursor=a%2Fb&x=1", token, headers=headers, content=BODY)
    assert response.status_code == 200, response.text
    echo = response.json()
    names = [name for name, _ in echo["headers"]]
    assert len(names) == len(set(names)), f"a header arrived twice: {names}"
    return echo, dict(echo["headers"]), response


@pytest.mark.parametrize("name", KEPT)
def test_kept(echoed, name):
    _, received, _ = echoed
    assert received.get(name) == KEPT[name]


@pytest.mark.parametrize(
    "name", [*DROPPED, "authorization", "connection", "origin"]
)
def test_dropped(echoed, name):
    _, received, _ = echoed
    assert name not in received


def test_service_token_replaces_forged_values(echoed):
    _, received, _ = echoed
    assert (received["cf-access-client-id"], received["cf-access-client-secret"]) == (SERVICE_TOKEN_ID, SERVICE_TOKEN_SECRET)


def test_nothing_else_arrives(_gateway, echoed):
    """Method, path, query and body unchanged; the origin's own Host; no header beyond the rules."""
    echo, received, _ = echoed
    assert (echo["method"], echo["path"], echo["query"], echo["body"]) == ("POST", "/echo", "cursor=a%2Fb&x=1", BODY)
    assert received["host"] == urlsplit(_gateway.origin.base_url).netloc
    allowed = set(KEPT) | IDENTITY | ADDED_BY_RUNTIME | {"cf-access-client-id", "cf-access-client-secret"}
    assert set(received) - allowed == set()


def test_origin_response_headers_come_back(echoed):
    _, _, response = echoed
    assert response.headers["mcp-session-id"] == "echo-session"
    assert response.headers["x-fake-origin"] == "echo"


def test_hop_by_hop_response_headers_are_dropped(echoed):
    _, _, response = echoed
    assert "proxy-authenticate" not in response.headers


def test_a_browsers_request_gets_cors_headers_on_the_origins_answer(echoed):
    """The echoed request names its `Origin`, as a browser's does: the answer must be readable there."""
    _, _, response = echoed
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {name.strip() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {"mcp-session-id", "mcp-protocol-version", "www-authenticate"} <= exposed


@pytest.mark.parametrize("path", ["/echo", "/rpc"])
def test_other_clients_get_the_origins_answer_without_cors_headers(gateway, path):
    """Only a browser reads CORS headers; without `Origin` the answer is passed on as the origin
    made it (for /rpc, which has nothing to drop, not even re-wrapped)."""
    response = gateway.call("POST", path, gateway.mint(), headers={"content-type": "application/json"}, content=BODY)
    assert response.status_code == 200, response.text
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_stateless_discover_arrives_as_sent(gateway):
    """The 2026-07-28 revision is stateless: `server/discover` is a plain POST without a session;
    the gateway neither asks for one nor adds one."""
    body = '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}'
    sent = {"mcp-protocol-version": "2026-07-28", "mcp-method": "server/discover", "content-type": "application/json"}
    response = gateway.call("POST", "/echo", gateway.mint(), headers=sent, content=body)
    assert response.status_code == 200, response.text
    echo = response.json()
    received = dict(echo["headers"])
    assert (echo["method"], echo["body"]) == ("POST", body)
    assert {name: received.get(name) for name in sent} == sent
    assert "mcp-session-id" not in received


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_method_is_kept(gateway, method):
    response = gateway.call(method, "/echo", gateway.mint())
    assert response.status_code == 200
    assert response.json()["method"] == method


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_bearer_forwarded_unchanged_by_default(start_gateway, scheme):
    """FORWARD_BEARER defaults to true: the origin gets the client's Access JWT, exactly once, both
    when the token is validated and when the verified-token cache answers for it (the second call)."""
    edge = start_gateway()
    token = edge.mint()
    for _ in range(2):
        echo = edge.call("GET", "/echo", headers={"authorization": f"{scheme} {token}"}).json()
        assert [value for name, value in echo["headers"] if name == "authorization"] == [f"Bearer {token}"]


def test_origin_cookies_are_dropped_by_default(gateway):
    """The origin shares the gateway's hostname: by default none of its cookies reach the client."""
    response = gateway.call("GET", "/cookies", gateway.mint())
    assert response.status_code == 200
    assert response.headers.get_list("set-cookie") == []


def test_origin_cookies_forwarded_on_request_but_never_the_gateways_own(start_gateway):
    """FORWARD_ORIGIN_COOKIES=true passes the origin's cookies on, each as it was sent, but never one
    named like the gateway's own (consent and CSRF cookies the origin could plant or overwrite), one
    without a name, or one whose value reads as a gateway cookie (`=mcpgw_consent_x=…`)."""
    edge = start_gateway(FORWARD_ORIGIN_COOKIES="true")
    response = edge.call("GET", "/cookies", edge.mint())
    assert response.status_code == 200
    assert response.headers.get_list("set-cookie") == list(ORIGIN_COOKIES)
