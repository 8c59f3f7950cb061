//! Every service against a wiremock stand-in: reads with the right credentials,
//! approved writes, Bluesky sessions, the OAuth connect flow, token refresh, and
//! privacy blocks for reads and writes.

use std::sync::Arc;
use std::time::Duration;

use agentgate_core::clock::ManualClock;
use agentgate_core::secret::Secret;
use agentgate_core::{NewAccount, OAuthClientConfig};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, body_string_contains, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

fn creds(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Secret::new(*v)))
        .collect()
}

fn add(app: &TestApp, service: &str, name: &str, base: &str, pairs: &[(&str, &str)]) {
    app.gw
        .add_account(NewAccount {
            service: service.into(),
            name: name.into(),
            base_url: Some(base.into()),
            credentials: creds(pairs),
        })
        .unwrap();
}

/// A JWT whose payload says it expires `secs` from now (unsigned: the gateway
/// only reads the expiry).
fn jwt(tag: &str, secs: i64) -> String {
    let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + secs;
    format!(
        "{}.{}.{tag}",
        enc(&json!({"alg": "none"})),
        enc(&json!({"exp": exp, "sub": "did:plc:me"}))
    )
}

#[tokio::test]
async fn token_and_basic_services_read_test_and_write_with_their_credentials() {
    let app = spawn_app().await;
    let base = app.upstream.uri();
    add(
        &app,
        "mastodon",
        "social",
        &base,
        &[("access_token", "masto-token")],
    );
    add(
        &app,
        "jira",
        "work",
        &base,
        &[("email", "me@example.com"), ("api_token", "jira-token")],
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("me@example.com:jira-token")
    );
    let cases = [
        (
            "github",
            "personal",
            format!("Bearer {TOKEN}"),
            "/user",
            json!({"login": "octocat"}),
            "octocat",
        ),
        (
            "mastodon",
            "social",
            "Bearer masto-token".to_string(),
            "/api/v1/accounts/verify_credentials",
            json!({"acct": "me@example.social"}),
            "me@example.social",
        ),
        (
            "jira",
            "work",
            basic.clone(),
            "/myself",
            json!({"emailAddress": "me@example.com"}),
            "me@example.com",
        ),
    ];
    let key = app.new_agent("multi");
    for (service, account, auth, identity_path, identity, who) in &cases {
        Mock::given(method("GET"))
            .and(path(*identity_path))
            .and(header("authorization", auth.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(identity.clone()))
            .mount(&app.upstream)
            .await;
        let (s, v) = app
            .agent(&key)
            .get(&format!("/api/{service}/{account}{identity_path}"))
            .await;
        assert_eq!(s, 200, "{service}: {v}");
        let t = app.gw.test_account(service, account).await.unwrap();
        assert!(t.ok, "{service}: {t:?}");
        assert_eq!(t.identity.as_deref(), Some(*who), "{service}");

        // An approved write goes out with the same credentials, method, path and body.
        let write_path = format!("/{service}-write");
        Mock::given(method("PUT"))
            .and(path(write_path.as_str()))
            .and(header("authorization", auth.as_str()))
            .and(body_json(json!({"service": service})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"done": service})))
            .expect(1)
            .mount(&app.upstream)
            .await;
        let (s, v) = app
            .agent(&key)
            .req(Method::POST, &format!("/api/queue/{service}/{account}/submit"))
            .json(&json!({"requests": [{"method": "PUT", "path": write_path, "body": {"service": service}}], "comment": "c"}))
            .send()
            .await
            .map(|r| (r.status().as_u16(), r))
            .unwrap();
        assert_eq!(s, 201);
        let id = v.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.gw
            .approve(&id, &digest_of(&app.gw, &id), "test")
            .unwrap();
        let e = app.gw.execute(&id).await.unwrap();
        assert_eq!(e.status.to_string(), "completed", "{service}: {e:?}");
    }
}

#[tokio::test]
async fn host_only_base_urls_follow_the_service_template() {
    let app = spawn_app().await;
    add(
        &app,
        "jira",
        "site",
        "mysite.atlassian.net",
        &[("email", "a@b.c"), ("api_token", "t")],
    );
    add(
        &app,
        "mastodon",
        "m",
        "mastodon.social",
        &[("access_token", "t")],
    );
    add(
        &app,
        "bluesky",
        "pds",
        "pds.example.com",
        &[("identifier", "me"), ("app_password", "p")],
    );
    assert_eq!(
        app.gw.account_info("jira", "site").unwrap().base_url,
        "https://mysite.atlassian.net/rest/api/3"
    );
    assert_eq!(
        app.gw.account_info("mastodon", "m").unwrap().base_url,
        "https://mastodon.social"
    );
    assert_eq!(
        app.gw.account_info("bluesky", "pds").unwrap().base_url,
        "https://pds.example.com/xrpc"
    );
    let err = app
        .gw
        .add_account(NewAccount {
            service: "mastodon".into(),
            name: "nohost".into(),
            base_url: None,
            credentials: creds(&[("access_token", "t")]),
        })
        .unwrap_err();
    assert!(err.to_string().contains("base URL"), "{err}");
    let err = app
        .gw
        .add_account(NewAccount {
            service: "reddit".into(),
            name: "r".into(),
            base_url: None,
            credentials: creds(&[]),
        })
        .unwrap_err();
    assert!(err.to_string().contains("OAuth"), "{err}");
}

#[tokio::test]
async fn bluesky_sessions_are_created_renewed_and_recreated() {
    let app = spawn_app().await;
    let base = format!("{}/xrpc", app.upstream.uri());
    add(
        &app,
        "bluesky",
        "me",
        &base,
        &[
            ("identifier", "me.bsky.social"),
            ("app_password", "app-pass"),
        ],
    );
    let (access1, refresh1, access2, refresh2, access3) = (
        jwt("a1", 3600),
        jwt("r1", 86400),
        jwt("a2", 3600),
        jwt("r2", 86400),
        jwt("a3", 3600),
    );
    let session = |a: &str, r: &str| json!({"accessJwt": a, "refreshJwt": r, "did": "did:plc:me", "handle": "me.bsky.social"});
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .and(body_json(
            json!({"identifier": "me.bsky.social", "password": "app-pass"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(session(&access1, &refresh1)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/xrpc/app.bsky.feed.getTimeline"))
        .and(header(
            "authorization",
            format!("Bearer {access1}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "ExpiredToken", "message": "Token has expired"})),
        )
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.refreshSession"))
        .and(header(
            "authorization",
            format!("Bearer {refresh1}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(session(&access2, &refresh2)))
        .expect(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/xrpc/app.bsky.feed.getTimeline"))
        .and(header(
            "authorization",
            format!("Bearer {access2}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"feed": []})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("b");
    // First use signs in; the expired-token answer renews the session and retries once.
    let (s, v) = app
        .agent(&key)
        .get("/api/bluesky/me/app.bsky.feed.getTimeline")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["feed"], json!([]));

    // When the refresh token is refused too, the app password signs in again.
    app.upstream.reset().await;
    Mock::given(method("GET"))
        .and(header(
            "authorization",
            format!("Bearer {access2}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "InvalidToken"})))
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.refreshSession"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "ExpiredToken"})))
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(session(&access3, &jwt("r3", 86400))),
        )
        .expect(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(header(
            "authorization",
            format!("Bearer {access3}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"handle": "me.bsky.social"})))
        .mount(&app.upstream)
        .await;
    let (s, v) = app
        .agent(&key)
        .get("/api/bluesky/me/app.bsky.actor.getProfile?actor=me")
        .await;
    assert_eq!(s, 200, "{v}");
}

fn callback_url(base: &str, service: &str, code: &str, state: &str) -> String {
    let mut url = url::Url::parse(&format!("{base}/oauth/callback/{service}")).unwrap();
    url.query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", state);
    url.to_string()
}

/// Sets the provider's client to the mock and runs the whole connect flow for
/// `service`/`name`, answering the code exchange with `token`.
async fn connect(app: &TestApp, provider: &str, service: &str, name: &str, token: Value) -> Value {
    let mock = &app.upstream;
    app.gw
        .set_oauth_client(
            provider,
            OAuthClientConfig {
                client_id: format!("{provider}-client"),
                client_secret: Some(Secret::new(format!("{provider}-secret"))),
                authorize_url: Some(format!("{}/authorize", mock.uri())),
                token_url: Some(format!("{}/token", mock.uri())),
            },
        )
        .unwrap();
    let (s, v) = app
        .admin(
            Method::POST,
            "/admin/oauth/connect",
            Some(json!({"service": service, "name": name})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let url = url::Url::parse(v["authorize_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token))
        .up_to_n_times(1)
        .mount(mock)
        .await;
    let resp = app
        .http
        .get(callback_url(
            &app.agent_url,
            service,
            "the-code",
            &q["state"],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    json!(q)
}

#[tokio::test]
async fn the_oauth_connect_flow_uses_state_pkce_and_the_right_client_auth() {
    let app = spawn_app().await;
    let q = connect(
        &app,
        "google",
        "calendar",
        "home",
        json!({"access_token": "cal-at", "refresh_token": "cal-rt", "expires_in": 3600, "token_type": "Bearer"}),
    )
    .await;
    assert_eq!(q["client_id"], "google-client");
    assert_eq!(q["response_type"], "code");
    assert_eq!(
        q["redirect_uri"],
        "http://gateway.test/oauth/callback/calendar"
    );
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].as_str().unwrap().contains("auth/calendar"));
    assert!(q["state"].as_str().unwrap().len() >= 16);
    // Google takes the client in the body and the PKCE verifier with the code.
    let exchange = app
        .upstream
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/token")
        .unwrap();
    let body = String::from_utf8(exchange.body.clone()).unwrap();
    assert!(
        body.contains("code_verifier=") && body.contains("client_secret=google-secret"),
        "{body}"
    );
    assert!(
        body.contains("redirect_uri=http%3A%2F%2Fgateway.test%2Foauth%2Fcallback%2Fcalendar"),
        "{body}"
    );
    let info = app.gw.account_info("calendar", "home").unwrap();
    assert_eq!(info.auth_method, "oauth2");

    Mock::given(method("GET"))
        .and(path("/calendar/v3/users/me/calendarList"))
        .and(header("authorization", "Bearer cal-at"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": []})))
        .mount(&app.upstream)
        .await;
    app.gw
        .update_account(
            "calendar",
            "home",
            Some(Some(format!("{}/calendar/v3", app.upstream.uri()))),
            None,
        )
        .unwrap();
    let key = app.new_agent("cal");
    let (s, v) = app
        .agent(&key)
        .get("/api/google_calendar/home/users/me/calendarList")
        .await;
    assert_eq!(s, 200, "the alias works and the token is injected: {v}");

    // Reddit sends the client as HTTP Basic, asks for a permanent token, uses no PKCE.
    let q = connect(
        &app,
        "reddit",
        "reddit",
        "me",
        json!({"access_token": "rd-at", "refresh_token": "rd-rt", "expires_in": 3600, "token_type": "bearer"}),
    )
    .await;
    assert_eq!(q["duration"], "permanent");
    assert!(q.get("code_challenge").is_none());
    let exchange = app
        .upstream
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .rfind(|r| r.url.path() == "/token")
        .unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("reddit-client:reddit-secret")
    );
    assert_eq!(exchange.headers["authorization"].to_str().unwrap(), basic);
}

#[tokio::test]
async fn bad_replayed_and_expired_states_are_refused() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let token = json!({"access_token": "fb-at", "refresh_token": "fb-rt", "expires_in": 3600, "token_type": "Bearer"});
    let q = connect(&app, "fitbit", "fitbit", "me", token.clone()).await;
    let callback = |state: String| {
        app.http
            .get(callback_url(&app.admin_url, "fitbit", "the-code", &state))
            .send()
    };
    // Replayed.
    let r = callback(q["state"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Unknown, with markup in it that must come back inert.
    let r = callback("<script>alert(1)</script>".into()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(!r.text().await.unwrap().contains("<script>"));
    // Older than ten minutes.
    let (_, v) = app
        .admin(
            Method::POST,
            "/admin/oauth/connect",
            Some(json!({"service": "fitbit", "name": "late"})),
        )
        .await;
    let url = url::Url::parse(v["authorize_url"].as_str().unwrap()).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    clock.advance(time::Duration::minutes(11));
    let r = callback(state).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(app.gw.account_info("fitbit", "late").is_err());
    // A provider's refusal is shown, escaped.
    let r = app
        .http
        .get(format!(
            "{}/oauth/callback/fitbit?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E",
            app.agent_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("access_denied") && text.contains("&lt;b&gt;"),
        "{text}"
    );
    // Without a client, connecting says what to do.
    let (s, v) = app
        .admin(
            Method::POST,
            "/admin/oauth/connect",
            Some(json!({"service": "linkedin", "name": "x"})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap().contains("no OAuth client"),
        "{v}"
    );
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/oauth/connect",
            Some(json!({"service": "github", "name": "x"})),
        )
        .await;
    assert_eq!(s, 400, "token services do not connect through OAuth");
}

async fn connected_youtube(app: &TestApp, expires_in: i64) {
    connect(
        app,
        "google",
        "youtube",
        "yt",
        json!({"access_token": "old-at", "refresh_token": "the-rt", "expires_in": expires_in, "token_type": "Bearer"}),
    )
    .await;
    app.gw
        .update_account(
            "youtube",
            "yt",
            Some(Some(format!("{}/youtube/v3", app.upstream.uri()))),
            None,
        )
        .unwrap();
}

#[tokio::test]
async fn expired_tokens_refresh_once_for_twenty_concurrent_requests() {
    let app = spawn_app().await;
    // Expires within the refresh margin: the next request must refresh first.
    connected_youtube(&app, 30).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=the-rt"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({"access_token": "new-at", "expires_in": 3600, "token_type": "Bearer"}),
                )
                .set_delay(Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/youtube/v3/channels"))
        .and(header("authorization", "Bearer new-at"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": []})))
        .mount(&app.upstream)
        .await;
    // Twenty at once, from four agents (each may have eight in flight).
    let keys: Vec<String> = (0..4).map(|i| app.new_agent(&format!("yt{i}"))).collect();
    let reads = (0..20).map(|i| {
        get_as(
            &app,
            keys[i % 4].clone(),
            "/api/youtube/yt/channels?part=snippet&mine=true".into(),
        )
    });
    for (s, v) in futures::future::join_all(reads).await {
        assert_eq!(s, 200, "{v}");
    }
    let refreshes = app
        .upstream
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("grant_type=refresh_token"))
        .count();
    assert_eq!(refreshes, 1, "one refresh for 20 concurrent requests");
    // Google sends no new refresh token on refresh: the stored one is kept.
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=the-rt"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "newer-at", "expires_in": 3600, "token_type": "Bearer"}),
        ))
        .mount(&app.upstream)
        .await;
    let yt = app.gw.account_info("youtube", "yt").unwrap();
    assert!(yt.needs_reconnect.is_none());
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_request_retried() {
    let app = spawn_app().await;
    connected_youtube(&app, 3600).await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer old-at"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "new-at", "refresh_token": "rt-2", "expires_in": 3600, "token_type": "Bearer"})))
        .expect(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer new-at"))
        .and(query_param("mine", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [{"snippet": {"title": "My channel"}}]})),
        )
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("yt");
    let (s, v) = app
        .agent(&key)
        .get("/api/youtube/yt/channels?part=snippet&mine=true")
        .await;
    assert_eq!(s, 200, "{v}");
    let t = app.gw.test_account("youtube", "yt").await.unwrap();
    assert_eq!(t.identity.as_deref(), Some("My channel"));
}

#[tokio::test]
async fn a_refused_refresh_marks_the_account_for_reconnection() {
    let app = spawn_app().await;
    connected_youtube(&app, 30).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "Token has been revoked"}),
        ))
        .expect(1)
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("yt");
    for _ in 0..2 {
        let (s, v) = app
            .agent(&key)
            .get("/api/youtube/yt/channels?mine=true")
            .await;
        assert_eq!(s, 401, "{v}");
        assert!(v["error"].as_str().unwrap().contains("reconnected"), "{v}");
    }
    let (_, list) = app.admin(Method::GET, "/admin/accounts", None).await;
    let yt = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["service"] == "youtube")
        .unwrap()
        .clone();
    assert!(
        yt["needs_reconnect"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{yt}"
    );
    // Reconnecting clears the mark.
    connected_youtube(&app, 3600).await;
    assert!(
        app.gw
            .account_info("youtube", "yt")
            .unwrap()
            .needs_reconnect
            .is_none()
    );
}

#[tokio::test]
async fn private_paths_are_blocked_for_reads_and_writes_however_written() {
    let app = spawn_app().await;
    let base = app.upstream.uri();
    add(
        &app,
        "bluesky",
        "b",
        &format!("{base}/xrpc"),
        &[("identifier", "me"), ("app_password", "p")],
    );
    add(&app, "mastodon", "m", &base, &[("access_token", "t")]);
    connect(&app, "reddit", "reddit", "r", json!({"access_token": "a", "refresh_token": "r", "expires_in": 3600, "token_type": "bearer"})).await;
    connect(
        &app,
        "linkedin",
        "linkedin",
        "l",
        json!({"access_token": "a", "expires_in": 3600, "token_type": "Bearer"}),
    )
    .await;
    app.upstream.reset().await;
    let key = app.new_agent("nosy");
    let blocked = [
        ("bluesky/b", "/chat.bsky.convo.listConvos"),
        ("bluesky/b", "/CHAT.BSKY.convo.getMessages"),
        ("bluesky/b", "/%63hat.bsky.convo.sendMessage"),
        ("bluesky/b", "chat.bsky.convo.listConvos"),
        ("bluesky/b", "/com.atproto.admin.getAccountInfo"),
        ("mastodon/m", "/api/v1/conversations"),
        ("mastodon/m", "/API/V1/Conversations/1/read"),
        ("mastodon/m", "/api/v1/markers"),
        ("mastodon/m", "/api/v1/%63onversations"),
        ("reddit/r", "/message/inbox"),
        ("reddit/r", "/Message/unread"),
        ("reddit/r", "/api/compose"),
        ("reddit/r", "/api/v1/me/blocked"),
        ("reddit/r", "/api/v1/me/friends"),
        ("linkedin/l", "/messaging/conversations"),
        ("linkedin/l", "/conversations"),
    ];
    for (account, p) in blocked {
        let slash = if p.starts_with('/') { "" } else { "/" };
        let (s, v) = app
            .agent(&key)
            .get(&format!("/api/{account}{slash}{p}"))
            .await;
        assert_eq!(s, 403, "read {account}{p}: {v}");
        assert!(v["error"].as_str().unwrap().contains("privacy"), "{v}");
        let (service, name) = account.split_once('/').unwrap();
        let r = app
            .agent(&key)
            .req(Method::POST, &format!("/api/queue/{service}/{name}/submit"))
            .json(&json!({"requests": [{"method": "POST", "path": p, "body": {}}], "comment": "c"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "write {account}{p}");
    }
    // Climbing into a blocked path with dot segments is refused outright.
    let (s, _) = app
        .agent(&key)
        .get("/api/mastodon/m/api/v1/statuses/..%2F..%2Fv1%2Fconversations")
        .await;
    assert_eq!(s, 400);
    // Mastodon direct messages are statuses with visibility "direct".
    let direct = json!({"requests": [{"method": "POST", "path": "/api/v1/statuses", "body": {"status": "psst", "visibility": "direct"}}], "comment": "c"});
    let r = app
        .agent(&key)
        .req(Method::POST, "/api/queue/mastodon/m/submit")
        .json(&direct)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let public = json!({"requests": [{"method": "POST", "path": "/api/v1/statuses", "body": {"status": "hi", "visibility": "public"}}], "comment": "c"});
    let r = app
        .agent(&key)
        .req(Method::POST, "/api/queue/mastodon/m/submit")
        .json(&public)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        app.gw.entries(&Default::default()).unwrap().len(),
        1,
        "only the public post was queued"
    );
    assert!(
        app.upstream.received_requests().await.unwrap().is_empty(),
        "nothing blocked reached a service"
    );
}

#[tokio::test]
async fn agents_cannot_proxy_bluesky_requests_elsewhere() {
    let app = spawn_app().await;
    add(
        &app,
        "bluesky",
        "b",
        &format!("{}/xrpc", app.upstream.uri()),
        &[("identifier", "me"), ("app_password", "p")],
    );
    let key = app.new_agent("a");
    let (s, v) = app
        .agent(&key)
        .submit_to(
            "bluesky",
            "b",
            json!({"requests": [{"method": "POST", "path": "/com.atproto.repo.createRecord", "body": {},
                                 "headers": {"atproto-proxy": "did:web:evil.example#bsky_chat"}}], "comment": "c"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let e = app.gw.entry(v["id"].as_str().unwrap()).unwrap();
    assert!(
        !e.requests[0].headers.contains_key("atproto-proxy"),
        "the routing header was dropped: {:?}",
        e.requests[0].headers
    );
}

#[tokio::test]
async fn every_oauth_service_connects_refreshes_reads_and_writes() {
    let app = spawn_app().await;
    let key = app.new_agent("all");
    let cases = [
        ("reddit", "reddit", "/api/v1/me", "/api/comment"),
        (
            "google",
            "calendar",
            "/users/me/calendarList",
            "/calendars/primary/events",
        ),
        ("google", "youtube", "/channels", "/playlistItems"),
        ("linkedin", "linkedin", "/userinfo", "/ugcPosts"),
        (
            "fitbit",
            "fitbit",
            "/1/user/-/profile.json",
            "/1/user/-/body/log/weight.json",
        ),
    ];
    for (provider, service, read_path, write_path) in cases {
        app.upstream.reset().await;
        let (old, new) = (format!("{service}-old"), format!("{service}-new"));
        // The first token is about to expire, so the first use refreshes it.
        connect(
            &app,
            provider,
            service,
            "acct",
            json!({"access_token": old, "refresh_token": format!("{service}-rt"), "expires_in": 10, "token_type": "Bearer"}),
        )
        .await;
        app.gw
            .update_account(
                service,
                "acct",
                Some(Some(format!("{}/{service}", app.upstream.uri()))),
                None,
            )
            .unwrap();
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains("grant_type=refresh_token"))
            .and(body_string_contains(
                format!("refresh_token={service}-rt").as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"access_token": new, "expires_in": 3600, "token_type": "Bearer"}),
            ))
            .expect(1)
            .mount(&app.upstream)
            .await;
        let full_read = format!("/{service}{read_path}");
        Mock::given(method("GET"))
            .and(path(full_read.as_str()))
            .and(header("authorization", format!("Bearer {new}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": service})))
            .expect(1)
            .mount(&app.upstream)
            .await;
        let full_write = format!("/{service}{write_path}");
        Mock::given(method("POST"))
            .and(path(full_write.as_str()))
            .and(header("authorization", format!("Bearer {new}").as_str()))
            .and(body_json(json!({"from": "agent"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"created": true})))
            .expect(1)
            .mount(&app.upstream)
            .await;
        let (s, v) = app
            .agent(&key)
            .get(&format!("/api/{service}/acct{read_path}"))
            .await;
        assert_eq!(s, 200, "{service} read: {v}");
        let (s, v) = app
            .agent(&key)
            .submit_to(
                service,
                "acct",
                json!({"requests": [{"method": "POST", "path": write_path, "body": {"from": "agent"}}], "comment": "c"}),
            )
            .await;
        assert_eq!(s, 201, "{service} submit: {v}");
        let id = v["id"].as_str().unwrap();
        app.gw.approve(id, &digest_of(&app.gw, id), "test").unwrap();
        let e = app.gw.execute(id).await.unwrap();
        assert_eq!(e.status.to_string(), "completed", "{service} write: {e:?}");
        app.upstream.verify().await;
    }
}

#[tokio::test]
async fn chatty_answers_are_compacted_unless_raw_is_asked_for() {
    let app = spawn_app().await;
    add(
        &app,
        "mastodon",
        "m",
        &app.upstream.uri(),
        &[("access_token", "t")],
    );
    let timeline = json!([{
        "id": "109", "url": "https://m.example/@me/109", "created_at": "2026-11-24T00:00:00Z", "visibility": "public",
        "content": "<p>Hello <a href=\"https://x\">world</a></p>", "account": {"acct": "me", "avatar": "https://cdn/a.png", "emojis": [], "fields": []},
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 1, "spoiler_text": "", "media_attachments": [],
        "emojis": [], "tags": [], "mentions": [], "card": null, "application": {"name": "Web"}
    }]);
    Mock::given(method("GET"))
        .and(path("/api/v1/timelines/home"))
        .respond_with(ResponseTemplate::new(200).set_body_json(timeline.clone()))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("reader");
    let resp = app
        .agent(&key)
        .req(Method::GET, "/api/mastodon/m/api/v1/timelines/home")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-agentgate-compact"], "true");
    let compact: Value = resp.json().await.unwrap();
    assert_eq!(
        compact,
        json!([{
            "id": "109", "url": "https://m.example/@me/109", "created_at": "2026-11-24T00:00:00Z", "visibility": "public",
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 1, "account": "me", "text": "Hello world"
        }])
    );
    // The header asks for the service's own JSON.
    let resp = app
        .agent(&key)
        .req(Method::GET, "/api/mastodon/m/api/v1/timelines/home")
        .header("x-agentgate-raw", "true")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("x-agentgate-compact").is_none());
    assert_eq!(resp.json::<Value>().await.unwrap(), timeline);
    // So does the agent's own setting.
    let (s, v) = app
        .admin(
            Method::PATCH,
            "/admin/keys/reader",
            Some(json!({"raw_responses": true})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["agent"]["raw_responses"], true);
    let (_, v) = app
        .agent(&key)
        .get("/api/mastodon/m/api/v1/timelines/home")
        .await;
    assert_eq!(v, timeline);
    // Endpoints without a compact form are untouched.
    Mock::given(method("GET"))
        .and(path("/api/v1/instance"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"uri": "m.example", "stats": {}})),
        )
        .mount(&app.upstream)
        .await;
    app.admin(
        Method::PATCH,
        "/admin/keys/reader",
        Some(json!({"raw_responses": false})),
    )
    .await;
    let (_, v) = app.agent(&key).get("/api/mastodon/m/api/v1/instance").await;
    assert_eq!(v, json!({"uri": "m.example", "stats": {}}));
}

#[tokio::test]
async fn an_approved_bluesky_post_runs_with_the_session_token() {
    let app = spawn_app().await;
    add(
        &app,
        "bluesky",
        "b",
        &format!("{}/xrpc", app.upstream.uri()),
        &[("identifier", "me"), ("app_password", "p")],
    );
    let access = jwt("a", 3600);
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"accessJwt": access, "refreshJwt": jwt("r", 86400), "did": "did:plc:me", "handle": "me"})))
        .expect(1)
        .mount(&app.upstream)
        .await;
    let record = json!({"repo": "did:plc:me", "collection": "app.bsky.feed.post",
                        "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-11-24T00:00:00Z"}});
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .and(header("authorization", format!("Bearer {access}").as_str()))
        .and(body_json(record.clone()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"uri": "at://did:plc:me/app.bsky.feed.post/1", "cid": "c"})),
        )
        .expect(1)
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("poster");
    let (s, v) = app
        .agent(&key)
        .submit_to("bluesky", "b", json!({"requests": [{"method": "POST", "path": "/com.atproto.repo.createRecord", "body": record}], "comment": "post it"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    app.gw.approve(id, &digest_of(&app.gw, id), "test").unwrap();
    let e = app.gw.execute(id).await.unwrap();
    assert_eq!(e.status.to_string(), "completed", "{e:?}");
    assert_eq!(
        e.results[0].body.as_ref().unwrap()["uri"],
        "at://did:plc:me/app.bsky.feed.post/1"
    );
}

#[tokio::test]
async fn mastodon_signs_in_on_its_own_instance_registering_agentgate_once() {
    let app = spawn_app().await;
    let instance = app.upstream.uri();
    Mock::given(method("POST"))
        .and(path("/api/v1/apps"))
        .and(body_json(json!({"client_name": "agentgate", "redirect_uris": "http://gateway.test/oauth/callback/mastodon", "scopes": "read write"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"client_id": "inst-id", "client_secret": "inst-secret"})))
        .expect(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("client_id=inst-id"))
        .and(body_string_contains("client_secret=inst-secret"))
        .and(body_string_contains("code=masto-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "masto-at", "token_type": "Bearer", "scope": "read write"}),
        ))
        .expect(2)
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts/verify_credentials"))
        .and(header("authorization", "Bearer masto-at"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"acct": "me", "id": "1"})))
        .mount(&app.upstream)
        .await;
    for name in ["first", "second"] {
        let (s, v) = app
            .admin(
                Method::POST,
                "/admin/oauth/connect",
                Some(json!({"service": "mastodon", "name": name, "base_url": instance})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let url = url::Url::parse(v["authorize_url"].as_str().unwrap()).unwrap();
        assert_eq!(url.path(), "/oauth/authorize");
        assert_eq!(url.port(), app.upstream.address().port().into());
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "inst-id");
        assert_eq!(q["scope"], "read write");
        let r = app
            .http
            .get(callback_url(
                &app.agent_url,
                "mastodon",
                "masto-code",
                &q["state"],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let key = app.new_agent("m");
    let (s, v) = app
        .agent(&key)
        .get("/api/mastodon/first/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["acct"], "me");
    // Without an instance there is nothing to sign in on.
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/oauth/connect",
            Some(json!({"service": "mastodon", "name": "x"})),
        )
        .await;
    assert_eq!(s, 400);
}

/// What would let an agent act as the account without agentgate (sessions,
/// service-auth tokens, app passwords, keys, emails, identity, push
/// subscriptions, the token endpoints on the API's own host) is refused for
/// reads and writes alike, however it is spelled, with its own reason; and
/// the further private-message routes of Reddit and LinkedIn are blocked.
#[tokio::test]
async fn account_control_and_further_private_routes_are_never_an_agents() {
    let app = spawn_app().await;
    let base = app.upstream.uri();
    add(
        &app,
        "bluesky",
        "b",
        &format!("{base}/xrpc"),
        &[("identifier", "me"), ("app_password", "p")],
    );
    add(&app, "mastodon", "m", &base, &[("access_token", "t")]);
    connect(&app, "reddit", "reddit", "r", json!({"access_token": "a", "refresh_token": "r", "expires_in": 3600, "token_type": "bearer"})).await;
    connect(
        &app,
        "linkedin",
        "linkedin",
        "l",
        json!({"access_token": "a", "expires_in": 3600, "token_type": "Bearer"}),
    )
    .await;
    app.upstream.reset().await;
    let key = app.new_agent("grabby");
    let control = [
        (
            "bluesky/b",
            "/com.atproto.server.getServiceAuth?aud=did:web:api.bsky.chat&lxm=chat.bsky.convo.getMessages",
        ),
        ("bluesky/b", "/COM.ATPROTO.SERVER.GETSERVICEAUTH"),
        ("bluesky/b", "/com.atproto.server.%67etServiceAuth"),
        ("bluesky/b", "/com.atproto.server.createAppPassword"),
        ("bluesky/b", "/com.atproto.server.deleteSession"),
        ("bluesky/b", "/com.atproto.server.updateEmail"),
        ("bluesky/b", "/com.atproto.identity.updateHandle"),
        ("bluesky/b", "/com.atproto.identity.signPlcOperation"),
        ("github/personal", "/user/keys"),
        ("github/personal", "/user/keys/1"),
        ("github/personal", "/User/GPG_Keys"),
        ("github/personal", "/user/emails/"),
        ("github/personal", "/authorizations"),
        ("github/personal", "/applications/abc/token"),
        ("mastodon/m", "/oauth/revoke"),
        ("mastodon/m", "/api/v1/push/subscription"),
        ("mastodon/m", "/api/v1/apps"),
        ("github/personal", "/user/keys;x=1"),
        ("github/personal", "/user/emails.json"),
        ("bluesky/b", "/com.atproto.server.getServiceAuth;x"),
    ];
    let privacy = [
        ("reddit/r", "/prefs/friends"),
        ("reddit/r", "/prefs/blocked"),
        ("reddit/r", "/Prefs/Messaging"),
        ("reddit/r", "/prefs/trusted"),
        ("reddit/r", "/api/read_message"),
        ("linkedin/l", "/messages"),
        ("linkedin/l", "/rest/messaging/conversations"),
        ("reddit/r", "/api/v1/me/friends.json"),
        ("reddit/r", "/message;x/inbox"),
        ("reddit/r", "/prefs/friends.json"),
    ];
    for (account, p, why) in control
        .iter()
        .map(|(a, p)| (a, p, "controls the"))
        .chain(privacy.iter().map(|(a, p)| (a, p, "privacy")))
    {
        let (s, v) = app.agent(&key).get(&format!("/api/{account}{p}")).await;
        assert_eq!(s, 403, "read {account}{p}: {v}");
        assert!(v["error"].as_str().unwrap().contains(why), "{v}");
        let (service, name) = account.split_once('/').unwrap();
        for m in ["POST", "PUT", "DELETE"] {
            let r = app
                .agent(&key)
                .req(Method::POST, &format!("/api/queue/{service}/{name}/submit"))
                .json(&json!({"requests": [{"method": m, "path": p, "body": {}}], "comment": "c"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{m} {account}{p}");
        }
    }
    assert!(app.gw.entries(&Default::default()).unwrap().is_empty());
    assert!(
        app.upstream.received_requests().await.unwrap().is_empty(),
        "nothing refused reached a service"
    );
    // What an agent may do still works: reading its own profile.
    let (s, _) = app.agent(&key).get("/api/github/personal/user").await;
    assert_ne!(s, 403);
}

/// An agent cannot cut the owner's account off, nor burn its sign-in quota:
/// a provider's rate limit, server error or unreadable answer never marks the
/// account for reconnection, and refusals an agent provokes ask the provider
/// at most once a minute.
#[tokio::test]
async fn provoked_refusals_neither_lock_the_account_nor_hammer_the_provider() {
    for (status, body) in [
        (429, "slow down".to_string()),
        (503, "<html>maintenance</html>".to_string()),
        (500, r#"{"error": "server_error"}"#.to_string()),
        (400, r#"{"error": "temporarily_unavailable"}"#.to_string()),
    ] {
        let app = spawn_app().await;
        connected_youtube(&app, 3600).await;
        Mock::given(method("GET"))
            .and(header("authorization", "Bearer old-at"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&app.upstream)
            .await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains("grant_type=refresh_token"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_string(body.clone())
                    .insert_header(
                        "content-type",
                        if body.starts_with('{') {
                            "application/json"
                        } else {
                            "text/html"
                        },
                    ),
            )
            .mount(&app.upstream)
            .await;
        let key = app.new_agent("provoker");
        for _ in 0..5 {
            let (s, v) = app
                .agent(&key)
                .get("/api/youtube/yt/channels?mine=true")
                .await;
            assert!(matches!(s, 401 | 502), "{status}: {s} {v}");
        }
        let refreshes = app
            .upstream
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| {
                r.url.path() == "/token"
                    && String::from_utf8_lossy(&r.body).contains("grant_type=refresh_token")
            })
            .count();
        assert!(
            (1..=2).contains(&refreshes),
            "{status} {body}: the provider was asked {refreshes} times for 5 refusals"
        );
        assert!(
            app.gw
                .account_info("youtube", "yt")
                .unwrap()
                .needs_reconnect
                .is_none(),
            "{status} {body} marked the account"
        );
    }
}
