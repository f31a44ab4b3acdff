"""Start the Access emulator and the seed's MCP origin on free loopback ports, each in its own process
group (setsid), for tests and the local demo.

    emulator = start_emulator(redirect_uris=["http://localhost:8765/callback"])
    origin = start_origin(emulator.base_url, emulator.client_id, "user@example.com", "mcp.example.com")
    ...
    origin.stop(); emulator.stop()

Both also work as context managers. Each service keeps its output in a temporary folder that `stop()`
removes; a service that fails to start raises with the tail of its output.
"""

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

TESTS_DIR = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0


class Service:
    """A child process in its own session, with stdout and stderr in files of its own temp folder."""

    def __init__(self, name: str):
        self.name = name
        self.folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.stdout_path = self.folder / "stdout"
        self.stderr_path = self.folder / "stderr"
        self.process: subprocess.Popen | None = None

    def start(self, argv: list[str], env: dict[str, str], cwd: Path = TESTS_DIR) -> None:
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # setsid: stop() signals the whole process group
            )

    def wait_until(self, probe, timeout: float = START_TIMEOUT, interval: float = 0.05):
        """Poll `probe()` until it returns something truthy; fail fast if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail(f"exited with {self.process.returncode}")
            result = probe()
            if result:
                return result
            time.sleep(interval)
        self._fail(f"not ready after {timeout} s")

    def _fail(self, why: str):
        output = self.stderr_path.read_text(errors="replace")[-4000:]
        self.stop()
        raise RuntimeError(f"{self.name} {why}; stderr:\n{output}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class Stoppable:
    _service: Service

    def stop(self) -> None:
        self._service.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


class Emulator(Stoppable):
    """A running Access emulator. client_id, client_secret, redirect_uris and issuer are its startup
    values (what `reset()` restores); `configure()` with no switches returns the current view."""

    def __init__(self, service: Service, base_url: str):
        self._service = service
        self._http = httpx.Client(base_url=base_url + "/__emulator/")
        self.base_url = base_url
        view = self._call("GET", "config")
        self.issuer = view["issuer"]
        self.client_id = view["config"]["client_id"]
        self.client_secret = view["config"]["client_secret"]
        self.redirect_uris = view["config"]["redirect_uris"]

    def control(self, action: str, body: dict | None = None) -> dict:
        """POST /__emulator/<action>: config (a JSON patch of switches), rotate-key, rekey,
        retire-old-key, reset, mint ({"claims": {...}, "headers": {...}})."""
        return self._call("POST", action, body or {})

    def _call(self, method: str, action: str, body: dict | None = None) -> dict:
        response = self._http.request(method, action, json=body)
        response.raise_for_status()
        return response.json()

    def mint(self, audience: str, **claims) -> str:
        """An access token for `audience` signed by the current key, as Access would issue it
        (the emulator's user, `claims` on top; `None` removes a claim)."""
        return self.control("mint", {"claims": {"aud": audience, **claims}})["token"]

    def configure(self, **switches) -> dict:
        return self.control("config", switches)

    def reset(self) -> dict:
        return self.control("reset")

    def stats(self) -> dict:
        return self._call("GET", "stats")

    def stop(self) -> None:
        self._http.close()
        super().stop()


class Origin(Stoppable):
    """An MCP origin: the seed's FastMCP server, or the 2.x one. `url` is its MCP endpoint;
    `requests()` is its request log."""

    def __init__(self, service: Service, port: int, request_log: Path):
        self._service = service
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = self.base_url + "/mcp"
        self.request_log = request_log

    def requests(self) -> list[dict]:
        """Every request the origin received so far: method, path, host, authorization (bool),
        header names and status; header values only for the identity headers the gateway sets (never credentials)."""
        if not self.request_log.exists():
            return []
        return [json.loads(line) for line in self.request_log.read_text().splitlines()]


def _flags(switches: dict) -> list[str]:
    """Switch values as the emulator's CLI flags."""
    argv = []
    for name, value in switches.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"{name}: an empty list cannot be passed as flags; use configure()")
            for item in value:
                argv += [flag, item]
        else:
            argv += [flag, "" if value is None else str(value)]
    return argv


def start_emulator(*, env: dict[str, str] | None = None, **switches) -> Emulator:
    """Start `python -m access_emulator` with `switches` (Config field names) as CLI flags and `env`
    added to the environment (e.g. ACCESS_EMULATOR_* variables)."""
    service = Service("access-emulator")
    service.start(
        [sys.executable, "-m", "access_emulator", "--port", "0", *_flags(switches)],
        {**os.environ, "PYTHONPATH": str(TESTS_DIR), **(env or {})},
    )

    def announced() -> dict | None:
        line, newline, _ = service.stdout_path.read_text().partition("\n")
        return json.loads(line) if newline else None

    base_url = service.wait_until(announced)["base_url"]
    try:
        return Emulator(service, base_url)
    except Exception:
        service.stop()
        raise


def eventually(probe, timeout: float):
    """`probe()`'s first truthy answer, polled for up to `timeout` seconds (wrangler prints the
    Worker's lines a little after the answers), else its last one: the caller's assertion says
    what is missing."""
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts_connections(port: int) -> bool:
    # A bare TCP connect, so readiness checks never show up in the origin's request log.
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start_origin(issuer_base: str, client_id: str, allowed_email: str, public_host: str = "mcp.example.com") -> Origin:
    """Start tests/origin/server.py trusting the Access app `client_id` at `issuer_base`
    (the emulator's base_url); `public_host` only shapes its protected-resource metadata."""
    port = free_port()
    service = Service("mcp-origin")
    request_log = service.folder / "requests.jsonl"
    service.start(
        [sys.executable, str(TESTS_DIR / "origin" / "server.py")],
        {
            **os.environ,
            "CF_ACCESS_BASE_URL": issuer_base,
            "CF_TEAM_DOMAIN": urlsplit(issuer_base).netloc,  # required by the seed, unused with the base URL
            "CF_OIDC_APP_ID": client_id,
            "MCP_ALLOWED_EMAIL": allowed_email,
            "MCP_PUBLIC_HOST": public_host,
            "ORIGIN_PORT": str(port),
            "ORIGIN_REQUEST_LOG": str(request_log),
        },
    )
    service.wait_until(lambda: accepts_connections(port))
    return Origin(service, port, request_log)


def start_modern_origin(issuer: str, audience: str, allowed_email: str) -> Origin:
    """Start tests/e2e/clients/sdk2/origin.mjs, an MCP origin on @modelcontextprotocol/server 2.x
    that serves the 2026-07-28 revision only and accepts only Access JWTs from `issuer` for
    `audience` (Access sets `aud` to the redirect URI: the Worker's /callback) and `allowed_email`."""
    port = free_port()
    service = Service("mcp-origin-2026")
    request_log = service.folder / "requests.jsonl"
    service.start(
        [
            str(TESTS_DIR.parent / "node_modules" / ".bin" / "node"), str(TESTS_DIR / "e2e" / "clients" / "sdk2" / "origin.mjs"),
            "--port", str(port), "--issuer", issuer, "--audience", audience, "--email", allowed_email,
            "--request-log", str(request_log),
        ],
        dict(os.environ),
    )
    service.wait_until(lambda: accepts_connections(port))
    return Origin(service, port, request_log)


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge), as in the bug report's curl steps."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge
