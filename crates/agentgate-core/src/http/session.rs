//! Who is calling the admin listener. Two extractors hold the one copy of the
//! checks, for the admin API and the web admin alike, so a handler that takes
//! them cannot forget one:
//!
//! - [`AdminSession`]: a valid admin session, from the `agentgate_session`
//!   cookie or (admin API only) `Authorization: Bearer agt_…`. Agent keys are
//!   refused outright. Without one, the admin API answers `401` JSON and a web
//!   page sends the browser to sign-in (or to first-run setup).
//! - [`SignedForm`]: a web form posted by a signed-in admin from this origin,
//!   carrying the session's CSRF token.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::oauth::escape;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::keys::AGENT_KEY_PREFIX;

pub const SESSION_COOKIE: &str = "agentgate_session";

/// A signed-in admin.
pub struct AdminSession {
    token: String,
}

impl AdminSession {
    /// The session token, to end the session with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CSRF token of this session: a digest of it, so nothing more is
    /// stored and it dies with the session.
    pub fn csrf(&self) -> String {
        hex::encode(Sha256::digest(format!("agentgate-csrf:{}", self.token)))
    }
}

/// The admin session cookie's value, if the request carries one.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The session token of an admin API call: the bearer header, else the cookie.
pub(super) fn api_token(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return auth.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    session_cookie(headers)
}

impl FromRequestParts<Gateway> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, Response> {
        if is_page(parts) {
            page_session(gw, &parts.headers).map_err(IntoResponse::into_response)
        } else {
            api_session(gw, parts).map_err(IntoResponse::into_response)
        }
    }
}

/// Whether the request is for the web admin (which answers browsers with
/// pages and redirects) rather than the JSON admin API.
fn is_page(parts: &Parts) -> bool {
    let path = parts.uri.path();
    path == "/ui" || path.starts_with("/ui/")
}

fn api_session(gw: &Gateway, parts: &Parts) -> Result<AdminSession, ApiError> {
    let headers = &parts.headers;
    let Some(token) = api_token(headers) else {
        return Err(Error::Unauthorized("log in first: POST /admin/login".into()).into());
    };
    if token.starts_with(AGENT_KEY_PREFIX) {
        tracing::warn!("an agent key was presented to the admin API");
        return Err(
            Error::Unauthorized("agent keys are not accepted on the admin API".into()).into(),
        );
    }
    if !gw.admin_session_valid(&token)? {
        return Err(
            Error::Unauthorized("the session is unknown or expired: log in again".into()).into(),
        );
    }
    // A browser sends the cookie with requests made by any page on this host,
    // whatever its port (SameSite does not separate ports): a change made
    // with the cookie must come from the admin's own pages, as JSON. Scripts
    // with the bearer token are not browsers and need neither.
    // Ending the session too: a foreign page must not sign the admin out.
    let by_cookie = headers.get(http::header::AUTHORIZATION).is_none();
    if by_cookie && !parts.method.is_safe() {
        if !from_own_origin(headers, true) {
            return Err(Error::Forbidden(
                "a change made with the session cookie must come from the admin's own pages \
                 (its Origin); scripts send the token as \"Authorization: Bearer agt_...\""
                    .into(),
            )
            .into());
        }
        let has_body = headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
            || headers.contains_key(http::header::TRANSFER_ENCODING);
        if has_body && !media_type_is(headers, "application/json") {
            return Err(Error::invalid(
                "a change made with the session cookie sends its body as Content-Type: application/json",
            )
            .into());
        }
    }
    Ok(AdminSession { token })
}

/// A web page's session, from the cookie only; without one, the redirect to
/// where the browser should go instead.
fn page_session(gw: &Gateway, headers: &HeaderMap) -> Result<AdminSession, Redirect> {
    let cookie = session_cookie(headers);
    if let Some(token) = &cookie
        && gw.admin_session_valid(token).unwrap_or(false)
    {
        return Ok(AdminSession {
            token: token.clone(),
        });
    }
    let to = if !gw.admin_password_set().unwrap_or(true) {
        "/ui/setup"
    } else if cookie.is_some() {
        // A cookie that no longer works: the session ran out or was signed out.
        "/ui/login?expired=1"
    } else {
        "/ui/login"
    };
    Err(Redirect::to(to))
}

/// A form posted by a signed-in admin from this origin with the session's
/// CSRF token; `T` is the rest of the form (its `csrf` field is this
/// extractor's, so `T` need not name it).
pub struct SignedForm<T> {
    pub session: AdminSession,
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned> FromRequest<Gateway> for SignedForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, gw: &Gateway) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = AdminSession::from_request_parts(&mut parts, gw).await?;
        if !same_origin(&parts.headers) {
            return Err(forbidden("This form came from another site."));
        }
        if !media_type_is(&parts.headers, "application/x-www-form-urlencoded") {
            return Err(page_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "This action takes a form from the web admin's own pages.",
            ));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), gw)
            .await
            .map_err(|rej| page_error(rej.status(), "The form could not be read."))?;
        let csrf = serde_urlencoded::from_bytes::<CsrfField>(&bytes)
            .map(|f| f.csrf)
            .unwrap_or_default();
        if !crate::keys::digests_equal(csrf.as_bytes(), session.csrf().as_bytes()) {
            return Err(forbidden(
                "This form has expired. Go back, reload the page and try again.",
            ));
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            page_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("The form is not complete: {e}"),
            )
        })?;
        Ok(SignedForm { session, form })
    }
}

/// Whether a form post comes from this origin: an `Origin` naming another host
/// is refused (browsers send it on every cross-site post).
/// Whether a browser's request comes from this listener's own pages: its
/// one `Origin` is exactly `http://<Host>` (the admin listener speaks plain
/// HTTP on loopback), or, when the browser sent no Origin, its
/// `Sec-Fetch-Site` says same-origin. Without either, `required` decides.
fn from_own_origin(headers: &HeaderMap, required: bool) -> bool {
    let mut origins = headers.get_all(http::header::ORIGIN).iter();
    let (origin, second) = (origins.next(), origins.next());
    if second.is_some() {
        return false;
    }
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let (host, second_host) = (hosts.next(), hosts.next());
    if second_host.is_some() {
        return false;
    }
    match origin {
        Some(origin) => host.is_some_and(|h| {
            origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(|o| h.to_str().is_ok_and(|h| o == h))
        }),
        None => match headers.get("sec-fetch-site") {
            Some(site) => site.as_bytes() == b"same-origin",
            None => !required,
        },
    }
}

/// Whether the request's Content-Type is exactly this media type (parameters
/// such as a charset aside, in any letter case).
fn media_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(expected))
}

pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    from_own_origin(headers, false)
}

/// First-run setup and sign-in need no session, so nothing but the origin
/// tells a browser's request from a foreign page apart: one that names
/// another origin is refused (scripts and the CLI send none).
pub(super) fn refuse_foreign_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if same_origin(headers) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "this request came from another site's page; set up and sign in from agentgate's own pages".into(),
        )
        .into())
    }
}

pub(super) fn forbidden(message: &str) -> Response {
    page_error(StatusCode::FORBIDDEN, message)
}

fn page_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><title>agentgate</title><p>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}
