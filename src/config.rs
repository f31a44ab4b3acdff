//! Typed configuration, read from the Worker's `[vars]` and secrets. Every problem
//! names the setting; no value is ever echoed (some are secrets).

use crate::access::jwks::JwksPolicy;
use crate::access::token::{Allowlist, TokenKind, TokenPolicy};
use crate::access::upstream::AccessApp;
use crate::clients::client_id_metadata;
use crate::clients::redirect_uri::{is_loopback_host, RedirectPolicy, DEFAULT_ALLOWLIST};
use crate::mcp::policy::McpPolicy;
use crate::mcp::request_log::LogScope;
use crate::primitives::error::Error;
use crate::primitives::seal::SealingKeys;
use crate::primitives::secret::Secret;
use crate::primitives::strict_json;

/// The default scopes requested from Access and advertised to clients.
pub const DEFAULT_SCOPES: &str = "openid email profile";
/// How long an approved consent is remembered per redirect target (7 days).
pub const DEFAULT_CONSENT_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// Allowed clock skew for `exp`/`nbf`; small, since Access tokens live minutes.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
pub const DEFAULT_JWKS_TTL_SECONDS: u64 = 3600;
/// The refresh reuse grace's default window: clients retry within seconds, and races are
/// over in one ([`crate::oauth::refresh_grace`]).
pub const DEFAULT_REFRESH_REUSE_GRACE_SECONDS: u64 = 60;
/// The longest window allowed: a longer one would not help a retrying client, and within it
/// a stolen refresh token that was already used still gets the answer.
pub const MAX_REFRESH_REUSE_GRACE_SECONDS: u64 = 300;
pub const DEFAULT_JWKS_MIN_REFETCH_SECONDS: u64 = 30;
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 1024;
/// How long the origin has to start answering (the body may then stream for as long as it likes).
pub const DEFAULT_ORIGIN_TIMEOUT_SECONDS: u64 = 30;

/// How long a sealed refresh token stays usable (Access still decides whether the
/// refresh token inside it is).
pub const DEFAULT_REFRESH_TOKEN_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// The Workers Rate Limiting binding's periods are 10 or 60 seconds.
pub const DEFAULT_RATE_LIMIT_PERIOD_SECONDS: u64 = 60;

/// The binding MCP traffic goes through when `wrangler.toml` declares it: a Workers VPC
/// service (`[[vpc_services]]`) or any other Fetcher, such as a service binding to a Worker.
pub const ORIGIN_BINDING: &str = "ORIGIN_SERVICE";

/// What the Worker's environment holds under [`ORIGIN_BINDING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginBinding {
    /// Nothing: requests go to `ORIGIN_URL` with `fetch`, over the internet.
    Absent,
    /// Something with a `fetch` method: requests go through it.
    Fetcher,
    /// Something else (a `[vars]` string, another kind of binding): a configuration error.
    NotFetcher,
}

/// What access token clients hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// Access's own JWT access token, validated at the edge.
    Passthrough,
    /// A token sealed by the gateway around the identity from Access's `id_token`.
    Sealed,
    /// Passthrough while Access issues JWT access tokens, sealed when they are opaque.
    Auto,
}

/// How bearer tokens are validated at the edge.
#[derive(Debug)]
pub struct EdgeAuth {
    pub jwks_url: String,
    pub jwks: JwksPolicy,
    pub leeway_seconds: u64,
    /// `None`: what Access issues in this flow (the gateway's callback URL, as
    /// Access sets `aud` to the redirect URI) and the Access client id.
    pub audiences: Option<Vec<String>>,
    pub allowlist: Allowlist,
    pub token_cache_size: usize,
}

/// How requests are passed to the origin.
#[derive(Debug)]
pub struct ProxySettings {
    /// Where MCP requests go (the Tunnel hostname), without a trailing slash.
    pub origin_url: String,
    /// Paths proxied besides the MCP path.
    pub extra_paths: Vec<String>,
    /// Pass the client's bearer token on (the origin verifies it itself).
    pub forward_bearer: bool,
    /// Pass the origin's `Set-Cookie` on (never one for the gateway's own cookies).
    pub forward_origin_cookies: bool,
    /// A Cloudflare Access service token for an origin that is itself behind Access.
    pub service_token: Option<(String, Secret)>,
    pub timeout_seconds: u64,
    /// The binding requests go through ([`ORIGIN_BINDING`]), `origin_url` then only naming
    /// the `Host` (and SNI) they carry; `None`: `fetch` to `origin_url`.
    pub binding: Option<&'static str>,
}

#[derive(Debug)]
pub struct Config {
    pub access: AccessApp,
    pub token_mode: TokenMode,
    pub refresh_token_ttl_seconds: u64,
    /// How long identical refreshes share one exchange's answer ([`crate::oauth::refresh_grace`]); 0: off.
    pub refresh_reuse_grace_seconds: u64,
    pub edge: EdgeAuth,
    pub proxy: ProxySettings,
    /// The MCP endpoint's path on this hostname, e.g. `/mcp`.
    pub mcp_path: String,
    /// The public `scheme://host` of the gateway; `None` means "as requested".
    pub public_origin: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_policy: RedirectPolicy,
    /// Clients identified by Client ID Metadata Documents (`CIMD`, `CIMD_ALLOWED_HOSTS`).
    pub client_metadata: client_id_metadata::Settings,
    pub consent_ttl_seconds: u64,
    pub sealing_keys: SealingKeys,
    /// Shown on the consent page.
    pub server_name: Option<String>,
    pub mcp: McpSettings,
    pub request_log: LogScope,
}

/// What the gateway does with the MCP requests themselves (nothing by default, at no
/// cost: the body is then never read).
#[derive(Debug)]
pub struct McpSettings {
    /// Who may call which tools, read which resources, get which prompts.
    pub policy: Option<McpPolicy>,
    /// Log the tool, resource or prompt name of every request (reads the body).
    pub audit_names: bool,
    /// Rate-limit per identity and tool rather than per identity (reads the body).
    pub rate_limit_by_tool: bool,
    /// What `Retry-After` says when the rate limiter refuses: its period.
    pub rate_limit_period_seconds: u64,
}

impl McpSettings {
    /// Whether a request's body must be read to decide or log.
    pub fn reads_body(&self) -> bool {
        self.policy.is_some() || self.audit_names || self.rate_limit_by_tool
    }
}

/// A comma- or whitespace-separated list (paths, audiences, emails, domains).
fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An allowlist setting. Unset is `Ok(empty)` (no restriction); a value that yields no
/// entry is an error, never "everyone". `names` are values that may hold spaces and
/// commas (Access group names): a JSON array of strings, or one name as written.
fn allowlist(setting: &'static str, value: Option<String>, names: bool) -> Result<Vec<String>, Error> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let entries = if value.starts_with('[') {
        strict_json::from_slice::<Vec<String>>(value.as_bytes())
            .map_err(|_| Error::config(setting, "must be a JSON array of strings"))?
            .into_iter()
            .map(|entry| entry.trim().to_owned())
            .filter(|entry| !entry.is_empty())
            .collect()
    } else if names {
        vec![value]
    } else {
        list(Some(value))
    };
    if entries.is_empty() {
        return Err(Error::config(setting, "lists nothing (unset it to allow everyone Access lets in)"));
    }
    Ok(entries)
}

impl Config {
    /// The checks for Access's `id_token` (sealed token mode): OpenID Connect Core
    /// §3.1.3.7, `aud` is the client id; allowlists apply later, per MCP request.
    pub fn id_token_policy(&self, nonce: Option<String>) -> TokenPolicy {
        TokenPolicy {
            kind: TokenKind::IdToken { nonce },
            issuer: self.access.issuer.clone(),
            audiences: vec![self.access.client_id.clone()],
            leeway_seconds: self.edge.leeway_seconds,
            allowlist: Allowlist::default(),
        }
    }

    /// The claim checks for bearer tokens presented to the gateway whose `/callback` is
    /// `callback_url` (the audience Access gives its tokens: the redirect URI).
    pub fn token_policy(&self, callback_url: &str) -> TokenPolicy {
        TokenPolicy {
            kind: TokenKind::AccessToken,
            issuer: self.access.issuer.clone(),
            audiences: self
                .edge
                .audiences
                .clone()
                .unwrap_or_else(|| vec![callback_url.to_owned(), self.access.client_id.clone()]),
            leeway_seconds: self.edge.leeway_seconds,
            allowlist: self.edge.allowlist.clone(),
        }
    }

    /// Reads the configuration through `lookup` (vars and secrets by name), for an
    /// environment that holds `origin_binding` under [`ORIGIN_BINDING`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, origin_binding: OriginBinding) -> Result<Self, Error> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(Error::config(name, "is missing"));
        let number = |name: &'static str, default: u64| match get(name) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map_err(|_| Error::config(name, "must be a whole number")),
        };
        let flag = |name: &'static str, default: bool| match get(name).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(Error::config(name, "must be true or false")),
        };

        let issuer = required("ACCESS_ISSUER")?;
        check_base_url(&issuer, false).map_err(|problem| Error::config("ACCESS_ISSUER", problem))?;
        let client_id = match get("ACCESS_CLIENT_ID") {
            Some(id) => id,
            // The issuer's last path segment is the client id in Access for SaaS.
            None => issuer.rsplit('/').next().unwrap_or_default().to_owned(),
        };
        if client_id.is_empty() || client_id.contains(['/', ':']) {
            return Err(Error::config("ACCESS_CLIENT_ID", "is missing and cannot be taken from ACCESS_ISSUER"));
        }
        let binding = match origin_binding {
            OriginBinding::Absent => None,
            OriginBinding::Fetcher => Some(ORIGIN_BINDING),
            OriginBinding::NotFetcher => {
                return Err(Error::config(
                    ORIGIN_BINDING,
                    "is bound to something without fetch: bind a VPC service ([[vpc_services]]) or a Worker \
                     ([[services]]) under this name, or use another name",
                ))
            }
        };
        let origin_url = required("ORIGIN_URL")?;
        // Through the binding, the URL only picks the scheme (the VPC service's HTTP or HTTPS
        // port) and names the Host and SNI: plain http is fine on any host, as Workers VPC
        // encrypts the request up to the Tunnel either way and only the last hop, inside the
        // private network, is then in the clear.
        check_base_url(&origin_url, binding.is_some()).map_err(|problem| Error::config("ORIGIN_URL", problem))?;
        let mcp_path = get("MCP_PATH").unwrap_or_else(|| "/mcp".into());
        if !mcp_path.starts_with('/')
            || mcp_path.len() < 2
            || mcp_path.ends_with('/')
            || mcp_path.contains(['?', '#', ' '])
        {
            return Err(Error::config("MCP_PATH", "must be a path like /mcp"));
        }
        let public_origin = get("PUBLIC_ORIGIN");
        if let Some(origin) = &public_origin {
            check_origin(origin).map_err(|problem| Error::config("PUBLIC_ORIGIN", problem))?;
        }
        let scopes: Vec<String> =
            get("SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.into()).split_whitespace().map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(Error::config("SCOPES", "must include openid (Access for SaaS is OpenID Connect)"));
        }
        let redirect_policy =
            RedirectPolicy::parse(&get("ALLOWED_REDIRECT_URIS").unwrap_or_else(|| DEFAULT_ALLOWLIST.into()))
                .map_err(|problem| Error::config("ALLOWED_REDIRECT_URIS", problem))?;
        let consent_ttl_seconds = number("CONSENT_TTL_SECONDS", DEFAULT_CONSENT_TTL_SECONDS)?;
        let on_off = |name: &'static str| match get(name).as_deref() {
            None | Some("on") => Ok(true),
            Some("off") => Ok(false),
            Some(_) => Err(Error::config(name, "must be on or off")),
        };
        let client_metadata = client_id_metadata::Settings::new(
            on_off("CIMD")?,
            get("CIMD_ALLOWED_HOSTS")
                .map(|hosts| client_id_metadata::Settings::parse_hosts(&hosts))
                .transpose()
                .map_err(|problem| Error::config("CIMD_ALLOWED_HOSTS", problem))?,
            on_off("CIMD_PINNED")?,
        );
        let token_mode = match get("TOKEN_MODE").as_deref() {
            None | Some("auto") => TokenMode::Auto,
            Some("passthrough") => TokenMode::Passthrough,
            Some("sealed") => TokenMode::Sealed,
            Some(_) => return Err(Error::config("TOKEN_MODE", "must be auto, passthrough or sealed")),
        };
        let jwks_url = get("ACCESS_JWKS_URL").unwrap_or_else(|| format!("{issuer}/jwks"));
        check_base_url(&jwks_url, false).map_err(|problem| Error::config("ACCESS_JWKS_URL", problem))?;
        let edge = EdgeAuth {
            jwks_url,
            jwks: JwksPolicy {
                ttl_seconds: number("JWKS_TTL_SECONDS", DEFAULT_JWKS_TTL_SECONDS)?,
                min_refetch_seconds: number("JWKS_MIN_REFETCH_SECONDS", DEFAULT_JWKS_MIN_REFETCH_SECONDS)?,
            },
            leeway_seconds: number("JWT_LEEWAY_SECONDS", DEFAULT_LEEWAY_SECONDS)?,
            audiences: get("ALLOWED_AUDIENCES").map(|v| list(Some(v))),
            allowlist: Allowlist {
                emails: allowlist("ALLOWED_EMAILS", get("ALLOWED_EMAILS"), false)?,
                email_domains: allowlist("ALLOWED_EMAIL_DOMAINS", get("ALLOWED_EMAIL_DOMAINS"), false)?,
                groups: allowlist("ALLOWED_GROUPS", get("ALLOWED_GROUPS"), true)?,
            },
            token_cache_size: usize::try_from(number("TOKEN_CACHE_SIZE", DEFAULT_TOKEN_CACHE_SIZE as u64)?)
                .map_err(|_| Error::config("TOKEN_CACHE_SIZE", "is too large"))?,
        };
        let extra_paths = list(get("PROXY_PATHS"));
        if extra_paths.iter().any(|p| !p.starts_with('/') || p.starts_with("/.well-known/") || p.contains(['?', '#'])) {
            return Err(Error::config("PROXY_PATHS", "must be paths like /mcp/extra, outside /.well-known/"));
        }
        let service_token = match (get("ORIGIN_ACCESS_CLIENT_ID"), get("ORIGIN_ACCESS_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => Some((id, Secret::new(secret))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::config("ORIGIN_ACCESS_CLIENT_SECRET", "is missing (ORIGIN_ACCESS_CLIENT_ID is set)"))
            }
            (None, Some(_)) => {
                return Err(Error::config("ORIGIN_ACCESS_CLIENT_ID", "is missing (ORIGIN_ACCESS_CLIENT_SECRET is set)"))
            }
        };
        let forward_bearer = flag("FORWARD_BEARER", true)?;
        // Without the bearer, the origin can only trust the identity headers, which anyone
        // reaching its hostname directly could forge unless Access guards that hostname too.
        // An origin reached through the binding has no public hostname: only the gateway
        // (and whatever else is bound to the same service) reaches it.
        if !forward_bearer && service_token.is_none() && binding.is_none() {
            return Err(Error::config(
                "FORWARD_BEARER",
                "is false, which needs ORIGIN_ACCESS_CLIENT_ID/SECRET (an origin behind Access) \
                 or the ORIGIN_SERVICE binding (a private origin) so that the identity headers cannot be forged",
            ));
        }
        let proxy = ProxySettings {
            origin_url: origin_url.trim_end_matches('/').to_owned(),
            extra_paths,
            forward_bearer,
            forward_origin_cookies: flag("FORWARD_ORIGIN_COOKIES", false)?,
            service_token,
            timeout_seconds: number("ORIGIN_TIMEOUT_SECONDS", DEFAULT_ORIGIN_TIMEOUT_SECONDS)?,
            binding,
        };
        let audit_names = flag("AUDIT_MCP_NAMES", false)?;
        let request_log = match get("REQUEST_LOG").as_deref() {
            None | Some("all") => LogScope::All,
            Some("errors") if audit_names => {
                return Err(Error::config(
                    "REQUEST_LOG",
                    "must be all while AUDIT_MCP_NAMES is true (an audit logs every call)",
                ))
            }
            Some("errors") => LogScope::Errors,
            Some(_) => return Err(Error::config("REQUEST_LOG", "must be all or errors")),
        };
        let refresh_reuse_grace_seconds = number("REFRESH_REUSE_GRACE_SECONDS", DEFAULT_REFRESH_REUSE_GRACE_SECONDS)?;
        if refresh_reuse_grace_seconds > MAX_REFRESH_REUSE_GRACE_SECONDS {
            return Err(Error::config(
                "REFRESH_REUSE_GRACE_SECONDS",
                "must be at most 300 (a longer window only widens the replay of a stolen refresh token)",
            ));
        }
        let sealing_keys =
            SealingKeys::parse(&required("SEALING_KEYS")?).map_err(|problem| Error::config("SEALING_KEYS", problem))?;
        Ok(Self {
            access: AccessApp { issuer, client_id, client_secret: get("ACCESS_CLIENT_SECRET").map(Secret::new) },
            token_mode,
            refresh_token_ttl_seconds: number("REFRESH_TOKEN_TTL_SECONDS", DEFAULT_REFRESH_TOKEN_TTL_SECONDS)?,
            refresh_reuse_grace_seconds,
            edge,
            proxy,
            mcp_path,
            public_origin,
            scopes,
            redirect_policy,
            client_metadata,
            consent_ttl_seconds,
            sealing_keys,
            server_name: get("SERVER_NAME"),
            mcp: McpSettings {
                policy: get("MCP_POLICY")
                    .map(|text| McpPolicy::parse(&text).map_err(|problem| Error::config("MCP_POLICY", problem)))
                    .transpose()?,
                audit_names,
                rate_limit_by_tool: flag("RATE_LIMIT_BY_TOOL", false)?,
                rate_limit_period_seconds: number("RATE_LIMIT_PERIOD_SECONDS", DEFAULT_RATE_LIMIT_PERIOD_SECONDS)?,
            },
            request_log,
        })
    }
}

/// `https://` URLs (plain `http://` only for loopback, for local stacks, unless `any_http`),
/// with no query, fragment, credentials or trailing slash.
fn check_base_url(value: &str, any_http: bool) -> Result<(), &'static str> {
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URL")?;
    let loopback = url.host_str().is_some_and(is_loopback_host);
    if !(url.scheme() == "https" || (url.scheme() == "http" && (loopback || any_http))) {
        return Err("must use https");
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must not have a query, fragment or credentials");
    }
    if value.ends_with('/') {
        return Err("must not end with '/'");
    }
    Ok(())
}

fn check_origin(value: &str) -> Result<(), &'static str> {
    check_base_url(value, false)?;
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URL")?;
    if url.path() != "/" {
        return Err("must be scheme://host[:port] without a path");
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::primitives::seal::tests::KEY_A;
    use std::collections::HashMap;

    pub const ISSUER: &str = "https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc123";

    pub fn vars() -> HashMap<&'static str, String> {
        HashMap::from([
            ("ACCESS_ISSUER", ISSUER.to_owned()),
            ("ACCESS_CLIENT_SECRET", "s3cret".to_owned()),
            ("ORIGIN_URL", "https://origin.example.com".to_owned()),
            ("SEALING_KEYS", KEY_A.to_owned()),
        ])
    }

    pub fn config_from(vars: &HashMap<&'static str, String>) -> Result<Config, Error> {
        Config::from_lookup(|name| vars.get(name).cloned(), OriginBinding::Absent)
    }

    pub fn config_bound(vars: &HashMap<&'static str, String>, binding: OriginBinding) -> Result<Config, Error> {
        Config::from_lookup(|name| vars.get(name).cloned(), binding)
    }

    pub fn test_config() -> Config {
        config_from(&vars()).unwrap()
    }

    fn problem(name: &'static str, value: &str) -> Error {
        let mut v = vars();
        v.insert(name, value.to_owned());
        config_from(&v).unwrap_err()
    }

    #[test]
    fn defaults() {
        let c = test_config();
        assert_eq!(c.access.client_id, "abc123");
        assert_eq!(c.mcp_path, "/mcp");
        assert_eq!(c.scopes, ["openid", "email", "profile"]);
        assert_eq!(c.consent_ttl_seconds, 604800);
        assert_eq!(c.refresh_reuse_grace_seconds, 60);
        assert_eq!(c.access.discovery_url(), format!("{ISSUER}/.well-known/openid-configuration"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.edge.jwks_url, format!("{ISSUER}/jwks"));
        assert_eq!(c.edge.leeway_seconds, 30);
        assert_eq!(c.token_mode, TokenMode::Auto);
        assert!(c.proxy.forward_bearer && c.proxy.service_token.is_none());
        let policy = c.token_policy("https://mcp.example.com/callback");
        assert_eq!(policy.audiences, ["https://mcp.example.com/callback", "abc123"]);
    }

    #[test]
    fn service_token_needs_both_halves() {
        assert_eq!(
            problem("ORIGIN_ACCESS_CLIENT_ID", "id"),
            Error::Config {
                setting: "ORIGIN_ACCESS_CLIENT_SECRET",
                problem: "is missing (ORIGIN_ACCESS_CLIENT_ID is set)"
            }
        );
        assert!(matches!(
            problem("ORIGIN_ACCESS_CLIENT_SECRET", "s"),
            Error::Config { setting: "ORIGIN_ACCESS_CLIENT_ID", .. }
        ));
    }

    #[test]
    fn edge_and_proxy_settings() {
        let mut v = vars();
        v.insert("ALLOWED_EMAILS", "a@x.example, b@x.example".into());
        v.insert("ALLOWED_GROUPS", "eng".into());
        v.insert("ALLOWED_AUDIENCES", "aud-1".into());
        v.insert("FORWARD_BEARER", "false".into());
        v.insert("FORWARD_ORIGIN_COOKIES", "true".into());
        v.insert("ORIGIN_ACCESS_CLIENT_ID", "svc.access".into());
        v.insert("ORIGIN_ACCESS_CLIENT_SECRET", "svc-secret".into());
        v.insert("PROXY_PATHS", "/sse /messages".into());
        let c = config_from(&v).unwrap();
        assert_eq!(c.edge.allowlist.emails, ["a@x.example", "b@x.example"]);
        assert_eq!(c.edge.audiences.as_deref(), Some(&["aud-1".to_owned()][..]));
        assert!(!c.proxy.forward_bearer);
        assert!(c.proxy.forward_origin_cookies && !test_config().proxy.forward_origin_cookies);
        assert_eq!(c.proxy.extra_paths, ["/sse", "/messages"]);
        assert!(!format!("{c:?}").contains("svc-secret"));
    }

    #[test]
    fn each_bad_setting_is_named() {
        for name in ["ACCESS_ISSUER", "ORIGIN_URL", "SEALING_KEYS"] {
            let mut v = vars();
            v.remove(name);
            assert_eq!(config_from(&v).unwrap_err(), Error::Config { setting: name, problem: "is missing" });
        }
        let cases = [
            ("ACCESS_ISSUER", "http://team.example/x"),
            ("ACCESS_ISSUER", "not a url"),
            ("ACCESS_ISSUER", "https://team.example/x/"),
            ("ORIGIN_URL", "https://o.example?x=1"),
            ("MCP_PATH", "mcp"),
            ("MCP_PATH", "/mcp/"),
            ("PUBLIC_ORIGIN", "https://mcp.example.com/mcp"),
            ("SCOPES", "email"),
            ("ALLOWED_REDIRECT_URIS", "https://*.x/cb"),
            ("CONSENT_TTL_SECONDS", "-1"),
            ("JWT_LEEWAY_SECONDS", "soon"),
            ("TOKEN_MODE", "opaque"),
            ("FORWARD_BEARER", "yes"),
            ("PROXY_PATHS", "/.well-known/x"),
            ("ACCESS_JWKS_URL", "http://evil.example/jwks"),
            ("SEALING_KEYS", "short"),
            ("CIMD", "yes"),
            ("CIMD_PINNED", "true"),
            ("CIMD_ALLOWED_HOSTS", "claude.ai"),
            ("CIMD_ALLOWED_HOSTS", "[]"),
            ("CIMD_ALLOWED_HOSTS", r#"["*"]"#),
            ("CIMD_ALLOWED_HOSTS", r#"["a.*.example"]"#),
            ("CIMD_ALLOWED_HOSTS", r#"["https://claude.ai"]"#),
            ("REQUEST_LOG", "none"),
            ("REQUEST_LOG", "Errors"),
            ("REFRESH_REUSE_GRACE_SECONDS", "301"),
            ("REFRESH_REUSE_GRACE_SECONDS", "1m"),
        ];
        for (name, value) in cases {
            match problem(name, value) {
                Error::Config { setting, .. } => assert_eq!(setting, name, "{name}={value}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_refresh_reuse_grace_is_off_at_0_and_at_most_300_seconds() {
        for (value, seconds) in [("0", 0), ("1", 1), ("300", 300)] {
            let mut v = vars();
            v.insert("REFRESH_REUSE_GRACE_SECONDS", value.into());
            assert_eq!(config_from(&v).unwrap().refresh_reuse_grace_seconds, seconds);
        }
    }

    #[test]
    fn group_names_keep_their_spaces_and_commas() {
        let groups = |value: &str| {
            let mut v = vars();
            v.insert("ALLOWED_GROUPS", value.to_owned());
            config_from(&v).map(|c| c.edge.allowlist.groups)
        };
        assert_eq!(groups("Finance Admins"), Ok(vec!["Finance Admins".to_owned()]));
        assert_eq!(groups("Eng, Platform"), Ok(vec!["Eng, Platform".to_owned()]));
        assert_eq!(
            groups(r#"["Finance Admins", "Eng, Platform"]"#),
            Ok(vec!["Finance Admins".to_owned(), "Eng, Platform".to_owned()])
        );
    }

    #[test]
    fn allowlists_that_list_nothing_fail_closed() {
        for (name, value) in [
            ("ALLOWED_GROUPS", "[]"),
            ("ALLOWED_GROUPS", r#"["", " "]"#),
            ("ALLOWED_GROUPS", "[\"unterminated"),
            ("ALLOWED_GROUPS", "[1]"),
            ("ALLOWED_EMAILS", ","),
            ("ALLOWED_EMAILS", "[]"),
            ("ALLOWED_EMAIL_DOMAINS", " , ,"),
        ] {
            assert!(matches!(problem(name, value), Error::Config { setting, .. } if setting == name), "{name}={value}");
        }
        let mut v = vars();
        v.insert("ALLOWED_EMAILS", r#"["a@example.com", "b@example.com"]"#.into());
        v.insert("ALLOWED_EMAIL_DOMAINS", "example.com, example.org".into());
        let c = config_from(&v).unwrap();
        assert_eq!(c.edge.allowlist.emails, ["a@example.com", "b@example.com"]);
        assert_eq!(c.edge.allowlist.email_domains, ["example.com", "example.org"]);
    }

    #[test]
    fn identity_headers_alone_need_an_origin_behind_access() {
        assert!(matches!(problem("FORWARD_BEARER", "false"), Error::Config { setting: "FORWARD_BEARER", .. }));
        let mut v = vars();
        v.insert("FORWARD_BEARER", "false".into());
        v.insert("ORIGIN_ACCESS_CLIENT_ID", "id".into());
        v.insert("ORIGIN_ACCESS_CLIENT_SECRET", "secret".into());
        assert!(!config_from(&v).unwrap().proxy.forward_bearer);
    }

    #[test]
    fn the_origin_binding() {
        assert_eq!(test_config().proxy.binding, None);
        let bound = config_bound(&vars(), OriginBinding::Fetcher).unwrap();
        assert_eq!(bound.proxy.binding, Some("ORIGIN_SERVICE"));
        assert_eq!(bound.proxy.origin_url, "https://origin.example.com");
        // A name bound to something that cannot fetch (here a [vars] string) is named.
        assert!(matches!(
            config_bound(&vars(), OriginBinding::NotFetcher),
            Err(Error::Config { setting: "ORIGIN_SERVICE", .. })
        ));
        // The URL names the Host (and SNI) only: plain http on a private name is fine there,
        // and nowhere else.
        let mut v = vars();
        v.insert("ORIGIN_URL", "http://mcp.internal:8000".into());
        assert_eq!(config_bound(&v, OriginBinding::Fetcher).unwrap().proxy.origin_url, "http://mcp.internal:8000");
        assert!(matches!(config_from(&v), Err(Error::Config { setting: "ORIGIN_URL", problem: "must use https" })));
        for bad in ["mcp.internal", "ftp://mcp.internal", "http://mcp.internal/?x=1", "http://u:p@mcp.internal"] {
            v.insert("ORIGIN_URL", bad.into());
            let refused = config_bound(&v, OriginBinding::Fetcher);
            assert!(matches!(refused, Err(Error::Config { setting: "ORIGIN_URL", .. })), "{bad}");
        }
    }

    #[test]
    fn a_private_origin_may_trust_the_identity_headers_alone() {
        let mut v = vars();
        v.insert("FORWARD_BEARER", "false".into());
        assert!(!config_bound(&v, OriginBinding::Fetcher).unwrap().proxy.forward_bearer);
        assert!(matches!(config_from(&v), Err(Error::Config { setting: "FORWARD_BEARER", .. })));
    }

    #[test]
    fn mcp_features_are_off_by_default_and_an_invalid_policy_is_refused() {
        let c = test_config();
        assert!(c.mcp.policy.is_none() && !c.mcp.reads_body());
        assert!(matches!(problem("MCP_POLICY", "allow everything"), Error::Config { setting: "MCP_POLICY", .. }));
        assert!(matches!(
            problem("MCP_POLICY", r#"{"default": "allow"}"#),
            Error::Config { setting: "MCP_POLICY", .. }
        ));
        let mut v = vars();
        v.insert("MCP_POLICY", r#"{"default": "deny", "rules": [{"effect": "allow", "tools": ["ping"]}]}"#.into());
        assert!(config_from(&v).unwrap().mcp.reads_body());
        let mut v = vars();
        v.insert("AUDIT_MCP_NAMES", "true".into());
        assert!(config_from(&v).unwrap().mcp.reads_body());
    }

    /// Every setting the configuration reads has a row in README's "Configuration" table and a
    /// line in `.dev.vars.example`, so that neither falls behind the code.
    #[test]
    fn every_setting_read_is_documented() {
        let asked = std::cell::RefCell::new(Vec::new());
        let v = vars();
        Config::from_lookup(
            |name| {
                asked.borrow_mut().push(name.to_owned());
                v.get(name).cloned()
            },
            OriginBinding::Absent,
        )
        .unwrap();
        let readme = include_str!("../README.md");
        let table = readme.split("\n## Configuration\n").nth(1).and_then(|rest| rest.split("\n## ").next()).unwrap();
        let example = include_str!("../.dev.vars.example");
        let asked = asked.into_inner();
        assert!(asked.len() > 30 && asked.iter().any(|n| n == "REQUEST_LOG"), "{asked:?}");
        for name in &asked {
            assert!(table.contains(&format!("`{name}`")), "{name} has no row in README's Configuration table");
            assert!(example.contains(&format!("{name}=")), "{name} is not in .dev.vars.example");
        }
    }

    #[test]
    fn request_log_scope() {
        assert_eq!(test_config().request_log, LogScope::All);
        let mut v = vars();
        v.insert("REQUEST_LOG", "errors".into());
        assert_eq!(config_from(&v).unwrap().request_log, LogScope::Errors);
        v.insert("REQUEST_LOG", "all".into());
        assert_eq!(config_from(&v).unwrap().request_log, LogScope::All);
        // An audit is a line for every call: refused rather than silently thinned out.
        v.insert("REQUEST_LOG", "errors".into());
        v.insert("AUDIT_MCP_NAMES", "true".into());
        assert!(matches!(config_from(&v), Err(Error::Config { setting: "REQUEST_LOG", .. })));
    }

    #[test]
    fn client_id_metadata_settings() {
        let defaults = test_config().client_metadata;
        assert!(defaults.enabled && defaults.pinned);
        assert_eq!(defaults.document_url("https://any.example/doc").unwrap().unwrap(), "https://any.example/doc");
        let mut v = vars();
        v.insert("CIMD", "off".into());
        v.insert("CIMD_PINNED", "off".into());
        v.insert("CIMD_ALLOWED_HOSTS", r#"["claude.ai"]"#.into());
        let settings = config_from(&v).unwrap().client_metadata;
        assert!(!settings.enabled && !settings.pinned);
        v.insert("CIMD", "on".into());
        let settings = config_from(&v).unwrap().client_metadata;
        assert!(settings.document_url("https://any.example/doc").is_err());
        assert!(settings.document_url("https://claude.ai/doc").is_ok());
    }

    /// Host names are ASCII: an internationalised one in its `xn--` form (README).
    #[test]
    fn internationalised_hosts_only_in_their_xn_form() {
        let mut v = vars();
        v.insert("ORIGIN_URL", "https://xn--mnchen-3ya.example".into());
        v.insert("ALLOWED_REDIRECT_URIS", "https://xn--mnchen-3ya.example/cb".into());
        assert!(config_from(&v).is_ok());
        for (name, value) in
            [("ORIGIN_URL", "https://münchen.example"), ("ALLOWED_REDIRECT_URIS", "https://münchen.example/cb")]
        {
            assert!(matches!(problem(name, value), Error::Config { setting, .. } if setting == name), "{value}");
        }
    }

    #[test]
    fn loopback_http_is_allowed_for_local_stacks() {
        let mut v = vars();
        v.insert("ACCESS_ISSUER", "http://127.0.0.1:9000/cdn-cgi/access/sso/oidc/xyz".into());
        v.insert("ACCESS_CLIENT_ID", "explicit".into());
        let c = config_from(&v).unwrap();
        assert_eq!(c.access.client_id, "explicit");
    }
}
