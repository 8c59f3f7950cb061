//! The listeners hold against slow and numerous clients: half-sent requests
//! are cut off after the header read timeout, a body that never arrives after
//! the body read timeout, connections past the cap are closed at once, and
//! meanwhile everyone else is answered.

use std::time::{Duration, Instant};

use agentgate_core::http::listen::{Limits, serve_with};
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::spawn_app;

/// Reads until the server closes the connection (or `limit` passes);
/// returns what it sent.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(limit, s.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

async fn small_server(limits: Limits) -> (std::net::SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/echo", post(|body: String| async move { body }));
    let stop = CancellationToken::new();
    tokio::spawn(serve_with(listener, router, stop.clone(), limits));
    (addr, stop)
}

#[tokio::test]
async fn slow_and_surplus_connections_are_cut_off_and_others_answered() {
    let limits = Limits {
        max_connections: 8,
        max_connections_per_address: 8,
        header_read_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
    };
    let (addr, stop) = small_server(limits).await;

    // Half-sent headers: closed after the header timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    assert!(
        read_until_closed(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "a half-sent request was kept open"
    );
    assert!(start.elapsed() >= Duration::from_millis(400));

    // A body that never comes: the request ends (4xx) instead of waiting.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stalled, Duration::from_secs(5))
        .await
        .expect("a stalled body was waited for forever");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer:?}");

    // Past the cap, a connection is closed at once, answered nothing.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut surplus = TcpStream::connect(addr).await.unwrap();
    let _ = surplus
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut surplus, Duration::from_secs(2))
        .await
        .expect("a connection past the cap was kept");
    assert!(!answer.contains("200"), "{answer:?}");
    // Once the slow ones are cut off, the listener answers again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut fine = TcpStream::connect(addr).await.unwrap();
    fine.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut fine, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    drop(held);
    stop.cancel();
}

/// Five hundred slow clients on the agent listener leave the gateway
/// answering: `/health` and the admin listener within a second.
#[tokio::test]
async fn the_gateway_answers_beside_500_slow_connections() {
    let app = spawn_app().await;
    // From another loopback address than the clients checked below: one
    // hostile client, whose connections past its own cap are closed.
    let mut slow = Vec::new();
    for _ in 0..500 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(mut s) = socket.connect(app.agent_addr()).await else {
            continue;
        };
        let _ = s
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
        slow.push(s);
    }
    let start = Instant::now();
    let health = app
        .http
        .get(format!("{}/health", app.agent_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, _) = app.admin(reqwest::Method::GET, "/admin/queue", None).await;
    assert_eq!(status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    drop(slow);
}

/// One address cannot take every connection: past its own cap its
/// connections are closed, while the listener still has room for others.
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let limits = Limits {
        max_connections: 64,
        max_connections_per_address: 4,
        header_read_timeout: Duration::from_secs(5),
        body_read_timeout: Duration::from_secs(5),
    };
    let (addr, stop) = small_server(limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut fifth, Duration::from_secs(2))
        .await
        .expect("a fifth connection from one address was kept");
    assert!(!answer.contains("200"), "{answer:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(addr).await.unwrap();
    again
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut again, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    stop.cancel();
}
