"""A panic in the Worker (never expected: the core returns errors) ends that request with a
clean 500, and the isolate carries on with a fresh wasm instance. Runs a test build with the
`panic-probe` feature, whose `GET /__panic` panics in the first poll or, with `?later`, after
an await (where no caller is left to catch it), or, with `?sync`, in the synchronous start of
the MCP endpoint's common case (src/edge/mod.rs `start_forward`)."""

import time

import httpx
import pytest
from support.stack import start_emulator
from support.worker import free_port, start_worker

METADATA = "/.well-known/oauth-protected-resource/mcp"


@pytest.fixture(scope="module")
def probe_worker():
    port = free_port()
    emulator = start_emulator(redirect_uris=[f"http://127.0.0.1:{port}/callback"])
    try:
        worker = start_worker(emulator, origin_url="https://origin.example", port=port, features="panic-probe")
    except Exception:
        emulator.stop()
        raise
    yield worker
    worker.stop()
    emulator.stop()


@pytest.mark.parametrize("query", ["", "?later", "?sync"])
def test_a_panic_is_a_500_and_the_isolate_recovers(probe_worker, query):
    with httpx.Client(base_url=probe_worker.url, timeout=30) as http:
        assert http.get(METADATA).status_code == 200  # the configuration is parsed: `?sync` needs it
        for _ in range(2):  # the recovered instance survives a second panic too
            failed = http.get("/__panic" + query)
            assert failed.status_code == 500
            assert failed.json() == {"error": "server_error", "error_description": "the gateway failed; try again later"}
            recovered = http.get(METADATA)
            assert recovered.status_code == 200, recovered.text
            assert recovered.json()["resource"].endswith("/mcp")
    deadline = time.monotonic() + 10  # wrangler relays the Worker's stderr with a delay
    while "panicked at src/edge/mod.rs" not in probe_worker.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "panicked at src/edge/mod.rs" in probe_worker.log(), "the panic is logged, with where it happened"
    if query == "?sync":
        assert "panic probe in the synchronous start" in probe_worker.log()
