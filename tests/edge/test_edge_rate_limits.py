"""Rate limits through the Workers Rate Limiting binding (MCP_RATE_LIMITER), under wrangler dev.

The Workers here declare the binding with LIMIT requests per 10 seconds (`start_worker(rate_limit=)`).
A request over the limit is answered by the Worker (429, Retry-After, a JSON-RPC error with the
request's id) and never reaches the origin; the count is per identity (the token's subject), or
per identity and tool with RATE_LIMIT_BY_TOOL. Waits are bounded polls with generous timeouts:
the binding's window is not aligned to the test, so only "refused at some point, free again later"
is asserted, never how fast.
"""

import json
import secrets
import time

import pytest
from support.stack import eventually
from support.worker import start_worker

LIMIT = 3
PERIOD_SECONDS = 10
BURST = 40  # far more than LIMIT: the window may roll over once during a burst
FREED_TIMEOUT = 6 * PERIOD_SECONDS
RATE_LIMITED = -32029


def start(gateway, **settings):
    return start_worker(
        gateway.emulator, origin_url=gateway.origin.base_url, rate_limit=LIMIT, PROXY_PATHS="/rpc",
        RATE_LIMIT_PERIOD_SECONDS=str(PERIOD_SECONDS), **settings,
    )


@pytest.fixture(scope="module")
def limited(_gateway):
    worker = start(_gateway)
    yield _gateway.__class__(_gateway.emulator, worker, _gateway.origin, _gateway.sent)
    worker.stop()


@pytest.fixture(scope="module")
def per_tool(_gateway):
    worker = start(_gateway, RATE_LIMIT_BY_TOOL="true")
    yield _gateway.__class__(_gateway.emulator, worker, _gateway.origin, _gateway.sent)
    worker.stop()


def tool_call(name: str, id) -> dict:
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name}}


def origin_calls(edge) -> int:
    return sum(1 for request in edge.origin.requests() if request["path"] == "/rpc")


def send(edge, token: str, tool: str = "search", id=1):
    return edge.call("POST", "/rpc", token, json=tool_call(tool, id), headers={"accept": "application/json, text/event-stream"})


def until_refused(edge, token: str, tool: str = "search"):
    """Sends calls until one is refused; that answer (after checking the origin never saw it)."""
    for n in range(BURST):
        before = origin_calls(edge)
        response = send(edge, token, tool, id=f"call-{n}")
        if response.status_code == 429:
            assert origin_calls(edge) == before, "a rate-limited request reached the origin"
            return response, n
        assert response.status_code == 200, response.text
    pytest.fail(f"{BURST} calls in a row were not rate-limited (limit {LIMIT} per {PERIOD_SECONDS} s)")


def decisions(edge, subject: str) -> list[str]:
    return [r["decision"] for r in edge.worker.request_log() if r["subject"] == subject]


def subject_token(edge) -> tuple[str, str]:
    subject = "rl-" + secrets.token_hex(6)
    return subject, edge.mint(sub=subject, email=f"{subject}@example.com")


def test_a_burst_is_refused_then_freed_and_others_are_not_affected(limited):
    subject, token = subject_token(limited)
    refused, n = until_refused(limited, token)
    assert n >= LIMIT, "refused before the limit was used up"
    assert refused.headers["retry-after"] == str(PERIOD_SECONDS)
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json() == {
        "jsonrpc": "2.0", "id": f"call-{n}",
        "error": {"code": RATE_LIMITED, "message": refused.json()["error"]["message"]},
    }
    # Someone else is not held back by this identity's burst.
    _, other = subject_token(limited)
    assert send(limited, other).status_code == 200
    # The limit frees again once the window has passed.
    deadline = time.monotonic() + FREED_TIMEOUT
    while (response := send(limited, token)).status_code == 429:
        assert time.monotonic() < deadline, f"still rate-limited after {FREED_TIMEOUT} s"
        time.sleep(1)
    assert response.status_code == 200
    # wrangler dev prints the last answer's line a moment after the answer.
    eventually(lambda: decisions(limited, subject)[-1:] == ["allow"], timeout=10)
    assert "rate_limited" in decisions(limited, subject) and decisions(limited, subject)[-1] == "allow"
    limited_records = [r for r in limited.worker.request_log() if r["decision"] == "rate_limited"]
    assert all(r["status"] == 429 and r["origin_status"] is None for r in limited_records)


def test_each_member_of_a_batch_counts(limited):
    """A batch of more than twice the limit is refused whole, however the window falls."""
    subject, token = subject_token(limited)
    batch = [tool_call("search", n) for n in range(2 * LIMIT + 1)]
    before = origin_calls(limited)
    response = limited.call("POST", "/rpc", token, json=batch, headers={"accept": "application/json, text/event-stream"})
    assert response.status_code == 429, response.text
    assert [message["id"] for message in response.json()] == list(range(2 * LIMIT + 1))
    assert origin_calls(limited) == before


def test_rate_limit_by_tool_counts_each_tool_apart(per_tool):
    _, token = subject_token(per_tool)
    until_refused(per_tool, token, "search")
    # The same identity's other tool has its own count (the window may have rolled over, which
    # only makes this pass more easily; the refusal above is the proof that search was counted).
    assert send(per_tool, token, "get_weather").status_code == 200


def test_without_the_binding_nothing_is_limited(gateway):
    """The gateway's own Worker declares no binding: a burst goes through."""
    token = gateway.mint()
    for _ in range(2 * LIMIT + 2):
        assert gateway.call("POST", "/echo", token, content=json.dumps(tool_call("search", 1))).status_code == 200
