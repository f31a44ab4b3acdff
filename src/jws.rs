//! A JWT in the JWS Compact Serialization (RFC 7515 §7.1), split and decoded strictly;
//! nothing here is verified. Small on purpose: the Worker needs only this much of a
//! JWT library (it verifies RS256 with WebCrypto).

use crate::error::TokenFailure;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The header fields the gateway reads or type-checks; any others are ignored.
#[derive(Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    /// Not read, but a non-string `typ` makes the header malformed.
    #[serde(rename = "typ")]
    _typ: Option<String>,
    /// Claims are JSON: absent or `JSON` in any case (RFC 7515 §4.1.10).
    cty: Option<String>,
}

/// `header.claims.signature`, each part decoded.
pub struct CompactJws<'a> {
    pub header: Header,
    claims: Vec<u8>,
    /// The JWS signing input (`header.claims`, as sent).
    pub signed_data: &'a str,
    pub signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Exactly three base64url parts without padding (`NotJws` when not three parts);
    /// the header a JSON object with each name once (`MalformedJwt` otherwise). The
    /// claims are decoded from base64url here, from JSON by [`Self::claims`].
    pub fn parse(raw: &'a str) -> Result<Self, TokenFailure> {
        let mut parts = raw.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenFailure::NotJws);
        };
        let signed_data = &raw[..header.len() + 1 + claims.len()];
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenFailure::MalformedJwt);
        let (header, claims, signature) = (decode(header)?, decode(claims)?, decode(signature)?);
        let header: Header = json_object(&header).ok_or(TokenFailure::MalformedJwt)?;
        if header.cty.as_deref().is_some_and(|cty| !cty.eq_ignore_ascii_case("json")) {
            return Err(TokenFailure::MalformedJwt);
        }
        Ok(Self { header, claims, signed_data, signature })
    }

    /// The claims as `T`, if they are a JSON object with each name once that fits `T`.
    pub fn claims<T: DeserializeOwned>(&self) -> Option<T> {
        json_object(&self.claims)
    }
}

/// A JSON object as `T` (serde's derived structs would take an array as well), each
/// name at most once (derived structs refuse duplicates).
fn json_object<T: DeserializeOwned>(json: &[u8]) -> Option<T> {
    (json.trim_ascii_start().first() == Some(&b'{')).then(|| serde_json::from_slice(json).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
    }

    #[test]
    fn the_parts_are_split_and_decoded_as_sent() {
        let (header, claims) = (URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#), URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#));
        let raw = format!("{header}.{claims}.AAEC");
        let jws = CompactJws::parse(&raw).unwrap();
        assert_eq!((jws.header.alg.as_str(), jws.header.kid.as_deref()), ("RS256", None));
        assert_eq!(jws.signed_data, format!("{header}.{claims}"));
        assert_eq!(jws.signature, [0, 1, 2]);
        assert_eq!(jws.claims::<Claims>(), Some(Claims { sub: "a".into() }));
        // Positional fields would fit the struct: only an object is claims.
        let array = format!("{header}.{}.", URL_SAFE_NO_PAD.encode(r#"["a"]"#));
        assert_eq!(CompactJws::parse(&array).unwrap().claims::<Claims>(), None);
        assert_eq!(CompactJws::parse(&format!("{header}.{claims}")).err(), Some(TokenFailure::NotJws));
    }
}
