"""POST /token (RFC 6749 §3.2, §4.1.3, §5, §6; RFC 7636 §4.5; RFC 8707 §2.2): client
authentication at the gateway, what the gateway sends to Access (the emulator records it), the
normalised answer, and RFC 6749 §5.2 JSON errors — 5xx only when Access fails."""

import json
from urllib.parse import urlencode

import pytest
from oauth_flow import (
    assert_oauth_error,
    authorize,
    code_form,
    exchange,
    http,
    pkce_pair,
    post_token,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def last_token_request(stack) -> dict:
    return stack.emulator.stats()["last_token_request"]


def token_calls(stack) -> int:
    return stack.emulator.stats()["counts"].get("token", 0)


def assert_token_response(response, *, access_jwt: bool = True) -> dict:
    """RFC 6749 §5.1, normalised: "Bearer", a numeric expires_in, no id_token, never cached.
    `access_jwt`: Access's JWT is passed through (TOKEN_MODE auto with a JWT-issuing Access)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert body["token_type"] == "Bearer"  # Access says "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert (body["access_token"].count(".") == 2) == access_jwt
    assert "id_token" not in body  # names Access as issuer, not this gateway
    return body


# --- Client authentication ------------------------------------------------------------------------


def client_auth(stack, method: str, secret: str | None = None) -> dict:
    """`exchange` keyword arguments for a client authentication method."""
    secret = secret or stack.emulator.client_secret
    if method == "client_secret_basic":
        return {"auth": (stack.emulator.client_id, secret), "client_id": None}
    if method == "client_secret_post":
        return {"client_secret": secret}
    return {}


@pytest.mark.parametrize("method", ["none", "client_secret_basic", "client_secret_post"])
def test_every_advertised_client_authentication_works(stack, method):
    grant = authorize(stack)
    response = exchange(stack, grant, **client_auth(stack, method))
    assert_token_response(response)
    # What Access received: the gateway's secret (whatever the client used), the gateway's own
    # callback as redirect_uri, Access's own code (unsealed) and the client's verifier.
    sent = last_token_request(stack)
    form = sent["form"]
    assert sent["auth_method"] == "client_secret_post"
    assert form["client_secret"] == stack.emulator.client_secret
    assert form["client_id"] == stack.emulator.client_id
    assert form["redirect_uri"] == stack.worker.url + "/callback"
    assert form["code_verifier"] == grant.verifier
    assert form["code"] != grant.code
    assert "resource" not in form  # Access ignores RFC 8707; the gateway checked it
    assert sent["content_type"].startswith("application/x-www-form-urlencoded")


def test_without_a_secret_the_gateway_sends_none(pkce_stack):
    """Access's "PKCE without client secret": the gateway holds no secret and sends none."""
    grant = authorize(pkce_stack)
    assert_token_response(exchange(pkce_stack, grant))
    sent = last_token_request(pkce_stack)
    assert sent["auth_method"] == "none"
    assert "client_secret" not in sent["form"]
    assert sent["form"]["code_verifier"] == grant.verifier
    assert sent["form"]["redirect_uri"] == pkce_stack.worker.url + "/callback"


WRONG_CREDENTIALS = {
    "basic, wrong secret": ("client_secret_basic", "wrong", "secret"),
    "post, wrong secret": ("client_secret_post", "wrong", "secret"),
    "basic, any secret (none configured)": ("client_secret_basic", "anything", "pkce"),
    "post, any secret (none configured)": ("client_secret_post", "anything", "pkce"),
}


@pytest.mark.parametrize("method, secret, mode", WRONG_CREDENTIALS.values(), ids=WRONG_CREDENTIALS.keys())
def test_wrong_client_credentials_are_invalid_client(request, method, secret, mode):
    """RFC 6749 §5.2: 401 invalid_client, with a Basic challenge when Basic was tried. The
    gateway refuses before Access sees the code, so the code is still good afterwards."""
    stack = request.getfixturevalue("stack" if mode == "secret" else "pkce_stack")
    grant = authorize(stack)
    calls = token_calls(stack)
    response = exchange(stack, grant, **client_auth(stack, method, secret))
    assert_oauth_error(response, 401, "invalid_client")
    if method == "client_secret_basic":
        assert response.headers["www-authenticate"].startswith("Basic")
    else:
        assert "www-authenticate" not in response.headers
    assert token_calls(stack) == calls, "Access is not asked"
    assert_token_response(exchange(stack, grant))


@pytest.mark.parametrize(
    "overrides",
    [{"client_id": "someone-else"}, {"client_id": None}],
    ids=["another client_id", "no client_id"],
)
def test_an_unknown_client_is_invalid_client(stack, overrides):
    grant = authorize(stack)
    assert_oauth_error(exchange(stack, grant, **overrides), 401, "invalid_client")


def test_a_malformed_basic_header_is_invalid_client_with_a_challenge(stack):
    grant = authorize(stack)
    response = post_token(stack, code_form(stack, grant), headers={"Authorization": "Basic !!!not-base64"})
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


def test_two_client_authentication_methods_at_once_are_invalid_request(stack):
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request."""
    grant = authorize(stack)
    auth = (stack.emulator.client_id, stack.emulator.client_secret)
    response = exchange(stack, grant, auth=auth, client_id=None, client_secret=stack.emulator.client_secret)
    assert_oauth_error(response, 400, "invalid_request")


# --- The authorization code grant ----------------------------------------------------------------


def test_a_code_is_single_use(any_stack):
    """RFC 6749 §4.1.2: Access enforces it; the gateway relays invalid_grant."""
    stack = any_stack
    grant = authorize(stack)
    assert_token_response(exchange(stack, grant))
    assert_oauth_error(exchange(stack, grant), 400, "invalid_grant")


BAD_EXCHANGES = {
    # RFC 6749 §4.1.3: redirect_uri must be the one of the authorization request.
    "another redirect_uri": ({"redirect_uri": "http://localhost:53683/callback"}, 400, "invalid_grant"),
    "no redirect_uri": ({"redirect_uri": None}, 400, "invalid_grant"),
    # RFC 8707 §2.2.
    "another resource": ({"resource": "https://other.example/mcp"}, 400, "invalid_target"),
    # RFC 7636 §4.6.
    "wrong verifier": ({"code_verifier": pkce_pair()[0]}, 400, "invalid_grant"),
    "malformed verifier": ({"code_verifier": "short"}, 400, "invalid_grant"),
    "verifier with forbidden characters": ({"code_verifier": "a" * 42 + "+"}, 400, "invalid_grant"),
    "no verifier": ({"code_verifier": None}, 400, "invalid_request"),
    "no code": ({"code": None}, 400, "invalid_request"),
    "garbage code": ({"code": "not-a-code"}, 400, "invalid_grant"),
    "no grant_type": ({"grant_type": None}, 400, "invalid_request"),
    "password grant": ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    "client_credentials grant": ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    "device code grant": ({"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, 400, "unsupported_grant_type"),
}


@pytest.mark.parametrize("overrides, status, error", BAD_EXCHANGES.values(), ids=BAD_EXCHANGES.keys())
def test_bad_exchanges_get_the_rfc_error(any_stack, overrides, status, error):
    assert_oauth_error(exchange(any_stack, authorize(any_stack), **overrides), status, error)


def test_a_wrong_verifier_is_refused_before_access_is_asked(any_stack):
    """RFC 7636 §4.6, checked by the gateway itself against the challenge sealed in the code: its
    secret never vouches for a code presented with the wrong verifier. Access is not asked, so the
    code still works with the right verifier, which is relayed (Access checks it too)."""
    stack = any_stack
    grant = authorize(stack)
    calls = token_calls(stack)
    assert_oauth_error(exchange(stack, grant, code_verifier=pkce_pair()[0]), 400, "invalid_grant")
    assert token_calls(stack) == calls, "Access is not asked"
    assert_token_response(exchange(stack, grant))
    assert last_token_request(stack)["form"]["code_verifier"] == grant.verifier


def test_the_resource_may_be_omitted(stack):
    """RFC 8707 is optional for clients; the code stays bound to what was authorized."""
    assert_token_response(exchange(stack, authorize(stack), resource=None))


@pytest.mark.parametrize("forge", ["tampered", "truncated", "other gateway's code", "Access's raw code"])
def test_a_code_the_gateway_did_not_issue_is_invalid_grant(stack, pkce_stack, forge):
    grant = authorize(stack)
    code = grant.code
    if forge == "tampered":
        middle = len(code) // 2
        code = code[:middle] + ("A" if code[middle] != "A" else "B") + code[middle + 1 :]
    elif forge == "truncated":
        code = code[:-8]
    elif forge == "other gateway's code":
        code = authorize(pkce_stack).code
    else:
        exchange(stack, grant)  # learn Access's code from what the gateway sent it
        code = last_token_request(stack)["form"]["code"]
    calls = token_calls(stack)
    assert_oauth_error(exchange(stack, grant, code=code), 400, "invalid_grant")
    assert token_calls(stack) == calls, "a code that does not open is never sent to Access"


def test_a_state_is_not_a_code(stack):
    """Sealed values are bound to their purpose: the sealed state sent to Access is no code."""
    grant = authorize(stack)
    sealed_state = grant.access_request["state"]
    assert_oauth_error(exchange(stack, grant, code=sealed_state), 400, "invalid_grant")


def test_a_repeated_parameter_is_invalid_request(stack):
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    grant = authorize(stack)
    body = urlencode(code_form(stack, grant)) + "&code=again"
    response = http.post(stack.worker.url + "/token", content=body, headers=FORM)
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", None])
def test_the_token_request_must_be_a_form(stack, content_type):
    grant = authorize(stack)
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post(stack.worker.url + "/token", content=json.dumps(code_form(stack, grant)), headers=headers)
    assert_oauth_error(response, 415, "invalid_request")


def test_a_huge_form_is_refused(stack):
    response = post_token(stack, {"grant_type": "authorization_code", "code": "x" * 20_000})
    assert_oauth_error(response, 413, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_only_post_reaches_the_token_endpoint(stack, method):
    response = http.request(method, stack.worker.url + "/token")
    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["allow"] == "POST, OPTIONS"


# --- What Access answers, normalised --------------------------------------------------------------


@pytest.mark.parametrize(
    "switches",
    [{}, {"quirk_expires_in_string": True}, {"quirk_lowercase_token_type": False}],
    ids=["as Access sends it", "expires_in as a string", "standard token_type"],
)
def test_the_token_response_is_normalised(any_stack, switches):
    stack = any_stack
    stack.emulator.configure(**switches)
    body = assert_token_response(exchange(stack, authorize(stack)))
    assert body["expires_in"] == 300
    assert set(body) <= {"access_token", "token_type", "expires_in", "refresh_token", "scope"}


def test_a_slow_access_is_waited_for(stack):
    """Below the gateway's 10 s upstream timeout a slow Access is still a success."""
    stack.emulator.configure(token_delay_ms=2000)
    assert_token_response(exchange(stack, authorize(stack)))


UPSTREAM_FAULTS = {
    "500 text/plain": {"token_fault": "server_error"},
    "HTML page, 200": {"token_fault": "html", "token_html_status": 200},
}


@pytest.mark.parametrize("switches", UPSTREAM_FAULTS.values(), ids=UPSTREAM_FAULTS.keys())
def test_access_failures_are_json_502_never_html(stack, switches):
    grant = authorize(stack)
    stack.emulator.configure(**switches)
    response = exchange(stack, grant)
    body = assert_oauth_error(response, 502, "temporarily_unavailable")
    assert "<" not in body["error_description"] and "Access denied" not in response.text


ACCESS_REFUSALS = {
    "HTML page, 400": ({"token_fault": "html", "token_html_status": 400}, 400, "invalid_grant"),
    "HTML page, 403": ({"token_fault": "html", "token_html_status": 403}, 400, "invalid_grant"),
    "HTML page, 401": ({"token_fault": "html", "token_html_status": 401}, 401, "invalid_client"),
    # Access refusing the gateway's own credentials: the operator must fix ACCESS_CLIENT_SECRET,
    # and no retry of this request can succeed meanwhile.
    "gateway secret rotated at Access": ({"client_secret": "rotated-in-the-dashboard"}, 401, "invalid_client"),
}


@pytest.mark.parametrize("switches, status, error", ACCESS_REFUSALS.values(), ids=ACCESS_REFUSALS.keys())
def test_access_refusals_are_final_json_errors_whatever_their_body(stack, switches, status, error):
    """A 4xx from Access can never succeed on a retry, so it is not temporarily_unavailable,
    even when Access sends an HTML page instead of OAuth JSON."""
    grant = authorize(stack)
    stack.emulator.configure(**switches)
    seen = len(stack.worker.request_log())
    response = exchange(stack, grant)
    body = assert_oauth_error(response, status, error)
    assert "<" not in body["error_description"] and "Access denied" not in response.text
    logged = [line["error"] for line in stack.worker.request_log()[seen:] if line["route"] == "token"]
    assert len(logged) == 1 and ("ACCESS_CLIENT_SECRET" in logged[0]) == (status == 401), logged


def test_an_opaque_access_token_from_access_is_replaced_by_a_sealed_one(any_stack):
    """TOKEN_MODE auto: an opaque Access token could not be validated at the edge, so the client
    gets the gateway's own sealed tokens instead (the refresh token wraps Access's)."""
    stack = any_stack
    stack.emulator.configure(opaque_access_token=True)
    grant = authorize(stack)
    body = assert_token_response(exchange(stack, grant), access_jwt=False)
    assert body["expires_in"] <= 300
    userinfo = http.get(stack.emulator.issuer + "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 401, "not Access's own token: Access does not know it"
    refresh = post_token(
        stack, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": stack.emulator.client_id}
    )
    assert_token_response(refresh, access_jwt=False)
    sent = last_token_request(stack)["form"]
    assert sent["refresh_token"] != body["refresh_token"], "Access receives its own refresh token, unwrapped"


# --- Refresh (RFC 6749 §6) -------------------------------------------------------------------------


def refresh(stack, refresh_token: str):
    return post_token(
        stack, {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": stack.emulator.client_id}
    )


# Every token mode, Access issuing JWT access tokens: (stack fixture, whether the client holds Access's JWT).
TOKEN_MODES = {
    "auto": ("stack", True),
    "auto, no secret": ("pkce_stack", True),
    "passthrough": ("passthrough_stack", True),
    "sealed": ("sealed_stack", False),
}


@pytest.mark.parametrize("fixture, access_jwt", TOKEN_MODES.values(), ids=TOKEN_MODES.keys())
def test_the_client_holds_the_gateways_refresh_token_never_accesss(request, fixture, access_jwt):
    """In every token mode the refresh token is sealed by the gateway around Access's, and only
    such sealed ones are relayed: Access's own, had it leaked, is refused and never reaches Access,
    though Access would still accept it (refresh tokens not rotated here, so it stays valid)."""
    stack = request.getfixturevalue(fixture)
    stack.emulator.configure(rotate_refresh_tokens=False)
    first = assert_token_response(exchange(stack, authorize(stack)), access_jwt=access_jwt)
    second = assert_token_response(refresh(stack, first["refresh_token"]), access_jwt=access_jwt)
    sent = last_token_request(stack)["form"]
    assert sent["grant_type"] == "refresh_token"
    assert ("client_secret" in sent) == (stack.worker.settings.get("ACCESS_CLIENT_SECRET") is not None)
    access_refresh = sent["refresh_token"]  # what Access issued at the code exchange
    assert access_refresh not in (first["refresh_token"], second["refresh_token"]), "the client never holds it"
    assert second["refresh_token"] != first["refresh_token"], "Access's answer is sealed afresh"

    calls = token_calls(stack)
    assert_oauth_error(refresh(stack, access_refresh), 400, "invalid_grant")
    assert token_calls(stack) == calls, "a raw Access refresh token is never relayed"
    assert_token_response(refresh(stack, second["refresh_token"]), access_jwt=access_jwt)
    assert last_token_request(stack)["form"]["refresh_token"] == access_refresh, "still valid at Access"


def test_rotated_refresh_tokens_are_sealed_again(stack):
    """Access rotates refresh tokens (the emulator's default): each refresh answers a new sealed
    one around Access's new one, which the next refresh uses."""
    held = assert_token_response(exchange(stack, authorize(stack)))["refresh_token"]
    relayed = []
    for _ in range(2):
        held = assert_token_response(refresh(stack, held))["refresh_token"]
        relayed.append(last_token_request(stack)["form"]["refresh_token"])
    assert relayed[0] != relayed[1] and held not in relayed


def test_another_deployments_refresh_token_is_invalid_grant(stack, sealed_stack):
    """Sealed under another deployment's SEALING_KEYS: refused, and this deployment's Access is not asked."""
    foreign = assert_token_response(exchange(sealed_stack, authorize(sealed_stack)), access_jwt=False)
    calls = token_calls(stack)
    assert_oauth_error(refresh(stack, foreign["refresh_token"]), 400, "invalid_grant")
    assert token_calls(stack) == calls


@pytest.mark.parametrize(
    "form, error",
    [({"refresh_token": "not-a-refresh-token"}, "invalid_grant"), ({}, "invalid_request")],
    ids=["unknown refresh token", "no refresh token"],
)
def test_bad_refresh_requests(stack, form, error):
    calls = token_calls(stack)
    response = post_token(stack, {"grant_type": "refresh_token", "client_id": stack.emulator.client_id, **form})
    assert_oauth_error(response, 400, error)
    assert token_calls(stack) == calls, "Access is not asked"
