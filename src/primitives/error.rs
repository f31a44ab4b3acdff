//! The one error type, and the one function that decides what each error looks like
//! on the wire ([`Error::to_response`]). Descriptions sent to clients are fixed
//! strings chosen here; internal reasons are only ever logged.

use crate::primitives::http::{escape_html, Response};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// OAuth error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707 §2,
/// RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    InvalidRedirectUri,
    InvalidClientMetadata,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
        }
    }

    /// Parses a code received from upstream; unknown codes are not relayed.
    pub fn from_upstream(code: &str) -> Option<Self> {
        [
            Self::InvalidRequest,
            Self::InvalidClient,
            Self::InvalidGrant,
            Self::UnauthorizedClient,
            Self::UnsupportedGrantType,
            Self::UnsupportedResponseType,
            Self::InvalidScope,
            Self::AccessDenied,
            Self::ServerError,
            Self::TemporarilyUnavailable,
        ]
        .into_iter()
        .find(|c| c.as_str() == code)
    }
}

/// Why the upstream (Access or the origin) failed. Never the client's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Could not connect, or the answer could not be used (HTML, 5xx, bad JSON).
    Unavailable,
    /// No answer in time.
    Timeout,
}

/// Why a presented bearer token was refused. Logged, never sent: the client only
/// learns `invalid_token` (RFC 6750 §3.1). One variant per check, so that a test can
/// tell which check refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    Oversized,
    /// Not `header.claims.signature` (an opaque string, or garbage).
    NotJws,
    MalformedJwt,
    /// The header lists critical extensions (`crit`), none of which the gateway understands.
    CriticalExtension,
    /// The header names another algorithm (`none`, HMAC, other RSA variants).
    NotRs256,
    NoKeyId,
    UnknownKeyId,
    AmbiguousKeyId,
    UnusableKey,
    BadSignature,
    MalformedClaims,
    WrongIssuer,
    WrongAudience,
    /// An OpenID Connect `id_token` presented as an access token.
    IdToken,
    /// Access's `id_token` answers another authorization request than the code's.
    NonceMismatch,
    NoExpiry,
    Expired,
    NotYetValid,
    IssuedInFuture,
    NoSubject,
    /// A sealed token that does not open: malformed, from an unknown key, forged or
    /// sealed for another purpose, or expired.
    SealedMalformed,
    SealedUnknownKey,
    SealedForged,
    SealedExpired,
    /// A sealed token bound to another MCP URL (RFC 8707).
    OtherResource,
    /// An Access JWT where only the gateway's sealed tokens are accepted.
    NotSealed,
    /// The origin answered 401 to a token the gateway accepted.
    RefusedByOrigin,
}

/// Why a client identified by a Client ID Metadata Document (its `client_id` is an
/// https URL) was refused. The log line names each; the page only those the person (or
/// the client's developer) may learn ([`ClientMetadataFailure::description`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMetadataFailure {
    UrlTooLong,
    UrlMalformed,
    UrlNotHttps,
    UrlFragment,
    UrlUserinfo,
    UrlIpLiteral,
    UrlLocalhost,
    UrlSingleLabel,
    UrlNoPath,
    UrlDotSegment,
    UrlNotCanonical,
    HostNotAllowed,
    Unreachable,
    Timeout,
    Redirected,
    BadStatus,
    TooLarge,
    NotJson,
    NotObject,
    ClientIdMismatch,
    NoClientName,
    NoRedirectUris,
    ClientSecret,
    PrivateKey,
    AuthMethod,
    RedirectUriNotListed,
}

impl ClientMetadataFailure {
    /// The sentence on the page. The URL's own checks and the trust policy, decided before
    /// anything is fetched, say what to fix; every failure of the fetch or of the fetched
    /// document gets one sentence, or the page would tell anyone what an arbitrary URL answers
    /// (a status oracle). The log line names the precise failure ([`Error::log_reason`]).
    pub fn description(self) -> &'static str {
        match self {
            Self::UrlTooLong => "the client_id URL is too long",
            Self::UrlMalformed => "the client_id URL is not a valid URL",
            Self::UrlNotHttps => "the client_id URL must use https",
            Self::UrlFragment => "the client_id URL must not have a fragment",
            Self::UrlUserinfo => "the client_id URL must not contain a user name or password",
            Self::UrlIpLiteral => "the client_id URL must name a host, not an IP address",
            Self::UrlLocalhost => "the client_id URL must not name localhost",
            Self::UrlSingleLabel => "the client_id URL must name a public host, not a single-label name",
            Self::UrlNoPath => "the client_id URL must have a path",
            Self::UrlDotSegment => "the client_id URL must not contain . or .. path segments",
            Self::UrlNotCanonical => "the client_id URL is not in canonical form (lower-case host, no default port)",
            Self::HostNotAllowed => "this server does not accept clients whose client_id is on that host",
            Self::Unreachable
            | Self::Timeout
            | Self::Redirected
            | Self::BadStatus
            | Self::TooLarge
            | Self::NotJson
            | Self::NotObject
            | Self::ClientIdMismatch
            | Self::NoClientName
            | Self::NoRedirectUris
            | Self::ClientSecret
            | Self::PrivateKey
            | Self::AuthMethod => DOCUMENT_UNUSABLE,
            Self::RedirectUriNotListed => {
                "the redirect_uri is not among the redirect_uris of the client's metadata document"
            }
        }
    }
}

/// The page's one sentence for a metadata document that could not be fetched or used.
pub const DOCUMENT_UNUSABLE: &str = "the client's metadata document could not be used";

/// An MCP request the gateway answers itself, as JSON-RPC (the client's MCP session
/// goes on; nothing suggests signing in again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonRpcFailure {
    /// The body is not a JSON-RPC message (JSON-RPC 2.0 §5.1, `-32700`).
    ParseError,
    /// `Mcp-Method`/`Mcp-Name` disagree with the body or are malformed (MCP
    /// 2026-07-28 streamable HTTP, `HeaderMismatch`, `-32020`).
    HeaderMismatch,
    /// The gateway's policy does not let this identity call the tool, read the
    /// resource or get the prompt.
    Denied,
    /// The identity (or identity and tool) went over the rate limit.
    RateLimited { retry_after_seconds: u64 },
    /// A resource URI not in the canonical form the SDK origins look resources up by
    /// (JSON-RPC `-32602` invalid params): deciding on one spelling while the origin reads
    /// another would let `file:///allowed/../secret` past a policy.
    NonCanonicalUri,
}

/// A JSON-RPC request id exactly as the client wrote it: an answer carries the same value
/// (JSON-RPC 2.0 §5), and a number is echoed with its own digits (`1.50`, `-0`, `1E+2`).
#[derive(Debug, Clone)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// The id's JSON text.
    pub fn get(&self) -> &RawValue {
        &self.0
    }
}

impl From<&RawValue> for RequestId {
    fn from(id: &RawValue) -> Self {
        Self(id.to_owned())
    }
}

/// Ids written alike (the origins' echoes are compared as values: [`crate::mcp::request::same_id`]).
impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for RequestId {}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Whom a JSON-RPC error answers: one request (its id, `null` when unknown) or the
/// members of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonRpcReply {
    Single(Option<RequestId>),
    Batch(Vec<RequestId>),
}

/// How much of what the runtime threw is logged ([`Error::unreachable`]).
const MAX_DETAIL_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A protocol error caused by the client, with a fixed description safe to send.
    OAuth {
        code: ErrorCode,
        description: &'static str,
    },
    /// `invalid_client` after the client tried HTTP Basic: answered with a Basic
    /// challenge (RFC 6749 §5.2).
    InvalidClientBasic,
    /// A request to the resource without any credentials (RFC 6750 §3.1: no error code).
    MissingToken,
    /// A presented bearer token that is not acceptable; the reason is logged only.
    InvalidToken(TokenFailure),
    /// A valid token whose subject is not allowed here.
    Forbidden {
        reason: &'static str,
    },
    /// Access or the origin failed; `reason`, and `detail` (what the runtime said, see
    /// [`Error::unreachable`]), are logged only.
    Upstream {
        failure: UpstreamFailure,
        reason: &'static str,
        detail: Option<String>,
    },
    /// The runtime failed the gateway (no randomness, a value that cannot be sealed):
    /// never the client's fault, and never answered with anything weaker.
    Internal {
        reason: &'static str,
    },
    /// The gateway is misconfigured: names the setting (never its value).
    Config {
        setting: &'static str,
        problem: &'static str,
    },
    /// A client whose metadata document could not be used.
    ClientMetadata(ClientMetadataFailure),
    /// An MCP request answered by the gateway with a JSON-RPC error.
    JsonRpc {
        failure: JsonRpcFailure,
        reply: JsonRpcReply,
    },
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    PayloadTooLarge,
    UnsupportedMediaType {
        expected: &'static str,
    },
}

/// Where an error is answered; decides its form.
#[derive(Debug, Clone, Copy)]
pub enum Surface<'a> {
    /// An API endpoint answered with JSON (token, registration, metadata).
    Json,
    /// A browser endpoint whose error cannot be redirected back (authorize, callback).
    Page,
    /// The protected MCP endpoint: RFC 6750 challenges point at the resource metadata.
    Resource { resource_metadata: &'a str, scope: &'a str },
    /// An authorization response sent back to a checked client redirect URI
    /// (RFC 6749 §4.1.2.1), with `state` and RFC 9207 `iss`.
    Redirect { redirect_uri: &'a str, state: Option<&'a str>, issuer: &'a str },
}

impl Error {
    pub const fn oauth(code: ErrorCode, description: &'static str) -> Self {
        Self::OAuth { code, description }
    }

    pub const fn invalid_request(description: &'static str) -> Self {
        Self::oauth(ErrorCode::InvalidRequest, description)
    }

    pub const fn invalid_grant(description: &'static str) -> Self {
        Self::oauth(ErrorCode::InvalidGrant, description)
    }

    /// Access or the origin could not be used (no answer, an unusable one).
    pub const fn unavailable(reason: &'static str) -> Self {
        Self::Upstream { failure: UpstreamFailure::Unavailable, reason, detail: None }
    }

    pub const fn timeout(reason: &'static str) -> Self {
        Self::Upstream { failure: UpstreamFailure::Timeout, reason, detail: None }
    }

    /// No answer, and what the runtime threw says why (`ProxyError: dns_error` from a
    /// Workers VPC binding whose Tunnel is misconfigured, `Network connection lost`): kept
    /// for the log on one line, at most [`MAX_DETAIL_CHARS`] characters. It is what the
    /// runtime (or a Worker behind a service binding) threw; the gateway puts nothing of the
    /// request into it.
    pub fn unreachable(reason: &'static str, thrown: &str) -> Self {
        let detail = thrown.chars().take(MAX_DETAIL_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
        Self::Upstream { failure: UpstreamFailure::Unavailable, reason, detail: Some(detail) }
    }

    pub const fn config(setting: &'static str, problem: &'static str) -> Self {
        Self::Config { setting, problem }
    }

    /// What may be written to the log about this error: never a secret or token.
    pub fn log_reason(&self) -> String {
        match self {
            Self::OAuth { code, description } => format!("{}: {description}", code.as_str()),
            Self::InvalidClientBasic => "invalid_client (basic)".into(),
            Self::MissingToken => "no bearer token".into(),
            Self::InvalidToken(failure) => format!("invalid_token: {failure:?}"),
            Self::Forbidden { reason } => format!("forbidden: {reason}"),
            Self::Upstream { failure, reason, detail: None } => format!("upstream {failure:?}: {reason}"),
            Self::Upstream { failure, reason, detail: Some(detail) } => {
                format!("upstream {failure:?}: {reason} ({detail})")
            }
            Self::Internal { reason } => format!("internal: {reason}"),
            Self::Config { setting, problem } => format!("configuration {setting}: {problem}"),
            Self::ClientMetadata(failure) => format!("client metadata: {failure:?}"),
            Self::JsonRpc { failure, .. } => format!("json-rpc: {failure:?}"),
            Self::NotFound => "not found".into(),
            Self::MethodNotAllowed { .. } => "method not allowed".into(),
            Self::PayloadTooLarge => "payload too large".into(),
            Self::UnsupportedMediaType { .. } => "unsupported media type".into(),
        }
    }

    fn status_code_description(&self) -> (u16, ErrorCode, String) {
        match self {
            Self::OAuth { code, description } => {
                let status = if *code == ErrorCode::InvalidClient { 401 } else { 400 };
                (status, *code, (*description).to_owned())
            }
            Self::InvalidClientBasic => (401, ErrorCode::InvalidClient, "client authentication failed".into()),
            Self::MissingToken => (
                401,
                ErrorCode::InvalidRequest,
                "this MCP server requires authorization: see the WWW-Authenticate header".into(),
            ),
            Self::InvalidToken(_) => (401, ErrorCode::InvalidToken, "the access token is invalid or expired".into()),
            Self::Forbidden { .. } => (
                403,
                ErrorCode::AccessDenied,
                "your identity is valid but is not allowed to use this server; \
                 signing in again will not change that — ask the server's administrator"
                    .into(),
            ),
            Self::Upstream { failure: UpstreamFailure::Unavailable, .. } => {
                (502, ErrorCode::TemporarilyUnavailable, "the upstream service failed; try again later".into())
            }
            Self::Upstream { failure: UpstreamFailure::Timeout, .. } => (
                504,
                ErrorCode::TemporarilyUnavailable,
                "the upstream service did not answer in time; try again later".into(),
            ),
            Self::Internal { .. } => (500, ErrorCode::ServerError, "the gateway failed; try again later".into()),
            Self::Config { setting, problem } => {
                (500, ErrorCode::ServerError, format!("the gateway is misconfigured: {setting} {problem}"))
            }
            Self::ClientMetadata(failure) => (400, ErrorCode::InvalidClient, failure.description().into()),
            Self::JsonRpc { .. } => (json_rpc_status(self), ErrorCode::InvalidRequest, String::new()),
            Self::NotFound => (404, ErrorCode::InvalidRequest, "no such endpoint".into()),
            Self::MethodNotAllowed { .. } => (405, ErrorCode::InvalidRequest, "method not allowed".into()),
            Self::PayloadTooLarge => (413, ErrorCode::InvalidRequest, "request body too large".into()),
            Self::UnsupportedMediaType { expected } => {
                (415, ErrorCode::InvalidRequest, format!("the body must be {expected}"))
            }
        }
    }

    /// The single place where errors become HTTP answers.
    pub fn to_response(&self, surface: Surface<'_>) -> Response {
        if let Self::JsonRpc { failure, reply } = self {
            let response = json_rpc_response(json_rpc_status(self), *failure, reply);
            return match failure {
                JsonRpcFailure::RateLimited { retry_after_seconds } => {
                    response.with_header("retry-after", retry_after_seconds.to_string())
                }
                _ => response,
            };
        }
        let (status, code, description) = self.status_code_description();
        if let Surface::Redirect { redirect_uri, state, issuer } = surface {
            let mut params = vec![("error", code.as_str()), ("error_description", description.as_str())];
            params.extend(state.map(|s| ("state", s)));
            params.push(("iss", issuer));
            return Response::redirect(crate::primitives::http::with_query(redirect_uri, &params));
        }
        let response = match surface {
            Surface::Page => Response::html(status, error_page(status, code, &description)),
            Surface::Json | Surface::Resource { .. } | Surface::Redirect { .. } => {
                // No error code for a request without credentials (RFC 6750 §3.1).
                let error = (*self != Self::MissingToken).then_some(code.as_str());
                Response::json(status, &ErrorBody { error, error_description: &description })
            }
        };
        let response = match self {
            Self::MethodNotAllowed { allow } => response.with_header("allow", *allow),
            Self::InvalidClientBasic => response.with_header("www-authenticate", "Basic realm=\"token\""),
            _ => response,
        };
        match surface {
            Surface::Resource { resource_metadata, scope } => match self.challenge(resource_metadata, scope) {
                Some(challenge) => response.with_header("www-authenticate", challenge),
                None => response,
            },
            _ => response,
        }
    }

    /// The RFC 6750 §3 challenge for the protected resource, where one applies.
    fn challenge(&self, resource_metadata: &str, scope: &str) -> Option<String> {
        let base = format!("Bearer resource_metadata=\"{resource_metadata}\", scope=\"{scope}\"");
        match self {
            Self::MissingToken => Some(base),
            Self::InvalidToken(_) => Some(format!(
                "{base}, error=\"invalid_token\", error_description=\"The access token is invalid or expired\""
            )),
            _ => None,
        }
    }
}

fn json_rpc_status(error: &Error) -> u16 {
    match error {
        // A refused call is an answer like a tool's own error: the SDK clients report it
        // to the caller and keep the session (a 4xx would end it, a 401/403 re-login).
        Error::JsonRpc { failure: JsonRpcFailure::Denied | JsonRpcFailure::NonCanonicalUri, .. } => 200,
        Error::JsonRpc { failure: JsonRpcFailure::RateLimited { .. }, .. } => 429,
        _ => 400,
    }
}

/// An RFC 6749 §5.2 (RFC 6750 §3) error body.
#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    error_description: &'a str,
}

/// A JSON-RPC 2.0 error response (§5.1).
#[derive(Serialize)]
struct JsonRpcError<'a> {
    jsonrpc: &'static str,
    id: Option<&'a RequestId>,
    error: JsonRpcErrorObject,
}

#[derive(Serialize)]
struct JsonRpcErrorObject {
    code: i64,
    message: &'static str,
}

fn json_rpc_response(status: u16, failure: JsonRpcFailure, reply: &JsonRpcReply) -> Response {
    let (code, message): (i64, &str) = match failure {
        JsonRpcFailure::ParseError => (-32700, "Parse error: the request body is not a JSON-RPC message"),
        JsonRpcFailure::HeaderMismatch => {
            (-32020, "Header mismatch: Mcp-Method and Mcp-Name must match the request body")
        }
        // Outside the codes the SDKs give meanings of their own (-32000 connection
        // closed, -32001 request timeout, -32002 resource not found).
        JsonRpcFailure::Denied => (-32003, "Forbidden: this server's access policy does not allow this call for you"),
        JsonRpcFailure::RateLimited { .. } => (-32029, "Too many requests: try again after the Retry-After delay"),
        JsonRpcFailure::NonCanonicalUri => (
            -32602,
            "Invalid params: a resource URI must be an absolute URL in canonical form (as resources/list gives it)",
        ),
    };
    let error = |id| JsonRpcError { jsonrpc: "2.0", id, error: JsonRpcErrorObject { code, message } };
    match reply {
        JsonRpcReply::Single(id) => Response::json(status, &error(id.as_ref())),
        JsonRpcReply::Batch(ids) => Response::json(status, &ids.iter().map(|id| error(Some(id))).collect::<Vec<_>>()),
    }
}

fn error_page(status: u16, code: ErrorCode, description: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign-in error</title><style>{}</style></head><body><main>\
         <h1>Sign-in cannot continue</h1><p>{}</p><p class=\"code\">{} · {}</p>\
         <p>Close this window and start the connection again from your MCP client.</p>\
         </main></body></html>",
        crate::primitives::http::PAGE_STYLE,
        escape_html(description),
        status,
        code.as_str()
    )
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The id written as the JSON text `text`.
    pub fn id(text: &str) -> RequestId {
        RequestId(RawValue::from_string(text.to_owned()).unwrap())
    }

    const RESOURCE: Surface<'static> = Surface::Resource {
        resource_metadata: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        scope: "openid email",
    };

    #[test]
    fn missing_token_is_a_bare_challenge() {
        let r = Error::MissingToken.to_response(RESOURCE);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"openid email\"")
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(!r.body.contains("\"error\""), "no error code without credentials: {}", r.body);
    }

    #[test]
    fn invalid_token_names_the_error_but_not_the_reason() {
        let r = Error::InvalidToken(TokenFailure::UnknownKeyId).to_response(RESOURCE);
        assert_eq!(r.status, 401);
        let challenge = r.header("www-authenticate").unwrap();
        assert!(challenge.contains("error=\"invalid_token\""));
        assert!(r.body.contains("\"error\":\"invalid_token\""));
        assert!(!r.body.contains("UnknownKeyId") && !challenge.contains("UnknownKeyId"));
        assert_eq!(Error::InvalidToken(TokenFailure::UnknownKeyId).log_reason(), "invalid_token: UnknownKeyId");
    }

    #[test]
    fn what_the_runtime_threw_is_logged_on_one_short_line_and_never_sent() {
        let error = Error::unreachable("could not reach the origin", "Error: ProxyError: dns_error\nat line 2");
        assert_eq!(
            error.log_reason(),
            "upstream Unavailable: could not reach the origin (Error: ProxyError: dns_error at line 2)"
        );
        let r = error.to_response(RESOURCE);
        assert_eq!(r.status, 502);
        assert!(!r.body.contains("dns_error") && !r.body.contains("could not reach"), "{}", r.body);
        let long = Error::unreachable("x", &"é".repeat(500)).log_reason();
        assert_eq!(long.chars().filter(|&c| c == 'é').count(), MAX_DETAIL_CHARS);
        assert_eq!(
            Error::unavailable("could not reach Access").log_reason(),
            "upstream Unavailable: could not reach Access"
        );
    }

    #[test]
    fn forbidden_is_403_without_challenge() {
        let r = Error::Forbidden { reason: "email not allowed" }.to_response(RESOURCE);
        assert_eq!(r.status, 403);
        assert_eq!(r.header("www-authenticate"), None);
        assert!(!r.body.contains("email not allowed"));
    }

    #[test]
    fn oauth_errors_are_rfc6749_json() {
        let r = Error::oauth(ErrorCode::InvalidGrant, "bad code").to_response(Surface::Json);
        assert_eq!(r.status, 400);
        assert_eq!(r.body, r#"{"error":"invalid_grant","error_description":"bad code"}"#);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let r = Error::oauth(ErrorCode::InvalidClient, "x").to_response(Surface::Json);
        assert_eq!(r.status, 401);
        let r = Error::InvalidClientBasic.to_response(Surface::Json);
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"token\""));
    }

    #[test]
    fn upstream_and_config_errors() {
        let r = Error::Upstream { failure: UpstreamFailure::Timeout, reason: "token", detail: None }
            .to_response(Surface::Json);
        assert_eq!(r.status, 504);
        assert!(r.body.contains("temporarily_unavailable"));
        let r = Error::Config { setting: "ACCESS_ISSUER", problem: "is missing" }.to_response(Surface::Json);
        assert_eq!(r.status, 500);
        assert!(r.body.contains("ACCESS_ISSUER is missing"));
    }

    #[test]
    fn pages_escape_and_refuse_framing() {
        let r = Error::oauth(ErrorCode::InvalidRequest, "<script>").to_response(Surface::Page);
        assert_eq!(r.status, 400);
        assert!(r.body.contains("&lt;script&gt;") && !r.body.contains("<script>"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }

    #[test]
    fn redirected_errors_carry_state_and_iss() {
        let surface = Surface::Redirect {
            redirect_uri: "http://localhost:1/cb?k=v",
            state: Some("s 1"),
            issuer: "https://mcp.example.com",
        };
        let r = Error::oauth(ErrorCode::AccessDenied, "denied").to_response(surface);
        assert_eq!(r.status, 302);
        assert_eq!(
            r.header("location"),
            Some("http://localhost:1/cb?k=v&error=access_denied&error_description=denied&state=s+1&iss=https%3A%2F%2Fmcp.example.com")
        );
    }

    #[test]
    fn json_rpc_errors_answer_the_request_ids() {
        let denied = Error::JsonRpc { failure: JsonRpcFailure::Denied, reply: JsonRpcReply::Single(Some(id("7"))) };
        let r = denied.to_response(RESOURCE);
        assert_eq!((r.status, r.header("www-authenticate")), (200, None));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!((body["jsonrpc"].as_str(), body["id"].as_i64()), (Some("2.0"), Some(7)));
        assert_eq!(body["error"]["code"], -32003);
        let limited = Error::JsonRpc {
            failure: JsonRpcFailure::RateLimited { retry_after_seconds: 60 },
            reply: JsonRpcReply::Single(Some(id("8"))),
        };
        let r = limited.to_response(RESOURCE);
        assert_eq!((r.status, r.header("retry-after")), (429, Some("60")));
        assert!(r.body.contains("-32029"));
        let mismatch = Error::JsonRpc {
            failure: JsonRpcFailure::HeaderMismatch,
            reply: JsonRpcReply::Batch(vec![id("1"), id("\"b\"")]),
        };
        let r = mismatch.to_response(RESOURCE);
        assert_eq!(r.status, 400);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            body.as_array().unwrap().iter().map(|e| e["id"].clone()).collect::<Vec<_>>(),
            [serde_json::json!(1), serde_json::json!("b")]
        );
        assert!(body.as_array().unwrap().iter().all(|e| e["error"]["code"] == -32020));
        let unknown = Error::JsonRpc { failure: JsonRpcFailure::ParseError, reply: JsonRpcReply::Single(None) };
        let body: serde_json::Value = serde_json::from_str(&unknown.to_response(RESOURCE).body).unwrap();
        assert!(body["id"].is_null() && body["error"]["code"] == -32700);
    }

    #[test]
    fn method_not_allowed_names_allowed_methods() {
        let r = Error::MethodNotAllowed { allow: "GET, OPTIONS" }.to_response(Surface::Json);
        assert_eq!((r.status, r.header("allow")), (405, Some("GET, OPTIONS")));
    }
}
