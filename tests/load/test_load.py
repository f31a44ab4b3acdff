"""Load through the Worker in workerd, bounded in requests and time: 20,000 validated proxied
requests at concurrency 32 with zero errors, and 50 concurrent SSE streams with no event lost or
reordered. This checks correctness under load; speed is measured by the benchmarks (bench/),
never asserted here."""

import asyncio
import json
import time

import httpx
import pytest
from support.fake_origin import start_fake_origin
from support.stack import start_emulator
from support.worker import free_port, start_worker

REQUESTS = 20_000
CONCURRENCY = 32
TOKENS = 8  # a few users' sessions, so the verified-token cache holds several entries
STREAMS = 50
EVENTS = 20
TIME_BUDGET_SECONDS = 240


@pytest.fixture(scope="module")
def load_stack():
    port = free_port()
    emulator = start_emulator(redirect_uris=[f"http://127.0.0.1:{port}/callback"])
    origin = start_fake_origin()
    worker = start_worker(emulator, origin_url=origin.base_url, port=port, PROXY_PATHS="/echo /sse")
    tokens = [
        emulator.control("mint", {"claims": {"aud": f"{worker.url}/callback", "sub": f"load-user-{i}"}})["token"]
        for i in range(TOKENS)
    ]
    yield worker, origin, tokens
    for part in (worker, origin, emulator):
        part.stop()


async def hammer(url: str, tokens: list[str]) -> tuple[int, dict[int, int]]:
    """Sends REQUESTS validated POSTs with CONCURRENCY in flight; returns (ok, other statuses)."""
    counter = iter(range(REQUESTS))
    ok, others = 0, {}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def lane():
            nonlocal ok
            for i in counter:
                response = await client.post(
                    url,
                    headers={"authorization": f"Bearer {tokens[i % len(tokens)]}", "mcp-session-id": f"s{i % 97}"},
                    json={"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "ping"}},
                )
                if response.status_code == 200 and response.json()["body"].endswith(f'"id":{i},"method":"tools/call","params":{{"name":"ping"}}}}'):
                    ok += 1
                else:
                    others[response.status_code] = others.get(response.status_code, 0) + 1

        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    return ok, others


def test_validated_requests_under_load_all_succeed(load_stack):
    worker, origin, tokens = load_stack
    started = time.monotonic()
    ok, others = asyncio.run(asyncio.wait_for(hammer(worker.url + "/echo", tokens), TIME_BUDGET_SECONDS))
    elapsed = time.monotonic() - started
    print(f"\n{REQUESTS} validated requests at concurrency {CONCURRENCY}: {elapsed:.1f} s ({REQUESTS / elapsed:.0f}/s under wrangler dev)")
    assert (ok, others) == (REQUESTS, {})
    assert len(origin.requests()) >= REQUESTS


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

    results = asyncio.run(asyncio.wait_for(all_streams(), 120))
    assert results == [list(range(EVENTS))] * STREAMS
