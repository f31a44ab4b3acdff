"""`python -m access_emulator [flags]`: bind 127.0.0.1, print one JSON line {"base_url", "issuer"} on
stdout (its only output there; logs go to stderr), serve until SIGTERM."""

import json
import socket

import uvicorn

from .app import create_app
from .config import load
from .state import EmulatorState


def main() -> None:
    config, port = load()
    # Bind before announcing, so port 0 yields a real port and the ready line is never a lie.
    # proto must be IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then,
    # and without it every response body waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    state = EmulatorState(config, sock.getsockname()[1])
    print(json.dumps({"base_url": state.base_url, "issuer": state.issuer}), flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(state), log_level="warning", access_log=False))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
