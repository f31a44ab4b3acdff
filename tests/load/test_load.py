"""Load through the Worker, bounded in requests: 20,000 validated proxied requests at concurrency
32, every answer the right one and every request in the Worker's log, and 50 concurrent SSE
streams with no event lost or reordered. This checks correctness under load; speed is measured by
the benchmarks (bench/), never asserted here, and the timeouts only turn a hang into a failure.

The Worker is the dry-run bundle under workerd directly (support/workerd.py), as the benchmarks
run it, and the load comes from threads on keep-alive connections: `wrangler dev`'s proxy and
httpx's asyncio client each cost several times the Worker itself, enough to make 20,000
requests a matter of minutes on a busy machine."""

import asyncio
import http.client
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest
from support.fake_origin import start_fake_origin
from support.stack import start_emulator
from support.worker import free_port
from support.workerd import start_worker_in_workerd

REQUESTS = 20_000
CONCURRENCY = 32
TOKENS = 8  # a few users' sessions, so the verified-token cache holds several entries
STREAMS = 50
EVENTS = 20
# Limits for a hang only, far above what any machine needs: nothing here is timed.
REQUEST_TIMEOUT_SECONDS = 60
STREAMS_TIMEOUT_SECONDS = 600


@pytest.fixture(scope="module")
def load_stack():
    port = free_port()
    emulator = start_emulator(redirect_uris=[f"http://127.0.0.1:{port}/callback"])
    origin = start_fake_origin()
    worker = start_worker_in_workerd(emulator, origin_url=origin.base_url, port=port, PROXY_PATHS="/echo /sse")
    tokens = [
        emulator.control("mint", {"claims": {"aud": f"{worker.url}/callback", "sub": f"load-user-{i}"}})["token"]
        for i in range(TOKENS)
    ]
    yield worker, origin, tokens
    for part in (worker, origin, emulator):
        part.stop()


def lane(worker_url: str, tokens: list[str], first: int) -> Counter:
    """Sends every CONCURRENCY-th of the REQUESTS validated POSTs, from `first` on, over one
    keep-alive connection; counts "ok" (200 and the origin saw this request's body) or the status."""
    outcomes = Counter()
    connection = http.client.HTTPConnection(urlsplit(worker_url).netloc, timeout=REQUEST_TIMEOUT_SECONDS)
    try:
        for i in range(first, REQUESTS, CONCURRENCY):
            body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "ping"}})
            headers = {
                "authorization": f"Bearer {tokens[i % len(tokens)]}",
                "mcp-session-id": f"s{i % 97}",
                "content-type": "application/json",
            }
            connection.request("POST", "/echo", body, headers)
            response = connection.getresponse()
            answer = response.read()
            outcomes["ok" if response.status == 200 and json.loads(answer)["body"] == body else response.status] += 1
    finally:
        connection.close()
    return outcomes


def test_the_runtime_frames_each_answer_itself(load_stack):
    """The Worker leaves the origin's Connection and Transfer-Encoding to workerd, which frames
    each answer on its own connection (src/mcp/proxy.rs, FRAMED_BY_THE_RUNTIME): a streamed answer
    has exactly one Transfer-Encoding on the wire, its events arrive whole, and the connection
    stays open for the next request."""
    worker, _, tokens = load_stack
    connection = http.client.HTTPConnection(urlsplit(worker.url).netloc, timeout=REQUEST_TIMEOUT_SECONDS)
    try:
        for _ in range(2):
            connection.request("GET", "/sse?n=3&interval_ms=10", headers={"authorization": f"Bearer {tokens[0]}"})
            response = connection.getresponse()
            body = response.read().decode()
            assert response.status == 200, body
            assert response.msg.get_all("transfer-encoding") == ["chunked"]
            assert not response.will_close
            assert [json.loads(line[len("data: "):]) for line in body.splitlines() if line.startswith("data: ")] == [
                {"index": i} for i in range(3)
            ]
    finally:
        connection.close()


def test_validated_requests_under_load_all_succeed(load_stack):
    worker, origin, tokens = load_stack
    # Threads with http.client: httpx's asyncio client would cost more CPU than the Worker.
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        lanes = [pool.submit(lane, worker.url, tokens, first) for first in range(CONCURRENCY)]
        outcomes = sum((done.result() for done in lanes), Counter())
    assert outcomes == {"ok": REQUESTS}
    assert len(origin.requests()) >= REQUESTS
    # workerd prints the Worker's request lines, so the end-of-run log scan sees every one.
    proxied = [line for line in worker.request_log() if line["route"] == "mcp" and line["status"] == 200]
    assert len(proxied) >= REQUESTS


async def read_stream(client: httpx.AsyncClient, url: str, token: str, stream_id: str) -> list[int]:
    indexes = []
    params = {"id": stream_id, "n": EVENTS, "interval_ms": 50}
    async with client.stream("GET", url, params=params, headers={"authorization": f"Bearer {token}", "accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                indexes.append(json.loads(line[len("data: "):])["index"])
    return indexes


def test_concurrent_sse_streams_lose_and_reorder_nothing(load_stack):
    worker, _, tokens = load_stack

    async def all_streams():
        limits = httpx.Limits(max_connections=STREAMS)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(read_stream(client, worker.url + "/sse", tokens[i % len(tokens)], f"load-{i}") for i in range(STREAMS))
            )

    results = asyncio.run(asyncio.wait_for(all_streams(), STREAMS_TIMEOUT_SECONDS))
    assert results == [list(range(EVENTS))] * STREAMS
