//! The Worker: the only code that touches `worker`. It reads the request, calls the
//! sans-IO core, performs the I/O the core asks for, and logs one line per request.

mod auth;
mod client_metadata;
mod forward;
mod io;
mod mcp;
mod proxy;
mod token_endpoint;
mod upstream;

use crate::access::token::{Authenticated, Identity};
use crate::config::{Config, OriginBinding, ORIGIN_BINDING};
use crate::mcp::list_filter::Lists;
use crate::mcp::policy::Effect;
use crate::mcp::request::{McpCall, McpRequest};
use crate::mcp::request_log::{Decision, LogScope};
use crate::oauth::capabilities::Capabilities;
use crate::oauth::metadata::{self, Site};
use crate::oauth::{authorize, consent, registration, token};
use crate::primitives::error::{Error, JsonRpcFailure, Surface};
use crate::primitives::http::{cors, Response};
use crate::route::{route, Route};
use io::{Clock, Incoming, WebEntropy};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use worker::{event, js_sys, web_sys, Context, Env};

thread_local! {
    /// The parsed configuration, kept for the isolate's life (env does not change within it).
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
    /// The last request's site: the same hostname serves request after request.
    static SITE: RefCell<Option<Rc<Site>>> = const { RefCell::new(None) };
}

/// The site a request came to, built only when the hostname differs from the last request's.
fn site(config: &Config, request_origin: &str) -> Rc<Site> {
    let issuer = config.public_origin.as_deref().unwrap_or(request_origin);
    SITE.with(|cached| {
        let mut cached = cached.borrow_mut();
        match cached.as_ref() {
            Some(site) if site.issuer == issuer => site.clone(),
            _ => cached.insert(Rc::new(Site::new(config, request_origin))).clone(),
        }
    })
}

fn config(env: &Env) -> Result<Rc<Config>, Error> {
    if let Some(config) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(config);
    }
    // [vars] and secrets are both plain strings on `env`: read directly, where `Env::var`
    // and `Env::secret` would format an error message for every absent setting, twice.
    let lookup = |name: &str| js_sys::Reflect::get(env, &JsValue::from_str(name)).ok().and_then(|v| v.as_string());
    let binding = js_sys::Reflect::get(env, &JsValue::from_str(ORIGIN_BINDING)).unwrap_or(JsValue::UNDEFINED);
    let declared = match binding.is_undefined() {
        true => OriginBinding::Absent,
        false if proxy::is_fetcher(&binding) => OriginBinding::Fetcher,
        false => OriginBinding::NotFetcher,
    };
    let config = Rc::new(Config::from_lookup(lookup, declared)?);
    mcp::look_for_rate_limiter(env);
    // proxy.js keeps the binding for the isolate's life, so that no request (the synchronous
    // start included) carries it across: the default path pays nothing for it.
    proxy::use_origin_binding(config.proxy.binding.map(|_| &binding));
    CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
    Ok(config)
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// What a request produced: the core's answer, or the origin's streamed one.
enum Reply {
    Core(Response),
    Origin(web_sys::Response),
}

/// What is known about a request for answering errors and for the log.
#[derive(Default)]
struct Trace {
    route: Option<Route>,
    /// For the MCP endpoint, whose errors are RFC 6750 challenges.
    challenge: Option<(String, String)>,
    /// Who the request spoke for, as far as the log needs it.
    subject: Option<String>,
    email: Option<String>,
    /// The client the token was issued to, when the token says.
    client: Option<String>,
    /// The MCP request's first call, when the gateway read it.
    mcp_call: Option<McpCall>,
    decision: Option<Decision>,
    origin_status: Option<u16>,
    /// The binding the request went to the origin through, once it was sent.
    origin_binding: Option<&'static str>,
    bytes_in: Option<u64>,
    /// `REQUEST_LOG`; every request is logged until the configuration is known.
    log: LogScope,
}

impl Trace {
    fn identify(&mut self, authenticated: &Authenticated) {
        self.subject = Some(authenticated.identity.subject.clone());
        self.email = authenticated.identity.email.clone();
        self.client = authenticated.client.clone();
    }

    fn surface(&self) -> Surface<'_> {
        match (&self.challenge, self.route) {
            (Some((resource_metadata, scope)), _) => Surface::Resource { resource_metadata, scope },
            (None, Some(route)) => route.error_surface(),
            (None, None) => Surface::Json,
        }
    }
}

/// Takes and returns the raw `web_sys` objects: converting to `worker::Request` reads
/// `request.cf` and copies state on every request, which the gateway never needs.
#[event(fetch)]
async fn fetch(request: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    let started = Clock::millis();
    let request = Incoming::new(request);
    #[cfg(feature = "panic-probe")]
    panic_probe(&request).await;
    let mut trace = Trace::default();
    let result = handle(&request, &env, &ctx, &mut trace, (started / 1000.0) as u64).await;
    answer(&request, trace, result, started, Some(&ctx))
}

/// The client's answer to what a request produced, and the request's log line. `ctx`
/// drains the rest of an upload the answer refuses (only [`fetch`] reads bodies).
fn answer(
    request: &Incoming,
    mut trace: Trace,
    result: Result<Reply, Error>,
    started: f64,
    ctx: Option<&Context>,
) -> worker::Result<web_sys::Response> {
    if let Some(refused) = result.as_ref().err().and_then(Decision::refusal) {
        trace.decision = Some(refused);
    }
    let log_error = result.as_ref().err().map(Error::log_reason);
    let cors = trace.route.is_some_and(Route::cors);
    let refused = ctx.and_then(|ctx| Some((request.take_refused_upload()?, ctx)));
    let response = match result {
        // The proxy added the CORS headers already (the MCP endpoint's answers carry them).
        Ok(Reply::Origin(response)) => response,
        Ok(Reply::Core(response)) => io::to_web_response(&response, cors, refused)?,
        Err(error) => io::to_web_response(&error.to_response(trace.surface()), cors, refused)?,
    };
    io::log_request(request, &trace, &response, started, log_error);
    Ok(response)
}

/// The MCP endpoint's RFC 6750 challenge parameters: only failures need these strings.
fn mcp_challenge(config: &Config, site: &Site) -> (String, String) {
    (site.resource_metadata_url(), metadata::challenge_scope(&config.scopes))
}

/// Test builds only: the entry must answer a panic with a clean 500 and replace the instance,
/// whether it happens in the first poll or after an await (`?later`); `?sync` panics in
/// [`start_forward`] instead, once the configuration is parsed.
#[cfg(feature = "panic-probe")]
async fn panic_probe(request: &Incoming) {
    if request.path() == "/__panic" {
        if request.query() == "later" {
            let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&wasm_bindgen::JsValue::NULL)).await;
        }
        panic!("panic probe");
    }
}

/// `now`: the request's arrival, in seconds.
async fn handle(request: &Incoming, env: &Env, ctx: &Context, trace: &mut Trace, now: u64) -> Result<Reply, Error> {
    let config = config(env)?;
    trace.log = config.request_log;
    let route = route(request.method(), request.path(), &config.mcp_path, &config.proxy.extra_paths)?;
    trace.route = Some(route);
    let site = site(&config, request.origin());
    if route == Route::Mcp {
        let result = protected(request, config.clone(), env, ctx, &site, trace, now).await;
        if result.is_err() {
            trace.challenge = Some(mcp_challenge(&config, &site));
        }
        return result;
    }
    dispatch(route, request, &config, ctx, &site).await.map(Reply::Core)
}

/// The MCP endpoint: authenticate, decide what the MCP settings ask for, then stream
/// to the origin (and back, with lists filtered under a policy). The awaited path; the
/// synchronous one ([`Forwarding`]) takes the same steps with the entry awaiting for it.
async fn protected(
    request: &Incoming,
    config: Rc<Config>,
    env: &Env,
    ctx: &Context,
    site: &Site,
    trace: &mut Trace,
    now: u64,
) -> Result<Reply, Error> {
    let authorization = request.mcp_headers().authorization.as_deref();
    let authenticated = auth::authenticate(&config, ctx, site, authorization, now).await?;
    trace.identify(&authenticated);
    let inspected = match reads_body(&config) {
        true => mcp::inspect(request).await?,
        false => mcp::Inspected { request: None, body: None },
    };
    decide(&config, &authenticated.identity, &inspected, trace)?;
    mcp::rate_limit(env, &config.mcp, &authenticated.identity, inspected.request.as_ref()).await?;
    trace.decision = Some(Decision::Allow);
    trace.origin_binding = config.proxy.binding;
    let origin = proxy::forward(request, &config, &authenticated, inspected.body.as_deref()).await?;
    trace.origin_status = Some(origin.status());
    match lists_for(request, &config, &authenticated.identity, inspected.request.as_ref()) {
        Some(lists) => mcp::filter_lists(origin, lists).await.map(Reply::Origin),
        None => Ok(Reply::Origin(origin)),
    }
}

/// Whether the MCP settings read requests: a policy, the audit, counting by tool, or the
/// rate limiter (which counts calls, each member of a batch, so it reads the body too).
fn reads_body(config: &Config) -> bool {
    config.mcp.reads_body() || mcp::has_rate_limiter() == Some(true)
}

/// The policy's decision on what was read, and what the log line says of it.
fn decide(config: &Config, identity: &Identity, inspected: &mcp::Inspected, trace: &mut Trace) -> Result<(), Error> {
    let mcp_request = inspected.request.as_ref();
    trace.mcp_call = mcp_request.and_then(|r| r.calls.first().cloned());
    trace.bytes_in = inspected.body.as_ref().map(|b| b.len() as u64);
    match (&config.mcp.policy, mcp_request) {
        (Some(policy), Some(mcp_request)) if policy.decide_calls(identity, &mcp_request.calls) == Effect::Deny => {
            Err(Error::JsonRpc { failure: JsonRpcFailure::Denied, reply: mcp_request.reply() })
        }
        _ => Ok(()),
    }
}

/// The lists this answer may hold: those the POST asked for, or on a GET stream (which may
/// replay earlier answers) any result that holds one; `None` without a policy (asked of every
/// answer, so nothing is copied before that is known).
fn lists_for(
    request: &Incoming,
    config: &Rc<Config>,
    identity: &Identity,
    mcp_request: Option<&McpRequest>,
) -> Option<mcp::ListsFor> {
    config.mcp.policy.as_ref()?;
    let lists = match (request.method(), mcp_request) {
        ("GET", _) => Lists::AnyResult,
        (_, Some(mcp_request)) => Lists::asked_by(mcp_request)?,
        (_, None) => return None,
    };
    Some(mcp::ListsFor {
        config: config.clone(),
        identity: identity.clone(),
        lists,
        request_id: request.header("cf-ray"),
    })
}

async fn dispatch(
    route: Route,
    request: &Incoming,
    config: &Rc<Config>,
    ctx: &Context,
    site: &Rc<Site>,
) -> Result<Response, Error> {
    let now = Clock::seconds();
    let mut entropy = WebEntropy;
    match route {
        Route::Preflight { allow } => return Ok(cors::preflight(allow)),
        Route::ProtectedResourceMetadata => {
            let doc = metadata::protected_resource(site, &config.scopes, config.server_name.as_deref());
            return Ok(Response::json(200, &doc));
        }
        Route::Callback => return authorize::Relay { config, site, now }.callback(request.query(), &mut entropy),
        _ => {}
    }
    // The endpoints with a body: its media type is checked before it is read.
    let body = match route.body_media_type() {
        Some(expected) => request.body_text(expected).await?,
        None => String::new(),
    };
    let upstream = upstream::metadata(config, now).await?;
    let caps = Capabilities::new(config, &upstream);
    let relay = authorize::Relay { config, site, now };
    let cookies = request.header("cookie");
    match route {
        Route::AuthorizationServerMetadata => {
            Ok(Response::json(200, &metadata::authorization_server(site, &caps, &upstream)))
        }
        Route::Register => {
            let info = registration::register(&body, &config.access.client_id, &config.redirect_policy, &caps, now)?;
            Ok(Response::json(201, &info))
        }
        Route::Authorize => {
            let document = match relay.document_url(request.query(), &caps) {
                Some(url) => {
                    let request_id = request.header("cf-ray");
                    Some(client_metadata::document(&url, &config.client_metadata, now, request_id.as_deref()).await)
                }
                None => None,
            };
            relay.authorize(request.query(), cookies.as_deref(), &caps, &upstream, document.as_ref(), &mut entropy)
        }
        Route::ConsentDecision => {
            let (fetch_site, origin) = (request.header("sec-fetch-site"), request.header("origin"));
            let submission = consent::Submission {
                body: &body,
                cookies: cookies.as_deref(),
                fetch_site: fetch_site.as_deref(),
                origin: origin.as_deref(),
            };
            relay.decide(&submission, &upstream, &mut entropy)
        }
        Route::Token => {
            let authorization = request.header("authorization");
            let client_request = token::ClientTokenRequest { authorization: authorization.as_deref(), body: &body };
            token_endpoint::answer(config, ctx, site, &caps, &upstream, &client_request, now).await
        }
        Route::Mcp | Route::Preflight { .. } | Route::ProtectedResourceMetadata | Route::Callback => {
            Err(Error::NotFound)
        }
    }
}
