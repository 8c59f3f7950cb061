//! The admin listener answers only to its own names. A web page can make a
//! browser send requests to 127.0.0.1 under a name the page controls (DNS
//! rebinding); such a request carries that name in `Host`, and is answered
//! `421` before any route sees it. Its own names: `127.0.0.1`, `localhost`,
//! `[::1]`, the address it listens on, and the names in the `admin_hosts`
//! setting.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::answers::ErrorBody;
use crate::gateway::Gateway;

pub async fn only_own_names(State(gw): State<Gateway>, req: Request, next: Next) -> Response {
    // The OAuth callback is where a provider sends the owner's browser back,
    // under whatever public name the gateway has; it acts only on a `state`
    // this process issued.
    if req.uri().path().starts_with("/oauth/callback/") || is_own_name(&gw, &req) {
        return next.run(req).await;
    }
    (
        StatusCode::MISDIRECTED_REQUEST,
        axum::Json(ErrorBody::new(
            "this is agentgate's admin listener, which answers only to its own names \
             (127.0.0.1, localhost, [::1], its address and admin_hosts)",
        )),
    )
        .into_response()
}

fn is_own_name(gw: &Gateway, req: &Request) -> bool {
    let mut hosts = req.headers().get_all(http::header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().ok().map(str::to_string),
        (None, _) => req.uri().authority().map(|a| a.to_string()),
        _ => None,
    };
    let Some(host) = host else {
        return false;
    };
    let Some(name) = host_name(&host) else {
        return false;
    };
    let config = gw.config();
    let listening = config.admin_addr.ip();
    ["127.0.0.1", "localhost", "::1"].contains(&name.as_str())
        || (!listening.is_unspecified() && listening.to_string() == name)
        || config
            .admin_hosts
            .iter()
            .any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&name))
}

/// The name in a `Host` value, without its port, brackets or a trailing dot,
/// in lower case; `None` when it is not a plain host name or address.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inside
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    plain.then_some(name)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_are_read_strictly() {
        assert_eq!(host_name("127.0.0.1:3051").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_name("LocalHost.:80").as_deref(), Some("localhost"));
        assert_eq!(host_name("[::1]:3051").as_deref(), Some("::1"));
        assert_eq!(
            host_name("rebind.evil.example:3051").as_deref(),
            Some("rebind.evil.example")
        );
        for bad in [
            "",
            "127.0.0.1:x",
            "a b",
            "[::1]x",
            "user@127.0.0.1",
            "127.0.0.1:99999999",
        ] {
            assert_eq!(host_name(bad), None, "{bad:?}");
        }
    }
}
