# The MCP origin from the seed bug report (seeds/000_7165c9b24cb2b431.txt), logic unchanged.
# Changes, each marked "test hook": configurable Access base URL and port, and the request log.
from mcp.server.fastmcp import FastMCP
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from jose import jwt
from jose.exceptions import JWTError
import httpx, time, os
from request_log import install_request_log  # test hook: request log, see request_log.py

class CFTokenVerifier(TokenVerifier):
    # JWKS-based RS256 verification, issuer check, email allowlist
    # audience check disabled (Cloudflare aud = redirect_uri, non-standard)
    def __init__(self, team_domain, app_id, allowed_email):
        # test hook: CF_ACCESS_BASE_URL points the issuer at the Access emulator (http on loopback)
        self._issuer = f"{os.environ.get('CF_ACCESS_BASE_URL', f'https://{team_domain}')}/cdn-cgi/access/sso/oidc/{app_id}"
        self._jwks_url = f"{self._issuer}/jwks"
        self._allowed_email = allowed_email
        self._jwks = None; self._fetched = 0

    async def _get_jwks(self):
        if not self._jwks or time.time() - self._fetched > 3600:
            async with httpx.AsyncClient(timeout=10) as c:
                r = await c.get(self._jwks_url); r.raise_for_status()
                self._jwks = r.json(); self._fetched = time.time()
        return self._jwks

    async def verify_token(self, token):
        try:
            jwks = await self._get_jwks()
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((k for k in jwks["keys"] if k["kid"] == kid), None)
            if not key: return None
            claims = jwt.decode(token, key, algorithms=["RS256"],
                               issuer=self._issuer,
                               options={"verify_aud": False})
            if claims.get("email") != self._allowed_email: return None
            return AccessToken(token=token, client_id=claims.get("aud"),
                               scopes=["openid"], expires_at=claims.get("exp"))
        except (JWTError, Exception):
            return None

verifier = CFTokenVerifier(os.environ["CF_TEAM_DOMAIN"],
                           os.environ["CF_OIDC_APP_ID"],
                           os.environ["MCP_ALLOWED_EMAIL"])

mcp = FastMCP(
    "minimal-mcp",
    host="127.0.0.1", port=int(os.environ.get("ORIGIN_PORT", "8000")),  # test hook: port from ORIGIN_PORT
    token_verifier=verifier,
    auth=AuthSettings(
        issuer_url=AnyHttpUrl(verifier._issuer),
        resource_server_url=AnyHttpUrl(f"https://{os.environ['MCP_PUBLIC_HOST']}/mcp"),
        required_scopes=["openid"],
    ),
)

@mcp.tool()
def ping(message: str = "hello") -> str:
    return f"pong: {message}"

install_request_log(mcp)  # test hook: log each request (never the token) to ORIGIN_REQUEST_LOG or stderr

if __name__ == "__main__":
    mcp.run(transport="streamable-http")
