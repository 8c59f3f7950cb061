//! Reliability under races: a thousand decisions on fifty entries at once
//! (approvals from several surfaces, rejections, withdrawals and expiry all
//! racing) leave each entry decided once and each approved write run once.
//! Figures are in RELIABILITY.md.

use std::sync::Arc;

use agentgate_core::audit::AuditFilter;
use agentgate_core::clock::ManualClock;
use agentgate_core::queue::Status;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{digest_of, spawn_app_with_clock};

const ENTRIES: usize = 50;
const RACERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_racing_decisions_decide_each_entry_once_and_run_it_once() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    app.no_rate_limits();
    Mock::given(any())
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("racer");
    let agent = app.gw.agent("racer").unwrap();
    let mut ids = Vec::new();
    for i in 0..ENTRIES {
        // The first half may expire by the time the racers start; the second
        // half is fresh, so that a sweep that happens to run first cannot
        // take every entry and leave no approval to race.
        if i == ENTRIES / 2 {
            clock.advance(time::Duration::hours(24 * 8));
        }
        ids.push(
            app.agent(&key)
                .submit_one("POST", &format!("/entry/{i}"), json!({}))
                .await,
        );
    }
    let mut tasks = Vec::new();
    for id in &ids {
        let digest = digest_of(&app.gw, id);
        for racer in 0..RACERS {
            let (gw, id, digest, agent) =
                (app.gw.clone(), id.clone(), digest.clone(), agent.clone());
            tasks.push(tokio::spawn(async move {
                match racer % 5 {
                    0 => gw.approve_and_start(&id, &digest, "admin-api").is_ok(),
                    1 => gw.approve_and_run(&id, &digest, "cli").await.is_ok(),
                    2 => gw.reject(&id, "web-admin", None).is_ok(),
                    3 => gw.withdraw(&agent, "github", "personal", &id, None).is_ok(),
                    _ => gw.expire_pending().is_ok_and(|e| e.contains(&id)),
                }
            }));
        }
    }
    assert_eq!(tasks.len(), ENTRIES * RACERS);
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    // Approved batches run in the background: wait (bounded) until none is
    // left approved or executing.
    for id in &ids {
        app.wait_done(id).await;
    }
    // Each entry left pending exactly once.
    let transitions = app
        .gw
        .audit(&AuditFilter {
            kind: Some("transition".into()),
            limit: Some(100_000),
            ..Default::default()
        })
        .unwrap();
    let sent = app.upstream.received_requests().await.unwrap();
    let mut approved = 0;
    for (i, id) in ids.iter().enumerate() {
        let decisions = transitions
            .iter()
            .filter(|r| {
                r.entry_id.as_deref() == Some(id) && r.from_status.as_deref() == Some("pending")
            })
            .count();
        assert_eq!(decisions, 1, "entry {id} left pending {decisions} times");
        let e = app.gw.entry(id).unwrap();
        let runs = sent
            .iter()
            .filter(|r| r.url.path() == format!("/entry/{i}"))
            .count();
        if matches!(e.status, Status::Completed) {
            approved += 1;
            assert_eq!(runs, 1, "entry {id} ran {runs} times");
        } else {
            assert!(
                matches!(
                    e.status,
                    Status::Rejected | Status::Withdrawn | Status::Expired
                ),
                "{id}: {}",
                e.status
            );
            assert_eq!(runs, 0, "entry {id} ({}) ran", e.status);
        }
    }
    // No more decisions succeeded than there are entries (an expiry sweep
    // counts only for the racer's own entry, so fewer may be reported).
    assert!(won <= ENTRIES, "{won}");
    assert!(
        approved > 0,
        "won {won}; {:?}",
        ids.iter()
            .map(|id| app.gw.entry(id).unwrap().status)
            .collect::<Vec<_>>()
    );
}
