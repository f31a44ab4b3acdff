//! Cloudflare Access for SaaS as the gateway meets it: the app, its answers, its keys and the
//! JWT access tokens it signs.

/// Access's JWKS: parsing, lookup by `kid`, and when to fetch it.
pub(crate) mod jwks;
/// Validating Access JWTs (untrusted → signature verified → claims checked).
pub(crate) mod token;
/// The caches of validated bearer tokens (Access JWTs and the gateway's sealed tokens).
pub(crate) mod token_cache;
/// The Access app, its discovery document and its token endpoint's answers.
pub(crate) mod upstream;
