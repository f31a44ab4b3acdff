"""A small controllable origin for the edge tests: what the real MCP origin cannot do on demand.

    fake = start_fake_origin()
    ...  # point a Worker at fake.base_url with PROXY_PATHS=FAKE_PATHS
    fake.requests()            # every request it received: method, path, query, headers (values too)
    fake.sse_sends("stream-1") # when each event of /sse?id=stream-1 was sent (time.time())
    fake.stop(); fake.restart()  # "origin down" for a while, then back on the same port

The behaviour is chosen by path; every path answers every method:

    /echo             200 JSON {method, path, query, headers: [[name, value], ...], body}, and the
                      response headers mcp-session-id and x-fake-origin (to check they come back)
                      and the hop-by-hop proxy-authenticate (to check it does not)
    /sse              text/event-stream: `n` events (default 5) `interval_ms` apart (default 400),
                      each send time logged under the stream `id`; with `open=1` the stream then
                      stays open until the client leaves (at most a minute), like the 2026-07-28
                      revision's `subscriptions/listen`
    /unauthorized     401 JSON with a Bearer invalid_token challenge (an origin refusing the token)
    /login-page       a Cloudflare Access login page, text/html, `status` 200 (default) or 403
    /login-redirect   302 to the Access login (`to`=absolute (default) or relative)
    /slow             headers only after `seconds` (default 5)
    /cut              one SSE event, then half of a second one, then the connection is dropped
    /cookies          200 JSON with a Set-Cookie for each of ORIGIN_COOKIES and GATEWAY_COOKIES
                      (an origin setting cookies, and one trying to set the gateway's own)
    /rpc              a JSON-RPC (MCP) server: answers each message of the body (a batch too),
                      ids as Python reads them (`-0` and `1e0` come back as `0` and `1.0`);
                      tools/list, resources/list, resources/templates/list and prompts/list list
                      RPC_TOOLS, RPC_RESOURCES, RPC_TEMPLATES and RPC_PROMPTS (with a nextCursor
                      and _meta; with `modern=1` also the 2026-07-28 `ttlMs` and
                      `cacheScope: "public"`), any other method echoes {method, name};
                      `format=sse` answers as an event stream with a notification event and a
                      comment before the answer, its lines ended by `line_end` (`lf`, the
                      default, `crlf` or `cr`); `corrupt=1` cuts the answer's JSON short. The
                      exact body bytes received are logged (`rpc_bodies()`)

It logs to files in its own temp folder, so tests read them without going through the Worker.
Run by `start_fake_origin` as `python -m support.fake_origin`, in its own process group.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from support.stack import TESTS_DIR, Service, Stoppable, accepts_connections, free_port

FAKE_PATHS = ("/echo", "/sse", "/unauthorized", "/login-page", "/login-redirect", "/slow", "/cut", "/cookies", "/rpc")
RPC_TOOLS = ("search", "get_weather", "delete_all", "admin_reset")
RPC_RESOURCES = ("file:///public/readme.md", "file:///reports/q3.pdf", "file:///secret/keys.txt")
RPC_TEMPLATES = ("file:///public/{name}", "file:///secret/{name}")
RPC_PROMPTS = ("summary", "incident_report")
RPC_NOTIFICATION = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}}
ORIGIN_COOKIES = ("origin_session=abc; Path=/; HttpOnly", "origin_pref=dark; Path=/")
# The gateway's own cookies, by name, or nameless (a browser sends back the bare value,
# which then reads as a gateway cookie), or with a value that reads as one.
GATEWAY_COOKIES = (
    "mcpgw_csrf=planted; Path=/",
    "__Host-mcpgw_consent_x=planted; Secure; Path=/",
    "=mcpgw_consent_x=planted; Path=/",
    "nameless-value; Path=/",
    "origin_pref=mcpgw_browser=planted; Path=/",
)
ACCESS_LOGIN_URL = "https://team.cloudflareaccess.com/cdn-cgi/access/login/mcp.example.com?kid=abc&redirect_url=%2Fmcp"
ACCESS_LOGIN_PAGE = """<!DOCTYPE html><html><head><title>Sign in ・ Cloudflare Access</title></head>
<body><form action="/cdn-cgi/access/login/mcp.example.com" method="post">
<p>Get a login code emailed to you</p><input name="email"><button>Send me a code</button></form></body></html>"""


# ---------------------------------------------------------------------------------------------
# The server (runs in the child process)
# ---------------------------------------------------------------------------------------------


def _app(log_dir: Path):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
    from starlette.routing import Route

    def log(name: str, entry: dict) -> None:
        with open(log_dir / name, "a", encoding="utf-8") as sink:
            sink.write(json.dumps(entry) + "\n")

    async def echo(request: Request):
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
                "body": body.decode("utf-8", "replace"),
            },
            headers={"mcp-session-id": "echo-session", "x-fake-origin": "echo", "proxy-authenticate": "Basic"},
        )

    async def sse(request: Request):
        n = int(request.query_params.get("n", "5"))
        interval = int(request.query_params.get("interval_ms", "400")) / 1000
        stream_id = request.query_params.get("id", "default")

        async def events():
            for index in range(n):
                if index:
                    await asyncio.sleep(interval)
                log("sse.jsonl", {"id": stream_id, "index": index, "ts": time.time()})
                yield f"id: {index}\nevent: message\ndata: {json.dumps({'index': index})}\n\n".encode()
            if request.query_params.get("open") == "1":
                await asyncio.sleep(60)  # Starlette cancels this when the client disconnects

        return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def unauthorized(request: Request):
        return JSONResponse(
            {"error": "invalid_token", "error_description": "origin refused the token"},
            status_code=401,
            headers={"www-authenticate": 'Bearer error="invalid_token", resource_metadata="https://origin.example/x"'},
        )

    async def login_page(request: Request):
        return HTMLResponse(ACCESS_LOGIN_PAGE, status_code=int(request.query_params.get("status", "200")))

    async def login_redirect(request: Request):
        location = ACCESS_LOGIN_URL
        if request.query_params.get("to") == "relative":
            location = "/cdn-cgi/access/login/mcp.example.com?kid=abc"
        return RedirectResponse(location, status_code=302)

    async def slow(request: Request):
        await asyncio.sleep(float(request.query_params.get("seconds", "5")))
        return JSONResponse({"slow": True})

    async def cut(request: Request):
        async def events():
            yield b"id: 0\nevent: message\ndata: {\"index\": 0}\n\n"
            await asyncio.sleep(0.2)
            yield b'id: 1\nevent: message\ndata: {"ind'
            await asyncio.sleep(0.2)
            # After the response started, uvicorn answers an exception by closing the
            # connection: no terminating chunk, an event cut in half.
            raise ConnectionAbortedError("stream cut on purpose")

        return StreamingResponse(events(), media_type="text/event-stream")

    async def cookies(request: Request):
        response = JSONResponse({"cookies": True})
        for cookie in (*ORIGIN_COOKIES, *GATEWAY_COOKIES):
            response.headers.append("set-cookie", cookie)
        return response

    def rpc_answer(message: dict, modern: bool) -> dict:
        method, params = message.get("method"), message.get("params") or {}
        lists = {
            "tools/list": ("tools", [{"name": n, "description": f"the {n} tool", "inputSchema": {"type": "object"}} for n in RPC_TOOLS]),
            "resources/list": ("resources", [{"uri": u, "name": u.rsplit("/", 1)[-1]} for u in RPC_RESOURCES]),
            "resources/templates/list": ("resourceTemplates", [{"uriTemplate": t, "name": t} for t in RPC_TEMPLATES]),
            "prompts/list": ("prompts", [{"name": n, "description": f"the {n} prompt"} for n in RPC_PROMPTS]),
        }
        if method in lists:
            key, entries = lists[method]
            result = {key: entries, "nextCursor": "page-2", "_meta": {"origin": "fake"}}
            if modern:
                result |= {"ttlMs": 60000, "cacheScope": "public"}
        else:
            result = {"method": method, "name": params.get("name") or params.get("uri")}
        return {"jsonrpc": "2.0", "id": message.get("id"), "result": result}

    async def rpc(request: Request):
        body = await request.body()
        log("rpc.jsonl", {"body": body.hex()})
        parsed = json.loads(body)
        batch = isinstance(parsed, list)
        query = request.query_params
        answers = [rpc_answer(m, query.get("modern") == "1") for m in (parsed if batch else [parsed]) if "id" in m]
        answer = json.dumps(answers if batch else answers[0])
        if query.get("corrupt") == "1":
            answer = answer[: len(answer) // 2]
        if query.get("format") != "sse":
            return Response(answer, media_type="application/json")
        end = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}[query.get("line_end", "lf")]
        events = [
            f"event: message{end}data: {json.dumps(RPC_NOTIFICATION)}{end}{end}",
            f": a comment the gateway must keep{end}{end}",
            f"id: 7{end}event: message{end}data: {answer}{end}{end}",
        ]

        async def stream():
            for event in events:
                yield event.encode()
                await asyncio.sleep(0.05)

        return StreamingResponse(stream(), media_type="text/event-stream")

    handlers = {
        "/rpc": rpc,
        "/echo": echo,
        "/sse": sse,
        "/unauthorized": unauthorized,
        "/login-page": login_page,
        "/login-redirect": login_redirect,
        "/slow": slow,
        "/cut": cut,
        "/cookies": cookies,
    }
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    app = Starlette(routes=[Route(path, handler, methods=methods) for path, handler in handlers.items()])

    async def logged(scope, receive, send):
        if scope["type"] == "http":
            log(
                "requests.jsonl",
                {
                    "ts": time.time(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope["query_string"].decode("latin-1"),
                    "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                },
            )
        await app(scope, receive, send)

    return logged


def _serve() -> None:
    import uvicorn

    log_dir = Path(os.environ["FAKE_ORIGIN_LOG_DIR"])
    uvicorn.run(_app(log_dir), host="127.0.0.1", port=int(os.environ["FAKE_ORIGIN_PORT"]), log_level="warning")


# ---------------------------------------------------------------------------------------------
# The handle the tests use
# ---------------------------------------------------------------------------------------------


class FakeOrigin(Stoppable):
    def __init__(self, port: int):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._service: Service | None = None

    def start(self) -> "FakeOrigin":
        """Starts (again) on the same port, with empty logs."""
        service = Service("fake-origin")
        service.start(
            [sys.executable, "-m", "support.fake_origin"],
            {
                **os.environ,
                "PYTHONPATH": str(TESTS_DIR),
                "FAKE_ORIGIN_PORT": str(self.port),
                "FAKE_ORIGIN_LOG_DIR": str(service.folder),
            },
        )
        self._service = service
        service.wait_until(lambda: accepts_connections(self.port))
        return self

    restart = start

    def _read(self, name: str) -> list[dict]:
        path = self._service.folder / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def requests(self) -> list[dict]:
        """Every request received since the last (re)start, header values included."""
        return self._read("requests.jsonl")

    def rpc_bodies(self) -> list[bytes]:
        """The exact body of every /rpc request, in order."""
        return [bytes.fromhex(entry["body"]) for entry in self._read("rpc.jsonl")]

    def sse_sends(self, stream_id: str) -> list[float]:
        """The send time of each event of the /sse stream with this `id`, in order."""
        return [e["ts"] for e in sorted(self._read("sse.jsonl"), key=lambda e: e["index"]) if e["id"] == stream_id]

    def log(self) -> str:
        return self._service.stderr_path.read_text(errors="replace")


def start_fake_origin(port: int | None = None) -> FakeOrigin:
    return FakeOrigin(port or free_port()).start()


if __name__ == "__main__":
    _serve()
