//! mcp-access-gateway: a Cloudflare Worker that is the OAuth authorization server and
//! resource-server front for an MCP server protected by Cloudflare Access for SaaS.
//!
//! Everything that decides lives in the sans-IO modules below and is tested natively;
//! [`edge`] (wasm32 only) is the thin layer that does the Worker's I/O.

pub mod access_token;
pub mod authorization_request;
pub mod authorize;
pub mod config;
pub mod consent;
pub mod error;
pub mod http;
pub mod jwks;
pub mod metadata;
pub mod params;
pub mod proxy;
pub mod redirect_uri;
pub mod registration;
pub mod route;
pub mod seal;
pub mod sealed_token;
pub mod secret;
pub mod token;
pub mod token_cache;
pub mod upstream;

#[cfg(target_arch = "wasm32")]
mod edge;
