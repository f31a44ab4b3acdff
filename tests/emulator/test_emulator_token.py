"""POST /token: client authentication, PKCE, code rules, the token response and its switchable quirks."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

import pytest
from emulator_flows import (
    OTHER_REDIRECT_URI,
    REDIRECT_URI,
    USER_EMAIL,
    authorize,
    claims,
    exchange,
    header,
    location_query,
    login,
    obtain_tokens,
    post_token,
)

FORM = "application/x-www-form-urlencoded"


def _error(response, error: str, status: int = 400) -> None:
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert response.headers["cache-control"] == "no-store"


def test_bug_report_request_gets_access_shaped_response(emulator):
    code, verifier = login(emulator)
    response = exchange(emulator, code, verifier)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert sorted(body) == ["access_token", "expires_in", "id_token", "refresh_token", "scope", "token_type"]
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("bearer", 300, "openid")


def test_access_token_is_rs256_jwt_with_access_claims(emulator):
    kid = emulator.control("config")["kids"][0]
    before = int(time.time())
    token = obtain_tokens(emulator)["access_token"]
    assert header(token) == {"alg": "RS256", "typ": "JWT", "kid": kid}
    body = claims(token)
    assert before <= body["iat"] <= time.time()
    assert body == {
        "iss": emulator.issuer,
        "aud": REDIRECT_URI,
        "email": USER_EMAIL,
        "sub": body["sub"],
        "groups": [],
        "iat": body["iat"],
        "nbf": body["iat"],
        "exp": body["iat"] + 300,
    }
    assert str(uuid.UUID(body["sub"])) == body["sub"]


def test_sub_is_stable_per_email_and_groups_come_from_config(emulator):
    first = claims(obtain_tokens(emulator)["access_token"])
    again = claims(obtain_tokens(emulator)["access_token"])
    emulator.configure(email="other@example.com", groups=["eng", "admins"])
    other = claims(obtain_tokens(emulator)["access_token"])
    assert first["sub"] == again["sub"] != other["sub"]
    assert (other["email"], other["groups"]) == ("other@example.com", ["eng", "admins"])


def test_id_token_is_for_the_client_and_carries_the_nonce(emulator):
    tokens = obtain_tokens(emulator, nonce="n-123")
    access, identity = claims(tokens["access_token"]), claims(tokens["id_token"])
    assert header(tokens["id_token"])["alg"] == "RS256"
    assert identity == {**access, "aud": emulator.client_id, "nonce": "n-123"}
    assert "nonce" not in claims(obtain_tokens(emulator)["id_token"])


@pytest.mark.parametrize(
    "aud_mode, redirect_uri, expected",
    [
        ("redirect_uri", REDIRECT_URI, REDIRECT_URI),
        ("redirect_uri", OTHER_REDIRECT_URI, OTHER_REDIRECT_URI),
        ("client_id", REDIRECT_URI, "emulator-client-id"),
        ("array", REDIRECT_URI, ["emulator-client-id"]),
    ],
)
def test_aud_modes(emulator, aud_mode, redirect_uri, expected):
    emulator.configure(aud_mode=aud_mode)
    code, verifier = login(emulator, redirect_uri=redirect_uri)
    token = exchange(emulator, code, verifier, redirect_uri=redirect_uri).json()["access_token"]
    assert claims(token)["aud"] == expected


@pytest.mark.parametrize(
    "switches, token_type, expires_in",
    [
        ({}, "bearer", 300),
        ({"quirk_lowercase_token_type": False}, "Bearer", 300),
        ({"quirk_expires_in_string": True}, "bearer", "300"),
        ({"access_token_ttl": 60}, "bearer", 60),
    ],
)
def test_token_type_and_expires_in(emulator, switches, token_type, expires_in):
    emulator.configure(**switches)
    body = obtain_tokens(emulator)
    assert (body["token_type"], body["expires_in"]) == (token_type, expires_in)
    access = claims(body["access_token"])
    assert access["exp"] - access["iat"] == int(expires_in)


def test_client_secret_post_is_recorded_exactly(emulator):
    code, verifier = login(emulator)
    exchange(emulator, code, verifier)
    assert emulator.stats()["last_token_request"] == {
        "form": {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "code_verifier": verifier,
        },
        "auth_method": "client_secret_post",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "content_type": FORM,
    }


def test_client_secret_basic_is_accepted_and_recorded(emulator):
    code, verifier = login(emulator)
    response = exchange(
        emulator, code, verifier, auth=(emulator.client_id, emulator.client_secret), client_id=None, client_secret=None
    )
    assert response.status_code == 200
    recorded = emulator.stats()["last_token_request"]
    assert (recorded["auth_method"], recorded["client_id"], recorded["client_secret"]) == (
        "client_secret_basic",
        emulator.client_id,
        emulator.client_secret,
    )
    assert "client_secret" not in recorded["form"]


def test_basic_credentials_are_form_urlencoded_first(emulator):
    # RFC 6749 §2.3.1: a secret with reserved characters must be encoded before base64.
    emulator.configure(client_secret="s e+c/r%t")
    code, verifier = login(emulator)
    encoded = (quote_plus(emulator.client_id), quote_plus("s e+c/r%t"))
    response = exchange(emulator, code, verifier, auth=encoded, client_id=None, client_secret=None)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_secret": None},
        {"client_secret": "wrong"},
        {"client_secret": ""},
        {"client_id": "another-client"},
        {"client_id": None, "client_secret": None},
    ],
)
def test_missing_or_wrong_client_credentials_are_invalid_client(emulator, overrides):
    code, verifier = login(emulator)
    _error(exchange(emulator, code, verifier, **overrides), "invalid_client", 401)


def test_wrong_basic_secret_is_invalid_client_with_basic_challenge(emulator):
    code, verifier = login(emulator)
    response = exchange(emulator, code, verifier, auth=(emulator.client_id, "wrong"), client_secret=None)
    _error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"] == "Basic"


def test_basic_and_form_client_ids_must_agree(emulator):
    code, verifier = login(emulator)
    response = exchange(
        emulator, code, verifier, auth=(emulator.client_id, emulator.client_secret), client_id="x", client_secret=None
    )
    _error(response, "invalid_client", 401)


def test_pkce_without_secret_lets_a_public_client_in(emulator):
    emulator.configure(pkce_without_secret=True)
    code, verifier = login(emulator)
    assert exchange(emulator, code, verifier, client_secret=None).status_code == 200
    assert emulator.stats()["last_token_request"]["auth_method"] == "none"


@pytest.mark.parametrize(
    "pkce_without_secret, overrides",
    [
        (False, {"client_secret": None}),  # the default: the secret is required even with PKCE
        (True, {"client_secret": None, "code_verifier": None}),  # no verifier, so not a PKCE exchange
        (True, {"client_secret": "wrong"}),  # a secret that is sent is still checked
    ],
)
def test_pkce_without_secret_boundaries(emulator, pkce_without_secret, overrides):
    emulator.configure(pkce_without_secret=pkce_without_secret)
    code, verifier = login(emulator)
    _error(exchange(emulator, code, verifier, **overrides), "invalid_client", 401)


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_verifier": "a-different-verifier-that-is-long-enough-to-be-valid-0123456789"},
        {"code_verifier": None},
        {"redirect_uri": OTHER_REDIRECT_URI},
        {"redirect_uri": "http://localhost:8766/callback"},
        {"redirect_uri": None},
        {"code": "not-a-code"},
        {"code": None},
    ],
)
def test_wrong_verifier_redirect_uri_or_code_is_invalid_grant(emulator, overrides):
    code, verifier = login(emulator)
    _error(exchange(emulator, code, verifier, **overrides), "invalid_grant")


def test_without_challenge_no_verifier_is_needed_and_none_is_accepted(emulator):
    response = authorize(emulator, code_challenge_method=None)
    code = location_query(response)["code"]
    assert exchange(emulator, code, None).status_code == 200
    code = location_query(authorize(emulator, code_challenge_method=None))["code"]
    _error(exchange(emulator, code, "an-unexpected-verifier"), "invalid_grant")


def test_codes_are_single_use(emulator):
    code, verifier = login(emulator)
    assert exchange(emulator, code, verifier).status_code == 200
    _error(exchange(emulator, code, verifier), "invalid_grant")


def test_expired_codes_are_refused(emulator):
    emulator.configure(code_ttl=0)
    code, verifier = login(emulator)
    _error(exchange(emulator, code, verifier), "invalid_grant")


def test_unknown_grant_type(emulator):
    response = post_token(
        emulator,
        {"grant_type": "client_credentials", "client_id": emulator.client_id, "client_secret": emulator.client_secret},
    )
    _error(response, "unsupported_grant_type")


def _refresh(emulator, refresh_token: str, **form):
    return post_token(
        emulator,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            **form,
        },
    )


def test_refresh_rotates_by_default(emulator):
    first = obtain_tokens(emulator, nonce="n-1")
    response = _refresh(emulator, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims(second["access_token"])["email"] == USER_EMAIL
    assert claims(second["access_token"])["aud"] == REDIRECT_URI
    _error(_refresh(emulator, first["refresh_token"]), "invalid_grant")
    assert _refresh(emulator, second["refresh_token"]).status_code == 200


def test_concurrent_refreshes_with_one_token_one_wins(emulator):
    """What a strictly rotating Access does to clients that race: of three refreshes with one
    token sent at once, one gets new tokens and the others invalid_grant."""
    refresh_token = obtain_tokens(emulator)["refresh_token"]
    emulator.configure(token_delay_ms=200)  # all three are in the emulator before any is answered
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: _refresh(emulator, refresh_token), range(3)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400]
    for answer in answers:
        if answer.status_code == 400:
            _error(answer, "invalid_grant")


def test_strict_rotation_revokes_the_login_when_a_used_token_comes_back(emulator):
    """RFC 9700 §4.14.2 reuse detection: a used-up refresh token presented again revokes every
    refresh token of its login, the one it was exchanged for too; other logins keep theirs.
    Without strict rotation the reuse is refused and the newer token still works."""
    for strict in (False, True):
        emulator.configure(strict_rotation=strict)
        first = obtain_tokens(emulator)["refresh_token"]
        other_login = obtain_tokens(emulator)["refresh_token"]
        second = _refresh(emulator, first).json()["refresh_token"]
        revocations = emulator.stats()["counts"].get("refresh_reuse_revocations", 0)
        _error(_refresh(emulator, first), "invalid_grant")
        assert emulator.stats()["counts"].get("refresh_reuse_revocations", 0) == revocations + strict
        newer = _refresh(emulator, second)
        if strict:
            _error(newer, "invalid_grant")
        else:
            assert newer.status_code == 200
        assert _refresh(emulator, other_login).status_code == 200


def test_strict_rotation_leaves_tokens_that_are_not_rotated_alone(emulator):
    emulator.configure(strict_rotation=True, rotate_refresh_tokens=False)
    refresh_token = obtain_tokens(emulator)["refresh_token"]
    for _ in range(3):
        assert _refresh(emulator, refresh_token).status_code == 200
    assert "refresh_reuse_revocations" not in emulator.stats()["counts"]


def test_refresh_without_rotation_reuses_the_token(emulator):
    emulator.configure(rotate_refresh_tokens=False)
    refresh_token = obtain_tokens(emulator)["refresh_token"]
    for _ in range(2):
        response = _refresh(emulator, refresh_token)
        assert (response.status_code, response.json()["refresh_token"]) == (200, refresh_token)


def test_refresh_needs_client_authentication_unless_pkce_without_secret(emulator):
    refresh_token = obtain_tokens(emulator)["refresh_token"]
    _error(_refresh(emulator, refresh_token, client_secret=None), "invalid_client", 401)
    emulator.configure(pkce_without_secret=True)
    assert _refresh(emulator, refresh_token, client_secret=None).status_code == 200


def test_expired_refresh_token_is_refused(emulator):
    emulator.configure(refresh_token_ttl=0)
    _error(_refresh(emulator, obtain_tokens(emulator)["refresh_token"]), "invalid_grant")


def test_refresh_tokens_can_be_switched_off(emulator):
    first = obtain_tokens(emulator)
    emulator.configure(refresh_tokens=False)
    assert "refresh_token" not in obtain_tokens(emulator)
    _error(_refresh(emulator, first["refresh_token"]), "unsupported_grant_type")


def test_opaque_access_token_with_jwt_id_token(emulator):
    emulator.configure(opaque_access_token=True)
    tokens = obtain_tokens(emulator)
    assert "." not in tokens["access_token"] and len(tokens["access_token"]) >= 32
    assert claims(tokens["id_token"])["email"] == USER_EMAIL


def test_token_fault_server_error(emulator):
    emulator.configure(token_fault="server_error")
    code, verifier = login(emulator)
    response = exchange(emulator, code, verifier)
    assert (response.status_code, response.headers["content-type"], response.text) == (
        500,
        "text/plain; charset=utf-8",
        "Internal Server Error",
    )


@pytest.mark.parametrize("status", [400, 200])
def test_token_fault_html_access_denied_page(emulator, status):
    emulator.configure(token_fault="html", token_html_status=status)
    code, verifier = login(emulator)
    response = exchange(emulator, code, verifier)
    assert (response.status_code, response.headers["content-type"]) == (status, "text/html; charset=utf-8")
    assert "<title>Access denied</title>" in response.text
    # The request was still recorded, so a test can see what the relay sent before the failure.
    assert emulator.stats()["last_token_request"]["form"]["code"] == code


def test_token_delay(emulator):
    emulator.configure(token_delay_ms=300)
    code, verifier = login(emulator)
    started = time.monotonic()
    assert exchange(emulator, code, verifier).status_code == 200
    assert time.monotonic() - started >= 0.3
