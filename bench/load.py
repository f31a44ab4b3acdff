"""One measured point: a fixed number of `POST /mcp` tools/call requests at a fixed concurrency,
sent by oha (keep-alive), with the workerd process's CPU time read from /proc around it."""

import json
import os
import shutil
import subprocess
from pathlib import Path

from probe import MCP_BODY, mcp_headers
from stack import WORKER_CPU

OHA = shutil.which("oha") or str(Path.home() / ".cargo" / "bin" / "oha")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class NotAllOk(RuntimeError):
    """Some requests of a point were not answered 200."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def core_busy_seconds(cpu: str) -> float:
    """Non-idle time of one CPU since boot, from /proc/stat (user nice system idle iowait irq
    softirq steal ...)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(v) for v in line.split()[1:9]]
            return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def oha(url: str, token: str | None, requests: int, concurrency: int) -> dict:
    argv = [OHA, "--no-tui", "--output-format", "json", "-n", str(requests), "-c", str(concurrency), "-m", "POST"]
    for name, value in mcp_headers(token).items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["-d", MCP_BODY, url + "/mcp"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"oha failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def measure(url: str, token: str | None, requests: int, concurrency: int, workerd_pid: int | None) -> dict:
    """Throughput, latency percentiles and workerd CPU per request of one point. Every answer
    must be a 200: a fast 401 would flatter a variant. `other_on_worker_cpu` is the share of the
    Worker's CPU that something else used meanwhile: anything above a few % is a busy machine."""
    core_before = core_busy_seconds(WORKER_CPU)
    before = cpu_seconds(workerd_pid) if workerd_pid else 0.0
    report = oha(url, token, requests, concurrency)
    after = cpu_seconds(workerd_pid) if workerd_pid else 0.0
    core_used = core_busy_seconds(WORKER_CPU) - core_before
    statuses = report.get("statusCodeDistribution", {})
    errors = report.get("errorDistribution", {})
    if statuses.get("200", 0) != requests or errors:
        raise NotAllOk(f"{url}: not every request answered 200: {statuses} {errors}")
    seconds = report["summary"]["total"]
    point = {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": seconds,
        "rps": requests / seconds,
        "p50_ms": report["latencyPercentiles"]["p50"] * 1000,
        "p99_ms": report["latencyPercentiles"]["p99"] * 1000,
        "other_on_worker_cpu": max(0.0, core_used - (after - before)) / seconds,
    }
    if workerd_pid:
        point["cpu_us_per_request"] = (after - before) / requests * 1e6
        point["workerd_busy"] = (after - before) / seconds  # 1.0 = its core saturated
    return point
