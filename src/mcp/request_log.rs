//! The one JSON line logged per request, for `wrangler tail`, Workers Logs and Logpush.
//! Only the fields named here are ever written: never a query string, header, body,
//! tool argument, token, code or secret.

use crate::primitives::error::{Error, JsonRpcFailure};
use serde::{ser, Serialize, Serializer};
use serde_json::value::RawValue;

/// What the gateway decided about an MCP request that carried a valid identity: `Allow`
/// once it is sent to the origin; a request refused for another reason (a body that is
/// not JSON-RPC, too large) has no decision, only its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Passed to the origin.
    Allow,
    /// Refused by the MCP policy.
    Deny,
    /// Refused by the rate limit.
    RateLimited,
    /// Refused because its `Mcp-Method`/`Mcp-Name` headers disagree with its body.
    HeaderMismatch,
}

impl Decision {
    /// The decision an error stands for, if it is one of the gateway's MCP refusals.
    pub fn refusal(error: &Error) -> Option<Self> {
        match error {
            Error::JsonRpc { failure: JsonRpcFailure::Denied, .. } => Some(Self::Deny),
            Error::JsonRpc { failure: JsonRpcFailure::RateLimited { .. }, .. } => Some(Self::RateLimited),
            Error::JsonRpc { failure: JsonRpcFailure::HeaderMismatch, .. } => Some(Self::HeaderMismatch),
            _ => None,
        }
    }
}

/// Which requests get a line (`REQUEST_LOG`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogScope {
    /// Every request.
    #[default]
    All,
    /// Only the requests that failed: an answer of 400 or more, or one the gateway refused or
    /// could not complete whatever status it carries (a JSON-RPC refusal is one).
    Errors,
}

impl LogScope {
    /// Whether a request answered with `status`, `failed` or not, is logged.
    pub fn logs(self, status: u16, failed: bool) -> bool {
        self == Self::All || failed || status >= 400
    }
}

/// Every field is always present (`null` when unknown), so the lines have one shape.
#[derive(Debug, Default, Serialize)]
pub struct RequestLog<'a> {
    /// Milliseconds since the Unix epoch, when the request arrived.
    pub time: u64,
    /// Cloudflare's `cf-ray`.
    pub request_id: Option<&'a str>,
    pub method: &'a str,
    pub route: &'static str,
    pub status: u16,
    /// Written to a hundredth of a millisecond.
    #[serde(serialize_with = "hundredths")]
    pub duration_ms: f64,
    pub subject: Option<&'a str>,
    pub email: Option<&'a str>,
    /// The client the token was issued to: a metadata document's URL, or the Access client
    /// id for the gateway's sealed tokens of registered clients; `None` when the token does
    /// not say (an Access JWT).
    pub client: Option<&'a str>,
    /// The JSON-RPC method, and the tool or prompt name or resource URI, when known
    /// (from the body when the gateway read it, else from `Mcp-Method`/`Mcp-Name`).
    pub mcp_method: Option<&'a str>,
    pub mcp_name: Option<&'a str>,
    pub decision: Option<Decision>,
    pub origin_status: Option<u16>,
    /// The binding the request went to the origin through (`ORIGIN_SERVICE`), when it was
    /// sent there; `None` for `fetch` to `ORIGIN_URL`, or when the origin was not asked.
    pub origin_binding: Option<&'a str>,
    /// Body sizes where known (a declared `Content-Length`, or the bytes read).
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    /// Why the request failed; fixed reasons chosen by the gateway, never input.
    pub error: Option<String>,
}

impl RequestLog<'_> {
    /// The JSON line (the gateway's own fields, which always serialise).
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Milliseconds to the hundredth, written from integers, with no float formatting
/// (`41.3`, `9.0`, as a double's shortest form would read).
fn hundredths<S: Serializer>(ms: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    let hundredths = (ms * 100.0).round() as u64; // saturates; negative is 0
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    let text = match fraction.is_multiple_of(10) {
        true => format!("{whole}.{}", fraction / 10),
        false => format!("{whole}.{fraction:02}"),
    };
    let number: &RawValue = serde_json::from_slice(text.as_bytes()).map_err(ser::Error::custom)?;
    number.serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_always_there() {
        let line: serde_json::Value =
            serde_json::from_str(&RequestLog { method: "GET", route: "mcp", ..Default::default() }.line()).unwrap();
        let mut keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "time",
            "request_id",
            "method",
            "route",
            "status",
            "duration_ms",
            "subject",
            "email",
            "client",
            "mcp_method",
            "mcp_name",
            "decision",
            "origin_status",
            "origin_binding",
            "bytes_in",
            "bytes_out",
            "error",
        ];
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        let denied = RequestLog { decision: Some(Decision::RateLimited), ..Default::default() }.line();
        assert!(denied.contains(r#""decision":"rate_limited""#));
    }

    #[test]
    fn the_line_is_exact_and_escapes_what_it_writes() {
        let line = RequestLog {
            time: 1_796_090_000_000,
            request_id: Some("8f1c-LHR"),
            method: "POST",
            route: "mcp",
            status: 200,
            duration_ms: 41.3,
            email: Some("a\"b\\c\n@example.com"),
            decision: Some(Decision::HeaderMismatch),
            origin_status: Some(200),
            origin_binding: Some("ORIGIN_SERVICE"),
            bytes_in: Some(96),
            error: Some("origin answered 5xx".to_owned()),
            ..Default::default()
        }
        .line();
        assert_eq!(
            line,
            r#"{"time":1796090000000,"request_id":"8f1c-LHR","method":"POST","route":"mcp","status":200,"duration_ms":41.3,"subject":null,"email":"a\"b\\c\n@example.com","client":null,"mcp_method":null,"mcp_name":null,"decision":"header_mismatch","origin_status":200,"origin_binding":"ORIGIN_SERVICE","bytes_in":96,"bytes_out":null,"error":"origin answered 5xx"}"#
        );
        let duration = |ms: f64| {
            let line: serde_json::Value =
                serde_json::from_str(&RequestLog { duration_ms: ms, ..Default::default() }.line()).unwrap();
            line["duration_ms"].to_string()
        };
        assert_eq!(duration(9.0), "9.0");
        assert_eq!(duration(0.05), "0.05");
        assert_eq!(duration(12.345), "12.35");
        assert_eq!(duration(0.999), "1.0");
        assert_eq!(duration(-1.0), "0.0", "a clock that went back");
    }

    #[test]
    fn the_errors_scope_logs_failures_and_refusals_only() {
        assert!(LogScope::All.logs(200, false) && LogScope::All.logs(101, false));
        assert!(!LogScope::Errors.logs(200, false), "a success is not an error");
        assert!(!LogScope::Errors.logs(302, false) && !LogScope::Errors.logs(399, false));
        assert!(
            LogScope::Errors.logs(400, false) && LogScope::Errors.logs(401, false) && LogScope::Errors.logs(502, false)
        );
        assert!(LogScope::Errors.logs(200, true), "a refusal answered as a JSON-RPC error in a 200");
    }

    #[test]
    fn only_the_mcp_refusals_are_decisions() {
        use crate::primitives::error::JsonRpcReply;
        let refused = |failure| Decision::refusal(&Error::JsonRpc { failure, reply: JsonRpcReply::Single(None) });
        assert_eq!(refused(JsonRpcFailure::Denied), Some(Decision::Deny));
        assert_eq!(refused(JsonRpcFailure::RateLimited { retry_after_seconds: 10 }), Some(Decision::RateLimited));
        assert_eq!(refused(JsonRpcFailure::HeaderMismatch), Some(Decision::HeaderMismatch));
        assert_eq!(refused(JsonRpcFailure::ParseError), None, "a malformed body was not decided on");
        assert_eq!(Decision::refusal(&Error::PayloadTooLarge), None);
    }
}
