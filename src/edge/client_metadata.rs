//! Fetching Client ID Metadata Documents, cached per isolate; what a fetch means and how
//! long it is kept is the core's decision ([`crate::clients::client_id_metadata`]).

use super::io;
use crate::clients::client_id_metadata::{
    evaluate, pinned_fallback, ClientIdUrl, DocumentCache, Fetched, Settings, FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES,
};
use crate::oauth::authorize::Document;
use crate::primitives::error::ClientMetadataFailure as Failure;
use std::cell::RefCell;
use worker::web_sys;

thread_local! {
    static CACHE: RefCell<DocumentCache> = RefCell::new(DocumentCache::default());
}

/// The document at `url`, from the cache or fetched (and then cached, failures too), or
/// its pinned copy when the fetch got none and `settings` allow it. `request_id`: the
/// request's `cf-ray`, which its warning carries as the request's log line does.
pub async fn document(url: &ClientIdUrl, settings: &Settings, now: u64, request_id: Option<&str>) -> Document {
    if let Some(cached) = CACHE.with(|cache| cache.borrow().get(url, now)) {
        return cached;
    }
    let (mut outcome, seconds) = evaluate(url, fetch(url).await);
    // One line per fetch that failed (a cached failure is not fetched, so not logged again).
    if let Err(failure) = outcome {
        let pinned = pinned_fallback(url, failure, settings);
        let host = url::Url::parse(url).ok().and_then(|url| url.host_str().map(str::to_owned));
        #[derive(serde::Serialize)]
        struct Warning<'a> {
            event: &'static str,
            request_id: Option<&'a str>,
            host: Option<String>,
            error: String,
            pinned: bool,
        }
        let line = Warning {
            event: "client_metadata_failed",
            request_id,
            host,
            error: format!("{failure:?}"),
            pinned: pinned.is_some(),
        };
        io::warn(&line);
        outcome = pinned.ok_or(failure);
    }
    // A pinned answer is kept only as long as a failure: the live document is tried again soon.
    CACHE.with(|cache| cache.borrow_mut().store(url, outcome.clone(), seconds, now));
    outcome
}

/// One GET: no redirects followed, the whole answer within the timeout, the body cancelled
/// past the size cap. The runtime's `global_fetch_strictly_public` keeps it off private
/// addresses (wrangler.toml).
async fn fetch(url: &str) -> Result<Fetched, Failure> {
    let failure = |unanswered| match unanswered {
        io::Unanswered::Timeout => Failure::Timeout,
        io::Unanswered::Unreachable => Failure::Unreachable,
    };
    let headers = web_sys::Headers::new().map_err(|_| Failure::Unreachable)?;
    let _ = headers.set("accept", "application/json");
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_headers(&headers);
    let sent = io::TimedFetch::send(url, &init, FETCH_TIMEOUT_MS).await.map_err(failure)?;
    let response = &sent.response;
    let status = response.status();
    let cache_control = response.headers().get("cache-control").ok().flatten();
    let declared = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    let body = match response.body() {
        // Only a 200's body is read, and not at all when it says it is too large.
        Some(stream) if status != 200 || declared.is_some_and(|n| n > MAX_DOCUMENT_BYTES) => {
            let _ = stream.cancel();
            if status == 200 {
                return Err(Failure::TooLarge);
            }
            Vec::new()
        }
        Some(stream) => match io::read_capped(&stream, MAX_DOCUMENT_BYTES).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let _ = stream.cancel();
                return Err(Failure::TooLarge);
            }
            Err(()) => return Err(failure(sent.body_failure())),
        },
        None => Vec::new(),
    };
    Ok(Fetched { status, cache_control, body })
}
