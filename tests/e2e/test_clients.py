"""Real MCP clients log in through the gateway and use the origin's `ping` tool, end to end.

The clients are the official TypeScript SDK (`clients/ts_client.mjs`), the official Python SDK
(`clients/py_client.py`) and MCP Inspector's CLI (`clients/inspector.py`), each playing the person
with a browser headlessly (tests/support/browser.py). Each prints one JSON object per step; these
tests run them as subprocesses against both Access modes (`any_stack`) and judge the steps:
discovery and registration (or a pre-registered client), consent, the authorization response
(state, RFC 9207 `iss`, the RFC 8707 resource), the token exchange, `initialize`, `tools/list`,
`tools/call ping`, a refresh after the access token expired, and a denial on the consent page.

The 2.x TypeScript client (`clients/ts_client.mjs --sdk 2`, installed apart in `clients/sdk2`)
negotiates the 2026-07-28 revision: registration with `application_type`, the stateless
`server/discover` probe through the gateway, and its fallback for the 2025-era origin. In front of
a 2.x origin (`clients/sdk2/origin.mjs`) that speaks nothing older, the whole exchange is 2026-07-28.

Login, `tools/call` and refresh also run across the token modes (`deployment`): the Worker's
TOKEN_MODE (auto, sealed, passthrough) in front of Access issuing JWT or opaque access tokens,
always with the unchanged origin verifying the Access JWT it is forwarded. Passthrough with
opaque access tokens cannot work, and must fail cleanly at the token exchange.

After every run, neither the Worker's log nor the client's output may contain the client
secret, the Worker's sealing key, a JWT, or the code, refresh token or PKCE verifier that Access
last received.
"""

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import httpx
import pytest

from support.dropping_proxy import DroppingProxy
from support.stack import free_port, start_emulator, start_modern_origin, start_origin
from support.worker import start_worker
from support.workerd import PRIVATE_ORIGIN_URL, start_worker_in_workerd

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
ROOT = CLIENTS_DIR.parents[2]
NODE = ROOT / "node_modules" / ".bin" / "node"
CLIENTS = {
    "ts": [str(NODE), str(CLIENTS_DIR / "ts_client.mjs")],
    "py": [sys.executable, str(CLIENTS_DIR / "py_client.py")],
    "inspector": [sys.executable, str(CLIENTS_DIR / "inspector.py")],
}
# The 2.x TypeScript client (tests/e2e/clients/sdk2), which speaks the 2026-07-28 revision; run
# by its own test below rather than by every scenario.
CLIENT_2026 = {"ts2": [*CLIENTS["ts"], "--sdk", "2"]}
SDK_CLIENTS = ("ts", "py", "ts2")
CLIENT_TIMEOUT = 120
JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+")
# The refresh test's Access token lifetime and the client's wait before its second ping, per
# client. The token must outlive every run before the wait, so that the refresh the test is about
# happens at the second ping's first request: an expiry in the middle of a run is a race between
# a client's concurrent requests and Access's refresh-token rotation, not what this test checks.
# Inspector logs in and pings in two processes of its own, about a second apart on an idle
# machine and several on a busy one, hence its longer lifetime.
ACCESS_TOKEN_TTL = {"ts": 3, "py": 3, "inspector": 8}
REFRESH_AFTER = {client: ttl + 1 for client, ttl in ACCESS_TOKEN_TTL.items()}


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


@dataclass(frozen=True)
class Deployment:
    """A Worker's token mode in front of one Access behaviour."""

    stack: str  # the session fixture: the Worker's TOKEN_MODE and whether it holds the secret
    token_mode: Literal["auto", "sealed", "passthrough"]
    access_tokens: Literal["jwt", "opaque"]  # what Access issues as access token (id_token: a JWT)

    @property
    def sealed(self) -> bool:
        """Whether clients hold the Worker's own sealed tokens rather than Access's."""
        return self.token_mode == "sealed" or (self.token_mode == "auto" and self.access_tokens == "opaque")

    def __str__(self) -> str:
        access = "pkce" if self.stack == "pkce_stack" else "secret"
        return f"{access}-{self.token_mode}-{self.access_tokens}"


# Every combination that must work; auto is the default (`stack`, `pkce_stack`), where every
# other scenario of this file runs. Passthrough with opaque access tokens must fail (below).
DEPLOYMENTS = [
    Deployment("stack", "auto", "jwt"),
    Deployment("pkce_stack", "auto", "jwt"),
    Deployment("stack", "auto", "opaque"),
    Deployment("sealed_stack", "sealed", "jwt"),
    Deployment("sealed_stack", "sealed", "opaque"),
    Deployment("passthrough_stack", "passthrough", "jwt"),
]


@pytest.fixture(params=DEPLOYMENTS, ids=str)
def deployment(request) -> Deployment:
    return request.param


@pytest.fixture
def deployed_stack(request, deployment):
    """The deployment's stack, its Access switched to opaque access tokens if the deployment says
    so (`reset_emulators` switches it back after the test)."""
    stack = request.getfixturevalue(deployment.stack)
    assert stack.worker.settings.get("TOKEN_MODE", "auto") == deployment.token_mode, deployment
    if deployment.access_tokens == "opaque":
        stack.emulator.configure(opaque_access_token=True)
    return stack


def run_client(client: str, stack, *args: str) -> Run:
    argv = [*{**CLIENTS, **CLIENT_2026}[client], "--url", stack.worker.mcp_url, *args]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    steps = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    run = Run(client, done.returncode, done.stdout, done.stderr, steps)
    assert_nothing_secret_shown(stack, run)
    return run


def assert_nothing_secret_shown(stack, run: Run) -> None:
    """No secret, sealing key, token, code or verifier in the Worker's log or the client's output."""
    form = (stack.emulator.stats().get("last_token_request") or {}).get("form", {})
    secrets = {
        "the Access client secret": stack.emulator.client_secret,
        **{f"sealing key {n}": key for n, key in enumerate(stack.worker.settings["SEALING_KEYS"].split(","))},
        **{f"the {name} Access last received": form[name] for name in ("code", "refresh_token", "code_verifier") if name in form},
    }
    places = (
        ("the Worker's log", stack.worker.log()),
        (f"{run.client}'s stdout", run.stdout),
        (f"{run.client}'s stderr", run.stderr),
    )
    for place, text in places:
        for what, value in secrets.items():
            assert value not in text, f"{what} appears in {place}"
        assert not JWT.search(text), f"a JWT appears in {place}"


def expect_passed(run: Run) -> None:
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


def test_a_client_speaking_2026_07_28(any_stack):
    """@modelcontextprotocol/client 2.x negotiating the 2026-07-28 revision: it registers as a
    native application (echoed), logs in, and probes with a stateless `server/discover` carrying
    that revision's headers, which crosses the gateway to the origin. The origin (mcp 1.x) speaks
    2025-11-25 at most and refuses the probe, so the client falls back to `initialize`."""
    seen = len(any_stack.origin.requests())
    run = run_client("ts2", any_stack)

    expect_passed(run)
    (registration,) = run.http("/register")
    assert (registration["status"], registration["application_type_sent"]) == (201, "native"), str(run)
    assert registration["application_type_echoed"] == "native", str(run)
    probes = [step for step in run.http("/mcp") if step.get("mcp_method") == "server/discover"]
    assert [step["mcp_protocol_version"] for step in probes] == ["2026-07-28"] * len(probes), str(run)
    assert probes[0]["status"] == 401 and "resource_metadata=" in probes[0]["www_authenticate"], str(run)
    assert probes[-1]["status"] == 400, str(run)
    refused = [e for e in any_stack.origin.requests()[seen:] if {"mcp-method", "mcp-protocol-version"} <= set(e["headers"])]
    assert [e["status"] for e in refused][:1] == [400], "the probe with a token reaches the origin, which refuses it"
    assert run.one("initialize")["protocol"] == "2025-11-25", str(run)
    assert_logged_in(run, any_stack, client_auth="none")
    assert_session(run)


@pytest.fixture(scope="module", params=["public", "private"])
def modern_stack(request):
    """The Access emulator, the 2.x origin (`clients/sdk2/origin.mjs`, @modelcontextprotocol/server),
    which serves the 2026-07-28 revision only and checks the Access JWT itself, and the Worker in
    front of it (the secret held): `public` reaches the origin at its URL; `private` only through
    the ORIGIN_SERVICE binding, as a Workers VPC service (workerd, ORIGIN_URL unresolvable)."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}/callback"
    with (
        start_emulator(redirect_uris=[callback]) as emulator,
        start_modern_origin(emulator.issuer, callback, emulator.configure()["config"]["email"]) as origin,
    ):
        if request.param == "public":
            worker = start_worker(emulator, origin_url=origin.base_url, port=port)
        else:
            worker = start_worker_in_workerd(
                emulator, origin_url=PRIVATE_ORIGIN_URL, origin_service=origin.base_url, port=port
            )
        with worker:
            yield SimpleNamespace(emulator=emulator, origin=origin, worker=worker, private=request.param == "private")


def test_a_2026_07_28_client_and_origin_end_to_end(modern_stack):
    """Both ends on the 2.x SDK, and 2026-07-28 is what they speak: the origin refuses anything
    older. The client registers, logs in (consent, Access, the token exchange), and its stateless
    `server/discover` and `tools/call ping` reach the origin through the gateway with that
    revision's MCP-Protocol-Version, Mcp-Method and Mcp-Name headers, each with an Access JWT
    the origin verified itself; ping answers pong. Without such a token the origin answers 401.
    The same through the ORIGIN_SERVICE binding, whose log lines say so."""
    stack = modern_stack
    run = run_client("ts2", stack)

    expect_passed(run)
    assert run.one("initialize")["protocol"] == "2026-07-28", str(run)
    (registration,) = run.http("/register")
    assert (registration["status"], registration["application_type_echoed"]) == (201, "native"), str(run)
    assert_logged_in(run, stack, client_auth="none")
    assert_session(run)
    arrived = stack.origin.requests()
    assert arrived and all(entry["authorization"] for entry in arrived), arrived
    assert [(e["rpc_method"], e["mcp_method"], e["mcp_name"], e["mcp_protocol_version"], e["status"]) for e in arrived] == [
        ("server/discover", "server/discover", None, "2026-07-28", 200),
        ("tools/list", "tools/list", None, "2026-07-28", 200),
        ("tools/call", "tools/call", "ping", "2026-07-28", 200),
    ], arrived
    proxied = [line for line in stack.worker.request_log() if line["route"] == "mcp" and line["origin_status"]]
    binding = "ORIGIN_SERVICE" if stack.private else None
    assert len(proxied) >= len(arrived) and {line["origin_binding"] for line in proxied} == {binding}, proxied

    def origin_answer(token: str | None) -> int:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.post(stack.origin.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers).status_code

    def mint(**claims) -> str:
        return stack.emulator.control("mint", {"claims": claims})["token"]

    assert origin_answer(None) == 401
    assert origin_answer(mint(aud="https://other.example.com/callback")) == 401
    assert origin_answer(mint(email="someone-else@example.com")) == 401
    assert origin_answer(mint()) == 400, "a valid token gets past the check; the 2025-era request does not"


# Without a secret to check ("PKCE without client secret") the Worker advertises only `none` in
# token_endpoint_auth_methods_supported. The TypeScript SDK (Inspector's too) then leaves a
# configured secret out; the Python SDK presents it as its client information says.
PRESENTS_AN_UNADVERTISED_SECRET = {"ts": False, "py": True, "inspector": False}


@pytest.mark.parametrize("client", CLIENTS)
def test_pre_registered_secret_the_worker_cannot_verify_is_invalid_client(client, any_stack):
    """A wrong secret, or any secret when the Worker holds none, is refused at the token endpoint
    with invalid_client (RFC 6749 §5.2), before Access sees the code. A client that leaves out a
    secret the Worker does not advertise logs in as the public client it then is."""
    secret = "not-the-secret" if holds_secret(any_stack) else any_stack.emulator.client_secret
    run = run_client(client, any_stack, "--client-id", any_stack.emulator.client_id, "--client-secret", secret)

    if not holds_secret(any_stack) and not PRESENTS_AN_UNADVERTISED_SECRET[client]:
        expect_passed(run)
        assert_logged_in(run, any_stack, client_auth="none")
        assert_session(run)
        return
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
def test_refresh_after_the_access_token_expired(client, deployment, deployed_stack):
    """Access tokens live 3 s (Inspector: 8 s); the client logs in, calls ping, waits a second
    longer than that and calls again, so it must refresh (through the Worker's token endpoint)
    to succeed — in every deployment.

    What the client holds is Access's JWT, or in sealed runs the Worker's own token (not a JWT,
    so neither the edge nor the origin could check it as one); either way the origin, which
    accepts only an Access-signed JWT, received every request with an Authorization header."""
    stack = deployed_stack
    stack.emulator.configure(access_token_ttl=ACCESS_TOKEN_TTL[client])
    origin_seen = len(stack.origin.requests())
    run = run_client(client, stack, "--refresh-after", str(REFRESH_AFTER[client]))

    expect_passed(run)
    assert_logged_in(run, stack, client_auth="none")
    assert_session(run, calls=2)
    stats = stack.emulator.stats()
    assert stats["counts"]["token"] >= 2 and stats["last_token_request"]["form"]["grant_type"] == "refresh_token", str(run)
    if client in SDK_CLIENTS:
        after_wait = run.steps[run.steps.index(run.one("wait")):]
        refreshes = [s for s in after_wait if s["step"] == "http" and s.get("grant_type") == "refresh_token"]
        assert [step["status"] for step in refreshes] == [200], str(run)

    held = run.one("tokens")
    assert held["access_token"] == {"dots": 0 if deployment.sealed else 2}, f"{deployment}: the client holds {held}\n{run}"
    assert held["refresh_token"] == {"dots": 0}, str(run)
    arrived = stack.origin.requests()[origin_seen:]
    assert arrived and all(entry["authorization"] for entry in arrived), arrived
    assert any(entry["method"] == "POST" and entry["status"] == 200 for entry in arrived), arrived


@pytest.fixture
def lossy_stack():
    """The emulator, the seed's origin and the Worker, reached through a proxy that loses the
    first refresh's answer (tests/support/dropping_proxy.py). The Worker's PUBLIC_ORIGIN is the
    proxy's, so every URL the client learns goes through it."""
    port = free_port()
    with DroppingProxy(f"http://127.0.0.1:{port}", drops=1) as proxy:
        with (
            start_emulator(redirect_uris=[proxy.url + "/callback"]) as emulator,
            start_origin(emulator.base_url, emulator.client_id, emulator.configure()["config"]["email"]) as origin,
            start_worker(emulator, origin_url=origin.base_url, port=port, PUBLIC_ORIGIN=proxy.url) as worker,
        ):
            seen = SimpleNamespace(mcp_url=proxy.url + "/mcp", url=proxy.url, settings=worker.settings, log=worker.log)
            yield SimpleNamespace(emulator=emulator, origin=origin, worker=seen), proxy


def test_a_lost_refresh_answer_costs_no_new_login(lossy_stack):
    """The Python SDK refreshes after its access token expired; the answer is lost on the way
    back (Access has rotated the refresh token by then, strictly: a used one presented again would
    revoke the login). The SDK's session fails on it; the app reconnects with the tokens it holds,
    the SDK refreshes with the same refresh token again, and the gateway's reuse grace answers
    with the lost exchange's tokens: no second login, no second exchange at Access."""
    stack, proxy = lossy_stack
    stack.emulator.configure(access_token_ttl=ACCESS_TOKEN_TTL["py"], strict_rotation=True)
    run = run_client("py", stack, "--refresh-after", str(REFRESH_AFTER["py"]), "--reconnect")

    expect_passed(run)
    assert proxy.dropped == 1, str(run)
    assert len(run.all("authorization")) == 1, f"a second login\n{run}"
    assert run.all("reconnect"), str(run)
    after_wait = run.steps[run.steps.index(run.one("wait")):]
    refreshes = [s for s in after_wait if s["step"] == "http" and s.get("grant_type") == "refresh_token"]
    assert [step["status"] for step in refreshes] == [200], f"the lost answer leaves no trace, the retry 200\n{run}"
    assert [step["text"] for step in run.all("tools/call")] == ["pong: e2e"] * 2, str(run)
    counts = stack.emulator.stats()["counts"]
    assert counts["token"] == 2, f"the code and one refresh at Access: {counts}"
    assert "refresh_reuse_revocations" not in counts, counts


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


@pytest.mark.parametrize("client", CLIENTS)
def test_passthrough_mode_refuses_opaque_access_tokens_at_the_token_exchange(client, passthrough_stack):
    """With TOKEN_MODE=passthrough the client would get Access's opaque access token, which no
    MCP request could ever be validated with. The token exchange says so instead: a JSON 500
    server_error naming TOKEN_MODE and the opaque tokens; the client holds nothing and the origin
    sees nothing."""
    stack = passthrough_stack
    stack.emulator.configure(opaque_access_token=True)
    origin_seen, worker_seen = len(stack.origin.requests()), len(stack.worker.request_log())
    run = run_client(client, stack)

    assert run.status == 1 and run.one("result")["outcome"] == "failed", str(run)
    assert run.all("tools/call") == [] and run.all("tokens") == [], str(run)
    if client in SDK_CLIENTS:
        exchanges = run.http("/token")
        assert [(step["status"], step["oauth_error"]) for step in exchanges] == [(500, "server_error")], str(run)
        description = exchanges[0]["oauth_error_description"]
    else:  # Inspector shows the error_description, not the code
        description = run.one("tools/list")["error"]["message"]
    assert "TOKEN_MODE" in description and "opaque" in description, str(run)
    exchanges = [line for line in stack.worker.request_log()[worker_seen:] if line["route"] == "token"]
    assert [(line["status"], "TOKEN_MODE" in line["error"]) for line in exchanges] == [(500, True)], exchanges
    assert stack.emulator.stats()["counts"].get("token", 0) == 1, "Access answered the one exchange"
    assert stack.origin.requests()[origin_seen:] == []


DENIED_TOOL = "delete_everything"  # not even the origin's: the gateway refuses it by name


@pytest.mark.parametrize("client", ("ts", "py"))
def test_policy_denial_is_a_tool_error_and_the_session_goes_on(client, policy_stack):
    """MCP_POLICY refuses a tool: the gateway answers the call with a JSON-RPC error (code -32003,
    HTTP 200) that the SDK raises as an McpError for that one call; the same session then calls
    ping again, without logging in again. (A pre-registered client: registration is not what
    this is about.)"""
    stack = policy_stack
    worker_seen = len(stack.worker.request_log())
    credentials = ["--client-id", stack.emulator.client_id, "--client-secret", stack.emulator.client_secret]
    run = run_client(client, stack, *credentials, "--denied-tool", DENIED_TOOL)

    expect_passed(run)
    assert_logged_in(run, stack, client_auth={"ts": "client_secret_basic", "py": "client_secret_post"}[client])
    assert_session(run, calls=2)
    denied = run.one("denied")
    assert (denied["surfaced"], denied["error_class"], denied["code"]) == ("error", "McpError", -32003), str(run)
    assert "Forbidden" in denied["message"], str(run)
    steps = [step["step"] for step in run.steps if step["step"] in ("tools/call", "denied")]
    assert steps == ["tools/call", "denied", "tools/call"], str(run)
    assert not [step for step in run.all("http")[run.steps.index(denied) :] if step["status"] in (401, 403)], str(run)
    calls = [line for line in stack.worker.request_log()[worker_seen:] if line["mcp_method"] == "tools/call"]
    assert [(line["mcp_name"], line["decision"], line["origin_status"]) for line in calls] == [
        ("ping", "allow", 200), (DENIED_TOOL, "deny", None), ("ping", "allow", 200)
    ], calls
