"""What an MCP client and its browser do against the gateway, as small functions over httpx.

    grant = authorize(stack)                  # consent approved, Access signed in, back at the client
    response = exchange(stack, grant)         # POST /token with the client's code_verifier

`authorize` lets tests/support/browser.py play the person for a whole flow; `Browser` takes one
step at a time for the tests of the steps themselves (consent form, CSRF, callback). Neither ever
requests the client's redirect URI (nothing listens there). Helpers take the overrides a test
needs; `None` drops a parameter.
"""

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from support.browser import play_browser

# A Claude Code style loopback redirect (RFC 8252 §7.3: any port).
REDIRECT_URI = "http://localhost:53682/callback"
STATE = "client-state-Ω 1/2"  # non-ASCII, a space and a slash: state must come back byte-identical
# One connection pool for the whole run, which never keeps cookies: each test says which cookies
# its browser has (Browser, or an explicit Cookie header).
http = httpx.Client(timeout=15, cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])))


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _without_none(values: dict) -> dict:
    return {name: value for name, value in values.items() if value is not None}


def single(url: str) -> dict[str, str]:
    """The query parameters of `url`, each of which must appear exactly once."""
    params = parse_qs(urlsplit(url).query, keep_blank_values=True)
    repeated = [name for name, values in params.items() if len(values) != 1]
    assert not repeated, f"repeated parameters {repeated} in {url}"
    return {name: values[0] for name, values in params.items()}


def authorization_params(stack, challenge: str, **overrides) -> dict:
    params = {
        "response_type": "code",
        "client_id": stack.emulator.client_id,
        "redirect_uri": REDIRECT_URI,
        "state": STATE,
        "scope": "openid email",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": stack.worker.mcp_url,
        **overrides,
    }
    return _without_none(params)


def authorization_url(stack, challenge: str, *, at: str | None = None, **overrides) -> str:
    """`at` is the origin the browser opens (default: the Worker's own URL)."""
    return f"{at or stack.worker.url}/authorize?{urlencode(authorization_params(stack, challenge, **overrides))}"


_TICKET = re.compile(r'name="ticket" value="([^"]+)"')


def ticket_of(page: httpx.Response) -> str:
    match = _TICKET.search(page.text)
    assert match, f"no consent form in:\n{page.text[:2000]}"
    return html.unescape(match.group(1))


class Browser:
    """A cookie-keeping browser driven one request at a time (redirects are not followed)."""

    def __init__(self):
        self.client = httpx.Client(timeout=15, follow_redirects=False)

    def get(self, url: str) -> httpx.Response:
        return self.client.get(url)

    def submit_consent(self, worker_url: str, ticket: str, decision: str, origin: str | None = None) -> httpx.Response:
        """What a browser sends when the person clicks Approve or Deny on the page it was given
        (`origin` overrides the `Origin` header, which is the page's own)."""
        return self.client.post(
            worker_url + "/authorize",
            data={"ticket": ticket, "decision": decision},
            headers={"Origin": origin or worker_url, "Sec-Fetch-Site": "same-origin"},
        )


@dataclass
class Grant:
    """A finished authorization: what the client's redirect URI received, and the PKCE verifier."""

    code: str
    verifier: str
    challenge: str
    redirect_uri: str
    state: str | None
    iss: str | None
    location: str
    access_request: dict  # what Access's /authorization received (the emulator's record)


def authorize(
    stack, *, cookies: httpx.Cookies | None = None, approve: bool = True, at: str | None = None, **overrides
) -> Grant:
    """The whole browser leg of one authorization request (tests/support/browser.py plays the
    person). `cookies` is the browser's jar: pass the same one to keep a remembered consent.
    `at` is the origin the browser opens (default: the Worker's own URL)."""
    verifier, challenge = pkce_pair()
    params = authorization_params(stack, challenge, **overrides)
    url = f"{at or stack.worker.url}/authorize?{urlencode(params)}"
    location = play_browser(url, params["redirect_uri"] + "?", approve=approve, cookies=cookies)
    got = single(location)
    return Grant(
        code=got.get("code", ""),
        verifier=verifier,
        challenge=challenge,
        redirect_uri=params["redirect_uri"],
        state=got.get("state"),
        iss=got.get("iss"),
        location=location,
        access_request=stack.emulator.stats()["last_authorization"] or {},
    )


def post_token(stack, form: dict, *, auth: tuple[str, str] | None = None, **kwargs) -> httpx.Response:
    return http.post(stack.worker.url + "/token", data=_without_none(form), auth=auth, **kwargs)


def code_form(stack, grant: Grant, **overrides) -> dict:
    """The token request of a public client (`none`), as the MCP SDKs send it."""
    return _without_none(
        {
            "grant_type": "authorization_code",
            "code": grant.code,
            "redirect_uri": grant.redirect_uri,
            "code_verifier": grant.verifier,
            "client_id": stack.emulator.client_id,
            "resource": stack.worker.mcp_url,
            **overrides,
        }
    )


def exchange(stack, grant: Grant, *, auth: tuple[str, str] | None = None, **overrides) -> httpx.Response:
    return post_token(stack, code_form(stack, grant, **overrides), auth=auth)


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict:
    """An RFC 6749 §5.2 / RFC 7591 §3.2.2 JSON error: exact status and code, never cached."""
    assert response.status_code == status, f"{response.status_code} {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.headers.get("cache-control") == "no-store"
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body.get("error_description", ""), str)
    return body


def assert_error_page(response: httpx.Response, error: str | None = None) -> None:
    """A 400 HTML page for the person — never a redirect to an unchecked place."""
    assert response.status_code == 400, f"{response.status_code} {response.headers} {response.text[:300]}"
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("x-frame-options") == "DENY"
    assert "access-control-allow-origin" not in response.headers
    if error:
        assert error in response.text


def assert_redirect_error(response: httpx.Response, redirect_uri: str, error: str, issuer: str, state=STATE) -> dict:
    """RFC 6749 §4.1.2.1 error response at the client's redirect URI, with RFC 9207 `iss`."""
    assert response.status_code == 302, f"{response.status_code} {response.text[:300]}"
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    got = single(location)
    assert got["error"] == error, got
    assert got.get("state") == state
    assert got["iss"] == issuer
    assert "code" not in got
    return got
