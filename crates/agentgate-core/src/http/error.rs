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
                ErrorBody::new(msg.as_str())
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

pub async fn not_found() -> ApiError {
    ApiError(Error::not_found(
        "no such route; GET /api/readme describes the API",
    ))
}

pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody::new("method not allowed on this route")),
    )
        .into_response()
}
