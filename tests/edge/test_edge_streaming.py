"""The proxy streams: server-sent events reach the client one by one as the origin sends them,
and an origin that drops the connection mid-event ends the client's stream instead of hanging it;
through fetch to ORIGIN_URL and through the ORIGIN_SERVICE binding alike (`edge_path`)."""

import secrets
import time

import httpx
import pytest
from edge_stack import EVENTS, INTERVAL_MS, ORIGIN_TIMEOUT_SECONDS, assert_not_held_back, received_events


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_events_arrive_one_by_one(edge_path, method):
    stream_id = secrets.token_hex(8)
    url = f"{edge_path.worker.url}/sse?n={EVENTS}&interval_ms={INTERVAL_MS}&id={stream_id}"
    headers = {"authorization": f"Bearer {edge_path.mint()}", "accept": "text/event-stream"}
    with edge_path.http.stream(method, url, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = received_events(response)
    assert_not_held_back(events, edge_path.origin.sse_sends(stream_id))


def test_a_listen_stream_that_stays_open_delivers_each_event(edge_path):
    """The 2026-07-28 revision's `subscriptions/listen`: a POST answered by an event stream that
    stays open for as long as the client listens. The origin never ends it (the client leaves after
    the last event), so a proxy that waited for the end would deliver nothing before the timeout."""
    stream_id = secrets.token_hex(8)
    url = f"{edge_path.worker.url}/sse?n={EVENTS}&interval_ms={INTERVAL_MS}&id={stream_id}&open=1"
    headers = {
        "authorization": f"Bearer {edge_path.mint()}",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "subscriptions/listen",
    }
    body = '{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{}}'
    with edge_path.http.stream("POST", url, headers=headers, content=body, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = received_events(response, limit=EVENTS)
    assert_not_held_back(events, edge_path.origin.sse_sends(stream_id))
    (listen,) = [r for r in edge_path.origin.requests() if f"id={stream_id}" in r["query"]]
    assert ("mcp-method", "subscriptions/listen") in map(tuple, listen["headers"])


def test_stream_cut_mid_event_ends_the_clients_stream(edge_path):
    headers = {"authorization": f"Bearer {edge_path.mint()}"}
    started = time.monotonic()
    lines = []
    try:
        with edge_path.http.stream("GET", edge_path.worker.url + "/cut", headers=headers, timeout=10) as response:
            assert response.status_code == 200
            lines.extend(response.iter_lines())
    except (httpx.RemoteProtocolError, httpx.ReadError):
        pass  # An abrupt end is the honest one: the origin never finished its answer.
    assert time.monotonic() - started < 5, "the client was left hanging"
    assert 'data: {"index": 0}' in lines, "the complete event before the cut was delivered"


def test_a_stream_lives_past_the_origin_timeout(edge_path):
    """ORIGIN_TIMEOUT_SECONDS bounds the wait for the origin's headers only: the abort timer is
    cleared once they arrive, so a stream runs on well past it, every event delivered."""
    stream_id = secrets.token_hex(8)
    interval_ms = 1000  # the last event comes ORIGIN_TIMEOUT_SECONDS + 1 s after the headers
    url = f"{edge_path.worker.url}/sse?n={ORIGIN_TIMEOUT_SECONDS + 2}&interval_ms={interval_ms}&id={stream_id}"
    headers = {"authorization": f"Bearer {edge_path.mint()}", "accept": "text/event-stream"}
    with edge_path.http.stream("GET", url, headers=headers, timeout=ORIGIN_TIMEOUT_SECONDS + 10) as response:
        assert response.status_code == 200
        events = received_events(response)
    assert [data for _, data in events] == [{"index": i} for i in range(ORIGIN_TIMEOUT_SECONDS + 2)]
    sent = edge_path.origin.sse_sends(stream_id)
    assert sent[-1] - sent[0] > ORIGIN_TIMEOUT_SECONDS, "the stream outlived the timeout at the origin too"
