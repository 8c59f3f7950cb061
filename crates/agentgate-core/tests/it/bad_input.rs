//! Bad input gets a clear JSON 4xx, the server keeps serving and nothing stored changes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn send_raw(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = app
        .agent(key)
        .req(method, path)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, v)
}

#[tokio::test]
async fn bad_submissions_are_refused_with_json_errors_and_store_nothing() {
    let app = spawn_app().await;
    let key = app.new_agent("bad");
    let submit = "/api/queue/github/personal/submit";
    let big = vec![b' '; 1024 * 1024 + 1];
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed JSON", b"{\"requests\": [".to_vec(), 400),
        ("not an object", b"[1,2]".to_vec(), 400),
        ("empty body", Vec::new(), 400),
        ("wrong types", br#"{"requests": {"method": "POST"}, "comment": "c"}"#.to_vec(), 400),
        ("empty batch", br#"{"requests": [], "comment": "c"}"#.to_vec(), 400),
        ("no comment", br#"{"requests": [{"method": "POST", "path": "/x"}]}"#.to_vec(), 400),
        ("blank comment", br#"{"requests": [{"method": "POST", "path": "/x"}], "comment": "  "}"#.to_vec(), 400),
        ("unknown method", br#"{"requests": [{"method": "BREW", "path": "/x"}], "comment": "c"}"#.to_vec(), 400),
        ("GET is not a write", br#"{"requests": [{"method": "GET", "path": "/x"}], "comment": "c"}"#.to_vec(), 400),
        ("dot-dot", br#"{"requests": [{"method": "POST", "path": "/a/../../b"}], "comment": "c"}"#.to_vec(), 400),
        ("encoded slash", br#"{"requests": [{"method": "POST", "path": "/a%2F..%2Fb"}], "comment": "c"}"#.to_vec(), 400),
        ("double slash", br#"{"requests": [{"method": "POST", "path": "//evil.example/x"}], "comment": "c"}"#.to_vec(), 400),
        ("bad header", br#"{"requests": [{"method": "POST", "path": "/x", "headers": {"a b": "c"}}], "comment": "c"}"#.to_vec(), 400),
        ("invalid UTF-8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'], 400),
        ("over the body limit", big, 413),
    ];
    for (what, body, expected) in cases {
        let (status, v) = send_raw(&app, &key, Method::POST, submit, body).await;
        assert_eq!(status, expected, "{what}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {v}"
        );
    }
    let many: Vec<Value> = (0..51)
        .map(|_| json!({"method": "POST", "path": "/x"}))
        .collect();
    let (status, v) = app
        .agent(&key)
        .submit("personal", json!({"requests": many, "comment": "c"}))
        .await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("at most 50"));

    assert!(
        app.gw.entries(&Default::default()).unwrap().is_empty(),
        "nothing was queued"
    );
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
    // Still serving.
    let (status, _) = app.agent(&key).get("/api/services").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_read_paths_are_400_and_never_reach_upstream() {
    let app = spawn_app().await;
    let key = app.new_agent("bad");
    for p in [
        "/api/github/personal/a/%2e%2e/b",
        "/api/github/personal/a%2fb",
        "/api/github/personal/a%5Cb",
        "/api/github/personal/%ff%fe",
        "/api/github/personal/x%zz",
        "/api/github/personal//evil.example/x",
    ] {
        assert_eq!(raw_get(app.agent_addr(), p, &key).await, 400, "{p}");
    }
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let key = app.new_agent("x");
    let (s, v) = app.agent(&key).get("/nope").await;
    assert_eq!(s, 404);
    assert!(v["error"].is_string());
    let r = app
        .agent(&key)
        .req(Method::PUT, "/api/queue/list")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = app
        .agent(&key)
        .req(Method::OPTIONS, "/api/github/personal/user")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (s, _) = app
        .agent(&key)
        .get("/api/queue/github/personal/status/doesnotexist")
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn bad_admin_input_is_refused_cleanly() {
    let app = spawn_app().await;
    let (s, v) = app
        .admin(
            Method::POST,
            "/admin/keys",
            Some(json!({"name": "bad/name"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = app
        .admin(Method::POST, "/admin/keys", Some(json!({"nam": "x"})))
        .await;
    assert_eq!(s, 400);
    let (s, v) = app
        .admin(
            Method::POST,
            "/admin/accounts",
            Some(json!({"service": "github", "name": "x", "credentials": {}})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = app
        .admin(
            Method::POST,
            "/admin/accounts",
            Some(json!({"service": "github", "name": "x", "base_url": "http://remote.example", "credentials": {"token": "t"}})),
        )
        .await;
    assert_eq!(s, 400, "plain http to another host is refused: {v}");
    let (s, _) = app
        .admin(
            Method::POST,
            "/admin/accounts",
            Some(json!({"service": "nosuch", "name": "x", "credentials": {"token": "t"}})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .admin(Method::GET, "/admin/queue?status=bogus", None)
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .admin(
            Method::PATCH,
            "/admin/settings",
            Some(json!({"upstream_timeout_secs": 0})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .admin(Method::POST, "/admin/queue/nope/approve", None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        app.gw.accounts().unwrap().len(),
        1,
        "only the original account exists"
    );
    assert!(app.gw.agents().unwrap().is_empty());
}
