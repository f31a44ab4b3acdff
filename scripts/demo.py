"""The local stack, `doctor --login` and a real client going through it. See README.md,
"The two commands".

`--once` stops the stack after the client's run (the test suite uses it).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.stack import start_emulator, start_origin  # noqa: E402
from support.worker import start_worker  # noqa: E402

WORKER_PORT = int(os.environ.get("DEMO_WORKER_PORT", "8787"))
USER_EMAIL = os.environ.get("DEMO_USER_EMAIL", "user@example.com")


def say(text: str) -> None:
    print(f"\n\033[1m{text}\033[0m", flush=True)


def doctor(mcp_url: str, origin_url: str) -> bool:
    """`mcp-access-gateway doctor --login`, its step lines printed as they are."""
    subprocess.run(["cargo", "build", "--quiet", "--bin", "mcp-access-gateway"], cwd=ROOT, check=True)
    browser = f"{sys.executable} {ROOT / 'tests' / 'doctor' / 'browser.py'}"
    argv = [str(ROOT / "target" / "debug" / "mcp-access-gateway"), "doctor", mcp_url, "--origin", origin_url,
            "--login", "--call", "ping", "--arguments", '{"message": "demo"}', "--browser-command", browser]
    return subprocess.run(argv, timeout=120).returncode == 0


def typescript_client(mcp_url: str) -> bool:
    """The official TypeScript SDK client logs in and calls ping: one line for its JSON steps."""
    say("5. A real MCP client (official TypeScript SDK) does the same through the Worker")
    node = ROOT / "node_modules" / ".bin" / "node"
    client = ROOT / "tests" / "e2e" / "clients" / "ts_client.mjs"
    run = subprocess.run([str(node), str(client), "--url", mcp_url], capture_output=True, text=True, timeout=120)
    steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    ping = next((s["text"] for s in steps if s["step"] == "tools/call" and s["ok"]), None)
    if run.returncode == 0 and ping is not None:
        print(f"✓ TypeScript SDK client: registered, consent, Access login, token, tools/call ping → {ping}")
        return True
    print(f"✗ TypeScript SDK client:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    return False


def main() -> int:
    public = f"http://127.0.0.1:{WORKER_PORT}"
    say("1. Cloudflare Access for SaaS emulator (the only stand-in: real Access is not reachable)")
    emulator = start_emulator(redirect_uris=[f"{public}/callback"], email=USER_EMAIL)
    print(f"   issuer: {emulator.issuer}\n   registered redirect URI: {public}/callback")
    say("2. The MCP origin: the bug report's FastMCP server with its own Access JWT verifier")
    origin = start_origin(emulator.base_url, emulator.client_id, USER_EMAIL)
    print(f"   {origin.url} (what the Tunnel would expose)")
    say("3. The gateway Worker in workerd (wrangler dev)")
    worker = start_worker(emulator, origin_url=origin.base_url, port=WORKER_PORT, PUBLIC_ORIGIN=public)
    print(f"   MCP URL: {worker.mcp_url}")
    parts = (worker, origin, emulator)
    try:
        say("4. doctor replays a strict MCP client: discovery, registration, consent, Access login, token, ping")
        print("   (the browser is played headlessly by tests/doctor/browser.py)", flush=True)
        if not doctor(worker.mcp_url, origin.url) or not typescript_client(worker.mcp_url):
            say("A step failed; the Worker log follows.")
            print(worker.log()[-4000:])
            return 1
        if "--once" in sys.argv:
            return 0
        say("The stack stays up. Point a client at it, for example:")
        print(f"   claude mcp add --transport http gateway-demo {worker.mcp_url}")
        print(f"   npx @modelcontextprotocol/inspector  (Streamable HTTP, URL {worker.mcp_url})")
        print(f"   Access emulator user: {USER_EMAIL} (logged in without a password)")
        print("Press Ctrl-C to stop.")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for part in parts:
            part.stop()


if __name__ == "__main__":
    sys.exit(main())
