//! The HTTP client that calls services on the agents' behalf, and the header rules
//! in both directions.
//!
//! Credentials are pinned to the account's host: the URL is built by
//! [`crate::paths::AgentPath::resolve`], agents cannot set headers that carry
//! credentials or change where a request goes, and redirects are followed only to
//! the same scheme, host and port (anything else is handed back to the agent as the
//! 3xx it is, with no request made).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::error::Error;

const MAX_REDIRECTS: usize = 5;

/// Request headers an agent may send with a read; all others are dropped.
const READ_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "range",
];

/// Request headers an agent may never set on a queued write: credentials, cookies,
/// routing, hop-by-hop and method overrides.
const FORBIDDEN_WRITE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "content-length",
    "expect",
    "forwarded",
    "via",
    "origin",
    "referer",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
    "atproto-proxy",
];

/// Response headers that describe the connection to agentgate's upstream, or would
/// set state in the agent's client, and so are not relayed.
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "set-cookie",
    "alt-svc",
];

/// Checks one header an agent put on a queued request. `Ok(None)` means the header
/// is dropped as not the agent's to set; `Err` means it is not a valid header.
pub fn agent_header(name: &str, value: &str) -> Result<Option<(String, String)>, String> {
    let lname = name.to_ascii_lowercase();
    HeaderName::from_bytes(lname.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name:?} is not valid"))?;
    if FORBIDDEN_WRITE_HEADERS.contains(&lname.as_str())
        || lname.starts_with("x-forwarded-")
        || lname.starts_with("proxy-")
        || lname.starts_with("x-agentgate-")
        || lname.starts_with("sec-")
    {
        return Ok(None);
    }
    Ok(Some((lname, value.to_string())))
}

/// The headers of an agent's read that are passed on.
pub fn read_headers(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in READ_HEADERS {
        for v in from.get_all(*name) {
            // Generic clients (curl, reqwest) send "Accept: */*"; that says nothing
            // and must not replace the media type the service asks for.
            if *name == "accept" && v.as_bytes() == b"*/*" {
                continue;
            }
            out.append(HeaderName::from_static(name), v.clone());
        }
    }
    out
}

/// The upstream response headers that are relayed to the agent.
pub fn response_headers(from: &HeaderMap) -> HeaderMap {
    // Headers named in Connection are hop-by-hop too.
    let listed: Vec<String> = from
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in from {
        let n = name.as_str();
        if !DROPPED_RESPONSE_HEADERS.contains(&n) && !listed.iter().any(|l| l == n) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

pub struct UpstreamRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
}

impl Upstream {
    pub fn new() -> anyhow::Result<Upstream> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if attempt.previous().len() > MAX_REDIRECTS || !same_origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .user_agent(concat!("agentgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Upstream { client })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends one request and reads at most `max_bytes` of the answer within `timeout`.
    pub async fn send(
        &self,
        req: UpstreamRequest,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<UpstreamResponse, Error> {
        let host = req.url.host_str().unwrap_or("?").to_string();
        let mut builder = self
            .client
            .request(req.method, req.url)
            .headers(req.headers)
            .timeout(timeout);
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let mut resp = builder
            .send()
            .await
            .map_err(|e| transport_error(&host, timeout, &e))?;
        if resp.content_length().is_some_and(|l| l > max_bytes as u64) {
            return Err(too_large(max_bytes));
        }
        let status = resp.status();
        let headers = response_headers(resp.headers());
        let mut body = BytesMut::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| transport_error(&host, timeout, &e))?
        {
            if body.len() + chunk.len() > max_bytes {
                return Err(too_large(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UpstreamResponse {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

fn too_large(max: usize) -> Error {
    Error::Upstream(format!(
        "the upstream response is larger than the gateway's limit of {max} bytes; ask for less (pagination, filters)"
    ))
}

fn transport_error(host: &str, timeout: Duration, e: &reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::UpstreamTimeout(format!(
            "{host} did not answer within {} seconds",
            timeout.as_secs()
        ))
    } else {
        // reqwest's message can include the URL, which never holds credentials
        // here; the cause chain is kept short for the agent.
        Error::Upstream(format!("could not reach {host}: {}", root_cause(e)))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_cannot_set_credential_or_routing_headers() {
        for name in [
            "Authorization",
            "HOST",
            "cookie",
            "X-Forwarded-Host",
            "atproto-proxy",
            "Proxy-Authorization",
            "Transfer-Encoding",
            "X-HTTP-Method-Override",
        ] {
            assert_eq!(agent_header(name, "x").unwrap(), None, "{name}");
        }
        assert_eq!(
            agent_header("Accept", "application/json").unwrap(),
            Some(("accept".into(), "application/json".into()))
        );
        assert!(agent_header("bad name", "x").is_err());
        assert!(agent_header("x-ok", "line\nbreak").is_err());
    }

    #[test]
    fn hop_by_hop_and_cookie_headers_are_not_relayed() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("set-cookie", "a=b".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert(
            "link",
            "<https://api.github.com/x?page=2>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        let out = response_headers(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key("link"));
    }

    #[test]
    fn only_safe_read_headers_pass() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer rms_x".parse().unwrap());
        h.insert("accept", "application/json".parse().unwrap());
        h.insert("cookie", "a=b".parse().unwrap());
        let out = read_headers(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key("accept"));
        h.insert("accept", "*/*".parse().unwrap());
        assert!(
            read_headers(&h).is_empty(),
            "a wildcard Accept is not forwarded"
        );
    }
}
