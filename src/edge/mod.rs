//! The Worker: the only code that touches `worker`. It reads the request, calls the
//! sans-IO core, performs the I/O the core asks for, and logs one line per request.

mod io;
mod upstream;

use crate::config::Config;
use crate::error::{Error, Surface};
use crate::http::{cors, Response};
use crate::metadata::{self, Capabilities, Site};
use crate::route::{route, Route};
use crate::{authorize, registration, token};
use io::{Clock, WebEntropy};
use std::rc::Rc;
use worker::{event, Context, Env};

thread_local! {
    /// The parsed configuration, kept for the isolate's life (env does not change within it).
    static CONFIG: std::cell::RefCell<Option<Rc<Config>>> = const { std::cell::RefCell::new(None) };
}

fn config(env: &Env) -> Result<Rc<Config>, Error> {
    if let Some(config) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(config);
    }
    let lookup = |name: &str| {
        env.var(name)
            .map(|v| v.to_string())
            .or_else(|_| env.secret(name).map(|v| v.to_string()))
            .ok()
    };
    let config = Rc::new(Config::from_lookup(lookup)?);
    CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
    Ok(config)
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(
    request: worker::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<worker::Response> {
    let started = Clock::millis();
    // `Clone::clone` copies the JS handle; `Request.clone()` would tee the body.
    let request = io::Incoming::new(Clone::clone(request.inner()));
    let outcome = handle(&request, &env).await;
    let response = match &outcome.result {
        Ok(response) => io::to_web_response(response),
        Err(error) => io::to_web_response(&error.to_response(outcome.surface())),
    }?;
    let response = match outcome.route {
        Some(route) if route.cors() => io::add_cors(response),
        _ => Ok(response),
    }?;
    io::log_request(
        &request,
        outcome.route,
        response.status(),
        started,
        outcome.result.as_ref().err(),
    );
    Ok(response.into())
}

/// What happened to a request: the route it took and the core's answer.
struct Outcome {
    route: Option<Route>,
    /// Present for the MCP endpoint, whose errors are RFC 6750 challenges.
    challenge: Option<(String, String)>,
    result: Result<Response, Error>,
}

impl Outcome {
    fn surface(&self) -> Surface<'_> {
        match (&self.challenge, self.route) {
            (Some((resource_metadata, scope)), _) => Surface::Resource {
                resource_metadata,
                scope,
            },
            (None, Some(Route::Authorize | Route::ConsentDecision | Route::Callback)) => {
                Surface::Page
            }
            _ => Surface::Json,
        }
    }
}

async fn handle(request: &io::Incoming, env: &Env) -> Outcome {
    let mut outcome = Outcome {
        route: None,
        challenge: None,
        result: Err(Error::NotFound),
    };
    let config = match config(env) {
        Ok(config) => config,
        Err(error) => {
            outcome.result = Err(error);
            return outcome;
        }
    };
    let route = match route(&request.method(), &request.path(), &config.mcp_path) {
        Ok(route) => route,
        Err(error) => {
            outcome.result = Err(error);
            return outcome;
        }
    };
    outcome.route = Some(route);
    let site = Site::new(&config, &request.origin());
    if route == Route::Mcp {
        outcome.challenge = Some((site.resource_metadata_url(), config.scopes.join(" ")));
    }
    outcome.result = dispatch(route, request, &config, &site).await;
    outcome
}

async fn dispatch(
    route: Route,
    request: &io::Incoming,
    config: &Config,
    site: &Site,
) -> Result<Response, Error> {
    let now = Clock::seconds();
    let mut entropy = WebEntropy;
    match route {
        Route::Preflight { allow } => Ok(cors::preflight(allow)),
        Route::ProtectedResourceMetadata => {
            let doc =
                metadata::protected_resource(site, &config.scopes, config.server_name.as_deref());
            Ok(Response::json(200, &doc))
        }
        Route::Mcp => match request.header("authorization") {
            None => Err(Error::MissingToken),
            Some(_) => Err(Error::InvalidToken {
                reason: "edge token validation is not built yet",
            }),
        },
        Route::Callback => {
            Ok(authorize::Relay { config, site, now }.callback(&request.query(), &mut entropy))
        }
        _ => {
            let upstream = upstream::metadata(config, now).await?;
            let caps = Capabilities::new(config, &upstream);
            let relay = authorize::Relay { config, site, now };
            match route {
                Route::AuthorizationServerMetadata => Ok(Response::json(
                    200,
                    &metadata::authorization_server(site, &caps, &upstream),
                )),
                Route::Register => {
                    let body = request.body_text().await?;
                    request.require_media_type("application/json")?;
                    let info = registration::register(
                        &body,
                        &config.access.client_id,
                        &config.redirect_policy,
                        &caps,
                        now,
                    )?;
                    Ok(Response::json(201, &info))
                }
                Route::Authorize => Ok(relay.authorize(
                    &request.query(),
                    request.header("cookie").as_deref(),
                    &caps,
                    &upstream,
                    &mut entropy,
                )),
                Route::ConsentDecision => {
                    let body = request.body_text().await?;
                    request.require_media_type(token::FORM)?;
                    Ok(relay.decide(
                        &body,
                        request.header("cookie").as_deref(),
                        request.header("sec-fetch-site").as_deref(),
                        &upstream,
                        &mut entropy,
                    ))
                }
                Route::Token => {
                    let body = request.body_text().await?;
                    let content_type = request.header("content-type");
                    let authorization = request.header("authorization");
                    let sent = token::prepare(
                        config,
                        site,
                        &caps,
                        &upstream,
                        content_type.as_deref(),
                        authorization.as_deref(),
                        &body,
                        now,
                    )?;
                    let (status, content_type, body) = io::post_form(&sent.url, &sent.body).await?;
                    let answer = token::finish(status, content_type.as_deref(), &body)?;
                    Ok(Response::json(200, &answer))
                }
                _ => Err(Error::NotFound),
            }
        }
    }
}
