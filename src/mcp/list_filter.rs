//! The list answers an identity receives under `MCP_POLICY`, cut down to what it may use:
//! `tools/list`, `resources/list`, `resources/templates/list` and `prompts/list`, in a JSON
//! answer or event by event in an SSE stream. Fails closed: an answer that should hold a list
//! but cannot be read, or an event larger than [`MAX_LIST_ANSWER_BYTES`], is an error, never
//! passed on unfiltered.
//!
//! Which messages are list answers ([`Lists`]): the answer to a POST whose only call is a
//! list, whatever id the origin echoes; in a batch, each answer by its id compared as the
//! origins echo ids ([`same_id`]); on a stream no request of which the gateway read (a GET,
//! which may replay earlier answers), every result that holds a list's array.

use crate::access::token::Identity;
use crate::mcp::policy::{Effect, McpPolicy};
use crate::mcp::request::{same_id, McpRequest, Target};
use crate::primitives::error::{Error, RequestId};
use crate::primitives::strict_json::{self, Members};
use serde_json::value::{to_raw_value, RawValue};

/// The largest list answer (JSON) or SSE event the gateway holds to filter it. A list of a
/// few thousand tools with their schemas is a few MB.
pub const MAX_LIST_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// A list method, as its result names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl ListKind {
    const ALL: [Self; 4] = [Self::Tools, Self::Resources, Self::ResourceTemplates, Self::Prompts];

    fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(Self::Tools),
            "resources/list" => Some(Self::Resources),
            "resources/templates/list" => Some(Self::ResourceTemplates),
            "prompts/list" => Some(Self::Prompts),
            _ => None,
        }
    }

    /// The array's key in the result, the member naming each entry, and what it lists.
    fn shape(self) -> (&'static str, &'static str, Target) {
        match self {
            Self::Tools => ("tools", "name", Target::Tool),
            Self::Resources => ("resources", "uri", Target::Resource),
            // A template is shown if the template text itself matches a resource pattern.
            Self::ResourceTemplates => ("resourceTemplates", "uriTemplate", Target::Resource),
            Self::Prompts => ("prompts", "name", Target::Prompt),
        }
    }
}

/// Which messages of an answer hold lists, and of which kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Lists {
    /// The answer to a POST that asked for lists: `(id, kind)` of each list call.
    Answers { batch: bool, calls: Vec<(Option<RequestId>, ListKind)> },
    /// A stream whose requests the gateway did not read: every result with a list's array.
    AnyResult,
}

impl Lists {
    /// The lists a request asked for; `None` when it asked for none (its answer passes as is).
    pub fn asked_by(request: &McpRequest) -> Option<Self> {
        let calls: Vec<_> = request
            .calls
            .iter()
            .filter_map(|call| Some((call.id.clone(), ListKind::of_method(&call.method)?)))
            .collect();
        (!calls.is_empty()).then_some(Self::Answers { batch: request.batch, calls })
    }

    /// Whether the response `message` answers a list of this kind.
    fn answers(&self, kind: ListKind, message: &Members) -> bool {
        match self {
            Self::AnyResult => true,
            Self::Answers { batch: false, calls } => calls.iter().any(|(_, k)| *k == kind),
            Self::Answers { batch: true, calls } => {
                let id = message.get("id");
                calls.iter().any(|(call_id, k)| {
                    *k == kind && call_id.as_ref().zip(id).is_some_and(|(a, b)| same_id(a.get(), b))
                })
            }
        }
    }
}

/// One JSON-RPC response with the list entries `identity` may not use removed (an entry
/// without a name string goes too), and the list marked `cacheScope: "private"` (SEP-2549:
/// what one identity sees must not be cached for another; a client of an earlier revision
/// ignores the member, one that knows it must not fall back to caching for everyone).
/// `ttlMs` stays as the origin sent it, and everything else as it was written. `None` when
/// nothing changed.
fn filter_message(
    policy: &McpPolicy,
    identity: &Identity,
    lists: &Lists,
    message: &RawValue,
) -> Result<Option<Box<RawValue>>, Error> {
    let Some(members) = Members::of(message) else { return Ok(None) };
    if members.get("method").is_some() {
        return Ok(None); // a request or notification of the server's, not an answer
    }
    let kinds = ListKind::ALL.into_iter().filter(|kind| lists.answers(*kind, &members));
    let Some(result) = members.get("result").and_then(Members::of) else { return Ok(None) };
    let unwritable = |_| Error::Internal { reason: "a filtered list answer could not be written" };
    let mut changes: Vec<(&str, Box<RawValue>)> = Vec::new();
    for kind in kinds {
        let (key, field, target) = kind.shape();
        let Some(Ok(entries)) = result.get(key).map(strict_json::read::<Vec<&RawValue>>) else { continue };
        let allowed = |entry: &&RawValue| {
            let name = Members::of(entry).and_then(|entry| strict_json::read::<String>(entry.get(field)?).ok());
            name.is_some_and(|name| policy.decide(identity, target, &name) == Effect::Allow)
        };
        let kept: Vec<&RawValue> = entries.iter().copied().filter(allowed).collect();
        if kept.len() != entries.len() {
            changes.push((key, to_raw_value(&kept).map_err(unwritable)?));
        }
        let private = result.get("cacheScope").and_then(|scope| strict_json::read::<String>(scope).ok());
        if private.as_deref() != Some("private") && !changes.iter().any(|(name, _)| *name == "cacheScope") {
            changes.push(("cacheScope", to_raw_value("private").map_err(unwritable)?));
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let changes: Vec<(&str, &RawValue)> = changes.iter().map(|(name, value)| (*name, &**value)).collect();
    let result = result.with(&changes).map_err(unwritable)?;
    members.with(&[("result", &result)]).map(Some).map_err(unwritable)
}

/// Filters a JSON answer (a message or a batch of them): `Ok(None)` when nothing changed
/// (send the bytes as they are), an error when it is no JSON (never passed unfiltered).
pub fn filter_json(
    policy: &McpPolicy,
    identity: &Identity,
    lists: &Lists,
    body: &[u8],
) -> Result<Option<Vec<u8>>, Error> {
    if body.len() > MAX_LIST_ANSWER_BYTES {
        return Err(Error::unavailable("the origin's list answer is larger than the gateway filters"));
    }
    let not_json = |_| Error::unavailable("the origin's list answer is not JSON");
    let answer: &RawValue = strict_json::from_slice(body).map_err(not_json)?;
    let Ok(messages) = strict_json::read::<Vec<&RawValue>>(answer) else {
        return Ok(filter_message(policy, identity, lists, answer)?.map(|message| message.get().as_bytes().to_vec()));
    };
    let filtered = messages
        .iter()
        .map(|message| filter_message(policy, identity, lists, message))
        .collect::<Result<Vec<_>, _>>()?;
    if filtered.iter().all(Option::is_none) {
        return Ok(None);
    }
    let batch: Vec<&RawValue> =
        messages.iter().zip(&filtered).map(|(message, filtered)| filtered.as_deref().unwrap_or(message)).collect();
    serde_json::to_vec(&batch)
        .map(Some)
        .map_err(|_| Error::Internal { reason: "a filtered list answer could not be written" })
}

/// Where a line of the event being read is, in the event's raw bytes.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    /// Where the line's terminator starts (`\r`, `\n` or `\r\n`).
    end: usize,
    data: bool,
}

/// Rewrites an SSE answer event by event, reading it incrementally as the HTML Living
/// Standard's event stream parser does: lines end at CR, LF or CRLF (a CRLF may be split
/// across chunks), a blank line ends an event, a leading byte order mark is skipped, `data`
/// fields (with or without a colon) join with LF. An event whose data is a list answer is
/// filtered; every other event, comment and line passes byte for byte. Each byte is looked at
/// once. It owns what it needs, so a stream can outlive the request handler that started it.
pub struct SseListFilter {
    identity: Identity,
    lists: Lists,
    /// The raw bytes of the event being read, its complete lines first.
    event: Vec<u8>,
    lines: Vec<Line>,
    /// Where the line being read starts in `event`.
    line_start: usize,
    /// The last byte seen was a CR: an LF next belongs to its line end.
    after_cr: bool,
    /// No line has ended yet: the stream's first line may start with a byte order mark.
    first_line: bool,
}

impl SseListFilter {
    pub fn new(identity: Identity, lists: Lists) -> Self {
        Self { identity, lists, event: Vec::new(), lines: Vec::new(), line_start: 0, after_cr: false, first_line: true }
    }

    /// Takes the next chunk; returns the complete events seen so far, rewritten.
    pub fn push(&mut self, policy: &McpPolicy, mut chunk: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while !chunk.is_empty() {
            if std::mem::take(&mut self.after_cr) && chunk[0] == b'\n' {
                // The LF of a CRLF whose CR ended the last chunk: part of that line's end,
                // or of the event the CR ended, which has gone out already.
                if self.event.is_empty() {
                    out.push(b'\n');
                } else {
                    self.event.push(b'\n');
                    self.line_start = self.event.len();
                }
                chunk = &chunk[1..];
                continue;
            }
            let Some(at) = chunk.iter().position(|&b| b == b'\r' || b == b'\n') else {
                self.event.extend_from_slice(chunk);
                break;
            };
            let end = self.event.len() + at;
            self.event.extend_from_slice(&chunk[..at]);
            let crlf = chunk[at] == b'\r' && chunk.get(at + 1) == Some(&b'\n');
            let terminator = if crlf { 2 } else { 1 };
            self.event.extend_from_slice(&chunk[at..at + terminator]);
            self.after_cr = chunk[at] == b'\r' && !crlf && at + 1 == chunk.len();
            chunk = &chunk[at + terminator..];
            self.end_line(end);
            if self.lines.last().is_some_and(|line| line.start == line.end) {
                out.extend(self.dispatch(policy)?);
            }
        }
        if self.event.len() > MAX_LIST_ANSWER_BYTES {
            return Err(Error::unavailable("an SSE event of the origin is larger than the gateway filters"));
        }
        Ok(out)
    }

    /// What is left when the stream ends: an event without its blank line is filtered like
    /// a complete one (a client may still act on it).
    pub fn finish(&mut self, policy: &McpPolicy) -> Result<Vec<u8>, Error> {
        if self.line_start < self.event.len() {
            self.end_line(self.event.len());
        }
        self.dispatch(policy)
    }

    fn end_line(&mut self, end: usize) {
        // A byte order mark may start the stream, in however many chunks it came.
        let bom = "\u{feff}".as_bytes();
        let start = match std::mem::take(&mut self.first_line) && self.event[self.line_start..end].starts_with(bom) {
            true => self.line_start + bom.len(),
            false => self.line_start,
        };
        let text = &self.event[start..end];
        let field = text.iter().position(|&b| b == b':').map_or(text, |colon| &text[..colon]);
        self.lines.push(Line { start, end, data: field == b"data" });
        self.line_start = self.event.len();
    }

    /// The event read so far, rewritten if it is a list answer that changes, and the
    /// reading state cleared for the next event.
    fn dispatch(&mut self, policy: &McpPolicy) -> Result<Vec<u8>, Error> {
        let rewritten = self.rewrite(policy);
        let rest = self.event.split_off(self.line_start);
        let raw = std::mem::replace(&mut self.event, rest);
        self.lines.clear();
        self.line_start = 0;
        Ok(rewritten?.unwrap_or(raw))
    }

    /// The event with its data replaced by the filtered answer, or `None` to pass it as is.
    fn rewrite(&self, policy: &McpPolicy) -> Result<Option<Vec<u8>>, Error> {
        let mut data: Vec<u8> = Vec::new();
        let mut data_lines = self.lines.iter().filter(|line| line.data).peekable();
        let Some(first) = data_lines.peek().copied() else { return Ok(None) };
        for (i, line) in data_lines.enumerate() {
            if i > 0 {
                data.push(b'\n');
            }
            let value = &self.event[line.start + b"data".len()..line.end];
            let value = value.strip_prefix(b":").unwrap_or(value);
            data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        }
        if data.is_empty() {
            return Ok(None); // no event is dispatched for empty data
        }
        let Some(filtered) = filter_json(policy, &self.identity, &self.lists, &data)? else { return Ok(None) };
        let mut out = Vec::with_capacity(self.event.len());
        // Before the first line: the stream's byte order mark, if it had one.
        out.extend_from_slice(&self.event[..self.lines.first().map_or(0, |line| line.start)]);
        for (i, line) in self.lines.iter().enumerate() {
            let next = self.lines.get(i + 1).map_or(self.line_start, |l| l.start);
            if !line.data {
                out.extend_from_slice(&self.event[line.start..next]);
            } else if line.start == first.start {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&filtered);
                out.extend_from_slice(&self.event[line.end..next]);
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::policy::tests::identity;
    use crate::mcp::request::parse_body;
    use serde_json::{json, Value};

    fn policy() -> McpPolicy {
        McpPolicy::parse(
            r#"{"default": "deny", "rules": [
                {"effect": "deny", "tools": ["delete_*"]},
                {"effect": "allow", "groups": ["Finance Admins"], "tools": ["*"], "resources": ["*"]},
                {"effect": "allow", "email_domains": ["example.com"], "tools": ["search", "ping"], "prompts": ["*"],
                 "resources": ["file:///reports/*"]}
            ]}"#,
        )
        .unwrap()
    }

    fn staff() -> Identity {
        identity("amy@example.com", &[])
    }

    fn asked(body: Value) -> Lists {
        Lists::asked_by(&parse_body(body.to_string().as_bytes()).unwrap()).unwrap()
    }

    fn list_request(method: &str, id: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method})
    }

    fn tools_list(id: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "result": {
            "tools": [{"name": "ping", "description": "p"}, {"name": "export"}, {"name": "search", "inputSchema": {}}, {"title": "no name"}],
            "nextCursor": "c2"
        }})
    }

    fn filtered(lists: &Lists, answer: &Value) -> Option<Value> {
        filter_json(&policy(), &staff(), lists, answer.to_string().as_bytes())
            .unwrap()
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }

    fn tool_names(answer: &Value) -> Vec<&str> {
        answer["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn lists_keep_only_what_the_identity_may_use_and_everything_else() {
        let lists = asked(list_request("tools/list", json!(3)));
        let answer = filtered(&lists, &tools_list(json!(3))).unwrap();
        let mut expected = tools_list(json!(3));
        expected["result"]["tools"] =
            json!([{"name": "ping", "description": "p"}, {"name": "search", "inputSchema": {}}]);
        expected["result"]["cacheScope"] = json!("private");
        assert_eq!(answer, expected);
        let finance = identity("f@corp.example", &["Finance Admins"]);
        let everything =
            json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [{"name": "export"}], "cacheScope": "private"}});
        assert_eq!(
            filter_json(&policy(), &finance, &lists, everything.to_string().as_bytes()).unwrap(),
            None,
            "unchanged"
        );
        let error = json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "x"}});
        assert_eq!(filtered(&lists, &error), None);
    }

    #[test]
    fn every_kind_of_list_is_filtered() {
        for (method, answer, kept) in [
            (
                "resources/list",
                json!({"resources": [{"uri": "file:///reports/a.pdf"}, {"uri": "file:///finance/x"}]}),
                json!({"resources": [{"uri": "file:///reports/a.pdf"}]}),
            ),
            (
                "resources/templates/list",
                json!({"resourceTemplates": [{"uriTemplate": "file:///reports/{name}"}, {"uriTemplate": "file:///{path}"}]}),
                json!({"resourceTemplates": [{"uriTemplate": "file:///reports/{name}"}]}),
            ),
            (
                "prompts/list",
                json!({"prompts": [{"name": "summary"}, {"name": 7}]}),
                json!({"prompts": [{"name": "summary"}]}),
            ),
        ] {
            let lists = asked(list_request(method, json!(1)));
            let mut answer = filtered(&lists, &json!({"jsonrpc": "2.0", "id": 1, "result": answer})).unwrap();
            assert_eq!(answer["result"].as_object_mut().unwrap().remove("cacheScope"), Some(json!("private")));
            assert_eq!(answer["result"], kept, "{method}");
        }
    }

    #[test]
    fn a_single_list_answer_is_filtered_whatever_id_the_origin_echoes() {
        for (sent, echoed) in [("-0", "0"), ("1.0", "1"), ("1e0", "1"), ("7", "\"7\""), ("\"a\"", "null")] {
            let body = format!(r#"{{"jsonrpc": "2.0", "id": {sent}, "method": "tools/list"}}"#);
            let lists = Lists::asked_by(&parse_body(body.as_bytes()).unwrap()).unwrap();
            let answer = filtered(&lists, &tools_list(serde_json::from_str(echoed).unwrap())).unwrap();
            assert_eq!(tool_names(&answer), ["ping", "search"], "{sent} answered as {echoed}");
        }
    }

    #[test]
    fn batch_answers_are_matched_by_id_as_the_origins_echo_them() {
        let body = r#"[{"jsonrpc": "2.0", "id": -0, "method": "tools/list"},
                       {"jsonrpc": "2.0", "id": 1e0, "method": "prompts/list"},
                       {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search"}}]"#;
        let lists = Lists::asked_by(&parse_body(body.as_bytes()).unwrap()).unwrap();
        let prompts = json!({"jsonrpc": "2.0", "id": 1, "result": {"prompts": [{"name": "summary"}], "tools": [{"name": "export"}]}});
        let tool_result = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "export"}]}});
        let answer = filtered(&lists, &json!([tools_list(json!(0)), prompts, tool_result])).unwrap();
        assert_eq!(tool_names(&answer[0]), ["ping", "search"]);
        assert_eq!(
            answer[1]["result"]["tools"],
            json!([{"name": "export"}]),
            "a prompts/list answer is not a tool list"
        );
        assert_eq!(answer[2]["result"]["tools"], json!([{"name": "export"}]), "a tool's own result is its own");
        // A request without lists has nothing to filter.
        assert_eq!(Lists::asked_by(&parse_body(br#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#).unwrap()), None);
    }

    #[test]
    fn a_stream_of_unknown_requests_is_filtered_by_shape() {
        let replayed = filtered(&Lists::AnyResult, &tools_list(json!(99))).unwrap();
        assert_eq!(tool_names(&replayed), ["ping", "search"]);
        let request = json!({"jsonrpc": "2.0", "id": 5, "method": "sampling/createMessage", "params": {"tools": [{"name": "export"}]}});
        assert_eq!(filtered(&Lists::AnyResult, &request), None, "a server request is no answer");
    }

    #[test]
    fn every_list_is_marked_private_and_its_ttl_kept() {
        let lists = asked(list_request("prompts/list", json!(1)));
        let modern = json!({"jsonrpc": "2.0", "id": 1, "result": {"prompts": [{"name": "summary"}], "ttlMs": 60000, "cacheScope": "public"}});
        let answer = filtered(&lists, &modern).unwrap();
        assert_eq!(
            answer["result"],
            json!({"prompts": [{"name": "summary"}], "ttlMs": 60000, "cacheScope": "private"})
        );
        let private =
            json!({"jsonrpc": "2.0", "id": 1, "result": {"prompts": [], "ttlMs": 0, "cacheScope": "private"}});
        assert_eq!(filtered(&lists, &private), None);
        let legacy = json!({"jsonrpc": "2.0", "id": 1, "result": {"prompts": [{"name": "summary"}]}});
        assert_eq!(
            filtered(&lists, &legacy).unwrap()["result"],
            json!({"prompts": [{"name": "summary"}], "cacheScope": "private"})
        );
        let not_a_list = json!({"jsonrpc": "2.0", "id": 1, "result": {"other": []}});
        assert_eq!(filtered(&lists, &not_a_list), None, "a result without the list's array is left alone");
    }

    #[test]
    fn an_unreadable_list_answer_is_an_error() {
        let lists = asked(list_request("tools/list", json!(1)));
        for body in
            [&b"not json"[..], b"", b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {\"tools\": []}, \"id\": 2}"]
        {
            assert!(matches!(
                filter_json(&policy(), &staff(), &lists, body),
                Err(Error::Upstream { failure: crate::primitives::error::UpstreamFailure::Unavailable, .. })
            ));
        }
        let huge = vec![b' '; MAX_LIST_ANSWER_BYTES + 1];
        assert!(filter_json(&policy(), &staff(), &lists, &huge).is_err());
    }

    fn sse(lists: &Lists, stream: &[u8], chunk: usize) -> Result<Vec<u8>, Error> {
        let mut filter = SseListFilter::new(staff(), lists.clone());
        let mut out = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            out.extend(filter.push(&policy(), piece)?);
        }
        out.extend(filter.finish(&policy())?);
        Ok(out)
    }

    fn sse_data(out: &[u8]) -> Vec<Value> {
        let text = String::from_utf8(out.to_vec()).unwrap();
        text.split(['\r', '\n'])
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }

    #[test]
    fn sse_answers_are_filtered_event_by_event_whatever_the_line_ends_and_chunking() {
        let lists = asked(list_request("tools/list", json!(3)));
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}});
        for end in ["\n", "\r\n", "\r"] {
            let stream = format!(
                ": keep-alive{end}{end}event: message{end}id: 1{end}data: {progress}{end}{end}event: message{end}data: {}{end}{end}",
                tools_list(json!(3))
            );
            let whole = sse(&lists, stream.as_bytes(), stream.len()).unwrap();
            let text = String::from_utf8(whole.clone()).unwrap();
            assert!(
                text.starts_with(&format!(
                    ": keep-alive{end}{end}event: message{end}id: 1{end}data: {progress}{end}{end}"
                )),
                "untouched events pass byte for byte ({end:?})"
            );
            assert!(text.ends_with(&format!("{end}{end}")));
            let data = sse_data(&whole);
            assert_eq!(data.len(), 2);
            assert_eq!(tool_names(&data[1]), ["ping", "search"], "{end:?}");
            for size in [1, 2, 3, 7, 64] {
                assert_eq!(sse(&lists, stream.as_bytes(), size).unwrap(), whole, "chunks of {size}, {end:?}");
            }
        }
    }

    #[test]
    fn sse_fields_are_read_as_clients_read_them() {
        let lists = asked(list_request("tools/list", json!(3)));
        let answer = tools_list(json!(3)).to_string();
        let (head, tail) = answer.split_at(answer.find("\"result\"").unwrap());
        for stream in [
            format!("data:{answer}\n\n"),
            format!("\u{feff}data: {answer}\n\n"),
            format!("\u{feff}: comment\ndata: {answer}\n\n"),
            format!("data: {head}\ndata:{tail}\n\n"),
            format!("data\ndata: {answer}\n\n"),
            format!("event: message\nid: 9\nretry: 10\ndata: {answer}"),
            format!("data: {answer}\r\n"),
        ] {
            // In chunks of one byte too: a byte order mark split across chunks is still one
            // (found by fuzz/fuzz_targets/sse_list_filter.rs).
            for size in [1, 2, 5, stream.len()] {
                let out = sse(&lists, stream.as_bytes(), size).unwrap();
                let text = String::from_utf8(out).unwrap();
                assert!(!text.contains("export"), "{stream:?} in chunks of {size} → {text:?}");
            }
        }
        // A field name containing "data" is another field.
        let other = format!("database: {answer}\n\n");
        assert_eq!(sse(&lists, other.as_bytes(), 3).unwrap(), other.as_bytes());
        // Empty data dispatches no event: passed as is.
        assert_eq!(sse(&lists, b"id: 1\ndata:\n\n", 2).unwrap(), b"id: 1\ndata:\n\n");
    }

    #[test]
    fn an_sse_event_that_cannot_be_read_or_is_too_large_ends_the_stream() {
        let lists = asked(list_request("tools/list", json!(3)));
        assert!(sse(&lists, b"data: {\"tools\": [\n\n", 4).is_err());
        assert!(sse(&lists, b"data: not json\n\n", 100).is_err());
        let mut filter = SseListFilter::new(staff(), lists);
        let mut result = Ok(Vec::new());
        let chunk = vec![b'x'; 1024 * 1024];
        filter.push(&policy(), b"data: ").unwrap();
        for _ in 0..=MAX_LIST_ANSWER_BYTES / chunk.len() {
            result = filter.push(&policy(), &chunk);
        }
        assert!(result.is_err());
    }

    #[test]
    fn a_large_event_in_small_chunks_is_held_once() {
        // The filter keeps the event's bytes once, never more, however it arrives.
        let lists = asked(list_request("tools/list", json!(3)));
        let mut filter = SseListFilter::new(staff(), lists);
        let padding = "x".repeat(4 * 1024 * 1024);
        let stream = format!(
            "data: {{\"jsonrpc\": \"2.0\", \"id\": 3, \"result\": {{\"tools\": [], \"cacheScope\": \"private\", \"pad\": \"{padding}\"}}}}\n\n"
        );
        let mut out = Vec::new();
        for piece in stream.as_bytes().chunks(4096) {
            out.extend(filter.push(&policy(), piece).unwrap());
            assert!(filter.event.len() <= stream.len());
        }
        assert_eq!(out, stream.as_bytes());
    }
}
