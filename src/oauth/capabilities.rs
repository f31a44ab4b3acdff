//! What the gateway supports, as one value: the published metadata states it
//! ([`crate::oauth::metadata`]) and every endpoint enforces it, reading the same lists, so
//! that what is advertised and what is accepted cannot drift apart.

use crate::access::upstream::UpstreamMetadata;
use crate::config::Config;
use crate::primitives::strict_json::checked_string;
use serde::Serialize;

/// An enum of protocol names, each variant written as its specification spells it: read
/// with `parse`, written with `as_str`, and as that string in JSON.
macro_rules! protocol_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

protocol_names! {
    /// `response_type` (RFC 6749 §3.1.1).
    ResponseType {
        Code = "code",
    }
}

protocol_names! {
    /// `code_challenge_method` (RFC 7636 §4.3). `plain` is not one: RFC 9700 §2.1.1.
    PkceMethod {
        S256 = "S256",
    }
}

protocol_names! {
    /// `grant_type` at `/token` (RFC 6749 §4.1.3, §6).
    GrantType {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
    }
}

protocol_names! {
    /// How a client authenticates at `/token` (RFC 6749 §2.3.1, by RFC 7591 §2's names).
    ClientAuthMethod {
        /// A public client: PKCE alone.
        None = "none",
        /// The Access client's id and secret in `Authorization: Basic`.
        ClientSecretBasic = "client_secret_basic",
        /// The Access client's id and secret in the form.
        ClientSecretPost = "client_secret_post",
    }
}

/// The single source of truth for what the gateway supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `SCOPES`: what is asked of Access and advertised.
    pub scopes: Vec<String>,
    pub response_types: &'static [ResponseType],
    pub code_challenge_methods: &'static [PkceMethod],
    /// `refresh_token` only where Access supports it.
    pub grant_types: &'static [GrantType],
    /// A secret only where the gateway holds one to compare it with.
    pub token_auth_methods: &'static [ClientAuthMethod],
    /// Whether a `client_id` may be a Client ID Metadata Document's URL (`CIMD`).
    pub client_id_metadata: bool,
}

impl Capabilities {
    pub fn new(config: &Config, upstream: &UpstreamMetadata) -> Self {
        use ClientAuthMethod::{ClientSecretBasic, ClientSecretPost};
        use GrantType::{AuthorizationCode, RefreshToken};
        Self {
            scopes: config.scopes.clone(),
            response_types: &[ResponseType::Code],
            code_challenge_methods: &[PkceMethod::S256],
            grant_types: match upstream.supports_refresh {
                true => &[AuthorizationCode, RefreshToken],
                false => &[AuthorizationCode],
            },
            token_auth_methods: match config.access.client_secret {
                Some(_) => &[ClientAuthMethod::None, ClientSecretBasic, ClientSecretPost],
                None => &[ClientAuthMethod::None],
            },
            client_id_metadata: config.client_metadata.enabled,
        }
    }

    /// The `response_type` a request names, if it is one of these.
    pub fn response_type(&self, requested: &str) -> Option<ResponseType> {
        ResponseType::parse(requested).filter(|supported| self.response_types.contains(supported))
    }

    /// The `code_challenge_method` a request names, if it is one of these.
    pub fn code_challenge_method(&self, requested: &str) -> Option<PkceMethod> {
        PkceMethod::parse(requested).filter(|supported| self.code_challenge_methods.contains(supported))
    }

    /// The `grant_type` a request names, if it is one of these.
    pub fn grant_type(&self, requested: &str) -> Option<GrantType> {
        GrantType::parse(requested).filter(|supported| self.grant_types.contains(supported))
    }

    /// Whether a client may authenticate at `/token` this way.
    pub fn accepts(&self, method: ClientAuthMethod) -> bool {
        self.token_auth_methods.contains(&method)
    }

    /// The scope asked of Access (RFC 6749 §3.3): the requested scopes the gateway supports
    /// (unknown ones are ignored), each once, always with `openid`; all of them if the
    /// request names none.
    pub fn grant_scope(&self, requested: Option<&str>) -> Scope {
        let Some(requested) = requested else {
            return Scope(self.scopes.join(" "));
        };
        let mut granted: Vec<&str> = vec!["openid"];
        for scope in requested.split_whitespace() {
            if self.scopes.iter().any(|s| s == scope) && !granted.contains(&scope) {
                granted.push(scope);
            }
        }
        Scope(granted.join(" "))
    }
}

/// A scope the gateway granted ([`Capabilities::grant_scope`]): scope tokens separated by
/// single spaces, as asked of Access and shown on the consent page. Every token is one of
/// `SCOPES`, which has no whitespace in a token, so that is what one read back is checked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

checked_string!(Scope, |scope| {
    scope.split(' ').all(|token| !token.is_empty() && !token.contains(char::is_whitespace))
});

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::access::upstream::tests::upstream;
    use crate::config::tests::test_config;

    pub fn caps() -> Capabilities {
        Capabilities::new(&test_config(), &upstream())
    }

    #[test]
    fn scope_mapping() {
        let caps = caps();
        assert_eq!(caps.grant_scope(None), "openid email profile");
        assert_eq!(caps.grant_scope(Some("email")), "openid email");
        assert_eq!(caps.grant_scope(Some("mcp:tools email email")), "openid email");
        assert_eq!(caps.grant_scope(Some(" profile\topenid ")), "openid profile");
    }

    #[test]
    fn a_scope_is_read_back_only_as_space_separated_tokens() {
        let scope = caps().grant_scope(Some("email"));
        let written = serde_json::to_string(&scope).unwrap();
        assert_eq!(written, r#""openid email""#);
        assert_eq!(serde_json::from_str::<Scope>(&written).unwrap(), scope);
        for malformed in
            [r#""""#, r#""openid  email""#, r#"" openid""#, r#""openid\temail""#, r#""openid\u00a0email""#, "[]"]
        {
            assert!(serde_json::from_str::<Scope>(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn refresh_and_secrets_are_supported_only_where_access_and_the_configuration_allow() {
        let mut vars = crate::config::tests::vars();
        vars.remove("ACCESS_CLIENT_SECRET");
        let config = crate::config::tests::config_from(&vars).unwrap();
        let no_refresh = UpstreamMetadata { supports_refresh: false, ..upstream() };
        let caps = Capabilities::new(&config, &no_refresh);
        assert_eq!(caps.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(caps.token_auth_methods, [ClientAuthMethod::None], "no secret held: none to compare one with");
        let caps = Capabilities::new(&test_config(), &upstream());
        assert_eq!(caps.grant_types, [GrantType::AuthorizationCode, GrantType::RefreshToken]);
        assert!(caps.accepts(ClientAuthMethod::ClientSecretBasic) && caps.accepts(ClientAuthMethod::ClientSecretPost));
    }

    mod published_is_enforced {
        use super::*;
        use crate::clients::client_id_metadata::tests::{client, document, CLIENT};
        use crate::clients::client_id_metadata::ClientMetadata;
        use crate::config::Config;
        use crate::oauth::authorize::tests::{query, NOW};
        use crate::oauth::authorize::Relay;
        use crate::oauth::metadata::authorization_server;
        use crate::oauth::metadata::tests::site;
        use crate::oauth::token::tests::{code_for, code_request, form, sealed_refresh};
        use crate::oauth::token::{prepare, ClientTokenRequest};
        use crate::primitives::http::Response;
        use crate::primitives::params::Params;
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        use serde_json::{json, Value};

        /// Every configuration that changes what is published: a client secret or none, Access
        /// refreshing or not, documents on or off.
        fn deployments() -> Vec<(Config, UpstreamMetadata)> {
            let mut deployments = Vec::new();
            for (secret, refresh, documents) in (0..8).map(|n| (n & 1 == 1, n & 2 == 2, n & 4 == 4)) {
                let mut vars = crate::config::tests::vars();
                if !secret {
                    vars.remove("ACCESS_CLIENT_SECRET");
                }
                if !documents {
                    vars.insert("CIMD", "off".into());
                }
                let config = crate::config::tests::config_from(&vars).unwrap();
                deployments.push((config, UpstreamMetadata { supports_refresh: refresh, ..upstream() }));
            }
            deployments
        }

        /// Whether the published document's `member` lists `value`.
        fn lists(document: &Value, member: &str, value: &str) -> bool {
            document[member].as_array().unwrap().iter().any(|listed| listed == value)
        }

        fn location(response: &Response) -> Params {
            let location = response.header("location").unwrap();
            Params::parse(location.split_once('?').unwrap().1).unwrap()
        }

        /// `/authorize` takes what the document lists and refuses the rest; its answers are
        /// in the query, with `iss`.
        fn authorize(relay: &Relay, caps: &Capabilities, published: &Value) {
            for response_type in ["code", "token", "id_token", "code id_token", "none"] {
                let taken = relay.validate(&query(&[("response_type", response_type)], &[]), caps, None);
                assert_eq!(
                    taken.is_ok(),
                    lists(published, "response_types_supported", response_type),
                    "{response_type}"
                );
            }
            for method in ["S256", "plain", "s256"] {
                let taken = relay.validate(&query(&[("code_challenge_method", method)], &[]), caps, None);
                assert_eq!(taken.is_ok(), lists(published, "code_challenge_methods_supported", method), "{method}");
            }
            let request =
                relay.validate(&query(&[("scope", "openid email profile offline_access x")], &[]), caps, None);
            let granted: Vec<String> = request.unwrap().scope.split(' ').map(str::to_owned).collect();
            assert_eq!(json!(granted), published["scopes_supported"], "each listed scope, and no other, is granted");

            assert_eq!(published["response_modes_supported"], json!(["query"]));
            assert_eq!(published["authorization_response_iss_parameter_supported"], true);
            let refused = relay.validate(&query(&[("response_type", "token")], &[]), caps, None).unwrap_err();
            assert_eq!(location(&refused).get("iss"), published["issuer"].as_str(), "in the query, with iss");

            let listed = ClientMetadata::parse(&client(), &document(json!({"redirect_uris": ["http://127.0.0.1/cb"]})));
            let from_document = query(&[("client_id", CLIENT), ("redirect_uri", "http://127.0.0.1:1/cb")], &[]);
            let taken = relay.validate(&from_document, caps, Some(&listed));
            assert_eq!(taken.is_ok(), published["client_id_metadata_document_supported"] == true);
        }

        /// `/token` takes what the document lists and refuses the rest.
        fn token(config: &Config, caps: &Capabilities, upstream: &UpstreamMetadata, published: &Value) {
            let exchange = |authorization: Option<&str>, body: &str| {
                prepare(config, &site(), caps, upstream, &ClientTokenRequest { authorization, body }, NOW)
            };
            let refresh = sealed_refresh(config, "rt-1");
            for grant_type in ["authorization_code", "refresh_token", "client_credentials", "password", "implicit"] {
                let body = match grant_type {
                    "authorization_code" => code_request(config, &[]),
                    "refresh_token" => {
                        form(&[("grant_type", grant_type), ("refresh_token", &refresh), ("client_id", "abc123")])
                    }
                    _ => form(&[("grant_type", grant_type), ("client_id", "abc123")]),
                };
                assert_eq!(
                    exchange(None, &body).is_ok(),
                    lists(published, "grant_types_supported", grant_type),
                    "{grant_type}"
                );
            }
            let basic = format!("Basic {}", STANDARD.encode("abc123:s3cret"));
            let methods = [
                ("none", None, code_request(config, &[])),
                ("client_secret_basic", Some(basic.as_str()), code_request(config, &[("client_id", "")])),
                ("client_secret_post", None, code_request(config, &[("client_secret", "s3cret")])),
            ];
            for (method, authorization, body) in &methods {
                let taken = exchange(*authorization, body);
                assert_eq!(
                    taken.is_ok(),
                    lists(published, "token_endpoint_auth_methods_supported", method),
                    "{method}"
                );
            }
            for listed in published["token_endpoint_auth_methods_supported"].as_array().unwrap() {
                assert!(methods.iter().any(|(method, ..)| listed == method), "{listed} is one the gateway knows");
            }
            let code = code_for(config, None, Some(CLIENT));
            let body = form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://localhost:4567/callback"),
                ("code_verifier", crate::oauth::pkce::tests::VERIFIER),
                ("client_id", CLIENT),
            ]);
            assert_eq!(exchange(None, &body).is_ok(), published["client_id_metadata_document_supported"] == true);
        }

        /// The whole authorization server document, member by member, against what the
        /// endpoints do: the capabilities are the one source of both.
        #[test]
        fn the_published_document_is_what_the_endpoints_enforce() {
            let enforced = [
                "response_types_supported",
                "response_modes_supported",
                "grant_types_supported",
                "token_endpoint_auth_methods_supported",
                "code_challenge_methods_supported",
                "scopes_supported",
                "authorization_response_iss_parameter_supported",
                "client_id_metadata_document_supported",
            ];
            // Where the endpoints are, and what Access signs with: not capabilities.
            let described = [
                "issuer",
                "authorization_endpoint",
                "token_endpoint",
                "registration_endpoint",
                "jwks_uri",
                "subject_types_supported",
                "id_token_signing_alg_values_supported",
            ];
            for (config, upstream) in deployments() {
                let caps = Capabilities::new(&config, &upstream);
                let site = site();
                let published = serde_json::to_value(authorization_server(&site, &caps, &upstream)).unwrap();
                for member in published.as_object().unwrap().keys() {
                    assert!(enforced.contains(&member.as_str()) || described.contains(&member.as_str()), "{member}");
                }
                authorize(&Relay { config: &config, site: &site, now: NOW }, &caps, &published);
                token(&config, &caps, &upstream, &published);
            }
        }
    }

    #[test]
    fn protocol_names_are_read_and_written_as_specified() {
        for (text, grant) in
            [("authorization_code", GrantType::AuthorizationCode), ("refresh_token", GrantType::RefreshToken)]
        {
            assert_eq!((GrantType::parse(text), grant.as_str()), (Some(grant), text));
            assert_eq!(serde_json::to_value(grant).unwrap(), text);
        }
        for unknown in ["refresh_tokens", "Authorization_Code", "password", ""] {
            assert_eq!(GrantType::parse(unknown), None, "{unknown}");
        }
        assert_eq!(PkceMethod::parse("plain"), None);
        assert_eq!(PkceMethod::parse("s256"), None, "compared as written");
        assert_eq!(ClientAuthMethod::parse("client_secret_basic"), Some(ClientAuthMethod::ClientSecretBasic));
        assert_eq!(ResponseType::parse("code id_token"), None);
    }
}
