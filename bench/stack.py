"""The processes a benchmark run needs, all on 127.0.0.1, each in its own process group:
nginx (the fast canned MCP origin, and a streaming proxy to the SSE origin), the SSE origin,
and one workerd per Worker variant running the bundle `wrangler deploy --dry-run` emitted,
under a generated Cap'n Proto config (both from tests/support/workerd.py, shared with the load
tests).

CPU placement: workerd runs on WORKER_CPU; this process, and so nginx, the SSE origin, the
Access emulator and the load generator it starts, runs on LOAD_CPU (scripts/bench pins it).
"""

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import workerd  # noqa: E402
from support.stack import Service, accepts_connections, free_port  # noqa: E402  (setsid services, stopped by process group)
from support.worker import compatibility_date  # noqa: E402
from support.workerd import PRIVATE_ORIGIN_URL, WORKERD, WRANGLER, Bundle, Workerd, workerd_argv, write_capnp  # noqa: E402  (run.py, report.py)

BENCH = ROOT / "bench"
OUT = BENCH / "out"
WORKER_CPU = "0"

# The origin's answer to every `POST /mcp`: a JSON-RPC `tools/call` result, as a FastMCP
# server in JSON-response mode gives it.
TOOLS_CALL_RESULT = {
    "jsonrpc": "2.0",
    "id": 1,
    "result": {"content": [{"type": "text", "text": "pong"}], "isError": False},
}
# A tools/list answer of 24 tools, two thirds of which BENCH_POLICY (bench/run.py) denies the
# benchmark's user: the "tools/list first byte" figure, unfiltered and filtered. Small schemas:
# nginx serves it from its configuration, where a string may hold at most 4 KB.
TOOLS_LIST_RESULT = {
    "jsonrpc": "2.0",
    "id": 1,
    "result": {
        "tools": [
            {"name": name, "description": f"The {name} tool.", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}
            for prefix in ("get_", "search_", "delete_")
            for name in (f"{prefix}item_{n}" for n in range(8))
        ]
    },
}
SSE_SECOND_EVENT_DELAY_MS = 50
# The release profile's opt-level (Cargo.toml): the opt-level build variants measure the others.
DEFAULT_OPT_LEVEL = "z"


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
    location = /list {{
      default_type application/json;
      return 200 '{tools_list}';
    }}
    location = /list-sse {{
      default_type text/event-stream;
      return 200 'event: message
data: {tools_list}

';
    }}
  }}
}}
"""


@dataclass
class Origins:
    """nginx on `url` (POST /mcp → the canned result; /sse → the SSE origin, unbuffered;
    /list and /list-sse → a canned tools/list answer, JSON and one SSE event)."""

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
    tools_list = json.dumps(TOOLS_LIST_RESULT, separators=(",", ":"))
    conf.write_text(NGINX_CONF.format(dir=nginx.folder, port=port, sse_port=sse_port, body=body, tools_list=tools_list))
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx.start([nginx_bin, "-p", str(nginx.folder), "-c", str(conf)], dict(os.environ))
    nginx.wait_until(lambda: accepts_connections(port))
    return Origins(nginx, sse, f"http://127.0.0.1:{port}")


# --- bundles (exactly what `wrangler deploy --dry-run` emits) and workerd: tests/support/workerd.py ---


def dry_run(name: str, entry: Path | None = None, build_env: dict | None = None) -> Bundle:
    """`wrangler deploy --dry-run` of the project (entry None: its wrangler.toml, which runs
    scripts/build, with `build_env` added to its environment) or of a JS/TS Worker file (a
    generated wrangler.toml; wrangler bundles it)."""
    folder = OUT / "bundles" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = None
    if entry is not None:
        config = folder / "wrangler.toml"
        config.write_text(f'name = "bench-{name}"\nmain = "{entry}"\ncompatibility_date = "{compatibility_date()}"\n')
    return workerd.dry_run(folder / "dist", config, build_env)


def spawn_workerd(name: str, config: Path, port: int | None = None, inspector_port: int | None = None) -> Workerd:
    """One workerd process for one variant, pinned to WORKER_CPU, answering HTTP when this returns."""
    return workerd.spawn_workerd(f"bench-workerd-{name}", config, port, inspector_port, cpu=WORKER_CPU)


def start_workerd(
    name: str,
    bundle: Bundle,
    bindings: dict[str, str],
    port: int | None = None,
    rate_limiter: bool = False,
    origin_service: str | None = None,
) -> Workerd:
    return spawn_workerd(name, write_capnp(bundle, name, bindings, rate_limiter, origin_service), port)


def spawn_to_first_response(config: Path, probe, timeout: float = 30.0) -> float:
    """Seconds from spawning a fresh workerd for `config` to the first successful `probe(url)`
    (a full validated request): process start, config and module load, wasm instantiation,
    and the first request's own initialisation (config parse, JWKS fetch, key import)."""
    port = free_port()
    service = Service("bench-workerd-cold")
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    service.start(workerd_argv(config, port, cpu=WORKER_CPU), dict(os.environ), cwd=config.parent)
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
