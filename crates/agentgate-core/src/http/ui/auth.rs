//! First-run setup, sign-in and sign-out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::extract::{ConnectInfo, Form, FromRequest, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{error_status, render};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::http::extract::QueryParams;
use crate::http::session::SESSION_COOKIE;
use crate::http::session::SignedForm;
use crate::password::SESSION_LIFETIME;
use crate::secret::Secret;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    setup: bool,
    error: Option<String>,
    info: Option<&'static str>,
}

/// The sign-in (or first-run setup) form, with an error to show if any.
fn login_form(setup: bool, error: Option<String>, status: StatusCode) -> Response {
    render(
        LoginPage {
            setup,
            error,
            info: None,
        },
        status,
    )
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    password: String,
    password2: Option<String>,
    /// First-run setup only: the one-time code the server printed.
    setup_code: Option<String>,
}

pub(super) async fn setup_page(State(gw): State<Gateway>) -> Response {
    if gw.admin_password_set().unwrap_or(true) {
        return Redirect::to("/ui/login").into_response();
    }
    login_form(true, None, StatusCode::OK)
}

pub(super) async fn setup_submit(State(gw): State<Gateway>, req: Request) -> Response {
    if !crate::http::session::same_origin(req.headers()) {
        return crate::http::session::forbidden("This form came from another site.");
    }
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
    let code = form.setup_code.unwrap_or_default();
    if let Err(e) = gw.setup_admin_password(ip, &code, &password).await {
        return match e {
            Error::Conflict(_) => Redirect::to("/ui/login").into_response(),
            other => login_form(true, Some(other.to_string()), error_status(&other)),
        };
    }
    signed_in(&gw, ip, password).await
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    expired: Option<String>,
}

pub(super) async fn login_page(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<LoginQuery>,
) -> Response {
    if !gw.admin_password_set().unwrap_or(true) {
        return Redirect::to("/ui/setup").into_response();
    }
    render(
        LoginPage {
            setup: false,
            error: None,
            info: q
                .expired
                .map(|_| "Your session ended. Sign in again to carry on."),
        },
        StatusCode::OK,
    )
}

pub(super) async fn login_submit(State(gw): State<Gateway>, req: Request) -> Response {
    if !crate::http::session::same_origin(req.headers()) {
        return crate::http::session::forbidden("This form came from another site.");
    }
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

/// Sends the browser to `to` with the session cookie set.
fn with_session(token: &Secret, to: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        token.expose(),
        SESSION_LIFETIME.whole_seconds()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
pub(super) struct LaunchQuery {
    secret: Option<String>,
    /// The queue entry to show (a notification's Review button).
    entry: Option<String>,
    /// A page to show instead of the queue (the tray's "All grants…"): one
    /// of a fixed few, never an address.
    page: Option<String>,
}

/// The desktop window's way in: a single-use secret minted by the process
/// hosting the gateway, traded for a session. Any other browser still needs
/// the password.
pub(super) async fn launch(
    State(gw): State<Gateway>,
    QueryParams(q): QueryParams<LaunchQuery>,
) -> Response {
    let target = match q.entry.filter(|id| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
    }) {
        Some(id) => format!("/ui/queue#entry-{id}"),
        None => match q.page.as_deref() {
            Some(page @ ("grants" | "audit" | "accounts" | "agents" | "settings")) => {
                format!("/ui/{page}")
            }
            _ => "/ui/queue".to_string(),
        },
    };
    match q.secret.map(|s| gw.redeem_launch_secret(&s)) {
        Some(Ok(token)) => with_session(&token, &target),
        _ => render(
            LoginPage {
                setup: false,
                error: Some(
                    "This sign-in link is unknown, used or expired. Sign in with the password."
                        .into(),
                ),
                info: None,
            },
            StatusCode::UNAUTHORIZED,
        ),
    }
}

async fn signed_in(gw: &Gateway, ip: IpAddr, password: Secret) -> Response {
    match gw.login(ip, password).await {
        Ok(token) => with_session(&token, "/ui/queue"),
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

pub(super) async fn logout(
    State(gw): State<Gateway>,
    SignedForm { session, .. }: SignedForm<IgnoredAny>,
) -> Response {
    let _ = gw.logout(session.token());
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
