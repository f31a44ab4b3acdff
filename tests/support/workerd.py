"""Run a Worker bundle under workerd directly, as a deploy ships it: the modules
`wrangler deploy --dry-run` emits, served by `workerd serve` with a generated Cap'n Proto config.
No wrangler proxy in front, so it answers as fast as the Worker itself (the load suite and the
benchmarks use it; the other suites use `wrangler dev`, see support/worker.py).

    worker = start_worker_in_workerd(emulator, origin_url=origin.base_url)
    ...  # the same Worker as start_worker's: worker.url, worker.log(), worker.stop()

    # A private origin: reached only through the ORIGIN_SERVICE binding, as a Workers VPC service is.
    worker = start_worker_in_workerd(emulator, origin_url=PRIVATE_ORIGIN_URL, origin_service=origin.base_url)
"""

import atexit
import functools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.stack import Emulator, Service, free_port
from support.worker import ROOT, TOOL_ENV, Worker, compatibility_date, worker_settings

WORKERD = ROOT / "node_modules" / ".bin" / "workerd"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
WORKERD_START_TIMEOUT = 60.0
DRY_RUN = ROOT / "build" / "dry-run"  # where scripts/test puts the project's dry run
# ORIGIN_URL for a Worker whose origin is bound as ORIGIN_SERVICE: a name that never resolves
# (RFC 6761 §6.4), so every answer from the origin came through the binding. It names the Host
# header the origin receives, as a Workers VPC binding's URL does.
PRIVATE_ORIGIN_HOST = "mcp-origin.invalid"
PRIVATE_ORIGIN_URL = f"http://{PRIVATE_ORIGIN_HOST}"
# What the project's bundle is built from: a dry run older than any of these is stale.
BUNDLE_SOURCES = ("src", "Cargo.toml", "Cargo.lock", "wrangler.toml", "scripts/build", "package-lock.json")


@dataclass(frozen=True)
class Bundle:
    folder: Path
    modules: tuple[str, ...]  # every module file, the entry module first

    @classmethod
    def read(cls, folder: Path) -> "Bundle":
        """The bundle `wrangler deploy --dry-run` wrote to `folder`: one entry script, its wasm."""
        scripts = sorted(p.name for p in folder.iterdir() if p.suffix in (".js", ".mjs"))
        if len(scripts) != 1:
            raise RuntimeError(f"expected one entry module in {folder}, found {scripts}")
        wasm = sorted(p.name for p in folder.iterdir() if p.suffix == ".wasm")
        return cls(folder, tuple(scripts + wasm))

    def files(self, suffix: str) -> list[Path]:
        return [self.folder / m for m in self.modules if m.endswith(suffix)]


def dry_run(outdir: Path, config: Path | None = None, build_env: dict | None = None) -> Bundle:
    """`wrangler deploy --dry-run` into `outdir` (emptied first) of the project (config None: its
    wrangler.toml, which runs scripts/build, with `build_env` added to its environment) or of the
    Worker a generated `config` describes."""
    shutil.rmtree(outdir, ignore_errors=True)
    argv = [str(WRANGLER), "deploy", "--dry-run", "--outdir", str(outdir)]
    if config is not None:
        argv += ["--config", str(config)]
    env = {**os.environ, **TOOL_ENV, **(build_env or {})}
    done = subprocess.run(argv, cwd=ROOT if config is None else config.parent, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrangler deploy --dry-run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return Bundle.read(outdir)


def _newest_mtime(paths) -> float:
    files = (f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return max((f.stat().st_mtime for f in files), default=0.0)


@functools.cache
def gateway_bundle() -> Bundle:
    """The project's dry-run bundle, made once per process, in a private copy: build/dry-run as
    scripts/test left it, or dry-run again when it is absent or older than its sources. The copy
    keeps a concurrent rebuild from changing the modules under a running workerd."""
    built = _newest_mtime([DRY_RUN]) if DRY_RUN.is_dir() else 0.0
    if built < _newest_mtime(ROOT / source for source in BUNDLE_SOURCES):
        dry_run(DRY_RUN)
    copy = Path(tempfile.mkdtemp(prefix="gateway-dry-run-")) / "dist"
    shutil.copytree(DRY_RUN, copy)
    atexit.register(shutil.rmtree, copy.parent, True)
    return Bundle.read(copy)


def capnp_text(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Cap'n Proto text literal for our values


# workerd has no Workers Rate Limiting binding of its own (wrangler dev simulates one with a
# Durable Object): this stand-in admits every request, so a measurement shows what the gateway
# does around the binding (body read, keys, one binding call), not a simulator's storage. The
# class name is what workers-rs checks a binding's constructor against.
RATE_LIMITER_STUB = (
    "class Ratelimit { async limit() { return { success: true }; } }\n"
    "export default function () { return new Ratelimit(); }\n"
)


def write_capnp(
    bundle: Bundle, config_name: str, bindings: dict[str, str], rate_limiter: bool = False, origin_service: str | None = None
) -> Path:
    """A workerd config serving `bundle` on a socket "http" (its address is given at start),
    `bindings` as text bindings (how [vars] and secrets reach a Worker), and global fetch()
    allowed to loopback addresses; with `rate_limiter`, an MCP_RATE_LIMITER binding that
    admits everything (RATE_LIMITER_STUB); with `origin_service` (an http://host:port origin),
    that origin as an external service bound as ORIGIN_SERVICE, the way a Workers VPC service
    binding reaches a private one: whatever URL a request names, it goes to that address,
    carrying the URL's host as its Host header."""
    modules = ",\n    ".join(
        f'(name = "{m}", {"wasm" if m.endswith(".wasm") else "esModule"} = embed "{m}")' for m in bundle.modules
    )
    text_bindings = ",\n    ".join(f"(name = {capnp_text(k)}, text = {capnp_text(v)})" for k, v in bindings.items())
    services = ""
    if origin_service is not None:
        address = origin_service.removeprefix("http://")
        text_bindings += ',\n    (name = "ORIGIN_SERVICE", service = "private-origin")'
        services = f"\n    (name = \"private-origin\", external = (address = {capnp_text(address)}, http = ())),"
    extensions = ""
    if rate_limiter:
        text_bindings += ',\n    (name = "MCP_RATE_LIMITER", wrapped = (moduleName = "bench:rate-limiter"))'
        stub = f'(name = "bench:rate-limiter", internal = true, esModule = {capnp_text(RATE_LIMITER_STUB)})'
        extensions = f"\n  extensions = [(modules = [{stub}])],"
    path = bundle.folder / f"{config_name}.capnp"
    path.write_text(
        f"""using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "local"])),{services}
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],  # address: see workerd_argv{extensions}
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


def workerd_argv(config: Path, port: int, inspector_port: int | None = None, cpu: str | None = None) -> list[str]:
    """workerd serving `config` on 127.0.0.1:`port`; pinned to `cpu` if given (taskset execs
    workerd, so the process id is workerd's own)."""
    argv = [str(WORKERD), "serve", str(config), "--socket-addr", f"http=127.0.0.1:{port}"]
    if inspector_port is not None:
        argv += ["--inspector-addr", f"127.0.0.1:{inspector_port}"]
    return ["taskset", "-c", cpu, *argv] if cpu is not None else argv


@dataclass
class Workerd:
    service: Service  # its stdout holds the Worker's console.log lines
    config: Path
    url: str

    @property
    def pid(self) -> int:
        return self.service.process.pid

    def stop(self) -> None:
        self.service.stop()


def spawn_workerd(
    name: str, config: Path, port: int | None = None, inspector_port: int | None = None, cpu: str | None = None
) -> Workerd:
    """One workerd process serving `config`, answering HTTP when this returns."""
    port = port or free_port()
    service = Service(name)
    service.start(workerd_argv(config, port, inspector_port, cpu), dict(os.environ), cwd=config.parent)
    workerd = Workerd(service, config, f"http://127.0.0.1:{port}")

    def answers() -> bool:
        try:
            httpx.get(workerd.url + "/", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    service.wait_until(answers, timeout=WORKERD_START_TIMEOUT)
    return workerd


def start_worker_in_workerd(
    emulator: Emulator,
    *,
    origin_url: str,
    port: int | None = None,
    with_secret: bool = True,
    origin_service: str | None = None,
    **settings: str,
) -> Worker:
    """`start_worker` (same arguments, same settings, same Worker), but the dry-run bundle under
    workerd directly; `origin_service` binds that origin as ORIGIN_SERVICE (see write_capnp).
    Registered in `support.worker.STARTED` for the end-of-run log scan."""
    port = port or free_port()
    values = worker_settings(emulator, origin_url, with_secret, settings)
    config = write_capnp(gateway_bundle(), f"worker-{port}", values, origin_service=origin_service)
    workerd = spawn_workerd("workerd", config, port)
    return Worker(workerd.service, port, values)
