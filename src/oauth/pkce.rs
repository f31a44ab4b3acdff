//! PKCE (RFC 7636), checked in one place: the client's challenge where `/authorize` takes it,
//! and the verifier against it where `/token` redeems the code. The challenge travels sealed
//! in the `state` and the code; Access checks the verifier too, but the gateway's client
//! secret never vouches for a code presented with the wrong one (RFC 7636 §4.6).

use crate::oauth::capabilities::{Capabilities, PkceMethod};
use crate::primitives::error::Error;
use crate::primitives::seal::digest;
use crate::primitives::secret::{constant_time_eq, Secret};
use crate::primitives::strict_json::checked_string;
use serde::Serialize;

/// A client's S256 `code_challenge`: `BASE64URL(SHA256(ASCII(code_verifier)))`, so exactly 43
/// base64url characters (RFC 7636 §4.2). Read back from a sealed payload, its shape is checked
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PkceChallenge(String);

checked_string!(PkceChallenge, is_s256_challenge);

fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl PkceChallenge {
    /// An authorization request's `code_challenge` and `code_challenge_method` (RFC 7636
    /// §4.3): required, with a method `caps` supports, and of that method's shape.
    pub fn parse(challenge: Option<&str>, method: Option<&str>, caps: &Capabilities) -> Result<Self, Error> {
        let challenge = challenge.ok_or(Error::invalid_request("PKCE is required: send code_challenge with S256"))?;
        let method = method
            .and_then(|method| caps.code_challenge_method(method))
            .ok_or(Error::invalid_request("code_challenge_method must be S256"))?;
        match method {
            PkceMethod::S256 if is_s256_challenge(challenge) => Ok(Self(challenge.to_owned())),
            PkceMethod::S256 => Err(Error::invalid_request("code_challenge is not an S256 challenge")),
        }
    }

    /// The method, as sent on to Access: S256, the only one a challenge can have been taken with.
    pub fn method(&self) -> PkceMethod {
        PkceMethod::S256
    }

    /// A token request's `code_verifier` (RFC 7636 §4.5, §4.6): required, well-formed, and
    /// the one this challenge was made from. The comparison takes the same time however
    /// much of the challenge matches.
    pub fn verify(&self, verifier: Option<&str>) -> Result<PkceVerifier, Error> {
        let verifier = verifier.ok_or(Error::invalid_request("code_verifier is missing (PKCE is required)"))?;
        if !is_verifier(verifier) {
            return Err(Error::invalid_grant("code_verifier is malformed"));
        }
        let matches = match self.method() {
            PkceMethod::S256 => constant_time_eq(&digest(verifier), &self.0),
        };
        if !matches {
            return Err(Error::invalid_grant("code_verifier does not match the code_challenge"));
        }
        Ok(PkceVerifier(Secret::new(verifier)))
    }
}

/// A `code_verifier` that matched its challenge ([`PkceChallenge::verify`]), to pass on to
/// Access. With the code, it redeems the grant: `Debug` never shows it.
#[derive(Debug)]
pub struct PkceVerifier(Secret);

impl PkceVerifier {
    /// The verifier, for the token request to Access (see [`Secret::expose`]).
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::oauth::capabilities::tests::caps;
    use crate::primitives::error::ErrorCode;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    /// RFC 7636 Appendix B: the 32 random octets of the verifier, the verifier, the SHA-256
    /// of its ASCII, and the challenge.
    const RANDOM_OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
        240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const VERIFIER_SHA256: [u8; 32] = [
        19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120, 173, 109, 241, 68, 86, 110,
        225, 137, 74, 203, 112, 249, 195,
    ];
    pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// [`CHALLENGE`] as `/authorize` takes it.
    pub fn challenge() -> PkceChallenge {
        PkceChallenge::parse(Some(CHALLENGE), Some("S256"), &caps()).unwrap()
    }

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(URL_SAFE_NO_PAD.encode(RANDOM_OCTETS), VERIFIER);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(VERIFIER.as_bytes())), VERIFIER_SHA256);
        assert_eq!(URL_SAFE_NO_PAD.encode(VERIFIER_SHA256), CHALLENGE);
        let challenge = challenge();
        assert_eq!((&*challenge, challenge.method().as_str()), (CHALLENGE, "S256"));
        assert_eq!(challenge.verify(Some(VERIFIER)).unwrap().expose(), VERIFIER);
    }

    #[test]
    fn an_authorization_request_needs_an_s256_challenge() {
        let parse = |challenge, method| PkceChallenge::parse(challenge, method, &caps());
        let missing = Error::invalid_request("PKCE is required: send code_challenge with S256");
        let method = Error::invalid_request("code_challenge_method must be S256");
        let shape = Error::invalid_request("code_challenge is not an S256 challenge");
        let cases = [
            (None, Some("S256"), missing.clone()),
            (None, None, missing),
            (Some(CHALLENGE), None, method.clone()),
            (Some(CHALLENGE), Some("plain"), method.clone()),
            (Some(CHALLENGE), Some("s256"), method.clone()),
            // The method is checked before the shape: a plain challenge says which is wrong.
            (Some(VERIFIER), Some("plain"), method),
            (Some("short"), Some("S256"), shape.clone()),
            (Some(&CHALLENGE[1..]), Some("S256"), shape.clone()),
            (Some(&format!("{CHALLENGE}A")), Some("S256"), shape.clone()),
            (Some(&CHALLENGE.replace('-', "+")), Some("S256"), shape.clone()),
            (Some(&CHALLENGE.replace('-', "=")), Some("S256"), shape),
        ];
        for (challenge, method, expected) in cases {
            assert_eq!(parse(challenge, method), Err(expected), "{challenge:?} {method:?}");
        }
        // A method the capabilities leave out is refused, whatever the code knows.
        let none = Capabilities { code_challenge_methods: &[], ..caps() };
        assert!(PkceChallenge::parse(Some(CHALLENGE), Some("S256"), &none).is_err());
    }

    #[test]
    fn a_verifier_must_be_well_formed_and_match() {
        let challenge = challenge();
        let refused = |verifier: &str| match challenge.verify(Some(verifier)) {
            Err(Error::OAuth { code, description }) => (code, description),
            other => panic!("{verifier}: {other:?}"),
        };
        assert_eq!(
            challenge.verify(None).unwrap_err(),
            Error::invalid_request("code_verifier is missing (PKCE is required)")
        );
        for malformed in ["short", &"a".repeat(129), &format!("{VERIFIER} "), &VERIFIER.replace('-', "+")] {
            assert_eq!(refused(malformed), (ErrorCode::InvalidGrant, "code_verifier is malformed"), "{malformed}");
        }
        let mismatch = (ErrorCode::InvalidGrant, "code_verifier does not match the code_challenge");
        for wrong in [&"a".repeat(43), &format!("{VERIFIER}x"), &VERIFIER[..43].replace('d', "e"), CHALLENGE] {
            assert_eq!(refused(wrong), mismatch, "{wrong}");
        }
        // Every unreserved character, at both lengths' ends, is a verifier.
        for verifier in ["a-._~".repeat(9), "Z9".repeat(64)] {
            let made = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let challenge = PkceChallenge::parse(Some(&made), Some("S256"), &caps()).unwrap();
            assert!(challenge.verify(Some(&verifier)).is_ok(), "{verifier}");
        }
        assert!(!format!("{:?}", challenge.verify(Some(VERIFIER)).unwrap()).contains(VERIFIER));
    }

    #[test]
    fn a_challenge_is_read_back_from_a_seal_only_in_its_shape() {
        let written = serde_json::to_string(&challenge()).unwrap();
        assert_eq!(written, format!("\"{CHALLENGE}\""));
        assert_eq!(serde_json::from_str::<PkceChallenge>(&written).unwrap(), challenge());
        for malformed in [r#""x""#, &format!("\"{VERIFIER}x\""), &format!("\"{}\"", CHALLENGE.replace('-', "+")), "43"]
        {
            assert!(serde_json::from_str::<PkceChallenge>(malformed).is_err(), "{malformed}");
        }
    }
}
