//! Access's discovery document, fetched once and cached per isolate. A failed
//! refresh keeps serving the last good copy.

use super::io;
use crate::config::Config;
use crate::error::{Error, UpstreamFailure};
use crate::upstream::{UpstreamMetadata, DISCOVERY_TTL_SECONDS};
use std::cell::RefCell;

thread_local! {
    static CACHE: RefCell<Option<(UpstreamMetadata, u64)>> = const { RefCell::new(None) };
}

pub async fn metadata(config: &Config, now: u64) -> Result<UpstreamMetadata, Error> {
    let cached = CACHE.with(|c| c.borrow().clone());
    if let Some((metadata, fetched_at)) = &cached {
        if now < fetched_at + DISCOVERY_TTL_SECONDS {
            return Ok(metadata.clone());
        }
    }
    let fresh = match io::get(&config.access.discovery_url()).await {
        Ok((200, body)) => UpstreamMetadata::parse(&body, &config.access),
        Ok(_) => {
            Err(Error::Upstream { failure: UpstreamFailure::Unavailable, reason: "Access discovery answered non-200" })
        }
        Err(error) => Err(error),
    };
    match (fresh, cached) {
        (Ok(metadata), _) => {
            CACHE.with(|c| *c.borrow_mut() = Some((metadata.clone(), now)));
            Ok(metadata)
        }
        (Err(Error::Upstream { .. }), Some((stale, _))) => Ok(stale),
        (Err(error), _) => Err(error),
    }
}
