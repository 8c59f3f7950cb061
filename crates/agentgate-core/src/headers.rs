//! The header rules in both directions, as pure functions: which headers an
//! agent may send with a read or put on a queued write, and which headers of a
//! service's answer are relayed back. Credentials, routing, hop-by-hop headers
//! and method overrides are never the agent's to set.

use http::{HeaderMap, HeaderName, HeaderValue};

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
    "atproto-proxy",
];

/// Request headers an agent may set on a queued write: what the services
/// document for writes (versions, preconditions, idempotency). Every one is
/// shown to the human; anything else is refused.
const WRITE_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "idempotency-key",
    "prefer",
    "x-github-api-version",
    "linkedin-version",
    "x-restli-protocol-version",
];

/// Headers that make a service run another method than the request's: a
/// write carrying one is refused, not stripped, since the agent meant
/// something else than what a human would see.
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
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

/// The headers of a write sent on a read URL that go into the queued request:
/// those a write may carry (but the content type, which the body decides),
/// and method overrides, which are then refused like in a submission. A
/// generic `Accept: */*` says nothing and is left out.
pub fn carried_by_direct_write(from: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in WRITE_HEADERS.iter().chain(METHOD_OVERRIDES) {
        if *name == "content-type" {
            continue;
        }
        for v in from.get_all(*name) {
            if *name == "accept" && v.as_bytes() == b"*/*" {
                continue;
            }
            out.push((
                (*name).to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
    }
    out
}

/// Checks one header an agent put on a queued request. `Ok(None)` means the header
/// is dropped as the gateway's own to set (credentials, routing, hop-by-hop);
/// `Err` means it is not a valid header, or not one a write may carry.
pub fn agent_header(name: &str, value: &str) -> Result<Option<(String, String)>, String> {
    let lname = name.to_ascii_lowercase();
    HeaderName::from_bytes(lname.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    // Sent as it is shown: surrounding whitespace (which HTTP drops) is
    // trimmed, and only printable ASCII is taken, since other bytes are read
    // by services as Latin-1 or refused.
    let value = value.trim_matches([' ', '\t']);
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "the value of header {name:?} must be printable ASCII text"
        ));
    }
    HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name:?} is not valid"))?;
    if METHOD_OVERRIDES.contains(&lname.as_str()) {
        return Err(format!(
            "the header {name:?} overrides the method; send the request with the method it means"
        ));
    }
    if FORBIDDEN_WRITE_HEADERS.contains(&lname.as_str())
        || lname.starts_with("x-forwarded-")
        || lname.starts_with("proxy-")
        || lname.starts_with("x-agentgate-")
        || lname.starts_with("sec-")
    {
        return Ok(None);
    }
    if !WRITE_HEADERS.contains(&lname.as_str()) {
        return Err(format!(
            "the header {name:?} is not one agentgate sends with a write; a write may carry {}",
            WRITE_HEADERS.join(", ")
        ));
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
        ] {
            assert_eq!(agent_header(name, "x").unwrap(), None, "{name}");
        }
        for name in [
            "X-HTTP-Method-Override",
            "x-http-method",
            "X-Method-Override",
        ] {
            assert!(agent_header(name, "DELETE").is_err(), "{name}");
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
