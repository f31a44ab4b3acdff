//! Which endpoint a request is for. The edge dispatches on this; nothing else
//! matches paths.

use crate::oauth::metadata::{
    AUTHORIZATION_SERVER_PATH, AUTHORIZE_PATH, CALLBACK_PATH, OPENID_CONFIGURATION_PATH, PROTECTED_RESOURCE_PATH,
    REGISTER_PATH, TOKEN_PATH,
};
use crate::primitives::error::{Error, Surface};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// RFC 9728, at the root and path-inserted for the MCP path.
    ProtectedResourceMetadata,
    /// RFC 8414 and OpenID Connect Discovery (one document).
    AuthorizationServerMetadata,
    Register,
    /// `GET /authorize`: the client's authorization request.
    Authorize,
    /// `POST /authorize`: the consent form's answer.
    ConsentDecision,
    Callback,
    Token,
    /// The protected MCP endpoint (and any further proxied paths).
    Mcp,
    /// A CORS preflight for an endpoint browser-based clients call.
    Preflight {
        allow: &'static str,
    },
}

impl Route {
    /// Whether answers carry CORS headers (browser-based clients call these directly).
    pub fn cors(self) -> bool {
        !matches!(self, Self::Authorize | Self::ConsentDecision | Self::Callback)
    }

    /// How errors are answered here: a page where a person's browser is on the
    /// authorization leg (never a redirect to an unchecked URI), JSON elsewhere. The MCP
    /// endpoint's RFC 6750 challenge is [`Surface::Resource`], built where the site is known.
    pub fn error_surface(self) -> Surface<'static> {
        match self {
            Self::Authorize | Self::ConsentDecision | Self::Callback => Surface::Page,
            _ => Surface::Json,
        }
    }

    /// The media type of the body the endpoint reads, if it reads one. The edge checks
    /// it before reading a byte, so a wrong one costs nothing.
    pub fn body_media_type(self) -> Option<&'static str> {
        match self {
            Self::Register => Some("application/json"),
            Self::Token | Self::ConsentDecision => Some(crate::oauth::token::FORM),
            _ => None,
        }
    }

    /// A short stable name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::ProtectedResourceMetadata => "protected_resource_metadata",
            Self::AuthorizationServerMetadata => "authorization_server_metadata",
            Self::Register => "register",
            Self::Authorize => "authorize",
            Self::ConsentDecision => "consent_decision",
            Self::Callback => "callback",
            Self::Token => "token",
            Self::Mcp => "mcp",
            Self::Preflight { .. } => "preflight",
        }
    }
}

const READ: &str = "GET, HEAD, OPTIONS";
const SUBMIT: &str = "POST, OPTIONS";
const MCP: &str = "GET, POST, DELETE, OPTIONS";

/// `proxied_paths` are the MCP path and any further paths passed to the origin.
pub fn route(method: &str, path: &str, mcp_path: &str, proxied_paths: &[String]) -> Result<Route, Error> {
    let protected_resource = path == PROTECTED_RESOURCE_PATH
        || path.strip_prefix(PROTECTED_RESOURCE_PATH).is_some_and(|rest| rest == mcp_path);
    let (endpoint, allow) = match path {
        _ if protected_resource => (Route::ProtectedResourceMetadata, READ),
        AUTHORIZATION_SERVER_PATH | OPENID_CONFIGURATION_PATH => (Route::AuthorizationServerMetadata, READ),
        REGISTER_PATH => (Route::Register, SUBMIT),
        TOKEN_PATH => (Route::Token, SUBMIT),
        AUTHORIZE_PATH => (Route::Authorize, "GET, POST"),
        CALLBACK_PATH => (Route::Callback, "GET"),
        _ if path == mcp_path || proxied_paths.iter().any(|p| p == path) => (Route::Mcp, MCP),
        _ => return Err(Error::NotFound),
    };
    match (endpoint, method) {
        (Route::Authorize | Route::Callback, "OPTIONS") => Err(Error::MethodNotAllowed { allow }),
        (_, "OPTIONS") => Ok(Route::Preflight { allow }),
        (Route::ProtectedResourceMetadata | Route::AuthorizationServerMetadata | Route::Callback, "GET" | "HEAD") => {
            Ok(endpoint)
        }
        (Route::Authorize, "GET") => Ok(Route::Authorize),
        (Route::Authorize, "POST") => Ok(Route::ConsentDecision),
        (Route::Register | Route::Token, "POST") => Ok(endpoint),
        // Every method reaches the MCP endpoint's authentication first, so an
        // unauthenticated client always learns where to log in (never a bare 405).
        (Route::Mcp, _) => Ok(Route::Mcp),
        _ => Err(Error::MethodNotAllowed { allow }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let extra = ["/sse".to_owned()];
        let r = |m, p| route(m, p, "/mcp", &extra);
        assert_eq!(r("GET", "/.well-known/oauth-protected-resource"), Ok(Route::ProtectedResourceMetadata));
        assert_eq!(r("GET", "/.well-known/oauth-protected-resource/mcp"), Ok(Route::ProtectedResourceMetadata));
        assert_eq!(r("GET", "/.well-known/oauth-protected-resource/other"), Err(Error::NotFound));
        assert_eq!(r("GET", "/.well-known/oauth-authorization-server"), Ok(Route::AuthorizationServerMetadata));
        assert_eq!(r("GET", "/.well-known/openid-configuration"), Ok(Route::AuthorizationServerMetadata));
        assert_eq!(r("POST", "/register"), Ok(Route::Register));
        assert_eq!(r("GET", "/register"), Err(Error::MethodNotAllowed { allow: SUBMIT }));
        assert_eq!(r("GET", "/authorize"), Ok(Route::Authorize));
        assert_eq!(r("POST", "/authorize"), Ok(Route::ConsentDecision));
        assert_eq!(r("GET", "/callback"), Ok(Route::Callback));
        assert_eq!(r("POST", "/token"), Ok(Route::Token));
        assert_eq!(r("PUT", "/token"), Err(Error::MethodNotAllowed { allow: SUBMIT }));
        for method in ["GET", "POST", "DELETE", "PUT"] {
            assert_eq!(r(method, "/mcp"), Ok(Route::Mcp));
        }
        assert_eq!(r("OPTIONS", "/mcp"), Ok(Route::Preflight { allow: MCP }));
        assert_eq!(r("OPTIONS", "/token"), Ok(Route::Preflight { allow: SUBMIT }));
        assert!(r("OPTIONS", "/authorize").is_err());
        assert_eq!(r("GET", "/mcp/"), Err(Error::NotFound));
        assert_eq!(r("GET", "/"), Err(Error::NotFound));
        assert_eq!(r("GET", "/sse"), Ok(Route::Mcp));
        assert!(!Route::Authorize.cors() && Route::Token.cors());
        assert!(matches!(Route::ConsentDecision.error_surface(), Surface::Page));
        assert!(matches!(Route::Token.error_surface(), Surface::Json));
        assert_eq!(Route::Token.body_media_type(), Some("application/x-www-form-urlencoded"));
        assert_eq!(Route::ConsentDecision.body_media_type(), Some("application/x-www-form-urlencoded"));
        assert_eq!(Route::Register.body_media_type(), Some("application/json"));
        assert_eq!(Route::Mcp.body_media_type(), None, "the proxy streams MCP bodies unread");
    }
}
