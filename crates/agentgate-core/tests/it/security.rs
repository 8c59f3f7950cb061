//! Tests that try to break the security rules: agents never reach admin actions,
//! agents never see each other's entries, credentials only go to the account's
//! own host, and an approved write runs at most once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// Every admin route, with a body where one is needed.
fn admin_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/admin/queue"),
        (Method::GET, "/admin/queue/someid"),
        (Method::POST, "/admin/queue/someid/approve"),
        (Method::POST, "/admin/queue/someid/reject"),
        (Method::GET, "/admin/keys"),
        (Method::POST, "/admin/keys"),
        (Method::PATCH, "/admin/keys/somename"),
        (Method::DELETE, "/admin/keys/somename"),
        (Method::GET, "/admin/accounts"),
        (Method::POST, "/admin/accounts"),
        (Method::GET, "/admin/accounts/github/personal"),
        (Method::PATCH, "/admin/accounts/github/personal"),
        (Method::DELETE, "/admin/accounts/github/personal"),
        (Method::POST, "/admin/accounts/github/personal/test"),
        (Method::GET, "/admin/services"),
        (Method::GET, "/admin/settings"),
        (Method::PATCH, "/admin/settings"),
        (Method::POST, "/admin/logout"),
    ]
}

#[tokio::test]
async fn agent_keys_reach_no_admin_action_on_either_listener() {
    let app = spawn_app().await;
    let key = app.new_agent("sneaky");
    let c = app.agent(&key);
    let id = c
        .submit_one("POST", "/repos/o/r/issues", json!({"title": "x"}))
        .await;
    for (m, route) in admin_routes() {
        let route = route.replace("someid", &id).replace("somename", "sneaky");
        // On the admin listener, with the agent key as bearer and as cookie.
        let r = app
            .http
            .request(m.clone(), format!("{}{route}", app.admin_url))
            .bearer_auth(&key)
            .json(&json!({"name": "x", "enabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {route} with an agent key");
        let r = app
            .http
            .request(m.clone(), format!("{}{route}", app.admin_url))
            .header("cookie", format!("agentgate_session={key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {route} with an agent key as cookie");
        // On the agent listener the admin routes do not exist at all.
        let r = c
            .req(m.clone(), &route)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 404 || r.status() == 405,
            "{m} {route} on the agent listener gave {}",
            r.status()
        );
        // And without any credential at all.
        let r = app
            .http
            .request(m.clone(), format!("{}{route}", app.admin_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {route} anonymously");
    }
    // Nothing changed: the entry is still pending, the agent still enabled.
    assert_eq!(app.gw.entry(&id).unwrap().status.to_string(), "pending");
    assert!(app.gw.agent("sneaky").unwrap().enabled);
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_admin_token_is_not_an_agent_key_either() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/api/services", app.agent_url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn agents_cannot_see_or_withdraw_each_others_entries() {
    let app = spawn_app().await;
    let first = app.new_agent("first");
    let second = app.new_agent("second");
    let id = app
        .agent(&first)
        .submit_one("POST", "/repos/o/r/issues", json!({"title": "x"}))
        .await;
    let other = app.agent(&second);
    let (s, v) = other
        .get(&format!("/api/queue/github/personal/status/{id}"))
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(!v.to_string().contains("test write"));
    let r = other
        .req(
            Method::DELETE,
            &format!("/api/queue/github/personal/status/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, l) = other.get("/api/queue/list").await;
    assert_eq!(l["count"], 0);
    assert_eq!(app.gw.entry(&id).unwrap().status.to_string(), "pending");
    // The owner sees it only under its own service/account.
    let (s, _) = app
        .agent(&first)
        .get(&format!("/api/queue/github/personal/status/{id}"))
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn credentials_never_leave_the_accounts_host() {
    let app = spawn_app().await;
    let evil = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_string("stolen"))
        .mount(&evil)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&app.upstream)
        .await;
    let host = evil.address().to_string();
    let key = app.new_agent("a");
    let c = app.agent(&key);
    let attempts = [
        format!("/api/github/personal//{host}/x"),
        format!("/api/github/personal/http://{host}/x"),
        format!("/api/github/personal/http:%2F%2F{host}/x"),
        format!("/api/github/personal/%2F%2F{host}/x"),
        format!("/api/github/personal/..%2f..%2f{host}/x"),
        format!("/api/github/personal/%2e%2e/%2e%2e/{host}"),
        format!("/api/github/personal/@{host}/x"),
        format!("/api/github/personal/x?next=http://{host}/"),
        format!("/api/github/personal/%5C%5C{host}/x"),
    ];
    for a in &attempts {
        let status = raw_get(app.agent_addr(), a, &key).await;
        assert!(status == 400 || status == 200, "{a}: {status}");
        // Through an ordinary client too, with routing headers that must be ignored.
        let r = c
            .req(Method::GET, a)
            .header("x-forwarded-host", &host)
            .header("forwarded", format!("host={host}"))
            .send()
            .await
            .unwrap();
        // (The client itself may normalise the path into another gateway route: 404.)
        assert!(
            [200, 400, 404].contains(&r.status().as_u16()),
            "{a}: {}",
            r.status()
        );
    }
    // Queued writes get the same rules, at submit and at execution.
    for p in [
        format!("//{host}/x"),
        format!("http://{host}/x"),
        format!("/%2F{host}/x"),
    ] {
        let (s, _) = c
            .submit(
                "personal",
                json!({"requests": [{"method": "POST", "path": p}], "comment": "c"}),
            )
            .await;
        assert_eq!(s, 400, "{p}");
    }
    let (s, v) = c
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": format!("/@{host}/x"),
                                 "headers": {"Host": host, "X-Forwarded-Host": host, "Forwarded": format!("host={host}")}}],
                   "comment": "c"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    app.gw.approve(id, &digest_of(&app.gw, id), "test").unwrap();
    let e = app.gw.execute(id).await.unwrap();
    assert_eq!(e.status.to_string(), "completed", "{e:?}");

    assert!(
        evil.received_requests().await.unwrap().is_empty(),
        "the other host saw a request"
    );
    for r in app.upstream.received_requests().await.unwrap() {
        assert_eq!(
            r.headers["host"].to_str().unwrap(),
            app.upstream.address().to_string()
        );
        assert!(r.headers.get("x-forwarded-host").is_none());
    }
}

#[tokio::test]
async fn redirects_to_other_hosts_are_not_followed() {
    let app = spawn_app().await;
    let evil = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&evil)
        .await;
    Mock::given(path("/moved"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/steal", evil.uri())),
        )
        .mount(&app.upstream)
        .await;
    Mock::given(path("/renamed"))
        .respond_with(
            ResponseTemplate::new(301)
                .insert_header("location", format!("{}/repos/new", app.upstream.uri())),
        )
        .mount(&app.upstream)
        .await;
    Mock::given(path("/repos/new"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "new"})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("a");
    let r = app
        .agent(&key)
        .req(Method::GET, "/api/github/personal/moved")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "the redirect is handed back, not followed");
    assert!(evil.received_requests().await.unwrap().is_empty());
    // Same-host redirects (renamed repositories) are followed.
    let (s, v) = app.agent(&key).get("/api/github/personal/renamed").await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "new");
}

#[tokio::test]
async fn concurrent_approvals_run_the_batch_once() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_millis(100)))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("a");
    let id = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({"title": "once"}))
        .await;
    let approvals = (0..8).map(|_| app.approve_api(&id));
    let statuses: Vec<u16> = futures::future::join_all(approvals)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    // Racing executors on the same approved entry also run it once.
    let runs = (0..8).map(|_| app.gw.execute(&id));
    futures::future::join_all(runs).await;
    let e = app.wait_done(&id).await;
    assert_eq!(e.status.to_string(), "completed");
    let posts = app.upstream.received_requests().await.unwrap();
    assert_eq!(posts.len(), 1, "the write ran {} times", posts.len());
}

#[tokio::test]
async fn oversized_and_slow_upstream_answers_are_cut_off() {
    let app = spawn_app().await;
    let key = app.new_agent("a");
    Mock::given(path("/huge"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 10 * 1024 * 1024 + 1]))
        .mount(&app.upstream)
        .await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&app.upstream)
        .await;
    let (s, v) = app.agent(&key).get("/api/github/personal/huge").await;
    assert_eq!(s, 502, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit"));
    let (s, _) = app
        .admin(
            Method::PATCH,
            "/admin/settings",
            Some(json!({"upstream_timeout_secs": 1})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = app.agent(&key).get("/api/github/personal/slow").await;
    assert_eq!(s, 504, "{v}");
    let (s, _) = app.agent(&key).get("/api/services").await;
    assert_eq!(s, 200, "still serving");
}

#[tokio::test]
async fn secrets_do_not_appear_in_the_database_file() {
    let app = spawn_app().await;
    let key = app.new_agent("a");
    let _ = app.agent(&key).get("/api/github/personal/user").await;
    let mut app = app;
    app.stop().await;
    let mut bytes = std::fs::read(app.data.path().join("agentgate.db")).unwrap();
    if let Ok(wal) = std::fs::read(app.data.path().join("agentgate.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(TOKEN),
        "the service token is in the database"
    );
    assert!(!text.contains(&key), "an agent key is in the database");
    assert!(
        !text.contains(ADMIN_PASSWORD),
        "the admin password is in the database"
    );
    assert!(
        !text.contains(&app.admin_token),
        "an admin token is in the database"
    );
    let _: Value = json!(null);
}

/// The gateway keeps keys, accounts and the pause switch in memory between
/// requests; a change made by another process (the CLI opens the database
/// itself) must hold for every request that arrives `CROSS_PROCESS_DELAY` (a
/// millisecond) after it, also while other agents keep the gateway busy and its
/// cache warm.
#[tokio::test]
async fn changes_from_another_process_hold_for_the_next_request_under_load() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&app.upstream)
        .await;
    let busy_key = app.new_agent("busy");
    let key = app.new_agent("target");
    let busy = app.agent(&busy_key);
    let target = app.agent(&key);
    let stop = tokio_util::sync::CancellationToken::new();
    let load = {
        let (stop, url, http) = (
            stop.clone(),
            format!("http://{}/api/github/personal/user", app.agent_addr()),
            reqwest::Client::new(),
        );
        let busy_key = busy_key.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.is_cancelled() {
                let r = http.get(&url).bearer_auth(&busy_key).send().await.unwrap();
                // 503 while all agents are paused.
                assert!(matches!(r.status().as_u16(), 200 | 503), "{}", r.status());
                n += 1;
            }
            n
        })
    };
    assert_eq!(busy.get("/api/github/personal/user").await.0, 200);
    assert_eq!(target.get("/api/github/personal/user").await.0, 200);
    let cli = agentgate_core::Gateway::open(
        test_config(app.data.path()),
        Box::new(app.creds.clone()),
        std::sync::Arc::new(agentgate_core::clock::SystemClock),
    )
    .unwrap();

    let settle = || tokio::time::sleep(agentgate_core::CROSS_PROCESS_DELAY * 2);

    cli.set_agent_enabled("target", false).unwrap();
    settle().await;
    assert_eq!(target.get("/api/github/personal/user").await.0, 403);
    cli.set_agent_enabled("target", true).unwrap();
    settle().await;
    assert_eq!(target.get("/api/github/personal/user").await.0, 200);
    cli.set_paused(true).unwrap();
    settle().await;
    assert_eq!(target.get("/api/github/personal/user").await.0, 503);
    cli.set_paused(false).unwrap();
    settle().await;
    assert_eq!(target.get("/api/github/personal/user").await.0, 200);
    cli.revoke_agent("target").unwrap();
    settle().await;
    assert_eq!(target.get("/api/github/personal/user").await.0, 401);

    stop.cancel();
    assert!(load.await.unwrap() > 0, "the other agent kept reading");
    // Removing the account ends reads through it too.
    cli.remove_account("github", "personal").unwrap();
    settle().await;
    assert_eq!(busy.get("/api/github/personal/user").await.0, 403);
}
