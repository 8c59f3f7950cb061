//! The queue, the home page: what waits for a decision, oldest first, and what
//! was decided lately. The pending list is also served alone as a fragment,
//! which the page's script swaps in when the event stream says the queue moved.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, REVIEWER, error_status, render};
use crate::display;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::http::extract::Params;
use crate::http::session::{AdminSession, SignedForm};
use crate::queue::EntryFilter;
use crate::queue::{Entry, Status};
use crate::services;

/// A body longer than this many lines (or bytes) is folded behind a
/// "show all" control; it is never cut.
const FOLD_LINES: usize = 30;
const FOLD_BYTES: usize = 4000;

pub(super) struct RequestView {
    pub method: String,
    /// The full upstream URL, query included.
    pub url: String,
    pub summary: String,
    /// The query's parameters, decoded, duplicates kept.
    pub query: Vec<(String, String)>,
    /// Every header sent besides the gateway's own.
    pub headers: Vec<(String, String)>,
    /// A form body's fields, decoded.
    pub form: Option<Vec<(String, String)>>,
    /// A JSON body, pretty.
    pub body: Option<String>,
    pub body_lines: usize,
    pub body_bytes: usize,
    pub body_folded: bool,
    pub destructive: bool,
    /// What the request destroys, overwrites or exposes, in plain words.
    pub danger: Option<&'static str>,
}

pub(super) struct EntryView {
    pub id: String,
    pub headline: String,
    pub agent: String,
    pub service: String,
    pub target: String,
    pub comment: String,
    pub submitted_at: String,
    pub status: String,
    pub reason: Option<String>,
    pub requests: Vec<RequestView>,
    /// Whether any request destroys, overwrites or exposes something: then
    /// Approve needs a second, explicit yes.
    pub destructive: bool,
    /// What the approve form names, so that it approves what this page showed.
    pub digest: String,
    pub edited: bool,
    pub edited_by: String,
    /// The requests as JSON, for the edit form.
    pub requests_json: String,
}

/// One request as the admin reads it, whole.
pub(super) fn request_view(
    def: Option<&'static services::ServiceDef>,
    base: &str,
    r: &crate::queue::WriteRequest,
) -> RequestView {
    // Agent text is shown with nothing hidden: controls, bidirectional
    // overrides and invisible characters written as visible escapes.
    let line = display::terminal_line;
    let form = r.form_fields().map(|fields| {
        fields
            .into_iter()
            .map(|(k, v)| (line(&k), display::web_text(&v)))
            .collect()
    });
    let body = match (&form, &r.body) {
        (None, Some(b)) => Some(display::json_visible(b)),
        _ => None,
    };
    let body_lines = body.as_deref().map_or(0, |b| b.lines().count());
    let body_bytes = body.as_deref().map_or(0, str::len);
    RequestView {
        method: r.method.clone(),
        url: line(&format!("{base}{}", r.path)),
        summary: line(&def.map_or_else(|| format!("{} {}", r.method, r.path), |d| d.describe(r))),
        query: r.query().iter().map(|(k, v)| (line(k), line(v))).collect(),
        headers: r.headers.iter().map(|(k, v)| (line(k), line(v))).collect(),
        form,
        body_folded: body_lines > FOLD_LINES || body_bytes > FOLD_BYTES,
        body,
        body_lines,
        body_bytes,
        destructive: def.and_then(|d| d.danger(r)).is_some(),
        danger: def.and_then(|d| d.danger(r)),
    }
}

/// An entry as the admin reads it: plain-words summaries from the service's
/// registry entry, and every request whole.
pub(super) fn view(gw: &Gateway, e: &Entry) -> EntryView {
    let def = services::find(&e.service);
    let base = gw
        .account_info(&e.service, &e.account_name)
        .map(|a| a.base_url)
        .unwrap_or_default();
    let requests: Vec<RequestView> = e
        .requests
        .iter()
        .map(|r| request_view(def, &base, r))
        .collect();
    let headline = match requests.as_slice() {
        [only] => only.summary.clone(),
        [first, rest @ ..] => format!("{} (+{} more)", first.summary, rest.len()),
        [] => "(empty batch)".into(),
    };
    EntryView {
        id: e.id.clone(),
        headline,
        agent: e.agent_name.clone(),
        service: e.service.clone(),
        target: format!("{}/{}", e.service, e.account_name),
        comment: display::web_text(&e.comment),
        submitted_at: e.submitted_at.clone(),
        status: e.status.to_string(),
        reason: e.rejection_reason.as_deref().map(display::web_text),
        destructive: requests.iter().any(|r| r.destructive),
        requests,
        digest: e.digest.clone(),
        edited: e.edited,
        edited_by: e.edited_by.clone().unwrap_or_default(),
        requests_json: serde_json::to_value(&e.requests)
            .map(|v| display::json_visible(&v))
            .unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    csrf: String,
    chrome: Chrome,
    pending: Vec<EntryView>,
    recent: Vec<EntryView>,
    setup: Setup,
}

/// Just the lists, for the live update.
#[derive(Template)]
#[template(path = "queue_lists.html")]
struct QueueLists {
    csrf: String,
    pending: Vec<EntryView>,
    recent: Vec<EntryView>,
    setup: Setup,
}

/// What is still missing before an agent can queue anything, for the hint
/// an empty queue shows.
#[derive(Clone, Copy)]
struct Setup {
    agents: bool,
    accounts: bool,
}

fn setup(gw: &Gateway) -> Setup {
    Setup {
        agents: gw.agents().is_ok_and(|a| !a.is_empty()),
        accounts: gw.accounts().is_ok_and(|a| !a.is_empty()),
    }
}

fn lists(gw: &Gateway) -> crate::error::Result<(Vec<EntryView>, Vec<EntryView>)> {
    let mut pending = gw.entries(&EntryFilter {
        status: Some(Status::Pending),
        limit: Some(500),
        ..Default::default()
    })?;
    let recent = gw.entries(&EntryFilter {
        limit: Some(40),
        ..Default::default()
    })?;
    // Oldest first: the longest-waiting agent is answered first.
    pending.reverse();
    Ok((
        pending.iter().map(|e| view(gw, e)).collect(),
        recent
            .iter()
            .filter(|e| e.status != Status::Pending)
            .take(10)
            .map(|e| view(gw, e))
            .collect(),
    ))
}

pub(super) async fn page(
    State(gw): State<Gateway>,
    session: AdminSession,
    crate::http::extract::QueryParams(q): crate::http::extract::QueryParams<super::DoneQuery>,
) -> Response {
    let (pending, recent) = match lists(&gw) {
        Ok(l) => l,
        Err(e) => return super::unavailable("The queue", &e),
    };
    let chrome = Chrome::new(
        &gw,
        &session,
        "queue",
        super::done_notice(q.done.as_deref()),
    );
    render(
        QueuePage {
            csrf: chrome.csrf.clone(),
            chrome,
            pending,
            recent,
            setup: setup(&gw),
        },
        StatusCode::OK,
    )
}

pub(super) async fn fragment(
    State(gw): State<Gateway>,
    session: Result<AdminSession, Response>,
) -> Response {
    let Ok(session) = session else {
        // The script reloads the page on this, which leads to sign-in.
        return (StatusCode::UNAUTHORIZED, "sign in again").into_response();
    };
    match lists(&gw) {
        Ok((pending, recent)) => render(
            QueueLists {
                csrf: session.csrf(),
                pending,
                recent,
                setup: setup(&gw),
            },
            StatusCode::OK,
        ),
        Err(e) => super::unavailable("The queue", &e),
    }
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ApproveForm {
    /// "yes" when the admin ticked the second confirmation a destructive
    /// write asks for.
    confirm: Option<String>,
    /// The digest of the requests the page showed.
    digest: Option<String>,
    /// "Approve and allow this for …": minutes, or "today".
    allow: Option<String>,
    /// The browser's offset from UTC in minutes, for "today".
    tz_offset: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct EditForm {
    digest: String,
    /// The whole batch as JSON.
    requests: String,
}

/// Saves the admin's edit of a pending entry; the queue page shows the
/// result (or the page says why it was refused, with the text kept).
pub(super) async fn edit(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
    SignedForm { form, .. }: SignedForm<EditForm>,
) -> Response {
    let outcome = serde_json::from_str::<serde_json::Value>(&form.requests)
        .map_err(|e| Error::invalid(format!("the requests are not valid JSON: {e}")))
        .and_then(|requests| gw.edit(&id, &form.digest, requests, REVIEWER));
    match outcome {
        Ok(_) => Redirect::to(&format!("/ui/queue#entry-{id}")).into_response(),
        Err(e) => (
            error_status(&e),
            axum::response::Html(format!(
                "<!doctype html><title>agentgate</title><p>The edit was not saved: {}</p><p>Your text:</p><pre>{}</pre><p><a href=\"/ui/queue#entry-{}\">Back to the queue</a></p>",
                super::escape(&e.to_string()),
                super::escape(&form.requests),
                super::escape(&id)
            )),
        )
            .into_response(),
    }
}

pub(super) async fn approve(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
    SignedForm { form, .. }: SignedForm<ApproveForm>,
) -> Response {
    // A write that destroys, overwrites or exposes something is approved only
    // with the second, explicit yes its form asks for.
    if let Ok(entry) = gw.entry(&id)
        && let Some(def) = services::find(&entry.service)
        && let Some(what) = entry.requests.iter().find_map(|r| def.danger(r))
        && form.confirm.as_deref() != Some("yes")
    {
        return (
            StatusCode::CONFLICT,
            axum::response::Html(format!(
                "<!doctype html><title>agentgate</title><p>This write {}. Tick \"Yes, approve it\" beside Approve to confirm, then approve again.</p><p><a href=\"/ui/queue#entry-{}\">Back to the queue</a></p>",
                super::escape(what),
                super::escape(&entry.id)
            )),
        )
            .into_response();
    }
    let Some(digest) = form.digest else {
        return decided(Err(Error::Conflict(
            "the approval does not say which version of the entry it approves; reload the queue and approve again".into(),
        )));
    };
    let approved = gw.approve_and_start(&id, &digest, REVIEWER);
    match (&approved, form.allow.as_deref()) {
        (Ok(entry), Some(allow)) => {
            let granted = super::grants::minutes_of(&gw, allow, form.tz_offset.as_deref())
                .ok_or_else(|| Error::invalid("choose how long the grant lasts"))
                .and_then(|minutes| gw.grant_like(entry, minutes));
            match granted {
                Ok(_) => super::done("/ui/queue", "granted"),
                Err(e) => {
                    tracing::info!(entry = %entry.id, error = %e, "no grant beside the approval");
                    super::done("/ui/queue", "grant-refused")
                }
            }
        }
        _ => decided(approved),
    }
}

pub(super) async fn reject(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
    SignedForm { form, .. }: SignedForm<DecisionForm>,
) -> Response {
    decided(gw.reject(&id, REVIEWER, form.reason))
}

/// After a decision: an entry decided elsewhere in the meantime needs nothing
/// more (the queue page shows how).
fn decided(outcome: crate::error::Result<Entry>) -> Response {
    match outcome {
        Ok(_) | Err(Error::AlreadyDecided { .. }) => {}
        Err(e) => {
            return (
                error_status(&e),
                axum::response::Html(super::escape(&e.to_string())),
            )
                .into_response();
        }
    }
    Redirect::to("/ui/queue").into_response()
}
