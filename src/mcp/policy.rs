//! Which identities may call which tools, read which resources and get which prompts
//! (`MCP_POLICY`). The list answers are cut down with the same decisions
//! ([`crate::mcp::list_filter`]).
//!
//! A policy is one JSON value: an ordered list of rules and a default. The first rule
//! that matches both the identity and the call decides; no rule matching means the
//! default. Methods that act on nothing (`initialize`, the lists, `ping` …) are always
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

use crate::access::token::Identity;
use crate::mcp::request::{McpCall, Target};
use crate::primitives::strict_json::{self, Object};
use serde::{de, Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `"allow"` or `"deny"`, and nothing else (serde's derived reader of an enum also takes
/// `{"allow": null}`).
impl<'de> Deserialize<'de> for Effect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            _ => Err(de::Error::custom("an effect is allow or deny")),
        }
    }
}

/// A rule names no member but these (a misspelt name, `tool`, must not silently widen a
/// rule). A list left out is empty; one given, even as `null`, must be an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    effect: Effect,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    email_domains: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    prompts: Vec<String>,
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpPolicy {
    default: Effect,
    #[serde(deserialize_with = "strict_json::objects")]
    rules: Vec<Rule>,
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
        const SHAPE: &str = "must be JSON: {\"default\": \"allow\"|\"deny\", \"rules\": [{\"effect\", \"emails\", \"email_domains\", \"groups\", \"tools\", \"resources\", \"prompts\"}]}";
        let Object(policy) = strict_json::from_slice::<Object<Self>>(text.as_bytes()).map_err(|_| SHAPE)?;
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
        let denied = calls.iter().any(|call| match call.target {
            None => false,
            Some(target) => call.name.as_deref().is_none_or(|name| self.decide(identity, target, name) == Effect::Deny),
        });
        if denied {
            Effect::Deny
        } else {
            Effect::Allow
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::primitives::error::Error;

    /// An identity with this email and these groups (the list filter's tests use it too).
    pub(crate) fn identity(email: &str, groups: &[&str]) -> Identity {
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
        let target = match method {
            "tools/call" => Some(Target::Tool),
            "resources/read" => Some(Target::Resource),
            _ => None,
        };
        McpCall {
            id: Some(crate::primitives::error::tests::id("1")),
            method: method.into(),
            target,
            name: name.map(Into::into),
        }
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
}
