//! The authorization server the MCP clients expect, in front of Access: what it supports
//! and publishes, registration, consent, the authorize/callback relay, PKCE, the token relay,
//! the gateway's own sealed tokens and the refresh reuse grace.

/// The client's authorization request as it travels sealed through Access (`state`).
pub(crate) mod authorization_request;
/// `/authorize` and `/callback`: the relay to Access's authorization endpoint.
pub(crate) mod authorize;
/// What the gateway supports, as one value that the metadata publishes and the endpoints
/// enforce; and the scope it grants.
pub(crate) mod capabilities;
/// The consent page and what a browser's approval is remembered for.
pub(crate) mod consent;
/// What the gateway publishes (RFC 9728, RFC 8414, OpenID Connect Discovery), from one
/// [`capabilities::Capabilities`]; its own URLs, the MCP server's resource among them.
pub(crate) mod metadata;
/// PKCE (RFC 7636): the challenge at `/authorize`, the verifier against it at `/token`.
pub(crate) mod pkce;
/// The refresh reuse grace: identical refreshes share one answer for a short window.
pub(crate) mod refresh_grace;
/// `/register`: the Dynamic Client Registration shim.
pub(crate) mod registration;
/// The gateway's own sealed access and refresh tokens.
pub(crate) mod sealed_token;
/// `/token`: the relay to Access's token endpoint.
pub(crate) mod token;
