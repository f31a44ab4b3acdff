//! Typed configuration, read from the Worker's `[vars]` and secrets. Every problem
//! names the setting; no value is ever echoed (some are secrets).

use crate::error::Error;
use crate::redirect_uri::{RedirectPolicy, DEFAULT_ALLOWLIST};
use crate::seal::SealingKeys;
use crate::secret::Secret;

/// The default scopes requested from Access and advertised to clients.
pub const DEFAULT_SCOPES: &str = "openid email profile";
/// How long an approved consent is remembered per redirect target (7 days).
pub const DEFAULT_CONSENT_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// The Access for SaaS application the gateway is the one client of.
#[derive(Debug)]
pub struct AccessApp {
    /// The app's issuer, exactly as Access publishes it
    /// (`https://<team>.cloudflareaccess.com/cdn-cgi/access/sso/oidc/<client_id>`).
    pub issuer: String,
    pub client_id: String,
    /// Absent when the app allows "PKCE without client secret".
    pub client_secret: Option<Secret>,
}

impl AccessApp {
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }
}

#[derive(Debug)]
pub struct Config {
    pub access: AccessApp,
    /// Where MCP requests go (the Tunnel hostname), without a trailing slash.
    pub origin_url: String,
    /// The MCP endpoint's path on this hostname, e.g. `/mcp`.
    pub mcp_path: String,
    /// The public `scheme://host` of the gateway; `None` means "as requested".
    pub public_origin: Option<String>,
    pub scopes: Vec<String>,
    pub redirect_policy: RedirectPolicy,
    pub consent_ttl_seconds: u64,
    pub sealing_keys: SealingKeys,
    /// Shown on the consent page.
    pub server_name: Option<String>,
}

fn invalid(setting: &'static str, problem: &'static str) -> Error {
    Error::Config { setting, problem }
}

impl Config {
    /// Reads the configuration through `lookup` (vars and secrets by name).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(invalid(name, "is missing"));

        let issuer = required("ACCESS_ISSUER")?;
        check_base_url(&issuer).map_err(|problem| invalid("ACCESS_ISSUER", problem))?;
        let client_id = match get("ACCESS_CLIENT_ID") {
            Some(id) => id,
            // The issuer's last path segment is the client id in Access for SaaS.
            None => issuer.rsplit('/').next().unwrap_or_default().to_owned(),
        };
        if client_id.is_empty() || client_id.contains(['/', ':']) {
            return Err(invalid(
                "ACCESS_CLIENT_ID",
                "is missing and cannot be taken from ACCESS_ISSUER",
            ));
        }
        let origin_url = required("ORIGIN_URL")?;
        check_base_url(&origin_url).map_err(|problem| invalid("ORIGIN_URL", problem))?;
        let mcp_path = get("MCP_PATH").unwrap_or_else(|| "/mcp".into());
        if !mcp_path.starts_with('/')
            || mcp_path.len() < 2
            || mcp_path.ends_with('/')
            || mcp_path.contains(['?', '#', ' '])
        {
            return Err(invalid("MCP_PATH", "must be a path like /mcp"));
        }
        let public_origin = get("PUBLIC_ORIGIN");
        if let Some(origin) = &public_origin {
            check_origin(origin).map_err(|problem| invalid("PUBLIC_ORIGIN", problem))?;
        }
        let scopes: Vec<String> = get("SCOPES")
            .unwrap_or_else(|| DEFAULT_SCOPES.into())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(invalid(
                "SCOPES",
                "must include openid (Access for SaaS is OpenID Connect)",
            ));
        }
        let redirect_policy = RedirectPolicy::parse(
            &get("ALLOWED_REDIRECT_URIS").unwrap_or_else(|| DEFAULT_ALLOWLIST.into()),
        )
        .map_err(|problem| invalid("ALLOWED_REDIRECT_URIS", problem))?;
        let consent_ttl_seconds = match get("CONSENT_TTL_SECONDS") {
            None => DEFAULT_CONSENT_TTL_SECONDS,
            Some(v) => v
                .parse()
                .map_err(|_| invalid("CONSENT_TTL_SECONDS", "must be a whole number of seconds"))?,
        };
        let sealing_keys = SealingKeys::parse(&required("SEALING_KEYS")?)
            .map_err(|problem| invalid("SEALING_KEYS", problem))?;
        Ok(Self {
            access: AccessApp {
                issuer,
                client_id,
                client_secret: get("ACCESS_CLIENT_SECRET").map(Secret::new),
            },
            origin_url: origin_url.trim_end_matches('/').to_owned(),
            mcp_path,
            public_origin,
            scopes,
            redirect_policy,
            consent_ttl_seconds,
            sealing_keys,
            server_name: get("SERVER_NAME"),
        })
    }
}

/// `https://` URLs (plain `http://` only for loopback, for local stacks), with no
/// query, fragment, credentials or trailing slash.
fn check_base_url(value: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URL")?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err("must use https");
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err("must not have a query, fragment or credentials");
    }
    if value.ends_with('/') {
        return Err("must not end with '/'");
    }
    Ok(())
}

fn check_origin(value: &str) -> Result<(), &'static str> {
    check_base_url(value)?;
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URL")?;
    if url.path() != "/" {
        return Err("must be scheme://host[:port] without a path");
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::seal::tests::KEY_A;
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
        Config::from_lookup(|name| vars.get(name).cloned())
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
        assert_eq!(
            c.access.discovery_url(),
            format!("{ISSUER}/.well-known/openid-configuration")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn each_bad_setting_is_named() {
        for name in ["ACCESS_ISSUER", "ORIGIN_URL", "SEALING_KEYS"] {
            let mut v = vars();
            v.remove(name);
            assert_eq!(
                config_from(&v).unwrap_err(),
                Error::Config {
                    setting: name,
                    problem: "is missing"
                }
            );
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
            ("SEALING_KEYS", "short"),
        ];
        for (name, value) in cases {
            match problem(name, value) {
                Error::Config { setting, .. } => assert_eq!(setting, name, "{name}={value}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn loopback_http_is_allowed_for_local_stacks() {
        let mut v = vars();
        v.insert(
            "ACCESS_ISSUER",
            "http://127.0.0.1:9000/cdn-cgi/access/sso/oidc/xyz".into(),
        );
        v.insert("ACCESS_CLIENT_ID", "explicit".into());
        let c = config_from(&v).unwrap();
        assert_eq!(c.access.client_id, "explicit");
    }
}
