//! What the gateway publishes about itself, derived from one [`Capabilities`] value
//! that the endpoints also enforce: RFC 9728 protected resource metadata, RFC 8414
//! authorization server metadata, and the same superset as OpenID Connect Discovery; and
//! the gateway's own URLs, the MCP server's ([`Resource`]) among them.

use crate::access::upstream::UpstreamMetadata;
use crate::config::Config;
use crate::oauth::capabilities::{Capabilities, ClientAuthMethod, GrantType, PkceMethod, ResponseType};
use crate::primitives::error::{Error, ErrorCode};
use crate::primitives::strict_json::checked_string;
use serde::Serialize;

pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource";
pub const AUTHORIZATION_SERVER_PATH: &str = "/.well-known/oauth-authorization-server";
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const AUTHORIZE_PATH: &str = "/authorize";
pub const CALLBACK_PATH: &str = "/callback";
pub const TOKEN_PATH: &str = "/token";
pub const REGISTER_PATH: &str = "/register";

/// The gateway's own URLs on the hostname it serves. The issuer has no path, so
/// every client derives the same metadata URL from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `scheme://host[:port]`, byte-identical everywhere it is published.
    pub issuer: String,
    mcp_path: String,
}

impl Site {
    /// `request_origin` is used when no `PUBLIC_ORIGIN` is configured.
    pub fn new(config: &Config, request_origin: &str) -> Self {
        let issuer = config.public_origin.as_deref().unwrap_or(request_origin).to_owned();
        Self { issuer, mcp_path: config.mcp_path.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The canonical MCP server URL (RFC 8707 resource, RFC 9728 `resource`).
    pub fn resource(&self) -> Resource {
        Resource(self.url(&self.mcp_path))
    }

    /// The `resource` a client's request names (RFC 8707 §2), if it names one: this MCP
    /// server's, exactly as published, or `invalid_target`.
    pub fn requested_resource(&self, requested: Option<&str>) -> Result<Option<Resource>, Error> {
        let Some(requested) = requested else { return Ok(None) };
        let resource = self.resource();
        if resource != requested {
            return Err(Error::oauth(ErrorCode::InvalidTarget, "resource is not this MCP server"));
        }
        Ok(Some(resource))
    }

    /// Where the resource metadata for the MCP endpoint lives (path-inserted, RFC 9728 §3.1).
    pub fn resource_metadata_url(&self) -> String {
        self.url(&format!("{PROTECTED_RESOURCE_PATH}{}", self.mcp_path))
    }

    /// The one redirect URI registered at Access.
    pub fn callback_url(&self) -> String {
        self.url(CALLBACK_PATH)
    }
}

/// An RFC 8707 resource indicator: this MCP server's URL ([`Site::resource`]), compared as
/// written (a trailing slash is another resource). Read back from a sealed payload, it must be
/// an absolute URL without a fragment (RFC 8707 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Resource(String);

checked_string!(Resource, |resource| !resource.contains('#') && url::Url::parse(resource).is_ok());

/// Scopes only the authorization server acts on. The 2026-07-28 MCP revision keeps
/// `offline_access` out of what the resource asks for: a client wanting refresh tokens
/// finds it in the authorization server metadata, and Access may still be asked for it.
const AUTHORIZATION_SERVER_ONLY: [&str; 1] = ["offline_access"];

/// The scopes the resource names in its metadata and challenges.
pub fn resource_scopes(scopes: &[String]) -> Vec<String> {
    scopes.iter().filter(|s| !AUTHORIZATION_SERVER_ONLY.contains(&s.as_str())).cloned().collect()
}

/// The `scope` of the resource's `WWW-Authenticate` challenge.
pub fn challenge_scope(scopes: &[String]) -> String {
    resource_scopes(scopes).join(" ")
}

/// RFC 9728 protected resource metadata.
#[derive(Serialize)]
pub struct ProtectedResourceMetadata<'a> {
    resource: Resource,
    authorization_servers: [&'a str; 1],
    scopes_supported: Vec<String>,
    bearer_methods_supported: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
}

pub fn protected_resource<'a>(
    site: &'a Site,
    scopes: &[String],
    server_name: Option<&'a str>,
) -> ProtectedResourceMetadata<'a> {
    ProtectedResourceMetadata {
        resource: site.resource(),
        authorization_servers: [&site.issuer],
        scopes_supported: resource_scopes(scopes),
        bearer_methods_supported: ["header"],
        resource_name: server_name,
    }
}

/// RFC 8414 metadata; the same document answers OpenID Connect Discovery.
#[derive(Serialize)]
pub struct AuthorizationServerMetadata<'a> {
    issuer: &'a str,
    authorization_endpoint: String,
    token_endpoint: String,
    registration_endpoint: String,
    scopes_supported: &'a [String],
    response_types_supported: &'a [ResponseType],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: &'a [GrantType],
    token_endpoint_auth_methods_supported: &'a [ClientAuthMethod],
    code_challenge_methods_supported: &'a [PkceMethod],
    authorization_response_iss_parameter_supported: bool,
    /// draft-ietf-oauth-client-id-metadata-document §5; absent when `CIMD` is off. Clients
    /// (claude.ai) use it only alongside `none` among the token endpoint auth methods,
    /// which is always there.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id_metadata_document_supported: Option<bool>,
    /// OpenID Connect Discovery requires these three; Access signs with them.
    jwks_uri: &'a str,
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
}

pub fn authorization_server<'a>(
    site: &'a Site,
    caps: &'a Capabilities,
    upstream: &'a UpstreamMetadata,
) -> AuthorizationServerMetadata<'a> {
    AuthorizationServerMetadata {
        issuer: &site.issuer,
        authorization_endpoint: site.url(AUTHORIZE_PATH),
        token_endpoint: site.url(TOKEN_PATH),
        registration_endpoint: site.url(REGISTER_PATH),
        scopes_supported: &caps.scopes,
        response_types_supported: caps.response_types,
        response_modes_supported: ["query"],
        grant_types_supported: caps.grant_types,
        token_endpoint_auth_methods_supported: caps.token_auth_methods,
        code_challenge_methods_supported: caps.code_challenge_methods,
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: caps.client_id_metadata.then_some(true),
        jwks_uri: &upstream.jwks_uri,
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::access::upstream::tests::upstream;
    use crate::config::tests::{test_config, ISSUER};
    use serde_json::json;

    pub fn site() -> Site {
        Site::new(&test_config(), "https://mcp.example.com")
    }

    /// A document as serde_json reads it, to compare with `json!`.
    fn value(doc: impl Serialize) -> serde_json::Value {
        serde_json::to_value(doc).unwrap()
    }

    #[test]
    fn protected_resource_document() {
        let doc = value(protected_resource(&site(), &test_config().scopes, None));
        assert_eq!(
            doc,
            json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://mcp.example.com"],
                "scopes_supported": ["openid", "email", "profile"],
                "bearer_methods_supported": ["header"]
            })
        );
        let named = value(protected_resource(&site(), &test_config().scopes, Some("Docs")));
        assert_eq!(named["resource_name"], "Docs");
        assert_eq!(site().resource_metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    }

    #[test]
    fn offline_access_is_for_the_authorization_server_only() {
        let mut vars = crate::config::tests::vars();
        vars.insert("SCOPES", "openid email offline_access".into());
        let config = crate::config::tests::config_from(&vars).unwrap();
        let doc = value(protected_resource(&site(), &config.scopes, None));
        assert_eq!(doc["scopes_supported"], json!(["openid", "email"]));
        assert_eq!(challenge_scope(&config.scopes), "openid email");
        let caps = Capabilities::new(&config, &upstream());
        let doc = value(authorization_server(&site(), &caps, &upstream()));
        assert_eq!(doc["scopes_supported"], json!(["openid", "email", "offline_access"]));
        assert_eq!(caps.grant_scope(None), "openid email offline_access");
    }

    #[test]
    fn authorization_server_document_is_normalised() {
        let caps = Capabilities::new(&test_config(), &upstream());
        let doc = value(authorization_server(&site(), &caps, &upstream()));
        assert_eq!(
            doc,
            json!({
                "issuer": "https://mcp.example.com",
                "authorization_endpoint": "https://mcp.example.com/authorize",
                "token_endpoint": "https://mcp.example.com/token",
                "registration_endpoint": "https://mcp.example.com/register",
                "scopes_supported": ["openid", "email", "profile"],
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": true,
                "client_id_metadata_document_supported": true,
                "jwks_uri": format!("{ISSUER}/jwks"),
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]
            })
        );
    }

    #[test]
    fn a_resource_is_this_mcp_server_exactly_as_published() {
        let site = site();
        assert_eq!(site.requested_resource(None), Ok(None));
        assert_eq!(site.requested_resource(Some("https://mcp.example.com/mcp")), Ok(Some(site.resource())));
        for other in [
            "https://mcp.example.com/mcp/",
            "https://MCP.example.com/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/MCP",
            "https://mcp.example.com",
            "https://other.example/mcp",
        ] {
            assert_eq!(
                site.requested_resource(Some(other)),
                Err(Error::oauth(ErrorCode::InvalidTarget, "resource is not this MCP server")),
                "{other}"
            );
        }
        let written = serde_json::to_string(&site.resource()).unwrap();
        assert_eq!(written, r#""https://mcp.example.com/mcp""#);
        assert_eq!(serde_json::from_str::<Resource>(&written).unwrap(), site.resource());
        for malformed in [r#""/mcp""#, r#""https://mcp.example.com/mcp#x""#, r#""""#, "null"] {
            assert!(serde_json::from_str::<Resource>(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn client_id_metadata_documents_are_advertised_unless_off() {
        let doc = |vars: &std::collections::HashMap<&'static str, String>| {
            let config = crate::config::tests::config_from(vars).unwrap();
            let caps = Capabilities::new(&config, &upstream());
            value(authorization_server(&site(), &caps, &upstream()))
        };
        let mut vars = crate::config::tests::vars();
        vars.remove("ACCESS_CLIENT_SECRET");
        let on = doc(&vars);
        assert_eq!(on["client_id_metadata_document_supported"], json!(true));
        assert_eq!(on["token_endpoint_auth_methods_supported"], json!(["none"]), "claude.ai needs none with it");
        assert!(on["registration_endpoint"].is_string(), "DCR stays for the clients that use it");
        vars.insert("CIMD", "off".into());
        assert!(doc(&vars).get("client_id_metadata_document_supported").is_none());
    }

    #[test]
    fn public_origin_overrides_the_request_origin() {
        let mut vars = crate::config::tests::vars();
        vars.insert("PUBLIC_ORIGIN", "https://public.example".into());
        let config = crate::config::tests::config_from(&vars).unwrap();
        assert_eq!(Site::new(&config, "http://127.0.0.1:8787").issuer, "https://public.example");
    }
}
