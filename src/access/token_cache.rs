//! Caches of validated bearer tokens, so that a session's requests skip the validation work:
//! the RSA verification of an Access JWT, the unsealing of the gateway's own token. Keyed
//! by a keyed hash of the site and the token (the token itself is never kept; the site is
//! part of the key because the accepted audiences depend on the hostname a request came
//! to), bounded, and consulted only under the checks a fresh validation would still fail
//! ([`VerifiedJwt::still_valid`], [`crate::oauth::sealed_token::still_open`]).

use crate::access::jwks::{Jwk, KeySet, Lookup};
use crate::access::token::{check_time, Identity};
use siphasher::sip128::{Hasher128, SipHasher24};
use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;

type TokenHash = [u8; 16];

/// What a cached validation must say about itself: when it stops passing in any case.
pub trait Expiring {
    fn expires_at(&self) -> u64;
}

/// An Access JWT that passed full validation, and the exact key that verified it.
pub struct VerifiedJwt {
    pub identity: Identity,
    pub key: Jwk,
}

impl Expiring for VerifiedJwt {
    fn expires_at(&self) -> u64 {
        self.identity.expires_at
    }
}

impl VerifiedJwt {
    /// Whether a fresh validation would still pass: the key that verified it is still in
    /// the JWKS under its `kid`, unchanged (a rotated key under an old `kid` is another
    /// key), and the time window still holds.
    pub fn still_valid(&self, leeway_seconds: u64, keys: &KeySet, now: u64) -> bool {
        matches!(keys.find(&self.key.kid), Lookup::Found(key) if *key == self.key)
            && check_time(leeway_seconds, self.identity.not_before, self.identity.expires_at, now).is_ok()
    }
}

pub struct TokenCache<V> {
    capacity: usize,
    /// Random per isolate: see [`TokenCache::hash`].
    key: [u8; 16],
    entries: HashMap<TokenHash, V>,
    /// Insertion order, for eviction.
    order: VecDeque<TokenHash>,
}

impl<V: Expiring> TokenCache<V> {
    /// A capacity of 0 disables caching. `key`: random bytes, fresh for each cache.
    pub fn new(capacity: usize, key: [u8; 16]) -> Self {
        Self { capacity, key, entries: HashMap::new(), order: VecDeque::new() }
    }

    /// SipHash-2-4 (128 bits) under the cache's secret key, a PRF: without the key no
    /// client can choose a token that lands on another token's entry, and it costs a
    /// fraction of SHA-256 on the ~1 KB token every request brings. `site` is the issuer
    /// the token was validated for (it decides the audiences).
    fn hash(&self, site: &str, token: &str) -> TokenHash {
        let mut hasher = SipHasher24::new_with_key(&self.key);
        hasher.write(site.as_bytes());
        hasher.write(&[0]);
        hasher.write(token.as_bytes());
        hasher.finish128().as_bytes()
    }

    /// The validation remembered for `token` at `site`; the caller checks that it still holds.
    pub fn get(&self, site: &str, token: &str) -> Option<&V> {
        self.entries.get(&self.hash(site, token))
    }

    pub fn insert(&mut self, site: &str, token: &str, value: V, now: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.expires_at() > now);
            self.order.retain(|h| self.entries.contains_key(h));
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => self.entries.remove(&oldest),
                None => break,
            };
        }
        let key = self.hash(site, token);
        if self.entries.insert(key, value).is_none() {
            self.order.push_back(key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const SITE: &str = "https://mcp.example.com";
    const KEY: [u8; 16] = [7; 16];

    fn identity(exp: u64) -> Identity {
        Identity { subject: "s".into(), email: None, groups: vec![], not_before: Some(100), expires_at: exp }
    }

    fn keys(kids: &[&str]) -> KeySet {
        let body = serde_json::json!({"keys": kids.iter().map(|k| {
            // "k1@n2": the key k1 with another modulus.
            let (kid, n) = k.split_once('@').unwrap_or((k, "n"));
            serde_json::json!({"kty":"RSA","kid":kid,"n":n,"e":"AQAB"})
        }).collect::<Vec<_>>()});
        KeySet::parse(&body.to_string()).unwrap()
    }

    /// The edge's lookup: an entry counts only while a fresh validation would pass.
    fn valid(cache: &TokenCache<VerifiedJwt>, site: &str, token: &str, kids: &[&str], now: u64) -> Option<Identity> {
        cache.get(site, token).filter(|jwt| jwt.still_valid(0, &keys(kids), now)).map(|jwt| jwt.identity.clone())
    }

    fn jwt(kid: &str, exp: u64) -> VerifiedJwt {
        VerifiedJwt { identity: identity(exp), key: Jwk { kid: kid.into(), n: "n".into(), e: "AQAB".into() } }
    }

    #[test]
    fn hit_only_while_fresh_validation_would_pass() {
        let mut cache = TokenCache::new(8, KEY);
        cache.insert(SITE, "t", jwt("k1", 200), 150);
        assert_eq!(valid(&cache, SITE, "t", &["k1"], 150), Some(identity(200)));
        assert_eq!(valid(&cache, SITE, "t", &["k1"], 200), None, "expired");
        assert_eq!(valid(&cache, SITE, "t", &["k1"], 99), None, "not yet valid");
        assert_eq!(valid(&cache, SITE, "t", &["k2"], 150), None, "key retired");
        assert_eq!(valid(&cache, SITE, "t", &["k1@n2"], 150), None, "another key under the same kid");
        assert_eq!(valid(&cache, SITE, "t", &["k1", "k1@n2"], 150), None, "the kid made ambiguous");
        assert_eq!(valid(&cache, SITE, "other", &["k1"], 150), None);
        assert_eq!(valid(&cache, "https://other.example.com", "t", &["k1"], 150), None, "another hostname");
    }

    #[test]
    fn bounded_evicts_expired_then_oldest() {
        let mut cache = TokenCache::new(2, KEY);
        cache.insert(SITE, "a", jwt("k", 120), 110);
        cache.insert(SITE, "b", jwt("k", 500), 110);
        cache.insert(SITE, "c", jwt("k", 500), 130); // "a" has expired: it goes first.
        assert_eq!(cache.len(), 2);
        assert!(cache.get(SITE, "a").is_none());
        cache.insert(SITE, "d", jwt("k", 500), 140); // Full of live entries: the oldest ("b") goes.
        assert!(cache.get(SITE, "b").is_none());
        assert!(cache.get(SITE, "c").is_some());
        assert!(cache.get(SITE, "d").is_some());
    }

    #[test]
    fn zero_capacity_disables() {
        let mut cache = TokenCache::new(0, KEY);
        cache.insert(SITE, "a", jwt("k", 500), 110);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_key_decides_every_hash() {
        let (one, other) = (TokenCache::<VerifiedJwt>::new(8, KEY), TokenCache::<VerifiedJwt>::new(8, [8; 16]));
        assert_ne!(one.hash(SITE, "t"), other.hash(SITE, "t"));
        assert_ne!(one.hash(SITE, "t"), one.hash(SITE, "u"));
        assert_ne!(one.hash(SITE, "t"), one.hash("https://other.example.com", "t"));
        assert_eq!(one.hash(SITE, "t"), one.hash(SITE, "t"));
    }
}
