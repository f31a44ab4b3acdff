//! `/token` at the edge: the relay to Access, and the I/O of the refresh reuse grace (the
//! isolate's flights, the Workers Cache API, the wait for another isolate's answer). What
//! is sent, answered, shared and for how long is the core's ([`crate::oauth::token`],
//! [`crate::oauth::refresh_grace`]).

use super::auth;
use super::io::{self, Clock, WebEntropy};
use crate::access::upstream::UpstreamMetadata;
use crate::config::Config;
use crate::oauth::capabilities::Capabilities;
use crate::oauth::metadata::Site;
use crate::oauth::refresh_grace::{
    awaits_winner, Flights, GraceAnswer, GraceKey, Plan, CACHE_NAME, WINNER_POLLS, WINNER_POLL_MS,
};
use crate::oauth::token::{self, ClientTokenRequest, TokenResponse, UpstreamTokenRequest};
use crate::primitives::error::Error;
use crate::primitives::http::Response;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::{js_sys, web_sys, Context};

thread_local! {
    static FLIGHTS: RefCell<Flights> = RefCell::new(Flights::default());
}

/// How often a refresh waiting for an identical one of the isolate looks again. Each waits
/// on its own timer: workerd cancels a request that only awaits another request's I/O.
const FOLLOW_POLL: Duration = Duration::from_millis(20);

/// `POST /token`: a code exchange, or a refresh (shared with identical ones in the grace).
pub async fn answer(
    config: &Rc<Config>,
    ctx: &Context,
    site: &Rc<Site>,
    caps: &Capabilities,
    upstream: &UpstreamMetadata,
    request: &ClientTokenRequest<'_>,
    now: u64,
) -> Result<Response, Error> {
    let sent = token::prepare(config, site, caps, upstream, request, now)?;
    let grace = sent.refreshing.as_ref().and_then(|r| GraceKey::of(r, config.refresh_reuse_grace_seconds));
    let answer = match grace {
        None => exchange(config, ctx, site, &sent, now).await?,
        Some(key) => shared(config.clone(), ctx, site.clone(), Rc::new(sent), Rc::new(key), now).await?,
    };
    Ok(Response::json(200, &answer.expose()))
}

/// Relays the token request to Access and makes the client's answer of Access's.
async fn exchange(
    config: &Config,
    ctx: &Context,
    site: &Site,
    sent: &UpstreamTokenRequest,
    now: u64,
) -> Result<TokenResponse, Error> {
    let (status, body) = io::post_form(&sent.url, &sent.body).await?;
    let tokens = crate::access::upstream::finish(status, &body)?;
    let identity = match token::id_token_to_verify(config.token_mode, &tokens)? {
        Some(id_token) => {
            Some(auth::verify_id_token(config, ctx, id_token, sent.id_token_nonce.as_deref(), now).await?)
        }
        None => None,
    };
    token::respond(config, site, tokens, identity.as_ref(), sent, now, &mut WebEntropy)
}

/// A refresh in the grace: the isolate's answer to an identical one, or a wait for the
/// identical one under way, or this request leads the exchange. The exchange runs under
/// `waitUntil`, so a client that goes away (a lost answer) cannot cut it short between
/// Access rotating the token and the answer being kept for its retry.
async fn shared(
    config: Rc<Config>,
    ctx: &Context,
    site: Rc<Site>,
    sent: Rc<UpstreamTokenRequest>,
    key: Rc<GraceKey>,
    now: u64,
) -> Result<TokenResponse, Error> {
    let ticket = match FLIGHTS.with(|flights| flights.borrow_mut().plan(&key, now)) {
        Plan::Answer(answer) => return Ok(answer),
        Plan::Follow(ticket) => ticket,
        Plan::Lead(ticket) => {
            let flight = future_to_promise({
                let (ctx, key) = (own_context(ctx), key.clone());
                async move {
                    lead(&config, &ctx, &site, &sent, &key, ticket, now).await;
                    Ok(JsValue::UNDEFINED)
                }
            });
            // The runtime's own waitUntil on the flight itself: no second task to wrap it.
            let js_context: &worker::worker_sys::Context = ctx.as_ref();
            let _ = js_context.wait_until(&flight);
            let _ = JsFuture::from(flight).await;
            ticket
        }
    };
    loop {
        if let Some(outcome) = FLIGHTS.with(|flights| flights.borrow().outcome(&key, ticket, Clock::seconds())) {
            return outcome;
        }
        worker::Delay::from(FOLLOW_POLL).await;
    }
}

/// Another handle on the request's context, for the flight (`Context` is not `Clone`).
fn own_context(ctx: &Context) -> Context {
    let inner: &worker::worker_sys::Context = ctx.as_ref();
    let value: &JsValue = inner.as_ref();
    Context::new(value.clone().unchecked_into())
}

/// The exchange of a refresh in the grace, landed in the isolate's flights: an answer
/// another isolate of this location kept (or this one, before a restart), else Access's,
/// kept in turn; when Access refuses the token, the answer of the isolate that won it.
async fn lead(
    config: &Config,
    ctx: &Context,
    site: &Site,
    sent: &UpstreamTokenRequest,
    key: &GraceKey,
    ticket: u64,
    now: u64,
) {
    let url = key.cache_url(&site.issuer);
    let outcome = match kept(key, &url, now).await {
        Some(answer) => Ok(answer),
        None => match exchange(config, ctx, site, sent, now).await {
            Ok(response) => {
                let answer = GraceAnswer::new(response, now, config.refresh_reuse_grace_seconds);
                keep(key, &url, &answer, now).await;
                Ok(answer)
            }
            Err(refused) if awaits_winner(&refused) => winner(key, &url).await.ok_or(refused),
            Err(error) => Err(error),
        },
    };
    FLIGHTS.with(|flights| flights.borrow_mut().land(key, ticket, outcome, Clock::seconds()));
}

/// Looks for the winner's answer [`WINNER_POLLS`] times, every [`WINNER_POLL_MS`].
async fn winner(key: &GraceKey, url: &str) -> Option<GraceAnswer> {
    for _ in 0..WINNER_POLLS {
        worker::Delay::from(Duration::from_millis(WINNER_POLL_MS.into())).await;
        if let Some(answer) = kept(key, url, Clock::seconds()).await {
            return Some(answer);
        }
    }
    None
}

async fn grace_cache() -> Result<web_sys::Cache, JsValue> {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(JsFuture::from(scope.caches()?.open(CACHE_NAME)).await?.unchecked_into())
}

/// The answer kept at `url`, if there is one this key opens within its window.
async fn kept(key: &GraceKey, url: &str, now: u64) -> Option<GraceAnswer> {
    let found = async {
        let hit = JsFuture::from(grace_cache().await?.match_with_str(url)).await?;
        match hit.dyn_into::<web_sys::Response>() {
            Ok(response) => JsFuture::from(response.text()?).await,
            Err(_) => Ok(JsValue::UNDEFINED),
        }
    };
    key.open(&found.await.ok()?.as_string()?, now)
}

/// Keeps the sealed answer at `url` for the rest of its window. A cache that fails (the
/// Cache API does nothing on `workers.dev`) leaves the isolate's copy: logged, not fatal.
async fn keep(key: &GraceKey, url: &str, answer: &GraceAnswer, now: u64) {
    let seconds = answer.cache_seconds(now);
    let stored = async {
        let sealed = key.seal(answer, &mut WebEntropy).map_err(|error| JsValue::from_str(&error.log_reason()))?;
        let headers = web_sys::Headers::new()?;
        headers.set("cache-control", &format!("max-age={seconds}"))?;
        let init = web_sys::ResponseInit::new();
        init.set_headers(&headers);
        let response = web_sys::Response::new_with_opt_str_and_init(Some(&sealed), &init)?;
        JsFuture::from(grace_cache().await?.put_with_str(url, &response)).await
    };
    if seconds > 0 && stored.await.is_err() {
        io::warn(&io::Event { event: "refresh_grace_not_kept", error: "the Cache API refused the put" });
    }
}
