//! What the gateway learns about an MCP request: the JSON-RPC method and, for
//! `tools/call`, `resources/read` and `prompts/get`, the name (tool or prompt name,
//! resource URI). From the 2026-07-28 request headers (`Mcp-Method`, `Mcp-Name`) when
//! present, from the body otherwise; where both are present they must agree
//! (streamable HTTP, "Server Validation": `400` and JSON-RPC `HeaderMismatch`).

use crate::error::{Error, JsonRpcFailure, JsonRpcReply};
use crate::json::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The largest MCP request body the gateway reads to decide on it (tool arguments
/// included); larger ones are refused with `413` when a feature needs the body.
pub const MAX_MCP_BODY_BYTES: usize = 1024 * 1024;

/// The methods that name what they act on, and where the name is in `params`.
fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// One JSON-RPC message of a request, as far as the gateway cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    /// The request id; `None` for a notification.
    pub id: Option<Json>,
    pub method: String,
    /// The tool or prompt name, or the resource URI.
    pub name: Option<String>,
}

/// A request's calls: one, or the members of a JSON-RPC batch (2025-03-26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpRequest {
    pub calls: Vec<McpCall>,
    pub batch: bool,
}

impl McpRequest {
    /// Whom a JSON-RPC error about the whole request is addressed to.
    pub fn reply(&self) -> JsonRpcReply {
        if self.batch {
            JsonRpcReply::Batch(self.calls.iter().filter_map(|c| c.id.clone()).collect())
        } else {
            JsonRpcReply::Single(self.calls.first().and_then(|c| c.id.clone()))
        }
    }
}

fn parse_error() -> Error {
    Error::JsonRpc { failure: JsonRpcFailure::ParseError, reply: JsonRpcReply::Single(None) }
}

/// One message: an object whose `method`, if any, is a string. A response (a client
/// answering the server) names no method, so is no call. An `id` of `null` is none.
fn call_of(message: &Json) -> Result<Option<McpCall>, Error> {
    let message = message.as_object().ok_or_else(parse_error)?;
    let Some(method) = message.string("method").map_err(|_| parse_error())? else { return Ok(None) };
    let name = name_field(&method).and_then(|field| message.get("params")?.get(field)?.as_str().map(str::to_owned));
    let id = message.get("id").filter(|id| !id.is_null()).cloned();
    Ok(Some(McpCall { id, method, name }))
}

/// Reads a POST body: a JSON-RPC message or a batch of them.
pub fn parse_body(body: &[u8]) -> Result<McpRequest, Error> {
    let value = Json::parse(body).ok_or_else(parse_error)?;
    let (messages, batch) = match &value {
        Json::Array(items) if !items.is_empty() => (items.as_slice(), true),
        Json::Object(_) => (std::slice::from_ref(&value), false),
        _ => return Err(parse_error()),
    };
    let calls = messages.iter().filter_map(|message| call_of(message).transpose()).collect::<Result<_, _>>()?;
    Ok(McpRequest { calls, batch })
}

/// Decodes a header value that may use the Base64 sentinel `=?base64?…?=`.
pub fn decode_header_value(value: &str) -> Option<String> {
    match value.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) {
        Some(encoded) => String::from_utf8(STANDARD.decode(encoded).ok()?).ok(),
        None => Some(value.to_owned()),
    }
}

/// The call the `Mcp-Method` and `Mcp-Name` headers describe, if the client sent them.
pub fn from_headers(method: Option<&str>, name: Option<&str>) -> Result<Option<McpCall>, Error> {
    let mismatch = || Error::JsonRpc { failure: JsonRpcFailure::HeaderMismatch, reply: JsonRpcReply::Single(None) };
    let Some(method) = method else {
        return if name.is_some() { Err(mismatch()) } else { Ok(None) };
    };
    let name = name.map(|n| decode_header_value(n).ok_or_else(mismatch)).transpose()?;
    if name.is_some() != name_field(method).is_some() {
        return Err(mismatch());
    }
    Ok(Some(McpCall { id: None, method: method.to_owned(), name }))
}

/// What a request is: the body decides when it was read, and then the headers, when
/// present, must say the same (a header naming a harmless tool must not carry a body
/// calling another past a policy).
pub fn reconcile(headers: Option<McpCall>, body: Option<McpRequest>) -> Result<Option<McpRequest>, Error> {
    let (Some(header), Some(body)) = (&headers, &body) else {
        return Ok(body.or_else(|| headers.map(|call| McpRequest { calls: vec![call], batch: false })));
    };
    let agrees = !body.batch
        && body.calls.len() == 1
        && body.calls[0].method == header.method
        && body.calls[0].name == header.name;
    if agrees {
        Ok(Some(body.clone()))
    } else {
        Err(Error::JsonRpc { failure: JsonRpcFailure::HeaderMismatch, reply: body.reply() })
    }
}

/// The Workers Rate Limiting keys a request counts against: the identity, or with
/// `by_tool` the identity and each tool it calls (other requests count against the
/// identity alone).
pub fn rate_limit_keys(subject: &str, request: Option<&McpRequest>, by_tool: bool) -> Vec<String> {
    let tools: Vec<&str> = match request {
        Some(request) if by_tool => request
            .calls
            .iter()
            .filter(|call| call.method == "tools/call")
            .filter_map(|call| call.name.as_deref())
            .collect(),
        _ => Vec::new(),
    };
    if tools.is_empty() {
        return vec![subject.to_owned()];
    }
    // The separator cannot occur in a subject or a tool name that reached here.
    tools.into_iter().map(|tool| format!("{subject}\u{0}{tool}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(id: Option<Json>, method: &str, name: Option<&str>) -> McpCall {
        McpCall { id, method: method.into(), name: name.map(Into::into) }
    }

    #[test]
    fn reads_method_and_name_from_the_body() {
        let body =
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ping", "arguments": {}}});
        let request = parse_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            request,
            McpRequest { calls: vec![call(Some(Json::from(7u64)), "tools/call", Some("ping"))], batch: false }
        );
        let read = json!({"jsonrpc": "2.0", "id": "r", "method": "resources/read", "params": {"uri": "file:///a"}});
        assert_eq!(parse_body(read.to_string().as_bytes()).unwrap().calls[0].name.as_deref(), Some("file:///a"));
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"name": "ignored"}});
        assert_eq!(parse_body(list.to_string().as_bytes()).unwrap().calls[0].name, None);
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(parse_body(notification.to_string().as_bytes()).unwrap().calls[0].id, None);
        let response = json!({"jsonrpc": "2.0", "id": 3, "result": {}});
        assert!(parse_body(response.to_string().as_bytes()).unwrap().calls.is_empty());
    }

    #[test]
    fn batches_keep_every_member() {
        let body = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping"}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_all"}},
            {"jsonrpc": "2.0", "method": "notifications/progress"}
        ]);
        let request = parse_body(body.to_string().as_bytes()).unwrap();
        assert!(request.batch);
        assert_eq!(request.calls.len(), 3);
        assert_eq!(request.reply(), JsonRpcReply::Batch(vec![Json::from(1u64), Json::from(2u64)]));
    }

    #[test]
    fn malformed_bodies_are_parse_errors() {
        for body in [
            "",
            "{",
            "[]",
            "42",
            "\"x\"",
            "[1]",
            r#"{"method": 5}"#,
            r#"{"params": {"name": "x"}, "method": "tools/call", "id": {}"#,
            // Every message is an object (serde's derived reader took a 3-element array too).
            r#"[[1, "tools/call", {"name": "x"}]]"#,
            // A name twice: which one the origin would read is anyone's guess.
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "method": "tools/list"}"#,
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping", "name": "delete_all"}}"#,
            r#"[{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "ping"}]"#,
        ] {
            assert!(
                matches!(parse_body(body.as_bytes()), Err(Error::JsonRpc { failure: JsonRpcFailure::ParseError, .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn ids_are_echoed_as_the_client_wrote_them() {
        for id in ["12345678901234567890123", "1.50", "-0", "1e2", "\"a\""] {
            let body =
                format!(r#"{{"jsonrpc": "2.0", "id": {id}, "method": "tools/call", "params": {{"name": "x"}}}}"#);
            let reply = parse_body(body.as_bytes()).unwrap().reply();
            let denied = Error::JsonRpc { failure: JsonRpcFailure::Denied, reply };
            let answer = denied.to_response(crate::error::Surface::Json).body;
            assert!(answer.contains(&format!(r#""id":{id},"#)), "{answer}");
        }
        let null_id = json!({"jsonrpc": "2.0", "id": null, "method": "ping"});
        assert_eq!(parse_body(null_id.to_string().as_bytes()).unwrap().calls[0].id, None);
    }

    #[test]
    fn header_values_may_be_base64_wrapped() {
        assert_eq!(decode_header_value("get_weather").as_deref(), Some("get_weather"));
        assert_eq!(decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(), Some("Hello, 世界"));
        assert_eq!(decode_header_value("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").as_deref(), Some("=?base64?literal?="));
        assert_eq!(decode_header_value("=?base64?not base64?="), None);
        assert_eq!(decode_header_value("=?base64?/w==?="), None, "not UTF-8");
        assert_eq!(
            from_headers(Some("tools/call"), Some("=?base64?SGVsbG8sIOS4lueVjA==?=")).unwrap(),
            Some(call(None, "tools/call", Some("Hello, 世界")))
        );
    }

    #[test]
    fn headers_must_describe_a_whole_call() {
        assert_eq!(from_headers(None, None).unwrap(), None);
        assert_eq!(from_headers(Some("tools/list"), None).unwrap(), Some(call(None, "tools/list", None)));
        for (method, name) in [
            (None, Some("ping")),
            (Some("tools/call"), None),
            (Some("tools/list"), Some("ping")),
            (Some("tools/call"), Some("=?base64?%%?=")),
        ] {
            assert!(
                matches!(
                    from_headers(method, name),
                    Err(Error::JsonRpc { failure: JsonRpcFailure::HeaderMismatch, .. })
                ),
                "{method:?} {name:?}"
            );
        }
    }

    #[test]
    fn headers_and_body_must_agree() {
        let body = |name: &str| {
            parse_body(
                json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": name}})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap()
        };
        let header = Some(call(None, "tools/call", Some("ping")));
        assert_eq!(reconcile(header.clone(), Some(body("ping"))).unwrap(), Some(body("ping")));
        assert_eq!(
            reconcile(header.clone(), Some(body("delete_all"))),
            Err(Error::JsonRpc {
                failure: JsonRpcFailure::HeaderMismatch,
                reply: JsonRpcReply::Single(Some(Json::from(9u64)))
            })
        );
        let other_method = Some(call(None, "prompts/get", Some("ping")));
        assert!(reconcile(other_method, Some(body("ping"))).is_err());
        // Only one source: it is what the request is.
        assert_eq!(reconcile(None, Some(body("ping"))).unwrap(), Some(body("ping")));
        assert_eq!(
            reconcile(header.clone(), None).unwrap().unwrap().calls,
            vec![call(None, "tools/call", Some("ping"))]
        );
        assert_eq!(reconcile(None, None).unwrap(), None);
        let batch = parse_body(
            json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping"}}])
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(reconcile(header, Some(batch)).is_err(), "headers describe one call, never a batch");
    }

    #[test]
    fn rate_limits_count_per_identity_or_per_identity_and_tool() {
        let request = McpRequest {
            calls: vec![
                call(Some(Json::from(1u64)), "tools/call", Some("ping")),
                call(Some(Json::from(2u64)), "tools/list", None),
            ],
            batch: true,
        };
        assert_eq!(rate_limit_keys("sub-1", Some(&request), false), ["sub-1"]);
        assert_eq!(rate_limit_keys("sub-1", Some(&request), true), ["sub-1\u{0}ping"]);
        assert_eq!(rate_limit_keys("sub-1", None, true), ["sub-1"]);
        let listing = McpRequest { calls: vec![call(Some(Json::from(1u64)), "tools/list", None)], batch: false };
        assert_eq!(rate_limit_keys("sub-1", Some(&listing), true), ["sub-1"]);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_and_headers_never_panic(body in "\\PC{0,300}", method in "\\PC{0,30}", name in "\\PC{0,60}") {
            let headers = from_headers(Some(&method), Some(&name)).ok().flatten();
            let _ = reconcile(headers, parse_body(body.as_bytes()).ok());
            let _ = decode_header_value(&name);
        }
    }
}
