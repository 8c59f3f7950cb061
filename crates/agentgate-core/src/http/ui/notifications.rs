//! Notifications to agents: each webhook message with its state (waiting,
//! delivered, failed), a retry of one, and per agent a retry of all it missed.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;

use super::{Chrome, Notice, done, error_status, render};
use serde::de::IgnoredAny;

use crate::gateway::Gateway;
use crate::http::extract::Params;
use crate::http::session::{AdminSession, SignedForm};
use crate::queue::NotificationState;

struct Row {
    n: NotificationState,
    agent: String,
    headline: String,
}

struct AgentMissed {
    name: String,
    missed: usize,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    agents: Vec<AgentMissed>,
}

/// The most notifications the page lists.
const PAGE_ROWS: usize = 200;

pub(super) fn notifications_page(
    gw: &Gateway,
    session: &AdminSession,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let (all, agents) = match (gw.notifications(None, None), gw.agents()) {
        (Ok(n), Ok(a)) => (n, a),
        (Err(e), _) | (_, Err(e)) => return super::unavailable("The notifications", &e),
    };
    // Newest first, as the store gives them.
    let rows = all
        .into_iter()
        .take(PAGE_ROWS)
        .map(|n| {
            let entry = gw.entry(&n.entry_id).ok();
            Row {
                agent: entry
                    .as_ref()
                    .map_or_else(String::new, |e| e.agent_name.clone()),
                headline: entry
                    .as_ref()
                    .map_or_else(String::new, |e| super::queue::view(gw, e).headline),
                n,
            }
        })
        .collect();
    let agents = agents
        .into_iter()
        .map(|a| AgentMissed {
            missed: gw
                .notifications(Some(&a.name), Some("failed"))
                .map_or(0, |n| n.len()),
            name: a.name,
        })
        .collect();
    render(
        NotificationsPage {
            chrome: Chrome::new(gw, session, "notifications", notice),
            rows,
            agents,
        },
        status,
    )
}

pub(super) async fn retry_submit(
    State(gw): State<Gateway>,
    Params(id): Params<i64>,
    SignedForm { session, .. }: SignedForm<IgnoredAny>,
) -> Response {
    match gw.retry_notification(id).await {
        Ok(n) if n.status == "delivered" => done("/ui/notifications", "retried"),
        Ok(n) => notifications_page(
            &gw,
            &session,
            Notice::error(format!(
                "Sent again, but not delivered: {}",
                n.last_error.unwrap_or_else(|| "no answer".into())
            )),
            StatusCode::BAD_GATEWAY,
        ),
        Err(e) => notifications_page(
            &gw,
            &session,
            Notice::error(e.to_string()),
            error_status(&e),
        ),
    }
}

pub(super) async fn retry_all_submit(
    State(gw): State<Gateway>,
    Params(agent): Params<String>,
    SignedForm { session, .. }: SignedForm<IgnoredAny>,
) -> Response {
    match gw.retry_all_notifications(&agent).await {
        Ok(0) => notifications_page(
            &gw,
            &session,
            Notice::ok(format!("{agent} missed nothing.")),
            StatusCode::OK,
        ),
        Ok(_) => done("/ui/notifications", "retried-all"),
        Err(e) => notifications_page(
            &gw,
            &session,
            Notice::error(e.to_string()),
            error_status(&e),
        ),
    }
}
