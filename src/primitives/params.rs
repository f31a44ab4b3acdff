//! Request parameters: `application/x-www-form-urlencoded` query strings and form bodies.

use crate::primitives::error::Error;

/// `application/x-www-form-urlencoded` parameters (query strings and form bodies).
/// A repeated parameter is an error (RFC 6749 §3.1), and a parameter sent without a
/// value is treated as omitted. `Debug` shows the names only: values are codes,
/// verifiers, secrets and tokens.
#[derive(Default)]
pub struct Params(Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Params").field(&self.0.iter().map(|(name, _)| name).collect::<Vec<_>>()).finish()
    }
}

impl Params {
    pub fn parse(encoded: &str) -> Result<Self, Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(Error::invalid_request("a parameter is repeated"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &str, missing: &'static str) -> Result<&str, Error> {
        self.get(name).ok_or(Error::invalid_request(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_reject_repeats_and_drop_empty_values() {
        assert!(Params::parse("a=1&a=2").is_err());
        let p = Params::parse("a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        // An empty duplicate is "omitted", so it is not a repeat.
        assert_eq!(Params::parse("a=1&a=").unwrap().get("a"), Some("1"));
    }

    #[test]
    fn params_debug_shows_names_only() {
        let p = Params::parse("code=c0de-value&client_secret=s3cret-value").unwrap();
        assert_eq!(format!("{p:?}"), r#"Params(["code", "client_secret"])"#);
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_input_never_panics(input in "\\PC{0,300}") {
            let _ = Params::parse(&input);
        }
    }
}
