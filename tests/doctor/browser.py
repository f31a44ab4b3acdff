"""A headless stand-in for the person's browser, which doctor runs as its `--browser-command`:

    python tests/doctor/browser.py <authorization URL>

It plays the browser through consent and the (emulated) Access login the way the e2e tests do
(support/browser.py) and then opens the loopback callback doctor listens on, as a browser would.
"""

import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.browser import play_browser  # noqa: E402


def main(url: str) -> None:
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    httpx.get(play_browser(url, redirect_uri), timeout=15)


if __name__ == "__main__":
    main(sys.argv[1])
