//! Access's discovery document, cached per isolate; what serves is the core's decision
//! ([`DiscoveryCache`]).

use super::io;
use crate::access::upstream::{DiscoveryCache, UpstreamMetadata};
use crate::config::Config;
use crate::primitives::error::Error;
use std::cell::RefCell;

thread_local! {
    static CACHE: RefCell<DiscoveryCache> = RefCell::new(DiscoveryCache::default());
}

pub async fn metadata(config: &Config, now: u64) -> Result<UpstreamMetadata, Error> {
    if let Some(fresh) = CACHE.with(|c| c.borrow().fresh(now)) {
        return Ok(fresh);
    }
    let answer = io::get(&config.access.discovery_url()).await;
    CACHE.with(|c| c.borrow_mut().refreshed(answer, &config.access, now))
}
