"""The benchmark run (scripts/bench starts it pinned to the load CPU): builds the bundles, starts
the origins, the Access emulator and one workerd per variant, gets the tokens, checks every
variant answers correctly (and refuses a missing or bad token), then measures and writes
bench/results/. Sizes are read from the environment: BENCH_REQUESTS (per point), BENCH_REPEATS,
BENCH_CONCURRENCY (e.g. "1 8 32"), BENCH_WARMUP, BENCH_SSE_SAMPLES, BENCH_COLD_STARTS,
BENCH_PROFILE_REQUESTS, BENCH_LOGINS. BENCH_ONLY (variant keys) keeps only those variants beside the
five every run has (direct, passthrough, jose, gateway, gateway-sealed); BENCH_BASELINE adds "gateway-baseline" (kept by any BENCH_ONLY),
a `wrangler deploy --dry-run` folder of another build (e.g. the commit before a change) with the
default settings; BENCH_RESULTS_DIR writes the results there instead of bench/results and leaves
bench/README.md alone (for quick looks on a busy machine).
"""

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field

import load
import probe
import report
import stack
import tokens
from support.stack import free_port, start_emulator


def setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


REQUESTS = int(setting("BENCH_REQUESTS", "2000"))
REPEATS = int(setting("BENCH_REPEATS", "15"))
CONCURRENCY = [int(c) for c in setting("BENCH_CONCURRENCY", "1 8 32").split()]
WARMUP = int(setting("BENCH_WARMUP", "3000"))
SSE_SAMPLES = int(setting("BENCH_SSE_SAMPLES", "100"))
COLD_STARTS = int(setting("BENCH_COLD_STARTS", "9"))
PROFILE_REQUESTS = int(setting("BENCH_PROFILE_REQUESTS", "3000"))
LOGINS = int(setting("BENCH_LOGINS", "50"))  # /proc counts CPU in 10 ms ticks
FIRST_BURST, FIRST_BURST_CONCURRENCY = 32, 16
DISTURBED, REMEASURE_BUDGET = 0.10, 200
NODE = stack.ROOT / "node_modules" / ".bin" / "node"


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    bundle: str | None  # None: no Worker, the origin itself
    token: str | None  # "jwt", "sealed" or None (no authentication)
    settings: dict = field(default_factory=dict)
    rate_limiter: bool = False  # an MCP_RATE_LIMITER binding (a stand-in admitting everything)
    build: dict = field(default_factory=dict)  # environment of scripts/build for a build variant
    origin_binding: bool = False  # the origin bound as ORIGIN_SERVICE, ORIGIN_URL unresolvable


# A realistic MCP_POLICY: the benchmark's user (user@example.com) may call ping under the last
# rule, so every request is read, parsed and decided on after three rules that do not match.
BENCH_POLICY = json.dumps(
    {
        "default": "deny",
        "rules": [
            {"effect": "deny", "tools": ["delete_*", "admin_*"]},
            {"effect": "allow", "groups": ["finance-admins"], "tools": ["*"], "resources": ["*"]},
            {"effect": "allow", "emails": ["auditor@partner.example"], "resources": ["file:///reports/*"]},
            {"effect": "allow", "email_domains": ["example.com"], "tools": ["search", "get_*", "ping"], "prompts": ["*"]},
        ],
    }
)


VARIANTS = [
    Variant("direct", "origin direct (nginx)", None, None),
    Variant("passthrough", "bare JS pass-through", "passthrough", None),
    Variant("jose", "TS + jose peer", "jose", "jwt"),
    Variant("gateway", "gateway, token cache on", "gateway", "jwt", {"TOKEN_MODE": "passthrough"}),
    Variant(
        "gateway-nocache",
        "gateway, cache off",
        "gateway",
        "jwt",
        {"TOKEN_MODE": "passthrough", "TOKEN_CACHE_SIZE": "0"},
    ),
    Variant("gateway-sealed", "gateway, sealed token", "gateway", "sealed", {"TOKEN_MODE": "sealed"}),
    Variant("gateway-policy", "gateway, MCP policy on", "gateway", "jwt", {"TOKEN_MODE": "passthrough", "MCP_POLICY": BENCH_POLICY}),
    Variant(
        "gateway-audit-rl",
        "gateway, audit + rate limit on",
        "gateway",
        "jwt",
        {"TOKEN_MODE": "passthrough", "AUDIT_MCP_NAMES": "true", "RATE_LIMIT_BY_TOOL": "true"},
        rate_limiter=True,
    ),
    # A private origin: the same nginx as an external service bound as ORIGIN_SERVICE (what a
    # Workers VPC binding is to the Worker), ORIGIN_URL a host that never resolves.
    Variant(
        "gateway-binding",
        "gateway, origin through the binding",
        "gateway",
        "jwt",
        {"TOKEN_MODE": "passthrough", "ORIGIN_URL": stack.PRIVATE_ORIGIN_URL},
        origin_binding=True,
    ),
    # Every request answers 200, so this one writes no log line: the difference to "token cache
    # on" is what the line costs.
    Variant(
        "gateway-log-errors",
        "gateway, REQUEST_LOG=errors (no line for a 200)",
        "gateway",
        "jwt",
        {"TOKEN_MODE": "passthrough", "REQUEST_LOG": "errors"},
    ),
    # Build variants: the default settings, built differently (their own cargo target folders).
    *(
        Variant(
            f"gateway-opt-{level}",
            f"gateway, opt-level {level}",
            f"gateway-opt-{level}",
            "jwt",
            {"TOKEN_MODE": "passthrough"},
            build={"CARGO_PROFILE_RELEASE_OPT_LEVEL": level, "WASM_OPT_LEVEL": level},
        )
        for level in ("s", "z", "3")
        if level != stack.DEFAULT_OPT_LEVEL
    ),
]
if os.environ.get("BENCH_BASELINE"):
    VARIANTS.append(Variant("gateway-baseline", "gateway, baseline build", "gateway-baseline", "jwt", {"TOKEN_MODE": "passthrough"}))
ALWAYS = {"direct", "passthrough", "jose", "gateway", "gateway-sealed", "gateway-baseline"}
if os.environ.get("BENCH_ONLY"):
    VARIANTS = [v for v in VARIANTS if v.key in ALWAYS or v.key in os.environ["BENCH_ONLY"].split()]
WORKERS = [v for v in VARIANTS if v.bundle]
WORKER_SOURCES = {
    "passthrough": stack.BENCH / "workers" / "passthrough.js",
    "jose": stack.BENCH / "workers" / "jose-peer.ts",
    "gateway": None,
}
BUILDS = {v.bundle: v.build for v in WORKERS if v.bundle.startswith("gateway")}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Run:
    def __init__(self, fleet: stack.Fleet):
        self.fleet = fleet
        self.bundles: dict[str, stack.Bundle] = {}
        self.workers: dict[str, stack.Workerd] = {}
        self.urls: dict[str, str] = {}
        self.tokens: dict[str | None, str | None] = {None: None}
        self.incidents: list[str] = []
        self.remeasured = 0  # points measured again because the machine was busy

    def build(self) -> None:
        for name, source in WORKER_SOURCES.items():
            log(f"wrangler deploy --dry-run: {name}")
            self.bundles[name] = stack.dry_run(name, source)
        for name, build in BUILDS.items():
            if name == "gateway-baseline":
                self.bundles[name] = stack.Bundle.read(stack.Path(os.environ["BENCH_BASELINE"]))
            elif name != "gateway":
                log(f"wrangler deploy --dry-run: {name} ({build})")
                self.bundles[name] = stack.dry_run(name, None, {**build, "CARGO_TARGET_DIR": f"target/bench-{name}"})

    def start(self) -> None:
        origins = self.fleet.add(stack.start_origins())
        self.urls["direct"] = origins.url
        # The sealed variant's own address is the public origin of every gateway variant: the
        # OAuth flow's redirects then reach it, and its tokens are bound to that origin.
        sealed_port = free_port()
        public_origin = f"http://127.0.0.1:{sealed_port}"
        emulator = self.fleet.add(
            start_emulator(redirect_uris=[public_origin + "/callback"], access_token_ttl=tokens.TOKEN_LIFETIME_SECONDS)
        )
        gateway = {
            "ACCESS_ISSUER": emulator.issuer,
            "ACCESS_CLIENT_ID": emulator.client_id,
            "ACCESS_CLIENT_SECRET": emulator.client_secret,
            "ORIGIN_URL": origins.url,
            "SEALING_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
            "PUBLIC_ORIGIN": public_origin,
            "PROXY_PATHS": "/sse /list /list-sse",
        }
        bindings = {
            "passthrough": {"ORIGIN_URL": origins.url},
            "jose": {
                "ORIGIN_URL": origins.url,
                "ACCESS_ISSUER": emulator.issuer,
                "AUDIENCE": public_origin + "/callback",
            },
            **{name: gateway for name in BUILDS},
        }
        for variant in WORKERS:
            port = sealed_port if variant.key == "gateway-sealed" else None
            settings = {**bindings[variant.bundle], **variant.settings}
            origin_service = origins.url if variant.origin_binding else None
            worker = stack.start_workerd(
                variant.key, self.bundles[variant.bundle], settings, port, variant.rate_limiter, origin_service
            )
            self.workers[variant.key] = self.fleet.add(worker)
            self.urls[variant.key] = worker.url
        log("tokens: minting an Access JWT; OAuth flow for a sealed token")
        self.tokens["jwt"] = tokens.access_jwt(emulator, public_origin + "/callback")
        self.tokens["sealed"] = tokens.sealed_token(self.urls["gateway-sealed"], public_origin, emulator)
        self.emulator = emulator

    def check(self) -> None:
        """Each variant proxies a validated request, and the authenticating ones refuse others."""
        for variant in VARIANTS:
            url, token = self.urls[variant.key], self.tokens[variant.token]
            if not probe.mcp_ok(url, token):
                raise RuntimeError(f"{variant.key}: a valid tools/call was not answered 200")
            if token and (probe.mcp_ok(url, None) or probe.mcp_ok(url, token[:-4] + "AAAA")):
                raise RuntimeError(f"{variant.key}: a missing or tampered token was let through")
        log("checks passed: every variant proxies; every authenticating variant refuses bad tokens")

    def point(
        self, variant: Variant, requests: int, concurrency: int, worker: stack.Workerd | None = None, steady=True
    ) -> dict:
        """One point, against `worker` (default: the variant's own). A point with any non-200 answer
        is measured again (at most twice more) and the incident kept for the results. A steady
        Worker point during which other processes took more than DISTURBED of the Worker's CPU is
        measured again too (at most twice, at most REMEASURE_BUDGET times per run), keeping the
        least disturbed measurement."""
        worker = worker or self.workers.get(variant.key)
        url, pid = (worker.url, worker.pid) if worker else (self.urls[variant.key], None)
        best = None
        for _ in range(3):
            try:
                measured = load.measure(url, self.tokens[variant.token], requests, concurrency, pid)
            except load.NotAllOk as error:
                self.incidents.append(f"{variant.key}, c={concurrency}: {error}")
                log(f"warning: {error}; measuring the point again")
                continue
            if best is None or measured["other_on_worker_cpu"] < best["other_on_worker_cpu"]:
                best = measured
            if not (steady and pid) or best["other_on_worker_cpu"] <= DISTURBED or self.remeasured >= REMEASURE_BUDGET:
                return best
            self.remeasured += 1
        if best is None:
            raise RuntimeError(f"{variant.key}: three attempts with failed requests; see the warnings above")
        return best

    def warm_up(self) -> None:
        log(f"warm-up: {WARMUP} requests per variant")
        for variant in VARIANTS:
            self.point(variant, WARMUP, 8, steady=False)

    def throughput(self) -> list[dict]:
        """Every (variant, concurrency) point REPEATS times, variants alternating in a rotating
        order so that drift (thermal, background) spreads over all of them."""
        points = []
        for repeat in range(REPEATS):
            for index, concurrency in enumerate(CONCURRENCY):
                shift = repeat * len(CONCURRENCY) + index
                order = VARIANTS[shift % len(VARIANTS) :] + VARIANTS[: shift % len(VARIANTS)]
                for variant in order:
                    measured = self.point(variant, REQUESTS, concurrency)
                    points.append({"variant": variant.key, "repeat": repeat, **measured})
                log(f"repeat {repeat + 1}/{REPEATS}, concurrency {concurrency}: done")
        return points

    def sse(self) -> dict[str, dict[str, list[float]]]:
        """First-event and end-of-stream times, one stream per variant in turn, each variant on
        its own keep-alive connection."""
        log(f"SSE first event: {SSE_SAMPLES} streams per variant")
        clients = {v.key: probe.SseClient(self.urls[v.key], self.tokens[v.token]) for v in VARIANTS}
        samples: dict[str, list] = {key: [] for key in clients}
        try:
            for _ in range(SSE_SAMPLES):
                for key, client in clients.items():
                    samples[key].append(client.first_event())
        finally:
            for client in clients.values():
                client.close()
        return {
            key: {"first_ms": [f * 1000 for f, _ in s], "end_ms": [e * 1000 for _, e in s]}
            for key, s in samples.items()
        }

    def lists(self) -> dict[str, dict[str, list[float]]]:
        """The first byte of a tools/list answer, JSON and SSE, through the default gateway (no
        policy: passed as it comes) and the policy gateway (filtered: a JSON answer is read whole
        first), alternating, each on its own keep-alive connection; the filtered answers are
        checked to hold none of the denied tools."""
        keys = [key for key in ("gateway", "gateway-policy") if key in self.urls]
        log(f"tools/list first byte: {SSE_SAMPLES} answers per variant and format")
        clients = {
            (key, kind): probe.ListClient(self.urls[key], self.tokens["jwt"], path)
            for key in keys
            for kind, path in (("json", "/list"), ("sse", "/list-sse"))
        }
        samples: dict[str, dict[str, list[float]]] = {key: {"json": [], "sse": []} for key in keys}
        try:
            for _ in range(SSE_SAMPLES):
                for (key, kind), client in clients.items():
                    first, body = client.first_byte()
                    if key == "gateway-policy" and b"delete_item" in body:
                        raise RuntimeError(f"{key}: a {kind} tools/list answer came back unfiltered")
                    samples[key][kind].append(first * 1000)
        finally:
            for client in clients.values():
                client.close()
        return samples

    def cold_starts(self) -> dict[str, list[float]]:
        log(f"local cold start: {COLD_STARTS} fresh workerd processes per Worker variant")
        times: dict[str, list[float]] = {v.key: [] for v in WORKERS}
        for _ in range(COLD_STARTS):
            for variant in WORKERS:
                config, token = self.workers[variant.key].config, self.tokens[variant.token]
                seconds = stack.spawn_to_first_response(config, lambda url, token=token: probe.mcp_ok(url, token))
                times[variant.key].append(seconds * 1000)
        return times

    def first_burst(self, variant: Variant) -> dict[str, int]:
        """A fresh workerd (nothing fetched yet) hit by FIRST_BURST requests FIRST_BURST_CONCURRENCY
        at a time: how many were answered 200 while the isolate was still fetching its keys."""
        config = self.workers[variant.key].config
        fresh = stack.spawn_workerd(f"{variant.key}-fresh", config)  # ready = answered a GET / (no token)
        try:
            answers = load.oha(fresh.url, self.tokens[variant.token], FIRST_BURST, FIRST_BURST_CONCURRENCY)
        finally:
            fresh.stop()
        return {**answers.get("statusCodeDistribution", {}), **answers.get("errorDistribution", {})}

    def profile(self, variant: Variant) -> dict:
        """Where a Worker's CPU goes: V8's sampling profiler, through the inspector of a separate
        workerd (same config) while PROFILE_REQUESTS requests run at concurrency 8. The profiler
        slows the Worker down, so its figures are shares, not the measured costs."""
        config = self.workers[variant.key].config
        inspector = free_port()
        profiled = stack.spawn_workerd(f"{variant.key}-profiled", config, inspector_port=inspector)
        try:
            probe.mcp_ok(profiled.url, self.tokens[variant.token])  # one request first: see first_burst
            self.point(variant, WARMUP, 8, profiled, steady=False)
            node = subprocess.Popen(
                [str(NODE), str(stack.BENCH / "profile.mjs"), f"http://127.0.0.1:{inspector}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            if node.stdout.readline().strip() != "started":
                raise RuntimeError(f"{variant.key}: the profiler did not start")
            self.point(variant, PROFILE_REQUESTS, 8, profiled, steady=False)
            node.stdin.write("stop\n")
            node.stdin.flush()
            result = json.loads(node.stdout.readline())
            node.wait(timeout=30)
        finally:
            profiled.stop()
        result["requests"] = PROFILE_REQUESTS
        for entry in result["top_self_us"]:
            entry["source"] = source_at(config.parent, entry["name"])
        return result

    def logins(self) -> dict:
        """Workerd CPU of complete logins against the sealed-token gateway: registration, the
        browser leg (authorize, consent page, consent decision, the emulated Access login,
        callback) and the code exchange at /token (which checks Access's id_token)."""
        log(f"login CPU: {LOGINS} complete logins")
        worker = self.workers["gateway-sealed"]
        tokens.login(worker.url, worker.url, self.emulator)  # the discovery and the JWKS are cached first
        before = load.cpu_seconds(worker.pid)
        for _ in range(LOGINS):
            tokens.login(worker.url, worker.url, self.emulator)
        cpu = load.cpu_seconds(worker.pid) - before
        return {"logins": LOGINS, "cpu_us_per_login": cpu / LOGINS * 1e6}


def source_at(folder, frame_name: str) -> str | None:
    """What a minified JS function is, from its "@ file:line:column" position: the wasm-bindgen
    import it implements (e.g. `__wbg_log` is console.log called from Rust), else its first code."""
    where = re.search(r" @ ([^:]+):(\d+):(\d+) ", frame_name)
    if not where or not (folder / where.group(1)).exists():
        return None
    lines = (folder / where.group(1)).read_text().splitlines()
    line, column = int(where.group(2)) - 1, int(where.group(3)) - 1
    if line >= len(lines):
        return None
    imports = re.findall(r"(__wbg_[A-Za-z0-9]+(?:_[A-Za-z][A-Za-z0-9]*)*?)_[0-9a-f]{16}\b", lines[line][:column])
    return f"wasm-bindgen import {imports[-1]}" if imports else lines[line][max(0, column - 40) : column + 60].strip()


def main() -> int:
    started = time.monotonic()
    fleet = stack.Fleet()
    run = Run(fleet)
    try:
        run.build()
        run.start()
        run.check()
        cold = run.cold_starts()
        log(f"first burst: {FIRST_BURST} requests, {FIRST_BURST_CONCURRENCY} at a time, on a fresh workerd each")
        bursts = {v.key: run.first_burst(v) for v in WORKERS}
        run.warm_up()
        log(f"load: {REPEATS} × {len(CONCURRENCY)} concurrencies × {len(VARIANTS)} variants, {REQUESTS} requests each")
        points = run.throughput()
        sse = run.sse()
        lists = run.lists()
        log(f"CPU profiles: {PROFILE_REQUESTS} requests per Worker variant under V8's sampling profiler")
        profiles = {v.key: run.profile(v) for v in WORKERS}
        logins = run.logins() if LOGINS else None
    finally:
        fleet.stop()
    params = {
        "requests_per_point": REQUESTS,
        "repeats": REPEATS,
        "concurrency": CONCURRENCY,
        "warmup_requests": WARMUP,
        "sse_samples": SSE_SAMPLES,
        "sse_second_event_delay_ms": stack.SSE_SECOND_EVENT_DELAY_MS,
        "cold_starts": COLD_STARTS,
        "profile_requests": PROFILE_REQUESTS,
        "first_burst": [FIRST_BURST, FIRST_BURST_CONCURRENCY],
        "run_seconds": round(time.monotonic() - started),
        "incidents": run.incidents,
        "remeasured_disturbed_points": run.remeasured,
    }
    variants = [{"key": v.key, "label": v.label, "token": v.token, "settings": v.settings} for v in VARIANTS]
    results = report.build(variants, params, points, sse, cold, bursts, profiles, run.bundles)
    results["logins"] = logins
    results["lists"] = report.lists_summary(lists)
    report.write(results, os.environ.get("BENCH_RESULTS_DIR"))
    print(report.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
