//! The verified-token cache: a session's requests skip RSA work. Keyed by a SHA-256
//! of the token (the token itself is never kept), bounded, and consulted only under
//! the checks a fresh validation would still fail: the signing key must still be in
//! the JWKS and the time window must still hold.

use crate::access_token::{Identity, TokenPolicy};
use crate::jwks::KeySet;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

type TokenHash = [u8; 32];

struct Entry {
    identity: Identity,
    kid: String,
}

pub struct VerifiedTokenCache {
    capacity: usize,
    entries: HashMap<TokenHash, Entry>,
    /// Insertion order, for eviction.
    order: VecDeque<TokenHash>,
}

fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokenCache {
    /// A capacity of 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, entries: HashMap::new(), order: VecDeque::new() }
    }

    pub fn get(&self, token: &str, policy: &TokenPolicy, keys: &KeySet, now: u64) -> Option<Identity> {
        let entry = self.entries.get(&hash(token))?;
        let still_valid = keys.contains(&entry.kid)
            && policy.check_time(entry.identity.not_before, entry.identity.expires_at, now).is_ok();
        still_valid.then(|| entry.identity.clone())
    }

    pub fn insert(&mut self, token: &str, kid: &str, identity: Identity, now: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.identity.expires_at > now);
            self.order.retain(|h| self.entries.contains_key(h));
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => self.entries.remove(&oldest),
                None => break,
            };
        }
        let key = hash(token);
        if self.entries.insert(key, Entry { identity, kid: kid.to_owned() }).is_none() {
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
    use crate::access_token::Allowlist;

    fn policy() -> TokenPolicy {
        TokenPolicy { issuer: "iss".into(), audiences: vec![], leeway_seconds: 0, allowlist: Allowlist::default() }
    }

    fn identity(exp: u64) -> Identity {
        Identity { subject: "s".into(), email: None, groups: vec![], not_before: Some(100), expires_at: exp }
    }

    fn keys(kids: &[&str]) -> KeySet {
        let body = serde_json::json!({"keys": kids.iter().map(|k| serde_json::json!({"kty":"RSA","kid":k,"n":"n","e":"AQAB"})).collect::<Vec<_>>()});
        KeySet::parse(&body.to_string()).unwrap()
    }

    #[test]
    fn hit_only_while_fresh_validation_would_pass() {
        let mut cache = VerifiedTokenCache::new(8);
        cache.insert("t", "k1", identity(200), 150);
        assert_eq!(cache.get("t", &policy(), &keys(&["k1"]), 150), Some(identity(200)));
        assert_eq!(cache.get("t", &policy(), &keys(&["k1"]), 200), None, "expired");
        assert_eq!(cache.get("t", &policy(), &keys(&["k1"]), 99), None, "not yet valid");
        assert_eq!(cache.get("t", &policy(), &keys(&["k2"]), 150), None, "key retired");
        assert_eq!(cache.get("other", &policy(), &keys(&["k1"]), 150), None);
    }

    #[test]
    fn bounded_evicts_expired_then_oldest() {
        let mut cache = VerifiedTokenCache::new(2);
        cache.insert("a", "k", identity(120), 110);
        cache.insert("b", "k", identity(500), 110);
        cache.insert("c", "k", identity(500), 130); // "a" has expired: it goes first.
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", &policy(), &keys(&["k"]), 110).is_none());
        cache.insert("d", "k", identity(500), 140); // Full of live entries: the oldest ("b") goes.
        assert!(cache.get("b", &policy(), &keys(&["k"]), 140).is_none());
        assert!(cache.get("c", &policy(), &keys(&["k"]), 140).is_some());
        assert!(cache.get("d", &policy(), &keys(&["k"]), 140).is_some());
    }

    #[test]
    fn zero_capacity_disables() {
        let mut cache = VerifiedTokenCache::new(0);
        cache.insert("a", "k", identity(500), 110);
        assert!(cache.is_empty());
    }
}
