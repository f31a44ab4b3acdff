//! `doctor`: replays what a strict MCP client does against a deployment and names the
//! step that breaks, with the fix. Sans-IO: every request goes through [`Io`], so the
//! verdicts are unit-tested here with canned answers; `src/bin/doctor.rs` does the HTTP, the
//! browser and the loopback callback. The gateway's own rules are reused: the metadata
//! paths, Access's discovery quirks ([`UpstreamMetadata`]), the JWKS parser and the RS256 key
//! check, the loopback host test and the configuration error's wording.

use crate::access::jwks::KeySet;
use crate::access::upstream::AccessApp;
use crate::access::upstream::UpstreamMetadata;
use crate::clients::redirect_uri::is_loopback_host;
use crate::config::ORIGIN_BINDING;
use crate::oauth::metadata::{AUTHORIZATION_SERVER_PATH, OPENID_CONFIGURATION_PATH, PROTECTED_RESOURCE_PATH};
use crate::primitives::http::{split_request_url, with_query};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// One printed line: a step's verdict, what was seen, and the fix for a ✗ or ⚠.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub step: u8,
    pub verdict: Verdict,
    pub saw: String,
    pub fix: Option<String>,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.verdict {
            Verdict::Pass => "✓",
            Verdict::Warn => "⚠",
            Verdict::Fail => "✗",
        };
        write!(f, "{mark} {}. {}", self.step, self.saw)?;
        match &self.fix {
            Some(fix) => write!(f, " — fix: {fix}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub lines: Vec<Line>,
}

/// A request as the doctor sends it; redirects are never followed by [`Io::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Names in lower case; repeated headers (`set-cookie`) stay separate.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn is_html(&self) -> bool {
        self.header("content-type").is_some_and(|t| t.contains("text/html")) || self.body.trim_start().starts_with('<')
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `error: description` of an OAuth-style JSON error body.
    fn oauth_error(&self) -> Option<(String, String)> {
        let body = self.json()?;
        let error = body.get("error").and_then(Value::as_str).unwrap_or_default().to_owned();
        let description = body.get("error_description").and_then(Value::as_str).unwrap_or_default().to_owned();
        (!error.is_empty() || !description.is_empty()).then_some((error, description))
    }

    /// A short, one-line account of the answer for a verdict line.
    fn describe(&self) -> String {
        match self.oauth_error() {
            Some((error, description)) => format!("{} {error}: {description}", self.status),
            None if self.is_html() => format!("{} with an HTML page \"{}\"", self.status, page_text(&self.body, 80)),
            None => format!("{} \"{}\"", self.status, self.body.chars().take(80).collect::<String>().trim()),
        }
    }
}

/// The visible text of an HTML page, shortened.
fn page_text(html: &str, max: usize) -> String {
    let body = html.split_once("<body").map_or(html, |(_, body)| body);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() <= max {
        return words;
    }
    let cut: String = words.chars().take(max).collect();
    cut.rsplit_once(' ').map_or(cut.clone(), |(whole_words, _)| whole_words.to_owned())
}

/// Everything the doctor does to the world.
pub trait Io {
    /// One HTTP request, redirects not followed; `Err` when there was no answer.
    fn send(&mut self, request: &Request) -> Result<Answer, String>;
    /// Lets the person log in at `authorize_url` and returns the URL their browser was
    /// sent back to (the loopback `redirect_uri` with `code`, `state`, `iss`).
    fn login(&mut self, authorize_url: &str) -> Result<String, String>;
    /// 32 random bytes, base64url (PKCE verifier, `state`).
    fn random(&mut self) -> String;
    fn millis(&mut self) -> u64;
    /// Each line as soon as it is decided (the login waits for a person).
    fn show(&mut self, line: &Line);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// Where the origin is, to check that nothing reaches it but the gateway. The gateway does not
/// publish how it reaches its origin, so the person running doctor says which deployment it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginProbe {
    /// The origin's own public MCP URL (a Tunnel hostname): it must refuse a request without
    /// credentials (`--origin`).
    Public(String),
    /// The gateway reaches the origin through its [`ORIGIN_BINDING`] binding (Workers VPC): this
    /// URL (what `ORIGIN_URL` names, or the origin's former public one) must not answer from
    /// here at all (`--private-origin`).
    Private(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub mcp_url: String,
    pub origin: Option<OriginProbe>,
    /// Access's issuer; otherwise derived from where the gateway sends browsers.
    pub access_issuer: Option<String>,
    /// The loopback redirect URI registered (and, with `login`, listened on).
    pub redirect_uri: String,
    pub login: bool,
    pub call: Option<ToolCall>,
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcp-access-gateway doctor","version":"1"}}}"#;
/// How `Error::to_response` starts a configuration error's description, before the setting's
/// name (the unit tests render the core's own errors, so a change of wording fails them).
const MISCONFIGURED: &str = "the gateway is misconfigured: ";
const MCP_ACCEPT: &str = "application/json, text/event-stream";
const DEPLOY_GATEWAY: &str = "put mcp-access-gateway in front of this server (README: Deploy it)";
const NO_ANSWER_FIX: &str = "check the MCP URL, and that a Worker route covers its hostname";
const WAF_FIX: &str = "exempt the gateway's paths (/mcp, /.well-known/*, /register, /authorize, /callback, /token) from WAF, Bot Fight and challenge rules: clients cannot solve them";

/// What the gateway published, carried from step to step.
#[derive(Default)]
struct Found {
    issuer: Option<String>,
    metadata: Option<Value>,
    client_id: Option<String>,
    access_authorization: Option<String>,
}

struct Walk<'a> {
    options: &'a Options,
    io: &'a mut dyn Io,
    lines: Vec<Line>,
    found: Found,
}

/// Runs every step and returns the lines; `ok` is false if any step failed.
pub fn run(options: &Options, io: &mut dyn Io) -> Report {
    let mut walk = Walk { options, io, lines: Vec::new(), found: Found::default() };
    walk.all();
    let ok = walk.lines.iter().all(|line| line.verdict != Verdict::Fail);
    Report { ok, lines: walk.lines }
}

fn get(url: &str) -> Request {
    Request { method: "GET", url: url.to_owned(), headers: vec![("accept", "application/json".into())], body: None }
}

fn post(url: &str, content_type: &str, body: String) -> Request {
    let headers = vec![("content-type", content_type.into()), ("accept", "application/json".into())];
    Request { method: "POST", url: url.to_owned(), headers, body: Some(body) }
}

fn mcp_post(url: &str, token: Option<&str>, session: Option<&str>, body: String) -> Request {
    let headers = vec![("content-type", "application/json".into()), ("accept", MCP_ACCEPT.into())];
    let mut request = Request { method: "POST", url: url.to_owned(), headers, body: Some(body) };
    if let Some(token) = token {
        request.headers.push(("authorization", format!("Bearer {token}")));
    }
    if let Some(session) = session {
        request.headers.push(("mcp-session-id", session.into()));
    }
    request
}

fn form(params: &[(&str, &str)]) -> String {
    with_query("", params).trim_start_matches('?').to_owned()
}

/// A parameter of a `WWW-Authenticate` challenge.
fn auth_param(header: &str, name: &str) -> Option<String> {
    let start = header.find(&format!("{name}=\""))? + name.len() + 2;
    Some(header[start..].split('"').next()?.to_owned())
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let (_, _, query) = split_request_url(url);
    url::form_urlencoded::parse(query?.as_bytes()).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

/// The fix for a setting the gateway names in its `500` (`the gateway is misconfigured: X …`).
fn config_fix(description: &str) -> Option<String> {
    let setting = description.strip_prefix(MISCONFIGURED)?.split(' ').next()?;
    Some(match setting {
        "SEALING_KEYS" => "create the secret: openssl rand -base64 32 | npx wrangler secret put SEALING_KEYS".into(),
        "ACCESS_CLIENT_SECRET" | "ORIGIN_ACCESS_CLIENT_SECRET" => {
            format!("set the secret with npx wrangler secret put {setting} (the value from the Access dashboard)")
        }
        "TOKEN_MODE" => "set TOKEN_MODE to auto (the default) or sealed in wrangler.toml".into(),
        ORIGIN_BINDING => format!(
            "declare {ORIGIN_BINDING} as the origin's VPC service ([[vpc_services]] in wrangler.toml, README: Private origin) and remove any [vars] entry of that name"
        ),
        "ACCESS_ISSUER" => {
            "set ACCESS_ISSUER to the issuer exactly as the Access for SaaS app shows it (wrangler.toml [vars])".into()
        }
        _ => format!("set {setting} as the README's Configuration table says (wrangler.toml [vars] or a secret)"),
    })
}

/// The verdict for an answer that is an error of the gateway rather than of the step.
fn gateway_failure(answer: &Answer) -> (String, String) {
    let description = answer.oauth_error().map(|(_, d)| d).unwrap_or_default();
    if let Some(fix) = config_fix(&description) {
        return (format!("the gateway answered {}: {description}", answer.status), fix);
    }
    if answer.is_html() && answer.status != 502 && answer.status != 503 {
        return (format!("answered {}", answer.describe()), WAF_FIX.into());
    }
    (format!("answered {}", answer.describe()), "see the gateway's log (npx wrangler tail)".into())
}

/// `scheme://host[:port]` and the path of a URL.
fn origin_and_path(url: &str) -> (&str, &str) {
    let (origin, path, _) = split_request_url(url);
    (origin, path.trim_end_matches('/'))
}

/// Where strict clients look for the authorization server metadata of `issuer`
/// (RFC 8414 §3.1, OpenID Connect Discovery, and the MCP 2025-11-25 order).
pub fn metadata_locations(issuer: &str) -> Vec<String> {
    let (origin, path) = origin_and_path(issuer);
    if path.is_empty() {
        vec![format!("{origin}{AUTHORIZATION_SERVER_PATH}"), format!("{origin}{OPENID_CONFIGURATION_PATH}")]
    } else {
        vec![
            format!("{origin}{AUTHORIZATION_SERVER_PATH}{path}"),
            format!("{origin}{OPENID_CONFIGURATION_PATH}{path}"),
            format!("{issuer}{OPENID_CONFIGURATION_PATH}"),
        ]
    }
}

/// A first `data:` or JSON message answering request `id` (the origin may stream).
fn rpc_result(body: &str, id: u64) -> Option<Value> {
    let messages = std::iter::once(body).chain(body.lines().filter_map(|l| l.strip_prefix("data:")));
    messages
        .filter_map(|m| serde_json::from_str::<Value>(m.trim()).ok())
        .find(|m| m.get("id").and_then(Value::as_u64) == Some(id))
}

/// Whether the seen `Set-Cookie` pairs go with a request to the same host.
fn cookie_header(answer: &Answer) -> String {
    let pairs = answer.headers.iter().filter(|(n, _)| n == "set-cookie");
    pairs.filter_map(|(_, v)| v.split(';').next()).collect::<Vec<_>>().join("; ")
}

/// The consent page's form: its action and hidden fields.
fn consent_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = html.split("<form").nth(1)?.split("</form>").next()?;
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[start..].split('"').next()?.to_owned())
    };
    let action = attribute(form.split('>').next()?, "action")?;
    let fields = form
        .split("<input")
        .skip(1)
        .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value").unwrap_or_default())))
        .collect();
    form.contains("value=\"approve\"").then_some((action, fields))
}

impl Walk<'_> {
    fn line(&mut self, step: u8, verdict: Verdict, saw: String, fix: Option<String>) {
        let line = Line { step, verdict, saw, fix };
        self.io.show(&line);
        self.lines.push(line);
    }

    fn pass(&mut self, step: u8, saw: impl Into<String>) {
        self.line(step, Verdict::Pass, saw.into(), None);
    }

    fn warn(&mut self, step: u8, saw: impl Into<String>, fix: impl Into<String>) {
        self.line(step, Verdict::Warn, saw.into(), Some(fix.into()));
    }

    fn fail(&mut self, step: u8, saw: impl Into<String>, fix: impl Into<String>) {
        self.line(step, Verdict::Fail, saw.into(), Some(fix.into()));
    }

    /// Sends, or records a ✗ naming the URL that gave no answer.
    fn send(&mut self, step: u8, request: &Request, fix: &str) -> Option<Answer> {
        match self.io.send(request) {
            Ok(answer) => Some(answer),
            Err(error) => {
                self.fail(step, format!("{} {}: no answer ({error})", request.method, request.url), fix);
                None
            }
        }
    }

    fn all(&mut self) {
        // No answer, or a gateway refusing every request for its configuration: the later
        // steps would only repeat it.
        let Some(challenge) = self.challenge() else {
            return;
        };
        self.resource_metadata(challenge);
        self.authorization_server();
        self.registration();
        self.consent();
        self.access();
        self.origin();
        if self.options.login {
            self.login();
        }
    }

    /// Step 1: An unauthenticated `POST` gets a `401` with an absolute `resource_metadata`.
    /// `None` when nothing further can be learnt.
    fn challenge(&mut self) -> Option<Option<String>> {
        let url = self.options.mcp_url.clone();
        let answer = self.send(1, &mcp_post(&url, None, None, INITIALIZE.into()), NO_ANSWER_FIX)?;
        let challenge = answer.header("www-authenticate").unwrap_or_default().to_owned();
        let location = answer.header("location").unwrap_or_default().to_owned();
        match answer.status {
            401 => match auth_param(&challenge, "resource_metadata") {
                Some(metadata) if metadata.starts_with("https://") || metadata.starts_with("http://") => {
                    self.pass(1, format!("POST without a token → 401 with resource_metadata {metadata}"));
                    return Some(Some(metadata));
                }
                Some(metadata) => self.fail(
                    1,
                    format!("401 with a relative resource_metadata \"{metadata}\""),
                    "clients need an absolute URL: set PUBLIC_ORIGIN",
                ),
                None => self.fail(
                    1,
                    format!("POST without a token → 401 without resource_metadata (WWW-Authenticate: {challenge})"),
                    "strict clients cannot find the authorization server: route this hostname to the gateway",
                ),
            },
            300..=399 if location.contains("cloudflareaccess.com") => self.fail(
                1,
                format!("POST without a token → {} to the Cloudflare Access login", answer.status),
                "remove the Access self-hosted application from this hostname: clients cannot log in through it, the gateway does the authentication",
            ),
            200..=299 => self.fail(
                1,
                format!("POST without a token → {}: the MCP endpoint answers anyone", answer.status),
                "route this hostname to the gateway (wrangler.toml route) so it demands a token",
            ),
            _ => {
                let (saw, fix) = gateway_failure(&answer);
                self.fail(1, format!("POST without a token → {saw}"), fix);
                if config_fix(&answer.oauth_error().unwrap_or_default().1).is_some() {
                    return None;
                }
            }
        }
        Some(None)
    }

    /// Step 2: The protected resource metadata, where strict clients look for it.
    fn resource_metadata(&mut self, challenge: Option<String>) {
        let (origin, path) = origin_and_path(&self.options.mcp_url);
        let path_inserted = format!("{origin}{PROTECTED_RESOURCE_PATH}{path}");
        let root = format!("{origin}{PROTECTED_RESOURCE_PATH}");
        let mut locations = vec![];
        for url in challenge.into_iter().chain([path_inserted, root.clone()]) {
            if !locations.contains(&url) {
                locations.push(url);
            }
        }
        for url in locations {
            let Some(answer) = self.send(2, &get(&url), "the resource metadata must be reachable at this URL") else {
                continue;
            };
            let document = answer.json().filter(|_| answer.status == 200);
            let resource = document.as_ref().and_then(|d| d.get("resource")).and_then(Value::as_str);
            let server = document
                .as_ref()
                .and_then(|d| d.get("authorization_servers"))
                .and_then(|s| s.get(0))
                .and_then(Value::as_str)
                .map(str::to_owned);
            match (resource, server) {
                (Some(resource), Some(server)) if resource == self.options.mcp_url => {
                    self.pass(
                        2,
                        format!("resource metadata at {url}: resource {resource}, authorization server {server}"),
                    );
                    self.found.issuer.get_or_insert(server);
                }
                (Some(resource), server) => {
                    self.fail(
                        2,
                        format!("resource metadata at {url} names resource {resource}, not {}", self.options.mcp_url),
                        "clients refuse a resource that is not the URL they were given: set PUBLIC_ORIGIN (and MCP_PATH) to the public URL",
                    );
                    if let Some(server) = server {
                        self.found.issuer.get_or_insert(server);
                    }
                }
                _ if url == root && answer.status == 404 => self.warn(
                    2,
                    format!("no resource metadata at the root {url} (404)"),
                    "clients that ignore the challenge and the path try the root: serve it there too",
                ),
                _ => {
                    let (saw, fix) = gateway_failure(&answer);
                    self.fail(2, format!("resource metadata at {url} → {saw}"), fix);
                }
            }
        }
    }

    /// Step 3: The authorization server metadata at every location clients try.
    fn authorization_server(&mut self) {
        let Some(issuer) = self.found.issuer.clone() else {
            return;
        };
        let gateway = origin_and_path(&issuer).0 == origin_and_path(&self.options.mcp_url).0;
        let has_path = !origin_and_path(&issuer).1.is_empty();
        if has_path {
            self.fail(
                3,
                format!(
                    "the authorization server {issuer} has a path: clients derive a metadata URL Access does not serve"
                ),
                DEPLOY_GATEWAY,
            );
        }
        for url in metadata_locations(&issuer) {
            let Some(answer) = self.send(3, &get(&url), "the metadata must be reachable here") else {
                continue;
            };
            let document = answer.json().filter(|_| answer.status == 200);
            match document.as_ref().and_then(|d| d.get("issuer")).and_then(Value::as_str) {
                Some(published) if published == issuer => {
                    self.pass(3, format!("metadata at {url}, issuer byte-equal"));
                    self.found.metadata.get_or_insert_with(|| document.clone().unwrap_or_default());
                }
                Some(published) => self.fail(
                    3,
                    format!("metadata at {url} says issuer {published}, not {issuer}"),
                    "clients refuse an issuer that differs by a byte: set PUBLIC_ORIGIN to the public https origin",
                ),
                None if has_path && answer.status == 404 => {
                    self.fail(3, format!("no metadata at {url} (404)"), DEPLOY_GATEWAY)
                }
                None if gateway && matches!(answer.status, 502 | 504) => self.fail(
                    3,
                    format!("metadata at {url} → {}", answer.describe()),
                    "the gateway cannot read Access's discovery document: see step 6 (ACCESS_ISSUER)",
                ),
                None => {
                    let (saw, fix) = gateway_failure(&answer);
                    self.fail(3, format!("metadata at {url} → {saw}"), fix);
                }
            }
        }
        let Some(metadata) = self.found.metadata.clone() else {
            return;
        };
        let fix =
            if gateway { "upgrade the gateway (npx wrangler deploy of the current version)" } else { DEPLOY_GATEWAY };
        let list = |key: &str| -> Vec<String> {
            metadata
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let mut problems = 0;
        if !list("code_challenge_methods_supported").contains(&"S256".to_owned()) {
            problems += 1;
            self.fail(3, "no code_challenge_methods_supported with S256: 2025-11-25 clients refuse to continue", fix);
        }
        let grants = list("grant_types_supported");
        let odd: Vec<_> = grants.iter().filter(|g| !STANDARD_GRANTS.contains(&g.as_str())).cloned().collect();
        if !odd.is_empty() {
            problems += 1;
            self.fail(3, format!("non-standard grant type names: {}", odd.join(", ")), fix);
        }
        if !list("token_endpoint_auth_methods_supported").contains(&"none".to_owned()) {
            problems += 1;
            let saw = if metadata.get("token_endpoint_auth_methods").is_some() {
                "token_endpoint_auth_methods instead of token_endpoint_auth_methods_supported, without none"
            } else {
                "token_endpoint_auth_methods_supported without none: public clients cannot use the token endpoint"
            };
            self.fail(3, saw, fix);
        }
        if metadata.get("registration_endpoint").and_then(Value::as_str).is_none() {
            problems += 1;
            self.fail(3, "no registration_endpoint: clients without a pre-registered client id cannot register", fix);
        }
        if problems == 0 {
            self.pass(3, "S256, token_endpoint_auth_method none, standard grant types, registration endpoint");
        }
        if metadata.get("client_id_metadata_document_supported") == Some(&Value::Bool(true)) {
            self.pass(3, "client_id_metadata_document_supported: clients may use a URL as client id (CIMD)");
        } else {
            self.warn(
                3,
                "no client_id_metadata_document_supported: clients that prefer CIMD fall back to registration",
                if gateway {
                    "remove CIMD = \"off\" from [vars] (or upgrade the gateway to a version with CIMD)"
                } else {
                    DEPLOY_GATEWAY
                },
            );
        }
    }

    fn metadata_url(&self, key: &str) -> Option<String> {
        self.found.metadata.as_ref()?.get(key)?.as_str().map(str::to_owned)
    }

    /// Step 4: A throwaway registration, and the token endpoint answering a bad code as OAuth does.
    fn registration(&mut self) {
        if let Some(endpoint) = self.metadata_url("registration_endpoint") {
            let body = json!({
                "client_name": "mcp-access-gateway doctor",
                "redirect_uris": [self.options.redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            });
            let fix = "the registration endpoint must answer";
            if let Some(answer) = self.send(4, &post(&endpoint, "application/json", body.to_string()), fix) {
                let client_id = answer.json().and_then(|d| d.get("client_id")?.as_str().map(str::to_owned));
                match client_id {
                    Some(id) if answer.status == 201 => {
                        self.pass(4, format!("registered {}: client id {id}", self.options.redirect_uri));
                        self.found.client_id = Some(id);
                    }
                    _ => {
                        let (saw, fix) = gateway_failure(&answer);
                        self.fail(4, format!("registration → {saw}"), fix);
                    }
                }
            }
        }
        self.metadata_document_client();
        let Some(endpoint) = self.metadata_url("token_endpoint") else {
            return;
        };
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", "doctor-probe-not-a-code"),
            ("redirect_uri", &self.options.redirect_uri),
            ("code_verifier", "doctor-probe-not-a-verifier-doctor-probe-not-a-verifier"),
            ("client_id", self.found.client_id.as_deref().unwrap_or("doctor")),
        ]);
        let request = post(&endpoint, "application/x-www-form-urlencoded", body);
        let Some(answer) = self.send(4, &request, "the token endpoint must answer") else {
            return;
        };
        match answer.oauth_error() {
            Some((error, _)) if (400..500).contains(&answer.status) => {
                self.pass(4, format!("{endpoint} answers a made-up code with {} {error} (JSON)", answer.status))
            }
            _ if answer.is_html() => {
                self.fail(4, format!("{endpoint} answered a token request {}", answer.describe()), WAF_FIX)
            }
            _ => {
                let (saw, fix) = gateway_failure(&answer);
                self.fail(4, format!("{endpoint} → {saw}"), fix);
            }
        }
    }

    /// Where CIMD is advertised: an authorization request whose client id is a metadata
    /// document URL that cannot be fetched must be refused as the client's mistake, never
    /// answered with a consent page or a server error.
    fn metadata_document_client(&mut self) {
        let advertised = self.found.metadata.as_ref().and_then(|m| m.get("client_id_metadata_document_supported"));
        let (Some(Value::Bool(true)), Some(endpoint)) = (advertised, self.metadata_url("authorization_endpoint"))
        else {
            return;
        };
        let client_id = "https://client.doctor.invalid/oauth-client.json";
        let url = with_query(
            &endpoint,
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", "https://client.doctor.invalid/callback"),
                ("code_challenge", &pkce_challenge("doctor")),
                ("code_challenge_method", "S256"),
                ("resource", &self.options.mcp_url),
            ],
        );
        let Some(answer) = self.send(4, &get(&url), "the authorization endpoint must answer") else {
            return;
        };
        if (400..500).contains(&answer.status) {
            self.pass(4, format!("a client id naming an unreachable metadata document is refused ({})", answer.status));
        } else {
            self.fail(
                4,
                format!("a client id naming an unreachable metadata document → {}", answer.describe()),
                "upgrade the gateway: a CIMD client id it cannot fetch must be refused with a 4xx",
            );
        }
    }

    fn authorize_url(&self, endpoint: &str, state: &str, challenge: &str) -> String {
        let scope = self
            .found
            .metadata
            .as_ref()
            .and_then(|m| m.get("scopes_supported")?.as_array().cloned())
            .map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "openid email profile".into());
        with_query(
            endpoint,
            &[
                ("response_type", "code"),
                ("client_id", self.found.client_id.as_deref().unwrap_or_default()),
                ("redirect_uri", &self.options.redirect_uri),
                ("state", state),
                ("scope", &scope),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("resource", &self.options.mcp_url),
            ],
        )
    }

    /// Step 5: `/authorize` shows the consent page; approving it sends the browser to Access,
    /// which must accept the gateway's callback as redirect URI.
    fn consent(&mut self) {
        let (Some(endpoint), Some(_)) = (self.metadata_url("authorization_endpoint"), self.found.client_id.clone())
        else {
            return;
        };
        let (state, verifier) = (self.io.random(), self.io.random());
        let url = self.authorize_url(&endpoint, &state, &pkce_challenge(&verifier));
        let Some(page) = self.send(5, &get(&url), "the authorization endpoint must answer") else {
            return;
        };
        let Some((action, fields)) = consent_form(&page.body).filter(|_| page.status == 200) else {
            let (saw, fix) = match query_param(page.header("location").unwrap_or_default(), "error_description") {
                Some(description) => (
                    format!("redirected back with an error: {description}"),
                    "see the gateway's log (npx wrangler tail)".into(),
                ),
                None => gateway_failure(&page),
            };
            self.fail(5, format!("/authorize → {saw}"), fix);
            return;
        };
        self.pass(5, "/authorize shows the consent page");
        let (origin, _) = origin_and_path(&endpoint);
        let fields: Vec<(&str, &str)> =
            fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain([("decision", "approve")]).collect();
        let mut approve = post(&format!("{origin}{action}"), "application/x-www-form-urlencoded", form(&fields));
        approve.headers.extend([
            ("origin", origin.to_owned()),
            ("sec-fetch-site", "same-origin".into()),
            ("cookie", cookie_header(&page)),
        ]);
        let Some(approved) = self.send(5, &approve, "the consent form must answer") else {
            return;
        };
        let Some(access_url) = approved.header("location").filter(|_| approved.status == 302).map(str::to_owned) else {
            let (saw, fix) = gateway_failure(&approved);
            self.fail(5, format!("approving consent → {saw}"), fix);
            return;
        };
        let callback = query_param(&access_url, "redirect_uri").unwrap_or_default();
        let (access_origin, access_path, _) = split_request_url(&access_url);
        self.found.access_authorization = Some(format!("{access_origin}{access_path}"));
        let Some(answer) = self.send(5, &get(&access_url), "Access's authorization endpoint must be reachable") else {
            return;
        };
        let location = answer.header("location").unwrap_or_default();
        let error = location.starts_with(&callback).then(|| query_param(location, "error")).flatten();
        match (answer.status, error) {
            (300..=399, Some(error)) => self.fail(
                5,
                format!("Access answered the gateway's request with error {error}"),
                "check the Access app's policy and ACCESS_CLIENT_ID",
            ),
            (200 | 300..=399, None) => self.pass(5, format!("Access accepts the gateway's callback {callback}")),
            (_, _) if answer.body.to_ascii_lowercase().contains("redirect") => self.fail(
                5,
                format!("Access refused the gateway's callback {callback}: {}", answer.describe()),
                format!("add {callback} to the Redirect URLs of the Access for SaaS application (Zero Trust → Access → Applications → the app → Edit)"),
            ),
            _ => self.fail(
                5,
                format!("Access's authorization endpoint answered {}", answer.describe()),
                "check ACCESS_CLIENT_ID and the Access for SaaS application",
            ),
        }
    }

    /// Step 6: Access's own discovery document and signing keys.
    fn access(&mut self) {
        // Without the gateway, the authorization server is Access itself.
        let access = self.found.issuer.as_deref().filter(|i| !origin_and_path(i).1.is_empty());
        let derived = self.found.access_authorization.as_deref().and_then(|a| a.strip_suffix("/authorization"));
        let Some(issuer) = self.options.access_issuer.as_deref().or(derived).or(access) else {
            return self.warn(
                6,
                "Access's issuer is not known here",
                "pass --access-issuer with ACCESS_ISSUER's value",
            );
        };
        let issuer = issuer.trim_end_matches('/').to_owned();
        let app = AccessApp { issuer: issuer.clone(), client_id: String::new(), client_secret: None };
        let url = app.discovery_url();
        let fix =
            "set ACCESS_ISSUER to the issuer exactly as the Access for SaaS app shows it, and check that Access is up";
        let Some(answer) = self.send(6, &get(&url), fix) else {
            return;
        };
        if answer.status != 200 || answer.is_html() {
            self.fail(6, format!("Access discovery at {url} answered {}", answer.describe()), fix);
            return;
        }
        let upstream = match UpstreamMetadata::parse(&answer.body, &app) {
            Ok(upstream) => upstream,
            Err(error) => {
                self.fail(6, format!("Access discovery at {url}: {}", error.log_reason()), fix);
                return;
            }
        };
        self.pass(6, format!("Access discovery at {url}: issuer matches, endpoints usable"));
        let jwks_fix =
            "Access's signing keys must be reachable where ACCESS_JWKS_URL (default <ACCESS_ISSUER>/jwks) points";
        let Some(answer) = self.send(6, &get(&upstream.jwks_uri), jwks_fix) else {
            return;
        };
        let keys = KeySet::parse(&answer.body).ok().filter(|_| answer.status == 200);
        let usable = keys.as_ref().map_or(0, |k| k.keys().iter().filter(|key| key.public_key().is_ok()).count());
        if usable > 0 {
            self.pass(6, format!("JWKS at {}: {usable} RS256 key(s) usable", upstream.jwks_uri));
        } else {
            self.fail(
                6,
                format!("JWKS at {} answered {} with no usable RS256 key", upstream.jwks_uri, answer.describe()),
                jwks_fix,
            );
        }
    }

    /// Step 7: A bad token is refused by the gateway, not the origin; the origin's own hostname
    /// refuses requests that did not come through Access, or a private origin does not answer.
    fn origin(&mut self) {
        let url = self.options.mcp_url.clone();
        let mut gateway_clock = None;
        if let Some(answer) =
            self.send(7, &mcp_post(&url, Some("doctor-probe-not-a-token"), None, INITIALIZE.into()), NO_ANSWER_FIX)
        {
            gateway_clock = http_date(&answer).map(|date| (date, self.io.millis()));
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            if answer.status == 401 && challenge.contains("invalid_token") && challenge.contains("resource_metadata") {
                self.pass(7, "a bad token → 401 invalid_token with the resource_metadata challenge");
            } else if (200..300).contains(&answer.status) {
                self.fail(
                    7,
                    format!("a bad token → {}: accepted", answer.status),
                    "route this hostname to the gateway",
                );
            } else if self.lines.iter().any(|l| l.step == 1 && l.verdict == Verdict::Pass) {
                self.fail(
                    7,
                    format!("a bad token → {}", answer.describe()),
                    "route this hostname to the gateway, not the origin",
                );
            }
        }
        let origin = match self.options.origin.clone() {
            None => return,
            Some(OriginProbe::Private(url)) => return self.private_origin(&url),
            Some(OriginProbe::Public(url)) => url,
        };
        match self.io.send(&stranger(&origin)) {
            Err(error) => self.pass(7, format!("the origin {origin} does not answer from here ({error})")),
            Ok(answer) if (200..300).contains(&answer.status) => self.fail(
                7,
                format!("the origin {origin} answered {} without Access: anyone can call it and forge the identity headers", answer.status),
                "protect the origin's hostname with an Access application that admits only a service token (ORIGIN_ACCESS_CLIENT_ID / ORIGIN_ACCESS_CLIENT_SECRET), or stop publishing it",
            ),
            Ok(answer) => {
                self.pass(7, format!("the origin {origin} refuses a request without credentials ({})", answer.status));
                self.origin_clock(&answer, gateway_clock);
            }
        }
    }

    /// The private deployment: only the gateway's binding leads to the origin, so the origin
    /// answering from here at all is the fault, and no answer is the healthy state.
    fn private_origin(&mut self, url: &str) {
        match self.io.send(&stranger(url)) {
            Err(error) => self.pass(
                7,
                format!("the origin {url} does not answer from here ({error}): private, reached only through the gateway's {ORIGIN_BINDING} binding"),
            ),
            Ok(answer) if (200..300).contains(&answer.status) => self.fail(
                7,
                format!("the origin {url} answered {} from here: it is not private, and anyone can forge the identity headers the gateway sends through {ORIGIN_BINDING}", answer.status),
                "remove the origin's public hostname (the Tunnel's public hostname route and its DNS record) and let it listen only where cloudflared reaches it",
            ),
            Ok(answer) => self.warn(
                7,
                format!("the origin {url} still answers from here ({}): with the {ORIGIN_BINDING} binding it needs no public hostname", answer.status),
                "remove the public hostname and the Access application that guards it; the gateway keeps reaching the origin through the binding",
            ),
        }
    }

    /// What to check when the gateway cannot reach the origin.
    fn unreachable_origin_fix(&self) -> String {
        match self.options.origin {
            Some(OriginProbe::Private(_)) => format!(
                "check the VPC service bound as {ORIGIN_BINDING} (npx wrangler vpc service get <service id>) and that its Tunnel is connected (cloudflared 2025.7.0 or later over QUIC, outbound UDP 7844); the gateway's log line says what the binding threw (npx wrangler tail)"
            ),
            _ => "check ORIGIN_URL and that the Tunnel to the origin is up".into(),
        }
    }

    /// The origin verifies the same tokens (`exp` without leeway): a clock off by more than
    /// the gateway's default leeway refuses fresh tokens or accepts expired ones.
    fn origin_clock(&mut self, answer: &Answer, gateway_clock: Option<(i64, u64)>) {
        let (Some(origin), Some((gateway, seen_at))) = (http_date(answer), gateway_clock) else {
            return;
        };
        let elapsed = (self.io.millis() - seen_at) as i64 / 1000;
        let skew = origin - gateway - elapsed;
        if skew.abs() > CLOCK_TOLERANCE_SECONDS {
            let direction = if skew > 0 { "ahead of" } else { "behind" };
            self.warn(
                7,
                format!("the origin's clock is {} s {direction} the gateway's (Cloudflare's)", skew.abs()),
                "synchronise the origin's clock (NTP): it checks the same tokens' exp, nbf and iat",
            );
        }
    }

    /// Step 8: A real login in the person's browser, the token exchange and MCP calls, timed.
    fn login(&mut self) {
        let (Some(authorize), Some(token_endpoint)) =
            (self.metadata_url("authorization_endpoint"), self.metadata_url("token_endpoint"))
        else {
            return self.fail(
                8,
                "no login: the steps above found no usable authorization server",
                "fix the steps above",
            );
        };
        if self.found.client_id.is_none() {
            return self.fail(8, "no login: registration failed", "fix step 4");
        }
        let (state, verifier) = (self.io.random(), self.io.random());
        let url = self.authorize_url(&authorize, &state, &pkce_challenge(&verifier));
        let started = self.io.millis();
        let returned = match self.io.login(&url) {
            Ok(returned) => returned,
            Err(error) => {
                return self.fail(8, format!("browser login: {error}"), "finish the login in the browser that opened")
            }
        };
        let elapsed = self.io.millis() - started;
        let issuer = self.found.issuer.clone().unwrap_or_default();
        if let Some(error) = query_param(&returned, "error") {
            let description = query_param(&returned, "error_description").unwrap_or_default();
            return self.fail(
                8,
                format!("Access login → {error}: {description}"),
                "check the Access app's policy admits you",
            );
        }
        let code = query_param(&returned, "code");
        if query_param(&returned, "state").as_deref() != Some(state.as_str()) || code.is_none() {
            return self.fail(8, "Access login came back without the code and state sent", "see the gateway's log");
        }
        if query_param(&returned, "iss").as_deref() != Some(issuer.as_str()) {
            self.warn(8, "the authorization response has no iss equal to the issuer (RFC 9207)", "upgrade the gateway");
        }
        self.pass(8, format!("Access login ({elapsed} ms)"));

        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_deref().unwrap_or_default()),
            ("redirect_uri", &self.options.redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", self.found.client_id.as_deref().unwrap_or_default()),
            ("resource", &self.options.mcp_url),
        ]);
        let started = self.io.millis();
        let Some(answer) =
            self.send(8, &post(&token_endpoint, "application/x-www-form-urlencoded", body), NO_ANSWER_FIX)
        else {
            return;
        };
        let elapsed = self.io.millis() - started;
        let token = answer.json().and_then(|d| d.get("access_token")?.as_str().map(str::to_owned));
        let Some(token) = token.filter(|_| answer.status == 200) else {
            let (saw, fix) = match answer.oauth_error() {
                Some((error, _)) if error == "invalid_client" => (
                    format!("token → {}", answer.describe()),
                    "set ACCESS_CLIENT_SECRET to the Access app's client secret (or enable PKCE without client secret and unset it)".into(),
                ),
                _ => gateway_failure(&answer),
            };
            return self.fail(8, format!("token exchange → {saw}"), fix);
        };
        self.pass(8, format!("token ({elapsed} ms)"));
        self.mcp(&token);
    }

    fn mcp(&mut self, token: &str) {
        let url = self.options.mcp_url.clone();
        let fix = &self.unreachable_origin_fix();
        let Some(answer) = self.send(8, &mcp_post(&url, Some(token), None, INITIALIZE.into()), fix) else {
            return;
        };
        if answer.status != 200 {
            return self.mcp_failure("initialize", &answer);
        }
        let session = answer.header("mcp-session-id").map(str::to_owned);
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
        self.io.send(&mcp_post(&url, Some(token), session.as_deref(), initialized)).ok();
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
        let started = self.io.millis();
        let Some(answer) = self.send(8, &mcp_post(&url, Some(token), session.as_deref(), list), fix) else {
            return;
        };
        let elapsed = self.io.millis() - started;
        match rpc_result(&answer.body, 2).and_then(|m| m.get("result")?.get("tools")?.as_array().map(Vec::len)) {
            Some(count) => {
                let tools = if count == 1 { "tool" } else { "tools" };
                self.pass(8, format!("tools/list → {count} {tools} ({elapsed} ms)"));
            }
            None => return self.mcp_failure("tools/list", &answer),
        }
        let Some(call) = self.options.call.clone() else {
            return;
        };
        let request = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": call.name, "arguments": call.arguments}});
        let started = self.io.millis();
        let Some(answer) = self.send(8, &mcp_post(&url, Some(token), session.as_deref(), request.to_string()), fix)
        else {
            return;
        };
        let elapsed = self.io.millis() - started;
        let message = rpc_result(&answer.body, 3);
        let text = message
            .as_ref()
            .and_then(|m| m.get("result")?.get("content")?.get(0)?.get("text")?.as_str().map(str::to_owned));
        match (text, message.as_ref().and_then(|m| m.get("result")?.get("isError")?.as_bool())) {
            (Some(text), Some(true)) => {
                self.fail(8, format!("tools/call {} → error: {text}", call.name), "check the tool's arguments")
            }
            (Some(text), _) => self.pass(8, format!("tools/call {} → {text} ({elapsed} ms)", call.name)),
            (None, _) => self.mcp_failure(&format!("tools/call {}", call.name), &answer),
        }
    }

    fn mcp_failure(&mut self, what: &str, answer: &Answer) {
        let (saw, fix) = match answer.status {
            502 | 504 => (
                format!("{what} → {}: the gateway could not reach the origin", answer.status),
                self.unreachable_origin_fix(),
            ),
            401 => (
                format!(
                    "{what} → 401 for the token just issued ({})",
                    answer.header("www-authenticate").unwrap_or_default()
                ),
                "check ALLOWED_AUDIENCES, TOKEN_MODE and this machine's and the origin's clocks".to_owned(),
            ),
            403 => (
                format!("{what} → 403"),
                "the allowlists (ALLOWED_EMAILS, ALLOWED_GROUPS, MCP_POLICY) refuse you".to_owned(),
            ),
            _ => gateway_failure(answer),
        };
        self.fail(8, saw, fix);
    }
}

/// A request the origin must turn away: no credentials, and an identity header anyone could forge.
fn stranger(url: &str) -> Request {
    let mut probe = mcp_post(url, None, None, INITIALIZE.into());
    probe.headers.push(("cf-access-authenticated-user-email", "doctor@example.invalid".into()));
    probe
}

/// The gateway's default `JWT_LEEWAY_SECONDS`.
const CLOCK_TOLERANCE_SECONDS: i64 = 30;

/// An answer's `Date` header, in seconds since the epoch.
fn http_date(answer: &Answer) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(answer.header("date")?).ok().map(|date| date.timestamp())
}

/// Grant type names RFC 8414 clients know.
const STANDARD_GRANTS: [&str; 4] =
    ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"];

/// The RFC 7636 S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether a URL is acceptable to point the doctor at: `https`, or `http` on loopback only
/// unless `any_http` (a private origin's address, which only names where it must not answer).
pub fn acceptable_url(url: &str, any_http: bool) -> bool {
    let (origin, _) = origin_and_path(url);
    match origin.split_once("://") {
        Some(("https", host)) => !host.is_empty(),
        Some(("http", host)) => {
            !host.is_empty() && (any_http || is_loopback_host(host.rsplit_once(':').map_or(host, |(h, _)| h)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::token::bearer;
    use crate::access::upstream::tests::{access_discovery, upstream};
    use crate::config::tests::{test_config, ISSUER};
    use crate::oauth::capabilities::Capabilities;
    use crate::oauth::metadata::tests::site;
    use crate::oauth::metadata::{authorization_server, protected_resource};
    use crate::primitives::error::{ClientMetadataFailure, Error, Surface, TokenFailure};
    use crate::primitives::http::Response;

    const MCP: &str = "https://mcp.example.com/mcp";
    const REDIRECT: &str = "http://127.0.0.1:4567/callback";
    const ORIGIN: &str = "https://origin.example.com/mcp";

    fn answer(response: Response) -> Answer {
        let headers = response.headers.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        Answer { status: response.status, headers, body: response.body }
    }

    fn html(status: u16, body: &str) -> Answer {
        answer(Response::html(status, body.to_owned()))
    }

    fn jwks() -> String {
        let vectors: Value = serde_json::from_str(include_str!("../../tests/vectors/rsa_test_keys.json")).unwrap();
        let key = &vectors["signing"];
        json!({"keys": [{"kty": "RSA", "kid": key["kid"], "n": key["n"], "e": key["e"], "alg": "RS256"}]}).to_string()
    }

    fn rpc(id: u64, result: Value) -> String {
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
    }

    /// A healthy gateway in front of Access for SaaS and an origin, answering with the
    /// core's own documents and errors.
    fn healthy(request: &Request) -> Option<Answer> {
        let config = test_config();
        let site = site();
        let caps = Capabilities::new(&config, &upstream());
        let metadata_url = site.resource_metadata_url();
        let resource = Surface::Resource { resource_metadata: &metadata_url, scope: "openid email profile" };
        let token = request.headers.iter().find(|(n, _)| *n == "authorization").map(|(_, v)| v.as_str());
        let body = request.body.as_deref().unwrap_or_default();
        let (path_and_query, query) = request.url.split_once('?').unwrap_or((&request.url, ""));
        let response = match (request.method, path_and_query) {
            ("POST", MCP) => match bearer(token) {
                None => Error::MissingToken.to_response(resource),
                Some("good") if body.contains("tools/list") => Response::html(
                    200,
                    format!("event: message\ndata: {}\n\n", rpc(2, json!({"tools": [{"name": "ping"}]}))),
                )
                .with_header("content-type", "text/event-stream"),
                Some("good") if body.contains("tools/call") => Response::json(
                    200,
                    &json!({"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": "pong"}]}}),
                ),
                Some("good") => Response::json(200, &json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
                Some(_) => Error::InvalidToken(TokenFailure::NotJws).to_response(resource),
            },
            ("GET", url)
                if url == metadata_url || url == "https://mcp.example.com/.well-known/oauth-protected-resource" =>
            {
                Response::json(200, &protected_resource(&site, &config.scopes, None))
            }
            ("GET", url) if url.starts_with("https://mcp.example.com/.well-known/o") => {
                Response::json(200, &authorization_server(&site, &caps, &upstream()))
            }
            ("POST", "https://mcp.example.com/register") => {
                Response::json(201, &json!({"client_id": "abc123", "token_endpoint_auth_method": "none"}))
            }
            ("POST", "https://mcp.example.com/token") if body.contains("code=c&") => {
                Response::json(200, &json!({"access_token": "good", "token_type": "Bearer"}))
            }
            ("POST", "https://mcp.example.com/token") => Error::invalid_grant("no").to_response(Surface::Json),
            ("GET", "https://mcp.example.com/authorize") if query.contains("client_id=https") => {
                Error::ClientMetadata(ClientMetadataFailure::Unreachable).to_response(Surface::Page)
            }
            ("GET", "https://mcp.example.com/authorize") => crate::oauth::consent::tests::consent_page(&[]).0,
            ("POST", "https://mcp.example.com/authorize") if body.contains("decision=approve") => Response::redirect(
                with_query(&format!("{ISSUER}/authorization"), &[("redirect_uri", "https://mcp.example.com/callback")]),
            ),
            ("GET", url) if url == format!("{ISSUER}/authorization") && query.contains("redirect_uri") => {
                Response::redirect("https://team.cloudflareaccess.com/cdn-cgi/access/login".into())
            }
            ("GET", url) if url == format!("{ISSUER}/.well-known/openid-configuration") => {
                Response::json(200, &serde_json::from_str::<Value>(&access_discovery()).unwrap())
            }
            ("GET", url) if url == format!("{ISSUER}/jwks") => {
                Response::json(200, &serde_json::from_str::<Value>(&jwks()).unwrap())
            }
            ("POST", ORIGIN) => Response::empty(401),
            _ => return None,
        };
        Some(answer(response))
    }

    /// The healthy deployment with some answers replaced (`url` prefix → answer).
    struct Fake {
        faults: Vec<(&'static str, String, Answer)>,
        clock: u64,
        randoms: u32,
    }

    impl Io for Fake {
        fn send(&mut self, request: &Request) -> Result<Answer, String> {
            let fault =
                self.faults.iter().find(|(m, url, _)| *m == request.method && request.url.starts_with(url.as_str()));
            self.clock += 5;
            match fault {
                Some((_, _, answer)) => Ok(answer.clone()),
                None => healthy(request).ok_or_else(|| "connection refused".into()),
            }
        }

        fn login(&mut self, authorize_url: &str) -> Result<String, String> {
            self.clock += 700;
            let state = query_param(authorize_url, "state").unwrap();
            Ok(with_query(REDIRECT, &[("code", "c"), ("state", &state), ("iss", "https://mcp.example.com")]))
        }

        fn random(&mut self) -> String {
            self.randoms += 1;
            format!("random-{}", self.randoms)
        }

        fn millis(&mut self) -> u64 {
            self.clock
        }

        fn show(&mut self, _: &Line) {}
    }

    fn options() -> Options {
        Options {
            mcp_url: MCP.into(),
            origin: None,
            access_issuer: None,
            redirect_uri: REDIRECT.into(),
            login: true,
            call: Some(ToolCall { name: "ping".into(), arguments: json!({}) }),
        }
    }

    fn doctor(options: &Options, faults: Vec<(&'static str, String, Answer)>) -> (bool, Vec<String>) {
        let report = run(options, &mut Fake { faults, clock: 0, randoms: 0 });
        (report.ok, report.lines.iter().map(ToString::to_string).collect())
    }

    fn failures(lines: &[String]) -> Vec<&str> {
        lines.iter().filter(|l| !l.starts_with('✓')).map(String::as_str).collect()
    }

    #[test]
    fn a_healthy_deployment_passes_every_step() {
        let (ok, lines) = doctor(&Options { origin: Some(OriginProbe::Public(ORIGIN.into())), ..options() }, vec![]);
        assert_eq!(
            lines,
            [
                "✓ 1. POST without a token → 401 with resource_metadata https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                "✓ 2. resource metadata at https://mcp.example.com/.well-known/oauth-protected-resource/mcp: resource https://mcp.example.com/mcp, authorization server https://mcp.example.com",
                "✓ 2. resource metadata at https://mcp.example.com/.well-known/oauth-protected-resource: resource https://mcp.example.com/mcp, authorization server https://mcp.example.com",
                "✓ 3. metadata at https://mcp.example.com/.well-known/oauth-authorization-server, issuer byte-equal",
                "✓ 3. metadata at https://mcp.example.com/.well-known/openid-configuration, issuer byte-equal",
                "✓ 3. S256, token_endpoint_auth_method none, standard grant types, registration endpoint",
                "✓ 3. client_id_metadata_document_supported: clients may use a URL as client id (CIMD)",
                "✓ 4. registered http://127.0.0.1:4567/callback: client id abc123",
                "✓ 4. a client id naming an unreachable metadata document is refused (400)",
                "✓ 4. https://mcp.example.com/token answers a made-up code with 400 invalid_grant (JSON)",
                "✓ 5. /authorize shows the consent page",
                "✓ 5. Access accepts the gateway's callback https://mcp.example.com/callback",
                "✓ 6. Access discovery at https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc123/.well-known/openid-configuration: issuer matches, endpoints usable",
                "✓ 6. JWKS at https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc123/jwks: 1 RS256 key(s) usable",
                "✓ 7. a bad token → 401 invalid_token with the resource_metadata challenge",
                "✓ 7. the origin https://origin.example.com/mcp refuses a request without credentials (401)",
                "✓ 8. Access login (700 ms)",
                "✓ 8. token (5 ms)",
                "✓ 8. tools/list → 1 tool (5 ms)",
                "✓ 8. tools/call ping → pong (5 ms)",
            ]
        );
        assert!(ok);
    }

    #[test]
    fn a_missing_setting_is_named_with_its_fix_and_stops_the_walk() {
        let missing = answer(Error::config("SEALING_KEYS", "is missing").to_response(Surface::Json));
        let (ok, lines) = doctor(&options(), vec![("POST", MCP.into(), missing)]);
        assert!(!ok);
        assert_eq!(
            lines,
            ["✗ 1. POST without a token → the gateway answered 500: the gateway is misconfigured: SEALING_KEYS is missing — fix: create the secret: openssl rand -base64 32 | npx wrangler secret put SEALING_KEYS"]
        );
    }

    #[test]
    fn no_answer_at_all_stops_the_walk() {
        let (ok, lines) = doctor(&Options { mcp_url: "https://down.example.com/mcp".into(), ..options() }, vec![]);
        assert!(!ok);
        assert_eq!(lines, ["✗ 1. POST https://down.example.com/mcp: no answer (connection refused) — fix: check the MCP URL, and that a Worker route covers its hostname"]);
    }

    #[test]
    fn access_refusing_the_gateways_callback_names_the_access_field() {
        let refused = html(400, "<html><body><h1>Invalid request</h1><p>redirect_uri is not registered for this application.</p></body></html>");
        let (ok, lines) = doctor(&options(), vec![("GET", format!("{ISSUER}/authorization"), refused)]);
        assert!(!ok);
        assert_eq!(
            failures(&lines),
            [
                "✗ 5. Access refused the gateway's callback https://mcp.example.com/callback: 400 with an HTML page \"Invalid request redirect_uri is not registered for this application.\" — fix: add https://mcp.example.com/callback to the Redirect URLs of the Access for SaaS application (Zero Trust → Access → Applications → the app → Edit)",
            ]
        );
    }

    #[test]
    fn a_challenge_page_in_front_of_token_is_named() {
        let challenge =
            html(403, "<html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>");
        let (ok, lines) = doctor(&options(), vec![("POST", "https://mcp.example.com/token".into(), challenge)]);
        assert!(!ok);
        let waf = format!("fix: {WAF_FIX}");
        assert_eq!(
            failures(&lines),
            [
                format!("✗ 4. https://mcp.example.com/token answered a token request 403 with an HTML page \"Checking your browser\" — {waf}"),
                format!("✗ 8. token exchange → answered 403 with an HTML page \"Checking your browser\" — {waf}"),
            ]
        );
    }

    #[test]
    fn an_origin_answering_without_access_is_a_failure() {
        let open = answer(Response::json(200, &rpc(1, json!({}))));
        let (ok, lines) = doctor(
            &Options { origin: Some(OriginProbe::Public(ORIGIN.into())), ..options() },
            vec![("POST", ORIGIN.into(), open)],
        );
        assert!(!ok);
        assert_eq!(failures(&lines), ["✗ 7. the origin https://origin.example.com/mcp answered 200 without Access: anyone can call it and forge the identity headers — fix: protect the origin's hostname with an Access application that admits only a service token (ORIGIN_ACCESS_CLIENT_ID / ORIGIN_ACCESS_CLIENT_SECRET), or stop publishing it"]);
        let (_, lines) = doctor(
            &Options { origin: Some(OriginProbe::Public("https://unreachable.example.com/mcp".into())), ..options() },
            vec![],
        );
        assert!(lines.contains(
            &"✓ 7. the origin https://unreachable.example.com/mcp does not answer from here (connection refused)"
                .to_owned()
        ));
    }

    #[test]
    fn a_private_origin_that_does_not_answer_is_healthy_and_named() {
        let private = Options { origin: Some(OriginProbe::Private("http://mcp.internal/mcp".into())), ..options() };
        let (ok, lines) = doctor(&private, vec![]);
        assert!(ok, "{lines:#?}");
        assert!(lines.contains(&"✓ 7. the origin http://mcp.internal/mcp does not answer from here (connection refused): private, reached only through the gateway's ORIGIN_SERVICE binding".to_owned()), "{lines:#?}");
    }

    #[test]
    fn a_private_origin_that_answers_from_here_is_named() {
        let private = |url: &str| Options { origin: Some(OriginProbe::Private(url.into())), login: false, ..options() };
        let open = answer(Response::json(200, &rpc(1, json!({}))));
        let (ok, lines) = doctor(&private(ORIGIN), vec![("POST", ORIGIN.into(), open)]);
        assert!(!ok);
        assert_eq!(failures(&lines), ["✗ 7. the origin https://origin.example.com/mcp answered 200 from here: it is not private, and anyone can forge the identity headers the gateway sends through ORIGIN_SERVICE — fix: remove the origin's public hostname (the Tunnel's public hostname route and its DNS record) and let it listen only where cloudflared reaches it"]);
        // Still published behind Access (the healthy fixture's origin answers 401): no longer needed.
        let (ok, lines) = doctor(&private(ORIGIN), vec![]);
        assert!(ok);
        assert_eq!(failures(&lines), ["⚠ 7. the origin https://origin.example.com/mcp still answers from here (401): with the ORIGIN_SERVICE binding it needs no public hostname — fix: remove the public hostname and the Access application that guards it; the gateway keeps reaching the origin through the binding"]);
    }

    #[test]
    fn a_private_origin_down_behind_the_gateway_names_the_binding() {
        let unavailable = answer(Error::unavailable("origin unreachable").to_response(Surface::Json));
        let mut fake = Fake { faults: vec![], clock: 0, randoms: 0 };
        let private = Options { origin: Some(OriginProbe::Private("http://mcp.internal/mcp".into())), ..options() };
        let report = run(&private, &mut FakeOrigin { inner: &mut fake, down: unavailable });
        assert_eq!(
            report.lines.last().unwrap().to_string(),
            "✗ 8. initialize → 502: the gateway could not reach the origin — fix: check the VPC service bound as ORIGIN_SERVICE (npx wrangler vpc service get <service id>) and that its Tunnel is connected (cloudflared 2025.7.0 or later over QUIC, outbound UDP 7844); the gateway's log line says what the binding threw (npx wrangler tail)"
        );
    }

    #[test]
    fn a_misdeclared_origin_binding_is_named_with_its_fix() {
        let config =
            crate::config::tests::config_bound(&crate::config::tests::vars(), crate::config::OriginBinding::NotFetcher)
                .unwrap_err();
        let misconfigured = answer(config.to_response(Surface::Json));
        let (ok, lines) = doctor(&options(), vec![("POST", MCP.into(), misconfigured)]);
        assert!(!ok);
        let fix = "declare ORIGIN_SERVICE as the origin's VPC service ([[vpc_services]] in wrangler.toml, README: Private origin) and remove any [vars] entry of that name";
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].starts_with("✗ 1. POST without a token → the gateway answered 500: the gateway is misconfigured: ORIGIN_SERVICE is bound to something without fetch"), "{}", lines[0]);
        assert!(lines[0].ends_with(&format!("— fix: {fix}")), "{}", lines[0]);
    }

    #[test]
    fn an_origin_clock_off_by_more_than_the_leeway_is_a_warning() {
        let dated = |answer: Answer, date: &str| Answer {
            headers: [answer.headers, vec![("date".into(), date.into())]].concat(),
            ..answer
        };
        let bad_token = healthy(&mcp_post(MCP, Some("bad"), None, String::new())).unwrap();
        let gateway = dated(bad_token, "Tue, 01 Dec 2026 04:00:00 GMT");
        let options = Options { origin: Some(OriginProbe::Public(ORIGIN.into())), login: false, ..options() };
        let with_origin_date = |date: &str| {
            let origin = dated(answer(Response::empty(401)), date);
            let (_, lines) =
                doctor(&options, vec![("POST", MCP.into(), gateway.clone()), ("POST", ORIGIN.into(), origin)]);
            failures(&lines).into_iter().filter(|l| l.starts_with("⚠ 7.")).map(str::to_owned).collect::<Vec<_>>()
        };
        // The fake clock moves 5 ms per request: well within the second.
        assert_eq!(with_origin_date("Tue, 01 Dec 2026 04:00:30 GMT"), Vec::<String>::new());
        assert_eq!(
            with_origin_date("Tue, 01 Dec 2026 04:02:00 GMT"),
            ["⚠ 7. the origin's clock is 120 s ahead of the gateway's (Cloudflare's) — fix: synchronise the origin's clock (NTP): it checks the same tokens' exp, nbf and iat"]
        );
        assert_eq!(
            with_origin_date("Tue, 01 Dec 2026 03:59:00 GMT")[0].split(" — ").next().unwrap(),
            "⚠ 7. the origin's clock is 60 s behind the gateway's (Cloudflare's)"
        );
    }

    #[test]
    fn opaque_tokens_in_passthrough_mode_name_token_mode() {
        let passthrough = answer(
            Error::config("TOKEN_MODE", "is passthrough, but Access issues opaque access tokens (use auto or sealed)")
                .to_response(Surface::Json),
        );
        let (ok, lines) = doctor(&options(), vec![("POST", "https://mcp.example.com/token".into(), passthrough)]);
        assert!(!ok);
        assert_eq!(
            failures(&lines).last().unwrap(),
            &"✗ 8. token exchange → the gateway answered 500: the gateway is misconfigured: TOKEN_MODE is passthrough, but Access issues opaque access tokens (use auto or sealed) — fix: set TOKEN_MODE to auto (the default) or sealed in wrangler.toml"
        );
    }

    #[test]
    fn access_discovery_down_is_named_at_the_gateway_and_at_access() {
        let unavailable = answer(Error::unavailable("Access discovery answered non-200").to_response(Surface::Json));
        let down = html(503, "<html><body><h1>Service Unavailable</h1></body></html>");
        let faults = vec![
            ("GET", "https://mcp.example.com/.well-known/oauth-authorization-server".into(), unavailable.clone()),
            ("GET", "https://mcp.example.com/.well-known/openid-configuration".into(), unavailable),
            ("GET", format!("{ISSUER}/.well-known"), down),
        ];
        let (ok, lines) = doctor(&Options { access_issuer: Some(ISSUER.into()), login: false, ..options() }, faults);
        assert!(!ok);
        let fix = "fix: the gateway cannot read Access's discovery document: see step 6 (ACCESS_ISSUER)";
        assert_eq!(
            failures(&lines),
            [
                format!("✗ 3. metadata at https://mcp.example.com/.well-known/oauth-authorization-server → 502 temporarily_unavailable: the upstream service failed; try again later — {fix}"),
                format!("✗ 3. metadata at https://mcp.example.com/.well-known/openid-configuration → 502 temporarily_unavailable: the upstream service failed; try again later — {fix}"),
                format!("✗ 6. Access discovery at {ISSUER}/.well-known/openid-configuration answered 503 with an HTML page \"Service Unavailable\" — fix: set ACCESS_ISSUER to the issuer exactly as the Access for SaaS app shows it, and check that Access is up"),
            ]
        );
    }

    #[test]
    fn an_origin_down_behind_the_gateway_is_named_after_login() {
        let unavailable = answer(Error::unavailable("origin unreachable").to_response(Surface::Json));
        let mut fake = Fake { faults: vec![], clock: 0, randoms: 0 };
        // Only requests carrying the issued token reach the origin.
        let report = run(&options(), &mut FakeOrigin { inner: &mut fake, down: unavailable });
        assert!(!report.ok);
        assert_eq!(
            report.lines.last().unwrap().to_string(),
            "✗ 8. initialize → 502: the gateway could not reach the origin — fix: check ORIGIN_URL and that the Tunnel to the origin is up"
        );
        assert_eq!(report.lines.iter().filter(|l| l.verdict == Verdict::Fail).count(), 1);
    }

    struct FakeOrigin<'a> {
        inner: &'a mut Fake,
        down: Answer,
    }

    impl Io for FakeOrigin<'_> {
        fn send(&mut self, request: &Request) -> Result<Answer, String> {
            if request.headers.contains(&("authorization", "Bearer good".into())) {
                return Ok(self.down.clone());
            }
            self.inner.send(request)
        }
        fn login(&mut self, url: &str) -> Result<String, String> {
            self.inner.login(url)
        }
        fn random(&mut self) -> String {
            self.inner.random()
        }
        fn millis(&mut self) -> u64 {
            self.inner.millis()
        }
        fn show(&mut self, _: &Line) {}
    }

    #[test]
    fn access_for_saas_without_the_gateway_names_each_trip_and_recommends_the_gateway() {
        // The seed's setup: the origin's own challenge and metadata point at Access.
        let prm = answer(Response::json(200, &json!({"resource": MCP, "authorization_servers": [ISSUER]})));
        let challenge = Response::empty(401).with_header(
            "www-authenticate",
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"",
        );
        let faults = vec![
            ("POST", MCP.into(), answer(challenge)),
            ("GET", "https://mcp.example.com/.well-known/oauth-protected-resource".into(), prm),
            ("GET", "https://team.cloudflareaccess.com/.well-known/".into(), answer(Response::empty(404))),
        ];
        let (ok, lines) = doctor(&Options { login: false, ..options() }, faults);
        assert!(!ok);
        let fix = format!("fix: {DEPLOY_GATEWAY}");
        let step_3: Vec<_> = lines.iter().filter(|l| l.contains(" 3. ")).cloned().collect();
        assert_eq!(
            step_3,
            [
                format!("✗ 3. the authorization server {ISSUER} has a path: clients derive a metadata URL Access does not serve — {fix}"),
                format!("✗ 3. no metadata at https://team.cloudflareaccess.com/.well-known/oauth-authorization-server/cdn-cgi/access/sso/oidc/abc123 (404) — {fix}"),
                format!("✗ 3. no metadata at https://team.cloudflareaccess.com/.well-known/openid-configuration/cdn-cgi/access/sso/oidc/abc123 (404) — {fix}"),
                format!("✓ 3. metadata at {ISSUER}/.well-known/openid-configuration, issuer byte-equal"),
                format!("✗ 3. no code_challenge_methods_supported with S256: 2025-11-25 clients refuse to continue — {fix}"),
                format!("✗ 3. non-standard grant type names: refresh_tokens, authorization_code_with_pkce — {fix}"),
                format!("✗ 3. token_endpoint_auth_methods instead of token_endpoint_auth_methods_supported, without none — {fix}"),
                format!("✗ 3. no registration_endpoint: clients without a pre-registered client id cannot register — {fix}"),
                format!("⚠ 3. no client_id_metadata_document_supported: clients that prefer CIMD fall back to registration — {fix}"),
            ]
        );
        assert!(lines.iter().all(|l| !l.contains(" 5. ")), "no registration, so no authorization request");
    }

    #[test]
    fn where_cimd_is_advertised_an_unfetchable_client_document_must_be_refused() {
        let mut metadata = serde_json::to_value(authorization_server(
            &site(),
            &Capabilities::new(&test_config(), &upstream()),
            &upstream(),
        ))
        .unwrap();
        metadata["client_id_metadata_document_supported"] = json!(true);
        let advertised = answer(Response::json(200, &metadata));
        let faults = |authorize: Answer| {
            vec![
                ("GET", "https://mcp.example.com/.well-known/oauth-authorization-server".into(), advertised.clone()),
                ("GET", "https://mcp.example.com/.well-known/openid-configuration".into(), advertised.clone()),
                ("GET", "https://mcp.example.com/authorize?response_type=code&client_id=https".into(), authorize),
            ]
        };
        let refused = answer(
            Error::invalid_request("the client metadata document could not be fetched").to_response(Surface::Page),
        );
        let (ok, lines) = doctor(&Options { login: false, ..options() }, faults(refused));
        assert!(ok);
        assert!(lines.contains(
            &"✓ 3. client_id_metadata_document_supported: clients may use a URL as client id (CIMD)".to_owned()
        ));
        assert!(lines.contains(&"✓ 4. a client id naming an unreachable metadata document is refused (400)".to_owned()));
        let crashed = answer(Error::Internal { reason: "fetch failed" }.to_response(Surface::Page));
        let (ok, lines) = doctor(&Options { login: false, ..options() }, faults(crashed));
        assert!(!ok);
        assert_eq!(failures(&lines), ["✗ 4. a client id naming an unreachable metadata document → 500 with an HTML page \"Sign-in cannot continue the gateway failed; try again later 500 · server_error\" — fix: upgrade the gateway: a CIMD client id it cannot fetch must be refused with a 4xx"]);
    }

    #[test]
    fn the_gateways_own_consent_form_is_read() {
        let (page, _) = crate::oauth::consent::tests::consent_page(&[]);
        let (action, fields) = consent_form(&page.body).unwrap();
        assert_eq!(action, "/authorize");
        assert_eq!(fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["ticket"]);
        assert_eq!(consent_form("<form action=\"/x\"><button value=\"deny\"></button></form>"), None);
    }

    #[test]
    fn metadata_locations_follow_rfc_8414_and_oidc_for_path_issuers() {
        assert_eq!(
            metadata_locations("https://mcp.example.com"),
            [
                "https://mcp.example.com/.well-known/oauth-authorization-server",
                "https://mcp.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_locations("https://a.example/t/1")[0],
            "https://a.example/.well-known/oauth-authorization-server/t/1"
        );
        assert_eq!(
            metadata_locations("https://a.example/t/1")[2],
            "https://a.example/t/1/.well-known/openid-configuration"
        );
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        assert!(acceptable_url("https://mcp.example.com/mcp", false));
        assert!(acceptable_url("http://127.0.0.1:8787/mcp", false));
        assert!(acceptable_url("http://localhost:8787/mcp", false));
        assert!(!acceptable_url("http://mcp.example.com/mcp", false));
        assert!(!acceptable_url("ftp://mcp.example.com/mcp", false));
        // A private origin's address only says where nothing may answer.
        assert!(acceptable_url("http://mcp.internal:8000/mcp", true));
        assert!(!acceptable_url("ftp://mcp.internal/mcp", true) && !acceptable_url("http:///mcp", true));
    }

    #[test]
    fn a_report_never_holds_the_token() {
        let report = run(&options(), &mut Fake { faults: vec![], clock: 0, randoms: 0 });
        assert!(!serde_json::to_string(&report).unwrap().contains("good"));
    }
}
