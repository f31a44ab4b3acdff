//! Validating Access's JWT access tokens at the edge (RFC 6750, RFC 9068 style).
//!
//! Trust is a type change: [`UntrustedAccessToken`] (the JWS compact serialisation and its
//! header read by jwt-compact, the algorithm pinned to RS256, never taken from the token) →
//! [`SignedAccessToken`] (signature checked against a key from the Access JWKS, by WebCrypto
//! in the Worker or by jwt-compact's pure-Rust RSA natively) → [`Identity`] (the claims read
//! with serde; issuer, audience and allowlists checked here, time by jwt-compact on the
//! gateway's clock).

#[cfg(not(target_arch = "wasm32"))]
use crate::access::jwks::Jwk;
use crate::access::jwks::ALGORITHM;
use crate::primitives::error::{Error, TokenFailure};
use crate::primitives::secret::Secret;
use crate::primitives::strict_json::{self, Object};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use jwt_compact::{Claims, ParseError, TimeOptions, UntrustedToken};
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Real Access tokens are ~1 KB; anything far larger is refused before parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The bearer token from an `Authorization` header (RFC 6750 §2.1; never from the
/// query string or body). `None` when no bearer credentials were presented.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The header member jwt-compact leaves to the application that the gateway reads: `crit`
/// names extensions the token says must be understood (RFC 7515 §4.1.11). The gateway
/// understands none, so a token that has `crit` at all, even `null`, is refused.
#[derive(Deserialize)]
struct HeaderExtensions {
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// A member that is there, whatever its value.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// A member that is there and not `null`, whatever its value.
fn not_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Option::<IgnoredAny>::deserialize(deserializer).map(|value| value.is_some())
}

/// A JWT in the JWS Compact Serialization (RFC 7515 §7.1): split, decoded and its header read
/// by jwt-compact (`alg` a string, `kid`, `typ` and `cty` strings or `null` or absent, `cty`
/// JSON in any case); nothing is verified.
struct CompactJws<'a> {
    token: UntrustedToken<'a, HeaderExtensions>,
    /// The JWS signing input (`header.claims`, as sent).
    signed_data: Cow<'a, str>,
    claims: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Exactly three base64url parts without padding (`NotJws` when not three parts); the
    /// header a JSON object with each name once, at any depth (`MalformedJwt` otherwise).
    /// The claims are decoded from base64url here, from JSON by [`Self::claims`].
    fn parse(raw: &'a str) -> Result<Self, TokenFailure> {
        let token = UntrustedToken::<HeaderExtensions>::try_from(raw).map_err(|error| match error {
            ParseError::InvalidTokenStructure => TokenFailure::NotJws,
            _ => TokenFailure::MalformedJwt,
        })?;
        let (signed_data, _) = raw.rsplit_once('.').ok_or(TokenFailure::NotJws)?;
        let (header, claims) = signed_data.split_once('.').ok_or(TokenFailure::NotJws)?;
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenFailure::MalformedJwt);
        // jwt-compact reads the header with serde_json alone, which takes a name twice.
        strict_json::from_slice::<Object<IgnoredAny>>(&decode(header)?).map_err(|_| TokenFailure::MalformedJwt)?;
        if token.header().other_fields.crit {
            return Err(TokenFailure::CriticalExtension);
        }
        Ok(Self { token, signed_data: Cow::Borrowed(signed_data), claims: decode(claims)? })
    }

    /// The claims as `T`, if they are a JSON object with each name once that fits `T`
    /// (RFC 7519 §7.2: the claims are an object, whatever `T` would take).
    fn claims<T: DeserializeOwned>(&self) -> Option<T> {
        strict_json::from_slice::<Object<T>>(&self.claims).ok().map(|Object(claims)| claims)
    }
}

/// A parsed token whose signature has not been checked.
pub struct UntrustedAccessToken<'a>(CompactJws<'a>);

impl std::fmt::Debug for UntrustedAccessToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UntrustedAccessToken([redacted])")
    }
}

impl<'a> UntrustedAccessToken<'a> {
    pub fn parse(raw: &'a str) -> Result<Self, Error> {
        if raw.is_empty() || raw.len() > MAX_TOKEN_LEN {
            return Err(Error::InvalidToken(TokenFailure::Oversized));
        }
        let jws = CompactJws::parse(raw).map_err(Error::InvalidToken)?;
        // Pinned: the header's `alg` must be RS256, whatever it says about itself.
        if jws.token.algorithm() != ALGORITHM {
            return Err(Error::InvalidToken(TokenFailure::NotRs256));
        }
        if jws.token.header().key_id.as_deref().is_none_or(str::is_empty) {
            return Err(Error::InvalidToken(TokenFailure::NoKeyId));
        }
        Ok(Self(jws))
    }

    /// The token with its parts copied, for a check that outlives the request's borrow (the
    /// Worker's signature check, awaited by its entry).
    pub fn into_owned(self) -> UntrustedAccessToken<'static> {
        let CompactJws { token, signed_data, claims } = self.0;
        UntrustedAccessToken(CompactJws {
            token: token.into_owned(),
            signed_data: Cow::Owned(signed_data.into_owned()),
            claims,
        })
    }

    pub fn key_id(&self) -> &str {
        self.0.token.header().key_id.as_deref().unwrap_or_default()
    }

    /// The JWS signing input (`header.claims`).
    pub fn signed_data(&self) -> &[u8] {
        self.0.signed_data.as_bytes()
    }

    pub fn signature(&self) -> &[u8] {
        self.0.token.signature_bytes()
    }

    /// An escape hatch: the token as if its signature had been checked, with nothing checked
    /// here. The caller vouches that it verified [`Self::signature`] over
    /// [`Self::signed_data`] with RSASSA-PKCS1-v1_5/SHA-256 and the key for [`Self::key_id`]
    /// from the configured JWKS (the Worker does, with WebCrypto), or that nothing it decides
    /// rests on the result (the fuzz target, which reads the claims of any token).
    pub fn insecure_assume_signature_verified(self) -> SignedAccessToken<'a> {
        SignedAccessToken(self)
    }

    /// Pure-Rust RS256 verification (native builds; the Worker uses WebCrypto).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn verify_rs256(self, key: &Jwk) -> Result<SignedAccessToken<'a>, Error> {
        use jwt_compact::alg::{Rsa, RsaSignature};
        use jwt_compact::{Algorithm, AlgorithmSignature};
        let public_key = key.public_key()?;
        // The signature alone, as WebCrypto checks it in the Worker: claims are the policy's.
        let signature = RsaSignature::try_from_slice(self.signature())
            .map_err(|_| Error::InvalidToken(TokenFailure::BadSignature))?;
        if Rsa::rs256().verify_signature(&signature, &public_key, self.signed_data()) {
            Ok(self.insecure_assume_signature_verified())
        } else {
            Err(Error::InvalidToken(TokenFailure::BadSignature))
        }
    }
}

/// A token whose RS256 signature has been verified; claims not yet checked.
pub struct SignedAccessToken<'a>(UntrustedAccessToken<'a>);

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrMany;

        impl<'de> Visitor<'de> for OneOrMany {
            type Value = Audience;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E>(self, aud: &str) -> Result<Audience, E> {
                Ok(Audience::One(aud.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Audience, A::Error> {
                let mut auds = Vec::new();
                while let Some(aud) = items.next_element()? {
                    auds.push(aud);
                }
                Ok(Audience::Many(auds))
            }
        }

        deserializer.deserialize_any(OneOrMany)
    }
}

/// The claims the gateway reads. Unknown claims are ignored; a known one of another type
/// makes the claims malformed, except that `null` reads as absent where the claim is
/// optional anyway.
#[derive(Deserialize)]
struct AccessClaims {
    #[serde(default)]
    exp: NumericDate,
    #[serde(default)]
    nbf: NumericDate,
    #[serde(default)]
    iat: NumericDate,
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
    email: Option<String>,
    /// Absent is no groups; `null` is not a list.
    #[serde(default)]
    groups: Vec<String>,
    /// Claims only an OpenID Connect `id_token` carries (OIDC Core §2, §3.1.3.6); the
    /// gateway always sends Access a `nonce`, so its `id_token`s always have one.
    nonce: Option<String>,
    /// `at_hash` there and not `null`; its value is not read.
    #[serde(default, deserialize_with = "not_null")]
    at_hash: bool,
}

/// The latest NumericDate accepted: 9999-12-31T23:59:59Z (and as far before 1970).
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, read from its digits as written
/// (the exponent applied, then a fraction dropped). `null`, other types and times beyond
/// [`MAX_NUMERIC_DATE`] are malformed; absent is `None`, and so is a time before 1970 (an
/// `exp` then fails as missing).
#[derive(Default)]
struct NumericDate(Option<u64>);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Box::<RawValue>::deserialize(deserializer)?;
        let text = value.get();
        let seconds = text
            .starts_with(|c: char| c == '-' || c.is_ascii_digit())
            .then(|| truncated(text))
            .flatten()
            .filter(|seconds| seconds.unsigned_abs() <= MAX_NUMERIC_DATE)
            .ok_or_else(|| de::Error::custom("not a NumericDate"))?;
        Ok(Self(u64::try_from(seconds).ok()))
    }
}

/// The integer part of a JSON number (its fraction dropped, its exponent applied), if it
/// fits `i64`: `1700000000.9` and `1.7e9` are `1700000000`. From the digits, not a double,
/// which would round `1.80000030099999999999e9` up a second.
fn truncated(number: &str) -> Option<i64> {
    let (negative, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    // Leading zeros dropped, so that no more than 19 digits are ever read: `0e999999999`
    // is 0 at once, not after a billion steps.
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    let digits = &digits[zeros..];
    // Where the decimal point falls in `digits` once the exponent is applied.
    let point = whole.len() as i64 - zeros as i64 + exponent as i64;
    if digits.is_empty() {
        return Some(0);
    }
    if point > 19 {
        return None; // at least 10^19, beyond i64
    }
    let mut value: i64 = 0;
    for i in 0..point.max(0) {
        let digit = digits.get(i as usize).map_or(0, |d| d - b'0');
        let signed = if negative { -(digit as i64) } else { digit as i64 };
        value = value.checked_mul(10)?.checked_add(signed)?;
    }
    Some(value)
}

/// Which token a policy checks: Access's `id_token` (at `/token`, sealed mode) is a
/// statement for the gateway, never a credential a client may present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    AccessToken,
    /// `nonce`: what the gateway sent with the authorization request this `id_token`
    /// answers; an `id_token` naming another one answers another request. (One
    /// without a nonce is accepted: it came straight from Access's token endpoint.)
    IdToken {
        nonce: Option<String>,
    },
}

/// The claims only an `id_token` has, there and not `null`, of any type.
#[derive(Deserialize)]
struct IdTokenClaims {
    #[serde(default, deserialize_with = "not_null")]
    nonce: bool,
    #[serde(default, deserialize_with = "not_null")]
    at_hash: bool,
}

/// Whether a JWT (unverified) carries claims only an `id_token` has: such a token
/// would be refused at the MCP endpoint, so it cannot be handed to clients as theirs.
pub fn carries_id_token_claims(token: &str) -> bool {
    CompactJws::parse(token)
        .ok()
        .and_then(|jws| jws.claims::<IdTokenClaims>())
        .is_some_and(|claims| claims.nonce || claims.at_hash)
}

/// A request's validated bearer token: who it speaks for, the Access JWT for the origin,
/// and the client the token was issued to when the token says (the gateway's sealed tokens do).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    /// The Access JWT for the origin. Not `Debug`-printed ([`Secret`]).
    pub credential: Secret,
    /// Whether the client's `Authorization` header is exactly `Bearer <credential>`: the
    /// origin can then get that header as it came.
    pub credential_as_sent: bool,
    /// A metadata document's URL, or the Access client id for registered clients; `None`
    /// when the token does not say (an Access JWT).
    pub client: Option<String>,
}

impl Authenticated {
    /// An Access JWT the client presented (`authorization`: its header), once validated.
    pub fn access_jwt(identity: Identity, authorization: Option<&str>, token: &str) -> Self {
        let credential_as_sent = authorization.and_then(|sent| sent.strip_prefix("Bearer ")) == Some(token);
        Self { identity, credential: Secret::new(token), credential_as_sent, client: None }
    }
}

/// Who a validated token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub not_before: Option<u64>,
    pub expires_at: u64,
}

/// Who may use the MCP server beyond what Access already allowed. Empty means
/// everyone Access lets in; otherwise any one match admits the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    pub emails: Vec<String>,
    pub email_domains: Vec<String>,
    pub groups: Vec<String>,
}

impl Allowlist {
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.email_domains.is_empty() && self.groups.is_empty()
    }

    pub fn admits(&self, identity: &Identity) -> bool {
        if self.is_empty() {
            return true;
        }
        let email = identity.email.as_deref().map(str::to_ascii_lowercase);
        let by_email = email.as_deref().is_some_and(|e| self.emails.iter().any(|a| a.eq_ignore_ascii_case(e)));
        let by_domain = email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .is_some_and(|(_, domain)| self.email_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)));
        let by_group = identity.groups.iter().any(|g| self.groups.contains(g));
        by_email || by_domain || by_group
    }
}

/// A NumericDate on jwt-compact's clock (every one the claims allow fits).
fn instant(seconds: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds.min(MAX_NUMERIC_DATE) as i64, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether a token's validity window contains `now` (also checked on cache hits), by
/// jwt-compact's checks with `now` as their clock: `exp` strictly, `nbf` with the leeway.
pub fn check_time(leeway_seconds: u64, not_before: Option<u64>, expires_at: u64, now: u64) -> Result<(), Error> {
    let with_leeway = |seconds: i64| TimeOptions::new(TimeDelta::seconds(seconds), move || instant(now));
    let mut window = Claims::empty();
    window.expiration = Some(instant(expires_at));
    // jwt-compact lets a token pass in the second its `exp` names; RFC 7519 §4.1.4 only
    // before it, which on a clock of whole seconds is a leeway of minus one.
    window.validate_expiration(&with_leeway(-1)).map_err(|_| Error::InvalidToken(TokenFailure::Expired))?;
    if let Some(nbf) = not_before {
        // A leeway past the latest NumericDate admits every `nbf` already.
        let leeway = leeway_seconds.min(MAX_NUMERIC_DATE) as i64;
        window
            .set_not_before(instant(nbf))
            .validate_maturity(&with_leeway(leeway))
            .map_err(|_| Error::InvalidToken(TokenFailure::NotYetValid))?;
    }
    Ok(())
}

/// The claim checks: exact issuer, an accepted audience, time, allowlists.
///
/// The leeway absorbs clock skew on `nbf` and `iat` only. `exp` is strict: an
/// origin that verifies the token again (the bug report's does, with no leeway) must
/// never be handed a token it would refuse, and clients refresh on the edge's 401.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub kind: TokenKind,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub leeway_seconds: u64,
    pub allowlist: Allowlist,
}

impl TokenPolicy {
    pub fn check(&self, token: &SignedAccessToken<'_>, now: u64) -> Result<Identity, Error> {
        let SignedAccessToken(UntrustedAccessToken(jws)) = token;
        let claims = jws.claims::<AccessClaims>().ok_or(Error::InvalidToken(TokenFailure::MalformedClaims))?;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(Error::InvalidToken(TokenFailure::WrongIssuer));
        }
        let audience_ok = match &claims.aud {
            Some(Audience::One(aud)) => self.audiences.contains(aud),
            Some(Audience::Many(auds)) => auds.iter().any(|a| self.audiences.contains(a)),
            None => false,
        };
        if !audience_ok {
            return Err(Error::InvalidToken(TokenFailure::WrongAudience));
        }
        match &self.kind {
            // The default audiences include the client id, which is also an id_token's `aud`.
            TokenKind::AccessToken if claims.nonce.is_some() || claims.at_hash => {
                return Err(Error::InvalidToken(TokenFailure::IdToken));
            }
            TokenKind::IdToken { nonce: Some(expected) }
                if claims.nonce.as_ref().is_some_and(|nonce| nonce != expected) =>
            {
                return Err(Error::InvalidToken(TokenFailure::NonceMismatch));
            }
            _ => {}
        }
        let expires_at = claims.exp.0.ok_or(Error::InvalidToken(TokenFailure::NoExpiry))?;
        let not_before = claims.nbf.0;
        check_time(self.leeway_seconds, not_before, expires_at, now)?;
        if claims.iat.0.is_some_and(|iat| iat > now.saturating_add(self.leeway_seconds)) {
            return Err(Error::InvalidToken(TokenFailure::IssuedInFuture));
        }
        let subject = claims.sub.filter(|s| !s.is_empty()).ok_or(Error::InvalidToken(TokenFailure::NoSubject))?;
        let identity = Identity { subject, email: claims.email, groups: claims.groups, not_before, expires_at };
        if !self.allowlist.admits(&identity) {
            return Err(Error::Forbidden { reason: "identity not in the allowlists" });
        }
        Ok(identity)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::access::jwks::{KeySet, Lookup};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jwt_compact::alg::{Rsa, RsaPrivateKey};
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{Algorithm, AlgorithmSignature};
    use serde_json::{json, Value};

    pub const ISSUER: &str = "https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc123";
    pub const AUDIENCE: &str = "https://mcp.example.com/callback";
    pub const NOW: u64 = 1_800_000_000;
    const VECTORS: &str = include_str!("../../tests/vectors/rsa_test_keys.json");

    fn vector(name: &str) -> Value {
        serde_json::from_str::<Value>(VECTORS).unwrap()[name].clone()
    }

    /// The JWKS Access would publish for the test signing key.
    pub fn test_jwks() -> KeySet {
        let key = vector("signing");
        KeySet::parse(&json!({"keys": [{"kty": "RSA", "kid": key["kid"], "n": key["n"], "e": key["e"], "alg": "RS256", "use": "sig"}]}).to_string()).unwrap()
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    /// Signs `header.claims` with a test key (RS256), whatever the header says.
    pub fn sign_with(key_name: &str, header: &Value, claims: &Value) -> String {
        sign_raw(key_name, &format!("{}.{}", b64(header), b64(claims)))
    }

    /// Signs a JWS signing input as given (RS256).
    fn sign_raw(key_name: &str, input: &str) -> String {
        let jwk: JsonWebKey<'_> = serde_json::from_value(vector(key_name)).unwrap();
        let key = RsaPrivateKey::try_from(&jwk).unwrap();
        let signature = Rsa::rs256().sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_bytes()))
    }

    pub fn claims() -> Value {
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "sub-1", "email": "user@example.com",
               "groups": ["eng"], "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 300})
    }

    pub fn header() -> Value {
        json!({"alg": "RS256", "kid": "test-signing", "typ": "JWT"})
    }

    pub fn policy() -> TokenPolicy {
        TokenPolicy {
            kind: TokenKind::AccessToken,
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into(), "abc123".into()],
            leeway_seconds: 30,
            allowlist: Allowlist::default(),
        }
    }

    /// The whole check as the edge performs it, with the pure-Rust verifier.
    pub fn validate(token: &str, policy: &TokenPolicy, now: u64) -> Result<Identity, Error> {
        let untrusted = UntrustedAccessToken::parse(token)?;
        let keys = test_jwks();
        let Lookup::Found(key) = keys.find(untrusted.key_id()) else {
            return Err(Error::InvalidToken(TokenFailure::UnknownKeyId));
        };
        let signed = untrusted.verify_rs256(key)?;
        policy.check(&signed, now)
    }

    fn with_claims(patch: Value) -> String {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        sign_with("signing", &header(), &c)
    }

    /// The test claims with `name` written as the JSON text `value`, as is: a number keeps
    /// its exponent, `null` stays.
    fn with_raw_claim(name: &str, value: &str) -> String {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        let body = format!("{{\"{name}\":{value},{}", &c.to_string()[1..]);
        sign_raw("signing", &format!("{}.{}", b64(&header()), URL_SAFE_NO_PAD.encode(body)))
    }

    #[test]
    fn accepts_an_access_token() {
        let identity = validate(&sign_with("signing", &header(), &claims()), &policy(), NOW).unwrap();
        assert_eq!(
            identity,
            Identity {
                subject: "sub-1".into(),
                email: Some("user@example.com".into()),
                groups: vec!["eng".into()],
                not_before: Some(NOW - 10),
                expires_at: NOW + 300
            }
        );
        // An array aud with one accepted value is fine too (RFC 7519 §4.1.3).
        assert!(validate(&with_claims(json!({"aud": ["other", "abc123"]})), &policy(), NOW).is_ok());
    }

    fn assert_invalid(token: &str, policy: &TokenPolicy, now: u64, why: &str, failure: TokenFailure) {
        assert_eq!(validate(token, policy, now).unwrap_err(), Error::InvalidToken(failure), "{why}");
    }

    #[test]
    fn tampered_and_forged_tokens_are_invalid() {
        let good = sign_with("signing", &header(), &claims());
        let (input, signature) = good.rsplit_once('.').unwrap();
        let (head, body) = input.split_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
        sig[10] ^= 1;
        let flipped_sig = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        let other_claims = b64(&json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "admin", "exp": NOW + 300}));
        // HS256 "signed" with the RSA public key bytes: the classic algorithm confusion.
        let hs256 = {
            let input = format!("{}.{}", b64(&json!({"alg": "HS256", "kid": "test-signing"})), b64(&claims()));
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(input.as_bytes())))
        };
        use sha2::Digest;
        let cases: Vec<(String, &str, TokenFailure)> = vec![
            (
                format!("{}.{body}.", b64(&json!({"alg": "none", "kid": "test-signing"}))),
                "alg none",
                TokenFailure::NotRs256,
            ),
            (
                format!("{}.{body}.{signature}", b64(&json!({"alg": "RS384", "kid": "test-signing"}))),
                "other alg",
                TokenFailure::NotRs256,
            ),
            (hs256, "HS256 with the public key", TokenFailure::NotRs256),
            (sign_with("signing", &json!({"alg": "RS256"}), &claims()), "no kid", TokenFailure::NoKeyId),
            (
                sign_with("signing", &json!({"alg": "RS256", "kid": "unknown"}), &claims()),
                "unknown kid",
                TokenFailure::UnknownKeyId,
            ),
            (
                sign_with("other", &header(), &claims()),
                "signed by another key under our kid",
                TokenFailure::BadSignature,
            ),
            (flipped_sig, "bit flip in the signature", TokenFailure::BadSignature),
            (format!("{head}.{other_claims}.{signature}"), "claims swapped", TokenFailure::BadSignature),
            (
                format!("{input}.{}", &signature[..signature.len() - 4]),
                "truncated signature",
                TokenFailure::MalformedJwt,
            ),
            (good[..good.len() / 2].to_owned(), "truncated token", TokenFailure::NotJws),
            (format!("{good}.extra"), "four segments", TokenFailure::NotJws),
            ("opaque-access-token-abc123".to_owned(), "opaque", TokenFailure::NotJws),
            (
                format!("{}.{}.{}", "A".repeat(4000), "B".repeat(4000), "C".repeat(400)),
                "oversized",
                TokenFailure::Oversized,
            ),
            (String::new(), "empty", TokenFailure::Oversized),
            ("a.b.c".to_owned(), "garbage", TokenFailure::MalformedJwt),
            (
                with_claims(json!({"iss": "https://evil.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc123"})),
                "wrong iss",
                TokenFailure::WrongIssuer,
            ),
            (with_claims(json!({"iss": format!("{ISSUER}/")})), "iss with trailing slash", TokenFailure::WrongIssuer),
            (with_claims(json!({"iss": null})), "no iss", TokenFailure::WrongIssuer),
            (with_claims(json!({"aud": "https://evil.example/callback"})), "wrong aud", TokenFailure::WrongAudience),
            (with_claims(json!({"aud": ["x", "y"]})), "wrong aud array", TokenFailure::WrongAudience),
            (with_claims(json!({"aud": null})), "no aud", TokenFailure::WrongAudience),
            (with_claims(json!({"exp": NOW - 31})), "expired", TokenFailure::Expired),
            (with_claims(json!({"exp": NOW})), "expires this second", TokenFailure::Expired),
            (with_claims(json!({"exp": null})), "no exp", TokenFailure::NoExpiry),
            (with_claims(json!({"nbf": NOW + 31})), "not yet valid", TokenFailure::NotYetValid),
            (with_claims(json!({"sub": null})), "no sub", TokenFailure::NoSubject),
            (with_claims(json!({"iat": NOW + 31})), "issued in the future", TokenFailure::IssuedInFuture),
            (with_claims(json!({"exp": "tomorrow"})), "malformed exp", TokenFailure::MalformedClaims),
        ];
        for (token, why, failure) in cases {
            assert_invalid(&token, &policy(), NOW, why, failure);
        }
    }

    /// The compact serialization is parsed strictly: three base64url parts without padding,
    /// a JSON object header with a string `alg` (pinned) and `kid`, JSON claims only.
    #[test]
    fn the_compact_serialization_is_parsed_strictly() {
        let good = sign_with("signing", &header(), &claims());
        let (input, signature) = good.rsplit_once('.').unwrap();
        let (head, body) = input.split_once('.').unwrap();
        let raw_header = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let with_header = |json: &str| format!("{}.{body}.{signature}", raw_header(json));
        let malformed = TokenFailure::MalformedJwt;
        let cases: Vec<(String, &str, TokenFailure)> = vec![
            (format!("{head}.{body}"), "two parts", TokenFailure::NotJws),
            (format!("{head}..{body}.{signature}"), "four parts, one empty", TokenFailure::NotJws),
            ("..".to_owned(), "three empty parts", malformed),
            (format!("{head}=.{body}.{signature}"), "padding on the header", malformed),
            (format!("{head}.{body}=.{signature}"), "padding on the claims", malformed),
            (format!("{input}.{signature}=="), "padding on the signature", malformed),
            (format!("{head}.{body}.{}", signature.replace('-', "+").replace('_', "/")), "base64 not url", malformed),
            (format!("{head}.{body}.{signature}!"), "not base64", malformed),
            (format!("{head}.{body} .{signature}"), "a space", malformed),
            (format!("{}.{body}.{signature}", &head[..head.len() - 1]), "header cut mid-character", malformed),
            (format!("{head}.{body}.{signature}AAA"), "a length no bytes encode to", malformed),
            (with_header(r#"["RS256","test-signing"]"#), "array header", malformed),
            (with_header(r#""RS256""#), "string header", malformed),
            (with_header("null"), "null header", malformed),
            (with_header(r#"{"alg":"RS256","kid":"test-signing""#), "truncated header JSON", malformed),
            (with_header(r#"{"kid":"test-signing"}"#), "no alg", malformed),
            (with_header(r#"{"alg":["RS256"],"kid":"test-signing"}"#), "alg an array", malformed),
            (with_header(r#"{"alg":null,"kid":"test-signing"}"#), "alg null", malformed),
            (with_header(r#"{"alg":"RS256","kid":7}"#), "kid a number", malformed),
            (with_header(r#"{"alg":"RS256","kid":"test-signing","typ":1}"#), "typ a number", malformed),
            (with_header(r#"{"alg":"RS256","kid":"test-signing","cty":"CBOR"}"#), "CBOR claims", malformed),
            (with_header(r#"{"alg":"rs256","kid":"test-signing"}"#), "alg in lower case", TokenFailure::NotRs256),
            (with_header(r#"{"alg":"none","kid":"test-signing"}"#), "alg none, signed", TokenFailure::NotRs256),
            (with_header(r#"{"alg":"HS256","kid":"test-signing"}"#), "alg HS256", TokenFailure::NotRs256),
            (with_header(r#"{"alg":"RS256","kid":""}"#), "empty kid", TokenFailure::NoKeyId),
            (with_header(r#"{"alg":"RS256","kid":null}"#), "kid null", TokenFailure::NoKeyId),
            (with_header(r#"{"alg":"RS256","kid":"test-signing","alg":"RS256"}"#), "alg twice", malformed),
            (with_header(r#"{"alg":"RS256","kid":"unknown","kid":"test-signing"}"#), "kid twice", malformed),
            (with_header(r#"{"alg":"RS256","kid":"test-signing","x":1,"x":1}"#), "an unknown member twice", malformed),
            (with_header(r#"{"alg":7,"kid":"test-signing"}"#), "alg a number", malformed),
            (with_header(r#"{"alg":"RS256","kid":"test-signing","cty":1}"#), "cty a number", malformed),
            // RFC 7515 §4.1.11: extensions the recipient does not understand are refused.
            (
                with_header(r#"{"alg":"RS256","kid":"test-signing","crit":["exp"]}"#),
                "crit",
                TokenFailure::CriticalExtension,
            ),
            (
                with_header(r#"{"alg":"RS256","kid":"test-signing","crit":[]}"#),
                "crit empty",
                TokenFailure::CriticalExtension,
            ),
            (
                with_header(r#"{"alg":"RS256","kid":"test-signing","crit":null}"#),
                "crit null",
                TokenFailure::CriticalExtension,
            ),
        ];
        for (token, why, failure) in cases {
            assert_invalid(&token, &policy(), NOW, why, failure);
        }
        // Unknown header fields are ignored; `cty` JSON (any case) is JSON; `null` is absent.
        let header = json!({"alg": "RS256", "kid": "test-signing", "typ": "at+jwt", "cty": "json", "x-other": [1]});
        assert!(validate(&sign_with("signing", &header, &claims()), &policy(), NOW).is_ok());
        let header = json!({"alg": "RS256", "kid": "test-signing", "typ": null, "cty": null});
        assert!(validate(&sign_with("signing", &header, &claims()), &policy(), NOW).is_ok());
    }

    /// `exp`, `nbf` and `iat` are JSON numbers (a fraction is dropped); anything else is
    /// malformed, and a time before 1970 counts as absent.
    #[test]
    fn numeric_dates_are_numbers() {
        let ok = |patch: Value| validate(&with_claims(patch), &policy(), NOW);
        assert_eq!(ok(json!({"exp": (NOW + 300) as f64 + 0.9})).unwrap().expires_at, NOW + 300);
        assert_eq!(ok(json!({"nbf": -5})).unwrap().not_before, None);
        assert!(ok(json!({"iat": -5})).is_ok());
        assert!(ok(json!({"iat": 1e9})).is_ok());
        let cases: Vec<(Value, &str, TokenFailure)> = vec![
            (json!({"exp": -5}), "exp before 1970", TokenFailure::NoExpiry),
            (json!({"exp": NOW as f64 - 0.5}), "exp a fraction before now", TokenFailure::Expired),
            (json!({"exp": Value::Null}), "no exp", TokenFailure::NoExpiry),
            (json!({"exp": true}), "exp a boolean", TokenFailure::MalformedClaims),
            (json!({"exp": [NOW + 300]}), "exp an array", TokenFailure::MalformedClaims),
            (json!({"exp": u64::MAX}), "exp beyond any date", TokenFailure::MalformedClaims),
            (json!({"exp": 1e300}), "exp a huge float", TokenFailure::MalformedClaims),
            (json!({"nbf": "yesterday"}), "nbf a string", TokenFailure::MalformedClaims),
            (json!({"iat": {}}), "iat an object", TokenFailure::MalformedClaims),
            (json!({"groups": "eng"}), "groups not an array", TokenFailure::MalformedClaims),
            (json!({"sub": 1}), "sub a number", TokenFailure::MalformedClaims),
        ];
        for (patch, why, failure) in cases {
            assert_invalid(&with_claims(patch), &policy(), NOW, why, failure);
        }
        // As written, not as a float would read: the exponent applied, then the fraction dropped.
        let raw = |name: &str, value: &str| validate(&with_raw_claim(name, value), &policy(), NOW);
        assert_eq!(raw("exp", "1.8000003e9").unwrap().expires_at, NOW + 300);
        assert_eq!(raw("exp", "18000003E+2").unwrap().expires_at, NOW + 300);
        assert_eq!(raw("exp", "1.80000030099999999999e9").unwrap().expires_at, NOW + 300);
        assert_eq!(raw("exp", "180000030000e-2").unwrap().expires_at, NOW + 300);
        assert_eq!(raw("nbf", "-1e3").unwrap().not_before, None);
        assert_eq!(raw("nbf", "-0.0").unwrap().not_before, Some(0));
        for (name, value) in
            [("exp", "1e400"), ("exp", "2.53402300800e11"), ("nbf", "-2.53402300800e11"), ("iat", "1e19")]
        {
            assert_eq!(
                raw(name, value).unwrap_err(),
                Error::InvalidToken(TokenFailure::MalformedClaims),
                "{name} {value}"
            );
        }
        assert!(raw("exp", "2.53402300799e11").is_ok(), "the latest NumericDate");
        for name in ["exp", "nbf", "iat"] {
            let mut nulled = claims();
            nulled[name] = Value::Null;
            let token = sign_with("signing", &header(), &nulled);
            assert_invalid(&token, &policy(), NOW, &format!("{name} null"), TokenFailure::MalformedClaims);
        }
        // Claims that are not one JSON object with each name once, correctly signed.
        let claims_text = claims().to_string();
        let twice = |name: &str, value: &str| format!("{{\"{name}\":{value},{}", &claims_text[1..]);
        for (body, why) in [
            ("[]".to_owned(), "an array"),
            ("\"sub\"".to_owned(), "a string"),
            ("{".to_owned(), "truncated JSON"),
            (twice("exp", "1"), "exp twice"),
            (twice("iss", "\"https://evil.example\""), "iss twice"),
            (twice("sub", "\"admin\""), "sub twice"),
            (twice("groups", "[]"), "groups twice"),
            (format!("{{\"x-unknown\":0,{}", &twice("x-unknown", "1")[1..]), "an unknown claim twice"),
        ] {
            let input = format!("{}.{}", b64(&header()), URL_SAFE_NO_PAD.encode(body));
            let token = sign_raw("signing", &input);
            assert_invalid(&token, &policy(), NOW, why, TokenFailure::MalformedClaims);
        }
    }

    #[test]
    fn an_id_token_is_never_an_access_token() {
        let id_token = with_claims(json!({"aud": "abc123", "nonce": "n-1"}));
        assert_invalid(&id_token, &policy(), NOW, "an id_token (nonce) as access token", TokenFailure::IdToken);
        assert_invalid(&with_claims(json!({"at_hash": "x"})), &policy(), NOW, "at_hash", TokenFailure::IdToken);
        let id_policy =
            |nonce: Option<&str>| TokenPolicy { kind: TokenKind::IdToken { nonce: nonce.map(Into::into) }, ..policy() };
        assert!(validate(&id_token, &id_policy(Some("n-1")), NOW).is_ok());
        assert!(validate(&id_token, &id_policy(None), NOW).is_ok());
        assert_invalid(
            &id_token,
            &id_policy(Some("n-2")),
            NOW,
            "another request's id_token",
            TokenFailure::NonceMismatch,
        );
        assert!(validate(&with_claims(json!({"aud": "abc123"})), &id_policy(Some("n-2")), NOW).is_ok(), "no nonce");
        assert!(
            carries_id_token_claims(&id_token) && !carries_id_token_claims(&sign_with("signing", &header(), &claims()))
        );
        assert!(!carries_id_token_claims("opaque"));
        // Any value but `null` is the claim, read or not; unreadable claims carry nothing.
        let unsigned = |claims: &str| format!("{}.{}.", b64(&header()), URL_SAFE_NO_PAD.encode(claims));
        assert!(carries_id_token_claims(&unsigned(r#"{"nonce":7}"#)));
        assert!(carries_id_token_claims(&unsigned(r#"{"at_hash":{}}"#)));
        assert!(!carries_id_token_claims(&unsigned(r#"{"nonce":null,"at_hash":null}"#)));
        assert!(!carries_id_token_claims(&unsigned(r#"{"nonce":"a","nonce":"b"}"#)));
        assert!(!carries_id_token_claims(&unsigned(r#"["nonce"]"#)));
        // As an access token, a `null` nonce or at_hash is none; a nonce must be a string.
        assert!(validate(&with_raw_claim("nonce", "null"), &policy(), NOW).is_ok());
        assert!(validate(&with_raw_claim("at_hash", "null"), &policy(), NOW).is_ok());
        assert_invalid(&with_claims(json!({"at_hash": 0})), &policy(), NOW, "at_hash a number", TokenFailure::IdToken);
        let numeric_nonce = with_claims(json!({"nonce": 7}));
        assert_invalid(&numeric_nonce, &policy(), NOW, "nonce a number", TokenFailure::MalformedClaims);
        assert_invalid(&numeric_nonce, &id_policy(None), NOW, "nonce a number", TokenFailure::MalformedClaims);
        assert!(validate(&with_claims(json!({"aud": "abc123"})), &policy(), NOW).is_ok(), "client id audience");
    }

    /// A claim the gateway reads, of another type than RFC 7519 (or OIDC) gives it, makes
    /// the claims malformed; `null` is absent where the claim may be absent.
    #[test]
    fn claims_of_another_type_are_malformed() {
        let malformed = TokenFailure::MalformedClaims;
        for (name, value) in [
            ("iss", "7"),
            ("iss", "[\"https://team.cloudflareaccess.com\"]"),
            ("aud", "7"),
            ("aud", "{}"),
            ("aud", "[\"abc123\", 7]"),
            ("aud", "[null]"),
            ("sub", "true"),
            ("email", "[]"),
            ("groups", "null"),
            ("groups", "[\"eng\", 1]"),
            ("groups", "{}"),
        ] {
            assert_invalid(&with_raw_claim(name, value), &policy(), NOW, &format!("{name}: {value}"), malformed);
        }
        // Optional claims as `null` are absent; an empty `aud` array accepts nothing.
        let identity = validate(&with_raw_claim("email", "null"), &policy(), NOW).unwrap();
        assert_eq!(identity.email, None);
        assert_eq!(validate(&with_raw_claim("groups", "[]"), &policy(), NOW).unwrap().groups, Vec::<String>::new());
        assert!(validate(&with_claims(json!({"groups": null})), &policy(), NOW).unwrap().groups.is_empty(), "absent");
        let wrong_audience = TokenFailure::WrongAudience;
        assert_invalid(&with_raw_claim("aud", "[]"), &policy(), NOW, "empty aud", wrong_audience);
        assert_invalid(&with_raw_claim("aud", "null"), &policy(), NOW, "aud null", wrong_audience);
        assert_invalid(&with_raw_claim("iss", "null"), &policy(), NOW, "iss null", TokenFailure::WrongIssuer);
        assert_invalid(&with_raw_claim("sub", "null"), &policy(), NOW, "sub null", TokenFailure::NoSubject);
    }

    #[test]
    fn truncates_a_number_to_its_integer_part() {
        assert_eq!(truncated("1700000000"), Some(1_700_000_000));
        assert_eq!(truncated("1700000000.9"), Some(1_700_000_000));
        assert_eq!(truncated("1.7e9"), Some(1_700_000_000));
        assert_eq!(truncated("17e8"), Some(1_700_000_000));
        assert_eq!(truncated("17E+8"), Some(1_700_000_000));
        assert_eq!(truncated("-0.5"), Some(0));
        assert_eq!(truncated("-12.5"), Some(-12));
        assert_eq!(truncated("5e-3"), Some(0));
        assert_eq!(truncated("9223372036854775807"), Some(i64::MAX));
        assert_eq!(truncated("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(truncated("9223372036854775808"), None);
        assert_eq!(truncated("1e19"), None);
        assert_eq!(truncated("1e999999999999"), None);
        assert_eq!(truncated("1e2000000000"), None);
        assert_eq!(truncated("0e2000000000"), Some(0), "zeros are not read one by one");
        assert_eq!(truncated("-0.000e2000000000"), Some(0));
        assert_eq!(truncated("0.00012e4"), Some(1));
    }

    /// jwt-compact types the header members it knows (RFC 7515 §4.1): one of another type
    /// makes the header malformed, though the gateway does not read it.
    #[test]
    fn header_members_jwt_compact_knows_are_typed() {
        let good = sign_with("signing", &header(), &claims());
        let (_, rest) = good.split_once('.').unwrap();
        let with_header = |json: &str| format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json));
        for member in [r#""jku":1"#, r#""x5u":[]"#, r#""x5t":7"#, r#""x5t#S256":{}"#] {
            let token = with_header(&format!(r#"{{"alg":"RS256","kid":"test-signing",{member}}}"#));
            assert_invalid(&token, &policy(), NOW, member, TokenFailure::MalformedJwt);
        }
        // A thumbprint in base64url, of the digest or of the hex some issuers write, is read and ignored.
        let (sha1, hex) = (URL_SAFE_NO_PAD.encode([7u8; 20]), URL_SAFE_NO_PAD.encode("ab:".repeat(32)));
        let header = json!({"alg": "RS256", "kid": "test-signing", "x5t": sha1, "x5t#S256": hex});
        assert!(validate(&sign_with("signing", &header, &claims()), &policy(), NOW).is_ok());
    }

    #[test]
    fn leeway_covers_nbf_but_never_exp() {
        assert!(validate(&with_claims(json!({"nbf": NOW + 29})), &policy(), NOW).is_ok());
        assert!(validate(&with_claims(json!({"exp": NOW + 1})), &policy(), NOW).is_ok());
        assert_invalid(&with_claims(json!({"exp": NOW - 1})), &policy(), NOW, "a second late", TokenFailure::Expired);
        let strict = TokenPolicy { leeway_seconds: 0, ..policy() };
        assert_invalid(
            &with_claims(json!({"nbf": NOW + 1})),
            &strict,
            NOW,
            "nbf without leeway",
            TokenFailure::NotYetValid,
        );
        // Any leeway, however large: the latest NumericDate passes and `exp` stays strict.
        let lenient = TokenPolicy { leeway_seconds: u64::MAX, ..policy() };
        assert!(
            validate(&with_claims(json!({"nbf": MAX_NUMERIC_DATE, "iat": MAX_NUMERIC_DATE})), &lenient, NOW).is_ok()
        );
        assert_invalid(&with_claims(json!({"exp": NOW})), &lenient, NOW, "expired", TokenFailure::Expired);
        assert_eq!(
            check_time(u64::MAX, Some(MAX_NUMERIC_DATE), MAX_NUMERIC_DATE, u64::MAX),
            Err(Error::InvalidToken(TokenFailure::Expired))
        );
    }

    #[test]
    fn allowlists_give_403_not_401() {
        let token = sign_with("signing", &header(), &claims());
        let with = |allowlist: Allowlist| TokenPolicy { allowlist, ..policy() };
        let admits = |allowlist: Allowlist| validate(&token, &with(allowlist), NOW);
        assert!(admits(Allowlist { emails: vec!["USER@example.com".into()], ..Default::default() }).is_ok());
        assert!(admits(Allowlist { email_domains: vec!["example.com".into()], ..Default::default() }).is_ok());
        assert!(admits(Allowlist { groups: vec!["eng".into()], ..Default::default() }).is_ok());
        for denied in [
            Allowlist { emails: vec!["other@example.com".into()], ..Default::default() },
            Allowlist { email_domains: vec!["ample.com".into()], ..Default::default() },
            Allowlist { groups: vec!["Eng".into()], ..Default::default() },
        ] {
            assert!(matches!(admits(denied), Err(Error::Forbidden { .. })));
        }
    }

    #[test]
    fn bearer_only_from_the_authorization_header_scheme() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
        assert_eq!(
            format!("{:?}", UntrustedAccessToken::parse(&sign_with("signing", &header(), &claims())).unwrap()),
            "UntrustedAccessToken([redacted])"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bearers_never_panic(token in "\\PC{0,400}", dotted in "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}") {
            for candidate in [token.as_str(), dotted.as_str()] {
                if let Ok(untrusted) = UntrustedAccessToken::parse(candidate) {
                    let keys = test_jwks();
                    if let Lookup::Found(key) = keys.find(untrusted.key_id()) {
                        proptest::prop_assert!(untrusted.verify_rs256(key).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn only_the_exact_header_is_passed_on_as_sent() {
        let identity =
            || Identity { subject: "s".into(), email: None, groups: vec![], not_before: None, expires_at: 0 };
        let as_sent = |header: Option<&str>| Authenticated::access_jwt(identity(), header, "a.b.c").credential_as_sent;
        assert!(as_sent(Some("Bearer a.b.c")));
        for header in [Some("bearer a.b.c"), Some("Bearer  a.b.c"), Some(" Bearer a.b.c"), Some("Bearer a.b.c "), None]
        {
            assert!(!as_sent(header), "{header:?} is rewritten to `Bearer a.b.c` for the origin");
        }
        let authenticated = Authenticated::access_jwt(identity(), Some("Bearer a.b.c"), "a.b.c");
        assert_eq!((authenticated.credential.expose(), authenticated.client.as_deref()), ("a.b.c", None));
        assert!(!format!("{authenticated:?}").contains("a.b.c"));
    }
}
