//! Which client redirect URIs the gateway accepts. Access matches redirect URIs
//! against a fixed list, so the gateway registers only its own `/callback` there and
//! decides about client redirect URIs itself, with this allowlist.

use crate::primitives::error::{Error, ErrorCode};
use crate::primitives::strict_json::checked_string;
use serde::Serialize;

/// The default allowlist: loopback on any port (RFC 8252 §7.3) and the hosted
/// callbacks of the well-known MCP clients.
pub const DEFAULT_ALLOWLIST: &str = "loopback, \
    https://claude.ai/api/mcp/auth_callback, https://claude.com/api/mcp/auth_callback, \
    https://chatgpt.com/connector/oauth/*, https://chatgpt.com/connector_platform_oauth_redirect, \
    https://vscode.dev/redirect, https://insiders.vscode.dev/redirect, \
    cursor://anysphere.cursor-mcp/oauth/callback";

const MAX_REDIRECT_URI_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `http://localhost`, `http://127.0.0.1` or `http://[::1]` on any port and path.
    Loopback,
    /// The exact string.
    Exact(String),
    /// The prefix followed by exactly one path segment of unreserved characters
    /// (written `prefix*` in the configuration).
    Segment(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPolicy(Vec<Rule>);

/// A client redirect URI that [`RedirectPolicy::check`] admitted, kept exactly as the client
/// sent it: compared, and sent back to, as written. Read back from a sealed payload, its shape
/// is checked again ([`well_formed`]); the allowlist admitted it when it was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

checked_string!(RedirectUri, well_formed);

/// What every redirect URI the gateway takes is, whatever the allowlist: not too long, no
/// fragment (RFC 6749 §3.1.2), and nothing a URL parser would silently drop (tabs, line
/// breaks), so that the string matched is the one that ends up in a `Location` header.
fn well_formed(uri: &str) -> bool {
    uri.len() <= MAX_REDIRECT_URI_LEN && !uri.contains('#') && !uri.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl RedirectPolicy {
    /// Parses a comma- or whitespace-separated list of `loopback`, exact URIs and
    /// `prefix*` rules.
    pub fn parse(list: &str) -> Result<Self, &'static str> {
        let rules = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(|entry| match entry {
                "loopback" => Ok(Rule::Loopback),
                _ if entry.contains('#') => Err("must not contain fragments"),
                _ => match entry.strip_suffix('*') {
                    Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                        Ok(Rule::Segment(prefix.to_owned()))
                    }
                    Some(_) => Err("may only use * after a final '/'"),
                    None if entry.contains('*') => Err("may only use * after a final '/'"),
                    None => url::Url::parse(entry)
                        .map(|_| Rule::Exact(entry.to_owned()))
                        .map_err(|_| "contains an entry that is not an absolute URI"),
                },
            })
            .collect::<Result<Vec<_>, _>>()?;
        if rules.is_empty() {
            return Err("is empty");
        }
        Ok(Self(rules))
    }

    /// Checks a client redirect URI, compared as the exact string it was sent as: the one
    /// way a [`RedirectUri`] enters from a request.
    pub fn check(&self, uri: &str) -> Result<RedirectUri, Error> {
        let rejected =
            Err(Error::oauth(ErrorCode::InvalidRedirectUri, "the redirect_uri is not allowed by this server"));
        // Before any parsing.
        if !well_formed(uri) {
            return rejected;
        }
        let allowed = self.0.iter().any(|rule| match rule {
            Rule::Loopback => is_loopback(uri),
            Rule::Exact(exact) => exact == uri,
            Rule::Segment(prefix) => uri.strip_prefix(prefix.as_str()).is_some_and(|segment| {
                !segment.is_empty()
                    && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                    && segment != "."
                    && segment != ".."
            }),
        });
        if allowed {
            Ok(RedirectUri(uri.to_owned()))
        } else {
            rejected
        }
    }
}

/// RFC 8252 §7.3: `http` loopback redirect URIs on any port. The string must parse
/// as a URL without credentials, and the host is compared as written.
fn is_loopback(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix("[::1]") {
        Some(port) => port.is_empty() || is_port(port),
        None => match authority.split_once(':') {
            Some((host, port)) => is_loopback_name(host) && is_port(&format!(":{port}")),
            None => is_loopback_name(authority),
        },
    };
    host && url::Url::parse(uri).is_ok()
}

/// `localhost` or `127.0.0.1` (`[::1]` is matched with its brackets where it occurs).
fn is_loopback_name(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1"
}

/// Whether a URL host (as `url` gives it, IPv6 in brackets) is a loopback name.
pub fn is_loopback_host(host: &str) -> bool {
    is_loopback_name(host) || host == "[::1]"
}

fn is_port(colon_port: &str) -> bool {
    colon_port.strip_prefix(':').is_some_and(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    })
}

/// Hosted pages that do not keep the result but forward it to an address carried in the
/// client's `state`, which whoever starts the flow chooses (VS Code's redirect page).
pub const FORWARDERS: [&str; 2] = ["https://vscode.dev/redirect", "https://insiders.vscode.dev/redirect"];

/// Where an allowed redirect URI delivers the result, as the consent step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// RFC 8252 §7.3 loopback: an application on this computer.
    Loopback,
    /// One of [`FORWARDERS`]: the real destination is whatever `state` says.
    Forwarder,
    /// The client's own callback: a hosted page or a private-use scheme.
    Client,
}

impl Destination {
    pub fn of(uri: &str) -> Self {
        if is_loopback(uri) {
            Self::Loopback
        } else if FORWARDERS.contains(&uri) {
            Self::Forwarder
        } else {
            Self::Client
        }
    }
}

/// The key under which a consent for this redirect URI is remembered, or `None` when it
/// must never be. Loopback clients pick a new port for every login, so the port does not
/// count (host, path and query do); a forwarder's destination is chosen by whoever built
/// the link, so approving one VS Code login must not approve the next.
pub fn consent_key(uri: &str) -> Option<String> {
    match Destination::of(uri) {
        Destination::Forwarder => None,
        Destination::Client => Some(uri.to_owned()),
        Destination::Loopback => {
            let rest = &uri["http://".len()..];
            let split = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(split);
            let host =
                if authority.starts_with("[::1]") { "[::1]" } else { authority.split(':').next().unwrap_or_default() };
            Some(format!("http://{host}{tail}"))
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    fn default_policy() -> RedirectPolicy {
        RedirectPolicy::parse(DEFAULT_ALLOWLIST).unwrap()
    }

    /// `uri` as a sealed payload gives it back: its shape checked, not the allowlist (for the
    /// tests of what comes after [`RedirectPolicy::check`]).
    pub fn redirect_uri(uri: &str) -> RedirectUri {
        serde_json::from_value(serde_json::Value::from(uri)).unwrap()
    }

    /// The cases shared with the black-box tests (tests/vectors/redirect_uris.json).
    pub fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/vectors/redirect_uris.json")).unwrap()
    }

    fn uris(list: &serde_json::Value) -> Vec<&str> {
        list.as_array().unwrap().iter().map(|uri| uri.as_str().unwrap()).collect()
    }

    #[test]
    fn accepts_every_redirect_uri_seen_from_real_clients() {
        let policy = default_policy();
        for uri in uris(&vectors()["allowed"]) {
            assert!(policy.check(uri).is_ok(), "{uri} should be allowed");
        }
    }

    #[test]
    fn rejects_open_redirects_and_lookalikes() {
        let policy = default_policy();
        for uri in uris(&vectors()["refused"]) {
            assert!(policy.check(uri).is_err(), "{uri} should be rejected");
        }
        assert!(policy.check(&format!("http://localhost/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn an_admitted_redirect_uri_is_kept_as_sent_and_read_back_only_well_formed() {
        let sent = "http://localhost:1/callback?x=%20";
        let uri = default_policy().check(sent).unwrap();
        assert_eq!((&*uri, uri.to_string()), (sent, sent.to_owned()));
        let written = serde_json::to_string(&uri).unwrap();
        assert_eq!(written, format!("\"{sent}\""));
        assert_eq!(serde_json::from_str::<RedirectUri>(&written).unwrap(), uri);
        let long = format!("\"http://localhost/{}\"", "a".repeat(MAX_REDIRECT_URI_LEN));
        for malformed in [
            r#""http://localhost/cb#x""#,
            r#""http://localhost/\tcb""#,
            r#""http://localhost/c b""#,
            &long,
            "1",
            "null",
        ] {
            assert!(serde_json::from_str::<RedirectUri>(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn parses_custom_lists() {
        let policy = RedirectPolicy::parse("https://app.example/cb https://x.example/oauth/*").unwrap();
        assert!(policy.check("https://app.example/cb").is_ok());
        assert!(policy.check("https://x.example/oauth/42").is_ok());
        assert!(policy.check("http://localhost:1/cb").is_err());
        assert!(RedirectPolicy::parse("").is_err());
        assert!(RedirectPolicy::parse("https://*.example/cb").is_err());
        assert!(RedirectPolicy::parse("https://x.example/a*").is_err());
        assert!(RedirectPolicy::parse("not a uri").is_err());
    }

    #[test]
    fn consent_keys_ignore_loopback_ports_only_and_never_exist_for_forwarders() {
        let key = |uri| consent_key(uri);
        assert_eq!(key("http://localhost:1234/callback").as_deref(), Some("http://localhost/callback"));
        assert_eq!(key("http://127.0.0.1:80/cb?x=1").as_deref(), Some("http://127.0.0.1/cb?x=1"));
        assert_eq!(key("http://[::1]:80/cb").as_deref(), Some("http://[::1]/cb"));
        // The path and the host as written count: another local application, another consent.
        assert_ne!(key("http://localhost:1/callback"), key("http://localhost:1/oauth/callback"));
        assert_ne!(key("http://localhost:1/callback"), key("http://127.0.0.1:1/callback"));
        let claude = "https://claude.ai/api/mcp/auth_callback";
        assert_eq!(key(claude).as_deref(), Some(claude));
        for forwarder in FORWARDERS {
            assert_eq!(Destination::of(forwarder), Destination::Forwarder);
            assert_eq!(key(forwarder), None, "{forwarder}");
            assert!(default_policy().check(forwarder).is_ok(), "{forwarder} is in the default allowlist");
        }
        assert_eq!(Destination::of("http://localhost:1/cb"), Destination::Loopback);
        assert_eq!(Destination::of(claude), Destination::Client);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_uris_never_panic(uri in "\\PC{0,200}", port in 0u32..100_000) {
            let policy = default_policy();
            let _ = policy.check(&uri);
            let _ = consent_key(&uri);
            let loopback = format!("http://localhost:{port}/callback");
            proptest::prop_assert_eq!(policy.check(&loopback).is_ok(), port <= 65535);
        }

        #[test]
        fn nothing_outside_the_allowlist_passes(host in "[a-z]{1,10}\\.[a-z]{2,3}", path in "/[a-z/]{0,20}") {
            let uri = format!("https://{host}{path}");
            let allowed = ["claude.ai", "claude.com", "chatgpt.com", "vscode.dev", "insiders.vscode.dev"];
            if !allowed.contains(&host.as_str()) {
                proptest::prop_assert!(default_policy().check(&uri).is_err());
            }
        }
    }
}
