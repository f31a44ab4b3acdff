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
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, Context, Env};

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

/// Reads what a request is, for a setting that needs its body: the framing is checked
/// first ([`mcp_request::check_framing`]), so a body the gateway would read otherwise than
/// the origin costs nothing and never reaches it.
pub async fn inspect(incoming: &Incoming) -> Result<Inspected, Error> {
    let (content_type, content_encoding) = (incoming.header("content-type"), incoming.header("content-encoding"));
    let framing = Framing {
        method: incoming.method(),
        content_type: content_type.as_deref(),
        content_encoding: content_encoding.as_deref(),
        has_body: incoming.has_body(),
    };
    if let Err(refused) = mcp_request::check_framing(&framing) {
        incoming.refuse_body();
        return Err(refused);
    }
    let headers =
        mcp_request::from_headers(incoming.header("mcp-method").as_deref(), incoming.header("mcp-name").as_deref())?;
    let body = match incoming.method() == "POST" {
        true => Some(incoming.body_bytes(MAX_MCP_BODY_BYTES).await?),
        false => None,
    };
    let parsed = body.as_deref().map(mcp_request::parse_body).transpose()?;
    Ok(Inspected { request: mcp_request::reconcile(headers, parsed)?, body })
}

/// Whether a request may have to pass the rate-limit binding: unknown until a request
/// has looked for the binding.
pub fn may_rate_limit() -> bool {
    HAS_RATE_LIMITER.with(Cell::get) != Some(false)
}

/// Whether the binding is declared (then every MCP request is counted, call by call).
pub fn has_rate_limiter(env: &Env) -> bool {
    rate_limiter(env).is_some()
}

fn rate_limiter(env: &Env) -> Option<worker::RateLimiter> {
    if !may_rate_limit() {
        return None;
    }
    let limiter = env.rate_limiter(RATE_LIMITER_BINDING).ok();
    HAS_RATE_LIMITER.with(|has| has.set(Some(limiter.is_some())));
    limiter
}

/// Counts each call of the request against the identity's (and, if configured, each tool's) limit.
/// A limiter that fails lets the request through: it guards capacity, not access.
pub async fn rate_limit(
    env: &Env,
    settings: &McpSettings,
    identity: &Identity,
    request: Option<&McpRequest>,
) -> Result<(), Error> {
    let Some(limiter) = rate_limiter(env) else { return Ok(()) };
    for key in mcp_request::rate_limit_keys(&identity.subject, request, settings.rate_limit_by_tool) {
        if within_limit(&limiter, key).await.is_ok_and(|within| !within) {
            // A request without a body (GET, DELETE) has no id to answer.
            let reply = request.map_or(JsonRpcReply::Single(None), McpRequest::reply);
            let failure = JsonRpcFailure::RateLimited { retry_after_seconds: settings.rate_limit_period_seconds };
            return Err(Error::JsonRpc { failure, reply });
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

/// The origin's answer with the list entries the identity may not use removed: a JSON
/// answer is rewritten whole, an SSE answer event by event as it streams. An answer the
/// clients could read as either (they look for the media type anywhere in `Content-Type`)
/// is filtered as one; anything else (an error page, an empty `202`) holds no list.
pub async fn filter_lists(
    origin: web_sys::Response,
    config: Rc<Config>,
    identity: Identity,
    lists: Lists,
    ctx: &Context,
    request_id: Option<String>,
) -> Result<web_sys::Response, Error> {
    let Some(policy) = config.mcp.policy.as_ref() else { return Ok(origin) };
    let content_type = origin.headers().get("content-type").ok().flatten().unwrap_or_default().to_ascii_lowercase();
    let Some(source) = origin.body() else { return Ok(origin) };
    if !content_type.contains("text/event-stream") {
        if !content_type.contains("json") {
            return Ok(origin);
        }
        let body = io::read_capped(&source, MAX_LIST_ANSWER_BYTES)
            .await
            .map_err(|()| Error::unavailable("the origin's list answer could not be read"))?
            .ok_or(Error::unavailable("the origin's list answer is larger than the gateway filters"))?;
        let mut body = match body.is_empty() {
            true => body,
            false => list_filter::filter_json(policy, &identity, &lists, &body)?.unwrap_or(body),
        };
        let filtered = web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut body), origin.unchecked_ref())
            .map_err(|_| Error::unavailable("could not relay the origin's answer"))?;
        let _ = filtered.headers().delete("content-length");
        return Ok(filtered);
    }
    let pipe = web_sys::TransformStream::new().map_err(|_| Error::unavailable("transform stream"))?;
    let reader = web_sys::ReadableStreamDefaultReader::new(&source).map_err(|_| Error::unavailable("origin stream"))?;
    let writer = pipe.writable().get_writer().map_err(|_| Error::unavailable("transform stream"))?;
    let filtered =
        web_sys::Response::new_with_opt_readable_stream_and_init(Some(&pipe.readable()), origin.unchecked_ref())
            .map_err(|_| Error::unavailable("could not relay the origin's answer"))?;
    let _ = filtered.headers().delete("content-length");
    // The stream outlives this handler: the copy runs under waitUntil.
    ctx.wait_until(async move {
        let mut filter = SseListFilter::new(identity, lists);
        let Some(policy) = config.mcp.policy.as_ref() else { return };
        let write = |bytes: Vec<u8>| {
            let chunk = js_sys::Uint8Array::from(bytes.as_slice());
            JsFuture::from(writer.write_with_chunk(&chunk))
        };
        let ended = loop {
            let Ok(next) = JsFuture::from(reader.read()).await else { break Ok(Vec::new()) };
            let next: web_sys::ReadableStreamReadResult = next.unchecked_into();
            if next.get_done().unwrap_or(true) {
                break filter.finish(policy);
            }
            let Ok(chunk) = next.get_value().dyn_into::<js_sys::Uint8Array>() else { break Ok(Vec::new()) };
            let out = match filter.push(policy, &chunk.to_vec()) {
                Ok(out) => out,
                Err(error) => break Err(error),
            };
            // A client that went away ends the copy; the origin's stream is cancelled.
            if !out.is_empty() && write(out).await.is_err() {
                let _ = reader.cancel();
                return;
            }
        };
        match ended {
            Ok(rest) => {
                if !rest.is_empty() {
                    let _ = write(rest).await;
                }
                let _ = JsFuture::from(writer.close()).await;
            }
            // An event that cannot be filtered is never passed on: the client's stream
            // breaks off, as if the origin had failed, and the log says why.
            Err(error) => {
                let _ = reader.cancel();
                let _ = JsFuture::from(writer.abort_with_reason(&JsValue::from_str("list answer unreadable"))).await;
                #[derive(serde::Serialize)]
                struct Warning {
                    event: &'static str,
                    request_id: Option<String>,
                    error: String,
                }
                let line = Warning { event: "list_filter_failed", request_id, error: error.log_reason() };
                io::warn(&line);
            }
        }
    });
    Ok(filtered)
}
