//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP
//! authorization 2025-11-25 and 2026-07-28): a client whose `client_id` is an https URL
//! publishes its metadata at that URL, and the gateway fetches it instead of the client
//! registering. The one place for the rules: which `client_id` is such a URL, which hosts
//! are trusted, what a fetched document must say, and how long an answer is kept. The
//! edge only fetches (`redirect: manual`, [`FETCH_TIMEOUT_MS`], [`MAX_DOCUMENT_BYTES`]).

use crate::clients::redirect_uri::{consent_key, Destination};
use crate::primitives::error::{ClientMetadataFailure as Failure, Error};
use crate::primitives::strict_json::{self, checked_string, Members};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Longer `client_id` URLs are refused (real ones are under a hundred characters).
pub const MAX_URL_LEN: usize = 2048;
/// A document is a few hundred bytes; the fetch is cancelled past this.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// How long the client's host has to answer with the whole document.
pub const FETCH_TIMEOUT_MS: u32 = 5_000;
/// However `Cache-Control` reads, a document is kept at least this long (no host can make
/// the gateway fetch it on every request) ...
pub const CACHE_FLOOR_SECONDS: u64 = 60;
/// ... and at most this long (a changed document is seen within a day).
pub const CACHE_CEILING_SECONDS: u64 = 24 * 3600;
/// A failed fetch or an unusable document is remembered this long, so that one URL
/// cannot make the gateway hammer a host.
pub const FAILURE_CACHE_SECONDS: u64 = 30;
/// Documents kept per isolate: URLs are the client's choice, so the cache is bounded.
pub const MAX_CACHED_DOCUMENTS: usize = 256;

/// JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_KEY_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Whether a `client_id` is URL-shaped, so that it is a document's URL or refused as one
/// (with the reason); anything else is an ordinary client id.
pub fn is_url(client_id: &str) -> bool {
    client_id.contains("://")
}

/// A `client_id` that is the URL of the client's metadata document, as [`check_url`] admits
/// it: the URL fetched, byte for byte the `client_id` the document repeats, and the client
/// the gateway's codes and tokens are bound to. Where it enters from a request, the trusted
/// hosts are checked too ([`Settings::document_url`]); read back from a sealed payload, its
/// shape is checked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClientIdUrl(String);

checked_string!(ClientIdUrl, |url| check_url(url).is_ok());

/// The `CIMD`, `CIMD_ALLOWED_HOSTS` and `CIMD_PINNED` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Read by [`crate::oauth::capabilities::Capabilities`], which the endpoints enforce.
    pub enabled: bool,
    /// `None`: any https host (the person still consents, seeing the host).
    allowed_hosts: Option<Vec<String>>,
    /// Whether [`pinned_fallback`] may answer for a document that cannot be fetched.
    pub pinned: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self { enabled: true, allowed_hosts: None, pinned: true }
    }
}

impl Settings {
    pub fn new(enabled: bool, allowed_hosts: Option<Vec<String>>, pinned: bool) -> Self {
        Self { enabled, allowed_hosts, pinned }
    }

    /// Parses `CIMD_ALLOWED_HOSTS`: a JSON array of host names, `*.example.com` for any
    /// subdomain of `example.com` (not `example.com` itself). A list naming nothing is an
    /// error, never "any host".
    pub fn parse_hosts(value: &str) -> Result<Vec<String>, &'static str> {
        let hosts = strict_json::from_slice::<Vec<String>>(value.as_bytes())
            .map_err(|_| "must be a JSON array of host names")?;
        if hosts.is_empty() {
            return Err("lists nothing (unset it to accept any https host)");
        }
        hosts
            .into_iter()
            .map(|host| {
                let host = host.trim().to_ascii_lowercase();
                let name = host.strip_prefix("*.").unwrap_or(&host);
                let valid = !name.is_empty()
                    && name.split('.').all(|label| {
                        !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if valid {
                    Ok(host)
                } else {
                    Err("must list host names, or *.suffix for the subdomains of a host")
                }
            })
            .collect()
    }

    fn admits(&self, host: &str) -> bool {
        let Some(allowed) = &self.allowed_hosts else { return true };
        allowed.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(suffix) => host.strip_suffix(suffix).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => pattern == host,
        })
    }

    /// The URL to fetch for a `client_id` a request names (where documents are accepted
    /// at all: the endpoints ask their capabilities first): `None` when it is not URL-shaped
    /// (an ordinary client id), an error when it is a URL the gateway will not fetch.
    pub fn document_url(&self, client_id: &str) -> Result<Option<ClientIdUrl>, Error> {
        if !is_url(client_id) {
            return Ok(None);
        }
        let host = check_url(client_id).map_err(Error::ClientMetadata)?;
        if !self.admits(&host) {
            return Err(Error::ClientMetadata(Failure::HostNotAllowed));
        }
        Ok(Some(ClientIdUrl(client_id.to_owned())))
    }
}

/// Checks a URL-shaped `client_id` as the draft requires (https, a path, no fragment, no
/// credentials, no dot segments) and as SSRF demands (a public host name, not an IP
/// address, localhost or a single label); it must be in canonical form, so the URL fetched is byte for byte the
/// `client_id` the document must repeat. Returns the host.
pub fn check_url(raw: &str) -> Result<String, Failure> {
    if raw.len() > MAX_URL_LEN {
        return Err(Failure::UrlTooLong);
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Failure::UrlMalformed);
    }
    if raw.contains('#') {
        return Err(Failure::UrlFragment);
    }
    let url = url::Url::parse(raw).map_err(|_| Failure::UrlMalformed)?;
    if url.scheme() != "https" {
        return Err(Failure::UrlNotHttps);
    }
    // The raw string, as url::Url hides what it normalised: `@` with no user, dot segments.
    let after_scheme = raw.get("https://".len()..).unwrap_or_default();
    let (authority, rest) = after_scheme.split_at(after_scheme.find(['/', '?']).unwrap_or(after_scheme.len()));
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return Err(Failure::UrlUserinfo);
    }
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host.trim_end_matches('.').to_owned(),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => return Err(Failure::UrlIpLiteral),
        None => return Err(Failure::UrlMalformed),
    };
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(Failure::UrlLocalhost);
    }
    // A name with no dot is resolved by local search domains, never as a public host.
    if !host.contains('.') {
        return Err(Failure::UrlSingleLabel);
    }
    let path = rest.split('?').next().unwrap_or_default();
    if path.split('/').any(|segment| matches!(segment.to_ascii_lowercase().replace("%2e", ".").as_str(), "." | "..")) {
        return Err(Failure::UrlDotSegment);
    }
    if url.path() == "/" {
        return Err(Failure::UrlNoPath);
    }
    if url.as_str() != raw {
        return Err(Failure::UrlNotCanonical);
    }
    Ok(host)
}

/// What the gateway keeps of a client's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub client_id: ClientIdUrl,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

impl ClientMetadata {
    /// Checks a fetched document for the client whose `client_id` is `url`.
    pub fn parse(url: &ClientIdUrl, body: &[u8]) -> Result<Self, Failure> {
        Self::from_document(url, strict_json::from_slice(body).map_err(|_| Failure::NotJson)?)
    }

    /// Each member the rules name is read on its own, so that each has its own failure.
    fn from_document(url: &ClientIdUrl, document: &RawValue) -> Result<Self, Failure> {
        let document = Members::of(document).ok_or(Failure::NotObject)?;
        let string = |name| strict_json::read::<String>(document.get(name)?).ok();
        if string("client_id").as_deref() != Some(&**url) {
            return Err(Failure::ClientIdMismatch);
        }
        // A document is public: a secret in it is no secret, and shared-secret methods are
        // forbidden for these clients (draft §4.1).
        if document.get("client_secret").is_some() || document.get("client_secret_expires_at").is_some() {
            return Err(Failure::ClientSecret);
        }
        if document.get("jwks").is_some_and(has_private_key) {
            return Err(Failure::PrivateKey);
        }
        // `private_key_jwt` is served as a public client with PKCE: the gateway holds the
        // only secret Access knows, and the code stays bound to the client's challenge.
        match document.get("token_endpoint_auth_method") {
            None => {}
            Some(_) if matches!(string("token_endpoint_auth_method").as_deref(), Some("none" | "private_key_jwt")) => {}
            Some(_) => return Err(Failure::AuthMethod),
        }
        let client_name = string("client_name")
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .ok_or(Failure::NoClientName)?;
        let redirect_uris = document
            .get("redirect_uris")
            .and_then(|uris| strict_json::read::<Vec<String>>(uris).ok())
            .filter(|uris| !uris.is_empty())
            .ok_or(Failure::NoRedirectUris)?;
        Ok(Self { client_id: url.clone(), client_name, redirect_uris })
    }

    /// Whether the document lists the request's redirect URI: exactly, except that a
    /// loopback one matches on any port (RFC 8252 §7.3).
    pub fn check_redirect_uri(&self, requested: &str) -> Result<(), Failure> {
        let loopback = Destination::of(requested) == Destination::Loopback;
        let listed = self.redirect_uris.iter().any(|uri| {
            uri == requested
                || (loopback
                    && Destination::of(uri) == Destination::Loopback
                    && consent_key(uri) == consent_key(requested))
        });
        if listed {
            Ok(())
        } else {
            Err(Failure::RedirectUriNotListed)
        }
    }
}

/// Whether `jwks`, a JWK or a set of them, holds a member only a private or symmetric key has.
fn has_private_key(jwks: &RawValue) -> bool {
    let private = |key: &RawValue| {
        Members::of(key).is_some_and(|key| PRIVATE_KEY_MEMBERS.iter().any(|member| key.get(member).is_some()))
    };
    let keys = Members::of(jwks).and_then(|set| strict_json::read::<Vec<&RawValue>>(set.get("keys")?).ok());
    private(jwks) || keys.is_some_and(|keys| keys.into_iter().any(private))
}

/// What the edge's fetch brought back (the body already capped at [`MAX_DOCUMENT_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub cache_control: Option<String>,
    pub body: Vec<u8>,
}

/// The outcome of a fetch for `url`, and how many seconds to keep it.
pub fn evaluate(url: &ClientIdUrl, fetched: Result<Fetched, Failure>) -> (Result<ClientMetadata, Failure>, u64) {
    let outcome = fetched.and_then(|fetched| match fetched.status {
        200 if fetched.body.len() > MAX_DOCUMENT_BYTES => Err(Failure::TooLarge),
        200 => ClientMetadata::parse(url, &fetched.body).map(|document| (document, fetched.cache_control)),
        300..=399 => Err(Failure::Redirected),
        _ => Err(Failure::BadStatus),
    });
    match outcome {
        Ok((document, cache_control)) => (Ok(document), lifetime(cache_control.as_deref())),
        Err(failure) => (Err(failure), FAILURE_CACHE_SECONDS),
    }
}

/// The documents of well-known clients shipped with the Worker, each with where and when
/// it was published (`src/pinned_client_metadata.json`).
const PINNED: &str = include_str!("pinned_client_metadata.json");

#[derive(Deserialize)]
struct Pinned<'a> {
    #[serde(borrow)]
    documents: Vec<PinnedDocument<'a>>,
}

#[derive(Deserialize)]
struct PinnedDocument<'a> {
    source: String,
    #[serde(borrow)]
    document: &'a RawValue,
}

/// The pinned copy of the document at `url`, if one is shipped, the settings allow it and
/// the live fetch got no document at all (no answer, an error status, a redirect, an HTML
/// challenge page: some of these hosts challenge datacenter traffic). A document that was
/// fetched and breaks a rule is its publisher's word and is never overridden.
pub fn pinned_fallback(url: &ClientIdUrl, failure: Failure, settings: &Settings) -> Option<ClientMetadata> {
    let no_document = matches!(
        failure,
        Failure::Unreachable
            | Failure::Timeout
            | Failure::Redirected
            | Failure::BadStatus
            | Failure::TooLarge
            | Failure::NotJson
            | Failure::NotObject
    );
    if !settings.pinned || !no_document {
        return None;
    }
    let pinned: Pinned = strict_json::from_slice(PINNED.as_bytes()).ok()?;
    let entry = pinned.documents.into_iter().find(|entry| *url == *entry.source)?;
    ClientMetadata::from_document(url, entry.document).ok()
}

/// How long a document is kept: its `Cache-Control` `max-age` within
/// [[`CACHE_FLOOR_SECONDS`], [`CACHE_CEILING_SECONDS`]]; the floor for `no-store`,
/// `no-cache` or no `max-age` at all.
pub fn lifetime(cache_control: Option<&str>) -> u64 {
    let mut max_age = None;
    for directive in cache_control.unwrap_or_default().split(',') {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return CACHE_FLOOR_SECONDS,
            "max-age" => max_age = value.trim().trim_matches('"').parse::<u64>().ok().or(Some(0)),
            _ => {}
        }
    }
    max_age.unwrap_or(0).clamp(CACHE_FLOOR_SECONDS, CACHE_CEILING_SECONDS)
}

struct Cached {
    outcome: Result<ClientMetadata, Failure>,
    expires_at: u64,
}

/// The per-isolate cache of fetch outcomes, by URL: documents and failures alike.
#[derive(Default)]
pub struct DocumentCache {
    entries: HashMap<String, Cached>,
}

impl DocumentCache {
    pub fn get(&self, url: &str, now: u64) -> Option<Result<ClientMetadata, Failure>> {
        self.entries.get(url).filter(|cached| now < cached.expires_at).map(|cached| cached.outcome.clone())
    }

    /// Keeps `outcome` for `seconds`. When full, expired entries go first, then the one
    /// expiring soonest.
    pub fn store(&mut self, url: &str, outcome: Result<ClientMetadata, Failure>, seconds: u64, now: u64) {
        if self.entries.len() >= MAX_CACHED_DOCUMENTS && !self.entries.contains_key(url) {
            self.entries.retain(|_, cached| now < cached.expires_at);
            if self.entries.len() >= MAX_CACHED_DOCUMENTS {
                if let Some(soonest) =
                    self.entries.iter().min_by_key(|(_, cached)| cached.expires_at).map(|(url, _)| url.clone())
                {
                    self.entries.remove(&soonest);
                }
            }
        }
        self.entries.insert(url.to_owned(), Cached { outcome, expires_at: now.saturating_add(seconds) });
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::json;

    pub const CLIENT: &str = "https://client.example.com/oauth/metadata.json";

    /// [`CLIENT`] as a request naming it gives it.
    pub fn client() -> ClientIdUrl {
        Settings::default().document_url(CLIENT).unwrap().unwrap()
    }

    /// What [`Settings::document_url`] makes of `id`, as a string.
    fn url_of(settings: &Settings, id: &str) -> Result<Option<String>, Error> {
        settings.document_url(id).map(|url| url.map(|url| url.to_string()))
    }

    /// A valid document for [`CLIENT`], with `changes` merged in (`null` removes a member).
    pub fn document(changes: serde_json::Value) -> Vec<u8> {
        let mut document = json!({
            "client_id": CLIENT,
            "client_name": "Example <Client>",
            "redirect_uris": ["https://client.example.com/callback", "http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
        });
        for (name, value) in changes.as_object().unwrap() {
            match value {
                serde_json::Value::Null => document.as_object_mut().unwrap().remove(name),
                _ => document.as_object_mut().unwrap().insert(name.clone(), value.clone()),
            };
        }
        serde_json::to_vec(&document).unwrap()
    }

    fn fetched(status: u16, cache_control: Option<&str>, body: Vec<u8>) -> Result<Fetched, Failure> {
        Ok(Fetched { status, cache_control: cache_control.map(str::to_owned), body })
    }

    #[test]
    fn url_shaped_client_ids_are_checked_and_others_are_ordinary_ids() {
        let settings = Settings::default();
        assert_eq!(url_of(&settings, CLIENT), Ok(Some(CLIENT.to_owned())));
        for id in ["abc123", "urn:client:1", "client.example.com/metadata"] {
            assert_eq!(url_of(&settings, id), Ok(None), "{id}");
        }
        let long = format!("https://client.example.com/{}", "a".repeat(MAX_URL_LEN));
        let cases = [
            (long.as_str(), Failure::UrlTooLong),
            ("https://client.example.com/a b", Failure::UrlMalformed),
            ("https://client.example.com/\tdoc", Failure::UrlMalformed),
            ("https://:443/doc", Failure::UrlMalformed),
            ("http://client.example.com/doc", Failure::UrlNotHttps),
            ("ftp://client.example.com/doc", Failure::UrlNotHttps),
            ("https://client.example.com/doc#frag", Failure::UrlFragment),
            ("https://user:pw@client.example.com/doc", Failure::UrlUserinfo),
            ("https://user@client.example.com/doc", Failure::UrlUserinfo),
            ("https://@client.example.com/doc", Failure::UrlUserinfo),
            ("https://127.0.0.1/doc", Failure::UrlIpLiteral),
            ("https://127.1/doc", Failure::UrlIpLiteral),
            ("https://0x7f000001/doc", Failure::UrlIpLiteral),
            ("https://10.0.0.1:8443/doc", Failure::UrlIpLiteral),
            ("https://[::1]/doc", Failure::UrlIpLiteral),
            ("https://[fe80::1]/doc", Failure::UrlIpLiteral),
            ("https://169.254.169.254/latest/meta-data", Failure::UrlIpLiteral),
            ("https://localhost/doc", Failure::UrlLocalhost),
            ("https://localhost./doc", Failure::UrlLocalhost),
            ("https://app.localhost/doc", Failure::UrlLocalhost),
            ("https://intranet/doc", Failure::UrlSingleLabel),
            ("https://intranet./doc", Failure::UrlSingleLabel),
            ("https://xn--bcher-kva/doc", Failure::UrlSingleLabel),
            ("https://client.example.com", Failure::UrlNoPath),
            ("https://client.example.com/", Failure::UrlNoPath),
            ("https://client.example.com/?x=1", Failure::UrlNoPath),
            ("https://client.example.com/a/../doc", Failure::UrlDotSegment),
            ("https://client.example.com/./doc", Failure::UrlDotSegment),
            ("https://client.example.com/a/%2e%2E/doc", Failure::UrlDotSegment),
            ("https://client.example.com/doc/..", Failure::UrlDotSegment),
            ("https://Client.Example.com/doc", Failure::UrlNotCanonical),
            ("https://client.example.com:443/doc", Failure::UrlNotCanonical),
            ("HTTPS://client.example.com/doc", Failure::UrlNotCanonical),
            ("https://client.example.com/d%6fc?a b", Failure::UrlMalformed),
            ("https://client.example.com/a\\doc", Failure::UrlNotCanonical),
        ];
        for (id, failure) in cases {
            assert_eq!(url_of(&settings, id), Err(Error::ClientMetadata(failure)), "{id}");
        }
        // What stays allowed: a port, a query, a long path.
        for id in [
            "https://client.example.com:8443/doc",
            "https://client.example.com/doc?v=1",
            "https://a.b.example/x/y.json",
        ] {
            assert_eq!(url_of(&settings, id), Ok(Some(id.to_owned())), "{id}");
        }
    }

    /// The `url` crate is built without Unicode host tables: an internationalised host is
    /// accepted in its `xn--` form only (the raw form was refused as not canonical before).
    #[test]
    fn internationalised_hosts_only_in_their_xn_form() {
        let settings = Settings::default();
        let punycode = "https://xn--mnchen-3ya.example/client.json";
        assert_eq!(url_of(&settings, punycode), Ok(Some(punycode.to_owned())));
        for raw in ["https://münchen.example/client.json", "https://MÜNCHEN.example/client.json"] {
            assert_eq!(check_url(raw), Err(Failure::UrlMalformed), "{raw}");
        }
        assert_eq!(check_url("https://xn--zz.example/client.json"), Err(Failure::UrlMalformed), "not punycode");
    }

    /// What was decided before any fetch says what to fix; what the fetch or the document
    /// did is one sentence for all, so the page is no status oracle for arbitrary URLs.
    #[test]
    fn only_failures_decided_before_the_fetch_have_their_own_sentence() {
        let failures = [
            Failure::UrlTooLong,
            Failure::UrlMalformed,
            Failure::UrlNotHttps,
            Failure::UrlFragment,
            Failure::UrlUserinfo,
            Failure::UrlIpLiteral,
            Failure::UrlLocalhost,
            Failure::UrlSingleLabel,
            Failure::UrlNoPath,
            Failure::UrlDotSegment,
            Failure::UrlNotCanonical,
            Failure::HostNotAllowed,
            Failure::Unreachable,
            Failure::Timeout,
            Failure::Redirected,
            Failure::BadStatus,
            Failure::TooLarge,
            Failure::NotJson,
            Failure::NotObject,
            Failure::ClientIdMismatch,
            Failure::NoClientName,
            Failure::NoRedirectUris,
            Failure::ClientSecret,
            Failure::PrivateKey,
            Failure::AuthMethod,
            Failure::RedirectUriNotListed,
        ];
        let (generic, own): (Vec<_>, Vec<_>) =
            failures.iter().partition(|f| f.description() == crate::primitives::error::DOCUMENT_UNUSABLE);
        assert_eq!(generic.len(), 13, "every fetch and document failure: {generic:?}");
        assert_eq!(&generic[..2], [&Failure::Unreachable, &Failure::Timeout]);
        assert!(own.contains(&&Failure::HostNotAllowed) && own.contains(&&Failure::RedirectUriNotListed));
        let sentences: std::collections::HashSet<_> = own.iter().map(|f| f.description()).collect();
        assert_eq!(sentences.len(), own.len());
        for failure in generic {
            let page = Error::ClientMetadata(*failure).to_response(crate::primitives::error::Surface::Page);
            assert_eq!((page.status, page.header("location")), (400, None));
            assert!(page.body.contains("could not be used") && page.body.contains("invalid_client"));
            assert!(!page.body.contains(&format!("{failure:?}")));
            assert_eq!(Error::ClientMetadata(*failure).log_reason(), format!("client metadata: {failure:?}"));
        }
    }

    #[test]
    fn a_client_id_url_is_written_as_it_came_and_read_back_only_if_it_passes_the_url_checks() {
        let url = client();
        let written = serde_json::to_string(&url).unwrap();
        assert_eq!(written, format!("\"{CLIENT}\""));
        assert_eq!(serde_json::from_str::<ClientIdUrl>(&written).unwrap(), url);
        for malformed in
            ["http://client.example.com/doc", "https://10.0.0.1/doc", "https://client.example.com/", "abc123"]
        {
            assert!(serde_json::from_value::<ClientIdUrl>(json!(malformed)).is_err(), "{malformed}");
        }
        // The trusted hosts are the request's check, not the seal's: a sealed URL stays good.
        let trusting_others = Settings::new(true, Some(vec!["other.example".into()]), true);
        assert_eq!(url_of(&trusting_others, CLIENT), Err(Error::ClientMetadata(Failure::HostNotAllowed)));
    }

    #[test]
    fn the_trust_policy_admits_listed_hosts_and_subdomains_of_globs() {
        let hosts = Settings::parse_hosts(r#"["claude.ai", "*.Example.COM "]"#).unwrap();
        assert_eq!(hosts, ["claude.ai", "*.example.com"]);
        let settings = Settings::new(true, Some(hosts), true);
        for id in ["https://claude.ai/oauth/x", "https://client.example.com/doc", "https://a.b.example.com/doc"] {
            assert_eq!(url_of(&settings, id), Ok(Some(id.to_owned())), "{id}");
        }
        for id in [
            "https://example.com/doc",
            "https://evil-example.com/doc",
            "https://xexample.com/doc",
            "https://claude.ai.evil.example/doc",
            "https://sub.claude.ai/doc",
            "https://chatgpt.com/oauth/client.json",
        ] {
            assert_eq!(url_of(&settings, id), Err(Error::ClientMetadata(Failure::HostNotAllowed)), "{id}");
        }
        // The URL's own problems come first.
        assert_eq!(url_of(&settings, "http://claude.ai/x"), Err(Error::ClientMetadata(Failure::UrlNotHttps)));
        for refused in ["[]", "claude.ai", "[\"\"]", r#"["*"]"#, r#"["*.*.example"]"#, r#"["a..example"]"#, "[1]"] {
            assert!(Settings::parse_hosts(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_valid_document_is_kept_with_its_name_and_redirects() {
        let document = ClientMetadata::parse(&client(), &document(json!({"client_name": "  Example  "}))).unwrap();
        assert_eq!(document.client_name, "Example");
        assert_eq!(document.client_id, CLIENT);
        assert_eq!(document.redirect_uris.len(), 2);
        for method in [json!("private_key_jwt"), json!("none")] {
            let body = self::document(
                json!({"token_endpoint_auth_method": method, "jwks": {"keys": [{"kty": "EC", "x": "a", "y": "b"}]}}),
            );
            assert!(ClientMetadata::parse(&client(), &body).is_ok(), "{method}");
        }
        assert!(ClientMetadata::parse(&client(), &self::document(json!({"token_endpoint_auth_method": null}))).is_ok());
    }

    #[test]
    fn documents_breaking_a_rule_are_refused_each_with_its_reason() {
        let cases = [
            (b"not json".to_vec(), Failure::NotJson),
            (b"{\"client_id\": ".to_vec(), Failure::NotJson),
            (b"[1, 2]".to_vec(), Failure::NotObject),
            (
                document(json!({"client_id": "https://other.example.com/oauth/metadata.json"})),
                Failure::ClientIdMismatch,
            ),
            (document(json!({"client_id": format!("{CLIENT}/")})), Failure::ClientIdMismatch),
            (
                document(json!({"client_id": "HTTPS://client.example.com/oauth/metadata.json"})),
                Failure::ClientIdMismatch,
            ),
            (document(json!({"client_id": null})), Failure::ClientIdMismatch),
            (document(json!({"client_name": null})), Failure::NoClientName),
            (document(json!({"client_name": " "})), Failure::NoClientName),
            (document(json!({"client_name": 7})), Failure::NoClientName),
            (document(json!({"redirect_uris": null})), Failure::NoRedirectUris),
            (document(json!({"redirect_uris": []})), Failure::NoRedirectUris),
            (document(json!({"redirect_uris": "https://client.example.com/callback"})), Failure::NoRedirectUris),
            (document(json!({"redirect_uris": ["https://client.example.com/callback", 1]})), Failure::NoRedirectUris),
            (document(json!({"client_secret": "s3cret"})), Failure::ClientSecret),
            (document(json!({"client_secret_expires_at": 0})), Failure::ClientSecret),
            (
                document(json!({"jwks": {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "d": "private"}]}})),
                Failure::PrivateKey,
            ),
            (document(json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}})), Failure::PrivateKey),
            (document(json!({"jwks": {"kty": "EC", "x": "a", "y": "b", "d": "private"}})), Failure::PrivateKey),
            (document(json!({"token_endpoint_auth_method": "client_secret_basic"})), Failure::AuthMethod),
            (document(json!({"token_endpoint_auth_method": "client_secret_post"})), Failure::AuthMethod),
            (document(json!({"token_endpoint_auth_method": "client_secret_jwt"})), Failure::AuthMethod),
            (document(json!({"token_endpoint_auth_method": ["none"]})), Failure::AuthMethod),
        ];
        for (body, failure) in cases {
            assert_eq!(ClientMetadata::parse(&client(), &body), Err(failure), "{}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn redirect_uris_match_exactly_except_for_the_loopback_port() {
        let document = ClientMetadata::parse(
            &client(),
            &document(json!({"redirect_uris": ["https://client.example.com/callback", "http://127.0.0.1/callback", "http://localhost:33418/"]})),
        )
        .unwrap();
        for allowed in [
            "https://client.example.com/callback",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5555/callback",
            "http://localhost:1/",
            "http://localhost/",
        ] {
            assert_eq!(document.check_redirect_uri(allowed), Ok(()), "{allowed}");
        }
        for refused in [
            "https://client.example.com/callback/",
            "https://client.example.com:8443/callback",
            "https://client.example.com/callback?x=1",
            "http://client.example.com/callback",
            "http://127.0.0.1:5555/other",
            "http://localhost:5555/callback",
            "http://[::1]:5555/callback",
            "http://127.0.0.1:5555/",
        ] {
            assert_eq!(document.check_redirect_uri(refused), Err(Failure::RedirectUriNotListed), "{refused}");
        }
    }

    #[test]
    fn what_a_fetch_brought_back_is_judged_and_given_a_lifetime() {
        let ok = evaluate(&client(), fetched(200, Some("public, max-age=3600"), document(json!({}))));
        assert_eq!((ok.0.is_ok(), ok.1), (true, 3600));
        let cases = [
            (fetched(301, None, Vec::new()), Failure::Redirected),
            (fetched(302, Some("max-age=3600"), Vec::new()), Failure::Redirected),
            (fetched(404, None, Vec::new()), Failure::BadStatus),
            (fetched(500, None, document(json!({}))), Failure::BadStatus),
            (fetched(204, None, Vec::new()), Failure::BadStatus),
            (fetched(200, None, vec![b' '; MAX_DOCUMENT_BYTES + 1]), Failure::TooLarge),
            (fetched(200, Some("max-age=3600"), b"<html>".to_vec()), Failure::NotJson),
            (Err(Failure::Timeout), Failure::Timeout),
            (Err(Failure::Unreachable), Failure::Unreachable),
        ];
        for (fetched, failure) in cases {
            assert_eq!(evaluate(&client(), fetched), (Err(failure), FAILURE_CACHE_SECONDS));
        }
        // A document just under the cap is read.
        let mut padded = document(json!({}));
        padded.resize(MAX_DOCUMENT_BYTES, b' ');
        assert!(evaluate(&client(), fetched(200, None, padded)).0.is_ok());
    }

    #[test]
    fn cache_control_sets_the_lifetime_within_the_floor_and_the_ceiling() {
        for (header, seconds) in [
            (None, CACHE_FLOOR_SECONDS),
            (Some(""), CACHE_FLOOR_SECONDS),
            (Some("public"), CACHE_FLOOR_SECONDS),
            (Some("max-age=600"), 600),
            (Some("Max-Age=\"600\", public"), 600),
            (Some("max-age=5"), CACHE_FLOOR_SECONDS),
            (Some("max-age=0"), CACHE_FLOOR_SECONDS),
            (Some("max-age=31536000, immutable"), CACHE_CEILING_SECONDS),
            (Some("max-age=99999999999999999999999"), CACHE_FLOOR_SECONDS),
            (Some("max-age=soon"), CACHE_FLOOR_SECONDS),
            (Some("no-store"), CACHE_FLOOR_SECONDS),
            (Some("max-age=3600, no-cache"), CACHE_FLOOR_SECONDS),
            (Some("private, no-store, max-age=3600"), CACHE_FLOOR_SECONDS),
        ] {
            assert_eq!(lifetime(header), seconds, "{header:?}");
        }
    }

    #[test]
    fn the_cache_keeps_outcomes_for_their_lifetime_and_stays_bounded() {
        const NOW: u64 = 1_800_000_000;
        let mut cache = DocumentCache::default();
        let document = ClientMetadata::parse(&client(), &document(json!({}))).unwrap();
        cache.store(CLIENT, Ok(document.clone()), 120, NOW);
        cache.store("https://bad.example/doc", Err(Failure::Timeout), FAILURE_CACHE_SECONDS, NOW);
        assert_eq!(cache.get(CLIENT, NOW + 119), Some(Ok(document)));
        assert_eq!(cache.get(CLIENT, NOW + 120), None);
        assert_eq!(cache.get("https://bad.example/doc", NOW + 29), Some(Err(Failure::Timeout)));
        assert_eq!(cache.get("https://bad.example/doc", NOW + 30), None);
        assert_eq!(cache.get("https://other.example/doc", NOW), None);
        for n in 0..MAX_CACHED_DOCUMENTS * 2 {
            cache.store(&format!("https://c{n}.example/doc"), Err(Failure::BadStatus), 60 + n as u64, NOW);
        }
        assert_eq!(cache.entries.len(), MAX_CACHED_DOCUMENTS);
        // The longest-lived stay.
        assert!(cache.get(&format!("https://c{}.example/doc", MAX_CACHED_DOCUMENTS * 2 - 1), NOW).is_some());
        assert!(cache.get("https://c0.example/doc", NOW).is_none());
    }

    fn claude_code() -> ClientIdUrl {
        Settings::default().document_url("https://claude.ai/oauth/claude-code-client-metadata").unwrap().unwrap()
    }

    #[test]
    fn every_pinned_document_passes_the_rules_under_its_own_url() {
        let pinned: serde_json::Value = serde_json::from_str(PINNED).unwrap();
        let entries = pinned["documents"].as_array().unwrap();
        assert!(!entries.is_empty());
        for entry in entries {
            let source = entry["source"].as_str().unwrap();
            let url = Settings::default().document_url(source).unwrap().unwrap();
            assert_eq!(url, source);
            assert!(entry["as_of"].as_str().is_some_and(|date| date.len() == 10), "{source}");
            let document = ClientMetadata::parse(&url, entry["document"].to_string().as_bytes()).unwrap();
            assert_eq!(pinned_fallback(&url, Failure::Timeout, &Settings::default()), Some(document));
        }
    }

    #[test]
    fn a_pinned_copy_answers_only_when_no_document_was_fetched_and_it_is_allowed() {
        let settings = Settings::default();
        let pinned = pinned_fallback(&claude_code(), Failure::BadStatus, &settings).unwrap();
        assert_eq!(pinned.client_name, "Claude Code");
        assert_eq!(pinned.check_redirect_uri("http://127.0.0.1:51234/callback"), Ok(()));
        for failure in
            [Failure::Unreachable, Failure::Timeout, Failure::Redirected, Failure::TooLarge, Failure::NotJson]
        {
            assert!(pinned_fallback(&claude_code(), failure, &settings).is_some(), "{failure:?}");
        }
        // A fetched document that breaks a rule is its publisher's word.
        for failure in [Failure::ClientIdMismatch, Failure::ClientSecret, Failure::NoRedirectUris, Failure::AuthMethod]
        {
            assert_eq!(pinned_fallback(&claude_code(), failure, &settings), None, "{failure:?}");
        }
        assert_eq!(pinned_fallback(&client(), Failure::Timeout, &settings), None, "nothing pinned for it");
        assert_eq!(pinned_fallback(&claude_code(), Failure::Timeout, &Settings::new(true, None, false)), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_client_ids_and_documents_never_panic(id in "\\PC{0,120}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = Settings::default().document_url(&id);
            let _ = Settings::default().document_url(&format!("https://{id}"));
            if let Ok(Some(url)) = Settings::default().document_url(&format!("https://{id}")) {
                let _ = ClientMetadata::parse(&url, &body);
            }
            let _ = ClientMetadata::parse(&client(), &body);
            let _ = lifetime(Some(&id));
        }
    }
}
