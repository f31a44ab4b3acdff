//! The streaming proxy to the origin. Bodies are not read (unless an MCP setting
//! needs the request's): the incoming body stream goes to the origin and the origin's
//! body stream (SSE included) comes back as it arrives. Header decisions are the core's ([`crate::mcp::proxy`]).
//! With the `ORIGIN_SERVICE` binding declared, the request goes through it instead of `fetch`
//! (proxy.js's `useOrigin`), everything else the same.

use super::io::{self, Incoming};
use crate::access::token::Authenticated;
use crate::config::{Config, ProxySettings};
use crate::mcp::proxy;
use crate::primitives::error::Error;
use crate::primitives::http::cors::EXPOSED_HEADERS;
use std::cell::Cell;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys};

#[wasm_bindgen(module = "/src/edge/proxy.js")]
extern "C" {
    fn install(request_names: &str, request_prefixes: &str, response_names: &str, exposed_headers: &str);
    #[wasm_bindgen(js_name = forward)]
    fn fetch_origin(
        request: &web_sys::Request,
        url: &str,
        own: &str,
        body: JsValue,
        timeout_ms: f64,
        keep_authorization: bool,
        keep_cookies: bool,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = checkedHeaders)]
    fn checked_headers(response: &web_sys::Response) -> String;
    #[wasm_bindgen(js_name = useOrigin)]
    fn use_origin(binding: &JsValue);
}

/// Whether a binding can be sent requests: it has a `fetch` method (a Workers VPC service, a
/// service binding, any Fetcher).
pub fn is_fetcher(binding: &JsValue) -> bool {
    js_sys::Reflect::get(binding, &"fetch".into()).is_ok_and(|fetch| fetch.is_function())
}

/// Where proxy.js sends origin requests from now on: through `binding`, or with `fetch` to the
/// URL (`None`). Called once per isolate, when the configuration is parsed.
pub fn use_origin_binding(binding: Option<&JsValue>) {
    use_origin(binding.unwrap_or(&JsValue::NULL));
}

thread_local! {
    /// Whether proxy.js has the core's header lists (once per wasm instance).
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

fn install_rules() {
    if !INSTALLED.with(Cell::get) {
        let (names, prefixes) = proxy::dropped_request_headers();
        install(&names, &prefixes, &proxy::dropped_response_headers(), EXPOSED_HEADERS);
        INSTALLED.with(|installed| installed.set(true));
    }
}

/// Sends the request on to the origin and streams its answer back. `read_body` is the
/// request body when the gateway had to read it; otherwise the stream goes on unread.
pub async fn forward(
    request: &Incoming,
    config: &Config,
    auth: &Authenticated,
    read_body: Option<&[u8]>,
) -> Result<web_sys::Response, Error> {
    let body = read_body.map_or(JsValue::NULL, |bytes| js_sys::Uint8Array::from(bytes).into());
    let answer = JsFuture::from(send(request, config, auth, body)).await;
    relay_answer(answer, &config.proxy)
}

/// Starts the request to the origin; the promise settles with the origin's answer as the
/// client gets it (hop-by-hop headers dropped, CORS for a browser: proxy.js's `relay`), or
/// rejects with why there is none. For [`relay_answer`], whoever awaits it. `body` is what the
/// gateway read of the request (a `Uint8Array`), or `null` to stream the request's own.
pub fn send(request: &Incoming, config: &Config, auth: &Authenticated, body: JsValue) -> js_sys::Promise {
    install_rules();
    let settings = &config.proxy;
    let url = proxy::origin_url(&settings.origin_url, request.path(), request.raw_query());
    let keep_authorization = settings.forward_bearer && auth.credential_as_sent;
    let authorization = match keep_authorization {
        true => None,
        false => proxy::origin_authorization(settings.forward_bearer, auth.credential.expose()),
    };
    let service_token = settings.service_token.as_ref().map(|(id, secret)| (id.as_str(), secret.expose()));
    let own = proxy::gateway_headers(&auth.identity, authorization.as_deref(), service_token);
    let timeout_ms = (settings.timeout_seconds * 1000) as f64;
    let keep_cookies = settings.forward_origin_cookies;
    fetch_origin(request.raw(), &url, &own, body, timeout_ms, keep_authorization, keep_cookies)
}

/// The origin's answer (or why the request to it failed) as the client gets it.
pub fn relay_answer(answer: Result<JsValue, JsValue>, settings: &ProxySettings) -> Result<web_sys::Response, Error> {
    let relayed: web_sys::Response = match answer {
        Ok(response) => response.unchecked_into(),
        Err(reason) if reason.as_string().as_deref() == Some("timeout") => {
            return Err(Error::timeout("origin did not answer in time"))
        }
        Err(reason) if reason.as_string().as_deref() == Some("body on GET") => {
            return Err(Error::invalid_request("a GET or HEAD request must not have a body"))
        }
        Err(reason) => return Err(Error::unreachable("could not reach the origin", &thrown(&reason))),
    };
    let joined = checked_headers(&relayed);
    let mut checked = io::facts(&joined);
    let (content_type, location) = (checked.next().flatten(), checked.next().flatten());
    proxy::check_origin_response(relayed.status(), content_type, location)?;
    if settings.forward_origin_cookies {
        filter_cookies(&relayed.headers());
    }
    Ok(relayed)
}

/// What a failed fetch (or binding) threw, as `String(error)` words it: `TypeError: …`,
/// `Error: ProxyError: dns_error`.
fn thrown(reason: &JsValue) -> String {
    match reason.dyn_ref::<js_sys::Error>() {
        Some(error) => error.to_string().into(),
        None => reason.as_string().unwrap_or_else(|| "something that is not an Error".into()),
    }
}

#[wasm_bindgen]
extern "C" {
    /// `Headers` with `getSetCookie()`, each `Set-Cookie` on its own (web_sys lacks it).
    type CookieHeaders;
    #[wasm_bindgen(method, js_name = getSetCookie)]
    fn get_set_cookie(this: &CookieHeaders) -> js_sys::Array;
}

/// With `FORWARD_ORIGIN_COOKIES`, each origin cookie is kept only if the core says so.
fn filter_cookies(headers: &web_sys::Headers) {
    let cookies = headers.unchecked_ref::<CookieHeaders>().get_set_cookie();
    if cookies.length() == 0 {
        return;
    }
    let _ = headers.delete("set-cookie");
    for cookie in cookies.iter().filter_map(|c| c.as_string()) {
        if proxy::forwards_origin_cookie(&cookie) {
            let _ = headers.append("set-cookie", &cookie);
        }
    }
}
