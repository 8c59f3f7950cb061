//! What made a write acceptable is checked again just before it runs: an entry
//! approved while its agent could act, on the account it named, under rules that
//! allowed it, never reaches the service once any of that stopped being true.
//! And a write follows no redirect: a human approved one URL.

use agentgate_core::Error;
use agentgate_core::queue::Status;
use reqwest::Method;
use serde_json::json;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{TestApp, add_github, digest_of, spawn_app};

/// Every write the mock service received.
async fn writes_received(app: &TestApp) -> usize {
    app.upstream
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() != "GET")
        .count()
}

async fn accept_everything(app: &TestApp) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"ok": true})))
        .mount(&app.upstream)
        .await;
}

/// Approves without running (the decision alone), so that the test can change
/// the world between the human's decision and the batch's run.
fn approve_only(app: &TestApp, id: &str) {
    app.gw.approve(id, &digest_of(&app.gw, id), "test").unwrap();
}

#[tokio::test]
async fn an_approved_write_of_a_revoked_agent_never_runs() {
    let app = spawn_app().await;
    accept_everything(&app).await;
    let key = app.new_agent("bot");
    let id = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({"title": "x"}))
        .await;
    approve_only(&app, &id);
    app.gw.revoke_agent("bot").unwrap();
    let e = app.gw.execute(&id).await.unwrap();
    assert_eq!(e.status, Status::Failed);
    let why = e.results[0].error.as_deref().unwrap();
    assert!(
        why.starts_with("not run:") && why.contains("revoked"),
        "{why}"
    );
    assert_eq!(writes_received(&app).await, 0);
}

#[tokio::test]
async fn revoking_an_agent_rejects_its_pending_writes_with_a_reason() {
    let app = spawn_app().await;
    accept_everything(&app).await;
    let key = app.new_agent("bot");
    let other = app.new_agent("other");
    let mine = app.agent(&key).submit_one("POST", "/a", json!({})).await;
    let theirs = app.agent(&other).submit_one("POST", "/b", json!({})).await;
    app.gw.revoke_agent("bot").unwrap();
    let e = app.gw.entry(&mine).unwrap();
    assert_eq!(e.status, Status::Rejected);
    assert_eq!(e.reviewed_by.as_deref(), Some("system"));
    assert!(e.rejection_reason.unwrap().contains("revoked"));
    assert_eq!(app.gw.entry(&theirs).unwrap().status, Status::Pending);
    // Nobody can approve it any more, from any surface.
    let (s, _) = app.approve_api(&mine).await;
    assert_eq!(s, 409);
    assert_eq!(writes_received(&app).await, 0);
}

#[tokio::test]
async fn a_disabled_agents_writes_are_held_and_its_approved_ones_do_not_run() {
    let app = spawn_app().await;
    accept_everything(&app).await;
    let key = app.new_agent("bot");
    let held = app.agent(&key).submit_one("POST", "/a", json!({})).await;
    let approved = app.agent(&key).submit_one("POST", "/b", json!({})).await;
    approve_only(&app, &approved);
    app.gw.set_agent_enabled("bot", false).unwrap();

    // Held: approving is refused and the entry stays pending.
    assert!(matches!(
        app.gw.approve_and_start(&held, &digest_of(&app.gw, &held), "test"),
        Err(Error::Conflict(m)) if m.contains("disabled")
    ));
    let (s, v) = app.approve_api(&held).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(app.gw.entry(&held).unwrap().status, Status::Pending);

    // Approved before the agent was disabled: not run.
    let e = app.gw.execute(&approved).await.unwrap();
    assert_eq!(e.status, Status::Failed);
    assert!(e.results[0].error.as_deref().unwrap().contains("disabled"));
    assert_eq!(writes_received(&app).await, 0);

    // Enabled again, the held write can be approved and runs.
    app.gw.set_agent_enabled("bot", true).unwrap();
    app.gw
        .approve_and_start(&held, &digest_of(&app.gw, &held), "test")
        .unwrap();
    assert_eq!(app.wait_done(&held).await.status, Status::Completed);
    assert_eq!(writes_received(&app).await, 1);
}

#[tokio::test]
async fn an_approved_write_does_not_run_once_the_agent_lost_access_or_a_rule_denies_it() {
    let app = spawn_app().await;
    accept_everything(&app).await;
    let key = app.new_agent("bot");
    app.new_agent("friend");

    let first = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;
    approve_only(&app, &first);
    let (s, v) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/access",
            Some(json!({"mode": "allowlist", "agents": ["friend"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let e = app.gw.execute(&first).await.unwrap();
    assert_eq!(e.status, Status::Failed);
    assert!(
        e.results[0].error.as_deref().unwrap().contains("denied"),
        "{:?}",
        e.results
    );

    let (s, _) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/access",
            Some(json!({"mode": "all", "agents": []})),
        )
        .await;
    assert_eq!(s, 200);
    let second = app
        .agent(&key)
        .submit_one("DELETE", "/repos/o/r", json!(null))
        .await;
    approve_only(&app, &second);
    let (s, v) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/rules",
            Some(json!({"rules": [{"method": "DELETE", "path": "/repos/*/*", "effect": "deny"}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let e = app.gw.execute(&second).await.unwrap();
    assert_eq!(e.status, Status::Failed);
    let why = e.results[0].error.as_deref().unwrap();
    assert!(
        why.contains("requests[0]") && why.contains("denied"),
        "{why}"
    );
    assert_eq!(writes_received(&app).await, 0);
}

#[tokio::test]
async fn an_account_removed_and_added_again_does_not_receive_the_old_entries() {
    let app = spawn_app().await;
    accept_everything(&app).await;
    let key = app.new_agent("bot");
    let id = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;
    approve_only(&app, &id);
    app.gw.remove_account("github", "personal").unwrap();
    add_github(&app.gw, "personal", &app.upstream.uri());
    let e = app.gw.execute(&id).await.unwrap();
    assert_eq!(e.status, Status::Failed);
    let why = e.results[0].error.as_deref().unwrap();
    assert!(why.contains("added again"), "{why}");
    assert_eq!(writes_received(&app).await, 0);
}

#[tokio::test]
async fn a_write_answered_with_a_redirect_is_not_followed() {
    let app = spawn_app().await;
    for (status, from) in [
        (307, "/repos/o/r/issues"),
        (308, "/repos/o/r/labels"),
        (303, "/repos/o/r/pulls"),
    ] {
        Mock::given(path(from))
            .respond_with(ResponseTemplate::new(status).insert_header("location", "/elsewhere"))
            .mount(&app.upstream)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("bot");
    for (status, from) in [
        (307, "/repos/o/r/issues"),
        (308, "/repos/o/r/labels"),
        (303, "/repos/o/r/pulls"),
    ] {
        let id = app
            .agent(&key)
            .submit_one("POST", from, json!({"title": "x"}))
            .await;
        let e = app
            .gw
            .approve_and_run(&id, &digest_of(&app.gw, &id), "test")
            .await
            .unwrap();
        assert_eq!(e.status, Status::Failed, "a {status} is no success");
        assert_eq!(e.results[0].status, Some(status));
    }
    let seen = app.upstream.received_requests().await.unwrap();
    assert!(
        seen.iter().all(|r| r.url.path() != "/elsewhere"),
        "a write followed a redirect: {:?}",
        seen.iter()
            .map(|r| r.url.path().to_string())
            .collect::<Vec<_>>()
    );
}

mod destructive {
    use super::*;
    use crate::helpers::{client, csrf_of};

    /// Beyond DELETE: a write that overwrites or exposes something is marked on
    /// the queue page and is approved from the web admin only with the second
    /// yes; without it nothing runs.
    #[tokio::test]
    async fn the_web_admin_asks_a_second_yes_for_destructive_writes() {
        let app = spawn_app().await;
        accept_everything(&app).await;
        let key = app.new_agent("bot");
        let (s, v) = app
            .agent(&key)
            .submit(
                "personal",
                json!({"requests": [{"method": "PATCH", "path": "/repos/o/r", "body": {"private": false}}],
                       "comment": "tidy the settings"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let c = client();
        let cookie = format!("agentgate_session={}", app.admin_token);
        let html = c
            .get(format!("{}/ui/queue", app.admin_url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("changes who can see the repository"),
            "{html}"
        );
        assert!(html.contains("name=\"confirm\""), "{html}");
        let csrf = csrf_of(&html);
        let approve = format!("{}/ui/queue/{id}/approve", app.admin_url);

        let r = c
            .post(&approve)
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("digest", digest_of(&app.gw, &id).as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert_eq!(app.gw.entry(&id).unwrap().status, Status::Pending);
        assert_eq!(writes_received(&app).await, 0);

        let digest = digest_of(&app.gw, &id);
        let r = c
            .post(&approve)
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("confirm", "yes"),
                ("digest", digest.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(app.wait_done(&id).await.status, Status::Completed);
        assert_eq!(writes_received(&app).await, 1);
    }
}

/// SameSite does not separate ports: a page on another port of this host gets
/// the admin's cookie sent along. Every cookie-authenticated change on the
/// admin API must come from the admin's own origin, as JSON; the bearer token
/// (scripts) needs neither.
#[tokio::test]
async fn the_admin_api_refuses_cookie_changes_from_other_origins() {
    let app = spawn_app().await;
    accept_everything(&app).await;
    let key = app.new_agent("bot");
    let id = app
        .agent(&key)
        .submit_one("DELETE", "/repos/o/victim", json!(null))
        .await;
    let own = app.admin_url.clone();
    let cookie = format!("agentgate_session={}", app.admin_token);
    let approve = format!("{}/admin/queue/{id}/approve", app.admin_url);
    let grant = format!("{}/admin/grants", app.admin_url);
    let other_scheme = own.replacen("http://", "https://", 1);
    let attempts: Vec<(Option<&str>, Option<&str>, Option<&str>)> = vec![
        (None, None, None),
        (Some("http://127.0.0.1:8000"), None, None),
        (Some("http://localhost:1"), None, Some("text/plain")),
        (Some("null"), None, None),
        (Some(&other_scheme), None, None),
        (None, Some("same-site"), None),
        (None, Some("cross-site"), Some("text/plain")),
    ];
    for (origin, site, content_type) in attempts {
        for (url, body) in [
            (&approve, String::new()),
            (
                &grant,
                r#"{"agent":"bot","service":"github","account":"personal","minutes":1440}"#
                    .to_string(),
            ),
        ] {
            let mut req = app.http.post(url).header("cookie", &cookie).body(body);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            if let Some(s) = site {
                req = req.header("sec-fetch-site", s);
            }
            if let Some(t) = content_type {
                req = req.header("content-type", t);
            }
            let r = req.send().await.unwrap();
            assert!(
                matches!(r.status().as_u16(), 400 | 403),
                "{url} from {origin:?}/{site:?} as {content_type:?}: {}",
                r.status()
            );
        }
    }
    // Two Origin headers, one of them right, are no proof either.
    let r = app
        .http
        .post(&approve)
        .header("cookie", &cookie)
        .header("origin", own.as_str())
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // From the admin's own origin but not as JSON: refused.
    let r = app
        .http
        .post(&grant)
        .header("cookie", &cookie)
        .header("origin", own.as_str())
        .header("content-type", "text/plain")
        .body(r#"{"agent":"bot","service":"github","account":"personal","minutes":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(app.gw.grants().unwrap().is_empty());
    assert_eq!(app.gw.entry(&id).unwrap().status, Status::Pending);
    assert_eq!(writes_received(&app).await, 0);

    // The admin's own page, as JSON, may; and so may a script with the token.
    let r = app
        .http
        .post(&grant)
        .header("cookie", &cookie)
        .header("origin", own.as_str())
        .json(&json!({"agent": "bot", "service": "github", "account": "personal", "minutes": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (s, _) = app.approve_api(&id).await;
    assert_eq!(s, 200);
}

/// A batch can take long: what changes while it runs stops the rest of it.
#[tokio::test]
async fn a_revocation_in_the_middle_of_a_batch_stops_the_rest() {
    for change in ["revoke", "disable", "remove account", "rule"] {
        let app = spawn_app().await;
        Mock::given(path("/slow"))
            .respond_with(
                ResponseTemplate::new(201).set_delay(std::time::Duration::from_millis(800)),
            )
            .mount(&app.upstream)
            .await;
        accept_everything(&app).await;
        let key = app.new_agent("bot");
        let (s, v) = app
            .agent(&key)
            .submit(
                "personal",
                json!({"requests": [{"method": "POST", "path": "/slow", "body": {}},
                                    {"method": "DELETE", "path": "/repos/o/second"}],
                       "comment": "two steps"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        app.gw
            .approve_and_start(&id, &digest_of(&app.gw, &id), "test")
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        match change {
            "revoke" => app.gw.revoke_agent("bot").unwrap(),
            "disable" => app.gw.set_agent_enabled("bot", false).unwrap(),
            "remove account" => app.gw.remove_account("github", "personal").unwrap(),
            _ => {
                let (s, v) = app
                    .admin(
                        Method::PUT,
                        "/admin/accounts/github/personal/rules",
                        Some(json!({"rules": [{"path": "/repos/o/**", "effect": "deny"}]})),
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
            }
        }
        let e = app.wait_done(&id).await;
        assert_eq!(e.status, Status::Failed, "{change}");
        assert_eq!(e.results.len(), 2, "{change}: {:?}", e.results);
        assert!(e.results[0].ok);
        assert!(
            e.results[1]
                .error
                .as_deref()
                .unwrap()
                .starts_with("not run:"),
            "{change}: {:?}",
            e.results
        );
        let seen = app.upstream.received_requests().await.unwrap();
        assert!(
            seen.iter().all(|r| r.method.as_str() != "DELETE"),
            "{change}: the second request was sent"
        );
    }
}

/// A rule cannot be dodged by a spelling some servers route the same way:
/// `;` parameters in a segment, a format suffix.
#[tokio::test]
async fn rules_hold_for_semicolon_and_format_spellings() {
    let app = spawn_app().await;
    accept_everything(&app).await;
    let key = app.new_agent("bot");
    let (s, v) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/rules",
            Some(json!({"rules": [{"path": "/repos/o/secret/**", "effect": "deny"},
                                  {"method": "POST", "path": "/repos/*/*/issues", "effect": "auto_approve"}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for p in [
        "/repos/o/secret;x/contents",
        "/repos/o/secret/contents.json",
        "/repos/o/SECRET;v=2/x",
    ] {
        let (s, v) = app
            .agent(&key)
            .get(&format!("/api/github/personal{p}"))
            .await;
        assert_eq!(s, 403, "{p}: {v}");
    }
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

/// DNS rebinding: a page under a name it controls makes the browser talk to
/// 127.0.0.1 with that name in Host. The admin listener answers only to its
/// own names; and before a password exists, no foreign page can set one.
#[tokio::test]
async fn the_admin_listener_answers_only_its_own_names_and_setup_refuses_foreign_pages() {
    let data = tempfile::tempdir().unwrap();
    let gw = crate::helpers::fresh_gateway(data.path());
    let server = agentgate_core::server::start(gw.clone()).await.unwrap();
    let addr = server.admin_addr;
    let url = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for host in [
        format!("rebind.evil.example:{}", addr.port()),
        "evil.example".to_string(),
        format!("127.0.0.1.evil.example:{}", addr.port()),
        format!("localhost@evil.example:{}", addr.port()),
    ] {
        for (m, p) in [
            ("GET", "/admin/status"),
            ("POST", "/admin/setup"),
            ("GET", "/ui/setup"),
            ("POST", "/admin/login"),
        ] {
            let r = http
                .request(m.parse().unwrap(), format!("{url}{p}"))
                .header("host", &host)
                .json(&json!({"password": "attacker chose this"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 421, "{m} {p} as {host}");
        }
    }
    for host in [
        format!("localhost:{}", addr.port()),
        format!("[::1]:{}", addr.port()),
    ] {
        let r = http
            .get(format!("{url}/admin/status"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    // A foreign page cannot claim the first password, by API or form.
    let r = http
        .post(format!("{url}/admin/setup"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"password": "attacker chose this"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(format!("{url}/ui/setup"))
        .header("origin", "http://127.0.0.1:1")
        .form(&[
            ("password", "attacker chose this"),
            ("password2", "attacker chose this"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!gw.admin_password_set().unwrap());
    server.shutdown().await;
}

/// A read follows a same-origin redirect only to where the agent could have
/// read itself: not into a path the rules deny, not into a privacy block.
#[tokio::test]
async fn a_read_is_not_redirected_past_the_rules_or_a_privacy_block() {
    let app = spawn_app().await;
    Mock::given(path("/rd"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/landed/secret"))
        .mount(&app.upstream)
        .await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/fine"))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/landed/secret"))
        .respond_with(ResponseTemplate::new(200).set_body_string("denied content"))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/fine"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("bot");
    let (s, v) = app
        .admin(
            Method::PUT,
            "/admin/accounts/github/personal/rules",
            Some(json!({"rules": [{"path": "/landed/**", "effect": "deny"}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = app
        .agent(&key)
        .req(Method::GET, "/api/github/personal/rd")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "the redirect is the answer");
    assert!(!r.text().await.unwrap().contains("denied content"));
    let (s, v) = app.agent(&key).get("/api/github/personal/ok").await;
    assert_eq!(
        (s, v),
        (200, json!({"ok": true})),
        "allowed redirects are followed"
    );
    let seen = app.upstream.received_requests().await.unwrap();
    assert!(seen.iter().all(|r| r.url.path() != "/landed/secret"));
}
