//! The OAuth callback: where a provider sends the admin's browser back after
//! sign-in. It is served on both listeners (the agent listener's public URL for
//! a server install, the admin listener for a desktop install) and needs no
//! session: the single-use `state` is what proves the connect was started by the
//! admin.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;

use super::extract::{Params, QueryParams};
use crate::gateway::Gateway;

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    State(gw): State<Gateway>,
    Params(service): Params<String>,
    QueryParams(q): QueryParams<CallbackQuery>,
) -> Response {
    if let Some(err) = q.error {
        let detail = q
            .error_description
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            &format!(
                "The provider did not grant access ({err}{detail}). Start connecting again from agentgate."
            ),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "The provider's answer lacks the code or state. Start connecting again from agentgate.",
        );
    };
    match gw.finish_connect(&service, &state, &code).await {
        Ok(info) => page(
            StatusCode::OK,
            "Connected",
            &format!(
                "{}/{} is connected. You can close this window.",
                info.service, info.name
            ),
        ),
        Err(e) => {
            let status = super::ApiError(e).status();
            let (status, message) = match status {
                StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => (status, "This sign-in link is unknown, used or expired. Start connecting again from agentgate.".to_string()),
                _ => (StatusCode::BAD_GATEWAY, "The provider could not be reached to finish connecting; the gateway's log has the details. Start again from agentgate.".to_string()),
            };
            page(status, "Not connected", &message)
        }
    }
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>agentgate: {t}</title></head><body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem\">\
         <h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// Escapes text for HTML outside the templates (the callback page, the UI's
/// bare error pages): provider and agent text is not trusted.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
