//! The consent step. The gateway is a proxy with one static client id at Access, so
//! before a browser is sent on, the person confirms which application (redirect
//! target) gets access (MCP security best practices, "confused deputy").
//!
//! CSRF: the form carries a sealed ticket bound to the digest of a random
//! `SameSite=Strict` cookie set with the page, and the post must say it came from this
//! origin (`Sec-Fetch-Site`, `Origin`). A consent is remembered per redirect target (and
//! client id, for a client with a metadata document) in a sealed cookie bound to this
//! browser's own random id: for loopback redirects and a metadata-document client's own
//! host, never for a forwarder or a registered client's web callback ([`target`]).

use crate::clients::client_id_metadata::ClientMetadata;
use crate::clients::redirect_uri::{consent_key, Destination};
use crate::config::Config;
use crate::oauth::authorization_request::AuthorizationRequest;
use crate::oauth::metadata::{Site, AUTHORIZE_PATH};
use crate::primitives::error::{Error, ErrorCode};
use crate::primitives::http::{cookie, escape_html, Response, PAGE_STYLE};
use crate::primitives::params::Params;
use crate::primitives::seal::{digest, Entropy, Purpose};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// How long the consent page may stay open.
pub const TICKET_TTL_SECONDS: u64 = 15 * 60;
const CSRF_COOKIE: &str = "mcpgw_csrf";
const BROWSER_COOKIE: &str = "mcpgw_browser";
const CONSENT_COOKIE_PREFIX: &str = "mcpgw_consent_";
/// Random cookie values are 32 bytes, base64url.
const RANDOM_VALUE_LEN: usize = 43;

/// What the consent form's ticket carries (as `rq` and `cs`, the names of the tickets
/// already out there).
#[derive(Serialize, Deserialize)]
struct TicketClaims {
    #[serde(rename = "rq")]
    request: AuthorizationRequest,
    /// Digest of the CSRF cookie value this ticket was issued with.
    #[serde(rename = "cs")]
    csrf: String,
}

/// What the consent cookie carries (as `t` and `b`, the names of the cookies already out
/// there).
#[derive(Serialize, Deserialize)]
struct RememberedConsent {
    /// The request's [`target`].
    #[serde(rename = "t")]
    target: String,
    /// Digest of the browser id cookie: a copied consent cookie alone is worthless.
    #[serde(rename = "b")]
    browser: String,
}

/// A checked consent form submission.
pub struct ConsentTicket {
    pub request: AuthorizationRequest,
    pub approved: bool,
}

/// What a browser sends with the consent form post.
#[derive(Clone, Copy)]
pub struct Submission<'a> {
    pub body: &'a str,
    pub cookies: Option<&'a str>,
    /// `Sec-Fetch-Site` (Fetch Metadata).
    pub fetch_site: Option<&'a str>,
    /// `Origin` (RFC 6454 §7).
    pub origin: Option<&'a str>,
}

/// The gateway's cookies. On https their names carry the `__Host-` prefix, which browsers
/// accept only when set by this exact origin over https with `Path=/` and no `Domain`, so
/// neither a sibling subdomain nor a plain-http page can plant one. A plain-http (loopback
/// development) stack keeps bare names, since browsers refuse `Secure` cookies there.
struct Jar {
    https: bool,
}

impl Jar {
    fn new(site: &Site) -> Self {
        Self { https: site.issuer.starts_with("https://") }
    }

    fn name(&self, base: &str) -> String {
        if self.https {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    fn get<'a>(&self, cookies: Option<&'a str>, base: &str) -> Option<&'a str> {
        cookies.and_then(|c| cookie(c, &self.name(base)))
    }

    fn set(&self, base: &str, value: &str, max_age: u64, same_site: &str) -> String {
        let secure = if self.https { "; Secure" } else { "" };
        format!("{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}", self.name(base))
    }
}

/// What an approval is remembered for: the redirect URI's consent key, preceded by the
/// client id of a client with a metadata document (the registered client is shared by
/// every DCR client, so for it the redirect target alone tells clients apart). Remembered:
/// loopback redirects, and a metadata-document client's https callback on the host that
/// published its document. `None`, asked every time: a forwarder, and any other callback
/// of a DCR client or on another host. Any website can start a login that ends at such a
/// callback, with its own `code_challenge` and `state`; remembered, it would complete
/// silently through Access SSO, and only the client's binding of `state` to its session
/// would stand in the way.
fn target(request: &AuthorizationRequest) -> Option<String> {
    let key = consent_key(&request.redirect_uri)?;
    let loopback = Destination::of(&request.redirect_uri) == Destination::Loopback;
    match &request.client_id {
        None if loopback => Some(key),
        Some(client_id) if loopback || is_callback_on_host(&request.redirect_uri, &host_of(client_id)) => {
            Some(format!("{client_id} {key}"))
        }
        _ => None,
    }
}

/// An https callback on `host` (a metadata document's host).
fn is_callback_on_host(redirect_uri: &str, host: &str) -> bool {
    url::Url::parse(redirect_uri).is_ok_and(|url| url.scheme() == "https" && url.host_str() == Some(host))
}

fn consent_cookie(key: &str) -> String {
    format!("{CONSENT_COOKIE_PREFIX}{}", &digest(key)[..16])
}

fn random_value(entropy: &mut dyn Entropy) -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    entropy.fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn host_of(uri: &str) -> String {
    url::Url::parse(uri).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| uri.to_owned())
}

/// Who receives the result, in words a person can check.
fn describe_target(redirect_uri: &str) -> String {
    match Destination::of(redirect_uri) {
        Destination::Loopback => "an application on this computer".into(),
        Destination::Forwarder => format!("an application reached through {}", host_of(redirect_uri)),
        Destination::Client => match url::Url::parse(redirect_uri) {
            Ok(url) if url.scheme() == "https" => host_of(redirect_uri),
            Ok(url) => format!("the {} application", url.scheme()),
            Err(_) => redirect_uri.to_owned(),
        },
    }
}

/// Where a forwarder sends the result, as far as the client's `state` says: VS Code puts
/// the address there (`vscode://…/authorize?nonce=…`). Only an absolute URL with a host is
/// shown, without its query (nonces are none of the person's business).
fn forwarded_to(state: Option<&str>) -> Option<String> {
    let url = url::Url::parse(state?).ok()?;
    let host = url.host_str().filter(|h| !h.is_empty())?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{}://{host}{port}{}", url.scheme(), url.path()))
}

/// The page's extra row and warning for a forwarder.
fn forwarder_notice(request: &AuthorizationRequest) -> String {
    let forwarder = escape_html(&host_of(&request.redirect_uri));
    let onward = match forwarded_to(request.state.as_deref()) {
        Some(address) => escape_html(&address),
        None => "wherever the link that opened this page chose".into(),
    };
    format!(
        "<dt>Then forwarded to</dt><dd id=\"forwarded-to\">{onward}</dd></dl>\
         <p class=\"warn\" id=\"forwarder\">{forwarder} does not keep the result: it forwards it to \
         the address chosen by whoever made the link that opened this page. Only approve if you \
         started this sign-in yourself, just now, from VS Code.</p>"
    )
}

/// The page's rows for a client with a metadata document: its name (its own claim), the
/// host that published it (the `client_id` URL's, which is verified), where the result
/// goes, and whether that is the same host; and the paragraph saying so.
fn client_rows(client: &ClientMetadata, redirect_uri: &str) -> (String, String) {
    let client_host = host_of(&client.client_id);
    let redirect_host = host_of(redirect_uri);
    let (matched, class, sentence) = if Destination::of(redirect_uri) == Destination::Loopback {
        (
            "loopback",
            "note",
            format!("The result goes to an application on this computer, which {client_host} names as its own."),
        )
    } else if redirect_host == client_host {
        ("yes", "note", format!("The result goes to {client_host}, the host that published this client."))
    } else {
        (
            "no",
            "warn",
            format!(
                "The result goes to {redirect_host}, not to {client_host}, which published this client. \
                 Only approve if you expect {} to receive it there.",
                client.client_name
            ),
        )
    };
    let rows = format!(
        "<dt>Client</dt><dd id=\"client-name\">{name}</dd>\
         <dt>Published by</dt><dd id=\"client-host\">{client_host}</dd>\
         <dt>Redirect host</dt><dd id=\"redirect-host\">{redirect_host}</dd>",
        name = escape_html(&client.client_name),
        client_host = escape_html(&client_host),
        redirect_host = escape_html(&redirect_host),
    );
    let notice =
        format!("<p class=\"{class}\" id=\"host-match\" data-match=\"{matched}\">{}</p>", escape_html(&sentence));
    (rows, notice)
}

/// The consent page, with its CSRF cookie. `client` is the metadata document of a client
/// that has one.
pub fn page(
    config: &Config,
    site: &Site,
    request: &AuthorizationRequest,
    client: Option<&ClientMetadata>,
    now: u64,
    entropy: &mut dyn Entropy,
) -> Result<Response, Error> {
    let csrf = random_value(entropy)?;
    let claims = TicketClaims { request: request.clone(), csrf: digest(&csrf) };
    let ticket = config.sealing_keys.seal(Purpose::ConsentTicket, &claims, now + TICKET_TTL_SECONDS, entropy)?;
    let server = config.server_name.clone().unwrap_or_else(|| site.resource().to_string());
    let who = match client {
        Some(client) => format!("{} ({})", client.client_name, host_of(&client.client_id)),
        None => describe_target(&request.redirect_uri),
    };
    let (client_rows, client_notice) =
        client.map(|client| client_rows(client, &request.redirect_uri)).unwrap_or_default();
    let forwarder = Destination::of(&request.redirect_uri) == Destination::Forwarder;
    let remember = if config.consent_ttl_seconds == 0 {
        "You will be asked every time.".to_owned()
    } else if forwarder {
        "You will be asked every time for this destination, because the result is forwarded onward.".to_owned()
    } else if target(request).is_none() {
        "You will be asked every time for this destination, because any website can start a sign-in that ends there."
            .to_owned()
    } else {
        let days = config.consent_ttl_seconds.div_ceil(86400);
        format!("Your answer is remembered for this destination in this browser for {days} days.")
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Allow access to {server}?</title><style>{PAGE_STYLE}</style></head><body><main>\
         <h1>Allow {who} to use {server}?</h1>\
         <p>An MCP client asks to act as you on this MCP server. You will sign in with Cloudflare Access next; \
         afterwards the result is sent to the address below. Only approve if you started this connection.</p>\
         <dl>{client_rows}<dt>MCP server</dt><dd id=\"resource\">{resource}</dd>\
         <dt>Permissions</dt><dd id=\"scope\">{scope}</dd>\
         <dt>Sent to</dt><dd id=\"redirect-target\">{redirect}</dd>{onward}{client_notice}\
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
        onward = if forwarder { forwarder_notice(request) } else { "</dl>".to_owned() },
    );
    Ok(Response::html(200, html)
        .with_header("set-cookie", Jar::new(site).set(CSRF_COOKIE, &csrf, TICKET_TTL_SECONDS, "Strict")))
}

/// Whether the browser says the post came from a page of this origin. At least one of
/// `Sec-Fetch-Site` and `Origin` must be present and each present one must agree:
/// `same-site` would let a sibling subdomain post, `none` is a navigation the person typed,
/// which cannot post a form, and `Origin: null` hides where the post came from.
fn from_this_origin(site: &Site, fetch_site: Option<&str>, origin: Option<&str>) -> bool {
    (fetch_site.is_some() || origin.is_some())
        && fetch_site.is_none_or(|s| s == "same-origin")
        && origin.is_none_or(|o| o == site.issuer)
}

/// Checks a `POST /authorize` consent submission.
pub fn check_submission(
    config: &Config,
    site: &Site,
    submission: &Submission,
    now: u64,
) -> Result<ConsentTicket, Error> {
    let forbidden = Error::oauth(
        ErrorCode::InvalidRequest,
        "the consent form expired or was not submitted from this browser; start the connection again",
    );
    if !from_this_origin(site, submission.fetch_site, submission.origin) {
        return Err(forbidden);
    }
    let params = Params::parse(submission.body)?;
    let approved = match params.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Err(Error::invalid_request("decision must be approve or deny")),
    };
    let ticket = params.require("ticket", "the consent ticket is missing")?;
    let csrf = Jar::new(site).get(submission.cookies, CSRF_COOKIE).ok_or(forbidden.clone())?;
    let claims: TicketClaims =
        config.sealing_keys.open(Purpose::ConsentTicket, ticket, now).map_err(|_| forbidden.clone())?;
    if claims.csrf != digest(csrf) {
        return Err(forbidden);
    }
    Ok(ConsentTicket { request: claims.request, approved })
}

/// Whether this browser carries an unexpired consent for this request's [`target`].
pub fn is_remembered(
    config: &Config,
    site: &Site,
    cookies: Option<&str>,
    request: &AuthorizationRequest,
    now: u64,
) -> bool {
    let Some(target) = target(request).filter(|_| config.consent_ttl_seconds > 0) else {
        return false;
    };
    let jar = Jar::new(site);
    let (Some(browser), Some(value)) = (jar.get(cookies, BROWSER_COOKIE), jar.get(cookies, &consent_cookie(&target)))
    else {
        return false;
    };
    config
        .sealing_keys
        .open::<RememberedConsent>(Purpose::ConsentCookie, value, now)
        .is_ok_and(|remembered| remembered.target == target && remembered.browser == digest(browser))
}

/// The `Set-Cookie` values remembering an approval in this browser (its id, kept if it has
/// one, and the sealed consent): none when remembering is off or the request has no [`target`].
pub fn remember(
    config: &Config,
    site: &Site,
    cookies: Option<&str>,
    request: &AuthorizationRequest,
    now: u64,
    entropy: &mut dyn Entropy,
) -> Result<Vec<String>, Error> {
    let ttl = config.consent_ttl_seconds;
    let Some(target) = target(request).filter(|_| ttl > 0) else {
        return Ok(Vec::new());
    };
    let jar = Jar::new(site);
    let browser = match jar.get(cookies, BROWSER_COOKIE).filter(|id| id.len() == RANDOM_VALUE_LEN) {
        Some(id) => id.to_owned(),
        None => random_value(entropy)?,
    };
    let name = consent_cookie(&target);
    let remembered = RememberedConsent { target, browser: digest(&browser) };
    let value = config.sealing_keys.seal(Purpose::ConsentCookie, &remembered, now + ttl, entropy)?;
    Ok(vec![jar.set(BROWSER_COOKIE, &browser, ttl, "Lax"), jar.set(&name, &value, ttl, "Lax")])
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::access::upstream::tests::upstream;
    use crate::config::tests::test_config;
    use crate::oauth::authorize::tests::{query, NOW};
    use crate::oauth::authorize::Relay;
    use crate::oauth::capabilities::Capabilities;
    use crate::oauth::metadata::tests::site;
    use crate::primitives::seal::tests::{open_text, CountingEntropy};
    use crate::primitives::seal::OpenError;

    const CLAUDE: &str = "https://claude.ai/api/mcp/auth_callback";

    /// The ticket field and the CSRF cookie (`name=value`) of a consent page.
    pub fn form_fields(page: &Response) -> (String, String) {
        let ticket = page.body.split("name=\"ticket\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
        (ticket, cookie)
    }

    /// The `name=value` pairs of `Set-Cookie` values, as a `Cookie` header.
    pub fn cookie_header(set_cookies: &[String]) -> String {
        set_cookies.iter().map(|c| c.split(';').next().unwrap()).collect::<Vec<_>>().join("; ")
    }

    /// A form post as a browser sends it from the consent page.
    pub fn same_origin<'a>(body: &'a str, cookies: Option<&'a str>) -> Submission<'a> {
        Submission { body, cookies, fetch_site: Some("same-origin"), origin: Some("https://mcp.example.com") }
    }

    pub fn consent_page(extra: &[(&str, &str)]) -> (Response, crate::config::Config) {
        let config = test_config();
        let site = site();
        let relay = Relay { config: &config, site: &site, now: NOW };
        let caps = Capabilities::new(&config, &upstream());
        let request = relay.validate(&query(extra, &[]), &caps, None).unwrap();
        (page(&config, &site, &request, None, NOW, &mut CountingEntropy::default()).unwrap(), config)
    }

    #[test]
    fn page_names_server_target_and_scope_and_sets_a_strict_host_cookie() {
        let (response, _) = consent_page(&[("state", "<b>x</b>")]);
        assert!(response.body.contains("https://mcp.example.com/mcp"));
        assert!(response.body.contains("http://localhost:4567/callback"));
        assert!(response.body.contains("an application on this computer"));
        assert!(response.body.contains("openid email"));
        assert!(response.body.contains("remembered for this destination in this browser for 7 days"));
        assert!(!response.body.contains("<b>x</b>") && !response.body.contains("forwarded-to"));
        let cookie = response.header("set-cookie").unwrap();
        assert!(cookie.starts_with("__Host-mcpgw_csrf="), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Secure"));
        assert!(cookie.contains("; Path=/;") && !cookie.contains("Domain"), "{cookie}");
        assert_eq!(response.header("x-frame-options"), Some("DENY"));
    }

    #[test]
    fn plain_http_stacks_keep_bare_cookie_names() {
        let (config, site) = (test_config(), Site::new(&test_config(), "http://127.0.0.1:8787"));
        let relay = Relay { config: &config, site: &site, now: NOW };
        let request =
            relay.validate(&query(&[], &["resource"]), &Capabilities::new(&config, &upstream()), None).unwrap();
        let response = page(&config, &site, &request, None, NOW, &mut CountingEntropy::default()).unwrap();
        let cookie = response.header("set-cookie").unwrap();
        assert!(cookie.starts_with("mcpgw_csrf=") && !cookie.contains("Secure"), "{cookie}");
        let (ticket, csrf) = form_fields(&response);
        let body = format!("ticket={ticket}&decision=approve");
        let post =
            Submission { body: &body, cookies: Some(&csrf), fetch_site: None, origin: Some("http://127.0.0.1:8787") };
        assert!(check_submission(&config, &site, &post, NOW).is_ok());
    }

    #[test]
    fn a_forwarder_page_says_where_the_result_goes_and_that_it_is_asked_every_time() {
        let state = "vscode://dynamicauthprovider/mcp.example.com/authorize?nonce=n0nce&windowId=1";
        for redirect in crate::clients::redirect_uri::FORWARDERS {
            let (response, _) = consent_page(&[("redirect_uri", redirect), ("state", state)]);
            let body = &response.body;
            let host = redirect.trim_start_matches("https://").trim_end_matches("/redirect");
            assert!(body.contains(&format!("an application reached through {host}")), "{body}");
            assert!(body.contains("vscode://dynamicauthprovider/mcp.example.com/authorize"), "{body}");
            assert!(!body.contains("n0nce"), "the state's query is not shown");
            assert!(body.contains("forwards it to the address chosen by whoever made the link"));
            assert!(body.contains("asked every time for this destination"));
        }
        // A state that is not an address: said plainly.
        let (response, _) = consent_page(&[("redirect_uri", "https://vscode.dev/redirect"), ("state", "<opaque>")]);
        assert!(response.body.contains("wherever the link that opened this page chose"));
        assert!(!response.body.contains("<opaque>"));
    }

    #[test]
    fn a_document_client_page_shows_its_name_host_redirect_host_and_whether_they_match() {
        use crate::clients::client_id_metadata::tests::{client, document};
        let client = ClientMetadata::parse(&client(), &document(serde_json::json!({}))).unwrap();
        let (config, site) = (test_config(), site());
        let cases = [
            ("https://client.example.com/callback", "client.example.com", "yes", "note"),
            ("http://127.0.0.1:5555/callback", "127.0.0.1", "loopback", "note"),
            ("https://claude.ai/api/mcp/auth_callback", "claude.ai", "no", "warn"),
        ];
        for (redirect_uri, redirect_host, matched, class) in cases {
            let request = AuthorizationRequest { client_id: Some(client.client_id.clone()), ..to(redirect_uri) };
            let page = page(&config, &site, &request, Some(&client), NOW, &mut CountingEntropy::default()).unwrap();
            let body = &page.body;
            assert!(body.contains("<dd id=\"client-name\">Example &lt;Client&gt;</dd>"), "{body}");
            assert!(body.contains("<dd id=\"client-host\">client.example.com</dd>"), "{body}");
            assert!(body.contains(&format!("<dd id=\"redirect-host\">{redirect_host}</dd>")), "{body}");
            assert!(body.contains(&format!("class=\"{class}\" id=\"host-match\" data-match=\"{matched}\"")), "{body}");
            assert!(body.contains("<title>Allow access to https://mcp.example.com/mcp?</title>"));
            assert!(body.contains("<h1>Allow Example &lt;Client&gt; (client.example.com) to use"), "{body}");
            assert!(!body.contains("<Client>"), "the client's own name is escaped everywhere");
        }
        let warning = page(
            &config,
            &site,
            &AuthorizationRequest {
                client_id: Some(client.client_id.clone()),
                ..to("https://claude.ai/api/mcp/auth_callback")
            },
            Some(&client),
            NOW,
            &mut CountingEntropy::default(),
        )
        .unwrap();
        assert!(warning.body.contains("The result goes to claude.ai, not to client.example.com"), "{}", warning.body);
        // The registered client's page has none of these rows.
        let (registered, _) = consent_page(&[]);
        assert!(!registered.body.contains("client-name") && !registered.body.contains("host-match"));
    }

    #[test]
    fn submissions_without_the_matching_cookie_or_not_from_this_origin_are_refused() {
        let (response, config) = consent_page(&[]);
        let site = site();
        let (ticket, cookie) = form_fields(&response);
        let body = format!("ticket={ticket}&decision=approve");
        let ok = same_origin(&body, Some(&cookie));
        assert!(check_submission(&config, &site, &ok, NOW).is_ok());
        // Either header alone is enough, as older browsers send only `Origin`.
        assert!(check_submission(
            &config,
            &site,
            &Submission { origin: None, ..same_origin(&body, Some(&cookie)) },
            NOW
        )
        .is_ok());
        assert!(check_submission(&config, &site, &Submission { fetch_site: None, ..ok }, NOW).is_ok());

        let bare = "mcpgw_csrf=".to_owned() + cookie.split_once('=').unwrap().1;
        let maybe = format!("ticket={ticket}&decision=maybe");
        let longer = format!("ticket=x{ticket}&decision=approve");
        let post = |body, cookies, fetch_site, origin| Submission { body, cookies, fetch_site, origin };
        let here = Some("https://mcp.example.com");
        let refused = [
            (post(&body, None, Some("same-origin"), here), NOW),
            (post(&body, Some("__Host-mcpgw_csrf=forged"), Some("same-origin"), here), NOW),
            // A cookie without the prefix could have been planted by a sibling or over http.
            (post(&body, Some(&bare), Some("same-origin"), here), NOW),
            (post(&body, Some(&cookie), None, None), NOW),
            (post(&body, Some(&cookie), Some("cross-site"), here), NOW),
            (post(&body, Some(&cookie), Some("same-site"), here), NOW),
            (post(&body, Some(&cookie), Some("none"), here), NOW),
            (post(&body, Some(&cookie), Some("same-origin"), Some("https://evil.mcp.example.com")), NOW),
            (post(&body, Some(&cookie), Some("same-origin"), Some("http://mcp.example.com")), NOW),
            (post(&body, Some(&cookie), None, Some("null")), NOW),
            (post(&body, Some(&cookie), Some("same-origin"), here), NOW + TICKET_TTL_SECONDS),
            (post(&maybe, Some(&cookie), Some("same-origin"), here), NOW),
            (post(&longer, Some(&cookie), Some("same-origin"), here), NOW),
            (post("decision=approve", Some(&cookie), Some("same-origin"), here), NOW),
        ];
        for (submission, now) in refused {
            assert!(
                check_submission(&config, &site, &submission, now).is_err(),
                "{} {:?} {:?} {:?}",
                submission.body,
                submission.cookies,
                submission.fetch_site,
                submission.origin
            );
        }
    }

    /// An authorization request of the registered client to `redirect_uri`.
    pub fn to(redirect_uri: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            redirect_uri: crate::clients::redirect_uri::tests::redirect_uri(redirect_uri),
            state: None,
            code_challenge: crate::oauth::pkce::tests::challenge(),
            scope: crate::oauth::capabilities::tests::caps().grant_scope(Some("openid")),
            resource: None,
            client_id: None,
        }
    }

    fn remembered(config: &Config, cookies: Option<&str>, redirect_uri: &str) -> Vec<String> {
        remember(config, &site(), cookies, &to(redirect_uri), NOW, &mut CountingEntropy::default()).unwrap()
    }

    #[test]
    fn remembered_consent_is_bound_to_the_browser_and_its_target() {
        let config = test_config();
        let site = site();
        const LOOPBACK: &str = "http://localhost:1/callback";
        let set = remembered(&config, None, LOOPBACK);
        assert_eq!(set.len(), 2);
        for cookie in &set {
            assert!(cookie.starts_with("__Host-mcpgw_"), "{cookie}");
            assert!(cookie.contains("SameSite=Lax") && cookie.contains("Secure") && cookie.contains("; Path=/;"));
        }
        let jar = cookie_header(&set);
        assert!(is_remembered(&config, &site, Some(&jar), &to(LOOPBACK), NOW));
        assert!(is_remembered(&config, &site, Some(&jar), &to("http://localhost:2/callback"), NOW), "any port");
        assert!(!is_remembered(&config, &site, Some(&jar), &to("http://localhost:2/other"), NOW));
        assert!(!is_remembered(&config, &site, Some(&jar), &to("http://127.0.0.1:1/callback"), NOW));
        // The consent cookie copied into another browser (with its own id, or none) does nothing.
        let consent_only = set[1].split(';').next().unwrap();
        let other_browser = format!("__Host-mcpgw_browser={}; {consent_only}", "b".repeat(RANDOM_VALUE_LEN));
        assert!(!is_remembered(&config, &site, Some(consent_only), &to(LOOPBACK), NOW));
        assert!(!is_remembered(&config, &site, Some(&other_browser), &to(LOOPBACK), NOW));
        // Unprefixed copies of both (planted by a sibling subdomain or over http) do nothing either.
        let unprefixed = jar.replace("__Host-", "");
        assert!(!is_remembered(&config, &site, Some(&unprefixed), &to(LOOPBACK), NOW));
        // The browser keeps its id for the next target, so both consents hold.
        let next = remembered(&config, Some(&jar), "http://127.0.0.1:1/cb");
        assert_eq!(next[0], set[0]);
        let both = format!("{jar}; {}", next[1].split(';').next().unwrap());
        assert!(is_remembered(&config, &site, Some(&both), &to(LOOPBACK), NOW));
        assert!(is_remembered(&config, &site, Some(&both), &to("http://127.0.0.1:3/cb"), NOW));
    }

    /// A registered (DCR) client's web callback and private-use scheme are asked every time,
    /// as is a document client's callback on another host; its own host and loopback are not.
    #[test]
    fn only_loopback_and_a_document_clients_own_host_are_remembered() {
        use crate::clients::client_id_metadata::tests::{client, CLIENT};
        let config = test_config();
        let of = |client_id: Option<&str>, redirect_uri: &str| AuthorizationRequest {
            client_id: client_id.map(|_| client()),
            ..to(redirect_uri)
        };
        let cases = [
            (None, "http://localhost:1/callback", true),
            (None, "http://[::1]:1/callback", true),
            (None, CLAUDE, false),
            (None, "https://chatgpt.com/connector_platform_oauth_redirect", false),
            (None, "cursor://anysphere.cursor-mcp/oauth/callback", false),
            (None, "https://vscode.dev/redirect", false),
            (Some(CLIENT), "http://127.0.0.1:5/callback", true),
            (Some(CLIENT), "https://client.example.com/callback", true),
            (Some(CLIENT), "https://client.example.com:8443/callback", true),
            (Some(CLIENT), "https://sub.client.example.com/callback", false),
            (Some(CLIENT), CLAUDE, false),
            (Some(CLIENT), "https://vscode.dev/redirect", false),
        ];
        for (client_id, redirect_uri, expected) in cases {
            let request = of(client_id, redirect_uri);
            let set = remember(&config, &site(), None, &request, NOW, &mut CountingEntropy::default()).unwrap();
            assert_eq!(!set.is_empty(), expected, "{client_id:?} {redirect_uri}");
            let jar = cookie_header(&set);
            assert_eq!(is_remembered(&config, &site(), Some(&jar), &request, NOW), expected, "{redirect_uri}");
        }
        // Not even with a consent cookie sealed for a DCR web callback by some other means.
        assert!(!is_remembered(&config, &site(), Some(&forged_consent(&config, CLAUDE)), &to(CLAUDE), NOW));
        // The page says so.
        let (page, _) = consent_page(&[("redirect_uri", CLAUDE)]);
        assert!(page.body.contains("asked every time for this destination, because any website can start"));
    }

    #[test]
    fn forwarders_are_never_remembered() {
        let config = test_config();
        let vscode = "https://vscode.dev/redirect";
        assert!(remembered(&config, None, vscode).is_empty());
        // Not even with a consent cookie sealed for that target by some other means.
        assert!(!is_remembered(&config, &site(), Some(&forged_consent(&config, vscode)), &to(vscode), NOW));
    }

    /// A browser's cookies with a valid consent sealed for `target`, as no approval would set it.
    fn forged_consent(config: &Config, target: &str) -> String {
        let browser = "b".repeat(RANDOM_VALUE_LEN);
        let forged = RememberedConsent { target: target.to_owned(), browser: digest(&browser) };
        let value = config
            .sealing_keys
            .seal(Purpose::ConsentCookie, &forged, NOW + 60, &mut CountingEntropy::default())
            .unwrap();
        format!("__Host-mcpgw_browser={browser}; __Host-{}={value}", consent_cookie(target))
    }

    /// What the serde derive wrote for a consent ticket and a remembered consent.
    const OLD_TICKET: &str = r#"{"rq":{"ru":"http://localhost:4567/callback","st":"client-state","cc":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","sc":"openid email","rs":"https://mcp.example.com/mcp"},"cs":"fOErqHgqMvdDV877ge24wg6k11URXstAYzSLjMnUHzQ"}"#;
    const OLD_CONSENT: &str =
        r#"{"t":"https://claude.ai/api/mcp/auth_callback","b":"1MPooRJWq4Kk_HJWDrSisOh7rYIMKQ3ZsDYW3iQKpts"}"#;

    fn open_ticket_text(payload: &str) -> Result<TicketClaims, OpenError> {
        open_text(Purpose::ConsentTicket, payload)
    }

    fn open_consent_text(payload: &str) -> Result<RememberedConsent, OpenError> {
        open_text(Purpose::ConsentCookie, payload)
    }

    #[test]
    fn a_ticket_sealed_by_the_serde_version_opens() {
        let claims = open_ticket_text(OLD_TICKET).unwrap();
        let request = AuthorizationRequest {
            state: crate::oauth::authorization_request::ClientState::parse(Some("client-state")).unwrap(),
            scope: crate::oauth::capabilities::tests::caps().grant_scope(Some("openid email")),
            resource: Some(site().resource()),
            ..to("http://localhost:4567/callback")
        };
        assert_eq!(claims.request, request);
        assert_eq!(claims.csrf, digest("csrf"));
        assert_eq!(serde_json::to_string(&claims).unwrap(), OLD_TICKET);
    }

    #[test]
    fn a_consent_cookie_sealed_by_the_serde_version_opens() {
        let remembered = open_consent_text(OLD_CONSENT).unwrap();
        assert_eq!(remembered.target, CLAUDE);
        assert_eq!(remembered.browser, digest("browser"));
        assert_eq!(serde_json::to_string(&remembered).unwrap(), OLD_CONSENT);
    }

    #[test]
    fn tickets_and_consent_cookies_with_a_member_missing_or_of_another_type_are_malformed() {
        for payload in [
            OLD_TICKET.replace(r#","cs":"fOErqHgqMvdDV877ge24wg6k11URXstAYzSLjMnUHzQ""#, ""),
            OLD_TICKET.replace(r#""fOErqHgqMvdDV877ge24wg6k11URXstAYzSLjMnUHzQ""#, "null"),
            OLD_TICKET.replace(r#""openid email""#, "1"),
            r#"{"rq":null,"cs":"x"}"#.to_owned(),
            r#"{"rq":"x","cs":"x"}"#.to_owned(),
            r#"{"cs":"x"}"#.to_owned(),
        ] {
            assert_eq!(open_ticket_text(&payload).map(|_| ()), Err(OpenError::Malformed), "{payload}");
        }
        for payload in [
            OLD_CONSENT.replace(r#""t":"https://claude.ai/api/mcp/auth_callback","#, ""),
            OLD_CONSENT.replace(r#""https://claude.ai/api/mcp/auth_callback""#, "null"),
            OLD_CONSENT.replace(r#""1MPooRJWq4Kk_HJWDrSisOh7rYIMKQ3ZsDYW3iQKpts""#, "[]"),
        ] {
            assert_eq!(open_consent_text(&payload).map(|_| ()), Err(OpenError::Malformed), "{payload}");
        }
    }

    #[test]
    fn remembered_consent_expires_and_can_be_disabled() {
        let config = test_config();
        let site = site();
        const LOOPBACK: &str = "http://localhost:1/callback";
        let jar = cookie_header(&remembered(&config, None, LOOPBACK));
        assert!(is_remembered(&config, &site, Some(&jar), &to(LOOPBACK), NOW));
        assert!(!is_remembered(&config, &site, Some(&jar), &to(LOOPBACK), NOW + config.consent_ttl_seconds));
        let mut vars = crate::config::tests::vars();
        vars.insert("CONSENT_TTL_SECONDS", "0".into());
        let never = crate::config::tests::config_from(&vars).unwrap();
        assert!(remembered(&never, None, LOOPBACK).is_empty());
        assert!(!is_remembered(&never, &site, Some(&jar), &to(LOOPBACK), NOW));
    }
}
