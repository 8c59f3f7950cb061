use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn first_run_setup_then_login_with_a_strict_cookie() {
    let app = spawn_app().await;
    // The password exists already in spawn_app; setup is refused once set.
    let r = app
        .http
        .post(format!("{}/admin/setup", app.admin_url))
        .json(&json!({"password": "another password", "setup_code": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = app
        .http
        .post(format!("{}/admin/login", app.admin_url))
        .json(&json!({"password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("agentgate_session=agt_"));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap().to_string();
    let r = app
        .http
        .get(format!("{}/admin/keys", app.admin_url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Logout ends the session, from the admin's own pages only.
    let r = app
        .http
        .post(format!("{}/admin/logout", app.admin_url))
        .header("cookie", &session)
        .header("origin", "http://localhost:9999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a foreign page cannot sign the admin out");
    let r = app
        .http
        .post(format!("{}/admin/logout", app.admin_url))
        .header("cookie", &session)
        .header("origin", &app.admin_url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .get(format!("{}/admin/keys", app.admin_url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn setup_works_once_on_a_fresh_install() {
    let data = tempfile::tempdir().unwrap();
    let gw = fresh_gateway(data.path());
    let server = agentgate_core::server::start(gw.clone()).await.unwrap();
    let url = format!("http://{}", server.admin_addr);
    // What `serve` printed in its log; a new one replaces it.
    let code = gw.issue_setup_code().unwrap().unwrap();
    let code = code.expose();
    let http = reqwest::Client::new();
    let status: Value = http
        .get(format!("{url}/admin/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["password_set"], false);
    let r = http
        .post(format!("{url}/admin/setup"))
        .json(&json!({"password": "short", "setup_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Without the code, or with a wrong one, nobody becomes the admin.
    for body in [
        json!({"password": "an attacker's one"}),
        json!({"password": "an attacker's one", "setup_code": ""}),
        json!({"password": "an attacker's one", "setup_code": "AAAAA-BBBBB-CCCCC"}),
    ] {
        let r = http
            .post(format!("{url}/admin/setup"))
            .json(&body)
            .send()
            .await
            .unwrap();
        // A wrong code counts as a failed sign-in: the next waits (429).
        assert!(matches!(r.status().as_u16(), 400 | 401 | 429), "{body}");
    }
    assert!(!gw.admin_password_set().unwrap());
    // Typed loosely (lower case, spaces for dashes) it still fits.
    let typed = code.to_lowercase().replace('-', " ");
    let mut r = None;
    for _ in 0..20 {
        // The failed code above asks for a short back-off first.
        let resp = http
            .post(format!("{url}/admin/setup"))
            .json(&json!({"password": "a long enough one", "setup_code": typed}))
            .send()
            .await
            .unwrap();
        if resp.status() != 429 {
            r = Some(resp);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(r.unwrap().status(), 200);
    let r = http
        .post(format!("{url}/admin/setup"))
        .json(&json!({"password": "an attacker's one", "setup_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = http
        .post(format!("{url}/admin/login"))
        .json(&json!({"password": "a long enough one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let clock = std::sync::Arc::new(agentgate_core::clock::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let app = spawn_app_with_clock(clock.clone()).await;
    let login = |pw: &'static str| {
        app.http
            .post(format!("{}/admin/login", app.admin_url))
            .json(&json!({"password": pw}))
            .send()
    };
    for i in 0..5 {
        assert_eq!(login("wrong password!").await.unwrap().status(), 401);
        // Each failure asks for a longer wait before the next attempt.
        if i < 4 {
            let r = login(ADMIN_PASSWORD).await.unwrap();
            assert_eq!(r.status(), 429, "the back-off after {} failures", i + 1);
            clock.advance(time::Duration::seconds(1 << i));
        }
    }
    let r = login(ADMIN_PASSWORD).await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "even the right password waits out the lockout"
    );
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn keys_create_list_disable_rename_revoke() {
    let app = spawn_app().await;
    let (s, v) = app
        .admin(Method::POST, "/admin/keys", Some(json!({"name": "claude"})))
        .await;
    assert_eq!(s, 201);
    let key = v["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("rms_") && key.len() >= 36);
    let (s, _) = app
        .admin(Method::POST, "/admin/keys", Some(json!({"name": "claude"})))
        .await;
    assert_eq!(s, 409, "names are unique");
    let (_, list) = app.admin(Method::GET, "/admin/keys", None).await;
    assert_eq!(list["agents"][0]["name"], "claude");
    assert!(
        !list.to_string().contains(&key),
        "the key is never shown again"
    );

    let (s, v) = app
        .admin(
            Method::PATCH,
            "/admin/keys/claude",
            Some(json!({"enabled": false, "name": "claude2"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["agent"]["enabled"], false);
    assert_eq!(app.agent(&key).get("/api/services").await.0, 403);
    app.admin(
        Method::PATCH,
        "/admin/keys/claude2",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(app.agent(&key).get("/api/services").await.0, 200);
    let (s, _) = app.admin(Method::DELETE, "/admin/keys/claude2", None).await;
    assert_eq!(s, 200);
    assert_eq!(app.agent(&key).get("/api/services").await.0, 401);
    let (s, _) = app.admin(Method::DELETE, "/admin/keys/claude2", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn accounts_add_list_test_update_remove() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header("authorization", "Bearer ghp_second"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "octocat"})))
        .mount(&app.upstream)
        .await;
    let (s, v) = app
        .admin(
            Method::POST,
            "/admin/accounts",
            Some(json!({"service": "github", "name": "work", "base_url": app.upstream.uri(), "credentials": {"token": "ghp_second"}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/accounts",
            Some(json!({"service": "github", "name": "work", "credentials": {"token": "ghp_overwrite"}})),
        )
        .await;
    assert_eq!(s, 409);
    let (_, list) = app.admin(Method::GET, "/admin/accounts", None).await;
    assert_eq!(list["accounts"].as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains("ghp_second"),
        "secrets are never shown"
    );

    let (s, t) = app
        .admin(Method::POST, "/admin/accounts/github/work/test", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(t["identity"], "octocat");

    // New credentials take effect on the next request.
    let (s, _) = app
        .admin(
            Method::PATCH,
            "/admin/accounts/github/work",
            Some(json!({"credentials": {"token": "ghp_revoked"}})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, t) = app
        .admin(Method::POST, "/admin/accounts/github/work/test", None)
        .await;
    assert_eq!(t["ok"], false, "{t}");

    let (s, v) = app
        .admin(
            Method::PATCH,
            "/admin/accounts/github/work",
            Some(json!({"base_url": null})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["account"]["base_url"], "https://api.github.com");
    let (s, _) = app
        .admin(Method::DELETE, "/admin/accounts/github/work", None)
        .await;
    assert_eq!(s, 200);
    assert!(
        app.credential_store()
            .get(&format!("{}/github/work", instance(&app)))
            .unwrap()
            .is_none(),
        "the secret went with the account"
    );
    let (s, _) = app
        .admin(Method::GET, "/admin/accounts/github/work", None)
        .await;
    assert_eq!(s, 404);
}

/// The installation id that prefixes every credential name, found through the
/// key-secret item the store holds.
fn instance(app: &TestApp) -> String {
    for candidate in app.creds.names() {
        if let Some(id) = candidate.strip_suffix("/key-pepper") {
            return id.to_string();
        }
    }
    panic!("no key pepper in the credential store");
}

#[tokio::test]
async fn admin_queue_filters_and_rejection_with_reason() {
    let app = spawn_app().await;
    let a = app.new_agent("alpha");
    let b = app.new_agent("beta");
    let ida = app
        .agent(&a)
        .submit_one("POST", "/repos/o/r/issues", json!({"title": "a"}))
        .await;
    let idb = app
        .agent(&b)
        .submit_one("DELETE", "/repos/o/r", json!(null))
        .await;
    let (_, v) = app
        .admin(Method::GET, "/admin/queue?status=pending", None)
        .await;
    assert_eq!(v["count"], 2);
    let (_, v) = app
        .admin(Method::GET, "/admin/queue?agent=beta", None)
        .await;
    assert_eq!(v["entries"][0]["id"], idb.as_str());
    // Pages of summaries: no bodies in the list, `next` to go on.
    let (_, page) = app.admin(Method::GET, "/admin/queue?limit=1", None).await;
    assert_eq!(page["count"], 1);
    assert!(
        page["entries"][0]["requests"][0].get("body").is_none(),
        "{page}"
    );
    let next = page["next"].as_str().unwrap().to_string();
    let (_, rest) = app
        .admin(
            Method::GET,
            &format!("/admin/queue?limit=1&before={next}"),
            None,
        )
        .await;
    assert_eq!(rest["entries"][0]["id"], ida.as_str());
    let (_, whole) = app
        .admin(Method::GET, &format!("/admin/queue/{ida}"), None)
        .await;
    assert_eq!(whole["requests"][0]["body"]["title"], "a");
    let (s, v) = app
        .admin(
            Method::POST,
            &format!("/admin/queue/{idb}/reject"),
            Some(json!({"reason": "never delete repos"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "rejected");
    let (_, st) = app
        .agent(&b)
        .get(&format!("/api/queue/github/personal/status/{idb}"))
        .await;
    assert_eq!(st["status"], "rejected");
    assert_eq!(st["rejection_reason"], "never delete repos");
    let (_, v) = app
        .admin(Method::GET, "/admin/queue?status=pending", None)
        .await;
    assert_eq!(v["entries"][0]["id"], ida.as_str());
    assert_eq!(v["count"], 1);
    let (s, v) = app
        .admin(Method::GET, &format!("/admin/queue/{ida}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["agent"], "alpha");
    assert_eq!(v["requests"][0]["body"]["title"], "a");
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn settings_show_read_only_facts_and_change_live() {
    let app = spawn_app().await;
    let (s, v) = app.admin(Method::GET, "/admin/settings", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["settings"]["upstream_timeout_secs"], 30);
    assert_eq!(v["read_only"]["base_url"], "http://gateway.test");
    let (s, v) = app
        .admin(
            Method::PATCH,
            "/admin/settings",
            Some(json!({"upstream_timeout_secs": 12})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["settings"]["upstream_timeout_secs"], 12);
    let (s, _) = app
        .admin(
            Method::PATCH,
            "/admin/settings",
            Some(json!({"unknown": 1})),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn the_admin_openapi_document_matches_the_real_routes() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/admin/openapi.json", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the document needs a session too");
    let (s, doc) = app.admin(Method::GET, "/admin/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "agentgate admin API");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["admin_session"]["scheme"], "bearer");
    assert_eq!(schemes["agentgate_session"]["in"], "cookie");
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/admin/status",
        "/admin/setup",
        "/admin/login",
        "/admin/logout",
        "/admin/openapi.json",
        "/admin/queue",
        "/admin/queue/{id}/approve",
        "/admin/agents",
        "/admin/agents/{name}",
        "/admin/keys",
        "/admin/keys/{name}",
        "/admin/notifications",
        "/admin/accounts",
        "/admin/accounts/{service}/{name}",
        "/admin/accounts/{service}/{name}/rules",
        "/admin/grants",
        "/admin/services",
        "/admin/settings",
        "/admin/pause",
        "/admin/audit",
        "/admin/oauth/clients/{provider}",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    // Every documented operation is served by a real route: never the router's
    // fallback or a 405. Placeholders name nothing that exists and the body
    // `{}` lacks every required field, so nothing is changed; logout gets a
    // session of its own kind (none), so the test's session survives.
    let mut checked = 0;
    for (template, ops) in paths {
        for (m, _) in ops.as_object().unwrap() {
            let url = template
                .replace("{service}", "no-such-service")
                .replace("{name}", "no-such-name")
                .replace("{provider}", "no-such-provider")
                .replace("{id}", "999999");
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let token = if template == "/admin/logout" {
                "agt_not_a_session"
            } else {
                app.admin_token.as_str()
            };
            let resp = app
                .http
                .request(method, format!("{}{url}", app.admin_url))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{m} {url}");
            assert!(
                !body.contains("no such route"),
                "{m} {url} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 45, "only {checked} operations checked");
    // Nothing was changed on the way.
    let (s, v) = app.admin(Method::GET, "/admin/pause", None).await;
    assert_eq!((s, &v["paused"]), (200, &json!(false)));
    let (_, v) = app.admin(Method::GET, "/admin/accounts", None).await;
    assert_eq!(v["accounts"].as_array().unwrap().len(), 1);
}

/// The desktop app makes its admin credential before it listens: setup is
/// never open there, with or without a code.
#[tokio::test]
async fn with_a_credential_made_at_start_setup_is_never_open() {
    let data = tempfile::tempdir().unwrap();
    let gw = fresh_gateway(data.path());
    assert!(gw.ensure_admin_credential().unwrap());
    assert!(!gw.ensure_admin_credential().unwrap(), "made once");
    let server = agentgate_core::server::start(gw.clone()).await.unwrap();
    assert!(gw.issue_setup_code().unwrap().is_none());
    let url = format!("http://{}", server.admin_addr);
    let r = reqwest::Client::new()
        .post(format!("{url}/admin/setup"))
        .json(&json!({"password": "an attacker's one", "setup_code": "AAAAA-BBBBB-CCCCC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    server.shutdown().await;
}

/// Forty wrong passwords at once: one is checked, the rest wait their turn
/// or are throttled; none slips under the limit, and the owner's right
/// password afterwards is throttled only for the back-off, by the same rule.
#[tokio::test]
async fn concurrent_wrong_passwords_cannot_race_the_throttle() {
    let app = spawn_app().await;
    let tries = (0..40).map(|_| {
        app.http
            .post(format!("{}/admin/login", app.admin_url))
            .json(&json!({"password": "wrong guess"}))
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 39);
}

/// An unknown route on the admin listener says where the admin's pages and
/// API are, not the agent API's readme.
#[tokio::test]
async fn unknown_admin_routes_point_to_the_admin() {
    let app = spawn_app().await;
    for path in ["/ui/no-such-page", "/admin/no-such-route", "/nothing"] {
        let (s, v) = app.admin(Method::GET, path, None).await;
        assert_eq!(s, 404, "{path}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains("admin listener") && !msg.contains("/api/readme"),
            "{path}: {msg}"
        );
    }
}
