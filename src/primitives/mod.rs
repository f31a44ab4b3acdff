//! What every other floor builds on: nothing here knows about Access, MCP or OAuth.

/// The one error type, and the one function that decides what each error looks like on the wire.
pub(crate) mod error;
/// The sans-IO HTTP answer, and small helpers for URLs, cookies, media types and HTML.
pub(crate) mod http;
/// `application/x-www-form-urlencoded` parameters.
pub(crate) mod params;
/// Authenticated encryption of what must outlive a request (nothing is stored).
pub(crate) mod seal;
/// Secrets and tokens in a type that never prints them.
pub(crate) mod secret;
/// serde_json with the strictness the gateway needs (no name twice, at any depth).
pub(crate) mod strict_json;
