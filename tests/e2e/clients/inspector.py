"""A real MCP client, MCP Inspector 2.12.0's CLI (`mcp-inspector --cli`), logging in through the gateway.

    python inspector.py --url http://127.0.0.1:8787/mcp
        [--client-id ID [--client-secret SECRET]]   # pre-registered: no Dynamic Client Registration
        [--redirect-uri URI]                        # Inspector's --callback-url; default a free loopback port
        [--refresh-after SECONDS]                   # call ping again after the token expired
        [--deny]                                    # refuse on the consent page; expect access_denied

Run 1 is `--method tools/list`, which does the interactive OAuth login; run 2 is
`--method tools/call --tool-name ping --tool-arg message=e2e --stored-auth-only`, which must reuse
the stored login (and, after --refresh-after, refresh it) without a browser.

How Inspector v2's CLI logs in headlessly (read in clients/cli/build/index.js of 2.12.0):
- on a 401 it listens on --callback-url (loopback only) and, with no TTY, opens the authorization
  URL only if MCP_AUTO_OPEN_ENABLED=true (`resolveCliAutoOpenEnabled`, `isCliAutoOpenForced`);
- opening is the `open` package, which runs its bundled xdg-open; with no desktop session
  (DISPLAY, WAYLAND_DISPLAY and XDG_CURRENT_DESKTOP unset) xdg-open runs `$BROWSER <url>`;
- BROWSER is a two-line script that runs this file with `browse <url>`: it plays the person with a
  browser (tests/support/browser.py) and then requests the client's callback URL, which is what
  hands the code to Inspector's listener;
- MCP_INSPECTOR_SECRET_STORE=file with HOME in a temporary folder keeps the tokens in
  $HOME/.mcp-inspector/secrets.json of this run only, so run 2 finds the login of run 1 (and this
  driver can describe the tokens Inspector holds).

Prints one JSON object per step on stdout (`{"step": ...}`), never a token, code or secret
(Inspector's own stderr is checked for them too); the tokens Inspector ends up holding are
described by their shape only (the `tokens` step). Exits 0 only if every check passed (with
--deny: Inspector's login failed with access_denied and no tool ran).
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

TESTS_DIR = Path(__file__).resolve().parents[2]
ROOT = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))
from client_steps import arguments, emit, shape  # noqa: E402
from support.browser import play_browser  # noqa: E402
from support.stack import free_port  # noqa: E402

CLIENT = "inspector-cli"
NODE = ROOT / "node_modules" / ".bin" / "node"
INSPECTOR = ROOT / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
RUN_TIMEOUT = 60
# Variables that make xdg-open use a desktop's opener instead of $BROWSER.
DESKTOP_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "DESKTOP_SESSION", "KDE_FULL_SESSION", "GNOME_DESKTOP_SESSION_ID")
STEPS_ENV = "E2E_BROWSER_STEPS"
CONSENT_ENV = "E2E_BROWSER_CONSENT"
# Inspector's stderr lines not worth repeating: its secret store banner and the URL it opens.
QUIET_PREFIXES = ("[mcp-inspector]", "Please navigate to:")


# ---- BROWSER: run by xdg-open, detached, with no stdout; reports through a steps file -------


def browse(authorization_url: str) -> None:
    steps = Path(os.environ[STEPS_ENV])
    approve = os.environ[CONSENT_ENV] == "approve"
    sent = parse_qs(urlsplit(authorization_url).query)
    redirect_uri = sent["redirect_uri"][0]
    try:
        landed = play_browser(authorization_url, redirect_uri, approve=approve)
        answer = {name: values[0] for name, values in parse_qs(urlsplit(landed).query).items()}
        step = {
            "step": "authorization",
            "consent": "approve" if approve else "deny",
            "resource": sent.get("resource", [None])[0],
            "error": answer.get("error"),
            "code": bool(answer.get("code")),
            "state_ok": answer.get("state") == sent["state"][0],
            "iss": answer.get("iss"),
        }
        callback = httpx.get(landed, timeout=15)  # hands the answer to Inspector's listener
        step["callback_status"] = callback.status_code
    except Exception as exc:
        step = {"step": "browser", "error": f"{type(exc).__name__}: {exc}"}
    with steps.open("a") as out:
        out.write(json.dumps(step) + "\n")


# ---- The driver ----------------------------------------------------------------------------


class Inspector:
    """Runs the Inspector CLI in a private HOME, with this file as its browser."""

    def __init__(self, folder: Path, args):
        self.folder = folder
        self.args = args
        self.steps = folder / "browser-steps.jsonl"
        self.steps_read = 0
        self.authorizations: list[dict] = []
        browser = folder / "browser"
        browser.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(__file__)} browse \"$1\"\n")
        browser.chmod(0o700)
        environment = {name: value for name, value in os.environ.items() if name not in DESKTOP_VARIABLES}
        self.env = {
            **environment,
            "HOME": str(folder),
            "MCP_INSPECTOR_SECRET_STORE": "file",
            "MCP_AUTO_OPEN_ENABLED": "true",
            "BROWSER": str(browser),
            "NO_COLOR": "1",
            STEPS_ENV: str(self.steps),
            CONSENT_ENV: "deny" if args.deny else "approve",
        }
        self.callback_url = args.redirect_uri or f"http://127.0.0.1:{free_port()}/oauth/callback"

    def run(self, method_args: list[str]) -> dict:
        """One CLI run: its exit status, its whole output, and its JSON answer (`--format json`
        prints `{"result": ...}` on stdout or `{"error": {"code", "message"}}` on stderr)."""
        argv = [str(NODE), str(INSPECTOR), "--cli", self.args.url, "--transport", "http", "--format", "json",
                "--callback-url", self.callback_url, *method_args]
        if self.args.client_id:
            argv += ["--client-id", self.args.client_id]
        if self.args.client_secret:
            argv += ["--client-secret", self.args.client_secret]
        emit("inspector", argv=["[secret]" if arg == self.args.client_secret else arg for arg in argv[2:]])
        stdout_path, stderr_path = self.folder / "stdout", self.folder / "stderr"
        with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
            process = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
            deadline = time.monotonic() + RUN_TIMEOUT
            while process.poll() is None:
                if self.relay_browser_steps() or time.monotonic() > deadline:
                    process.kill()  # the browser failed, so Inspector would wait for its callback
                    process.wait()
                    break
                time.sleep(0.1)
        self.relay_browser_steps()
        out, err = stdout_path.read_text(), stderr_path.read_text()
        answer = parse_json(out) or parse_json(err) or {}
        notes = [line for line in err.splitlines() if line and not line.startswith(QUIET_PREFIXES)]
        emit("inspector_exit", status=process.returncode, stderr_tail=notes[-3:])
        return {"status": process.returncode, "output": out + err, **answer}

    def held_tokens(self) -> dict | None:
        """The OAuth tokens in Inspector's plaintext secret store (a JSON string per secret), if any."""
        store = self.folder / ".mcp-inspector" / "secrets.json"
        if not store.exists():
            return None
        for value in json.loads(store.read_text()).get("secrets", {}).values():
            try:
                tokens = json.loads(value)
            except (TypeError, ValueError):
                continue
            if isinstance(tokens, dict) and "access_token" in tokens:
                return tokens
        return None

    def relay_browser_steps(self) -> bool:
        """Re-emits what the browser reported since the last call; True if it failed."""
        if not self.steps.exists():
            return False
        lines = self.steps.read_text().splitlines()
        failed = False
        for line in lines[self.steps_read:]:
            step = json.loads(line)
            if step["step"] == "authorization":
                self.authorizations.append(step)
            else:
                failed = True
            emit(**step)
        self.steps_read = len(lines)
        return failed


def parse_json(text: str) -> dict | None:
    """The last line of `text` that is a JSON object (the CLI's result or error envelope)."""
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def call_ping(inspector: Inspector) -> bool:
    result = inspector.run(["--method", "tools/call", "--tool-name", "ping", "--tool-arg", "message=e2e", "--stored-auth-only"])
    answer = result.get("result", {})
    text = (answer.get("content") or [{}])[0].get("text")
    ok = result["status"] == 0 and answer.get("isError") is False and text == "pong: e2e"
    emit("tools/call", ok=ok, tool="ping", text=text, error=result.get("error"))
    return ok


def run(args) -> int:
    emit("start", client=CLIENT, url=args.url, mode="pre-registered" if args.client_id else "dcr")
    with tempfile.TemporaryDirectory(prefix="inspector-") as folder:
        inspector = Inspector(Path(folder), args)
        listed = inspector.run(["--method", "tools/list"])
        if args.deny:
            answers = [step["error"] for step in inspector.authorizations]
            denied = listed["status"] != 0 and "result" not in listed and answers == ["access_denied"]
            emit("result", ok=denied, outcome="denied" if denied else "failed", error=listed.get("error"))
            return 0 if denied else 1
        tools = [tool["name"] for tool in listed.get("result", {}).get("tools", [])]
        ok = listed["status"] == 0 and "ping" in tools
        emit("tools/list", ok=ok, tools=tools, error=listed.get("error"))
        ok = ok and call_ping(inspector)
        if ok and args.refresh_after is not None:
            emit("wait", seconds=args.refresh_after)
            time.sleep(args.refresh_after)
            ok = call_ping(inspector)
        tokens = inspector.held_tokens()
        if tokens:
            emit("tokens", access_token=shape(tokens.get("access_token")), refresh_token=shape(tokens.get("refresh_token")))
    emit("result", ok=ok, outcome="passed" if ok else "failed")
    return 0 if ok else 1


def main() -> int:
    if sys.argv[1:2] == ["browse"]:
        browse(sys.argv[2])
        return 0
    args = arguments(__doc__.split("\n\n")[0])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
