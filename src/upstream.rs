//! Access for SaaS's discovery document, read tolerantly: it publishes non-standard
//! grant type names and the key `token_endpoint_auth_methods`, and may omit
//! `code_challenge_methods_supported`. Only what the relay needs is kept.

use crate::config::AccessApp;
use crate::error::Error;
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

impl UpstreamMetadata {
    pub fn parse(body: &str, app: &AccessApp) -> Result<Self, Error> {
        let doc: Document =
            serde_json::from_str(body).map_err(|_| Error::unavailable("Access discovery is not the expected JSON"))?;
        // OpenID Connect Discovery §4.3: the issuer must be exactly the configured one.
        if doc.issuer != app.issuer {
            return Err(Error::config("ACCESS_ISSUER", "does not match the issuer Access publishes"));
        }
        let https_or_same_origin = |url: &str| url.starts_with("https://") || url.starts_with(&app.issuer);
        for endpoint in [&doc.authorization_endpoint, &doc.token_endpoint, &doc.jwks_uri] {
            if !https_or_same_origin(endpoint) || url::Url::parse(endpoint).is_err() {
                return Err(Error::unavailable("Access discovery has an unusable endpoint URL"));
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

/// The per-isolate copy of Access's discovery document. A failed refresh keeps serving
/// the last good copy (an Access blip must not stop logins whose endpoints are known);
/// a configuration error (a wrong issuer) never falls back.
#[derive(Debug, Default)]
pub struct DiscoveryCache {
    cached: Option<(UpstreamMetadata, u64)>,
}

impl DiscoveryCache {
    /// The cached document while it is fresh; `None` means fetch.
    pub fn fresh(&self, now: u64) -> Option<UpstreamMetadata> {
        let (metadata, fetched_at) = self.cached.as_ref()?;
        (now < fetched_at + DISCOVERY_TTL_SECONDS).then(|| metadata.clone())
    }

    /// Takes the answer of a fetch (`Err` when there was none) and decides what serves.
    pub fn refreshed(
        &mut self,
        answer: Result<(u16, String), Error>,
        app: &AccessApp,
        now: u64,
    ) -> Result<UpstreamMetadata, Error> {
        let fresh = answer.and_then(|(status, body)| match status {
            200 => UpstreamMetadata::parse(&body, app),
            _ => Err(Error::unavailable("Access discovery answered non-200")),
        });
        match (fresh, &self.cached) {
            (Ok(metadata), _) => {
                self.cached = Some((metadata.clone(), now));
                Ok(metadata)
            }
            (Err(Error::Upstream { .. }), Some((stale, _))) => Ok(stale.clone()),
            (Err(error), _) => Err(error),
        }
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
    fn discovery_cache_serves_stale_on_outage_but_never_on_a_wrong_issuer() {
        let app = test_config().access;
        let mut cache = DiscoveryCache::default();
        assert_eq!(cache.fresh(0), None);
        let down = || Err(Error::unavailable("could not reach Access"));
        assert!(matches!(cache.refreshed(down(), &app, 0), Err(Error::Upstream { .. })), "nothing to fall back on");
        assert_eq!(cache.refreshed(Ok((200, access_discovery())), &app, 100), Ok(upstream()));
        assert_eq!(cache.fresh(100 + DISCOVERY_TTL_SECONDS - 1), Some(upstream()));
        let later = 100 + DISCOVERY_TTL_SECONDS;
        assert_eq!(cache.fresh(later), None, "stale: refetch");
        assert_eq!(cache.refreshed(down(), &app, later), Ok(upstream()), "outage: the last good copy");
        assert_eq!(cache.refreshed(Ok((503, String::new())), &app, later), Ok(upstream()));
        assert_eq!(cache.refreshed(Ok((200, "<html>".into())), &app, later), Ok(upstream()));
        let moved = access_discovery().replace("/abc123\"", "/other\"");
        assert!(matches!(
            cache.refreshed(Ok((200, moved)), &app, later),
            Err(Error::Config { setting: "ACCESS_ISSUER", .. })
        ));
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
