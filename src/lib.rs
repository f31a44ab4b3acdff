//! mcp-access-gateway: a Cloudflare Worker that is the OAuth authorization server and
//! resource-server front for an MCP server protected by Cloudflare Access for SaaS.
//!
//! Everything that decides lives in the sans-IO modules below and is tested natively;
//! [`edge`] (wasm32 only) is the thin layer that does the Worker's I/O.

#![forbid(unsafe_code)]
// Natively only the tests use the core (the Worker is wasm32-only): the wasm32 build is
// the one that reports dead code.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub(crate) mod access_token;
pub(crate) mod authorization_request;
pub(crate) mod authorize;
pub(crate) mod client_id_metadata;
pub(crate) mod config;
pub(crate) mod consent;
/// The `doctor` command's steps (native only: the binary in src/main.rs runs them).
#[cfg(not(target_arch = "wasm32"))]
pub mod doctor;
pub(crate) mod error;
/// Entry points for the fuzz targets in `fuzz/` (cargo-fuzz builds with `--cfg fuzzing`).
#[cfg(fuzzing)]
pub mod fuzzing;
pub(crate) mod http;
pub(crate) mod jwks;
pub(crate) mod list_filter;
pub(crate) mod mcp_policy;
pub(crate) mod mcp_request;
pub(crate) mod metadata;
pub(crate) mod params;
pub(crate) mod proxy;
pub(crate) mod redirect_uri;
pub(crate) mod refresh_grace;
pub(crate) mod registration;
pub(crate) mod request_log;
pub(crate) mod route;
pub(crate) mod seal;
pub(crate) mod sealed_token;
pub(crate) mod secret;
pub(crate) mod strict_json;
pub(crate) mod token;
pub(crate) mod token_cache;
pub(crate) mod upstream;

#[cfg(target_arch = "wasm32")]
mod edge;
