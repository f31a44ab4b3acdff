"""The Workers' logs after the other edge tests (conftest.py runs this file last): one JSON line per
request, and not one of the tokens, codes or secrets the tests made or configured.

The fixture sends a few credentials itself, so these tests mean something when run alone.
"""

import json
import re
import time
from collections import Counter

import pytest

# wrangler dev's own access line, e.g. "[wrangler:info] POST /mcp 401 Unauthorized (12ms)"
ACCESS_LINE = re.compile(r"\[wrangler:info\] ([A-Z]+) \S+ (\d{3}) ")


@pytest.fixture(params=["real", "gateway"])
def edge(request):
    edge = request.getfixturevalue(request.param)
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


def test_json_lines_are_request_records(edge):
    """Every line the Worker prints that looks like JSON is JSON, and each request record names
    its route and status (and never carries headers, query or body)."""
    for line in edge.worker.log().splitlines():
        if line.startswith("{"):
            json.loads(line)
    records = edge.worker.request_log()
    assert records
    for record in records:
        assert record.keys() == {"request_id", "method", "route", "status", "duration_ms", "subject", "mcp_method", "error"}
        assert isinstance(record["status"], int) and isinstance(record["route"], str)


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
