//! The MCP-aware part of the MCP endpoint: reading what a request is (headers, and the
//! body when a feature needs it), the Workers Rate Limiting binding, and list answers
//! filtered on their way back. The decisions are the core's ([`crate::mcp::request`],
//! [`crate::mcp::policy`]); none of this runs unless it is configured.

use super::io::{self, Incoming};
use crate::access::token::Identity;
use crate::config::{Config, McpSettings};
use crate::mcp::list_filter::{self, Lists, SseListFilter, MAX_LIST_ANSWER_BYTES};
use crate::mcp::request::{self as mcp_request, Framing, McpRequest, MAX_MCP_BODY_BYTES};
use crate::primitives::error::{Error, JsonRpcFailure, JsonRpcReply};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, Env};

/// The Workers Rate Limiting binding the gateway uses when `wrangler.toml` declares it.
pub const RATE_LIMITER_BINDING: &str = "MCP_RATE_LIMITER";

thread_local! {
    /// Whether the binding exists; bindings do not change within an isolate.
    static HAS_RATE_LIMITER: Cell<Option<bool>> = const { Cell::new(None) };
}

/// A request as the gateway read it: what it is, and the body it consumed (forwarded
/// byte for byte instead of the stream).
pub struct Inspected {
    pub request: Option<McpRequest>,
    pub body: Option<Vec<u8>>,
}

/// Refuses a request the gateway would read otherwise than the origin, before a byte of its
/// body is read ([`mcp_request::check_framing`]); the answer drains the upload.
pub fn check_framing(incoming: &Incoming) -> Result<(), Error> {
    let headers = incoming.mcp_headers();
    let framing = Framing {
        method: incoming.method(),
        content_type: headers.content_type.as_deref(),
        content_encoding: headers.content_encoding.as_deref(),
        has_body: incoming.has_body(),
    };
    mcp_request::check_framing(&framing).inspect_err(|_| incoming.refuse_body())
}

/// What a request is, from its `Mcp-Method`/`Mcp-Name` headers and the body read (a POST's).
pub fn read(incoming: &Incoming, body: Option<Vec<u8>>) -> Result<Inspected, Error> {
    let sent = incoming.mcp_headers();
    let headers = mcp_request::from_headers(sent.mcp_method.as_deref(), sent.mcp_name.as_deref())?;
    let parsed = body.as_deref().map(mcp_request::parse_body).transpose()?;
    Ok(Inspected { request: mcp_request::reconcile(headers, parsed)?, body })
}

/// Reads what a request is, for a setting that needs its body (the awaited path).
pub async fn inspect(incoming: &Incoming) -> Result<Inspected, Error> {
    check_framing(incoming)?;
    let body = match incoming.method() == "POST" {
        true => Some(incoming.body_bytes(MAX_MCP_BODY_BYTES).await?),
        false => None,
    };
    read(incoming, body)
}

/// Looks for the binding once per isolate (bindings do not change within one), when the
/// configuration is read: the synchronous path needs to know before any request awaited.
pub fn look_for_rate_limiter(env: &Env) {
    HAS_RATE_LIMITER.with(|has| has.set(Some(env.rate_limiter(RATE_LIMITER_BINDING).is_ok())));
}

/// Whether the binding is declared (then every MCP request is counted, call by call); `None`
/// before [`look_for_rate_limiter`].
pub fn has_rate_limiter() -> Option<bool> {
    HAS_RATE_LIMITER.with(Cell::get)
}

/// The keys a request counts against with the binding: one per call ([`mcp_request::rate_limit_keys`]).
pub fn rate_limit_keys(settings: &McpSettings, identity: &Identity, request: Option<&McpRequest>) -> Vec<String> {
    match has_rate_limiter() {
        Some(true) => mcp_request::rate_limit_keys(&identity.subject, request, settings.rate_limit_by_tool),
        _ => Vec::new(),
    }
}

/// The refusal of a request over its limit, answered to each of its ids.
pub fn rate_limited(settings: &McpSettings, request: Option<&McpRequest>) -> Error {
    // A request without a body (GET, DELETE) has no id to answer.
    let reply = request.map_or(JsonRpcReply::Single(None), McpRequest::reply);
    Error::JsonRpc {
        failure: JsonRpcFailure::RateLimited { retry_after_seconds: settings.rate_limit_period_seconds },
        reply,
    }
}

/// Counts each call of the request against the identity's (and, if configured, each tool's)
/// limit (the awaited path; the entry does the same on the synchronous one). A limiter that
/// fails lets the request through: it guards capacity, not access.
pub async fn rate_limit(
    env: &Env,
    settings: &McpSettings,
    identity: &Identity,
    request: Option<&McpRequest>,
) -> Result<(), Error> {
    let keys = rate_limit_keys(settings, identity, request);
    let Some(limiter) = keys.first().and_then(|_| env.rate_limiter(RATE_LIMITER_BINDING).ok()) else { return Ok(()) };
    for key in keys {
        if within_limit(&limiter, key).await.is_ok_and(|within| !within) {
            return Err(rate_limited(settings, request));
        }
    }
    Ok(())
}

/// The binding's `limit({ key })`, called directly: worker's wrapper converts the options
/// and the outcome through serde, which is code the Worker does not otherwise need.
async fn within_limit(limiter: &worker::RateLimiter, key: String) -> Result<bool, JsValue> {
    let binding: &JsValue = limiter.as_ref();
    let limit: js_sys::Function = js_sys::Reflect::get(binding, &"limit".into())?.dyn_into()?;
    let outcome = limit.call1(binding, &io::js_object(&[("key", key.into())]))?;
    let outcome = JsFuture::from(js_sys::Promise::resolve(&outcome)).await?;
    // Only an explicit `success: false` refuses: the limiter guards capacity, not access.
    Ok(js_sys::Reflect::get(&outcome, &"success".into())?.as_bool() != Some(false))
}

/// How an answer that may hold lists is filtered: as an SSE stream, whole as JSON, or not at
/// all. An answer the clients could read as either (they look for the media type anywhere in
/// `Content-Type`) is filtered as one; anything else (an error page, an empty `202`) holds no list.
pub enum ListAnswer {
    Stream,
    Json,
    Pass,
}

impl ListAnswer {
    pub fn of(origin: &web_sys::Response) -> Self {
        let content_type = origin.headers().get("content-type").ok().flatten().unwrap_or_default().to_ascii_lowercase();
        match origin.body() {
            None => Self::Pass,
            Some(_) if content_type.contains("text/event-stream") => Self::Stream,
            Some(_) if content_type.contains("json") => Self::Json,
            Some(_) => Self::Pass,
        }
    }
}

/// The origin's answer with the list entries the identity may not use removed (the awaited
/// path): a JSON answer is read and rewritten whole, an SSE answer event by event as it streams.
pub async fn filter_lists(origin: web_sys::Response, lists: ListsFor) -> Result<web_sys::Response, Error> {
    match ListAnswer::of(&origin) {
        ListAnswer::Pass => Ok(origin),
        ListAnswer::Stream => lists.filter_stream(origin),
        ListAnswer::Json => {
            let Some(source) = origin.body() else { return Ok(origin) };
            let body = io::read_capped(&source, MAX_LIST_ANSWER_BYTES)
                .await
                .map_err(|()| Error::unavailable("the origin's list answer could not be read"))?
                .ok_or(Error::unavailable("the origin's list answer is larger than the gateway filters"))?;
            lists.filter_json(&origin, body)
        }
    }
}

/// Which lists an identity's answer may hold, with what filters them.
pub struct ListsFor {
    pub config: Rc<Config>,
    pub identity: Identity,
    pub lists: Lists,
    /// The request's `cf-ray`, for the warning when a stream cannot be filtered.
    pub request_id: Option<String>,
}

#[wasm_bindgen(module = "/src/edge/lists.js")]
extern "C" {
    #[wasm_bindgen(js_name = filteredStream)]
    fn filtered_stream(origin: &web_sys::Response, filter: ListStream) -> web_sys::Response;
}

impl ListsFor {
    /// A JSON answer, read whole (`body`), filtered: a `502` when it cannot be read as JSON.
    pub fn filter_json(self, origin: &web_sys::Response, body: Vec<u8>) -> Result<web_sys::Response, Error> {
        let Some(policy) = self.config.mcp.policy.as_ref() else { return Err(Error::Internal { reason: "no policy" }) };
        let mut body = match body.is_empty() {
            true => body,
            false => list_filter::filter_json(policy, &self.identity, &self.lists, &body)?.unwrap_or(body),
        };
        let filtered = web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut body), origin.unchecked_ref())
            .map_err(|_| Error::unavailable("could not relay the origin's answer"))?;
        let _ = filtered.headers().delete("content-length");
        Ok(filtered)
    }

    /// An SSE answer through the runtime's own stream machinery (src/edge/lists.js): each chunk
    /// is handed to [`ListStream::push`] synchronously, with no copy loop awaiting in wasm.
    pub fn filter_stream(self, origin: web_sys::Response) -> Result<web_sys::Response, Error> {
        let filter = SseListFilter::new(self.identity, self.lists);
        Ok(filtered_stream(&origin, ListStream { filter, config: self.config, request_id: self.request_id }))
    }
}

/// An SSE answer's list filter, driven by the stream that carries the answer.
#[wasm_bindgen]
pub struct ListStream {
    filter: SseListFilter,
    config: Rc<Config>,
    request_id: Option<String>,
}

#[wasm_bindgen]
impl ListStream {
    /// The complete events of the answer so far, rewritten; an error ends the client's stream.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, JsValue> {
        let Some(policy) = self.config.mcp.policy.as_ref() else { return Ok(chunk.to_vec()) };
        let pushed = self.filter.push(policy, chunk);
        pushed.map_err(|error| self.failed(&error))
    }

    /// What is left when the origin's stream ends.
    pub fn finish(mut self) -> Result<Vec<u8>, JsValue> {
        let Some(policy) = self.config.mcp.policy.as_ref() else { return Ok(Vec::new()) };
        let finished = self.filter.finish(policy);
        finished.map_err(|error| self.failed(&error))
    }

    /// An event that cannot be filtered is never passed on: the client's stream breaks off, as
    /// if the origin had failed, and the log says why.
    fn failed(&self, error: &Error) -> JsValue {
        #[derive(serde::Serialize)]
        struct Warning<'a> {
            event: &'static str,
            request_id: Option<&'a str>,
            error: String,
        }
        io::warn(&Warning {
            event: "list_filter_failed",
            request_id: self.request_id.as_deref(),
            error: error.log_reason(),
        });
        JsValue::from_str("list answer unreadable")
    }
}
