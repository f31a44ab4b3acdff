"""The consent page in a real browser (headless Chromium, Debian's `chromium`): what a person sees,
saved as tests/conformance/out/consent.png (and consent-forwarder.png for a VS Code login), and
real clicks on Approve and Deny: the CSRF defences (a SameSite=Strict cookie, Sec-Fetch-Site,
Origin) must let a real browser's same-origin form post through, and the browser must end at the
client's redirect URI with code (or error), state and iss.

The click is driven over the Chrome DevTools Protocol with Node's built-in WebSocket (no
Playwright: nothing is installed for this)."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from oauth_flow import REDIRECT_URI, STATE, authorization_url, pkce_pair, single

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NODE = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "node"
OUT = Path(__file__).resolve().parent / "out"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

def chromium_flags(profile: str) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",  # the test runs as root in a container
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# A VS Code login through its vscode.dev forwarder, whose page says where the result goes next.
FORWARDER = {
    "redirect_uri": "https://vscode.dev/redirect",
    "state": "vscode://dynamicauthprovider/mcp.example/authorize?nonce=n",
}


@pytest.mark.parametrize(
    "name, overrides", [("consent", {}), ("consent-forwarder", FORWARDER)], ids=["loopback", "forwarder"]
)
def test_the_consent_page_renders_for_a_person(stack, name, overrides):
    OUT.mkdir(exist_ok=True)
    screenshot = OUT / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    _, challenge = pkce_pair()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run(
            [CHROMIUM, *chromium_flags(profile), f"--screenshot={screenshot}", "--window-size=900,640",
             authorization_url(stack, challenge, **overrides)],
            check=True, capture_output=True, timeout=60,
        )
    data = screenshot.read_bytes()
    assert png_size(data) == (900, 640)
    assert len(data) > 10_000, "a blank page compresses to a few hundred bytes"


# Starts Chromium and connects to its page over CDP; the script that follows drives it, with the
# JSON input's `url` and the rest of it as `input`, and ends with quit(status, result as JSON).
CDP_PRELUDE = r"""
import { spawn } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
const input = JSON.parse(process.env.CDP_INPUT);
const { chromium, flags, url } = input;
const browser = spawn(chromium, [...flags, "--remote-debugging-port=0", "about:blank"], { stdio: "ignore", detached: true });
const quit = (code, result) => {
  console.log(JSON.stringify(result));
  try { process.kill(-browser.pid, "SIGKILL"); } catch {}
  process.exit(code);
};
setTimeout(() => quit(1, { error: "timed out" }), 20000);
const profile = flags.find((f) => f.startsWith("--user-data-dir=")).split("=")[1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let port;
for (let i = 0; i < 200 && !port; i++) {
  const file = `${profile}/DevToolsActivePort`;
  if (existsSync(file)) port = readFileSync(file, "utf8").split("\n")[0];
  else await sleep(50);
}
if (!port) quit(1, { error: "no DevTools port" });
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const ws = new WebSocket(targets.find((t) => t.type === "page").webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener("open", r));
let nextId = 0;
const pending = new Map();
const waiters = [];
ws.addEventListener("message", (event) => {
  const msg = JSON.parse(event.data);
  if (msg.id !== undefined) pending.get(msg.id)?.(msg);
  else waiters.forEach((w) => w(msg));
});
const send = (method, params = {}) =>
  new Promise((resolve) => { const id = ++nextId; pending.set(id, resolve); ws.send(JSON.stringify({ id, method, params })); });
const until = (predicate) => new Promise((resolve) => waiters.push((m) => predicate(m) && resolve(m)));
const evaluate = async (expression) =>
  (await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })).result.result.value;
"""

# Open the authorization URL, read what the page shows, click a button, and report the first
# navigation to the client's redirect URI — or the browser's security console message if it
# refused to go on.
CONSENT_SCRIPT = CDP_PRELUDE + r"""
const { stopAt, button } = input;
await send("Page.enable");
await send("Network.enable");
await send("Log.enable");
const consentPost = until((m) => m.method === "Network.requestWillBeSentExtraInfo"
  && JSON.stringify(m.params.headers).includes("mcpgw_csrf="));
const loaded = until((m) => m.method === "Page.loadEventFired");
await send("Page.navigate", { url });
await loaded;
const shown = await evaluate(`({
  heading: document.querySelector("h1")?.innerText,
  resource: document.querySelector("#resource")?.innerText,
  target: document.querySelector("#redirect-target")?.innerText,
  buttons: [...document.querySelectorAll("button")].map((b) => b.innerText),
})`);
const arrived = until((m) => m.method === "Network.requestWillBeSent" && m.params.request.url.startsWith(stopAt))
  .then((m) => ({ final: m.params.request.url }));
const refused = until((m) => m.method === "Log.entryAdded" && m.params.entry.source === "security")
  .then((m) => ({ refused: m.params.entry.text.trim() }));
await evaluate(`document.querySelector("button[value=${button}]").click()`);
const sentHeaders = (await consentPost).params.headers;
quit(0, { shown, sentHeaders, ...(await Promise.race([arrived, refused])) });
"""


def drive(script: str, **cdp_input) -> dict:
    """Run a CDP script (CDP_PRELUDE + its steps) in a fresh Chromium profile; its result. The
    script kills the browser, which then leaves its process-singleton folder in TMPDIR: that is
    the profile's folder here, so it goes with the profile."""
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        cdp_input = {"chromium": CHROMIUM, "flags": chromium_flags(profile), **cdp_input}
        run = subprocess.run(
            [str(NODE), "--input-type=module", "-e", script],
            env={**os.environ, "CDP_INPUT": json.dumps(cdp_input), "TMPDIR": profile},
            capture_output=True, text=True, timeout=60,
        )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def click(stack, button: str) -> dict:
    """Open the consent page in Chromium, click `button` (approve or deny), report what happened."""
    _, challenge = pkce_pair()
    return drive(CONSENT_SCRIPT, url=authorization_url(stack, challenge), stopAt=REDIRECT_URI + "?", button=button)


@pytest.fixture(scope="module")
def approved(stack):
    return click(stack, "approve")


def test_a_real_browser_shows_server_target_and_buttons(stack, approved):
    shown = approved["shown"]
    assert shown["resource"] == stack.worker.mcp_url
    assert shown["target"] == REDIRECT_URI
    assert shown["buttons"] == ["Approve", "Deny"]
    assert "an application on this computer" in shown["heading"]


def test_a_real_browser_posts_the_strict_cookie_same_origin(stack, approved):
    """The CSRF defences hold for a real browser's own form post: it sends the SameSite=Strict
    cookie, says the post is same-origin and names the gateway's origin (not `null`)."""
    headers = {name.lower(): value for name, value in approved["sentHeaders"].items()}
    assert headers["sec-fetch-site"] == "same-origin"
    assert headers["origin"] == stack.worker.url
    assert "mcpgw_csrf=" in headers["cookie"]


def test_a_real_browser_can_approve(stack, approved):
    assert approved.get("refused") is None, approved.get("refused")
    got = single(approved["final"])
    assert got["code"] and got["state"] == STATE and got["iss"] == stack.worker.url


def test_a_real_browser_can_deny(stack):
    denied = click(stack, "deny")
    assert denied.get("refused") is None, denied.get("refused")
    got = single(denied["final"])
    assert got["error"] == "access_denied" and got["state"] == STATE and got["iss"] == stack.worker.url


# From a page on another origin, a script calls /mcp the way a browser-based client does: with a
# bearer token and the 2026-07-28 request headers, Mcp-Param-* under a name no list could know.
CROSS_ORIGIN_CALL_SCRIPT = CDP_PRELUDE + r"""
const loaded = until((m) => m.method === "Page.loadEventFired");
await send("Page.enable");
await send("Page.navigate", { url });
await loaded;
const answer = await evaluate(`fetch(${JSON.stringify(input.target)}, {
  method: "POST",
  headers: ${JSON.stringify(input.headers)},
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "ping" } }),
}).then((r) => ({ status: r.status, challenge: r.headers.get("www-authenticate") }), (e) => ({ blocked: String(e) }))`);
quit(0, answer);
"""


def test_a_browser_client_may_send_the_2026_07_28_headers_cross_origin(stack):
    """The preflight admits Authorization and any Mcp-Param-* name (Access-Control-Allow-Headers:
    `*` plus `authorization`, valid without credentials): the browser sends the call, and the
    script can read the gateway's answer (here the challenge for a token it does not know)."""
    page = stack.worker.url.replace("127.0.0.1", "localhost") + "/.well-known/oauth-protected-resource"
    headers = {
        "Authorization": "Bearer not-a-token",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "ping",
        "Mcp-Param-Region": "eu-west-1",
    }
    answer = drive(CROSS_ORIGIN_CALL_SCRIPT, url=page, target=stack.worker.mcp_url, headers=headers)
    assert answer.get("blocked") is None, answer
    assert answer["status"] == 401 and 'error="invalid_token"' in answer["challenge"], answer
