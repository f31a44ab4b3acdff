//! Sealing: how the gateway carries state between requests without storing any.
//!
//! A sealed value is `base64url(version ‖ key id ‖ nonce ‖ XChaCha20-Poly1305(payload))`.
//! The payload is JSON with an expiry; the purpose (state, code, …) is bound as
//! associated data, so a value sealed for one purpose never opens as another.
//! Several keys may be configured: the first seals, all of them open (rotation).

use crate::primitives::error::{Error, TokenFailure};
use crate::primitives::strict_json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
pub const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
/// Sealed values travel in URLs and headers; anything longer is not ours.
const MAX_SEALED_LEN: usize = 8 * 1024;

/// What a sealed value is for. Part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The `state` the gateway sends to Access.
    State,
    /// The authorization `code` the gateway hands to the client.
    Code,
    /// The consent form's ticket (the validated authorization request).
    ConsentTicket,
    /// The cookie remembering a consent for one redirect target.
    ConsentCookie,
    /// An access token minted by the gateway (sealed token mode).
    AccessToken,
    /// A refresh token wrapping Access's (every token mode).
    RefreshToken,
    /// A refresh answer kept for the reuse grace, under a key derived from the refresh
    /// token it answered ([`crate::oauth::refresh_grace`]).
    RefreshGrace,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::State => b"mcp-access-gateway/state",
            Self::Code => b"mcp-access-gateway/code",
            Self::ConsentTicket => b"mcp-access-gateway/consent-ticket",
            Self::ConsentCookie => b"mcp-access-gateway/consent-cookie",
            Self::AccessToken => b"mcp-access-gateway/access-token",
            Self::RefreshToken => b"mcp-access-gateway/refresh-token",
            Self::RefreshGrace => b"mcp-access-gateway/refresh-grace",
        }
    }
}

/// Why a sealed value did not open. The distinctions are for logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    Malformed,
    UnknownKey,
    /// Tampered with, sealed for another purpose, or sealed by a key we do not have.
    Forged,
    Expired,
}

impl From<OpenError> for TokenFailure {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Malformed => Self::SealedMalformed,
            OpenError::UnknownKey => Self::SealedUnknownKey,
            OpenError::Forged => Self::SealedForged,
            OpenError::Expired => Self::SealedExpired,
        }
    }
}

/// A source of random bytes (WebCrypto in the Worker, a counter in tests). A failure
/// is an error, never zeros: repeated nonces would break XChaCha20-Poly1305 and
/// predictable values the consent page's CSRF defence.
pub trait Entropy {
    fn fill(&mut self, bytes: &mut [u8]) -> Result<(), Error>;
}

struct SealingKey {
    id: [u8; KEY_ID_LEN],
    cipher: XChaCha20Poly1305,
}

/// The configured sealing keys; `Debug` never shows key material.
pub struct SealingKeys(Vec<SealingKey>);

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKeys([redacted; {}])", self.0.len())
    }
}

impl SealingKeys {
    /// Parses a comma-separated list of base64 (standard or URL-safe) 32-byte keys.
    pub fn parse(list: &str) -> Result<Self, &'static str> {
        let keys = list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|encoded| {
                let bytes = URL_SAFE_NO_PAD
                    .decode(encoded.trim_end_matches('='))
                    .or_else(|_| STANDARD.decode(encoded))
                    .map_err(|_| "must be base64")?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| "must hold 32-byte keys (openssl rand -base64 32)")?;
                Ok(Self::key(&key))
            })
            .collect::<Result<Vec<_>, &'static str>>()?;
        if keys.is_empty() {
            return Err("is empty");
        }
        Ok(Self(keys))
    }

    /// One key the gateway derived itself rather than read from `SEALING_KEYS`.
    pub fn single(bytes: &[u8; 32]) -> Self {
        Self(vec![Self::key(bytes)])
    }

    fn key(bytes: &[u8; 32]) -> SealingKey {
        let digest = Sha256::digest(bytes);
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        SealingKey { id, cipher: XChaCha20Poly1305::new(bytes.into()) }
    }

    fn aad(purpose: Purpose, key_id: &[u8]) -> Vec<u8> {
        [&[VERSION][..], key_id, purpose.label()].concat()
    }

    /// Seals `value` in the envelope `{"exp": expires_at, "v": value}`.
    pub fn seal<T: Serialize>(
        &self,
        purpose: Purpose,
        value: &T,
        expires_at: u64,
        entropy: &mut dyn Entropy,
    ) -> Result<String, Error> {
        let envelope = serde_json::to_vec(&Envelope { exp: expires_at, v: value })
            .map_err(|_| Error::Internal { reason: "a value that cannot be sealed" })?;
        self.seal_plaintext(purpose, &envelope, entropy)
    }

    fn seal_plaintext(&self, purpose: Purpose, plaintext: &[u8], entropy: &mut dyn Entropy) -> Result<String, Error> {
        let key = &self.0[0];
        let mut nonce = [0u8; NONCE_LEN];
        entropy.fill(&mut nonce)?;
        let aad = Self::aad(purpose, &key.id);
        let ciphertext = key
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| Error::Internal { reason: "sealing failed" })?;
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The value sealed for `purpose`, if it has not expired at `now`. An envelope or a value
    /// that does not fit is `Malformed`, expired or not (it is read whole before `exp` is checked).
    pub fn open<T: DeserializeOwned>(&self, purpose: Purpose, sealed: &str, now: u64) -> Result<T, OpenError> {
        self.open_expiring(purpose, sealed, now).map(|(value, _)| value)
    }

    /// As [`Self::open`], with the value's expiry.
    pub fn open_expiring<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        sealed: &str,
        now: u64,
    ) -> Result<(T, u64), OpenError> {
        let plaintext = self.open_plaintext(purpose, sealed)?;
        let strict_json::Object(Envelope { exp, v }) =
            strict_json::from_slice(&plaintext).map_err(|_| OpenError::Malformed)?;
        if exp <= now {
            return Err(OpenError::Expired);
        }
        Ok((v, exp))
    }

    fn open_plaintext(&self, purpose: Purpose, sealed: &str) -> Result<Vec<u8>, OpenError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(OpenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| OpenError::Malformed)?;
        if bytes.len() < HEADER_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        let (key_id, rest) = bytes[1..].split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = self.0.iter().find(|k| k.id == key_id).ok_or(OpenError::UnknownKey)?;
        let aad = Self::aad(purpose, key_id);
        key.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| OpenError::Forged)
    }
}

/// What is sealed: the value and when it expires. The payloads are derived serde types: a
/// member they require must be there with its type, an optional one may be absent or
/// `null`, unknown ones are ignored.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    exp: u64,
    v: T,
}

/// Base64url SHA-256, used to bind values without revealing them.
pub fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Deterministic entropy for tests: a counter.
    #[derive(Default)]
    pub struct CountingEntropy(pub u8);

    impl Entropy for CountingEntropy {
        fn fill(&mut self, bytes: &mut [u8]) -> Result<(), Error> {
            self.0 = self.0.wrapping_add(1);
            bytes.fill(self.0);
            Ok(())
        }
    }

    /// A runtime without randomness.
    pub struct NoEntropy;

    impl Entropy for NoEntropy {
        fn fill(&mut self, _: &mut [u8]) -> Result<(), Error> {
            Err(Error::Internal { reason: "no randomness" })
        }
    }

    /// `plaintext` sealed as it is: an envelope as an earlier version wrote it, or a bad one.
    fn seal_text(keys: &SealingKeys, purpose: Purpose, plaintext: &str) -> String {
        keys.seal_plaintext(purpose, plaintext.as_bytes(), &mut CountingEntropy::default()).unwrap()
    }

    /// The JSON text `payload` (as an earlier version wrote it, or a bad one) sealed in an
    /// unexpired envelope for `purpose`, opened.
    pub fn open_text<T: DeserializeOwned>(purpose: Purpose, payload: &str) -> Result<T, OpenError> {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let envelope = format!(r#"{{"exp":100,"v":{payload}}}"#);
        keys.open(purpose, &seal_text(&keys, purpose, &envelope), 99)
    }

    #[test]
    fn no_randomness_no_seal() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        assert_eq!(keys.seal(Purpose::Code, &"x", 9, &mut NoEntropy), Err(Error::Internal { reason: "no randomness" }));
    }

    pub const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    pub const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    fn seal_a(purpose: Purpose, exp: u64) -> String {
        SealingKeys::parse(KEY_A).unwrap().seal(purpose, &"payload", exp, &mut CountingEntropy::default()).unwrap()
    }

    #[test]
    fn round_trips_until_expiry() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let sealed = seal_a(Purpose::Code, 100);
        assert_eq!(keys.open::<String>(Purpose::Code, &sealed, 99), Ok("payload".into()));
        assert_eq!(keys.open_expiring::<String>(Purpose::Code, &sealed, 99), Ok(("payload".into(), 100)));
        assert_eq!(keys.open::<String>(Purpose::Code, &sealed, 100), Err(OpenError::Expired));
    }

    #[test]
    fn a_single_derived_key_seals_and_opens_alone() {
        let derived = SealingKeys::single(&[7; 32]);
        let sealed = derived.seal(Purpose::RefreshGrace, &"answer", 100, &mut CountingEntropy::default()).unwrap();
        assert_eq!(derived.open::<String>(Purpose::RefreshGrace, &sealed, 99), Ok("answer".into()));
        assert_eq!(
            SealingKeys::single(&[8; 32]).open::<String>(Purpose::RefreshGrace, &sealed, 99),
            Err(OpenError::UnknownKey)
        );
        let configured = SealingKeys::parse(KEY_A).unwrap();
        assert_eq!(configured.open::<String>(Purpose::RefreshGrace, &sealed, 99), Err(OpenError::UnknownKey));
    }

    #[test]
    fn the_envelope_is_written_and_read_as_serde_did() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let written = keys.open_plaintext(Purpose::Code, &seal_a(Purpose::Code, 100)).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), r#"{"exp":100,"v":"payload"}"#);
        let old = seal_text(&keys, Purpose::Code, r#"{"exp":100,"v":"payload"}"#);
        assert_eq!(keys.open::<String>(Purpose::Code, &old, 99), Ok("payload".into()));
        // Members it does not know are ignored, as serde's derive did.
        let extra = seal_text(&keys, Purpose::Code, r#" {"v":"payload","x":[1],"exp":100} "#);
        assert_eq!(keys.open::<String>(Purpose::Code, &extra, 99), Ok("payload".into()));
    }

    #[test]
    fn a_bad_envelope_is_malformed_even_when_expired() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        for text in [
            r#"{"v":"payload"}"#,
            r#"{"exp":null,"v":"payload"}"#,
            r#"{"exp":"100","v":"payload"}"#,
            r#"{"exp":100.0,"v":"payload"}"#,
            r#"{"exp":-1,"v":"payload"}"#,
            r#"{"exp":100}"#,
            r#"{"exp":100,"v":null}"#,
            r#"{"exp":100,"v":7}"#,
            r#"{"exp":100,"v":"a","v":"b"}"#,
            r#"[100,"payload"]"#,
            r#""payload""#,
            r#"{"exp":100,"v":"payload"},"#,
            "",
        ] {
            let sealed = seal_text(&keys, Purpose::Code, text);
            for now in [0, 100] {
                assert_eq!(keys.open::<String>(Purpose::Code, &sealed, now), Err(OpenError::Malformed), "{text}");
            }
        }
    }

    #[test]
    fn purpose_is_bound() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let sealed = seal_a(Purpose::State, 100);
        assert_eq!(keys.open::<String>(Purpose::Code, &sealed, 0), Err(OpenError::Forged));
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(seal_a(Purpose::Code, 100)).unwrap();
        for bit in 0..raw.len() * 8 {
            let mut tampered = raw.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            let result = keys.open::<String>(Purpose::Code, &URL_SAFE_NO_PAD.encode(&tampered), 0);
            assert!(result.is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn truncation_and_garbage_are_malformed() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let sealed = seal_a(Purpose::Code, 100);
        assert!(keys.open::<String>(Purpose::Code, &sealed[..sealed.len() - 1], 0).is_err());
        assert_eq!(keys.open::<String>(Purpose::Code, &sealed[..20], 0), Err(OpenError::Malformed));
        assert_eq!(keys.open::<String>(Purpose::Code, "not base64!", 0), Err(OpenError::Malformed));
        assert_eq!(keys.open::<String>(Purpose::Code, "", 0), Err(OpenError::Malformed));
        assert_eq!(keys.open::<String>(Purpose::Code, &"A".repeat(9000), 0), Err(OpenError::Malformed));
    }

    #[test]
    fn rotation_new_key_seals_old_key_still_opens() {
        let old = seal_a(Purpose::Code, 100);
        let rotated = SealingKeys::parse(&format!("{KEY_B},{KEY_A}")).unwrap();
        assert_eq!(rotated.open::<String>(Purpose::Code, &old, 0), Ok("payload".into()));
        let new = rotated.seal(Purpose::Code, &"n", 100, &mut CountingEntropy::default()).unwrap();
        let only_a = SealingKeys::parse(KEY_A).unwrap();
        assert_eq!(only_a.open::<String>(Purpose::Code, &new, 0), Err(OpenError::UnknownKey));
        let only_b = SealingKeys::parse(KEY_B).unwrap();
        assert_eq!(only_b.open::<String>(Purpose::Code, &old, 0), Err(OpenError::UnknownKey));
    }

    #[test]
    fn nonces_differ_and_keys_are_validated() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let mut entropy = CountingEntropy::default();
        assert_ne!(keys.seal(Purpose::Code, &"1", 9, &mut entropy), keys.seal(Purpose::Code, &"1", 9, &mut entropy));
        assert!(keys.seal(Purpose::Code, &"1", 9, &mut entropy).is_ok());
        assert!(SealingKeys::parse("").is_err());
        assert!(SealingKeys::parse("c2hvcnQ=").is_err());
        assert!(SealingKeys::parse("***").is_err());
        assert_eq!(format!("{keys:?}"), "SealingKeys([redacted; 1])");
    }

    proptest::proptest! {
        #[test]
        fn any_payload_round_trips(payload in ".{0,200}", exp in 1u64..u64::MAX) {
            let keys = SealingKeys::parse(KEY_A).unwrap();
            let sealed = keys.seal(Purpose::State, &payload, exp, &mut CountingEntropy::default()).unwrap();
            proptest::prop_assert_eq!(keys.open::<String>(Purpose::State, &sealed, exp - 1), Ok(payload));
        }

        #[test]
        fn any_bit_flip_is_rejected(payload in ".{0,64}", bit in 0usize..10_000) {
            let keys = SealingKeys::parse(KEY_A).unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(keys.seal(Purpose::Code, &payload, 100, &mut CountingEntropy::default()).unwrap()).unwrap();
            let bit = bit % (raw.len() * 8);
            raw[bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert!(keys.open::<String>(Purpose::Code, &URL_SAFE_NO_PAD.encode(&raw), 0).is_err());
        }

        #[test]
        fn arbitrary_input_never_opens_or_panics(input in "\\PC{0,300}") {
            let keys = SealingKeys::parse(KEY_A).unwrap();
            proptest::prop_assert!(keys.open::<String>(Purpose::AccessToken, &input, 0).is_err());
        }
    }
}
