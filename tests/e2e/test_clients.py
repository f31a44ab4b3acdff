"""Real MCP clients log in through the gateway and use the origin's `ping` tool, end to end.

The clients are the official TypeScript SDK (`clients/ts_client.mjs`), the official Python SDK
(`clients/py_client.py`) and MCP Inspector's CLI (`clients/inspector.py`), each playing the person
with a browser headlessly (tests/support/browser.py). Each prints one JSON object per step; these
tests run them as subprocesses against both Access modes (`any_stack`) and judge the steps:
discovery and registration (or a pre-registered client), consent, the authorization response
(state, RFC 9207 `iss`, the RFC 8707 resource), the token exchange, `initialize`, `tools/list`,
`tools/call ping`, a refresh after the access token expired, and a denial on the consent page.

After every run, neither the Worker's log nor the client's output may contain the client
secret, a JWT, or the code, refresh token or PKCE verifier that Access last received.

While the Worker's MCP proxy refused tokens it issued (answering invalid_token), the SDK clients
checked their token at the origin directly and exited with 3; such runs are marked xfail
("proxy not ready") rather than failed.
"""

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
ROOT = CLIENTS_DIR.parents[2]
NODE = ROOT / "node_modules" / ".bin" / "node"
CLIENTS = {
    "ts": [str(NODE), str(CLIENTS_DIR / "ts_client.mjs")],
    "py": [sys.executable, str(CLIENTS_DIR / "py_client.py")],
    "inspector": [sys.executable, str(CLIENTS_DIR / "inspector.py")],
}
SDK_CLIENTS = ("ts", "py")
CLIENT_TIMEOUT = 120
PROXY_NOT_READY = 3
JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+")
ACCESS_TOKEN_TTL = 3
REFRESH_AFTER = 4


@dataclass
class Run:
    client: str
    status: int
    stdout: str
    stderr: str
    steps: list[dict]

    def all(self, name: str) -> list[dict]:
        return [step for step in self.steps if step["step"] == name]

    def one(self, name: str) -> dict:
        found = self.all(name)
        assert len(found) == 1, f"expected one {name!r} step, got {len(found)}\n{self}"
        return found[0]

    def http(self, path: str) -> list[dict]:
        """The requests to `path` of the SDK client's HTTP trace."""
        return [step for step in self.all("http") if step["url"].endswith(path)]

    def __str__(self) -> str:
        return f"{self.client} exited {self.status}\n--- stdout\n{self.stdout}\n--- stderr (tail)\n{self.stderr[-3000:]}"


def run_client(client: str, stack, *args: str) -> Run:
    argv = [*CLIENTS[client], "--url", stack.worker.mcp_url, *args]
    if client in SDK_CLIENTS:
        argv += ["--origin-url", stack.origin.url]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    steps = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    run = Run(client, done.returncode, done.stdout, done.stderr, steps)
    assert_nothing_secret_shown(stack, run)
    return run


def assert_nothing_secret_shown(stack, run: Run) -> None:
    """No secret, token, code or verifier in the Worker's log or the client's output."""
    form = (stack.emulator.stats().get("last_token_request") or {}).get("form", {})
    secrets = {
        "the Access client secret": stack.emulator.client_secret,
        **{f"the {name} Access last received": form[name] for name in ("code", "refresh_token", "code_verifier") if name in form},
    }
    for place, text in (("the Worker's log", stack.worker.log()), (f"{run.client}'s stdout", run.stdout)):
        for what, value in secrets.items():
            assert value not in text, f"{what} appears in {place}"
        assert not JWT.search(text), f"a JWT appears in {place}"


def expect_passed(run: Run) -> None:
    if run.status == PROXY_NOT_READY:
        pytest.xfail("proxy not ready: the Worker refused the token it issued (invalid_token); the origin accepted it")
    assert run.status == 0 and run.one("result")["outcome"] == "passed", str(run)


def assert_logged_in(run: Run, stack, *, client_auth: str | None) -> None:
    """One consented authorization answered with a code, the client's state and the Worker's
    issuer; the resource indicator is the MCP URL; the code exchanged with `client_auth`."""
    (authorization,) = run.all("authorization")
    assert authorization["code"] and authorization["error"] is None, str(run)
    assert authorization["state_ok"], str(run)
    assert authorization["iss"] == stack.worker.url, str(run)
    assert authorization["resource"] == stack.worker.mcp_url, str(run)
    if run.client in SDK_CLIENTS:
        exchanges = [step for step in run.http("/token") if step["grant_type"] == "authorization_code"]
        assert [(step["status"], step["client_auth"]) for step in exchanges] == [(200, client_auth)], str(run)


def assert_session(run: Run, calls: int = 1) -> None:
    assert run.one("tools/list")["tools"] == ["ping"], str(run)
    pings = run.all("tools/call")
    assert [step["text"] for step in pings] == ["pong: e2e"] * calls, str(run)


def holds_secret(stack) -> bool:
    return "ACCESS_CLIENT_SECRET" in stack.worker.settings


@pytest.mark.parametrize("client", CLIENTS)
def test_session_with_dynamic_client_registration(client, any_stack):
    run = run_client(client, any_stack)

    expect_passed(run)
    if client in SDK_CLIENTS:
        assert [step["status"] for step in run.http("/register")] == [201], str(run)
        first = run.all("http")[0]
        assert first["status"] == 401 and "resource_metadata=" in first["www_authenticate"], str(run)
    assert_logged_in(run, any_stack, client_auth="none")
    assert_session(run)


@pytest.mark.parametrize("client", CLIENTS)
def test_session_with_pre_registered_client(client, any_stack):
    """The client is configured with the Access app's client id, plus its secret when the Worker
    holds one to check it against (with "PKCE without client secret" it is a public client)."""
    credentials = ["--client-id", any_stack.emulator.client_id]
    if holds_secret(any_stack):
        credentials += ["--client-secret", any_stack.emulator.client_secret]
    run = run_client(client, any_stack, *credentials)

    expect_passed(run)
    if client in SDK_CLIENTS:
        assert run.http("/register") == [], "a pre-registered client must not register\n" + str(run)
    # The TypeScript SDK prefers client_secret_basic; the Python SDK uses what the client
    # information names (client_secret_post here, what claude.ai sends).
    secret_auth = {"ts": "client_secret_basic", "py": "client_secret_post"}.get(client)
    assert_logged_in(run, any_stack, client_auth=secret_auth if holds_secret(any_stack) else "none")
    assert_session(run)


@pytest.mark.parametrize("client", CLIENTS)
def test_pre_registered_secret_the_worker_cannot_verify_is_invalid_client(client, any_stack):
    """A wrong secret, or any secret when the Worker holds none, is refused at the token endpoint
    with invalid_client (RFC 6749 §5.2), before Access sees the code."""
    secret = "not-the-secret" if holds_secret(any_stack) else any_stack.emulator.client_secret
    run = run_client(client, any_stack, "--client-id", any_stack.emulator.client_id, "--client-secret", secret)

    assert run.status == 1 and run.one("result")["outcome"] == "failed", str(run)
    if client in SDK_CLIENTS:
        refusals = run.http("/token")
        assert refusals and all(s["status"] == 401 and s["oauth_error"] == "invalid_client" for s in refusals), str(run)
    else:  # Inspector's SDK logs the OAuth error code before it gives up
        notes = [line for step in run.all("inspector_exit") for line in step["stderr_tail"]]
        assert any('OAuth "invalid_client"' in line for line in notes), str(run)
    assert run.all("tools/call") == [], str(run)
    assert any_stack.emulator.stats()["counts"].get("token", 0) == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_refresh_after_the_access_token_expired(client, any_stack):
    """Access tokens live 3 s; the client calls ping, waits 4 s and calls again, so it must
    refresh (through the Worker's token endpoint) to succeed."""
    any_stack.emulator.configure(access_token_ttl=ACCESS_TOKEN_TTL)
    run = run_client(client, any_stack, "--refresh-after", str(REFRESH_AFTER))

    expect_passed(run)
    assert_session(run, calls=2)
    stats = any_stack.emulator.stats()
    assert stats["counts"]["token"] >= 2 and stats["last_token_request"]["form"]["grant_type"] == "refresh_token", str(run)
    if client in SDK_CLIENTS:
        after_wait = run.steps[run.steps.index(run.one("wait")):]
        refreshes = [s for s in after_wait if s["step"] == "http" and s.get("grant_type") == "refresh_token"]
        assert [step["status"] for step in refreshes] == [200], str(run)


@pytest.mark.parametrize("client", CLIENTS)
def test_deny_on_the_consent_page(client, stack):
    """Refusing on the consent page sends the client access_denied (with its state and the
    Worker's iss); the browser never reaches Access and no token is issued."""
    run = run_client(client, stack, "--deny")

    assert run.status == 0 and run.one("result")["outcome"] == "denied", str(run)
    (authorization,) = run.all("authorization")
    assert authorization["error"] == "access_denied" and not authorization["code"], str(run)
    assert authorization["state_ok"] and authorization["iss"] == stack.worker.url, str(run)
    assert run.all("tools/list") == [] and run.all("tools/call") == []
    counts = stack.emulator.stats()["counts"]
    assert counts.get("authorization", 0) == 0 and counts.get("token", 0) == 0, counts
