"""The README's first command works: the demo starts the whole stack and takes the official
TypeScript SDK client through login and `tools/call ping` (here with `--once`, so it stops)."""

import os
import subprocess
import sys
from pathlib import Path

from support.worker import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_takes_a_real_client_through_login_and_ping():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--once"],
        env={**os.environ, "DEMO_WORKER_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert '"tool":"ping","text":"pong: e2e"' in run.stdout
    assert '"outcome":"passed"' in run.stdout
