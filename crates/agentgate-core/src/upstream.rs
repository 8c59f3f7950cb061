//! The HTTP client that calls services on the agents' behalf. Which headers
//! go through in each direction is [`crate::headers`]'s to say.
//!
//! Credentials are pinned to the account's host: the URL is built by
//! [`crate::paths::AgentPath::resolve`], agents cannot set headers that carry
//! credentials or change where a request goes, and a read's redirects are
//! followed only to the same scheme, host and port (anything else is handed back
//! to the agent as the 3xx it is, with no request made). A write follows no
//! redirect at all: its 3xx is its result.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body as _, Incoming};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;
use url::Url;

use crate::error::Error;
use crate::headers::response_headers;

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

type Direct = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A response body from either transport, read the same way.
type ReplyBody = Either<Incoming, reqwest::Body>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client for services. Requests go out on hyper's pooled client directly:
/// this is every read's hot path, and reqwest's layers on top of it (a WHATWG URL
/// parse per request for its redirect policy, retries, a boxed timeout) were
/// 14 % of the gateway's instructions per read (BENCHMARKS.md). Redirects, the
/// deadline and the size cap are therefore the gateway's own, below. A destination that the environment
/// routes through a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`)
/// goes through reqwest, which implements proxies (CONNECT tunnels, proxy
/// authentication) and is configured from the same variables.
#[derive(Clone)]
pub struct Upstream {
    direct: Direct,
    proxies: Arc<Matcher>,
    /// Follows no redirects: the loop in [`Upstream::send`] does, for both
    /// transports.
    proxied: reqwest::Client,
    /// For OAuth token endpoints and webhooks, which need reqwest's conveniences
    /// (forms, JSON) and are not on a hot path.
    client: reqwest::Client,
}

impl Upstream {
    /// A client that uses the proxies the environment names, as curl would.
    pub fn new() -> anyhow::Result<Upstream> {
        Upstream::build(None)
    }

    /// A client that sends everything through the proxy at `proxy`, whatever the
    /// environment says.
    #[cfg(test)]
    fn through_proxy(proxy: &str) -> anyhow::Result<Upstream> {
        Upstream::build(Some(proxy))
    }

    fn build(proxy: Option<&str>) -> anyhow::Result<Upstream> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // Certificates are checked as the operating system would (its trust store
        // and revocation rules). One configuration serves all three clients: on
        // Linux the verifier reads and parses the system's root certificates when
        // it is made.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let direct = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(https);

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
        // reqwest reads the environment with the same hyper-util matcher as
        // `proxies` below, so the two agree on which destinations are proxied.
        let reqwest_client = |policy| -> anyhow::Result<reqwest::Client> {
            let mut builder = reqwest::Client::builder()
                .tls_backend_preconfigured(tls.clone())
                .redirect(policy)
                .user_agent(USER_AGENT)
                .connect_timeout(CONNECT_TIMEOUT)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT);
            if let Some(proxy) = proxy {
                builder = builder.proxy(reqwest::Proxy::all(proxy)?);
            }
            Ok(builder.build()?)
        };
        let proxies = match proxy {
            Some(proxy) => Matcher::builder().all(proxy.to_string()).build(),
            None => Matcher::from_system(),
        };
        Ok(Upstream {
            direct,
            proxies: Arc::new(proxies),
            proxied: reqwest_client(reqwest::redirect::Policy::none())?,
            client: reqwest_client(policy)?,
        })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends one request and reads at most `max_bytes` of the answer within
    /// `timeout`. A read (GET, HEAD) follows redirects that stay on the same
    /// scheme, host and port (at most [`MAX_REDIRECTS`]); a write never
    /// follows one, since a human approved it for one URL: its 3xx is the
    /// answer, as is any other redirect.
    pub async fn send(
        &self,
        req: UpstreamRequest,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<UpstreamResponse, Error> {
        self.send_following(req, timeout, max_bytes, &|_| true)
            .await
    }

    /// [`Upstream::send`], following a read's same-origin redirect only where
    /// `may_follow` allows (the caller's privacy blocks and rules); any other
    /// redirect is the answer.
    pub async fn send_following(
        &self,
        req: UpstreamRequest,
        timeout: Duration,
        max_bytes: usize,
        may_follow: &(dyn Fn(&Url) -> bool + Sync),
    ) -> Result<UpstreamResponse, Error> {
        let UpstreamRequest {
            method,
            mut url,
            mut headers,
            body,
        } = req;
        headers
            .entry(http::header::USER_AGENT)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        headers
            .entry(http::header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        let follows = method == Method::GET || method == Method::HEAD;
        let exchange = async {
            let mut redirects = 0;
            loop {
                let resp = self
                    .hop(&method, &url, &headers, body.as_ref())
                    .await
                    .map_err(|e| transport_error(&url, timeout, &*e))?;
                let status = resp.status();
                if follows
                    && redirects < MAX_REDIRECTS
                    && let Some(next) = same_origin_redirect(&url, status, resp.headers())
                    && may_follow(&next)
                {
                    redirects += 1;
                    url = next;
                    continue;
                }
                let (parts, reply) = resp.into_parts();
                let body = read_body(reply, max_bytes).await.map_err(|e| match e {
                    Failure::TooLarge => too_large(max_bytes),
                    Failure::Transport(e) => transport_error(&url, timeout, &*e),
                })?;
                return Ok(UpstreamResponse {
                    status,
                    headers: response_headers(&parts.headers),
                    body,
                });
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_elapsed| Err(timed_out(&url, timeout)))
    }

    /// One request and the head of its response, on the transport the
    /// destination calls for.
    async fn hop(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&Bytes>,
    ) -> Result<http::Response<ReplyBody>, BoxError> {
        let uri: Uri = url.as_str().parse()?;
        if self.proxies.intercept(&uri).is_some() {
            let mut req = self
                .proxied
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = body {
                req = req.body(body.clone());
            }
            let resp: http::Response<reqwest::Body> = req.send().await?.into();
            return Ok(resp.map(Either::Right));
        }
        let mut req = http::Request::new(body.cloned().map(Full::new).unwrap_or_default());
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = headers.clone();
        let resp = self.direct.request(req).await?;
        Ok(resp.map(Either::Left))
    }
}

const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("agentgate/", env!("CARGO_PKG_VERSION"));

enum Failure {
    Transport(BoxError),
    TooLarge,
}

/// Where a redirect leads, if it is one the gateway follows: a 301, 302, 303,
/// 307 or 308 whose Location resolves to the same scheme, host and port. The
/// credentials on the request belong to that origin and nowhere else.
fn same_origin_redirect(from: &Url, status: StatusCode, headers: &HeaderMap) -> Option<Url> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = headers.get(http::header::LOCATION)?.to_str().ok()?;
    let next = from.join(location).ok()?;
    (next.origin() == from.origin()).then_some(next)
}

/// Reads a body of at most `max` bytes; one that says or turns out to be larger
/// is refused without reading the rest.
async fn read_body(mut body: ReplyBody, max: usize) -> Result<Bytes, Failure> {
    if body.size_hint().lower() > max as u64 {
        return Err(Failure::TooLarge);
    }
    // Most answers arrive in one frame, which is passed on without a copy.
    let mut len = 0usize;
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Failure::Transport)?.into_data() else {
            continue; // trailers
        };
        len += data.len();
        if len > max {
            return Err(Failure::TooLarge);
        }
        if let Some(buf) = &mut joined {
            buf.extend_from_slice(&data);
        } else if first.is_empty() {
            first = data;
        } else {
            let mut buf = BytesMut::with_capacity(len);
            buf.extend_from_slice(&first);
            buf.extend_from_slice(&data);
            joined = Some(buf);
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

fn too_large(max: usize) -> Error {
    Error::Upstream(format!(
        "the upstream response is larger than the gateway's limit of {max} bytes; ask for less (pagination, filters)"
    ))
}

fn timed_out(url: &Url, timeout: Duration) -> Error {
    Error::UpstreamTimeout(format!(
        "{} did not answer within {} seconds",
        url.host_str().unwrap_or("?"),
        timeout.as_secs()
    ))
}

fn transport_error(url: &Url, timeout: Duration, e: &(dyn std::error::Error + 'static)) -> Error {
    if is_timeout(e) {
        return timed_out(url, timeout);
    }
    // The message names the host only; the cause chain is kept short for the
    // agent and never holds a header.
    Error::Upstream(format!(
        "could not reach {}: {}",
        url.host_str().unwrap_or("?"),
        root_cause(e)
    ))
}

/// Whether a failure was a timeout somewhere down the chain (connecting, or
/// reqwest's own), which the agent sees as a 504 like the overall deadline.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || err
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        cur = err.source();
    }
    false
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

    fn request(method: Method, url: &str, body: Option<&'static str>) -> UpstreamRequest {
        let mut headers = HeaderMap::new();
        if body.is_some() {
            headers.insert("content-type", "application/json".parse().unwrap());
        }
        UpstreamRequest {
            method,
            url: url.parse().unwrap(),
            headers,
            body: body.map(|b| Bytes::from_static(b.as_bytes())),
        }
    }

    const SECS: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn reads_follow_same_origin_redirects_and_writes_none() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let redirect = |status: u16, to: &str| {
            ResponseTemplate::new(status).insert_header("location", to.to_string())
        };
        let up = Upstream::new().unwrap();
        let base = server.uri();

        // A write never follows a redirect, of any kind: a human approved it
        // for one URL, and its 3xx is the answer.
        for (status, from) in [
            (303, "/see-other"),
            (307, "/temporary"),
            (308, "/permanent"),
        ] {
            server.reset().await;
            Mock::given(path(from))
                .respond_with(redirect(status, "/after"))
                .mount(&server)
                .await;
            Mock::given(path("/after"))
                .respond_with(ResponseTemplate::new(201).set_body_string("moved"))
                .mount(&server)
                .await;
            for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                let r = up
                    .send(
                        request(m.clone(), &format!("{base}{from}"), Some("{\"a\":1}")),
                        SECS,
                        1024,
                    )
                    .await
                    .unwrap();
                assert_eq!(r.status.as_u16(), status, "{m} {from}");
                assert_eq!(r.headers["location"], "/after");
            }
            let seen = server.received_requests().await.unwrap();
            assert!(
                seen.iter().all(|r| r.url.path() == from),
                "{status}: {seen:?}"
            );
        }

        // A read follows a same-origin redirect.
        server.reset().await;
        Mock::given(path("/see-other"))
            .respond_with(redirect(303, "/after"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/after"))
            .respond_with(ResponseTemplate::new(200).set_body_string("got"))
            .mount(&server)
            .await;
        let r = up
            .send(
                request(Method::GET, &format!("{base}/see-other"), None),
                SECS,
                1024,
            )
            .await
            .unwrap();
        assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"got"[..]));

        // Five redirects are followed; the sixth is the answer.
        server.reset().await;
        for n in 0..10 {
            Mock::given(path(format!("/hop/{n}")))
                .respond_with(redirect(302, &format!("/hop/{}", n + 1)))
                .mount(&server)
                .await;
        }
        let r = up
            .send(
                request(Method::GET, &format!("{base}/hop/0"), None),
                SECS,
                1024,
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(r.headers["location"], "/hop/6");
        assert_eq!(server.received_requests().await.unwrap().len(), 6);
    }

    /// A loopback server that answers each connection's first request with
    /// `reply` and then holds the connection open until the test ends.
    async fn canned_server(reply: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(reply).await;
                open.push(conn);
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_streamed_answer_is_cut_off_at_the_limit_and_assembled_below_it() {
        // Chunked, so the size is known only while reading; three chunks, so the
        // body is joined from several frames.
        let base = canned_server(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
              4\r\nabcd\r\n4\r\nefgh\r\n4\r\nijkl\r\n0\r\n\r\n",
        )
        .await;
        let up = Upstream::new().unwrap();
        let url = format!("{base}/x");
        let r = up
            .send(request(Method::GET, &url, None), SECS, 12)
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"abcdefghijkl");
        let e = up
            .send(request(Method::GET, &url, None), SECS, 11)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Upstream(m) if m.contains("limit of 11 bytes")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_service_that_stops_sending_times_out() {
        // The head arrives, the promised body never does.
        let base = canned_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this").await;
        let up = Upstream::new().unwrap();
        let e = up
            .send(
                request(Method::GET, &format!("{base}/x"), None),
                Duration::from_millis(300),
                1024,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::UpstreamTimeout(m) if m.contains("127.0.0.1")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_configured_proxy_carries_the_request() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::path};
        let proxy = MockServer::start().await;
        Mock::given(path("/via-proxy"))
            .respond_with(ResponseTemplate::new(200).set_body_string("proxied"))
            .mount(&proxy)
            .await;
        let up = Upstream::through_proxy(&proxy.uri()).unwrap();
        // The host does not exist: only the proxy can answer.
        let r = up
            .send(
                request(Method::GET, "http://service.invalid/via-proxy", None),
                SECS,
                1024,
            )
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"proxied");
        let seen = proxy.received_requests().await.unwrap();
        assert_eq!(seen[0].headers["host"], "service.invalid");
    }

    #[tokio::test]
    async fn a_certificate_the_system_does_not_trust_is_refused_before_any_request() {
        use tokio::io::AsyncReadExt;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        // A self-signed certificate for 127.0.0.1, made for this test only.
        let cert =
            CertificateDer::from(&include_bytes!("../tests/fixtures/untrusted-cert.der")[..]);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            &include_bytes!("../tests/fixtures/untrusted-key.der")[..],
        ));
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.into_owned()], key.clone_key())
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = read.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(conn).await {
                    let mut buf = [0u8; 1024];
                    if let Ok(n) = tls.read(&mut buf).await {
                        counter.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
        });
        let up = Upstream::new().unwrap();
        let mut req = request(Method::GET, &format!("https://{addr}/user"), None);
        req.headers
            .insert("authorization", "Bearer ghp_secret".parse().unwrap());
        let e = up.send(req, SECS, 1024).await.unwrap_err();
        assert!(
            matches!(&e, Error::Upstream(m) if m.contains("certificate")),
            "{e:?}"
        );
        assert_eq!(
            read.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the server read request bytes"
        );
    }
}
