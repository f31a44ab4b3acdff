//! Header rules for the MCP proxy. The body is never touched (the edge streams it
//! both ways); this decides which headers cross, which identity the origin is told,
//! and which origin answers must not reach the client as they are.

use crate::access_token::Identity;
use crate::error::{Error, TokenFailure, UpstreamFailure};

/// Identity headers the gateway sets for the origin. Any inbound header with one of
/// the trusted prefixes is removed first, so a client can never forge them.
pub const EMAIL_HEADER: &str = "x-gateway-user-email";
pub const SUBJECT_HEADER: &str = "x-gateway-user-sub";
pub const GROUPS_HEADER: &str = "x-gateway-user-groups";
/// What Cloudflare Access itself sets in front of a Tunnel origin.
pub const ACCESS_EMAIL_HEADER: &str = "cf-access-authenticated-user-email";
const TRUSTED_PREFIXES: [&str; 2] = ["x-gateway-", "cf-access-"];

/// RFC 9110 §7.6.1 hop-by-hop headers, plus headers that describe the client's
/// connection to the edge rather than the request.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// `origin` is dropped too: CORS is answered by the gateway, and an origin bound to
/// loopback behind the Tunnel may refuse browser origins it does not know.
const EDGE_ONLY: [&str; 7] =
    ["host", "cookie", "origin", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-real-ip"];

/// Whether an inbound request header is copied to the origin. `Authorization` is
/// never copied: see [`origin_authorization`]. (Headers a client names in `Connection`
/// are the runtime's business: workerd consumes `Connection` before the Worker runs.)
pub fn forwards_request_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(name == "authorization"
        || HOP_BY_HOP.contains(&name.as_str())
        || EDGE_ONLY.contains(&name.as_str())
        || TRUSTED_PREFIXES.iter().any(|p| name.starts_with(p)))
}

/// The `Authorization` the origin gets: the Access JWT the request was validated
/// with (the client's own bearer in passthrough mode, the one inside a sealed
/// token otherwise), unless forwarding is switched off.
pub fn origin_authorization(forward_bearer: bool, credential: &str) -> Option<String> {
    forward_bearer.then(|| format!("Bearer {credential}"))
}

/// The origin response headers that are not passed back to the client.
pub const DROPPED_RESPONSE_HEADERS: [&str; 9] = HOP_BY_HOP;

/// The trusted identity headers, from the validated token only.
pub fn identity_headers(identity: &Identity) -> Vec<(&'static str, String)> {
    let mut headers = vec![(SUBJECT_HEADER, identity.subject.clone())];
    if let Some(email) = &identity.email {
        headers.push((EMAIL_HEADER, email.clone()));
        headers.push((ACCESS_EMAIL_HEADER, email.clone()));
    }
    if !identity.groups.is_empty() {
        headers.push((GROUPS_HEADER, groups_header_value(&identity.groups)));
    }
    // Header values cannot carry line breaks; a claim with one is dropped, not forwarded.
    headers.retain(|(_, v)| !v.contains(['\r', '\n', '\0']));
    headers
}

/// The groups as a JSON array: group names hold spaces and commas, so any separator
/// would be ambiguous. Non-ASCII is `\u`-escaped, as header values are bytes.
fn groups_header_value(groups: &[String]) -> String {
    let json = serde_json::to_string(groups).unwrap_or_default();
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii
}

/// The origin URL for a proxied request path and query.
pub fn origin_url(origin: &str, path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{origin}{path}?{q}"),
        _ => format!("{origin}{path}"),
    }
}

/// Origin answers that must not be passed through: a 401 (the origin refused a token
/// the edge accepted — usually clocks a second apart at expiry — whose own challenge
/// would point the client at the origin's metadata: it becomes the edge's
/// `invalid_token`, so the client refreshes) and a Cloudflare Access login page or
/// redirect (the origin is itself behind Access and needs a service token).
pub fn check_origin_response(status: u16, content_type: Option<&str>, location: Option<&str>) -> Result<(), Error> {
    let access_login =
        location.is_some_and(|l| l.contains("/cdn-cgi/access/login") || l.contains(".cloudflareaccess.com"));
    if access_login || (crate::http::is_media_type(content_type, "text/html") && (status == 200 || status == 403)) {
        return Err(Error::Upstream {
            failure: UpstreamFailure::Unavailable,
            reason: "origin answered with a Cloudflare Access login page (set ORIGIN_ACCESS_CLIENT_ID/SECRET)",
        });
    }
    if status == 401 {
        return Err(Error::InvalidToken(TokenFailure::RefusedByOrigin));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_mcp_headers_and_strips_hop_by_hop_edge_and_forged_identity() {
        for name in [
            "mcp-session-id",
            "MCP-Protocol-Version",
            "last-event-id",
            "accept",
            "mcp-method",
            "mcp-name",
            "content-type",
            "user-agent",
        ] {
            assert!(forwards_request_header(name), "{name}");
        }
        for name in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "te",
            "proxy-authorization",
            "host",
            "cookie",
            "origin",
            "x-forwarded-for",
            "forwarded",
            "x-gateway-user-email",
            "X-Gateway-User-Sub",
            "cf-access-authenticated-user-email",
            "cf-access-jwt-assertion",
            "cf-access-client-id",
            "cf-access-client-secret",
        ] {
            assert!(!forwards_request_header(name), "{name}");
        }
        assert!(!forwards_request_header("Authorization"));
        assert_eq!(origin_authorization(true, "a.b.c").as_deref(), Some("Bearer a.b.c"));
        assert_eq!(origin_authorization(false, "a.b.c"), None);
        assert!(DROPPED_RESPONSE_HEADERS.contains(&"transfer-encoding"));
        assert!(!DROPPED_RESPONSE_HEADERS.contains(&"mcp-session-id"));
    }

    #[test]
    fn identity_headers_come_from_the_token() {
        let identity = Identity {
            subject: "sub-1".into(),
            email: Some("a@example.com".into()),
            groups: vec!["eng".into(), "ops".into()],
            not_before: None,
            expires_at: 0,
        };
        assert_eq!(
            identity_headers(&identity),
            vec![
                (SUBJECT_HEADER, "sub-1".to_owned()),
                (EMAIL_HEADER, "a@example.com".to_owned()),
                (ACCESS_EMAIL_HEADER, "a@example.com".to_owned()),
                (GROUPS_HEADER, r#"["eng","ops"]"#.to_owned()),
            ]
        );
        let named = Identity {
            groups: vec!["Finance Admins".into(), "Eng, Platform".into(), "Équipe 🚀".into()],
            ..identity.clone()
        };
        let value = identity_headers(&named).pop().unwrap().1;
        assert_eq!(value, r#"["Finance Admins","Eng, Platform","\u00c9quipe \ud83d\ude80"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<String>>(&value).unwrap(),
            named.groups,
            "an origin reads it back exactly"
        );
        let evil = Identity { email: Some("a@example.com\r\nx-injected: 1".into()), ..identity };
        assert!(identity_headers(&evil).iter().all(|(_, v)| !v.contains('\n')));
    }

    #[test]
    fn origin_answers() {
        assert!(check_origin_response(200, Some("text/event-stream"), None).is_ok());
        assert!(check_origin_response(202, None, None).is_ok());
        assert!(check_origin_response(404, Some("application/json"), None).is_ok());
        assert!(matches!(
            check_origin_response(401, Some("application/json"), None),
            Err(Error::InvalidToken(TokenFailure::RefusedByOrigin))
        ));
        assert!(matches!(
            check_origin_response(302, None, Some("https://team.cloudflareaccess.com/cdn-cgi/access/login/x")),
            Err(Error::Upstream { .. })
        ));
        assert!(matches!(
            check_origin_response(200, Some("text/html; charset=utf-8"), None),
            Err(Error::Upstream { .. })
        ));
        assert_eq!(origin_url("https://o.example", "/mcp", Some("a=1")), "https://o.example/mcp?a=1");
        assert_eq!(origin_url("https://o.example", "/mcp", Some("")), "https://o.example/mcp");
    }
}
