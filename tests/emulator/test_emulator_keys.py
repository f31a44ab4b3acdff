"""JWKS, key rotation with a grace period, JWKS faults, and /userinfo."""

import re
import time

import pytest
from emulator_flows import USER_EMAIL, claims, header, http, obtain_tokens


def _jwks(emulator):
    return http.get(emulator.issuer + "/jwks")


def _userinfo(emulator, authorization: str | None):
    return http.get(emulator.issuer + "/userinfo", headers={"Authorization": authorization} if authorization else {})


def test_jwks_publishes_the_signing_key(emulator):
    response = _jwks(emulator)
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert sorted(key) == ["alg", "e", "kid", "kty", "n", "use"]
    assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
    assert re.fullmatch("[0-9a-f]{64}", key["kid"])
    assert len(key["n"]) == 342  # 2048-bit modulus, base64url without padding
    assert header(obtain_tokens(emulator)["access_token"])["kid"] == key["kid"]


def test_jwks_fetches_are_counted(emulator):
    for _ in range(3):
        _jwks(emulator)
    assert emulator.stats()["counts"] == {"jwks": 3}


def test_rotation_keeps_the_old_key_published_until_retired(emulator):
    old_kid = emulator.control("config")["kids"][0]
    old_token = obtain_tokens(emulator)["access_token"]
    rotated = emulator.control("rotate-key")
    new_kid = rotated["kid"]
    assert rotated["kids"] == [old_kid, new_kid] and new_kid != old_kid
    assert [key["kid"] for key in _jwks(emulator).json()["keys"]] == [old_kid, new_kid]
    assert header(obtain_tokens(emulator)["access_token"])["kid"] == new_kid
    assert _userinfo(emulator, f"Bearer {old_token}").status_code == 200

    assert emulator.control("retire-old-key") == {"kid": new_kid, "kids": [new_kid]}
    assert [key["kid"] for key in _jwks(emulator).json()["keys"]] == [new_kid]
    assert _userinfo(emulator, f"Bearer {old_token}").status_code == 401


def test_rekey_replaces_the_signing_key_under_the_same_kid(emulator):
    (before,) = _jwks(emulator).json()["keys"]
    old_token = obtain_tokens(emulator)["access_token"]
    assert emulator.control("rekey") == {"kid": before["kid"], "kids": [before["kid"]]}
    (after,) = _jwks(emulator).json()["keys"]
    assert after["kid"] == before["kid"] and after["n"] != before["n"]
    assert _userinfo(emulator, f"Bearer {old_token}").status_code == 401, "the old key's tokens no longer verify"


def test_minted_tokens_may_carry_extra_header_fields(emulator):
    token = emulator.control("mint", {"headers": {"crit": ["exp"], "kid": "ignored"}})["token"]
    assert header(token)["crit"] == ["exp"]
    assert header(token)["kid"] == emulator.control("config")["kids"][0], "the signing key names itself"


def test_reset_restores_the_startup_key(emulator):
    startup_kid = emulator.control("config")["kids"][0]
    emulator.control("rotate-key")
    emulator.control("retire-old-key")
    assert emulator.reset()["kids"] == [startup_kid]


def test_jwks_down(emulator):
    emulator.configure(jwks_down=True)
    response = _jwks(emulator)
    assert (response.status_code, response.text) == (503, "Service Unavailable")
    assert emulator.stats()["counts"] == {"jwks": 1}


def test_jwks_delay(emulator):
    emulator.configure(jwks_delay_ms=250)
    started = time.monotonic()
    assert _jwks(emulator).status_code == 200
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize("opaque", [False, True])
def test_userinfo_returns_the_identity(emulator, opaque):
    emulator.configure(opaque_access_token=opaque, groups=["eng"])
    tokens = obtain_tokens(emulator)
    response = _userinfo(emulator, f"Bearer {tokens['access_token']}")
    assert response.status_code == 200
    assert response.json() == {"sub": claims(tokens["id_token"])["sub"], "email": USER_EMAIL, "groups": ["eng"]}
    assert emulator.stats()["counts"]["userinfo"] == 1


def _assert_invalid_token(response) -> None:
    assert (response.status_code, response.json()) == (401, {"error": "invalid_token"})
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz"])
def test_userinfo_refuses_missing_or_malformed_credentials(emulator, authorization):
    _assert_invalid_token(_userinfo(emulator, authorization))


@pytest.mark.parametrize(
    "claims_override", [{"exp": int(time.time()) - 1}, {"iss": "https://evil.example"}], ids=["expired", "wrong-iss"]
)
def test_userinfo_refuses_invalid_jwts(emulator, claims_override):
    token = emulator.control("mint", {"claims": claims_override})["token"]
    _assert_invalid_token(_userinfo(emulator, f"Bearer {token}"))


def test_userinfo_refuses_expired_opaque_tokens(emulator):
    emulator.configure(opaque_access_token=True, access_token_ttl=0)
    _assert_invalid_token(_userinfo(emulator, "Bearer " + obtain_tokens(emulator)["access_token"]))


def test_minted_token_has_overrides_and_null_removes_a_claim(emulator):
    token = emulator.control("mint", {"claims": {"email": "minted@example.com", "groups": None}})["token"]
    body = claims(token)
    assert (body["email"], "groups" in body, body["aud"]) == ("minted@example.com", False, emulator.redirect_uris[0])
    response = _userinfo(emulator, f"Bearer {token}")
    assert response.json() == {"sub": body["sub"], "email": "minted@example.com"}
