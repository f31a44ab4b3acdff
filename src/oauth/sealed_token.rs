//! The gateway's own sealed tokens.
//!
//! Some Access for SaaS apps hand out opaque access tokens, which no edge or origin
//! can validate. In sealed mode the gateway validates Access's `id_token` at `/token`
//! and gives the client an access token sealed with its own key: readable only by this
//! gateway, bound to this MCP resource, expiring no later than Access's token, and
//! carrying the Access-signed JWT the origin already trusts. Each MCP request only
//! unseals it: no RSA work. In every mode the refresh token is sealed around Access's,
//! so only this deployment can use it.

use crate::access::token::{Authenticated, Identity};
use crate::access::token_cache::Expiring;
use crate::access::upstream::{is_jwt, no_id_token, UpstreamTokens};
use crate::clients::client_id_metadata::ClientIdUrl;
use crate::config::{Config, TokenMode};
use crate::oauth::metadata::{Resource, Site};
use crate::primitives::error::{Error, TokenFailure};
use crate::primitives::seal::{Entropy, Purpose};
use crate::primitives::secret::Secret;
use serde::{Deserialize, Serialize};

/// What a sealed access token carries. Its member names (`em`, `gr`, `cr`, `ci`, …) are
/// those of the tokens already out there. `S` is the Access JWT: a [`Secret`] as read, the
/// `&str` of [`Secret::expose`] as written.
#[derive(Serialize, Deserialize)]
struct SealedAccess<S = Secret> {
    sub: String,
    #[serde(rename = "em", skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// Left out when empty; `null` is refused.
    #[serde(rename = "gr", default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    /// The resource (RFC 8707) the token is for: this deployment's MCP URL.
    aud: Resource,
    exp: u64,
    /// The Access-signed JWT forwarded to the origin.
    #[serde(rename = "cr")]
    credential: S,
    /// The client with a metadata document it was issued to; `None`: the registered client.
    #[serde(rename = "ci", skip_serializing_if = "Option::is_none")]
    client_id: Option<ClientIdUrl>,
}

/// What a sealed refresh token carries; `S` as in [`SealedAccess`].
#[derive(Serialize, Deserialize)]
struct SealedRefresh<S = Secret> {
    /// Access's refresh token.
    rt: S,
    aud: Resource,
    /// As in [`SealedAccess`]: only this client may refresh with it.
    #[serde(rename = "ci", skip_serializing_if = "Option::is_none")]
    client_id: Option<ClientIdUrl>,
}

/// A sealed refresh token as written: with `iat`, the time it was sealed. The gateway reads
/// only the expiry, so a token sealed again around the same Access token (Access did not
/// rotate) differs from the one before in its issue time and nonce, never in its lifetime.
/// Tokens sealed before have none.
#[derive(Serialize)]
struct Issued<'a> {
    #[serde(flatten)]
    sealed: &'a SealedRefresh<&'a str>,
    iat: u64,
}

/// A refresh token the client presented, opened.
pub struct PresentedRefresh {
    /// Access's refresh token inside it.
    pub access_refresh: Secret,
    /// Its expiry, which a token sealed again around the same Access token keeps.
    pub expires_at: u64,
    /// The client with a metadata document it was issued to; `None`: the registered client.
    pub client_id: Option<ClientIdUrl>,
}

/// Seals the client's access token around Access's answer and the validated `id_token`
/// identity: the token and its lifetime in seconds.
pub fn seal_access(
    config: &Config,
    site: &Site,
    tokens: &UpstreamTokens,
    identity: &Identity,
    client_id: Option<&ClientIdUrl>,
    now: u64,
    entropy: &mut dyn Entropy,
) -> Result<(String, u64), Error> {
    // What the origin's Access verifier accepts: the access token when it is a JWT,
    // otherwise the id_token.
    let credential = match (is_jwt(tokens.access_token.expose()), &tokens.id_token) {
        (true, _) => &tokens.access_token,
        (false, Some(id_token)) => id_token,
        (false, None) => return Err(no_id_token()),
    };
    let access_expiry = tokens.expires_in.map_or(identity.expires_at, |seconds| now.saturating_add(seconds));
    let expires_at = access_expiry.min(identity.expires_at);
    if expires_at <= now {
        return Err(no_id_token());
    }
    let sealed = SealedAccess {
        sub: identity.subject.clone(),
        email: identity.email.clone(),
        groups: identity.groups.clone(),
        aud: site.resource(),
        exp: expires_at,
        credential: credential.expose(),
        client_id: client_id.cloned(),
    };
    Ok((config.sealing_keys.seal(Purpose::AccessToken, &sealed, expires_at, entropy)?, expires_at - now))
}

/// Seals Access's refresh token for this deployment's key and MCP URL, and the client,
/// issued `now`, until `expires_at` ([`refresh_expiry`] for a new one).
pub fn seal_refresh(
    config: &Config,
    site: &Site,
    access_refresh: &Secret,
    client_id: Option<&ClientIdUrl>,
    (now, expires_at): (u64, u64),
    entropy: &mut dyn Entropy,
) -> Result<String, Error> {
    let sealed = SealedRefresh { rt: access_refresh.expose(), aud: site.resource(), client_id: client_id.cloned() };
    config.sealing_keys.seal(Purpose::RefreshToken, &Issued { sealed: &sealed, iat: now }, expires_at, entropy)
}

/// When a refresh token sealed `now` around a new Access refresh token expires.
pub fn refresh_expiry(config: &Config, now: u64) -> u64 {
    now.saturating_add(config.refresh_token_ttl_seconds)
}

/// What a bearer presented at the MCP endpoint is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerKind {
    /// The gateway's own sealed token: opened here, no RSA work.
    Sealed,
    /// Access's JWT: RS256 against the Access JWKS, then the claim checks.
    AccessJwt,
}

/// The token mode decides which bearers are accepted; the shape tells which one it is
/// (sealed tokens are one base64url string, Access's are JWS compact).
pub fn bearer_kind(mode: TokenMode, token: &str) -> Result<BearerKind, Error> {
    match (mode, is_jwt(token)) {
        (TokenMode::Sealed | TokenMode::Auto, false) => Ok(BearerKind::Sealed),
        (TokenMode::Sealed, true) => Err(Error::InvalidToken(TokenFailure::NotSealed)),
        (TokenMode::Passthrough | TokenMode::Auto, _) => Ok(BearerKind::AccessJwt),
    }
}

/// Validates a sealed access token presented to the MCP endpoint.
pub fn open_access(config: &Config, site: &Site, token: &str, now: u64) -> Result<Authenticated, Error> {
    let sealed: SealedAccess = config
        .sealing_keys
        .open(Purpose::AccessToken, token, now)
        .map_err(|error| Error::InvalidToken(error.into()))?;
    if sealed.aud != site.resource() {
        return Err(Error::InvalidToken(TokenFailure::OtherResource));
    }
    let identity = Identity {
        subject: sealed.sub,
        email: sealed.email,
        groups: sealed.groups,
        not_before: None,
        expires_at: sealed.exp,
    };
    if !config.edge.allowlist.admits(&identity) {
        return Err(Error::Forbidden { reason: "identity not in the allowlists" });
    }
    // Registered clients all share the Access client's id.
    let client = sealed.client_id.as_deref().unwrap_or(&config.access.client_id).to_owned();
    Ok(Authenticated { identity, credential: sealed.credential, credential_as_sent: false, client: Some(client) })
}

/// Whether a sealed access token [`open_access`] opened would still open at `now`: the
/// seal's expiry is the identity's; the audience and allowlists are the isolate's and do
/// not change (the opened token cache, [`crate::access::token_cache`], holds it per site).
pub fn still_open(opened: &Authenticated, now: u64) -> bool {
    now < opened.identity.expires_at
}

impl Expiring for Authenticated {
    fn expires_at(&self) -> u64 {
        self.identity.expires_at
    }
}

/// The Access refresh token to relay, unwrapped from the gateway's sealed one for this
/// MCP URL and this client (`client_id`: the one a client with a metadata document
/// presented; `None`: the registered client). Anything else, a raw Access refresh token
/// included, is refused in every mode and never reaches Access.
pub fn open_refresh(
    config: &Config,
    site: &Site,
    presented: &str,
    client_id: Option<&str>,
    now: u64,
) -> Result<PresentedRefresh, Error> {
    match config.sealing_keys.open_expiring::<SealedRefresh>(Purpose::RefreshToken, presented, now) {
        Ok((sealed, expires_at)) if sealed.aud == site.resource() && sealed.client_id.as_deref() == client_id => {
            Ok(PresentedRefresh { access_refresh: sealed.rt, expires_at, client_id: sealed.client_id })
        }
        Ok((sealed, _)) if sealed.aud == site.resource() => {
            Err(Error::invalid_grant("the refresh token was issued to another client"))
        }
        _ => Err(Error::invalid_grant("the refresh token is invalid or expired")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config_from, vars};
    use crate::oauth::authorize::CodeGrant;
    use crate::oauth::metadata::tests::site;
    use crate::primitives::seal::tests::{open_text, CountingEntropy, KEY_B};
    use crate::primitives::seal::OpenError;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const NOW: u64 = 1_800_000_000;

    fn config(mode: &str) -> Config {
        let mut v = vars();
        v.insert("TOKEN_MODE", mode.into());
        config_from(&v).unwrap()
    }

    fn identity() -> Identity {
        Identity {
            subject: "sub-1".into(),
            email: Some("user@example.com".into()),
            groups: vec!["eng".into()],
            not_before: None,
            expires_at: NOW + 600,
        }
    }

    fn upstream(access_token: &str) -> UpstreamTokens {
        UpstreamTokens {
            access_token: Secret::new(access_token),
            id_token: Some(Secret::new("id.token.jwt")),
            expires_in: Some(300),
            refresh_token: Some(Secret::new("access-refresh")),
            scope: Some("openid email".into()),
        }
    }

    fn minted(config: &Config, access_token: &str) -> serde_json::Value {
        let response = crate::oauth::token::respond(
            config,
            &site(),
            upstream(access_token),
            Some(&identity()),
            &crate::oauth::token::tests::code_exchange(None),
            NOW,
            &mut CountingEntropy::default(),
        )
        .unwrap();
        serde_json::to_value(response.expose()).unwrap()
    }

    #[test]
    fn opaque_access_token_round_trip_forwards_the_id_token() {
        let config = config("auto");
        let response = minted(&config, "opaque-access");
        assert_eq!(response["expires_in"], 300);
        assert_eq!(response["token_type"], "Bearer");
        let token = response["access_token"].as_str().unwrap();
        assert!(!token.contains("opaque-access") && !token.contains('.'));
        let grant = open_access(&config, &site(), token, NOW + 299).unwrap();
        assert_eq!(grant.identity.subject, "sub-1");
        assert_eq!(grant.identity.groups, ["eng"]);
        assert_eq!(grant.credential.expose(), "id.token.jwt");
        assert_eq!(grant.client, Some(config.access.client_id.clone()), "a registered client");
        assert!(!format!("{grant:?}").contains("id.token.jwt"));
        // Expiry: no later than Access's token; a cached opening ends exactly when opening does.
        assert!(matches!(open_access(&config, &site(), token, NOW + 300), Err(Error::InvalidToken { .. })));
        assert!(still_open(&grant, NOW + 299) && !still_open(&grant, NOW + 300));
        // A JWT access token is what the origin gets when there is one.
        let config = self::config("sealed");
        let with_jwt = minted(&config, "a.b.c");
        assert_eq!(
            open_access(&config, &site(), with_jwt["access_token"].as_str().unwrap(), NOW).unwrap().credential.expose(),
            "a.b.c"
        );
    }

    /// What the serde derive wrote for sealed tokens: every member, and the required ones only.
    const OLD_ACCESS: &str = r#"{"sub":"sub-1","em":"user@example.com","gr":["eng","ops"],"aud":"https://mcp.example.com/mcp","exp":1800000600,"cr":"id.token.jwt","ci":"https://client.example.com/client.json"}"#;
    const OLD_ACCESS_MINIMAL: &str =
        r#"{"sub":"sub-1","aud":"https://mcp.example.com/mcp","exp":1800000600,"cr":"a.b.c"}"#;
    const OLD_REFRESH: &str =
        r#"{"rt":"access-refresh","aud":"https://mcp.example.com/mcp","ci":"https://client.example.com/client.json"}"#;
    const OLD_REFRESH_MINIMAL: &str = r#"{"rt":"access-refresh","aud":"https://mcp.example.com/mcp"}"#;

    impl SealedAccess {
        /// As [`seal_access`] writes it.
        fn written(&self) -> String {
            let SealedAccess { sub, email, groups, aud, exp, credential, client_id } = self;
            let (sub, email, groups, aud, exp) = (sub.clone(), email.clone(), groups.clone(), aud.clone(), *exp);
            let exposed = SealedAccess {
                sub,
                email,
                groups,
                aud,
                exp,
                credential: credential.expose(),
                client_id: client_id.clone(),
            };
            serde_json::to_string(&exposed).unwrap()
        }
    }

    impl SealedRefresh {
        /// As [`seal_refresh`] writes it, issued at `iat`.
        fn written(&self, iat: u64) -> String {
            let SealedRefresh { rt, aud, client_id } = self;
            let exposed = SealedRefresh { rt: rt.expose(), aud: aud.clone(), client_id: client_id.clone() };
            serde_json::to_string(&Issued { sealed: &exposed, iat }).unwrap()
        }
    }

    fn open_access_text(payload: &str) -> Result<SealedAccess, OpenError> {
        open_text(Purpose::AccessToken, payload)
    }

    fn open_refresh_text(payload: &str) -> Result<SealedRefresh, OpenError> {
        open_text(Purpose::RefreshToken, payload)
    }

    #[test]
    fn an_access_token_sealed_by_the_serde_version_opens() {
        let sealed = open_access_text(OLD_ACCESS).unwrap();
        assert_eq!((sealed.sub.as_str(), sealed.email.as_deref()), ("sub-1", Some("user@example.com")));
        assert_eq!(sealed.groups, ["eng", "ops"]);
        assert_eq!((&*sealed.aud, sealed.exp), ("https://mcp.example.com/mcp", 1_800_000_600));
        assert_eq!(sealed.credential.expose(), "id.token.jwt");
        assert_eq!(sealed.client_id.as_deref(), Some("https://client.example.com/client.json"));
        assert_eq!(sealed.written(), OLD_ACCESS);
        let minimal = open_access_text(OLD_ACCESS_MINIMAL).unwrap();
        assert_eq!((minimal.email.as_deref(), minimal.groups.len(), minimal.client_id.as_deref()), (None, 0, None));
        assert_eq!(minimal.credential.expose(), "a.b.c");
        assert_eq!(minimal.written(), OLD_ACCESS_MINIMAL);
    }

    #[test]
    fn sealed_tokens_are_written_only_with_their_secret_exposed() {
        use crate::primitives::secret::tests::{NotSerializable, Probe};
        use std::marker::PhantomData;
        assert!(!Probe::<SealedAccess>(PhantomData).serializable());
        assert!(!Probe::<SealedRefresh>(PhantomData).serializable());
        assert!(Probe::<SealedAccess<&str>>(PhantomData).serializable());
        assert!(Probe::<Issued<'_>>(PhantomData).serializable());
    }

    #[test]
    fn a_refresh_token_sealed_by_the_serde_version_opens() {
        let sealed = open_refresh_text(OLD_REFRESH).unwrap();
        assert_eq!(sealed.rt.expose(), "access-refresh");
        assert_eq!(sealed.aud, "https://mcp.example.com/mcp");
        assert_eq!(sealed.client_id.as_deref(), Some("https://client.example.com/client.json"));
        // Written the same, with the issue time after.
        assert_eq!(sealed.written(7), OLD_REFRESH.replace('}', r#","iat":7}"#));
        let minimal = open_refresh_text(OLD_REFRESH_MINIMAL).unwrap();
        assert_eq!(minimal.client_id, None);
        assert_eq!(minimal.written(7), OLD_REFRESH_MINIMAL.replace('}', r#","iat":7}"#));
    }

    #[test]
    fn sealed_tokens_with_a_member_missing_or_of_another_type_are_malformed() {
        let nulls = OLD_ACCESS_MINIMAL.replace('}', r#","em":null,"ci":null}"#);
        let sealed = open_access_text(&nulls).unwrap();
        assert_eq!((sealed.email, sealed.client_id), (None, None));
        for payload in [
            OLD_ACCESS_MINIMAL.replace(r#""sub":"sub-1","#, ""),
            OLD_ACCESS_MINIMAL.replace(r#""sub-1""#, "null"),
            OLD_ACCESS_MINIMAL.replace("1800000600", r#""1800000600""#),
            OLD_ACCESS_MINIMAL.replace("1800000600", "-1"),
            OLD_ACCESS_MINIMAL.replace(r#","cr":"a.b.c""#, ""),
            OLD_ACCESS_MINIMAL.replace(r#""a.b.c""#, "[]"),
            OLD_ACCESS.replace(r#""user@example.com""#, "5"),
            OLD_ACCESS.replace(r#"["eng","ops"]"#, "null"),
            OLD_ACCESS.replace(r#"["eng","ops"]"#, r#"["eng",1]"#),
            OLD_ACCESS.replace(r#"["eng","ops"]"#, r#""eng""#),
            OLD_ACCESS.replace(r#""https://client.example.com/client.json""#, "{}"),
            // Read back, the audience and the client are checked for their shape again.
            OLD_ACCESS_MINIMAL.replace("https://mcp.example.com/mcp", "mcp.example.com/mcp"),
            OLD_ACCESS.replace("https://client.example.com/client.json", "https://10.0.0.1/client.json"),
        ] {
            assert_eq!(open_access_text(&payload).map(|_| ()), Err(OpenError::Malformed), "{payload}");
        }
        for payload in [
            OLD_REFRESH_MINIMAL.replace(r#""rt":"access-refresh","#, ""),
            OLD_REFRESH_MINIMAL.replace(r#""access-refresh""#, "null"),
            OLD_REFRESH_MINIMAL.replace(r#""https://mcp.example.com/mcp""#, "1"),
            OLD_REFRESH.replace(r#""https://client.example.com/client.json""#, "true"),
        ] {
            assert_eq!(open_refresh_text(&payload).map(|_| ()), Err(OpenError::Malformed), "{payload}");
        }
    }

    #[test]
    fn expiry_is_the_earlier_of_access_token_and_id_token() {
        let config = config("sealed");
        let short = Identity { expires_at: NOW + 60, ..identity() };
        let sealed = seal_access(&config, &site(), &upstream("x"), &short, None, NOW, &mut CountingEntropy::default());
        assert_eq!(sealed.unwrap().1, 60);
        let expired = Identity { expires_at: NOW, ..identity() };
        assert!(seal_access(&config, &site(), &upstream("x"), &expired, None, NOW, &mut CountingEntropy::default())
            .is_err());
    }

    #[test]
    fn tampered_foreign_and_misused_tokens_are_invalid() {
        let config = config("sealed");
        let token = minted(&config, "opaque")["access_token"].as_str().unwrap().to_owned();
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let mut entropy = CountingEntropy::default();
        let other_key = {
            let mut v = vars();
            v.insert("SEALING_KEYS", KEY_B.into());
            config_from(&v).unwrap()
        };
        let other_resource = Site::new(&config, "https://other.example.com");
        let grant = CodeGrant {
            access_code: "c",
            redirect_uri: crate::clients::redirect_uri::tests::redirect_uri("http://localhost/cb"),
            code_challenge: crate::oauth::pkce::tests::challenge(),
            resource: None,
            client_id: None,
        };
        let home = site();
        let mut cases: Vec<(String, &Site, &str)> = vec![
            (token[..token.len() - 3].to_owned(), &home, "truncated"),
            (
                minted(&other_key, "opaque")["access_token"].as_str().unwrap().to_owned(),
                &home,
                "another deployment's key",
            ),
            (token.clone(), &other_resource, "another resource"),
            (config.sealing_keys.seal(Purpose::Code, &grant, NOW + 60, &mut entropy).unwrap(), &home, "a sealed code"),
            (
                config.sealing_keys.seal(Purpose::State, &grant, NOW + 60, &mut entropy).unwrap(),
                &home,
                "a sealed state",
            ),
            (minted(&config, "opaque")["refresh_token"].as_str().unwrap().to_owned(), &home, "the refresh token"),
        ];
        let flips: Vec<String> = (0..raw.len() * 8)
            .step_by(97)
            .map(|bit| {
                let mut t = raw.clone();
                t[bit / 8] ^= 1 << (bit % 8);
                URL_SAFE_NO_PAD.encode(t)
            })
            .collect();
        cases.extend(flips.iter().map(|t| (t.clone(), &home, "bit flip")));
        for (token, site, why) in cases {
            assert!(matches!(open_access(&config, site, &token, NOW), Err(Error::InvalidToken { .. })), "{why}");
        }
    }

    #[test]
    fn the_token_mode_decides_which_bearers_are_checked_how() {
        let (sealed, jwt) = ("c2VhbGVk", "a.b.c");
        assert_eq!(bearer_kind(TokenMode::Auto, sealed), Ok(BearerKind::Sealed));
        assert_eq!(bearer_kind(TokenMode::Auto, jwt), Ok(BearerKind::AccessJwt));
        assert_eq!(bearer_kind(TokenMode::Sealed, sealed), Ok(BearerKind::Sealed));
        assert_eq!(bearer_kind(TokenMode::Sealed, jwt), Err(Error::InvalidToken(TokenFailure::NotSealed)));
        assert_eq!(bearer_kind(TokenMode::Passthrough, jwt), Ok(BearerKind::AccessJwt));
        // Passthrough takes no sealed token: an opaque string fails the JWT checks.
        assert_eq!(bearer_kind(TokenMode::Passthrough, sealed), Ok(BearerKind::AccessJwt));
    }

    #[test]
    fn allowlists_apply_to_sealed_tokens() {
        let mut v = vars();
        v.insert("ALLOWED_EMAILS", "other@example.com".into());
        let config = config_from(&v).unwrap();
        let token = minted(&config, "opaque")["access_token"].as_str().unwrap().to_owned();
        assert!(matches!(open_access(&config, &site(), &token, NOW), Err(Error::Forbidden { .. })));
    }

    #[test]
    fn refresh_tokens_unwrap_only_for_this_deployment_in_every_mode() {
        for mode in ["passthrough", "auto", "sealed"] {
            let config = config(mode);
            let refresh = minted(&config, "a.b.c")["refresh_token"].as_str().unwrap().to_owned();
            let opened = open_refresh(&config, &site(), &refresh, None, NOW).unwrap();
            assert_eq!(opened.access_refresh.expose(), "access-refresh");
            assert_eq!(opened.expires_at, NOW + config.refresh_token_ttl_seconds);
            let elsewhere = Site::new(&config, "https://other.example.com");
            assert!(open_refresh(&config, &elsewhere, &refresh, None, NOW).is_err(), "another MCP URL");
            let mut v = vars();
            v.insert("SEALING_KEYS", KEY_B.into());
            assert!(open_refresh(&config_from(&v).unwrap(), &site(), &refresh, None, NOW).is_err(), "another key");
            assert!(open_refresh(&config, &site(), &refresh, None, NOW + config.refresh_token_ttl_seconds).is_err());
            assert!(open_refresh(&config, &site(), "access-refresh", None, NOW).is_err(), "{mode}: a raw Access token");
        }
    }
}
