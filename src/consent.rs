//! The consent step. The gateway is a proxy with one static client id at Access, so
//! before a browser is sent on, the person confirms which application (redirect
//! target) gets access (MCP security best practices, "confused deputy").
//!
//! CSRF: the form carries a sealed ticket bound to the digest of a random
//! `SameSite=Strict` cookie set with the page; a cross-site post has neither.
//! A consent is remembered per redirect target in a sealed cookie.

use crate::authorization_request::AuthorizationRequest;
use crate::config::Config;
use crate::error::{Error, ErrorCode};
use crate::http::{cookie, escape_html, Response, PAGE_STYLE};
use crate::metadata::{Site, AUTHORIZE_PATH};
use crate::params::Params;
use crate::redirect_uri::consent_target;
use crate::seal::{digest, Entropy, Purpose};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// How long the consent page may stay open.
pub const TICKET_TTL_SECONDS: u64 = 15 * 60;
const CSRF_COOKIE: &str = "mcpgw_csrf";
const CONSENT_COOKIE_PREFIX: &str = "mcpgw_consent_";

#[derive(Serialize, Deserialize)]
struct TicketClaims {
    #[serde(rename = "rq")]
    request: AuthorizationRequest,
    /// Digest of the CSRF cookie value this ticket was issued with.
    #[serde(rename = "cs")]
    csrf: String,
}

#[derive(Serialize, Deserialize)]
struct RememberedConsent {
    #[serde(rename = "t")]
    target: String,
}

/// A checked consent form submission.
pub struct ConsentTicket {
    pub request: AuthorizationRequest,
    pub approved: bool,
}

fn cookie_attributes(site: &Site, max_age: u64, same_site: &str) -> String {
    let secure = if site.issuer.starts_with("https://") { "; Secure" } else { "" };
    format!("Path={AUTHORIZE_PATH}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}")
}

fn consent_cookie_name(redirect_uri: &str) -> String {
    format!("{CONSENT_COOKIE_PREFIX}{}", &digest(&consent_target(redirect_uri))[..16])
}

/// Who receives the result, in words a person can check.
fn describe_target(redirect_uri: &str) -> String {
    let target = consent_target(redirect_uri);
    if target != redirect_uri
        || redirect_uri.starts_with("http://localhost")
        || redirect_uri.starts_with("http://127.0.0.1")
    {
        return "an application on this computer".into();
    }
    match url::Url::parse(redirect_uri) {
        Ok(url) if url.scheme() == "https" => url.host_str().unwrap_or(redirect_uri).to_owned(),
        Ok(url) => format!("the {} application", url.scheme()),
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The consent page, with its CSRF cookie.
pub fn page(
    config: &Config,
    site: &Site,
    request: &AuthorizationRequest,
    now: u64,
    entropy: &mut dyn Entropy,
) -> Response {
    let mut csrf = [0u8; 32];
    entropy.fill(&mut csrf);
    let csrf = URL_SAFE_NO_PAD.encode(csrf);
    let claims = TicketClaims { request: request.clone(), csrf: digest(&csrf) };
    let ticket = config.sealing_keys.seal(Purpose::ConsentTicket, &claims, now + TICKET_TTL_SECONDS, entropy);
    let server = config.server_name.clone().unwrap_or_else(|| site.resource());
    let who = describe_target(&request.redirect_uri);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Allow access to {server}?</title><style>{PAGE_STYLE}</style></head><body><main>\
         <h1>Allow {who} to use {server}?</h1>\
         <p>An MCP client asks to act as you on this MCP server. You will sign in with Cloudflare Access next; \
         afterwards the result is sent to the address below. Only approve if you started this connection.</p>\
         <dl><dt>MCP server</dt><dd id=\"resource\">{resource}</dd>\
         <dt>Sent to</dt><dd id=\"redirect-target\">{redirect}</dd>\
         <dt>Permissions</dt><dd id=\"scope\">{scope}</dd></dl>\
         <form method=\"post\" action=\"{AUTHORIZE_PATH}\">\
         <input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
         <div class=\"actions\"><button class=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></div></form>\
         <p class=\"note\">{remember}</p></main></body></html>",
        server = escape_html(&server),
        who = escape_html(&who),
        resource = escape_html(&site.resource()),
        redirect = escape_html(&request.redirect_uri),
        scope = escape_html(&request.scope),
        remember = if config.consent_ttl_seconds > 0 {
            format!("Your answer is remembered for this destination for {} days.", config.consent_ttl_seconds.div_ceil(86400))
        } else {
            "You will be asked every time.".to_owned()
        },
    );
    Response::html(200, html).with_header(
        "set-cookie",
        format!("{CSRF_COOKIE}={csrf}; {}", cookie_attributes(site, TICKET_TTL_SECONDS, "Strict")),
    )
}

/// Checks a `POST /authorize` consent submission.
pub fn check_submission(
    config: &Config,
    body: &str,
    cookies: Option<&str>,
    fetch_site: Option<&str>,
    now: u64,
) -> Result<ConsentTicket, Error> {
    let forbidden = Error::oauth(
        ErrorCode::InvalidRequest,
        "the consent form expired or was not submitted from this browser; start the connection again",
    );
    // Fetch metadata: browsers say where a form post came from.
    if fetch_site.is_some_and(|s| s != "same-origin" && s != "none") {
        return Err(forbidden);
    }
    let params = Params::parse(body)?;
    let approved = match params.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Err(Error::oauth(ErrorCode::InvalidRequest, "decision must be approve or deny")),
    };
    let ticket = params.require("ticket", "the consent ticket is missing")?;
    let csrf = cookies.and_then(|c| cookie(c, CSRF_COOKIE)).ok_or(forbidden.clone())?;
    let claims: TicketClaims =
        config.sealing_keys.open(Purpose::ConsentTicket, ticket, now).map_err(|_| forbidden.clone())?;
    if claims.csrf != digest(csrf) {
        return Err(forbidden);
    }
    Ok(ConsentTicket { request: claims.request, approved })
}

/// Whether the browser carries an unexpired consent for this redirect target.
pub fn is_remembered(config: &Config, cookies: Option<&str>, redirect_uri: &str, now: u64) -> bool {
    if config.consent_ttl_seconds == 0 {
        return false;
    }
    let Some(value) = cookies.and_then(|c| cookie(c, &consent_cookie_name(redirect_uri))) else {
        return false;
    };
    config
        .sealing_keys
        .open::<RememberedConsent>(Purpose::ConsentCookie, value, now)
        .is_ok_and(|remembered| remembered.target == consent_target(redirect_uri))
}

/// The `Set-Cookie` value remembering an approval, unless remembering is off.
pub fn remember(
    config: &Config,
    site: &Site,
    redirect_uri: &str,
    now: u64,
    entropy: &mut dyn Entropy,
) -> Option<String> {
    let ttl = config.consent_ttl_seconds;
    if ttl == 0 {
        return None;
    }
    let remembered = RememberedConsent { target: consent_target(redirect_uri) };
    let value = config.sealing_keys.seal(Purpose::ConsentCookie, &remembered, now + ttl, entropy);
    Some(format!("{}={value}; {}", consent_cookie_name(redirect_uri), cookie_attributes(site, ttl, "Lax")))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::authorize::tests::{query, NOW};
    use crate::authorize::Relay;
    use crate::config::tests::test_config;
    use crate::metadata::tests::site;
    use crate::metadata::Capabilities;
    use crate::seal::tests::CountingEntropy;
    use crate::upstream::tests::upstream;

    /// The ticket field and the CSRF cookie (`name=value`) of a consent page.
    pub fn form_fields(page: &Response) -> (String, String) {
        let ticket = page.body.split("name=\"ticket\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
        (ticket, cookie)
    }

    fn consent_page() -> (Response, crate::config::Config) {
        let config = test_config();
        let site = site();
        let relay = Relay { config: &config, site: &site, now: NOW };
        let caps = Capabilities::new(&config, &upstream());
        let request = relay.validate(&query(&[("state", "<b>x</b>")], &[]), &caps).unwrap();
        (page(&config, &site, &request, NOW, &mut CountingEntropy::default()), config)
    }

    #[test]
    fn page_names_server_target_and_scope_and_sets_a_strict_cookie() {
        let (response, _) = consent_page();
        assert!(response.body.contains("https://mcp.example.com/mcp"));
        assert!(response.body.contains("http://localhost:4567/callback"));
        assert!(response.body.contains("an application on this computer"));
        assert!(response.body.contains("openid email"));
        assert!(!response.body.contains("<b>x</b>"));
        let cookie = response.header("set-cookie").unwrap();
        assert!(cookie.starts_with("mcpgw_csrf="));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Secure"));
        assert_eq!(response.header("x-frame-options"), Some("DENY"));
    }

    #[test]
    fn submissions_without_the_matching_cookie_or_cross_site_are_refused() {
        let (response, config) = consent_page();
        let (ticket, cookie) = form_fields(&response);
        let body = format!("ticket={ticket}&decision=approve");
        assert!(check_submission(&config, &body, Some(&cookie), Some("same-origin"), NOW).is_ok());
        let refused = [
            (body.clone(), None, None, NOW),
            (body.clone(), Some("mcpgw_csrf=forged"), None, NOW),
            (body.clone(), Some(cookie.as_str()), Some("cross-site"), NOW),
            (body.clone(), Some(cookie.as_str()), Some("same-site"), NOW),
            (body.clone(), Some(cookie.as_str()), None, NOW + TICKET_TTL_SECONDS),
            (format!("ticket={ticket}&decision=maybe"), Some(cookie.as_str()), None, NOW),
            (format!("ticket=x{ticket}&decision=approve"), Some(cookie.as_str()), None, NOW),
            ("decision=approve".to_owned(), Some(cookie.as_str()), None, NOW),
        ];
        for (body, cookies, fetch_site, now) in refused {
            assert!(
                check_submission(&config, &body, cookies, fetch_site, now).is_err(),
                "{body} {cookies:?} {fetch_site:?}"
            );
        }
    }

    #[test]
    fn remembered_consent_expires_and_can_be_disabled() {
        let config = test_config();
        let site = site();
        let cookie =
            remember(&config, &site, "https://claude.ai/api/mcp/auth_callback", NOW, &mut CountingEntropy::default())
                .unwrap();
        let pair = cookie.split(';').next().unwrap();
        assert!(cookie.contains("SameSite=Lax"));
        assert!(is_remembered(&config, Some(pair), "https://claude.ai/api/mcp/auth_callback", NOW));
        assert!(!is_remembered(
            &config,
            Some(pair),
            "https://claude.ai/api/mcp/auth_callback",
            NOW + config.consent_ttl_seconds
        ));
        assert!(!is_remembered(&config, Some(pair), "https://claude.com/api/mcp/auth_callback", NOW));
        let mut vars = crate::config::tests::vars();
        vars.insert("CONSENT_TTL_SECONDS", "0".into());
        let never = crate::config::tests::config_from(&vars).unwrap();
        assert!(remember(
            &never,
            &site,
            "https://claude.ai/api/mcp/auth_callback",
            NOW,
            &mut CountingEntropy::default()
        )
        .is_none());
        assert!(!is_remembered(&never, Some(pair), "https://claude.ai/api/mcp/auth_callback", NOW));
    }
}
