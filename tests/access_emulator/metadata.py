"""The OIDC discovery document, as Access publishes it or, quirk by quirk, in standard form."""

from .config import Config

CLAIMS = ["aud", "email", "exp", "groups", "iat", "iss", "nbf", "nonce", "sub"]
SCOPES = ["openid", "email", "profile", "groups", "offline_access"]


def discovery_document(config: Config, issuer: str) -> dict:
    auth_methods = ["client_secret_basic", "client_secret_post"]
    if config.pkce_without_secret:
        auth_methods.append("none")
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorization",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": SCOPES,
        "claims_supported": CLAIMS,
        "grant_types_supported": grant_types(config),
        (
            "token_endpoint_auth_methods" if config.quirk_auth_methods_key else "token_endpoint_auth_methods_supported"
        ): auth_methods,
    }
    if not config.quirk_no_code_challenge_methods:
        document["code_challenge_methods_supported"] = ["S256"]
    return document


def grant_types(config) -> list[str]:
    """Access's own names (quirk) or the standard ones; refresh only while refresh tokens are on."""
    if config.quirk_grant_types:
        return ["refresh_tokens", "authorization_code_with_pkce"] if config.refresh_tokens else ["authorization_code_with_pkce"]
    return ["authorization_code", "refresh_token"] if config.refresh_tokens else ["authorization_code"]
