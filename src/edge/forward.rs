//! The MCP endpoint's synchronous path: a request started by one call into wasm, with every
//! await done by the entry (src/edge/entry.mjs) between calls. Each await in wasm costs the
//! wasm-bindgen executor a task, a microtask and two closures, and each body chunk a crossing;
//! here the entry reads the body in one call, checks a signature with WebCrypto, asks the
//! rate limiter and the origin, and hands each outcome back. The steps are the awaited path's
//! ([`super::protected`]); a request that needs anything else (a JWKS fetch, a key import, an
//! upload of unknown or too large a size, a refusal whose upload must be drained) goes there.

use super::io::Incoming;
use super::{answer, auth, decide, lists_for, mcp, mcp_challenge, proxy, reads_body, site, Reply, Trace, CONFIG};
use crate::access::token::{bearer, Authenticated};
use crate::config::Config;
use crate::mcp::request::MAX_MCP_BODY_BYTES;
use crate::mcp::request_log::Decision;
use crate::oauth::metadata::Site;
use crate::primitives::error::Error;
use crate::route::{route, Route};
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::{js_sys, web_sys};

/// Starts an MCP request without awaiting: `None` when it must take the awaited path ([`super::fetch`]).
#[wasm_bindgen]
pub fn start_forward(request: web_sys::Request, started: f64) -> Option<Forwarding> {
    let config = CONFIG.with(|c| c.borrow().clone())?;
    let request = Incoming::new(request);
    #[cfg(feature = "panic-probe")]
    if request.path() == "/__panic" && request.query() == "sync" {
        panic!("panic probe in the synchronous start");
    }
    if !matches!(route(request.method(), request.path(), &config.mcp_path, &config.proxy.extra_paths), Ok(Route::Mcp)) {
        return None;
    }
    mcp::has_rate_limiter()?;
    let reads_body = reads_body(&config);
    // A refusal of the framing, or an upload too large or of no declared size, goes the awaited
    // way, which drains what it refuses and counts a chunked body as it arrives.
    if reads_body && (mcp::check_framing(&request).is_err() || !body_within_limit(&request)) {
        return None;
    }
    let site = site(&config, request.origin());
    let now = (started / 1000.0) as u64;
    let authorization = request.mcp_headers().authorization.as_deref();
    let (authenticated, unverified) = match auth::authenticate_now(&config, &site, authorization, now) {
        Ok(Some(known)) => (Some(known), None),
        Ok(None) => (None, Some(auth::PendingSignature::of(&config, bearer(authorization)?, now)?)),
        Err(_) => return None,
    };
    let mut trace = Trace { route: Some(Route::Mcp), log: config.request_log, ..Trace::default() };
    if let Some(authenticated) = &authenticated {
        trace.identify(authenticated);
    }
    let mut forwarding =
        Forwarding { request, trace, started, now, config, site, authenticated, unverified, inspected: None };
    if reads_body && forwarding.request.method() != "POST" {
        // What a GET or DELETE is comes from its headers alone.
        forwarding.inspected = Some(mcp::read(&forwarding.request, None).ok()?);
    }
    Some(forwarding)
}

/// The entry's steps ([`Forwarding::steps`]).
const VERIFY: u32 = 1;
const READ: u32 = 2;
const LIMIT: u32 = 4;

/// Whether the body a setting reads is of a declared size within the limit (or there is none).
fn body_within_limit(request: &Incoming) -> bool {
    request.method() != "POST"
        || request.mcp_headers().content_length.is_some_and(|declared| declared <= MAX_MCP_BODY_BYTES as u64)
}

/// An MCP request on its way, from [`start_forward`]. The entry calls, in order and each only
/// when the one before let the request go on and [`Self::steps`] asks for it: [`Self::verify`]
/// and [`Self::verified`]; [`Self::read`]; the rate limiter with [`Self::rate_limit_keys`]
/// ([`Self::rate_limited`] when one refuses); then [`Self::send`], [`Self::answer`], and
/// [`Self::filtered`] when a JSON list answer must be read first. A method that returns an
/// answer ends the request; the entry frees the object after.
#[wasm_bindgen]
pub struct Forwarding {
    request: Incoming,
    trace: Trace,
    started: f64,
    now: u64,
    config: Rc<Config>,
    site: Rc<Site>,
    authenticated: Option<Authenticated>,
    unverified: Option<auth::PendingSignature>,
    inspected: Option<mcp::Inspected>,
}

#[wasm_bindgen]
impl Forwarding {
    /// What the entry awaits before [`Self::send`], as bits (src/edge/entry.mjs has the same):
    /// [`VERIFY`] a signature to check, [`READ`] a body to read, [`LIMIT`] the rate limiter.
    #[wasm_bindgen(getter)]
    pub fn steps(&self) -> u32 {
        let reads = self.inspected.is_none() && reads_body(&self.config) && self.request.method() == "POST";
        let limits = mcp::has_rate_limiter() == Some(true);
        (self.unverified.is_some() as u32 * VERIFY) | (reads as u32 * READ) | (limits as u32 * LIMIT)
    }

    /// WebCrypto's check of the signature: settles with whether it holds.
    pub fn verify(&self) -> Result<js_sys::Promise, JsValue> {
        let pending = self.unverified.as_ref().ok_or_else(|| JsValue::from_str("nothing to verify"))?;
        pending.verify().map_err(|_| JsValue::from_str("WebCrypto unavailable"))
    }

    /// The token once [`Self::verify`] settled; an answer when it is refused.
    pub fn verified(&mut self, valid: bool) -> Result<Option<web_sys::Response>, JsValue> {
        let Some(pending) = self.unverified.take() else { return Ok(None) };
        let authorization = self.request.mcp_headers().authorization.as_deref();
        match pending.verified(valid, &self.config, &self.site, authorization, self.now) {
            Ok(authenticated) => {
                self.trace.identify(&authenticated);
                self.authenticated = Some(authenticated);
                Ok(None)
            }
            Err(error) => self.refuse(error).map(Some),
        }
    }

    /// What the request is, from its body (`None`: it could not be read), and the policy's
    /// decision on it; an answer when it is refused.
    pub fn read(&mut self, body: Option<Vec<u8>>) -> Result<Option<web_sys::Response>, JsValue> {
        let decided = body
            .ok_or(Error::invalid_request("the body could not be read"))
            .and_then(|body| mcp::read(&self.request, Some(body)))
            .and_then(|inspected| {
                let identity =
                    &self.authenticated.as_ref().ok_or(Error::Internal { reason: "not authenticated" })?.identity;
                let decided = decide(&self.config, identity, &inspected, &mut self.trace);
                self.inspected = Some(inspected);
                decided
            });
        decided.err().map(|error| self.refuse(error)).transpose()
    }

    /// The keys this request counts against with the rate-limit binding (none without it).
    pub fn rate_limit_keys(&self) -> Vec<String> {
        match &self.authenticated {
            Some(authenticated) => mcp::rate_limit_keys(&self.config.mcp, &authenticated.identity, self.mcp_request()),
            None => Vec::new(),
        }
    }

    /// The answer when the rate limiter refused one of the keys.
    pub fn rate_limited(&mut self) -> Result<web_sys::Response, JsValue> {
        let refused = mcp::rate_limited(&self.config.mcp, self.mcp_request());
        self.refuse(refused)
    }

    /// Sends the request on to the origin, with the body the entry read for [`Self::read`]
    /// (`null` when none was read: the request's own streams on). Settles with the origin's
    /// answer as the client gets it, or rejects with why there is none.
    pub fn send(&mut self, body: JsValue) -> Result<js_sys::Promise, JsValue> {
        let authenticated = self.authenticated.as_ref().ok_or_else(|| JsValue::from_str("not authenticated"))?;
        self.trace.decision = Some(Decision::Allow);
        self.trace.origin_binding = self.config.proxy.binding;
        Ok(proxy::send(&self.request, &self.config, authenticated, body))
    }

    /// The client's answer: `outcome` is what [`Self::send`] settled with, `failed` whether it
    /// rejected. `None` when it is a JSON list answer, to be read whole and handed to
    /// [`Self::filtered`].
    pub fn answer(&mut self, outcome: JsValue, failed: bool) -> Result<Option<web_sys::Response>, JsValue> {
        let relayed = proxy::relay_answer(if failed { Err(outcome) } else { Ok(outcome) }, &self.config.proxy);
        let origin = match relayed {
            Ok(origin) => origin,
            Err(error) => return self.refuse(error).map(Some),
        };
        self.trace.origin_status = Some(origin.status());
        let filtered = match self.lists() {
            None => Ok(origin),
            Some(lists) => match mcp::ListAnswer::of(&origin) {
                mcp::ListAnswer::Pass => Ok(origin),
                mcp::ListAnswer::Stream => lists.filter_stream(origin),
                mcp::ListAnswer::Json => return Ok(None),
            },
        };
        self.reply(filtered.map(Reply::Origin)).map(Some)
    }

    /// A JSON list answer (`origin`, the outcome [`Self::answer`] declined), read whole (`body`;
    /// `None`: unreadable or too large), filtered.
    pub fn filtered(&mut self, origin: web_sys::Response, body: Option<Vec<u8>>) -> Result<web_sys::Response, JsValue> {
        let filtered = match (self.lists(), body) {
            (Some(lists), Some(body)) => lists.filter_json(&origin, body),
            _ => Err(Error::unavailable("the origin's list answer could not be read")),
        };
        self.reply(filtered.map(Reply::Origin))
    }
}

impl Forwarding {
    fn mcp_request(&self) -> Option<&crate::mcp::request::McpRequest> {
        self.inspected.as_ref().and_then(|inspected| inspected.request.as_ref())
    }

    fn lists(&self) -> Option<mcp::ListsFor> {
        lists_for(&self.request, &self.config, &self.authenticated.as_ref()?.identity, self.mcp_request())
    }

    fn refuse(&mut self, error: Error) -> Result<web_sys::Response, JsValue> {
        self.trace.challenge = Some(mcp_challenge(&self.config, &self.site));
        self.reply(Err(error))
    }

    /// The answer, and the request's log line.
    fn reply(&mut self, result: Result<Reply, Error>) -> Result<web_sys::Response, JsValue> {
        let trace = std::mem::take(&mut self.trace);
        Ok(answer(&self.request, trace, result, self.started, None)?)
    }
}

/// The name the entry looks the rate limiter up under in `env`.
#[wasm_bindgen]
pub fn rate_limiter_binding() -> String {
    mcp::RATE_LIMITER_BINDING.to_owned()
}

/// The most of a JSON list answer the entry reads for [`Forwarding::filtered`].
#[wasm_bindgen]
pub fn list_answer_limit() -> u32 {
    crate::mcp::list_filter::MAX_LIST_ANSWER_BYTES as u32
}
