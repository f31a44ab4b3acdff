//! A JWT in the JWS Compact Serialization (RFC 7515 §7.1), split and decoded strictly;
//! nothing here is verified. Small on purpose: the Worker needs only this much of a
//! JWT library (it verifies RS256 with WebCrypto).

use crate::error::TokenFailure;
use crate::json::{FromJson, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The header fields the gateway reads or type-checks; any others are ignored.
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    /// Claims are JSON: absent or `JSON` in any case (RFC 7515 §4.1.10).
    cty: Option<String>,
    /// Names extensions the token says must be understood (RFC 7515 §4.1.11). The gateway
    /// understands none, so a token that has `crit` at all is refused.
    crit: bool,
}

impl FromJson for Header {
    /// `alg` a string; `kid`, `typ` and `cty` strings, `null` or absent.
    fn from_json(json: &Json) -> Option<Self> {
        let header = json.as_object()?;
        // Not read, but a non-string `typ` makes the header malformed.
        header.str("typ").ok()?;
        Some(Self {
            alg: header.string("alg").ok()??,
            kid: header.string("kid").ok()?,
            cty: header.string("cty").ok()?,
            crit: header.get("crit").is_some(),
        })
    }
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
        if header.crit {
            return Err(TokenFailure::CriticalExtension);
        }
        Ok(Self { header, claims, signed_data, signature })
    }

    /// The claims as `T`, if they are a JSON object with each name once that fits `T`.
    pub fn claims<T: FromJson>(&self) -> Option<T> {
        json_object(&self.claims)
    }
}

/// A JSON object (RFC 7519 §7.2: the header and the claims are objects, whatever `T`
/// would take) as `T`, each name at most once (the parser refuses a name twice).
fn json_object<T: FromJson>(json: &[u8]) -> Option<T> {
    Json::parse(json).filter(|json| json.as_object().is_some()).as_ref().and_then(T::from_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Claims {
        sub: String,
    }

    impl FromJson for Claims {
        /// Would take `["a"]` too: only [`json_object`] insists on an object.
        fn from_json(json: &Json) -> Option<Self> {
            let sub = match json {
                Json::Object(claims) => claims.string("sub").ok()??,
                Json::Array(items) => items.first()?.as_str()?.to_owned(),
                _ => return None,
            };
            Some(Self { sub })
        }
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
