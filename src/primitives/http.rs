//! The sans-IO HTTP surface: the response the core decides on, and small helpers for
//! URLs, cookies, media types and HTML. The edge turns these into `web_sys` types;
//! nothing here does I/O.

use serde::Serialize;

/// The style every HTML page of the gateway shares (consent and error pages).
pub const PAGE_STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f4f5f7;\
color:#1d1f23;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;max-width:34rem;margin:1rem;padding:2rem 2.25rem;border-radius:12px;\
box-shadow:0 2px 14px rgba(0,0,0,.08)}h1{font-size:1.35rem;margin:0 0 1rem}\
dl{margin:1rem 0;display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1rem}\
dt{color:#5b6070}dd{margin:0;word-break:break-all;font-family:ui-monospace,monospace;font-size:.92rem}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}button{font-size:1rem;padding:.6rem 1.4rem;\
border-radius:8px;border:1px solid #c8ccd4;background:#fff;cursor:pointer}\
button.approve{background:#f6821f;border-color:#f6821f;color:#fff;font-weight:600}\
.note{color:#5b6070;font-size:.9rem}.code{color:#5b6070;font-family:ui-monospace,monospace}\
.warn{background:#fff4e5;border-left:4px solid #f6821f;padding:.6rem .9rem;border-radius:4px}";

/// Largest form or JSON body the OAuth endpoints read; anything above is refused
/// before parsing (RFC 7591 metadata and token requests are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The most the Worker reads and discards of an upload it refused ([`drains`]).
pub const MAX_DRAINED_BYTES: u64 = 32 * 1024 * 1024;

/// Whether a refused upload that declares `bytes`, or has sent `bytes` since the refusal, is
/// still read and discarded behind the answer rather than cancelled (a lingering close, as
/// nginx does).
/// Cancelled, the upload is still arriving when the connection closes, and the reset that
/// follows can cut the answer short. Bounded so that no client keeps the isolate reading:
/// past [`MAX_DRAINED_BYTES`] the upload is cancelled and its sender may lose the answer.
pub fn drains(bytes: u64) -> bool {
    bytes <= MAX_DRAINED_BYTES
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    fn new(status: u16, content_type: &str, body: String) -> Self {
        Self { status, headers: vec![("content-type", content_type.to_owned())], body }
            .with_header("cache-control", "no-store")
    }

    /// A JSON response. Every OAuth answer carries `Cache-Control: no-store` (RFC 6749 §5.1).
    /// The gateway's own documents always serialise (no map with keys that are not strings,
    /// no `Serialize` that fails): the empty fallback is never sent.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        Self::new(status, "application/json", serde_json::to_string(value).unwrap_or_default())
    }

    /// An HTML page for a person. Framing is refused so that a page with buttons
    /// (the consent form) cannot be clickjacked. No `form-action`: Chromium applies it
    /// to the redirects after a form post, which go to Access and to the client. The
    /// referrer goes to this origin only: under `no-referrer` a browser's form post says
    /// `Origin: null`, and the consent post must name its origin.
    pub fn html(status: u16, body: String) -> Self {
        Self::new(status, "text/html; charset=utf-8", body)
            .with_header("x-frame-options", "DENY")
            .with_header(
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            )
            .with_header("referrer-policy", "same-origin")
    }

    pub fn redirect(location: String) -> Self {
        Self { status: 302, headers: vec![("location", location)], body: String::new() }
            .with_header("cache-control", "no-store")
            .with_header("referrer-policy", "no-referrer")
    }

    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: String::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// CORS for the endpoints browser-based clients call directly. No credentials are
/// involved (tokens travel in `Authorization`), so `*` is safe.
pub mod cors {
    use super::Response;

    /// `*` because the 2026-07-28 revision's `Mcp-Param-*` headers have any name, and a
    /// preflight may answer `*` when no credentials are involved. It never covers
    /// `authorization`, and browsers older than the wildcard read it as a name, hence
    /// the explicit list.
    pub const ALLOWED_HEADERS: &str = "*, authorization, content-type, accept, mcp-session-id, \
        mcp-protocol-version, last-event-id, mcp-method, mcp-name";
    pub const EXPOSED_HEADERS: &str = "www-authenticate, mcp-session-id, mcp-protocol-version";

    /// The answer to a preflight `OPTIONS` request.
    pub fn preflight(allowed_methods: &str) -> Response {
        Response::empty(204)
            .with_header("access-control-allow-origin", "*")
            .with_header("access-control-allow-methods", allowed_methods.to_owned())
            .with_header("access-control-allow-headers", ALLOWED_HEADERS)
            .with_header("access-control-max-age", "86400")
    }
}

/// The parts of a request URL as the runtime serialises it (absolute, WHATWG-normalised:
/// lower-case host, default port elided, no fragment): `(origin, path, query)`.
/// Splitting the string is all that is needed, and cheaper than a URL parser per request.
pub fn split_request_url(url: &str) -> (&str, &str, Option<&str>) {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_start..].find(['/', '?']).map_or(url.len(), |i| authority_start + i);
    let (origin, rest) = url.split_at(path_start);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    (origin, if path.is_empty() { "/" } else { path }, query)
}

/// Builds `base?name=value&…`, appending to an existing query if there is one.
pub fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{}", serializer.finish())
}

/// The value of one cookie from a `Cookie` request header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (n, v) = pair.trim().split_once('=')?;
        (n == name).then_some(v)
    })
}

/// Whether a `Content-Type` header names the given media type (parameters ignored).
pub fn is_media_type(content_type: Option<&str>, expected: &str) -> bool {
    content_type.and_then(|v| v.split(';').next()).is_some_and(|media| media.trim().eq_ignore_ascii_case(expected))
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_upload_is_drained_up_to_the_bound() {
        assert!(drains(0) && drains(5 * 1024 * 1024) && drains(MAX_DRAINED_BYTES));
        assert!(!drains(MAX_DRAINED_BYTES + 1) && !drains(u64::MAX));
    }

    #[test]
    fn request_urls_split_into_origin_path_and_query() {
        assert_eq!(split_request_url("https://mcp.example.com/mcp"), ("https://mcp.example.com", "/mcp", None));
        assert_eq!(
            split_request_url("http://127.0.0.1:8787/authorize?a=1&b=%2F"),
            ("http://127.0.0.1:8787", "/authorize", Some("a=1&b=%2F"))
        );
        assert_eq!(split_request_url("https://h.example"), ("https://h.example", "/", None));
        assert_eq!(split_request_url("https://h.example?x"), ("https://h.example", "/", Some("x")));
        assert_eq!(split_request_url("https://h.example/a?"), ("https://h.example", "/a", Some("")));
    }

    #[test]
    fn with_query_appends() {
        assert_eq!(with_query("https://a/cb", &[("code", "x y")]), "https://a/cb?code=x+y");
        assert_eq!(with_query("https://a/cb?k=v", &[("s", "&")]), "https://a/cb?k=v&s=%26");
    }

    #[test]
    fn cookies_and_media_types() {
        assert_eq!(cookie("a=1; b=2", "b"), Some("2"));
        assert_eq!(cookie("ab=1", "a"), None);
        assert!(is_media_type(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            "application/x-www-form-urlencoded"
        ));
        assert!(!is_media_type(Some("text/plain"), "application/json"));
        assert!(!is_media_type(None, "application/json"));
    }

    #[test]
    fn preflight_admits_any_request_header_and_still_names_authorization() {
        let preflight = cors::preflight("POST, OPTIONS");
        let allowed: Vec<&str> =
            preflight.header("access-control-allow-headers").unwrap().split(',').map(str::trim).collect();
        assert!(allowed.contains(&"*"), "Mcp-Param-* headers have any name");
        assert!(allowed.contains(&"authorization"), "the wildcard never covers Authorization");
        assert_eq!(preflight.header("access-control-allow-credentials"), None, "* holds only without credentials");
    }

    #[test]
    fn html_escape() {
        assert_eq!(escape_html("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_input_never_panics(input in "\\PC{0,300}", cookie_header in "\\PC{0,100}") {
            let _ = cookie(&cookie_header, "mcpgw_csrf");
            let _ = is_media_type(Some(&input), "application/json");
        }
    }
}
