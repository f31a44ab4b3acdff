"""MCP_POLICY at the edge: who may call which tool, read which resource, get which prompt.

A Worker with a policy (`POLICY`) in front of the fake origin's JSON-RPC server (/rpc, with the
tools, resources and prompts of RPC_TOOLS, RPC_RESOURCES, RPC_PROMPTS). Identities are minted
with the email and groups each rule looks at. A denied call is answered by the Worker as a
JSON-RPC error (HTTP 200, code -32003, the request's id) and never reaches the origin, which
is checked by counting the origin's /rpc requests; allowed calls reach it byte for byte.
List answers come back with what the identity may not use removed, in JSON and in SSE.
"""

import base64
import gzip
import json
import secrets
import time

import httpx
import pytest
from edge_stack import EVENTS, INTERVAL_MS, assert_not_held_back, received_events
from support.fake_origin import RPC_NOTIFICATION
from support.worker import ARGUMENT_MARKER, start_worker

POLICY = {
    "default": "deny",
    "rules": [
        {"effect": "deny", "tools": ["delete_*"]},
        {"effect": "allow", "groups": ["finance"], "tools": ["*"], "resources": ["*"], "prompts": ["*"]},
        {
            "effect": "allow",
            "email_domains": ["example.com"],
            "tools": ["search", "get_*"],
            "resources": ["file:///public/*"],
            "prompts": ["summary"],
        },
        {"effect": "allow", "emails": ["auditor@partner.example"], "resources": ["file:///reports/*.pdf"]},
    ],
}
STAFF = {"email": "user@example.com", "groups": []}
FINANCE = {"email": "fin@corp.example", "groups": ["finance"]}
AUDITOR = {"email": "Auditor@Partner.example", "groups": []}  # emails match case-insensitively
OUTSIDER = {"email": "someone@else.example", "groups": ["engineering"]}
DENIED = -32003
MISMATCH = -32020
MCP_ACCEPT = "application/json, text/event-stream"
CALL_DELETE = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_all"}}'


@pytest.fixture(scope="module")
def policed(_gateway):
    """A Worker with POLICY, in front of the gateway's emulator and fake origin."""
    worker = start_worker(
        _gateway.emulator, origin_url=_gateway.origin.base_url, PROXY_PATHS="/rpc /echo /sse", MCP_POLICY=json.dumps(POLICY)
    )
    yield _gateway.__class__(_gateway.emulator, worker, _gateway.origin, _gateway.sent)
    worker.stop()


def call(method: str, name: str | None = None, id=1, **params) -> dict:
    """A JSON-RPC request; `name` goes where the method expects it (uri for resources/read)."""
    if name is not None:
        params["uri" if method.startswith("resources/") else "name"] = name
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params}


def post(edge, who: dict, body, *, sse: bool = False, headers: dict | None = None):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return edge.call(
        "POST",
        "/rpc?format=sse" if sse else "/rpc",
        edge.mint(**who),
        content=content,
        headers={"content-type": "application/json", "accept": MCP_ACCEPT, **(headers or {})},
    )


def origin_calls(edge) -> int:
    return sum(1 for request in edge.origin.requests() if request["path"] == "/rpc")


def assert_refused(edge, who: dict, body, code: int = DENIED, status: int = 200, **kwargs) -> dict | list:
    """The Worker answers a JSON-RPC error itself; the origin never sees the request."""
    before = origin_calls(edge)
    response = post(edge, who, body, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "www-authenticate" not in response.headers
    answer = response.json()
    for message in answer if isinstance(answer, list) else [answer]:
        assert message["jsonrpc"] == "2.0" and message["error"]["code"] == code, answer
        assert "result" not in message
    assert origin_calls(edge) == before, "a refused request reached the origin"
    return answer


def assert_allowed(edge, who: dict, body, **kwargs) -> dict:
    before = origin_calls(edge)
    response = post(edge, who, body, **kwargs)
    assert response.status_code == 200, response.text
    assert "error" not in response.json(), response.text
    assert origin_calls(edge) == before + 1
    return response.json()


@pytest.mark.parametrize(
    "who, method, name, allowed",
    [
        pytest.param(STAFF, "tools/call", "search", True, id="domain-exact-tool"),
        pytest.param(STAFF, "tools/call", "get_weather", True, id="domain-glob-tool"),
        pytest.param(STAFF, "tools/call", "admin_reset", False, id="domain-unlisted-tool-default-deny"),
        pytest.param(STAFF, "tools/call", "delete_all", False, id="deny-rule-first"),
        pytest.param(STAFF, "prompts/get", "summary", True, id="domain-prompt"),
        pytest.param(STAFF, "prompts/get", "incident_report", False, id="domain-unlisted-prompt"),
        pytest.param(STAFF, "resources/read", "file:///public/readme.md", True, id="domain-resource-glob"),
        pytest.param(STAFF, "resources/read", "file:///secret/keys.txt", False, id="domain-unlisted-resource"),
        pytest.param(FINANCE, "tools/call", "admin_reset", True, id="group-star"),
        pytest.param(FINANCE, "resources/read", "file:///secret/keys.txt", True, id="group-resource"),
        pytest.param(FINANCE, "tools/call", "delete_all", False, id="group-still-under-deny-rule"),
        pytest.param(AUDITOR, "resources/read", "file:///reports/q3.pdf", True, id="email-resource-glob"),
        pytest.param(AUDITOR, "resources/read", "file:///reports/q3.txt", False, id="email-glob-suffix"),
        pytest.param(AUDITOR, "tools/call", "search", False, id="email-no-tools"),
        pytest.param(OUTSIDER, "tools/call", "search", False, id="no-rule-default-deny"),
        pytest.param({"email": "user@example.com.evil", "groups": ["finance-x"]}, "tools/call", "search", False, id="lookalikes"),
    ],
)
def test_policy_decides_per_identity_and_name(policed, who, method, name, allowed):
    body = call(method, name, id=41, arguments={"q": "x"})
    if allowed:
        answer = assert_allowed(policed, who, body)
        assert answer == {"jsonrpc": "2.0", "id": 41, "result": {"method": method, "name": name}}
    else:
        answer = assert_refused(policed, who, body)
        assert answer["id"] == 41


@pytest.mark.parametrize("method", ["initialize", "ping", "tools/list", "resources/templates/list"])
def test_methods_naming_nothing_pass_for_anyone(policed, method):
    assert_allowed(policed, OUTSIDER, call(method))


def test_denial_is_a_json_rpc_error_with_the_request_id(policed):
    answer = assert_refused(policed, STAFF, call("tools/call", "admin_reset", id="req-ab-7"))
    assert answer["id"] == "req-ab-7"
    assert answer["error"]["message"].startswith("Forbidden")
    assert set(answer) == {"jsonrpc", "id", "error"}


def test_a_call_that_names_nothing_is_denied(policed):
    assert_refused(policed, FINANCE, {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {}})


def test_batch_with_one_denied_member_is_denied_whole(policed):
    batch = [
        call("tools/call", "search", id=1),
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
        call("tools/call", "delete_all", id="two"),
        call("ping", id=3),
    ]
    answer = assert_refused(policed, STAFF, batch)
    assert [message["id"] for message in answer] == [1, "two", 3]
    assert_allowed(policed, STAFF, [batch[0], batch[3]])


def names(answer: dict, key: str) -> list[str]:
    return [entry["name" if key != "resources" else "uri"] for entry in answer["result"][key]]


LISTS = [
    pytest.param(STAFF, "tools/list", "tools", ["search", "get_weather"], id="tools-domain"),
    pytest.param(FINANCE, "tools/list", "tools", ["search", "get_weather", "admin_reset"], id="tools-group"),
    pytest.param(OUTSIDER, "tools/list", "tools", [], id="tools-nobody"),
    pytest.param(AUDITOR, "resources/list", "resources", ["file:///reports/q3.pdf"], id="resources-email"),
    pytest.param(STAFF, "prompts/list", "prompts", ["summary"], id="prompts-domain"),
]


@pytest.mark.parametrize("who, method, key, expected", LISTS)
def test_json_lists_are_filtered_and_nothing_else_changes(policed, who, method, key, expected):
    answer = assert_allowed(policed, who, call(method, id=9))
    assert names(answer, key) == expected
    assert answer["id"] == 9 and answer["result"]["nextCursor"] == "page-2"
    assert answer["result"]["_meta"] == {"origin": "fake"}
    fields = {"tools": {"name", "description", "inputSchema"}, "prompts": {"name", "description"}, "resources": {"uri", "name"}}
    assert all(set(entry) == fields[key] for entry in answer["result"][key]), "entries are kept whole"


def test_json_batch_of_lists_is_filtered_per_member(policed):
    response = post(policed, STAFF, [call("tools/list", id=1), call("prompts/list", id=2), call("ping", id=3)])
    assert response.status_code == 200
    first, second, third = response.json()
    assert names(first, "tools") == ["search", "get_weather"]
    assert names(second, "prompts") == ["summary"]
    assert third["result"] == {"method": "ping", "name": None}


def sse_events(text: str) -> list[str]:
    return [event for event in text.replace("\r\n", "\n").split("\n\n") if event]


@pytest.mark.parametrize("who, method, key, expected", LISTS)
def test_sse_lists_are_filtered_event_by_event(policed, who, method, key, expected):
    response = post(policed, who, call(method, id=9), sse=True)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    # The other events come through unchanged and in order; the answer keeps its id and type.
    assert events[:2] == [f"event: message\ndata: {json.dumps(RPC_NOTIFICATION)}", ": a comment the gateway must keep"]
    assert len(events) == 3
    lines = events[2].split("\n")
    assert lines[:2] == ["id: 7", "event: message"] and lines[2].startswith("data: ") and len(lines) == 3
    answer = json.loads(lines[2].removeprefix("data: "))
    assert names(answer, key) == expected
    assert answer["id"] == 9 and answer["result"]["nextCursor"] == "page-2"


def test_sse_answer_not_a_list_is_untouched(policed):
    response = post(policed, STAFF, call("tools/call", "search", id=4), sse=True)
    answer = json.loads(sse_events(response.text)[2].split("\n")[2].removeprefix("data: "))
    assert answer == {"jsonrpc": "2.0", "id": 4, "result": {"method": "tools/call", "name": "search"}}


def b64_header(value: str) -> str:
    return "=?base64?" + base64.b64encode(value.encode()).decode() + "?="


@pytest.mark.parametrize(
    "headers, body_name",
    [
        pytest.param({"mcp-method": "tools/call", "mcp-name": "search"}, "delete_all", id="name-differs"),
        pytest.param({"mcp-method": "tools/call", "mcp-name": "search"}, "admin_reset", id="harmless-header-hides-call"),
        pytest.param({"mcp-method": "prompts/get", "mcp-name": "search"}, "search", id="method-differs"),
        pytest.param({"mcp-method": "tools/call", "mcp-name": b64_header("search")}, "get_weather", id="base64-differs"),
        pytest.param({"mcp-method": "tools/call", "mcp-name": "=?base64?***?="}, "search", id="base64-invalid"),
        pytest.param({"mcp-name": "search"}, "search", id="name-without-method"),
    ],
)
def test_header_body_mismatch_is_refused_before_the_origin(policed, headers, body_name):
    # Finance may call every tool named here: the refusal is the mismatch, not the policy.
    answer = assert_refused(policed, FINANCE, call("tools/call", body_name, id=12), code=MISMATCH, status=400, headers=headers)
    assert answer["error"]["message"].startswith("Header mismatch")


def test_base64_mcp_name_agreeing_with_the_body_is_decided_on(policed):
    headers = {"mcp-method": "tools/call", "mcp-name": b64_header("get_weather")}
    assert_allowed(policed, STAFF, call("tools/call", "get_weather"), headers=headers)
    headers = {"mcp-method": "tools/call", "mcp-name": b64_header("admin_reset")}
    assert_refused(policed, STAFF, call("tools/call", "admin_reset"), headers=headers)
    # Non-ASCII names survive the round trip.
    headers = {"mcp-method": "tools/call", "mcp-name": b64_header("get_météo")}
    assert_allowed(policed, STAFF, call("tools/call", "get_météo"), headers=headers)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b"42"], ids=["garbage", "empty-batch", "number"])
def test_unparseable_body_is_a_parse_error_never_forwarded(policed, body):
    answer = assert_refused(policed, STAFF, body, code=-32700, status=400)
    assert answer["id"] is None


def test_body_reaches_the_origin_byte_for_byte(policed):
    body = (
        b'  {"params" : {"arguments":{"q":"caf\\u00e9 \xc3\xa9\\n","n":1.50E+2},\t"name":"search"},\r\n'
        b'"method":"tools/call",   "id":"x",\n"jsonrpc":"2.0"}\n\n'
    )
    assert_allowed(policed, STAFF, body)
    assert policed.origin.rpc_bodies()[-1] == body


def test_oversized_body_is_refused_when_the_policy_needs_it(policed):
    before = origin_calls(policed)
    big = json.dumps(call("tools/call", "search", arguments={"blob": "x" * (1024 * 1024)})).encode()
    response = post(policed, STAFF, big)
    assert response.status_code == 413, response.text
    assert origin_calls(policed) == before


# The Worker refuses these before the upload ends, then reads and discards the rest behind
# its answer: refused by cancelling the upload instead, most of them lost their answer to a
# connection reset under wrangler dev.
REFUSED_UPLOADS = {
    "mcp": ("/rpc", "application/json", 413, "request body too large"),
    "token": ("/token", "application/x-www-form-urlencoded", 413, "request body too large"),
    "register, wrong media type": ("/register", "text/plain", 415, "the body must be application/json"),
}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("path, media_type, status, description", REFUSED_UPLOADS.values(), ids=REFUSED_UPLOADS.keys())
def test_every_refused_upload_gets_its_whole_answer(policed, framing, path, media_type, status, description):
    """Six 4 MiB uploads, each on a connection of its own: every one gets the complete answer."""
    body = b"x" * (4 * 1024 * 1024)
    headers = {"content-type": media_type, "accept": MCP_ACCEPT, "authorization": f"Bearer {policed.mint(**STAFF)}"}
    before = origin_calls(policed)
    for _ in range(6):
        content = body if framing == "content-length" else (body[i : i + 65536] for i in range(0, len(body), 65536))
        with httpx.Client(timeout=30) as client:  # a safety bound, not a measurement
            response = client.post(policed.worker.url + path, content=content, headers=headers)
        assert ("transfer-encoding" in response.request.headers) == (framing == "chunked")
        # httpx raises on an answer cut short; wrangler dev gzips it (chunked) for httpx.
        assert response.status_code == status, response.text
        assert response.json() == {"error": "invalid_request", "error_description": description}
    assert origin_calls(policed) == before


def test_without_mcp_settings_the_body_is_not_read(gateway):
    """No policy, audit or rate limit: a body over the 1 MiB cap still streams to the origin."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all","arguments":{"blob":"' + b"y" * (2 * 1024 * 1024) + b'"}}}'
    response = gateway.call(
        "POST", "/echo", gateway.mint(), content=body, headers={"content-type": "application/json", "mcp-method": "tools/call", "mcp-name": "x"}
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["body"].encode() == body


def test_without_mcp_settings_a_get_with_a_body_is_the_clients_mistake(gateway):
    """fetch() cannot send it on: a 400, not an origin failure (502), and the origin is not asked."""
    before = len(gateway.origin.requests())
    response = gateway.call("GET", "/echo", gateway.mint(), content=CALL_DELETE, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert len(gateway.origin.requests()) == before


def test_audit_lines_name_identity_call_and_decision(policed):
    """One line per request with who, what (method and name, never arguments) and the decision."""
    email = f"audit-{secrets.token_hex(4)}@example.com"
    who = {"email": email, "groups": []}
    secret_argument = policed.remember(ARGUMENT_MARKER + secrets.token_hex(16))
    post(policed, who, call("tools/call", "search", arguments={"api_key": secret_argument}))
    post(policed, who, call("tools/call", "admin_reset", arguments={"api_key": secret_argument}))
    post(policed, who, call("tools/call", "search"), headers={"mcp-method": "tools/call", "mcp-name": "get_weather"})
    post(policed, who, b"{not json")
    post(policed, who, call("tools/list", id=2))
    records = [r for r in policed.worker.request_log() if r["email"] == email]
    summary = [(r["mcp_method"], r["mcp_name"], r["decision"], r["status"], r["origin_status"]) for r in records]
    assert summary == [
        ("tools/call", "search", "allow", 200, 200),
        ("tools/call", "admin_reset", "deny", 200, None),
        ("tools/call", None, "header_mismatch", 400, None),
        (None, None, None, 400, None),  # refused, but not decided on: the error says why
        ("tools/list", None, "allow", 200, 200),
    ]
    for record in records:
        assert record["route"] == "mcp" and record["subject"] and isinstance(record["time"], int)
    assert records[3]["error"]
    assert records[0]["bytes_in"] > 0
    assert secret_argument not in policed.worker.log()


# --- One reading: the gateway decides only on what the origin reads the same way -------------
# (docs/mcp-policy.md, "One reading"; the differential suite in tests/differential
# proves the same against real SDK origins, with their own logs as the ground truth.)

def raw(edge, who: dict, method: str, body: bytes | None, headers: dict, path: str = "/rpc") -> httpx.Response:
    return edge.call(method, path, edge.mint(**who), content=body, headers={"accept": MCP_ACCEPT, **headers})


@pytest.mark.parametrize(
    "method, body, headers, status",
    [
        pytest.param("PUT", CALL_DELETE, {"content-type": "application/json"}, 405, id="put"),
        pytest.param("PATCH", CALL_DELETE, {"content-type": "application/json"}, 405, id="patch"),
        pytest.param("DELETE", CALL_DELETE, {"content-type": "application/json"}, 400, id="delete-with-body"),
        pytest.param("GET", CALL_DELETE, {"content-type": "application/json"}, 400, id="get-with-body"),
        pytest.param("POST", CALL_DELETE.decode().encode("utf-16"), {"content-type": "application/json; charset=utf-16"}, 415, id="utf-16"),
        pytest.param(
            "POST",
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","x":"+ACIALAAi-name+ACI-:+ACI-delete_all"}}',
            {"content-type": "application/json; charset=utf-7"},
            415,
            id="utf-7-smuggles-a-second-name",
        ),
        pytest.param("POST", CALL_DELETE, {"content-type": "application/json; charset=utf-8; charset=utf-7"}, 415, id="two-charsets"),
        pytest.param("POST", CALL_DELETE, {"content-type": "text/plain"}, 415, id="text-plain"),
        pytest.param("POST", CALL_DELETE, {}, 415, id="no-content-type"),
        pytest.param("POST", gzip.compress(CALL_DELETE), {"content-type": "application/json", "content-encoding": "gzip"}, 415, id="gzip"),
    ],
)
def test_requests_the_origin_may_read_otherwise_are_refused_unread(policed, method, body, headers, status):
    before = origin_calls(policed)
    response = raw(policed, FINANCE, method, body, headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "error" in response.json()
    if status == 405:
        assert response.headers["allow"] == "GET, POST, DELETE, OPTIONS"
    assert origin_calls(policed) == before, "a request the gateway could not read reached the origin"


@pytest.mark.parametrize("charset", ["", "; charset=utf-8", '; charset="UTF-8"'])
def test_utf8_json_bodies_are_read_and_forwarded(policed, charset):
    body = json.dumps(call("tools/call", "search", id=2)).encode()
    answer = assert_allowed(policed, STAFF, body, headers={"content-type": f"application/json{charset}"})
    assert answer["result"]["name"] == "search"
    assert policed.origin.rpc_bodies()[-1] == body


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","Name":"delete_all"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","NAME":"delete_all"}}',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","na\u017fe":1,"nase":2}}'.encode(),
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"tools/list","params":{"name":"search"}}',
    ],
    ids=["Name", "NAME", "long-s", "Method"],
)
def test_names_equal_under_case_folding_are_a_parse_error(policed, body):
    """Go's encoding/json takes `Name` (and ſ for s, K for k) for `name`, the last one winning."""
    answer = assert_refused(policed, FINANCE, body, code=-32700, status=400)
    assert answer["id"] is None


@pytest.mark.parametrize(
    "uri",
    [
        "file:///reports/../secret/keys.txt",
        "file:///reports/%2e%2e/secret/keys.txt",
        "file:///public/%2E%2e/secret/keys.txt",
        "file:///public/./readme.md",
        "FILE:///secret/keys.txt",
        "file://localhost/secret/keys.txt",
        "file:///public/a b.md",
    ],
)
@pytest.mark.parametrize("method", ["resources/read", "resources/subscribe"])
def test_resource_uris_in_another_spelling_are_refused(policed, uri, method):
    """The SDK origins resolve these to another resource than the one the policy saw."""
    answer = assert_refused(policed, FINANCE, call(method, uri, id="u"), code=-32602)
    assert answer["id"] == "u"


@pytest.mark.parametrize(
    "who, reference, allowed",
    [
        pytest.param(STAFF, {"type": "ref/prompt", "name": "summary"}, True, id="allowed-prompt"),
        pytest.param(STAFF, {"type": "ref/prompt", "name": "incident_report"}, False, id="denied-prompt"),
        pytest.param(STAFF, {"type": "ref/resource", "uri": "file:///public/{name}"}, True, id="allowed-template"),
        pytest.param(STAFF, {"type": "ref/resource", "uri": "file:///secret/{name}"}, False, id="denied-template"),
        pytest.param(FINANCE, {"type": "ref/tool", "name": "search"}, False, id="unknown-reference"),
    ],
)
def test_completions_are_decided_like_what_they_complete(policed, who, reference, allowed):
    body = {"jsonrpc": "2.0", "id": 3, "method": "completion/complete", "params": {"ref": reference, "argument": {"name": "n", "value": ""}}}
    if allowed:
        assert_allowed(policed, who, body)
    else:
        assert_refused(policed, who, body)


def test_subscriptions_are_decided_like_reads(policed):
    assert_allowed(policed, STAFF, call("resources/subscribe", "file:///public/readme.md"))
    assert_refused(policed, STAFF, call("resources/subscribe", "file:///secret/keys.txt"))


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("spelling", ["-0", "1.0", "1e0", "1E+0", "12345678901234567890123"])
def test_lists_are_filtered_whatever_the_id_spelling(policed, sse, spelling):
    """The origin echoes the id as it read it (0, 1.0, …): the answer is still the list's."""
    body = f'{{"jsonrpc": "2.0", "id": {spelling}, "method": "tools/list"}}'.encode()
    response = post(policed, STAFF, body, sse=sse)
    assert response.status_code == 200, response.text
    answer = json.loads(sse_events(response.text)[-1].split("data: ", 1)[1]) if sse else response.json()
    assert names(answer, "tools") == ["search", "get_weather"]


def test_batch_lists_are_filtered_whatever_the_id_spelling(policed):
    body = b'[{"jsonrpc": "2.0", "id": -0, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 1e0, "method": "prompts/list"}]'
    first, second = post(policed, STAFF, body).json()
    assert names(first, "tools") == ["search", "get_weather"]
    assert names(second, "prompts") == ["summary"]


@pytest.mark.parametrize("line_end", ["lf", "crlf", "cr"])
def test_sse_lists_are_filtered_whatever_the_line_ends(policed, line_end):
    response = policed.call(
        "POST", f"/rpc?format=sse&line_end={line_end}", policed.mint(**STAFF),
        content=json.dumps(call("tools/list", id=9)), headers={"content-type": "application/json", "accept": MCP_ACCEPT},
    )
    assert response.status_code == 200
    datas = [line.removeprefix("data: ") for line in response.text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.startswith("data: ")]
    answer = json.loads(datas[-1])
    assert names(answer, "tools") == ["search", "get_weather"]
    assert "delete_all" not in response.text and "admin_reset" not in response.text


def test_a_filtered_stream_delivers_each_event_as_the_origin_sends_it(policed):
    """A GET stream goes through the list filter (a replay may carry list answers), event by
    event: none is held back until the next one exists."""
    stream_id = secrets.token_hex(8)
    url = f"{policed.worker.url}/sse?n={EVENTS}&interval_ms={INTERVAL_MS}&id={stream_id}"
    headers = {"authorization": f"Bearer {policed.mint(**STAFF)}", "accept": "text/event-stream"}
    with policed.http.stream("GET", url, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        events = received_events(response)
    assert_not_held_back(events, policed.origin.sse_sends(stream_id))


def test_a_client_leaving_a_filtered_stream_ends_the_origins(policed):
    """The origin would send 1,000 events, one every 20 ms; the client reads two and leaves. The
    origin's stream must end then, not be drained for nobody. (Today the runtime ends it: it
    cancels what a request that ended was reading, the filter's loop included.)"""
    stream_id, total = secrets.token_hex(8), 1000
    url = f"{policed.worker.url}/sse?n={total}&interval_ms=20&id={stream_id}"
    headers = {"authorization": f"Bearer {policed.mint(**STAFF)}", "accept": "text/event-stream"}
    with policed.http.stream("GET", url, headers=headers, timeout=10) as response:
        assert len(received_events(response, limit=2)) == 2
    sent = len(policed.origin.sse_sends(stream_id))
    for _ in range(20):  # until the origin has stopped: no event in a second
        time.sleep(1)
        sent, before = len(policed.origin.sse_sends(stream_id)), sent
        if sent == before:
            break
    assert sent == before < total // 2, f"the origin went on sending after the client left ({sent} events)"


def test_templates_are_filtered_by_their_uri_template(policed):
    answer = assert_allowed(policed, STAFF, call("resources/templates/list", id=4))
    assert [t["uriTemplate"] for t in answer["result"]["resourceTemplates"]] == ["file:///public/{name}"]


def test_a_list_answer_that_cannot_be_read_is_never_passed(policed):
    response = policed.call(
        "POST", "/rpc?corrupt=1", policed.mint(**STAFF),
        content=json.dumps(call("tools/list", id=9)), headers={"content-type": "application/json", "accept": MCP_ACCEPT},
    )
    assert response.status_code == 502, response.text
    assert "delete_all" not in response.text
    with httpx.Client(timeout=30) as client:  # a safety bound, not a measurement
        with client.stream(
            "POST", policed.worker.url + "/rpc?corrupt=1&format=sse",
            content=json.dumps(call("tools/list", id=9)),
            headers={"content-type": "application/json", "accept": MCP_ACCEPT, "authorization": f"Bearer {policed.mint(**STAFF)}"},
        ) as stream:
            received = b""
            try:
                for chunk in stream.iter_bytes():
                    received += chunk
            except httpx.HTTPError:
                pass  # the stream breaks off: that is the point
    assert b"delete_all" not in received and b"admin_reset" not in received
    assert b"a comment the gateway must keep" in received, "the events before it came through"


def test_2026_lists_are_marked_private_and_keep_their_ttl(policed):
    response = policed.call(
        "POST", "/rpc?modern=1", policed.mint(**FINANCE),
        content=json.dumps(call("prompts/list", id=5)), headers={"content-type": "application/json", "accept": MCP_ACCEPT},
    )
    result = response.json()["result"]
    assert result["cacheScope"] == "private" and result["ttlMs"] == 60000
    assert [p["name"] for p in result["prompts"]] == ["summary", "incident_report"], "nothing removed, still private"
