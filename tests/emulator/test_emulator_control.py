"""The control API, stats, and startup configuration through CLI flags and env."""

import pytest
from access_emulator.config import Config, load
from emulator_flows import OTHER_REDIRECT_URI, REDIRECT_URI, USER_EMAIL, authorize, exchange, http, login
from support.stack import start_emulator

STARTUP = {**Config().as_json(), "redirect_uris": [REDIRECT_URI, OTHER_REDIRECT_URI], "email": USER_EMAIL}


def test_config_view(emulator):
    view = emulator.control("config")
    assert sorted(view) == ["base_url", "config", "issuer", "kids"]
    assert view["config"] == STARTUP
    assert (view["base_url"], view["issuer"], len(view["kids"])) == (emulator.base_url, emulator.issuer, 1)
    assert http.get(emulator.base_url + "/__emulator/config").json() == view


def test_patch_changes_only_the_given_switches(emulator):
    view = emulator.configure(token_delay_ms=5, aud_mode="array", authorization_error="access_denied")
    assert view["config"] == {
        **STARTUP,
        "token_delay_ms": 5,
        "aud_mode": "array",
        "authorization_error": "access_denied",
    }
    assert emulator.configure(authorization_error=None)["config"]["authorization_error"] is None


@pytest.mark.parametrize(
    "body, error",
    [
        (b'{"nope": 1}', "unknown switch nope"),
        (b'{"refresh_tokens": "yes"}', "refresh_tokens must be a boolean"),
        (b'{"strict_rotation": 1}', "strict_rotation must be a boolean"),
        (b'{"code_ttl": true}', "code_ttl must be a non-negative int"),
        (b'{"code_ttl": -1}', "code_ttl must be a non-negative int"),
        (b'{"redirect_uris": "http://x"}', "redirect_uris must be a list of strings"),
        (b'{"client_id": null}', "client_id must not be null"),
        (b'{"aud_mode": "both"}', "aud_mode must be one of redirect_uri, client_id, array"),
        (b'{"token_fault": "html", "jwks_down": 1}', "jwks_down must be a boolean"),
        (b"[1]", "body must be a JSON object"),
        (b"{not json", "body must be JSON"),
    ],
)
def test_bad_patches_are_refused_whole(emulator, body, error):
    response = http.post(emulator.base_url + "/__emulator/config", content=body)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert emulator.control("config")["config"] == STARTUP


def test_stats_count_every_endpoint_and_reset_clears_everything(emulator):
    http.get(emulator.issuer + "/.well-known/openid-configuration")
    code, verifier = login(emulator)
    token = exchange(emulator, code, verifier).json()["access_token"]
    http.get(emulator.issuer + "/jwks")
    http.get(emulator.issuer + "/userinfo", headers={"Authorization": f"Bearer {token}"})
    http.get(emulator.base_url + "/.well-known/oauth-authorization-server")
    stats = emulator.stats()
    assert stats["counts"] == {"discovery": 1, "authorization": 1, "token": 1, "jwks": 1, "userinfo": 1}
    assert stats["not_found"] == ["/.well-known/oauth-authorization-server"]
    emulator.configure(email="someone@else.example")
    emulator.control("rotate-key")

    view = emulator.reset()
    assert view["config"] == STARTUP and len(view["kids"]) == 1
    assert emulator.stats() == {"counts": {}, "last_authorization": None, "last_token_request": None, "not_found": []}


def test_codes_do_not_survive_a_reset(emulator):
    code, verifier = login(emulator)
    emulator.reset()
    assert exchange(emulator, code, verifier).json() == {"error": "invalid_grant"}


def test_startup_flags_set_switches():
    with start_emulator(
        client_id="cli-app",
        client_secret="cli-secret",
        redirect_uris=["http://localhost:1/cb", "http://localhost:2/cb"],
        groups=["a", "b"],
        pkce_without_secret=True,
        quirk_grant_types=False,
        aud_mode="client_id",
        code_ttl=7,
    ) as emulator:
        config = emulator.control("config")["config"]
        assert config == {
            **Config().as_json(),
            "client_id": "cli-app",
            "client_secret": "cli-secret",
            "redirect_uris": ["http://localhost:1/cb", "http://localhost:2/cb"],
            "groups": ["a", "b"],
            "pkce_without_secret": True,
            "quirk_grant_types": False,
            "aud_mode": "client_id",
            "code_ttl": 7,
        }
        assert emulator.issuer.endswith("/cdn-cgi/access/sso/oidc/cli-app")
        assert (emulator.client_id, emulator.client_secret) == ("cli-app", "cli-secret")
        # reset goes back to the startup flags, not to the built-in defaults
        emulator.configure(client_id="other")
        assert emulator.reset()["config"] == config


def test_env_sets_switches_and_flags_win():
    env = {
        "ACCESS_EMULATOR_CLIENT_ID": "env-app",
        "ACCESS_EMULATOR_REDIRECT_URIS": "http://localhost:3/cb https://vscode.dev/redirect",
        "ACCESS_EMULATOR_REFRESH_TOKENS": "off",
        "ACCESS_EMULATOR_ACCESS_TOKEN_TTL": "30",
    }
    with start_emulator(env=env, access_token_ttl=45) as emulator:
        config = emulator.control("config")["config"]
        assert (config["client_id"], config["redirect_uris"], config["refresh_tokens"], config["access_token_ttl"]) == (
            "env-app",
            ["http://localhost:3/cb", "https://vscode.dev/redirect"],
            False,
            45,
        )
        assert authorize(emulator, redirect_uri="https://vscode.dev/redirect").status_code == 302


def test_bad_startup_value_fails_fast_with_the_reason():
    with pytest.raises(RuntimeError, match="--token-fault: invalid choice: 'explode'"):
        start_emulator(token_fault="explode")


@pytest.mark.parametrize(
    "argv, environ, expected",
    [
        ([], {}, (Config(), 0)),
        (["--port", "8080"], {"ACCESS_EMULATOR_PORT": "9090"}, (Config(), 8080)),
        ([], {"ACCESS_EMULATOR_PORT": "9090"}, (Config(), 9090)),
        (["--authorization-error", ""], {"ACCESS_EMULATOR_AUTHORIZATION_ERROR": "access_denied"}, (Config(), 0)),
        (["--no-jwks-down"], {"ACCESS_EMULATOR_JWKS_DOWN": "true"}, (Config(), 0)),
        (["--groups", "x", "--groups", "y z"], {}, (Config(groups=["x", "y z"]), 0)),
        ([], {"ACCESS_EMULATOR_GROUPS": ""}, (Config(groups=[]), 0)),
        ([], {"ACCESS_EMULATOR_PUBLIC_BASE": "https://t.example"}, (Config(public_base="https://t.example"), 0)),
    ],
)
def test_load_precedence_and_parsing(argv, environ, expected):
    assert load(argv, environ) == expected


@pytest.mark.parametrize(
    "argv, environ",
    [
        ([], {"ACCESS_EMULATOR_JWKS_DOWN": "maybe"}),
        ([], {"ACCESS_EMULATOR_CODE_TTL": "soon"}),
        ([], {"ACCESS_EMULATOR_PORT": "-1"}),
        (["--aud-mode", "both"], {}),
    ],
)
def test_load_rejects_bad_values(argv, environ):
    with pytest.raises(SystemExit):
        load(argv, environ)
