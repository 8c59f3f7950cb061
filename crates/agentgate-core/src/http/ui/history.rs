//! History: every entry, newest first, filtered by status, agent and service,
//! with who decided, timing, results and the agent's notification.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, render};
use crate::gateway::Gateway;
use crate::http::extract::QueryParams;
use crate::http::session::AdminSession;
use crate::queue::EntryFilter;
use crate::queue::{NotificationState, Status};
use crate::services;

struct ResultView {
    ok: bool,
    text: String,
}

struct HistoryEntry {
    view: super::queue::EntryView,
    reviewed_at: Option<String>,
    reviewed_by: Option<String>,
    completed_at: Option<String>,
    results: Vec<ResultView>,
    notification: Option<NotificationState>,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    chrome: Chrome,
    statuses: Vec<&'static str>,
    filter_status: &'static str,
    filter_agent: String,
    filter_service: String,
    services: Vec<(&'static str, &'static str)>,
    entries: Vec<HistoryEntry>,
}

#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    status: Option<String>,
    agent: Option<String>,
    service: Option<String>,
    done: Option<String>,
}

pub(super) async fn page(
    State(gw): State<Gateway>,
    session: AdminSession,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Response {
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse::<Status>().ok());
    let non_empty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let agent = non_empty(q.agent);
    let service = non_empty(q.service).map(|s| services::find(&s).map_or(s, |d| d.key.to_string()));
    let entries = match gw.entries(&EntryFilter {
        status,
        agent_name: agent.clone(),
        service: service.clone(),
        limit: Some(200),
        ..Default::default()
    }) {
        Ok(e) => e,
        Err(e) => return super::unavailable("The history", &e),
    };
    let page = HistoryPage {
        chrome: Chrome::new(
            &gw,
            &session,
            "history",
            super::done_notice(q.done.as_deref()),
        ),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        filter_status: status.map_or("", |s| s.as_str()),
        filter_agent: agent.unwrap_or_default(),
        filter_service: service.unwrap_or_default(),
        services: services::REGISTRY
            .iter()
            .map(|d| (d.key, d.display_name))
            .collect(),
        entries: entries
            .iter()
            .map(|e| HistoryEntry {
                view: super::queue::view(&gw, e),
                reviewed_at: e.reviewed_at.clone(),
                reviewed_by: e.reviewed_by.clone(),
                completed_at: e.completed_at.clone(),
                notification: e.notification.clone(),
                results: e
                    .results
                    .iter()
                    .map(|r| ResultView {
                        ok: r.ok,
                        text: match (&r.status, &r.error) {
                            (_, Some(err)) => format!(
                                "Request {}: {}",
                                r.index + 1,
                                crate::display::terminal_line(err)
                            ),
                            (Some(s), None) => format!("Request {}: HTTP {s}", r.index + 1),
                            (None, None) => format!("Request {}", r.index + 1),
                        },
                    })
                    .collect(),
            })
            .collect(),
    };
    render(page, StatusCode::OK)
}
