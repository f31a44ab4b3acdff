"""Turns the raw measurements into medians, ratios and target verdicts, and writes
bench/results/results.json, results.md and chart.png, and the results section of bench/README.md."""

import gzip
import json
import platform
import re
import statistics
import subprocess
import time
from pathlib import Path

import stack
from load import OHA

RESULTS = stack.BENCH / "results"
README = stack.BENCH / "README.md"
README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
KB = 1024
# The MCP-aware path's targets: its settings at most 1.15× the default gateway's workerd CPU per
# request, a token's first validation at most 1.2× the jose peer's, the default path no slower
# than a baseline build (two builds with the same request path differ by up to 5 % at c=8 and
# c=32, bench/README.md, hence 1.05), and the bundle's size. The plain path's earlier targets
# against the pass-through and the peer are retired; their ratios stay in the tables.
TARGETS = {"policy_x_default": 1.15, "nocache_x_jose": 1.2, "default_x_baseline": 1.05, "bundle_gzip_kb": 260}
ADDED_P50_LINE_MS = 0.5  # the chart's line over the origin's own latency
OURS = "gateway"  # the default configuration the targets are about


def median(values) -> float:
    return statistics.median(values)


# --- facts about the run ---


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return (done.stdout + done.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=stack.ROOT, capture_output=True, text=True).stdout.strip()


def environment() -> dict:
    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes_in_src": bool(_git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock")),
        "cpu": cpu.group(1) if cpu else platform.processor(),
        "kernel": platform.release(),
        "workerd": _version([str(stack.WORKERD), "--version"]),
        "wrangler": _version([str(stack.WRANGLER), "--version"]),
        "nginx": _version(["nginx", "-v"]),
        "oha": _version([OHA, "--version"]),
    }


def wasm_sections(wasm: bytes) -> dict[str, int]:
    """Bytes per section of a wasm module: code, data, the `name` custom section (function
    names, kept by wasm-opt --debuginfo; not needed to run), everything else."""
    sizes = {"code": 0, "data": 0, "name": 0, "other": 0}

    def leb128(at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = wasm[at]
            value, shift, at = value | (byte & 0x7F) << shift, shift + 7, at + 1
            if byte < 0x80:
                return value, at

    at = 8  # magic and version
    while at < len(wasm):
        section = wasm[at]
        size, start = leb128(at + 1)
        if section == 0:
            length, name_at = leb128(start)
            kind = "name" if wasm[name_at : name_at + length] == b"name" else "other"
        else:
            kind = {10: "code", 11: "data"}.get(section, "other")
        sizes[kind] += size
        at = start + size
    return sizes


def bundle_sizes(bundles: dict) -> dict:
    """Raw and gzip -9 bytes of each bundle's wasm and of the whole bundle (what Cloudflare's
    size limit counts, compressed)."""
    sizes = {}
    for name, bundle in bundles.items():
        files = [bundle.folder / m for m in bundle.modules]
        whole = b"".join(f.read_bytes() for f in files)
        wasm = b"".join(f.read_bytes() for f in bundle.files(".wasm"))
        sizes[name] = {
            "total_raw": len(whole),
            "total_gzip": len(gzip.compress(whole, 9)),
            "wasm_raw": len(wasm),
            "wasm_gzip": len(gzip.compress(wasm, 9)) if wasm else 0,
            "wasm_sections": wasm_sections(wasm) if wasm else {},
        }
    return sizes


# --- aggregation ---


def paired_ratio(groups: dict, variant: str, reference: str, concurrency: int, metric: str) -> float:
    """The median over repeats of `variant`'s `metric` over `reference`'s in the same repeat.
    A repeat's points run within seconds of each other, while this machine's speed drifts by
    ±15 % over a run: for two identical builds, a ratio of medians of 3 moved by ±10 % between
    runs, the median of 15 paired ratios by ±5 % (bench/README.md)."""
    theirs = {point["repeat"]: point[metric] for point in groups[(reference, concurrency)]}
    return median(point[metric] / theirs[point["repeat"]] for point in groups[(variant, concurrency)])


def summarize(points: list[dict]) -> dict:
    """Median over repeats of each metric, per variant and concurrency; ratios paired by repeat."""
    groups: dict[tuple, list[dict]] = {}
    for point in points:
        groups.setdefault((point["variant"], point["concurrency"]), []).append(point)
    summary: dict[str, dict] = {}
    for (variant, concurrency), runs in groups.items():
        metrics = {"runs": len(runs)}
        for name in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "workerd_busy", "other_on_worker_cpu"):
            if name in runs[0]:
                metrics[name] = median(r[name] for r in runs)
        metrics["x_passthrough"] = paired_ratio(groups, variant, "passthrough", concurrency, "rps")
        metrics["x_jose"] = paired_ratio(groups, variant, "jose", concurrency, "rps")
        if "cpu_us_per_request" in metrics:
            for reference in ("passthrough", "jose", OURS, "gateway-baseline"):
                if (reference, concurrency) in groups:
                    metrics[f"cpu_x_{reference}"] = paired_ratio(groups, variant, reference, concurrency, "cpu_us_per_request")
        summary.setdefault(variant, {})[str(concurrency)] = metrics
    for by_c in summary.values():
        for c, metrics in by_c.items():
            metrics["added_p50_ms"] = metrics["p50_ms"] - summary["direct"][c]["p50_ms"]
            if "cpu_us_per_request" in metrics:
                metrics["cpu_over_passthrough_us"] = (
                    metrics["cpu_us_per_request"] - summary["passthrough"][c]["cpu_us_per_request"]
                )
    return summary


def targets(summary: dict, sizes: dict, concurrency: list[int]) -> list[dict]:
    """The targets of the MCP-aware path (workerd CPU per request, paired by repeat, at the two
    highest concurrencies, where the Worker's core is the limit) and the bundle's size. A
    target whose variants did not run (BENCH_ONLY) is left out."""
    loaded = [str(c) for c in sorted(concurrency)[-2:]]
    gzip_kb = sizes[OURS]["total_gzip"] / KB

    def verdict(name, measured, goal, unit, note):
        return {"target": name, "goal": goal, "measured": measured, "unit": unit, "met": measured <= goal, "note": note}

    def cpu_ratio(variant: str, reference: str, goal: float, name: str) -> dict | None:
        if variant not in summary or reference not in summary:
            return None
        ratios = [summary[variant][c][f"cpu_x_{reference}"] for c in loaded]
        µs = [(summary[variant][c]["cpu_us_per_request"], summary[reference][c]["cpu_us_per_request"]) for c in loaded]
        note = "; ".join(f"c={c}: {r:.2f}× ({a:.0f} vs {b:.0f} µs/req)" for c, r, (a, b) in zip(loaded, ratios, µs))
        return verdict(f"{name} ≤ {goal}× (workerd CPU, c={' and '.join(loaded)})", max(ratios), goal, "×", note)

    rows = [
        cpu_ratio("gateway-policy", OURS, TARGETS["policy_x_default"], "MCP policy on, against the default gateway"),
        cpu_ratio("gateway-audit-rl", OURS, TARGETS["policy_x_default"], "audit + rate limit on, against the default gateway"),
        cpu_ratio("gateway-nocache", "jose", TARGETS["nocache_x_jose"], "cache off (each token validated), against the jose peer"),
        cpu_ratio(OURS, "gateway-baseline", TARGETS["default_x_baseline"], "the default gateway, against the baseline build"),
        verdict(
            f"bundle ≤ {TARGETS['bundle_gzip_kb']} KB gzip (wasm + JS)",
            gzip_kb,
            TARGETS["bundle_gzip_kb"],
            "KB",
            f"wasm {sizes[OURS]['wasm_raw'] / KB:.0f} KB raw: "
            + ", ".join(f"{name} {n / KB:.0f} KB" for name, n in sizes[OURS]["wasm_sections"].items()),
        ),
    ]
    return [row for row in rows if row]


PROFILE_COLUMNS = {  # column → the profile categories (bench/profile.mjs) it adds up
    "wasm (Rust)": ("wasm",),
    "JavaScript": ("JavaScript",),
    "runtime built-ins": ("runtime built-ins",),
    "(program)": ("(program)",),
    "GC": ("(garbage collector)",),
}


def profile_shares(profile: dict) -> dict:
    """Sampled µs per request by column, idle excluded (under the profiler, so inflated)."""
    shares = {column: 0.0 for column in PROFILE_COLUMNS}
    for category, micros in profile["categories_us"].items():
        for column, prefixes in PROFILE_COLUMNS.items():
            if category.startswith(prefixes):
                shares[column] += micros / profile["requests"]
    shares["total"] = sum(shares.values())
    return shares


def build(variants, params, points, sse, cold, bursts, profiles, bundles) -> dict:
    summary = summarize(points)
    sizes = bundle_sizes(bundles)
    direct_first = median(sse["direct"]["first_ms"])
    sse_summary = {
        key: {
            "first_event_p50_ms": median(s["first_ms"]),
            "added_p50_ms": median(s["first_ms"]) - direct_first,
            "stream_end_p50_ms": median(s["end_ms"]),
            "first_event_max_ms": max(s["first_ms"]),
            # A buffering proxy could not deliver any first event before the second exists. Judged
            # on 95 % of the streams: this machine stalls a process now and then for tens of ms
            # (nginx alone once took 15 ms for an event), which one stream in a hundred may meet.
            "streamed": sorted(s["first_ms"])[int(0.95 * (len(s["first_ms"]) - 1))] < params["sse_second_event_delay_ms"],
        }
        for key, s in sse.items()
    }
    # The cold starts run in rounds, every variant spawned once a round: the difference to the
    # pass-through is paired by round, as the throughput ratios are by repeat.
    cold_summary = {
        key: {
            "median_ms": median(ms),
            "added_ms": median(mine - theirs for mine, theirs in zip(ms, cold["passthrough"])),
            "samples_ms": ms,
        }
        for key, ms in cold.items()
    }
    other = [min(1.0, p["other_on_worker_cpu"]) for p in points if "workerd_busy" in p]
    return {
        "environment": environment(),
        "contention": {"other_on_worker_cpu_mean": statistics.fmean(other), "other_on_worker_cpu_max": max(other)},
        "parameters": params,
        "variants": variants,
        "summary": summary,
        "targets": targets(summary, sizes, params["concurrency"]),
        "sse": sse_summary,
        "cold_start": cold_summary,
        "first_burst": bursts,
        "profiles": {key: {**p, "per_request_us": profile_shares(p)} for key, p in profiles.items()},
        "bundles": sizes,
        "points": points,
    }


LIST_TARGET_MS = 0.3  # a filtered tools/list answer's first byte over the unfiltered one's, p50


def lists_summary(lists: dict) -> dict:
    """The tools/list first byte per variant and format, and the filtered answers' p50 over the
    unfiltered ones' (the target: at most LIST_TARGET_MS)."""
    summary = {key: {kind: {"p50_ms": median(ms), "samples_ms": ms} for kind, ms in kinds.items()} for key, kinds in lists.items()}
    if "gateway" in lists and "gateway-policy" in lists:
        summary["added_p50_ms"] = {
            kind: summary["gateway-policy"][kind]["p50_ms"] - summary["gateway"][kind]["p50_ms"] for kind in ("json", "sse")
        }
    return summary


# --- output ---


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


QUIET = 0.05  # other processes' mean share of the Worker's CPU above which a run is not trustworthy


def contention_note(contention: dict, remeasured: int) -> str:
    mean, worst = contention["other_on_worker_cpu_mean"], contention["other_on_worker_cpu_max"]
    note = (
        f"Other processes used {mean * 100:.1f} % of the Worker's CPU during the Worker points kept "
        f"(worst {worst * 100:.1f} %; {remeasured} disturbed points were measured again)"
    )
    if mean > QUIET:
        return f"**Warning: the machine was busy.** {note}; these figures are disturbed, run again on a quiet machine."
    return note + f": below the {QUIET * 100:.0f} % threshold."


def markdown(results: dict) -> str:
    env, params, summary = results["environment"], results["parameters"], results["summary"]
    labels = {v["key"]: v["label"] for v in results["variants"]}
    dirty = " (with uncommitted changes in src/)" if env["uncommitted_changes_in_src"] else ""
    out = [
        f"Run {env['date']} on commit `{env['commit']}`{dirty}: {env['cpu']}, workerd {env['workerd'].split()[-1]}, "
        f"{env['nginx'].split(':')[-1].strip()}, {env['oha']}. {params['requests_per_point']} requests per point, "
        f"median of {params['repeats']} alternating repeats, ratios paired by repeat; run took {params['run_seconds']} s.",
        "",
        contention_note(results["contention"], params["remeasured_disturbed_points"]),
        "",
        *(
            [f"Points measured again after failed requests: {'; '.join(params['incidents'])}.", ""]
            if params["incidents"]
            else []
        ),
        "**Validated `POST /mcp` tools/call** (workerd pinned to CPU 0; oha, nginx on CPU 1)",
        "",
    ]
    rows = []
    for key in labels:
        for c, m in sorted(summary[key].items(), key=lambda item: int(item[0])):
            cpu = f"{m['cpu_us_per_request']:.0f}" if "cpu_us_per_request" in m else "–"
            busy = f"{m['workerd_busy'] * 100:.0f} %" if "workerd_busy" in m else "–"
            rows.append(
                [
                    labels[key],
                    c,
                    f"{m['rps']:,.0f}",
                    f"{m['p50_ms']:.3f}",
                    f"{m['p99_ms']:.3f}",
                    cpu,
                    busy,
                    f"{m['x_passthrough']:.2f}",
                    f"{m['x_jose']:.2f}",
                    f"{m['added_p50_ms']:+.3f}",
                ]
            )
    header = [
        "variant",
        "conc.",
        "req/s",
        "p50 ms",
        "p99 ms",
        "workerd CPU µs/req",
        "workerd core busy",
        "× pass-through",
        "× jose peer",
        "p50 vs direct ms",
    ]
    out += [
        _table(header, rows),
        "",
        "**Targets** (ratios of workerd CPU per request paired by repeat; measured: the higher of the two concurrencies)",
        "",
    ]
    out.append(
        _table(
            ["target", "measured", "verdict", "note"],
            [
                [t["target"], f"{t['measured']:.2f} {t['unit']}", "met" if t["met"] else "**missed**", t["note"]]
                for t in results["targets"]
            ],
        )
    )
    out += [
        "",
        f"**SSE first event** (origin sends one event at once, "
        f"the next {params['sse_second_event_delay_ms']} ms later; "
        f"{params['sse_samples']} streams per variant, each on its own keep-alive connection)",
        "",
    ]
    out.append(
        _table(
            ["variant", "first event p50 ms", "added vs direct ms", "first event max ms", "stream end p50 ms", "streamed"],
            [
                [
                    labels[k],
                    f"{s['first_event_p50_ms']:.3f}",
                    f"{s['added_p50_ms']:+.3f}",
                    f"{s['first_event_max_ms']:.1f}",
                    f"{s['stream_end_p50_ms']:.1f}",
                    "yes" if s["streamed"] else "**no**",
                ]
                for k, s in results["sse"].items()
            ],
        )
    )
    lists = results.get("lists") or {}
    if "added_p50_ms" in lists:
        out += [
            "",
            f"**tools/list first byte** (24 tools, 16 denied to the benchmark's user; {params['sse_samples']} answers "
            "per variant and format, each variant on its own keep-alive connection; target: the filtered answer's "
            f"first byte at most {LIST_TARGET_MS} ms after the unfiltered one's, p50)",
            "",
        ]
        rows = [
            [labels[key], f"{lists[key]['json']['p50_ms']:.3f}", f"{lists[key]['sse']['p50_ms']:.3f}"]
            for key in ("gateway", "gateway-policy")
        ]
        added = lists["added_p50_ms"]
        rows.append(["filtered − unfiltered", f"{added['json']:+.3f}", f"{added['sse']:+.3f}"])
        verdict = lambda v: "met" if v <= LIST_TARGET_MS else "**missed**"  # noqa: E731
        rows.append(["target ≤ +0.3 ms", verdict(added["json"]), verdict(added["sse"])])
        out.append(_table(["variant", "JSON p50 ms", "SSE p50 ms"], rows))
    out += ["", "**Bundles** (`wrangler deploy --dry-run` output; gzip -9)", ""]
    out.append(
        _table(
            ["bundle", "wasm raw", "wasm gzip", "whole bundle raw", "whole bundle gzip"],
            [
                [
                    name,
                    f"{s['wasm_raw'] / KB:.1f} KB" if s["wasm_raw"] else "–",
                    f"{s['wasm_gzip'] / KB:.1f} KB" if s["wasm_raw"] else "–",
                    f"{s['total_raw'] / KB:.1f} KB",
                    f"{s['total_gzip'] / KB:.1f} KB",
                ]
                for name, s in results["bundles"].items()
            ],
        )
    )
    if results.get("logins"):
        logins = results["logins"]
        out += [
            "",
            f"**One complete login** (registration, authorize, consent page and decision, the emulated Access "
            f"login, callback, /token with the id_token check; sealed token mode; {logins['logins']} logins): "
            f"workerd CPU {logins['cpu_us_per_login']:,.0f} µs per login.",
        ]
    out += [
        "",
        f"**Local cold start**: a fresh workerd process → first validated 200 (median of {params['cold_starts']} "
        "rounds, each spawning every variant once; the difference paired by round; see README for what this "
        "does and does not say)",
        "",
    ]
    out.append(
        _table(
            ["variant", "spawn → first 200 ms", "vs pass-through ms"],
            [
                [labels[k], f"{c['median_ms']:.1f}", f"{c['added_ms']:+.1f}"]
                for k, c in results["cold_start"].items()
            ],
        )
    )
    requests, concurrency = params["first_burst"]
    out += [
        "",
        f"**First burst on a fresh isolate**: {requests} requests, {concurrency} at a time, "
        "before anything was fetched",
        "",
    ]
    out.append(
        _table(
            ["variant", "answers"],
            [
                [labels[k], ", ".join(f"{n} × {status}" for status, n in sorted(b.items()))]
                for k, b in results["first_burst"].items()
            ],
        )
    )
    out += [
        "",
        f"**Where the CPU goes** (V8 sampling profiler through workerd's inspector, {params['profile_requests']} "
        "requests at c=8; µs per request, idle excluded; the profiler inflates every figure, compare shares; "
        "an attached inspector also records every console.log, so the gateway's per-request log line "
        "(`__wbg_log`) looks far costlier here than without one)",
        "",
    ]
    columns = list(PROFILE_COLUMNS) + ["total"]
    out.append(
        _table(
            ["variant"] + columns,
            [[labels[k]] + [f"{p['per_request_us'][c]:.0f}" for c in columns] for k, p in results["profiles"].items()],
        )
    )
    ours = results["profiles"][OURS]
    out += ["", f"Top self time in *{labels[OURS]}* (µs per request under the profiler):", ""]
    out.append(
        _table(
            ["function", "µs/req", "source (minified JS)"],
            [
                [
                    f"`{_cell(e['name'])}`",
                    f"{e['us'] / ours['requests']:.1f}",
                    f"`{_cell(e['source'][:70])}`" if e.get("source") else "",
                ]
                for e in ours["top_self_us"]
                if not e["name"].startswith("(idle)")
            ][:15],
        )
    )
    out += ["", "![throughput, CPU and latency per variant](chart.png)"]
    return "\n".join(out) + "\n"


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {v["key"]: v["label"] for v in results["variants"]}
    summary, conc = results["summary"], [str(c) for c in results["parameters"]["concurrency"]]
    keys = list(labels)
    workers = [k for k in keys if "cpu_us_per_request" in summary[k][conc[-1]]]
    fig, (ax_rps, ax_cpu, ax_lat) = plt.subplots(1, 3, figsize=(17, 5.2))
    width = 0.8 / len(workers)
    for i, key in enumerate(workers):
        xs = [j + i * width for j in range(len(conc))]
        ax_rps.bar(xs, [summary[key][c]["rps"] for c in conc], width, label=labels[key])
    ax_rps.set_xticks([j + 0.4 - width / 2 for j in range(len(conc))], [f"c={c}" for c in conc])
    direct = ", ".join(f"{summary['direct'][c]['rps'] / 1000:.0f}k" for c in conc)
    ax_rps.set_title(f"requests/s, median (origin direct: {direct})")
    ax_rps.legend(fontsize=8, loc="upper left")
    ax_cpu.barh(
        [labels[k] for k in workers], [summary[k][conc[-1]]["cpu_us_per_request"] for k in workers], color="tab:orange"
    )
    ax_cpu.invert_yaxis()
    ax_cpu.set_title(f"workerd CPU µs per request (c={conc[-1]})")
    ax_lat.barh([labels[k] for k in keys], [summary[k][conc[0]]["p50_ms"] for k in keys], color="tab:green")
    ax_lat.axvline(
        summary["direct"][conc[0]]["p50_ms"] + ADDED_P50_LINE_MS,
        color="black",
        linestyle="--",
        label=f"direct + {ADDED_P50_LINE_MS} ms",
    )
    ax_lat.legend(fontsize=8, loc="lower right")
    ax_lat.invert_yaxis()
    ax_lat.set_title(f"p50 latency ms (c={conc[0]})")
    fig.suptitle(
        f"mcp-access-gateway benchmark, {results['environment']['date']}, commit {results['environment']['commit']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, folder: str | None = None) -> None:
    """bench/results and the README's results section, or only `folder` (a quick look)."""
    out = Path(folder) if folder else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (out / "results.md").write_text(text)
    chart(results, out / "chart.png")
    if folder:
        return
    readme = README.read_text()
    start, end = README_MARKERS
    if start in readme and end in readme:
        section = text.replace("](chart.png)", "](results/chart.png)")
        head, _, rest = readme.partition(start)
        README.write_text(f"{head}{start}\n{section}{end}{rest.partition(end)[2]}")
