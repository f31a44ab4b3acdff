"""The Access for SaaS endpoints under the issuer path: discovery, authorization, token, jwks, userinfo."""

import asyncio
import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import wraps
from urllib.parse import unquote_plus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from .config import Config
from .metadata import discovery_document
from .responses import NO_STORE, error_page, oauth_error, redirect
from .state import ISSUER_PATH, EmulatorState, Grant


def _endpoint(name: str):
    """Count calls per endpoint; a path naming another client id is some other app: 404."""

    def decorate(handler):
        @wraps(handler)
        async def endpoint(request: Request):
            state: EmulatorState = request.app.state.emulator
            if request.path_params["client_id"] != state.config.client_id:
                raise HTTPException(404)
            state.stats.counts[name] += 1
            return await handler(request, state)

        return endpoint

    return decorate


@_endpoint("discovery")
async def discovery(request: Request, state: EmulatorState):
    if state.config.discovery_down:
        return error_page(503, "Service Unavailable", "Access is unavailable.")
    return JSONResponse(discovery_document(state.config, state.issuer))


@_endpoint("authorization")
async def authorization(request: Request, state: EmulatorState):
    query = dict(request.query_params)
    state.stats.last_authorization = query
    config = state.config
    # Until client and redirect_uri are known good, there is nowhere safe to redirect to.
    if query.get("client_id") != config.client_id:
        return error_page(400, "Invalid request", "Unknown client_id.")
    redirect_uri = query.get("redirect_uri")
    if redirect_uri not in config.redirect_uris:
        return error_page(400, "Invalid request", "redirect_uri is not registered for this application.")
    error = config.authorization_error or _authorization_request_error(query)
    if error:
        return redirect(redirect_uri, error=error, state=query.get("state"))
    grant = state.grant_for_current_user(
        client_id=config.client_id,
        redirect_uri=redirect_uri,
        scope=query.get("scope"),
        nonce=query.get("nonce"),
        code_challenge=query.get("code_challenge"),
    )
    # Like Access: no `iss` parameter (RFC 9207) on the redirect.
    return redirect(redirect_uri, code=state.issue_code(grant), state=query.get("state"))


def _authorization_request_error(query: dict) -> str | None:
    if query.get("response_type") != "code":
        return "unsupported_response_type"
    # Only S256; an absent method means `plain` (RFC 7636 §4.3), which is refused too.
    if "code_challenge" in query and query.get("code_challenge_method") != "S256":
        return "invalid_request"
    return None


class TokenError(Exception):
    def __init__(self, error: str, status: int = 400):
        self.error, self.status = error, status


@dataclass(frozen=True)
class ClientAuth:
    method: str  # client_secret_basic | client_secret_post | none
    client_id: str | None
    client_secret: str | None


def _client_auth(authorization: str | None, form: dict) -> ClientAuth:
    if authorization and authorization[:6].lower() == "basic ":
        try:
            client_id, colon, secret = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
        except ValueError:
            return ClientAuth("client_secret_basic", None, None)
        if not colon:
            return ClientAuth("client_secret_basic", None, None)
        # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        return ClientAuth("client_secret_basic", unquote_plus(client_id), unquote_plus(secret))
    if "client_secret" in form:
        return ClientAuth("client_secret_post", form.get("client_id"), form["client_secret"])
    return ClientAuth("none", form.get("client_id"), None)


def _authenticate(auth: ClientAuth, form: dict, config: Config) -> None:
    if auth.client_id != config.client_id or form.get("client_id", auth.client_id) != auth.client_id:
        raise TokenError("invalid_client", 401)
    if auth.method == "none":
        public_allowed = config.pkce_without_secret and (
            form.get("grant_type") == "refresh_token" or "code_verifier" in form
        )
        if not public_allowed:
            raise TokenError("invalid_client", 401)
    elif not hmac.compare_digest(auth.client_secret.encode(), config.client_secret.encode()):
        raise TokenError("invalid_client", 401)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _check_pkce(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        # A verifier without a challenge means the request is not the one the code was issued for.
        if verifier is not None:
            raise TokenError("invalid_grant")
    elif verifier is None or not hmac.compare_digest(_s256(verifier), challenge):
        raise TokenError("invalid_grant")


def _exchange(form: dict, state: EmulatorState) -> dict:
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        grant: Grant | None = state.redeem_code(form.get("code", ""))
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            raise TokenError("invalid_grant")
        _check_pkce(grant.code_challenge, form.get("code_verifier"))
        return state.token_response(grant)
    if grant_type == "refresh_token" and state.config.refresh_tokens:
        refresh_token = form.get("refresh_token", "")
        redeemed = state.redeem_refresh_token(refresh_token)
        if redeemed is None:
            raise TokenError("invalid_grant")
        grant, family = redeemed
        return state.token_response(grant, None if state.config.rotate_refresh_tokens else refresh_token, family)
    raise TokenError("unsupported_grant_type")


@_endpoint("token")
async def token(request: Request, state: EmulatorState):
    form = dict(await request.form())
    auth = _client_auth(request.headers.get("authorization"), form)
    state.stats.last_token_request = {
        "form": form,
        "auth_method": auth.method,
        "client_id": auth.client_id,
        "client_secret": auth.client_secret,
        "content_type": request.headers.get("content-type"),
    }
    config = state.config
    await asyncio.sleep(config.token_delay_ms / 1000)
    if config.token_fault == "server_error":
        return PlainTextResponse("Internal Server Error", status_code=500)
    if config.token_fault == "html":
        return error_page(config.token_html_status, "Access denied", "You do not have access to this application.")
    try:
        _authenticate(auth, form, config)
        return JSONResponse(_exchange(form, state), headers=NO_STORE)
    except TokenError as error:
        challenge = (
            {"WWW-Authenticate": "Basic"} if error.status == 401 and auth.method == "client_secret_basic" else {}
        )
        return oauth_error(error.error, error.status, challenge)


@_endpoint("jwks")
async def jwks(request: Request, state: EmulatorState):
    await asyncio.sleep(state.config.jwks_delay_ms / 1000)
    if state.config.jwks_down:
        return PlainTextResponse("Service Unavailable", status_code=503)
    return JSONResponse(state.keys.jwks())


@_endpoint("userinfo")
async def userinfo(request: Request, state: EmulatorState):
    scheme, _, access_token = request.headers.get("authorization", "").partition(" ")
    claims = state.userinfo(access_token) if scheme.lower() == "bearer" else None
    if claims is None:
        return oauth_error("invalid_token", 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return JSONResponse(claims, headers=NO_STORE)


routes = [
    Route(ISSUER_PATH + "/.well-known/openid-configuration", discovery, methods=["GET"]),
    Route(ISSUER_PATH + "/authorization", authorization, methods=["GET"]),
    Route(ISSUER_PATH + "/token", token, methods=["POST"]),
    Route(ISSUER_PATH + "/jwks", jwks, methods=["GET"]),
    Route(ISSUER_PATH + "/userinfo", userinfo, methods=["GET"]),
]
