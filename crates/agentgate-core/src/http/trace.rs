//! Request logging: one line per request when it ends, with its request id,
//! method, path, the agent and account it was for, status and latency. Bodies,
//! headers and query strings are never logged: they may hold secrets.
//!
//! The line is one event rather than a span around the request: a span costs
//! its creation, an enter and exit on every poll of the request's future and the
//! formatting of its fields again for every line inside it, about 4 % of the
//! gateway's instructions per read (see BENCHMARKS.md). The agent-key middleware
//! leaves a [`LogFields`] in the response's extensions instead, with the agent,
//! service and account it found. Lines logged while a request runs name the
//! agent, service or account they concern themselves.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

const REQUEST_ID: &str = "x-request-id";

/// Who a request was for, as far as the gateway got in finding out.
#[derive(Clone, Debug, Default)]
pub(super) struct LogFields {
    pub agent: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
}

/// A fresh request id. It only has to tell log lines apart, not be secret, so it
/// comes from a fast thread-local generator rather than a system call per request.
fn new_request_id() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(16)
        .collect()
}

/// The id an upstream proxy already gave the request, if it is a sane one.
fn given_request_id(req: &Request) -> Option<String> {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_string)
}

pub async fn trace_requests(req: Request, next: Next) -> Response {
    let id = given_request_id(&req).unwrap_or_else(new_request_id);
    let method = req.method().clone();
    // A cheap clone: the URI shares the bytes hyper parsed.
    let uri = req.uri().clone();
    let start = Instant::now();
    let mut resp = next.run(req).await;
    let latency_ms = (start.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    let fields = resp
        .extensions_mut()
        .remove::<LogFields>()
        .unwrap_or_default();
    tracing::info!(
        id = %id,
        method = %method,
        path = %uri.path(),
        // `display` comes into scope inside the macro: names unquoted.
        agent = fields.agent.as_deref().map(display),
        service = fields.service.as_deref().map(display),
        account = fields.account.as_deref().map(display),
        status = resp.status().as_u16(),
        latency_ms,
        "request finished"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}
