//! Who a client may be: the redirect URIs the gateway sends codes to, and clients identified
//! by a Client ID Metadata Document (an https URL as `client_id`).

/// URL client ids, their documents, the rules they must meet, and their cache.
pub(crate) mod client_id_metadata;
/// Client redirect URIs: the allowlist and RFC 8252 loopback matching.
pub(crate) mod redirect_uri;
