"""Bearer tokens for the run: an Access RS256 JWT minted by the Access emulator, and the
gateway's own sealed token obtained by a real OAuth flow (consent, Access login, /token)
against a Worker in TOKEN_MODE=sealed."""

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import stack  # noqa: F401  (puts tests/ on sys.path)
from support.browser import play_browser
from support.stack import Emulator, pkce_pair

# Outlives the whole run; both kinds of token must stay valid from warm-up to the last point.
TOKEN_LIFETIME_SECONDS = 3600
CLIENT_REDIRECT_URI = "http://localhost:53682/callback"  # a Claude Code style loopback redirect


def access_jwt(emulator: Emulator, audience: str) -> str:
    """An Access access token (RS256, the emulator's current key) with `aud` = `audience`."""
    now = int(time.time())
    claims = {"aud": audience, "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_SECONDS}
    return emulator.control("mint", {"claims": claims})["token"]


def login(worker_url: str, public_origin: str, emulator: Emulator) -> dict:
    """One complete login as a public client: registration, the browser leg (consent approved,
    the emulator signs the user in) and the code exchange; returns /token's answer."""
    registered = httpx.post(
        worker_url + "/register",
        json={"redirect_uris": [CLIENT_REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "bench"},
        timeout=15,
    )
    if registered.status_code != 201:
        raise RuntimeError(f"/register answered {registered.status_code}: {registered.text[:500]}")
    client_id = registered.json()["client_id"]
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CLIENT_REDIRECT_URI,
        "state": "bench",
        "scope": "openid email profile",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": public_origin + "/mcp",
    }
    back = play_browser(f"{worker_url}/authorize?{urlencode(params)}", CLIENT_REDIRECT_URI + "?")
    code = parse_qs(urlsplit(back).query)["code"][0]
    response = httpx.post(
        worker_url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLIENT_REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": public_origin + "/mcp",
        },
        timeout=15,
    )
    if response.status_code != 200:
        raise RuntimeError(f"/token answered {response.status_code}: {response.text[:500]}")
    return response.json()


def sealed_token(worker_url: str, public_origin: str, emulator: Emulator) -> str:
    """The access token a client gets from the gateway's /token in sealed mode."""
    token = login(worker_url, public_origin, emulator)["access_token"]
    if token.count(".") == 2:
        raise RuntimeError("/token handed out a JWT, not a sealed token: is TOKEN_MODE=sealed set?")
    return token
