//! The client's authorization request once validated (RFC 6749 §4.1.1, RFC 7636 §4.3,
//! RFC 8707): what the consent ticket and the sealed `state` sent to Access carry. Each
//! member is of a type that only its check where the request came in makes (or, read back
//! from the seal, its shape checked again).

use crate::clients::client_id_metadata::ClientIdUrl;
use crate::clients::redirect_uri::RedirectUri;
use crate::oauth::capabilities::Scope;
use crate::oauth::metadata::Resource;
use crate::oauth::pkce::PkceChallenge;
use crate::primitives::error::Error;
use crate::primitives::strict_json::checked_string;
use serde::{Deserialize, Serialize};

/// Longer client `state` values are refused (real clients send tens of characters).
pub const MAX_STATE_LEN: usize = 2048;

/// The client's `state` (RFC 6749 §4.1.1): opaque to the gateway, sent back exactly as it
/// came, at most [`MAX_STATE_LEN`] long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClientState(String);

checked_string!(ClientState, |state| state.len() <= MAX_STATE_LEN);

impl ClientState {
    /// The request's `state`, if it sent one. It travels back in redirects: an absurd one is
    /// refused rather than echoed.
    pub fn parse(state: Option<&str>) -> Result<Option<Self>, Error> {
        match state {
            Some(state) if state.len() > MAX_STATE_LEN => Err(Error::invalid_request("state is too long")),
            state => Ok(state.map(|state| Self(state.to_owned()))),
        }
    }
}

/// A validated authorization request: what the consent ticket and the `state` sent
/// to Access carry. Sealed with the member names (`ru`, `st`, …) of the tickets and states
/// already out there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    #[serde(rename = "ru")]
    pub redirect_uri: RedirectUri,
    #[serde(rename = "st", skip_serializing_if = "Option::is_none")]
    pub state: Option<ClientState>,
    #[serde(rename = "cc")]
    pub code_challenge: PkceChallenge,
    #[serde(rename = "sc")]
    pub scope: Scope,
    #[serde(rename = "rs", skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The `client_id` URL of a client with a metadata document; `None` for the registered
    /// (Access) client.
    #[serde(rename = "ci", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientIdUrl>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::client_id_metadata::Settings;
    use crate::clients::redirect_uri::tests::redirect_uri;
    use crate::oauth::capabilities::tests::caps;
    use crate::oauth::metadata::tests::site;
    use crate::oauth::pkce::tests::challenge;
    use crate::primitives::seal::tests::open_text;
    use crate::primitives::seal::{OpenError, Purpose};

    /// A request each member of which came through its own check.
    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            redirect_uri: redirect_uri("http://localhost:4567/callback"),
            state: ClientState::parse(Some("client-state")).unwrap(),
            code_challenge: challenge(),
            scope: caps().grant_scope(Some("openid email")),
            resource: site().requested_resource(Some("https://mcp.example.com/mcp")).unwrap(),
            client_id: Settings::default().document_url("https://client.example.com/client.json").unwrap(),
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
    fn a_state_is_sent_back_as_it_came_unless_absurdly_long() {
        assert_eq!(ClientState::parse(None), Ok(None));
        let longest = "s".repeat(MAX_STATE_LEN);
        assert_eq!(ClientState::parse(Some(&longest)).unwrap().as_deref(), Some(longest.as_str()));
        let opaque = " <x>&y=%20 ";
        assert_eq!(ClientState::parse(Some(opaque)).unwrap().as_deref(), Some(opaque));
        let too_long = "s".repeat(MAX_STATE_LEN + 1);
        assert_eq!(ClientState::parse(Some(&too_long)), Err(Error::invalid_request("state is too long")));
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
            // Each member read back is checked for its shape again.
            OLD_MINIMAL.replace("callback", "callback#x"),
            OLD_MINIMAL.replace("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain-verifier"),
            OLD_MINIMAL.replace("openid email", "openid  email"),
            OLD_FULL.replace("client-state", &"s".repeat(MAX_STATE_LEN + 1)),
            OLD_FULL.replace("https://mcp.example.com/mcp", "/mcp"),
            OLD_FULL.replace("https://client.example.com/client.json", "http://client.example.com/client.json"),
        ];
        for payload in malformed {
            assert_eq!(open(&payload), Err(OpenError::Malformed), "{payload}");
        }
    }
}
