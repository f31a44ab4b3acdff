"""The proxy streams: server-sent events reach the client one by one as the origin sends them,
and an origin that drops the connection mid-event ends the client's stream instead of hanging it."""

import json
import secrets
import time

import httpx
import pytest

EVENTS = 5
INTERVAL_MS = 400


def received_events(response: httpx.Response) -> list[tuple[float, dict]]:
    """(receive time, data) of each complete event, read incrementally."""
    events, data = [], []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and data:
            events.append((time.time(), json.loads("\n".join(data))))
            data = []
    return events


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_events_arrive_one_by_one(gateway, method):
    stream_id = secrets.token_hex(8)
    url = f"{gateway.worker.url}/sse?n={EVENTS}&interval_ms={INTERVAL_MS}&id={stream_id}"
    headers = {"authorization": f"Bearer {gateway.mint()}", "accept": "text/event-stream"}
    with gateway.http.stream(method, url, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = received_events(response)
    sent = gateway.origin.sse_sends(stream_id)
    assert [data for _, data in events] == [{"index": i} for i in range(EVENTS)]
    assert len(sent) == EVENTS
    for index in range(EVENTS - 1):
        received = events[index][0]
        assert received < sent[index + 1], f"event {index} was held back until the origin sent event {index + 1}"


def test_stream_cut_mid_event_ends_the_clients_stream(gateway):
    headers = {"authorization": f"Bearer {gateway.mint()}"}
    started = time.monotonic()
    lines = []
    try:
        with gateway.http.stream("GET", gateway.worker.url + "/cut", headers=headers, timeout=10) as response:
            assert response.status_code == 200
            lines.extend(response.iter_lines())
    except (httpx.RemoteProtocolError, httpx.ReadError):
        pass  # An abrupt end is the honest one: the origin never finished its answer.
    assert time.monotonic() - started < 5, "the client was left hanging"
    assert 'data: {"index": 0}' in lines, "the complete event before the cut was delivered"
