//! The authorization endpoint relay (RFC 6749 §4.1, RFC 7636, RFC 9207): validate
//! the client's request, ask the person for consent, send the browser to Access
//! with the gateway's one registered callback, and bring Access's answer back to the
//! client sealed. Nothing is stored: what must survive travels sealed.

use crate::access::upstream::UpstreamMetadata;
use crate::clients::client_id_metadata::{ClientIdUrl, ClientMetadata};
use crate::clients::redirect_uri::RedirectUri;
use crate::config::Config;
use crate::oauth::authorization_request::{AuthorizationRequest, ClientState};
use crate::oauth::capabilities::{Capabilities, ResponseType};
use crate::oauth::consent::{self, ConsentTicket, Submission};
use crate::oauth::metadata::{Resource, Site};
use crate::oauth::pkce::PkceChallenge;
use crate::primitives::error::{ClientMetadataFailure, Error, ErrorCode, Surface};
use crate::primitives::http::{with_query, Response};
use crate::primitives::params::Params;
use crate::primitives::seal::{Entropy, Purpose};
use crate::primitives::secret::Secret;
use serde::{Deserialize, Serialize};

/// How long a person has to sign in at Access.
pub const STATE_TTL_SECONDS: u64 = 15 * 60;
/// How long the client has to redeem the code (Access's own code expires sooner).
pub const CODE_TTL_SECONDS: u64 = 5 * 60;

/// What the sealed `code` given to the client wraps (member names `ac`, `ru`, … as in the
/// codes already out there). `S` is Access's code: a [`Secret`] as `/token` reads it, and as
/// the callback writes it the `&str` Access sent, sealed at once.
#[derive(Serialize, Deserialize)]
pub struct CodeGrant<S = Secret> {
    /// Access's authorization code.
    #[serde(rename = "ac")]
    pub access_code: S,
    #[serde(rename = "ru")]
    pub redirect_uri: RedirectUri,
    /// The client's S256 `code_challenge`: the gateway checks the verifier itself
    /// before it vouches for the code with its client secret (RFC 7636 §4.6).
    #[serde(rename = "cc")]
    pub code_challenge: PkceChallenge,
    #[serde(rename = "rs", skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The client the code was issued to, if it has a metadata document: `/token` takes
    /// the code from that client only.
    #[serde(rename = "ci", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientIdUrl>,
}

/// What the edge fetched (or found cached) for a `client_id` URL.
pub type Document = Result<ClientMetadata, ClientMetadataFailure>;

/// Why `GET /authorize` was refused: a page (the client or its redirect URI is not known to
/// be good) or an error response sent back to the checked redirect URI.
enum Refusal {
    Page(Error),
    Redirect(Response),
}

/// The request-independent inputs of the relay.
pub struct Relay<'a> {
    pub config: &'a Config,
    pub site: &'a Site,
    pub now: u64,
}

impl Relay<'_> {
    fn redirect_error(&self, request_redirect: &str, state: Option<&str>, error: Error) -> Response {
        error.to_response(Surface::Redirect { redirect_uri: request_redirect, state, issuer: &self.site.issuer })
    }

    /// The metadata document URL the edge must fetch before [`Self::authorize`], when the
    /// request's `client_id` is one the gateway accepts and its `redirect_uri` passes
    /// `ALLOWED_REDIRECT_URIS`: a request refused anyway costs no fetch.
    pub fn document_url(&self, query: &str, caps: &Capabilities) -> Option<ClientIdUrl> {
        let params = Params::parse(query).ok()?;
        let client_id = params.get("client_id")?;
        self.config.redirect_policy.check(params.get("redirect_uri")?).ok()?;
        self.document_client(client_id, caps).ok().flatten()
    }

    /// A `client_id` that is a metadata document's URL, where `caps` accept such clients;
    /// `None`: an ordinary client id.
    fn document_client(&self, client_id: &str, caps: &Capabilities) -> Result<Option<ClientIdUrl>, Error> {
        match caps.client_id_metadata {
            true => self.config.client_metadata.document_url(client_id),
            false => Ok(None),
        }
    }

    /// Validates `GET /authorize`. Until `client_id` and `redirect_uri` are known to be
    /// good, errors are shown as a page (never redirected to an unchecked URI); after
    /// that they go back to the client (RFC 6749 §4.1.2.1). `document` is what the edge
    /// fetched for the [`Self::document_url`], if there is one.
    fn check(
        &self,
        query: &str,
        caps: &Capabilities,
        document: Option<&Document>,
    ) -> Result<AuthorizationRequest, Refusal> {
        let page = Refusal::Page;
        let params = Params::parse(query).map_err(page)?;
        let client_id = params.require("client_id", "client_id is missing").map_err(page)?;
        let document_url = self.document_client(client_id, caps).map_err(page)?;
        if document_url.is_none() && client_id != self.config.access.client_id {
            return Err(page(Error::invalid_request("unknown client_id")));
        }
        // Before the document: a redirect_uri refused anyway is not worth a fetch.
        let redirect_uri = params.require("redirect_uri", "redirect_uri is missing").map_err(page)?;
        let redirect_uri = self.config.redirect_policy.check(redirect_uri).map_err(page)?;
        let document = match (document_url, document) {
            (None, _) => None,
            (Some(url), Some(Ok(document))) if document.client_id == url => Some(document),
            (Some(_), Some(Err(failure))) => return Err(page(Error::ClientMetadata(*failure))),
            (Some(_), _) => {
                return Err(page(Error::Internal { reason: "the client's metadata document was not fetched" }))
            }
        };
        if let Some(document) = document {
            document.check_redirect_uri(&redirect_uri).map_err(|failure| page(Error::ClientMetadata(failure)))?;
        }

        let state = ClientState::parse(params.get("state")).map_err(page)?;
        let back = |error| Refusal::Redirect(self.redirect_error(&redirect_uri, state.as_deref(), error));
        let Some(response_type) = params.get("response_type") else {
            return Err(back(Error::invalid_request("response_type is missing")));
        };
        if caps.response_type(response_type).is_none() {
            let unsupported = Error::oauth(ErrorCode::UnsupportedResponseType, "only response_type=code is supported");
            return Err(back(unsupported));
        }
        let code_challenge =
            PkceChallenge::parse(params.get("code_challenge"), params.get("code_challenge_method"), caps)
                .map_err(back)?;
        let resource = self.site.requested_resource(params.get("resource")).map_err(back)?;
        Ok(AuthorizationRequest {
            redirect_uri,
            state,
            code_challenge,
            scope: caps.grant_scope(params.get("scope")),
            resource,
            client_id: document.map(|document| document.client_id.clone()),
        })
    }

    /// `GET /authorize`: straight on to Access when consent for this redirect target is
    /// remembered, otherwise the consent page. A refusal shown as a page is `Err` (so the
    /// request's log line names it), as are the gateway's own failures (no randomness); one
    /// sent back to the client's redirect URI is an answer.
    pub fn authorize(
        &self,
        query: &str,
        cookies: Option<&str>,
        caps: &Capabilities,
        upstream: &UpstreamMetadata,
        document: Option<&Document>,
        entropy: &mut dyn Entropy,
    ) -> Result<Response, Error> {
        let request = match self.check(query, caps, document) {
            Ok(request) => request,
            Err(Refusal::Page(error)) => return Err(error),
            Err(Refusal::Redirect(response)) => return Ok(response),
        };
        if consent::is_remembered(self.config, self.site, cookies, &request, self.now) {
            return self.to_access(&request, upstream, entropy);
        }
        let client = document.and_then(|document| document.as_ref().ok());
        consent::page(self.config, self.site, &request, client, self.now, entropy)
    }

    /// `POST /authorize`: the person's answer on the consent page.
    pub fn decide(
        &self,
        submission: &Submission,
        upstream: &UpstreamMetadata,
        entropy: &mut dyn Entropy,
    ) -> Result<Response, Error> {
        let ticket: ConsentTicket = match consent::check_submission(self.config, self.site, submission, self.now) {
            Ok(ticket) => ticket,
            Err(error) => return Ok(error.to_response(Surface::Page)),
        };
        let request = ticket.request;
        if !ticket.approved {
            let denied = Error::oauth(ErrorCode::AccessDenied, "the user denied access");
            return Ok(self.redirect_error(&request.redirect_uri, request.state.as_deref(), denied));
        }
        let response = self.to_access(&request, upstream, entropy)?;
        let cookies = consent::remember(self.config, self.site, submission.cookies, &request, self.now, entropy)?;
        Ok(cookies.into_iter().fold(response, |response, cookie| response.with_header("set-cookie", cookie)))
    }

    /// The redirect to Access's authorization endpoint.
    fn to_access(
        &self,
        request: &AuthorizationRequest,
        upstream: &UpstreamMetadata,
        entropy: &mut dyn Entropy,
    ) -> Result<Response, Error> {
        let state = self.config.sealing_keys.seal(Purpose::State, request, self.now + STATE_TTL_SECONDS, entropy)?;
        let callback = self.site.callback_url();
        Ok(Response::redirect(with_query(
            &upstream.authorization_endpoint,
            &[
                ("response_type", ResponseType::Code.as_str()),
                ("client_id", &self.config.access.client_id),
                ("redirect_uri", &callback),
                ("scope", &request.scope),
                ("state", &state),
                ("code_challenge", &request.code_challenge),
                ("code_challenge_method", request.code_challenge.method().as_str()),
                // Access echoes it in the id_token (OIDC Core §3.1.2.1), which tells an
                // id_token apart from an access token whatever their audiences.
                ("nonce", &id_token_nonce(&request.code_challenge)),
            ],
        )))
    }

    /// `GET /callback`: Access's answer, relayed to the client's redirect URI with a
    /// sealed code and the gateway's `iss` (RFC 9207).
    pub fn callback(&self, query: &str, entropy: &mut dyn Entropy) -> Result<Response, Error> {
        let page = |e: Error| Ok(e.to_response(Surface::Page));
        let params = match Params::parse(query) {
            Ok(params) => params,
            Err(error) => return page(error),
        };
        let Some(sealed_state) = params.get("state") else {
            return page(Error::invalid_request("the sign-in response has no state"));
        };
        let request: AuthorizationRequest = match self.config.sealing_keys.open(Purpose::State, sealed_state, self.now)
        {
            Ok(request) => request,
            Err(_) => return page(Error::invalid_request("the sign-in took too long or was tampered with")),
        };
        let back = |error: Error| Ok(self.redirect_error(&request.redirect_uri, request.state.as_deref(), error));
        // RFC 9207: an `iss` from Access, if sent, must be the app's issuer (mix-up defence).
        if params.get("iss").is_some_and(|iss| iss != self.config.access.issuer) {
            return back(Error::oauth(ErrorCode::ServerError, "the sign-in response came from the wrong issuer"));
        }
        if let Some(upstream_error) = params.get("error") {
            let code = ErrorCode::from_upstream(upstream_error)
                .filter(|c| {
                    matches!(c, ErrorCode::AccessDenied | ErrorCode::TemporarilyUnavailable | ErrorCode::InvalidScope)
                })
                .unwrap_or(ErrorCode::ServerError);
            return back(Error::oauth(code, "Cloudflare Access did not authorize the request"));
        }
        let Some(access_code) = params.get("code") else {
            return back(Error::oauth(ErrorCode::ServerError, "Cloudflare Access returned no code"));
        };
        let grant = CodeGrant {
            access_code,
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            resource: request.resource.clone(),
            client_id: request.client_id.clone(),
        };
        let code = self.config.sealing_keys.seal(Purpose::Code, &grant, self.now + CODE_TTL_SECONDS, entropy)?;
        let mut answer = vec![("code", code.as_str())];
        answer.extend(request.state.as_deref().map(|s| ("state", s)));
        answer.push(("iss", &self.site.issuer));
        Ok(Response::redirect(with_query(&request.redirect_uri, &answer)))
    }
}

/// The `nonce` sent to Access, derived from the PKCE challenge so that nothing is stored.
pub fn id_token_nonce(code_challenge: &PkceChallenge) -> String {
    crate::primitives::seal::digest(&format!("mcp-access-gateway/nonce/{code_challenge}"))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::access::upstream::tests::upstream;
    use crate::config::tests::{test_config, ISSUER};
    use crate::oauth::authorization_request::MAX_STATE_LEN;
    use crate::oauth::capabilities::tests::caps;
    use crate::oauth::metadata::tests::site;
    use crate::oauth::pkce::tests::CHALLENGE;
    use crate::primitives::seal::tests::{open_text, CountingEntropy};
    use crate::primitives::seal::OpenError;

    pub const NOW: u64 = 1_800_000_000;

    pub fn query(extra: &[(&str, &str)], without: &[&str]) -> String {
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", "abc123"),
            ("redirect_uri", "http://localhost:4567/callback"),
            ("state", "client-state"),
            ("scope", "openid email"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", "https://mcp.example.com/mcp"),
        ];
        params.retain(|(n, _)| !without.contains(n) && !extra.iter().any(|(e, _)| e == n));
        params.extend_from_slice(extra);
        with_query("", &params).trim_start_matches('?').to_owned()
    }

    impl Relay<'_> {
        /// What the Worker answers for `GET /authorize` when it refuses: the page, or the
        /// error sent back to the client's redirect URI.
        pub fn validate(
            &self,
            query: &str,
            caps: &Capabilities,
            document: Option<&Document>,
        ) -> Result<AuthorizationRequest, Response> {
            self.check(query, caps, document).map_err(|refusal| match refusal {
                Refusal::Page(error) => error.to_response(Surface::Page),
                Refusal::Redirect(response) => response,
            })
        }
    }

    fn location_params(response: &Response) -> Params {
        let location = response.header("location").expect("a redirect");
        Params::parse(location.split_once('?').map(|(_, q)| q).unwrap_or_default()).unwrap()
    }

    #[test]
    fn validates_a_well_formed_request() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let request = relay.validate(&query(&[("scope", "openid email bogus")], &[]), &caps(), None).unwrap();
        assert_eq!(request.redirect_uri, "http://localhost:4567/callback");
        assert_eq!(request.scope, "openid email");
        assert_eq!(request.resource.as_deref(), Some("https://mcp.example.com/mcp"));
    }

    #[test]
    fn unsafe_errors_are_pages_never_redirects() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        for q in [
            query(&[("redirect_uri", "https://evil.example/cb")], &[]),
            query(&[], &["redirect_uri"]),
            query(&[("client_id", "other")], &[]),
            query(&[], &["client_id"]),
            format!("{}&redirect_uri=https://evil.example/cb", query(&[], &[])),
            query(&[("state", &"s".repeat(MAX_STATE_LEN + 1))], &[]),
        ] {
            let response = relay.validate(&q, &caps(), None).unwrap_err();
            assert_eq!(response.status, 400, "{q}");
            assert!(response.header("location").is_none(), "{q}");
            assert!(response.header("content-type").unwrap().starts_with("text/html"));
        }
    }

    #[test]
    fn safe_errors_redirect_with_state_and_iss() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let cases: [(String, &str); 8] = [
            (query(&[("response_type", "token")], &[]), "unsupported_response_type"),
            (query(&[], &["response_type"]), "invalid_request"),
            (query(&[], &["code_challenge"]), "invalid_request"),
            (query(&[], &["code_challenge_method"]), "invalid_request"),
            (query(&[("code_challenge_method", "plain")], &[]), "invalid_request"),
            (query(&[("code_challenge", "short")], &[]), "invalid_request"),
            (query(&[("resource", "https://other.example/mcp")], &[]), "invalid_target"),
            (query(&[("resource", "https://mcp.example.com/mcp/")], &[]), "invalid_target"),
        ];
        for (q, expected) in cases {
            let response = relay.validate(&q, &caps(), None).unwrap_err();
            assert_eq!(response.status, 302, "{q}");
            let params = location_params(&response);
            assert_eq!(params.get("error"), Some(expected), "{q}");
            assert_eq!(params.get("state"), Some("client-state"));
            assert_eq!(params.get("iss"), Some("https://mcp.example.com"));
            assert!(response.header("location").unwrap().starts_with("http://localhost:4567/callback?"));
        }
    }

    /// Opens the consent page for `q` and submits `decision` from it, as the browser holding
    /// `cookies` would.
    fn consent(
        relay: &Relay,
        q: &str,
        cookies: Option<&str>,
        decision: &str,
        entropy: &mut CountingEntropy,
    ) -> Response {
        let page = relay.authorize(q, cookies, &caps(), &upstream(), None, entropy).unwrap();
        assert_eq!(page.status, 200, "the consent page for {q}");
        let (ticket, csrf_cookie) = consent::tests::form_fields(&page);
        let body = format!("ticket={ticket}&decision={decision}");
        let jar = cookies.map_or(csrf_cookie.clone(), |c| format!("{c}; {csrf_cookie}"));
        relay.decide(&consent::tests::same_origin(&body, Some(&jar)), &upstream(), entropy).unwrap()
    }

    fn set_cookies(response: &Response) -> Vec<String> {
        response.headers.iter().filter(|(n, _)| *n == "set-cookie").map(|(_, v)| v.clone()).collect()
    }

    #[test]
    fn first_visit_shows_consent_then_approval_goes_to_access() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let mut entropy = CountingEntropy::default();
        let answer = consent(&relay, &query(&[], &[]), None, "approve", &mut entropy);
        assert_eq!(answer.status, 302);
        let location = answer.header("location").unwrap();
        assert!(location.starts_with(&format!("{ISSUER}/authorization?")));
        let sent = location_params(&answer);
        assert_eq!(sent.get("client_id"), Some("abc123"));
        assert_eq!(sent.get("redirect_uri"), Some("https://mcp.example.com/callback"));
        assert_eq!(sent.get("code_challenge"), Some(CHALLENGE));
        assert_eq!(sent.get("code_challenge_method"), Some("S256"));
        assert_eq!(sent.get("scope"), Some("openid email"));
        assert_eq!(sent.get("resource"), None, "RFC 8707 resource is never forwarded to Access");
        assert_ne!(sent.get("state"), Some("client-state"));
        let browser = consent::tests::cookie_header(&set_cookies(&answer));

        // The next login from the same loopback client, on another port, skips the page.
        let again = relay
            .authorize(
                &query(&[("redirect_uri", "http://localhost:9999/callback")], &[]),
                Some(&browser),
                &caps(),
                &upstream(),
                None,
                &mut entropy,
            )
            .unwrap();
        assert_eq!(again.status, 302);
        assert!(again.header("location").unwrap().starts_with(&format!("{ISSUER}/authorization?")));
        // But not for another target.
        for other in ["https://claude.ai/api/mcp/auth_callback", "http://localhost:9999/other"] {
            let asked = relay
                .authorize(
                    &query(&[("redirect_uri", other)], &[]),
                    Some(&browser),
                    &caps(),
                    &upstream(),
                    None,
                    &mut entropy,
                )
                .unwrap();
            assert_eq!(asked.status, 200, "{other}");
        }
    }

    #[test]
    fn a_forwarder_is_asked_every_time_even_after_an_approval() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let mut entropy = CountingEntropy::default();
        let vscode = query(&[("redirect_uri", "https://vscode.dev/redirect")], &[]);
        let loopback = consent(&relay, &query(&[], &[]), None, "approve", &mut entropy);
        let mut browser = consent::tests::cookie_header(&set_cookies(&loopback));
        for _ in 0..2 {
            let approved = consent(&relay, &vscode, Some(&browser), "approve", &mut entropy);
            assert_eq!(approved.status, 302);
            assert!(set_cookies(&approved).is_empty(), "nothing remembered for a forwarder");
            browser = format!("{browser}; {}", consent::tests::cookie_header(&set_cookies(&approved)));
        }
        assert_eq!(
            relay.authorize(&vscode, Some(&browser), &caps(), &upstream(), None, &mut entropy).unwrap().status,
            200
        );
    }

    #[test]
    fn deny_returns_access_denied_to_the_client() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let mut entropy = CountingEntropy::default();
        let answer = consent(&relay, &query(&[], &[]), None, "deny", &mut entropy);
        let params = location_params(&answer);
        assert_eq!(params.get("error"), Some("access_denied"));
        assert_eq!(params.get("state"), Some("client-state"));
        assert_eq!(params.get("iss"), Some("https://mcp.example.com"));
        assert!(answer.header("set-cookie").is_none());
    }

    fn state_for(relay: &Relay, request: &AuthorizationRequest, entropy: &mut CountingEntropy) -> String {
        relay.config.sealing_keys.seal(Purpose::State, request, relay.now + STATE_TTL_SECONDS, entropy).unwrap()
    }

    #[test]
    fn callback_wraps_the_access_code() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let mut entropy = CountingEntropy::default();
        let request = relay.validate(&query(&[], &[]), &caps(), None).unwrap();
        let state = state_for(&relay, &request, &mut entropy);
        let answer = relay
            .callback(&with_query("", &[("code", "access-code-1"), ("state", &state)])[1..], &mut entropy)
            .unwrap();
        let params = location_params(&answer);
        assert!(answer.header("location").unwrap().starts_with("http://localhost:4567/callback?code="));
        assert_eq!(params.get("state"), Some("client-state"));
        assert_eq!(params.get("iss"), Some("https://mcp.example.com"));
        let grant: CodeGrant = config.sealing_keys.open(Purpose::Code, params.get("code").unwrap(), NOW).unwrap();
        assert_eq!(grant.access_code.expose(), "access-code-1");
        assert_eq!(grant.redirect_uri, "http://localhost:4567/callback");
        assert_eq!(grant.code_challenge, CHALLENGE, "the client's challenge travels in the code");
        assert!(config
            .sealing_keys
            .open::<CodeGrant>(Purpose::Code, params.get("code").unwrap(), NOW + CODE_TTL_SECONDS)
            .is_err());
    }

    /// A code grant as the callback writes it.
    fn written(grant: &CodeGrant) -> String {
        let CodeGrant { access_code, redirect_uri, code_challenge, resource, client_id } = grant;
        let grant = CodeGrant {
            access_code: access_code.expose(),
            redirect_uri: redirect_uri.clone(),
            code_challenge: code_challenge.clone(),
            resource: resource.clone(),
            client_id: client_id.clone(),
        };
        serde_json::to_string(&grant).unwrap()
    }

    /// What the serde derive wrote for a code grant: every member, and the required ones only.
    const OLD_GRANT: &str = r#"{"ac":"access-code-1","ru":"http://localhost:4567/callback","cc":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","rs":"https://mcp.example.com/mcp","ci":"https://client.example.com/client.json"}"#;
    const OLD_GRANT_MINIMAL: &str = r#"{"ac":"access-code-1","ru":"http://localhost:4567/callback","cc":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}"#;

    #[test]
    fn a_code_sealed_by_the_serde_version_opens() {
        let grant: CodeGrant = open_text(Purpose::Code, OLD_GRANT).unwrap();
        assert_eq!(grant.access_code.expose(), "access-code-1");
        assert_eq!(grant.redirect_uri, "http://localhost:4567/callback");
        assert_eq!(grant.code_challenge, CHALLENGE);
        assert_eq!(grant.resource.as_deref(), Some("https://mcp.example.com/mcp"));
        assert_eq!(grant.client_id.as_deref(), Some("https://client.example.com/client.json"));
        assert_eq!(written(&grant), OLD_GRANT);
        let minimal: CodeGrant = open_text(Purpose::Code, OLD_GRANT_MINIMAL).unwrap();
        assert_eq!((minimal.resource.as_deref(), minimal.client_id.as_deref()), (None, None));
        assert_eq!(written(&minimal), OLD_GRANT_MINIMAL);
    }

    #[test]
    fn a_code_with_a_member_missing_or_of_another_type_is_malformed() {
        let nulls = OLD_GRANT
            .replace(r#""https://mcp.example.com/mcp""#, "null")
            .replace(r#""https://client.example.com/client.json""#, "null");
        let grant: CodeGrant = open_text(Purpose::Code, &nulls).unwrap();
        assert_eq!((grant.resource, grant.client_id), (None, None));
        let malformed = [
            OLD_GRANT_MINIMAL.replace(r#""ac":"access-code-1","#, ""),
            OLD_GRANT_MINIMAL.replace(r#""access-code-1""#, "null"),
            OLD_GRANT_MINIMAL.replace(r#""access-code-1""#, "1"),
            OLD_GRANT_MINIMAL.replace(r#","cc":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM""#, ""),
            OLD_GRANT_MINIMAL.replace(r#""http://localhost:4567/callback""#, r#"["http://localhost:4567/callback"]"#),
            OLD_GRANT.replace(r#""https://mcp.example.com/mcp""#, "1"),
            OLD_GRANT.replace(r#""https://client.example.com/client.json""#, "false"),
            OLD_GRANT_MINIMAL
                .replace("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw"),
            OLD_GRANT_MINIMAL.replace("http://localhost:4567/callback", "http://localhost:4567/\ncallback"),
        ];
        for payload in malformed {
            assert_eq!(
                open_text::<CodeGrant>(Purpose::Code, &payload).map(|_| ()),
                Err(OpenError::Malformed),
                "{payload}"
            );
        }
    }

    #[test]
    fn callback_relays_upstream_errors_and_rejects_bad_state() {
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let mut entropy = CountingEntropy::default();
        let request = relay.validate(&query(&[], &[]), &caps(), None).unwrap();
        let state = state_for(&relay, &request, &mut entropy);

        let denied = relay
            .callback(&with_query("", &[("error", "access_denied"), ("state", &state)])[1..], &mut entropy)
            .unwrap();
        assert_eq!(location_params(&denied).get("error"), Some("access_denied"));
        let odd = relay.callback(&with_query("", &[("error", "weird"), ("state", &state)])[1..], &mut entropy).unwrap();
        assert_eq!(location_params(&odd).get("error"), Some("server_error"));
        let mixup = relay
            .callback(&with_query("", &[("code", "c"), ("state", &state), ("iss", "https://evil")])[1..], &mut entropy)
            .unwrap();
        assert_eq!(location_params(&mixup).get("error"), Some("server_error"));

        let later = Relay { config: &config, site: &site, now: NOW + STATE_TTL_SECONDS };
        let mut tampered = state.clone();
        tampered.replace_range(10..11, if &state[10..11] == "A" { "B" } else { "A" });
        let code_as_state = config.sealing_keys.seal(Purpose::Code, &request, NOW + 60, &mut entropy).unwrap();
        for (relay, q) in [
            (&relay, "code=c".to_owned()),
            (&relay, format!("code=c&state={tampered}")),
            (&relay, format!("code=c&state={code_as_state}")),
            (&later, format!("code=c&state={state}")),
        ] {
            let answer = relay.callback(&q, &mut entropy).unwrap();
            assert_eq!(answer.status, 400, "{q}");
            assert!(answer.header("location").is_none());
        }
    }

    #[test]
    fn without_randomness_nothing_is_issued() {
        use crate::primitives::seal::tests::NoEntropy;
        let (config, site) = (test_config(), site());
        let relay = Relay { config: &config, site: &site, now: NOW };
        let failure = Error::Internal { reason: "no randomness" };
        let no_randomness = Err(failure.clone());
        // No consent page (its CSRF value would be predictable), no state, no code.
        assert_eq!(relay.authorize(&query(&[], &[]), None, &caps(), &upstream(), None, &mut NoEntropy), no_randomness);
        let request = relay.validate(&query(&[], &[]), &caps(), None).unwrap();
        let state = state_for(&relay, &request, &mut CountingEntropy::default());
        let answer = relay.callback(&with_query("", &[("code", "c"), ("state", &state)])[1..], &mut NoEntropy);
        assert_eq!(answer, no_randomness);
        let response = failure.to_response(Surface::Page);
        assert_eq!(response.status, 500);
        assert!(!response.body.contains("randomness"), "the reason is logged, not shown");
    }

    mod client_id_metadata_documents {
        use super::*;
        use crate::clients::client_id_metadata::tests::{client, document, CLIENT};
        use crate::clients::client_id_metadata::Settings;
        use crate::primitives::error::ClientMetadataFailure as Failure;
        use serde_json::json;

        const LOOPBACK: &str = "http://127.0.0.1:5555/callback";

        /// The document the edge would have fetched for [`CLIENT`], with `changes`.
        pub fn fetched(changes: serde_json::Value) -> Document {
            ClientMetadata::parse(&client(), &document(changes))
        }

        fn cimd_query(redirect_uri: &str) -> String {
            query(&[("client_id", CLIENT), ("redirect_uri", redirect_uri)], &[])
        }

        fn refused_page(response: Response, sentence: &str) {
            assert_eq!(response.status, 400);
            assert!(response.header("location").is_none(), "never a redirect: {sentence}");
            assert!(response.header("content-type").unwrap().starts_with("text/html"));
            assert!(
                response.body.contains(&crate::primitives::http::escape_html(sentence)),
                "{sentence}: {}",
                response.body
            );
        }

        #[test]
        fn the_edge_is_asked_to_fetch_only_good_trusted_urls() {
            let (config, site) = (test_config(), site());
            let relay = Relay { config: &config, site: &site, now: NOW };
            assert_eq!(relay.document_url(&cimd_query(LOOPBACK), &caps()).as_deref(), Some(CLIENT));
            for q in [
                cimd_query("https://attacker.example/callback"),
                query(&[("client_id", CLIENT)], &["redirect_uri"]),
                query(&[], &[]),
                query(&[("client_id", "http://client.example.com/doc")], &[]),
                query(&[("client_id", "https://127.0.0.1/doc")], &[]),
                query(&[], &["client_id"]),
                "client_id=%ZZ".to_owned(),
            ] {
                assert_eq!(relay.document_url(&q, &caps()), None, "{q}");
            }
            let mut vars = crate::config::tests::vars();
            vars.insert("CIMD_ALLOWED_HOSTS", r#"["*.other.example"]"#.into());
            let trusting_others = crate::config::tests::config_from(&vars).unwrap();
            let relay = Relay { config: &trusting_others, site: &site, now: NOW };
            assert_eq!(relay.document_url(&cimd_query(LOOPBACK), &caps()), None);
        }

        #[test]
        fn a_document_client_gets_the_consent_page_and_carries_its_id() {
            let (config, site) = (test_config(), site());
            let relay = Relay { config: &config, site: &site, now: NOW };
            let document = fetched(json!({}));
            let request = relay.validate(&cimd_query(LOOPBACK), &caps(), Some(&document)).unwrap();
            assert_eq!(request.client_id.as_deref(), Some(CLIENT));
            assert_eq!(request.redirect_uri, LOOPBACK);
            let page = relay
                .authorize(
                    &cimd_query(LOOPBACK),
                    None,
                    &caps(),
                    &upstream(),
                    Some(&document),
                    &mut CountingEntropy::default(),
                )
                .unwrap();
            assert_eq!(page.status, 200);
            assert!(page.body.contains("Example &lt;Client&gt; (client.example.com)"), "{}", page.body);
        }

        #[test]
        fn every_client_and_document_failure_is_a_page_naming_it() {
            let (config, site) = (test_config(), site());
            let relay = Relay { config: &config, site: &site, now: NOW };
            let good = fetched(json!({}));
            let cases: Vec<(String, Option<Document>, Failure)> = vec![
                (query(&[("client_id", "http://client.example.com/doc")], &[]), None, Failure::UrlNotHttps),
                (query(&[("client_id", "https://10.1.2.3/doc")], &[]), None, Failure::UrlIpLiteral),
                (query(&[("client_id", "https://localhost/doc")], &[]), None, Failure::UrlLocalhost),
                (query(&[("client_id", "https://client.example.com/doc#x")], &[]), None, Failure::UrlFragment),
                (cimd_query(LOOPBACK), Some(Err(Failure::Timeout)), Failure::Timeout),
                (cimd_query(LOOPBACK), Some(Err(Failure::TooLarge)), Failure::TooLarge),
                (
                    cimd_query(LOOPBACK),
                    Some(fetched(json!({"client_id": "https://x.example/y"}))),
                    Failure::ClientIdMismatch,
                ),
                (cimd_query(LOOPBACK), Some(fetched(json!({"client_secret": "x"}))), Failure::ClientSecret),
                // Not listed, although the gateway's own allowlist has them.
                (cimd_query("http://localhost:4567/callback"), Some(good.clone()), Failure::RedirectUriNotListed),
                (
                    cimd_query("https://claude.ai/api/mcp/auth_callback"),
                    Some(good.clone()),
                    Failure::RedirectUriNotListed,
                ),
            ];
            for (q, document, failure) in cases {
                let response = relay.validate(&q, &caps(), document.as_ref()).unwrap_err();
                refused_page(response, failure.description());
            }
            // Listed in the document is not enough: the gateway's allowlist still applies.
            let listed = fetched(json!({"redirect_uris": ["https://client.example.com/callback"]}));
            let response =
                relay.validate(&cimd_query("https://client.example.com/callback"), &caps(), Some(&listed)).unwrap_err();
            refused_page(response, "the redirect_uri is not allowed by this server");
            // The edge fetched nothing for it (`document_url`): the same page, not a 500.
            let response =
                relay.validate(&cimd_query("https://client.example.com/callback"), &caps(), None).unwrap_err();
            refused_page(response, "the redirect_uri is not allowed by this server");
            // A document for another URL, or none at all, is the gateway's own failure.
            let other_url = Settings::default().document_url("https://x.example/y").unwrap().unwrap();
            let other = ClientMetadata { client_id: other_url, ..good.clone().unwrap() };
            for document in [None, Some(Ok(other))] {
                let response = relay.validate(&cimd_query(LOOPBACK), &caps(), document.as_ref()).unwrap_err();
                assert_eq!((response.status, response.header("location")), (500, None));
            }
        }

        #[test]
        fn refusals_shown_as_pages_are_errors_so_the_log_line_names_them() {
            let (config, site) = (test_config(), site());
            let relay = Relay { config: &config, site: &site, now: NOW };
            let mut entropy = CountingEntropy::default();
            let mut authorize = |q: &str, document: Option<&Document>| {
                relay.authorize(q, None, &caps(), &upstream(), document, &mut entropy)
            };
            let failed = authorize(&cimd_query(LOOPBACK), Some(&Err(Failure::Timeout)));
            assert_eq!(failed, Err(Error::ClientMetadata(Failure::Timeout)));
            assert_eq!(Error::ClientMetadata(Failure::Timeout).log_reason(), "client metadata: Timeout");
            let shape = authorize(&query(&[("client_id", "https://10.0.0.1/doc")], &[]), None);
            assert_eq!(shape, Err(Error::ClientMetadata(Failure::UrlIpLiteral)));
            assert_eq!(
                authorize(&query(&[("client_id", "x")], &[]), None),
                Err(Error::invalid_request("unknown client_id"))
            );
            // A refusal sent back to the client's checked redirect URI stays an answer.
            let back = authorize(&query(&[("response_type", "token")], &[]), None).unwrap();
            assert_eq!(back.status, 302);
        }

        #[test]
        fn with_documents_off_a_url_is_an_unknown_client() {
            let mut vars = crate::config::tests::vars();
            vars.insert("CIMD", "off".into());
            let (config, site) = (crate::config::tests::config_from(&vars).unwrap(), site());
            let relay = Relay { config: &config, site: &site, now: NOW };
            // The capabilities of this configuration are what the relay enforces.
            let caps = Capabilities::new(&config, &upstream());
            assert!(!caps.client_id_metadata);
            assert_eq!(relay.document_url(&cimd_query(LOOPBACK), &caps), None);
            let good = fetched(json!({}));
            refused_page(relay.validate(&cimd_query(LOOPBACK), &caps, Some(&good)).unwrap_err(), "unknown client_id");
            refused_page(
                relay.validate(&query(&[("client_id", "http://127.0.0.1/x")], &[]), &caps, None).unwrap_err(),
                "unknown client_id",
            );
            assert!(relay.validate(&query(&[], &[]), &caps, None).is_ok(), "the registered client goes on");
        }

        /// The document client at [`LOOPBACK`] asks, and the person approves on the consent page.
        fn approve_cimd_client(relay: &Relay, document: &Document, entropy: &mut CountingEntropy) -> Response {
            let page =
                relay.authorize(&cimd_query(LOOPBACK), None, &caps(), &upstream(), Some(document), entropy).unwrap();
            let (ticket, csrf) = consent::tests::form_fields(&page);
            let body = format!("ticket={ticket}&decision=approve");
            relay.decide(&consent::tests::same_origin(&body, Some(&csrf)), &upstream(), entropy).unwrap()
        }

        #[test]
        fn the_client_id_travels_through_state_and_code() {
            let (config, site) = (test_config(), site());
            let relay = Relay { config: &config, site: &site, now: NOW };
            let mut entropy = CountingEntropy::default();
            let to_access = approve_cimd_client(&relay, &fetched(json!({})), &mut entropy);
            let sent = location_params(&to_access);
            assert_eq!(sent.get("client_id"), Some("abc123"), "Access only knows the gateway");
            let back = relay
                .callback(&with_query("", &[("code", "c"), ("state", sent.get("state").unwrap())])[1..], &mut entropy)
                .unwrap();
            assert!(back.header("location").unwrap().starts_with(LOOPBACK));
            let grant: CodeGrant =
                config.sealing_keys.open(Purpose::Code, location_params(&back).get("code").unwrap(), NOW).unwrap();
            assert_eq!(grant.client_id.as_deref(), Some(CLIENT));
        }

        #[test]
        fn a_remembered_consent_is_for_one_client() {
            let (config, site) = (test_config(), site());
            let relay = Relay { config: &config, site: &site, now: NOW };
            let mut entropy = CountingEntropy::default();
            let document = fetched(json!({}));
            let approved = approve_cimd_client(&relay, &document, &mut entropy);
            let browser = consent::tests::cookie_header(&set_cookies(&approved));
            let again = |q: &str, document: Option<&Document>, entropy: &mut CountingEntropy| {
                relay.authorize(q, Some(&browser), &caps(), &upstream(), document, entropy).unwrap().status
            };
            // The same client, another loopback port: straight on to Access.
            assert_eq!(again(&cimd_query("http://127.0.0.1:6666/callback"), Some(&document), &mut entropy), 302);
            // The registered client at the same redirect target: asked.
            assert_eq!(again(&query(&[("redirect_uri", LOOPBACK)], &[]), None, &mut entropy), 200);
            // Another document client listing the same target: asked.
            let other_url = "https://other.example.com/client.json";
            let other = ClientMetadata {
                client_id: Settings::default().document_url(other_url).unwrap().unwrap(),
                ..document.clone().unwrap()
            };
            let other_query = query(&[("client_id", other_url), ("redirect_uri", LOOPBACK)], &[]);
            assert_eq!(again(&other_query, Some(&Ok(other)), &mut entropy), 200);
        }
    }
}
