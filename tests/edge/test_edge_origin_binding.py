"""A private origin: MCP traffic goes through the ORIGIN_SERVICE binding (a Workers VPC service in
production) instead of fetch() to ORIGIN_URL.

The Worker runs under workerd directly (support/workerd.py) with the fake origin bound as an
external service, the way a VPC service binding reaches a service behind a Tunnel, and ORIGIN_URL
naming a host that never resolves (`mcp-origin.invalid`): every answer that came from the origin
came through the binding. `private` (conftest.py) withholds the bearer without an origin service
token, which only a private origin may; `private_policed` forwards the bearer and has an
MCP_POLICY. Everything else must be what the public path does: JSON and SSE answers, the identity
headers, the timeouts and failures, policy and list filtering, and the log line, which names the
binding whenever the origin was asked. The streaming tests (test_edge_streaming.py) run on both.
"""

import json
import secrets
import time

import httpx
import pytest
from edge_stack import (
    FORGED,
    IDENTITY_HEADERS,
    MCP_ACCEPT,
    ORIGIN_TIMEOUT_SECONDS,
    RECORD_KEYS,
    USER_EMAIL,
    USER_GROUP,
    EdgeStack,
)
from support.fake_origin import FAKE_PATHS, RPC_NOTIFICATION
from support.workerd import PRIVATE_ORIGIN_HOST, PRIVATE_ORIGIN_URL, start_worker_in_workerd

BINDING = "ORIGIN_SERVICE"
POLICY = {"default": "allow", "rules": [{"effect": "deny", "tools": ["delete_*", "admin_*"]}]}
LOG_WAIT = 10.0  # seconds; workerd may print a request's line a moment after its answer


@pytest.fixture(scope="module")
def private_policed(_gateway, sent):
    """The gateway's fake origin through the binding, the bearer forwarded, and an MCP_POLICY."""
    worker = start_worker_in_workerd(
        _gateway.emulator,
        origin_url=PRIVATE_ORIGIN_URL,
        origin_service=_gateway.origin.base_url,
        TOKEN_MODE="passthrough",
        PROXY_PATHS=" ".join(FAKE_PATHS),
        MCP_POLICY=json.dumps(POLICY),
    )
    edge = EdgeStack(_gateway.emulator, worker, _gateway.origin, sent.setdefault(worker.url, set()))
    yield edge
    edge.http.close()
    worker.stop()


def rpc(edge: EdgeStack, token: str, body: dict, *, sse: bool = False) -> httpx.Response:
    return edge.call(
        "POST",
        "/rpc?format=sse" if sse else "/rpc",
        token,
        json=body,
        headers={"accept": MCP_ACCEPT, "mcp-protocol-version": "2025-11-25"},
    )


def call(method: str, name: str | None = None, id=1) -> dict:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": {} if name is None else {"name": name}}


def logged(edge: EdgeStack, count: int, **fields) -> list[dict]:
    """The Worker's log lines with these `fields`, once there are `count` of them (polled for up
    to LOG_WAIT), else those there are: the caller's assertion says what is missing."""
    deadline = time.monotonic() + LOG_WAIT
    while True:
        found = [r for r in edge.worker.request_log() if all(r[k] == v for k, v in fields.items())]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def origin_requests(edge: EdgeStack, since: int) -> list[dict]:
    return edge.origin.requests()[since:]


def test_json_answers_come_through_the_binding_with_the_urls_host(private):
    """The same token twice: the first request validates it (the awaited path), the second is
    served by the synchronous start. Both reach the origin through the binding, carrying the Host
    ORIGIN_URL names and the client's path and query, and both log lines name the binding."""
    email = f"json-{secrets.token_hex(4)}@example.com"
    token = private.mint(email=email)
    seen = len(private.origin.requests())
    answers = [rpc(private, token, call("tools/call", "search", id=n)) for n in (1, 2)]
    for n, answer in enumerate(answers, 1):
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"jsonrpc": "2.0", "id": n, "result": {"method": "tools/call", "name": "search"}}
    arrived = origin_requests(private, seen)
    assert [(r["method"], r["path"], dict(r["headers"])["host"]) for r in arrived] == [("POST", "/rpc", PRIVATE_ORIGIN_HOST)] * 2
    records = logged(private, 2, email=email)
    assert [(r["status"], r["decision"], r["origin_status"], r["origin_binding"], r["error"]) for r in records] == [
        (200, "allow", 200, BINDING, None)
    ] * 2
    assert all(record.keys() == RECORD_KEYS for record in records)
    query = private.call("GET", "/echo?a=1&b=two", token).json()
    assert (query["path"], query["query"]) == ("/echo", "a=1&b=two")


def test_identity_headers_and_no_bearer(private):
    """FORWARD_BEARER=false, and no service token: a private origin trusts the identity headers
    the gateway sets, and forged ones never arrive."""
    token = private.mint()
    response = private.call("GET", "/echo", token, headers=FORGED)
    assert response.status_code == 200, response.text
    received = response.json()["headers"]
    identity = {name: [v for n, v in received if n == name] for name in IDENTITY_HEADERS}
    assert identity == {
        "x-gateway-user-email": [USER_EMAIL],
        "x-gateway-user-sub": [private.claims()["sub"]],
        "x-gateway-user-groups": [f'["{USER_GROUP}"]'],
        "cf-access-authenticated-user-email": [USER_EMAIL],
    }
    names = {n for n, _ in received}
    assert "authorization" not in names
    assert not {n for n in names if n.startswith(("x-gateway-", "cf-access-"))} - set(IDENTITY_HEADERS)


def test_the_bearer_goes_on_unchanged_when_forwarded(private_policed):
    token = private_policed.mint()
    received = private_policed.call("GET", "/echo", token).json()["headers"]
    assert [v for n, v in received if n == "authorization"] == [f"Bearer {token}"]


def test_origin_down_is_502_and_the_log_says_why(private):
    email = f"down-{secrets.token_hex(4)}@example.com"
    token = private.mint(email=email)
    private.origin.stop()
    try:
        response = private.call("GET", "/echo", token)
    finally:
        private.origin.restart()
    assert response.status_code == 502, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert "origin" not in response.text.lower() and "binding" not in response.text.lower()
    (record,) = logged(private, 1, email=email)
    assert (record["status"], record["origin_binding"], record["origin_status"]) == (502, BINDING, None)
    # What the binding threw follows the fixed reason: the runtime's words, not the request's.
    assert record["error"].startswith("upstream Unavailable: could not reach the origin ("), record["error"]


def test_origin_silent_is_504(private):
    email = f"silent-{secrets.token_hex(4)}@example.com"
    started = time.monotonic()
    response = private.call("GET", f"/slow?seconds={ORIGIN_TIMEOUT_SECONDS + 2}", private.mint(email=email))
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert ORIGIN_TIMEOUT_SECONDS - 0.1 <= elapsed < ORIGIN_TIMEOUT_SECONDS + 1.5, elapsed
    (record,) = logged(private, 1, email=email)
    assert (record["origin_binding"], record["error"]) == (BINDING, "upstream Timeout: origin did not answer in time")


def test_a_policy_refusal_never_reaches_the_binding(private_policed):
    email = f"deny-{secrets.token_hex(4)}@example.com"
    token = private_policed.mint(email=email)
    seen = len(private_policed.origin.requests())
    refused = rpc(private_policed, token, call("tools/call", "delete_all", id=7))
    assert refused.status_code == 200 and refused.json()["error"]["code"] == -32003, refused.text
    assert origin_requests(private_policed, seen) == []
    allowed = rpc(private_policed, token, call("tools/call", "search", id=8))
    assert allowed.json()["result"] == {"method": "tools/call", "name": "search"}
    assert len(origin_requests(private_policed, seen)) == 1
    records = logged(private_policed, 2, email=email)
    assert [(r["mcp_name"], r["decision"], r["origin_binding"]) for r in records] == [
        ("delete_all", "deny", None),
        ("search", "allow", BINDING),
    ]


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
def test_lists_are_filtered_through_the_binding(private_policed, sse):
    answer = rpc(private_policed, private_policed.mint(), call("tools/list", id=9), sse=sse)
    assert answer.status_code == 200
    if sse:
        events = [event for event in answer.text.replace("\r\n", "\n").split("\n\n") if event]
        assert events[:2] == [f"event: message\ndata: {json.dumps(RPC_NOTIFICATION)}", ": a comment the gateway must keep"]
        message = json.loads(events[2].split("\n")[2].removeprefix("data: "))
    else:
        message = answer.json()
    assert [tool["name"] for tool in message["result"]["tools"]] == ["search", "get_weather"]


def test_a_refused_token_is_logged_without_the_binding(private):
    request_id = secrets.token_hex(8)  # local workerd passes a client's cf-ray on as the request id
    private.initialize(private.unknown_kid_token(), headers={"cf-ray": request_id})
    (record,) = logged(private, 1, request_id=request_id)
    assert (record["status"], record["origin_binding"], record["origin_status"]) == (401, None, None)


def test_the_unresolvable_url_alone_reaches_nothing(_gateway, sent):
    """The control: without the binding, the same kind of ORIGIN_URL (https, as the public path
    requires) is a 502 whose log line carries what fetch threw, so the passes above came through
    the binding."""
    worker = start_worker_in_workerd(
        _gateway.emulator, origin_url=f"https://{PRIVATE_ORIGIN_HOST}", TOKEN_MODE="passthrough", PROXY_PATHS="/echo"
    )
    try:
        edge = EdgeStack(_gateway.emulator, worker, _gateway.origin, sent.setdefault(worker.url, set()))
        response = edge.call("GET", "/echo", edge.mint())
        assert response.status_code == 502, response.text
        (record,) = logged(edge, 1, route="mcp")
        assert record["origin_binding"] is None
        assert record["error"].startswith("upstream Unavailable: could not reach the origin ("), record["error"]
    finally:
        worker.stop()


def test_a_name_bound_to_something_without_fetch_is_a_500_naming_it(_gateway):
    """ORIGIN_SERVICE declared as a [vars] string instead of a binding."""
    worker = start_worker_in_workerd(_gateway.emulator, origin_url=PRIVATE_ORIGIN_URL, ORIGIN_SERVICE="vpc-service-id")
    try:
        response = httpx.get(worker.url + "/.well-known/oauth-protected-resource", timeout=10)
        assert response.status_code == 500
        description = response.json()["error_description"]
        assert description.startswith("the gateway is misconfigured: ORIGIN_SERVICE is bound to something without fetch")
        assert "vpc-service-id" not in response.text
    finally:
        worker.stop()
