//! An account's policy as the admin sets it: who may use the account, its
//! endpoint rules, the dry run that explains a decision, and time-boxed
//! auto-approve grants.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;

use super::answers::{DecisionAnswer, Done, GrantAnswer, GrantList, PolicyAnswer};
use crate::answers::ErrorBody;
use crate::gateway::{Gateway, GrantSpec, RuleSpec};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, Params};
use crate::policy::AccessMode;

#[utoipa::path(get, path = "/admin/accounts/{service}/{name}/policy",
    params(("service" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, description = "The access mode and the rules", body = PolicyAnswer),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service or account", body = ErrorBody)))]
pub(super) async fn policy_get(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<PolicyAnswer>, ApiError> {
    Ok(Json(PolicyAnswer {
        policy: gw.account_policy(&service, &name)?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessBody {
    mode: AccessMode,
    /// The agents of the allowlist or denylist, by name.
    #[serde(default)]
    agents: Vec<String>,
}

/// Sets who may use the account; takes effect on the next request.
#[utoipa::path(put, path = "/admin/accounts/{service}/{name}/access",
    params(("service" = String, Path), ("name" = String, Path)),
    request_body = AccessBody,
    responses(
        (status = 200, description = "The policy as it is now", body = PolicyAnswer),
        (status = 400, description = "Unknown mode or not a JSON body of this shape", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service, account or agent", body = ErrorBody)))]
pub(super) async fn access_set(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<AccessBody>,
) -> Result<Json<PolicyAnswer>, ApiError> {
    let policy = gw.set_account_access(&service, &name, body.mode, &body.agents)?;
    Ok(Json(PolicyAnswer { policy }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesBody {
    /// In order: the first rule that matches decides.
    rules: Vec<RuleSpec>,
    /// The policy's `version` these rules were made from: when given, the
    /// rules are replaced only if nobody changed them meanwhile (409 else).
    #[serde(default)]
    version: Option<String>,
}

/// Replaces the account's rules; takes effect on the next request.
#[utoipa::path(put, path = "/admin/accounts/{service}/{name}/rules",
    params(("service" = String, Path), ("name" = String, Path)),
    request_body = RulesBody,
    responses(
        (status = 200, description = "The policy as it is now", body = PolicyAnswer),
        (status = 400, description = "An invalid rule, or too many", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service, account or agent", body = ErrorBody),
        (status = 409, description = "The rules changed since the version named", body = ErrorBody)))]
pub(super) async fn rules_set(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<RulesBody>,
) -> Result<Json<PolicyAnswer>, ApiError> {
    Ok(Json(PolicyAnswer {
        policy: gw.set_account_rules_from(&service, &name, body.rules, body.version.as_deref())?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DryRunBody {
    /// The agent's name.
    agent: String,
    method: String,
    /// The upstream path, as the agent would send it.
    path: String,
}

/// What would happen to a request of this agent on this account, and why;
/// nothing is sent.
#[utoipa::path(post, path = "/admin/accounts/{service}/{name}/dry-run",
    params(("service" = String, Path), ("name" = String, Path)),
    request_body = DryRunBody,
    responses(
        (status = 200, description = "The decision", body = DecisionAnswer),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service, account or agent", body = ErrorBody)))]
pub(super) async fn dry_run(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<DryRunBody>,
) -> Result<Json<DecisionAnswer>, ApiError> {
    let decision = gw.dry_run(&service, &name, &body.agent, &body.method, &body.path)?;
    Ok(Json(DecisionAnswer { decision }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantBody {
    /// The agent's name.
    agent: String,
    service: String,
    account: String,
    /// 1 to 1440.
    minutes: i64,
    /// Only this write method (POST, PUT, PATCH, DELETE); absent: all.
    #[serde(default)]
    method: Option<String>,
    /// Only paths this pattern matches (a glob like a rule's); absent: all.
    #[serde(default)]
    path: Option<String>,
}

/// Auto-approves the agent's writes to the account for a while.
#[utoipa::path(post, path = "/admin/grants", request_body = GrantBody, responses(
    (status = 201, description = "Granted", body = GrantAnswer),
    (status = 400, description = "Minutes out of range, a method that is not a write, a bad pattern, or too many grants", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such agent, service or account", body = ErrorBody)))]
pub(super) async fn grants_add(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<(StatusCode, Json<GrantAnswer>), ApiError> {
    let grant = gw.grant(&GrantSpec {
        agent: body.agent,
        service: body.service,
        account: body.account,
        minutes: body.minutes,
        method: body.method,
        path: body.path,
    })?;
    Ok((StatusCode::CREATED, Json(GrantAnswer { grant })))
}

#[utoipa::path(get, path = "/admin/grants", responses(
    (status = 200, description = "Live grants, soonest to end first", body = GrantList),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn grants_list(State(gw): State<Gateway>) -> Result<Json<GrantList>, ApiError> {
    Ok(Json(GrantList {
        grants: gw.grants()?,
    }))
}

/// Ends a grant before its time.
#[utoipa::path(delete, path = "/admin/grants/{id}", params(("id" = i64, Path)), responses(
    (status = 200, description = "Revoked", body = Done),
    (status = 400, description = "The id is not a number", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 404, description = "No such grant", body = ErrorBody)))]
pub(super) async fn grants_revoke(
    State(gw): State<Gateway>,
    Params(id): Params<i64>,
) -> Result<Json<Done>, ApiError> {
    gw.revoke_grant(id)?;
    Ok(Json(Done::OK))
}
