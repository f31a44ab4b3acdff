"""Run the gateway Worker in workerd with `wrangler dev` on a free loopback port.

    worker = start_worker(emulator, origin_url=origin.base_url)
    ...  # worker.url, worker.mcp_url, worker.log()
    worker.stop()

The bundle is built once per test process (`scripts/build`, what wrangler.toml's `[build]`
runs for `wrangler deploy`); each Worker then runs it under a generated wrangler.toml without
a build step, so starting one takes a couple of seconds and editing `src/` never restarts a
running test Worker. Settings are passed as `--var`s, as `wrangler deploy` would pass [vars]
and secrets. support/workerd.py starts the same Worker under workerd directly, without wrangler.
"""

import atexit
import base64
import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import httpx

from support.stack import Emulator, Service, Stoppable, free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT = 180.0


TOOL_ENV = {
    "PATH": f"{ROOT / 'node_modules' / '.bin'}:{Path.home() / '.cargo' / 'bin'}:{os.environ['PATH']}",
    "CI": "true",
    "WRANGLER_SEND_METRICS": "false",
    "CLOUDFLARE_CF_FETCH_ENABLED": "false",
}


@functools.cache
def built_bundle(features: str = "") -> Path:
    """Builds the Worker once per process (and cargo `features`) and returns the entry module of
    a private copy: wrangler dev reloads (and empties the isolate's caches) whenever its bundle
    changes, so test Workers must not run the bundle another build may rewrite."""
    env = {**os.environ, **TOOL_ENV, "GATEWAY_FEATURES": features}
    subprocess.run([str(ROOT / "scripts" / "build")], cwd=ROOT, check=True, capture_output=True, env=env)
    copy = Path(tempfile.mkdtemp(prefix="gateway-bundle-")) / "build"
    shutil.copytree(ROOT / "build", copy, ignore=shutil.ignore_patterns("dry-run*", ".tmp"))
    atexit.register(shutil.rmtree, copy.parent, True)
    return copy / "worker" / "shim.mjs"


def compatibility_date() -> str:
    return re.search(r'^compatibility_date = "([^"]+)"', (ROOT / "wrangler.toml").read_text(), re.M).group(1)


def compatibility_flags() -> list[str]:
    """wrangler.toml's compatibility flags, except `global_fetch_strictly_public`: on Cloudflare
    it keeps fetch() to public addresses, and every test stack (the Access emulator, the origins,
    the client metadata documents) is on loopback. Local workerd does not enforce it today (a test
    Worker with it still fetched a loopback document), so no test here proves it; leaving it out
    keeps the suites working should a later workerd enforce it. The one place it is removed."""
    flags = tomllib.loads((ROOT / "wrangler.toml").read_text()).get("compatibility_flags", [])
    return [flag for flag in flags if flag != "global_fetch_strictly_public"]


def sealing_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class Worker(Stoppable):
    def __init__(self, service: Service, port: int, settings: dict[str, str]):
        self._service = service
        self._stopped_log: str | None = None
        self.url = f"http://127.0.0.1:{port}"
        self.mcp_url = self.url + settings.get("MCP_PATH", "/mcp")
        self.settings = settings
        STARTED.append(self)

    def log(self) -> str:
        """Everything the Worker and wrangler (or workerd) printed so far (kept after `stop()`)."""
        if self._stopped_log is not None:
            return self._stopped_log
        return self._service.stdout_path.read_text(errors="replace") + self._service.stderr_path.read_text(errors="replace")

    def request_log(self) -> list[dict]:
        """The Worker's structured request lines (one JSON object per request)."""
        return [
            json.loads(line)
            for line in (line.strip() for line in self.log().splitlines())
            if line.startswith("{") and '"route"' in line
        ]

    def stop(self) -> None:
        if self._stopped_log is None:
            self._stopped_log = self.log()
        super().stop()


# Every Worker this process started, for the log scan at the end of a test run.
STARTED: list[Worker] = []
# Tool argument values sent by tests start with this, so the scan finds any the Worker logged.
ARGUMENT_MARKER = "tool-argument-never-logged-"


RATE_LIMITER = """
[[ratelimits]]
name = "MCP_RATE_LIMITER"
namespace_id = "1001"
simple = {{ limit = {limit}, period = 10 }}
"""


def worker_settings(emulator: Emulator, origin_url: str, with_secret: bool, settings: dict[str, str]) -> dict[str, str]:
    """Every setting of a test Worker: the emulator's Access app, the origin, a fresh sealing key,
    the client secret unless `with_secret=False`, then `settings`."""
    values = {
        "ACCESS_ISSUER": emulator.issuer,
        "ACCESS_CLIENT_ID": emulator.client_id,
        "ORIGIN_URL": origin_url,
        "SEALING_KEYS": sealing_key(),
        **settings,
    }
    if with_secret:
        values["ACCESS_CLIENT_SECRET"] = emulator.client_secret
    return values


def start_worker(
    emulator: Emulator, *, origin_url: str, port: int | None = None, with_secret: bool = True, ready_status: int = 200,
    rate_limit: int | None = None, features: str = "", persist_to: Path | None = None, **settings: str,
) -> Worker:
    """Start the Worker as the one client of `emulator`'s Access app, proxying to `origin_url`.
    `with_secret=False` runs it in "PKCE without client secret" mode. Extra `settings` are
    further [vars] (e.g. CONSENT_TTL_SECONDS="0"). Register `http://127.0.0.1:<port>/callback`
    at the emulator (pick the port with `free_port()` first). `ready_status` is what the resource
    metadata answers once the Worker runs: 500 for a configuration the Worker must refuse.
    `rate_limit=N` declares the MCP_RATE_LIMITER Workers Rate Limiting binding, N requests per
    10 seconds (the shortest period the binding has). `features`: cargo features of a test build.
    `persist_to`: where the runtime keeps its local state (the Cache API's entries), to share it
    between Workers (two isolates of one location) or keep it over a restart; by default a folder
    of the Worker's own, `worker.state`."""
    port = port or free_port()
    values = worker_settings(emulator, origin_url, with_secret, settings)
    service = Service("worker")
    config = service.folder / "wrangler.toml"
    toml = (
        f'name = "mcp-access-gateway-test"\nmain = "{built_bundle(features)}"\n'
        f'compatibility_date = "{compatibility_date()}"\ncompatibility_flags = {json.dumps(compatibility_flags())}\n'
    )
    if rate_limit is not None:
        toml += RATE_LIMITER.format(limit=rate_limit)
    config.write_text(toml)
    argv = [
        str(ROOT / "node_modules" / ".bin" / "wrangler"), "dev", "--config", str(config),
        "--ip", "127.0.0.1", "--port", str(port),
        "--inspector-port", str(free_port()),
        "--show-interactive-dev-session=false",
        "--persist-to", str(persist_to or service.folder / "state"),
    ]
    for name, value in values.items():
        argv += ["--var", f"{name}:{value}"]
    service.start(argv, {**os.environ, **TOOL_ENV}, cwd=service.folder)
    worker = Worker(service, port, values)
    worker.state = persist_to or service.folder / "state"

    def ready() -> bool:
        try:
            return httpx.get(worker.url + "/.well-known/oauth-protected-resource", timeout=1).status_code == ready_status
        except httpx.HTTPError:
            return False

    service.wait_until(ready, timeout=WORKER_START_TIMEOUT, interval=0.2)
    return worker
