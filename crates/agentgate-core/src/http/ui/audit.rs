//! The audit log in the window: reads and queue transitions, filtered by
//! agent, account, kind and time, a page at a time, and exported as JSON
//! lines or CSV with the same filters.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, Notice, render};
use crate::audit::{AuditFilter, AuditRecord};
use crate::clock::precise_timestamp;
use crate::error::{Error, Result};
use crate::gateway::{AccountInfo, Gateway};
use crate::http::extract::QueryParams;
use crate::http::session::AdminSession;

/// Records one page shows.
pub const AUDIT_PAGE: usize = 200;
/// Most records one export holds: the newest that match.
pub const MAX_AUDIT_EXPORT: usize = 50_000;

const PERIODS: &[(&str, &str)] = &[
    ("1h", "the last hour"),
    ("24h", "the last 24 hours"),
    ("7d", "the last 7 days"),
    ("30d", "the last 30 days"),
    ("all", "all time"),
];

#[derive(Deserialize, Default, Clone)]
pub(super) struct AuditQuery {
    #[serde(default)]
    agent: String,
    /// `service/name`, or empty.
    #[serde(default)]
    account: String,
    /// read, transition or empty.
    #[serde(default)]
    kind: String,
    /// One of [`PERIODS`]; `24h` when absent.
    #[serde(default)]
    within: String,
    /// Only records before this time (the next page's cursor): RFC 3339, a
    /// date, or `YYYY-MM-DDTHH:MM` in UTC.
    #[serde(default)]
    until: String,
    #[serde(default)]
    format: String,
}

struct Row {
    record: AuditRecord,
    what: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: AuditQuery,
    agents: Vec<String>,
    accounts: Vec<AccountInfo>,
    periods: &'static [(&'static str, &'static str)],
    rows: Vec<Row>,
    /// The address of the next (older) page, when there may be one.
    older: Option<String>,
    export_query: String,
}

fn filter(gw: &Gateway, q: &AuditQuery, limit: usize) -> Result<AuditFilter> {
    let (service, account) = match q.account.split_once('/') {
        Some((s, a)) => (Some(s.to_string()), Some(a.to_string())),
        None if q.account.is_empty() => (None, None),
        None => return Err(Error::invalid("an account is service/name")),
    };
    let kind = match q.kind.as_str() {
        "" => None,
        "read" | "transition" | "edit" => Some(q.kind.clone()),
        other => return Err(Error::invalid(format!("unknown kind {other:?}"))),
    };
    let within = match q.within.as_str() {
        "" | "24h" => Some(time::Duration::hours(24)),
        "1h" => Some(time::Duration::hours(1)),
        "7d" => Some(time::Duration::days(7)),
        "30d" => Some(time::Duration::days(30)),
        "all" => None,
        other => return Err(Error::invalid(format!("unknown period {other:?}"))),
    };
    let until = match q.until.trim() {
        "" => None,
        t => Some(precise_timestamp(crate::audit::parse_time(t)?)),
    };
    Ok(AuditFilter {
        kind,
        agent: (!q.agent.is_empty()).then(|| q.agent.clone()),
        service,
        account,
        since: within.map(|d| precise_timestamp(gw.clock_now() - d)),
        until,
        limit: Some(limit),
    })
}

/// A record in a few words: the request read, or the move in the queue.
fn what(r: &AuditRecord) -> String {
    let count = r
        .count
        .filter(|n| *n > 1)
        .map(|n| format!(" (×{n})"))
        .unwrap_or_default();
    match r.kind.as_str() {
        "read" => format!(
            "{} {} → {}{count}",
            r.method.as_deref().unwrap_or("GET"),
            r.path.as_deref().unwrap_or(""),
            r.status.map_or("-".into(), |s| s.to_string())
        ),
        _ => format!(
            "#{} {} → {}{}",
            r.entry_id.as_deref().unwrap_or("?"),
            r.from_status.as_deref().unwrap_or("new"),
            r.to_status.as_deref().unwrap_or(&r.kind),
            r.actor
                .as_deref()
                .map(|a| format!(" by {a}"))
                .unwrap_or_default()
        ),
    }
}

fn query_string(q: &AuditQuery, until: Option<&str>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("agent", q.agent.as_str()),
        ("account", q.account.as_str()),
        ("kind", q.kind.as_str()),
        ("within", q.within.as_str()),
        ("until", until.unwrap_or(&q.until)),
    ] {
        if !v.is_empty() {
            out.append_pair(k, v);
        }
    }
    out.finish()
}

pub(super) async fn page(
    State(gw): State<Gateway>,
    session: AdminSession,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Response {
    let (records, notice, status) = match filter(&gw, &q, AUDIT_PAGE).and_then(|f| gw.audit(&f)) {
        Ok(r) => (r, None, StatusCode::OK),
        Err(e) => (
            Vec::new(),
            Notice::error(format!("The filter was not applied: {e}")),
            super::error_status(&e),
        ),
    };
    let older = (records.len() == AUDIT_PAGE)
        .then(|| {
            records
                .last()
                .map(|r| format!("/ui/audit?{}", query_string(&q, Some(&r.at))))
        })
        .flatten();
    let built = (|| -> Result<AuditPage> {
        Ok(AuditPage {
            chrome: Chrome::new(&gw, &session, "audit", notice),
            export_query: query_string(&q, None),
            agents: gw.agents()?.into_iter().map(|a| a.name).collect(),
            accounts: gw.accounts()?,
            periods: PERIODS,
            rows: records
                .into_iter()
                .map(|record| Row {
                    what: what(&record),
                    record,
                })
                .collect(),
            older,
            q,
        })
    })();
    match built {
        Ok(p) => render(p, status),
        Err(e) => super::unavailable("The audit log", &e),
    }
}

/// The matching records as a download: JSON lines or CSV.
pub(super) async fn export(
    State(gw): State<Gateway>,
    _session: AdminSession,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Response {
    let records = match filter(&gw, &q, MAX_AUDIT_EXPORT).and_then(|f| gw.audit(&f)) {
        Ok(r) => r,
        Err(e) => {
            return (super::error_status(&e), e.to_string()).into_response();
        }
    };
    let (body, content_type, ext) = match q.format.as_str() {
        "csv" => (
            crate::audit::to_csv(&records),
            "text/csv; charset=utf-8",
            "csv",
        ),
        "" | "jsonl" => (
            crate::audit::to_json_lines(&records),
            "application/x-ndjson",
            "jsonl",
        ),
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown format {other:?}: jsonl or csv"),
            )
                .into_response();
        }
    };
    (
        [
            (http::header::CONTENT_TYPE, content_type.to_string()),
            (
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"agentgate-audit.{ext}\""),
            ),
        ],
        body,
    )
        .into_response()
}
