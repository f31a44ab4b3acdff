//! mcp-access-gateway: a Cloudflare Worker that is the OAuth authorization server and
//! resource-server front for an MCP server protected by Cloudflare Access for SaaS.
//!
//! The house, from the ground up. Each floor imports only the floors below it; everything
//! below [`edge`] is sans-IO and tested natively.
//!
//! | floor | what it holds |
//! |---|---|
//! | [`primitives`] | the one error type and its wire mapping, HTTP answers, form parameters, secrets, sealing, strict JSON |
//! | [`access`] | Cloudflare Access: its JWT access tokens, its signing keys, its discovery and token answers, the caches of validated tokens |
//! | [`mcp`] | MCP requests as the gateway reads them, `MCP_POLICY`, list filtering, the proxy's header rules, the request log line |
//! | [`clients`] | who a client may be: redirect URIs, Client ID Metadata Documents |
//! | [`config`] | every setting, parsed once |
//! | [`oauth`] | the authorization server: what it supports (one value it publishes and enforces), metadata, registration, consent, authorize, PKCE, token, sealed tokens, the refresh grace |
//! | [`route`] | which endpoint a request is for |
//! | `edge` | the Worker (wasm32 only): the I/O the floors below ask for |
//!
//! [`doctor`] (native only) checks a deployment from outside, as a strict client would; the
//! binary in `src/bin/doctor.rs` runs it. `fuzzing` feeds the fuzz targets in `fuzz/`.

#![forbid(unsafe_code)]
// Natively only the tests use the core (the Worker is wasm32-only): the wasm32 build is
// the one that reports dead code.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub(crate) mod primitives;

pub(crate) mod access;

pub(crate) mod mcp;

pub(crate) mod clients;

pub(crate) mod config;

pub(crate) mod oauth;

pub(crate) mod route;

#[cfg(target_arch = "wasm32")]
mod edge;

/// The `doctor` command's steps (native only: the binary in `src/bin/doctor.rs` runs them).
#[cfg(not(target_arch = "wasm32"))]
pub mod doctor;

/// Entry points for the fuzz targets in `fuzz/` (cargo-fuzz builds with `--cfg fuzzing`).
#[cfg(fuzzing)]
pub mod fuzzing;
