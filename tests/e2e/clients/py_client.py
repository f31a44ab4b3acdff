"""A real MCP client, the official Python SDK (`mcp` 1.30.0), logging in through the gateway.

    python py_client.py --url http://127.0.0.1:8787/mcp
        [--client-id ID [--client-secret SECRET]]   # pre-registered: no Dynamic Client Registration
        [--client-metadata-url URL]                 # a Client ID Metadata Document URL as client id
                                                    # (used when the server advertises them)
        [--redirect-uri URI]                        # default http://localhost:<random port>/callback
        [--refresh-after SECONDS]                   # call ping again after the token expired
        [--reconnect]                               # when the session fails, start another (as an
                                                    # app does) with the tokens the client holds
        [--deny]                                    # refuse on the consent page; expect access_denied
        [--denied-tool NAME]                        # after ping, call NAME (the gateway's policy
                                                    # refuses it), then ping again in the same session

`OAuthClientProvider` with in-memory storage does discovery, registration, PKCE and the token
exchange; its redirect and callback handlers play the person with a browser
(tests/support/browser.py). Then `initialize`, `tools/list` and `tools/call ping`.

Prints one JSON object per step on stdout (`{"step": ...}`), never a token, code or secret; the
tokens the client ends up holding are described by their shape only (the `tokens` step).
Exit status: 0 every check passed (with --deny: the denial came back as access_denied); 1 anything else.
"""

import random
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
from pydantic import AnyHttpUrl

from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.shared.exceptions import McpError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from client_steps import arguments, emit, shape  # noqa: E402
from support.browser import play_browser  # noqa: E402

CLIENT = "python-sdk"
RUN_TIMEOUT = 90


def describe(exc: BaseException) -> str:
    """The innermost errors of an exception (task groups wrap them)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


class MemoryStorage(TokenStorage):
    def __init__(self, client_info: OAuthClientInformationFull | None):
        self.tokens: OAuthToken | None = None
        self.client_info = client_info

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def trace_response(response: httpx.Response) -> None:
    """Emits one `http` step per request the SDK makes: URL without query, status, challenge;
    for token requests the grant_type and client authentication method, for failed token or
    registration requests the OAuth error code and description (never a credential)."""
    request = response.request
    fields = {"method": request.method, "url": str(request.url.copy_with(query=None)), "status": response.status_code}
    challenge = response.headers.get("www-authenticate")
    if challenge:
        fields["www_authenticate"] = challenge
    if request.url.path.endswith("/token"):
        form = parse_qs(request.content.decode())
        fields["grant_type"] = form.get("grant_type", [None])[0]
        fields["client_auth"] = (
            "client_secret_basic"
            if request.headers.get("authorization", "").lower().startswith("basic ")
            else "client_secret_post" if "client_secret" in form else "none"
        )
    if response.status_code >= 400 and request.url.path.endswith(("/token", "/register")):
        await response.aread()
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        fields["oauth_error"] = answer.get("error")
        fields["oauth_error_description"] = answer.get("error_description")
    emit("http", **fields)


class Browser:
    """The provider's redirect and callback handlers: a person who consents (or refuses) in a
    browser; the URL the browser ends at is checked for state and `iss` (RFC 9207)."""

    def __init__(self, redirect_uri: str, approve: bool, issuer):
        self.redirect_uri = redirect_uri
        self.approve = approve
        self.issuer = issuer  # () -> the discovered authorization server's issuer
        self.authorization_url: str | None = None
        self.denied: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_url = authorization_url

    async def callback_handler(self) -> tuple[str, str | None]:
        landed = await anyio.to_thread.run_sync(
            lambda: play_browser(self.authorization_url, self.redirect_uri, approve=self.approve)
        )
        sent = parse_qs(urlsplit(self.authorization_url).query)
        answer = {name: values[0] for name, values in parse_qs(urlsplit(landed).query).items()}
        checks = {
            "state_ok": answer.get("state") == sent["state"][0],
            "iss_ok": "iss" in answer and AnyHttpUrl(answer["iss"]) == self.issuer(),
        }
        emit(
            "authorization",
            consent="approve" if self.approve else "deny",
            resource=sent.get("resource", [None])[0],
            error=answer.get("error"),
            code=bool(answer.get("code")),
            iss=answer.get("iss"),
            **checks,
        )
        if not all(checks.values()):
            raise RuntimeError(f"authorization response failed checks: {checks}")
        if "error" in answer:
            self.denied = answer["error"]
            raise RuntimeError(f"authorization failed: {answer['error']}")
        return answer["code"], answer["state"]


async def mcp_session(url: str, http: httpx.AsyncClient, refresh_after: float | None, denied_tool: str | None) -> bool:
    """initialize, tools/list, tools/call ping (again after `refresh_after` seconds, if given), and
    with `denied_tool` a refused call followed by ping in the same session."""
    async with streamable_http_client(url, http_client=http) as (read, write, _):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            emit("initialize", ok=True, url=url, server=init.serverInfo.name, protocol=init.protocolVersion)
            tools = [tool.name for tool in (await session.list_tools()).tools]
            emit("tools/list", ok="ping" in tools, tools=tools)
            ok = "ping" in tools and await call_ping(session)
            if ok and refresh_after is not None:
                emit("wait", seconds=refresh_after)
                await anyio.sleep(refresh_after)
                ok = await call_ping(session)
            if ok and denied_tool is not None:
                ok = await call_denied(session, denied_tool) and await call_ping(session)
            return ok


async def call_ping(session: ClientSession) -> bool:
    result = await session.call_tool("ping", {"message": "e2e"})
    text = result.content[0].text if result.content and result.content[0].type == "text" else None
    ok = not result.isError and text == "pong: e2e"
    emit("tools/call", ok=ok, tool="ping", text=text)
    return ok


async def call_denied(session: ClientSession, name: str) -> bool:
    """Calls a tool the gateway's policy refuses; emits what the SDK surfaced (never the arguments)."""
    try:
        result = await session.call_tool(name, {"message": "e2e"})
    except McpError as error:
        emit("denied", ok=True, tool=name, surfaced="error", error_class=type(error).__name__, code=error.error.code, message=error.error.message)
        return True
    emit("denied", ok=False, tool=name, surfaced="result", is_error=result.isError)
    return False


def pre_registered(args, redirect_uri: str) -> OAuthClientInformationFull | None:
    if not args.client_id:
        return None
    return OAuthClientInformationFull(
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=[redirect_uri],
        token_endpoint_auth_method="client_secret_post" if args.client_secret else "none",
    )


async def run(args) -> int:
    redirect_uri = args.redirect_uri or f"http://localhost:{random.randint(20000, 60000)}/callback"
    storage = MemoryStorage(pre_registered(args, redirect_uri))
    mode = "pre-registered" if args.client_id else "cimd" if args.client_metadata_url else "dcr"
    emit("start", client=CLIENT, url=args.url, mode=mode, redirect_uri=redirect_uri)
    browser = Browser(redirect_uri, not args.deny, issuer=lambda: provider.context.oauth_metadata.issuer)
    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-access-gateway e2e (python sdk)",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        client_metadata_url=args.client_metadata_url,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )

    error = None
    try:
        with anyio.fail_after(RUN_TIMEOUT):
            async with create_mcp_http_client(auth=provider) as http:
                http.event_hooks = {"response": [trace_response]}
                try:
                    ok = await mcp_session(args.url, http, args.refresh_after, args.denied_tool)
                except Exception as exc:
                    if not args.reconnect:
                        raise
                    emit("reconnect", error=describe(exc))
                    ok = await mcp_session(args.url, http, None, args.denied_tool)
    except Exception as exc:  # any failure is reported as a step, then judged below
        ok, error = False, describe(exc)
    if storage.tokens:
        emit("tokens", access_token=shape(storage.tokens.access_token), refresh_token=shape(storage.tokens.refresh_token))

    if args.deny:
        denied = browser.denied == "access_denied" and storage.tokens is None
        emit("result", ok=denied, outcome="denied" if denied else "failed", error=error)
        return 0 if denied else 1
    if ok:
        emit("result", ok=True, outcome="passed")
        return 0
    emit("result", ok=False, outcome="failed", error=error)
    return 1


def main() -> int:
    args = arguments(__doc__.split("\n\n")[0])
    return anyio.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
