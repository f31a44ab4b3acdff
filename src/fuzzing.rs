//! Entry points for the fuzz targets in `fuzz/` (built with `--cfg fuzzing` by cargo-fuzz;
//! never part of the Worker). Each reads untrusted bytes the way the Worker does and checks
//! what must hold whatever they are; a panic is a finding.

use crate::access::token::{
    carries_id_token_claims, Allowlist, Identity, TokenKind, TokenPolicy, UntrustedAccessToken,
};
use crate::mcp::list_filter::{Lists, SseListFilter};
use crate::mcp::policy::McpPolicy;
use crate::mcp::request;
use crate::primitives::params::Params;

/// An MCP request body: read, and if read, its calls are what a second reading gives.
pub fn mcp_request(body: &[u8]) {
    if let Ok(request) = request::parse_body(body) {
        assert_eq!(request::parse_body(body).ok(), Some(request.clone()));
        let _ = request::rate_limit_keys("subject", Some(&request), true);
        for call in &request.calls {
            if let Some(name) = &call.name {
                let _ = request::canonical_uri(name);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = request::is_utf8_json(Some(text));
        let _ = request::decode_header_value(text);
    }
}

/// A bearer token: parsed, and its claims checked as if its signature had passed (the
/// signature needs a key; what is fuzzed is the reading).
pub fn access_token(token: &[u8]) {
    let Ok(token) = std::str::from_utf8(token) else { return };
    let _ = carries_id_token_claims(token);
    let Ok(untrusted) = UntrustedAccessToken::parse(token) else { return };
    let _ = (untrusted.key_id(), untrusted.signed_data(), untrusted.signature());
    let policy = TokenPolicy {
        kind: TokenKind::AccessToken,
        issuer: "https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc".into(),
        audiences: vec!["https://mcp.example.com/callback".into()],
        leeway_seconds: 30,
        allowlist: Allowlist::default(),
    };
    let _ = policy.check(&untrusted.insecure_assume_signature_verified(), 1_800_000_000);
}

/// A form body or query string.
pub fn form_params(encoded: &[u8]) {
    if let Ok(encoded) = std::str::from_utf8(encoded) {
        if let Ok(params) = Params::parse(encoded) {
            let _ = params.get("code");
        }
    }
}

/// An SSE stream through the list filter: the first byte picks the chunk size, and however
/// the stream is chunked the filter must give the same bytes (or fail the same way).
pub fn sse_list_filter(input: &[u8]) {
    let Some((&size, stream)) = input.split_first() else { return };
    let policy = McpPolicy::parse(
        r#"{"default": "deny", "rules": [{"effect": "allow", "tools": ["search"], "resources": ["file:///a/*"]}]}"#,
    )
    .expect("the fuzz policy parses");
    let run = |chunk: usize| -> Option<Vec<u8>> {
        let identity = Identity { subject: "s".into(), email: None, groups: vec![], not_before: None, expires_at: 0 };
        let mut filter = SseListFilter::new(identity, Lists::AnyResult);
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            out.extend(filter.push(&policy, piece).ok()?);
        }
        out.extend(filter.finish(&policy).ok()?);
        Some(out)
    };
    assert_eq!(run(usize::from(size).max(1)), run(stream.len().max(1)), "chunking changed the output");
}
