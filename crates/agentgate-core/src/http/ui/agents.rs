//! Agents and their API keys: create (the key is shown once), rename, disable,
//! revoke, options (trusted, raw answers) and each agent's webhook with a test
//! send and a retry of what it missed.

use askama::Template;
use axum::extract::{Form, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{Chrome, CsrfForm, Notice, done, error_status, form_session, render};
use crate::agent::Agent;
use crate::gateway::Gateway;
use crate::http::extract::Params;
use crate::secret::Secret;

struct AgentView {
    agent: Agent,
    has_token: bool,
    /// Notifications that were given up on, which "retry all" would send.
    missed: usize,
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
    token: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    agents_page_with_key(gw, token, notice, None, status)
}

fn agents_page_with_key(
    gw: &Gateway,
    token: &str,
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
                agent,
            }
        })
        .collect();
    // The page may hold a key that is never shown again; the UI layer sends
    // `Cache-Control: no-store` on every page, this one included.
    render(
        AgentsPage {
            chrome: Chrome::new(gw, token, "agents", notice),
            agents,
            new_key,
            agent_url: gw.base_url(),
        },
        status,
    )
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    csrf: String,
    name: String,
}

/// Creates an agent and shows its key, once. This answers the POST directly
/// (no redirect), so the key never appears in an address or history.
pub(super) async fn create_submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Response {
    let token = form_session!(gw, headers, &form.csrf);
    match gw.create_agent(form.name.trim()) {
        Ok((agent, key)) => agents_page_with_key(
            &gw,
            &token,
            Notice::ok(format!(
                "Agent {} was created. Copy its key now: it is not shown again.",
                agent.name
            )),
            Some((agent.name, key.expose().to_string())),
            StatusCode::OK,
        ),
        Err(e) => agents_page(
            &gw,
            &token,
            Notice::error(format!("Not created: {e}")),
            error_status(&e),
        ),
    }
}

/// Shows the outcome of an action on one agent.
fn after(gw: &Gateway, token: &str, outcome: crate::error::Result<()>, code: &str) -> Response {
    match outcome {
        Ok(()) => done("/ui/agents", code),
        Err(e) => agents_page(gw, token, Notice::error(e.to_string()), error_status(&e)),
    }
}

#[derive(Deserialize)]
pub(super) struct RenameForm {
    csrf: String,
    new_name: String,
}

pub(super) async fn rename_submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(name): Params<String>,
    Form(form): Form<RenameForm>,
) -> Response {
    let token = form_session!(gw, headers, &form.csrf);
    let outcome = gw.rename_agent(&name, form.new_name.trim());
    after(&gw, &token, outcome, "renamed")
}

#[derive(Deserialize)]
pub(super) struct EnabledForm {
    csrf: String,
    enabled: String,
}

pub(super) async fn enabled_submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(name): Params<String>,
    Form(form): Form<EnabledForm>,
) -> Response {
    let token = form_session!(gw, headers, &form.csrf);
    let outcome = gw.set_agent_enabled(&name, form.enabled == "true");
    after(&gw, &token, outcome, "updated")
}

/// The options form: unchecked boxes are simply absent.
#[derive(Deserialize)]
pub(super) struct OptionsForm {
    csrf: String,
    trusted: Option<String>,
    raw: Option<String>,
}

pub(super) async fn options_submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(name): Params<String>,
    Form(form): Form<OptionsForm>,
) -> Response {
    let token = form_session!(gw, headers, &form.csrf);
    let outcome = gw
        .set_agent_trusted(&name, form.trusted.is_some())
        .and_then(|()| gw.set_agent_raw(&name, form.raw.is_some()));
    after(&gw, &token, outcome, "updated")
}

pub(super) async fn revoke_submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(name): Params<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let token = form_session!(gw, headers, &form.csrf);
    let outcome = gw.revoke_agent(&name);
    after(&gw, &token, outcome, "revoked")
}

#[derive(Deserialize)]
pub(super) struct WebhookForm {
    csrf: String,
    url: String,
    /// Empty keeps the stored token; `remove_token` deletes it.
    token: Option<String>,
    remove_token: Option<String>,
    on_approved: Option<String>,
}

pub(super) async fn webhook_submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(name): Params<String>,
    Form(form): Form<WebhookForm>,
) -> Response {
    let token = form_session!(gw, headers, &form.csrf);
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
    );
    after(&gw, &token, outcome, "webhook")
}

pub(super) async fn webhook_test_submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(name): Params<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let token = form_session!(gw, headers, &form.csrf);
    let outcome = gw.test_webhook(&name).await;
    after(&gw, &token, outcome, "webhook-tested")
}
