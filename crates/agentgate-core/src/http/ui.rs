//! The admin UI at `/ui` on the admin listener: server-rendered pages from
//! compile-checked templates (`ui/templates`), with no script at all so far.
//!
//! Sign-in is the admin session cookie (HttpOnly, SameSite=Strict). Every form
//! that changes something carries a CSRF token derived from the session (so
//! nothing more is stored), and a request whose `Origin` is another site is
//! refused. Everything an agent wrote (comments, bodies) is escaped by the
//! templates, and the CSP forbids scripts and framing outright.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequest, Request, State};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::admin::{SESSION_COOKIE, session_cookie};
use super::extract::Params;
use crate::admin::SESSION_LIFETIME;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::queue::{Entry, Status};
use crate::secret::Secret;
use crate::services;
use crate::store::EntryFilter;

/// How the UI names itself in `reviewed_by` (and so in the audit log).
const REVIEWER: &str = "web-admin";

pub fn routes() -> Router<Gateway> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/queue") }))
        .route("/ui/static/app.css", get(css))
        .route("/ui/setup", get(setup_page).post(setup_submit))
        .route("/ui/login", get(login_page).post(login_submit))
        .route("/ui/logout", post(logout))
        .route("/ui/queue", get(queue_page))
        .route("/ui/history", get(history_page))
        .route("/ui/queue/{id}/approve", post(approve))
        .route("/ui/queue/{id}/reject", post(reject))
        .layer(middleware::from_fn(security_headers))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

async fn css() -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../../ui/static/app.css"),
    )
        .into_response()
}

/// The signed-in admin's session token, or where to send the browser instead.
fn session(gw: &Gateway, headers: &HeaderMap) -> Result<String, Box<Response>> {
    if let Some(token) = session_cookie(headers)
        && gw.admin_session_valid(&token).unwrap_or(false)
    {
        return Ok(token);
    }
    let to = if gw.admin_password_set().unwrap_or(true) {
        "/ui/login"
    } else {
        "/ui/setup"
    };
    Err(Box::new(Redirect::to(to).into_response()))
}

/// The CSRF token of a session: a digest of it, so nothing more is stored and
/// it dies with the session.
fn csrf_for(session: &str) -> String {
    hex::encode(Sha256::digest(format!("agentgate-csrf:{session}")))
}

/// The session of a signed-in admin posting a genuine form: redirects to
/// sign-in without a session, refuses a missing CSRF token or another site.
fn signed_in_form(gw: &Gateway, headers: &HeaderMap, csrf: &str) -> Result<String, Box<Response>> {
    let token = session(gw, headers)?;
    check_form(headers, &token, csrf)?;
    Ok(token)
}

/// Refuses a form post that lacks the session's CSRF token or comes from
/// another site.
fn check_form(headers: &HeaderMap, session: &str, csrf: &str) -> Result<(), Box<Response>> {
    if let (Some(origin), Some(host)) = (
        headers
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
        headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok()),
    ) {
        let origin_host = origin.split("://").nth(1).unwrap_or("");
        if origin_host != host {
            return Err(Box::new(forbidden("This form came from another site.")));
        }
    }
    if !crate::keys::digests_equal(csrf.as_bytes(), csrf_for(session).as_bytes()) {
        return Err(Box::new(forbidden(
            "This form has expired. Go back, reload the page and try again.",
        )));
    }
    Ok(())
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(format!(
            "<!doctype html><title>agentgate</title><p>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(t: impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

fn set_cookie_value(token: &Secret) -> String {
    format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        token.expose(),
        SESSION_LIFETIME.whole_seconds()
    )
}

// ----- sign-in -----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    setup: bool,
    error: Option<String>,
}

/// The sign-in (or first-run setup) form, with an error to show if any.
fn login_form(setup: bool, error: Option<String>, status: StatusCode) -> Response {
    render(LoginPage { setup, error }, status)
}

#[derive(Deserialize)]
struct PasswordForm {
    password: String,
    password2: Option<String>,
}

async fn setup_page(State(gw): State<Gateway>) -> Response {
    if gw.admin_password_set().unwrap_or(true) {
        return Redirect::to("/ui/login").into_response();
    }
    login_form(true, None, StatusCode::OK)
}

async fn setup_submit(State(gw): State<Gateway>, req: Request) -> Response {
    let ip = client_ip(&req);
    let Form(form) = match Form::<PasswordForm>::from_request(req, &gw).await {
        Ok(f) => f,
        Err(_) => {
            return login_form(
                true,
                Some("Fill in both fields.".to_string()),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    if form.password2.as_deref() != Some(form.password.as_str()) {
        return login_form(
            true,
            Some("The two passwords differ.".to_string()),
            StatusCode::BAD_REQUEST,
        );
    }
    let password = Secret::new(form.password);
    if let Err(e) = gw.setup_admin_password(&password) {
        return match e {
            Error::Conflict(_) => Redirect::to("/ui/login").into_response(),
            other => login_form(true, Some(other.to_string()), StatusCode::BAD_REQUEST),
        };
    }
    signed_in(&gw, ip, password).await
}

async fn login_page(State(gw): State<Gateway>) -> Response {
    if !gw.admin_password_set().unwrap_or(true) {
        return Redirect::to("/ui/setup").into_response();
    }
    login_form(false, None, StatusCode::OK)
}

async fn login_submit(State(gw): State<Gateway>, req: Request) -> Response {
    let ip = client_ip(&req);
    match Form::<PasswordForm>::from_request(req, &gw).await {
        Ok(Form(form)) => signed_in(&gw, ip, Secret::new(form.password)).await,
        Err(_) => login_form(
            false,
            Some("Enter the password.".to_string()),
            StatusCode::BAD_REQUEST,
        ),
    }
}

async fn signed_in(gw: &Gateway, ip: IpAddr, password: Secret) -> Response {
    match gw.login(ip, password).await {
        Ok(token) => {
            let mut resp = Redirect::to("/ui/queue").into_response();
            if let Ok(v) = HeaderValue::from_str(&set_cookie_value(&token)) {
                resp.headers_mut().insert(http::header::SET_COOKIE, v);
            }
            resp
        }
        Err(e @ Error::Throttled { .. }) => {
            login_form(false, Some(e.to_string()), StatusCode::TOO_MANY_REQUESTS)
        }
        Err(_) => login_form(
            false,
            Some("Wrong password.".to_string()),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    reason: Option<String>,
}

async fn logout(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let token = match signed_in_form(&gw, &headers, &form.csrf) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let _ = gw.logout(&token);
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().insert(
        http::header::SET_COOKIE,
        HeaderValue::from_static(
            "agentgate_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    resp
}

fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip())
}

// ----- the queue -----

struct RequestView {
    method: String,
    url: String,
    summary: String,
    body: Option<String>,
    destructive: bool,
}

struct EntryView {
    id: String,
    headline: String,
    agent: String,
    target: String,
    comment: String,
    submitted_at: String,
    status: String,
    reason: Option<String>,
    requests: Vec<RequestView>,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    csrf: String,
    paused: bool,
    pending: Vec<EntryView>,
    recent: Vec<EntryView>,
}

fn view(gw: &Gateway, e: &Entry) -> EntryView {
    let def = services::find(&e.service);
    let base = gw
        .account_info(&e.service, &e.account_name)
        .map(|a| a.base_url)
        .unwrap_or_default();
    let requests: Vec<RequestView> = e
        .requests
        .iter()
        .map(|r| RequestView {
            method: r.method.clone(),
            url: format!("{base}{}", r.path),
            summary: def.map_or_else(|| format!("{} {}", r.method, r.path), |d| d.describe(r)),
            body: r.body.as_ref().map(|b| match b {
                serde_json::Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            }),
            destructive: r.method == "DELETE",
        })
        .collect();
    let headline = match requests.as_slice() {
        [only] => only.summary.clone(),
        [first, rest @ ..] => format!("{} (+{} more)", first.summary, rest.len()),
        [] => "(empty batch)".into(),
    };
    EntryView {
        id: e.id.clone(),
        headline,
        agent: e.agent_name.clone(),
        target: format!("{}/{}", e.service, e.account_name),
        comment: e.comment.clone(),
        submitted_at: e.submitted_at.clone(),
        status: e.status.to_string(),
        reason: e.rejection_reason.clone(),
        requests,
    }
}

async fn queue_page(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let token = match session(&gw, &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let pending = gw.entries(&EntryFilter {
        status: Some(Status::Pending),
        limit: Some(500),
        ..Default::default()
    });
    let recent = gw.entries(&EntryFilter {
        limit: Some(40),
        ..Default::default()
    });
    let (Ok(mut pending), Ok(recent)) = (pending, recent) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the queue could not be read",
        )
            .into_response();
    };
    // Oldest first: the longest-waiting agent is answered first.
    pending.reverse();
    let page = QueuePage {
        csrf: csrf_for(&token),
        paused: gw.is_paused().unwrap_or(false),
        pending: pending.iter().map(|e| view(&gw, e)).collect(),
        recent: recent
            .iter()
            .filter(|e| e.status != Status::Pending)
            .take(10)
            .map(|e| view(&gw, e))
            .collect(),
    };
    render(page, StatusCode::OK)
}

async fn approve(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(id): Params<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed_in_form(&gw, &headers, &form.csrf) {
        return *r;
    }
    match gw.approve(&id, REVIEWER) {
        Ok(entry) => gw.spawn_execute(entry.id),
        // Decided elsewhere in the meantime: the queue page shows how.
        Err(Error::AlreadyDecided { .. }) => {}
        Err(e) => {
            return (
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST),
                Html(escape(&e.to_string())),
            )
                .into_response();
        }
    }
    Redirect::to("/ui/queue").into_response()
}

async fn reject(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Params(id): Params<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed_in_form(&gw, &headers, &form.csrf) {
        return *r;
    }
    match gw.reject(&id, REVIEWER, form.reason) {
        Ok(_) | Err(Error::AlreadyDecided { .. }) => Redirect::to("/ui/queue").into_response(),
        Err(e) => (
            StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST),
            Html(escape(&e.to_string())),
        )
            .into_response(),
    }
}

// ----- history -----

struct ResultView {
    ok: bool,
    text: String,
}

struct HistoryEntry {
    id: String,
    status: String,
    headline: String,
    agent: String,
    target: String,
    comment: String,
    submitted_at: String,
    reviewed_at: Option<String>,
    reviewed_by: Option<String>,
    completed_at: Option<String>,
    reason: Option<String>,
    results: Vec<ResultView>,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    statuses: Vec<&'static str>,
    filter_status: &'static str,
    filter_agent: String,
    filter_service: String,
    entries: Vec<HistoryEntry>,
}

#[derive(Deserialize)]
struct HistoryQuery {
    status: Option<String>,
    agent: Option<String>,
    service: Option<String>,
}

async fn history_page(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    super::extract::QueryParams(q): super::extract::QueryParams<HistoryQuery>,
) -> Response {
    if let Err(r) = session(&gw, &headers) {
        return *r;
    }
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
        Err(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the history could not be read",
            )
                .into_response();
        }
    };
    let page = HistoryPage {
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        filter_status: status.map_or("", |s| s.as_str()),
        filter_agent: agent.unwrap_or_default(),
        filter_service: service.unwrap_or_default(),
        entries: entries
            .iter()
            .map(|e| {
                let v = view(&gw, e);
                HistoryEntry {
                    id: v.id,
                    status: v.status,
                    headline: v.headline,
                    agent: v.agent,
                    target: v.target,
                    comment: v.comment,
                    submitted_at: v.submitted_at,
                    reviewed_at: e.reviewed_at.clone(),
                    reviewed_by: e.reviewed_by.clone(),
                    completed_at: e.completed_at.clone(),
                    reason: v.reason,
                    results: e
                        .results
                        .iter()
                        .map(|r| ResultView {
                            ok: r.ok,
                            text: match (&r.status, &r.error) {
                                (_, Some(err)) => format!("Request {}: {err}", r.index + 1),
                                (Some(s), None) => format!("Request {}: HTTP {s}", r.index + 1),
                                (None, None) => format!("Request {}", r.index + 1),
                            },
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    render(page, StatusCode::OK)
}
