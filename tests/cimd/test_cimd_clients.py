"""The official SDK clients log in through the gateway with Client ID Metadata Documents.

Each client of tests/e2e/clients (the TypeScript SDK 1.x and 2.x with `clientMetadataUrl`, the
Python SDK with `client_metadata_url`) is given the URL of a document served over HTTPS by
document_server.py. Seeing `client_id_metadata_document_supported` in the gateway's metadata, it
uses that URL as its client id instead of registering: the document server counts the Worker's
fetch, /register is never called, and the client logs in, calls `ping`, waits for its access
token to expire, refreshes (with the same client id) and calls `ping` again.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from document_server import Answer, client_metadata

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "e2e" / "clients"
ROOT = CLIENTS_DIR.parents[2]
NODE = str(ROOT / "node_modules" / ".bin" / "node")
CLIENTS = {
    "ts": [NODE, str(CLIENTS_DIR / "ts_client.mjs")],
    "ts2": [NODE, str(CLIENTS_DIR / "ts_client.mjs"), "--sdk", "2"],
    "py": [sys.executable, str(CLIENTS_DIR / "py_client.py")],
}
CLIENT_TIMEOUT = 120
ACCESS_TOKEN_TTL = 3
REFRESH_AFTER = 4
# The clients' loopback redirect, any port (RFC 8252 §7.3), as Claude Code's document lists it.
REDIRECT_URIS = ["http://localhost/callback"]


@pytest.mark.parametrize("client", CLIENTS)
def test_an_sdk_client_logs_in_with_its_metadata_document(client, stack, docs):
    path = f"/sdk/{client}/client-metadata.json"
    client_id = docs.url(path)
    docs.serve(path, Answer(client_metadata(client_id, REDIRECT_URIS, client_name=f"SDK client {client}")))
    stack.emulator.configure(access_token_ttl=ACCESS_TOKEN_TTL)
    argv = [*CLIENTS[client], "--url", stack.worker.mcp_url, "--client-metadata-url", client_id]
    argv += ["--refresh-after", str(REFRESH_AFTER)]

    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)

    steps = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    shown = f"{client} exited {done.returncode}\n{done.stdout}\n--- stderr\n{done.stderr[-3000:]}"
    assert done.returncode == 0 and steps[-1] == {"step": "result", "ok": True, "outcome": "passed"}, shown
    requests = [step for step in steps if step["step"] == "http"]
    assert not [step for step in requests if step["url"].endswith("/register")], "no registration\n" + shown
    grants = [(step["grant_type"], step["status"], step["client_auth"]) for step in requests if step["url"].endswith("/token")]
    # One code exchange, then refreshes: at least the one after REFRESH_AFTER, and another if a
    # busy machine took longer than the token's few seconds to reach the first call.
    assert grants[0] == ("authorization_code", 200, "none"), shown
    assert len(grants) >= 2 and set(grants[1:]) == {("refresh_token", 200, "none")}, shown
    assert [step["text"] for step in steps if step["step"] == "tools/call"] == ["pong: e2e"] * 2, shown
    assert docs.fetches(path) == 1, "the Worker fetched the document once (then it was cached)"
    assert stack.emulator.stats()["last_token_request"]["form"]["grant_type"] == "refresh_token"
