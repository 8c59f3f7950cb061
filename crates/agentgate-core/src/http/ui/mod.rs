//! The admin UI at `/ui` on the admin listener: server-rendered pages from
//! compile-checked templates (`ui/templates`), with one small script
//! (`ui/static/app.js`) that adds live updates, copy buttons and busy states.
//! Every page and action works without it.
//!
//! Sign-in is the admin session cookie (HttpOnly, SameSite=Strict). Every form
//! that changes something is a [`super::session::SignedForm`]: it carries a
//! CSRF token derived from the session (so nothing more is stored), and a post
//! whose `Origin` is another site is refused. Everything an agent wrote (comments, bodies) is escaped by the
//! templates, and the CSP allows only this origin's own script and style, with
//! no framing.

mod accounts;
mod agents;
mod audit;
mod auth;
mod events;
mod grants;
mod history;
mod notifications;
mod policy;
mod queue;
mod settings;

use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::extract::State;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use http::{HeaderValue, StatusCode};
use serde::Deserialize;

use super::session::AdminSession;
use crate::error::Error;
use crate::gateway::Gateway;

/// How the UI names itself in `reviewed_by` (and so in the audit log).
const REVIEWER: &str = "web-admin";

pub fn routes() -> Router<Gateway> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/queue") }))
        .route("/ui/static/app.css", get(css))
        .route("/ui/static/app.js", get(js))
        .route("/ui/icons/{file}", get(icon))
        .route("/ui/setup", get(auth::setup_page).post(auth::setup_submit))
        .route("/ui/login", get(auth::login_page).post(auth::login_submit))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/launch", get(auth::launch))
        .route("/ui/events", get(events::stream))
        .route("/ui/queue", get(queue::page))
        .route("/ui/queue/pending", get(queue::fragment))
        .route("/ui/queue/{id}/approve", post(queue::approve))
        .route("/ui/queue/{id}/edit", post(queue::edit))
        .route("/ui/queue/{id}/reject", post(queue::reject))
        .route("/ui/history", get(history::page))
        .route("/ui/audit", get(audit::page))
        .route("/ui/audit/export", get(audit::export))
        .route("/ui/accounts", page(accounts::accounts_page))
        .route(
            "/ui/accounts/add/{service}",
            get(accounts::add_page).post(accounts::add_submit),
        )
        .route(
            "/ui/accounts/connect/{service}",
            post(accounts::connect_submit),
        )
        .route(
            "/ui/accounts/oauth-client/{provider}",
            post(accounts::oauth_client_submit),
        )
        .route("/ui/accounts/{service}/{name}", get(policy::policy_page))
        .route(
            "/ui/accounts/{service}/{name}/access",
            post(policy::access_submit),
        )
        .route(
            "/ui/accounts/{service}/{name}/rules",
            post(policy::rules_submit),
        )
        .route(
            "/ui/accounts/{service}/{name}/test",
            post(accounts::test_submit),
        )
        .route(
            "/ui/accounts/{service}/{name}/remove",
            post(accounts::remove_submit),
        )
        .route(
            "/ui/agents",
            page(agents::agents_page).post(agents::create_submit),
        )
        .route("/ui/agents/{name}/rename", post(agents::rename_submit))
        .route("/ui/agents/{name}/enabled", post(agents::enabled_submit))
        .route("/ui/agents/{name}/options", post(agents::options_submit))
        .route("/ui/agents/{name}/revoke", post(agents::revoke_submit))
        .route("/ui/agents/{name}/webhook", post(agents::webhook_submit))
        .route(
            "/ui/agents/{name}/webhook/test",
            post(agents::webhook_test_submit),
        )
        .route(
            "/ui/grants",
            page(grants::grants_page).post(grants::add_submit),
        )
        .route("/ui/grants/{id}/revoke", post(grants::revoke_submit))
        .route("/ui/notifications", page(notifications::notifications_page))
        .route(
            "/ui/notifications/{id}/retry",
            post(notifications::retry_submit),
        )
        .route(
            "/ui/notifications/retry-all/{agent}",
            post(notifications::retry_all_submit),
        )
        .route(
            "/ui/settings",
            page(settings::settings_page).post(settings::save_submit),
        )
        .route("/ui/settings/pause", post(settings::pause_submit))
        .route("/ui/settings/password", post(settings::password_submit))
        .layer(middleware::from_fn(security_headers))
}

/// Renders a page for the signed-in admin, with a notice to show and the
/// status to answer with.
type PageFn = fn(&Gateway, &AdminSession, Option<Notice>, StatusCode) -> Response;

/// The GET route of a page that needs only a session and shows the notice of
/// the action (`?done=`) that led to it.
fn page(show: PageFn) -> MethodRouter<Gateway> {
    get(
        move |State(gw): State<Gateway>,
              session: AdminSession,
              super::extract::QueryParams(q): super::extract::QueryParams<DoneQuery>| async move {
            show(
                &gw,
                &session,
                done_notice(q.done.as_deref()),
                StatusCode::OK,
            )
        },
    )
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
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
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send
    // `Origin: null` on the UI's own form posts, which the origin check refuses.
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(http::header::CACHE_CONTROL) {
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    resp
}

/// Static assets change only with the binary, so browsers may keep them a while.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (http::header::CONTENT_TYPE, content_type),
            (http::header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../../../../ui/static/app.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../../../ui/static/app.js"),
    )
}

/// The service icons drawn for this project, kept in `icons/services`.
const ICONS: &[(&str, &str)] = &[
    (
        "github.svg",
        include_str!("../../../../../icons/services/github.svg"),
    ),
    (
        "bluesky.svg",
        include_str!("../../../../../icons/services/bluesky.svg"),
    ),
    (
        "mastodon.svg",
        include_str!("../../../../../icons/services/mastodon.svg"),
    ),
    (
        "reddit.svg",
        include_str!("../../../../../icons/services/reddit.svg"),
    ),
    (
        "calendar.svg",
        include_str!("../../../../../icons/services/calendar.svg"),
    ),
    (
        "youtube.svg",
        include_str!("../../../../../icons/services/youtube.svg"),
    ),
    (
        "linkedin.svg",
        include_str!("../../../../../icons/services/linkedin.svg"),
    ),
    (
        "jira.svg",
        include_str!("../../../../../icons/services/jira.svg"),
    ),
    (
        "fitbit.svg",
        include_str!("../../../../../icons/services/fitbit.svg"),
    ),
    (
        "agentgate.svg",
        include_str!("../../../../../icons/agentgate.svg"),
    ),
];

async fn icon(super::extract::Params(file): super::extract::Params<String>) -> Response {
    match ICONS.iter().find(|(name, _)| *name == file) {
        Some((_, svg)) => asset("image/svg+xml", svg),
        None => (StatusCode::NOT_FOUND, "no such icon").into_response(),
    }
}

use super::oauth::escape;

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

/// The HTTP status a failed action's page is shown with.
fn error_status(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// A page that could not be built: says so, and what to try.
fn unavailable(what: &str, e: &Error) -> Response {
    tracing::error!(error = %e, "{what} could not be read");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(format!(
            "<!doctype html><title>agentgate</title><p>{} could not be read: {}. The gateway's log has the details; reload to try again.</p>",
            escape(what),
            escape(&e.to_string())
        )),
    )
        .into_response()
}

/// A message shown at the top of a page after an action.
pub(super) struct Notice {
    pub ok: bool,
    pub text: String,
}

impl Notice {
    fn ok(text: impl Into<String>) -> Option<Notice> {
        Some(Notice {
            ok: true,
            text: text.into(),
        })
    }

    fn error(text: impl Into<String>) -> Option<Notice> {
        Some(Notice {
            ok: false,
            text: text.into(),
        })
    }
}

/// What every signed-in page shows around its content: the navigation (with
/// the number waiting), the pause banner and the latest notice.
pub(super) struct Chrome {
    pub csrf: String,
    /// The desktop window's own session: it has no Sign out (the app signed
    /// it in, and a signed-out window would only ask for a password).
    pub window: bool,
    pub current: &'static str,
    pub pending: usize,
    pub paused: bool,
    pub notice: Option<Notice>,
}

impl Chrome {
    fn new(
        gw: &Gateway,
        session: &AdminSession,
        current: &'static str,
        notice: Option<Notice>,
    ) -> Chrome {
        Chrome {
            csrf: session.csrf(),
            window: gw.is_window_session(session.token()),
            current,
            pending: gw.pending_count().unwrap_or(0),
            paused: gw.is_paused().unwrap_or(false),
            notice,
        }
    }
}

/// `?done=` codes of the actions that redirect back to a page, so that the
/// notice is a fixed sentence and never text from the address bar.
#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

pub(super) fn done_notice(code: Option<&str>) -> Option<Notice> {
    let text = match code? {
        "account-added" => "The account was saved and tested: it shows who it signs in as.",
        "account-removed" => "The account was removed and its credentials deleted.",
        "account-tested" => "The account was tested; the result is shown on it.",
        "oauth-client" => "The OAuth client was saved. You can connect accounts now.",
        "renamed" => "The agent was renamed.",
        "updated" => "The agent was updated.",
        "revoked" => "The agent's key was revoked. It can no longer call agentgate.",
        "webhook" => "The webhook was saved.",
        "webhook-tested" => "The test message was delivered.",
        "retried" => "The notification was sent again.",
        "retried-all" => "The missed notifications were sent as one message.",
        "settings" => "The settings were saved.",
        "password" => "The admin password was changed; other sessions were signed out.",
        "paused" => "Agents are paused.",
        "access" => "Who may use the account was saved; it holds from the next request.",
        "rules" => "The rules were saved; they hold from the next request.",
        "granted" => {
            "Approved. Writes like it run without asking until the grant ends (see Grants)."
        }
        "grant-refused" => {
            "Approved, but no grant was made: a grant names the request's exact path, so a path holding '*' or '?' cannot have one, and at most 100 grants run at once."
        }
        "grant-added" => "The grant is running.",
        "grant-revoked" => "The grant was revoked: the agent's next write waits for you again.",
        "resumed" => "Agents may call agentgate again.",
        _ => return None,
    };
    Notice::ok(text)
}

/// Sends the browser back to `to` with a fixed notice.
fn done(to: &str, code: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={code}")).into_response()
}
