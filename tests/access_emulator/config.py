"""The emulator's switches: one dataclass, filled from defaults, env, CLI flags and runtime JSON patches.

Every quirk of Cloudflare Access for SaaS that the gateway must cope with is a field here, so a test can
turn it off (standard OAuth/OIDC form) or on (what Access does) and compare behaviour.
"""

import argparse
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace

ENV_PREFIX = "ACCESS_EMULATOR_"

CHOICES = {
    # What the access token's `aud` is: the redirect_uri as a string (reported for real Access),
    # the client id as a string, or the OIDC-style array [client_id].
    "aud_mode": ("redirect_uri", "client_id", "array"),
    # server_error: 500 text/plain; html: an HTML "Access denied" page with token_html_status.
    "token_fault": ("server_error", "html"),
}


@dataclass(frozen=True)
class Config:
    # The one SaaS application; real Access takes these from the dashboard (no DCR).
    client_id: str = "emulator-client-id"
    client_secret: str = "emulator-client-secret"
    # Compared as exact strings: Access has no RFC 8252 loopback-port wildcard.
    redirect_uris: list[str] = field(default_factory=lambda: ["http://localhost:8765/callback"])
    # Origin used in the issuer and endpoint URLs; None means http://127.0.0.1:<bound port>.
    public_base: str | None = None
    # The user who "logs in" at /authorization without a person; sub is derived from the email.
    email: str = "user@example.com"
    groups: list[str] = field(default_factory=list)
    # Lifetimes in seconds (Access's default access token lifetime is 5 minutes). 0 expires codes and
    # opaque tokens at once; a JWT with exp == iat still passes lenient verifiers for that second, so
    # tests that need an expired JWT mint one (POST /__emulator/mint).
    code_ttl: int = 60
    access_token_ttl: int = 300
    refresh_token_ttl: int = 30 * 24 * 3600
    refresh_tokens: bool = True
    # Each refresh answers a new refresh token and the one presented is used up (invalid_grant after).
    rotate_refresh_tokens: bool = True
    # Strict rotation (with rotate_refresh_tokens): a used-up refresh token presented again is taken as
    # stolen and revokes every refresh token of that login, the one it was exchanged for included
    # (RFC 9700 §4.14.2 reuse detection), counted in the stats as refresh_reuse_revocations. A careful
    # IdP does this; whether Access does is not known.
    strict_rotation: bool = False
    # Access's "allow PKCE without client secret": a client with a valid code_verifier needs no secret.
    pkce_without_secret: bool = False
    # Quirks of the discovery document and token response; False gives the standard form.
    quirk_grant_types: bool = True
    quirk_auth_methods_key: bool = True
    quirk_no_code_challenge_methods: bool = True
    quirk_lowercase_token_type: bool = True
    quirk_expires_in_string: bool = False
    aud_mode: str = "redirect_uri"
    # Some reports say Access hands out opaque access tokens and only the id_token is a JWT.
    opaque_access_token: bool = False
    # Faults: an OAuth error redirect from /authorization (e.g. access_denied), token endpoint
    # failures, discovery and JWKS outages, and slow responses.
    authorization_error: str | None = None
    token_fault: str | None = None
    token_html_status: int = 400
    jwks_down: bool = False
    # Discovery answers 503 with an HTML page, as an Access outage or a wrong issuer host would.
    discovery_down: bool = False
    token_delay_ms: int = 0
    jwks_delay_ms: int = 0

    def as_json(self) -> dict:
        return asdict(self)


class ConfigError(ValueError):
    pass


_HINTS = typing.get_type_hints(Config)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _base_type(name: str):
    """The field's type without `| None`, and whether None is allowed."""
    hint = _HINTS[name]
    if isinstance(hint, types.UnionType):
        (base,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return base, True
    return hint, False


def _check(name: str, value) -> None:
    base, optional = _base_type(name)
    if value is None:
        if optional:
            return
        raise ConfigError(f"{name} must not be null")
    if base is bool:
        ok, kind = isinstance(value, bool), "a boolean"
    elif base is int:
        ok, kind = isinstance(value, int) and not isinstance(value, bool) and value >= 0, "a non-negative int"
    elif base is str:
        ok, kind = isinstance(value, str), "a string"
    else:  # list[str]
        ok, kind = isinstance(value, list) and all(isinstance(item, str) for item in value), "a list of strings"
    if not ok:
        raise ConfigError(f"{name} must be {kind}")
    if name in CHOICES and value not in CHOICES[name]:
        raise ConfigError(f"{name} must be one of {', '.join(CHOICES[name])}")


def apply_patch(config: Config, patch: dict) -> Config:
    """Return `config` with the switches in `patch` changed; unknown keys and wrong types are errors."""
    for name, value in patch.items():
        if name not in _HINTS:
            raise ConfigError(f"unknown switch {name}")
        _check(name, value)
    return replace(config, **patch)


def parse_text(name: str, text: str):
    """Parse a switch given as text (env var or CLI flag). Lists are whitespace-separated."""
    base, optional = _base_type(name)
    if optional and text == "":
        return None
    if base is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ConfigError(f"{name} must be a boolean, got {text!r}")
        return text.lower() in _TRUE
    if base is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name} must be an int, got {text!r}") from None
    if base is str:
        return text
    return text.split()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m access_emulator",
        description="Cloudflare Access for SaaS emulator. Every switch can also be set with the env var "
        f"{ENV_PREFIX}<NAME> (lists whitespace-separated); flags win over env.",
    )
    parser.add_argument("--port", type=int, help="loopback port to bind, 0 (default) for a free one")
    for name, default in Config().as_json().items():
        flag = "--" + name.replace("_", "-")
        base, _ = _base_type(name)
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=f"default: {default}")
        elif base == list[str]:
            parser.add_argument(flag, action="append", metavar="ITEM", help=f"repeatable; default: {default}")
        else:
            parser.add_argument(flag, choices=CHOICES.get(name), help=f"default: {default}")
    return parser


def load(argv: list[str] | None = None, environ: typing.Mapping[str, str] = os.environ) -> tuple[Config, int]:
    """Startup config and port from env and CLI flags."""
    parser = _parser()
    args = parser.parse_args(argv)
    values = {}
    try:
        for f in fields(Config):
            env = environ.get(ENV_PREFIX + f.name.upper())
            if env is not None:
                values[f.name] = parse_text(f.name, env)
            flag = getattr(args, f.name)
            if flag is not None:
                values[f.name] = flag if isinstance(flag, (bool, list)) else parse_text(f.name, flag)
        config = apply_patch(Config(), values)
    except ConfigError as error:
        parser.error(str(error))
    port = environ.get(ENV_PREFIX + "PORT", "0") if args.port is None else str(args.port)
    if not port.isdigit():
        parser.error(f"port must be a non-negative int, got {port!r}")
    return config, int(port)
