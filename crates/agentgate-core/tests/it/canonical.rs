//! The canonical write request, table-driven per service: what an agent
//! sends is stored in one form (query decoded and encoded again, duplicates
//! kept; JSON or decoded form bodies; allow-listed headers), the human is
//! shown that form, and the service receives exactly its bytes. What cannot
//! be shown faithfully is refused.

use agentgate_core::NewAccount;
use agentgate_core::secret::Secret;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{TestApp, add_mastodon, digest_of, spawn_app};

const FORM: &str = "application/x-www-form-urlencoded";

/// One agent request and the canonical form it must be stored and sent as:
/// the path with its query, the body as stored, the content-type sent.
struct Case {
    sent: Value,
    path: &'static str,
    body: Option<Value>,
    content_type: Option<&'static str>,
}

fn case(
    sent: Value,
    path: &'static str,
    body: Option<Value>,
    content_type: Option<&'static str>,
) -> Case {
    Case {
        sent,
        path,
        body,
        content_type,
    }
}

/// Cases every service shares: queries and their encodings, JSON bodies.
fn common(prefix: &'static str) -> Vec<(String, Case)> {
    let p = |rest: &str| format!("{prefix}{rest}");
    vec![
        (
            p("/a?x=1&x=2&y=%7E"),
            case(json!(null), "/a?x=1&x=2&y=%7E", None, None),
        ),
        (
            p("/a?y=a%20b&z=%E2%9C%93&flag"),
            case(json!(null), "/a?y=a+b&z=%E2%9C%93&flag=", None, None),
        ),
        (p("/a?"), case(json!(null), "/a", None, None)),
        (
            p("/a"),
            case(
                json!({"b": [1, {"c": null}], "a": "é\u{0}"}),
                "/a",
                Some(json!({"a": "é\u{0}", "b": [1, {"c": null}]})),
                Some("application/json"),
            ),
        ),
    ]
}

async fn run_cases(
    app: &TestApp,
    key: &str,
    service: &str,
    account: &str,
    base_path: &str,
    cases: Vec<(String, Case)>,
) {
    for (raw_path, c) in cases {
        let mut request = json!({"method": "POST", "path": raw_path});
        if !c.sent.is_null() {
            request["body"] = c.sent.clone();
        }
        if c.content_type == Some(FORM) {
            request["headers"] = json!({ "Content-Type": FORM });
        }
        let (s, v) = app
            .agent(key)
            .submit_to(
                service,
                account,
                json!({"requests": [request], "comment": "c"}),
            )
            .await;
        assert_eq!(s, 201, "{service} {raw_path}: {v}");
        let id = v["id"].as_str().unwrap().to_string();
        let stored = app.gw.entry(&id).unwrap().requests[0].clone();
        let want_path = format!("{base_path}{}", c.path);
        assert_eq!(stored.path, want_path, "{service} {raw_path}");
        assert_eq!(stored.body, c.body, "{service} {raw_path}");
        assert_eq!(
            stored.headers.get("content-type").map(String::as_str),
            c.content_type,
            "{service} {raw_path}"
        );

        // What runs is exactly what is stored, byte for byte.
        let before = app.upstream.received_requests().await.unwrap().len();
        app.gw
            .approve_and_run(&id, &digest_of(&app.gw, &id), "test")
            .await
            .unwrap();
        let all = app.upstream.received_requests().await.unwrap();
        let got = all[before..]
            .iter()
            .find(|r| r.method.as_str() == "POST")
            .unwrap_or_else(|| panic!("{service} {raw_path}: nothing sent"));
        let sent_path = match got.url.query() {
            Some(q) => format!("{}?{q}", got.url.path()),
            None => got.url.path().to_string(),
        };
        assert_eq!(sent_path, want_path, "{service} {raw_path}");
        assert_eq!(
            got.body,
            stored.wire_body().unwrap_or_default().to_vec(),
            "{service} {raw_path}"
        );
        assert_eq!(
            got.headers.get("content-type").map(|v| v.to_str().unwrap()),
            c.content_type,
            "{service} {raw_path}"
        );
    }
}

#[tokio::test]
async fn each_service_stores_and_sends_one_canonical_form() {
    let app = spawn_app().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&app.upstream)
        .await;
    add_mastodon(&app, "m");
    app.gw
        .add_account(NewAccount {
            service: "jira".into(),
            name: "j".into(),
            base_url: Some(app.upstream.uri()),
            credentials: [("email", "me@example.com"), ("api_token", "t")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Secret::new(v)))
                .collect(),
        })
        .unwrap();
    let key = app.new_agent("bot");

    let mut github = common("/repos/o/r");
    github.push((
        "/repos/o/r/issues".into(),
        case(
            json!({"title": "x"}),
            "/issues",
            Some(json!({"title": "x"})),
            Some("application/json"),
        ),
    ));
    run_cases(&app, &key, "github", "personal", "/repos/o/r", github).await;

    // Mastodon reads forms as well as JSON: a form string and an object
    // given as form fields are both stored as one encoding.
    let mut mastodon = common("/api/v1");
    mastodon.push((
        "/api/v1/statuses".into(),
        case(
            json!("status=hello%20there&media_ids%5B%5D=1&media_ids[]=2"),
            "/statuses",
            Some(json!(
                "status=hello+there&media_ids%5B%5D=1&media_ids%5B%5D=2"
            )),
            Some(FORM),
        ),
    ));
    mastodon.push((
        "/api/v1/statuses".into(),
        case(
            json!({"status": "a&b=c", "sensitive": true, "media_ids[]": [1, 2]}),
            "/statuses",
            Some(json!(
                "media_ids%5B%5D=1&media_ids%5B%5D=2&sensitive=true&status=a%26b%3Dc"
            )),
            Some(FORM),
        ),
    ));
    run_cases(&app, &key, "mastodon", "m", "/api/v1", mastodon).await;

    let jira = common("/rest/api/3");
    run_cases(&app, &key, "jira", "j", "/rest/api/3", jira).await;
}

/// What the gateway could not show a human as the service will read it is
/// refused at submit, on every service, and nothing is queued.
#[tokio::test]
async fn what_cannot_be_shown_faithfully_is_refused() {
    let app = spawn_app().await;
    add_mastodon(&app, "m");
    let key = app.new_agent("bot");
    let refused = [
        json!({"method": "POST", "path": "/x", "body": "{\"status\": \"hi\"}"}),
        json!({"method": "POST", "path": "/x", "body": "plain text"}),
        json!({"method": "POST", "path": "/x", "body": "AAEC", "headers": {"content-type": "application/octet-stream"}}),
        json!({"method": "POST", "path": "/x", "body": "--b\r\n", "headers": {"content-type": "multipart/form-data; boundary=b"}}),
        json!({"method": "POST", "path": "/x", "body": "a=%ff", "headers": {"content-type": FORM}}),
        json!({"method": "POST", "path": "/x", "body": "a=%zz", "headers": {"content-type": FORM}}),
        json!({"method": "POST", "path": "/x", "body": {"a": {"nested": 1}}, "headers": {"content-type": FORM}}),
        json!({"method": "POST", "path": "/x", "body": {"a": null}, "headers": {"content-type": FORM}}),
        json!({"method": "POST", "path": "/x?a=%C0%AF"}),
        json!({"method": "POST", "path": "/x?a=%"}),
        json!({"method": "POST", "path": "/x", "headers": {"x-custom": "1"}}),
        json!({"method": "POST", "path": "/x", "headers": {"Accept": "a", "ACCEPT": "b"}}),
        json!({"method": "POST", "path": "/x", "headers": {"X-HTTP-Method-Override": "DELETE"}}),
        json!({"method": "POST", "path": "/x?_method=delete"}),
        json!({"method": "POST", "path": "/x?%5F%6Dethod=delete"}),
        json!({"method": "POST", "path": "/x", "body": "a=1&_Method=delete", "headers": {"content-type": FORM}}),
        json!({"method": "POST", "path": "/x", "body": {"_method": "DELETE"}}),
        json!({"method": "POST", "path": "/x", "body": {"status[_method]": "DELETE"}}),
    ];
    for service_account in [("github", "personal"), ("mastodon", "m")] {
        for r in &refused {
            let (s, v) = app
                .agent(&key)
                .submit_to(
                    service_account.0,
                    service_account.1,
                    json!({"requests": [r], "comment": "c"}),
                )
                .await;
            assert_eq!(s, 400, "{service_account:?} {r}: {v}");
            assert!(
                v["error"].as_str().unwrap().starts_with("requests[0]: "),
                "{v}"
            );
        }
    }
    assert!(app.gw.entries(&Default::default()).unwrap().is_empty());
}
