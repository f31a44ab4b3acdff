"""Fixtures for the edge tests: bearer enforcement at the Worker and its streaming proxy.

Two gateways, because some things need the real origin and others need an origin that misbehaves
on demand. Both live for the whole session:

- `real`: the session `stack` (Access emulator, the seed's FastMCP origin, Worker with default
  settings). The origin verifies the forwarded token itself and logs every request it receives
  (identity header values included), which is how tests prove what did and did not get through.
- `gateway`: a Worker of its own in front of tests/support/fake_origin.py, with short timings
  (`GATEWAY_SETTINGS`), the bearer withheld, a service token for the origin and an allowlist.
  `start_gateway` starts more Workers in front of the same fake origin, for a fresh isolate.
- `private`: the same, but a private origin: the Worker under workerd with the fake origin bound
  as ORIGIN_SERVICE (as a Workers VPC service is) and ORIGIN_URL a host that never resolves,
  so whatever the origin answers came through the binding; no service token (a private origin
  needs none). Tests that must hold on both paths take `edge_path`, which is each of the two.

Both wrap the stack in an `EdgeStack` (edge_stack.py), which mints and forges tokens and remembers
every credential it made, so the log-hygiene tests can look for each of them in the Workers' logs.
"""

from pathlib import Path

import pytest
from edge_stack import GATEWAY_SETTINGS, JWKS_MIN_REFETCH_SECONDS, USER_EMAIL, USER_GROUP, EdgeStack
from support.fake_origin import start_fake_origin
from support.stack import start_emulator
from support.worker import free_port, start_worker
from support.workerd import PRIVATE_ORIGIN_URL, start_worker_in_workerd

# The gateway's settings, its origin reached through the binding instead of its service token.
PRIVATE_SETTINGS = {
    name: value for name, value in GATEWAY_SETTINGS.items() if not name.startswith("ORIGIN_ACCESS_CLIENT_")
}


@pytest.fixture(scope="session")
def sent() -> dict[str, set[str]]:
    """Credentials made during the session, per Worker URL."""
    return {}


@pytest.fixture(scope="session")
def real(stack, sent) -> EdgeStack:
    """The shared `stack` (the top-level conftest resets its emulator after each test using it)."""
    return EdgeStack(stack.emulator, stack.worker, stack.origin, sent.setdefault(stack.worker.url, set()))


@pytest.fixture(scope="session")
def _gateway(sent):
    port = free_port()
    emulator = start_emulator(
        redirect_uris=[f"http://127.0.0.1:{port}/callback"], email=USER_EMAIL, groups=[USER_GROUP]
    )
    fake = start_fake_origin()
    try:
        worker = start_worker(emulator, origin_url=fake.base_url, port=port, **GATEWAY_SETTINGS)
    except Exception:
        fake.stop()
        emulator.stop()
        raise
    edge = EdgeStack(emulator, worker, fake, sent.setdefault(worker.url, set()))
    yield edge
    edge.http.close()
    for part in (worker, fake, emulator):
        part.stop()


@pytest.fixture
def gateway(_gateway) -> EdgeStack:
    """The Worker in front of the fake origin; its emulator goes back to its startup state after
    each test, and if a test rotated keys, the Worker is given time to pick the startup key up again."""
    startup_kids = _gateway.emulator.configure()["kids"]
    yield _gateway
    rotated = _gateway.emulator.configure()["kids"] != startup_kids
    _gateway.emulator.reset()
    if rotated:
        response = _gateway.wait_accepted(_gateway.mint(), "/echo", timeout=2 * JWKS_MIN_REFETCH_SECONDS + 2)
        assert response.status_code == 200, "the Worker did not pick the startup key up again"


@pytest.fixture(scope="session")
def private(_gateway, sent):
    """The Worker in front of the gateway's fake origin through the ORIGIN_SERVICE binding."""
    worker = start_worker_in_workerd(
        _gateway.emulator, origin_url=PRIVATE_ORIGIN_URL, origin_service=_gateway.origin.base_url, **PRIVATE_SETTINGS
    )
    edge = EdgeStack(_gateway.emulator, worker, _gateway.origin, sent.setdefault(worker.url, set()))
    yield edge
    edge.http.close()
    worker.stop()


@pytest.fixture(params=["gateway", "private"])
def edge_path(request) -> EdgeStack:
    """The gateway (fetch to ORIGIN_URL) and then the private one (through ORIGIN_SERVICE)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def start_gateway(gateway):
    """Starts further Workers (about a second each) in front of the gateway's emulator and fake
    origin, with default settings plus `settings`: a fresh isolate, nothing cached."""
    started = []

    def start(**settings) -> EdgeStack:
        settings = {"PROXY_PATHS": GATEWAY_SETTINGS["PROXY_PATHS"], **settings}
        worker = start_worker(gateway.emulator, origin_url=gateway.origin.base_url, **settings)
        started.append(worker)
        return EdgeStack(gateway.emulator, worker, gateway.origin, set())

    yield start
    for worker in started:
        worker.stop()


def pytest_collection_modifyitems(session, config, items):
    """The log-hygiene tests read the Workers' logs, so they run after every other edge test."""
    here = Path(__file__).resolve().parent
    last = [item for item in items if item.path.name == "test_edge_log_hygiene.py" and item.path.parent == here]
    if not last:
        return
    rest = [item for item in items if item not in last]
    after_edge = max((n + 1 for n, item in enumerate(rest) if item.path.parent == here), default=len(rest))
    items[:] = rest[:after_edge] + last + rest[after_edge:]

