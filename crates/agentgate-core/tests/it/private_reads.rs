//! Reads whose answers can carry private messages: Mastodon's direct
//! statuses leave every answer (notifications, timelines, threads, search,
//! grouped notifications), raw and compact, REST and MCP alike; one fetched by
//! id is refused with the reason; an answer that cannot be checked is not
//! passed on.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{TestApp, add_mastodon, spawn_app};
use crate::mcp::{call, connect};

const SECRET: &str = "the secret text of a private mention";

fn status(id: &str, visibility: &str, text: &str) -> Value {
    json!({"id": id, "visibility": visibility, "content": format!("<p>{text}</p>"),
           "created_at": "2026-11-30T10:00:00.000Z", "url": format!("https://m.example/@a/{id}"),
           "account": {"id": "9", "acct": "alice", "display_name": "Alice"}})
}

async fn mastodon(app: &TestApp) {
    add_mastodon(app, "m");
    let answers = [
        (
            "/api/v1/notifications",
            json!([
            {"id": "1", "type": "mention", "account": {"id": "9", "acct": "alice"}, "status": status("101", "direct", SECRET)},
            {"id": "2", "type": "mention", "account": {"id": "9", "acct": "alice"}, "status": status("102", "public", "hello all")},
            {"id": "3", "type": "follow", "account": {"id": "8", "acct": "bob"}}]),
        ),
        (
            "/api/v2/notifications",
            json!({
            "accounts": [{"id": "9", "acct": "alice"}],
            "statuses": [status("101", "direct", SECRET), status("102", "public", "hello all")],
            "notification_groups": [
                {"group_key": "a", "type": "mention", "status_id": "101", "sample_account_ids": ["9"]},
                {"group_key": "b", "type": "mention", "status_id": "102", "sample_account_ids": ["9"]}]}),
        ),
        (
            "/api/v1/timelines/home",
            json!([
                status("101", "direct", SECRET),
                status("102", "public", "hello all")
            ]),
        ),
        ("/api/v1/statuses/101", status("101", "direct", SECRET)),
        ("/api/v1/statuses/102", status("102", "public", "hello all")),
        (
            "/api/v1/statuses/102/context",
            json!({"ancestors": [status("101", "direct", SECRET)], "descendants": [status("103", "unlisted", "a reply")]}),
        ),
        (
            "/api/v2/search",
            json!({"accounts": [], "hashtags": [], "statuses": [status("101", "direct", SECRET)]}),
        ),
        (
            "/api/v1/notifications/1",
            json!({"id": "1", "type": "mention", "status": status("101", "direct", SECRET)}),
        ),
        (
            "/api/v1/scheduled_statuses",
            json!([{"id": "5", "params": {"text": SECRET, "visibility": "direct"}}]),
        ),
    ];
    for (p, body) in answers {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&app.upstream)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/v1/statuses/101/source"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "101", "text": SECRET})),
        )
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/bookmarks"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!("<html>{SECRET}</html>")))
        .mount(&app.upstream)
        .await;
}

#[tokio::test]
async fn direct_messages_never_reach_an_agent_through_a_permitted_read() {
    let app = spawn_app().await;
    mastodon(&app).await;
    let key = app.new_agent("reader");
    for raw in [false, true] {
        for (p, removed) in [
            ("/api/v1/notifications", "1"),
            ("/api/v2/notifications", "2"),
            ("/api/v1/timelines/home", "1"),
            ("/api/v1/statuses/102/context", "1"),
            ("/api/v2/search?q=secret", "1"),
            ("/api/v1/scheduled_statuses", "1"),
        ] {
            let r = app
                .agent(&key)
                .req(reqwest::Method::GET, &format!("/api/mastodon/m{p}"))
                .header("x-agentgate-raw", if raw { "true" } else { "false" })
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{p}");
            assert_eq!(
                r.headers()
                    .get("x-agentgate-private-removed")
                    .map(|v| v.to_str().unwrap().to_string())
                    .as_deref(),
                Some(removed),
                "{p} raw={raw}"
            );
            let text = r.text().await.unwrap();
            assert!(!text.contains(SECRET), "{p} raw={raw}: {text}");
            assert!(!text.contains("\"101\""), "{p} raw={raw}: {text}");
            if p.contains("notifications") || p.contains("timelines") {
                assert!(text.contains("hello all"), "the public item stays: {text}");
            }
        }
    }
    // Fetched by id, a private message is refused with the reason.
    for p in [
        "/api/v1/statuses/101",
        "/api/v1/notifications/1",
        "/api/v1/statuses/101/source",
    ] {
        let (s, v) = app.agent(&key).get(&format!("/api/mastodon/m{p}")).await;
        assert_eq!(s, 403, "{p}: {v}");
        assert!(!v.to_string().contains(SECRET), "{v}");
    }
    // A public one passes untouched.
    let (s, v) = app
        .agent(&key)
        .get("/api/mastodon/m/api/v1/statuses/102")
        .await;
    assert_eq!(s, 200, "{v}");
    // An answer that cannot be checked is not passed on.
    let r = app
        .agent(&key)
        .req(reqwest::Method::GET, "/api/mastodon/m/api/v1/bookmarks")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains(SECRET));
}

#[tokio::test]
async fn mcp_reads_are_filtered_the_same_way() {
    let app = spawn_app().await;
    mastodon(&app).await;
    let key = app.new_agent("mcp-reader");
    let client = connect(&app, &key).await.unwrap();
    let (err, read) = call(
        &client,
        "read",
        json!({"service": "mastodon", "account": "m", "path": "/api/v1/notifications"}),
    )
    .await;
    assert!(!err, "{read}");
    assert!(!read.to_string().contains(SECRET), "{read}");
    assert!(read.to_string().contains("hello all"), "{read}");
    let (err, read) = call(
        &client,
        "read",
        json!({"service": "mastodon", "account": "m", "path": "/api/v1/statuses/101"}),
    )
    .await;
    assert!(err, "{read}");
    assert!(!read.to_string().contains(SECRET), "{read}");
}

/// Mastodon (Rails) routes `/api/v1/notifications.json` as the notifications:
/// the filter sees every form a path is routed as, like the blocks.
#[tokio::test]
async fn a_format_suffix_does_not_dodge_the_filter() {
    let app = spawn_app().await;
    add_mastodon(&app, "m");
    let list = json!([
        {"id": "1", "type": "mention", "status": status("101", "direct", SECRET)},
        {"id": "2", "type": "mention", "status": status("102", "public", "hello all")}]);
    for (p, body) in [
        ("/api/v1/notifications.json", list.clone()),
        ("/api/v1/timelines/home.json", list),
        ("/api/v1/statuses/101.json", status("101", "direct", SECRET)),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&app.upstream)
            .await;
    }
    let key = app.new_agent("reader");
    for p in [
        "/api/v1/notifications.json",
        "/api/v1/timelines/home.json",
        "/api/v1/statuses/101.json",
    ] {
        let (s, v) = app.agent(&key).get(&format!("/api/mastodon/m{p}")).await;
        assert!(matches!(s, 200 | 403), "{p}: {s}");
        assert!(!v.to_string().contains(SECRET), "{p}: {v}");
    }
}

/// A direct message reaches no agent through a write's answer (favouriting
/// one answers with it) nor through an endpoint the filter does not name:
/// every Mastodon answer is checked on what it holds.
#[tokio::test]
async fn write_answers_and_other_endpoints_are_filtered_too() {
    let app = spawn_app().await;
    add_mastodon(&app, "m");
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses/101/favourite"))
        .respond_with(ResponseTemplate::new(200).set_body_json(status("101", "direct", SECRET)))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/lists/1/timeline-ish"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            status("101", "direct", SECRET),
            status("102", "public", "hello all")
        ])))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("bot");
    // A read of an endpoint no rule names: the direct status leaves it.
    let r = app
        .agent(&key)
        .req(
            reqwest::Method::GET,
            "/api/mastodon/m/api/v1/lists/1/timeline-ish",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-agentgate-private-removed"], "1");
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(SECRET) && text.contains("hello all"),
        "{text}"
    );
    // A write whose answer is the direct message: the result keeps the
    // status but not the message.
    let (s, v) = app
        .agent(&key)
        .submit_to(
            "mastodon",
            "m",
            json!({"requests": [{"method": "POST", "path": "/api/v1/statuses/101/favourite"}], "comment": "like"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    app.gw
        .approve_and_run(&id, &crate::helpers::digest_of(&app.gw, &id), "test")
        .await
        .unwrap();
    let (_, entry) = app
        .agent(&key)
        .get(&format!("/api/queue/mastodon/m/status/{id}"))
        .await;
    assert_eq!(entry["results"][0]["status"], 200);
    assert!(!entry.to_string().contains(SECRET), "{entry}");
}
