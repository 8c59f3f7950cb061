//! An approval names what it approves: the digest of the canonical requests
//! the human was shown. A missing or different digest is 409 and runs
//! nothing; a human's edit is checked like a submission, changes the digest,
//! is what runs, and the agent sees it.

use agentgate_core::audit::AuditFilter;
use agentgate_core::queue::Status;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{TestApp, csrf_of, digest_of, spawn_app};

/// A gateway whose service accepts every write, and an agent's key.
async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"ok": true})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("bot");
    (app, key)
}

async fn writes(app: &TestApp) -> Vec<wiremock::Request> {
    app.upstream
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() != "GET")
        .collect()
}

async fn submit(app: &TestApp, key: &str, requests: Value) -> String {
    let (s, v) = app
        .agent(key)
        .submit(
            "personal",
            json!({"requests": requests, "comment": "please"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_approval_without_the_digest_or_with_another_runs_nothing() {
    let (app, key) = setup().await;
    let id = submit(
        &app,
        &key,
        json!([{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "x"}}]),
    )
    .await;
    let route = format!("/admin/queue/{id}/approve");
    let digest = digest_of(&app.gw, &id);
    let mut other = digest.clone().into_bytes();
    other[0] = if other[0] == b'0' { b'1' } else { b'0' };
    let other = String::from_utf8(other).unwrap();
    for body in [
        None,
        Some(json!({})),
        Some(json!({"digest": null})),
        Some(json!({"digest": ""})),
        Some(json!({"digest": other})),
        Some(json!({"digest": digest.to_uppercase()})),
        Some(json!({"digest": &digest[..12]})),
    ] {
        let (s, v) = app.admin(Method::POST, &route, body.clone()).await;
        assert_eq!(s, 409, "{body:?}: {v}");
        assert_eq!(app.gw.entry(&id).unwrap().status, Status::Pending);
    }
    // Another type or an extra field is a bad request, not an approval.
    for body in [
        json!({"digest": 5}),
        json!({"digest": digest, "force": true}),
    ] {
        let (s, _) = app.admin(Method::POST, &route, Some(body)).await;
        assert_eq!(s, 400);
    }
    assert!(writes(&app).await.is_empty());
    let (s, v) = app
        .admin(Method::POST, &route, Some(json!({ "digest": digest })))
        .await;
    assert_eq!(s, 200, "{v}");
    app.wait_done(&id).await;
    assert_eq!(writes(&app).await.len(), 1);
    // The audit log records the digest approved.
    let records = app
        .gw
        .audit(&AuditFilter {
            kind: Some("transition".into()),
            ..Default::default()
        })
        .unwrap();
    let approval = records
        .iter()
        .find(|r| r.entry_id.as_deref() == Some(&id) && r.to_status.as_deref() == Some("approved"))
        .unwrap();
    assert_eq!(approval.digest.as_deref(), Some(digest.as_str()));
}

#[tokio::test]
async fn an_edit_is_checked_like_a_submission_runs_as_edited_and_the_agent_sees_it() {
    let (app, key) = setup().await;
    let id = submit(
        &app,
        &key,
        json!([
            {"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "tpyo"}},
            {"method": "POST", "path": "/repos/o/r/issues/1/comments", "body": {"body": "also"}}
        ]),
    )
    .await;
    let before = digest_of(&app.gw, &id);
    let route = format!("/admin/queue/{id}/requests");
    let edit = |digest: &str, requests: Value| json!({"digest": digest, "requests": requests});

    // Into an account-control path, a read, a bad path, an empty batch, a
    // header agents may not set, a method override: refused, nothing changed.
    for (requests, status) in [
        (
            json!([{"method": "POST", "path": "/user/keys", "body": {"key": "ssh-rsa x"}}]),
            403,
        ),
        (json!([{"method": "GET", "path": "/user"}]), 400),
        (json!([{"method": "POST", "path": "/a/../user/keys"}]), 400),
        (json!([]), 400),
        (
            json!([{"method": "POST", "path": "/x", "headers": {"x-evil": "1"}}]),
            400,
        ),
        (
            json!([{"method": "POST", "path": "/x?_method=DELETE"}]),
            400,
        ),
        (json!("not a list"), 400),
    ] {
        let (s, v) = app
            .admin(Method::PUT, &route, Some(edit(&before, requests.clone())))
            .await;
        assert_eq!(s, status, "{requests}: {v}");
        assert_eq!(digest_of(&app.gw, &id), before);
    }
    // An edit from a stale view is refused too.
    let stale = "f".repeat(64);
    let (s, _) = app
        .admin(
            Method::PUT,
            &route,
            Some(edit(&stale, json!([{"method": "POST", "path": "/x"}]))),
        )
        .await;
    assert_eq!(s, 409);

    // Fix the title and drop the second request.
    let (s, v) = app
        .admin(
            Method::PUT,
            &route,
            Some(edit(
                &before,
                json!([{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "typo"}}]),
            )),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["edited"], true);
    let after = v["digest"].as_str().unwrap().to_string();
    assert_ne!(after, before);
    assert_eq!(v["requests"].as_array().unwrap().len(), 1);

    // The agent sees the edit and its own requests, by REST and MCP.
    let (_, status) = app
        .agent(&key)
        .get(&format!("/api/queue/github/personal/status/{id}"))
        .await;
    assert_eq!(status["edited"], true, "{status}");
    assert_eq!(status["requests"][0]["body"]["title"], "typo");
    assert_eq!(status["original_requests"][1]["body"]["body"], "also");
    assert_eq!(status["status"], "pending");

    // The old digest approves nothing; the new one runs exactly the edit.
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/admin/queue/{id}/approve"),
            Some(json!({ "digest": before })),
        )
        .await;
    assert_eq!(s, 409);
    assert!(writes(&app).await.is_empty());
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/admin/queue/{id}/approve"),
            Some(json!({ "digest": after })),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(app.wait_done(&id).await.status, Status::Completed);
    let sent = writes(&app).await;
    assert_eq!(sent.len(), 1, "the dropped request never ran");
    assert_eq!(
        serde_json::from_slice::<Value>(&sent[0].body).unwrap(),
        json!({"title": "typo"})
    );

    // The audit log keeps the original and the edit.
    let edits = app
        .gw
        .audit(&AuditFilter {
            kind: Some("edit".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(edits.len(), 1);
    let detail: Value = serde_json::from_str(edits[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["digest_before"], before.as_str());
    assert_eq!(detail["before"][0]["body"]["title"], "tpyo");
    assert_eq!(detail["after"][0]["body"]["title"], "typo");
    assert_eq!(edits[0].digest.as_deref(), Some(after.as_str()));
    assert_eq!(edits[0].surface.as_deref(), Some("web-admin"));

    // A decided entry cannot be edited.
    let (s, _) = app
        .admin(
            Method::PUT,
            &route,
            Some(edit(&after, json!([{"method": "POST", "path": "/x"}]))),
        )
        .await;
    assert_eq!(s, 409);
}

/// An edit and an approval racing from the same view: at most one of them
/// wins, and what runs is always what the winning approval named.
#[tokio::test]
async fn an_edit_racing_an_approval_never_runs_what_nobody_approved() {
    let (app, key) = setup().await;
    for _ in 0..10 {
        let id = submit(
            &app,
            &key,
            json!([{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "original"}}]),
        )
        .await;
        let seen = digest_of(&app.gw, &id);
        let (gw1, gw2) = (app.gw.clone(), app.gw.clone());
        let (id1, id2, d1, d2) = (id.clone(), id.clone(), seen.clone(), seen.clone());
        let edit = std::thread::spawn(move || {
            gw1.edit(
                &id1,
                &d1,
                json!([{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "edited"}}]),
                "web-admin",
            )
        });
        let approve = std::thread::spawn(move || gw2.approve(&id2, &d2, "admin-api"));
        let (edited, approved) = (edit.join().unwrap(), approve.join().unwrap());
        assert!(
            !(edited.is_ok() && approved.is_ok()),
            "both the edit and the approval of one view succeeded"
        );
        let e = app.gw.entry(&id).unwrap();
        if approved.is_ok() {
            assert_eq!(e.digest, seen, "an approved entry changed after approval");
            assert_eq!(e.requests[0].body, Some(json!({"title": "original"})));
        } else {
            assert_eq!(e.status, Status::Pending);
            app.gw.reject(&id, "test", None).unwrap();
        }
    }
}

#[tokio::test]
async fn the_web_admin_shows_every_request_whole_and_edits_it() {
    let (app, key) = setup().await;
    let long: String = (0..600).map(|i| format!("line {i}\n")).collect();
    let hidden = "x\u{1b}[8my\u{202e}z\u{200b}w\u{9b}v";
    let id = submit(
        &app,
        &key,
        json!([
            {"method": "PATCH", "path": "/repos/o/r/issues/4?state=closed&state=open&note=a%20b",
             "headers": {"If-Match": "\"etag-1\"", "X-GitHub-Api-Version": "2022-11-28"},
             "body": {"state": "closed", "title": "<b>Rewritten</b>"}},
            {"method": "POST", "path": "/repos/o/r/issues/4/comments", "body": {"body": long}},
            {"method": "POST", "path": "/repos/o/r/issues/4/comments?q=%E2%80%AEx%1B",
             "body": {"body": hidden, "title": hidden}}
        ]),
    )
    .await;
    let page = app.ui_page("/ui/queue").await;
    let digest = digest_of(&app.gw, &id);
    for shown in [
        "<code>state</code></th><td><code>closed</code>",
        "<code>state</code></th><td><code>open</code>",
        "<code>note</code></th><td><code>a b</code>",
        "<code>if-match</code></th><td><code>&#34;etag-1&#34;</code>",
        "<code>x-github-api-version</code>",
        "<code>content-type</code></th><td><code>application/json</code>",
        "Rewritten",
        "line 599",
        "<details class=\"body\"><summary>Body: ",
        &format!("name=\"digest\" value=\"{digest}\""),
        &format!("action=\"/ui/queue/{id}/edit\""),
    ] {
        assert!(page.contains(shown), "the queue page lacks {shown:?}");
    }
    assert!(!page.contains("<b>Rewritten</b>"));
    // Nothing an agent wrote is invisible or reorders the page.
    for c in ['\u{1b}', '\u{202e}', '\u{200b}', '\u{9b}'] {
        assert!(!page.contains(c), "{c:?} reached the page");
    }
    assert!(page.contains("\\u202e"), "shown as a visible escape");

    // Edit from the page: drop the long comment.
    let csrf = csrf_of(&page);
    let edited =
        json!([{"method": "PATCH", "path": "/repos/o/r/issues/4", "body": {"state": "closed"}}]);
    let r = app
        .ui_post(
            &format!("/ui/queue/{id}/edit"),
            &[
                ("csrf", csrf.as_str()),
                ("digest", digest.as_str()),
                ("requests", edited.to_string().as_str()),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let e = app.gw.entry(&id).unwrap();
    assert!(e.edited);
    assert_eq!(e.requests.len(), 1);
    // The page's old approve form no longer approves anything.
    let r = app
        .ui_post(
            &format!("/ui/queue/{id}/approve"),
            &[("csrf", csrf.as_str()), ("digest", digest.as_str())],
        )
        .await;
    assert_eq!(r.status(), 409);
    // Not JSON: refused, the text given back.
    let r = app
        .ui_post(
            &format!("/ui/queue/{id}/edit"),
            &[
                ("csrf", csrf.as_str()),
                ("digest", e.digest.as_str()),
                ("requests", "[{\"method\": <oops>"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("&lt;oops&gt;"));
    assert!(writes(&app).await.is_empty());
}
