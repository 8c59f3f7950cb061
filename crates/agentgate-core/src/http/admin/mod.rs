//! The admin API, served only on the admin listener. Every route except health,
//! status, first-run setup and login needs an admin session: the
//! `agentgate_session` cookie set at login, or the same token as
//! `Authorization: Bearer agt_...` for scripts. Agent keys are refused outright.
//!
//! The routes are registered through utoipa-axum's `OpenApiRouter`, so the
//! router and the OpenAPI document (`GET /admin/openapi.json`) come from the
//! same calls. The handlers live one module per domain; their answers are the
//! typed structs of `answers.rs`.

mod accounts;
mod agents;
mod answers;
mod policy;
mod queue;
mod settings;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::PathItem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::answers::{Done, NewSession, PasswordStatus};
use super::error::{ApiError, admin_not_found, method_not_allowed};
use super::extract::JsonBody;
use super::openapi::OpenApiJson;
use super::session::{AdminSession, SESSION_COOKIE, refuse_foreign_origin};
use super::trace::trace_requests;
use crate::answers::ErrorBody;
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::gateway::Gateway;
use crate::password::SESSION_LIFETIME;
use crate::secret::Secret;

/// The admin API's routes whose handlers describe themselves
/// (`#[utoipa::path]`): those anyone may call, and those that need an admin
/// session, apart so that [`admin_router`] can put the second behind the
/// session check.
fn documented() -> (OpenApiRouter<Gateway>, OpenApiRouter<Gateway>) {
    let public = OpenApiRouter::with_openapi(super::openapi::admin_api_base())
        .routes(routes!(super::agent::health))
        .routes(routes!(status))
        .routes(routes!(setup))
        .routes(routes!(login));
    let protected = OpenApiRouter::default()
        .routes(routes!(openapi_json))
        .routes(routes!(logout))
        .routes(routes!(queue::queue_list))
        .routes(routes!(queue::queue_entry))
        .routes(routes!(queue::approve))
        .routes(routes!(queue::edit))
        .routes(routes!(queue::reject))
        .routes(routes!(agents::agents_list, agents::agents_create))
        .routes(routes!(agents::agents_update, agents::agents_revoke))
        .routes(routes!(agents::webhook_test))
        .routes(routes!(agents::webhook_retry_all))
        .routes(routes!(agents::notifications_list))
        .routes(routes!(agents::notification_retry))
        .routes(routes!(accounts::accounts_list, accounts::accounts_add))
        .routes(routes!(
            accounts::accounts_get,
            accounts::accounts_update,
            accounts::accounts_remove
        ))
        .routes(routes!(accounts::accounts_test))
        .routes(routes!(accounts::oauth_connect))
        .routes(routes!(accounts::oauth_clients))
        .routes(routes!(
            accounts::oauth_client_set,
            accounts::oauth_client_remove
        ))
        .routes(routes!(policy::policy_get))
        .routes(routes!(policy::access_set))
        .routes(routes!(policy::rules_set))
        .routes(routes!(policy::dry_run))
        .routes(routes!(policy::grants_list, policy::grants_add))
        .routes(routes!(policy::grants_revoke))
        .routes(routes!(settings::services_list))
        .routes(routes!(settings::settings_get, settings::settings_update))
        .routes(routes!(settings::pause_get, settings::pause_set))
        .routes(routes!(settings::audit_list));
    (public, with_legacy_alias(protected))
}

/// The code's word is "agents"; `/admin/keys…` is the CLI's word, kept for
/// scripts written against it (ARCHITECTURE.md, "Names"). Both prefixes are
/// documented: the alias routes are registered here by hand, and described
/// as deprecated copies of the `/admin/agents…` operations.
fn with_legacy_alias(router: OpenApiRouter<Gateway>) -> OpenApiRouter<Gateway> {
    let mut router = router
        .route(
            "/admin/keys",
            get(agents::agents_list).post(agents::agents_create),
        )
        .route(
            "/admin/keys/{name}",
            patch(agents::agents_update).delete(agents::agents_revoke),
        )
        .route(
            "/admin/keys/{name}/webhook/test",
            post(agents::webhook_test),
        )
        .route(
            "/admin/keys/{name}/webhook/retry-all",
            post(agents::webhook_retry_all),
        );
    let paths = &mut router.get_openapi_mut().paths.paths;
    let aliases: Vec<(String, PathItem)> = paths
        .iter()
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix("/admin/agents")?;
            Some((format!("/admin/keys{rest}"), deprecated_copy(path, item)))
        })
        .collect();
    paths.extend(aliases);
    router
}

/// An alias's operations: the same as the original's, marked deprecated, with
/// operation ids of their own (OpenAPI wants them unique).
fn deprecated_copy(original: &str, item: &PathItem) -> PathItem {
    let mut item = item.clone();
    for op in [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
    {
        op.deprecated = Some(utoipa::openapi::Deprecated::True);
        op.operation_id = op.operation_id.take().map(|id| format!("{id}_legacy"));
        let note = format!("The same as `{original}`, under its older name.");
        op.description = Some(match op.description.take() {
            Some(d) => format!("{d}\n\n{note}"),
            None => note,
        });
    }
    item
}

/// The admin API's OpenAPI document, as `/admin/openapi.json` serves it.
pub fn document() -> OpenApi {
    let (public, protected) = documented();
    public.merge(protected).into_openapi()
}

pub fn admin_router(gw: Gateway) -> Router {
    let (public, protected) = documented();
    let protected =
        protected.route_layer(middleware::from_fn_with_state(gw.clone(), require_admin));
    let (api, doc) = public.merge(protected).split_for_parts();
    let api = api.layer(Extension(OpenApiJson::new(&doc)));
    Router::new()
        .route("/oauth/callback/{service}", get(super::oauth::callback))
        .merge(api)
        .merge(super::ui::routes())
        .fallback(admin_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(DEFAULT_MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            gw.clone(),
            super::host::only_own_names,
        ))
        .layer(middleware::from_fn(trace_requests))
        .with_state(gw)
}

/// Every protected route needs an admin session; the extractor holds the check.
async fn require_admin(_: AdminSession, req: Request, next: Next) -> Response {
    next.run(req).await
}

/// A body field that may be absent (`None`: no change), `null` (`Some(None)`:
/// remove) or a value.
pub(super) fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn client_ip(req_ext: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    req_ext.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip())
}

#[utoipa::path(get, path = "/admin/openapi.json", responses(
    (status = 200, description = "This document", body = Object),
    (status = 401, description = "No admin session", body = ErrorBody)))]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> OpenApiJson {
    doc
}

#[utoipa::path(get, path = "/admin/status", security(()), responses(
    (status = 200, description = "Whether first-run setup is done", body = PasswordStatus)))]
async fn status(State(gw): State<Gateway>) -> Result<Json<PasswordStatus>, ApiError> {
    Ok(Json(PasswordStatus {
        password_set: gw.admin_password_set()?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetupBody {
    password: String,
    /// The one-time code `agentgate serve` printed in its log.
    setup_code: String,
}

/// First-run setup: sets the admin password, once, with the one-time code
/// the server printed in its log.
#[utoipa::path(post, path = "/admin/setup", security(()), request_body = SetupBody, responses(
    (status = 200, description = "The password is set", body = Done),
    (status = 400, description = "Too short, or not a JSON body", body = ErrorBody),
    (status = 401, description = "Wrong setup code", body = ErrorBody),
    (status = 403, description = "Setup is closed (no code was issued) or from another site", body = ErrorBody),
    (status = 409, description = "A password is set already", body = ErrorBody),
    (status = 429, description = "Too many failed attempts", body = ErrorBody)))]
async fn setup(State(gw): State<Gateway>, req: Request) -> Result<Json<Done>, ApiError> {
    let ip = client_ip(req.extensions().get::<ConnectInfo<SocketAddr>>());
    refuse_foreign_origin(req.headers())?;
    let JsonBody(body) = JsonBody::<SetupBody>::from_request_with(req, &gw).await?;
    gw.setup_admin_password(ip, &body.setup_code, &Secret::new(body.password))
        .await?;
    Ok(Json(Done::saying(
        "admin password set; log in with POST /admin/login",
    )))
}

/// Signs in: the session token comes back in the body and as the
/// `agentgate_session` cookie (HttpOnly, SameSite=Strict).
#[utoipa::path(post, path = "/admin/login", security(()), request_body = PasswordBody, responses(
    (status = 200, description = "Signed in", body = NewSession,
        headers(("set-cookie" = String, description = "agentgate_session=agt_…; HttpOnly; SameSite=Strict"))),
    (status = 400, description = "Not a JSON body", body = ErrorBody),
    (status = 401, description = "Wrong password", body = ErrorBody),
    (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody)))]
async fn login(State(gw): State<Gateway>, req: Request) -> Result<Response, ApiError> {
    let ip = client_ip(req.extensions().get::<ConnectInfo<SocketAddr>>());
    refuse_foreign_origin(req.headers())?;
    let JsonBody(body) = JsonBody::<PasswordBody>::from_request_with(req, &gw).await?;
    let token = gw.login(ip, Secret::new(body.password)).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        token.expose(),
        SESSION_LIFETIME.whole_seconds()
    );
    let body = Json(NewSession {
        token: token.expose().to_string(),
        expires_in: SESSION_LIFETIME.whole_seconds(),
    });
    Ok(([(http::header::SET_COOKIE, cookie)], body).into_response())
}

impl<T: serde::de::DeserializeOwned> JsonBody<T> {
    async fn from_request_with(req: Request, gw: &Gateway) -> Result<Self, ApiError> {
        <Self as axum::extract::FromRequest<Gateway>>::from_request(req, gw).await
    }
}

/// Ends the session the request carries, and clears the cookie.
#[utoipa::path(post, path = "/admin/logout", responses(
    (status = 200, description = "Signed out", body = Done),
    (status = 401, description = "No admin session", body = ErrorBody)))]
async fn logout(State(gw): State<Gateway>, session: AdminSession) -> Result<Response, ApiError> {
    gw.logout(session.token())?;
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(http::header::SET_COOKIE, cookie)], Json(Done::OK)).into_response())
}
