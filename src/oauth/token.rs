//! The token endpoint relay (RFC 6749 §3.2, §4.1.3, §6). The client authenticates to
//! the gateway (`none`, `client_secret_basic` or `client_secret_post`); the gateway
//! authenticates to Access with the secret it alone holds, rewrites the sealed code
//! and redirect URI to what Access issued them for, and normalises the answer.

use crate::access::token::{carries_id_token_claims, Identity};
use crate::access::upstream::{is_jwt, no_id_token, UpstreamMetadata, UpstreamTokens};
use crate::clients::client_id_metadata::{self, ClientIdUrl};
use crate::config::{Config, TokenMode};
use crate::oauth::authorize::{id_token_nonce, CodeGrant};
use crate::oauth::capabilities::{Capabilities, ClientAuthMethod, GrantType, Scope};
use crate::oauth::metadata::Site;
use crate::oauth::sealed_token::{self, PresentedRefresh};
use crate::primitives::error::{Error, ErrorCode};
use crate::primitives::params::Params;
use crate::primitives::seal::{Entropy, Purpose};
use crate::primitives::secret::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub const FORM: &str = "application/x-www-form-urlencoded";

/// A form POST to Access's token endpoint. `Debug` hides the body: it holds the
/// client secret, the code or the refresh token.
pub struct UpstreamTokenRequest {
    pub url: String,
    pub body: String,
    /// The `nonce` Access's `id_token` must carry if it carries one: the one sent with
    /// the authorization request of the code being exchanged.
    pub id_token_nonce: Option<String>,
    /// The client with a metadata document that asked (`None`: the registered client), as
    /// the code or refresh token it presented names it: the tokens issued are bound to it.
    pub client_id: Option<ClientIdUrl>,
    /// The refresh token being exchanged, for a refresh.
    pub refreshing: Option<Refreshing>,
}

impl std::fmt::Debug for UpstreamTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokenRequest")
            .field("url", &self.url)
            .field("body", &"[redacted]")
            .field("client_id", &self.client_id)
            .field("refreshing", &self.refreshing.is_some())
            .finish()
    }
}

/// A refresh: the presented token as the client sent it and opened, and the scope sent to
/// Access (identical refreshes share one answer in the reuse grace: [`crate::oauth::refresh_grace`]).
pub struct Refreshing {
    pub sent: Secret,
    pub presented: PresentedRefresh,
    pub scope: Option<Scope>,
}

/// Decodes `Authorization: Basic` credentials (RFC 6749 §2.3.1: each part form-urlencoded).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape =
        |s: &str| url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((unescape(id)?, unescape(secret)?))
}

/// Checks client authentication: the one Access client (as DCR handed it out), or a client
/// with a metadata document, which is public (the draft forbids shared secrets for it),
/// so presents none. Returns the `client_id` the latter presented, which the code or refresh
/// token it redeems must have been issued to. A method `caps` leave out is refused.
fn authenticate(
    config: &Config,
    caps: &Capabilities,
    authorization: Option<&str>,
    params: &Params,
) -> Result<Option<String>, Error> {
    use ClientAuthMethod::{ClientSecretBasic, ClientSecretPost};
    let basic = match authorization {
        Some(header) => Some(basic_credentials(header).ok_or(Error::InvalidClientBasic)?),
        None => None,
    };
    let posted_secret = params.get("client_secret");
    let (method, client_id, secret) = match (&basic, posted_secret) {
        (Some(_), Some(_)) => return Err(Error::invalid_request("use only one client authentication method")),
        (Some((id, secret)), None) => (ClientSecretBasic, Some(id.as_str()), Some(secret.as_str())),
        (None, Some(secret)) => (ClientSecretPost, params.get("client_id"), Some(secret)),
        (None, None) => (ClientAuthMethod::None, params.get("client_id"), None),
    };
    let failed = || {
        if method == ClientSecretBasic {
            Error::InvalidClientBasic
        } else {
            Error::oauth(ErrorCode::InvalidClient, "client authentication failed")
        }
    };
    if params.get("client_id").is_some_and(|posted| Some(posted) != client_id) {
        return Err(Error::invalid_request("client_id differs from the authenticated client"));
    }
    if let Some(url) = client_id.filter(|id| caps.client_id_metadata && client_id_metadata::is_url(id)) {
        return match method {
            ClientAuthMethod::None => Ok(Some(url.to_owned())),
            ClientSecretBasic => Err(Error::InvalidClientBasic),
            ClientSecretPost => Err(Error::oauth(
                ErrorCode::InvalidClient,
                "a client with a metadata document is public: it must not present a client secret",
            )),
        };
    }
    if client_id != Some(config.access.client_id.as_str()) || !caps.accepts(method) {
        return Err(failed());
    }
    match (secret, &config.access.client_secret) {
        (None, _) => Ok(None),
        (Some(presented), Some(expected)) if expected.matches(presented) => Ok(None),
        (Some(_), _) => Err(failed()),
    }
}

/// What the client sent to `/token` (a form: its media type is checked before the body
/// is read, see [`crate::route::Route::body_media_type`]).
pub struct ClientTokenRequest<'a> {
    pub authorization: Option<&'a str>,
    pub body: &'a str,
}

/// Validates a client's token request and builds the request to Access.
pub fn prepare(
    config: &Config,
    site: &Site,
    caps: &Capabilities,
    upstream: &UpstreamMetadata,
    request: &ClientTokenRequest<'_>,
    now: u64,
) -> Result<UpstreamTokenRequest, Error> {
    let ClientTokenRequest { authorization, body } = *request;
    let params = Params::parse(body)?;
    let presented_client = authenticate(config, caps, authorization, &params)?;
    let resource = site.requested_resource(params.get("resource"))?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    let grant_type = params.require("grant_type", "grant_type is missing")?;
    let (client_id, id_token_nonce, refreshing) = match caps.grant_type(grant_type) {
        Some(GrantType::AuthorizationCode) => {
            let sealed = params.require("code", "code is missing")?;
            let grant: CodeGrant = config
                .sealing_keys
                .open(Purpose::Code, sealed, now)
                .map_err(|_| Error::invalid_grant("the code is invalid or expired"))?;
            if grant.client_id.as_deref() != presented_client.as_deref() {
                return Err(Error::invalid_grant("the code was issued to another client"));
            }
            if params.get("redirect_uri") != Some(&*grant.redirect_uri) {
                return Err(Error::invalid_grant("redirect_uri does not match the authorization request"));
            }
            if let (Some(requested), Some(granted)) = (&resource, &grant.resource) {
                if requested != granted {
                    return Err(Error::oauth(
                        ErrorCode::InvalidTarget,
                        "resource differs from the authorization request",
                    ));
                }
            }
            let verifier = grant.code_challenge.verify(params.get("code_verifier"))?;
            form.append_pair("grant_type", GrantType::AuthorizationCode.as_str())
                .append_pair("code", grant.access_code.expose())
                .append_pair("redirect_uri", &site.callback_url())
                .append_pair("code_verifier", verifier.expose());
            // Access's id_token must answer this code's authorization request, if it says.
            (grant.client_id, Some(id_token_nonce(&grant.code_challenge)), None)
        }
        Some(GrantType::RefreshToken) => {
            let sent = params.require("refresh_token", "refresh_token is missing")?;
            let presented = sealed_token::open_refresh(config, site, sent, presented_client.as_deref(), now)?;
            form.append_pair("grant_type", GrantType::RefreshToken.as_str())
                .append_pair("refresh_token", presented.access_refresh.expose());
            let scope = params.get("scope").map(|scope| caps.grant_scope(Some(scope)));
            if let Some(scope) = &scope {
                form.append_pair("scope", scope);
            }
            let client_id = presented.client_id.clone();
            (client_id, None, Some(Refreshing { sent: Secret::new(sent), presented, scope }))
        }
        None => return Err(Error::oauth(ErrorCode::UnsupportedGrantType, "grant_type is not supported")),
    };
    form.append_pair("client_id", &config.access.client_id);
    if let Some(secret) = &config.access.client_secret {
        form.append_pair("client_secret", secret.expose());
    }
    Ok(UpstreamTokenRequest {
        url: upstream.token_endpoint.clone(),
        body: form.finish(),
        id_token_nonce,
        client_id,
        refreshing,
    })
}

/// The normalised successful answer (RFC 6749 §5.1). Access's `id_token` is not
/// passed on: it names Access as issuer, not this gateway. `S` is a token: a [`Secret`] as
/// the gateway holds the answer, exposed as it writes it ([`Self::expose`]). Read back only
/// as the gateway wrote it (an answer kept for the reuse grace).
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse<S = Secret> {
    access_token: S,
    token_type: TokenType,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<S>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// `Debug` never shows a token, exposed or not.
impl<S> std::fmt::Debug for TokenResponse<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("scope", &self.scope)
            .finish()
    }
}

/// The only token type the gateway issues (RFC 6750).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum TokenType {
    Bearer,
}

impl TokenResponse {
    /// The same answer `seconds` later: the access token has that much less to live.
    pub fn aged(&self, seconds: u64) -> Self {
        Self { expires_in: self.expires_in.map(|left| left.saturating_sub(seconds)), ..self.clone() }
    }

    /// The answer with its tokens exposed, to be written for the client it belongs to (or,
    /// sealed, for the reuse grace).
    pub fn expose(&self) -> TokenResponse<&str> {
        TokenResponse {
            access_token: self.access_token.expose(),
            token_type: self.token_type,
            expires_in: self.expires_in,
            refresh_token: self.refresh_token.as_ref().map(Secret::expose),
            scope: self.scope.clone(),
        }
    }
}

/// Whether the client gets an access token sealed by the gateway rather than Access's own.
fn seals_access(mode: TokenMode, tokens: &UpstreamTokens) -> Result<bool, Error> {
    let access_token = tokens.access_token.expose();
    match mode {
        // An opaque token would fail every MCP request and send the client round a
        // login loop, so say so here.
        TokenMode::Passthrough if !is_jwt(access_token) => Err(Error::config(
            "TOKEN_MODE",
            "is passthrough, but Access issues opaque access tokens (use auto or sealed)",
        )),
        // One with id_token claims would be refused at the MCP endpoint just the same.
        TokenMode::Passthrough if carries_id_token_claims(access_token) => Err(Error::config(
            "TOKEN_MODE",
            "is passthrough, but Access's access tokens carry id_token claims (use auto or sealed)",
        )),
        TokenMode::Passthrough => Ok(false),
        TokenMode::Sealed => Ok(true),
        TokenMode::Auto => Ok(!is_jwt(access_token) || carries_id_token_claims(access_token)),
    }
}

/// The `id_token` the edge must verify before [`respond`] can seal the client's access
/// token, or `None` when the client gets Access's own.
pub fn id_token_to_verify(mode: TokenMode, tokens: &UpstreamTokens) -> Result<Option<&str>, Error> {
    if !seals_access(mode, tokens)? {
        return Ok(None);
    }
    tokens.id_token.as_ref().map(|id_token| Some(id_token.expose())).ok_or_else(no_id_token)
}

/// The client's token response in every token mode. The access token is Access's own
/// or sealed around `identity` (from the `id_token` [`id_token_to_verify`] named).
/// Access's refresh token is always sealed: a raw one would work at any gateway holding
/// the secret, for whoever found it. Every answer to a refresh carries one: a new one
/// Access rotated to, for a new lifetime, or else the one presented, sealed anew with a
/// fresh issue time and its original expiry, so that no refresh extends a login. The
/// gateway's tokens name the client `sent` was for (a client with a metadata document;
/// `None`: the registered client).
pub fn respond(
    config: &Config,
    site: &Site,
    tokens: UpstreamTokens,
    identity: Option<&Identity>,
    sent: &UpstreamTokenRequest,
    now: u64,
    entropy: &mut dyn Entropy,
) -> Result<TokenResponse, Error> {
    let client_id = sent.client_id.as_ref();
    let (access_token, expires_in) = if seals_access(config.token_mode, &tokens)? {
        let identity = identity.ok_or_else(no_id_token)?;
        let (sealed, expires_in) = sealed_token::seal_access(config, site, &tokens, identity, client_id, now, entropy)?;
        (Secret::new(sealed), Some(expires_in))
    } else {
        (tokens.access_token, tokens.expires_in)
    };
    let presented = sent.refreshing.as_ref().map(|refreshing| &refreshing.presented);
    let renewed = match (tokens.refresh_token, presented) {
        (Some(new), Some(presented)) if presented.access_refresh.matches(new.expose()) => {
            Some((presented.access_refresh.clone(), presented.expires_at))
        }
        (Some(new), _) => Some((new, sealed_token::refresh_expiry(config, now))),
        (None, Some(presented)) => Some((presented.access_refresh.clone(), presented.expires_at)),
        (None, None) => None,
    };
    let refresh_token = renewed
        .map(|(rt, until)| sealed_token::seal_refresh(config, site, &rt, client_id, (now, until), entropy))
        .transpose()?
        .map(Secret::new);
    Ok(TokenResponse { access_token, token_type: TokenType::Bearer, expires_in, refresh_token, scope: tokens.scope })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::access::upstream::finish;
    use crate::access::upstream::tests::upstream;
    use crate::config::tests::{config_from, test_config, vars, ISSUER};
    use crate::oauth::authorize::tests::NOW;
    use crate::oauth::metadata::tests::site;
    use crate::oauth::pkce::tests::{challenge, VERIFIER};
    use crate::primitives::seal::tests::CountingEntropy;

    const REDIRECT: &str = "http://localhost:4567/callback";

    fn sealed_code(config: &Config, resource: Option<&str>) -> String {
        code_for(config, resource, None)
    }

    /// A value as a sealed payload gives it back.
    fn sealed<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_value(text.into()).unwrap()
    }

    /// A code issued to `client_id` (a document client; `None`: the registered client).
    pub(crate) fn code_for(config: &Config, resource: Option<&str>, client_id: Option<&str>) -> String {
        let grant = CodeGrant {
            access_code: "access-code",
            redirect_uri: sealed(REDIRECT),
            code_challenge: challenge(),
            resource: resource.map(sealed),
            client_id: client_id.map(sealed),
        };
        config.sealing_keys.seal(Purpose::Code, &grant, NOW + 60, &mut CountingEntropy::default()).unwrap()
    }

    pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }

    pub(crate) fn run(config: &Config, authorization: Option<&str>, body: &str) -> Result<UpstreamTokenRequest, Error> {
        let caps = Capabilities::new(config, &upstream());
        prepare(config, &site(), &caps, &upstream(), &ClientTokenRequest { authorization, body }, NOW)
    }

    pub(crate) fn code_request(config: &Config, extra: &[(&str, &str)]) -> String {
        let code = sealed_code(config, Some("https://mcp.example.com/mcp"));
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "abc123"),
        ];
        pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        pairs.extend_from_slice(extra);
        pairs.retain(|(_, v)| !v.is_empty());
        form(&pairs)
    }

    #[test]
    fn public_client_code_exchange_gets_the_secret_added_and_redirect_rewritten() {
        let config = test_config();
        let sent = run(&config, None, &code_request(&config, &[("resource", "https://mcp.example.com/mcp")])).unwrap();
        assert_eq!(sent.url, format!("{ISSUER}/token"));
        assert_eq!(
            sent.body,
            form(&[
                ("grant_type", "authorization_code"),
                ("code", "access-code"),
                ("redirect_uri", "https://mcp.example.com/callback"),
                ("code_verifier", VERIFIER),
                ("client_id", "abc123"),
                ("client_secret", "s3cret"),
            ])
        );
        assert!(!format!("{sent:?}").contains("s3cret"));
        // Access's id_token must answer this code's authorization request, if it says.
        assert_eq!(sent.id_token_nonce, Some(id_token_nonce(&challenge())));
    }

    #[test]
    fn confidential_clients_basic_and_post() {
        let config = test_config();
        let basic = format!("Basic {}", STANDARD.encode("abc123:s3cret"));
        assert!(run(&config, Some(&basic), &code_request(&config, &[("client_id", "")])).is_ok());
        assert!(run(&config, None, &code_request(&config, &[("client_secret", "s3cret")])).is_ok());
        let wrong = format!("Basic {}", STANDARD.encode("abc123:nope"));
        assert_eq!(
            run(&config, Some(&wrong), &code_request(&config, &[("client_id", "")])).unwrap_err(),
            Error::InvalidClientBasic
        );
        assert_eq!(
            run(&config, Some("Basic !!!"), &code_request(&config, &[])).unwrap_err(),
            Error::InvalidClientBasic
        );
        let post_wrong = run(&config, None, &code_request(&config, &[("client_secret", "nope")]));
        assert!(matches!(post_wrong, Err(Error::OAuth { code: ErrorCode::InvalidClient, .. })));
        let both =
            run(&config, Some(&basic), &code_request(&config, &[("client_secret", "s3cret"), ("client_id", "")]));
        assert!(matches!(both, Err(Error::OAuth { code: ErrorCode::InvalidRequest, .. })));
    }

    #[test]
    fn pkce_only_mode_sends_no_secret_and_refuses_presented_ones() {
        let mut v = vars();
        v.remove("ACCESS_CLIENT_SECRET");
        let config = config_from(&v).unwrap();
        let sent = run(&config, None, &code_request(&config, &[])).unwrap();
        assert!(!sent.body.contains("client_secret"));
        assert!(run(&config, None, &code_request(&config, &[("client_secret", "anything")])).is_err());
    }

    #[test]
    fn rejects_bad_exchanges_with_the_rfc_error() {
        let config = test_config();
        let other_key = {
            let mut v = vars();
            v.insert("SEALING_KEYS", crate::primitives::seal::tests::KEY_B.into());
            config_from(&v).unwrap()
        };
        let foreign_code = sealed_code(&other_key, None);
        let state_as_code =
            config.sealing_keys.seal(Purpose::State, &"x", NOW + 60, &mut CountingEntropy::default()).unwrap();
        use ErrorCode::*;
        let cases: Vec<(String, ErrorCode)> = vec![
            (code_request(&config, &[("redirect_uri", "http://localhost:4568/callback")]), InvalidGrant),
            (code_request(&config, &[("redirect_uri", "")]), InvalidGrant),
            (code_request(&config, &[("resource", "https://other.example/mcp")]), InvalidTarget),
            (code_request(&config, &[("code_verifier", "")]), InvalidRequest),
            (code_request(&config, &[("code_verifier", "short")]), InvalidGrant),
            // Well-formed, but not the verifier of the code's challenge: never sent to Access.
            (code_request(&config, &[("code_verifier", &"a".repeat(43))]), InvalidGrant),
            (code_request(&config, &[("code_verifier", &format!("{VERIFIER}x"))]), InvalidGrant),
            (code_request(&config, &[("code", "garbage")]), InvalidGrant),
            (code_request(&config, &[("code", &foreign_code)]), InvalidGrant),
            (code_request(&config, &[("code", &state_as_code)]), InvalidGrant),
            (code_request(&config, &[("code", "")]), InvalidRequest),
            (code_request(&config, &[("client_id", "other")]), InvalidClient),
            (code_request(&config, &[("grant_type", "password")]), UnsupportedGrantType),
            (code_request(&config, &[("grant_type", "")]), InvalidRequest),
            (format!("{}&code=again", code_request(&config, &[])), InvalidRequest),
        ];
        for (body, expected) in cases {
            match run(&config, None, &body) {
                Err(Error::OAuth { code, .. }) => assert_eq!(code, expected, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let caps = Capabilities::new(&config, &upstream());
        // An expired code.
        let late = prepare(
            &config,
            &site(),
            &caps,
            &upstream(),
            &ClientTokenRequest { authorization: None, body: &code_request(&config, &[]) },
            NOW + 61,
        );
        assert!(matches!(late, Err(Error::OAuth { code: InvalidGrant, .. })));
    }

    pub(crate) fn sealed_refresh(config: &Config, access_refresh: &str) -> String {
        sealed_for(config, access_refresh, None, (NOW, sealed_token::refresh_expiry(config, NOW)))
    }

    /// Access's `access_refresh` sealed for `client` (`None`: the registered client), issued and expiring at `times`.
    fn sealed_for(config: &Config, access_refresh: &str, client: Option<&str>, times: (u64, u64)) -> String {
        let (rt, client) = (Secret::new(access_refresh), client.map(sealed::<ClientIdUrl>));
        sealed_token::seal_refresh(config, &site(), &rt, client.as_ref(), times, &mut CountingEntropy::default())
            .unwrap()
    }
    fn refresh_request(refresh_token: &str) -> String {
        form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "abc123"),
            ("scope", "email x"),
        ])
    }

    #[test]
    fn refresh_is_relayed_only_when_supported() {
        let config = test_config();
        let body = refresh_request(&sealed_refresh(&config, "rt-1"));
        let sent = run(&config, None, &body).unwrap();
        assert_eq!(
            sent.body,
            form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "rt-1"),
                ("scope", "openid email"),
                ("client_id", "abc123"),
                ("client_secret", "s3cret")
            ])
        );
        let no_refresh =
            Capabilities { grant_types: &[GrantType::AuthorizationCode], ..Capabilities::new(&config, &upstream()) };
        let refused = prepare(
            &config,
            &site(),
            &no_refresh,
            &upstream(),
            &ClientTokenRequest { authorization: None, body: &body },
            NOW,
        );
        assert!(matches!(refused, Err(Error::OAuth { code: ErrorCode::UnsupportedGrantType, .. })));
    }

    #[test]
    fn only_this_deployments_sealed_refresh_tokens_are_relayed() {
        for mode in ["passthrough", "auto", "sealed"] {
            let mut v = vars();
            v.insert("TOKEN_MODE", mode.into());
            let config = config_from(&v).unwrap();
            v.insert("SEALING_KEYS", crate::primitives::seal::tests::KEY_B.into());
            let other_deployment = config_from(&v).unwrap();
            let sealed = sealed_refresh(&config, "rt-1");
            let state =
                config.sealing_keys.seal(Purpose::State, &"rt-1", NOW + 60, &mut CountingEntropy::default()).unwrap();
            for refresh_token in [
                "rt-1".to_owned(),
                sealed_refresh(&other_deployment, "rt-1"),
                state,
                sealed[..sealed.len() - 2].to_owned(),
            ] {
                let refused = run(&config, None, &refresh_request(&refresh_token));
                assert!(matches!(refused, Err(Error::OAuth { code: ErrorCode::InvalidGrant, .. })), "{mode}");
            }
            assert!(run(&config, None, &refresh_request(&sealed)).unwrap().body.contains("refresh_token=rt-1&"));
        }
    }

    mod client_id_metadata_documents {
        use super::*;
        use crate::clients::client_id_metadata::tests::CLIENT;

        const OTHER: &str = "https://other.example.com/client.json";

        fn exchange(
            config: &Config,
            code_client: Option<&str>,
            authorization: Option<&str>,
            pairs: &[(&str, &str)],
        ) -> Result<UpstreamTokenRequest, Error> {
            let code = code_for(config, None, code_client);
            let mut all = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ];
            all.extend_from_slice(pairs);
            run(config, authorization, &form(&all))
        }

        fn code_of(result: Result<UpstreamTokenRequest, Error>) -> Option<ErrorCode> {
            match result {
                Ok(_) => None,
                Err(Error::OAuth { code, .. }) => Some(code),
                Err(Error::InvalidClientBasic) => Some(ErrorCode::InvalidClient),
                Err(other) => panic!("{other:?}"),
            }
        }

        #[test]
        fn a_code_is_exchanged_only_by_the_client_it_was_issued_to() {
            let config = test_config();
            let sent = exchange(&config, Some(CLIENT), None, &[("client_id", CLIENT)]).unwrap();
            assert_eq!(sent.client_id.as_deref(), Some(CLIENT));
            // Access still sees the one client it knows, authenticated with the gateway's secret.
            assert!(sent.body.ends_with("&client_id=abc123&client_secret=s3cret"), "{:?}", sent.body);
            for (code_client, client_id) in [(Some(CLIENT), OTHER), (Some(CLIENT), "abc123"), (None, CLIENT)] {
                assert_eq!(
                    code_of(exchange(&config, code_client, None, &[("client_id", client_id)])),
                    Some(ErrorCode::InvalidGrant),
                    "{code_client:?} {client_id}"
                );
            }
            // With no client_id the client is unknown, as for registered clients.
            assert_eq!(code_of(exchange(&config, Some(CLIENT), None, &[])), Some(ErrorCode::InvalidClient));
        }

        #[test]
        fn a_document_client_presents_no_secret() {
            let config = test_config();
            let secret = exchange(&config, Some(CLIENT), None, &[("client_id", CLIENT), ("client_secret", "s3cret")]);
            assert_eq!(code_of(secret), Some(ErrorCode::InvalidClient));
            let basic = format!("Basic {}", STANDARD.encode(format!("{}:s3cret", CLIENT.replace(':', "%3A"))));
            assert_eq!(exchange(&config, Some(CLIENT), Some(&basic), &[]).unwrap_err(), Error::InvalidClientBasic);
        }

        #[test]
        fn with_documents_off_a_url_client_is_unknown_at_the_token_endpoint() {
            let mut v = vars();
            v.insert("CIMD", "off".into());
            let config = config_from(&v).unwrap();
            assert_eq!(
                code_of(exchange(&config, Some(CLIENT), None, &[("client_id", CLIENT)])),
                Some(ErrorCode::InvalidClient)
            );
        }

        #[test]
        fn a_refresh_token_is_used_only_by_the_client_it_was_issued_to() {
            let config = test_config();
            let until = sealed_token::refresh_expiry(&config, NOW);
            let seal = |client: Option<&str>| sealed_for(&config, "rt-1", client, (NOW, until));
            let refresh = |token: &str, client_id: &str| {
                run(
                    &config,
                    None,
                    &form(&[("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client_id)]),
                )
            };
            let document_token = seal(Some(CLIENT));
            let sent = refresh(&document_token, CLIENT).unwrap();
            assert!(sent.body.contains("refresh_token=rt-1&") && sent.client_id.as_deref() == Some(CLIENT));
            assert_eq!(code_of(refresh(&document_token, OTHER)), Some(ErrorCode::InvalidGrant));
            assert_eq!(code_of(refresh(&document_token, "abc123")), Some(ErrorCode::InvalidGrant));
            assert_eq!(code_of(refresh(&seal(None), CLIENT)), Some(ErrorCode::InvalidGrant));
            assert!(refresh(&seal(None), "abc123").is_ok());
            // The tokens answered carry the client on, so the next refresh is bound as well.
            let tokens = upstream_tokens("opaque", Some("rt-2"));
            let answer = respond(
                &mode("sealed"),
                &site(),
                tokens,
                Some(&identity()),
                &code_exchange(Some(CLIENT)),
                NOW,
                &mut CountingEntropy::default(),
            )
            .unwrap();
            let answer = value(&answer);
            let next = answer["refresh_token"].as_str().unwrap();
            assert!(sealed_token::open_refresh(&mode("sealed"), &site(), next, Some(CLIENT), NOW).is_ok());
            assert!(sealed_token::open_refresh(&mode("sealed"), &site(), next, None, NOW).is_err());
            let access =
                sealed_token::open_access(&mode("sealed"), &site(), answer["access_token"].as_str().unwrap(), NOW)
                    .unwrap();
            assert_eq!(access.client.as_deref(), Some(CLIENT));
        }
    }

    /// What a code exchange for `client_id` sent to Access, as far as [`respond`] reads it.
    pub fn code_exchange(client_id: Option<&str>) -> UpstreamTokenRequest {
        UpstreamTokenRequest {
            url: String::new(),
            body: String::new(),
            id_token_nonce: None,
            client_id: client_id.map(sealed),
            refreshing: None,
        }
    }

    /// An answer the gateway gives, for the tests of what keeps it.
    pub fn token_response(expires_in: Option<u64>, refresh_token: &str) -> TokenResponse {
        TokenResponse {
            access_token: Secret::new("access"),
            token_type: TokenType::Bearer,
            expires_in,
            refresh_token: Some(Secret::new(refresh_token)),
            scope: Some("openid email".into()),
        }
    }

    fn upstream_tokens(access: &str, refresh_token: Option<&str>) -> UpstreamTokens {
        UpstreamTokens {
            access_token: Secret::new(access),
            id_token: Some(Secret::new("h.c.s")),
            expires_in: Some(300),
            refresh_token: refresh_token.map(Secret::new),
            scope: Some("openid email".into()),
        }
    }

    fn mode(name: &str) -> Config {
        let mut v = vars();
        v.insert("TOKEN_MODE", name.into());
        config_from(&v).unwrap()
    }

    fn identity() -> Identity {
        Identity { subject: "sub-1".into(), email: None, groups: Vec::new(), not_before: None, expires_at: NOW + 600 }
    }

    /// The answer as serde_json reads it.
    fn value(response: &TokenResponse) -> serde_json::Value {
        serde_json::to_value(response.expose()).unwrap()
    }

    fn respond_json(config: &Config, tokens: UpstreamTokens, identity: Option<&Identity>) -> serde_json::Value {
        let response =
            respond(config, &site(), tokens, identity, &code_exchange(None), NOW, &mut CountingEntropy::default())
                .unwrap();
        value(&response)
    }

    #[test]
    fn token_modes_decide_who_seals() {
        let tokens = |access: &str| upstream_tokens(access, None);
        assert_eq!(id_token_to_verify(TokenMode::Auto, &tokens("h.c.s")), Ok(None));
        assert_eq!(id_token_to_verify(TokenMode::Auto, &tokens("opaque123")), Ok(Some("h.c.s")));
        assert_eq!(id_token_to_verify(TokenMode::Sealed, &tokens("h.c.s")), Ok(Some("h.c.s")));
        assert_eq!(id_token_to_verify(TokenMode::Passthrough, &tokens("h.c.s")), Ok(None));
        assert!(matches!(
            id_token_to_verify(TokenMode::Passthrough, &tokens("opaque123")),
            Err(Error::Config { setting: "TOKEN_MODE", .. })
        ));
        // An access token with id_token claims would be refused at /mcp: auto seals it.
        let id_token_shaped = crate::access::token::tests::sign_with(
            "signing",
            &crate::access::token::tests::header(),
            &serde_json::json!({"sub": "s", "nonce": "n"}),
        );
        assert_eq!(id_token_to_verify(TokenMode::Auto, &tokens(&id_token_shaped)), Ok(Some("h.c.s")));
        assert!(matches!(
            id_token_to_verify(TokenMode::Passthrough, &tokens(&id_token_shaped)),
            Err(Error::Config { setting: "TOKEN_MODE", .. })
        ));
        let no_id_token = UpstreamTokens { id_token: None, ..tokens("opaque123") };
        assert!(matches!(id_token_to_verify(TokenMode::Auto, &no_id_token), Err(Error::Upstream { .. })));
        // Sealing without the verified identity fails closed.
        let unverified = respond(
            &mode("sealed"),
            &site(),
            tokens("h.c.s"),
            None,
            &code_exchange(None),
            NOW,
            &mut CountingEntropy::default(),
        );
        assert!(matches!(unverified, Err(Error::Upstream { .. })));
    }

    #[test]
    fn the_refresh_token_is_sealed_in_every_mode() {
        let cases = [("passthrough", "a.b.c"), ("auto", "a.b.c"), ("auto", "opaque"), ("sealed", "a.b.c")];
        for (name, access) in cases {
            let config = mode(name);
            let body = respond_json(&config, upstream_tokens(access, Some("access-rt")), Some(&identity()));
            let refresh = body["refresh_token"].as_str().unwrap();
            assert!(!refresh.contains("access-rt"), "{name} {access}: {body}");
            let opened = sealed_token::open_refresh(&config, &site(), refresh, None, NOW).unwrap();
            assert_eq!(opened.access_refresh.expose(), "access-rt");
            let passed_through = body["access_token"] == access;
            assert_eq!(passed_through, name != "sealed" && access == "a.b.c", "{name} {access}: {body}");
            // A code exchange Access answered without one gives none (a refresh always does).
            let body = respond_json(&config, upstream_tokens(access, None), Some(&identity()));
            assert!(body.get("refresh_token").is_none(), "{name} {access}: {body}");
        }
    }

    /// What the refresh of `presented` (issued to `client_id`, `None`: the registered client)
    /// sent, as `prepare` read it.
    pub(crate) fn refreshed(config: &Config, presented: &str, scope: Option<&str>) -> UpstreamTokenRequest {
        let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", presented), ("client_id", "abc123")];
        pairs.extend(scope.map(|scope| ("scope", scope)));
        run(config, None, &form(&pairs)).unwrap()
    }

    #[test]
    fn every_refresh_answer_carries_a_refresh_token_and_none_outlives_the_login() {
        let config = test_config();
        let issued_at = NOW - 1000;
        let original_expiry = sealed_token::refresh_expiry(&config, issued_at);
        let presented = sealed_for(&config, "rt-1", None, (issued_at, original_expiry));
        let sent = refreshed(&config, &presented, None);
        let answer = |access_refresh: Option<&str>| {
            let tokens = upstream_tokens("a.b.c", access_refresh);
            let response = respond(&config, &site(), tokens, None, &sent, NOW, &mut CountingEntropy(9)).unwrap();
            let token = value(&response)["refresh_token"].as_str().unwrap().to_owned();
            assert_ne!(token, presented, "a new token every time");
            let opened = sealed_token::open_refresh(&config, &site(), &token, None, NOW).unwrap();
            (opened.access_refresh.expose().to_owned(), opened.expires_at)
        };
        // Access rotated: its new token, for a new lifetime.
        assert_eq!(answer(Some("rt-2")), ("rt-2".into(), NOW + config.refresh_token_ttl_seconds));
        // Access did not rotate (no token, or the same one again): the presented one sealed
        // anew, with its original expiry.
        assert_eq!(answer(None), ("rt-1".into(), original_expiry));
        assert_eq!(answer(Some("rt-1")), ("rt-1".into(), original_expiry));
    }

    /// Every refused refresh token is `invalid_grant` (RFC 6749 §5.2), never sent to Access:
    /// a client told `invalid_request` or a 5xx keeps retrying a token that cannot work.
    #[test]
    fn every_refused_refresh_token_is_invalid_grant() {
        let config = test_config();
        let good = sealed_refresh(&config, "rt-1");
        let mut v = vars();
        v.insert("SEALING_KEYS", crate::primitives::seal::tests::KEY_B.into());
        let other_deployment = sealed_refresh(&config_from(&v).unwrap(), "rt-1");
        let until = sealed_token::refresh_expiry(&config, NOW);
        let another_client = sealed_for(&config, "rt-1", Some("https://client.example.com/client.json"), (NOW, until));
        let expired = sealed_for(&config, "rt-1", None, (NOW - 100, NOW));
        let code = sealed_code(&config, None);
        let mut flipped = good.clone().into_bytes();
        flipped[30] = if flipped[30] == b'A' { b'B' } else { b'A' };
        let kinds = [
            ("garbage", "not-a-refresh-token".to_owned()),
            ("not base64", "***".to_owned()),
            ("truncated", good[..good.len() - 5].to_owned()),
            ("a byte changed", String::from_utf8(flipped).unwrap()),
            ("too long", "A".repeat(20_000)),
            ("another deployment's", other_deployment),
            ("another client's", another_client),
            ("expired", expired),
            ("a sealed code", code),
            ("Access's own", "rt-1".to_owned()),
        ];
        for (kind, token) in kinds {
            match run(&config, None, &refresh_request(&token)) {
                Err(error @ Error::OAuth { code: ErrorCode::InvalidGrant, .. }) => {
                    assert_eq!(error.to_response(crate::primitives::error::Surface::Json).status, 400, "{kind}")
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn normalises_access_answers() {
        let tokens = finish(200, r#"{"access_token":"a.b.c","token_type":"bearer","expires_in":"300","id_token":"x.y.z","refresh_token":"r"}"#).unwrap();
        assert!(!format!("{tokens:?}").contains("a.b.c"));
        assert_eq!(tokens.id_token.as_ref().map(Secret::expose), Some("x.y.z"));
        let ok = respond(
            &mode("passthrough"),
            &site(),
            tokens,
            None,
            &code_exchange(None),
            NOW,
            &mut CountingEntropy::default(),
        )
        .unwrap();
        let json = value(&ok);
        let refresh = json["refresh_token"].as_str().unwrap();
        // Access's id_token names Access as its issuer, not the gateway: it is not passed on.
        assert_eq!(
            json,
            serde_json::json!({"access_token":"a.b.c","token_type":"Bearer","expires_in":300,"refresh_token":refresh})
        );
        assert!(!format!("{ok:?}").contains("a.b.c") && !format!("{ok:?}").contains(refresh));
        let exposed = format!("{:?}", ok.expose());
        assert!(!exposed.contains("a.b.c") && !exposed.contains(refresh), "nor once exposed: {exposed}");
    }

    /// A value that carries a secret is written only in its exposed form: as held, it has
    /// no `Serialize`.
    #[test]
    fn what_carries_a_secret_is_written_only_exposed() {
        use crate::oauth::refresh_grace::GraceAnswer;
        use crate::primitives::secret::tests::{NotSerializable, Probe};
        use std::marker::PhantomData;
        assert!(!Probe::<TokenResponse>(PhantomData).serializable());
        assert!(!Probe::<CodeGrant>(PhantomData).serializable());
        assert!(!Probe::<GraceAnswer>(PhantomData).serializable());
        assert!(Probe::<TokenResponse<&str>>(PhantomData).serializable());
        assert!(Probe::<CodeGrant<&str>>(PhantomData).serializable());
        assert!(Probe::<GraceAnswer<&str>>(PhantomData).serializable());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_token_requests_never_panic(body in "\\PC{0,300}", authorization in "\\PC{0,60}") {
            let config = test_config();
            let _ = run(&config, Some(&authorization), &body);
            let _ = run(&config, None, &body);
        }
    }
}
