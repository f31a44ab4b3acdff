//! Small adapters between `web_sys` and the core: request accessors, responses,
//! upstream fetches with a timeout, the clock, entropy and the request log.

use crate::mcp::request_log::RequestLog;
use crate::primitives::error::Error;
use crate::primitives::http::{drains, is_media_type, split_request_url, Response, MAX_BODY_BYTES};
use crate::primitives::seal::Entropy;
use crate::route::Route;
use std::cell::RefCell;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, worker_sys, Context};

/// How long Access gets to answer a back-channel request.
const UPSTREAM_TIMEOUT_MS: u32 = 10_000;

/// The one buffer a refused upload is read into and discarded from ([`discard`]).
const DRAIN_BUFFER_BYTES: u32 = 64 * 1024;

pub struct Clock;

impl Clock {
    pub fn millis() -> f64 {
        js_sys::Date::now()
    }

    pub fn seconds() -> u64 {
        (js_sys::Date::now() / 1000.0) as u64
    }
}

/// `crypto.getRandomValues`.
pub struct WebEntropy;

impl Entropy for WebEntropy {
    fn fill(&mut self, bytes: &mut [u8]) -> Result<(), Error> {
        let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let failed = || Error::Internal { reason: "crypto.getRandomValues failed" };
        scope.crypto().map_err(|_| failed())?.get_random_values_with_u8_array(bytes).map_err(|_| failed())?;
        Ok(())
    }
}

/// The incoming request, read lazily.
pub struct Incoming {
    inner: web_sys::Request,
    url: String,
    method: String,
    /// The headers the MCP endpoint reads, read once in one call ([`Self::mcp_headers`]).
    mcp_headers: std::cell::OnceCell<McpHeaders>,
    /// The rest of an upload a refusal left unread, for the answer to drain ([`to_web_response`]).
    refused: RefCell<Option<web_sys::ReadableStream>>,
}

impl Incoming {
    pub fn new(inner: web_sys::Request) -> Self {
        let (url, method) = (inner.url(), inner.method());
        Self { inner, url, method, mcp_headers: std::cell::OnceCell::new(), refused: RefCell::new(None) }
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn path(&self) -> &str {
        split_request_url(&self.url).1
    }

    pub fn query(&self) -> &str {
        self.raw_query().unwrap_or_default()
    }

    pub fn raw_query(&self) -> Option<&str> {
        split_request_url(&self.url).2
    }

    /// `scheme://host[:port]` as the client addressed us.
    pub fn origin(&self) -> &str {
        split_request_url(&self.url).0
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.inner.headers().get(name).ok().flatten()
    }

    /// The headers the MCP endpoint reads of every request, crossing from JavaScript once.
    pub fn mcp_headers(&self) -> &McpHeaders {
        self.mcp_headers.get_or_init(|| {
            let joined = mcp_headers(&self.inner);
            let mut values = facts(&joined).map(|value| value.map(str::to_owned));
            let mut next = || values.next().flatten();
            McpHeaders {
                authorization: next(),
                content_type: next(),
                content_encoding: next(),
                content_length: next().and_then(|length| length.parse().ok()),
                mcp_method: next(),
                mcp_name: next(),
                body_stream: next().is_some(),
            }
        })
    }

    pub fn raw(&self) -> &web_sys::Request {
        &self.inner
    }

    /// The rest of the upload a refusal left unread, if any: the answer drains it.
    pub fn take_refused_upload(&self) -> Option<web_sys::ReadableStream> {
        self.refused.borrow_mut().take()
    }

    /// Keeps the rest of a refused upload for the answer to drain, or cancels it when it
    /// declares more than a drain reads ([`drains`]).
    fn refuse_upload(&self, stream: web_sys::ReadableStream) {
        if self.declared_length().is_none_or(drains) {
            *self.refused.borrow_mut() = Some(stream);
        } else {
            let _ = stream.cancel();
        }
    }

    /// Whether the request carries a body: chunks, or a declared length other than zero.
    pub fn has_body(&self) -> bool {
        let headers = self.mcp_headers();
        headers.body_stream && headers.content_length != Some(0)
    }

    /// Refuses the body unread: the answer drains it ([`Self::take_refused_upload`]).
    pub fn refuse_body(&self) {
        if let Some(stream) = self.inner.body() {
            self.refuse_upload(stream);
        }
    }

    fn declared_length(&self) -> Option<u64> {
        self.mcp_headers().content_length
    }

    /// The body as text, if its media type is `expected` (checked before anything is
    /// read), refused past [`MAX_BODY_BYTES`].
    pub async fn body_text(&self, expected: &'static str) -> Result<String, Error> {
        if !is_media_type(self.header("content-type").as_deref(), expected) {
            self.refuse_body();
            return Err(Error::UnsupportedMediaType { expected });
        }
        let bytes = self.body_bytes(MAX_BODY_BYTES).await?;
        String::from_utf8(bytes).map_err(|_| Error::invalid_request("the body is not valid UTF-8"))
    }

    /// The body's bytes, read with a running count and refused past `limit` (a chunked
    /// body declares no length); the answer drains the rest.
    pub async fn body_bytes(&self, limit: usize) -> Result<Vec<u8>, Error> {
        let Some(stream) = self.inner.body() else { return Ok(Vec::new()) };
        if self.declared_length().is_some_and(|n| n > limit as u64) {
            self.refuse_upload(stream);
            return Err(Error::PayloadTooLarge);
        }
        match read_capped(&stream, limit).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => {
                self.refuse_upload(stream);
                Err(Error::PayloadTooLarge)
            }
            Err(()) => Err(Error::invalid_request("the body could not be read")),
        }
    }
}

/// Reads a body stream with a running count, stopping past `limit` (`Ok(None)`, the rest
/// unread and the stream unlocked: the caller cancels or drains it): a chunked body
/// declares no length. `Err` when the stream fails (or its signal aborts it).
pub async fn read_capped(stream: &web_sys::ReadableStream, limit: usize) -> Result<Option<Vec<u8>>, ()> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    loop {
        let chunk: web_sys::ReadableStreamReadResult =
            JsFuture::from(reader.read()).await.map_err(|_| ())?.unchecked_into();
        if chunk.get_done().unwrap_or(true) {
            return Ok(Some(bytes));
        }
        let chunk: js_sys::Uint8Array = chunk.get_value().dyn_into().map_err(|_| ())?;
        let (start, length) = (bytes.len(), chunk.length() as usize);
        if start + length > limit {
            reader.release_lock();
            return Ok(None);
        }
        bytes.resize(start + length, 0);
        chunk.copy_to(&mut bytes[start..]);
    }
}

/// A plain JavaScript object with these members.
pub fn js_object(pairs: &[(&str, wasm_bindgen::JsValue)]) -> js_sys::Object {
    let object = js_sys::Object::new();
    for (name, value) in pairs {
        let _ = js_sys::Reflect::set(&object, &wasm_bindgen::JsValue::from_str(name), value);
    }
    object
}

/// The core's answer as a `web_sys::Response`; with `cors`, the CORS headers are added
/// unless the answer has its own (a preflight's). With `refused`, the rest of an upload
/// the answer refuses, the answer lingers (see [`lingering`]).
pub fn to_web_response(
    response: &Response,
    cors: bool,
    refused: Option<(web_sys::ReadableStream, &Context)>,
) -> worker::Result<web_sys::Response> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in &response.headers {
        headers.append(name, value)?;
    }
    if cors && !response.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("access-control-allow-origin")) {
        headers.set("access-control-allow-origin", "*")?;
        headers.set("access-control-expose-headers", crate::primitives::http::cors::EXPOSED_HEADERS)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(response.status);
    init.set_headers(&headers);
    if let Some((upload, ctx)) = refused {
        return lingering(response.body.as_bytes(), &init, upload, ctx);
    }
    let body = (!response.body.is_empty()).then_some(response.body.as_str());
    Ok(web_sys::Response::new_with_opt_str_and_init(body, &init)?)
}

/// An answer that refuses an upload part-way, and lingers (as nginx's lingering close
/// does): its bytes go out at once under a fixed Content-Length, so the client has all of
/// it, but it ends only once the rest of the upload has been read and discarded (at most
/// [`crate::primitives::http::MAX_DRAINED_BYTES`]). Cancelled instead, the upload was still arriving
/// when the connection closed, and the reset that followed could cut the answer short.
/// The request body cannot be read once the answer has ended, hence the drain before it.
fn lingering(
    body: &[u8],
    init: &web_sys::ResponseInit,
    upload: web_sys::ReadableStream,
    ctx: &Context,
) -> worker::Result<web_sys::Response> {
    let pipe = worker_sys::FixedLengthStream::new(body.len() as u32)?;
    let writer = pipe.writable().get_writer()?;
    let written = writer.write_with_chunk(&js_sys::Uint8Array::from(body));
    let response = web_sys::Response::new_with_opt_readable_stream_and_init(Some(&pipe.readable()), init)?;
    ctx.wait_until(async move {
        discard(upload).await;
        let _ = JsFuture::from(written).await;
        let _ = JsFuture::from(writer.close()).await;
    });
    Ok(response)
}

/// Reads `upload` to its end into one reused buffer, keeping nothing; cancels it once it
/// has sent more than a drain reads ([`drains`]). A client that goes away ends it too; one
/// that stalls holds a pending read and no CPU, as any slow upload does.
async fn discard(upload: web_sys::ReadableStream) {
    let Ok(reader) = web_sys::ReadableStreamByobReader::new(&upload) else {
        let _ = upload.cancel();
        return;
    };
    let (mut buffer, mut discarded) = (js_sys::ArrayBuffer::new(DRAIN_BUFFER_BYTES), 0);
    loop {
        let view = js_sys::Uint8Array::new(&buffer);
        let Ok(read) = JsFuture::from(reader.read_with_array_buffer_view(&view)).await else { return };
        let read: web_sys::ReadableStreamReadResult = read.unchecked_into();
        if read.get_done().unwrap_or(true) {
            return;
        }
        let Ok(chunk) = read.get_value().dyn_into::<js_sys::Uint8Array>() else { return };
        discarded += u64::from(chunk.byte_length());
        if !drains(discarded) {
            let _ = reader.cancel();
            return;
        }
        // The read hands the buffer back (transferred): the next read reuses it.
        buffer = chunk.buffer();
    }
}

/// Why a fetch got no answer.
pub enum Unanswered {
    Timeout,
    Unreachable,
}

/// A fetch that follows no redirect (a 3xx is the answer) and gives up after `timeout_ms`:
/// the signal also cuts the body short while it is read, so the whole answer must fit in time.
pub struct TimedFetch {
    pub response: web_sys::Response,
    signal: web_sys::AbortSignal,
}

impl TimedFetch {
    pub async fn send(url: &str, init: &web_sys::RequestInit, timeout_ms: u32) -> Result<Self, Unanswered> {
        let signal = web_sys::AbortSignal::timeout_with_u32(timeout_ms);
        init.set_signal(Some(&signal));
        init.set_redirect(web_sys::RequestRedirect::Manual);
        let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        match JsFuture::from(scope.fetch_with_str_and_init(url, init)).await {
            Ok(response) => Ok(Self { response: response.unchecked_into(), signal }),
            Err(_) if signal.aborted() => Err(Unanswered::Timeout),
            Err(_) => Err(Unanswered::Unreachable),
        }
    }

    /// Why reading the body failed.
    pub fn body_failure(&self) -> Unanswered {
        if self.signal.aborted() {
            Unanswered::Timeout
        } else {
            Unanswered::Unreachable
        }
    }
}

/// Sends a request to Access with a timeout; returns status and body.
async fn send(url: &str, init: &web_sys::RequestInit) -> Result<(u16, String), Error> {
    let sent = TimedFetch::send(url, init, UPSTREAM_TIMEOUT_MS).await.map_err(|unanswered| match unanswered {
        Unanswered::Timeout => Error::timeout("Access did not answer in time"),
        Unanswered::Unreachable => Error::unavailable("could not reach Access"),
    })?;
    let status = sent.response.status();
    let text = sent.response.text().map_err(|_| Error::unavailable("Access body unreadable"))?;
    let body = match JsFuture::from(text).await {
        Ok(value) => value.as_string().unwrap_or_default(),
        Err(_) => match sent.body_failure() {
            Unanswered::Timeout => return Err(Error::timeout("Access body did not arrive in time")),
            Unanswered::Unreachable => return Err(Error::unavailable("Access body unreadable")),
        },
    };
    Ok((status, body))
}

pub async fn get(url: &str) -> Result<(u16, String), Error> {
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    send(url, &init).await
}

pub async fn post_form(url: &str, body: &str) -> Result<(u16, String), Error> {
    let headers = web_sys::Headers::new().map_err(|_| Error::unavailable("headers"))?;
    let _ = headers.set("content-type", crate::oauth::token::FORM);
    let _ = headers.set("accept", "application/json");
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&wasm_bindgen::JsValue::from_str(body));
    send(url, &init).await
}

#[wasm_bindgen]
extern "C" {
    /// `console.log` of one string: the line crosses into JavaScript once, unformatted.
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(line: &str);
}

#[wasm_bindgen(module = "/src/edge/io.js")]
extern "C" {
    #[wasm_bindgen(js_name = logFacts)]
    fn log_facts(request: &web_sys::Request, response: &web_sys::Response) -> String;
    #[wasm_bindgen(js_name = mcpHeaders)]
    fn mcp_headers(request: &web_sys::Request) -> String;
}

/// The request headers the MCP endpoint reads ([`Incoming::mcp_headers`]).
pub struct McpHeaders {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_length: Option<u64>,
    pub mcp_method: Option<String>,
    pub mcp_name: Option<String>,
    /// Whether the request has a body stream (its length may be zero).
    pub body_stream: bool,
}

/// The values a JavaScript helper read in one call, one per line (header values never hold a
/// line break): `None` for an empty line, an absent header.
pub fn facts(joined: &str) -> impl Iterator<Item = Option<&str>> {
    joined.split('\n').map(|fact| Some(fact).filter(|f| !f.is_empty()))
}

/// A warning logged beside the request lines (`console.warn`): one JSON object, its members
/// in the order `line` has them. Fixed reasons only, never input.
pub fn warn(line: &impl serde::Serialize) {
    worker::console_warn!("{}", serde_json::to_string(line).unwrap_or_default());
}

/// What most warnings say: what happened, and why.
#[derive(serde::Serialize)]
pub struct Event<'a> {
    pub event: &'static str,
    pub error: &'a str,
}

/// One JSON line per request ([`RequestLog`]), or per failed one (`REQUEST_LOG=errors`):
/// never the query, headers or body, which carry codes, tokens, secrets and cookies.
pub fn log_request(
    request: &Incoming,
    trace: &super::Trace,
    response: &web_sys::Response,
    started: f64,
    error: Option<String>,
) {
    let status = response.status();
    if !trace.log.logs(status, error.is_some()) {
        return;
    }
    let joined = log_facts(request.raw(), response);
    let mut facts = facts(&joined);
    let mut next = || facts.next().flatten();
    let (request_id, header_method) = (next(), next());
    let (declared_in, declared_out) = (next().and_then(|v| v.parse().ok()), next().and_then(|v| v.parse().ok()));
    let line = RequestLog {
        time: started as u64,
        request_id,
        method: request.method(),
        route: trace.route.map(Route::name).unwrap_or("none"),
        status,
        duration_ms: Clock::millis() - started,
        subject: trace.subject.as_deref(),
        email: trace.email.as_deref(),
        client: trace.client.as_deref(),
        mcp_method: trace.mcp_call.as_ref().map(|c| c.method.as_str()).or(header_method),
        mcp_name: trace.mcp_call.as_ref().and_then(|c| c.name.as_deref()),
        decision: trace.decision,
        origin_status: trace.origin_status,
        origin_binding: trace.origin_binding,
        bytes_in: trace.bytes_in.or(declared_in),
        bytes_out: declared_out,
        error,
    };
    console_log(&line.line());
}
