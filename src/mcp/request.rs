//! What the gateway learns about an MCP request: the JSON-RPC method and, for the methods
//! that act on something, what they act on (a tool, a resource, a prompt) and its name.
//! From the 2026-07-28 request headers (`Mcp-Method`, `Mcp-Name`) when present, from the
//! body otherwise; where both are present they must agree (streamable HTTP, "Server
//! Validation": `400` and JSON-RPC `HeaderMismatch`).
//!
//! One reading: the gateway decides only on what every official SDK origin reads the same
//! way, and refuses the rest (docs/mcp-policy.md, "One reading"):
//! - the framing ([`check_framing`]): GET, POST and DELETE only, a body only on POST, and
//!   that body `application/json` in UTF-8 without a `Content-Encoding`, as the gateway reads
//!   it (express's `json()` decodes `charset=utf-7` and gzip; the other SDKs do not);
//! - member names ([`parse_body`]): no name twice in an object (the JSON parser), and none
//!   twice under Unicode case folding in the objects the gateway reads a member of (Go's
//!   `encoding/json` matches `Name`, `NAME`, `ſ`-for-`s` and `K`-for-`k` to a `name` field);
//! - resource URIs ([`canonical_uri`]): exactly their canonical WHATWG URL form, the form
//!   the TypeScript and Python SDKs look resources up by (dot segments resolved, scheme and
//!   host lower-cased, `file://localhost/` as `file:///`).

use crate::primitives::error::{Error, JsonRpcFailure, JsonRpcReply, RequestId};
use crate::primitives::strict_json::{self, Members};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::value::RawValue;
use unicase::UniCase;

/// The largest MCP request body the gateway reads to decide on it (tool arguments
/// included); larger ones are refused with `413` when a feature needs the body.
pub const MAX_MCP_BODY_BYTES: usize = 1024 * 1024;

/// The methods the MCP endpoint serves (streamable HTTP), for `405` answers.
pub const ALLOWED_METHODS: &str = "GET, POST, DELETE, OPTIONS";

/// What a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Tool,
    Resource,
    Prompt,
}

/// The methods whose name the 2026-07-28 `Mcp-Name` header carries, and where the name is
/// in `params`.
fn header_name_field(method: &str) -> Option<&'static str> {
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
    pub id: Option<RequestId>,
    pub method: String,
    /// What the method acts on, for the methods that act on something.
    pub target: Option<Target>,
    /// The tool or prompt name, the resource URI, or (for `completion/complete` of a
    /// resource) the URI template; `None` when the call does not say, which a policy denies.
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

/// How a request reaches the MCP endpoint, as far as reading its body goes.
#[derive(Debug, Clone, Copy)]
pub struct Framing<'a> {
    pub method: &'a str,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    /// Whether the request carries a body (a non-zero length, or chunks).
    pub has_body: bool,
}

/// What a request the gateway reads must look like: GET, POST or DELETE (the streamable
/// HTTP methods; a custom origin might run a `tools/call` that came as `PUT`), a body only
/// on POST, and that body as the gateway reads it ([`is_utf8_json`], no `Content-Encoding`).
pub fn check_framing(framing: &Framing<'_>) -> Result<(), Error> {
    match framing.method {
        "POST" => {}
        "GET" | "DELETE" if framing.has_body => {
            return Err(Error::invalid_request("a GET or DELETE request to the MCP endpoint must not have a body"))
        }
        "GET" | "DELETE" => return Ok(()),
        _ => return Err(Error::MethodNotAllowed { allow: ALLOWED_METHODS }),
    }
    let identity = framing.content_encoding.is_none_or(|coding| coding.trim().eq_ignore_ascii_case("identity"));
    if !identity || !is_utf8_json(framing.content_type) {
        return Err(Error::UnsupportedMediaType { expected: "application/json in UTF-8, without Content-Encoding" });
    }
    Ok(())
}

/// `application/json`, with no parameter but one `charset=utf-8` (any case, quoted or not).
/// Another charset is refused, not decoded: the origin's framework may decode it (express
/// decodes UTF-7 and UTF-16) where the gateway read UTF-8. Two charsets are refused too
/// (frameworks keep the last).
pub fn is_utf8_json(content_type: Option<&str>) -> bool {
    let Some(media) = content_type.and_then(|value| value.parse::<mime::Mime>().ok()) else { return false };
    let mut params = media.params();
    let utf8 = match (params.next(), params.next()) {
        (None, _) => true,
        (Some((name, value)), None) => name == "charset" && value.as_str().eq_ignore_ascii_case("utf-8"),
        (Some(_), Some(_)) => false,
    };
    media.essence_str() == "application/json" && utf8
}

/// Whether `uri` is exactly the canonical serialisation of a URL (WHATWG URL Standard, which
/// the `url` crate implements, as do the runtimes the TypeScript and Python SDKs look
/// resources up with): no `.`/`..` segments, encoded or not, lower-case scheme and host, no
/// default port, `file:///` for `file://localhost/`, percent-encoding as the parser writes it.
pub fn canonical_uri(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|url| url.as_str() == uri)
}

/// Whether two member names of one object are equal under Unicode case folding (a superset
/// of the simple folding Go's `encoding/json` matches struct fields with). Sorted, so an
/// object with thousands of members costs `n log n`.
fn has_folded_duplicates(object: &Members) -> bool {
    let mut names: Vec<UniCase<&str>> = object.names().map(UniCase::unicode).collect();
    names.sort_unstable();
    names.windows(2).any(|pair| pair[0] == pair[1])
}

/// The objects of a message whose members the gateway reads: its `params` and a
/// completion's `params.ref`, where they are objects.
struct CallParams<'a> {
    params: Option<Members<'a>>,
    reference: Option<Members<'a>>,
}

impl<'a> CallParams<'a> {
    fn of(message: &Members<'a>) -> Self {
        let params = message.get("params").and_then(Members::of);
        let reference = params.as_ref().and_then(|params| params.get("ref")).and_then(Members::of);
        Self { params, reference }
    }
}

/// A string member of an object, if the object has one.
fn string_member(object: Option<&Members>, name: &str) -> Option<String> {
    strict_json::read(object?.get(name)?).ok()
}

/// What `method` acts on, and its name as `params` gives it.
fn target_of(method: &str, params: Option<&CallParams>) -> Option<(Target, Option<String>)> {
    let (reference, params) = params.map_or((None, None), |p| (p.reference.as_ref(), p.params.as_ref()));
    Some(match method {
        "tools/call" => (Target::Tool, string_member(params, "name")),
        "prompts/get" => (Target::Prompt, string_member(params, "name")),
        "resources/read" | "resources/subscribe" => (Target::Resource, string_member(params, "uri")),
        // Completing a prompt's arguments or a resource template's variables tells what
        // the prompt or the resources hold: decided like getting the prompt or reading a
        // resource (the template as written, against the resource patterns).
        "completion/complete" => match string_member(reference, "type").as_deref() {
            Some("ref/prompt") => (Target::Prompt, string_member(reference, "name")),
            Some("ref/resource") => (Target::Resource, string_member(reference, "uri")),
            _ => (Target::Prompt, None),
        },
        _ => return None,
    })
}

impl McpCall {
    /// A resource URI the SDK origins would read in another spelling ([`canonical_uri`]).
    fn names_a_non_canonical_uri(&self) -> bool {
        matches!(self.method.as_str(), "resources/read" | "resources/subscribe")
            && self.name.as_deref().is_some_and(|uri| !canonical_uri(uri))
    }
}

/// One message: an object whose `method`, if any, is a string. A response (a client
/// answering the server) names no method, so is no call. An `id` of `null` is none. No two
/// names of the message, its `params` or a completion's `params.ref` may be equal under
/// case folding.
fn call_of(message: &RawValue) -> Result<Option<McpCall>, Error> {
    let message = Members::of(message).ok_or_else(parse_error)?;
    let params = CallParams::of(&message);
    let read = [Some(&message), params.params.as_ref(), params.reference.as_ref()];
    if read.into_iter().flatten().any(has_folded_duplicates) {
        return Err(parse_error());
    }
    let method = message.get("method").map(strict_json::read::<Option<String>>).transpose();
    let Some(method) = method.map_err(|_| parse_error())?.flatten() else { return Ok(None) };
    let id = message.get("id").filter(|id| id.get() != "null").map(RequestId::from);
    let (target, name) = target_of(&method, Some(&params)).map_or((None, None), |(t, name)| (Some(t), name));
    Ok(Some(McpCall { id, method, target, name }))
}

/// Reads a POST body: a JSON-RPC message or a batch of them.
pub fn parse_body(body: &[u8]) -> Result<McpRequest, Error> {
    let value: &RawValue = strict_json::from_slice(body).map_err(|_| parse_error())?;
    let (messages, batch) = match value.get().as_bytes().first() {
        Some(b'[') => (strict_json::read::<Vec<&RawValue>>(value).map_err(|_| parse_error())?, true),
        Some(b'{') => (vec![value], false),
        _ => return Err(parse_error()),
    };
    if messages.is_empty() {
        return Err(parse_error());
    }
    let calls = messages.into_iter().filter_map(|message| call_of(message).transpose()).collect::<Result<_, _>>()?;
    let request = McpRequest { calls, batch };
    if request.calls.iter().any(McpCall::names_a_non_canonical_uri) {
        return Err(Error::JsonRpc { failure: JsonRpcFailure::NonCanonicalUri, reply: request.reply() });
    }
    Ok(request)
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
    if name.is_some() != header_name_field(method).is_some() {
        return Err(mismatch());
    }
    let target = target_of(method, None).map(|(target, _)| target);
    Ok(Some(McpCall { id: None, method: method.to_owned(), target, name }))
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
        && (header_name_field(&header.method).is_none() || body.calls[0].name == header.name);
    if agrees {
        Ok(Some(body.clone()))
    } else {
        Err(Error::JsonRpc { failure: JsonRpcFailure::HeaderMismatch, reply: body.reply() })
    }
}

/// Whether two JSON-RPC ids may name the same request: strings as written, numbers by their
/// value as a double, which is what the SDK origins echo (JavaScript writes `-0`, `1.0` and
/// `1e0` back as `0` and `1`, and a large integer in exponent form). Looser than equality,
/// so an answer is never taken for another call's, only possibly for more than one.
pub fn same_id(a: &RawValue, b: &RawValue) -> bool {
    let number = |id: &RawValue| {
        let text = id.get();
        text.starts_with(|c: char| c == '-' || c.is_ascii_digit()).then(|| text.parse::<f64>().ok())
    };
    match (number(a), number(b)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => match (strict_json::read::<String>(a), strict_json::read::<String>(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => a.get() == b.get(),
        },
        _ => false,
    }
}

/// The Workers Rate Limiting keys a request counts against, one per call (each member of
/// a batch counts): the identity, or with `by_tool` the identity and tool for a
/// `tools/call`. A request the gateway did not read counts once against the identity.
pub fn rate_limit_keys(subject: &str, request: Option<&McpRequest>, by_tool: bool) -> Vec<String> {
    let calls = request.map_or(&[][..], |request| &request.calls[..]);
    if calls.is_empty() {
        return vec![subject.to_owned()];
    }
    calls
        .iter()
        .map(|call| match (by_tool && call.target == Some(Target::Tool), &call.name) {
            // The separator cannot occur in a subject or a tool name that reached here.
            (true, Some(tool)) => format!("{subject}\u{0}{tool}"),
            _ => subject.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::error::tests::id;
    use serde_json::json;

    fn call(id: Option<RequestId>, method: &str, name: Option<&str>) -> McpCall {
        let target = target_of(method, None).map(|(target, _)| target);
        McpCall { id, method: method.into(), target, name: name.map(Into::into) }
    }

    fn parse(body: serde_json::Value) -> Result<McpRequest, Error> {
        parse_body(body.to_string().as_bytes())
    }

    fn failure(result: Result<McpRequest, Error>) -> Option<JsonRpcFailure> {
        match result {
            Err(Error::JsonRpc { failure, .. }) => Some(failure),
            _ => None,
        }
    }

    #[test]
    fn reads_method_target_and_name_from_the_body() {
        let body =
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ping", "arguments": {}}});
        assert_eq!(
            parse(body).unwrap(),
            McpRequest { calls: vec![call(Some(id("7")), "tools/call", Some("ping"))], batch: false }
        );
        let read = json!({"jsonrpc": "2.0", "id": "r", "method": "resources/read", "params": {"uri": "file:///a"}});
        let read = &parse(read).unwrap().calls[0];
        assert_eq!((read.target, read.name.as_deref()), (Some(Target::Resource), Some("file:///a")));
        let subscribe =
            json!({"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": "file:///a"}});
        assert_eq!(parse(subscribe).unwrap().calls[0].target, Some(Target::Resource));
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"name": "ignored"}});
        let list = &parse(list).unwrap().calls[0];
        assert_eq!((list.target, list.name.as_deref()), (None, None));
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(parse(notification).unwrap().calls[0].id, None);
        let response = json!({"jsonrpc": "2.0", "id": 3, "result": {}});
        assert!(parse(response).unwrap().calls.is_empty());
        // Positional params name nothing: a policy denies the call.
        let positional = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": ["delete_all"]});
        let positional = &parse(positional).unwrap().calls[0];
        assert_eq!((positional.target, positional.name.as_deref()), (Some(Target::Tool), None));
    }

    #[test]
    fn completions_act_on_the_prompt_or_resource_template_they_complete() {
        let complete = |reference: serde_json::Value| {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete",
                              "params": {"ref": reference, "argument": {"name": "a", "value": ""}}});
            let call = parse(body).unwrap().calls.remove(0);
            (call.target, call.name)
        };
        assert_eq!(
            complete(json!({"type": "ref/prompt", "name": "payroll"})),
            (Some(Target::Prompt), Some("payroll".into()))
        );
        assert_eq!(
            complete(json!({"type": "ref/resource", "uri": "file:///finance/{name}"})),
            (Some(Target::Resource), Some("file:///finance/{name}".into())),
            "a URI template, not a URL: matched as written"
        );
        for unknown in
            [json!({"type": "ref/tool", "name": "x"}), json!({"name": "x"}), json!("ref/prompt"), json!(null)]
        {
            assert_eq!(complete(unknown.clone()).1, None, "{unknown}: names nothing, so a policy denies it");
        }
    }

    #[test]
    fn batches_keep_every_member() {
        let body = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping"}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_all"}},
            {"jsonrpc": "2.0", "method": "notifications/progress"}
        ]);
        let request = parse(body).unwrap();
        assert!(request.batch);
        assert_eq!(request.calls.len(), 3);
        assert_eq!(request.reply(), JsonRpcReply::Batch(vec![id("1"), id("2")]));
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
            // A UTF-8 byte order mark: not JSON text (RFC 8259 §8.1), though some parsers skip it.
            "\u{feff}{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"ping\"}",
        ] {
            assert_eq!(failure(parse_body(body.as_bytes())), Some(JsonRpcFailure::ParseError), "{body}");
        }
    }

    /// Go's `encoding/json` fills a `json:"name"` field from `Name`, `NAME`, `ſ` for `s`
    /// and the Kelvin sign for `k`, the last one winning.
    #[test]
    fn names_equal_under_case_folding_are_duplicates_where_the_gateway_reads() {
        for body in [
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "Name": "delete_all"}}"#,
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "NAME": "delete_all"}}"#,
            r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "Method": "tools/list", "params": {"name": "x"}}"#,
            "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"resources/read\", \"params\": {\"uri\": \"file:///a\", \"uRI\": \"file:///b\"}}",
            "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/call\", \"params\": {\"name\": \"a\", \"kind\": 1, \"\u{212a}ind\": 2}}",
            "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/call\", \"params\": {\"name\": \"a\", \"\u{17f}\": 1, \"s\": 2}}",
            r#"{"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {"ref": {"type": "ref/prompt", "name": "a", "NAME": "b"}}}"#,
            r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "ID": 3, "method": "ping"}]"#,
        ] {
            assert_eq!(failure(parse_body(body.as_bytes())), Some(JsonRpcFailure::ParseError), "{body}");
        }
        // Tool arguments are the tool's own: a map there may hold both spellings.
        let arguments = r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a", "arguments": {"k": 1, "K": 2}}}"#;
        assert!(parse_body(arguments.as_bytes()).is_ok());
        // Many members: the sorted check still finds the pair.
        let mut params: Vec<String> = (0..500).map(|i| format!("\"m{i}\": {i}")).collect();
        params.push("\"M7\": 0".into());
        let body =
            format!(r#"{{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {{{}}}}}"#, params.join(","));
        assert_eq!(failure(parse_body(body.as_bytes())), Some(JsonRpcFailure::ParseError));
    }

    #[test]
    fn resource_uris_must_be_in_canonical_form() {
        for uri in ["file:///reports/q3.pdf", "https://example.com/a%20b?q=1", "urn:isbn:0451450523", "custom://h/x"] {
            assert!(canonical_uri(uri), "{uri}");
        }
        for uri in [
            "file:///reports/../finance/secret.pdf",
            "file:///reports/%2e%2e/finance/secret.pdf",
            "file:///reports/%2E%2e/finance/secret.pdf",
            "file:///reports/./q3.pdf",
            "FILE:///reports/q3.pdf",
            "file://localhost/reports/q3.pdf",
            "https://EXAMPLE.com/a",
            "https://example.com:443/a",
            "https://example.com",
            "https://example.com/a b",
            "custom://h/a/../b",
            "relative/path",
            "",
        ] {
            assert!(!canonical_uri(uri), "{uri}");
            for method in ["resources/read", "resources/subscribe"] {
                let body = json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": {"uri": uri}});
                match parse(body) {
                    Err(Error::JsonRpc { failure: JsonRpcFailure::NonCanonicalUri, reply }) => {
                        assert_eq!(reply, JsonRpcReply::Single(Some(id("5"))))
                    }
                    other => panic!("{method} {uri}: {other:?}"),
                }
            }
        }
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "FILE:///x"}}
        ]);
        assert!(matches!(
            parse(batch),
            Err(Error::JsonRpc { failure: JsonRpcFailure::NonCanonicalUri, reply: JsonRpcReply::Batch(ids) }) if ids.len() == 2
        ));
    }

    #[test]
    fn framing_is_checked_before_the_body_is_read() {
        let framing = |method, content_type, content_encoding, has_body| Framing {
            method,
            content_type,
            content_encoding,
            has_body,
        };
        let json = Some("application/json");
        for ok in [
            framing("POST", json, None, true),
            framing("POST", Some("application/json; charset=utf-8"), None, true),
            framing("POST", Some("Application/JSON;charset=\"UTF-8\""), Some("identity"), true),
            framing("GET", None, None, false),
            framing("DELETE", None, None, false),
        ] {
            assert_eq!(check_framing(&ok), Ok(()), "{ok:?}");
        }
        for (refused, status) in [
            (framing("PUT", json, None, true), 405),
            (framing("PATCH", json, None, true), 405),
            (framing("HEAD", None, None, false), 405),
            (framing("GET", None, None, true), 400),
            (framing("DELETE", json, None, true), 400),
            (framing("POST", None, None, true), 415),
            (framing("POST", Some("text/plain"), None, true), 415),
            (framing("POST", Some("application/json; charset=utf-7"), None, true), 415),
            (framing("POST", Some("application/json; charset=utf-16"), None, true), 415),
            (framing("POST", Some("application/json; charset=iso-8859-1"), None, true), 415),
            (framing("POST", Some("application/json; charset=utf-8; charset=utf-7"), None, true), 415),
            (framing("POST", Some("application/json; foo=bar"), None, true), 415),
            (framing("POST", Some("application/json-patch+json"), None, true), 415),
            (framing("POST", json, Some("gzip"), true), 415),
            (framing("POST", json, Some("br"), true), 415),
            (framing("POST", json, Some("identity, gzip"), true), 415),
        ] {
            let response = check_framing(&refused).unwrap_err().to_response(crate::primitives::error::Surface::Json);
            assert_eq!(response.status, status, "{refused:?}");
        }
    }

    #[test]
    fn ids_are_echoed_as_the_client_wrote_them() {
        for id in ["12345678901234567890123", "1.50", "-0", "1e2", "1E+2", "1e400", "\"a\"", "\"\\u00e9\""] {
            let body =
                format!(r#"{{"jsonrpc": "2.0", "id": {id}, "method": "tools/call", "params": {{"name": "x"}}}}"#);
            let reply = parse_body(body.as_bytes()).unwrap().reply();
            let denied = Error::JsonRpc { failure: JsonRpcFailure::Denied, reply };
            let answer = denied.to_response(crate::primitives::error::Surface::Json).body;
            assert!(answer.contains(&format!(r#""id":{id},"#)), "{answer}");
        }
        let null_id = json!({"jsonrpc": "2.0", "id": null, "method": "ping"});
        assert_eq!(parse(null_id).unwrap().calls[0].id, None);
    }

    #[test]
    fn ids_match_as_the_origins_echo_them() {
        let id = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        for (a, b) in [
            ("0", "-0"),
            ("1", "1.0"),
            ("1", "1e0"),
            ("1", "1E+0"),
            ("12345678901234567890123", "1.2345678901234568e+22"),
            ("\"a\"", "\"a\""),
        ] {
            assert!(same_id(&id(a), &id(b)), "{a} {b}");
        }
        for (a, b) in [("1", "2"), ("1", "\"1\""), ("\"a\"", "\"A\""), ("0", "null")] {
            assert!(!same_id(&id(a), &id(b)), "{a} {b}");
        }
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
            parse(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": name}})).unwrap()
        };
        let header = Some(call(None, "tools/call", Some("ping")));
        assert_eq!(reconcile(header.clone(), Some(body("ping"))).unwrap(), Some(body("ping")));
        assert_eq!(
            reconcile(header.clone(), Some(body("delete_all"))),
            Err(Error::JsonRpc { failure: JsonRpcFailure::HeaderMismatch, reply: JsonRpcReply::Single(Some(id("9"))) })
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
        let batch =
            parse(json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping"}}])).unwrap();
        assert!(reconcile(header, Some(batch)).is_err(), "headers describe one call, never a batch");
        // A method that acts on something without an Mcp-Name (a completion) agrees by method.
        let completion = parse(json!({"jsonrpc": "2.0", "id": 2, "method": "completion/complete",
                                      "params": {"ref": {"type": "ref/prompt", "name": "summary"}}}))
        .unwrap();
        let header = from_headers(Some("completion/complete"), None).unwrap();
        assert_eq!(reconcile(header, Some(completion.clone())).unwrap(), Some(completion));
    }

    #[test]
    fn rate_limits_count_every_call_per_identity_or_per_identity_and_tool() {
        let request = McpRequest {
            calls: vec![
                call(Some(id("1")), "tools/call", Some("ping")),
                call(Some(id("2")), "tools/list", None),
                call(Some(id("3")), "tools/call", Some("ping")),
            ],
            batch: true,
        };
        assert_eq!(rate_limit_keys("sub-1", Some(&request), false), ["sub-1", "sub-1", "sub-1"]);
        assert_eq!(rate_limit_keys("sub-1", Some(&request), true), ["sub-1\u{0}ping", "sub-1", "sub-1\u{0}ping"]);
        assert_eq!(rate_limit_keys("sub-1", None, true), ["sub-1"]);
        let answers = McpRequest { calls: vec![], batch: true };
        assert_eq!(rate_limit_keys("sub-1", Some(&answers), true), ["sub-1"], "a client's answers count once");
        let listing = McpRequest { calls: vec![call(Some(id("1")), "tools/list", None)], batch: false };
        assert_eq!(rate_limit_keys("sub-1", Some(&listing), true), ["sub-1"]);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_and_headers_never_panic(body in "\\PC{0,300}", method in "\\PC{0,30}", name in "\\PC{0,60}") {
            let headers = from_headers(Some(&method), Some(&name)).ok().flatten();
            let _ = reconcile(headers, parse_body(body.as_bytes()).ok());
            let _ = decode_header_value(&name);
            let _ = canonical_uri(&name);
            let _ = is_utf8_json(Some(&method));
        }
    }
}
