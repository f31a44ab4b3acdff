"""A differential origin on the Python SDK (`mcp`, FastMCP, streamable HTTP, stateless), with
the surface of surface.mjs and the same log: one JSON line per HTTP request as it arrives
(before the SDK reads it), per JSON-RPC request the SDK dispatched to a handler, and per thing
a handler ran or read.

    python python_origin.py --port PORT --log FILE [--json]
"""

import argparse
import json

import uvicorn
from mcp.server.fastmcp import FastMCP
from mcp.types import Completion, PromptReference, ResourceTemplateReference

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--json", action="store_true", help="JSON answers instead of SSE")
args = parser.parse_args()


def log(entry: dict) -> None:
    with open(args.log, "a", encoding="utf-8") as sink:
        sink.write(json.dumps(entry) + "\n")


mcp = FastMCP("differential-python", stateless_http=True, json_response=args.json)


@mcp.tool()
def search(q: str = "") -> str:
    log({"event": "tool", "name": "search"})
    return "search ran"


@mcp.tool()
def delete_all(q: str = "") -> str:
    log({"event": "tool", "name": "delete_all"})
    return "delete_all ran"


def fixed_resource(uri: str):
    @mcp.resource(uri, name=uri.rsplit("/", 1)[-1], mime_type="text/plain")
    def read() -> str:
        log({"event": "resource", "uri": uri})
        return f"contents of {uri}"


def template_resource(folder: str):
    template = f"file:///{folder}/{{name}}.pdf"

    @mcp.resource(template, name=folder, mime_type="text/plain")
    def read(name: str) -> str:
        uri = template.replace("{name}", name)
        log({"event": "resource", "uri": uri, "template": template})
        return f"contents of {uri}"


def prompt(name: str):
    @mcp.prompt(name=name, description=f"the {name} prompt")
    def get(topic: str) -> str:
        log({"event": "prompt", "name": name})
        return f"{name} of {topic}"


for uri in ("file:///reports/q3.pdf", "file:///finance/secret.pdf"):
    fixed_resource(uri)
for folder in ("reports", "finance"):
    template_resource(folder)
for name in ("summary", "payroll"):
    prompt(name)


@mcp.completion()
async def complete(ref, argument, context):
    if isinstance(ref, PromptReference):
        log({"event": "complete", "prompt": ref.name})
    elif isinstance(ref, ResourceTemplateReference):
        log({"event": "complete", "template": ref.uri})
    return Completion(values=[v for v in ("q3", "q4") if v.startswith(argument.value)])


@mcp._mcp_server.subscribe_resource()
async def subscribe(uri) -> None:
    log({"event": "subscribe", "uri": str(uri)})


def log_dispatch(handlers: dict) -> None:
    """Every request the SDK dispatched to a handler, as the SDK parsed it (FastMCP also calls
    the tools/list handler itself, with no request, to validate a call: not a dispatch)."""
    for kind, handler in list(handlers.items()):

        async def logged(request, handler=handler):
            if request is not None:
                log({"event": "rpc", "method": request.method})
            return await handler(request)

        handlers[kind] = logged


log_dispatch(mcp._mcp_server.request_handlers)


class LogHttp:
    """One line per HTTP request as it arrives, before the SDK sees it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            probe = headers.get(b"x-probe")
            log({"event": "http", "method": scope["method"], "path": scope["path"], "probe": probe and probe.decode("latin-1")})
        await self.app(scope, receive, send)


if __name__ == "__main__":
    uvicorn.run(LogHttp(mcp.streamable_http_app()), host="127.0.0.1", port=args.port, log_level="warning")
