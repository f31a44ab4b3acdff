"""The processes a benchmark run needs, all on 127.0.0.1, each in its own process group:
nginx (the fast canned MCP origin, and a streaming proxy to the SSE origin), the SSE origin,
and one workerd per Worker variant running the bundle `wrangler deploy --dry-run` emitted,
under a Cap'n Proto config generated here.

CPU placement: workerd runs on WORKER_CPU; this process, and so nginx, the SSE origin, the
Access emulator and the load generator it starts, runs on LOAD_CPU (scripts/bench pins it).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.stack import Service, accepts_connections, free_port  # noqa: E402  (setsid services, stopped by process group)
from support.worker import compatibility_date  # noqa: E402

BENCH = ROOT / "bench"
OUT = BENCH / "out"
WORKERD = ROOT / "node_modules" / ".bin" / "workerd"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
WORKER_CPU = "0"
TOOL_ENV = {
    **os.environ,
    "PATH": f"{ROOT / 'node_modules' / '.bin'}:{Path.home() / '.cargo' / 'bin'}:{os.environ['PATH']}",
    "CI": "true",
    "WRANGLER_SEND_METRICS": "false",
    "CLOUDFLARE_CF_FETCH_ENABLED": "false",
}

# The origin's answer to every `POST /mcp`: a JSON-RPC `tools/call` result, as a FastMCP
# server in JSON-response mode gives it.
TOOLS_CALL_RESULT = {
    "jsonrpc": "2.0",
    "id": 1,
    "result": {"content": [{"type": "text", "text": "pong"}], "isError": False},
}
SSE_SECOND_EVENT_DELAY_MS = 50


# --- origins ---


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port};
    location = /mcp {{
      default_type application/json;
      return 200 '{body}';
    }}
    location = /sse {{
      proxy_pass http://127.0.0.1:{sse_port};
      proxy_buffering off;
    }}
  }}
}}
"""


@dataclass
class Origins:
    """nginx on `url` (POST /mcp → the canned result; /sse → the SSE origin, unbuffered)."""

    nginx: Service
    sse: Service
    url: str

    def stop(self) -> None:
        self.nginx.stop()
        self.sse.stop()


def start_origins() -> Origins:
    sse_port, port = free_port(), free_port()
    sse = Service("bench-sse-origin")
    sse.start(
        [sys.executable, str(BENCH / "sse_origin.py"), str(sse_port), str(SSE_SECOND_EVENT_DELAY_MS)], dict(os.environ)
    )
    sse.wait_until(lambda: accepts_connections(sse_port))
    nginx = Service("bench-nginx")
    conf = nginx.folder / "nginx.conf"
    body = json.dumps(TOOLS_CALL_RESULT, separators=(",", ":"))
    conf.write_text(NGINX_CONF.format(dir=nginx.folder, port=port, sse_port=sse_port, body=body))
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx.start([nginx_bin, "-p", str(nginx.folder), "-c", str(conf)], dict(os.environ))
    nginx.wait_until(lambda: accepts_connections(port))
    return Origins(nginx, sse, f"http://127.0.0.1:{port}")


# --- bundles: exactly what `wrangler deploy --dry-run` emits ---


@dataclass(frozen=True)
class Bundle:
    name: str
    folder: Path
    main: str  # the entry module's file name
    modules: tuple[str, ...]  # every module file, entry first

    def files(self, suffix: str) -> list[Path]:
        return [self.folder / m for m in self.modules if m.endswith(suffix)]


def dry_run(name: str, entry: Path | None = None) -> Bundle:
    """`wrangler deploy --dry-run` of the project (entry None: its wrangler.toml, which runs
    scripts/build) or of a JS/TS Worker file (a generated wrangler.toml; wrangler bundles it)."""
    folder = OUT / "bundles" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    dist = folder / "dist"
    argv = [str(WRANGLER), "deploy", "--dry-run", "--outdir", str(dist)]
    if entry is not None:
        config = folder / "wrangler.toml"
        config.write_text(f'name = "bench-{name}"\nmain = "{entry}"\ncompatibility_date = "{compatibility_date()}"\n')
        argv += ["--config", str(config)]
    done = subprocess.run(argv, cwd=ROOT if entry is None else folder, env=TOOL_ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrangler deploy --dry-run ({name}) failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    scripts = sorted(p.name for p in dist.iterdir() if p.suffix in (".js", ".mjs"))
    if len(scripts) != 1:
        raise RuntimeError(f"{name}: expected one entry module in {dist}, found {scripts}")
    wasm = sorted(p.name for p in dist.iterdir() if p.suffix == ".wasm")
    return Bundle(name, dist, scripts[0], tuple(scripts + wasm))


# --- workerd ---


def capnp_text(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Cap'n Proto text literal for our values


def write_capnp(bundle: Bundle, config_name: str, bindings: dict[str, str]) -> Path:
    """A workerd config serving `bundle` on a socket "http" (its address is given at start),
    `bindings` as text bindings (how [vars] and secrets reach a Worker), and global fetch()
    allowed to loopback addresses."""
    modules = ",\n    ".join(
        f'(name = "{m}", {"wasm" if m.endswith(".wasm") else "esModule"} = embed "{m}")' for m in bundle.modules
    )
    text_bindings = ",\n    ".join(f"(name = {capnp_text(k)}, text = {capnp_text(v)})" for k, v in bindings.items())
    path = bundle.folder / f"{config_name}.capnp"
    path.write_text(
        f"""using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],  # address: see workerd_argv
);

const worker :Workerd.Worker = (
  modules = [
    {modules}
  ],
  compatibilityDate = "{compatibility_date()}",
  bindings = [
    {text_bindings}
  ],
);
"""
    )
    return path


@dataclass
class Workerd:
    service: Service
    config: Path
    url: str

    @property
    def pid(self) -> int:
        return self.service.process.pid

    def stop(self) -> None:
        self.service.stop()


def workerd_argv(config: Path, port: int, inspector_port: int | None = None) -> list[str]:
    """workerd serving `config` on 127.0.0.1:`port`, pinned to WORKER_CPU (taskset execs workerd,
    so the process id is workerd's own)."""
    argv = ["taskset", "-c", WORKER_CPU, str(WORKERD), "serve", str(config), "--socket-addr", f"http=127.0.0.1:{port}"]
    if inspector_port is not None:
        argv += ["--inspector-addr", f"127.0.0.1:{inspector_port}"]
    return argv


def spawn_workerd(name: str, config: Path, port: int | None = None, inspector_port: int | None = None) -> Workerd:
    """One workerd process for one variant, answering HTTP when this returns."""
    port = port or free_port()
    service = Service(f"bench-workerd-{name}")
    service.start(workerd_argv(config, port, inspector_port), dict(os.environ), cwd=config.parent)
    worker = Workerd(service, config, f"http://127.0.0.1:{port}")

    def answers() -> bool:
        try:
            httpx.get(worker.url + "/", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    service.wait_until(answers, timeout=60)
    return worker


def start_workerd(name: str, bundle: Bundle, bindings: dict[str, str], port: int | None = None) -> Workerd:
    return spawn_workerd(name, write_capnp(bundle, name, bindings), port)


def spawn_to_first_response(config: Path, probe, timeout: float = 30.0) -> float:
    """Seconds from spawning a fresh workerd for `config` to the first successful `probe(url)`
    (a full validated request): process start, config and module load, wasm instantiation,
    and the first request's own initialisation (config parse, JWKS fetch, key import)."""
    port = free_port()
    service = Service("bench-workerd-cold")
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    service.start(workerd_argv(config, port), dict(os.environ), cwd=config.parent)
    try:
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if probe(url):
                return time.perf_counter() - started
            time.sleep(0.001)
        raise RuntimeError(f"workerd ({config.name}) gave no successful answer in {timeout} s")
    finally:
        service.stop()


@dataclass
class Fleet:
    """Everything started, for one `stop()`."""

    parts: list = field(default_factory=list)

    def add(self, part):
        self.parts.append(part)
        return part

    def stop(self) -> None:
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception as error:  # keep stopping the rest
                print(f"warning: stopping {part!r}: {error}", file=sys.stderr)
