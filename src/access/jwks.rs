//! The Access JWKS: parsing, key lookup by `kid`, and the per-isolate cache policy.
//! The policy decides when to fetch; the edge only performs the fetch it is told to.

use crate::primitives::error::Error;
use crate::primitives::strict_json::{self, Object};
use serde::Deserialize;

/// The only algorithm accepted; Access for SaaS signs with RS256.
pub const ALGORITHM: &str = "RS256";

/// An RSA verification key (RFC 7517 / RFC 7518 §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    pub n: String,
    pub e: String,
}

#[cfg(not(target_arch = "wasm32"))]
impl Jwk {
    /// The key for pure-Rust RS256 verification (native builds; the Worker imports it
    /// into WebCrypto instead).
    pub fn public_key(&self) -> Result<jwt_compact::alg::RsaPublicKey, Error> {
        use crate::primitives::error::TokenFailure;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use jwt_compact::jwk::JsonWebKey;
        let unusable = || Error::InvalidToken(TokenFailure::UnusableKey);
        // `n` and `e` are base64url without padding (RFC 7518 §6.3.1, RFC 7515 §2).
        let jwk = JsonWebKey::Rsa {
            modulus: URL_SAFE_NO_PAD.decode(&self.n).map_err(|_| unusable())?.into(),
            public_exponent: URL_SAFE_NO_PAD.decode(&self.e).map_err(|_| unusable())?.into(),
            private_parts: None,
        };
        jwt_compact::alg::RsaPublicKey::try_from(&jwk).map_err(|_| unusable())
    }
}

/// A JWK Set (RFC 7517 §5): a `keys` array of objects, unknown members ignored.
#[derive(Deserialize)]
struct JwkSet {
    #[serde(deserialize_with = "strict_json::objects")]
    keys: Vec<RawJwk>,
}

/// A JWK as published: each member a string, `null` or absent, unknown members ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet(Vec<Jwk>);

/// The result of looking a `kid` up.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(&'a Jwk),
    Unknown,
    /// Several keys share the `kid`: refuse rather than guess.
    Ambiguous,
}

impl KeySet {
    /// Keeps the RS256 signing keys with a `kid`; other keys are ignored. A JWK Set
    /// (RFC 7517 §5) without a `keys` array of objects, or with a key whose `kty`, `kid`,
    /// `alg`, `use`, `n` or `e` is neither a string nor `null`, is refused whole.
    pub fn parse(body: &str) -> Result<Self, Error> {
        let Object(set) = strict_json::from_slice::<Object<JwkSet>>(body.as_bytes())
            .map_err(|_| Error::unavailable("JWKS is not the expected JSON"))?;
        let keys = set
            .keys
            .into_iter()
            .filter(|k| k.kty.as_deref() == Some("RSA"))
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == ALGORITHM))
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| Some(Jwk { kid: k.kid?, n: k.n?, e: k.e? }))
            .collect();
        Ok(Self(keys))
    }

    pub fn find(&self, kid: &str) -> Lookup<'_> {
        let mut matches = self.0.iter().filter(|k| k.kid == kid);
        match (matches.next(), matches.next()) {
            (Some(key), None) => Lookup::Found(key),
            (None, _) => Lookup::Unknown,
            (Some(_), Some(_)) => Lookup::Ambiguous,
        }
    }

    /// Every key (the doctor command checks each is usable).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn keys(&self) -> &[Jwk] {
        &self.0
    }

    pub fn contains(&self, kid: &str) -> bool {
        matches!(self.find(kid), Lookup::Found(_))
    }
}

/// When to (re)fetch the JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksPolicy {
    /// Keys are refreshed after this long.
    pub ttl_seconds: u64,
    /// At most one fetch per this interval, whatever triggers it (an unknown `kid`,
    /// an outage): a `kid` spray cannot turn the gateway into a JWKS amplifier.
    pub min_refetch_seconds: u64,
}

/// What the edge should do for a token with a given `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    UseCached,
    /// The key is cached but the set is stale: use it, and refresh the set in the
    /// background (this request does not wait for Access).
    Refresh,
    /// The key is not known (or no set is): fetch the set and wait for it.
    Fetch,
    /// Another request of the isolate is fetching what this one needs: wait for it
    /// (a cold isolate's first burst, a burst right after a key rotation).
    Wait,
}

/// A fetch not finished after this long is presumed lost (its request was cancelled);
/// the edge's own fetch timeout is shorter.
pub const FETCH_TIMEOUT_SECONDS: u64 = 15;

/// The per-isolate JWKS cache: the last good key set, and when fetches happened.
#[derive(Debug, Default)]
pub struct JwksCache {
    keys: Option<KeySet>,
    fetched_at: u64,
    last_attempt: Option<u64>,
    in_flight_since: Option<u64>,
}

impl JwksCache {
    /// Decides whether a fetch is due, and records the attempt if so (concurrent
    /// requests in the isolate then wait for it rather than fetch again).
    pub fn plan(&mut self, kid: &str, now: u64, policy: JwksPolicy) -> Plan {
        let known = self.keys.as_ref().is_some_and(|keys| keys.contains(kid));
        if known && !self.stale(now, policy) {
            return Plan::UseCached;
        }
        if self.fetching(now) {
            return if known { Plan::UseCached } else { Plan::Wait };
        }
        if !self.may_fetch(now, policy) {
            return Plan::UseCached;
        }
        self.last_attempt = Some(now);
        self.in_flight_since = Some(now);
        if known {
            Plan::Refresh
        } else {
            Plan::Fetch
        }
    }

    /// Whether a refresh of a stale set is due now (the synchronous path hands such a
    /// request to the awaited one, which starts it: [`Plan::Refresh`]).
    pub fn refresh_due(&self, now: u64, policy: JwksPolicy) -> bool {
        self.keys.is_some() && self.stale(now, policy) && !self.fetching(now) && self.may_fetch(now, policy)
    }

    fn stale(&self, now: u64, policy: JwksPolicy) -> bool {
        now >= self.fetched_at + policy.ttl_seconds
    }

    /// A fetch in flight for longer than it may take is dead (its request was cancelled
    /// before it could say how it ended): it no longer counts.
    fn fetching(&self, now: u64) -> bool {
        self.in_flight_since.is_some_and(|since| now < since + FETCH_TIMEOUT_SECONDS)
    }

    /// At most one fetch per interval, unless the last one died (it fetched nothing).
    fn may_fetch(&self, now: u64, policy: JwksPolicy) -> bool {
        self.in_flight_since.is_some() || self.last_attempt.is_none_or(|last| now >= last + policy.min_refetch_seconds)
    }

    /// Stores a fetched key set.
    pub fn store(&mut self, keys: KeySet, now: u64) {
        self.keys = Some(keys);
        self.fetched_at = now;
        self.in_flight_since = None;
    }

    /// Ends a failed fetch; the old keys keep serving.
    pub fn fetch_failed(&mut self) {
        self.in_flight_since = None;
    }

    pub fn keys(&self) -> Result<&KeySet, Error> {
        self.keys.as_ref().ok_or(Error::unavailable("no JWKS available"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: JwksPolicy = JwksPolicy { ttl_seconds: 3600, min_refetch_seconds: 30 };

    fn keyset(kids: &[&str]) -> KeySet {
        KeySet(kids.iter().map(|k| Jwk { kid: (*k).into(), n: "n".into(), e: "AQAB".into() }).collect())
    }

    #[test]
    fn parses_rsa_signing_keys_only() {
        let body = r#"{"keys":[
            {"kty":"RSA","kid":"a","n":"n","e":"AQAB","alg":"RS256","use":"sig"},
            {"kty":"RSA","kid":"b","n":"n","e":"AQAB"},
            {"kty":"RSA","kid":"enc","n":"n","e":"AQAB","use":"enc"},
            {"kty":"RSA","kid":"ps","n":"n","e":"AQAB","alg":"PS256"},
            {"kty":"EC","kid":"ec","crv":"P-256","x":"x","y":"y"},
            {"kty":"RSA","n":"n","e":"AQAB"}
        ]}"#;
        let keys = KeySet::parse(body).unwrap();
        assert_eq!(keys, keyset(&["a", "b"]));
        assert!(KeySet::parse("<html>").is_err());
        assert!(KeySet::parse("{}").is_err());
    }

    #[test]
    fn a_key_member_of_another_type_refuses_the_set_and_null_is_absent() {
        let body = r#"{"keys":[
            {"kty":"RSA","kid":"a","n":"n","e":"AQAB","alg":null,"use":null,"x5c":[1]},
            {"kty":"RSA","kid":null,"n":"n","e":"AQAB"},
            {"kty":null,"kid":"c","n":"n","e":"AQAB"}
        ],"other":{}}"#;
        assert_eq!(KeySet::parse(body).unwrap(), keyset(&["a"]));
        let a = r#""kty":"RSA","kid":"a","n":"n","e":"AQAB""#;
        for bad in [
            r#"{"keys":null}"#.to_owned(),
            r#"{"keys":{}}"#.to_owned(),
            r#"[{"keys":[]}]"#.to_owned(),
            r#"{"keys":["a"]}"#.to_owned(),
            r#"{"keys":[["RSA","a","RS256","sig","n","AQAB"]]}"#.to_owned(),
            format!(r#"{{"keys":[{{{a},"kid":"a"}}]}}"#),
            format!(r#"{{"keys":[{{{a}}}],"keys":[]}}"#),
            format!(r#"{{"keys":[{{{a}}},{{"kty":"EC","kid":7}}]}}"#),
            format!(r#"{{"keys":[{{{a},"alg":["RS256"]}}]}}"#),
            format!(r#"{{"keys":[{{{a},"use":1}}]}}"#),
            r#"{"keys":[{"kty":"RSA","kid":"a","n":1,"e":"AQAB"}]}"#.to_owned(),
            r#"{"keys":[{"kty":"RSA","kid":"a","n":"n","e":false}]}"#.to_owned(),
        ] {
            assert!(KeySet::parse(&bad).is_err(), "{bad}");
        }
    }

    /// `n` and `e` decode as jwt-compact's own JWK reader decoded them: base64url, no padding.
    #[test]
    fn public_keys_decode_as_jwt_compact_reads_a_jwk() {
        use jwt_compact::jwk::JsonWebKey;
        let test_key = crate::access::token::tests::test_jwks().keys()[0].clone();
        let by_jwt_compact = |key: &Jwk| {
            let jwk = serde_json::json!({"kty": "RSA", "n": key.n, "e": key.e});
            let jwk: JsonWebKey<'_> = serde_json::from_value(jwk).ok()?;
            jwt_compact::alg::RsaPublicKey::try_from(&jwk).ok()
        };
        let with = |n: &str, e: &str| Jwk { kid: "k".into(), n: n.into(), e: e.into() };
        let n = test_key.n.as_str();
        let standard_alphabet = n.replace('-', "+").replace('_', "/");
        assert_ne!(standard_alphabet, n, "the test modulus has a character base64 writes differently");
        for key in [
            test_key.clone(),
            with(n, "AQAB"),
            with(n, "AQAB=="),
            with(n, "AQ"),
            with(n, "AQA"),
            with(n, ""),
            with(n, "AQAB "),
            with(&standard_alphabet, "AQAB"),
            with(&format!("{n}="), "AQAB"),
            with(&n[1..], "AQAB"),
            with(&n[..n.len() - 1], "AQAB"),
            with("AQAB", "AQAB"),
        ] {
            assert_eq!(key.public_key().ok(), by_jwt_compact(&key), "n {} e {}", key.n, key.e);
        }
        assert!(test_key.public_key().is_ok());
    }

    #[test]
    fn lookup_refuses_duplicates() {
        let keys = keyset(&["a", "a", "b"]);
        assert_eq!(keys.find("a"), Lookup::Ambiguous);
        assert!(matches!(keys.find("b"), Lookup::Found(_)));
        assert_eq!(keys.find("c"), Lookup::Unknown);
    }

    #[test]
    fn fetches_first_then_on_ttl_and_unknown_kid_at_most_once_per_interval() {
        let mut cache = JwksCache::default();
        assert!(cache.keys().is_err());
        assert_eq!(cache.plan("a", 1000, POLICY), Plan::Fetch);
        cache.store(keyset(&["a"]), 1000);
        assert_eq!(cache.plan("a", 1001, POLICY), Plan::UseCached);
        // A kid spray: one refetch, then nothing for the interval.
        assert_eq!(cache.plan("x1", 1040, POLICY), Plan::Fetch);
        cache.store(keyset(&["a"]), 1040);
        for (i, t) in (1041..1069).enumerate() {
            assert_eq!(cache.plan(&format!("x{i}"), t, POLICY), Plan::UseCached);
        }
        assert_eq!(cache.plan("x99", 1070, POLICY), Plan::Fetch);
        // TTL refresh: in the background, with the cached key serving meanwhile.
        cache.store(keyset(&["a"]), 1070);
        assert_eq!(cache.plan("a", 1070 + 3599, POLICY), Plan::UseCached);
        assert!(!cache.refresh_due(1070 + 3599, POLICY));
        assert!(cache.refresh_due(1070 + 3600, POLICY));
        assert_eq!(cache.plan("a", 1070 + 3600, POLICY), Plan::Refresh);
        assert!(!cache.refresh_due(1070 + 3600, POLICY), "one refresh in flight");
        assert_eq!(cache.plan("a", 1070 + 3601, POLICY), Plan::UseCached, "no request waits for it");
        // Under a stale set, an unknown kid still waits for the refresh in flight.
        assert_eq!(cache.plan("b", 1070 + 3601, POLICY), Plan::Wait);
        cache.store(keyset(&["a", "b"]), 1070 + 3602);
        assert_eq!(cache.plan("b", 1070 + 3602, POLICY), Plan::UseCached);
    }

    #[test]
    fn concurrent_requests_wait_for_the_fetch_in_flight() {
        let mut cache = JwksCache::default();
        assert_eq!(cache.plan("a", 1000, POLICY), Plan::Fetch);
        assert_eq!(cache.plan("a", 1000, POLICY), Plan::Wait);
        cache.store(keyset(&["a"]), 1001);
        assert_eq!(cache.plan("a", 1001, POLICY), Plan::UseCached);
        // A rotation: the first token with the new kid fetches, the others wait,
        // requests with the known kid go on meanwhile.
        assert_eq!(cache.plan("b", 1040, POLICY), Plan::Fetch);
        assert_eq!(cache.plan("b", 1040, POLICY), Plan::Wait);
        assert_eq!(cache.plan("a", 1040, POLICY), Plan::UseCached);
    }

    #[test]
    fn a_fetch_that_never_ends_is_dead_after_the_deadline() {
        let mut cache = JwksCache::default();
        // A cold isolate's fetch whose request was cancelled: nothing is ever stored.
        assert_eq!(cache.plan("a", 1000, POLICY), Plan::Fetch);
        assert_eq!(cache.plan("a", 1000 + FETCH_TIMEOUT_SECONDS - 1, POLICY), Plan::Wait);
        // Past the deadline the marker no longer blocks, and a new fetch starts at
        // once (within the refetch interval: the dead one fetched nothing).
        const { assert!(FETCH_TIMEOUT_SECONDS < POLICY.min_refetch_seconds) };
        assert_eq!(cache.plan("a", 1000 + FETCH_TIMEOUT_SECONDS, POLICY), Plan::Fetch);
        assert_eq!(cache.plan("a", 1000 + FETCH_TIMEOUT_SECONDS, POLICY), Plan::Wait);
        cache.store(keyset(&["a"]), 1000 + FETCH_TIMEOUT_SECONDS + 1);
        assert_eq!(cache.plan("a", 1000 + FETCH_TIMEOUT_SECONDS + 1, POLICY), Plan::UseCached);
        // Deaths are bounded too: at most one fetch per deadline, however many requests.
        assert_eq!(cache.plan("b", 2000, POLICY), Plan::Fetch);
        for t in 2000..2000 + FETCH_TIMEOUT_SECONDS {
            assert_eq!(cache.plan("b", t, POLICY), Plan::Wait);
        }
        assert_eq!(cache.plan("b", 2000 + FETCH_TIMEOUT_SECONDS, POLICY), Plan::Fetch);
    }

    #[test]
    fn outage_keeps_old_keys_and_rate_limits_attempts() {
        let mut cache = JwksCache::default();
        assert_eq!(cache.plan("a", 0, POLICY), Plan::Fetch);
        cache.fetch_failed();
        // The first fetch failed: nothing stored, the next attempt waits.
        assert_eq!(cache.plan("a", 10, POLICY), Plan::UseCached);
        assert!(cache.keys().is_err());
        assert_eq!(cache.plan("a", 30, POLICY), Plan::Fetch);
        cache.store(keyset(&["a"]), 30);
        // Stale and the refresh fails: the old keys keep serving, and the next attempt
        // waits for the interval.
        assert_eq!(cache.plan("a", 5000, POLICY), Plan::Refresh);
        cache.fetch_failed();
        assert!(cache.keys().unwrap().contains("a"));
        assert!(!cache.refresh_due(5010, POLICY));
        assert!(cache.refresh_due(5030, POLICY));
    }
}
