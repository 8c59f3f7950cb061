//! The admin UI's management pages over HTTP: accounts, agents, notifications,
//! settings, the live event stream, and the CSRF check on every form.

use std::sync::Arc;
use std::time::Duration;

use agentgate_core::clock::ManualClock;

use futures::StreamExt;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn accounts_are_added_tested_reconnected_and_removed_without_showing_secrets() {
    let app = spawn_app().await;
    let mock = MockServer::start().await;
    for (token, login) in [("tok_first_123", "octocat"), ("tok_second_456", "hubot")] {
        Mock::given(method("GET"))
            .and(path("/user"))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": login})))
            .mount(&mock)
            .await;
    }
    let ui = Ui::new(&app).await;
    let (s, html) = ui.get("/ui/accounts/add/github").await;
    assert_eq!(s, 200);
    assert!(html.contains("Personal access token") && html.contains("type=\"password\""));

    // Added through the form, then tested at once: the page says who it is.
    let (s, to, _) = ui
        .post(
            "/ui/accounts/add/github",
            &[
                ("name", "work"),
                ("base_url", &mock.uri()),
                ("token", "tok_first_123"),
            ],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/accounts?done=account-added"));
    let (_, html) = ui.get("/ui/accounts?done=account-added").await;
    assert!(
        html.contains("Signed in as <strong>octocat</strong>"),
        "{html}"
    );
    assert!(
        !html.contains("tok_first_123"),
        "a stored secret is never shown"
    );

    // The same name again is refused, and what is stored stays.
    let (s, _, html) = ui
        .post(
            "/ui/accounts/add/github",
            &[("name", "work"), ("base_url", &mock.uri()), ("token", "x")],
        )
        .await;
    assert_eq!(s, 409, "{html}");
    assert!(html.contains("Not saved"));
    assert!(!html.contains("value=\"x\""), "secrets are not echoed back");
    // A missing field and an unknown service say what is wrong.
    let (s, _, html) = ui
        .post("/ui/accounts/add/github", &[("name", "other")])
        .await;
    assert_eq!(s, 400);
    assert!(html.contains("Personal access token") || html.contains("token"));
    let (s, _, _) = ui.post("/ui/accounts/add/myspace", &[("name", "x")]).await;
    assert_eq!(s, 404);

    // Reconnect replaces the token: the next test signs in as the new one.
    let (s, html) = ui.get("/ui/accounts/add/github?name=work&replace=1").await;
    assert_eq!(s, 200);
    assert!(html.contains("Reconnect GitHub · work"));
    let (s, _, _) = ui
        .post(
            "/ui/accounts/add/github",
            &[("replace", "work"), ("token", "tok_second_456")],
        )
        .await;
    assert_eq!(s, 303);
    let (s, to, _) = ui.post("/ui/accounts/github/work/test", &[]).await;
    assert_eq!(s, 303);
    assert!(to.starts_with("/ui/accounts?done=account-tested"));
    let info = app.gw.account_info("github", "work").unwrap();
    assert_eq!(info.identity.as_deref(), Some("hubot"));
    assert!(info.test_error.is_none());

    // Removed: gone from the list and from the credential store.
    let before = app.creds.names().len();
    let (s, to, _) = ui.post("/ui/accounts/github/work/remove", &[]).await;
    assert_eq!((s, to.as_str()), (303, "/ui/accounts?done=account-removed"));
    assert!(app.gw.account_info("github", "work").is_err());
    assert_eq!(app.creds.names().len(), before - 1);
    let (s, _, _) = ui.post("/ui/accounts/github/work/remove", &[]).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_failed_test_is_shown_on_the_account() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&app.upstream)
        .await;
    let ui = Ui::new(&app).await;
    ui.post("/ui/accounts/github/personal/test", &[]).await;
    let (_, html) = ui.get("/ui/accounts").await;
    assert!(
        html.contains("Last test failed") && html.contains("the credentials were refused"),
        "{html}"
    );
}

#[tokio::test]
async fn oauth_accounts_need_their_app_then_connect_at_the_provider() {
    let app = spawn_app().await;
    let ui = Ui::new(&app).await;
    let (_, html) = ui.get("/ui/accounts/add/reddit").await;
    assert!(html.contains("First, the OAuth app for reddit"), "{html}");
    assert!(html.contains("/oauth/callback/reddit"));
    assert!(!html.contains("Connect with Reddit</button>"));
    let (s, to, _) = ui
        .post(
            "/ui/accounts/oauth-client/reddit",
            &[
                ("service", "reddit"),
                ("client_id", "my-client"),
                ("client_secret", "shh-secret"),
            ],
        )
        .await;
    assert_eq!(
        (s, to.as_str()),
        (303, "/ui/accounts/add/reddit?done=oauth-client")
    );
    let (_, html) = ui.get("/ui/accounts/add/reddit").await;
    assert!(html.contains("Connect with Reddit"));
    assert!(html.contains("value=\"my-client\"") && !html.contains("shh-secret"));
    // Connecting moves the browser on to the provider's authorize page.
    let (s, _, html) = ui
        .post("/ui/accounts/connect/reddit", &[("name", "me")])
        .await;
    assert_eq!(s, 200);
    assert!(
        html.contains("http-equiv=\"refresh\"")
            && html.contains("https://www.reddit.com/api/v1/authorize")
            && html.contains("state="),
        "{html}"
    );
    let (s, _, html) = ui
        .post("/ui/accounts/connect/reddit", &[("name", "bad name!")])
        .await;
    assert_eq!(s, 400);
    assert!(html.contains("Could not start connecting"));
}

#[tokio::test]
async fn agents_are_created_with_a_key_shown_once_then_managed() {
    let app = spawn_app().await;
    let ui = Ui::new(&app).await;
    let (s, to, html) = ui.post("/ui/agents", &[("name", "helper")]).await;
    assert_eq!(
        (s, to.as_str()),
        (200, ""),
        "the key page is not a redirect"
    );
    let at = html.find("id=\"new-key\"").unwrap();
    let key_at = html[at..].find("value=\"rms_").unwrap() + at + 7;
    let key = &html[key_at..key_at + 44];
    assert!(key.starts_with("rms_"), "{key}");
    assert_eq!(app.agent(key).get("/api/readme").await.0, 200);
    let (_, again) = ui.get("/ui/agents").await;
    assert!(!again.contains(key), "shown once");
    let (s, _, html) = ui.post("/ui/agents", &[("name", "helper")]).await;
    assert_eq!(s, 409);
    assert!(html.contains("Not created"));

    // Disable, enable, rename, options.
    let (s, to, _) = ui
        .post("/ui/agents/helper/enabled", &[("enabled", "false")])
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/agents?done=updated"));
    assert_eq!(app.agent(key).get("/api/readme").await.0, 403);
    ui.post("/ui/agents/helper/enabled", &[("enabled", "true")])
        .await;
    assert_eq!(app.agent(key).get("/api/readme").await.0, 200);
    let (s, _, _) = ui
        .post("/ui/agents/helper/rename", &[("new_name", "assistant")])
        .await;
    assert_eq!(s, 303);
    assert!(app.gw.agent("assistant").is_ok());
    let (s, _, html) = ui
        .post("/ui/agents/assistant/rename", &[("new_name", "no spaces")])
        .await;
    assert_eq!(s, 400, "{html}");
    ui.post("/ui/agents/assistant/options", &[("trusted", "1")])
        .await;
    let a = app.gw.agent("assistant").unwrap();
    assert!(a.trusted && !a.raw_responses);
    let (_, html) = ui.get("/ui/agents").await;
    assert!(html.contains("every write of this agent runs without asking you"));
    ui.post("/ui/agents/assistant/options", &[("raw", "1")])
        .await;
    let a = app.gw.agent("assistant").unwrap();
    assert!(!a.trusted && a.raw_responses);

    // Revoked: the key stops working.
    let (s, to, _) = ui.post("/ui/agents/assistant/revoke", &[]).await;
    assert_eq!((s, to.as_str()), (303, "/ui/agents?done=revoked"));
    assert_eq!(app.agent(key).get("/api/readme").await.0, 401);
    let (s, _, _) = ui.post("/ui/agents/assistant/revoke", &[]).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn webhooks_are_set_tested_and_missed_notifications_retried() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let hook = MockServer::start().await;
    // The agent's webhook is down at first.
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&hook)
        .await;
    let key = app.new_agent("bot");
    let ui = Ui::new(&app).await;
    let url = format!("{}/hook", hook.uri());
    let (s, to, _) = ui
        .post(
            "/ui/agents/bot/webhook",
            &[("url", &url), ("token", "hook-secret-1")],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/agents?done=webhook"));
    let (_, html) = ui.get("/ui/agents").await;
    assert!(html.contains("(stored; leave empty to keep it)") && !html.contains("hook-secret-1"));
    let (s, _, html) = ui
        .post("/ui/agents/bot/webhook", &[("url", "not a url")])
        .await;
    assert_eq!(s, 400, "{html}");
    assert_eq!(
        app.gw.agent("bot").unwrap().webhook_url.as_deref(),
        Some(url.as_str()),
        "a refused change loses nothing"
    );
    // The test send fails while the hook is down, then works.
    let (s, _, html) = ui.post("/ui/agents/bot/webhook/test", &[]).await;
    assert_eq!(s, 502, "{html}");
    assert!(html.contains("not delivered"));
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("authorization", "Bearer hook-secret-1"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let (s, to, _) = ui.post("/ui/agents/bot/webhook/test", &[]).await;
    assert_eq!((s, to.as_str()), (303, "/ui/agents?done=webhook-tested"));

    // A notification that was given up on shows as failed; retry sends it.
    hook.reset().await;
    let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&id, "test", Some("no".into())).unwrap();
    give_up(&app, &clock).await;
    let n = app.gw.notification(&id).unwrap().unwrap();
    assert_eq!(n.status, "failed");
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let (_, html) = ui.get("/ui/notifications").await;
    assert!(html.contains("missed 1 notification"), "{html}");
    assert!(html.contains(&format!("/ui/notifications/{}/retry", n.id)));
    let (s, to, _) = ui
        .post(&format!("/ui/notifications/{}/retry", n.id), &[])
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/notifications?done=retried"));
    assert_eq!(
        app.gw.notification(&id).unwrap().unwrap().status,
        "delivered"
    );
    let (s, _, html) = ui
        .post(&format!("/ui/notifications/{}/retry", n.id), &[])
        .await;
    assert_eq!(s, 409, "{html}");

    // Retry all: two missed go out as one message.
    hook.reset().await;
    for _ in 0..2 {
        let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
        app.gw.reject(&id, "test", None).unwrap();
    }
    give_up(&app, &clock).await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let (_, html) = ui.get("/ui/agents").await;
    assert!(html.contains("Retry the 2 missed"));
    let (s, to, _) = ui.post("/ui/notifications/retry-all/bot", &[]).await;
    assert_eq!(
        (s, to.as_str()),
        (303, "/ui/notifications?done=retried-all")
    );
    let (s, _, html) = ui.post("/ui/notifications/retry-all/bot", &[]).await;
    assert_eq!(s, 200);
    assert!(html.contains("bot missed nothing"));
}

/// Runs the webhook sender through all its tries against a hook that answers
/// nothing it knows (404), so that every pending notification is given up on.
/// Twenty manual minutes between tries cover the longest back-off.
async fn give_up(app: &TestApp, clock: &ManualClock) {
    for _ in 0..6 {
        app.gw.deliver_due().await.unwrap();
        clock.advance(time::Duration::minutes(20));
    }
}

#[tokio::test]
async fn settings_are_shown_saved_and_checked_and_pause_stops_agents() {
    let app = spawn_app().await;
    let key = app.new_agent("bot");
    let ui = Ui::new(&app).await;
    let (s, html) = ui.get("/ui/settings").await;
    assert_eq!(s, 200);
    assert!(html.contains(&app.gw.credential_backend()));
    assert!(html.contains(&app.gw.base_url()));
    let fields = |timeout: &'static str| {
        [
            ("upstream_timeout_secs", timeout),
            ("pending_expiry_hours", "48"),
            ("reads_per_minute", "100"),
            ("submissions_per_hour", "10"),
            ("audit_retention_days", "30"),
        ]
    };
    let (s, to, _) = ui.post("/ui/settings", &fields("20")).await;
    assert_eq!((s, to.as_str()), (303, "/ui/settings?done=settings"));
    let settings = app.gw.settings();
    assert_eq!(
        (
            settings.upstream_timeout_secs,
            settings.pending_expiry_hours
        ),
        (20, 48)
    );
    let (s, _, html) = ui.post("/ui/settings", &fields("soon")).await;
    assert_eq!(s, 400);
    assert!(html.contains("Upstream timeout must be a whole number"));
    let (s, _, html) = ui.post("/ui/settings", &fields("0")).await;
    assert_eq!(s, 400, "{html}");
    assert_eq!(app.gw.settings().upstream_timeout_secs, 20, "nothing lost");

    let (s, to, _) = ui
        .post(
            "/ui/settings/pause",
            &[("paused", "true"), ("back", "/ui/queue")],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/queue?done=paused"));
    assert_eq!(
        app.agent(&key).get("/api/github/personal/user").await.0,
        503
    );
    let (_, html) = ui.get("/ui/agents").await;
    assert!(html.contains("Agents are paused"), "every page says so");
    // Only the UI's own pages are places to go back to.
    let (_, to, _) = ui
        .post(
            "/ui/settings/pause",
            &[("paused", "false"), ("back", "//evil.example/")],
        )
        .await;
    assert_eq!(to, "/ui/settings?done=resumed");
    assert_ne!(
        app.agent(&key).get("/api/github/personal/user").await.0,
        503
    );
}

#[tokio::test]
async fn the_event_stream_announces_queue_moves_and_needs_a_session() {
    let mut app = spawn_app().await;
    let key = app.new_agent("bot");
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{}/ui/events", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{}/ui/events", app.admin_url))
        .header("cookie", format!("agentgate_session={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an agent key is no session");

    let r = c
        .get(format!("{}/ui/events", app.admin_url))
        .header("cookie", format!("agentgate_session={}", app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    let mut seen = String::new();
    while !seen.contains(&format!("\"id\":\"{id}\"")) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: queue") && seen.contains("\"status\":\"pending\""));
    assert!(!seen.contains("/x"), "ids and states only: {seen}");

    // Pausing (here from another surface) is announced to every open page,
    // and so is resuming.
    for (paused, want) in [(true, "{\"paused\":true}"), (false, "{\"paused\":false}")] {
        app.gw.set_paused(paused).unwrap();
        let mut seen = String::new();
        while !seen.contains(want) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("the pause event within 10 s")
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(seen.contains("event: pause"), "{seen}");
    }
    // Every page carries the banner, hidden while agents run.
    let html = app.ui_page("/ui/agents").await;
    assert!(html.contains("id=\"pause-banner\" hidden"), "{html}");

    // An open stream does not hold up a graceful stop.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("shutdown with an open event stream");
}

#[tokio::test]
async fn every_ui_form_refuses_a_post_without_the_sessions_csrf_token() {
    let app = spawn_app().await;
    let key = app.new_agent("bot");
    let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = format!("agentgate_session={}", app.admin_token);
    let forms = [
        format!("/ui/queue/{id}/approve"),
        format!("/ui/queue/{id}/reject"),
        "/ui/logout".into(),
        "/ui/accounts/add/github".into(),
        "/ui/accounts/connect/reddit".into(),
        "/ui/accounts/oauth-client/reddit".into(),
        "/ui/accounts/github/personal/test".into(),
        "/ui/accounts/github/personal/remove".into(),
        "/ui/agents".into(),
        "/ui/agents/bot/rename".into(),
        "/ui/agents/bot/enabled".into(),
        "/ui/agents/bot/options".into(),
        "/ui/agents/bot/revoke".into(),
        "/ui/agents/bot/webhook".into(),
        "/ui/agents/bot/webhook/test".into(),
        "/ui/notifications/1/retry".into(),
        "/ui/notifications/retry-all/bot".into(),
        "/ui/settings".into(),
        "/ui/settings/pause".into(),
    ];
    for form in &forms {
        let r = c
            .post(format!("{}{form}", app.admin_url))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", "0".repeat(64).as_str()),
                ("name", "x"),
                ("new_name", "y"),
                ("enabled", "false"),
                ("url", "http://127.0.0.1:9/"),
                ("service", "reddit"),
                ("client_id", "c"),
                ("paused", "true"),
                ("upstream_timeout_secs", "5"),
                ("pending_expiry_hours", "5"),
                ("reads_per_minute", "5"),
                ("submissions_per_hour", "5"),
                ("audit_retention_days", "5"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{form}");
    }
    // Nothing changed.
    assert_eq!(app.gw.entry(&id).unwrap().status.to_string(), "pending");
    assert!(app.gw.account_info("github", "personal").is_ok());
    let bot = app.gw.agent("bot").unwrap();
    assert!(bot.enabled && bot.webhook_url.is_none());
    assert!(!app.gw.is_paused().unwrap());
    // Without a session every page and form leads to sign-in, never to data.
    for page in [
        "/ui/queue",
        "/ui/queue/pending",
        "/ui/history",
        "/ui/accounts",
        "/ui/accounts/add/github",
        "/ui/agents",
        "/ui/notifications",
        "/ui/settings",
    ] {
        let r = c
            .get(format!("{}{page}", app.admin_url))
            .header("cookie", format!("agentgate_session={key}"))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 303 | 401),
            "{page}: {}",
            r.status()
        );
        assert!(!r.text().await.unwrap().contains("bot"), "{page}");
    }
}

#[tokio::test]
async fn the_desktop_window_signs_in_once_with_a_launch_secret() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let launch = |secret: String, entry: &str| {
        c.get(format!(
            "{}/ui/launch?secret={secret}&entry={entry}",
            app.admin_url
        ))
        .send()
    };
    let secret = app.gw.launch_secret().expose().to_string();
    let r = launch(secret.clone(), "abc123").await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/queue#entry-abc123");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"));
    let session = cookie.split(';').next().unwrap().to_string();
    let r = c
        .get(format!("{}/ui/queue", app.admin_url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "signed in");

    // Single use; a guess or an agent key is no secret; a stale one expired.
    assert_eq!(launch(secret, "").await.unwrap().status(), 401);
    assert_eq!(launch("agt_guess".into(), "").await.unwrap().status(), 401);
    let key = app.new_agent("bot");
    assert_eq!(launch(key, "").await.unwrap().status(), 401);
    let stale = app.gw.launch_secret().expose().to_string();
    clock.advance(time::Duration::seconds(61));
    assert_eq!(launch(stale, "").await.unwrap().status(), 401);
    // An entry id that is not one goes nowhere odd.
    let secret = app.gw.launch_secret().expose().to_string();
    let r = launch(secret, "x%22%3E%3Cscript%3E").await.unwrap();
    assert_eq!(r.headers()["location"], "/ui/queue");
    let second = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // One session per window: the one before ended when this one began; the
    // window has no Sign out (the app signs it in), a browser does.
    let page = |cookie: String| {
        c.get(format!("{}/ui/queue", app.admin_url))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        page(session).await.unwrap().status(),
        303,
        "the earlier window session ended"
    );
    let html = page(second.clone()).await.unwrap().text().await.unwrap();
    assert!(!html.contains("Sign out"), "{html}");
    let html = app.ui_page("/ui/queue").await;
    assert!(html.contains("Sign out"));
    // The window's process ended: its session ends with it, and only it.
    app.gw.end_window_session().unwrap();
    assert_eq!(page(second).await.unwrap().status(), 303, "ended");
    assert!(app.ui_page("/ui/queue").await.contains("Sign out"));
    app.gw.end_window_session().unwrap();
    // Hints follow what is missing: an agent exists (bot), an account too.
    assert!(!html.contains("id=\"hint-setup\""), "{html}");
    // A page by name, never an address.
    for (page, to) in [
        ("grants", "/ui/grants"),
        ("audit", "/ui/audit"),
        ("https://evil.example", "/ui/queue"),
        ("../admin", "/ui/queue"),
    ] {
        let secret = app.gw.launch_secret().expose().to_string();
        let r = c
            .get(format!(
                "{}/ui/launch?secret={secret}&page={}",
                app.admin_url,
                page.replace(':', "%3A").replace('/', "%2F")
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], to, "{page}");
    }
}

#[tokio::test]
async fn an_empty_queue_hints_at_what_is_missing() {
    let app = spawn_app().await;
    // An account (from the test app), no agent.
    let html = app.ui_page("/ui/queue").await;
    assert!(
        html.contains("No agents yet: <a href=\"/ui/agents\">create an agent key</a> and give it"),
        "{html}"
    );
    app.gw.remove_account("github", "personal").unwrap();
    let html = app.ui_page("/ui/queue").await;
    assert!(
        html.contains("No agents yet: <a href=\"/ui/agents\">create an agent key</a>, then"),
        "{html}"
    );
    app.new_agent("bot");
    let html = app.ui_page("/ui/queue").await;
    assert!(html.contains("No accounts yet"), "{html}");
}
