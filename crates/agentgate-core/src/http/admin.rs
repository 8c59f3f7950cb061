//! The admin API, served only on the admin listener. Every route except health,
//! first-run setup and login needs an admin session: the `agentgate_session`
//! cookie set at login, or the same token as `Authorization: Bearer agt_...` for
//! scripts. Agent keys are refused outright.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::agent::health;
use super::error::{ApiError, method_not_allowed, not_found};
use super::extract::{JsonBody, OptionalJsonBody, Params, QueryParams};
use super::session::{AdminSession, SESSION_COOKIE};
use super::trace::trace_requests;
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::error::Error;
use crate::gateway::{
    CONNECT_LIFETIME, Gateway, NewAccount, OAuthClientConfig, RuleSpec, SettingsUpdate,
};
use crate::password::SESSION_LIFETIME;
use crate::policy::AccessMode;
use crate::queue::EntryFilter;
use crate::queue::Status;
use crate::secret::Secret;
use crate::services::REGISTRY;

/// How the admin API names itself in `reviewed_by`.
const REVIEWER: &str = "admin-api";

pub fn admin_router(gw: Gateway) -> Router {
    let mut protected = Router::new();
    // The code's word is "agents"; "/admin/keys" is the CLI's word, kept for
    // scripts written against it (ARCHITECTURE.md, "Names").
    for prefix in ["/admin/agents", "/admin/keys"] {
        protected = protected
            .route(prefix, get(agents_list).post(agents_create))
            .route(
                &format!("{prefix}/{{name}}"),
                axum::routing::patch(agents_update).delete(agents_revoke),
            )
            .route(
                &format!("{prefix}/{{name}}/webhook/test"),
                post(webhook_test),
            )
            .route(
                &format!("{prefix}/{{name}}/webhook/retry-all"),
                post(webhook_retry_all),
            );
    }
    let protected = protected
        .route("/admin/queue", get(queue_list))
        .route("/admin/queue/{id}", get(queue_entry))
        .route("/admin/queue/{id}/approve", post(approve))
        .route("/admin/queue/{id}/reject", post(reject))
        .route("/admin/notifications", get(notifications_list))
        .route("/admin/notifications/{id}/retry", post(notification_retry))
        .route("/admin/accounts", get(accounts_list).post(accounts_add))
        .route(
            "/admin/accounts/{service}/{name}",
            get(accounts_get)
                .patch(accounts_update)
                .delete(accounts_remove),
        )
        .route("/admin/accounts/{service}/{name}/test", post(accounts_test))
        .route("/admin/accounts/{service}/{name}/policy", get(policy_get))
        .route(
            "/admin/accounts/{service}/{name}/access",
            axum::routing::put(access_set),
        )
        .route(
            "/admin/accounts/{service}/{name}/rules",
            axum::routing::put(rules_set),
        )
        .route("/admin/accounts/{service}/{name}/dry-run", post(dry_run))
        .route("/admin/grants", get(grants_list).post(grants_add))
        .route("/admin/grants/{id}", axum::routing::delete(grants_revoke))
        .route("/admin/services", get(services_list))
        .route("/admin/settings", get(settings_get).patch(settings_update))
        .route("/admin/pause", get(pause_get).put(pause_set))
        .route("/admin/audit", get(audit_list))
        .route("/admin/oauth/connect", post(oauth_connect))
        .route("/admin/oauth/clients", get(oauth_clients))
        .route(
            "/admin/oauth/clients/{provider}",
            axum::routing::put(oauth_client_set).delete(oauth_client_remove),
        )
        .route("/admin/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(gw.clone(), require_admin));
    Router::new()
        .route("/health", get(health))
        .route("/admin/status", get(status))
        .route("/admin/setup", post(setup))
        .route("/admin/login", post(login))
        .route("/oauth/callback/{service}", get(super::oauth::callback))
        .merge(protected)
        .merge(super::ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(DEFAULT_MAX_BODY_BYTES))
        .layer(middleware::from_fn(trace_requests))
        .with_state(gw)
}

/// Every protected route needs an admin session; the extractor holds the check.
async fn require_admin(_: AdminSession, req: Request, next: Next) -> Response {
    next.run(req).await
}

fn client_ip(req_ext: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    req_ext.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip())
}

async fn status(State(gw): State<Gateway>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"password_set": gw.admin_password_set()?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

async fn setup(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Json<Value>, ApiError> {
    gw.setup_admin_password(&Secret::new(body.password))?;
    Ok(Json(
        json!({"ok": true, "message": "admin password set; log in with POST /admin/login"}),
    ))
}

async fn login(State(gw): State<Gateway>, req: Request) -> Result<Response, ApiError> {
    let ip = client_ip(req.extensions().get::<ConnectInfo<SocketAddr>>());
    let JsonBody(body) = JsonBody::<PasswordBody>::from_request_with(req, &gw).await?;
    let token = gw.login(ip, Secret::new(body.password)).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        token.expose(),
        SESSION_LIFETIME.whole_seconds()
    );
    let body =
        Json(json!({"token": token.expose(), "expires_in": SESSION_LIFETIME.whole_seconds()}));
    Ok(([(http::header::SET_COOKIE, cookie)], body).into_response())
}

impl<T: serde::de::DeserializeOwned> JsonBody<T> {
    async fn from_request_with(req: Request, gw: &Gateway) -> Result<Self, ApiError> {
        <Self as axum::extract::FromRequest<Gateway>>::from_request(req, gw).await
    }
}

async fn logout(State(gw): State<Gateway>, session: AdminSession) -> Result<Response, ApiError> {
    gw.logout(session.token())?;
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((
        [(http::header::SET_COOKIE, cookie)],
        Json(json!({"ok": true})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    status: Option<String>,
    agent: Option<String>,
    service: Option<String>,
    account: Option<String>,
    limit: Option<usize>,
}

async fn queue_list(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<QueueQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<Status>)
        .transpose()
        .map_err(Error::from)?;
    let entries = gw.entries(&EntryFilter {
        status,
        agent_name: q.agent,
        service: q.service,
        account: q.account,
        limit: Some(q.limit.unwrap_or(200).min(1000)),
        ..Default::default()
    })?;
    Ok(Json(json!({"count": entries.len(), "entries": entries})))
}

async fn queue_entry(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(gw.entry(&id)?)))
}

async fn approve(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(gw.approve_and_start(&id, REVIEWER)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    reason: Option<String>,
}

async fn reject(
    State(gw): State<Gateway>,
    Params(id): Params<String>,
    OptionalJsonBody(body): OptionalJsonBody<RejectBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(gw.reject(
        &id,
        REVIEWER,
        body.and_then(|b| b.reason)
    )?)))
}

async fn agents_list(State(gw): State<Gateway>) -> Result<Json<Value>, ApiError> {
    let agents = gw
        .agents()?
        .iter()
        .map(|a| agent_json(&gw, a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"agents": agents})))
}

/// An agent as the admin sees it: never its key or webhook token, only whether
/// a token is set.
fn agent_json(gw: &Gateway, a: &crate::agent::Agent) -> Result<Value, ApiError> {
    let mut v = json!(a);
    v["has_webhook_token"] = json!(gw.webhook_has_token(a.id)?);
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    name: String,
}

async fn agents_create(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<NewKeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (agent, key) = gw.create_agent(&body.name)?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"agent": agent, "key": key.expose(), "message": "Store this key now: it is never shown again."}),
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyUpdateBody {
    name: Option<String>,
    enabled: Option<bool>,
    /// Services' answers as sent, never compacted.
    raw_responses: Option<bool>,
    /// Approve all of this agent's writes automatically.
    trusted: Option<bool>,
    /// Where outcomes are POSTed; `null` removes the webhook.
    #[serde(default, deserialize_with = "double_option")]
    webhook_url: Option<Option<String>>,
    /// The bearer token sent with each webhook; "" removes it.
    webhook_token: Option<String>,
    /// Announce approvals too, not only final outcomes.
    webhook_on_approved: Option<bool>,
}

async fn agents_update(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
    JsonBody(body): JsonBody<KeyUpdateBody>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"agent": agent_json(&gw, &gw.agent(&current)?)?, "warning": warning}),
    ))
}

async fn agents_revoke(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
) -> Result<Json<Value>, ApiError> {
    gw.revoke_agent(&name)?;
    Ok(Json(json!({"ok": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    service: String,
    name: String,
    base_url: Option<String>,
    credentials: BTreeMap<String, String>,
}

fn secrets(map: BTreeMap<String, String>) -> BTreeMap<String, Secret> {
    map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect()
}

async fn accounts_add(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<NewAccountBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let info = gw.add_account(NewAccount {
        service: body.service,
        name: body.name,
        base_url: body.base_url,
        credentials: secrets(body.credentials),
    })?;
    Ok((StatusCode::CREATED, Json(json!({"account": info}))))
}

async fn accounts_list(State(gw): State<Gateway>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"accounts": gw.accounts()?})))
}

async fn accounts_get(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"account": gw.account_info(&service, &name)?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountUpdateBody {
    /// `null` returns to the service's default base URL.
    #[serde(default, deserialize_with = "double_option")]
    base_url: Option<Option<String>>,
    credentials: Option<BTreeMap<String, String>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn accounts_update(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<AccountUpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let info = gw.update_account(
        &service,
        &name,
        body.base_url,
        body.credentials.map(secrets),
    )?;
    Ok(Json(json!({"account": info})))
}

async fn accounts_remove(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    gw.remove_account(&service, &name)?;
    Ok(Json(json!({"ok": true})))
}

async fn accounts_test(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(gw.test_account(&service, &name).await?)))
}

async fn services_list() -> Json<Value> {
    Json(json!({
        "services": REGISTRY.iter().map(|s| json!({
            "key": s.key,
            "aliases": s.aliases,
            "display_name": s.display_name,
            "description": s.description,
            "auth_method": s.auth.method(),
            "oauth_provider": match s.auth { crate::services::Auth::OAuth2(spec) => Some(spec.provider), _ => None },
            "base_url_template": s.base_url_template,
            "default_base_url": s.default_base_url,
            "credential_fields": s.credential_fields,
            "blocked_paths": s.blocked.iter().map(|b| b.0).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    }))
}

async fn settings_get(State(gw): State<Gateway>) -> Json<Value> {
    let c = gw.config();
    Json(json!({
        "settings": gw.settings(),
        "read_only": {
            "agent_listen": c.agent_addr.to_string(),
            "admin_listen": c.admin_addr.to_string(),
            "base_url": gw.base_url(),
            "data_dir": c.data_dir.display().to_string(),
            "credential_backend": gw.credential_backend(),
            "max_request_body_bytes": DEFAULT_MAX_BODY_BYTES,
            "max_upstream_response_bytes": c.max_response_bytes,
        }
    }))
}

async fn settings_update(
    State(gw): State<Gateway>,
    JsonBody(update): JsonBody<SettingsUpdate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"settings": gw.update_settings(update)?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    service: String,
    name: String,
    base_url: Option<String>,
    /// Where the provider sends the browser back; default: the public base URL.
    redirect_base: Option<String>,
}

async fn oauth_connect(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<ConnectBody>,
) -> Result<Json<Value>, ApiError> {
    let url = gw
        .start_connect(&body.service, &body.name, body.base_url, body.redirect_base)
        .await?;
    Ok(Json(json!({
        "authorize_url": url.as_str(),
        "expires_in": CONNECT_LIFETIME.whole_seconds(),
        "message": "Open authorize_url in a browser and sign in; the provider then returns to agentgate's callback.",
    })))
}

async fn oauth_clients(State(gw): State<Gateway>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"providers": gw.oauth_clients()?})))
}

async fn oauth_client_set(
    State(gw): State<Gateway>,
    Params(provider): Params<String>,
    JsonBody(body): JsonBody<OAuthClientConfig>,
) -> Result<Json<Value>, ApiError> {
    gw.set_oauth_client(&provider, body)?;
    Ok(Json(json!({"ok": true})))
}

async fn oauth_client_remove(
    State(gw): State<Gateway>,
    Params(provider): Params<String>,
) -> Result<Json<Value>, ApiError> {
    gw.remove_oauth_client(&provider)?;
    Ok(Json(json!({"ok": true})))
}

async fn policy_get(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"policy": gw.account_policy(&service, &name)?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    mode: AccessMode,
    #[serde(default)]
    agents: Vec<String>,
}

async fn access_set(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<AccessBody>,
) -> Result<Json<Value>, ApiError> {
    let policy = gw.set_account_access(&service, &name, body.mode, &body.agents)?;
    Ok(Json(json!({"policy": policy})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesBody {
    rules: Vec<RuleSpec>,
}

async fn rules_set(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<RulesBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"policy": gw.set_account_rules(&service, &name, body.rules)?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunBody {
    agent: String,
    method: String,
    path: String,
}

async fn dry_run(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<DryRunBody>,
) -> Result<Json<Value>, ApiError> {
    let d = gw.dry_run(&service, &name, &body.agent, &body.method, &body.path)?;
    Ok(Json(json!({"decision": d})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    agent: String,
    service: String,
    account: String,
    minutes: i64,
}

async fn grants_add(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let g = gw.grant(&body.agent, &body.service, &body.account, body.minutes)?;
    Ok((StatusCode::CREATED, Json(json!({"grant": g}))))
}

async fn grants_list(State(gw): State<Gateway>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"grants": gw.grants()?})))
}

async fn grants_revoke(
    State(gw): State<Gateway>,
    Params(id): Params<i64>,
) -> Result<Json<Value>, ApiError> {
    gw.revoke_grant(id)?;
    Ok(Json(json!({"ok": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    paused: bool,
}

async fn pause_get(State(gw): State<Gateway>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"paused": gw.is_paused()?})))
}

async fn pause_set(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<PauseBody>,
) -> Result<Json<Value>, ApiError> {
    gw.set_paused(body.paused)?;
    Ok(Json(json!({"paused": gw.is_paused()?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    kind: Option<String>,
    agent: Option<String>,
    service: Option<String>,
    account: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    /// json (default), jsonl or csv.
    format: Option<String>,
}

async fn audit_list(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response, ApiError> {
    if let Some(k) = &q.kind
        && k != "read"
        && k != "transition"
    {
        return Err(Error::invalid("kind is read or transition").into());
    }
    let records = gw.audit(&crate::audit::AuditFilter {
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
        "json" => Json(json!({"count": records.len(), "records": records})).into_response(),
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

async fn webhook_test(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
) -> Result<Json<Value>, ApiError> {
    gw.test_webhook(&name).await?;
    Ok(Json(
        json!({"ok": true, "message": "the test message was delivered"}),
    ))
}

async fn webhook_retry_all(
    State(gw): State<Gateway>,
    Params(name): Params<String>,
) -> Result<Json<Value>, ApiError> {
    let n = gw.retry_all_notifications(&name).await?;
    Ok(Json(json!({"ok": true, "delivered": n})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationsQuery {
    agent: Option<String>,
    status: Option<String>,
}

async fn notifications_list(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<NotificationsQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(s) = &q.status
        && !["pending", "delivered", "failed"].contains(&s.as_str())
    {
        return Err(Error::invalid("status is pending, delivered or failed").into());
    }
    let list = gw.notifications(q.agent.as_deref(), q.status.as_deref())?;
    Ok(Json(json!({"count": list.len(), "notifications": list})))
}

async fn notification_retry(
    State(gw): State<Gateway>,
    Params(id): Params<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"notification": gw.retry_notification(id).await?}),
    ))
}
