//! Serving a router on a listener with bounds a slow or hostile client
//! cannot stretch: at most [`MAX_CONNECTIONS`] open connections per listener
//! and [`MAX_CONNECTIONS_PER_ADDRESS`] per client address (more are closed
//! at once), request headers read within
//! [`HEADER_READ_TIMEOUT`] (which also ends idle keep-alive connections),
//! and request bodies read within [`BODY_READ_TIMEOUT`] (tower-http). On
//! stop, no new connection is taken and open ones finish their requests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::Service;

/// Open connections one listener keeps at most.
pub const MAX_CONNECTIONS: usize = 1024;
/// Open connections from one client address at most, so that one client
/// (with or without a key) cannot take every connection of a listener.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Time a client has to send a request's headers, and the longest a
/// keep-alive connection waits idle for the next request.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            max_connections_per_address: MAX_CONNECTIONS_PER_ADDRESS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}

/// Serves `router` on `listener` until `stop`, then waits for open
/// connections to finish what they were doing.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, router, stop, Limits::default()).await
}

/// [`serve`] with other bounds (tests use small ones).
pub async fn serve_with(
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
    limits: Limits,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_read_timeout,
    ));
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.max_connections, "connection refused: too many open");
            drop(stream);
            continue;
        };
        {
            let mut open = per_address.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(peer.ip()).or_default();
            if *n >= limits.max_connections_per_address {
                tracing::warn!(%peer, limit = limits.max_connections_per_address, "connection refused: too many open from this address");
                drop(stream);
                continue;
            }
            *n += 1;
        }
        let Ok(service) = make.call(peer).await;
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let per_address = per_address.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            let mut open = per_address.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = open.get_mut(&peer.ip()) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&peer.ip());
                }
            }
            drop(slot);
        });
    }
    graceful.shutdown().await;
    Ok(())
}
