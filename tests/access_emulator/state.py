"""Everything the emulator remembers: config, keys, codes, refresh and opaque tokens, and stats.

All of it lives in one object so `POST /__emulator/reset` can put the emulator back to how it started
(same startup config and signing key, so an origin that cached the JWKS keeps working).
"""

import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from .config import Config
from .keys import KeyRing, SigningKey

ISSUER_PATH = "/cdn-cgi/access/sso/oidc/{client_id}"
# Fixed namespace so the same email always gets the same sub, across restarts too.
_SUB_NAMESPACE = uuid.UUID("6f0d8a5e-3c1b-4f7a-9e2d-5b8c7a6d4e3f")


@dataclass(frozen=True)
class Grant:
    """What one authorization request established: who logged in, for which redirect and PKCE challenge."""

    client_id: str
    redirect_uri: str
    scope: str | None
    nonce: str | None
    code_challenge: str | None
    email: str
    groups: list[str]


@dataclass
class Stats:
    counts: Counter = field(default_factory=Counter)
    last_authorization: dict | None = None
    last_token_request: dict | None = None
    not_found: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "counts": dict(self.counts),
            "last_authorization": self.last_authorization,
            "last_token_request": self.last_token_request,
            "not_found": self.not_found,
        }


class EmulatorState:
    def __init__(self, startup: Config, port: int):
        self.port = port
        self._startup = startup
        self._startup_key = SigningKey.generate()
        self.reset()

    def reset(self) -> None:
        self.config = self._startup
        self.keys = KeyRing(self._startup_key)
        self.stats = Stats()
        # token -> (value, expires_at)
        self._codes: dict[str, tuple[Grant, float]] = {}
        # refresh token -> ((grant, family), expires_at); a family is one login's refresh tokens
        self._refresh_tokens: dict[str, tuple[tuple[Grant, str], float]] = {}
        # used-up refresh token -> its family, for strict rotation's reuse detection
        self._used_refresh_tokens: dict[str, str] = {}
        self._opaque_tokens: dict[str, tuple[dict, float]] = {}

    @property
    def base_url(self) -> str:
        return self.config.public_base or f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url + ISSUER_PATH.format(client_id=self.config.client_id)

    def grant_for_current_user(self, **request) -> Grant:
        return Grant(email=self.config.email, groups=list(self.config.groups), **request)

    def issue_code(self, grant: Grant) -> str:
        return _store(self._codes, grant, self.config.code_ttl)

    def redeem_code(self, code: str) -> Grant | None:
        # Single use: a presented code is gone, whether or not the rest of the request is valid.
        return _take(self._codes, code, consume=True)

    def redeem_refresh_token(self, token: str) -> tuple[Grant, str] | None:
        """The grant and family of a live refresh token, used up when rotating; None otherwise.
        Under strict rotation a used-up one presented again revokes its whole family."""
        rotating = self.config.rotate_refresh_tokens
        entry = _take(self._refresh_tokens, token, consume=rotating)
        if entry is not None and rotating:
            self._used_refresh_tokens[token] = entry[1]
        family = self._used_refresh_tokens.get(token)
        if entry is None and family is not None and rotating and self.config.strict_rotation:
            revoked = [t for t, ((_, f), _) in self._refresh_tokens.items() if f == family]
            for live in revoked:
                del self._refresh_tokens[live]
            self.stats.counts["refresh_reuse_revocations"] += 1
        return entry

    def access_claims(self, grant: Grant) -> dict:
        now = int(time.time())
        aud = {
            "redirect_uri": grant.redirect_uri,
            "client_id": grant.client_id,
            "array": [grant.client_id],
        }[self.config.aud_mode]
        return {
            "iss": self.issuer,
            "aud": aud,
            **_identity(grant),
            "iat": now,
            "nbf": now,
            "exp": now + self.config.access_token_ttl,
        }

    def token_response(self, grant: Grant, refresh_token: str | None = None, family: str | None = None) -> dict:
        """The /token success body; `refresh_token` is the one being reused when rotation is off,
        `family` the login a rotated one belongs to (None: a new login)."""
        config = self.config
        claims = self.access_claims(grant)
        id_claims = {**claims, "aud": grant.client_id}
        if grant.nonce is not None:
            id_claims["nonce"] = grant.nonce
        if config.opaque_access_token:
            access_token = _store(self._opaque_tokens, claims, config.access_token_ttl)
        else:
            access_token = self.keys.current.sign(claims)
        body = {
            "access_token": access_token,
            "id_token": self.keys.current.sign(id_claims),
            "token_type": "bearer" if config.quirk_lowercase_token_type else "Bearer",
            "expires_in": str(config.access_token_ttl) if config.quirk_expires_in_string else config.access_token_ttl,
        }
        if config.refresh_tokens:
            family = family or secrets.token_hex(8)
            body["refresh_token"] = refresh_token or _store(self._refresh_tokens, (grant, family), config.refresh_token_ttl)
        if grant.scope:
            body["scope"] = grant.scope
        return body

    def userinfo(self, access_token: str) -> dict | None:
        claims = _take(self._opaque_tokens, access_token, consume=False) or self.keys.verify(access_token, self.issuer)
        return None if claims is None else {name: claims[name] for name in ("sub", "email", "groups") if name in claims}


def _identity(grant: Grant) -> dict:
    return {
        "email": grant.email,
        "sub": str(uuid.uuid5(_SUB_NAMESPACE, grant.email)),
        "groups": grant.groups,
    }


def _store(table: dict, value, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    table[token] = (value, time.time() + ttl)
    return token


def _take(table: dict, token: str, consume: bool):
    entry = table.pop(token, None) if consume else table.get(token)
    if entry is None or time.time() >= entry[1]:
        return None
    return entry[0]
