//! One error type for both routers: one status per core error variant, a JSON
//! body `{"error": "..."}` with a clear message for 4xx, and an opaque message for
//! 5xx whose cause goes to the log instead.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

use crate::answers::ErrorBody;
use crate::error::Error;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self.0 {
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                ErrorBody::new("internal error; the gateway's log has the details")
            }
            Error::AlreadyDecided { id, status } => ErrorBody {
                error: self.0.to_string(),
                id: Some(id.clone()),
                status: Some(*status),
            },
            Error::Credentials(msg) => {
                tracing::error!(error = %msg, "credential store failure");
                ErrorBody::new(shown_message(&self.0))
            }
            other => ErrorBody::new(other.to_string()),
        };
        let mut resp = (status, Json(body)).into_response();
        if let Error::Throttled {
            retry_after_secs, ..
        } = &self.0
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        resp
    }
}

/// An error's message as an answer shows it: a credential-store failure's
/// with no file of the gateway's machine in it (the log keeps the whole
/// message), every other as it is. REST and MCP answer with this.
pub(crate) fn shown_message(e: &Error) -> String {
    match e {
        Error::Credentials(msg) => without_local_paths(msg),
        other => other.to_string(),
    }
}

/// A message with every local file path in it replaced by `[a local path]`:
/// words that start with `/`, `~/` or a drive letter, and go on with another
/// separator.
fn without_local_paths(msg: &str) -> String {
    msg.split(' ')
        .map(|word| {
            let core = word.trim_start_matches(['(', '"', '\'', '`']);
            let unix = (core.starts_with('/') || core.starts_with("~/")) && core[1..].contains('/');
            let windows =
                core.len() > 3 && core.as_bytes()[0].is_ascii_alphabetic() && &core[1..3] == ":\\";
            if unix || windows {
                let lead = &word[..word.len() - core.len()];
                let tail: String = core
                    .chars()
                    .rev()
                    .take_while(|c| matches!(c, ')' | ',' | ':' | ';' | '.' | '"' | '\'' | '`'))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("{lead}[a local path]{tail}")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn not_found() -> ApiError {
    ApiError(Error::not_found(
        "no such route; GET /api/readme describes the API",
    ))
}

/// The admin listener's: its pages are under `/ui`, its API under `/admin`.
pub async fn admin_not_found() -> ApiError {
    ApiError(Error::not_found(
        "no such route on the admin listener: the web admin is at /ui, the admin API under /admin (GET /admin/openapi.json describes it)",
    ))
}

pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody::new("method not allowed on this route")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_leave_messages() {
        assert_eq!(
            without_local_paths("cannot use /home/me/.local/share/agentgate/secrets.enc: denied"),
            "cannot use [a local path]: denied"
        );
        assert_eq!(
            without_local_paths("the encrypted file (/var/lib/x/secrets.enc) is damaged"),
            "the encrypted file ([a local path]) is damaged"
        );
        assert_eq!(
            without_local_paths("C:\\Users\\me\\k is bad"),
            "[a local path] is bad"
        );
        assert_eq!(
            without_local_paths("set AGENTGATE_SECRETS_KEY_FILE=/path and / alone"),
            "set AGENTGATE_SECRETS_KEY_FILE=/path and / alone"
        );
    }
}
