"""One test per finding of issue 24 ("One reading"), each against the real origins, with the
rule the gateway follows once the finding is fixed:

1. resource URIs that are not their own canonical URL spelling: JSON-RPC -32602, never forwarded;
2. bodies in another charset or content encoding: 415, never forwarded;
3. member names equal under Go's case folding: 400 and -32700, never forwarded;
4. methods other than GET, POST and DELETE: 405; a GET or DELETE with a body: 400; never forwarded;
5. lists filtered whatever the id spelling and the SSE line ends, an unreadable list answer
   never passed (502 for JSON), templates, completions and subscriptions decided; each member
   of a batch counted by the rate limit.

Positive controls first: what the policy allows reaches every origin, so no rule here can
pass by refusing everything.
"""

import json
import secrets

import pytest
from differential_stack import ORIGIN_KINDS, Members, Probe, Raw, content_encoded, encode, listed, mcp_headers, message
from support.stack import eventually
from support.worker import start_worker

ORIGINS = list(ORIGIN_KINDS)
SSE_ORIGINS = ["ts1-sse", "python"]
# Origins whose SDK serves resources/subscribe (2026-07-28 replaced it with subscriptions/listen).
SUBSCRIBING = ["ts1-json", "ts1-sse", "python", "go"]
SECRET = "file:///finance/secret.pdf"
LOG_WAIT = 10
INVALID_PARAMS = -32602
# A non-canonical resource URI is a JSON-RPC error; which HTTP status carries it is the gateway's choice.
URI_REFUSED = (200, 400)
PARSE_ERROR = -32700
DENIED = -32003


def call(differential, origin: str, identity: str, method: str, params=(), id=Raw("1"), **options):
    """One request, as the origin's own clients send it."""
    msg = message(method, Members(params), id, modern=ORIGIN_KINDS[origin].modern, top=options.pop("top", None))
    return differential.post(origin, identity, msg, **options)


def assert_refused(outcome, *, status: int | tuple[int, ...], code: int | None = None):
    """The gateway answered by itself, with `status` (one of them) and JSON-RPC `code`, and the
    origin never saw the request."""
    assert not outcome.reached_origin, f"the request reached the origin: {outcome.describe()}"
    assert outcome.status in (status if isinstance(status, tuple) else (status,)), outcome.describe()
    assert outcome.content_type.startswith("application/json"), outcome.describe()
    answer = json.loads(outcome.text)
    if code is not None:
        errors = [m.get("error", {}).get("code") for m in (answer if isinstance(answer, list) else [answer])]
        assert errors and all(c == code for c in errors), outcome.describe()


def assert_invariant(outcome):
    assert not outcome.violations(), "\n".join(outcome.violations()) + "\n" + outcome.describe()


# --- positive controls ---


ALLOWED = [
    ("staff", "tools/call", [("name", "search")], ("tool", "search")),
    ("staff", "resources/read", [("uri", "file:///reports/q3.pdf")], ("resource", "file:///reports/q3.pdf")),
    ("staff", "resources/read", [("uri", "file:///reports/q4.pdf")], ("resource", "file:///reports/q4.pdf")),
    ("staff", "prompts/get", [("name", "summary"), ("arguments", {"topic": "q3"})], ("prompt", "summary")),
    ("finance", "resources/read", [("uri", SECRET)], ("resource", SECRET)),
    ("auditor", "resources/read", [("uri", "file:///reports/q3.pdf")], ("resource", "file:///reports/q3.pdf")),
]


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("identity, method, params, use", ALLOWED, ids=[f"{a[0]}-{a[3][1]}" for a in ALLOWED])
def test_what_the_policy_allows_reaches_every_origin(differential, origin, identity, method, params, use):
    outcome = call(differential, origin, identity, method, params)
    assert outcome.used() == [use], outcome.describe()
    assert_invariant(outcome)


# --- 1. resource URIs ---

DOT_SEGMENTS = {
    "dot-dot": "file:///reports/../finance/secret.pdf",
    "encoded": "file:///reports/%2e%2e/finance/secret.pdf",
    "mixed-case-encoded": "file:///reports/%2E%2e/finance/secret.pdf",
}


@pytest.mark.parametrize("method", ["resources/read", "resources/subscribe"])
@pytest.mark.parametrize("spelling", DOT_SEGMENTS.values(), ids=DOT_SEGMENTS.keys())
@pytest.mark.parametrize("origin", ORIGINS)
def test_dot_segments_never_reach_a_denied_resource_through_an_allow_glob(differential, origin, spelling, method):
    """Staff may read file:///reports/*.pdf; the SDKs resolve these to the finance secret."""
    outcome = call(differential, origin, "staff", method, [("uri", spelling)])
    assert_invariant(outcome)
    assert_refused(outcome, status=URI_REFUSED, code=INVALID_PARAMS)


HOST_SPELLINGS = {
    "upper-scheme": "FILE:///finance/secret.pdf",
    "localhost": "file://localhost/finance/secret.pdf",
    "upper-host": "file://LOCALHOST/finance/secret.pdf",
}


@pytest.mark.parametrize("method", ["resources/read", "resources/subscribe"])
@pytest.mark.parametrize("spelling", HOST_SPELLINGS.values(), ids=HOST_SPELLINGS.keys())
@pytest.mark.parametrize("origin", ORIGINS)
def test_scheme_and_host_spellings_never_pass_a_deny_rule(differential, origin, spelling, method):
    """The auditor may read everything but file:///finance/*."""
    outcome = call(differential, origin, "auditor", method, [("uri", spelling)])
    assert_invariant(outcome)
    assert_refused(outcome, status=URI_REFUSED, code=INVALID_PARAMS)


# --- 2. charsets and content encodings ---

UTF7_CALL = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","x":"+ACIALAAi-name+ACI-:+ACI-delete_all"}}'


@pytest.fixture(scope="module")
def audit_worker(differential):
    """A gateway that reads bodies only to log MCP names (no policy)."""
    worker = start_worker(differential.emulator, origin_url=differential.relay_url, TOKEN_MODE="passthrough", AUDIT_MCP_NAMES="true")
    yield worker
    worker.stop()


@pytest.mark.parametrize("gateway", ["policy", "audit"])
def test_a_utf7_body_never_runs_a_tool_the_gateway_did_not_read(differential, audit_worker, gateway):
    """express.json() decodes charset=utf-7: the TS 1.x origin sees a second name, delete_all."""
    worker = differential.worker if gateway == "policy" else audit_worker
    email = f"utf7-{secrets.token_hex(4)}@example.com"
    token = differential.emulator.mint(differential.emulator.client_id, email=email, groups=["finance"])
    headers = {"content-type": "application/json; charset=utf-7", "mcp-protocol-version": "2025-06-18"}
    outcome = differential.send(Probe("ts1-json", "finance", "utf-7 tools/call", headers=headers, body=UTF7_CALL), worker, token)
    lines = eventually(lambda: [r for r in worker.request_log() if r["email"] == email], LOG_WAIT)
    assert len(lines) == 1, lines
    ran = [name for kind, name in outcome.used() if kind == "tool"]
    if ran:
        assert [lines[0]["mcp_name"]] == ran, f"the log line says {lines[0]['mcp_name']}, the origin ran {ran}"
    assert_refused(outcome, status=415)
    assert lines[0]["status"] == 415


BAD_BODIES = {
    "utf-7": ("application/json; charset=utf-7", None),
    "utf-16": ("application/json; charset=utf-16", None),
    "latin1": ("application/json; charset=latin1", None),
    "iso-8859-1": ("application/json; charset=iso-8859-1", None),
    "no-content-type": (None, None),
    "text-plain": ("text/plain", None),
    "gzip": ("application/json", "gzip"),
    "deflate": ("application/json", "deflate"),
    "br": ("application/json", "br"),
}


@pytest.mark.parametrize("gateway", ["policy", "audit"])
@pytest.mark.parametrize("content_type, encoding", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_only_plain_utf8_json_bodies_are_read(differential, audit_worker, gateway, content_type, encoding):
    worker = differential.worker if gateway == "policy" else audit_worker
    text = encode(message("tools/call", Members([("name", "search"), ("arguments", {"q": "caf\u00e9"})])))
    headers = {"mcp-protocol-version": "2025-06-18"}
    if content_type:
        headers["content-type"] = content_type
    if encoding:
        headers["content-encoding"] = encoding
    charset = content_type.rpartition("charset=")[2] if content_type and "charset=" in content_type else "utf-8"
    body = content_encoded(text.encode(charset.replace("latin1", "latin-1")), encoding)
    outcome = differential.send(Probe("ts1-json", "staff", f"{content_type} {encoding}", headers=headers, body=body), worker)
    assert_refused(outcome, status=415)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
@pytest.mark.parametrize("encoding", [None, "identity"])
def test_plain_utf8_json_bodies_are_forwarded(differential, content_type, encoding):
    headers = {"content-type": content_type, **({"content-encoding": encoding} if encoding else {})}
    outcome = call(differential, "ts1-json", "staff", "tools/call", [("name", "search")], headers=headers)
    assert outcome.used() == [("tool", "search")], outcome.describe()


# --- 3. member names ---

FOLDED = {
    "Name": lambda: [("name", "search"), ("Name", "delete_all")],
    "NAME": lambda: [("name", "search"), ("NAME", "delete_all")],
    "kelvin": lambda: [("name", "search"), ("kind", 1), ("\u212aind", 2)],
}


@pytest.mark.parametrize("origin", ["go", "ts1-json", "python"])
@pytest.mark.parametrize("spelling", FOLDED, ids=FOLDED.keys())
def test_member_names_equal_under_go_case_folding_are_refused(differential, origin, spelling):
    """Go's encoding/json maps `Name`, `NAME` onto `name` (and `K` onto k), the last one kept."""
    outcome = call(differential, origin, "finance", "tools/call", FOLDED[spelling]())
    assert_invariant(outcome)
    assert_refused(outcome, status=400, code=PARSE_ERROR)


@pytest.mark.parametrize("origin", ["go", "ts1-json", "python"])
def test_params_spelt_with_a_long_s_are_refused(differential, origin):
    """`paramſ` is `params` to Go (ſ folds to s): a second params naming delete_all."""
    top = [("param\u017f", Members([("name", "delete_all")]))]
    outcome = call(differential, origin, "finance", "tools/call", [("name", "search")], top=top)
    assert_invariant(outcome)
    assert_refused(outcome, status=400, code=PARSE_ERROR)


# --- 4. HTTP methods ---

METHODS = {"PUT": 405, "PATCH": 405, "DELETE": 400, "GET": 400}


@pytest.mark.parametrize("origin", ["go", "ts1-json"])
@pytest.mark.parametrize("method, status", METHODS.items(), ids=METHODS.keys())
def test_only_get_post_and_delete_without_a_body_reach_the_origin(differential, origin, method, status):
    """The Go origin, like custom handlers, runs a tools/call whatever the HTTP method."""
    body = encode(message("tools/call", Members([("name", "delete_all")])))
    headers = {"content-type": "application/json", "mcp-protocol-version": "2025-06-18"}
    outcome = differential.send(Probe(origin, "staff", f"{method} tools/call", method=method, headers=headers, body=body.encode()))
    assert_invariant(outcome)
    assert_refused(outcome, status=status)


# --- 5. lists ---

ID_SPELLINGS = ["-0", "1.0", "1e0", "1E+0", "-0.0", "0"]


@pytest.mark.parametrize("origin", ["ts1-json", "ts1-sse", "ts2", "python", "go"])
@pytest.mark.parametrize("id", ID_SPELLINGS)
def test_tools_list_is_filtered_whatever_the_id_spelling(differential, origin, id):
    """The origins answer `-0` as 0 and `1.0`, `1e0` as 1 (the TS SDK and Go): the answer's id
    is not the request's as written."""
    outcome = call(differential, origin, "staff", "tools/list", id=Raw(id))
    assert_invariant(outcome)
    if outcome.reached_origin and listed(outcome.messages):
        assert listed(outcome.messages) == [("tool", "search")], outcome.describe()


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("method", ["tools/list", "resources/list", "resources/templates/list", "prompts/list"])
def test_filtered_lists_say_they_are_private(differential, origin, method):
    """A list that varies per identity must not be cached for others (SEP-2549)."""
    outcome = call(differential, origin, "staff", method)
    results = [m["result"] for m in outcome.messages if isinstance(m.get("result"), dict)]
    assert len(results) == 1 and results[0].get("cacheScope") == "private", outcome.describe()


@pytest.mark.parametrize("origin", ["ts1-json", "ts1-sse", "go"])
def test_a_batch_of_lists_is_filtered_whatever_the_id_spellings(differential, origin):
    batch = [message(method, id=Raw(id)) for method, id in zip(["tools/list", "prompts/list", "resources/templates/list"], ["-0", "1e0", "2.0"])]
    outcome = differential.post(origin, "staff", batch)
    assert_invariant(outcome)
    assert outcome.reached_origin and sorted(listed(outcome.messages)) == [
        ("prompt", "summary"), ("resource", "file:///reports/{name}.pdf"), ("tool", "search"),
    ], outcome.describe()


LIST_METHODS = {"tools/list": ("tool", "search"), "prompts/list": ("prompt", "summary")}


@pytest.mark.parametrize("origin", SSE_ORIGINS)
@pytest.mark.parametrize("frame", [None, "lf", "cr", "crlf"])
@pytest.mark.parametrize("method", LIST_METHODS)
def test_sse_lists_are_filtered_whatever_the_line_ends(differential, origin, frame, method):
    outcome = call(differential, origin, "staff", method, frame=frame)
    assert_invariant(outcome)
    assert listed(outcome.messages) == [LIST_METHODS[method]], outcome.describe()


@pytest.mark.parametrize("origin", ["ts1-json", "ts1-sse", "python", "go"])
def test_an_unreadable_list_answer_never_passes_unfiltered(differential, origin):
    """The relay repeats the answer's `jsonrpc` member: clients read it, a strict reader cannot."""
    outcome = call(differential, origin, "staff", "tools/list", corrupt=True)
    assert_invariant(outcome)
    if "json" in outcome.content_type:
        assert outcome.status == 502, outcome.describe()
    else:
        assert listed(outcome.messages) == [], outcome.describe()


@pytest.mark.parametrize("origin", ORIGINS)
def test_resource_templates_are_listed_by_what_the_policy_allows(differential, origin):
    outcome = call(differential, origin, "staff", "resources/templates/list")
    assert_invariant(outcome)
    assert listed(outcome.messages) == [("resource", "file:///reports/{name}.pdf")], outcome.describe()


COMPLETIONS = {
    "payroll-prompt": ({"type": "ref/prompt", "name": "payroll"}, "topic", False),
    "finance-template": ({"type": "ref/resource", "uri": "file:///finance/{name}.pdf"}, "name", False),
    "summary-prompt": ({"type": "ref/prompt", "name": "summary"}, "topic", True),
    "reports-template": ({"type": "ref/resource", "uri": "file:///reports/{name}.pdf"}, "name", True),
}


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("ref, argument, allowed", COMPLETIONS.values(), ids=COMPLETIONS.keys())
def test_completion_is_decided_like_its_prompt_or_resource(differential, origin, ref, argument, allowed):
    params = [("ref", ref), ("argument", {"name": argument, "value": "q"})]
    outcome = call(differential, origin, "staff", "completion/complete", params)
    assert_invariant(outcome)
    if allowed:
        assert outcome.used() == [("prompt" if "name" in ref else "resource", ref.get("name") or ref.get("uri"))], outcome.describe()
    else:
        assert_refused(outcome, status=200, code=DENIED)


@pytest.mark.parametrize("origin", SUBSCRIBING)
@pytest.mark.parametrize("uri, allowed", [(SECRET, False), ("file:///reports/q3.pdf", True)], ids=["denied", "allowed"])
def test_subscriptions_are_decided_like_reads(differential, origin, uri, allowed):
    outcome = call(differential, origin, "staff", "resources/subscribe", [("uri", uri)])
    assert_invariant(outcome)
    if allowed:
        assert outcome.used() == [("resource", uri)], outcome.describe()
    else:
        assert_refused(outcome, status=200, code=DENIED)


# --- 5. rate limits ---

LIMIT = 3


@pytest.fixture(scope="module")
def rate_limited(differential):
    """A gateway counting per identity through the rate-limit binding, LIMIT per 10 s."""
    worker = start_worker(differential.emulator, origin_url=differential.relay_url, TOKEN_MODE="passthrough", rate_limit=LIMIT)
    yield worker
    worker.stop()


def test_each_member_of_a_batch_counts_against_the_rate_limit(differential, rate_limited):
    """2 * LIMIT + 1 calls in one batch: even if the binding's window rolls over during the
    request, one window sees more than LIMIT of them."""
    subject = "rl-" + secrets.token_hex(6)
    token = differential.emulator.mint(differential.emulator.client_id, sub=subject, email=f"{subject}@example.com")
    batch = [message("tools/call", Members([("name", "search")]), Raw(str(n))) for n in range(2 * LIMIT + 1)]
    headers = {"content-type": "application/json", **mcp_headers(batch, modern=False)}
    probe = Probe("ts1-json", "staff", "batch of calls", headers=headers, body=encode(batch).encode())
    outcome = differential.send(probe, rate_limited, token)
    assert_refused(outcome, status=429)
