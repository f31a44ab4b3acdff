"""The differential suite's stack and its one invariant.

Real MCP origins (origins/, each logging what it ran or read), the relay in front of them
(relay.py), the gateway Worker in passthrough mode with `POLICY`, identities minted by the
Access emulator, and the checks: what an origin ran or read must be allowed to the identity
(by the origin's own log), every list the client receives holds only allowed entries, and an
answer the gateway gives by itself is a clear error that never reached an origin.
"""

import atexit
import base64
import functools
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from support.stack import Emulator, Service, accepts_connections, free_port
from support.worker import ROOT, Worker

HERE = Path(__file__).resolve().parent
NODE = str(ROOT / "node_modules" / ".bin" / "node")

# --- the policy, the identities, and what the policy allows them (the oracle) ---

AUDITOR_EMAIL = "auditor@partner.example"
POLICY = {
    "default": "deny",
    "rules": [
        {"effect": "deny", "tools": ["delete_*"]},
        # The auditor may read everything but finance (a deny rule before a wide allow).
        {"effect": "deny", "emails": [AUDITOR_EMAIL], "resources": ["file:///finance/*"], "prompts": ["payroll"]},
        {"effect": "allow", "groups": ["finance"], "tools": ["*"], "resources": ["*"], "prompts": ["*"]},
        {"effect": "allow", "emails": [AUDITOR_EMAIL], "tools": ["search"], "resources": ["*"], "prompts": ["*"]},
        {
            "effect": "allow",
            "email_domains": ["example.com"],
            "tools": ["search"],
            "resources": ["file:///reports/*.pdf"],
            "prompts": ["summary"],
        },
    ],
}
IDENTITIES = {
    "staff": {"email": "user@example.com", "groups": []},
    "finance": {"email": "fin@corp.example", "groups": ["finance"]},
    "auditor": {"email": AUDITOR_EMAIL, "groups": []},
    "outsider": {"email": "someone@else.example", "groups": ["engineering"]},
}
PATTERNS = {"tool": "tools", "resource": "resources", "prompt": "prompts"}


def glob_matches(pattern: str, name: str) -> bool:
    """The policy's globs: `*` is any run of characters, `/` included."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), name, re.S) is not None


def allowed(identity: str, kind: str, name: str) -> bool:
    """What POLICY allows `identity` for a tool, resource (a URI or a template's text) or prompt:
    the first rule matching both the identity and the name decides, else the default."""
    who = IDENTITIES[identity]
    email = who["email"].lower()
    for rule in POLICY["rules"]:
        anyone = not (rule.get("emails") or rule.get("email_domains") or rule.get("groups"))
        matches_identity = (
            anyone
            or email in (e.lower() for e in rule.get("emails", []))
            or email.rsplit("@", 1)[-1] in (d.lower() for d in rule.get("email_domains", []))
            or any(group in rule.get("groups", []) for group in who["groups"])
        )
        if matches_identity and any(glob_matches(p, name) for p in rule.get(PATTERNS[kind], [])):
            return rule["effect"] == "allow"
    return POLICY["default"] == "allow"


# What each origin log event means: the kind of thing and its name, as the origin used it.
def used(event: dict) -> tuple[str, str] | None:
    match event.get("event"):
        case "tool":
            return "tool", event["name"]
        case "prompt":
            return "prompt", event["name"]
        case "resource" | "subscribe":
            return "resource", event["uri"]
        case "complete":
            return ("prompt", event["prompt"]) if "prompt" in event else ("resource", event["template"])
    return None


# The lists a client may receive and the field naming each entry.
LISTS = {"tools": ("tool", "name"), "resources": ("resource", "uri"), "resourceTemplates": ("resource", "uriTemplate"), "prompts": ("prompt", "name")}

# --- the origins ---


@dataclass(frozen=True)
class OriginKind:
    """An origin (README.md says what each one is)."""

    name: str
    modern: bool = False  # speaks only 2026-07-28: the per-request envelope and Mcp-* headers


ORIGIN_KINDS = {kind.name: kind for kind in [OriginKind("ts1-json"), OriginKind("ts1-sse"), OriginKind("ts2", modern=True), OriginKind("python"), OriginKind("go")]}


class OriginLog:
    """An origin's own log: one JSON object per line; `mark()` then `since(mark)` gives what
    one request made it write (requests are sent one at a time)."""

    def __init__(self, path: Path):
        self.path = path

    def lines(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def mark(self) -> int:
        return len(self.lines())

    def since(self, mark: int) -> list[dict]:
        return self.lines()[mark:]


@dataclass
class RunningOrigin:
    service: Service
    port: int
    log: OriginLog

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@functools.cache
def go_origin_binary() -> str:
    """Builds origins/go_origin once per test process (standard library only, no network)."""
    if shutil.which("go") is None:
        raise RuntimeError("the Go toolchain is missing: scripts/setup installs Debian's golang-go")
    out = Path(tempfile.mkdtemp(prefix="go-origin-")) / "go_origin"
    atexit.register(shutil.rmtree, out.parent, True)
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=HERE / "origins" / "go_origin", check=True, env=env, capture_output=True)
    return str(out)


def start_origin(name: str) -> RunningOrigin:
    port = free_port()
    service = Service(f"origin-{name}")
    log = service.folder / "origin.jsonl"
    common = ["--port", str(port), "--log", str(log)]
    argv = {
        "ts1-json": [NODE, str(HERE / "origins" / "ts1_origin.mjs"), *common, "--json"],
        "ts1-sse": [NODE, str(HERE / "origins" / "ts1_origin.mjs"), *common],
        "ts2": [NODE, str(ROOT / "tests" / "e2e" / "clients" / "sdk2" / "differential_origin.mjs"), *common],
        "python": [sys.executable, str(HERE / "origins" / "python_origin.py"), *common],
        "go": [go_origin_binary(), *common],
    }[name]
    service.start(argv, dict(os.environ))
    service.wait_until(lambda: accepts_connections(port))
    return RunningOrigin(service, port, OriginLog(log))


def start_relay(origins: dict[str, RunningOrigin]) -> tuple[Service, str]:
    port = free_port()
    service = Service("relay")
    argv = [sys.executable, str(HERE / "relay.py"), "--port", str(port)]
    for name, origin in origins.items():
        argv += ["--origin", f"{name}={origin.base_url}"]
    service.start(argv, dict(os.environ))
    service.wait_until(lambda: accepts_connections(port))
    return service, f"http://127.0.0.1:{port}"


# --- request bodies, written by hand: duplicate members and number spellings included ---


class Raw(str):
    """JSON text written as is (an id spelled `1e0`, `-0`, a big integer)."""


class Members(list):
    """An object as (name, value) pairs, so a name may repeat or differ only in case."""


def encode(value) -> str:
    """JSON text; non-ASCII characters are written as they are (a charset then matters)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Members):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{encode(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return encode(Members(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


MODERN_ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "differential-suite", "version": "1"},
}
# Where a method names what it acts on (the gateway's and the 2026-07-28 Mcp-Name's reading).
NAMED_BY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def message(method: str, params: Members | None = None, id=Raw("1"), *, modern: bool = False, top: list | None = None) -> Members:
    """A JSON-RPC request; `modern` adds the 2026-07-28 envelope to params, `top` more members."""
    params = Members(params or [])
    if modern:
        params.append(("_meta", MODERN_ENVELOPE))
    members = Members([("jsonrpc", "2.0"), ("id", id), ("method", method), ("params", params)])
    return Members(members + (top or []))


def header_value(value: str) -> str:
    if value.isascii() and value.isprintable():
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode() + "?="


def mcp_headers(messages: list[Members], modern: bool) -> dict[str, str]:
    """The headers a client of the origin's revision sends with these messages."""
    if not modern:
        return {"mcp-protocol-version": "2025-03-26" if len(messages) > 1 else "2025-06-18"}
    headers = {"mcp-protocol-version": "2026-07-28"}
    if len(messages) == 1:
        first = messages[0]
        method = next(v for k, v in first if k == "method")
        headers["mcp-method"] = method
        params = next((v for k, v in first if k == "params"), Members())
        name = next((v for k, v in params if k == NAMED_BY.get(method)), None)
        if isinstance(name, str):
            headers["mcp-name"] = header_value(name)
    return headers


@functools.cache
def brotli(body: bytes) -> bytes:
    """Brotli from Node's zlib (Python's standard library has none)."""
    script = "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))"
    return subprocess.run([NODE, "-e", script], input=body, capture_output=True, check=True).stdout


def content_encoded(body: bytes, encoding: str | None) -> bytes:
    match encoding:
        case "gzip":
            return gzip.compress(body)
        case "deflate":
            return zlib.compress(body)
        case "br":
            return brotli(body)
    return body


# --- answers, as a client reads them ---


def sse_events(text: str) -> list[dict]:
    """Server-sent events split as the SSE spec (and EventSource) does: lines end at CRLF, LF
    or CR; a blank line ends an event; `data` lines join with LF."""
    events, data, fields = [], [], {}
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data or fields:
                events.append({**fields, "data": "\n".join(data)})
            data, fields = [], {}
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name:
            fields[name] = value
    if data:
        events.append({**fields, "data": "\n".join(data)})
    return events


def answer_messages(content_type: str, text: str) -> list[dict]:
    """Every JSON-RPC message the client received, from a JSON answer or any SSE event. A
    client's JSON reader keeps the last of duplicate names (JSON.parse, Python's json)."""
    media_type = content_type.split(";")[0].strip().lower()
    texts = []
    if media_type == "application/json":
        texts = [text]
    elif media_type == "text/event-stream":
        texts = [event["data"] for event in sse_events(text) if event["data"].strip()]
    messages = []
    for text in texts:
        try:
            value = json.loads(text)
        except ValueError:
            continue
        messages += value if isinstance(value, list) else [value]
    return [m for m in messages if isinstance(m, dict)]


def listed(messages: list[dict]) -> list[tuple[str, str]]:
    """Every entry of every list in the answers: (kind, name)."""
    entries = []
    for m in messages:
        result = m.get("result")
        if not isinstance(result, dict):
            continue
        for key, (kind, field_name) in LISTS.items():
            for entry in result.get(key) or []:
                if isinstance(entry, dict) and isinstance(entry.get(field_name), str):
                    entries.append((kind, entry[field_name]))
    return entries


# --- one request through the gateway, and the invariant ---


@dataclass
class Probe:
    """One request as sent: what it was, and where it went."""

    origin: str
    identity: str
    label: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    frame: str | None = None
    corrupt: bool = False


@dataclass
class Outcome:
    probe: Probe
    status: int
    content_type: str
    text: str
    messages: list[dict]
    events: list[dict]  # what the origin logged for this request
    cut: bool = False  # the answer's stream ended with an error

    @property
    def reached_origin(self) -> bool:
        return any(e.get("event") == "http" for e in self.events)

    def used(self) -> list[tuple[str, str]]:
        return [u for u in map(used, self.events) if u]

    def violations(self) -> list[str]:
        """The invariant, for this request and its identity."""
        who = self.probe.identity
        found = [f"the origin used {kind} {name!r}, which {who} may not" for kind, name in self.used() if not allowed(who, kind, name)]
        found += [f"the answer lists {kind} {name!r}, which {who} may not use" for kind, name in listed(self.messages) if not allowed(who, kind, name)]
        if not self.reached_origin:
            found += self.unclear_refusal()
        elif any(m.get("error", {}).get("code") in GATEWAY_ONLY_CODES for m in self.messages if isinstance(m.get("error"), dict)):
            found.append("the gateway refused the request, yet the origin received it")
        return found

    def unclear_refusal(self) -> list[str]:
        """An answer the gateway gave by itself is a clear error: JSON, and no 5xx for what
        the client sent (a 502 for an origin answer it could not read is not the client's)."""
        problems = []
        if self.status >= 500 and not (self.status == 502 and self.probe.corrupt):
            problems.append(f"the gateway answered {self.status} by itself")
        if self.status < 400 and not any("error" in m for m in self.messages):
            problems.append(f"the gateway answered {self.status} without an error, and the origin got nothing")
        if "json" not in self.content_type:
            problems.append(f"the gateway's own answer is {self.content_type or 'untyped'}, not JSON")
        else:
            try:
                json.loads(self.text)
            except ValueError:
                problems.append("the gateway's own answer is not JSON")
        return problems

    def describe(self) -> str:
        p = self.probe
        events = [e for e in self.events if e.get("event") != "http"]
        return (
            f"{p.origin} {p.identity} {p.method} {p.label} frame={p.frame} corrupt={p.corrupt} headers={p.headers} "
            f"body={p.body[:240]!r} -> {self.status} {self.content_type} {self.text[:240]!r}{' (stream cut)' if self.cut else ''}; "
            f"{'reached the origin, which logged ' + json.dumps(events) if self.reached_origin else 'the origin got nothing'}"
        )


# Codes only the gateway answers with: denied, header mismatch, rate limited.
GATEWAY_ONLY_CODES = {-32003, -32020, -32029}


@dataclass
class DifferentialStack:
    emulator: Emulator
    worker: Worker
    relay_url: str
    origins: dict[str, RunningOrigin]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    tokens: dict[str, str] = field(default_factory=dict)
    sent: int = 0

    def token(self, identity: str, **claims) -> str:
        """An Access JWT for the identity (its audience: the Access client id, which every
        gateway accepts by default)."""
        if claims:
            return self.emulator.mint(self.emulator.client_id, **IDENTITIES[identity], **claims)
        if identity not in self.tokens:
            self.tokens[identity] = self.emulator.mint(self.emulator.client_id, **IDENTITIES[identity])
        return self.tokens[identity]

    def send(self, probe: Probe, worker: Worker | None = None, token: str | None = None) -> Outcome:
        origin = self.origins[probe.origin]
        query = f"origin={probe.origin}" + (f"&frame={probe.frame}" if probe.frame else "") + ("&corrupt=dup" if probe.corrupt else "")
        mark = origin.log.mark()
        self.sent += 1
        headers = {
            "x-probe": str(self.sent),  # in the origin's http line, to read its log by
            "accept": "application/json, text/event-stream",
            "authorization": f"Bearer {token or self.token(probe.identity)}",
            **probe.headers,
        }
        url = f"{(worker or self.worker).mcp_url}?{query}"
        body, cut = b"", False
        with self.http.stream(probe.method, url, headers=headers, content=probe.body or None) as response:
            try:
                for chunk in response.iter_bytes():
                    body += chunk
            except httpx.HTTPError:
                cut = True  # a stream the gateway ended with an error: the client has what came before
        return Outcome(
            probe,
            response.status_code,
            response.headers.get("content-type", ""),
            body.decode(errors="replace"),
            answer_messages(response.headers.get("content-type", ""), body.decode(errors="replace")),
            origin.log.since(mark),
            cut,
        )

    def post(self, origin: str, identity: str, messages: list[Members] | Members, **options) -> Outcome:
        """A plain POST of one message or a batch, as the origin's clients send it."""
        batch = isinstance(messages, list) and not isinstance(messages, Members)
        listing = messages if batch else [messages]
        modern = ORIGIN_KINDS[origin].modern
        headers = {"content-type": "application/json", **mcp_headers(listing, modern), **options.pop("headers", {})}
        body = encode(messages).encode()
        probe = Probe(origin, identity, options.pop("label", "post"), headers=headers, body=body, **options)
        return self.send(probe)
