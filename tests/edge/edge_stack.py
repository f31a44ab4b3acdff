"""The edge tests' view of a stack: mint and forge tokens, call the Worker, know what it should
answer. Every credential made is remembered (`sent`) so the log-hygiene tests can look for it.

JWS compact tokens are built by hand here, so tests can forge what no JWT library would emit.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from support.fake_origin import FAKE_PATHS
from support.stack import Emulator
from support.worker import Worker

USER_EMAIL = "user@example.com"
USER_GROUP = "engineering"
ALLOWED_EMAIL = "someone@else.example"
SCOPE = "openid email profile"  # the Worker's default SCOPES
SERVICE_TOKEN_ID = "edge-tests.access"
SERVICE_TOKEN_SECRET = "edge-tests-service-token-" + secrets.token_hex(16)
JWKS_MIN_REFETCH_SECONDS = 2
LEEWAY_SECONDS = 3
ORIGIN_TIMEOUT_SECONDS = 2
GATEWAY_SETTINGS = {
    "TOKEN_MODE": "passthrough",  # clients hold Access's JWT: what the edge checks is all there is
    "PROXY_PATHS": " ".join(FAKE_PATHS),
    "ORIGIN_TIMEOUT_SECONDS": str(ORIGIN_TIMEOUT_SECONDS),
    "JWKS_MIN_REFETCH_SECONDS": str(JWKS_MIN_REFETCH_SECONDS),
    "JWT_LEEWAY_SECONDS": str(LEEWAY_SECONDS),
    "FORWARD_BEARER": "false",
    "ORIGIN_ACCESS_CLIENT_ID": SERVICE_TOKEN_ID,
    "ORIGIN_ACCESS_CLIENT_SECRET": SERVICE_TOKEN_SECRET,
    # The emulator's user is admitted by group; someone@else.example by email; others get 403.
    "ALLOWED_EMAILS": ALLOWED_EMAIL,
    "ALLOWED_GROUPS": USER_GROUP,
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "edge-tests", "version": "1"}},
}
MCP_ACCEPT = "application/json, text/event-stream"
# Headers under the prefixes the gateway owns, as a client might forge them.
FORGED = [
    ("X-Gateway-User-Email", "admin@evil.example"),
    ("x-gateway-user-email", "second@evil.example"),
    ("X-GATEWAY-USER-SUB", "admin"),
    ("x-gateway-user-groups", "admins,root"),
    ("Cf-Access-Authenticated-User-Email", "admin@evil.example"),
    ("cf-access-jwt-assertion", "forged.jwt.assertion"),
    ("cf-access-client-id", "forged-client-id"),
    ("cf-access-client-secret", "forged-client-secret"),
    ("x-gateway-anything", "1"),
]
IDENTITY_HEADERS = ("x-gateway-user-email", "x-gateway-user-sub", "x-gateway-user-groups", "cf-access-authenticated-user-email")
# The fields of every request log line (src/mcp/request_log.rs).
RECORD_KEYS = {
    "time", "request_id", "method", "route", "status", "duration_ms", "subject", "email",
    "client", "mcp_method", "mcp_name", "decision", "origin_status", "origin_binding", "bytes_in", "bytes_out", "error",
}


# --- SSE as a client reads it ---

EVENTS = 5
INTERVAL_MS = 400


def received_events(response: httpx.Response, limit: int | None = None) -> list[tuple[float, dict]]:
    """(receive time, data) of each complete event, read incrementally, up to `limit` events."""
    events, data = [], []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and data:
            events.append((time.time(), json.loads("\n".join(data))))
            data = []
            if len(events) == limit:
                break
    return events


def assert_not_held_back(events: list[tuple[float, dict]], sent: list[float]) -> None:
    """The fake origin's EVENTS events (`sent`: when each was sent) each arrived before the next was sent."""
    assert [data for _, data in events] == [{"index": i} for i in range(EVENTS)]
    assert len(sent) == EVENTS
    for index in range(EVENTS - 1):
        received = events[index][0]
        assert received < sent[index + 1], f"event {index} was held back until the origin sent event {index + 1}"


# --- JWS compact serialization ---


def b64url(data: bytes | str | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def segments(token: str) -> tuple[dict, dict, bytes]:
    """Header, claims and signature of a compact JWS."""
    header, claims, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(claims)), unb64url(signature)


def rs256(key: rsa.RSAPrivateKey, header: dict, claims: dict) -> str:
    signing_input = f"{b64url(header)}.{b64url(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def hs256(secret: bytes, header: dict, claims: dict) -> str:
    signing_input = f"{b64url(header)}.{b64url(claims)}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def public_pem(jwk: dict) -> bytes:
    """The PEM of a JWKS RSA key: the "secret" of the classic RS256 → HS256 confusion attack."""
    numbers = rsa.RSAPublicNumbers(int.from_bytes(unb64url(jwk["e"]), "big"), int.from_bytes(unb64url(jwk["n"]), "big"))
    return numbers.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


_ATTACKER_KEY: list[rsa.RSAPrivateKey] = []


def attacker_key() -> rsa.RSAPrivateKey:
    """An RSA key that is in no JWKS (generated once per session)."""
    if not _ATTACKER_KEY:
        _ATTACKER_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _ATTACKER_KEY[0]


# --- the stacks ---


@dataclass
class EdgeStack:
    emulator: Emulator
    worker: Worker
    origin: object  # support.stack.Origin or support.fake_origin.FakeOrigin
    sent: set[str]  # every credential made for (and maybe sent to) this Worker
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15))

    # Tokens

    @property
    def callback(self) -> str:
        """The audience the Worker accepts by default: its own /callback (Access's aud = redirect URI)."""
        return self.worker.url + "/callback"

    def remember(self, credential: str) -> str:
        if len(credential) >= 16:
            self.sent.add(credential)
        return credential

    def mint(self, **claims) -> str:
        """An access token signed by the emulator's current key; `None` removes a claim."""
        return self.remember(self.emulator.mint(self.callback, **claims))

    def mint_with_header(self, **header) -> str:
        """A token signed by the emulator's current key with these header fields added."""
        token = self.emulator.control("mint", {"claims": {"aud": self.callback}, "headers": header})["token"]
        return self.remember(token)

    def claims(self, **overrides) -> dict:
        """The claims a minted token carries, with `overrides` (`None` removes one)."""
        _, claims, _ = segments(self.mint())
        return {k: v for k, v in {**claims, **overrides}.items() if v is not None}

    def jwk(self) -> dict:
        """The emulator's current signing key, as its JWKS publishes it."""
        kid = self.emulator.configure()["kids"][-1]
        keys = self.http.get(self.emulator.issuer + "/jwks").json()["keys"]
        return next(key for key in keys if key["kid"] == kid)

    def forge(self, header: dict, claims: dict | None = None, key: rsa.RSAPrivateKey | None = None) -> str:
        """RS256 over `header`.`claims` with a key of our own (default: one in no JWKS)."""
        return self.remember(rs256(key or attacker_key(), header, claims or self.claims()))

    def unknown_kid_token(self) -> str:
        return self.forge({"alg": "RS256", "typ": "JWT", "kid": secrets.token_hex(32)})

    def jwks_fetches(self) -> int:
        return self.emulator.stats()["counts"].get("jwks", 0)

    # Requests

    def call(self, method: str = "POST", path: str | None = None, token: str | None = None, **kwargs) -> httpx.Response:
        """A request to the Worker; `headers` may be a dict or a list of pairs (to repeat one)."""
        headers = kwargs.pop("headers", {})
        headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
        if token is not None:
            headers.append(("authorization", f"Bearer {token}"))
        return self.http.request(method, self.worker.url + (path or "/mcp"), headers=headers, **kwargs)

    def initialize(self, token: str | None, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        headers = [("accept", MCP_ACCEPT), *(headers.items() if isinstance(headers, dict) else headers)]
        return self.call("POST", token=token, json=INITIALIZE, headers=headers, **kwargs)

    def wait_accepted(self, token: str, path: str, timeout: float) -> httpx.Response:
        """Repeats a request until the Worker lets `token` through (e.g. after a JWKS refetch)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.call("GET", path, token)
            if response.status_code != 401 or time.monotonic() > deadline:
                return response
            time.sleep(0.2)

    # What the Worker answers

    @property
    def bare_challenge(self) -> str:
        """RFC 6750 §3.1: no credentials, so no error code."""
        return f'Bearer resource_metadata="{self.worker.url}/.well-known/oauth-protected-resource/mcp", scope="{SCOPE}"'

    @property
    def invalid_token_challenge(self) -> str:
        return (
            self.bare_challenge + ', error="invalid_token", error_description="The access token is invalid or expired"'
        )

    def worker_secrets(self) -> set[str]:
        """The Worker's secrets, which its log must never show."""
        settings = self.worker.settings
        values = {self.emulator.client_secret, settings.get("ORIGIN_ACCESS_CLIENT_SECRET", "")}
        values |= set(settings["SEALING_KEYS"].split(","))
        return {value.strip() for value in values if value.strip()}
