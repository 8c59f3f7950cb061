//! The write queue as the admin sees it: every agent's entries, and the
//! decisions on them.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::answers::EntryList;
use crate::answers::ErrorBody;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, OptionalJsonBody, Params, QueryParams};
use crate::queue::{Entry, EntryFilter, Status};

/// How the admin API names itself in `reviewed_by`.
const REVIEWER: &str = "admin-api";

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct QueueQuery {
    /// pending, approved, executing, completed, failed, rejected, withdrawn or expired.
    status: Option<String>,
    /// The agent's name.
    agent: Option<String>,
    service: Option<String>,
    account: Option<String>,
    /// At most this many (default 200, at most 1000).
    limit: Option<usize>,
    /// Only entries after this one: the `next` of the page before.
    before: Option<String>,
}

#[utoipa::path(get, path = "/admin/queue", params(QueueQuery), responses(
    (status = 200, description = "A page of entries, newest first, as summaries", body = EntryList),
    (status = 400, description = "Unknown status or query field", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn queue_list(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<QueueQuery>,
) -> Result<Json<EntryList>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<Status>)
        .transpose()
        .map_err(Error::from)?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    // Summaries, so that a long list costs little memory whatever the
    // bodies; one entry's own route gives it whole.
    let entries = gw.entries(&EntryFilter {
        status,
        agent_name: q.agent,
        service: q.service,
        account: q.account,
        limit: Some(limit),
        before: q.before,
        summaries: true,
        ..Default::default()
    })?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(EntryList {
        count: entries.len(),
        entries,
        next,
    }))
}

#[utoipa::path(get, path = "/admin/queue/{id}", params(("id" = String, Path)), responses(
    (status = 200, description = "The entry", body = Entry),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such entry", body = ErrorBody)))]
pub(super) async fn queue_entry(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
) -> Result<Json<Entry>, ApiError> {
    Ok(Json(gw.entry(&id)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApproveBody {
    /// The entry's `digest` as you were shown it: if its requests changed
    /// since, nothing is approved.
    digest: Option<String>,
}

/// Approves a pending entry exactly as it was shown (its digest); its batch
/// starts at once.
#[utoipa::path(post, path = "/admin/queue/{id}/approve", params(("id" = String, Path)),
    request_body(content = ApproveBody, description = "The digest of the requests approved"),
    responses(
        (status = 200, description = "Approved; the batch is running", body = Entry),
        (status = 400, description = "Not a JSON body of this shape", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "Already decided, or the digest is missing or not the entry's", body = ErrorBody)))]
pub(super) async fn approve(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
    OptionalJsonBody(body): OptionalJsonBody<ApproveBody>,
) -> Result<Json<Entry>, ApiError> {
    // An unknown entry is a 404 whatever the body says.
    gw.entry(&id)?;
    let digest = body.and_then(|b| b.digest).ok_or_else(|| {
        Error::Conflict(format!(
            "an approval names what it approves: send {{\"digest\": ...}} with the digest of entry {id} as you saw it (GET /admin/queue/{id})"
        ))
    })?;
    Ok(Json(gw.approve_and_start(&id, &digest, REVIEWER)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EditBody {
    /// The entry's `digest` as you were shown it.
    digest: String,
    /// The whole batch as it should run: each request with method, path,
    /// body and headers, as an agent submits them. Requests left out are
    /// dropped.
    #[schema(value_type = Vec<Object>)]
    requests: serde_json::Value,
}

/// Changes a pending entry's requests before deciding on it. The edit is
/// checked like a submission (privacy blocks, write checks, rules, limits);
/// the entry gets a new digest, and its agent sees `edited: true` with its
/// own requests beside the edit.
#[utoipa::path(put, path = "/admin/queue/{id}/requests", params(("id" = String, Path)),
    request_body(content = EditBody, description = "The digest seen and the requests to run instead"),
    responses(
        (status = 200, description = "Edited; still pending", body = Entry),
        (status = 400, description = "Not a valid batch", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 403, description = "A request the agent may not make", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "Already decided, or changed since shown", body = ErrorBody)))]
pub(super) async fn edit(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
    JsonBody(body): JsonBody<EditBody>,
) -> Result<Json<Entry>, ApiError> {
    Ok(Json(gw.edit(&id, &body.digest, body.requests, REVIEWER)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RejectBody {
    /// Told to the agent.
    reason: Option<String>,
}

#[utoipa::path(post, path = "/admin/queue/{id}/reject", params(("id" = String, Path)),
    request_body(content = Option<RejectBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "Rejected", body = Entry),
        (status = 400, description = "Not a JSON body of this shape", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such entry", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody)))]
pub(super) async fn reject(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
    OptionalJsonBody(body): OptionalJsonBody<RejectBody>,
) -> Result<Json<Entry>, ApiError> {
    Ok(Json(gw.reject(
        &id,
        REVIEWER,
        body.and_then(|b| b.reason),
    )?))
}
