//! The agent API (its contract is `docs/agent-api.md`): reads proxied at once,
//! writes queued for a human, and discovery documents.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, RawPathParams, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs;
use super::error::{ApiError, method_not_allowed, not_found};
use super::extract::{JsonBody, OptionalJsonBody, Params, QueryParams, read_body};
use super::openapi::{OpenApiJson, SubmitBody};
use super::trace::{LogFields, trace_requests};
use crate::agent::Agent;
use crate::answers::{AgentEntry, AgentEntryList, ErrorBody, Health, Queued};
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::queue::{Entry, Submission};

/// The routes whose handlers describe themselves (`#[utoipa::path]`): the
/// router and the OpenAPI document are collected from the same calls.
fn documented() -> OpenApiRouter<Gateway> {
    OpenApiRouter::with_openapi(super::openapi::agent_api_base())
        .routes(routes!(readme))
        .routes(routes!(agent_start_here))
        .routes(routes!(openapi_json))
        .routes(routes!(services))
        .routes(routes!(skill))
        .routes(routes!(category_skill))
        .routes(routes!(list_all))
        .routes(routes!(submit))
        .routes(routes!(list_account))
        .routes(routes!(status, withdraw))
}

/// Routes axum must register itself (any method, a wildcard, a nested
/// service), described here instead; a test checks the document names every
/// route the router has.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health, account_root, proxy, mcp_doc))]
struct HandRouted;

/// The agent API's OpenAPI document, as `/api/openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    with_hand_routed(documented().into_openapi())
}

fn with_hand_routed(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    doc.merge(HandRouted::openapi());
    doc
}

pub fn agent_router(gw: Gateway) -> Router {
    let (documented, doc) = documented().split_for_parts();
    let doc = OpenApiJson::new(&with_hand_routed(doc));
    let api = documented
        .route("/api/{service}/{account}", any(account_root))
        .route("/api/{service}/{account}/{*path}", any(proxy))
        .route_layer(middleware::from_fn_with_state(gw.clone(), require_agent))
        .layer(Extension(doc));
    // MCP behind the same agent-key middleware; the agent it finds travels in
    // the request's extensions to each tool call.
    let mcp = Router::new()
        .nest_service("/mcp", super::mcp::service(gw.clone()))
        .layer(middleware::from_fn_with_state(gw.clone(), require_agent));
    Router::new()
        .route("/health", get(health))
        .merge(mcp)
        .route("/oauth/callback/{service}", get(super::oauth::callback))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(DEFAULT_MAX_BODY_BYTES))
        .layer(middleware::from_fn(trace_requests))
        .with_state(gw)
}

#[utoipa::path(get, path = "/health", security(()), responses((status = 200, description = "The gateway is up", body = Health)))]
pub(super) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Resolves the bearer key to an agent before any handler runs, and tells the
/// request's log line which agent, service and account it was for.
async fn require_agent(State(gw): State<Gateway>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    match gw.authenticate(header) {
        Ok(agent) => {
            let (mut parts, body) = req.into_parts();
            let (service, account) = account_params(&mut parts).await;
            let fields = LogFields {
                agent: Some(agent.name.clone()),
                service,
                account,
            };
            // A request with a body holds one of the agent's few body slots
            // while it is read and handled, so that one agent's slow uploads
            // cannot fill the gateway's memory.
            let has_body = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0")
                || parts.headers.contains_key(http::header::TRANSFER_ENCODING);
            let _slot = if has_body {
                match gw.body_slot(&agent) {
                    Ok(slot) => Some(slot),
                    Err(e) => return ApiError(e).into_response(),
                }
            } else {
                None
            };
            parts.extensions.insert(agent);
            let mut resp = next.run(Request::from_parts(parts, body)).await;
            resp.extensions_mut().insert(fields);
            resp
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// The service and account a route names, as the agent wrote them (decoded).
/// Routes without them (MCP, discovery) have neither.
async fn account_params(parts: &mut http::request::Parts) -> (Option<String>, Option<String>) {
    let Ok(params) = RawPathParams::from_request_parts(parts, &()).await else {
        return (None, None);
    };
    let (mut service, mut account) = (None, None);
    for (name, value) in &params {
        match name {
            "service" => service = Some(value.to_string()),
            "account" => account = Some(value.to_string()),
            _ => {}
        }
    }
    (service, account)
}

#[utoipa::path(get, path = "/api/readme", responses(
    (status = 200, description = "What this agent may use and how: services, accounts, the queue protocol, webhooks, limits", body = Object),
    (status = 401, description = "Missing or unknown key", body = ErrorBody)))]
async fn readme(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(docs::readme(&gw, &agent)?))
}

/// The same document as `/api/readme`, under the name agents look for first.
#[utoipa::path(get, path = "/api/agent_start_here", responses(
    (status = 200, description = "Same as /api/readme", body = Object),
    (status = 401, description = "Missing or unknown key", body = ErrorBody)))]
async fn agent_start_here(
    state: State<Gateway>,
    agent: Extension<Arc<Agent>>,
) -> Result<Json<Value>, ApiError> {
    readme(state, agent).await
}

#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "This document", body = Object)))]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> OpenApiJson {
    doc
}

/// Documents the MCP endpoint, which is a nested service with no handler of its own.
#[utoipa::path(post, path = "/mcp", responses((status = 200, description = "Model Context Protocol over Streamable HTTP (JSON-RPC); tools whoami, read, submit, status, withdraw, list")))]
#[allow(dead_code)]
fn mcp_doc() {}

#[utoipa::path(get, path = "/api/services", responses(
    (status = 200, description = "The accounts this agent may use", body = Object),
    (status = 401, description = "Missing or unknown key", body = ErrorBody)))]
async fn services(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(docs::services(&gw, &agent)?))
}

#[utoipa::path(get, path = "/api/skill", responses((status = 200, description = "SKILL.md for this agent", content_type = "text/markdown")))]
async fn skill(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
) -> Result<Response, ApiError> {
    let text = docs::skill(&gw, &agent)?;
    Ok((
        [(http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        text,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/skill/{category}", params(("category" = String, Path, description = "code, social or personal")), responses((status = 200, description = "SKILL.md for the agent's accounts of that kind", content_type = "text/markdown"), (status = 404, description = "No such category, or no account of it", body = ErrorBody)))]
async fn category_skill(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    Params(category): Params<String>,
) -> Result<Response, ApiError> {
    match docs::category_skill(&gw, &agent, &category)? {
        Some(text) => Ok(([(http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")], text).into_response()),
        None => Err(Error::not_found(format!(
            "no {category:?} skill: categories are code, social and personal, and only those with accounts you may use exist"
        ))
        .into()),
    }
}

#[utoipa::path(get, path = "/api/{service}/{account}", params(("service" = String, Path), ("account" = String, Path)), responses((status = 200, description = "The account, with example reads and write guidelines", body = Object), (status = 403, description = "Access denied", body = ErrorBody), (status = 404, description = "No such service or account", body = ErrorBody)))]
async fn account_root(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    method: Method,
    Params((service, account)): Params<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(Error::invalid(
            "name an upstream path after the account: /api/{service}/{account}/{path}",
        )
        .into());
    }
    Ok(Json(docs::account(&gw, &agent, &service, &account)?))
}

/// `/api/{service}/{account}/{path}`: a GET is a read; a write method queues the
/// request as a one-request batch and answers 202.
#[utoipa::path(method(get, post, put, patch, delete), path = "/api/{service}/{account}/{path}",
    params(("service" = String, Path), ("account" = String, Path), ("path" = String, Path, description = "The upstream path, relative to the service's API base"),
           ("X-Agentgate-Comment" = Option<String>, Header, description = "Required for writes: why"),
           ("X-Agentgate-Raw" = Option<bool>, Header, description = "The service's own JSON instead of the compact form")),
    responses(
        (status = 200, description = "GET: the service's own status, headers and body"),
        (status = 202, description = "Any other method: queued as a one-request batch", body = Queued),
        (status = 400, description = "Invalid path or missing comment", body = ErrorBody),
        (status = 403, description = "Blocked for privacy, denied by policy, or access denied", body = ErrorBody),
        (status = 429, description = "Rate limit; see Retry-After", body = ErrorBody),
        (status = 503, description = "Paused by the owner", body = ErrorBody),
        (status = 504, description = "The service did not answer in time", body = ErrorBody)))]
async fn proxy(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    Params((service, account, _)): Params<(String, String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    // The raw (still percent-encoded) path is what gets checked and forwarded;
    // axum's decoded wildcard would hide encoded slashes and dots.
    let raw_path = raw_upstream_path(req.uri().path());
    let query = req.uri().query().map(str::to_string);
    match req.method().clone() {
        Method::GET | Method::HEAD => {
            let raw = req
                .headers()
                .get("x-agentgate-raw")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
            let resp = gw
                .read(
                    &agent,
                    crate::gateway::AgentRead {
                        service: &service,
                        account: &account,
                        path: &raw_path,
                        query: query.as_deref(),
                        headers: req.headers(),
                        raw,
                    },
                )
                .await?;
            let mut out = Response::new(Body::from(resp.body));
            *out.status_mut() = resp.status;
            *out.headers_mut() = resp.headers;
            Ok(out)
        }
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            let method = req.method().to_string();
            let headers = req.headers().clone();
            let body = read_body(req, &()).await?;
            let entry = queue_direct_write(&gw, &agent, &service, &account, method, raw_path, query, &headers, body)?;
            Ok((StatusCode::ACCEPTED, Json(Queued::new(&gw.base_url(), &entry))).into_response())
        }
        other => Err(Error::invalid(format!(
            "{other} is not supported; use GET to read, or POST, PUT, PATCH or DELETE to queue a write"
        ))
        .into()),
    }
}

/// Everything after `/api/{service}/{account}`, with its leading slash.
fn raw_upstream_path(full: &str) -> String {
    let mut rest = full;
    for _ in 0..3 {
        rest = rest.strip_prefix('/').unwrap_or(rest);
        rest = rest.find('/').map_or("", |i| &rest[i..]);
    }
    if rest.is_empty() {
        "/".into()
    } else {
        rest.into()
    }
}

#[allow(clippy::too_many_arguments)]
fn queue_direct_write(
    gw: &Gateway,
    agent: &Agent,
    service: &str,
    account: &str,
    method: String,
    path: String,
    query: Option<String>,
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> Result<Entry, ApiError> {
    let comment = match headers.get("x-agentgate-comment") {
        // Header values are bytes; agents commonly send UTF-8 there.
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map_err(|_| Error::invalid("the X-Agentgate-Comment header must be UTF-8 text"))?
            .to_string(),
        None => {
            return Err(Error::invalid(
                "writes are queued for a human: send an X-Agentgate-Comment header saying why, \
                 or use POST /api/queue/{service}/{account}/submit",
            )
            .into());
        }
    };
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // A body that parses as JSON is sent as JSON whatever the agent's client
    // labelled it (curl -d says form-urlencoded); anything else goes as text with
    // the agent's own content type.
    let (body_value, keep_content_type) = if body.is_empty() {
        (Value::Null, false)
    } else {
        let text = std::str::from_utf8(&body)
            .map_err(|_| Error::invalid("the request body is not valid UTF-8"))?;
        match serde_json::from_str::<Value>(text) {
            Ok(v) => (v, content_type.is_some_and(|c| c.contains("json"))),
            Err(_) => (Value::String(text.to_string()), true),
        }
    };
    let path = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut request = json!({"method": method, "path": path, "body": body_value});
    // The headers a write may carry go with it (and a method override is
    // refused), as in a submission.
    let mut carried = serde_json::Map::new();
    for (name, value) in crate::headers::carried_by_direct_write(headers) {
        if carried.contains_key(&name) {
            return Err(Error::invalid(format!("the header {name:?} is given twice")).into());
        }
        carried.insert(name, Value::String(value));
    }
    if let Some(ct) = content_type.filter(|_| keep_content_type) {
        carried.insert("content-type".into(), Value::String(ct.to_string()));
    }
    if !carried.is_empty() {
        request["headers"] = Value::Object(carried);
    }
    let submission = Submission {
        requests: Some(Value::Array(vec![request])),
        comment: Some(Value::String(comment)),
    };
    Ok(gw.submit(agent, service, account, submission)?)
}

#[utoipa::path(post, path = "/api/queue/{service}/{account}/submit", params(("service" = String, Path), ("account" = String, Path)),
    request_body = SubmitBody,
    responses((status = 201, description = "Queued (or approved by policy)", body = Queued),
              (status = 400, description = "Invalid batch", body = ErrorBody),
              (status = 403, description = "Blocked, denied or access denied", body = ErrorBody),
              (status = 413, description = "Body over 1 MiB", body = ErrorBody)))]
async fn submit(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    Params((service, account)): Params<(String, String)>,
    JsonBody(sub): JsonBody<Submission>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let entry = gw.submit(&agent, &service, &account, sub)?;
    Ok((
        StatusCode::CREATED,
        Json(Queued::new(&gw.base_url(), &entry)),
    ))
}

#[derive(Deserialize)]
struct StatusQuery {
    /// Seconds to wait for the entry to be decided (capped at `MAX_WAIT_SECS`).
    wait: Option<u64>,
}

/// Longest `?wait=` a status request may hold the connection.
pub const MAX_WAIT_SECS: u64 = 60;
/// How often a waiting status request looks again.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(200);

#[utoipa::path(get, path = "/api/queue/{service}/{account}/status/{id}",
    params(("service" = String, Path), ("account" = String, Path), ("id" = String, Path),
           ("wait" = Option<u64>, Query, description = "Seconds to wait for a decision (at most 60)")),
    responses((status = 200, description = "The entry", body = AgentEntry), (status = 404, description = "No entry of yours", body = ErrorBody)))]
async fn status(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    Params((service, account, id)): Params<(String, String, String)>,
    QueryParams(q): QueryParams<StatusQuery>,
) -> Result<Json<AgentEntry>, ApiError> {
    let mut entry = gw.agent_entry(&agent, &service, &account, &id)?;
    // Polling the database (not an in-process signal) sees decisions made by
    // any process: the CLI approves without the server.
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    while matches!(
        entry.status,
        crate::queue::Status::Pending
            | crate::queue::Status::Approved
            | crate::queue::Status::Executing
    ) && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(WAIT_POLL).await;
        entry = gw.agent_entry(&agent, &service, &account, &id)?;
    }
    Ok(Json(AgentEntry::from(&entry)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct WithdrawBody {
    /// Why, for the record.
    reason: Option<String>,
}

#[utoipa::path(delete, path = "/api/queue/{service}/{account}/status/{id}",
    params(("service" = String, Path), ("account" = String, Path), ("id" = String, Path)),
    request_body(content = Option<WithdrawBody>, description = "Optional reason"),
    responses((status = 200, description = "Withdrawn", body = AgentEntry), (status = 409, description = "Already decided", body = ErrorBody)))]
async fn withdraw(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    Params((service, account, id)): Params<(String, String, String)>,
    OptionalJsonBody(body): OptionalJsonBody<WithdrawBody>,
) -> Result<Json<AgentEntry>, ApiError> {
    let entry = gw.withdraw(&agent, &service, &account, &id, body.and_then(|b| b.reason))?;
    Ok(Json(AgentEntry::from(&entry)))
}

/// A page of a list: `?limit=N` (default 50, at most 100) and `?before=ID`
/// (the `next` of the page before).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<usize>,
    before: Option<String>,
}

impl From<ListQuery> for crate::queue::Page {
    fn from(q: ListQuery) -> Self {
        crate::queue::Page {
            limit: q.limit,
            before: q.before,
        }
    }
}

#[utoipa::path(get, path = "/api/queue/list", params(ListQuery), responses((status = 200, description = "A page of your entries, newest first, as summaries", body = AgentEntryList)))]
async fn list_all(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<AgentEntryList>, ApiError> {
    let (entries, next) = gw.agent_entries(&agent, None, None, &q.into())?;
    Ok(Json(AgentEntryList::new(&entries, next)))
}

#[utoipa::path(get, path = "/api/queue/{service}/{account}/list", params(("service" = String, Path), ("account" = String, Path), ListQuery), responses((status = 200, description = "A page of your entries on this account, newest first, as summaries", body = AgentEntryList)))]
async fn list_account(
    State(gw): State<Gateway>,
    Extension(agent): Extension<Arc<Agent>>,
    Params((service, account)): Params<(String, String)>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<AgentEntryList>, ApiError> {
    let (entries, next) = gw.agent_entries(&agent, Some(&service), Some(&account), &q.into())?;
    Ok(Json(AgentEntryList::new(&entries, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_path_keeps_its_encoding() {
        assert_eq!(raw_upstream_path("/api/github/me/repos/o/r"), "/repos/o/r");
        assert_eq!(raw_upstream_path("/api/github/me/a%2fb/.."), "/a%2fb/..");
        assert_eq!(raw_upstream_path("/api/github/me/"), "/");
        assert_eq!(
            raw_upstream_path("/api/github/me//evil.com/x"),
            "//evil.com/x"
        );
    }
}
