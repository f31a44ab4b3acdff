//! Access for SaaS's discovery document, read tolerantly: it publishes non-standard
//! grant type names and the key `token_endpoint_auth_methods`, and may omit
//! `code_challenge_methods_supported`. Only what the relay needs is kept.

use crate::config::AccessApp;
use crate::error::{Error, UpstreamFailure};
use serde::Deserialize;

/// How long the discovery document is cached per isolate.
pub const DISCOVERY_TTL_SECONDS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamMetadata {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// Access advertises `refresh_tokens` (sic); the standard name is accepted too.
    pub supports_refresh: bool,
    pub scopes_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    grant_types_supported: Vec<String>,
    scopes_supported: Option<Vec<String>>,
}

fn unusable(reason: &'static str) -> Error {
    Error::Upstream { failure: UpstreamFailure::Unavailable, reason }
}

impl UpstreamMetadata {
    pub fn parse(body: &str, app: &AccessApp) -> Result<Self, Error> {
        let doc: Document =
            serde_json::from_str(body).map_err(|_| unusable("Access discovery is not the expected JSON"))?;
        // OpenID Connect Discovery §4.3: the issuer must be exactly the configured one.
        if doc.issuer != app.issuer {
            return Err(Error::Config {
                setting: "ACCESS_ISSUER",
                problem: "does not match the issuer Access publishes",
            });
        }
        let https_or_same_origin = |url: &str| url.starts_with("https://") || url.starts_with(&app.issuer);
        for endpoint in [&doc.authorization_endpoint, &doc.token_endpoint, &doc.jwks_uri] {
            if !https_or_same_origin(endpoint) || url::Url::parse(endpoint).is_err() {
                return Err(unusable("Access discovery has an unusable endpoint URL"));
            }
        }
        let supports_refresh = doc.grant_types_supported.iter().any(|g| g == "refresh_token" || g == "refresh_tokens");
        Ok(Self {
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            jwks_uri: doc.jwks_uri,
            supports_refresh,
            scopes_supported: doc.scopes_supported,
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::config::tests::{test_config, ISSUER};

    /// Access for SaaS's discovery document as published, quirks included.
    pub fn access_discovery() -> String {
        serde_json::json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}/authorization"),
            "token_endpoint": format!("{ISSUER}/token"),
            "jwks_uri": format!("{ISSUER}/jwks"),
            "userinfo_endpoint": format!("{ISSUER}/userinfo"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods": ["client_secret_basic", "client_secret_post"],
            "grant_types_supported": ["refresh_tokens", "authorization_code_with_pkce"],
            "scopes_supported": ["openid", "email", "profile", "groups"]
        })
        .to_string()
    }

    pub fn upstream() -> UpstreamMetadata {
        UpstreamMetadata::parse(&access_discovery(), &test_config().access).unwrap()
    }

    #[test]
    fn reads_access_quirks() {
        let u = upstream();
        assert_eq!(u.token_endpoint, format!("{ISSUER}/token"));
        assert!(u.supports_refresh);
        let standard = access_discovery().replace("refresh_tokens", "refresh_token");
        assert!(UpstreamMetadata::parse(&standard, &test_config().access).unwrap().supports_refresh);
        let no_refresh = access_discovery().replace("\"refresh_tokens\",", "");
        assert!(!UpstreamMetadata::parse(&no_refresh, &test_config().access).unwrap().supports_refresh);
    }

    #[test]
    fn rejects_wrong_issuer_and_garbage() {
        let app = test_config().access;
        let other = access_discovery().replace("/abc123\"", "/other\"");
        assert!(matches!(UpstreamMetadata::parse(&other, &app), Err(Error::Config { setting: "ACCESS_ISSUER", .. })));
        assert!(matches!(UpstreamMetadata::parse("<html>", &app), Err(Error::Upstream { .. })));
        let http = access_discovery().replace(&format!("{ISSUER}/token"), "http://evil.example/token");
        assert!(matches!(UpstreamMetadata::parse(&http, &app), Err(Error::Upstream { .. })));
    }
}
