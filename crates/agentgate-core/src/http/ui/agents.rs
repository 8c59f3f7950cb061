//! Agents and their API keys: create (the key is shown once), rename, disable,
//! revoke, options (trusted, raw answers) and each agent's webhook with a test
//! send and a retry of what it missed.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Chrome, Notice, done, error_status, render};
use crate::agent::Agent;
use crate::gateway::Gateway;
use crate::http::extract::Params;
use crate::http::session::{AdminSession, SignedForm};
use crate::secret::Secret;

struct AgentView {
    agent: Agent,
    has_token: bool,
    /// Notifications that were given up on, which "retry all" would send.
    missed: usize,
    /// What it read in the last hour, at a glance.
    reads: LastHour,
}

/// An agent's reads in the last hour: how many, per account, and its most
/// read paths.
#[derive(Default)]
struct LastHour {
    total: u64,
    accounts: Vec<(String, u64)>,
    paths: Vec<(String, u64)>,
    /// More reads than the glance looked at.
    more: bool,
}

/// Records the glance looks at, per agent.
const GLANCE: usize = 1000;

fn last_hour(gw: &Gateway, agent: &str) -> LastHour {
    let since = crate::clock::precise_timestamp(gw.clock_now() - time::Duration::hours(1));
    let Ok(records) = gw.audit(&crate::audit::AuditFilter {
        kind: Some("read".into()),
        agent: Some(agent.to_string()),
        since: Some(since),
        limit: Some(GLANCE),
        ..Default::default()
    }) else {
        return LastHour::default();
    };
    let mut accounts: std::collections::BTreeMap<String, u64> = Default::default();
    let mut paths: std::collections::BTreeMap<String, u64> = Default::default();
    let mut total = 0;
    for r in &records {
        let n = u64::from(r.count.unwrap_or(1));
        total += n;
        let account = format!(
            "{}/{}",
            r.service.as_deref().unwrap_or("?"),
            r.account.as_deref().unwrap_or("?")
        );
        *accounts.entry(account.clone()).or_default() += n;
        let path = format!("{account} {}", r.path.as_deref().unwrap_or(""));
        *paths.entry(path).or_default() += n;
    }
    let mut accounts: Vec<_> = accounts.into_iter().collect();
    accounts.sort_by_key(|a| std::cmp::Reverse(a.1));
    let mut paths: Vec<_> = paths.into_iter().collect();
    paths.sort_by_key(|a| std::cmp::Reverse(a.1));
    paths.truncate(5);
    LastHour {
        total,
        accounts,
        paths,
        more: records.len() == GLANCE,
    }
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Chrome,
    agents: Vec<AgentView>,
    /// A key just created: shown on this one page and never again.
    new_key: Option<(String, String)>,
    agent_url: String,
}

/// The agents page as a plain page (no new key to show).
pub(super) fn agents_page(
    gw: &Gateway,
    session: &AdminSession,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    agents_page_with_key(gw, session, notice, None, status)
}

fn agents_page_with_key(
    gw: &Gateway,
    session: &AdminSession,
    notice: Option<Notice>,
    new_key: Option<(String, String)>,
    status: StatusCode,
) -> Response {
    let agents = match gw.agents() {
        Ok(a) => a,
        Err(e) => return super::unavailable("The agents", &e),
    };
    let agents = agents
        .into_iter()
        .map(|agent| {
            let missed = gw
                .notifications(Some(&agent.name), Some("failed"))
                .map_or(0, |n| n.len());
            AgentView {
                has_token: gw.webhook_has_token(agent.id).unwrap_or(false),
                missed,
                reads: last_hour(gw, &agent.name),
                agent,
            }
        })
        .collect();
    // The page may hold a key that is never shown again; the UI layer sends
    // `Cache-Control: no-store` on every page, this one included.
    render(
        AgentsPage {
            chrome: Chrome::new(gw, session, "agents", notice),
            agents,
            new_key,
            agent_url: gw.base_url(),
        },
        status,
    )
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    name: String,
}

/// Creates an agent and shows its key, once. This answers the POST directly
/// (no redirect), so the key never appears in an address or history.
pub(super) async fn create_submit(
    State(gw): State<Gateway>,
    SignedForm { session, form }: SignedForm<CreateForm>,
) -> Response {
    match gw.create_agent(form.name.trim()) {
        Ok((agent, key)) => agents_page_with_key(
            &gw,
            &session,
            Notice::ok(format!(
                "Agent {} was created. Copy its key now: it is not shown again.",
                agent.name
            )),
            Some((agent.name, key.expose().to_string())),
            StatusCode::OK,
        ),
        Err(e) => agents_page(
            &gw,
            &session,
            Notice::error(format!("Not created: {e}")),
            error_status(&e),
        ),
    }
}

/// Shows the outcome of an action on one agent.
fn after(
    gw: &Gateway,
    session: &AdminSession,
    outcome: crate::error::Result<()>,
    code: &str,
) -> Response {
    match outcome {
        Ok(()) => done("/ui/agents", code),
        Err(e) => agents_page(gw, session, Notice::error(e.to_string()), error_status(&e)),
    }
}

#[derive(Deserialize)]
pub(super) struct RenameForm {
    new_name: String,
}

pub(super) async fn rename_submit(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    SignedForm { session, form }: SignedForm<RenameForm>,
) -> Response {
    let outcome = gw.rename_agent(&name, form.new_name.trim());
    after(&gw, &session, outcome, "renamed")
}

#[derive(Deserialize)]
pub(super) struct EnabledForm {
    enabled: String,
}

pub(super) async fn enabled_submit(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    SignedForm { session, form }: SignedForm<EnabledForm>,
) -> Response {
    let outcome = gw.set_agent_enabled(&name, form.enabled == "true");
    after(&gw, &session, outcome, "updated")
}

/// The options form: unchecked boxes are simply absent.
#[derive(Deserialize)]
pub(super) struct OptionsForm {
    trusted: Option<String>,
    raw: Option<String>,
}

pub(super) async fn options_submit(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    SignedForm { session, form }: SignedForm<OptionsForm>,
) -> Response {
    let outcome = gw
        .set_agent_trusted(&name, form.trusted.is_some())
        .and_then(|()| gw.set_agent_raw(&name, form.raw.is_some()));
    after(&gw, &session, outcome, "updated")
}

pub(super) async fn revoke_submit(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    SignedForm { session, .. }: SignedForm<IgnoredAny>,
) -> Response {
    let outcome = gw.revoke_agent(&name);
    after(&gw, &session, outcome, "revoked")
}

#[derive(Deserialize)]
pub(super) struct WebhookForm {
    url: String,
    /// Empty keeps the stored token; `remove_token` deletes it.
    token: Option<String>,
    remove_token: Option<String>,
    on_approved: Option<String>,
    allow_plain_http: Option<String>,
}

pub(super) async fn webhook_submit(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    SignedForm { session, form }: SignedForm<WebhookForm>,
) -> Response {
    let url = form.url.trim();
    let secret = if form.remove_token.is_some() {
        Some(Secret::new(String::new()))
    } else {
        form.token.filter(|t| !t.trim().is_empty()).map(Secret::new)
    };
    let outcome = gw.set_webhook(
        &name,
        Some((!url.is_empty()).then(|| url.to_string())),
        secret,
        Some(form.on_approved.is_some()),
        form.allow_plain_http.is_some(),
    );
    after(&gw, &session, outcome, "webhook")
}

pub(super) async fn webhook_test_submit(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    SignedForm { session, .. }: SignedForm<IgnoredAny>,
) -> Response {
    let outcome = gw.test_webhook(&name).await;
    after(&gw, &session, outcome, "webhook-tested")
}
