//! The client's authorization request once validated (RFC 6749 §4.1.1, RFC 7636 §4.3,
//! RFC 8707): what the consent ticket and the sealed `state` sent to Access carry.

use serde::{Deserialize, Serialize};

/// A validated authorization request: what the consent ticket and the `state` sent
/// to Access carry. Sealed with the member names (`ru`, `st`, …) of the tickets and states
/// already out there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    #[serde(rename = "ru")]
    pub redirect_uri: String,
    #[serde(rename = "st", skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(rename = "cc")]
    pub code_challenge: String,
    #[serde(rename = "sc")]
    pub scope: String,
    #[serde(rename = "rs", skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The `client_id` URL of a client with a metadata document; `None` for the registered
    /// (Access) client.
    #[serde(rename = "ci", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::authorize::tests::CHALLENGE;
    use crate::primitives::seal::tests::open_text;
    use crate::primitives::seal::{OpenError, Purpose};

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            redirect_uri: "http://localhost:4567/callback".into(),
            state: Some("client-state".into()),
            code_challenge: CHALLENGE.into(),
            scope: "openid email".into(),
            resource: Some("https://mcp.example.com/mcp".into()),
            client_id: Some("https://client.example.com/client.json".into()),
        }
    }

    fn minimal() -> AuthorizationRequest {
        AuthorizationRequest { state: None, resource: None, client_id: None, ..request() }
    }

    /// What the serde derive wrote for [`request`] and [`minimal`].
    const OLD_FULL: &str = r#"{"ru":"http://localhost:4567/callback","st":"client-state","cc":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","sc":"openid email","rs":"https://mcp.example.com/mcp","ci":"https://client.example.com/client.json"}"#;
    const OLD_MINIMAL: &str = r#"{"ru":"http://localhost:4567/callback","cc":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","sc":"openid email"}"#;

    fn open(payload: &str) -> Result<AuthorizationRequest, OpenError> {
        open_text(Purpose::State, payload)
    }

    #[test]
    fn a_state_sealed_by_the_serde_version_opens() {
        assert_eq!(open(OLD_FULL), Ok(request()));
        assert_eq!(open(OLD_MINIMAL), Ok(minimal()));
        assert_eq!(serde_json::to_string(&request()).unwrap(), OLD_FULL);
        assert_eq!(serde_json::to_string(&minimal()).unwrap(), OLD_MINIMAL);
    }

    #[test]
    fn null_optional_members_are_absent_and_anything_else_amiss_is_malformed() {
        let nulls = r#"{"ru":"http://localhost:4567/callback","st":null,"cc":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","sc":"openid email","rs":null,"ci":null}"#;
        assert_eq!(open(nulls), Ok(minimal()));
        let malformed = [
            OLD_MINIMAL.replace(r#""ru":"http://localhost:4567/callback","#, ""),
            OLD_MINIMAL.replace(r#""http://localhost:4567/callback""#, "null"),
            OLD_MINIMAL.replace(r#""openid email""#, r#"["openid"]"#),
            OLD_FULL.replace(r#""client-state""#, "1"),
            OLD_FULL.replace(r#""https://mcp.example.com/mcp""#, "true"),
            OLD_FULL.replace(r#""https://client.example.com/client.json""#, "{}"),
            "[]".to_owned(),
        ];
        for payload in malformed {
            assert_eq!(open(&payload), Err(OpenError::Malformed), "{payload}");
        }
    }
}
