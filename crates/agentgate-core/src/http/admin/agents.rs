//! Agents (the CLI says keys), their webhooks and the notifications sent to
//! them. The routes are `/admin/agents…`; `/admin/keys…` answers the same.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;

use super::answers::{
    AgentList, AgentUpdated, AgentView, Done, NewAgent, NotificationAnswer, NotificationList,
    Redelivered,
};
use super::double_option;
use crate::agent::Agent;
use crate::answers::ErrorBody;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, Params, QueryParams};
use crate::secret::Secret;

#[utoipa::path(get, path = "/admin/agents", responses(
    (status = 200, description = "Every agent, by name", body = AgentList),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn agents_list(State(gw): State<Gateway>) -> Result<Json<AgentList>, ApiError> {
    let agents = gw
        .agents()?
        .into_iter()
        .map(|a| agent_view(&gw, a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(AgentList { agents }))
}

fn agent_view(gw: &Gateway, agent: Agent) -> Result<AgentView, ApiError> {
    Ok(AgentView {
        has_webhook_token: gw.webhook_has_token(agent.id)?,
        agent,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKeyBody {
    name: String,
}

/// Creates an agent with a new key, shown in this answer only.
#[utoipa::path(post, path = "/admin/agents", request_body = NewKeyBody, responses(
    (status = 201, description = "Created; store the key now", body = NewAgent),
    (status = 400, description = "Invalid name", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 409, description = "The name is taken", body = ErrorBody)))]
pub(super) async fn agents_create(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<NewKeyBody>,
) -> Result<(StatusCode, Json<NewAgent>), ApiError> {
    let (agent, key) = gw.create_agent(&body.name)?;
    Ok((
        StatusCode::CREATED,
        Json(NewAgent {
            agent,
            key: key.expose().to_string(),
            message: "Store this key now: it is never shown again.",
        }),
    ))
}

/// Every field is optional; only those sent change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyUpdateBody {
    /// A new name.
    name: Option<String>,
    enabled: Option<bool>,
    /// Services' answers as sent, never compacted.
    raw_responses: Option<bool>,
    /// Approve all of this agent's writes automatically.
    trusted: Option<bool>,
    /// Where outcomes are POSTed; `null` removes the webhook.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    webhook_url: Option<Option<String>>,
    /// The bearer token sent with each webhook; "" removes it.
    webhook_token: Option<String>,
    /// Announce approvals too, not only final outcomes.
    webhook_on_approved: Option<bool>,
    /// Take a plain `http://` webhook URL to another machine (its token then
    /// travels in clear); without it only loopback may be plain http.
    allow_plain_http: Option<bool>,
}

#[utoipa::path(patch, path = "/admin/agents/{name}", params(("name" = String, Path)),
    request_body = KeyUpdateBody,
    responses(
        (status = 200, description = "The agent as it is now", body = AgentUpdated),
        (status = 400, description = "Invalid name or webhook URL", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody)))]
pub(super) async fn agents_update(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    JsonBody(body): JsonBody<KeyUpdateBody>,
) -> Result<Json<AgentUpdated>, ApiError> {
    let mut current = name;
    if let Some(enabled) = body.enabled {
        gw.set_agent_enabled(&current, enabled)?;
    }
    if let Some(raw) = body.raw_responses {
        gw.set_agent_raw(&current, raw)?;
    }
    if body.webhook_url.is_some()
        || body.webhook_token.is_some()
        || body.webhook_on_approved.is_some()
    {
        gw.set_webhook(
            &current,
            body.webhook_url,
            body.webhook_token.map(Secret::new),
            body.webhook_on_approved,
            body.allow_plain_http.unwrap_or(false),
        )?;
    }
    let mut warning = None;
    if let Some(trusted) = body.trusted {
        gw.set_agent_trusted(&current, trusted)?;
        if trusted {
            warning = Some(
                "This agent's writes now run without asking you, on every account it may use, \
                 unless a rule requires approval or denies them.",
            );
        }
    }
    if let Some(new_name) = body.name {
        gw.rename_agent(&current, &new_name)?;
        current = new_name;
    }
    Ok(Json(AgentUpdated {
        agent: agent_view(&gw, gw.agent(&current)?)?,
        warning,
    }))
}

/// Revokes the agent: its key stops working at once.
#[utoipa::path(delete, path = "/admin/agents/{name}", params(("name" = String, Path)), responses(
    (status = 200, description = "Revoked", body = Done),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such agent", body = ErrorBody)))]
pub(super) async fn agents_revoke(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
) -> Result<Json<Done>, ApiError> {
    gw.revoke_agent(&name)?;
    Ok(Json(Done::OK))
}

/// Sends a test message to the agent's webhook and waits for its answer.
#[utoipa::path(post, path = "/admin/agents/{name}/webhook/test", params(("name" = String, Path)), responses(
    (status = 200, description = "Delivered", body = Done),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such agent", body = ErrorBody),
    (status = 409, description = "The agent has no webhook URL", body = ErrorBody),
    (status = 502, description = "The webhook refused or failed", body = ErrorBody)))]
pub(super) async fn webhook_test(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
) -> Result<Json<Done>, ApiError> {
    gw.test_webhook(&name).await?;
    Ok(Json(Done::saying("the test message was delivered")))
}

/// Sends the agent's given-up notifications again, together.
#[utoipa::path(post, path = "/admin/agents/{name}/webhook/retry-all", params(("name" = String, Path)), responses(
    (status = 200, description = "Sent", body = Redelivered),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such agent", body = ErrorBody),
    (status = 502, description = "No webhook URL, or the webhook refused or failed", body = ErrorBody)))]
pub(super) async fn webhook_retry_all(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
) -> Result<Json<Redelivered>, ApiError> {
    let n = gw.retry_all_notifications(&name).await?;
    Ok(Json(Redelivered {
        ok: true,
        delivered: n,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct NotificationsQuery {
    /// The agent's name.
    agent: Option<String>,
    /// pending, delivered or failed.
    status: Option<String>,
}

#[utoipa::path(get, path = "/admin/notifications", params(NotificationsQuery), responses(
    (status = 200, description = "Notifications, newest first", body = NotificationList),
    (status = 400, description = "Unknown status or query field", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such agent", body = ErrorBody)))]
pub(super) async fn notifications_list(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<NotificationsQuery>,
) -> Result<Json<NotificationList>, ApiError> {
    if let Some(s) = &q.status
        && !["pending", "delivered", "failed"].contains(&s.as_str())
    {
        return Err(Error::invalid("status is pending, delivered or failed").into());
    }
    let list = gw.notifications(q.agent.as_deref(), q.status.as_deref())?;
    Ok(Json(NotificationList {
        count: list.len(),
        notifications: list,
    }))
}

/// Sends one notification again now, whatever its state.
#[utoipa::path(post, path = "/admin/notifications/{id}/retry", params(("id" = i64, Path)), responses(
    (status = 200, description = "The notification after this attempt", body = NotificationAnswer),
    (status = 400, description = "The id is not a number", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such notification", body = ErrorBody),
    (status = 409, description = "Delivered already", body = ErrorBody)))]
pub(super) async fn notification_retry(
    State(gw): State<Gateway>,
    Params(id): Params<i64>,
) -> Result<Json<NotificationAnswer>, ApiError> {
    Ok(Json(NotificationAnswer {
        notification: gw.retry_notification(id).await?,
    }))
}
