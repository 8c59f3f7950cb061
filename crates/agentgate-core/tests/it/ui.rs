//! The admin UI over HTTP: first run, sign-in, the queue page, forms with CSRF
//! protection, and agent-written text rendered inert. (Browser tests in
//! Chromium come with the rest of the UI.)

use reqwest::Method;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// Whether a response sends the browser to the sign-in page (with or without
/// the note that a session ended).
fn goes_to_sign_in(r: &reqwest::Response) -> bool {
    r.status() == 303
        && r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/ui/login")
}

#[tokio::test]
async fn first_run_sets_the_password_and_signs_in() {
    let data = tempfile::tempdir().unwrap();
    let gw = fresh_gateway(data.path());
    let server = agentgate_core::server::start(gw.clone()).await.unwrap();
    let base = format!("http://{}", server.admin_addr);
    let code = gw.issue_setup_code().unwrap().unwrap();
    let c = client();
    let r = c.get(format!("{base}/ui/queue")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/ui/setup");
    let r = c.get(format!("{base}/ui/setup")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Set the admin password"));
    let r = c
        .post(format!("{base}/ui/setup"))
        .form(&[
            ("setup_code", code.expose()),
            ("password", "long enough pw"),
            ("password2", "different pw!"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("differ"));
    let r = c
        .post(format!("{base}/ui/setup"))
        .form(&[
            ("setup_code", code.expose()),
            ("password", "long enough pw"),
            ("password2", "long enough pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap().to_string();
    let r = c
        .get(format!("{base}/ui/queue"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Nothing is waiting"));
    // Setup is closed now.
    let r = c.get(format!("{base}/ui/setup")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/ui/login");
    server.shutdown().await;
}

#[tokio::test]
async fn the_queue_shows_readable_previews_and_renders_agent_text_inert() {
    let app = spawn_app().await;
    let key = app.new_agent("bot");
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let (s, _) = app
        .agent(&key)
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "Login bug", "body": hostile}},
                                {"method": "DELETE", "path": "/repos/o/r"}],
                   "comment": hostile}),
        )
        .await;
    assert_eq!(s, 201);
    let r = client()
        .get(format!("{}/ui/queue", app.admin_url))
        .header("cookie", format!("agentgate_session={}", app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script>alert") && !html.contains("<img src=x"),
        "agent text must be inert"
    );
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "and still readable"
    );
    assert!(
        html.contains("Create issue &#34;Login bug&#34; in o/r")
            || html.contains("Create issue &quot;Login bug&quot; in o/r"),
        "{html}"
    );
    assert!(html.contains("DELETE the repository o/r"));
    assert!(
        html.contains(&format!("{}/repos/o/r/issues", app.upstream.uri())),
        "the full upstream URL is shown"
    );
    assert!(html.contains("(+1 more)"));
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token_and_this_origin() {
    let app = spawn_app().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(201))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("bot");
    let first = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    let second = app.agent(&key).submit_one("POST", "/y", json!({})).await;
    let c = client();
    let cookie = format!("agentgate_session={}", app.admin_token);
    let page = c
        .get(format!("{}/ui/queue", app.admin_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let approve = format!("{}/ui/queue/{first}/approve", app.admin_url);

    for (token, origin) in [
        ("", None),
        ("0".repeat(64).as_str(), None),
        (csrf.as_str(), Some("http://evil.example")),
    ] {
        let mut req = c
            .post(&approve)
            .header("cookie", &cookie)
            .form(&[("csrf", token)]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        assert_eq!(
            req.send().await.unwrap().status(),
            403,
            "csrf {token:?} origin {origin:?}"
        );
    }
    assert_eq!(app.gw.entry(&first).unwrap().status.to_string(), "pending");
    // Another session's token does not fit this one.
    let r = c
        .post(&approve)
        .header("cookie", "agentgate_session=agt_other")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(goes_to_sign_in(&r));

    let digest = digest_of(&app.gw, &first);
    let r = c
        .post(&approve)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("digest", digest.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let e = app.wait_done(&first).await;
    assert_eq!(e.status.to_string(), "completed");
    assert_eq!(e.reviewed_by.as_deref(), Some("web-admin"));
    let r = c
        .post(format!("{}/ui/queue/{second}/reject", app.admin_url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("reason", "not this one")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let e = app.gw.entry(&second).unwrap();
    assert_eq!(
        (e.status.to_string().as_str(), e.rejection_reason.as_deref()),
        ("rejected", Some("not this one"))
    );
    // Both now show as recently decided.
    let html = c
        .get(format!("{}/ui/queue", app.admin_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Reason: not this one"));
    assert!(html.contains("Nothing is waiting"));
}

#[tokio::test]
async fn agent_keys_and_strangers_only_reach_the_sign_in_page() {
    let app = spawn_app().await;
    let key = app.new_agent("sneaky");
    let id = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    let c = client();
    for cookie in [format!("agentgate_session={key}"), String::new()] {
        let r = c
            .get(format!("{}/ui/queue", app.admin_url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(goes_to_sign_in(&r), "{cookie}");
        let r = c
            .post(format!("{}/ui/queue/{id}/approve", app.admin_url))
            .header("cookie", &cookie)
            .form(&[("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert!(goes_to_sign_in(&r), "{cookie}");
    }
    // The UI lives only on the admin listener.
    assert_eq!(
        app.agent(&key)
            .req(Method::GET, "/ui/queue")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(app.gw.entry(&id).unwrap().status.to_string(), "pending");
    // A wrong password re-renders the form with an error.
    let r = c
        .post(format!("{}/ui/login", app.admin_url))
        .form(&[("password", "nope nope nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Wrong password"));
}

#[tokio::test]
async fn history_filters_by_status_agent_and_service_and_shows_results() {
    let app = spawn_app().await;
    Mock::given(wiremock::matchers::path("/ok"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&app.upstream)
        .await;
    Mock::given(wiremock::matchers::path("/bad"))
        .respond_with(ResponseTemplate::new(422))
        .mount(&app.upstream)
        .await;
    let a = app.new_agent("alpha");
    let b = app.new_agent("beta");
    let done = app.agent(&a).submit_one("POST", "/ok", json!({})).await;
    let failed = app.agent(&b).submit_one("POST", "/bad", json!({})).await;
    let rejected = app.agent(&b).submit_one("POST", "/ok", json!({})).await;
    for id in [&done, &failed] {
        app.gw.approve(id, &digest_of(&app.gw, id), "cli").unwrap();
        app.gw.execute(id).await.unwrap();
    }
    app.gw
        .reject(&rejected, "cli", Some("<b>no</b>".into()))
        .unwrap();
    let get = |q: &'static str| {
        client()
            .get(format!("{}/ui/history{q}", app.admin_url))
            .header("cookie", format!("agentgate_session={}", app.admin_token))
            .send()
    };
    let all = get("").await.unwrap().text().await.unwrap();
    for id in [&done, &failed, &rejected] {
        assert!(all.contains(id.as_str()), "{id}");
    }
    assert!(all.contains("Request 1: HTTP 201") && all.contains("Request 1: HTTP 422"));
    assert!(
        all.contains("Reason: &#60;b&#62;no&#60;/b&#62;")
            || all.contains("Reason: &lt;b&gt;no&lt;/b&gt;"),
        "escaped"
    );
    assert!(all.contains("by cli"));
    let failed_only = get("?status=failed").await.unwrap().text().await.unwrap();
    assert!(failed_only.contains(failed.as_str()) && !failed_only.contains(done.as_str()));
    let alpha = get("?agent=alpha&service=github")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(alpha.contains(done.as_str()) && !alpha.contains(rejected.as_str()));
    let none = get("?agent=nobody").await.unwrap().text().await.unwrap();
    assert!(none.contains("No entries match"));
    let r = client()
        .get(format!("{}/ui/history", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/ui/login");
}
