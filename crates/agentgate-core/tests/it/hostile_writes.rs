//! Writes spelled to look like one thing and run as another: a method
//! override, a string that the service reads as a document, a private-message
//! field hidden in the query, a form, an encoding or a duplicate. Each is
//! refused at submit; none is queued and none reaches the service.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, add_mastodon, nothing_queued_or_sent, spawn_app, status_form};

async fn submit(app: &TestApp, key: &str, account: &str, request: Value) -> (u16, Value) {
    let service = if account == "m" { "mastodon" } else { "github" };
    app.agent(key)
        .submit_to(
            service,
            account,
            json!({"requests": [request], "comment": "c"}),
        )
        .await
}

#[tokio::test]
async fn a_direct_message_is_refused_wherever_and_however_its_visibility_is_written() {
    let app = spawn_app().await;
    add_mastodon(&app, "m");
    let key = app.new_agent("bot");
    let cases = [
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "psst", "visibility": "direct"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "psst", "visibility": " DIRECT "}}),
        json!({"method": "POST", "path": "/api/v1/statuses?visibility=direct", "body": {"status": "psst"}}),
        json!({"method": "POST", "path": "/api/v1/statuses?visibility=%64irect", "body": {"status": "psst"}}),
        json!({"method": "POST", "path": "/api/v1/statuses?visibility=public&visibility=direct", "body": {"status": "psst"}}),
        json!({"method": "POST", "path": "/api/v1/statuses?Visibility=direct", "body": {"status": "psst"}}),
        status_form("status=psst&visibility=%64irect"),
        status_form("status=psst&visibility=public&visibility=direct"),
        status_form("status=psst&status%5Bvisibility%5D=direct"),
        status_form("status=psst&visibility%5B%5D=direct"),
        status_form("status=psst&visibility=dir%65ct"),
        json!({"method": "PUT", "path": "/api/v1/statuses/1", "body": {"status": "edited", "visibility": "direct"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": "{\"status\": \"psst\", \"visibility\": \"direct\"}"}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": "{\"status\": \"psst\", \"visibility\": \"direct\"}",
               "headers": {"content-type": "text/plain"}}),
    ];
    for case in cases {
        let (s, v) = submit(&app, &key, "m", case.clone()).await;
        assert!(s == 403 || s == 400, "{case} was accepted ({s}): {v}");
    }
    // Through the write-on-read route, as a form.
    let r = app
        .agent(&key)
        .req(Method::POST, "/api/mastodon/m/api/v1/statuses")
        .header("x-agentgate-comment", "c")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("status=psst&visibility=%64irect")
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 403), "{}", r.status());
    nothing_queued_or_sent(&app).await;

    // A public post still goes through, in each form.
    let (s, v) = submit(
        &app,
        &key,
        "m",
        status_form("status=hello&visibility=public"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test]
async fn method_overrides_are_refused_not_stripped() {
    let app = spawn_app().await;
    let key = app.new_agent("bot");
    let cases = [
        json!({"method": "POST", "path": "/repos/o/r/issues/1", "headers": {"X-HTTP-Method-Override": "DELETE"}, "body": {}}),
        json!({"method": "POST", "path": "/repos/o/r/issues/1", "headers": {"x-method-override": "DELETE"}, "body": {}}),
        json!({"method": "POST", "path": "/repos/o/r/issues/1?_method=DELETE", "body": {}}),
        json!({"method": "POST", "path": "/repos/o/r/issues/1?%5Fmethod=delete", "body": {}}),
        json!({"method": "POST", "path": "/repos/o/r/issues/1", "body": {"_method": "DELETE"}}),
        json!({"method": "POST", "path": "/repos/o/r/issues/1", "body": "_method=delete",
               "headers": {"content-type": "application/x-www-form-urlencoded"}}),
        json!({"method": "POST", "path": "/repos/o/r/issues/1", "body": "a=1&_METHOD=delete",
               "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    ];
    for case in cases {
        let (s, v) = submit(&app, &key, "personal", case.clone()).await;
        assert_eq!(s, 400, "{case}: {v}");
        assert!(v["error"].as_str().unwrap().contains("method"), "{v}");
    }
    nothing_queued_or_sent(&app).await;
}

#[tokio::test]
async fn a_string_body_must_say_what_it_is() {
    let app = spawn_app().await;
    let key = app.new_agent("bot");
    // JSON in a string: the human would see a string, the service a document.
    let (s, v) = submit(
        &app,
        &key,
        "personal",
        json!({"method": "POST", "path": "/repos/o/r/issues", "body": "{\"title\": \"x\"}"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("JSON itself"), "{v}");
    for content_type in [
        None,
        Some("application/json"),
        Some("application/vnd.github+json"),
        // Text, bytes or parts: nothing the gateway can show a human as the
        // service will read it.
        Some("text/plain"),
        Some("application/octet-stream"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut request = json!({"method": "POST", "path": "/markdown/raw", "body": "some text"});
        if let Some(t) = content_type {
            request["headers"] = json!({"content-type": t});
        }
        let (s, v) = submit(&app, &key, "personal", request).await;
        assert_eq!(s, 400, "{content_type:?}: {v}");
    }
    nothing_queued_or_sent(&app).await;
    // A form says what it is: its fields are decoded, shown and encoded again.
    let (s, v) = submit(
        &app,
        &key,
        "personal",
        json!({"method": "POST", "path": "/markdown/raw", "body": "text=some+*text*&mode=gfm",
               "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
}

/// A write on a read URL carries the headers a write may carry (shown and
/// sent), and a method override there is refused like in a submission.
#[tokio::test]
async fn a_write_on_a_read_url_keeps_its_headers_and_refuses_overrides() {
    let app = spawn_app().await;
    let key = app.new_agent("bot");
    let c = app.agent(&key);
    let r = c
        .req(Method::PATCH, "/api/github/personal/repos/o/r/issues/1")
        .header("x-agentgate-comment", "retitle")
        .header("x-http-method-override", "DELETE")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    nothing_queued_or_sent(&app).await;
    let r = c
        .req(Method::PATCH, "/api/github/personal/repos/o/r/issues/1")
        .header("x-agentgate-comment", "retitle")
        .header("if-match", "\"etag-1\"")
        .header("idempotency-key", "k1")
        .header("user-agent", "curl/8")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let headers = &app.gw.entry(&id).unwrap().requests[0].headers;
    assert_eq!(headers["if-match"], "\"etag-1\"");
    assert_eq!(headers["idempotency-key"], "k1");
    assert!(!headers.contains_key("user-agent"));
}
