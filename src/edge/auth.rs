//! Bearer token validation at the edge: sealed tokens are opened by the core; Access
//! JWTs go through the per-isolate JWKS cache, WebCrypto RS256
//! verification (native code in workerd, ~25× faster than RSA in wasm) with the
//! imported keys kept per isolate, and the verified-token cache. All decisions are
//! the core's ([`crate::access::token`], [`crate::access::jwks`], [`crate::access::token_cache`]).

use super::io::{self, Clock, WebEntropy};
use crate::access::jwks::{Jwk, JwksCache, KeySet, Lookup, Plan, FETCH_TIMEOUT_SECONDS};
use crate::access::token::{bearer, Authenticated, Identity, TokenPolicy, UntrustedAccessToken};
use crate::access::token_cache::{Expiring, TokenCache, VerifiedJwt};
use crate::config::Config;
use crate::oauth::metadata::Site;
use crate::oauth::sealed_token::{self, BearerKind};
use crate::primitives::error::{Error, TokenFailure};
use crate::primitives::seal::Entropy;
use futures_util::future::select;
use std::cell::RefCell;
use std::collections::HashMap;
use std::thread::LocalKey;
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::{js_sys, web_sys, Context};

thread_local! {
    static JWKS: RefCell<JwksCache> = RefCell::new(JwksCache::default());
    /// Imported WebCrypto keys, by kid and modulus (a rotated key under an old kid is a new key).
    static CRYPTO_KEYS: RefCell<HashMap<(String, String), web_sys::CryptoKey>> = RefCell::new(HashMap::new());
    static VERIFIED: RefCell<Option<TokenCache<VerifiedJwt>>> = const { RefCell::new(None) };
    /// Sealed tokens opened before: what each carries, never the token.
    static OPENED: RefCell<Option<TokenCache<Authenticated>>> = const { RefCell::new(None) };
}

/// Remembers a validation in `cache`, which is made on first use with a fresh random key.
fn remember<V: Expiring + 'static>(
    cache: &'static LocalKey<RefCell<Option<TokenCache<V>>>>,
    config: &Config,
    site: &Site,
    token: &str,
    value: V,
    now: u64,
) -> Result<(), Error> {
    if cache.with(|cache| cache.borrow().is_none()) {
        let mut key = [0; 16];
        WebEntropy.fill(&mut key)?;
        cache.with(|cache| *cache.borrow_mut() = Some(TokenCache::new(config.edge.token_cache_size, key)));
    }
    cache.with(|cache| cache.borrow_mut().as_mut().map(|cache| cache.insert(&site.issuer, token, value, now)));
    Ok(())
}

/// Validates the request's bearer token: Access's JWT (passthrough) or the gateway's
/// own sealed token, as the token mode allows.
pub async fn authenticate(
    config: &Config,
    ctx: &Context,
    site: &Site,
    authorization: Option<&str>,
    now: u64,
) -> Result<Authenticated, Error> {
    if let Some(known) = authenticate_now(config, site, authorization, now)? {
        return Ok(known);
    }
    let token = bearer(authorization).ok_or(Error::MissingToken)?;
    let (identity, key) = verify_jwt(config, ctx, &config.token_policy(&site.callback_url()), token, now).await?;
    remember(&VERIFIED, config, site, token, VerifiedJwt { identity: identity.clone(), key }, now)?;
    Ok(Authenticated::access_jwt(identity, authorization, token))
}

/// What can be decided without awaiting anything: a sealed token opened (or found opened
/// before), an Access JWT answered from the verified-token cache, each only while a fresh
/// validation would pass, or a token refused. `None`: an Access JWT that needs a full
/// validation.
pub fn authenticate_now(
    config: &Config,
    site: &Site,
    authorization: Option<&str>,
    now: u64,
) -> Result<Option<Authenticated>, Error> {
    let token = bearer(authorization).ok_or(Error::MissingToken)?;
    match sealed_token::bearer_kind(config.token_mode, token)? {
        BearerKind::Sealed => {
            let opened = OPENED.with(|cache| {
                let cache = cache.borrow();
                cache.as_ref()?.get(&site.issuer, token).filter(|opened| sealed_token::still_open(opened, now)).cloned()
            });
            if opened.is_some() {
                return Ok(opened);
            }
            let opened = sealed_token::open_access(config, site, token, now)?;
            remember(&OPENED, config, site, token, opened.clone(), now)?;
            Ok(Some(opened))
        }
        BearerKind::AccessJwt => {
            let leeway = config.edge.leeway_seconds;
            let cached = VERIFIED.with(|cache| {
                let cache = cache.borrow();
                JWKS.with(|jwks| {
                    let jwks = jwks.borrow();
                    // A stale key set is refreshed by the awaited path, in the background
                    // ([`key_for`]): this request goes there, the ones after it stay here.
                    if jwks.refresh_due(now, config.edge.jwks) {
                        return None;
                    }
                    let keys = jwks.keys().ok()?;
                    let jwt =
                        cache.as_ref()?.get(&site.issuer, token).filter(|jwt| jwt.still_valid(leeway, keys, now))?;
                    Some(jwt.identity.clone())
                })
            });
            Ok(cached.map(|identity| Authenticated::access_jwt(identity, authorization, token)))
        }
    }
}

/// An Access JWT that needs a full validation, ready for the synchronous path: its key is in
/// the cached JWKS (no fetch due) and already imported into WebCrypto, so all that is left to
/// await is the signature check itself, which the entry does ([`Self::verify`]).
pub struct PendingSignature {
    untrusted: UntrustedAccessToken<'static>,
    key: Jwk,
    crypto_key: web_sys::CryptoKey,
}

impl PendingSignature {
    /// `None` when the token needs what only the awaited path does: a JWKS fetch or refresh,
    /// a key import, or an answer to a token that does not parse (its error is answered there).
    pub fn of(config: &Config, token: &str, now: u64) -> Option<Self> {
        let untrusted = UntrustedAccessToken::parse(token).ok()?;
        let key = JWKS.with(|jwks| {
            let jwks = jwks.borrow();
            if jwks.refresh_due(now, config.edge.jwks) {
                return None;
            }
            match jwks.keys().ok()?.find(untrusted.key_id()) {
                Lookup::Found(key) => Some(key.clone()),
                Lookup::Unknown | Lookup::Ambiguous => None,
            }
        })?;
        let crypto_key = CRYPTO_KEYS.with(|keys| keys.borrow().get(&(key.kid.clone(), key.n.clone())).cloned())?;
        Some(Self { untrusted: untrusted.into_owned(), key, crypto_key })
    }

    /// WebCrypto's RS256 check of the signature: settles with whether it holds.
    pub fn verify(&self) -> Result<js_sys::Promise, Error> {
        let (signature, signed_data) = (self.untrusted.signature(), self.untrusted.signed_data());
        subtle()?
            .verify_with_object_and_u8_array_and_u8_array(&rs256_algorithm(), &self.crypto_key, signature, signed_data)
            .map_err(|_| Error::InvalidToken(TokenFailure::BadSignature))
    }

    /// The token once [`Self::verify`] settled: `valid` whether the signature held. Its claims
    /// are checked as on the awaited path, and a valid token is remembered under `token`.
    pub fn verified(
        self,
        valid: bool,
        config: &Config,
        site: &Site,
        authorization: Option<&str>,
        now: u64,
    ) -> Result<Authenticated, Error> {
        if !valid {
            return Err(Error::InvalidToken(TokenFailure::BadSignature));
        }
        let token = bearer(authorization).ok_or(Error::MissingToken)?;
        let identity = config
            .token_policy(&site.callback_url())
            .check(&self.untrusted.insecure_assume_signature_verified(), now)?;
        remember(&VERIFIED, config, site, token, VerifiedJwt { identity: identity.clone(), key: self.key }, now)?;
        Ok(Authenticated::access_jwt(identity, authorization, token))
    }
}

/// Validates Access's `id_token` at `/token` (sealed token mode). A bad one is
/// Access's failure, not the client's.
pub async fn verify_id_token(
    config: &Config,
    ctx: &Context,
    id_token: &str,
    nonce: Option<&str>,
    now: u64,
) -> Result<Identity, Error> {
    let policy = config.id_token_policy(nonce.map(str::to_owned));
    verify_jwt(config, ctx, &policy, id_token, now).await.map(|(identity, _)| identity).map_err(|error| match error {
        Error::InvalidToken(_) => crate::access::upstream::no_id_token(),
        other => other,
    })
}

/// RS256 signature (WebCrypto, key from the JWKS) and then the policy's claim checks; the
/// identity, and the key that verified it.
async fn verify_jwt(
    config: &Config,
    ctx: &Context,
    policy: &TokenPolicy,
    token: &str,
    now: u64,
) -> Result<(Identity, Jwk), Error> {
    let untrusted = UntrustedAccessToken::parse(token)?;
    let key = key_for(config, ctx, untrusted.key_id(), now).await?;
    if !verify_rs256(&key, untrusted.signature(), untrusted.signed_data()).await? {
        return Err(Error::InvalidToken(TokenFailure::BadSignature));
    }
    Ok((policy.check(&untrusted.insecure_assume_signature_verified(), now)?, key))
}

/// How often a request waiting for another request's JWKS fetch looks again. Each
/// request waits on its own timer: workerd cancels a request that only awaits I/O
/// belonging to another request, and I/O must stay in the request that started it.
const JWKS_WAIT_POLL: Duration = Duration::from_millis(20);

/// The JWKS key for `kid`, fetching the key set when the cache policy says so, or
/// waiting while another request of the isolate fetches it.
async fn key_for(config: &Config, ctx: &Context, kid: &str, now: u64) -> Result<Jwk, Error> {
    let timeout = Duration::from_secs(FETCH_TIMEOUT_SECONDS);
    let deadline = Clock::millis() + timeout.as_millis() as f64;
    loop {
        match JWKS.with(|jwks| jwks.borrow_mut().plan(kid, now, config.edge.jwks)) {
            Plan::Fetch => {
                // This request waits for the fetch, on its own timer as well.
                let done = JsFuture::from(start_jwks_fetch(config, ctx, now));
                let _ = select(done, worker::Delay::from(timeout)).await;
                break;
            }
            Plan::Refresh => {
                let _ = start_jwks_fetch(config, ctx, now);
                break;
            }
            Plan::Wait if Clock::millis() < deadline => worker::Delay::from(JWKS_WAIT_POLL).await,
            Plan::Wait | Plan::UseCached => break,
        }
    }
    JWKS.with(|jwks| match jwks.borrow().keys()?.find(kid) {
        Lookup::Found(key) => Ok(key.clone()),
        Lookup::Unknown => Err(Error::InvalidToken(TokenFailure::UnknownKeyId)),
        Lookup::Ambiguous => Err(Error::InvalidToken(TokenFailure::AmbiguousKeyId)),
    })
}

/// Starts a JWKS fetch under waitUntil, so a client that disconnects cannot cut it short
/// and leave the cache marked "in flight" for every other request. The promise settles
/// when the fetch has ended.
fn start_jwks_fetch(config: &Config, ctx: &Context, now: u64) -> js_sys::Promise {
    let url = config.edge.jwks_url.clone();
    let fetch = future_to_promise(async move {
        refresh_jwks(&url, now).await;
        Ok(JsValue::UNDEFINED)
    });
    let done = fetch.clone();
    ctx.wait_until(async move {
        let _ = JsFuture::from(fetch).await;
    });
    done
}

/// Fetches the JWKS and stores it; a failed fetch keeps the cached keys serving and
/// says why in the log.
async fn refresh_jwks(url: &str, now: u64) {
    let fetched = io::get(url).await.and_then(|(status, body)| match status {
        200 => KeySet::parse(&body),
        _ => Err(Error::unavailable("JWKS answered non-200")),
    });
    match fetched {
        Ok(keys) => JWKS.with(|jwks| jwks.borrow_mut().store(keys, now)),
        Err(error) => {
            JWKS.with(|jwks| jwks.borrow_mut().fetch_failed());
            io::warn(&io::Event { event: "jwks_fetch_failed", error: &error.log_reason() })
        }
    }
}

fn subtle() -> Result<web_sys::SubtleCrypto, Error> {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    scope.crypto().map(|c| c.subtle()).map_err(|_| Error::Internal { reason: "WebCrypto unavailable" })
}

fn rs256_algorithm() -> js_sys::Object {
    io::js_object(&[
        ("name", "RSASSA-PKCS1-v1_5".into()),
        ("hash", io::js_object(&[("name", "SHA-256".into())]).into()),
    ])
}

async fn crypto_key(key: &Jwk) -> Result<web_sys::CryptoKey, Error> {
    let id = (key.kid.clone(), key.n.clone());
    if let Some(imported) = CRYPTO_KEYS.with(|keys| keys.borrow().get(&id).cloned()) {
        return Ok(imported);
    }
    let jwk = io::js_object(&[
        ("kty", "RSA".into()),
        ("n", key.n.as_str().into()),
        ("e", key.e.as_str().into()),
        ("alg", "RS256".into()),
        ("ext", true.into()),
    ]);
    let usages = js_sys::Array::of1(&"verify".into());
    let promise = subtle()?
        .import_key_with_object("jwk", &jwk, &rs256_algorithm(), false, &usages)
        .map_err(|_| Error::InvalidToken(TokenFailure::UnusableKey))?;
    let imported: web_sys::CryptoKey =
        JsFuture::from(promise).await.map_err(|_| Error::InvalidToken(TokenFailure::UnusableKey))?.unchecked_into();
    CRYPTO_KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        // Keys only change on rotation; drop imports of keys that left the JWKS.
        JWKS.with(|jwks| {
            if let Ok(current) = jwks.borrow().keys() {
                keys.retain(|(kid, _), _| current.contains(kid));
            }
        });
        keys.insert(id, imported.clone());
    });
    Ok(imported)
}

async fn verify_rs256(key: &Jwk, signature: &[u8], signed_data: &[u8]) -> Result<bool, Error> {
    let key = crypto_key(key).await?;
    let promise = subtle()?
        .verify_with_object_and_u8_array_and_u8_array(&rs256_algorithm(), &key, signature, signed_data)
        .map_err(|_| Error::InvalidToken(TokenFailure::BadSignature))?;
    Ok(JsFuture::from(promise).await.map(|v| v.as_bool() == Some(true)).unwrap_or(false))
}
