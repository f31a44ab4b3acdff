"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25),
black-box: a client whose `client_id` is the https URL of its document, served over real TLS by
document_server.py, one test per rule the Worker applies.

The happy path goes authorize → consent page (the client's name, its client-id host, the
redirect host) → Access → callback → /token with the same client_id → an MCP call. Every document
fault is a 400 page with one sentence for all (what an arbitrary URL answered is not shown to
anyone: the log line names it), never a redirect to the unverified redirect URI, and Access is
never asked. The fetch counts at the document server prove the cache
and the failure cache. Each test serves its documents under paths of its own, so the Worker's
per-isolate cache, keyed by URL, carries nothing from one test to the next.
"""

import html
import itertools
import json
import re
from html.parser import HTMLParser

import httpx
import pytest
from document_server import Answer, client_metadata
from oauth_flow import (
    Browser,
    REDIRECT_URI,
    assert_error_page,
    assert_oauth_error,
    authorization_url,
    authorize,
    exchange,
    http,
    pkce_pair,
    post_token,
    ticket_of,
)
from support.netns import TEST_HOSTS
from support.stack import eventually as support_eventually
from support.worker import start_worker

_, CHALLENGE = pkce_pair()
CLIENT_HOST, OTHER_HOST = TEST_HOSTS
WEB_CALLBACK = "https://claude.ai/api/mcp/auth_callback"  # allowed by the default ALLOWED_REDIRECT_URIS
_paths = itertools.count()
LOG_WAIT = 10


@pytest.fixture
def path() -> str:
    """A document path no other test uses."""
    return f"/oauth/{next(_paths)}/client-metadata.json"


def publish(docs, path: str, redirect_uris=(REDIRECT_URI,), cache_control: str | None = None, **fields) -> str:
    """Serves a valid document (plus `fields`) at `path`; returns its URL, the client id."""
    url = docs.url(path)
    docs.serve(path, Answer(client_metadata(url, list(redirect_uris), **fields), cache_control=cache_control))
    return url


def open_authorize(
    stack, client_id: str, cookies: httpx.Cookies | None = None, headers: dict | None = None, **overrides
) -> httpx.Response:
    url = authorization_url(stack, CHALLENGE, client_id=client_id, **overrides)
    with httpx.Client(cookies=cookies, headers=headers, timeout=15) as browser:
        return browser.get(url)


class _Marked(HTMLParser):
    """The attributes and text of the elements that have an id."""

    def __init__(self):
        super().__init__()
        self.found: dict[str, dict] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.found[attributes["id"]] = {**attributes, "text": ""}
            self._open.append(attributes["id"])

    def handle_data(self, data):
        for element in self._open:
            self.found[element]["text"] += data

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()


def consent_page(response: httpx.Response) -> dict[str, dict]:
    """The consent page's marked elements (`#client-name`, `#client-host`, ...)."""
    assert response.status_code == 200, f"{response.status_code} {response.text[:600]}"
    assert response.headers["content-type"].startswith("text/html")
    assert 'value="approve"' in response.text
    parser = _Marked()
    parser.feed(response.text)
    return parser.found


def assert_refused(response: httpx.Response, sentence: str) -> None:
    """The CIMD refusal page: 400, no redirect, the problem in words and as invalid_client."""
    assert_error_page(response)
    text = html.unescape(re.sub(r"(?s)<(style|script)\b.*?</\1>|<[^>]+>", " ", response.text))
    assert sentence in text, " ".join(text.split())
    assert "invalid_client" in text


def counts(stack, endpoint: str) -> int:
    return stack.emulator.stats()["counts"].get(endpoint, 0)


def eventually(probe):
    return support_eventually(probe, LOG_WAIT)


def log_lines(stack, seen: int, route: str, request_id: str | None = None) -> list[dict]:
    """The Worker's log lines for `route` after the first `seen` lines (waiting a little for
    wrangler to print them); with `request_id`, only that request's (its `cf-ray`): an earlier
    test's lines can arrive after `seen` was counted."""
    return eventually(
        lambda: [
            line
            for line in stack.worker.request_log()[seen:]
            if line["route"] == route and request_id in (None, line["request_id"])
        ]
    )


def ray_for(test: str, path: str) -> str:
    """A `cf-ray` no other request carries: the test's name and its document's path."""
    return f"{test}-{path.strip('/').replace('/', '-')}"


def mcp_ping(stack, token: str, ray: str | None = None) -> dict:
    """initialize, then tools/call ping in that session; the JSON-RPC result. `ray`: the
    `cf-ray` the requests carry, which their log lines record as `request_id`."""
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
    if ray:
        headers["cf-ray"] = ray

    def send(message: dict) -> httpx.Response:
        return http.post(stack.worker.mcp_url, json={"jsonrpc": "2.0", **message}, headers=headers)

    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "cimd-test", "version": "1"}}
    answer = send({"id": 1, "method": "initialize", "params": hello})
    assert answer.status_code == 200, answer.text
    headers["mcp-session-id"] = answer.headers["mcp-session-id"]
    send({"method": "notifications/initialized"})
    answer = send({"id": 2, "method": "tools/call", "params": {"name": "ping", "arguments": {"message": "cimd"}}})
    assert answer.status_code == 200, answer.text
    (data,) = [line.removeprefix("data:").strip() for line in answer.text.splitlines() if line.startswith("data:")]
    return json.loads(data)["result"]


# --- The happy path ---------------------------------------------------------------------------------


def test_the_metadata_advertises_client_id_metadata_documents(stack):
    metadata = http.get(stack.worker.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]  # claude.ai requires both
    assert metadata["registration_endpoint"] == stack.worker.url + "/register"  # DCR stays


def test_a_cimd_client_logs_in_and_calls_a_tool(stack, docs, path):
    client_id = publish(docs, path, client_name="Example <Editor>", cache_control="max-age=300")

    response = open_authorize(stack, client_id)
    page = consent_page(response)
    assert page["client-name"]["text"].strip() == "Example <Editor>"
    assert "&lt;Editor&gt;" in response.text and "<Editor>" not in response.text
    assert page["client-host"]["text"].strip() == CLIENT_HOST
    assert page["redirect-host"]["text"].strip() == "localhost"
    assert page["host-match"]["data-match"] == "loopback"
    assert counts(stack, "authorization") == 0, "nothing goes to Access before consent"
    (fetch,) = docs.requests(path)
    assert fetch["host"] == f"{CLIENT_HOST}:8443"
    assert fetch["headers"].get("Accept") == "application/json"

    grant = authorize(stack, client_id=client_id)
    assert grant.code and grant.iss == stack.worker.url
    assert grant.access_request["client_id"] == stack.emulator.client_id, "Access sees its own client"
    tokens = exchange(stack, grant, client_id=client_id)
    assert tokens.status_code == 200, tokens.text
    assert mcp_ping(stack, tokens.json()["access_token"])["content"][0]["text"] == "pong: cimd"
    assert docs.fetches(path) == 1, "the second authorization used the cached document"


def test_a_web_redirect_on_another_host_is_shown_with_a_warning(stack, docs, path):
    client_id = publish(docs, path, redirect_uris=[WEB_CALLBACK])
    page = consent_page(open_authorize(stack, client_id, redirect_uri=WEB_CALLBACK))
    assert (page["client-host"]["text"].strip(), page["redirect-host"]["text"].strip()) == (CLIENT_HOST, "claude.ai")
    assert page["host-match"]["data-match"] == "no"


# --- Document faults: one page for all, the log naming the problem, never a redirect ------------------


def _faulty(docs, path: str) -> dict[str, Answer]:
    url = docs.url(path)
    valid = client_metadata(url, [REDIRECT_URI])
    without = lambda name: {k: v for k, v in valid.items() if k != name}  # noqa: E731
    return {
        "wrong client_id": Answer({**valid, "client_id": url + "?other"}),
        "client_id of another host": Answer({**valid, "client_id": docs.url(path, OTHER_HOST)}),
        "no client_name": Answer(without("client_name")),
        "blank client_name": Answer({**valid, "client_name": "  "}),
        "no redirect_uris": Answer(without("redirect_uris")),
        "empty redirect_uris": Answer({**valid, "redirect_uris": []}),
        "not JSON": Answer("<html>client metadata</html>", content_type="text/html"),
        "a JSON array": Answer([valid]),
        "a client secret": Answer({**valid, "client_secret": "s3cr3t-in-a-public-document"}),
        "a private key": Answer({**valid, "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"}]}}),
        "a secret auth method": Answer({**valid, "token_endpoint_auth_method": "client_secret_basic"}),
        "too large": Answer({**valid, "padding": "x" * 5 * 1024}),
        "too large, chunked": Answer({**valid, "padding": "x" * 5 * 1024}, chunked=True),
        "endless": Answer(fault="endless"),
        "slow": Answer(valid, fault="slow"),
        "a stalling body": Answer(valid, fault="stall"),
        "a redirect": Answer(fault="redirect", location=docs.url(path + ".moved")),
        "not found": Answer("gone", status=404, content_type="text/plain"),
    }


# The failure the log line names, per fault; the page says only UNUSABLE.
FAULTS = {
    "wrong client_id": "ClientIdMismatch",
    "client_id of another host": "ClientIdMismatch",
    "no client_name": "NoClientName",
    "blank client_name": "NoClientName",
    "no redirect_uris": "NoRedirectUris",
    "empty redirect_uris": "NoRedirectUris",
    "not JSON": "NotJson",
    "a JSON array": "NotObject",
    "a client secret": "ClientSecret",
    "a private key": "PrivateKey",
    "a secret auth method": "AuthMethod",
    "too large": "TooLarge",
    "too large, chunked": "TooLarge",
    "endless": "TooLarge",
    "slow": "Timeout",
    "a stalling body": "Timeout",
    "a redirect": "Redirected",
    "not found": "BadStatus",
}
UNUSABLE = "the client's metadata document could not be used"


@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_document_is_one_page_for_all_and_the_log_names_it(stack, docs, path, fault):
    docs.serve(path, _faulty(docs, path)[fault])
    # Where the redirect leads, a document a redirect-follower would accept.
    docs.serve(path + ".moved", Answer(client_metadata(docs.url(path), [REDIRECT_URI])))
    asked = counts(stack, "authorization")

    seen, ray = len(stack.worker.request_log()), ray_for("fault", path)
    response = open_authorize(stack, docs.url(path), headers={"cf-ray": ray})
    assert_refused(response, UNUSABLE)
    assert FAULTS[fault] not in response.text

    assert counts(stack, "authorization") == asked, "Access is never asked"
    assert docs.fetches(path) == 1 and docs.fetches(path + ".moved") == 0, "one fetch, no redirect followed"
    lines = log_lines(stack, seen, "authorize", request_id=ray)
    assert [line["error"] for line in lines] == [f"client metadata: {FAULTS[fault]}"]


def test_the_secret_in_a_document_is_never_shown_or_logged(stack, docs, path):
    docs.serve(path, _faulty(docs, path)["a client secret"])
    response = open_authorize(stack, docs.url(path))
    assert_error_page(response)
    assert "s3cr3t" not in response.text and "s3cr3t" not in stack.worker.log()


@pytest.mark.parametrize("chunked", [False, True], ids=["with length", "chunked"])
def test_a_document_of_exactly_5_kib_is_accepted(stack, docs, path, chunked):
    client_id = docs.url(path)
    document = client_metadata(client_id, [REDIRECT_URI])
    document["padding"] = "x" * (5 * 1024 - len(json.dumps({**document, "padding": ""})))
    assert len(json.dumps(document)) == 5 * 1024
    docs.serve(path, Answer(document, chunked=chunked))
    consent_page(open_authorize(stack, client_id))


def test_a_document_preferring_private_key_jwt_is_served_as_a_public_client(stack, docs, path):
    """As ChatGPT's: served with PKCE and no client authentication, like `none`."""
    public_jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    client_id = publish(docs, path, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [public_jwk]})
    grant = authorize(stack, client_id=client_id)
    assert exchange(stack, grant, client_id=client_id).status_code == 200


# --- The redirect URI --------------------------------------------------------------------------------


def test_a_loopback_redirect_on_another_port_is_accepted(stack, docs, path):
    """RFC 8252 §7.3: a native client picks its port when it runs."""
    client_id = publish(docs, path, redirect_uris=["http://localhost:1234/callback"])
    consent_page(open_authorize(stack, client_id, redirect_uri="http://localhost:53682/callback"))


REFUSED_REDIRECTS = {
    "another path": "http://localhost:53682/other",
    "another loopback host spelling": "http://127.0.0.1:53682/callback",
    "a web callback the gateway allows": WEB_CALLBACK,
}


@pytest.mark.parametrize("redirect_uri", REFUSED_REDIRECTS.values(), ids=REFUSED_REDIRECTS.keys())
def test_a_redirect_not_in_the_document_is_refused(stack, docs, path, redirect_uri):
    client_id = publish(docs, path)
    response = open_authorize(stack, client_id, redirect_uri=redirect_uri)
    assert_refused(response, "the redirect_uri is not among the redirect_uris of the client's metadata document")
    assert redirect_uri not in response.headers.get("location", "")


def test_a_redirect_in_the_document_must_still_pass_the_gateways_policy(stack, docs, path):
    """A document cannot widen ALLOWED_REDIRECT_URIS."""
    unlisted = "https://evil.example/callback"
    client_id = publish(docs, path, redirect_uris=[unlisted])
    response = open_authorize(stack, client_id, redirect_uri=unlisted)
    assert_error_page(response)
    assert "the redirect_uri is not allowed by this server" in html.unescape(response.text)


# --- Trust policy ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trusting_one_host(stack):
    """A Worker of its own in front of the stack's Access and origin that trusts client ids on
    client.example.test only and allows its web callback (its /callback is not registered at
    Access: these tests stop at the consent page)."""
    worker = start_worker(
        stack.emulator,
        origin_url=stack.origin.base_url,
        CIMD_ALLOWED_HOSTS=json.dumps([CLIENT_HOST]),
        ALLOWED_REDIRECT_URIS=f"loopback https://{CLIENT_HOST}/callback",
    )
    yield type(stack)(stack.emulator, stack.origin, worker)
    worker.stop()


def test_the_trust_policy_refuses_other_hosts_without_fetching(trusting_one_host, docs, path):
    stack = trusting_one_host
    untrusted = docs.url(path, OTHER_HOST)
    docs.serve(path, Answer(client_metadata(untrusted, [REDIRECT_URI])))  # only the policy refuses it
    assert_refused(open_authorize(stack, untrusted), "this server does not accept clients whose client_id is on that host")
    assert docs.fetches(path) == 0, "an untrusted host is never fetched"


def test_the_trust_policy_admits_its_hosts_and_a_same_host_redirect_matches(trusting_one_host, docs, path):
    stack = trusting_one_host
    callback = f"https://{CLIENT_HOST}/callback"
    client_id = publish(docs, path, redirect_uris=[callback])
    page = consent_page(open_authorize(stack, client_id, redirect_uri=callback))
    assert page["host-match"]["data-match"] == "yes"


# --- Consent is remembered per client ----------------------------------------------------------------


def test_a_remembered_consent_is_for_that_client_only(stack, docs, path):
    """The same loopback redirect approved for the DCR client does not approve a CIMD client,
    and an approved CIMD client is not asked again."""
    jar = httpx.Cookies()
    assert authorize(stack, cookies=jar).code  # the DCR client (the Access client id)
    client_id = publish(docs, path)
    consent_page(open_authorize(stack, client_id, cookies=jar))
    assert authorize(stack, cookies=jar, client_id=client_id).code
    again = open_authorize(stack, client_id, cookies=jar, redirect_uri="http://localhost:40001/callback")
    assert again.status_code == 302 and again.headers["location"].startswith(stack.emulator.issuer + "/authorization?")


@pytest.mark.parametrize(
    "fixture, redirect_uri, remembered",
    [("trusting_one_host", f"https://{CLIENT_HOST}/callback", True), ("stack", WEB_CALLBACK, False)],
    ids=["the document's own host", "another host"],
)
def test_a_web_callback_is_remembered_only_on_the_documents_host(request, docs, path, fixture, redirect_uri, remembered):
    """Approved, a CIMD client's https callback on the host that published its document is
    remembered (that host is proven by the fetch); one on another host is asked every time."""
    stack = request.getfixturevalue(fixture)
    client_id = publish(docs, path, redirect_uris=[redirect_uri])
    browser = Browser()
    url = authorization_url(stack, CHALLENGE, client_id=client_id, redirect_uri=redirect_uri)
    approved = browser.submit_consent(stack.worker.url, ticket_of(browser.get(url)), "approve")
    assert approved.status_code == 302 and approved.headers["location"].startswith(stack.emulator.issuer)
    consent = [name for name in browser.client.cookies.keys() if name.startswith("mcpgw_consent_")]
    assert bool(consent) == remembered, consent
    again = browser.get(url)
    assert again.status_code == (302 if remembered else 200), again.text[:300]


# --- /token: the client id is bound to the code and the refresh token --------------------------------


@pytest.fixture
def cimd_grant(stack, docs, path):
    client_id = publish(docs, path)
    return client_id, authorize(stack, client_id=client_id)


def test_the_code_is_for_the_client_that_asked_for_it(stack, docs, cimd_grant):
    client_id, grant = cimd_grant
    calls = counts(stack, "token")
    for other in (docs.url("/oauth/other-client.json"), stack.emulator.client_id):
        assert_oauth_error(exchange(stack, grant, client_id=other), 400, "invalid_grant")
    assert_oauth_error(exchange(stack, grant, client_id=None), 401, "invalid_client")
    assert counts(stack, "token") == calls, "Access is not asked"
    assert exchange(stack, grant, client_id=client_id).status_code == 200


def test_a_dcr_code_is_not_for_a_cimd_client(stack, docs):
    grant = authorize(stack)
    assert_oauth_error(exchange(stack, grant, client_id=docs.url("/oauth/other-client.json")), 400, "invalid_grant")


def test_a_cimd_client_presenting_a_secret_is_invalid_client(stack, cimd_grant):
    client_id, grant = cimd_grant
    secret = stack.emulator.client_secret
    assert_oauth_error(exchange(stack, grant, client_id=client_id, client_secret=secret), 401, "invalid_client")
    assert_oauth_error(exchange(stack, grant, client_id=None, auth=(client_id, secret)), 401, "invalid_client")


def test_a_refresh_by_another_client_is_invalid_grant(stack, docs, cimd_grant):
    client_id, grant = cimd_grant
    tokens = exchange(stack, grant, client_id=client_id)
    assert tokens.status_code == 200, tokens.text
    refresh_token = tokens.json()["refresh_token"]

    def refresh(by: str):
        return post_token(stack, {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": by})

    for other in (docs.url("/oauth/other-client.json"), stack.emulator.client_id):
        assert_oauth_error(refresh(other), 400, "invalid_grant")
    assert refresh(client_id).status_code == 200


# --- Caching -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cache_control", ["max-age=300", "no-store", None])
def test_a_document_is_fetched_once_within_its_lifetime(stack, docs, path, cache_control):
    """max-age as given; no-store, no-cache or no max-age still get the 60 s floor, so a client
    id cannot make the Worker fetch its document on every authorization."""
    client_id = publish(docs, path, cache_control=cache_control)
    for _ in range(3):
        consent_page(open_authorize(stack, client_id))
    assert docs.fetches(path) == 1


def test_a_document_is_checked_against_each_request_from_the_cache(stack, docs, path):
    """An unlisted redirect refused from the cached document; the listed one still works."""
    client_id = publish(docs, path)
    consent_page(open_authorize(stack, client_id))
    assert_error_page(open_authorize(stack, client_id, redirect_uri="http://localhost:1/other"))
    consent_page(open_authorize(stack, client_id))
    assert docs.fetches(path) == 1


@pytest.mark.parametrize("fault", ["not found", "not JSON", "wrong client_id"])
def test_a_failing_document_is_not_fetched_again_for_a_while(stack, docs, path, fault):
    docs.serve(path, _faulty(docs, path)[fault])
    for _ in range(3):
        assert_refused(open_authorize(stack, docs.url(path)), UNUSABLE)
    assert docs.fetches(path) == 1


# --- The log line ------------------------------------------------------------------------------------


def test_the_log_line_names_the_client_of_a_sealed_token(sealed_stack, docs, path):
    stack = sealed_stack
    client_id = publish(docs, path)
    tokens = exchange(stack, authorize(stack, client_id=client_id), client_id=client_id)
    assert tokens.status_code == 200, tokens.text
    seen, ray = len(stack.worker.request_log()), ray_for("sealed-client", path)
    mcp_ping(stack, tokens.json()["access_token"], ray)
    lines = log_lines(stack, seen, "mcp", request_id=ray)
    assert lines and all(line["client"] == client_id for line in lines), lines


def test_the_log_line_has_no_client_for_an_access_jwt(stack, docs, path):
    """Access's own JWT (TOKEN_MODE auto with a JWT-issuing Access) says nothing of the client."""
    client_id = publish(docs, path)
    tokens = exchange(stack, authorize(stack, client_id=client_id), client_id=client_id)
    seen, ray = len(stack.worker.request_log()), ray_for("jwt-client", path)
    mcp_ping(stack, tokens.json()["access_token"], ray)
    lines = log_lines(stack, seen, "mcp", request_id=ray)
    assert lines and all(line["client"] is None for line in lines), lines


FAILURE_EVENT = re.compile(r'\{[^{}]*"event":"client_metadata_failed"[^{}]*\}')


def failure_events(stack, ray: str) -> list[dict]:
    """The `client_metadata_failed` warnings of the requests that carried `cf-ray: ray`."""
    events = (json.loads(event) for event in FAILURE_EVENT.findall(stack.worker.log()))
    return [event for event in events if event["request_id"] == ray]


@pytest.mark.parametrize("fault", ["not JSON", "wrong client_id"])
def test_a_failed_document_is_logged_once_with_its_host_and_reason(stack, docs, path, fault):
    """One warning per fetch that failed; the refusal from the failure cache logs none."""
    docs.serve(path, _faulty(docs, path)[fault])
    seen, ray = len(stack.worker.request_log()), ray_for("failure-event", path)
    for _ in range(2):
        assert_error_page(open_authorize(stack, docs.url(path), headers={"cf-ray": ray}))
    # Both requests' log lines, and the warning (on another stream than the lines).
    eventually(lambda: len(log_lines(stack, seen, "authorize", request_id=ray)) >= 2 and failure_events(stack, ray))
    events = [{**event, "event": None} for event in failure_events(stack, ray)]
    expected = {"event": None, "request_id": ray, "host": CLIENT_HOST, "error": FAULTS[fault], "pinned": False}
    assert events == [expected]


# --- The pinned fallback -----------------------------------------------------------------------------

CLAUDE_CODE = "https://claude.ai/oauth/claude-code-client-metadata"


@pytest.fixture(scope="module")
def without_pinned(stack):
    """A Worker of its own in front of the stack's Access and origin, with CIMD_PINNED=off."""
    worker = start_worker(stack.emulator, origin_url=stack.origin.base_url, CIMD_PINNED="off")
    yield type(stack)(stack.emulator, stack.origin, worker)
    worker.stop()


def test_claude_codes_pinned_document_serves_when_its_host_is_unreachable(stack):
    """The namespace has no route out, so claude.ai cannot be fetched: the copy compiled into the
    Worker (src/clients/pinned_client_metadata.json) stands in, and the warning says so."""
    ray = "pinned-claude-code"
    answer = open_authorize(stack, CLAUDE_CODE, redirect_uri="http://localhost:53682/callback", headers={"cf-ray": ray})
    page = consent_page(answer)
    assert (page["client-name"]["text"].strip(), page["client-host"]["text"].strip()) == ("Claude Code", "claude.ai")
    (event,) = eventually(lambda: failure_events(stack, ray))
    assert (event["host"], event["error"], event["pinned"]) == ("claude.ai", "Unreachable", True)


def test_without_pinned_documents_an_unreachable_host_is_refused(without_pinned):
    response = open_authorize(without_pinned, CLAUDE_CODE, redirect_uri="http://localhost:53682/callback")
    assert_refused(response, UNUSABLE)
