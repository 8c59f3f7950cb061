//! Who may touch which account, and what happens to each request: the policy
//! engine. Pure functions over plain data, so every rule is tested in a table;
//! the gateway loads the data and acts on the decision.
//!
//! Order of evaluation for one request of one agent on one account:
//! 1. The account's access mode (all agents, an allowlist or a denylist). An
//!    agent without access is refused everything on the account.
//! 2. The account's endpoint rules, in order; the first that matches the method,
//!    the path and the agent decides.
//! 3. Without a deciding rule (or with an `allow` rule), a trusted agent's writes,
//!    and writes under a live time-boxed grant, are auto-approved.
//! 4. Otherwise reads run and writes wait for a human.
//!
//! Explicit `deny` and `require_approval` rules win over trust and grants: an
//! owner who wrote a rule for an endpoint meant it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// Every agent may use the account.
    All,
    /// Only the listed agents.
    Allowlist,
    /// Every agent but the listed ones.
    Denylist,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::All => "all",
            AccessMode::Allowlist => "allowlist",
            AccessMode::Denylist => "denylist",
        }
    }

    pub fn parse(s: &str) -> Option<AccessMode> {
        match s {
            "all" => Some(AccessMode::All),
            "allowlist" => Some(AccessMode::Allowlist),
            "denylist" => Some(AccessMode::Denylist),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Deny,
    Allow,
    RequireApproval,
    AutoApprove,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Deny => "deny",
            Effect::Allow => "allow",
            Effect::RequireApproval => "require_approval",
            Effect::AutoApprove => "auto_approve",
        }
    }

    pub fn parse(s: &str) -> Option<Effect> {
        match s {
            "deny" => Some(Effect::Deny),
            "allow" => Some(Effect::Allow),
            "require_approval" => Some(Effect::RequireApproval),
            "auto_approve" => Some(Effect::AutoApprove),
            _ => None,
        }
    }
}

/// One endpoint rule of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// `None` matches any method.
    pub method: Option<String>,
    /// A glob over the decoded, lower-cased path: `*` matches within one segment
    /// (at the end, everything below too), `**` across segments.
    pub path: String,
    /// Agent ids the rule is limited to; empty means every agent.
    pub agents: Vec<i64>,
    pub effect: Effect,
}

/// What the engine needs to know about an account.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    pub mode: AccessMode,
    /// The agent ids of the allowlist or denylist.
    pub listed: Vec<i64>,
    pub rules: Vec<Rule>,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        AccountPolicy {
            mode: AccessMode::All,
            listed: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// What the engine needs to know about the agent.
#[derive(Debug, Clone, Default)]
pub struct AgentFacts {
    pub id: i64,
    pub trusted: bool,
    /// The agent's time-boxed auto-approve grants on this account.
    pub grants: Vec<GrantScope>,
}

/// What one time-boxed grant covers on its account, and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantScope {
    /// `None` covers every write method.
    pub method: Option<String>,
    /// A glob like a rule's, matched case for case against the path as the
    /// service receives it (never folded: a grant covers what was approved,
    /// not what looks like it); `None` covers every path.
    pub path: Option<String>,
    pub until: OffsetDateTime,
}

impl GrantScope {
    /// Whether the grant covers `method path` at `now`.
    pub fn covers(&self, method: &str, path: &str, now: OffsetDateTime) -> bool {
        self.until > now
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| glob_match(p, path))
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub outcome: Outcome,
    /// Which rule decided (its position in the account's list), if one did.
    pub rule: Option<usize>,
    /// Why, in words for the admin's dry run.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The agent may not use this account at all.
    NoAccess,
    Denied,
    /// A read runs now.
    Read,
    /// A write waits for a human.
    Queue,
    /// A write is approved by policy and runs without a human.
    AutoApprove,
}

pub fn has_access(policy: &AccountPolicy, agent_id: i64) -> bool {
    match policy.mode {
        AccessMode::All => true,
        AccessMode::Allowlist => policy.listed.contains(&agent_id),
        AccessMode::Denylist => !policy.listed.contains(&agent_id),
    }
}

/// Decides one request. `path` is the normalised path (decoded, lower case).
pub fn decide(
    policy: &AccountPolicy,
    agent: &AgentFacts,
    method: &str,
    path: &str,
    now: OffsetDateTime,
) -> Decision {
    if !has_access(policy, agent.id) {
        return Decision {
            outcome: Outcome::NoAccess,
            rule: None,
            reason: format!(
                "the account's access mode ({}) excludes this agent",
                policy.mode.as_str()
            ),
        };
    }
    let read = is_read(method);
    let matched = policy.rules.iter().enumerate().find(|(_, r)| {
        r.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && (r.agents.is_empty() || r.agents.contains(&agent.id))
            && glob_match(&r.path.to_lowercase(), path)
    });
    if let Some((i, rule)) = matched {
        let name = format!(
            "rule {} ({} {} → {})",
            i + 1,
            rule.method.as_deref().unwrap_or("any"),
            rule.path,
            rule.effect.as_str()
        );
        match rule.effect {
            Effect::Deny => {
                return Decision {
                    outcome: Outcome::Denied,
                    rule: Some(i),
                    reason: format!("{name} denies it"),
                };
            }
            _ if read => {
                return Decision {
                    outcome: Outcome::Read,
                    rule: Some(i),
                    reason: format!("{name}: reads run at once"),
                };
            }
            Effect::RequireApproval => {
                return Decision {
                    outcome: Outcome::Queue,
                    rule: Some(i),
                    reason: format!("{name} requires a human's approval"),
                };
            }
            Effect::AutoApprove => {
                return Decision {
                    outcome: Outcome::AutoApprove,
                    rule: Some(i),
                    reason: format!("{name} approves it automatically"),
                };
            }
            // An allow rule lets the request through; trust and grants still apply below.
            Effect::Allow => {}
        }
    }
    if read {
        return Decision {
            outcome: Outcome::Read,
            rule: matched.map(|(i, _)| i),
            reason: "reads are allowed unless a rule denies them".into(),
        };
    }
    if agent.trusted {
        return Decision {
            outcome: Outcome::AutoApprove,
            rule: matched.map(|(i, _)| i),
            reason: "the agent is trusted: its writes are approved automatically".into(),
        };
    }
    if let Some(grant) = agent
        .grants
        .iter()
        .filter(|g| g.covers(method, path, now))
        .max_by_key(|g| g.until)
    {
        let scope = match (&grant.method, &grant.path) {
            (None, None) => "this agent's writes to the account".to_string(),
            (m, p) => format!(
                "this agent's {} {} on the account",
                m.as_deref().unwrap_or("writes to"),
                p.as_deref().unwrap_or("any path")
            ),
        };
        return Decision {
            outcome: Outcome::AutoApprove,
            rule: matched.map(|(i, _)| i),
            reason: format!(
                "a grant auto-approves {scope} until {}",
                crate::clock::timestamp(grant.until)
            ),
        };
    }
    Decision {
        outcome: Outcome::Queue,
        rule: matched.map(|(i, _)| i),
        reason: "writes wait for a human unless a rule, trust or a grant says otherwise".into(),
    }
}

/// Matches a glob against a path: `*` is any run of characters but `/`, except
/// at the end of the pattern, where (as in the privacy blocks) it also takes
/// everything below; `**` is any run including `/`; `?` one character but `/`.
/// Whether a method reads (reads run at once; grants are for writes).
pub fn is_read(method: &str) -> bool {
    method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD")
}

pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=t.len()).any(|i| go(rest, &t[i..]))
            }
            Some(b'*') if p.len() == 1 => true,
            Some(b'*') => {
                let rest = &p[1..];
                let mut i = 0;
                loop {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if i == t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(b'?') => t.first().is_some_and(|c| *c != b'/') && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Checks a rule's glob before it is stored.
pub fn check_glob(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err("a path pattern starts with '/'".into());
    }
    if pattern.len() > 512 {
        return Err("a path pattern has at most 512 characters".into());
    }
    if pattern.contains("***") {
        return Err("use '*' or '**', not '***'".into());
    }
    // Nothing that would hide or reorder what a person reads.
    if pattern.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    }) {
        return Err("a path pattern holds no control or invisible characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Option<&str>, path: &str, agents: &[i64], effect: Effect) -> Rule {
        Rule {
            method: method.map(str::to_string),
            path: path.into(),
            agents: agents.to_vec(),
            effect,
        }
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-24 12:00 UTC);

    fn agent(id: i64) -> AgentFacts {
        AgentFacts {
            id,
            ..Default::default()
        }
    }

    #[test]
    fn globs() {
        let cases = [
            ("/repos/*/secrets*", "/repos/octo/secrets", true),
            ("/repos/*/secrets*", "/repos/octo/secrets/actions", true),
            ("/repos/*/secrets*", "/repos/octo/r/secrets", false),
            ("/repos/**/secrets*", "/repos/octo/r/secrets", true),
            ("/user", "/user", true),
            ("/user", "/users", false),
            ("/user*", "/users", true),
            ("/a/?/c", "/a/b/c", true),
            ("/a/?/c", "/a/bb/c", false),
            ("/**", "/anything/at/all", true),
            ("/*/two", "/one/two", true),
            ("/*/two", "/one/x/two", false),
            ("/*", "/one/two", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p} vs {t}");
        }
        assert!(check_glob("/ok/*").is_ok());
        assert!(check_glob("no-slash").is_err());
        for hidden in [
            "/a\nb",
            "/a\u{0}",
            "/a\u{1b}[31m",
            "/a\u{202e}b",
            "/a\u{200b}",
        ] {
            assert!(check_glob(hidden).is_err(), "{hidden:?}");
        }
    }

    #[test]
    fn access_modes() {
        let all = AccountPolicy::default();
        let allow = AccountPolicy {
            mode: AccessMode::Allowlist,
            listed: vec![1],
            rules: vec![],
        };
        let deny = AccountPolicy {
            mode: AccessMode::Denylist,
            listed: vec![1],
            rules: vec![],
        };
        let table = [
            (&all, 1, true),
            (&all, 2, true),
            (&allow, 1, true),
            (&allow, 2, false),
            (&deny, 1, false),
            (&deny, 2, true),
        ];
        for (policy, id, want) in table {
            assert_eq!(has_access(policy, id), want, "{:?} {id}", policy.mode);
            let d = decide(policy, &agent(id), "GET", "/x", NOW);
            assert_eq!(d.outcome == Outcome::NoAccess, !want);
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let policy = AccountPolicy {
            rules: vec![
                rule(Some("DELETE"), "/repos/**", &[], Effect::Deny),
                rule(None, "/repos/*/secrets*", &[], Effect::Deny),
                rule(Some("POST"), "/repos/*/*/issues", &[7], Effect::AutoApprove),
                rule(
                    Some("POST"),
                    "/repos/*/*/issues/*/comments",
                    &[],
                    Effect::RequireApproval,
                ),
                rule(None, "/notifications", &[], Effect::Allow),
            ],
            ..Default::default()
        };
        let table = [
            (1, "DELETE", "/repos/o/r", Outcome::Denied, Some(0)),
            (1, "GET", "/repos/o/secrets", Outcome::Denied, Some(1)),
            (1, "GET", "/repos/o/r", Outcome::Read, None),
            (
                7,
                "POST",
                "/repos/o/r/issues",
                Outcome::AutoApprove,
                Some(2),
            ),
            (1, "POST", "/repos/o/r/issues", Outcome::Queue, None),
            (
                7,
                "post",
                "/repos/o/r/issues/1/comments",
                Outcome::Queue,
                Some(3),
            ),
            (1, "PATCH", "/notifications", Outcome::Queue, Some(4)),
            (1, "GET", "/notifications", Outcome::Read, Some(4)),
        ];
        for (id, method, path, outcome, rule_index) in table {
            let d = decide(&policy, &agent(id), method, path, NOW);
            assert_eq!(
                (d.outcome, d.rule),
                (outcome, rule_index),
                "{id} {method} {path}: {}",
                d.reason
            );
        }
    }

    #[test]
    fn trust_and_grants_auto_approve_unless_a_rule_says_otherwise() {
        let policy = AccountPolicy {
            rules: vec![
                rule(Some("DELETE"), "/**", &[], Effect::RequireApproval),
                rule(None, "/danger", &[], Effect::Deny),
            ],
            ..Default::default()
        };
        let trusted = AgentFacts {
            id: 1,
            trusted: true,
            grants: vec![],
        };
        assert_eq!(
            decide(&policy, &trusted, "POST", "/x", NOW).outcome,
            Outcome::AutoApprove
        );
        assert_eq!(
            decide(&policy, &trusted, "DELETE", "/x", NOW).outcome,
            Outcome::Queue
        );
        assert_eq!(
            decide(&policy, &trusted, "POST", "/danger", NOW).outcome,
            Outcome::Denied
        );
        let granted = AgentFacts {
            id: 1,
            trusted: false,
            grants: vec![GrantScope {
                method: None,
                path: None,
                until: NOW + time::Duration::minutes(15),
            }],
        };
        assert_eq!(
            decide(&policy, &granted, "POST", "/x", NOW).outcome,
            Outcome::AutoApprove
        );
        let lapsed = AgentFacts {
            id: 1,
            trusted: false,
            grants: vec![GrantScope {
                method: None,
                path: None,
                until: NOW - time::Duration::seconds(1),
            }],
        };
        assert_eq!(
            decide(&policy, &lapsed, "POST", "/x", NOW).outcome,
            Outcome::Queue
        );
        // Reads are never queued: a require-approval rule does not stop a read.
        assert_eq!(
            decide(&policy, &agent(1), "GET", "/x", NOW).outcome,
            Outcome::Read
        );
    }

    #[test]
    fn a_scoped_grant_covers_its_method_and_path_only() {
        let policy = AccountPolicy {
            rules: vec![rule(
                Some("POST"),
                "/repos/*/*/pulls",
                &[],
                Effect::RequireApproval,
            )],
            ..Default::default()
        };
        let scoped = AgentFacts {
            id: 1,
            trusted: false,
            grants: vec![GrantScope {
                method: Some("POST".into()),
                path: Some("/repos/o/r/issues/*/comments".into()),
                until: NOW + time::Duration::minutes(60),
            }],
        };
        let table = [
            ("POST", "/repos/o/r/issues/5/comments", Outcome::AutoApprove),
            (
                "post",
                "/repos/o/r/issues/77/comments",
                Outcome::AutoApprove,
            ),
            ("PATCH", "/repos/o/r/issues/5/comments", Outcome::Queue),
            ("DELETE", "/repos/o/r/issues/5/comments", Outcome::Queue),
            ("POST", "/repos/o/r/issues/5/comments/x", Outcome::Queue),
            ("POST", "/repos/o/other/issues/5/comments", Outcome::Queue),
            ("POST", "/repos/o/r/issues", Outcome::Queue),
        ];
        for (method, path, want) in table {
            let d = decide(&policy, &scoped, method, path, NOW);
            assert_eq!(d.outcome, want, "{method} {path}: {}", d.reason);
        }
        // A rule that requires approval wins over a grant that covers it.
        let mut wide = scoped.clone();
        wide.grants[0].path = Some("/**".into());
        assert_eq!(
            decide(&policy, &wide, "POST", "/repos/o/r/pulls", NOW).outcome,
            Outcome::Queue
        );
        // Expired: nothing.
        let later = NOW + time::Duration::minutes(61);
        assert_eq!(
            decide(
                &policy,
                &scoped,
                "POST",
                "/repos/o/r/issues/5/comments",
                later
            )
            .outcome,
            Outcome::Queue
        );
    }
}
