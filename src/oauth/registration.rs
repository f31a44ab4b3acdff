//! The RFC 7591 Dynamic Client Registration shim. Access has no registration
//! endpoint and one client per app, so every registration receives the configured
//! Access client id, as a public client: the secret stays at the edge.

use crate::clients::redirect_uri::{is_loopback_host, Destination, RedirectPolicy, RedirectUri};
use crate::oauth::capabilities::{Capabilities, ClientAuthMethod, GrantType, ResponseType};
use crate::primitives::error::{Error, ErrorCode};
use crate::primitives::strict_json::{self, Members};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The RFC 7591 §2 client metadata the gateway reads; other members are ignored, `null` is a
/// member left out.
#[derive(Deserialize)]
struct ClientMetadata {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    scope: Option<String>,
    software_id: Option<String>,
    software_version: Option<String>,
    application_type: Option<String>,
}

/// The client information answered (RFC 7591 §3.2.1): always a public client.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ClientInformation {
    client_id: String,
    client_id_issued_at: u64,
    redirect_uris: Vec<RedirectUri>,
    grant_types: Vec<GrantType>,
    response_types: &'static [ResponseType],
    token_endpoint_auth_method: ClientAuthMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    software_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_type: Option<String>,
}

const MAX_REDIRECT_URIS: usize = 16;

fn metadata_error(description: &'static str) -> Error {
    Error::oauth(ErrorCode::InvalidClientMetadata, description)
}

/// Validates a registration request body and answers with the client information
/// (RFC 7591 §3.2.1) or the RFC 7591 §3.2.2 error.
pub fn register(
    body: &str,
    client_id: &str,
    policy: &RedirectPolicy,
    caps: &Capabilities,
    now: u64,
) -> Result<ClientInformation, Error> {
    let not_an_object = || metadata_error("the body must be a JSON object");
    let body: &RawValue = strict_json::from_slice(body.as_bytes()).map_err(|_| not_an_object())?;
    if Members::of(body).is_none() {
        return Err(not_an_object());
    }
    // Every member is typed before any is checked, so a wrong type is reported as such.
    let meta: ClientMetadata =
        strict_json::read(body).map_err(|_| metadata_error("a client metadata field has the wrong type"))?;

    let redirect_uris = meta.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(Error::oauth(ErrorCode::InvalidRedirectUri, "redirect_uris is required"));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(Error::oauth(ErrorCode::InvalidRedirectUri, "too many redirect_uris"));
    }
    let redirect_uris = redirect_uris.iter().map(|uri| policy.check(uri)).collect::<Result<Vec<_>, _>>()?;
    if let Some(application_type) = &meta.application_type {
        check_application_type(application_type, &redirect_uris)?;
    }
    if let Some(method) = &meta.token_endpoint_auth_method {
        // A client asking for a secret gets a public registration instead (RFC 7591
        // §3.2.1 lets the server replace values); unknown methods are errors.
        if ClientAuthMethod::parse(method).is_none() {
            return Err(metadata_error("unsupported token_endpoint_auth_method"));
        }
    }
    let grant_types = match meta.grant_types {
        None => vec![GrantType::AuthorizationCode],
        Some(requested) => {
            let granted = requested
                .iter()
                .map(|grant| caps.grant_type(grant).ok_or(metadata_error("unsupported grant_types")))
                .collect::<Result<Vec<_>, _>>()?;
            if !granted.contains(&GrantType::AuthorizationCode) {
                return Err(metadata_error("grant_types must include authorization_code"));
            }
            granted
        }
    };
    if meta.response_types.is_some_and(|types| types.iter().any(|t| caps.response_type(t).is_none())) {
        return Err(metadata_error("only the code response type is supported"));
    }
    let scope = meta.scope.map(|requested| {
        requested.split_whitespace().filter(|s| caps.scopes.iter().any(|k| k == s)).collect::<Vec<_>>().join(" ")
    });
    Ok(ClientInformation {
        client_id: client_id.to_owned(),
        client_id_issued_at: now,
        redirect_uris,
        grant_types,
        response_types: caps.response_types,
        token_endpoint_auth_method: ClientAuthMethod::None,
        client_name: meta.client_name,
        client_uri: meta.client_uri,
        logo_uri: meta.logo_uri,
        scope: scope.filter(|s| !s.is_empty()),
        software_id: meta.software_id,
        software_version: meta.software_version,
        application_type: meta.application_type,
    })
}

/// OpenID Connect Dynamic Client Registration §2, which the 2026-07-28 MCP revision has
/// clients send (older clients omit it, and keep the allowlist alone). A native client
/// receives the result on its own computer: loopback or a private-use scheme, plus the
/// hosted forwarders, which hand it to the application (VS Code registers its forwarder
/// as a native client). A web client receives it on an `https` page that is not loopback.
fn check_application_type(application_type: &str, redirect_uris: &[RedirectUri]) -> Result<(), Error> {
    let native = match application_type {
        "native" => true,
        "web" => false,
        _ => return Err(metadata_error("application_type must be native or web")),
    };
    let fits = |uri: &str| {
        let Ok(url) = url::Url::parse(uri) else {
            return false;
        };
        let web_page = url.scheme() == "https";
        if native {
            let own_computer = matches!(Destination::of(uri), Destination::Loopback | Destination::Forwarder);
            own_computer || (!web_page && url.scheme() != "http")
        } else {
            web_page && !url.host_str().is_some_and(is_loopback_host)
        }
    };
    if redirect_uris.iter().all(|uri| fits(uri)) {
        Ok(())
    } else {
        Err(Error::oauth(ErrorCode::InvalidRedirectUri, "a redirect_uri does not fit the application_type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::redirect_uri::DEFAULT_ALLOWLIST;
    use crate::oauth::capabilities::tests::caps;
    use serde_json::json;

    /// Capabilities with `scopes`, and the refresh grant where `refresh`.
    fn supporting(scopes: &[&str], refresh: bool) -> Capabilities {
        let grant_types: &'static [GrantType] = match refresh {
            true => &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            false => &[GrantType::AuthorizationCode],
        };
        Capabilities { scopes: scopes.iter().map(|s| s.to_string()).collect(), grant_types, ..caps() }
    }

    fn run(body: serde_json::Value) -> Result<serde_json::Value, Error> {
        let policy = RedirectPolicy::parse(DEFAULT_ALLOWLIST).unwrap();
        let caps = supporting(&["openid", "email"], true);
        register(&body.to_string(), "abc123", &policy, &caps, 1000).map(|c| serde_json::to_value(c).unwrap())
    }

    fn code_of(result: Result<serde_json::Value, Error>) -> ErrorCode {
        match result {
            Err(Error::OAuth { code, .. }) => code,
            other => panic!("expected an OAuth error, got {other:?}"),
        }
    }

    #[test]
    fn claude_code_registration() {
        let info = run(json!({
            "client_name": "Claude Code (local)",
            "redirect_uris": ["http://localhost:51234/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
            "scope": "openid email unknown"
        }))
        .unwrap();
        assert_eq!(
            info,
            json!({
                "client_id": "abc123",
                "client_id_issued_at": 1000,
                "redirect_uris": ["http://localhost:51234/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "client_name": "Claude Code (local)",
                "scope": "openid email",
                "application_type": "native"
            })
        );
    }

    #[test]
    fn confidential_request_gets_a_public_client_without_secret() {
        let info = run(json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"], "token_endpoint_auth_method": "client_secret_post"})).unwrap();
        assert_eq!(info["token_endpoint_auth_method"], "none");
        assert!(info.get("client_secret").is_none());
        assert_eq!(info["grant_types"], json!(["authorization_code"]));
    }

    #[test]
    fn application_type_is_checked_against_the_redirect_uris_and_echoed() {
        for case in crate::clients::redirect_uri::tests::vectors()["registration_accepted"].as_array().unwrap() {
            let info = run(case["body"].clone()).unwrap_or_else(|e| panic!("{}: {e:?}", case["name"]));
            assert_eq!(info.get("application_type"), case["body"].get("application_type"), "{}", case["name"]);
        }
    }

    #[test]
    fn application_type_goes_by_scheme_and_host_whatever_the_allowlist_says() {
        let policy =
            RedirectPolicy::parse("https://localhost/cb http://app.example/cb https://app.example/cb x-app:/cb")
                .unwrap();
        let caps = supporting(&[], false);
        let fits = |application_type: &str, uri: &str| {
            let body = json!({"redirect_uris": [uri], "application_type": application_type}).to_string();
            register(&body, "c", &policy, &caps, 0).is_ok()
        };
        assert!(fits("web", "https://app.example/cb"));
        assert!(!fits("web", "https://localhost/cb"));
        assert!(!fits("web", "http://app.example/cb"));
        assert!(fits("native", "x-app:/cb"));
        assert!(!fits("native", "http://app.example/cb"));
        assert!(!fits("native", "https://localhost/cb"));
    }

    #[test]
    fn rejects_bad_metadata() {
        for case in crate::clients::redirect_uri::tests::vectors()["registration_refused"].as_array().unwrap() {
            let expected = case["error"].as_str().unwrap();
            assert_eq!(code_of(run(case["body"].clone())).as_str(), expected, "{}", case["name"]);
        }
        let policy = RedirectPolicy::parse(DEFAULT_ALLOWLIST).unwrap();
        let caps = supporting(&[], false);
        assert!(register("not json", "c", &policy, &caps, 0).is_err());
    }

    #[test]
    fn a_body_that_is_no_object_and_a_member_of_the_wrong_type_are_told_apart() {
        let description = |body: &str| match run(serde_json::from_str(body).unwrap()) {
            Err(Error::OAuth { code: ErrorCode::InvalidClientMetadata, description }) => description,
            other => panic!("{body}: {other:?}"),
        };
        for body in ["[1, 2]", "\"x\"", "null"] {
            assert_eq!(description(body), "the body must be a JSON object", "{body}");
        }
        for body in [
            r#"{"redirect_uris": ["http://localhost:1/cb"], "client_name": 5}"#,
            r#"{"redirect_uris": ["http://localhost:1/cb"], "grant_types": "authorization_code"}"#,
            r#"{"redirect_uris": ["http://localhost:1/cb", null]}"#,
            r#"{"redirect_uris": ["http://localhost:1/cb"], "software_version": 2}"#,
        ] {
            assert_eq!(description(body), "a client metadata field has the wrong type", "{body}");
        }
        // `null` is a member left out; unknown members are ignored.
        let info =
            run(json!({"redirect_uris": ["http://localhost:1/cb"], "client_name": null, "contacts": [1]})).unwrap();
        assert!(info.get("client_name").is_none());
        // A name twice is not JSON the gateway reads (which one would the client mean?).
        let policy = RedirectPolicy::parse(DEFAULT_ALLOWLIST).unwrap();
        let caps = supporting(&[], false);
        let twice = r#"{"redirect_uris": ["http://localhost:1/cb"], "client_name": "a", "client_name": "b"}"#;
        assert_eq!(
            register(twice, "c", &policy, &caps, 0),
            Err(Error::oauth(ErrorCode::InvalidClientMetadata, "the body must be a JSON object"))
        );
    }
}
