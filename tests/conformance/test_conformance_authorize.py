"""The browser leg: GET /authorize (RFC 6749 §4.1.1, RFC 7636, RFC 8707), the consent step (MCP
security best practices: a proxy with a static client id asks the person first), the redirect to
Access, and /callback back to the client with RFC 9207 `iss` on every answer, errors included."""

import httpx
import pytest
from oauth_flow import (
    REDIRECT_URI,
    STATE,
    Browser,
    assert_error_page,
    assert_redirect_error,
    authorization_url,
    authorize,
    http,
    pkce_pair,
    single,
    ticket_of,
)

_, CHALLENGE = pkce_pair()


def get(url: str):
    return http.get(url, follow_redirects=False)


# --- Errors that can safely go back to the client (RFC 6749 §4.1.2.1) ----------------------------

REDIRECTED_ERRORS = {
    "no PKCE": ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    "plain PKCE": ({"code_challenge_method": "plain"}, "invalid_request"),
    "no challenge method (means plain)": ({"code_challenge_method": None}, "invalid_request"),
    "challenge not S256-shaped": ({"code_challenge": "too-short"}, "invalid_request"),
    "challenge with padding": ({"code_challenge": CHALLENGE[:42] + "="}, "invalid_request"),
    "response_type token": ({"response_type": "token"}, "unsupported_response_type"),
    "response_type code id_token": ({"response_type": "code id_token"}, "unsupported_response_type"),
    "no response_type": ({"response_type": None}, "invalid_request"),
    "resource of another server": ({"resource": "https://other.example/mcp"}, "invalid_target"),
    "resource with trailing slash": ("/", "invalid_target"),
    "resource of the origin root": ("", "invalid_target"),
}


@pytest.mark.parametrize("overrides, error", REDIRECTED_ERRORS.values(), ids=REDIRECTED_ERRORS.keys())
def test_bad_requests_go_back_to_the_client_with_state_and_iss(stack, overrides, error):
    if isinstance(overrides, str):  # a resource that differs from the MCP URL only by its path
        overrides = {"resource": stack.worker.url + overrides}
    response = get(authorization_url(stack, CHALLENGE, **overrides))
    assert_redirect_error(response, REDIRECT_URI, error, issuer=stack.worker.url)
    assert response.headers["cache-control"] == "no-store"
    assert stack.emulator.stats()["counts"].get("authorization", 0) == 0, "Access is never asked"


def test_without_state_no_state_comes_back(stack):
    response = get(authorization_url(stack, CHALLENGE, state=None, code_challenge_method="plain"))
    got = assert_redirect_error(response, REDIRECT_URI, "invalid_request", issuer=stack.worker.url, state=None)
    assert "state" not in got


# --- Errors that must not redirect: the client or redirect URI is not established -----------------

PAGE_ERRORS = {
    "unknown client_id": {"client_id": "someone-else"},
    "no client_id": {"client_id": None},
    "unapproved redirect_uri": {"redirect_uri": "https://evil.example/callback"},
    "lookalike loopback": {"redirect_uri": "http://localhost.evil.example/callback"},
    "https loopback": {"redirect_uri": "https://localhost:8080/callback"},
    "no redirect_uri": {"redirect_uri": None},
}


@pytest.mark.parametrize("overrides", PAGE_ERRORS.values(), ids=PAGE_ERRORS.keys())
def test_untrusted_client_or_redirect_gets_a_page_never_a_redirect(stack, overrides):
    assert_error_page(get(authorization_url(stack, CHALLENGE, **overrides)))


@pytest.mark.parametrize("repeated", ["redirect_uri", "client_id"])
def test_a_repeated_parameter_is_refused_with_a_page(stack, repeated):
    """RFC 6749 §3.1: parameters MUST NOT be included more than once — and with two redirect URIs
    the gateway cannot know which one is safe to send the error to."""
    extra = {"redirect_uri": "https://evil.example/cb", "client_id": "other"}[repeated]
    url = authorization_url(stack, CHALLENGE) + f"&{repeated}={extra}"
    assert_error_page(get(url), "invalid_request")


# --- The consent page -----------------------------------------------------------------------------


def test_the_consent_page_names_server_target_and_scope(stack):
    response = get(authorization_url(stack, CHALLENGE))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    # Clickjacking: the page with buttons cannot be framed.
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # No form-action: Chromium applies it to the redirects that follow the post (to Access, to the client).
    assert "form-action" not in response.headers["content-security-policy"]
    # The referrer stays on this origin, so the form post names its Origin (no-referrer makes it `null`).
    assert response.headers["referrer-policy"] == "same-origin"
    assert not any(name.startswith("access-control-") for name in response.headers)
    page = response.text
    assert stack.worker.mcp_url in page
    assert REDIRECT_URI in page
    assert "an application on this computer" in page  # loopback, described for a person
    assert "openid email" in page
    assert 'value="approve"' in page and 'value="deny"' in page
    assert STATE not in page  # the client's state is none of the person's business
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("mcpgw_csrf=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes
    # Plain http: the bare name (browsers refuse `__Host-`/Secure there; the https names are native tests).
    assert "SameSite=Strict" in cookie and "Path=/;" in cookie
    assert stack.emulator.stats()["counts"].get("authorization", 0) == 0, "nothing is sent to Access before consent"


def test_the_consent_page_escapes_what_the_client_sent(stack):
    hostile = "http://localhost:1/cb?x=<script>alert(1)</script>"
    response = get(authorization_url(stack, CHALLENGE, redirect_uri=hostile, scope="<b>openid</b>"))
    assert response.status_code == 200
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;" in response.text


def test_approve_goes_through_access_and_back_to_the_client(any_stack):
    stack = any_stack
    grant = authorize(stack)
    # RFC 6749 §4.1.2 and RFC 9207 §2: code, the state byte for byte, and the gateway's issuer.
    assert grant.code
    assert grant.state == STATE
    assert grant.iss == stack.worker.url
    assert grant.location.startswith(REDIRECT_URI + "?")
    # What Access received: the gateway's own callback, the client's PKCE challenge, no resource.
    sent = grant.access_request
    assert sent["client_id"] == stack.emulator.client_id
    assert sent["redirect_uri"] == stack.worker.url + "/callback"
    assert sent["response_type"] == "code"
    assert sent["code_challenge"] == grant.challenge
    assert sent["code_challenge_method"] == "S256"
    assert sent["scope"] == "openid email"
    assert "resource" not in sent  # RFC 8707 resource is this gateway's business, not Access's
    assert sent["state"] != STATE and STATE not in sent["state"]  # sealed, not the client's


def test_the_redirect_to_access_is_exactly_what_access_received(stack):
    browser = Browser()
    page = browser.get(authorization_url(stack, CHALLENGE))
    answer = browser.submit_consent(stack.worker.url, ticket_of(page), "approve")
    assert answer.status_code == 302
    assert answer.headers["cache-control"] == "no-store"
    location = answer.headers["location"]
    assert location.startswith(stack.emulator.issuer + "/authorization?")
    params = single(location)
    assert set(params) == {
        "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "nonce"
    }
    assert params["code_challenge"] == CHALLENGE
    # OIDC nonce: Access's id_token carries it, so an id_token never passes as an access token.
    assert len(params["nonce"]) >= 43 and CHALLENGE not in params["nonce"]
    assert params["redirect_uri"] == stack.worker.url + "/callback"


@pytest.mark.parametrize("scope, sent", [(None, "openid email profile"), ("email unknown", "openid email")])
def test_scopes_asked_of_access(stack, scope, sent):
    """Unknown scopes are ignored (RFC 6749 §3.3) and `openid` is always asked for."""
    grant = authorize(stack, scope=scope)
    assert grant.access_request["scope"] == sent


def test_deny_sends_access_denied_back_without_asking_access(any_stack):
    stack = any_stack
    browser = Browser()
    page = browser.get(authorization_url(stack, CHALLENGE))
    answer = browser.submit_consent(stack.worker.url, ticket_of(page), "deny")
    assert_redirect_error(answer, REDIRECT_URI, "access_denied", issuer=stack.worker.url)
    assert "set-cookie" not in answer.headers, "a refusal is not remembered as consent"
    assert stack.emulator.stats()["counts"].get("authorization", 0) == 0


def asks(stack, response: httpx.Response) -> bool:
    """Whether the answer is the consent page rather than the redirect straight on to Access."""
    if response.status_code == 302:
        assert response.headers["location"].startswith(stack.emulator.issuer + "/authorization?")
        return False
    assert response.status_code == 200 and 'value="approve"' in response.text, response.text[:300]
    return True


def test_a_remembered_consent_skips_the_page_for_the_same_target_only(stack):
    jar = httpx.Cookies()
    assert authorize(stack, cookies=jar).code
    with httpx.Client(cookies=jar) as browser:
        # The same loopback client on another port (a new port per login): straight to Access.
        again = browser.get(authorization_url(stack, CHALLENGE, redirect_uri="http://localhost:40001/callback"))
        assert again.status_code == 302
        assert again.headers["location"].startswith(stack.emulator.issuer + "/authorization?")
        # Another application, or another path on this computer: asked again.
        for other in ["https://claude.ai/api/mcp/auth_callback", "http://localhost:40001/oauth/callback"]:
            assert asks(stack, browser.get(authorization_url(stack, CHALLENGE, redirect_uri=other))), other


def test_a_registered_clients_web_callback_is_asked_every_time(stack):
    """A web callback of the shared (DCR) client id is never remembered: any website could start
    a login that ends there and, remembered, it would complete silently through Access SSO."""
    web = "https://claude.ai/api/mcp/auth_callback"
    jar = httpx.Cookies()
    for _ in range(2):
        assert authorize(stack, cookies=jar, redirect_uri=web).code
        assert not [name for name in jar.keys() if name.startswith("mcpgw_consent_")], dict(jar)
    with httpx.Client(cookies=jar) as browser:
        page = browser.get(authorization_url(stack, CHALLENGE, redirect_uri=web))
    assert asks(stack, page) and "any website can start a sign-in that ends there" in page.text


def test_a_remembered_consent_copied_into_another_browser_does_not_skip_the_page(stack):
    """The remembered consent is bound to a random id only the approving browser got: its
    consent cookie alone, copied into another browser (with or without an id of its own), asks."""
    jar = httpx.Cookies()
    assert authorize(stack, cookies=jar).code
    consent = {name: value for name, value in jar.items() if name.startswith("mcpgw_consent_")}
    assert len(consent) == 1
    url = authorization_url(stack, CHALLENGE)
    with httpx.Client(cookies=jar) as approving:
        assert not asks(stack, approving.get(url)), "the approving browser is not asked again"
    other = Browser()
    assert asks(stack, other.get(url))  # the other browser now has a CSRF cookie, and no consent
    other.client.cookies.update(consent)
    assert asks(stack, other.get(url))
    stranger = Browser()
    stranger.client.cookies.update({**consent, "mcpgw_browser": "b" * 43})
    assert asks(stack, stranger.get(url))


FORWARDED_TO = "vscode://dynamicauthprovider/mcp.example/authorize"
VSCODE = {"redirect_uri": "https://vscode.dev/redirect", "state": FORWARDED_TO + "?nonce=secret-nonce&windowId=1"}


def test_a_forwarder_is_asked_every_time_and_says_where_the_result_goes(stack):
    """vscode.dev/redirect forwards the code to the address in `state`, which whoever built the
    link chose: an approval is never remembered, and the page names that address."""
    jar = httpx.Cookies()
    assert authorize(stack, cookies=jar).code  # any remembered consent in this browser
    for _ in range(2):
        assert authorize(stack, cookies=jar, **VSCODE).code
        assert sum(name.startswith("mcpgw_consent_") for name in jar) == 1, "only the loopback consent"
    with httpx.Client(cookies=jar) as browser:
        page = browser.get(authorization_url(stack, CHALLENGE, **VSCODE))
    assert asks(stack, page)
    assert "an application reached through vscode.dev" in page.text
    assert f'id="forwarded-to">{FORWARDED_TO}<' in page.text
    assert "secret-nonce" not in page.text
    assert "asked every time for this destination" in page.text


# --- CSRF on the consent form ----------------------------------------------------------------------

CSRF = {
    "no csrf cookie": {"cookie": None},
    "neither Sec-Fetch-Site nor Origin": {"fetch_site": None, "origin": None},
    "a foreign Origin": {"fetch_site": None, "origin": "http://evil.example"},
    "a foreign Origin, same-origin claimed": {"origin": "http://evil.example"},
    "Origin null": {"fetch_site": None, "origin": "null"},
    "Sec-Fetch-Site none (typed navigation)": {"fetch_site": "none"},
    "forged csrf cookie": {"cookie": "mcpgw_csrf=forged"},
    "cross-site post": {"fetch_site": "cross-site"},
    "same-site (another subdomain) post": {"fetch_site": "same-site"},
    "tampered ticket": {"ticket": lambda t: t[:-4] + ("AAAA" if t[-4:] != "AAAA" else "BBBB")},
    "truncated ticket": {"ticket": lambda t: t[: len(t) // 2]},
    "no ticket": {"ticket": lambda t: None},
    "decision neither approve nor deny": {"decision": "maybe"},
}


@pytest.mark.parametrize("attack", CSRF.values(), ids=CSRF.keys())
def test_a_consent_post_not_from_the_page_is_refused(stack, attack):
    page = get(authorization_url(stack, CHALLENGE))
    csrf_cookie = page.headers["set-cookie"].split(";")[0]
    ticket = attack.get("ticket", lambda t: t)(ticket_of(page))
    sent = {"Sec-Fetch-Site": attack.get("fetch_site", "same-origin"), "Origin": attack.get("origin", stack.worker.url)}
    headers = {name: value for name, value in sent.items() if value}
    cookie = attack.get("cookie", csrf_cookie)
    if cookie:
        headers["Cookie"] = cookie
    data = {"ticket": ticket, "decision": attack.get("decision", "approve")}
    response = http.post(
        stack.worker.url + "/authorize", data={k: v for k, v in data.items() if v}, headers=headers
    )
    assert_error_page(response, "invalid_request")
    assert stack.emulator.stats()["counts"].get("authorization", 0) == 0


def test_a_ticket_from_another_browser_is_refused(stack):
    """Login CSRF: an attacker's own consent ticket, posted from the victim's browser."""
    attacker, victim = Browser(), Browser()
    attacker_ticket = ticket_of(attacker.get(authorization_url(stack, CHALLENGE)))
    victim.get(authorization_url(stack, CHALLENGE))  # the victim has a CSRF cookie of its own
    assert_error_page(victim.submit_consent(stack.worker.url, attacker_ticket, "approve"))


def test_the_consent_form_must_be_a_form(stack):
    browser = Browser()
    ticket = ticket_of(browser.get(authorization_url(stack, CHALLENGE)))
    response = browser.client.post(
        stack.worker.url + "/authorize",
        json={"ticket": ticket, "decision": "approve"},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": stack.worker.url},
    )
    assert response.status_code == 415
    assert "location" not in response.headers


# --- /callback ------------------------------------------------------------------------------------


def sealed_state(stack) -> str:
    """The sealed `state` the gateway sends to Access, taken before Access sees it."""
    browser = Browser()
    page = browser.get(authorization_url(stack, CHALLENGE))
    answer = browser.submit_consent(stack.worker.url, ticket_of(page), "approve")
    return single(answer.headers["location"])["state"]


def callback(stack, **params):
    return http.get(stack.worker.url + "/callback", params={k: v for k, v in params.items() if v is not None})


def test_a_callback_with_no_state_is_a_page(stack):
    assert_error_page(callback(stack, code="c"), "invalid_request")


@pytest.mark.parametrize("forge", ["tampered", "truncated", "extended", "code used as state", "other gateway's state"])
def test_a_callback_with_a_state_the_gateway_did_not_seal_is_a_page(stack, pkce_stack, forge):
    """Nothing unsealed is trusted: without a valid state there is no redirect URI to go back to.
    (An expired state — 15 minutes — is covered by the native test named in the README.)"""
    state = sealed_state(stack)
    if forge == "tampered":
        middle = len(state) // 2
        state = state[:middle] + ("A" if state[middle] != "A" else "B") + state[middle + 1 :]
    elif forge == "truncated":
        state = state[:-10]
    elif forge == "extended":
        state += "AAAA"
    elif forge == "code used as state":
        state = authorize(stack).code  # sealed by this gateway, but for another purpose
    else:
        state = sealed_state(pkce_stack)  # sealed by another gateway (another key)
    response = callback(stack, code="access-code", state=state)
    assert_error_page(response, "invalid_request")


ACCESS_ERRORS = {
    "access_denied": "access_denied",
    "temporarily_unavailable": "temporarily_unavailable",
    "invalid_scope": "invalid_scope",
    # Not the client's fault: the gateway built the request to Access.
    "invalid_request": "server_error",
    "unauthorized_client": "server_error",
    "something_new": "server_error",
}


@pytest.mark.parametrize("access_error, relayed", ACCESS_ERRORS.items(), ids=ACCESS_ERRORS.keys())
def test_access_errors_are_relayed_to_the_client_with_state_and_iss(any_stack, access_error, relayed):
    stack = any_stack
    stack.emulator.configure(authorization_error=access_error)
    browser = Browser()
    page = browser.get(authorization_url(stack, CHALLENGE))
    answer = browser.submit_consent(stack.worker.url, ticket_of(page), "approve")
    to_callback = browser.get(answer.headers["location"])  # Access answers with the error
    assert to_callback.headers["location"].startswith(stack.worker.url + "/callback?")
    back = browser.get(to_callback.headers["location"])
    assert_redirect_error(back, REDIRECT_URI, relayed, issuer=stack.worker.url)


def test_an_answer_from_another_issuer_is_a_mix_up(stack):
    """RFC 9207 §2.4: an `iss` from Access, when present, must be Access's issuer."""
    response = callback(stack, code="access-code", state=sealed_state(stack), iss="https://evil.example")
    assert_redirect_error(response, REDIRECT_URI, "server_error", issuer=stack.worker.url)


def test_an_answer_without_code_or_error_is_a_server_error(stack):
    response = callback(stack, state=sealed_state(stack))
    assert_redirect_error(response, REDIRECT_URI, "server_error", issuer=stack.worker.url)


def test_the_code_given_to_the_client_is_not_accesss_code(stack):
    """The code is sealed: Access's own code, redirect URI and resource travel inside it."""
    response = callback(stack, code="the-access-code", state=sealed_state(stack))
    assert response.status_code == 302
    got = single(response.headers["location"])
    assert got["code"] != "the-access-code" and "the-access-code" not in response.headers["location"]
    assert got["state"] == STATE and got["iss"] == stack.worker.url
    assert set(got) == {"code", "state", "iss"}
