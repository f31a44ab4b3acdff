"""The consent page of a Client ID Metadata Document client in headless Chromium, as a person sees
it: the client's name, its client-id host and the redirect host. Saved as
tests/cimd/out/consent-cimd.png (a loopback client) and consent-cimd-elsewhere.png (a client whose
result goes to another host, with the warning)."""

import subprocess
import tempfile
from pathlib import Path

import pytest
from document_server import Answer, client_metadata
from oauth_flow import REDIRECT_URI, authorization_url, pkce_pair
from test_conformance_browser import CHROMIUM, chromium_flags, png_size

OUT = Path(__file__).resolve().parent / "out"
ELSEWHERE = "https://claude.ai/api/mcp/auth_callback"


@pytest.mark.parametrize("name, redirect_uri", [("consent-cimd", REDIRECT_URI), ("consent-cimd-elsewhere", ELSEWHERE)])
def test_the_consent_page_of_a_cimd_client_renders_for_a_person(stack, docs, name, redirect_uri):
    path = f"/screenshot/{name}.json"
    client_id = docs.url(path)
    docs.serve(path, Answer(client_metadata(client_id, [redirect_uri], client_name="Example Editor")))
    OUT.mkdir(exist_ok=True)
    screenshot = OUT / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    _, challenge = pkce_pair()
    url = authorization_url(stack, challenge, client_id=client_id, redirect_uri=redirect_uri)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run(
            [CHROMIUM, *chromium_flags(profile), f"--screenshot={screenshot}", "--window-size=900,760", url],
            check=True, capture_output=True, timeout=60,
        )
    data = screenshot.read_bytes()
    assert png_size(data) == (900, 760)
    assert len(data) > 10_000, "a blank page compresses to a few hundred bytes"
    assert docs.fetches(path) == 1
