//! What Access for SaaS answers, read tolerantly: its discovery document (non-standard
//! grant type names, the key `token_endpoint_auth_methods`, no
//! `code_challenge_methods_supported`) and its token endpoint's answers (HTML error
//! pages, `expires_in` as a string). Only what the relay needs is kept.

use crate::primitives::error::{Error, ErrorCode};
use crate::primitives::secret::Secret;
use crate::primitives::strict_json::{self, Object};
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

/// The Access for SaaS application the gateway is the one client of.
#[derive(Debug)]
pub struct AccessApp {
    /// The app's issuer, exactly as Access publishes it
    /// (`https://<team>.cloudflareaccess.com/cdn-cgi/access/sso/oidc/<client_id>`).
    pub issuer: String,
    pub client_id: String,
    /// Absent when the app allows "PKCE without client secret".
    pub client_secret: Option<Secret>,
}

impl AccessApp {
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }
}

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

/// The discovery members the relay reads (OpenID Connect Discovery §3); others are ignored.
/// The issuer and the endpoints are strings; `grant_types_supported` an array of strings or
/// absent, `scopes_supported` one or `null` or absent.
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
        let Object(doc) = strict_json::from_slice::<Object<Document>>(body.as_bytes())
            .map_err(|_| Error::unavailable("Access discovery is not the expected JSON"))?;
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

/// Access's successful answer, before the gateway decides what the client gets.
#[derive(Debug)]
pub struct UpstreamTokens {
    pub access_token: Secret,
    pub id_token: Option<Secret>,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
}

/// A JWS compact token (`header.claims.signature`) rather than an opaque one.
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Access sends `expires_in` as a number; tolerate a numeric string.
enum Seconds {
    /// Digits only: a fraction, an exponent or a sign is malformed.
    Number(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberOrText;

        impl Visitor<'_> for NumberOrText {
            type Value = Seconds;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of seconds, or a string")
            }

            fn visit_u64<E>(self, seconds: u64) -> Result<Seconds, E> {
                Ok(Seconds::Number(seconds))
            }

            fn visit_str<E>(self, text: &str) -> Result<Seconds, E> {
                Ok(Seconds::Text(text.to_owned()))
            }
        }

        deserializer.deserialize_any(NumberOrText)
    }
}

/// A token endpoint answer (RFC 6749 §5.1, §5.2): each member a string (`expires_in` a
/// number or a string), `null` or absent; unknown members ignored.
#[derive(Deserialize)]
struct UpstreamTokenBody {
    access_token: Option<String>,
    id_token: Option<String>,
    expires_in: Option<Seconds>,
    refresh_token: Option<String>,
    scope: Option<String>,
    error: Option<String>,
}

/// The client's error for a 4xx from Access: a code Access named keeps its meaning,
/// anything else (an HTML page, another code) is `invalid_grant`, or `invalid_client`
/// for a 401. The description is logged as well as sent.
fn refused(status: u16, error: Option<String>) -> Error {
    match (error.as_deref().and_then(ErrorCode::from_upstream), status) {
        (Some(ErrorCode::InvalidScope), _) => {
            Error::oauth(ErrorCode::InvalidScope, "Cloudflare Access rejected the scope")
        }
        (Some(ErrorCode::UnsupportedGrantType), _) => {
            Error::oauth(ErrorCode::UnsupportedGrantType, "Cloudflare Access does not support this grant type")
        }
        (Some(ErrorCode::UnauthorizedClient), _) => {
            Error::oauth(ErrorCode::UnauthorizedClient, "Cloudflare Access does not allow this grant for the client")
        }
        (Some(ErrorCode::InvalidGrant), _) => {
            Error::invalid_grant("the code or refresh token was rejected by Cloudflare Access")
        }
        // The gateway adds the client secret: a refusal of it is the operator's to fix,
        // but still final for the client.
        (Some(ErrorCode::InvalidClient), _) | (_, 401) => Error::oauth(
            ErrorCode::InvalidClient,
            "Cloudflare Access refused the client credentials (the gateway's ACCESS_CLIENT_SECRET)",
        ),
        _ => Error::invalid_grant("Cloudflare Access refused the request"),
    }
}

/// Sealed mode needs a valid `id_token` from Access to know who the user is.
pub fn no_id_token() -> Error {
    Error::unavailable("Access sent no usable id_token (sealed token mode needs one; request the openid scope)")
}

/// Reads Access's answer: its tokens, or an RFC 6749 §5.2 error for the client.
/// Only server errors (and timeouts, and no answer: the edge's) are worth a retry;
/// any other refusal is final, whatever its body (Access answers some with an HTML
/// page). JSON is read whatever its declared media type.
pub fn finish(status: u16, body: &str) -> Result<UpstreamTokens, Error> {
    if status >= 500 || status == 429 {
        return Err(Error::unavailable("Access token endpoint answered 5xx or 429"));
    }
    let parsed = strict_json::from_slice::<Object<UpstreamTokenBody>>(body.as_bytes()).ok().map(|Object(body)| body);
    if (400..500).contains(&status) {
        return Err(refused(status, parsed.and_then(|p| p.error)));
    }
    if status != 200 {
        return Err(Error::unavailable("Access token endpoint answered neither 200 nor an error"));
    }
    let parsed = parsed.ok_or(Error::unavailable("Access token endpoint answered 200 without usable JSON"))?;
    let access_token =
        parsed.access_token.filter(|t| !t.is_empty()).ok_or(Error::unavailable("Access sent no access_token"))?;
    let expires_in = match parsed.expires_in {
        Some(Seconds::Number(n)) => Some(n),
        Some(Seconds::Text(text)) => {
            Some(text.trim().parse().map_err(|_| Error::unavailable("Access sent a malformed expires_in"))?)
        }
        None => None,
    };
    Ok(UpstreamTokens {
        access_token: Secret::new(access_token),
        id_token: parsed.id_token.map(Secret::new),
        expires_in,
        refresh_token: parsed.refresh_token.map(Secret::new),
        scope: parsed.scope,
    })
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

    /// Members the relay reads must have their type; `grant_types_supported` may be absent
    /// (no refresh), `scopes_supported` absent or `null`; others are ignored.
    #[test]
    fn discovery_members_are_typed() {
        let app = test_config().access;
        // The document with `name` set to `value`, or removed for `None`.
        let with = |name: &str, value: Option<serde_json::Value>| {
            let mut doc: serde_json::Value = serde_json::from_str(&access_discovery()).unwrap();
            let members = doc.as_object_mut().unwrap();
            match value {
                Some(value) => members.insert(name.to_owned(), value),
                None => members.remove(name),
            };
            UpstreamMetadata::parse(&doc.to_string(), &app)
        };
        use serde_json::{json, Value::Null};
        assert!(!with("grant_types_supported", None).unwrap().supports_refresh);
        assert_eq!(with("scopes_supported", Some(Null)).unwrap().scopes_supported, None);
        assert_eq!(with("scopes_supported", None).unwrap().scopes_supported, None);
        assert!(with("userinfo_endpoint", Some(json!(7))).is_ok(), "an unread member of any type");
        for (name, value) in [
            ("issuer", None),
            ("issuer", Some(Null)),
            ("issuer", Some(json!(7))),
            ("authorization_endpoint", None),
            ("token_endpoint", Some(json!([format!("{ISSUER}/token")]))),
            ("jwks_uri", Some(Null)),
            ("grant_types_supported", Some(Null)),
            ("grant_types_supported", Some(json!("refresh_tokens"))),
            ("grant_types_supported", Some(json!(["refresh_tokens", 1]))),
            ("scopes_supported", Some(json!("openid"))),
        ] {
            assert!(matches!(with(name, value.clone()), Err(Error::Upstream { .. })), "{name}: {value:?}");
        }
        let array = format!("[{}]", access_discovery());
        assert!(matches!(UpstreamMetadata::parse(&array, &app), Err(Error::Upstream { .. })));
    }

    /// `expires_in` is a non-negative integer or a string of one; other members strings.
    #[test]
    fn token_answers_are_typed() {
        let expires_in = |value: &str| {
            finish(200, &format!(r#"{{"access_token":"a.b.c","expires_in":{value},"x":[{{}}]}}"#)).map(|t| t.expires_in)
        };
        assert_eq!(expires_in("300"), Ok(Some(300)));
        assert_eq!(expires_in(r#"" 300 ""#), Ok(Some(300)));
        assert_eq!(expires_in("null"), Ok(None));
        assert_eq!(expires_in("18446744073709551615"), Ok(Some(u64::MAX)));
        for value in ["300.0", "3e2", "-5", "-0", "18446744073709551616", "true", "[300]", r#""-5""#, r#""""#] {
            assert!(matches!(expires_in(value), Err(Error::Upstream { .. })), "{value}");
        }
        let tokens =
            finish(200, r#"{"access_token":"a","id_token":null,"refresh_token":"r","scope":null,"error":null}"#)
                .unwrap();
        assert_eq!(
            (
                tokens.access_token.expose(),
                tokens.id_token.is_none(),
                tokens.refresh_token.as_ref().map(Secret::expose)
            ),
            ("a", true, Some("r"))
        );
        for body in [
            r#"{"access_token":null}"#,
            r#"{"access_token":7}"#,
            r#"{"access_token":"a","id_token":7}"#,
            r#"{"access_token":"a","refresh_token":[]}"#,
            r#"{"access_token":"a","scope":["openid"]}"#,
            r#"{"access_token":"a","error":{}}"#,
            r#"{"access_token":"a","access_token":"b"}"#,
            r#"["a", null, 300, null, null, null]"#,
        ] {
            assert!(matches!(finish(200, body), Err(Error::Upstream { .. })), "{body}");
        }
        // A refusal whose body has a member of another type keeps no code.
        for (body, expected) in [
            (r#"{"error":"invalid_scope","error_description":7}"#, ErrorCode::InvalidScope),
            (r#"{"error":"invalid_scope","scope":7}"#, ErrorCode::InvalidGrant),
            (r#"{"error":["invalid_scope"]}"#, ErrorCode::InvalidGrant),
            (r#"{"error":"invalid_scope","error":"invalid_scope"}"#, ErrorCode::InvalidGrant),
        ] {
            match finish(400, body) {
                Err(Error::OAuth { code, .. }) => assert_eq!(code, expected, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn access_refusals_stay_final_and_only_its_failures_are_retryable() {
        use ErrorCode::*;
        // A 4xx is the client's error whatever its body; a code Access names keeps its meaning.
        let refusals = [
            (400, r#"{"error":"invalid_grant"}"#, InvalidGrant),
            (400, r#"{"error":"invalid_scope"}"#, InvalidScope),
            (400, r#"{"error":"invalid_request"}"#, InvalidGrant),
            (400, r#"{"error":"unsupported_grant_type"}"#, UnsupportedGrantType),
            (400, r#"{"error":"unauthorized_client"}"#, UnauthorizedClient),
            (400, r#"{"error":"invalid_client"}"#, InvalidClient),
            (400, r#"{"error":"temporarily_unavailable"}"#, InvalidGrant),
            (400, r#"{"error":"no_such_code"}"#, InvalidGrant),
            (400, "<html>Bad Request</html>", InvalidGrant),
            (403, "<html>Forbidden</html>", InvalidGrant),
            (404, "", InvalidGrant),
            (401, "<html>Unauthorized</html>", InvalidClient),
            (401, r#"{"error":"invalid_grant"}"#, InvalidGrant),
        ];
        for (status, body, expected) in refusals {
            match finish(status, body) {
                Err(Error::OAuth { code, .. }) => assert_eq!(code, expected, "{status} {body}"),
                other => panic!("{status} {body}: {other:?}"),
            }
        }
        // The operator learns from the log which setting to check.
        let refused = finish(401, "<html>Unauthorized</html>").unwrap_err();
        assert!(refused.log_reason().contains("ACCESS_CLIENT_SECRET"));
        assert_eq!(refused.to_response(crate::primitives::error::Surface::Json).status, 401);
        // Only Access's own failures are temporarily_unavailable.
        let failures = [
            (500, r#"{"error":"server_error"}"#),
            (503, "<html>down</html>"),
            (429, "slow down"),
            (302, ""),
            (200, "<html>Access denied</html>"),
            (200, "{not json"),
            (200, r#"{"token_type":"bearer"}"#),
            (200, r#"{"access_token":"a.b.c","expires_in":"soon"}"#),
        ];
        for (status, body) in failures {
            assert!(
                matches!(
                    finish(status, body),
                    Err(Error::Upstream { failure: crate::primitives::error::UpstreamFailure::Unavailable, .. })
                ),
                "{status} {body}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_token_answers_never_panic(body in "\\PC{0,300}", status in 100u16..600) {
            let _ = finish(status, &body);
        }
    }
}
