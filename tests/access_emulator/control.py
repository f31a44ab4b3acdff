"""Runtime control API under /__emulator/, so tests can flip switches without restarting."""

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .config import ConfigError, apply_patch
from .state import EmulatorState


def _state(request: Request) -> EmulatorState:
    return request.app.state.emulator


def _view(state: EmulatorState) -> JSONResponse:
    return JSONResponse(
        {
            "config": state.config.as_json(),
            "base_url": state.base_url,
            "issuer": state.issuer,
            "kids": state.keys.kids(),
        }
    )


async def _json_object(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ConfigError("body must be JSON") from None
    if not isinstance(body, dict):
        raise ConfigError("body must be a JSON object")
    return body


async def get_config(request: Request):
    return _view(_state(request))


async def patch_config(request: Request):
    state = _state(request)
    state.config = apply_patch(state.config, await _json_object(request))
    return _view(state)


async def rotate_key(request: Request):
    state = _state(request)
    return JSONResponse({"kid": state.keys.rotate().kid, "kids": state.keys.kids()})


async def rekey(request: Request):
    state = _state(request)
    return JSONResponse({"kid": state.keys.rekey().kid, "kids": state.keys.kids()})


async def retire_old_key(request: Request):
    state = _state(request)
    state.keys.retire_old()
    return JSONResponse({"kid": state.keys.current.kid, "kids": state.keys.kids()})


async def stats(request: Request):
    return JSONResponse(_state(request).stats.as_json())


async def reset(request: Request):
    state = _state(request)
    state.reset()
    return _view(state)


async def mint(request: Request):
    """Sign an access token for the configured user with the current key, claims overridden by
    `{"claims": {...}}` (null removes a claim) and header fields added by `{"headers": {...}}` —
    for tokens no flow would produce (expired, wrong iss, a `crit` header...)."""
    state = _state(request)
    body = await _json_object(request)
    overrides, headers = body.get("claims", {}), body.get("headers", {})
    if not isinstance(overrides, dict) or not isinstance(headers, dict):
        raise ConfigError("claims and headers must be JSON objects")
    config = state.config
    grant = state.grant_for_current_user(
        client_id=config.client_id,
        redirect_uri=next(iter(config.redirect_uris), ""),
        scope=None,
        nonce=None,
        code_challenge=None,
    )
    claims = {**state.access_claims(grant), **overrides}
    return JSONResponse({"token": state.keys.current.sign({k: v for k, v in claims.items() if v is not None}, headers)})


async def bad_request(request: Request, error: ConfigError):
    return JSONResponse({"error": str(error)}, status_code=400)


routes = [
    Route("/__emulator/config", get_config, methods=["GET"]),
    Route("/__emulator/config", patch_config, methods=["POST"]),
    Route("/__emulator/rotate-key", rotate_key, methods=["POST"]),
    Route("/__emulator/retire-old-key", retire_old_key, methods=["POST"]),
    Route("/__emulator/rekey", rekey, methods=["POST"]),
    Route("/__emulator/stats", stats, methods=["GET"]),
    Route("/__emulator/reset", reset, methods=["POST"]),
    Route("/__emulator/mint", mint, methods=["POST"]),
]
