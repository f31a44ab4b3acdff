"""The differential suite's stack, for the whole session: the Access emulator, every origin
(origins/), the relay in front of them (relay.py) and the gateway Worker with POLICY in
passthrough mode (ORIGIN_URL = the relay). See README.md."""

import json

import pytest
from differential_stack import ORIGIN_KINDS, POLICY, DifferentialStack, start_origin, start_relay
from support.stack import start_emulator
from support.worker import start_worker


@pytest.fixture(scope="session")
def differential():
    emulator = start_emulator()
    started = [emulator]
    try:
        origins = {}
        for name in ORIGIN_KINDS:
            origins[name] = start_origin(name)
            started.append(origins[name].service)
        relay, relay_url = start_relay(origins)
        started.append(relay)
        worker = start_worker(emulator, origin_url=relay_url, TOKEN_MODE="passthrough", MCP_POLICY=json.dumps(POLICY))
        started.append(worker)
        stack = DifferentialStack(emulator, worker, relay_url, origins)
        yield stack
        stack.http.close()
    finally:
        for part in reversed(started):
            part.stop()
