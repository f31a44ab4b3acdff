"""Settings that decide who gets in are read strictly: group names keep their spaces and commas,
an allowlist that lists nothing refuses to start instead of admitting everyone, and identity
headers alone are refused unless the origin sits behind Access itself. A refused configuration
answers every request with a 500 that names the setting."""

import pytest
from support.worker import start_worker


@pytest.mark.parametrize(
    "groups, status",
    [
        pytest.param(["Finance Admins"], 200, id="the-configured-group"),
        pytest.param(["Finance"], 403, id="one-word-of-it"),
        pytest.param(["Admins"], 403, id="the-other-word"),
        pytest.param(["Eng, Platform"], 200, id="a-name-with-a-comma"),
        pytest.param(["Eng"], 403, id="half-of-the-comma-name"),
    ],
)
def test_group_names_are_matched_whole(start_gateway, groups, status):
    edge = start_gateway(ALLOWED_GROUPS='["Finance Admins", "Eng, Platform"]')
    assert edge.call("GET", "/echo", edge.mint(groups=groups)).status_code == status


def test_a_single_group_name_with_a_space_is_one_group(start_gateway):
    edge = start_gateway(ALLOWED_GROUPS="Finance Admins")
    assert edge.call("GET", "/echo", edge.mint(groups=["Finance"])).status_code == 403
    assert edge.call("GET", "/echo", edge.mint(groups=["Finance Admins"])).status_code == 200


@pytest.mark.parametrize(
    "settings, named",
    [
        pytest.param({"ALLOWED_GROUPS": "[]"}, "ALLOWED_GROUPS", id="empty-group-list"),
        pytest.param({"ALLOWED_EMAILS": " , "}, "ALLOWED_EMAILS", id="emails-listing-nothing"),
        pytest.param({"FORWARD_BEARER": "false"}, "FORWARD_BEARER", id="identity-headers-without-service-token"),
        pytest.param({"CIMD": "maybe"}, "CIMD", id="cimd-neither-on-nor-off"),
        pytest.param({"CIMD_ALLOWED_HOSTS": "[]"}, "CIMD_ALLOWED_HOSTS", id="cimd-hosts-listing-nothing"),
        pytest.param({"CIMD_ALLOWED_HOSTS": '["https://claude.ai"]'}, "CIMD_ALLOWED_HOSTS", id="cimd-hosts-a-url"),
        pytest.param({"REQUEST_LOG": "none"}, "REQUEST_LOG", id="request-log-unknown-scope"),
        pytest.param(
            {"REQUEST_LOG": "errors", "AUDIT_MCP_NAMES": "true"}, "REQUEST_LOG", id="request-log-errors-with-an-audit"
        ),
        pytest.param({"MCP_POLICY": "{not json"}, "MCP_POLICY", id="policy-not-json"),
        pytest.param({"MCP_POLICY": '{"default": "maybe", "rules": []}'}, "MCP_POLICY", id="policy-unknown-effect"),
        pytest.param(
            {"MCP_POLICY": '{"default": "deny", "rules": [{"effect": "allow", "groups": ["finance"]}]}'},
            "MCP_POLICY",
            id="policy-rule-naming-nothing",
        ),
        pytest.param(
            {"MCP_POLICY": '{"default": "deny", "rules": [{"effect": "allow", "tool": ["x"]}]}'},
            "MCP_POLICY",
            id="policy-misspelt-field",
        ),
    ],
)
def test_refused_configurations_name_the_setting(gateway, settings, named):
    worker = start_worker(gateway.emulator, origin_url=gateway.origin.base_url, ready_status=500, **settings)
    try:
        edge_token = gateway.mint()
        for method, path, headers in [
            ("GET", "/.well-known/oauth-authorization-server", {}),
            ("POST", "/mcp", {"authorization": f"Bearer {edge_token}"}),
        ]:
            response = gateway.http.request(method, worker.url + path, headers=headers)
            assert response.status_code == 500, response.text
            assert response.json()["error"] == "server_error"
            assert named in response.json()["error_description"]
    finally:
        worker.stop()
