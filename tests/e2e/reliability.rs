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
