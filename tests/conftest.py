"""Shared fixtures: the local stack (Access emulator, the seed's origin, the Worker in workerd).

Starting workerd costs seconds, so the stacks are session-scoped (each starts when a test first
asks for it); tests that flip emulator switches get them undone by the autouse `reset_emulators`
fixture.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.stack import Emulator, Origin, start_emulator, start_origin  # noqa: E402
from support.worker import Worker, free_port, start_worker  # noqa: E402

USER_EMAIL = "user@example.com"


@dataclass
class Stack:
    emulator: Emulator
    origin: Origin
    worker: Worker

    def stop(self):
        for part in (self.worker, self.origin, self.emulator):
            part.stop()


def start_stack(*, with_secret: bool, **settings) -> Stack:
    """Emulator (its one registered redirect URI is the Worker's /callback), origin, Worker."""
    port = free_port()
    emulator = start_emulator(
        redirect_uris=[f"http://127.0.0.1:{port}/callback"],
        email=USER_EMAIL,
        groups=["engineering"],
        pkce_without_secret=not with_secret,
    )
    origin = start_origin(emulator.base_url, emulator.client_id, USER_EMAIL)
    worker = start_worker(emulator, origin_url=origin.base_url, port=port, with_secret=with_secret, **settings)
    return Stack(emulator, origin, worker)


@pytest.fixture(scope="session")
def stack():
    """Access requires the client secret (its default); the Worker holds it."""
    s = start_stack(with_secret=True)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def pkce_stack():
    """Access allows "PKCE without client secret"; the Worker has no secret."""
    s = start_stack(with_secret=False)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def sealed_stack():
    """TOKEN_MODE=sealed: clients always get the Worker's own sealed tokens (the secret held)."""
    s = start_stack(with_secret=True, TOKEN_MODE="sealed")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def passthrough_stack():
    """TOKEN_MODE=passthrough: clients always get Access's tokens (the secret held)."""
    s = start_stack(with_secret=True, TOKEN_MODE="passthrough")
    yield s
    s.stop()


# The user's group may call ping; every other tool is refused by the gateway (MCP_POLICY).
CLIENT_POLICY = '{"default": "deny", "rules": [{"effect": "allow", "groups": ["engineering"], "tools": ["ping"]}]}'


@pytest.fixture(scope="session")
def policy_stack():
    """MCP_POLICY lets the user's group call ping and nothing else (the secret held)."""
    s = start_stack(with_secret=True, MCP_POLICY=CLIENT_POLICY)
    yield s
    s.stop()


# Every session-scoped stack, for `reset_emulators`.
SESSION_STACKS = ("stack", "pkce_stack", "sealed_stack", "passthrough_stack", "policy_stack")


@pytest.fixture(params=["secret", "pkce"])
def any_stack(request):
    """Both Access modes."""
    return request.getfixturevalue("stack" if request.param == "secret" else "pkce_stack")


@pytest.fixture(autouse=True)
def reset_emulators(request):
    yield
    # Only the session-scoped stacks: `any_stack` is torn down before this runs, and the stack
    # it chose is listed here too (fixtures requested with getfixturevalue are in fixturenames).
    for name in SESSION_STACKS:
        if name in request.fixturenames:
            request.getfixturevalue(name).emulator.reset()
