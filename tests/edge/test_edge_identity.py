"""Identity headers: the origin is told who the caller is by the gateway only, from the validated
token. Whatever a client sends under the trusted prefixes (`x-gateway-`, `cf-access-`) is removed
first, in any letter case, however often it is repeated."""

import pytest
from edge_stack import (
    ALLOWED_EMAIL,
    FORGED,
    IDENTITY_HEADERS,
    SERVICE_TOKEN_ID,
    SERVICE_TOKEN_SECRET,
    USER_EMAIL,
    USER_GROUP,
    segments,
)


def test_forged_identity_never_reaches_the_real_origin(real):
    token = real.mint()
    _, claims, _ = segments(token)
    seen_by_origin = len(real.origin.requests())
    response = real.initialize(token, headers=FORGED)
    assert response.status_code == 200, response.text
    (arrived,) = real.origin.requests()[seen_by_origin:]
    assert arrived["identity"] == {
        "x-gateway-user-email": [USER_EMAIL],
        "x-gateway-user-sub": [claims["sub"]],
        "x-gateway-user-groups": [f'["{USER_GROUP}"]'],
        "cf-access-authenticated-user-email": [USER_EMAIL],
    }
    # The real origin sits behind no Access of its own here: no service token is configured.
    assert {"cf-access-jwt-assertion", "cf-access-client-id", "cf-access-client-secret", "x-gateway-anything"}.isdisjoint(
        arrived["headers"]
    )


@pytest.mark.parametrize(
    "claims, expected",
    [
        pytest.param(
            {"groups": [USER_GROUP, "ops"]},
            {"x-gateway-user-email": [USER_EMAIL], "x-gateway-user-groups": [f'["{USER_GROUP}","ops"]'],
             "cf-access-authenticated-user-email": [USER_EMAIL]},
            id="email-and-groups",
        ),
        pytest.param({"email": None}, {"x-gateway-user-groups": [f'["{USER_GROUP}"]']}, id="no-email-claim"),
        pytest.param(
            {"email": ALLOWED_EMAIL, "groups": []},
            {"x-gateway-user-email": [ALLOWED_EMAIL], "cf-access-authenticated-user-email": [ALLOWED_EMAIL]},
            id="no-groups-claim",
        ),
    ],
)
def test_identity_headers_come_only_from_the_token(gateway, claims, expected):
    """A claim the token lacks leaves its header absent: the forged value is not kept instead."""
    token = gateway.mint(**claims)
    response = gateway.call("GET", "/echo", token, headers=FORGED)
    assert response.status_code == 200, response.text
    received = response.json()["headers"]
    identity = {name: [v for n, v in received if n == name] for name in IDENTITY_HEADERS}
    expected = {**expected, "x-gateway-user-sub": [segments(token)[1]["sub"]]}
    assert {name: values for name, values in identity.items() if values} == expected
    # The configured service token replaces the forged one; nothing else under the prefixes.
    trusted = [(n, v) for n, v in received if n.startswith(("x-gateway-", "cf-access-")) and n not in IDENTITY_HEADERS]
    assert sorted(trusted) == [("cf-access-client-id", SERVICE_TOKEN_ID), ("cf-access-client-secret", SERVICE_TOKEN_SECRET)]
