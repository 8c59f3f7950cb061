use std::sync::Arc;

use agentgate_core::clock::SystemClock;
use agentgate_core::{Error, Gateway};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn a_batch_runs_in_order_and_stops_at_the_first_failure() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/one"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"n": 1})))
        .mount(&app.upstream)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/two"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"message": "Validation Failed"})),
        )
        .mount(&app.upstream)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/three"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("batch");
    let (s, v) = app
        .agent(&key)
        .submit(
            "personal",
            json!({"requests": [
                {"method": "POST", "path": "/one", "body": {"a": 1}},
                {"method": "PATCH", "path": "/two", "body": "raw=text", "headers": {"content-type": "application/x-www-form-urlencoded"}},
                {"method": "DELETE", "path": "/three"}
            ], "comment": "three steps"}),
        )
        .await;
    assert_eq!(s, 201);
    let id = v["id"].as_str().unwrap();
    app.approve_api(id).await;
    let e = app.wait_done(id).await;
    assert_eq!(e.status.to_string(), "failed");
    assert_eq!(e.results.len(), 2, "{:?}", e.results);
    assert!(e.results[0].ok && !e.results[1].ok);
    assert_eq!(e.results[1].status, Some(422));
    assert_eq!(
        e.results[1].body,
        Some(json!({"message": "Validation Failed"}))
    );
    let seen = app.upstream.received_requests().await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].url.path(), "/one");
    assert_eq!(seen[1].body, b"raw=text");
    assert_eq!(
        seen[1].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn decided_entries_cannot_be_decided_again() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("a");
    let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&id, "test", None).unwrap();
    assert!(matches!(
        app.gw.approve(&id, &digest_of(&app.gw, &id), "test"),
        Err(Error::AlreadyDecided { .. })
    ));
    assert!(matches!(
        app.gw.reject(&id, "test", None),
        Err(Error::AlreadyDecided { .. })
    ));
    // Executing a rejected entry does nothing.
    let e = app.gw.execute(&id).await.unwrap();
    assert_eq!(e.status.to_string(), "rejected");
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_removed_account_fails_its_approved_entries_cleanly() {
    let app = spawn_app().await;
    let key = app.new_agent("a");
    let approved = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    let pending = app.agent(&key).submit_one("POST", "/y", json!({})).await;
    app.gw
        .approve(&approved, &digest_of(&app.gw, &approved), "test")
        .unwrap();
    app.gw.remove_account("github", "personal").unwrap();
    let e = app.gw.execute(&approved).await.unwrap();
    assert_eq!(e.status.to_string(), "failed");
    assert!(e.results[0].error.as_deref().unwrap().contains("personal"));
    // A pending one can never run: the system rejects it, saying why, and
    // the same account name added again does not bring it back.
    let e = app.gw.entry(&pending).unwrap();
    assert_eq!(e.status.to_string(), "rejected");
    assert_eq!(e.reviewed_by.as_deref(), Some("system"));
    assert!(e.rejection_reason.unwrap().contains("removed"));
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn approved_entries_not_yet_started_run_after_a_restart() {
    let mut app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/later"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("a");
    let id = app
        .agent(&key)
        .submit_one("POST", "/later", json!({}))
        .await;
    app.stop().await;
    // Approved while the server is down (as the CLI does), but never executed.
    app.gw
        .approve(&id, &digest_of(&app.gw, &id), "cli")
        .unwrap();
    let uri = app.upstream.uri();
    let restarted = Gateway::open(
        test_config(app.data.path()),
        Box::new(app.creds.clone()),
        Arc::new(SystemClock),
    )
    .unwrap();
    restarted
        .update_account("github", "personal", Some(Some(uri)), None)
        .unwrap();
    let server = agentgate_core::server::start(restarted.clone())
        .await
        .unwrap();
    for _ in 0..200 {
        if restarted.entry(&id).unwrap().status.to_string() == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        restarted.entry(&id).unwrap().status.to_string(),
        "completed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn agent_keys_survive_a_restart_and_a_wrong_credential_store_is_refused() {
    let mut app = spawn_app().await;
    let key = app.new_agent("persistent");
    app.stop().await;
    let again = Gateway::open(
        test_config(app.data.path()),
        Box::new(app.creds.clone()),
        Arc::new(SystemClock),
    )
    .unwrap();
    assert_eq!(
        again
            .authenticate(Some(&format!("Bearer {key}")))
            .unwrap()
            .name,
        "persistent"
    );
    // The same data folder with an empty credential store cannot check keys: say so.
    let err = Gateway::open(
        test_config(app.data.path()),
        Box::new(agentgate_core::credentials::MemoryStore::default()),
        Arc::new(SystemClock),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("credential backend"), "{err}");
}

#[tokio::test]
async fn a_re_added_account_uses_its_new_token_at_once() {
    use wiremock::matchers::header;
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer ghp_new_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "new"})))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("a");
    // Warm the running server's credential cache with the old token.
    assert_eq!(
        app.agent(&key).get("/api/github/personal/user").await.0,
        401
    );
    // Another process (the CLI) removes and re-adds the account under the same name.
    let cli = Gateway::open(
        test_config(app.data.path()),
        Box::new(app.creds.clone()),
        Arc::new(SystemClock),
    )
    .unwrap();
    cli.remove_account("github", "personal").unwrap();
    cli.add_account(agentgate_core::NewAccount {
        service: "github".into(),
        name: "personal".into(),
        base_url: Some(app.upstream.uri()),
        credentials: [(
            "token".to_string(),
            agentgate_core::secret::Secret::new("ghp_new_token"),
        )]
        .into_iter()
        .collect(),
    })
    .unwrap();
    tokio::time::sleep(agentgate_core::CROSS_PROCESS_DELAY * 2).await;
    let (s, v) = app.agent(&key).get("/api/github/personal/user").await;
    assert_eq!(s, 200, "the server kept the old token: {v}");
    assert_eq!(v["login"], "new");
}

/// One agent's pending writes are capped in number and stored size: past
/// either, a submission is refused (429) until decisions or withdrawals make
/// room; other agents are not affected.
#[tokio::test]
async fn an_agents_pending_writes_are_capped() {
    use agentgate_core::config::{MAX_PENDING_BYTES_PER_AGENT, MAX_PENDING_PER_AGENT};
    let app = spawn_app().await;
    app.no_rate_limits();
    let key = app.new_agent("flood");
    let mut ids = Vec::new();
    for _ in 0..MAX_PENDING_PER_AGENT {
        ids.push(app.agent(&key).submit_one("POST", "/x", json!({})).await);
    }
    let (s, v) = app
        .agent(&key)
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "one more"}),
        )
        .await;
    assert_eq!(s, 429, "{v}");
    let other = app.new_agent("other");
    app.agent(&other).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&ids[0], "test", None).unwrap();
    app.agent(&key).submit_one("POST", "/x", json!({})).await;

    // By size: bodies of almost a MiB fill the byte cap before the count.
    let big = app.new_agent("big");
    let text = "x".repeat(1000 * 1000);
    let fit = MAX_PENDING_BYTES_PER_AGENT / (1000 * 1000 + 200);
    for _ in 0..fit {
        app.agent(&big)
            .submit_one("POST", "/x", json!({ "t": text }))
            .await;
    }
    let (s, _) = app
        .agent(&big)
        .submit("personal", json!({"requests": [{"method": "POST", "path": "/x", "body": {"t": text}}], "comment": "c"}))
        .await;
    assert_eq!(s, 429);
}

/// Submitting and withdrawing in a loop does not store without bound: what
/// an agent submitted in the last 24 hours counts against its bytes cap, and
/// a withdrawn entry is removed after those 24 hours.
#[tokio::test]
async fn withdrawing_does_not_reopen_the_bytes_cap_at_once() {
    use agentgate_core::config::MAX_PENDING_BYTES_PER_AGENT;
    let clock = Arc::new(agentgate_core::clock::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let app = spawn_app_with_clock(clock.clone()).await;
    app.no_rate_limits();
    let key = app.new_agent("churn");
    let agent = app.agent(&key);
    let big = json!({"requests": [{"method": "POST", "path": "/x", "body": {"t": "x".repeat(1000 * 1000)}}], "comment": "c"});
    let fit = MAX_PENDING_BYTES_PER_AGENT / (1000 * 1000 + 200);
    for _ in 0..fit {
        let (s, v) = agent.submit("personal", big.clone()).await;
        assert_eq!(s, 201, "{v}");
        let r = agent
            .req(
                reqwest::Method::DELETE,
                &format!(
                    "/api/queue/github/personal/status/{}",
                    v["id"].as_str().unwrap()
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (s, v) = agent.submit("personal", big.clone()).await;
    assert_eq!(s, 429, "{v}");
    assert!(v["error"].as_str().unwrap().contains("24 hours"), "{v}");

    // A day later the withdrawn entries are gone and the cap is open again.
    clock.advance(time::Duration::hours(24) + time::Duration::minutes(1));
    assert_eq!(app.gw.prune_decided().unwrap(), fit);
    let (s, v) = agent.submit("personal", big).await;
    assert_eq!(s, 201, "{v}");
}

/// Writes a rule runs at once count against the bytes cap too: an agent
/// with auto-approval cannot fill the database either. Bytes, not
/// characters: each body here is a million bytes in 250,000 characters.
#[tokio::test]
async fn writes_run_at_once_count_against_the_bytes_cap() {
    use agentgate_core::config::MAX_PENDING_BYTES_PER_AGENT;
    use agentgate_core::policy::Effect;
    let app = spawn_app().await;
    app.no_rate_limits();
    app.gw
        .set_account_rules(
            "github",
            "personal",
            vec![agentgate_core::RuleSpec {
                method: Some("POST".into()),
                path: "/x".into(),
                agents: vec![],
                effect: Effect::AutoApprove,
            }],
        )
        .unwrap();
    let key = app.new_agent("auto");
    let agent = app.agent(&key);
    let big = json!({"requests": [{"method": "POST", "path": "/x", "body": {"t": "😀".repeat(250 * 1000)}}], "comment": "c"});
    let fit = MAX_PENDING_BYTES_PER_AGENT / (1000 * 1000 + 200);
    for _ in 0..fit {
        let (s, v) = agent.submit("personal", big.clone()).await;
        assert!(s == 200 || s == 201 || s == 202, "{s}: {v}");
        assert_ne!(v["status"], "pending", "{v}");
    }
    let (s, v) = agent.submit("personal", big).await;
    assert_eq!(s, 429, "{v}");
}
