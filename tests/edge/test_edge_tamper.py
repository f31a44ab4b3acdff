"""Forged, tampered and misplaced credentials at the MCP endpoint (RFC 6750 §3, RFC 8725).

Each request goes to the gateway in front of the seed's origin (`real`, default settings: 30 s
of leeway on `nbf`, none on `exp`). A bad bearer token gets 401 with `error="invalid_token"`; a credential anywhere but a
bearer token in the Authorization header counts as none (RFC 6750 §2: the query and form-body
methods are not supported; Access's own cookie and header are not accepted) and gets the bare
challenge. Either way nothing reaches the origin.
"""

import json
import secrets
import time

import pytest
from edge_stack import INITIALIZE, MCP_ACCEPT, attacker_key, b64url, hs256, public_pem, segments, unb64url


def now() -> int:
    return int(time.time())


def bearer(token: str) -> dict:
    return {"headers": {"authorization": f"Bearer {token}"}}


def header_of(edge, **fields) -> dict:
    return {"alg": "RS256", "typ": "JWT", "kid": edge.jwk()["kid"], **fields}


def unsigned(edge, header: dict, signature: str = "") -> str:
    return edge.remember(f"{b64url(header)}.{b64url(edge.claims())}.{signature}")


def flip_signature_bit(edge) -> str:
    head, body, signature = edge.mint().split(".")
    raw = bytearray(unb64url(signature))
    raw[10] ^= 0x01
    return edge.remember(f"{head}.{body}.{b64url(bytes(raw))}")


def swap_claims(edge) -> str:
    """A valid header and signature over someone else's claims."""
    head, _, signature = edge.mint().split(".")
    return edge.remember(f"{head}.{b64url(edge.claims(sub='admin', email='admin@example.com'))}.{signature}")


def reheader(edge, **header) -> str:
    """The emulator's valid signature under a different header."""
    _, body, signature = edge.mint().split(".")
    return edge.remember(f"{b64url(header_of(edge, **header))}.{body}.{signature}")


def attacker_jwk() -> dict:
    numbers = attacker_key().public_key().public_numbers()
    as_b64 = lambda n: b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))  # noqa: E731
    return {"kty": "RSA", "n": as_b64(numbers.n), "e": as_b64(numbers.e)}


# Each builds the request's credentials from the stack; all must be answered `invalid_token`.
INVALID_TOKENS = [
    pytest.param(lambda e: bearer(unsigned(e, header_of(e, alg="none"))), id="alg-none"),
    pytest.param(lambda e: bearer(unsigned(e, header_of(e, alg="none"), e.mint().split(".")[2])), id="alg-none-signature-kept"),
    pytest.param(lambda e: bearer(e.remember(hs256(public_pem(e.jwk()), header_of(e, alg="HS256"), e.claims()))), id="hs256-keyed-with-jwks-pem"),
    pytest.param(lambda e: bearer(e.remember(hs256(json.dumps(e.jwk()).encode(), header_of(e, alg="HS256"), e.claims()))), id="hs256-keyed-with-jwk-json"),
    pytest.param(lambda e: bearer(reheader(e, alg="RS512")), id="alg-rs512-header"),
    pytest.param(lambda e: bearer(reheader(e, alg="PS256")), id="alg-ps256-header"),
    pytest.param(lambda e: bearer(e.unknown_kid_token()), id="unknown-kid"),
    pytest.param(lambda e: bearer(e.forge({"alg": "RS256", "typ": "JWT"})), id="no-kid"),
    pytest.param(lambda e: bearer(e.forge(header_of(e))), id="right-kid-attacker-key"),
    pytest.param(lambda e: bearer(e.forge(header_of(e, jwk=attacker_jwk()))), id="embedded-jwk-header"),
    pytest.param(lambda e: bearer(e.forge(header_of(e, kid="attacker", jku="http://127.0.0.1:9/jwks"))), id="jku-header"),
    # Validly signed, but it names an extension the gateway does not understand (RFC 7515 §4.1.11).
    pytest.param(lambda e: bearer(e.mint_with_header(crit=["exp"])), id="crit-header"),
    pytest.param(lambda e: bearer(e.mint(iss="https://evil.cloudflareaccess.com/cdn-cgi/access/sso/oidc/x")), id="wrong-iss"),
    pytest.param(lambda e: bearer(e.mint(iss=e.emulator.issuer + "/")), id="iss-trailing-slash"),
    pytest.param(lambda e: bearer(e.mint(iss=e.emulator.base_url)), id="iss-team-domain-only"),
    pytest.param(lambda e: bearer(e.mint(iss=None)), id="no-iss"),
    pytest.param(lambda e: bearer(e.mint(aud="https://evil.example/callback")), id="wrong-aud"),
    pytest.param(lambda e: bearer(e.mint(aud=["https://evil.example/callback", "other-client"])), id="aud-array-without-ours"),
    pytest.param(lambda e: bearer(e.mint(aud=e.worker.url + "/callback/")), id="aud-callback-trailing-slash"),
    pytest.param(lambda e: bearer(e.mint(aud=None)), id="no-aud"),
    pytest.param(lambda e: bearer(e.mint(iat=now() - 400, nbf=now() - 400, exp=now() - 1)), id="expired-a-second-ago"),
    pytest.param(lambda e: bearer(e.mint(exp=now())), id="expires-this-second"),
    pytest.param(lambda e: bearer(e.mint(nbf=now() + 60)), id="nbf-in-the-future"),
    pytest.param(lambda e: bearer(e.mint(iat=now() + 60, nbf=None)), id="issued-in-the-future"),
    pytest.param(lambda e: bearer(e.mint(exp=None)), id="no-exp"),
    pytest.param(lambda e: bearer(e.mint(exp="tomorrow")), id="exp-not-a-number"),
    pytest.param(lambda e: bearer(e.mint(sub=None)), id="no-sub"),
    pytest.param(lambda e: bearer(e.mint(sub="")), id="empty-sub"),
    pytest.param(lambda e: bearer(flip_signature_bit(e)), id="signature-bit-flip"),
    pytest.param(lambda e: bearer(swap_claims(e)), id="claims-swapped"),
    pytest.param(lambda e: bearer(e.mint()[:-4]), id="signature-truncated"),
    pytest.param(lambda e: bearer(e.mint()[:300]), id="token-cut-short"),
    pytest.param(lambda e: bearer(e.mint() + "." + b64url("{}")), id="four-segments"),
    pytest.param(lambda e: bearer(e.mint().rsplit(".", 1)[0]), id="two-segments"),
    pytest.param(lambda e: bearer(e.mint(padding="x" * 20_000)), id="oversized-20kb-validly-signed"),
    pytest.param(lambda e: bearer(e.remember(secrets.token_urlsafe(32))), id="opaque"),
    pytest.param(lambda e: bearer("!!!!.@@@@.####"), id="not-base64url"),
    pytest.param(lambda e: bearer(e.mint() + " extra"), id="token-then-a-second-word"),
    pytest.param(lambda e: {"headers": [("authorization", f"Bearer {e.mint()}")] * 2}, id="two-authorization-headers"),
]

# Credentials that are not a bearer token in the Authorization header: answered as if absent.
NO_BEARER = [
    pytest.param(lambda e: {}, id="no-authorization"),
    pytest.param(lambda e: {"headers": {"authorization": "Bearer"}}, id="empty-bearer"),
    pytest.param(lambda e: {"headers": {"authorization": "Basic dXNlcjpwYXNzd29yZA=="}}, id="basic-scheme"),
    pytest.param(lambda e: {"headers": {"authorization": f"Basic {e.mint()}"}}, id="valid-jwt-with-basic-scheme"),
    pytest.param(lambda e: {"headers": {"authorization": f"DPoP {e.mint()}"}}, id="valid-jwt-with-dpop-scheme"),
    pytest.param(lambda e: {"params": {"access_token": e.mint()}}, id="valid-jwt-in-query-string"),
    pytest.param(lambda e: {"data": {"access_token": e.mint()}}, id="valid-jwt-in-form-body"),
    pytest.param(lambda e: {"headers": {"cookie": f"CF_Authorization={e.mint()}"}}, id="valid-jwt-in-access-cookie"),
    pytest.param(lambda e: {"headers": {"cf-access-jwt-assertion": e.mint()}}, id="valid-jwt-in-access-header"),
]


def post(edge, credentials: dict):
    """An MCP initialize POST carrying `credentials` (headers, query or form body)."""
    kwargs = {"json": INITIALIZE, **credentials}
    if "data" in kwargs:
        del kwargs["json"]
    headers = kwargs.pop("headers", {})
    headers = list(headers.items()) if isinstance(headers, dict) else headers
    return edge.http.post(edge.worker.mcp_url, headers=[("accept", MCP_ACCEPT), *headers], **kwargs)


def assert_refused(edge, credentials: dict, challenge: str, error: str | None):
    """401 with exactly `challenge`; the JSON body agrees with it (no error code for a bare one)."""
    seen_by_origin = len(edge.origin.requests())
    response = post(edge, credentials)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"] == "application/json"
    assert response.json().get("error") == error
    assert len(edge.origin.requests()) == seen_by_origin, "the request reached the origin"


@pytest.mark.parametrize("credentials", INVALID_TOKENS)
def test_forged_or_tampered_token_is_invalid_token(real, credentials):
    assert_refused(real, credentials(real), real.invalid_token_challenge, "invalid_token")


@pytest.mark.parametrize("credentials", NO_BEARER)
def test_no_bearer_in_the_authorization_header_gets_the_bare_challenge(real, credentials):
    assert_refused(real, credentials(real), real.bare_challenge, None)


def test_the_forgeries_are_well_formed(real):
    """The forged tokens differ from a good one only where intended: a bad key or header, not a bug
    in the forging (the good token is accepted in test_edge_tokens.py)."""
    header, claims, _ = segments(real.forge(header_of(real)))
    good_header, good_claims, _ = segments(real.mint())
    assert header == good_header
    assert claims.keys() == good_claims.keys()
