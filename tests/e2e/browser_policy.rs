//! Who may do what, in a real Chromium: an account's access list, a preset,
//! the dry run, a grant made from the queue page (its end on an injected
//! clock, its revocation), and the audit page with its filters and exports,
//! each checked by what an agent then gets. The gateway runs in this process
//! so that its clock can be moved; screenshots at desktop and phone sizes go
//! to `target/screenshots/`.

use std::sync::Arc;

use agentgate_core::clock::ManualClock;
use agentgate_core::config::Config;
use agentgate_core::credentials::MemoryStore;
use agentgate_core::secret::Secret;
use agentgate_core::{Gateway, NewAccount, server};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::browser::{Driver, PASSWORD, Session, browser_available};
use crate::harness::*;

/// A gateway in this process on a clock the test moves, with a GitHub
/// account whose API is `mock`, agents claude and other, and a password.
async fn gateway(
    data: &std::path::Path,
    mock: &MockServer,
    clock: Arc<ManualClock>,
) -> (Gateway, server::RunningServer, String, String) {
    let mut config = Config::with_data_dir(data);
    config.agent_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    let gw = Gateway::open(config, Box::new(Arc::new(MemoryStore::default())), clock).unwrap();
    gw.set_admin_password(&Secret::new(PASSWORD)).unwrap();
    gw.add_account(NewAccount {
        service: "github".into(),
        name: "personal".into(),
        base_url: Some(mock.uri()),
        credentials: [("token".to_string(), Secret::new("ghp_policy"))]
            .into_iter()
            .collect(),
    })
    .unwrap();
    let claude = gw.create_agent("claude").unwrap().1.expose().to_string();
    let other = gw.create_agent("other").unwrap().1.expose().to_string();
    let running = server::start(gw.clone()).await.unwrap();
    (gw, running, claude, other)
}

impl Session {
    async fn read(&self, key: &str) -> u16 {
        get_json(
            &format!("{}/api/github/personal/user", self.agent),
            Some(key),
        )
        .await
        .0
    }

    async fn write(&self, key: &str, method: &str, path: &str) -> (u16, Value) {
        post_json(
            &format!("{}/api/queue/github/personal/submit", self.agent),
            key,
            &json!({"requests": [{"method": method, "path": path, "body": {"body": "hi"}}], "comment": "c"}),
        )
        .await
    }

    /// Waits until the main text says `what`.
    async fn says(&self, what: &str) {
        let start = std::time::Instant::now();
        loop {
            // Asked afresh each time: the page may be reloading after a form.
            let text = self
                .b
                .execute(
                    "return document.querySelector('main')?.innerText || '';",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if text.contains(what) {
                return;
            }
            if start.elapsed() > crate::browser::WAIT {
                self.shot("failure").await;
                panic!("{} does not say {what:?}:\n{text}", self.path().await);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules_grants_and_the_audit_log_in_chromium() {
    if !browser_available() {
        return;
    }
    let mock = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&mock)
        .await;
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let (gw, running, claude, other) = gateway(data.path(), &mock, clock.clone()).await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let s = Session {
        b: driver.browser(profile.path()).await,
        admin: format!("http://{}", running.admin_addr),
        agent: format!("http://{}", running.agent_addr),
        server: None,
        prefix: "policy",
    };
    s.goto("/ui/login").await;
    s.fill("#password", PASSWORD).await;
    s.click("main button[type=submit]").await;
    s.wait_path("/ui/queue").await;

    // Access: only claude. The other agent is refused from the next request.
    s.goto("/ui/accounts").await;
    s.click("a[href='/ui/accounts/github/personal']").await;
    s.wait_path("/ui/accounts/github/personal").await;
    s.says("Every agent may use this account.").await;
    s.shot("account-policy-empty").await;
    s.click("input[name=mode][value=allowlist]").await;
    s.click("#access input[name=agents][value=claude]").await;
    s.click("#access button[type=submit]").await;
    s.says("Only claude may use this account.").await;
    assert_eq!(s.read(&other).await, 403);
    assert_eq!(s.read(&claude).await, 200);

    // A preset: no deletions. A deletion is refused at once.
    s.click("form:has(input[name=preset][value=no-deletions]) button[type=submit]")
        .await;
    s.says("every agent may not delete anything on the account")
        .await;
    let (status, v) = s
        .write(&claude, "DELETE", "/repos/o/r/issues/comments/1")
        .await;
    assert_eq!(status, 403, "{v}");
    // Posts need approval, comments don't: a comment runs without asking.
    s.click("form:has(input[name=preset][value=comments-free]) button[type=submit]")
        .await;
    s.says("every agent may comment on issues in */* without asking")
        .await;
    let (status, v) = s
        .write(&claude, "POST", "/repos/o/r/issues/9/comments")
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (201, Some("approved")),
        "{v}"
    );

    // A rule added by hand, then the dry run names it.
    s.fill("#add-rule input[name=path]", "/repos/o/secret/**")
        .await;
    s.find("#add-rule select[name=method] option[value=any]")
        .await
        .click()
        .await
        .unwrap();
    s.find("#add-rule select[name=effect] option[value=deny]")
        .await
        .click()
        .await
        .unwrap();
    s.find("#add-rule select[name=at] option[value=top]")
        .await
        .click()
        .await
        .unwrap();
    s.click("#add-rule button[type=submit]").await;
    s.says("every agent may not use anything in o/secret").await;
    s.fill("#dry-run input[name=path]", "/repos/o/secret/issues")
        .await;
    s.find("#dry-run select[name=method] option[value=POST]")
        .await
        .click()
        .await
        .unwrap();
    s.click("#dry-run button[type=submit]").await;
    let answer = s.find("#dry-answer").await.text().await.unwrap();
    assert!(answer.contains("Refused"), "{answer}");
    assert!(
        answer.contains("Rule 1: every agent may not use anything in o/secret"),
        "{answer}"
    );
    s.shot("account-policy").await;

    // A grant from the queue page: approve and allow this for 1 h.
    let (_, v) = s.write(&claude, "POST", "/repos/o/r/labels").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "pending");
    s.goto("/ui/queue").await;
    s.find(&format!("#entry-{id} .allow")).await;
    s.shot("queue-allow").await;
    s.click(&format!("#entry-{id} button[name=allow][value='60']"))
        .await;
    s.wait_path("/ui/queue?done=granted").await;
    s.says("Writes like it run without asking").await;
    let (_, v) = s.write(&claude, "POST", "/repos/o/r/labels").await;
    assert_eq!(v["status"], "approved", "{v}");
    let (_, v) = s.write(&claude, "POST", "/repos/o/r/milestones").await;
    assert_eq!(v["status"], "pending", "another path waits: {v}");
    s.goto("/ui/grants").await;
    s.says("claude may create /repos/o/r/labels on github/personal without asking")
        .await;
    s.shot("grants").await;

    // It ends with its hour (the clock moved, not waited for).
    clock.advance(time::Duration::minutes(61));
    let (_, v) = s.write(&claude, "POST", "/repos/o/r/labels").await;
    assert_eq!(v["status"], "pending", "{v}");
    s.goto("/ui/grants").await;
    s.find("#grants-empty").await;

    // Another grant, revoked at once from the Grants page.
    let id = v["id"].as_str().unwrap().to_string();
    s.goto("/ui/queue").await;
    s.click(&format!("#entry-{id} button[name=allow][value='15']"))
        .await;
    s.wait_path("/ui/queue?done=granted").await;
    let (_, v) = s.write(&claude, "POST", "/repos/o/r/labels").await;
    assert_eq!(v["status"], "approved", "{v}");
    s.goto("/ui/grants").await;
    s.click(".grant form button[type=submit]").await;
    s.wait_path("/ui/grants?done=grant-revoked").await;
    s.find("#grants-empty").await;
    let (_, v) = s.write(&claude, "POST", "/repos/o/r/labels").await;
    assert_eq!(v["status"], "pending", "{v}");

    // The audit log: filtered, and exported with the same filter.
    for _ in 0..2 {
        assert_eq!(s.read(&claude).await, 200);
    }
    s.goto("/ui/audit").await;
    s.find("#f-agent option[value=claude]")
        .await
        .click()
        .await
        .unwrap();
    s.find("#f-kind option[value=read]")
        .await
        .click()
        .await
        .unwrap();
    s.click("#audit-filter button[type=submit]").await;
    s.wait_path("/ui/audit?agent=claude").await;
    let rows = s
        .js("document.querySelectorAll('#audit-table tbody tr').length")
        .await;
    assert_eq!(rows, 3, "claude's three reads");
    let table = s.find("#audit-table").await.text().await.unwrap();
    assert!(!table.contains("other"), "only claude's: {table}");
    s.shot("audit").await;
    let csv = s
        .b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('a[href*=\"format=csv\"]').href).then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("id,at,kind"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let jsonl = s
        .b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('a[href*=\"format=jsonl\"]').href).then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(jsonl.as_str().unwrap().lines().count(), 3);

    // Each agent's last hour at a glance: the first read was 61 minutes
    // ago on the gateway's clock.
    s.goto("/ui/agents").await;
    s.says("Last hour: 2 reads").await;
    s.shot("agents-last-hour").await;

    // The same pages on a phone: nothing scrolls sideways.
    s.b.set_window_size(390, 844).await.unwrap();
    for (page, name) in [
        ("/ui/accounts/github/personal", "account-policy"),
        ("/ui/grants", "grants"),
        ("/ui/audit?within=all", "audit"),
        ("/ui/agents", "agents"),
    ] {
        s.goto(page).await;
        s.find("h1").await;
        s.fits_width().await;
        s.shot(&format!("phone-{name}")).await;
    }
    s.b.clone().close().await.unwrap();
    drop(gw);
}
