//! Access control and endpoint policy, end to end over HTTP. Every change takes
//! effect on the next request, without a restart.

use std::sync::Arc;
use std::time::Duration;

use agentgate_core::clock::ManualClock;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn access_lists_hide_the_account_from_everyone_left_out() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let alice = app.new_agent("alice");
    let bob = app.new_agent("bob");
    let earlier = app
        .agent(&bob)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;

    let (s, v) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/access",
            Some(json!({"mode": "allowlist", "agents": ["alice"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["policy"]["access_agents"], json!(["alice"]));

    let denied = json!({"error": "Access denied to github/personal"});
    let b = app.agent(&bob);
    for p in [
        "/api/github/personal/user".to_string(),
        "/api/github/personal".to_string(),
        "/api/queue/github/personal/list".to_string(),
        format!("/api/queue/github/personal/status/{earlier}"),
    ] {
        let (s, v) = b.get(&p).await;
        assert_eq!((s, v), (403, denied.clone()), "{p}");
    }
    let (s, v) = b
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"}),
        )
        .await;
    assert_eq!((s, v), (403, denied.clone()));
    let r = b
        .req(
            Method::DELETE,
            &format!("/api/queue/github/personal/status/{earlier}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Bob's documents no longer mention the account; his list drops its entries.
    for p in ["/api/services", "/api/readme"] {
        let (_, v) = b.get(p).await;
        assert!(
            !v.to_string().contains("github/personal") && !v.to_string().contains("\"personal\""),
            "{p}: {v}"
        );
    }
    let skill = b
        .req(Method::GET, "/api/skill")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!skill.contains("github/personal"));
    assert_eq!(b.get("/api/queue/list").await.1["count"], 0);
    // Alice still has everything.
    let a = app.agent(&alice);
    assert_eq!(a.get("/api/github/personal/user").await.0, 200);
    assert!(
        a.get("/api/services")
            .await
            .1
            .to_string()
            .contains("personal")
    );

    // A denylist flips it; "all" restores everyone.
    app.admin(
        Method::PUT,
        "/admin/accounts/github/personal/access",
        Some(json!({"mode": "denylist", "agents": ["alice"]})),
    )
    .await;
    assert_eq!(a.get("/api/github/personal/user").await.0, 403);
    assert_eq!(b.get("/api/github/personal/user").await.0, 200);
    app.admin(
        Method::PUT,
        "/admin/accounts/github/personal/access",
        Some(json!({"mode": "all"})),
    )
    .await;
    assert_eq!(a.get("/api/github/personal/user").await.0, 200);
}

#[tokio::test]
async fn rules_deny_allow_require_approval_and_auto_approve() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"number": 1})))
        .mount(&app.upstream)
        .await;
    ok_upstream(&app).await;
    let bot = app.new_agent("bot");
    let other = app.new_agent("other");
    let (s, v) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/rules",
            Some(json!({"rules": [
                {"path": "/repos/*/secrets*", "effect": "deny"},
                {"method": "DELETE", "path": "/**", "effect": "deny"},
                {"method": "POST", "path": "/repos/*/*/issues", "agents": ["bot"], "effect": "auto_approve"},
                {"method": "POST", "path": "/repos/*/*/issues/*/comments", "effect": "require_approval"}
            ]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let b = app.agent(&bot);
    // Reads can be denied, whatever the spelling.
    for p in [
        "/api/github/personal/repos/octo/secrets",
        "/api/github/personal/REPOS/octo/Secrets/x",
    ] {
        let (s, v) = b.get(p).await;
        assert_eq!(s, 403, "{p}: {v}");
        assert!(v["error"].as_str().unwrap().contains("rule 1"), "{v}");
    }
    assert_eq!(b.get("/api/github/personal/repos/octo/r").await.0, 200);
    // A denied write is refused at submit and never queued.
    let (s, v) = b
        .submit(
            "personal",
            json!({"requests": [{"method": "DELETE", "path": "/repos/o/r"}], "comment": "c"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"].as_str().unwrap().starts_with("requests[0]"),
        "{v}"
    );
    // Auto-approved for bot: recorded, approved by rule, executed.
    let (s, v) = b
        .submit("personal", json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "t"}}], "comment": "c"}))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "approved");
    assert!(v["message"].as_str().unwrap().contains("policy"));
    let e = app.wait_done(v["id"].as_str().unwrap()).await;
    assert_eq!(e.status.to_string(), "completed");
    assert!(
        e.reviewed_by.as_deref().unwrap().starts_with("rule"),
        "{:?}",
        e.reviewed_by
    );
    // The same write from another agent waits for a human, as does a comment from bot.
    let id = app
        .agent(&other)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;
    assert_eq!(app.gw.entry(&id).unwrap().status.to_string(), "pending");
    let (_, v) = b
        .submit("personal", json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues/1/comments"}], "comment": "c"}))
        .await;
    assert_eq!(v["status"], "pending");
    // A batch with one request that needs a human waits as a whole.
    let (_, v) = b
        .submit(
            "personal",
            json!({"requests": [
            {"method": "POST", "path": "/repos/o/r/issues"},
            {"method": "PATCH", "path": "/repos/o/r/issues/1"}], "comment": "c"}),
        )
        .await;
    assert_eq!(v["status"], "pending");
}

#[tokio::test]
async fn trusted_agents_and_grants_auto_approve() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    ok_upstream(&app).await;
    let key = app.new_agent("helper");
    let a = app.agent(&key);
    assert_eq!(
        a.submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"})
        )
        .await
        .1["status"],
        "pending"
    );

    let (s, v) = app
        .admin(
            Method::PATCH,
            "/admin/keys/helper",
            Some(json!({"trusted": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(v["warning"].as_str().unwrap().contains("without asking"));
    assert_eq!(
        a.submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"})
        )
        .await
        .1["status"],
        "approved"
    );
    app.admin(
        Method::PATCH,
        "/admin/keys/helper",
        Some(json!({"trusted": false})),
    )
    .await;

    let (s, v) = app
        .admin(Method::POST, "/admin/grants", Some(json!({"agent": "helper", "service": "github", "account": "personal", "minutes": 15})))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        app.admin(Method::GET, "/admin/grants", None).await.1["grants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"})
        )
        .await
        .1["status"],
        "approved"
    );
    clock.advance(time::Duration::minutes(16));
    assert_eq!(
        a.submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"})
        )
        .await
        .1["status"],
        "pending"
    );
    assert!(
        app.admin(Method::GET, "/admin/grants", None).await.1["grants"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for bad in [
        json!({"agent": "helper", "service": "github", "account": "personal", "minutes": 0}),
        json!({"agent": "helper", "service": "github", "account": "personal", "minutes": 100000}),
        json!({"agent": "nobody", "service": "github", "account": "personal", "minutes": 5}),
    ] {
        let (s, _) = app
            .admin(Method::POST, "/admin/grants", Some(bad.clone()))
            .await;
        assert!(s == 400 || s == 404, "{bad}: {s}");
    }
    // Let auto-approved executions finish before the mock goes away.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn dry_runs_explain_the_decision() {
    let app = spawn_app().await;
    app.new_agent("bot");
    app.admin(
        Method::PUT,
        "/admin/accounts/github/personal/rules",
        Some(json!({"rules": [{"method": "POST", "path": "/repos/*/*/issues", "effect": "auto_approve"}]})),
    )
    .await;
    let run = |method: &'static str, p: &'static str| {
        app.admin(
            Method::POST,
            "/admin/accounts/github/personal/dry-run",
            Some(json!({"agent": "bot", "method": method, "path": p})),
        )
    };
    let (s, v) = run("post", "/repos/o/r/issues").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["decision"]["outcome"], "auto_approve");
    assert_eq!(v["decision"]["rule"], 0);
    assert!(v["decision"]["reason"].as_str().unwrap().contains("rule 1"));
    assert_eq!(
        run("PATCH", "/repos/o/r/issues/1").await.1["decision"]["outcome"],
        "queue"
    );
    assert_eq!(run("GET", "/user").await.1["decision"]["outcome"], "read");
    let (s, _) = run("GET", "/../etc").await;
    assert_eq!(s, 400);
    assert!(
        app.upstream.received_requests().await.unwrap().is_empty(),
        "a dry run calls nothing"
    );
}

#[tokio::test]
async fn bad_policy_input_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    app.new_agent("bot");
    let put_rules = |rules: Value| {
        app.admin(
            Method::PUT,
            "/admin/accounts/github/personal/rules",
            Some(json!({"rules": rules})),
        )
    };
    for (rules, want) in [
        (
            json!([{"method": "BREW", "path": "/x", "effect": "deny"}]),
            400,
        ),
        (json!([{"path": "no-slash", "effect": "deny"}]), 400),
        (json!([{"path": "/x", "effect": "maybe"}]), 400),
        (
            json!([{"path": "/x", "effect": "deny", "agents": ["ghost"]}]),
            404,
        ),
        (json!([{"path": "/x", "effect": "deny", "extra": 1}]), 400),
    ] {
        let (s, v) = put_rules(rules.clone()).await;
        assert_eq!(s, want, "{rules}: {v}");
    }
    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/access",
            Some(json!({"mode": "everyone"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/nobody/access",
            Some(json!({"mode": "all"})),
        )
        .await;
    assert_eq!(s, 404);
    let (_, v) = app
        .admin(Method::GET, "/admin/accounts/github/personal/policy", None)
        .await;
    assert_eq!(v["policy"]["access_mode"], "all");
    assert_eq!(v["policy"]["access_agents"], json!([]));
    assert_eq!(v["policy"]["rules"], json!([]));
    assert_eq!(v["policy"]["rule_words"], json!([]));
}

#[tokio::test]
async fn pausing_refuses_reads_and_submissions_from_any_surface() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let key = app.new_agent("a");
    let a = app.agent(&key);
    let id = a.submit_one("POST", "/x", json!({})).await;
    let (s, v) = app
        .admin(Method::PUT, "/admin/pause", Some(json!({"paused": true})))
        .await;
    assert_eq!((s, v), (200, json!({"paused": true})));
    let (s, v) = a.get("/api/github/personal/user").await;
    assert_eq!(s, 503);
    assert!(v["error"].as_str().unwrap().contains("paused"), "{v}");
    assert_eq!(
        a.submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"})
        )
        .await
        .0,
        503
    );
    let r = a
        .req(Method::POST, "/api/github/personal/x")
        .header("x-agentgate-comment", "c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Agents can still see where their entries stand.
    assert_eq!(
        a.get(&format!("/api/queue/github/personal/status/{id}"))
            .await
            .0,
        200
    );
    // Another process (the CLI) resumes; the running server sees it for
    // requests that arrive a millisecond later.
    let cli = agentgate_core::Gateway::open(
        test_config(app.data.path()),
        Box::new(app.creds.clone()),
        Arc::new(agentgate_core::clock::SystemClock),
    )
    .unwrap();
    cli.set_paused(false).unwrap();
    tokio::time::sleep(agentgate_core::CROSS_PROCESS_DELAY * 2).await;
    assert_eq!(a.get("/api/github/personal/user").await.0, 200);
    assert_eq!(
        app.admin(Method::GET, "/admin/pause", None).await.1["paused"],
        false
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_recover() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    ok_upstream(&app).await;
    let (s, _) = app
        .admin(
            Method::PATCH,
            "/admin/settings",
            Some(json!({"reads_per_minute": 3, "submissions_per_hour": 2})),
        )
        .await;
    assert_eq!(s, 200);
    let key = app.new_agent("busy");
    let other = app.new_agent("other");
    let a = app.agent(&key);
    for _ in 0..3 {
        assert_eq!(a.get("/api/github/personal/user").await.0, 200);
    }
    let r = a
        .req(Method::GET, "/api/github/personal/user")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(
        app.agent(&other).get("/api/github/personal/user").await.0,
        200,
        "limits are per agent"
    );
    clock.advance(time::Duration::seconds(61));
    assert_eq!(a.get("/api/github/personal/user").await.0, 200);

    let body = json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"});
    assert_eq!(a.submit("personal", body.clone()).await.0, 201);
    assert_eq!(a.submit("personal", body.clone()).await.0, 201);
    let (s, v) = a.submit("personal", body.clone()).await;
    assert_eq!(s, 429, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("2 submissions per hour")
    );
    clock.advance(time::Duration::hours(1));
    assert_eq!(a.submit("personal", body).await.0, 201);
}

#[tokio::test]
async fn pending_entries_expire_and_cannot_be_decided_afterwards() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let key = app.new_agent("a");
    let old = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    clock.advance(time::Duration::days(6));
    let young = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    assert!(app.gw.expire_pending().unwrap().is_empty());
    clock.advance(time::Duration::days(1) + time::Duration::minutes(1));
    assert_eq!(app.gw.expire_pending().unwrap(), vec![old.clone()]);
    let (_, st) = app
        .agent(&key)
        .get(&format!("/api/queue/github/personal/status/{old}"))
        .await;
    assert_eq!(st["status"], "expired");
    assert!(
        st["rejection_reason"]
            .as_str()
            .unwrap()
            .contains("168 hours")
    );
    // (The admin's session expired with the week that passed; the core says the same.)
    assert!(matches!(
        app.gw.approve(&old, &digest_of(&app.gw, &old), "test"),
        Err(agentgate_core::Error::AlreadyDecided { .. })
    ));
    assert_eq!(app.gw.entry(&young).unwrap().status.to_string(), "pending");
    // A shorter lifetime applies from the next sweep.
    app.gw
        .update_settings(agentgate_core::SettingsUpdate {
            pending_expiry_hours: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(app.gw.expire_pending().unwrap(), vec![young]);
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}
