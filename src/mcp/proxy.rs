//! Header rules for the MCP proxy. The body is never touched (the edge streams it
//! both ways); this decides which headers cross, which identity the origin is told,
//! and which origin answers must not reach the client as they are.

use crate::access::token::Identity;
use crate::primitives::error::{Error, TokenFailure, UpstreamFailure};

/// Identity headers the gateway sets for the origin. Any inbound header with their
/// prefixes (`x-gateway-`, `cf-access-`) is removed first, so a client can never forge them.
pub const EMAIL_HEADER: &str = "x-gateway-user-email";
pub const SUBJECT_HEADER: &str = "x-gateway-user-sub";
pub const GROUPS_HEADER: &str = "x-gateway-user-groups";
/// What Cloudflare Access itself sets in front of a Tunnel origin.
pub const ACCESS_EMAIL_HEADER: &str = "cf-access-authenticated-user-email";

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
/// Headers a proxy or framework in front of the origin may trust for the client's
/// address, the original URL or the method: a client could forge them to steer the
/// origin's routing, allowlists or logs. `origin` is dropped too: CORS is answered by
/// the gateway, and an origin bound to loopback behind the Tunnel may refuse browser
/// origins it does not know.
const EDGE_ONLY: [&str; 11] = [
    "host",
    "cookie",
    "origin",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
/// Prefixes of inbound headers never forwarded: the identity headers' and every
/// `X-Forwarded-*`.
const DROPPED_PREFIXES: [&str; 3] = ["x-gateway-", "cf-access-", "x-forwarded-"];

fn starts_with_ignore_case(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len() && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The inbound request headers never copied to the origin, as the edge applies them in one
/// pass (to the lower-case names fetch gives): exact names and name prefixes, each list
/// space-separated. `Authorization` is never copied: see [`origin_authorization`]. (Headers
/// a client names in `Connection` are the runtime's business: workerd consumes `Connection`
/// before the Worker runs.)
pub fn dropped_request_headers() -> (String, String) {
    let names: Vec<&str> = ["authorization"].iter().chain(&HOP_BY_HOP).chain(&EDGE_ONLY).copied().collect();
    (names.join(" "), DROPPED_PREFIXES.join(" "))
}

/// The hop-by-hop headers the runtime writes itself for the client, never a Worker's: workerd
/// (and Cloudflare's edge in front of it) frames every answer on its own connection
/// (tests/load checks it on the wire). An origin over HTTP/1.1 sends both on nearly every
/// answer, so leaving them to the runtime spares re-wrapping each answer to remove them.
const FRAMED_BY_THE_RUNTIME: [&str; 2] = ["connection", "transfer-encoding"];

/// The origin response headers the edge removes before the client gets the answer
/// (space-separated); the other hop-by-hop ones are [`FRAMED_BY_THE_RUNTIME`]. `Set-Cookie`
/// is dropped too unless `FORWARD_ORIGIN_COOKIES` is on, and then filtered by
/// [`forwards_origin_cookie`].
pub fn dropped_response_headers() -> String {
    let dropped: Vec<&str> = HOP_BY_HOP.into_iter().filter(|name| !FRAMED_BY_THE_RUNTIME.contains(name)).collect();
    dropped.join(" ")
}

/// The `Authorization` the origin gets: the Access JWT the request was validated with (the
/// client's own bearer in passthrough mode, the one inside a sealed token otherwise), unless
/// forwarding is switched off.
pub fn origin_authorization(forward_bearer: bool, credential: &str) -> Option<String> {
    forward_bearer.then(|| format!("Bearer {credential}"))
}

/// Every header the gateway sets for the origin, as `name\nvalue\n…` for the edge's one
/// call: the identity headers, the forwarded `Authorization`, the origin's service token.
/// Header values cannot carry line breaks; a value with one is dropped, not forwarded.
pub fn gateway_headers(
    identity: &Identity,
    authorization: Option<&str>,
    service_token: Option<(&str, &str)>,
) -> String {
    let mut lines = String::with_capacity(256);
    let mut add = |name: &str, value: &str| {
        // Bytes, not chars: the value is a ~1 KB JWT on every request.
        if !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            for part in [name, "\n", value, "\n"] {
                lines.push_str(part);
            }
        }
    };
    add(SUBJECT_HEADER, &identity.subject);
    if let Some(email) = &identity.email {
        add(EMAIL_HEADER, email);
        add(ACCESS_EMAIL_HEADER, email);
    }
    if !identity.groups.is_empty() {
        add(GROUPS_HEADER, &groups_header_value(&identity.groups));
    }
    if let Some(authorization) = authorization {
        add("authorization", authorization);
    }
    if let Some((id, secret)) = service_token {
        add("cf-access-client-id", id);
        add("cf-access-client-secret", secret);
    }
    lines
}

/// Names of the gateway's own cookies (`mcpgw_…`, and `__Host-mcpgw…`): the origin
/// shares the hostname, and must never set or overwrite them.
const GATEWAY_COOKIE_PREFIXES: [&str; 2] = ["mcpgw_", "__Host-mcpgw"];

/// Whether one origin `Set-Cookie` value may reach the client: never one naming a
/// gateway cookie (compared without case, as browsers do for `__Host-`), and never one
/// without a name (RFC 6265bis §5.6: also a value without `=`), which a browser sends back
/// as its bare value: `=mcpgw_consent_x=…` would come back looking like a gateway cookie.
/// A value that starts with a gateway cookie name is refused too, quoted or not.
pub fn forwards_origin_cookie(set_cookie: &str) -> bool {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let Some((name, value)) = pair.split_once('=') else { return false };
    let (name, value) = (name.trim(), value.trim_start().trim_start_matches('"'));
    let names_gateway = |text: &str| GATEWAY_COOKIE_PREFIXES.iter().any(|p| starts_with_ignore_case(text, p));
    !name.is_empty() && !names_gateway(name) && !names_gateway(value)
}

/// The groups as a JSON array: group names hold spaces and commas, so any separator
/// would be ambiguous. Non-ASCII is `\u`-escaped, as header values are bytes.
fn groups_header_value(groups: &[String]) -> String {
    let json = serde_json::to_string(groups).unwrap_or_default(); // strings always serialise
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
    if access_login
        || (crate::primitives::http::is_media_type(content_type, "text/html") && (status == 200 || status == 403))
    {
        return Err(Error::Upstream {
            failure: UpstreamFailure::Unavailable,
            reason: "origin answered with a Cloudflare Access login page (set ORIGIN_ACCESS_CLIENT_ID/SECRET)",
            detail: None,
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

    /// What the edge does with the lists (src/edge/proxy.js), to names as fetch gives them.
    fn forwards_request_header(name: &str) -> bool {
        let (names, prefixes) = dropped_request_headers();
        let name = name.to_ascii_lowercase();
        !(names.split(' ').any(|n| n == name) || prefixes.split(' ').any(|p| name.starts_with(p)))
    }

    /// What the edge drops, and what the runtime replaces with its own.
    fn reaches_the_client(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        !(dropped_response_headers().split(' ').any(|n| n == name) || FRAMED_BY_THE_RUNTIME.contains(&name.as_str()))
    }

    #[test]
    fn the_lists_are_lower_case_single_words() {
        let (names, prefixes) = dropped_request_headers();
        for list in [names, prefixes, dropped_response_headers()] {
            assert!(list.split(' ').all(|n| !n.is_empty() && n == n.to_ascii_lowercase()), "{list}");
        }
    }

    /// The gateway's headers as the edge sets them: `name\nvalue\n…` pairs.
    fn pairs(lines: &str) -> Vec<(&str, &str)> {
        let parts: Vec<&str> = lines.split('\n').collect();
        assert_eq!(parts.last(), Some(&""), "{lines:?}");
        parts[..parts.len() - 1].chunks(2).map(|p| (p[0], p[1])).collect()
    }

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
    }

    #[test]
    fn forged_forwarding_and_routing_headers_never_reach_the_origin() {
        for name in [
            "x-forwarded-for",
            "X-Forwarded-Host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-prefix",
            "x-forwarded-server",
            "x-forwarded-uri",
            "x-original-url",
            "X-Rewrite-URL",
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
            "true-client-ip",
            "x-real-ip",
        ] {
            assert!(!forwards_request_header(name), "{name}");
        }
        // Near misses are ordinary headers.
        for name in ["x-forwarded", "x-forward-id", "x-original", "x-request-id"] {
            assert!(forwards_request_header(name), "{name}");
        }
    }

    #[test]
    fn origin_response_headers_and_cookies() {
        for name in HOP_BY_HOP {
            assert!(!reaches_the_client(name), "{name}");
        }
        assert!(!reaches_the_client("Connection"));
        assert!(!dropped_response_headers().contains("transfer-encoding"), "the runtime's own, no re-wrap");
        assert!(reaches_the_client("mcp-session-id"));
        assert!(reaches_the_client("content-type"));
        assert!(forwards_origin_cookie("session=abc; Path=/; HttpOnly"));
        assert!(forwards_origin_cookie("my_mcpgw_pref=1"));
        assert!(forwards_origin_cookie("pref=x_mcpgw_consent=1"));
        assert!(forwards_origin_cookie("empty=; Path=/"));
        for gateway in [
            "mcpgw_csrf=x; Path=/",
            "mcpgw_consent_abc=x",
            "__Host-mcpgw_csrf=x; Secure; Path=/",
            "__host-MCPGW_consent_a=x",
            " mcpgw_csrf =x",
            "__Host-mcpgw",
            // No name: the browser sends the bare value back.
            "flag",
            "=x",
            " =x; Path=/",
            "=mcpgw_consent_x=forged",
            "; mcpgw_csrf=x",
            // A value that reads as a gateway cookie.
            "pref=mcpgw_consent_x=forged",
            "pref= \"__Host-mcpgw_csrf=x\"",
            "pref=MCPGW_browser",
        ] {
            assert!(!forwards_origin_cookie(gateway), "{gateway}");
        }
    }

    #[test]
    fn gateway_headers_come_from_the_token_and_the_settings() {
        let identity = Identity {
            subject: "sub-1".into(),
            email: Some("a@example.com".into()),
            groups: vec!["eng".into(), "ops".into()],
            not_before: None,
            expires_at: 0,
        };
        assert_eq!(
            pairs(&gateway_headers(&identity, Some("Bearer a.b.c"), Some(("id", "secret")))),
            vec![
                (SUBJECT_HEADER, "sub-1"),
                (EMAIL_HEADER, "a@example.com"),
                (ACCESS_EMAIL_HEADER, "a@example.com"),
                (GROUPS_HEADER, r#"["eng","ops"]"#),
                ("authorization", "Bearer a.b.c"),
                ("cf-access-client-id", "id"),
                ("cf-access-client-secret", "secret"),
            ]
        );
        let bare = Identity { email: None, groups: vec![], ..identity.clone() };
        assert_eq!(pairs(&gateway_headers(&bare, None, None)), vec![(SUBJECT_HEADER, "sub-1")]);
        let named = Identity {
            groups: vec!["Finance Admins".into(), "Eng, Platform".into(), "Équipe 🚀".into()],
            ..identity.clone()
        };
        let lines = gateway_headers(&named, None, None);
        let value = pairs(&lines).pop().unwrap().1;
        assert_eq!(value, r#"["Finance Admins","Eng, Platform","\u00c9quipe \ud83d\ude80"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<String>>(value).unwrap(),
            named.groups,
            "an origin reads it back exactly"
        );
        let evil = Identity { email: Some("a@example.com\r\nx-injected: 1".into()), ..identity };
        assert_eq!(
            pairs(&gateway_headers(&evil, Some("Bearer a\nb"), None)),
            vec![(SUBJECT_HEADER, "sub-1"), (GROUPS_HEADER, r#"["eng","ops"]"#)],
            "a value with a line break is dropped, never split into another header"
        );
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
