"""The Workers' logs after the other edge tests (conftest.py runs this file last): one JSON line per
request, and not one of the tokens, codes, secrets or tool arguments the tests made or configured.

The fixture sends a few credentials itself, so these tests mean something when run alone; the
`audited` Worker reads MCP bodies (a policy and AUDIT_MCP_NAMES) and is sent tool calls whose
arguments look like secrets.
"""

import json
import re
import secrets
import time
from collections import Counter

import pytest
from edge_stack import RECORD_KEYS
from support.worker import ARGUMENT_MARKER, start_worker

# wrangler dev's own access line, e.g. "[wrangler:info] POST /mcp 401 Unauthorized (12ms)"
ACCESS_LINE = re.compile(r"\[wrangler:info\] ([A-Z]+) \S+ (\d{3}) ")


AUDIT_POLICY = '{"default": "allow", "rules": [{"effect": "deny", "tools": ["delete_*"]}]}'


@pytest.fixture(scope="module")
def audited(_gateway):
    worker = start_worker(
        _gateway.emulator, origin_url=_gateway.origin.base_url, PROXY_PATHS="/rpc",
        MCP_POLICY=AUDIT_POLICY, AUDIT_MCP_NAMES="true",
    )
    yield _gateway.__class__(_gateway.emulator, worker, _gateway.origin, set())
    worker.stop()


@pytest.fixture(params=["real", "gateway", "audited"])
def edge(request):
    edge = request.getfixturevalue(request.param)
    for tool in ("search", "delete_all"):  # one allowed, one denied
        argument = edge.remember(ARGUMENT_MARKER + secrets.token_hex(16))
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {"api_key": argument}}}
        edge.call("POST", "/rpc" if request.param == "audited" else None, edge.mint(), json=call)
    edge.initialize(edge.mint())
    edge.initialize(edge.unknown_kid_token())
    edge.initialize(edge.mint(aud="https://evil.example/callback"))
    edge.call("POST", params={"access_token": edge.mint()})
    edge.call("POST", data={"access_token": edge.mint(), "client_secret": edge.emulator.client_secret})
    return edge


def test_no_credential_or_secret_in_the_log(edge):
    log = edge.worker.log()
    leaked = [value for value in edge.sent | edge.worker_secrets() if value in log]
    # JWT segments too: a log that printed only a token's claims or signature would still leak it.
    segments = {s for token in edge.sent for s in token.split(".") if len(s) >= 40}
    leaked += [segment for segment in segments if segment in log]
    assert not leaked, f"{len(leaked)} credentials in the Worker's log, e.g. {leaked[0][:12]}…"
    assert len(edge.sent) >= 5
    assert ARGUMENT_MARKER not in log, "a tool argument appears in the Worker's log"


def test_json_lines_are_request_records(edge):
    """Every line the Worker prints that looks like JSON is JSON, and each request record names
    its route and status (and never carries headers, query or body)."""
    for line in edge.worker.log().splitlines():
        if line.startswith("{"):
            json.loads(line)
    records = edge.worker.request_log()
    assert records
    for record in records:
        assert record.keys() == RECORD_KEYS
        assert isinstance(record["status"], int) and isinstance(record["route"], str)
        assert ARGUMENT_MARKER not in json.dumps(record)


def test_one_record_per_request(gateway):
    """As many request records as wrangler's own access lines, status for status. (Only on this
    suite's own Worker: the shared one may still have streams open from other suites.)"""
    gateway.call("GET", "/echo", gateway.mint())
    deadline = time.monotonic() + 5  # wrangler prints its line once the answer is complete
    while True:
        ours = Counter((record["method"], record["status"]) for record in gateway.worker.request_log())
        theirs = Counter((method, int(status)) for method, status in ACCESS_LINE.findall(gateway.worker.log()))
        if ours == theirs or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ours == theirs


def test_request_log_errors_writes_only_the_failed_requests(start_gateway):
    """REQUEST_LOG=errors: a served request gets no line, a refused one its usual line, whatever
    the status (a policy denial is a JSON-RPC error in a 200)."""
    edge = start_gateway(REQUEST_LOG="errors", MCP_POLICY=AUDIT_POLICY)
    token = edge.mint()
    denied = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_all", "arguments": {}}}
    answers = [
        edge.call("GET", "/echo", token),
        edge.call("GET", "/echo"),
        edge.call("GET", "/echo", edge.unknown_kid_token()),
        edge.call("POST", None, token, json=denied),
    ]
    assert [answer.status_code for answer in answers] == [200, 401, 401, 200]
    assert answers[3].json()["error"]["code"] == -32003
    # The requests ran one after another, so a line for the first would precede the others'.
    deadline = time.monotonic() + 5  # wrangler relays the Worker's output with a delay
    while len(records := edge.worker.request_log()) < 3:
        assert time.monotonic() < deadline, edge.worker.log()
        time.sleep(0.2)
    assert [(r["route"], r["status"], r["decision"]) for r in records] == [
        ("mcp", 401, None),
        ("mcp", 401, None),
        ("mcp", 200, "deny"),
    ]
    assert records[0]["error"] and records[2]["error"]


def test_records_carry_the_declared_sizes_and_the_mcp_method_header(gateway):
    """Without a setting that reads the body, the record's MCP method is the `Mcp-Method`
    header's and its sizes are the declared `Content-Length`s, request and answer."""
    marker = secrets.token_hex(8)
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"cursor": marker}})
    answer = gateway.call("POST", "/echo", gateway.mint(), content=body, headers={"mcp-method": "tools/list"})
    assert answer.status_code == 200
    deadline = time.monotonic() + 5  # wrangler relays the Worker's output with a delay
    while not (records := [r for r in gateway.worker.request_log() if r["bytes_in"] == len(body)]):
        assert time.monotonic() < deadline, "no record of the request"
        time.sleep(0.2)
    (record,) = records
    assert record["mcp_method"] == "tools/list"
    assert record["bytes_out"] == len(answer.content) > 0  # the origin declared it
    assert record["origin_status"] == 200 and record["subject"]
