"""A person with a browser, for OAuth flows driven by real MCP clients.

    url = play_browser(authorization_url, "http://localhost:4567/callback")
    # -> "http://localhost:4567/callback?code=...&state=...&iss=..."

Follows redirects one hop at a time with a cookie jar, answers the gateway's consent page
by submitting its form (approve or deny, sent like a browser sends a same-origin form
post), and stops at the first Location that starts with the client's redirect URI,
without requesting it, so no listener is needed. Anything else (an error page, a page
without the consent form, a redirect loop) raises `BrowserError`.
"""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

MAX_HOPS = 20
DECISION = "decision"


class BrowserError(RuntimeError):
    pass


class _ConsentForm(HTMLParser):
    """The first form of a page: its action, hidden inputs and submit buttons."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}  # value -> name of the submit buttons
        self._depth = 0  # 1 while inside the first form, 2 after it

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and self._depth == 0:
            self._depth = 1
            self.action = attributes.get("action", "")
            self.method = attributes.get("method", "get").lower()
        elif self._depth != 1 or "name" not in attributes:
            return
        elif tag == "input" and attributes.get("type", "text") == "hidden":
            self.fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and attributes.get("type", "submit") == "submit":
            self.buttons[attributes.get("value", "")] = attributes["name"]

    def handle_endtag(self, tag):
        if tag == "form" and self._depth == 1:
            self._depth = 2


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _describe(response: httpx.Response) -> str:
    """The request and what it got, an HTML page as its visible text."""
    text = response.text
    if "text/html" in response.headers.get("content-type", ""):
        text = " ".join(re.sub(r"(?s)<(style|script)\b.*?</\1>|<[^>]+>", " ", text).split())
    return f"{response.request.method} {response.request.url} answered {response.status_code}: {text[:600]!r}"


def _submit(page: httpx.Response, approve: bool) -> httpx.Request:
    """The form post a browser sends when the person clicks Approve or Deny."""
    form = _ConsentForm()
    form.feed(page.text)
    choice = "approve" if approve else "deny"
    if form.action is None or form.method != "post" or form.buttons.get(choice) != DECISION:
        raise BrowserError(f"no consent form with a {choice!r} button: {_describe(page)}")
    action = urljoin(str(page.url), form.action)
    same_origin = _origin(action) == _origin(str(page.url))
    scheme, netloc = _origin(str(page.url))
    return httpx.Request(
        "POST",
        action,
        data={**form.fields, DECISION: choice},
        headers={"Origin": f"{scheme}://{netloc}", "Sec-Fetch-Site": "same-origin" if same_origin else "cross-site"},
    )


def play_browser(
    authorization_url: str,
    redirect_uri_prefix: str,
    *,
    approve: bool = True,
    cookies: httpx.Cookies | None = None,
) -> str:
    """Open `authorization_url`, consent (or refuse), and return the URL the browser would be
    sent to at the client (the first Location starting with `redirect_uri_prefix`). `cookies`
    is the browser's cookie jar; pass one to keep its cookies (e.g. a remembered consent)
    across flows."""
    jar = cookies if cookies is not None else httpx.Cookies()
    request = httpx.Request("GET", authorization_url)
    with httpx.Client(follow_redirects=False, timeout=15) as http:
        for _ in range(MAX_HOPS):
            jar.set_cookie_header(request)
            response = http.send(request)
            response.read()
            jar.extract_cookies(response)
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_uri_prefix):
                    return location
                request = httpx.Request("GET", location)
            elif response.status_code == 200 and "text/html" in response.headers.get("content-type", ""):
                request = _submit(response, approve)
            else:
                raise BrowserError(_describe(response))
    raise BrowserError(f"more than {MAX_HOPS} hops without reaching {redirect_uri_prefix}")
