//! The client's authorization request once validated (RFC 6749 §4.1.1, RFC 7636 §4.3,
//! RFC 8707): what the consent ticket and the sealed `state` sent to Access carry.

use serde::{Deserialize, Serialize};

/// A validated authorization request: what the consent ticket and the `state` sent
/// to Access carry.
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
    #[serde(rename = "ci", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}
