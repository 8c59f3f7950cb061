//! Webhooks to agents against a local receiver: payload, token, retries with
//! back-off, no loss across a restart, retry-one, retry-all, test-send; and
//! waiting on a status.

use std::sync::Arc;
use std::time::Duration;

use agentgate_core::Gateway;
use agentgate_core::clock::ManualClock;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

async fn receiver(status: u16) -> MockServer {
    let r = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/wake"))
        .and(header("authorization", "Bearer hook-token"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&r)
        .await;
    r
}

async fn with_webhook(app: &TestApp, agent: &str, receiver: &MockServer) {
    let (s, v) = app
        .admin(
            Method::PATCH,
            &format!("/admin/keys/{agent}"),
            Some(json!({"webhook_url": format!("{}/hooks/wake", receiver.uri()), "webhook_token": "hook-token"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["agent"]["has_webhook_token"], true);
    assert!(
        !v.to_string().contains("hook-token"),
        "the token is never shown"
    );
}

async fn upstream_creates_issue(app: &TestApp) {
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"number": 7, "html_url": "https://github.com/o/r/issues/7"})),
        )
        .mount(&app.upstream)
        .await;
}

async fn bodies(r: &MockServer) -> Vec<Value> {
    r.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|q| serde_json::from_slice(&q.body).unwrap())
        .collect()
}

#[tokio::test]
async fn outcomes_are_posted_to_the_agents_webhook_with_its_token() {
    let app = spawn_app().await;
    upstream_creates_issue(&app).await;
    let hook = receiver(200).await;
    let key = app.new_agent("bot");
    let quiet = app.new_agent("quiet");
    with_webhook(&app, "bot", &hook).await;

    let done = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({"title": "t"}))
        .await;
    app.gw
        .approve(&done, &digest_of(&app.gw, &done), "test")
        .unwrap();
    app.gw.execute(&done).await.unwrap();
    let rejected = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;
    app.gw
        .reject(&rejected, "cli", Some("not now".into()))
        .unwrap();
    let other = app.agent(&quiet).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&other, "cli", None).unwrap();

    assert_eq!(app.gw.deliver_due().await.unwrap(), 2);
    let got = bodies(&hook).await;
    assert_eq!(
        got.len(),
        2,
        "approval is not announced by default; the quiet agent has no webhook"
    );
    assert_eq!(
        got[0]["text"],
        format!(
            "✅ [agentgate] Queue #{done} completed\n→ github/personal\n→ https://github.com/o/r/issues/7\nOriginal: \"test write\""
        )
    );
    assert_eq!(got[0]["mode"], "now");
    assert_eq!(got[0]["type"], "queue.completed");
    assert_eq!(got[0]["entry"]["id"], done.as_str());
    assert!(
        got[1]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("🚫 [agentgate] Queue #{rejected} rejected"))
    );
    assert!(
        got[1]["text"]
            .as_str()
            .unwrap()
            .contains("Reason: \"not now\"")
    );

    // The entry shows the delivery, to the admin and to the agent.
    let (_, v) = app
        .admin(Method::GET, &format!("/admin/queue/{done}"), None)
        .await;
    assert_eq!(v["notification"]["status"], "delivered");
    assert!(v["notification"]["delivered_at"].is_string());
    let (_, st) = app
        .agent(&key)
        .get(&format!("/api/queue/github/personal/status/{done}"))
        .await;
    assert_eq!(st["notification"]["status"], "delivered");
    assert!(app.gw.entry(&other).unwrap().notification.is_none());
    // Nothing is sent twice.
    assert_eq!(app.gw.deliver_due().await.unwrap(), 0);
    assert_eq!(hook.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn failed_deliveries_back_off_and_survive_a_restart() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let mut app = spawn_app_with_clock(clock.clone()).await;
    let hook = receiver(503).await;
    let key = app.new_agent("bot");
    with_webhook(&app, "bot", &hook).await;
    let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&id, "cli", None).unwrap();

    assert_eq!(app.gw.deliver_due().await.unwrap(), 0);
    let n = app.gw.entry(&id).unwrap().notification.unwrap();
    assert_eq!((n.status.as_str(), n.attempts), ("pending", 1));
    assert!(n.last_error.unwrap().contains("503"));
    // Not due again before the back-off has passed.
    assert_eq!(app.gw.deliver_due().await.unwrap(), 0);
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);

    // The receiver recovers while agentgate restarts.
    hook.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    app.stop().await;
    let restarted = Gateway::open(
        test_config(app.data.path()),
        Box::new(app.creds.clone()),
        clock.clone(),
    )
    .unwrap();
    clock.advance(time::Duration::minutes(2));
    assert_eq!(restarted.deliver_due().await.unwrap(), 1);
    let n = restarted.entry(&id).unwrap().notification.unwrap();
    assert_eq!((n.status.as_str(), n.attempts), ("delivered", 2));
}

#[tokio::test]
async fn given_up_notifications_are_retried_one_by_one_or_all_at_once() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let hook = receiver(500).await;
    let key = app.new_agent("bot");
    with_webhook(&app, "bot", &hook).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
        app.gw.reject(&id, "cli", None).unwrap();
        ids.push(id);
    }
    for _ in 0..6 {
        app.gw.deliver_due().await.unwrap();
        clock.advance(time::Duration::hours(2));
    }
    for id in &ids {
        let n = app.gw.entry(id).unwrap().notification.unwrap();
        assert_eq!((n.status.as_str(), n.attempts), ("failed", 6), "{id}");
    }
    assert_eq!(hook.received_requests().await.unwrap().len(), 18);
    hook.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;

    // (A week of manual time passed: log in again.)
    let (_, failed) = {
        let n = app.gw.notifications(Some("bot"), Some("failed")).unwrap();
        (n.len(), n)
    };
    let one = failed.iter().find(|n| n.event == "rejected").unwrap().id;
    let n = app.gw.retry_notification(one).await.unwrap();
    assert_eq!(n.status, "delivered");
    assert_eq!(app.gw.retry_all_notifications("bot").await.unwrap(), 2);
    let got = bodies(&hook).await;
    assert_eq!(
        got.len(),
        2,
        "one retried alone, the other two in one batch"
    );
    let batch = got[1]["text"].as_str().unwrap();
    assert!(
        batch.starts_with("📬 [agentgate] 2 missed updates"),
        "{batch}"
    );
    assert_eq!(got[1]["type"], "queue.batch");
    assert_eq!(got[1]["entries"].as_array().unwrap().len(), 2);
    assert!(
        app.gw
            .notifications(Some("bot"), Some("failed"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.gw.retry_all_notifications("bot").await.unwrap(), 0);
}

#[tokio::test]
async fn a_test_send_checks_the_setup_and_approvals_can_be_announced() {
    let app = spawn_app().await;
    upstream_creates_issue(&app).await;
    let hook = receiver(200).await;
    let key = app.new_agent("bot");
    let (s, _) = app
        .admin(Method::POST, "/admin/keys/bot/webhook/test", None)
        .await;
    assert_ne!(s, 200, "no webhook yet");
    with_webhook(&app, "bot", &hook).await;
    let (s, v) = app
        .admin(Method::POST, "/admin/keys/bot/webhook/test", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(bodies(&hook).await[0]["type"], "test");

    app.admin(
        Method::PATCH,
        "/admin/keys/bot",
        Some(json!({"webhook_on_approved": true})),
    )
    .await;
    let id = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;
    app.approve_api(&id).await;
    app.wait_done(&id).await;
    app.gw.deliver_due().await.unwrap();
    let types: Vec<Value> = bodies(&hook)
        .await
        .iter()
        .map(|b| b["type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("test"),
            json!("queue.approved"),
            json!("queue.completed")
        ]
    );
    let (_, list) = app
        .admin(Method::GET, "/admin/notifications?agent=bot", None)
        .await;
    assert_eq!(list["count"], 2);
    for bad in [
        json!({"webhook_url": "ftp://x"}),
        json!({"webhook_url": "https://u:p@x/"}),
    ] {
        assert_eq!(
            app.admin(Method::PATCH, "/admin/keys/bot", Some(bad.clone()))
                .await
                .0,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        app.admin(Method::GET, "/admin/notifications?status=lost", None)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn a_status_request_can_wait_for_the_decision() {
    let app = spawn_app().await;
    upstream_creates_issue(&app).await;
    let key = app.new_agent("patient");
    let id = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;
    let gw = app.gw.clone();
    let approver = {
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            gw.approve(&id, &digest_of(&gw, &id), "test").unwrap();
            gw.execute(&id).await.unwrap();
        })
    };
    let start = std::time::Instant::now();
    let (s, v) = app
        .agent(&key)
        .get(&format!("/api/queue/github/personal/status/{id}?wait=10"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "completed", "{v}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "answered once decided"
    );
    approver.await.unwrap();
    // Without wait, or with a bad one, it answers at once.
    assert_eq!(
        app.agent(&key)
            .get(&format!("/api/queue/github/personal/status/{id}?wait=abc"))
            .await
            .0,
        400
    );
}

/// A slow agent endpoint delays only its own notifications: while the
/// server is still waiting for it, another agent's arrive.
#[tokio::test]
async fn a_slow_webhook_does_not_hold_up_other_agents() {
    let app = spawn_app().await;
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(6)))
        .mount(&slow)
        .await;
    let fast = receiver(200).await;
    let (a, b) = (app.new_agent("slowpoke"), app.new_agent("quick"));
    with_webhook(&app, "slowpoke", &slow).await;
    with_webhook(&app, "quick", &fast).await;
    let id = app.agent(&a).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&id, "test", None).unwrap();
    // The server's delivery loop (every second) is now waiting on the slow one.
    let start = std::time::Instant::now();
    while slow.received_requests().await.unwrap().is_empty() {
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let id = app.agent(&b).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&id, "test", None).unwrap();
    let start = std::time::Instant::now();
    while fast.received_requests().await.unwrap().is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(3),
            "the quick agent waited for the slow one"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_plain_http_webhook_elsewhere_needs_explicit_permission() {
    let app = spawn_app().await;
    app.new_agent("bot");
    let set = |body: Value| app.admin(Method::PATCH, "/admin/agents/bot", Some(body));
    let (s, v) = set(json!({"webhook_url": "http://agent.example/hooks/wake"})).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = set(json!({"webhook_url": "https://agent.example/hooks/wake"})).await;
    assert_eq!(s, 200);
    let (s, _) =
        set(json!({"webhook_url": "http://agent.example/hooks/wake", "allow_plain_http": true}))
            .await;
    assert_eq!(s, 200);
}
