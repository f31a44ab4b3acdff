"""What the Python clients share: their command line and their one-JSON-line-per-step output."""

import argparse
import json


def emit(step: str, **fields) -> None:
    print(json.dumps({"step": step, **fields}), flush=True)


def shape(token: str | None) -> dict | None:
    """What a token looks like, never what it is: a JWS compact token has exactly two dots."""
    return None if token is None else {"dots": token.count(".")}


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="the gateway's MCP URL")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--client-metadata-url", help="a Client ID Metadata Document URL as client id")
    parser.add_argument("--redirect-uri")
    parser.add_argument("--refresh-after", type=float)
    parser.add_argument("--reconnect", action="store_true", help="when the session fails, start another once")
    parser.add_argument("--deny", action="store_true")
    parser.add_argument("--denied-tool")
    return parser.parse_args()
