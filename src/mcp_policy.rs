//! Which identities may call which tools, read which resources and get which prompts
//! (`MCP_POLICY`), and the filtering of `tools/list`, `resources/list` and
//! `prompts/list` answers down to what the identity may use.
//!
//! A policy is one JSON value: an ordered list of rules and a default. The first rule
//! that matches both the identity and the call decides; no rule matching means the
//! default. Methods that name nothing (`initialize`, the lists, `ping` …) are always
//! allowed: the lists are filtered instead.
//!
//! ```json
//! {"default": "deny",
//!  "rules": [
//!    {"effect": "deny", "tools": ["delete_*"]},
//!    {"effect": "allow", "groups": ["Finance Admins"], "tools": ["*"], "resources": ["*"]},
//!    {"effect": "allow", "email_domains": ["example.com"], "tools": ["search", "ping"], "prompts": ["*"]}
//!  ]}
//! ```

use crate::access_token::Identity;
use crate::json::{FromJson, Json, Object};
use crate::mcp_request::McpCall;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl FromJson for Effect {
    fn from_json(value: &Json) -> Option<Self> {
        match value.as_str()? {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// What a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Tool,
    Resource,
    Prompt,
}

impl Target {
    /// The method that acts on a target, and its list.
    fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/call" => Some(Self::Tool),
            "resources/read" => Some(Self::Resource),
            "prompts/get" => Some(Self::Prompt),
            _ => None,
        }
    }

    /// The list method for this target, the key of its array in the result, and the
    /// field of each entry that names it.
    fn of_list(method: &str) -> Option<(Self, &'static str, &'static str)> {
        match method {
            "tools/list" => Some((Self::Tool, "tools", "name")),
            "resources/list" => Some((Self::Resource, "resources", "uri")),
            "prompts/list" => Some((Self::Prompt, "prompts", "name")),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    effect: Effect,
    emails: Vec<String>,
    email_domains: Vec<String>,
    groups: Vec<String>,
    tools: Vec<String>,
    resources: Vec<String>,
    prompts: Vec<String>,
}

/// Whether `object` has no member but these: a misspelt name (`tool`) must not
/// silently widen a rule.
fn only_names(object: &Object, allowed: &[&str]) -> bool {
    object.names().all(|name| allowed.contains(&name))
}

impl FromJson for Rule {
    fn from_json(value: &Json) -> Option<Self> {
        let rule = value.as_object()?;
        let names = ["effect", "emails", "email_domains", "groups", "tools", "resources", "prompts"];
        if !only_names(rule, &names) {
            return None;
        }
        // A list left out is empty; one given, even as `null`, must be an array of strings.
        let list = |name| rule.strings_or_empty(name);
        Some(Self {
            effect: Effect::from_json(rule.get("effect")?)?,
            emails: list("emails")?,
            email_domains: list("email_domains")?,
            groups: list("groups")?,
            tools: list("tools")?,
            resources: list("resources")?,
            prompts: list("prompts")?,
        })
    }
}

impl Rule {
    /// No emails, domains or groups: everyone.
    fn matches_identity(&self, identity: &Identity) -> bool {
        if self.emails.is_empty() && self.email_domains.is_empty() && self.groups.is_empty() {
            return true;
        }
        let email = identity.email.as_deref().unwrap_or_default();
        self.emails.iter().any(|e| e.eq_ignore_ascii_case(email))
            || email.rsplit_once('@').is_some_and(|(_, d)| self.email_domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
            || identity.groups.iter().any(|g| self.groups.contains(g))
    }

    fn patterns(&self, target: Target) -> &[String] {
        match target {
            Target::Tool => &self.tools,
            Target::Resource => &self.resources,
            Target::Prompt => &self.prompts,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPolicy {
    default: Effect,
    rules: Vec<Rule>,
}

impl FromJson for McpPolicy {
    fn from_json(value: &Json) -> Option<Self> {
        let policy = value.as_object()?;
        if !only_names(policy, &["default", "rules"]) {
            return None;
        }
        Some(Self {
            default: Effect::from_json(policy.get("default")?)?,
            rules: policy.get("rules")?.as_array()?.iter().map(Rule::from_json).collect::<Option<_>>()?,
        })
    }
}

/// `*` stands for any run of characters (`/` included); everything else is literal.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl McpPolicy {
    /// Parses `MCP_POLICY`; every problem is a message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let policy = Json::parse(text.as_bytes()).as_ref().and_then(Self::from_json).ok_or(
            "must be JSON: {\"default\": \"allow\"|\"deny\", \"rules\": [{\"effect\", \"emails\", \"email_domains\", \"groups\", \"tools\", \"resources\", \"prompts\"}]}",
        )?;
        for rule in &policy.rules {
            if rule.tools.is_empty() && rule.resources.is_empty() && rule.prompts.is_empty() {
                return Err("has a rule that names no tools, resources or prompts");
            }
            let names = [&rule.emails, &rule.email_domains, &rule.groups, &rule.tools, &rule.resources, &rule.prompts];
            if names.iter().any(|list| list.iter().any(|n| n.trim().is_empty())) {
                return Err("has an empty name or pattern");
            }
        }
        Ok(policy)
    }

    /// The decision for one target name.
    pub fn decide(&self, identity: &Identity, target: Target, name: &str) -> Effect {
        self.rules
            .iter()
            .find(|rule| rule.matches_identity(identity) && rule.patterns(target).iter().any(|p| glob_matches(p, name)))
            .map_or(self.default, |rule| rule.effect)
    }

    /// The decision for a request's calls: any denied member denies all (a batch is
    /// decided as a whole). A call that should name something but does not is denied.
    pub fn decide_calls(&self, identity: &Identity, calls: &[McpCall]) -> Effect {
        let denied = calls.iter().any(|call| match Target::of_method(&call.method) {
            None => false,
            Some(target) => call.name.as_deref().is_none_or(|name| self.decide(identity, target, name) == Effect::Deny),
        });
        if denied {
            Effect::Deny
        } else {
            Effect::Allow
        }
    }

    /// Whether the answers to these calls hold a list to filter.
    pub fn filters(calls: &[McpCall]) -> bool {
        calls.iter().any(|call| Target::of_list(&call.method).is_some())
    }

    /// Removes from list answers (a JSON-RPC response, or a batch of them, each matched
    /// to its call by id) the entries the identity may not use. Anything else is left
    /// alone. Whether anything was removed.
    pub fn filter_list_response(&self, identity: &Identity, calls: &[McpCall], response: &mut Json) -> bool {
        let mut changed = false;
        let mut filter_one = |message: &mut Json| {
            let id = message.get("id");
            let Some(call) = calls.iter().find(|call| call.id.is_some() && call.id.as_ref() == id) else { return };
            let Some((target, key, field)) = Target::of_list(&call.method) else { return };
            if let Some(Json::Array(entries)) = message.get_mut("result").and_then(|r| r.get_mut(key)) {
                let before = entries.len();
                entries.retain(|entry| {
                    entry
                        .get(field)
                        .and_then(Json::as_str)
                        .is_some_and(|name| self.decide(identity, target, name) == Effect::Allow)
                });
                changed |= entries.len() != before;
            }
        };
        match response {
            Json::Array(messages) => messages.iter_mut().for_each(&mut filter_one),
            message => filter_one(message),
        }
        changed
    }

    /// Filters a JSON list answer's bytes; `None` when nothing changed (send as is).
    pub fn filter_json(&self, identity: &Identity, calls: &[McpCall], body: &[u8]) -> Option<Vec<u8>> {
        let mut value = Json::parse(body)?;
        self.filter_list_response(identity, calls, &mut value).then(|| value.encode().into_bytes())
    }
}

/// Rewrites an SSE answer event by event (the chunks may split events anywhere):
/// each event's `data` that is a list answer is filtered; every other line, comment
/// and event passes unchanged. It owns what it needs, so a stream can outlive the
/// request handler that started it.
pub struct SseListFilter {
    identity: Identity,
    calls: Vec<McpCall>,
    pending: Vec<u8>,
}

impl SseListFilter {
    pub fn new(identity: Identity, calls: Vec<McpCall>) -> Self {
        Self { identity, calls, pending: Vec::new() }
    }

    /// Takes the next chunk; returns the complete events seen so far, rewritten.
    pub fn push(&mut self, policy: &McpPolicy, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, separator)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + separator).collect();
            out.extend(self.rewrite_event(policy, &event[..end]));
            out.extend_from_slice(&event[end..]);
        }
        out
    }

    /// What is left when the stream ends (an unterminated last event), rewritten.
    pub fn finish(&mut self, policy: &McpPolicy) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        self.rewrite_event(policy, &rest)
    }

    fn rewrite_event(&self, policy: &McpPolicy, event: &[u8]) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(event) else { return event.to_vec() };
        let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        let data: Vec<&str> =
            lines.iter().filter_map(|l| l.strip_prefix("data:").map(|d| d.strip_prefix(' ').unwrap_or(d))).collect();
        if data.is_empty() {
            return event.to_vec();
        }
        let Some(filtered) = policy.filter_json(&self.identity, &self.calls, data.join("\n").as_bytes()) else {
            return event.to_vec();
        };
        let mut out: Vec<u8> = Vec::with_capacity(event.len());
        let mut data_written = false;
        for line in lines {
            if line.starts_with("data:") {
                if !data_written {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&filtered);
                    out.push(b'\n');
                    data_written = true;
                }
            } else {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        out.pop(); // the event's last line ends where the separator starts
        out
    }
}

/// Where the first complete event in `buffer` ends, and its separator's length: a
/// blank line (`\n\n`, `\r\n\r\n` or `\r\r`).
fn event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    (0..buffer.len()).find_map(|i| {
        [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"].iter().find(|sep| buffer[i..].starts_with(sep)).map(|sep| (i, sep.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::{json, Value};

    fn identity(email: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: "s".into(),
            email: Some(email.into()),
            groups: groups.iter().map(|g| (*g).into()).collect(),
            not_before: None,
            expires_at: 0,
        }
    }

    fn policy() -> McpPolicy {
        McpPolicy::parse(
            r#"{"default": "deny", "rules": [
                {"effect": "deny", "tools": ["delete_*"]},
                {"effect": "allow", "groups": ["Finance Admins"], "tools": ["*"], "resources": ["*"]},
                {"effect": "allow", "email_domains": ["example.com"], "tools": ["search", "ping"], "prompts": ["*"]},
                {"effect": "allow", "emails": ["Auditor@Partner.example"], "resources": ["file:///reports/*.pdf"]}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn globs() {
        for (pattern, name, matches) in [
            ("*", "anything/at all", true),
            ("ping", "ping", true),
            ("ping", "ping2", false),
            ("delete_*", "delete_all", true),
            ("delete_*", "undelete_all", false),
            ("*_admin", "db_admin", true),
            ("file:///reports/*.pdf", "file:///reports/q3/summary.pdf", true),
            ("file:///reports/*.pdf", "file:///reports/q3.pdf.txt", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob_matches(pattern, name), matches, "{pattern} {name}");
        }
    }

    #[test]
    fn first_matching_rule_decides_else_the_default() {
        let p = policy();
        let finance = identity("fin@corp.example", &["Finance Admins"]);
        let staff = identity("amy@example.com", &[]);
        let auditor = identity("auditor@partner.example", &[]);
        let nobody = identity("x@elsewhere.example", &["Finance"]);
        use Effect::*;
        use Target::*;
        for (who, target, name, effect) in [
            (&finance, Tool, "export", Allow),
            (&finance, Tool, "delete_all", Deny),
            (&staff, Tool, "delete_all", Deny),
            (&staff, Tool, "search", Allow),
            (&staff, Tool, "export", Deny),
            (&staff, Prompt, "summarise", Allow),
            (&finance, Prompt, "summarise", Deny),
            (&auditor, Resource, "file:///reports/q3.pdf", Allow),
            (&auditor, Resource, "file:///secrets/key.pem", Deny),
            (&nobody, Tool, "search", Deny),
        ] {
            assert_eq!(p.decide(who, target, name), effect, "{who:?} {target:?} {name}");
        }
        let open =
            McpPolicy::parse(r#"{"default": "allow", "rules": [{"effect": "deny", "tools": ["drop_*"]}]}"#).unwrap();
        assert_eq!(open.decide(&nobody, Tool, "search"), Allow);
        assert_eq!(open.decide(&nobody, Tool, "drop_table"), Deny);
    }

    fn call(method: &str, name: Option<&str>) -> McpCall {
        McpCall { id: Some(Json::from(1u64)), method: method.into(), name: name.map(Into::into) }
    }

    #[test]
    fn a_batch_is_as_strict_as_its_strictest_member() {
        let p = policy();
        let staff = identity("amy@example.com", &[]);
        assert_eq!(
            p.decide_calls(&staff, &[call("tools/call", Some("ping")), call("tools/list", None)]),
            Effect::Allow
        );
        assert_eq!(
            p.decide_calls(&staff, &[call("tools/call", Some("ping")), call("tools/call", Some("export"))]),
            Effect::Deny
        );
        assert_eq!(p.decide_calls(&staff, &[call("tools/call", None)]), Effect::Deny, "a call naming nothing");
        assert_eq!(p.decide_calls(&staff, &[call("initialize", None), call("ping", None)]), Effect::Allow);
    }

    #[test]
    fn invalid_policies_are_refused() {
        for text in [
            "",
            "allow",
            "{}",
            r#"{"default": "maybe", "rules": []}"#,
            r#"{"default": "allow"}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow"}]}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow", "tool": ["x"]}]}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow", "tools": [""]}]}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow", "tools": "x"}]}"#,
            r#"{"default": "allow", "rules": [], "extra": 1}"#,
            r#"{"default": "Allow", "rules": []}"#,
            r#"{"default": null, "rules": []}"#,
            r#"{"default": "allow", "rules": null}"#,
            r#"{"default": "allow", "rules": [5]}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow", "tools": ["x", 1]}]}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow", "tools": ["x"], "groups": null}]}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow", "tools": ["x"]}]} x"#,
            // An object's members, not an array of them in field order (serde's derived reader took both).
            r#"["allow", []]"#,
        ] {
            assert!(McpPolicy::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_name_twice_is_a_configuration_error() {
        for text in [
            r#"{"default": "allow", "default": "deny", "rules": []}"#,
            r#"{"default": "allow", "rules": [{"effect": "allow", "effect": "deny", "tools": ["x"]}]}"#,
            r#"{"default": "allow", "rules": [{"effect": "deny", "tools": ["delete_*"], "tools": ["ping"]}]}"#,
        ] {
            assert!(McpPolicy::parse(text).unwrap_err().starts_with("must be JSON"), "{text}");
            let mut vars = crate::config::tests::vars();
            vars.insert("MCP_POLICY", text.into());
            assert!(
                matches!(crate::config::tests::config_from(&vars), Err(Error::Config { setting: "MCP_POLICY", .. })),
                "{text}"
            );
        }
    }

    fn list_call(method: &str) -> [McpCall; 1] {
        [McpCall { id: Some(Json::from(3u64)), method: method.into(), name: None }]
    }

    fn tools_list() -> Value {
        json!({"jsonrpc": "2.0", "id": 3, "result": {
            "tools": [{"name": "ping", "description": "p"}, {"name": "export"}, {"name": "search", "inputSchema": {}}],
            "nextCursor": "c2"
        }})
    }

    #[test]
    fn lists_keep_only_what_the_identity_may_use_and_everything_else() {
        let p = policy();
        let staff = identity("amy@example.com", &[]);
        let filtered = p.filter_json(&staff, &list_call("tools/list"), tools_list().to_string().as_bytes()).unwrap();
        let filtered: Value = serde_json::from_slice(&filtered).unwrap();
        let mut expected = tools_list();
        expected["result"]["tools"] =
            json!([{"name": "ping", "description": "p"}, {"name": "search", "inputSchema": {}}]);
        assert_eq!(filtered, expected);
        let finance = identity("f@corp.example", &["Finance Admins"]);
        assert_eq!(
            p.filter_json(&finance, &list_call("tools/list"), tools_list().to_string().as_bytes()),
            None,
            "unchanged"
        );
        let resources = json!({"jsonrpc": "2.0", "id": 3, "result": {"resources": [{"uri": "file:///reports/a.pdf"}, {"uri": "file:///x"}]}});
        let auditor = identity("auditor@partner.example", &[]);
        let filtered: Value = serde_json::from_slice(
            &p.filter_json(&auditor, &list_call("resources/list"), resources.to_string().as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(filtered["result"]["resources"], json!([{"uri": "file:///reports/a.pdf"}]));
        let error = json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "x"}});
        assert_eq!(p.filter_json(&staff, &list_call("tools/list"), error.to_string().as_bytes()), None);
        assert_eq!(p.filter_json(&staff, &list_call("tools/call"), tools_list().to_string().as_bytes()), None);
        let other_id = [McpCall { id: Some(Json::from(4u64)), method: "tools/list".into(), name: None }];
        assert_eq!(p.filter_json(&staff, &other_id, tools_list().to_string().as_bytes()), None, "not its answer");
        assert_eq!(p.filter_json(&staff, &list_call("tools/list"), b"not json"), None);
        // A batch: each answer is matched to its call by id.
        let mut second = tools_list();
        second["id"] = json!(5);
        let calls = [
            McpCall { id: Some(Json::from(3u64)), method: "tools/list".into(), name: None },
            McpCall { id: Some(Json::from(5u64)), method: "prompts/list".into(), name: None },
        ];
        let batch = json!([tools_list(), second]);
        let filtered: Value =
            serde_json::from_slice(&p.filter_json(&staff, &calls, batch.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(filtered[0]["result"]["tools"].as_array().unwrap().len(), 2);
        assert_eq!(
            filtered[1]["result"]["tools"].as_array().unwrap().len(),
            3,
            "a prompts/list answer is not a tool list"
        );
    }

    #[test]
    fn sse_answers_are_filtered_event_by_event_whatever_the_chunking() {
        let p = policy();
        let staff = identity("amy@example.com", &[]);
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}});
        let stream = format!(
            ": keep-alive\r\n\r\nevent: message\r\nid: 1\r\ndata: {progress}\r\n\r\nevent: message\ndata: {}\n\n",
            tools_list()
        );
        let mut whole = SseListFilter::new(staff.clone(), list_call("tools/list").to_vec());
        let mut expected = whole.push(&p, stream.as_bytes());
        expected.extend(whole.finish(&p));
        let text = String::from_utf8(expected.clone()).unwrap();
        assert!(text.starts_with(&format!(": keep-alive\r\n\r\nevent: message\r\nid: 1\r\ndata: {progress}\r\n\r\n")));
        let last = text.rsplit("event: message\n").next().unwrap();
        assert!(last.ends_with("\n\n"));
        let data: Value = serde_json::from_str(last.trim_end().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["result"]["tools"].as_array().unwrap().len(), 2);
        assert_eq!(data["result"]["nextCursor"], "c2");
        for size in [1, 2, 3, 7, 64] {
            let mut filter = SseListFilter::new(staff.clone(), list_call("tools/list").to_vec());
            let mut out = Vec::new();
            for chunk in stream.as_bytes().chunks(size) {
                out.extend(filter.push(&p, chunk));
            }
            out.extend(filter.finish(&p));
            assert_eq!(out, expected, "chunks of {size}");
        }
        // A multi-line data field is one JSON text; an unterminated last event is still filtered.
        let split = format!("data: {{\"jsonrpc\": \"2.0\", \"id\": 3,\ndata: \"result\": {}}}", tools_list()["result"]);
        let mut filter = SseListFilter::new(staff.clone(), list_call("tools/list").to_vec());
        let mut out = filter.push(&p, split.as_bytes());
        assert!(out.is_empty());
        out.extend(filter.finish(&p));
        let data: Value = serde_json::from_slice(out.strip_prefix(b"data: ").unwrap()).unwrap();
        assert_eq!(data["result"]["tools"].as_array().unwrap().len(), 2);
    }
}
