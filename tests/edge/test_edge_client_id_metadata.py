"""Client ID Metadata Documents at the Worker, for what needs no HTTPS host of its own (the
document-serving tests live with the HTTPS test host): the metadata flag and the `CIMD` switch,
ordinary client ids unchanged, URL client ids the Worker refuses to fetch (a page naming the
problem, no redirect, no connection made), the trust policy, and a failed fetch remembered."""

import socket
import threading
import time
from urllib.parse import urlencode

import pytest
from support.worker import start_worker

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
LOOPBACK_REDIRECT = "http://127.0.0.1:5555/callback"


class ConnectionCounter:
    """A loopback listener that only counts the connections made to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self):
        self.sock.close()


def authorize(edge, client_id: str, redirect_uri: str = LOOPBACK_REDIRECT):
    query = urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "s",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256",
    })
    return edge.http.get(f"{edge.worker.url}/authorize?{query}", follow_redirects=False)


def assert_page(response, sentence: str):
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert sentence in response.text.replace("&#39;", "'"), response.text
    assert "invalid_client" in response.text or sentence == "unknown client_id"


def test_metadata_advertises_documents_beside_none_and_registration(gateway):
    metadata = gateway.http.get(gateway.worker.url + "/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["registration_endpoint"] == gateway.worker.url + "/register"


def test_an_ordinary_client_id_is_unchanged(gateway):
    page = authorize(gateway, gateway.emulator.client_id)
    assert page.status_code == 200 and 'id="redirect-target"' in page.text
    assert 'id="client-name"' not in page.text
    assert_page(authorize(gateway, "some-other-client"), "unknown client_id")


@pytest.mark.parametrize(
    "client_id, sentence",
    [
        pytest.param("https://127.0.0.1:{port}/client.json", "must name a host, not an IP address", id="ipv4"),
        pytest.param("https://127.1:{port}/client.json", "must name a host, not an IP address", id="ipv4-short"),
        pytest.param("https://[::1]:{port}/client.json", "must name a host, not an IP address", id="ipv6"),
        pytest.param("https://localhost:{port}/client.json", "must not name localhost", id="localhost"),
        pytest.param("https://app.localhost:{port}/client.json", "must not name localhost", id="sub-localhost"),
        pytest.param("https://intranet:{port}/client.json", "must name a public host, not a single-label name", id="single-label"),
        pytest.param("http://client.example.test:{port}/client.json", "must use https", id="http"),
        pytest.param("https://client.example.test:{port}/client.json#x", "must not have a fragment", id="fragment"),
        pytest.param("https://u:p@client.example.test:{port}/c.json", "must not contain a user name or password", id="userinfo"),
        pytest.param("https://client.example.test:{port}/", "must have a path", id="no-path"),
        pytest.param("https://client.example.test:{port}/a/../c.json", "must not contain . or .. path segments", id="dot-segments"),
    ],
)
def test_url_client_ids_the_worker_will_not_fetch_are_a_page_and_no_connection(gateway, client_id, sentence):
    listener = ConnectionCounter()
    try:
        response = authorize(gateway, client_id.format(port=listener.port))
        assert_page(response, "the client_id URL " + sentence)
        assert listener.count == 0
    finally:
        listener.close()


def test_the_trust_policy_refuses_other_hosts_and_a_bad_one_is_a_500(start_gateway):
    edge = start_gateway(CIMD_ALLOWED_HOSTS='["*.trusted.example.test"]')
    assert_page(
        authorize(edge, "https://client.example.test/client.json"),
        "this server does not accept clients whose client_id is on that host",
    )
    assert "client_metadata_failed" not in edge.worker.log(), "nothing was fetched"


def test_with_documents_off_a_url_client_id_is_unknown_and_not_advertised(start_gateway):
    edge = start_gateway(CIMD="off")
    metadata = edge.http.get(edge.worker.url + "/.well-known/oauth-authorization-server").json()
    assert "client_id_metadata_document_supported" not in metadata
    assert_page(authorize(edge, "https://client.example.test/client.json"), "unknown client_id")
    assert authorize(edge, edge.emulator.client_id).status_code == 200


def test_a_failed_fetch_is_a_page_and_is_remembered(start_gateway):
    # `.invalid` never resolves (RFC 6761): the fetch fails without leaving the machine.
    edge = start_gateway()
    first = authorize(edge, "https://client.invalid/client.json")
    assert_page(first, "the client's metadata document could not be used")
    second = authorize(edge, "https://client.invalid/client.json")
    assert_page(second, "the client's metadata document could not be used")
    # The Worker's output reaches its log file a little after the answers.
    deadline = time.monotonic() + 10
    while sum(line["route"] == "authorize" for line in edge.worker.request_log()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    failures = [line for line in edge.worker.log().splitlines() if "client_metadata_failed" in line]
    assert len(failures) == 1, edge.worker.log()[-3000:]
    assert '"host":"client.invalid"' in failures[0]
