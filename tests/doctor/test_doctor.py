"""`mcp-access-gateway doctor` against the local stack: each fault a deployment can have, made
with the Access emulator's switches or a Worker setting, and the exact verdict lines doctor
prints for it. `--login` runs headlessly: doctor's `--browser-command` is tests/doctor/browser.py,
which plays the person's browser through consent and the Access login.
"""

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from support.fake_origin import start_fake_origin
from support.worker import ROOT, free_port, start_worker
from support.workerd import PRIVATE_ORIGIN_URL, start_worker_in_workerd

BROWSER = f"{sys.executable} {Path(__file__).with_name('browser.py')}"
BINARY = ROOT / "target" / "debug" / "mcp-access-gateway"
DOCTOR_TIMEOUT = 120


@pytest.fixture(scope="session")
def doctor():
    """Runs doctor and returns (exit status, lines, with timings as `N ms`)."""
    subprocess.run(["cargo", "build", "--quiet", "--bin", "mcp-access-gateway"], cwd=ROOT, check=True)

    def run(url: str, *args: str) -> tuple[int, list[str]]:
        argv = [str(BINARY), "doctor", url, "--browser-command", BROWSER, "--login-timeout", "60", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=DOCTOR_TIMEOUT)
        assert "Bearer" not in done.stdout and "access_token" not in done.stdout
        return done.returncode, [re.sub(r"\(\d+ ms\)", "(N ms)", line) for line in done.stdout.splitlines()]

    return run


def failures(lines: list[str]) -> list[str]:
    """Every line that is not a ✓."""
    return [line for line in lines if not line.startswith("✓")]


def healthy_lines(worker_url: str, issuer: str) -> list[str]:
    return [
        f"✓ 1. POST without a token → 401 with resource_metadata {worker_url}/.well-known/oauth-protected-resource/mcp",
        f"✓ 2. resource metadata at {worker_url}/.well-known/oauth-protected-resource/mcp: resource {worker_url}/mcp, authorization server {worker_url}",
        f"✓ 2. resource metadata at {worker_url}/.well-known/oauth-protected-resource: resource {worker_url}/mcp, authorization server {worker_url}",
        f"✓ 3. metadata at {worker_url}/.well-known/oauth-authorization-server, issuer byte-equal",
        f"✓ 3. metadata at {worker_url}/.well-known/openid-configuration, issuer byte-equal",
        "✓ 3. S256, token_endpoint_auth_method none, standard grant types, registration endpoint",
        "✓ 3. client_id_metadata_document_supported: clients may use a URL as client id (CIMD)",
        "REGISTERED",
        "✓ 4. a client id naming an unreachable metadata document is refused (400)",
        f"✓ 4. {worker_url}/token answers a made-up code with 400 invalid_grant (JSON)",
        "✓ 5. /authorize shows the consent page",
        f"✓ 5. Access accepts the gateway's callback {worker_url}/callback",
        f"✓ 6. Access discovery at {issuer}/.well-known/openid-configuration: issuer matches, endpoints usable",
        f"✓ 6. JWKS at {issuer}/jwks: 1 RS256 key(s) usable",
        "✓ 7. a bad token → 401 invalid_token with the resource_metadata challenge",
    ]


def normalised(lines: list[str]) -> list[str]:
    """The registration line (its loopback port is random) as a placeholder."""
    return ["REGISTERED" if line.startswith("✓ 4. registered http://127.0.0.1:") else line for line in lines]


def fresh_worker(stack, start=start_worker, **settings):
    """Another Worker in front of the stack's emulator and origin (a fresh isolate: nothing
    cached), its callback registered at the emulator; `start` may be start_worker_in_workerd."""
    port = free_port()
    callback = settings.get("PUBLIC_ORIGIN", f"http://127.0.0.1:{port}") + "/callback"
    stack.emulator.configure(redirect_uris=[*stack.emulator.redirect_uris, callback])
    settings = {"origin_url": stack.origin.base_url, **settings}
    return start(stack.emulator, port=port, **settings)


def test_a_healthy_deployment_passes_every_step(stack, doctor):
    status, lines = doctor(stack.worker.mcp_url, "--origin", stack.origin.url)
    assert normalised(lines) == [
        *healthy_lines(stack.worker.url, stack.emulator.issuer),
        f"✓ 7. the origin {stack.origin.url} refuses a request without credentials (401)",
    ]
    assert status == 0


def test_login_exchanges_the_token_and_calls_a_tool(stack, doctor):
    status, lines = doctor(stack.worker.mcp_url, "--login", "--call", "ping")
    assert lines[-4:] == ["✓ 8. Access login (N ms)", "✓ 8. token (N ms)", "✓ 8. tools/list → 1 tool (N ms)", "✓ 8. tools/call ping → pong: hello (N ms)"]
    assert failures(lines) == [] and status == 0


def test_the_gateways_callback_not_registered_at_access(stack, doctor):
    stack.emulator.configure(redirect_uris=["http://127.0.0.1:1/callback"])
    status, lines = doctor(stack.worker.mcp_url)
    callback = stack.worker.url + "/callback"
    assert failures(lines) == [
        f"✗ 5. Access refused the gateway's callback {callback}: 400 with an HTML page \"Invalid request redirect_uri is not registered for this application.\" — fix: add {callback} to the Redirect URLs of the Access for SaaS application (Zero Trust → Access → Applications → the app → Edit)"
    ]
    assert status == 1


def test_a_missing_sealing_key(stack, doctor):
    worker = start_worker(stack.emulator, origin_url=stack.origin.base_url, ready_status=500, SEALING_KEYS="")
    try:
        status, lines = doctor(worker.mcp_url)
    finally:
        worker.stop()
    assert lines == [
        "✗ 1. POST without a token → the gateway answered 500: the gateway is misconfigured: SEALING_KEYS is missing — fix: create the secret: openssl rand -base64 32 | npx wrangler secret put SEALING_KEYS"
    ]
    assert status == 1


def test_access_discovery_down_and_answering_html(stack, doctor):
    worker = fresh_worker(stack)
    try:
        stack.emulator.configure(discovery_down=True)
        status, lines = doctor(worker.mcp_url, "--access-issuer", stack.emulator.issuer)
    finally:
        worker.stop()
    fix = "fix: the gateway cannot read Access's discovery document: see step 6 (ACCESS_ISSUER)"
    unavailable = "502 temporarily_unavailable: the upstream service failed; try again later"
    assert failures(lines) == [
        f"✗ 3. metadata at {worker.url}/.well-known/oauth-authorization-server → {unavailable} — {fix}",
        f"✗ 3. metadata at {worker.url}/.well-known/openid-configuration → {unavailable} — {fix}",
        f"✗ 6. Access discovery at {stack.emulator.issuer}/.well-known/openid-configuration answered 503 with an HTML page \"Service Unavailable Access is unavailable.\" — fix: set ACCESS_ISSUER to the issuer exactly as the Access for SaaS app shows it, and check that Access is up",
    ]
    assert status == 1


def test_the_origin_down(stack, doctor):
    worker = fresh_worker(stack, origin_url=f"http://127.0.0.1:{free_port()}")
    try:
        status, lines = doctor(worker.mcp_url, "--login")
    finally:
        worker.stop()
    assert failures(lines) == [
        "✗ 8. initialize → 502: the gateway could not reach the origin — fix: check ORIGIN_URL and that the Tunnel to the origin is up"
    ]
    assert status == 1


def test_a_private_deployment(stack, doctor):
    """The origin reached only through the ORIGIN_SERVICE binding (the Worker under workerd, the
    origin bound as a service, ORIGIN_URL unresolvable): its URL not answering is the healthy
    state, and the line names the binding. With the bound origin down, the login's MCP step says
    what to check for a VPC service."""
    private = fresh_worker(
        stack, start=start_worker_in_workerd, origin_url=PRIVATE_ORIGIN_URL, origin_service=stack.origin.base_url
    )
    try:
        status, lines = doctor(private.mcp_url, "--private-origin", PRIVATE_ORIGIN_URL + "/mcp")
    finally:
        private.stop()
    assert normalised(lines[:-1]) == healthy_lines(private.url, stack.emulator.issuer)
    assert re.fullmatch(
        rf"✓ 7\. the origin {PRIVATE_ORIGIN_URL}/mcp does not answer from here \(.+\): private, reached only through the gateway's ORIGIN_SERVICE binding",
        lines[-1],
    ), lines[-1]
    assert status == 0

    down = fresh_worker(
        stack, start=start_worker_in_workerd, origin_url=PRIVATE_ORIGIN_URL, origin_service=f"127.0.0.1:{free_port()}"
    )
    try:
        status, lines = doctor(down.mcp_url, "--login", "--private-origin", PRIVATE_ORIGIN_URL + "/mcp")
    finally:
        down.stop()
    assert failures(lines) == [
        "✗ 8. initialize → 502: the gateway could not reach the origin — fix: check the VPC service bound as ORIGIN_SERVICE (npx wrangler vpc service get <service id>) and that its Tunnel is connected (cloudflared 2025.7.0 or later over QUIC, outbound UDP 7844); the gateway's log line says what the binding threw (npx wrangler tail)"
    ]
    assert status == 1


def test_an_origin_hostname_that_answers_without_authentication(stack, doctor):
    with start_fake_origin() as fake:
        status, lines = doctor(stack.worker.mcp_url, "--origin", fake.base_url + "/rpc")
    assert failures(lines) == [
        f"✗ 7. the origin {fake.base_url}/rpc answered 200 without Access: anyone can call it and forge the identity headers — fix: protect the origin's hostname with an Access application that admits only a service token (ORIGIN_ACCESS_CLIENT_ID / ORIGIN_ACCESS_CLIENT_SECRET), or stop publishing it"
    ]
    assert status == 1


class _ChallengeProxy(BaseHTTPRequestHandler):
    """Forwards to the Worker, except that POST /token gets a WAF's HTML challenge page."""

    target = ""

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.command == "POST" and self.path.startswith("/token"):
            status, headers, content = 403, {"content-type": "text/html"}, b"<html><body>Just a moment...</body></html>"
        else:
            skip = {"host", "content-length", "connection"}
            answer = httpx.request(
                self.command, self.target + self.path, content=body,
                headers=[(k, v) for k, v in self.headers.items() if k.lower() not in skip],
            )
            status, content = answer.status_code, answer.content
            headers = {k: v for k, v in answer.headers.multi_items() if k.lower() not in ("content-length", "content-encoding", "transfer-encoding", "connection")}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _forward

    def log_message(self, *args):
        pass


def test_token_behind_an_html_challenge_page(stack, doctor):
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), type("Proxy", (_ChallengeProxy,), {}))
    public = f"http://127.0.0.1:{proxy.server_port}"
    worker = fresh_worker(stack, PUBLIC_ORIGIN=public)
    proxy.RequestHandlerClass.target = worker.url
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        status, lines = doctor(public + "/mcp")
    finally:
        proxy.shutdown()
        worker.stop()
    assert failures(lines) == [
        f"✗ 4. {public}/token answered a token request 403 with an HTML page \"Just a moment...\" — fix: exempt the gateway's paths (/mcp, /.well-known/*, /register, /authorize, /callback, /token) from WAF, Bot Fight and challenge rules: clients cannot solve them"
    ]
    assert status == 1


def test_opaque_access_tokens_in_passthrough_mode(passthrough_stack, doctor):
    passthrough_stack.emulator.configure(opaque_access_token=True)
    status, lines = doctor(passthrough_stack.worker.mcp_url, "--login")
    assert failures(lines) == [
        "✗ 8. token exchange → the gateway answered 500: the gateway is misconfigured: TOKEN_MODE is passthrough, but Access issues opaque access tokens (use auto or sealed) — fix: set TOKEN_MODE to auto (the default) or sealed in wrangler.toml"
    ]
    assert status == 1


def test_the_seeds_setup_without_the_gateway(stack, doctor):
    """The bug report's setup: the FastMCP origin straight behind Access for SaaS."""
    status, lines = doctor(stack.origin.url)
    issuer, base = stack.emulator.issuer, stack.emulator.base_url
    path = issuer.removeprefix(base)
    fix = "fix: put mcp-access-gateway in front of this server (README: Deploy it)"
    assert [line for line in lines if line.startswith(("✗ 3.", "⚠ 3.", "✓ 3."))] == [
        f"✗ 3. the authorization server {issuer} has a path: clients derive a metadata URL Access does not serve — {fix}",
        f"✗ 3. no metadata at {base}/.well-known/oauth-authorization-server{path} (404) — {fix}",
        f"✗ 3. no metadata at {base}/.well-known/openid-configuration{path} (404) — {fix}",
        f"✓ 3. metadata at {issuer}/.well-known/openid-configuration, issuer byte-equal",
        f"✗ 3. no code_challenge_methods_supported with S256: 2025-11-25 clients refuse to continue — {fix}",
        f"✗ 3. non-standard grant type names: refresh_tokens, authorization_code_with_pkce — {fix}",
        f"✗ 3. token_endpoint_auth_methods instead of token_endpoint_auth_methods_supported, without none — {fix}",
        f"✗ 3. no registration_endpoint: clients without a pre-registered client id cannot register — {fix}",
        f"⚠ 3. no client_id_metadata_document_supported: clients that prefer CIMD fall back to registration — {fix}",
    ]
    assert status == 1


def test_json_output(stack, doctor):
    status, lines = doctor(stack.worker.mcp_url, "--json")
    report = json.loads("\n".join(lines))
    assert report["ok"] is True and status == 0
    assert report["lines"][0] == {
        "step": 1,
        "verdict": "pass",
        "saw": f"POST without a token → 401 with resource_metadata {stack.worker.url}/.well-known/oauth-protected-resource/mcp",
        "fix": None,
    }
