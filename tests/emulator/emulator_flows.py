"""The OAuth steps of the bug report's curl verification, as small functions over httpx."""

from urllib.parse import parse_qsl, urlsplit

import httpx
from jose import jwt
from support.stack import pkce_pair

REDIRECT_URI = "http://localhost:8765/callback"
OTHER_REDIRECT_URI = "https://claude.ai/api/mcp/auth_callback"
USER_EMAIL = "user@example.com"
STATE = "test-state-1"
# One client for the whole run: each new httpx client costs ~20 ms of TLS context setup.
http = httpx.Client()


def _without_none(values: dict) -> dict:
    return {name: value for name, value in values.items() if value is not None}


def authorize(emulator, **overrides) -> httpx.Response:
    """GET /authorization (redirects not followed); overrides replace params, None drops one."""
    params = {
        "response_type": "code",
        "client_id": emulator.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": STATE,
        "code_challenge_method": "S256",
        **overrides,
    }
    return http.get(emulator.issuer + "/authorization", params=_without_none(params))


def location_query(response: httpx.Response) -> dict:
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


def login(emulator, **overrides) -> tuple[str, str]:
    """Authorize with a fresh PKCE pair; returns (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    response = authorize(emulator, code_challenge=challenge, **overrides)
    assert response.status_code == 302, response.text
    return location_query(response)["code"], verifier


def post_token(emulator, form: dict, auth: tuple[str, str] | None = None) -> httpx.Response:
    return http.post(emulator.issuer + "/token", data=_without_none(form), auth=auth)


def exchange(emulator, code: str, verifier: str | None, /, auth=None, **overrides) -> httpx.Response:
    """The bug report's token request (client_secret_post); overrides replace fields, None drops one."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "code_verifier": verifier,
        **overrides,
    }
    return post_token(emulator, form, auth)


def obtain_tokens(emulator, **authorize_overrides) -> dict:
    code, verifier = login(emulator, **authorize_overrides)
    response = exchange(emulator, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def claims(token: str) -> dict:
    return jwt.get_unverified_claims(token)


def header(token: str) -> dict:
    return jwt.get_unverified_header(token)
