//! Values that must never be printed: client secrets, tokens, codes, keys.

use std::fmt;

/// A secret string. `Debug` prints `[redacted]`, there is no `Display`, and
/// equality is only available as the constant-time [`Secret::matches`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Every caller is a place where it can leak: only use it to
    /// put the value on the wire to the party it belongs to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison (no early exit on the first differing byte).
    pub fn matches(&self, candidate: &str) -> bool {
        constant_time_eq(&self.0, candidate)
    }
}

/// Compares two strings without an early exit on the first differing byte (only
/// the lengths may show).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A secret in JSON (sealed payloads, the token response) as the plain string, through
/// [`Secret::expose`]: `#[serde(with = "crate::primitives::secret::exposed")]` on each field that
/// carries one to the party it belongs to. `Secret` itself has no `Serialize`.
pub mod exposed {
    use super::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }

    /// An optional one: `null` or absent is `None`.
    pub mod option {
        use super::Secret;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(secret: &Option<Secret>, serializer: S) -> Result<S::Ok, S::Error> {
            match secret {
                Some(secret) => super::serialize(secret, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
            Option::<String>::deserialize(deserializer).map(|secret| secret.map(Secret::new))
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
    }

    #[test]
    fn matches_is_exact() {
        let s = Secret::new("hunter2");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter"));
        assert!(!s.matches("hunter22"));
        assert!(!s.matches(""));
    }

    #[test]
    fn is_the_plain_string_in_json() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Carried {
            #[serde(with = "exposed")]
            secret: Secret,
            #[serde(with = "exposed::option")]
            optional: Option<Secret>,
        }
        let carried = Carried { secret: Secret::new("hunter2"), optional: Some(Secret::new("x")) };
        let text = serde_json::to_string(&carried).unwrap();
        assert_eq!(text, r#"{"secret":"hunter2","optional":"x"}"#);
        let read: Carried = serde_json::from_str(&text).unwrap();
        assert!(read.secret.matches("hunter2") && read.optional.is_some_and(|x| x.matches("x")));
        let none: Carried = serde_json::from_str(r#"{"secret":"s","optional":null}"#).unwrap();
        assert!(none.optional.is_none());
    }
}
