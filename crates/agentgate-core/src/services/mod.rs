//! The registry of services. Each service is described once, in its own module:
//! its key, how it signs in, its API base, the paths blocked for privacy, example
//! reads, write guidelines and how to ask it who the account is. Agent docs, the
//! admin API and request handling all read from here, so adding a service means
//! adding one module and one line to [`REGISTRY`].

mod bluesky;
pub mod compact;
mod fitbit;
mod github;
mod google;
mod jira;
mod linkedin;
mod mastodon;
mod reddit;
pub mod summary;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::paths::BlockRule;
use crate::queue::WriteRequest;
use crate::secret::Secret;

pub use bluesky::BLUESKY;
pub use fitbit::FITBIT;
pub use github::GITHUB;
pub use google::{CALENDAR, YOUTUBE};
pub use jira::JIRA;
pub use linkedin::LINKEDIN;
pub use mastodon::MASTODON;
pub use reddit::REDDIT;

/// Every service agentgate knows.
pub static REGISTRY: &[&ServiceDef] = &[
    &GITHUB, &BLUESKY, &MASTODON, &REDDIT, &CALENDAR, &YOUTUBE, &LINKEDIN, &JIRA, &FITBIT,
];

/// One field of an account's credentials, as the admin enters it.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct CredentialField {
    pub name: &'static str,
    pub label: &'static str,
    /// Whether the value is a secret (masked in forms, never shown again).
    pub secret: bool,
}

/// Groups of services, each with its own skill document for agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Code and work tracking: GitHub, Jira.
    Code,
    /// Posting and reading people: Bluesky, Mastodon, Reddit, LinkedIn, YouTube.
    Social,
    /// The person's own life: calendar, health.
    Personal,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::Code, Category::Social, Category::Personal];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Code => "code",
            Category::Social => "social",
            Category::Personal => "personal",
        }
    }
}

/// How requests to a service are signed.
#[derive(Debug, Clone, Copy)]
pub enum Auth {
    /// `Authorization: Bearer <field>`, a token the admin pastes in.
    Bearer { field: &'static str },
    /// HTTP Basic from two credential fields.
    Basic {
        user: &'static str,
        password: &'static str,
    },
    /// An AT Protocol session created from an identifier and app password and
    /// refreshed with its refresh token.
    AtprotoSession,
    /// OAuth2 authorization code, refreshed with the refresh token.
    OAuth2(&'static OAuthSpec),
}

impl Auth {
    /// The sign-in method as the admin API names it.
    pub fn method(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "token",
            Auth::Basic { .. } => "basic",
            Auth::AtprotoSession => "app_password",
            Auth::OAuth2(_) => "oauth2",
        }
    }
}

/// How a client authenticates at an OAuth2 token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the client id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
}

/// OAuth2 on a self-hosted service, where each instance is its own provider and
/// agentgate registers itself as an app on the instance the admin names.
#[derive(Debug, Clone, Copy)]
pub struct InstanceOAuth {
    pub register_path: &'static str,
    pub authorize_path: &'static str,
    pub token_path: &'static str,
    pub scopes: &'static [&'static str],
}

/// A provider's OAuth2 endpoints and what agentgate asks it for.
#[derive(Debug, Clone, Copy)]
pub struct OAuthSpec {
    /// Services of one provider share its OAuth client (Google: Calendar and YouTube).
    pub provider: &'static str,
    pub authorize_url: &'static str,
    pub token_url: &'static str,
    pub scopes: &'static [&'static str],
    pub pkce: bool,
    pub client_auth: ClientAuth,
    pub extra_params: &'static [(&'static str, &'static str)],
}

pub struct ServiceDef {
    pub key: &'static str,
    pub category: Category,
    pub aliases: &'static [&'static str],
    pub display_name: &'static str,
    pub description: &'static str,
    pub auth: Auth,
    /// The API base when the account does not name its own; `None` means every
    /// account must name one (self-hosted services).
    pub default_base_url: Option<&'static str>,
    /// How a bare host name given for an account becomes its API base
    /// (`{host}` is replaced), e.g. `https://{host}/rest/api/3` for Jira.
    pub base_url_template: Option<&'static str>,
    pub credential_fields: &'static [CredentialField],
    pub blocked: &'static [BlockRule],
    /// Paths that mint credentials or take over the account (sessions, app
    /// passwords, keys, tokens, email and password, identity): refused
    /// outright for reads and writes alike, never queued.
    pub control: &'static [BlockRule],
    /// Paths that name by number what the service also serves by name (GitHub's
    /// `/repositories/{id}` is `/repos/{owner}/{repo}`), each with its named
    /// form. Rules, destructive flags and grants are written on names, so a
    /// numbered path would pass beside them: refused, pointing to the name.
    pub by_number: &'static [(BlockRule, &'static str)],
    /// What is private on this service and how the gateway keeps it so, in
    /// one line for agents (the skill and the readme say it).
    pub privacy: &'static str,
    pub example_reads: &'static [&'static str],
    pub write_guidelines: &'static [&'static str],
    /// A read that answers with the account's own identity.
    pub identity_path: &'static str,
    /// Pulls a human-readable name out of the identity answer.
    pub identity_name: fn(&Value) -> Option<String>,
    /// Headers the service expects on every call; an agent's own header of the
    /// same name wins.
    pub default_headers: &'static [(&'static str, &'static str)],
    /// Refuses writes that a path rule cannot catch (a direct message posted
    /// through the ordinary status endpoint); returns why.
    pub write_check: Option<fn(&WriteRequest, &str) -> Option<String>>,
    /// Shrinks the chattiest JSON answers (given the normalised path); `None`
    /// from the function leaves an answer as the service sent it.
    pub compact: Option<fn(&str, &Value) -> Option<Value>>,
    /// Optional sign-in on the account's own instance (Mastodon).
    pub instance_oauth: Option<&'static InstanceOAuth>,
    /// Says in plain words what a write does, for the human who decides on it.
    pub summarize: Option<fn(&WriteRequest) -> Option<String>>,
    /// Takes private items out of a read's answer (given the normalised path):
    /// `None` for paths whose answers carry none, else the number removed, or
    /// why the answer may not be passed on at all. An answer it must look at
    /// but cannot parse is refused.
    pub private_items: Option<PrivateItems>,
    /// Other paths the service routes a (decoded, lower-cased) path as,
    /// beyond what every service may ([`crate::paths::AgentPath::match_forms`]):
    /// Reddit drops a `/r/NAME` prefix and any format suffix, an XRPC server
    /// routes by the method name alone, GitHub Enterprise answers under
    /// `/api/v3` too. Blocks, account control and dangers are matched on
    /// all of them.
    pub reroute: Option<fn(&str) -> Vec<String>>,
    /// Takes private items out of any JSON answer of the service, whatever
    /// the endpoint (a write's answer included): how many it took, or why
    /// the whole answer is private.
    pub private_in_answer: Option<PrivateInAnswer>,
    /// Writes that destroy, overwrite or expose something, beyond deletions
    /// (which every service's are): marked in every view, and approved only
    /// after a second, explicit yes.
    pub dangers: &'static [Danger],
}

/// A service's filter of private items: given the normalised path and the
/// parsed answer (`None` when it is not JSON), `None` when the path's answers
/// carry no private items, else how many were removed, or why the answer may
/// not be passed on. Called with no answer first, to ask whether the path is
/// one to look at.
pub type PrivateItems = fn(&str, Option<&mut Value>) -> Option<Result<usize, String>>;

/// How a service takes private items out of any JSON answer: how many it
/// took, or why the whole answer is private.
pub type PrivateInAnswer = fn(&mut serde_json::Value) -> Result<usize, String>;

/// Why a path is never an agent's to call, with the matching rule's pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Private messages and the like.
    Privacy(&'static str),
    /// Sessions, app passwords, keys, tokens, email, password, identity: what
    /// would let an agent act as the account without agentgate.
    AccountControl(&'static str),
    /// A path by number (the rule's pattern) for what has a named form (the
    /// second), which rules and flags are written on.
    ByNumber(&'static str, &'static str),
}

impl Refusal {
    /// Why, in a sentence for the agent, naming the service and the path.
    pub fn reason(&self, service: &str, path: &str) -> String {
        match self {
            Refusal::Privacy(rule) => format!(
                "{path} is blocked for privacy on {service} (rule {rule:?}); agentgate never reads or writes it"
            ),
            Refusal::AccountControl(rule) => format!(
                "{path} controls the {service} account itself: it mints credentials or takes the account over \
                 (rule {rule:?}), so agentgate never lets an agent call it"
            ),
            Refusal::ByNumber(rule, named) => format!(
                "{path} names by number what {service} also serves by name (rule {rule:?}); the account's \
                 rules and the destructive-write checks are written on names, so agentgate refuses it: \
                 call {named} instead"
            ),
        }
    }
}

/// A kind of write that destroys, overwrites or exposes something.
#[derive(Debug, Clone, Copy)]
pub struct Danger {
    /// Upper case.
    method: &'static str,
    /// Over the decoded, lower-case path: `*` is exactly one segment, and a
    /// final `**` any number of them.
    path: &'static str,
    /// Only when the body sets this top-level field.
    field: Option<&'static str>,
    /// What it does, in plain words ("deletes a whole repository").
    pub what: &'static str,
}

impl Danger {
    pub const fn new(method: &'static str, path: &'static str, what: &'static str) -> Danger {
        Danger {
            method,
            path,
            field: None,
            what,
        }
    }

    /// A write that is dangerous only when its body sets `field`.
    pub const fn field(
        method: &'static str,
        path: &'static str,
        field: &'static str,
        what: &'static str,
    ) -> Danger {
        Danger {
            method,
            path,
            field: Some(field),
            what,
        }
    }

    fn matches(&self, method: &str, normalized_path: &str, req: &WriteRequest) -> bool {
        self.method.eq_ignore_ascii_case(method)
            && segments_match(self.path, normalized_path)
            && self.field.is_none_or(|f| body_sets(req, f))
    }
}

/// Whether a path matches a pattern segment by segment: `*` is one segment,
/// a final `**` any number (none included). A trailing slash is no segment.
fn segments_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_matches('/').split('/').collect();
    for (i, p) in pattern.iter().enumerate() {
        if *p == "**" && i == pattern.len() - 1 {
            return path.len() >= i;
        }
        match path.get(i) {
            Some(s) if *p == "*" || p == s => {}
            _ => return false,
        }
    }
    pattern.len() == path.len()
}

/// Whether a write's body sets a top-level field, however it is written: a
/// JSON object, JSON held in a string, or form fields.
fn body_sets(req: &WriteRequest, field: &str) -> bool {
    match &req.body {
        Some(Value::Object(o)) => o.contains_key(field),
        Some(Value::String(text)) => {
            serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.as_object().map(|o| o.contains_key(field)))
                .unwrap_or(false)
                || url::form_urlencoded::parse(text.as_bytes()).any(|(k, _)| k == field)
        }
        _ => false,
    }
}

impl ServiceDef {
    /// A one-line summary of a queued request: the service's own words when it
    /// knows the endpoint, else the method and path.
    ///
    /// Agent text in it is quoted (see `summary::quote`), and what the
    /// service's words leave out is added: the query's parameters, and the
    /// fields a PATCH or PUT sets.
    pub fn describe(&self, req: &WriteRequest) -> String {
        match self.summarize.and_then(|f| f(req)) {
            Some(words) => match summary::changes(req) {
                Some(changes) => format!("{words} [{changes}]"),
                None => words,
            },
            // Every service's deletions in plain words, not DELETE and a path.
            None if req.method.eq_ignore_ascii_case("DELETE") => {
                let words = crate::rule_words::deletion(self.key, req.path_only());
                match summary::changes(req) {
                    Some(changes) => format!("{words} on {} [{changes}]", self.display_name),
                    None => format!("{words} on {}", self.display_name),
                }
            }
            None => match summary::changes(req) {
                Some(changes) if matches!(req.method.as_str(), "PATCH" | "PUT") => format!(
                    "{} {} on {} [{changes}]",
                    req.method,
                    req.path_only(),
                    self.display_name
                ),
                _ => format!("{} {} on {}", req.method, req.path, self.display_name),
            },
        }
    }
}

impl std::fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ServiceDef {
    /// What a write destroys, overwrites or exposes, if it does: a deletion on
    /// any service, or one of the service's own [`Danger`]s. A path that does
    /// not parse is treated as dangerous (it will be refused anyway).
    pub fn danger(&self, req: &WriteRequest) -> Option<&'static str> {
        let Ok(path) = crate::paths::AgentPath::parse_with_query(&req.path) else {
            return Some("a request whose path is not valid");
        };
        if let Some(d) = self.forms(&path).iter().find_map(|form| {
            self.dangers
                .iter()
                .find(|d| d.matches(&req.method, form, req))
        }) {
            return Some(d.what);
        }
        req.method
            .eq_ignore_ascii_case("DELETE")
            .then_some("deletes something at the service")
    }

    /// Why an agent may never call this path, spelled however it is, if it
    /// may not: matched on every form the service may route it as.
    pub fn refusal_of(&self, path: &crate::paths::AgentPath) -> Option<Refusal> {
        self.forms(path).iter().find_map(|form| self.refusal(form))
    }

    /// Every form the service may route `path` as: the decoded path, the
    /// loose one, and the service's own [`ServiceDef::reroute`]s of each.
    pub fn forms(&self, path: &crate::paths::AgentPath) -> Vec<String> {
        let mut out: Vec<String> = path.match_forms().map(str::to_string).collect();
        if let Some(reroute) = self.reroute {
            let extra: Vec<String> = out.iter().flat_map(|f| reroute(f)).collect();
            for f in extra {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Why an agent may never call this path, if it may not: a privacy block
    /// or an account-control endpoint, with the rule that matched.
    pub fn refusal(&self, normalized_path: &str) -> Option<Refusal> {
        if let Some(rule) = self.blocked_rule(normalized_path) {
            return Some(Refusal::Privacy(rule.0));
        }
        if let Some(rule) = self.control.iter().find(|r| r.matches(normalized_path)) {
            return Some(Refusal::AccountControl(rule.0));
        }
        self.by_number
            .iter()
            .find(|(r, _)| r.matches(normalized_path))
            .map(|(rule, named)| Refusal::ByNumber(rule.0, named))
    }

    /// The privacy block that matches a normalised path, if any.
    pub fn blocked_rule(&self, normalized_path: &str) -> Option<&BlockRule> {
        self.blocked.iter().find(|r| r.matches(normalized_path))
    }
}

/// Finds a service by key or alias, ignoring case.
pub fn find(key: &str) -> Option<&'static ServiceDef> {
    REGISTRY.iter().copied().find(|s| {
        s.key.eq_ignore_ascii_case(key) || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
    })
}

/// An account's credentials, field by field, each kept as a [`Secret`].
#[derive(Debug, Clone, Default)]
pub struct Credentials(pub BTreeMap<String, Secret>);

impl Credentials {
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), Secret::new(value));
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    pub fn field(&self, name: &str) -> Result<&Secret, Error> {
        self.0
            .get(name)
            .ok_or_else(|| Error::Credentials(format!("the stored credentials have no {name:?}")))
    }

    /// The form kept in the credential store: a JSON object of strings.
    pub fn to_secret(&self) -> Secret {
        let map: BTreeMap<&str, &str> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        Secret::new(serde_json::to_string(&map).unwrap_or_default())
    }

    pub fn from_secret(s: &Secret) -> Result<Credentials, Error> {
        let map: BTreeMap<String, String> = serde_json::from_str(s.expose()).map_err(|_| {
            Error::Credentials("the stored credentials are damaged; add the account again".into())
        })?;
        Ok(Credentials(
            map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_found_by_key_and_alias_in_any_case() {
        assert_eq!(find("github").unwrap().key, "github");
        assert_eq!(find("GitHub").unwrap().key, "github");
        assert!(find("nope").is_none());
        for s in REGISTRY {
            assert!(find(s.key).is_some());
            assert_eq!(s.key, s.key.to_lowercase());
            for rule in s.blocked {
                assert_eq!(
                    rule.0,
                    rule.0.to_lowercase(),
                    "block patterns are lower case"
                );
            }
        }
    }

    #[test]
    fn credentials_round_trip_through_their_stored_form() {
        let c = Credentials(
            [("token".to_string(), Secret::new("t0k"))]
                .into_iter()
                .collect(),
        );
        let back = Credentials::from_secret(&c.to_secret()).unwrap();
        assert_eq!(back.field("token").unwrap().expose(), "t0k");
        assert!(back.field("other").is_err());
        assert!(!format!("{back:?}").contains("t0k"));
    }

    fn write(method: &str, path: &str, body: Option<Value>) -> WriteRequest {
        WriteRequest {
            method: method.into(),
            path: path.into(),
            body,
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn destructive_writes_are_known_per_service() {
        use serde_json::json;
        let dangerous = [
            (
                "github",
                "DELETE",
                "/repos/o/r",
                None,
                "deletes a whole repository",
            ),
            (
                "github",
                "delete",
                "/repos/o/r/issues/comments/99",
                None,
                "deletes something",
            ),
            (
                "github",
                "PUT",
                "/repos/o/r/contents/docs/README.md",
                Some(json!({"content": "eA=="})),
                "replacing",
            ),
            (
                "github",
                "PATCH",
                "/repos/o/r",
                Some(json!({"private": false})),
                "who can see",
            ),
            (
                "github",
                "PATCH",
                "/repos/O/R",
                Some(json!({"visibility": "public"})),
                "who can see",
            ),
            (
                "github",
                "PATCH",
                "/repos/o/r",
                Some(json!("{\"private\": false}")),
                "who can see",
            ),
            (
                "github",
                "PATCH",
                "/repos/o/r/git/refs/heads/main",
                Some(json!({"sha": "x", "force": true})),
                "force-moves",
            ),
            (
                "github",
                "PUT",
                "/repos/o/r/collaborators/mallory",
                None,
                "access",
            ),
            (
                "github",
                "POST",
                "/repos/o/r/keys",
                Some(json!({"key": "ssh-ed25519 x"})),
                "deploy key",
            ),
            (
                "github",
                "POST",
                "/repos/o/r/hooks",
                Some(json!({"config": {}})),
                "webhook",
            ),
            (
                "github",
                "PUT",
                "/repos/o/r/actions/secrets/TOKEN",
                None,
                "secret",
            ),
            (
                "bluesky",
                "POST",
                "/com.atproto.repo.deleteRecord",
                Some(json!({})),
                "deletes a post",
            ),
            (
                "bluesky",
                "POST",
                "/com.atproto.repo.putRecord",
                Some(json!({})),
                "replaces",
            ),
            ("mastodon", "DELETE", "/api/v1/statuses/1", None, "deletes"),
            (
                "mastodon",
                "PUT",
                "/api/v1/statuses/1",
                Some(json!({"status": "x"})),
                "edits",
            ),
            (
                "reddit",
                "POST",
                "/api/del",
                Some(json!("id=t3_x")),
                "deletes a post",
            ),
            (
                "calendar",
                "DELETE",
                "/calendars/primary/events/e1",
                None,
                "deletes",
            ),
            (
                "calendar",
                "POST",
                "/calendars/primary/acl",
                Some(json!({})),
                "shares",
            ),
            (
                "jira",
                "POST",
                "/issue/ABC-1/transitions",
                Some(json!({})),
                "status",
            ),
            (
                "youtube",
                "PUT",
                "/videos?part=snippet",
                Some(json!({})),
                "replaces",
            ),
            ("linkedin", "DELETE", "/ugcPosts/1", None, "deletes"),
            (
                "fitbit",
                "DELETE",
                "/1/user/-/foods/log/1.json",
                None,
                "deletes",
            ),
        ];
        for (service, method, path, body, what) in dangerous {
            let d = find(service).unwrap().danger(&write(method, path, body));
            assert!(
                d.is_some_and(|d| d.contains(what)),
                "{service} {method} {path}: {d:?}"
            );
        }
        let harmless = [
            (
                "github",
                "POST",
                "/repos/o/r/issues",
                Some(json!({"title": "x"})),
            ),
            (
                "github",
                "PATCH",
                "/repos/o/r/issues/4",
                Some(json!({"state": "closed"})),
            ),
            (
                "github",
                "PATCH",
                "/repos/o/r",
                Some(json!({"description": "x"})),
            ),
            (
                "bluesky",
                "POST",
                "/com.atproto.repo.createRecord",
                Some(json!({})),
            ),
            (
                "mastodon",
                "POST",
                "/api/v1/statuses",
                Some(json!({"status": "hi"})),
            ),
            (
                "reddit",
                "POST",
                "/api/comment",
                Some(json!("thing_id=t3_x&text=hi")),
            ),
            (
                "calendar",
                "POST",
                "/calendars/primary/events",
                Some(json!({})),
            ),
        ];
        for (service, method, path, body) in harmless {
            let d = find(service).unwrap().danger(&write(method, path, body));
            assert_eq!(d, None, "{service} {method} {path}");
        }
    }

    #[test]
    fn segment_patterns_match_whole_segments() {
        assert!(segments_match("/repos/*/*", "/repos/o/r"));
        assert!(segments_match("/repos/*/*", "/repos/o/r/"));
        assert!(!segments_match("/repos/*/*", "/repos/o/r/issues"));
        assert!(!segments_match("/repos/*/*", "/repos/o"));
        assert!(segments_match(
            "/repos/*/*/contents/**",
            "/repos/o/r/contents/a/b.md"
        ));
        assert!(segments_match(
            "/repos/*/*/contents/**",
            "/repos/o/r/contents"
        ));
        assert!(!segments_match(
            "/repos/*/*/contents/**",
            "/repos/o/r/contentsx"
        ));
    }
}
