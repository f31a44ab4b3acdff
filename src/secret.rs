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

/// A secret on the wire (sealed payloads, token responses) is the plain string.
impl From<&Secret> for crate::json::Json {
    fn from(secret: &Secret) -> Self {
        Self::String(secret.0.clone())
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
        assert_eq!(crate::json::Json::from(&Secret::new("hunter2")).encode(), "\"hunter2\"");
    }
}
