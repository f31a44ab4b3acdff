"""The README's first command works: the demo starts the whole stack, prints doctor's step lines
for its login walk-through and takes the official TypeScript SDK client through login and
`tools/call ping` (here with `--once`, so it stops)."""

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
    lines = run.stdout.splitlines()
    for step in [
        "✓ 1. POST without a token → 401 with resource_metadata ",
        "✓ 3. metadata at ",
        "✓ 4. registered ",
        "✓ 5. /authorize shows the consent page",
        "✓ 8. Access login (",
        "✓ 8. token (",
        "✓ 8. tools/call ping → pong: demo (",
    ]:
        assert any(line.startswith(step) for line in lines), (step, run.stdout[-3000:])
    assert not any(line.startswith("✗") for line in lines), run.stdout[-3000:]
    assert "✓ TypeScript SDK client: registered, consent, Access login, token, tools/call ping → pong: e2e" in lines
