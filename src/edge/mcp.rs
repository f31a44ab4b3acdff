//! The MCP-aware part of the MCP endpoint: reading what a request is (headers, and the
//! body when a feature needs it), the Workers Rate Limiting binding, and list answers
//! filtered on their way back. The decisions are the core's ([`crate::mcp_request`],
//! [`crate::mcp_policy`]); none of this runs unless it is configured.

use super::io::{self, Incoming};
use crate::access_token::Identity;
use crate::config::{Config, McpSettings};
use crate::error::{Error, JsonRpcFailure, JsonRpcReply};
use crate::http::is_media_type;
use crate::mcp_policy::SseListFilter;
use crate::mcp_request::{self, McpCall, McpRequest, MAX_MCP_BODY_BYTES};
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

pub async fn inspect(incoming: &Incoming, settings: &McpSettings) -> Result<Inspected, Error> {
    let headers =
        mcp_request::from_headers(incoming.header("mcp-method").as_deref(), incoming.header("mcp-name").as_deref())?;
    let body = match settings.reads_body() && incoming.method() == "POST" {
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

fn rate_limiter(env: &Env) -> Option<worker::RateLimiter> {
    if !may_rate_limit() {
        return None;
    }
    let limiter = env.rate_limiter(RATE_LIMITER_BINDING).ok();
    HAS_RATE_LIMITER.with(|has| has.set(Some(limiter.is_some())));
    limiter
}

/// Counts the request against the identity's (and, if configured, each tool's) limit.
/// A limiter that fails lets the request through: it guards capacity, not access.
pub async fn rate_limit(
    env: &Env,
    settings: &McpSettings,
    identity: &Identity,
    incoming: &Incoming,
    request: Option<&McpRequest>,
) -> Result<(), Error> {
    let Some(limiter) = rate_limiter(env) else { return Ok(()) };
    for key in mcp_request::rate_limit_keys(&identity.subject, request, settings.rate_limit_by_tool) {
        if within_limit(&limiter, key).await.is_ok_and(|within| !within) {
            let reply = match request {
                Some(request) => request.reply(),
                None => unread_reply(incoming).await,
            };
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

/// Whom to answer when nothing read the request on the way in: only a refused request
/// pays for reading its body, so that the error carries its id(s) (`null` if unreadable).
async fn unread_reply(incoming: &Incoming) -> JsonRpcReply {
    let body = match incoming.method() == "POST" {
        true => incoming.body_bytes(MAX_MCP_BODY_BYTES).await.ok(),
        false => None,
    };
    body.and_then(|body| mcp_request::parse_body(&body).ok()).map_or(JsonRpcReply::Single(None), |r| r.reply())
}

/// The origin's answer with the list entries the identity may not use removed: a JSON
/// answer is rewritten whole, an SSE answer event by event as it streams.
pub async fn filter_lists(
    origin: web_sys::Response,
    config: Rc<Config>,
    identity: Identity,
    calls: Vec<McpCall>,
    ctx: &Context,
) -> Result<web_sys::Response, Error> {
    let Some(policy) = config.mcp.policy.as_ref() else { return Ok(origin) };
    let content_type = origin.headers().get("content-type").ok().flatten();
    if is_media_type(content_type.as_deref(), "application/json") {
        let buffer = origin.array_buffer().map_err(|_| Error::unavailable("origin body unreadable"))?;
        let buffer = JsFuture::from(buffer).await.map_err(|_| Error::unavailable("origin body unreadable"))?;
        let body = js_sys::Uint8Array::new(&buffer).to_vec();
        let mut body = policy.filter_json(&identity, &calls, &body).unwrap_or(body);
        let filtered = web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut body), origin.unchecked_ref())
            .map_err(|_| Error::unavailable("could not relay the origin's answer"))?;
        let _ = filtered.headers().delete("content-length");
        return Ok(filtered);
    }
    if !is_media_type(content_type.as_deref(), "text/event-stream") {
        return Ok(origin);
    }
    let Some(source) = origin.body() else { return Ok(origin) };
    let pipe = web_sys::TransformStream::new().map_err(|_| Error::unavailable("transform stream"))?;
    let reader = web_sys::ReadableStreamDefaultReader::new(&source).map_err(|_| Error::unavailable("origin stream"))?;
    let writer = pipe.writable().get_writer().map_err(|_| Error::unavailable("transform stream"))?;
    let filtered =
        web_sys::Response::new_with_opt_readable_stream_and_init(Some(&pipe.readable()), origin.unchecked_ref())
            .map_err(|_| Error::unavailable("could not relay the origin's answer"))?;
    let _ = filtered.headers().delete("content-length");
    // The stream outlives this handler: the copy runs under waitUntil.
    ctx.wait_until(async move {
        let mut filter = SseListFilter::new(identity, calls);
        let Some(policy) = config.mcp.policy.as_ref() else { return };
        let write = |bytes: Vec<u8>| {
            let chunk = js_sys::Uint8Array::from(bytes.as_slice());
            JsFuture::from(writer.write_with_chunk(&chunk))
        };
        loop {
            let Ok(next) = JsFuture::from(reader.read()).await else { break };
            let next: web_sys::ReadableStreamReadResult = next.unchecked_into();
            if next.get_done().unwrap_or(true) {
                break;
            }
            let Ok(chunk) = next.get_value().dyn_into::<js_sys::Uint8Array>() else { break };
            let out = filter.push(policy, &chunk.to_vec());
            // A client that went away ends the copy; the origin's stream is cancelled.
            if !out.is_empty() && write(out).await.is_err() {
                let _ = reader.cancel();
                return;
            }
        }
        let rest = filter.finish(policy);
        if !rest.is_empty() {
            let _ = write(rest).await;
        }
        let _ = JsFuture::from(writer.close()).await;
    });
    Ok(filtered)
}
