"""The official MCP conformance suite's authorization-server scenarios, run against the Worker.

`@modelcontextprotocol/conformance` 0.2.0-alpha.7 and later have `conformance authorization
--url ISSUER --client-id ID`: `authorization-server-metadata-endpoint` (RFC 8414 document, issuer
echo, S256) and `authorization-code-grant` (a full code flow with PKCE, state, iss and the token
response's headers). The latter prints the authorization URL and waits for a browser to reach
its callback listener on 127.0.0.1:<port>; tests/support/browser.py plays that browser. The
listener binds 127.0.0.1 only (read in its source), so no network namespace is needed — and one
would cut the suite off from the Worker on this host's loopback.

The package is a devDependency pinned by the lead; MCP_CONFORMANCE_BIN overrides where it is."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from oauth_flow import http
from support.browser import play_browser
from support.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node_modules" / ".bin" / "node"
CONFORMANCE = Path(os.environ.get("MCP_CONFORMANCE_BIN", ROOT / "node_modules" / ".bin" / "conformance"))

def test_authorization_server_scenarios(any_stack, tmp_path):
    stack = any_stack
    port = free_port()
    command = [
        str(NODE), str(CONFORMANCE), "authorization",
        "--url", stack.worker.url,  # the issuer, exactly as published
        "--client-id", stack.emulator.client_id,
        "--resource", stack.worker.mcp_url,
        "--port", str(port),
        "--output-dir", str(tmp_path),
    ]
    suite = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    output = []
    try:
        for line in suite.stdout:
            output.append(line)
            if line.startswith(stack.worker.url + "/authorize?"):
                callback = play_browser(line.strip(), f"http://127.0.0.1:{port}/callback?")
                http.get(callback)  # deliver the browser to the suite's listener
                break
        output.append(suite.communicate(timeout=60)[0])
    finally:
        suite.kill()
    transcript = "".join(output)
    checks = [check for path in tmp_path.glob("*/checks.json") for check in json.loads(path.read_text())]
    verdicts = {check["id"]: check["status"] for check in checks}
    assert verdicts.keys() >= {"authorization-server-metadata", "authorization-code-grant"}, transcript
    # Every check passes, Client ID Metadata Documents (SEP-991) advertised included.
    failing = {check["id"]: check.get("errorMessage") for check in checks if check["status"] != "SUCCESS"}
    assert not failing, transcript
    assert suite.returncode == 0, transcript
