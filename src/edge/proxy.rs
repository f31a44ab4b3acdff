//! The streaming proxy to the origin. Bodies are not read (unless an MCP setting
//! needs the request's): the incoming body stream goes to the origin and the origin's
//! body stream (SSE included) comes back as it arrives. Header decisions are the core's ([`crate::proxy`]).

use super::auth::Authenticated;
use super::io::{header_names, Incoming};
use crate::config::Config;
use crate::error::Error;
use crate::proxy::{self, ResponseHeader};
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys};

/// The client's headers as the origin gets them: copied natively, then the dropped
/// ones deleted (only names cross into wasm), then the gateway's own set.
fn origin_headers(request: &Incoming, config: &Config, auth: &Authenticated) -> Result<web_sys::Headers, Error> {
    let headers = web_sys::Headers::new_with_headers(&request.headers()).map_err(|_| Error::unavailable("headers"))?;
    for name in header_names(&headers) {
        if !proxy::forwards_request_header(&name) {
            let _ = headers.delete(&name);
        }
    }
    for (name, value) in proxy::identity_headers(&auth.identity) {
        let _ = headers.set(name, &value);
    }
    if let Some(value) = proxy::origin_authorization(config.proxy.forward_bearer, auth.credential.expose()) {
        let _ = headers.set("authorization", &value);
    }
    if let Some((id, secret)) = &config.proxy.service_token {
        let _ = headers.set("cf-access-client-id", id);
        let _ = headers.set("cf-access-client-secret", secret.expose());
    }
    Ok(headers)
}

/// Sends the request on to the origin and streams its answer back. `read_body` is the
/// request body when the gateway had to read it; otherwise the stream goes on unread.
pub async fn forward(
    request: &Incoming,
    config: &Config,
    auth: &Authenticated,
    read_body: Option<&[u8]>,
) -> Result<web_sys::Response, Error> {
    let url = proxy::origin_url(&config.proxy.origin_url, request.path(), request.raw_query());
    let init = web_sys::RequestInit::new();
    init.set_method(&request.method());
    init.set_headers(&origin_headers(request, config, auth)?.into());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    match read_body {
        Some(bytes) => init.set_body(&js_sys::Uint8Array::from(bytes)),
        None => {
            if let Some(body) = request.body() {
                init.set_body(&body);
            }
        }
    }
    // Aborting only while waiting for the origin's headers: once it answers, a
    // stream may stay open for as long as it likes.
    let controller = web_sys::AbortController::new().map_err(|_| Error::unavailable("abort controller"))?;
    init.set_signal(Some(&controller.signal()));
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let pending = JsFuture::from(scope.fetch_with_str_and_init(&url, &init));
    let timeout = worker::Delay::from(Duration::from_secs(config.proxy.timeout_seconds));
    let answer = match select(pending, timeout).await {
        Either::Left((answer, _)) => answer,
        Either::Right(_) => {
            controller.abort();
            return Err(Error::timeout("origin did not answer in time"));
        }
    };
    let origin: web_sys::Response =
        answer.map_err(|_| Error::unavailable("could not reach the origin"))?.unchecked_into();
    let header = |name: &str| origin.headers().get(name).ok().flatten();
    proxy::check_origin_response(origin.status(), header("content-type").as_deref(), header("location").as_deref())?;

    // `new Response(body, origin)`: status, status text and headers copied natively;
    // the body stream passes through untouched.
    let relayed =
        web_sys::Response::new_with_opt_readable_stream_and_init(origin.body().as_ref(), origin.unchecked_ref())
            .map_err(|_| Error::unavailable("could not relay the origin's answer"))?;
    relay_headers(&relayed.headers(), config.proxy.forward_origin_cookies);
    Ok(relayed)
}

#[wasm_bindgen]
extern "C" {
    /// `Headers` with `getSetCookie()`, each `Set-Cookie` on its own (web_sys lacks it).
    type CookieHeaders;
    #[wasm_bindgen(method, js_name = getSetCookie)]
    fn get_set_cookie(this: &CookieHeaders) -> js_sys::Array;
}

/// Applies the core's rules to the origin's answer headers in one pass over their
/// names: one `delete` per dropped name.
fn relay_headers(headers: &web_sys::Headers, forward_cookies: bool) {
    for name in header_names(headers) {
        match proxy::response_header(&name, forward_cookies) {
            ResponseHeader::Keep => {}
            ResponseHeader::Drop => {
                let _ = headers.delete(&name);
            }
            ResponseHeader::FilterCookies => {
                let cookies = headers.unchecked_ref::<CookieHeaders>().get_set_cookie();
                let _ = headers.delete(&name);
                for cookie in cookies.iter().filter_map(|c| c.as_string()) {
                    if proxy::forwards_origin_cookie(&cookie) {
                        let _ = headers.append(&name, &cookie);
                    }
                }
            }
        }
    }
}
