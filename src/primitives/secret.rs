//! Values that must never be printed: client secrets, tokens, codes, keys.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret string. `Debug` prints `[redacted]`, there is no `Display`, and
/// equality is only available as the constant-time [`Secret::matches`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Every caller is a place where it can leak: only use it to put
    /// the value on the wire to the party it belongs to (a form, a header, the JSON written
    /// for it), or to read its shape or hash it, never to print or log it.
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

/// Read from JSON (a sealed payload, a kept answer) as the plain string, straight into a
/// `Secret`. There is no `Serialize`: a secret reaches JSON only as the `&str` of an
/// explicit [`Secret::expose`] where the value that carries it is written.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
pub mod tests {
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

    /// Whether `T` has `Serialize`, asked of a concrete type: the inherent method exists only
    /// where the bound holds, and wins over the trait's.
    pub struct Probe<T>(pub std::marker::PhantomData<T>);

    pub trait NotSerializable {
        fn serializable(&self) -> bool {
            false
        }
    }

    impl<T> NotSerializable for Probe<T> {}

    impl<T: serde::Serialize> Probe<T> {
        pub fn serializable(&self) -> bool {
            true
        }
    }

    #[test]
    fn is_read_from_the_plain_string_in_json_and_written_only_as_exposed() {
        assert!(!Probe::<Secret>(std::marker::PhantomData).serializable());
        assert!(Probe::<&str>(std::marker::PhantomData).serializable(), "the probe tells them apart");
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Carried<S> {
            secret: S,
            #[serde(skip_serializing_if = "Option::is_none")]
            optional: Option<S>,
        }
        let read: Carried<Secret> = serde_json::from_str(r#"{"secret":"hunter2","optional":"x"}"#).unwrap();
        assert!(read.secret.matches("hunter2") && read.optional.as_ref().is_some_and(|x| x.matches("x")));
        let written = Carried { secret: read.secret.expose(), optional: read.optional.as_ref().map(Secret::expose) };
        assert_eq!(serde_json::to_string(&written).unwrap(), r#"{"secret":"hunter2","optional":"x"}"#);
        for absent in [r#"{"secret":"s","optional":null}"#, r#"{"secret":"s"}"#] {
            assert!(serde_json::from_str::<Carried<Secret>>(absent).unwrap().optional.is_none(), "{absent}");
        }
        for malformed in [r#"{"secret":1}"#, r#"{"secret":null}"#, r#"{}"#] {
            assert!(serde_json::from_str::<Carried<Secret>>(malformed).is_err(), "{malformed}");
        }
    }
}
