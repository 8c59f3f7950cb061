//! The audit log: every read and every queue transition, with who and through
//! which surface; filters, exports and retention.

use std::sync::Arc;

use agentgate_core::AuditFilter;
use agentgate_core::clock::ManualClock;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

fn records(app: &TestApp, kind: &str) -> Vec<agentgate_core::AuditRecord> {
    let mut r = app
        .gw
        .audit(&AuditFilter {
            kind: Some(kind.into()),
            ..Default::default()
        })
        .unwrap();
    r.reverse();
    r
}

#[tokio::test]
async fn reads_are_recorded_with_status_and_latency_even_when_refused() {
    let app = spawn_app().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&app.upstream)
        .await;
    app.admin(
        Method::PUT,
        "/admin/accounts/github/personal/rules",
        Some(json!({"rules": [{"path": "/secret*", "effect": "deny"}]})),
    )
    .await;
    let key = app.new_agent("reader");
    let a = app.agent(&key);
    assert_eq!(
        a.get("/api/github/personal/user?token=should-not-be-logged")
            .await
            .0,
        200
    );
    assert_eq!(a.get("/api/github/personal/secrets").await.0, 403);
    assert_eq!(a.get("/api/github/nobody/user").await.0, 403);
    let reads = records(&app, "read");
    let got: Vec<(String, String, u16, Option<u32>)> = reads
        .iter()
        .map(|r| {
            (
                r.account.clone().unwrap(),
                r.path.clone().unwrap(),
                r.status.unwrap(),
                r.count,
            )
        })
        .collect();
    // The two refused reads of the minute are one record with a count.
    assert_eq!(
        got,
        vec![
            ("personal".into(), "/user".into(), 200, None),
            ("personal".into(), "/secrets".into(), 403, Some(2)),
        ]
    );
    for r in &reads {
        assert_eq!(r.agent.as_deref(), Some("reader"));
        assert_eq!(r.service.as_deref(), Some("github"));
        assert_eq!(r.method.as_deref(), Some("GET"));
        assert!(r.latency_ms.unwrap() >= 0.0);
    }
    let all = serde_json::to_string(&app.gw.audit(&AuditFilter::default()).unwrap()).unwrap();
    assert!(
        !all.contains("should-not-be-logged"),
        "query strings stay out of the log"
    );
}

#[tokio::test]
async fn every_transition_is_recorded_with_its_actor_and_surface() {
    let app = spawn_app().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(201))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("writer");
    let a = app.agent(&key);
    let approved = a.submit_one("POST", "/a", json!({})).await;
    app.approve_api(&approved).await;
    app.wait_done(&approved).await;
    let rejected = a.submit_one("POST", "/b", json!({})).await;
    app.gw.reject(&rejected, "cli", Some("no".into())).unwrap();
    let withdrawn = a.submit_one("POST", "/c", json!({})).await;
    a.req(
        Method::DELETE,
        &format!("/api/queue/github/personal/status/{withdrawn}"),
    )
    .send()
    .await
    .unwrap();
    app.admin(
        Method::PUT,
        "/admin/accounts/github/personal/rules",
        Some(json!({"rules": [{"method": "POST", "path": "/auto", "effect": "auto_approve"}]})),
    )
    .await;
    let (_, v) = a
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/auto"}], "comment": "c"}),
        )
        .await;
    let auto = v["id"].as_str().unwrap().to_string();
    app.wait_done(&auto).await;

    let rows: Vec<(String, Option<String>, String, String, String)> = records(&app, "transition")
        .into_iter()
        .map(|r| {
            (
                r.entry_id.unwrap(),
                r.from_status,
                r.to_status.unwrap(),
                r.actor.unwrap(),
                r.surface.unwrap(),
            )
        })
        .collect();
    let of = |id: &str| -> Vec<(Option<String>, String, String, String)> {
        rows.iter()
            .filter(|r| r.0 == id)
            .map(|r| (r.1.clone(), r.2.clone(), r.3.clone(), r.4.clone()))
            .collect()
    };
    let t = |from: Option<&str>, to: &str, actor: &str, surface: &str| {
        (
            from.map(str::to_string),
            to.to_string(),
            actor.to_string(),
            surface.to_string(),
        )
    };
    assert_eq!(
        of(&approved),
        vec![
            t(None, "pending", "writer", "agent"),
            t(Some("pending"), "approved", "admin", "web-admin"),
            t(Some("approved"), "executing", "system", "system"),
            t(Some("executing"), "completed", "system", "system"),
        ]
    );
    assert_eq!(
        of(&rejected)[1],
        t(Some("pending"), "rejected", "admin", "cli")
    );
    assert_eq!(
        of(&withdrawn)[1],
        t(Some("pending"), "withdrawn", "writer", "agent")
    );
    assert_eq!(of(&auto)[1], t(Some("pending"), "approved", "rule", "rule"));
}

#[tokio::test]
async fn the_log_filters_and_exports_as_json_lines_and_csv() {
    let app = spawn_app().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&app.upstream)
        .await;
    let k1 = app.new_agent("one");
    let k2 = app.new_agent("two");
    app.agent(&k1).get("/api/github/personal/a").await;
    app.agent(&k2).get("/api/github/personal/b").await;
    app.agent(&k2).submit_one("POST", "/c", json!({})).await;

    let (s, v) = app
        .admin(Method::GET, "/admin/audit?agent=two&kind=read", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["count"], 1);
    assert_eq!(v["records"][0]["path"], "/b");

    let r = app
        .http
        .get(format!("{}/admin/audit?format=jsonl", app.admin_url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "transition", "newest first");

    let r = app
        .http
        .get(format!(
            "{}/admin/audit?format=csv&agent=one",
            app.admin_url
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("agentgate-audit.csv")
    );
    let csv = r.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("id,at,kind,agent"));
    assert_eq!(rows.len(), 2);
    assert!(
        rows[1].contains(",read,one,github,personal,GET,/a,200,"),
        "{}",
        rows[1]
    );

    for bad in [
        "/admin/audit?format=xml",
        "/admin/audit?kind=everything",
        "/admin/audit?limit=-1",
    ] {
        assert_eq!(app.admin(Method::GET, bad, None).await.0, 400, "{bad}");
    }
    // Agents cannot read the log.
    assert_eq!(app.agent(&k1).get("/admin/audit").await.0, 404);
}

#[tokio::test]
async fn retention_prunes_old_records_only() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("a");
    app.agent(&key).get("/api/github/personal/old").await;
    clock.advance(time::Duration::days(89));
    app.agent(&key).get("/api/github/personal/new").await;
    clock.advance(time::Duration::days(2));
    assert_eq!(app.gw.prune_audit().unwrap(), 1);
    let left: Vec<String> = records(&app, "read")
        .into_iter()
        .map(|r| r.path.unwrap())
        .collect();
    assert_eq!(left, vec!["/new".to_string()]);
}

/// A flood of refused reads with huge paths is counted, not logged one by
/// one: one record per agent, status and minute, its path cut, the count
/// adding up; successful reads keep their own records.
#[tokio::test]
async fn refused_reads_are_counted_and_paths_cut() {
    let app = spawn_app().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("flood");
    add_mastodon(&app, "m");
    let long = "a".repeat(20_000);
    for i in 0..300 {
        // Blocked for privacy (403), with a path of 20,000 characters.
        let (s, _) = app
            .agent(&key)
            .get(&format!("/api/mastodon/m/api/v1/conversations/{long}{i}"))
            .await;
        assert_eq!(s, 403);
    }
    let (s, _) = app
        .agent(&key)
        .get(&format!("/api/github/personal/ok/{long}"))
        .await;
    assert_eq!(s, 200);
    let reads = records(&app, "read");
    let refused: Vec<_> = reads.iter().filter(|r| r.status == Some(403)).collect();
    assert!(refused.len() <= 2, "one per minute: {}", refused.len());
    assert_eq!(refused.iter().map(|r| r.count.unwrap()).sum::<u32>(), 300);
    for r in &reads {
        let chars = r.path.as_deref().unwrap().chars().count();
        assert!(chars <= 257, "{chars}");
    }
    let ok: Vec<_> = reads.iter().filter(|r| r.status == Some(200)).collect();
    assert_eq!(ok.len(), 1);
    assert!(ok[0].count.is_none());
}

/// Decided entries go after the retention period like the audit log; what
/// still waits or runs is never pruned.
#[tokio::test]
async fn decided_entries_are_pruned_after_the_retention() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let key = app.new_agent("a");
    let rejected = app.agent(&key).submit_one("POST", "/x", json!({})).await;
    app.gw.reject(&rejected, "test", None).unwrap();
    let pending = app.agent(&key).submit_one("POST", "/y", json!({})).await;
    clock.advance(time::Duration::days(89));
    let recent = app.agent(&key).submit_one("POST", "/z", json!({})).await;
    app.gw.reject(&recent, "test", None).unwrap();
    assert_eq!(app.gw.prune_decided().unwrap(), 0);
    clock.advance(time::Duration::days(2));
    assert_eq!(app.gw.prune_decided().unwrap(), 1);
    assert!(app.gw.entry(&rejected).is_err());
    assert_eq!(
        app.gw.entry(&pending).unwrap().status.to_string(),
        "pending"
    );
    assert_eq!(
        app.gw.entry(&recent).unwrap().status.to_string(),
        "rejected"
    );
    // Its story stays in the audit log.
    assert!(
        records(&app, "transition")
            .iter()
            .any(|r| r.entry_id.as_deref() == Some(rejected.as_str()))
    );
}
