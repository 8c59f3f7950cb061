//! One account's policy in the window: who may use it, its ordered endpoint
//! rules in plain words (add, change, move, remove, presets), the grants
//! running on it, and a "what would happen?" box that runs the dry run.
//!
//! Every rule form carries the version of the rules it was drawn from, so an
//! edit made from a stale page is refused instead of changing the wrong rule.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, Notice, done, error_status, render};
use crate::error::{Error, Result};
use crate::gateway::{Gateway, GrantInfo, PolicyView, RuleEdit, RuleSpec};
use crate::http::extract::{Params, QueryParams};
use crate::http::session::{AdminSession, SignedForm};
use crate::policy::{AccessMode, Decision, Effect, Outcome};
use crate::presets::Preset;

/// The effects as the window names them.
pub(super) const EFFECTS: &[(&str, &str)] = &[
    ("require_approval", "Always ask me"),
    ("auto_approve", "Run without asking"),
    ("allow", "Allow (writes wait unless trusted or granted)"),
    ("deny", "Refuse"),
];

pub(super) const METHODS: &[&str] = &["any", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

struct RuleRow {
    index: usize,
    number: usize,
    words: String,
    method: String,
    path: String,
    agents: Vec<String>,
    effect: &'static str,
    effect_label: &'static str,
}

struct DryView {
    verdict: &'static str,
    class: &'static str,
    rule: Option<String>,
    reason: String,
}

#[derive(Template)]
#[template(path = "account_policy.html")]
struct PolicyPage {
    chrome: Chrome,
    service: String,
    service_name: &'static str,
    name: String,
    mode: &'static str,
    access_words: String,
    listed: Vec<String>,
    version: String,
    rules: Vec<RuleRow>,
    agents: Vec<String>,
    presets: Vec<Preset>,
    grants: Vec<GrantInfo>,
    effects: &'static [(&'static str, &'static str)],
    methods: &'static [&'static str],
    dry_agent: String,
    dry_method: String,
    dry_path: String,
    dry: Option<DryView>,
}

#[derive(Deserialize, Default)]
pub(super) struct PolicyQuery {
    done: Option<String>,
    agent: Option<String>,
    method: Option<String>,
    path: Option<String>,
}

fn effect_label(e: Effect) -> &'static str {
    EFFECTS
        .iter()
        .find(|(k, _)| *k == e.as_str())
        .map_or("", |(_, l)| l)
}

fn dry_view(view: &PolicyView, d: Decision) -> DryView {
    let (verdict, class) = match d.outcome {
        Outcome::NoAccess => ("Refused: this agent may not use the account", "bad"),
        Outcome::Denied => ("Refused", "bad"),
        Outcome::Read => ("Runs at once (a read)", "ok"),
        Outcome::Queue => ("Waits for your approval", "wait"),
        Outcome::AutoApprove => ("Runs without asking", "ok"),
    };
    DryView {
        verdict,
        class,
        rule: d.rule.and_then(|i| {
            view.rule_words
                .get(i)
                .map(|w| format!("Rule {}: {w}", i + 1))
        }),
        reason: d.reason,
    }
}

fn page(
    gw: &Gateway,
    session: &AdminSession,
    service: &str,
    name: &str,
    q: PolicyQuery,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let built = (|| -> Result<PolicyPage> {
        let def = crate::services::find(service)
            .ok_or_else(|| Error::not_found(format!("unknown service {service:?}")))?;
        let view = gw.account_policy(def.key, name)?;
        let agents: Vec<String> = gw.agents()?.into_iter().map(|a| a.name).collect();
        let grants = gw
            .grants()?
            .into_iter()
            .filter(|g| g.service == def.key && g.account == name)
            .collect();
        let dry_path = q.path.clone().unwrap_or_default();
        let dry_method = q.method.clone().unwrap_or_else(|| "POST".into());
        let dry_agent = q
            .agent
            .clone()
            .or_else(|| agents.first().cloned())
            .unwrap_or_default();
        let (dry, notice) = match (&q.agent, dry_path.is_empty()) {
            (Some(agent), false) => {
                match gw.dry_run(def.key, name, agent, &dry_method, &dry_path) {
                    Ok(d) => (Some(dry_view(&view, d)), notice),
                    Err(e) => (None, Notice::error(format!("No answer: {e}"))),
                }
            }
            _ => (None, notice),
        };
        let rules = view
            .rules
            .iter()
            .zip(&view.rule_words)
            .enumerate()
            .map(|(i, (r, words))| RuleRow {
                index: i,
                number: i + 1,
                words: words.clone(),
                method: r.method.clone().unwrap_or_else(|| "any".into()),
                path: r.path.clone(),
                agents: r.agents.clone(),
                effect: r.effect.as_str(),
                effect_label: effect_label(r.effect),
            })
            .collect();
        Ok(PolicyPage {
            chrome: Chrome::new(gw, session, "accounts", notice),
            service: def.key.to_string(),
            service_name: def.display_name,
            name: name.to_string(),
            mode: view.access_mode.as_str(),
            access_words: view.access_words.clone(),
            listed: view.access_agents.clone(),
            version: view.version.clone(),
            rules,
            agents,
            presets: crate::presets::for_service(def.key),
            grants,
            effects: EFFECTS,
            methods: METHODS,
            dry_agent,
            dry_method,
            dry_path,
            dry,
        })
    })();
    match built {
        Ok(p) => render(p, status),
        Err(e @ Error::NotFound(_)) => super::accounts::accounts_page(
            gw,
            session,
            Notice::error(e.to_string()),
            StatusCode::NOT_FOUND,
        ),
        Err(e) => super::unavailable("The account's policy", &e),
    }
}

pub(super) async fn policy_page(
    State(gw): State<Gateway>,
    session: AdminSession,
    Params((service, name)): Params<(String, String)>,
    QueryParams(q): QueryParams<PolicyQuery>,
) -> Response {
    let notice = super::done_notice(q.done.as_deref());
    page(&gw, &session, &service, &name, q, notice, StatusCode::OK)
}

/// A form whose fields may repeat (the agents' checkboxes).
type Fields = Vec<(String, String)>;

fn field<'a>(f: &'a Fields, name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn all(f: &Fields, name: &str) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// After a change: back to the page, or the page again with why not.
fn after(
    gw: &Gateway,
    session: &AdminSession,
    service: &str,
    name: &str,
    outcome: Result<PolicyView>,
    code: &str,
) -> Response {
    match outcome {
        Ok(_) => done(&format!("/ui/accounts/{service}/{name}"), code),
        Err(e) => page(
            gw,
            session,
            service,
            name,
            PolicyQuery::default(),
            Notice::error(format!("Nothing was changed: {e}")),
            error_status(&e),
        ),
    }
}

pub(super) async fn access_submit(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    SignedForm { session, form }: SignedForm<Fields>,
) -> Response {
    let outcome = match field(&form, "mode").and_then(AccessMode::parse) {
        Some(mode) => gw.set_account_access(&service, &name, mode, &all(&form, "agents")),
        None => Err(Error::invalid("choose who may use the account")),
    };
    after(&gw, &session, &service, &name, outcome, "access")
}

fn number(f: &Fields, name: &str) -> Result<usize> {
    field(f, name)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::invalid(format!("{name} is not a rule number")))
}

fn spec(f: &Fields) -> Result<RuleSpec> {
    let effect = field(f, "effect")
        .and_then(Effect::parse)
        .ok_or_else(|| Error::invalid("choose what the rule does"))?;
    Ok(RuleSpec {
        method: field(f, "method").map(str::to_string),
        path: field(f, "path").unwrap_or_default().to_string(),
        agents: all(f, "agents"),
        effect,
    })
}

/// Parses the rule form's operation into one edit.
fn edit(f: &Fields) -> Result<RuleEdit> {
    Ok(match field(f, "op").unwrap_or_default() {
        "add" => RuleEdit::Add {
            rule: spec(f)?,
            at: match field(f, "at") {
                Some("top") => Some(0),
                _ => None,
            },
        },
        "replace" => RuleEdit::Replace {
            index: number(f, "index")?,
            rule: spec(f)?,
        },
        "remove" => RuleEdit::Remove {
            index: number(f, "index")?,
        },
        "up" | "down" => {
            let from = number(f, "index")?;
            let to = if field(f, "op") == Some("up") {
                from.checked_sub(1)
                    .ok_or_else(|| Error::invalid("the first rule cannot move up"))?
            } else {
                from.checked_add(1)
                    .ok_or_else(|| Error::invalid("there is no such rule"))?
            };
            RuleEdit::Move { from, to }
        }
        "preset" => RuleEdit::Preset {
            key: field(f, "preset").unwrap_or_default().to_string(),
            agents: all(f, "agents")
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect(),
        },
        other => return Err(Error::invalid(format!("unknown change {other:?}"))),
    })
}

pub(super) async fn rules_submit(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    SignedForm { session, form }: SignedForm<Fields>,
) -> Response {
    // A form without the version it was drawn from could change a rule the
    // admin never saw; the window's forms always carry it.
    let outcome = match (edit(&form), field(&form, "version")) {
        (Ok(edit), Some(version)) => gw.edit_rules(&service, &name, edit, Some(version)),
        (Ok(_), None) => Err(Error::Conflict(
            "the form does not say which version of the rules it changes; reload the page".into(),
        )),
        (Err(e), _) => Err(e),
    };
    after(&gw, &session, &service, &name, outcome, "rules")
}
