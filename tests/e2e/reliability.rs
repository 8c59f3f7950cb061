//! The gateway killed with SIGKILL while approved batches run, fifty times,
//! and started again each time: no request is ever sent twice, and every
//! entry ends in a final state (an interrupted batch as failed, never re-run).
//! Figures are in RELIABILITY.md.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const ROUNDS: usize = 50;
const STEPS: usize = 4;
const PASSWORD: &str = "reliability admin password";

async fn admin_token(server: &Server) -> String {
    let v: Value = http()
        .post(server.admin_url("/admin/login"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn entry(server: &Server, token: &str, id: &str) -> Value {
    http()
        .get(server.admin_url(&format!("/admin/queue/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_fifty_times_mid_batch_nothing_is_sent_twice() {
    let install = Install::new();
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_millis(40)))
        .mount(&mock)
        .await;
    let key = install.github_agent("worker", &mock.uri(), "ghp_reliability");
    let out = install.run(&["admin", "set-password"], Some(&format!("{PASSWORD}\n")));
    assert!(out.status.success(), "{}", stderr(&out));

    let mut ids = Vec::new();
    let start = Instant::now();
    for round in 0..ROUNDS {
        let server = install.serve();
        let token = admin_token(&server).await;
        let requests: Vec<Value> = (0..STEPS)
            .map(|s| json!({"method": "POST", "path": format!("/r{round}/s{s}"), "body": {}}))
            .collect();
        let (status, v) = post_json(
            &server.url("/api/queue/github/personal/submit"),
            &key,
            &json!({"requests": requests, "comment": "step by step"}),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let digest = entry(&server, &token, &id).await["digest"].clone();
        let r = http()
            .post(server.admin_url(&format!("/admin/queue/{id}/approve")))
            .bearer_auth(&token)
            .json(&json!({ "digest": digest }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Killed at a different point of the batch each round: before the
        // first request, between requests, after the last.
        tokio::time::sleep(Duration::from_millis(((round * 37) % 200) as u64)).await;
        let mut child = server;
        child.child.kill().unwrap();
        child.child.wait().unwrap();
        ids.push(id);
    }
    // One last start recovers the last round; then every entry is final.
    let server = install.serve();
    let token = admin_token(&server).await;
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let mut e = entry(&server, &token, id).await;
        for _ in 0..200 {
            if !matches!(e["status"].as_str(), Some("approved" | "executing")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            e = entry(&server, &token, id).await;
        }
        let status = e["status"].as_str().unwrap().to_string();
        assert!(
            matches!(status.as_str(), "completed" | "failed"),
            "{id} ended {status}"
        );
        *outcomes.entry(status).or_default() += 1;
    }
    let mut sent: HashMap<String, usize> = HashMap::new();
    for r in mock.received_requests().await.unwrap() {
        *sent.entry(r.url.path().to_string()).or_default() += 1;
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    eprintln!(
        "reliability: {ROUNDS} kills in {:.1} s; outcomes {outcomes:?}; {} requests sent once each",
        start.elapsed().as_secs_f64(),
        sent.len()
    );
}

/// Peak resident memory of a process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// An adversarial agent for a minute: huge paths (refused and allowed),
/// large bodies until its pending caps, list calls, all at once. The
/// gateway's memory and database stay within stated bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adversarial_agent_for_a_minute_stays_within_bounds() {
    const RUN: Duration = Duration::from_secs(60);
    const RSS_BOUND_MIB: u64 = 400;
    const DB_GROWTH_BOUND_MIB: u64 = 64;
    let install = Install::new();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&mock)
        .await;
    let key = install.github_agent("adversary", &mock.uri(), "ghp_adversary");
    let server = install.serve();
    let db_before = dir_bytes(install.data.path());
    let stop = Instant::now() + RUN;
    let long = "a".repeat(60_000);
    let body = "b".repeat(900_000);
    let mut tasks = Vec::new();
    for worker in 0..12 {
        let (key, long, body) = (key.clone(), long.clone(), body.clone());
        let agent = server.url("");
        tasks.push(tokio::spawn(async move {
            let client = http();
            let mut counts: HashMap<u16, usize> = HashMap::new();
            let mut n = 0usize;
            while Instant::now() < stop {
                n += 1;
                let req = match (worker + n) % 4 {
                    0 => client.get(format!("{agent}/api/github/personal/user/keys/{long}")),
                    1 => client.get(format!("{agent}/api/github/personal/repos/{long}")),
                    2 => client
                        .post(format!("{agent}/api/queue/github/personal/submit"))
                        .json(&json!({"requests": [{"method": "POST", "path": "/x", "body": {"t": body}}],
                                      "comment": "flood"})),
                    _ => client.get(format!("{agent}/api/queue/list?limit=100")),
                };
                let status = match req.bearer_auth(&key).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                *counts.entry(status).or_default() += 1;
            }
            counts
        }));
    }
    let mut totals: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        for (s, n) in t.await.unwrap() {
            *totals.entry(s).or_default() += n;
        }
    }
    // The owner is still served.
    let (status, _) = get_json(&server.admin_url("/admin/status"), None).await;
    assert_eq!(status, 200);
    let rss_mib = peak_rss_kib(server.child.id()) / 1024;
    let db_growth_mib = dir_bytes(install.data.path()).saturating_sub(db_before) / (1024 * 1024);
    eprintln!(
        "adversary: {:?} answers in {} s; peak RSS {rss_mib} MiB; database grew {db_growth_mib} MiB",
        totals,
        RUN.as_secs()
    );
    assert!(rss_mib < RSS_BOUND_MIB, "peak RSS {rss_mib} MiB");
    assert!(
        db_growth_mib < DB_GROWTH_BOUND_MIB,
        "database grew {db_growth_mib} MiB"
    );
    assert!(
        totals.get(&429).copied().unwrap_or(0) > 0,
        "the caps answered: {totals:?}"
    );
}

/// A webhook receiver that is down half the time: for each notification it
/// refuses every other try (503), the first included, so it is down for
/// half of all tries whatever the order in which retries interleave; it
/// counts the deliveries it accepted per entry.
///
/// (A receiver that failed every other request overall could, by the
/// rhythm of interleaved retries, refuse one notification on every try.)
#[derive(Clone, Default)]
struct HalfDown {
    tries: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>,
    accepted: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

impl wiremock::Respond for HalfDown {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let ids: Vec<String> = v["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .chain(v.get("entry").cloned())
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        let first = ids.first().cloned().unwrap_or_default();
        let n = {
            let mut tries = self.tries.lock().unwrap();
            let n = tries.entry(first).or_default();
            *n += 1;
            *n
        };
        if n % 2 == 1 {
            return ResponseTemplate::new(503);
        }
        for id in ids {
            *self.accepted.lock().unwrap().entry(id).or_default() += 1;
        }
        ResponseTemplate::new(200)
    }
}

/// Webhook notifications across 20 restarts (SIGKILL) with a receiver that
/// is down half the time: every one is delivered in the end, and one is
/// delivered again only when a kill cut it between the receiver's answer
/// and its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_arrive_across_twenty_kills_with_a_receiver_down_half_the_time() {
    const KILLS: usize = 20;
    let install = Install::new();
    std::fs::write(
        install.data.path().join("config.toml"),
        "webhook_retry_secs = 1\n",
    )
    .unwrap();
    let mock = MockServer::start().await;
    let key = install.github_agent("notified", &mock.uri(), "ghp_webhooks");
    let out = install.run(&["admin", "set-password"], Some(&format!("{PASSWORD}\n")));
    assert!(out.status.success(), "{}", stderr(&out));
    let receiver = MockServer::start().await;
    let half = HalfDown::default();
    Mock::given(method("POST"))
        .respond_with(half.clone())
        .mount(&receiver)
        .await;

    let mut ids = Vec::new();
    let start = Instant::now();
    for round in 0..KILLS {
        let server = install.serve();
        let token = admin_token(&server).await;
        if round == 0 {
            let r = http()
                .patch(server.admin_url("/admin/agents/notified"))
                .bearer_auth(&token)
                .json(&json!({"webhook_url": format!("{}/hook", receiver.uri())}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let (status, v) = post_json(
            &server.url("/api/queue/github/personal/submit"),
            &key,
            &json!({"requests": [{"method": "POST", "path": format!("/r{round}")}], "comment": "c"}),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let r = http()
            .post(server.admin_url(&format!("/admin/queue/{id}/reject")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(((round * 211) % 1500) as u64)).await;
        let mut killed = server;
        killed.child.kill().unwrap();
        killed.child.wait().unwrap();
    }
    // Started once more and left running: everything arrives.
    let server = install.serve();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let missing: Vec<&String> = {
            let accepted = half.accepted.lock().unwrap();
            ids.iter()
                .filter(|id| !accepted.contains_key(*id))
                .collect::<Vec<_>>()
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {missing:?}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = half.accepted.lock().unwrap().clone();
    let again: usize = accepted.values().map(|n| n - 1).sum();
    assert!(
        again <= KILLS,
        "delivered again more often than kills: {accepted:?}"
    );
    eprintln!(
        "webhooks: {} notifications across {KILLS} kills, receiver down half the time, all delivered in {:.1} s; {again} delivered again after a kill",
        ids.len(),
        start.elapsed().as_secs_f64()
    );
}
