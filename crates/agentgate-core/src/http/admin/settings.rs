//! The gateway as a whole: the services it knows, the settings that change
//! while it runs, the pause switch, and the audit log.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::answers::{
    AuditList, PauseState, ReadOnlySettings, ServiceInfo, ServiceList, SettingsAnswer, SettingsView,
};
use crate::answers::ErrorBody;
use crate::audit::AuditFilter;
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::error::Error;
use crate::gateway::{Gateway, SettingsUpdate};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, QueryParams};
use crate::services::REGISTRY;

#[utoipa::path(get, path = "/admin/services", responses(
    (status = 200, description = "Every service agentgate knows", body = ServiceList),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn services_list() -> Json<ServiceList> {
    Json(ServiceList {
        services: REGISTRY.iter().map(|s| ServiceInfo::from(*s)).collect(),
    })
}

#[utoipa::path(get, path = "/admin/settings", responses(
    (status = 200, description = "The settings, and what only a restart changes", body = SettingsView),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn settings_get(State(gw): State<Gateway>) -> Json<SettingsView> {
    let c = gw.config();
    Json(SettingsView {
        settings: gw.settings(),
        read_only: ReadOnlySettings {
            agent_listen: c.agent_addr.to_string(),
            admin_listen: c.admin_addr.to_string(),
            base_url: gw.base_url(),
            data_dir: c.data_dir.display().to_string(),
            credential_backend: gw.credential_backend(),
            max_request_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_upstream_response_bytes: c.max_response_bytes,
        },
    })
}

/// Changes the settings sent; the others stay. Takes effect on the next request.
#[utoipa::path(patch, path = "/admin/settings", request_body = SettingsUpdate, responses(
    (status = 200, description = "The settings as they are now", body = SettingsAnswer),
    (status = 400, description = "A value out of range, or an unknown setting", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn settings_update(
    State(gw): State<Gateway>,
    JsonBody(update): JsonBody<SettingsUpdate>,
) -> Result<Json<SettingsAnswer>, ApiError> {
    Ok(Json(SettingsAnswer {
        settings: gw.update_settings(update)?,
    }))
}

#[utoipa::path(get, path = "/admin/pause", responses(
    (status = 200, description = "Whether agents are paused", body = PauseState),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn pause_get(State(gw): State<Gateway>) -> Result<Json<PauseState>, ApiError> {
    Ok(Json(PauseState {
        paused: gw.is_paused()?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    paused: bool,
}

/// Pauses or resumes every agent: while paused, reads and submissions are
/// refused with 503.
#[utoipa::path(put, path = "/admin/pause", request_body = PauseBody, responses(
    (status = 200, description = "Whether agents are paused now", body = PauseState),
    (status = 400, description = "Not a JSON body of this shape", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn pause_set(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<PauseBody>,
) -> Result<Json<PauseState>, ApiError> {
    gw.set_paused(body.paused)?;
    Ok(Json(PauseState {
        paused: gw.is_paused()?,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// read or transition.
    kind: Option<String>,
    /// The agent's name.
    agent: Option<String>,
    service: Option<String>,
    account: Option<String>,
    /// Records at or after this UTC time, e.g. `2025-01-31T00:00:00Z`
    /// (compared as text).
    since: Option<String>,
    /// Records before this UTC time, written the same way.
    until: Option<String>,
    /// At most this many (default 1000, at most 100000).
    limit: Option<usize>,
    /// json (default), jsonl or csv.
    format: Option<String>,
}

#[utoipa::path(get, path = "/admin/audit", params(AuditQuery), responses(
    (status = 200, description = "Records, newest first: JSON, or a JSON Lines or CSV download",
        content(
            (AuditList = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"))),
    (status = 400, description = "Unknown kind, format or query field", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn audit_list(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response, ApiError> {
    if let Some(k) = &q.kind
        && k != "read"
        && k != "transition"
    {
        return Err(Error::invalid("kind is read or transition").into());
    }
    let records = gw.audit(&AuditFilter {
        kind: q.kind,
        agent: q.agent,
        service: q.service,
        account: q.account,
        since: q.since,
        until: q.until,
        limit: Some(q.limit.unwrap_or(1000).min(100_000)),
    })?;
    let attachment = |ext: &str| format!("attachment; filename=\"agentgate-audit.{ext}\"");
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(AuditList {
            count: records.len(),
            records,
        })
        .into_response(),
        "jsonl" => (
            [
                (
                    http::header::CONTENT_TYPE,
                    "application/x-ndjson".to_string(),
                ),
                (http::header::CONTENT_DISPOSITION, attachment("jsonl")),
            ],
            crate::audit::to_json_lines(&records),
        )
            .into_response(),
        "csv" => (
            [
                (
                    http::header::CONTENT_TYPE,
                    "text/csv; charset=utf-8".to_string(),
                ),
                (http::header::CONTENT_DISPOSITION, attachment("csv")),
            ],
            crate::audit::to_csv(&records),
        )
            .into_response(),
        other => {
            return Err(
                Error::invalid(format!("unknown format {other:?}: json, jsonl or csv")).into(),
            );
        }
    })
}
