//! Who may do what, from the window: an account's access list, its rules
//! (presets, add, change, move, remove, stale pages), the dry run, grants made
//! beside an approval (with an injected clock for their end), and the audit
//! page with its exports. Each is checked by what agents then get.

use std::sync::Arc;

use agentgate_core::clock::ManualClock;
use serde_json::json;

use crate::helpers::*;

const PAGE: &str = "/ui/accounts/github/personal";
const RULES: &str = "/ui/accounts/github/personal/rules";

/// The rules' version as the page shows it.
async fn version(ui: &Ui<'_>) -> String {
    let (_, html) = ui.get(PAGE).await;
    let at = html.find("name=\"version\" value=\"").expect("a version") + 22;
    html[at..at + 16].to_string()
}

async fn submit(app: &TestApp, key: &str, method: &str, path: &str) -> String {
    let (s, v) = app
        .agent(key)
        .submit(
            "personal",
            json!({"requests": [{"method": method, "path": path, "body": {"body": "hi"}}], "comment": "c"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn only_these_agents_keeps_every_other_agent_out() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let claude = app.new_agent("claude");
    let other = app.new_agent("other");
    let ui = Ui::new(&app).await;

    let (s, to, _) = ui
        .post(
            "/ui/accounts/github/personal/access",
            &[("mode", "allowlist"), ("agents", "claude")],
        )
        .await;
    assert_eq!(
        (s, to.as_str()),
        (303, "/ui/accounts/github/personal?done=access")
    );
    assert_eq!(
        app.agent(&claude).get("/api/github/personal/user").await.0,
        200
    );
    assert_eq!(
        app.agent(&other).get("/api/github/personal/user").await.0,
        403
    );
    let (_, html) = ui.get(PAGE).await;
    assert!(html.contains("Only claude may use this account."), "{html}");
    let (_, html) = ui.get("/ui/accounts").await;
    assert!(html.contains("Only claude may use this account."));
    assert!(html.contains("href=\"/ui/accounts/github/personal\""));

    // All but these; two agents listed by repeating the field.
    let (s, _, _) = ui
        .post(
            "/ui/accounts/github/personal/access",
            &[
                ("mode", "denylist"),
                ("agents", "claude"),
                ("agents", "other"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    assert_eq!(
        app.agent(&claude).get("/api/github/personal/user").await.0,
        403
    );
    assert!(
        ui.get(PAGE)
            .await
            .1
            .contains("Every agent but claude and other")
    );

    // An unknown agent or mode changes nothing.
    for form in [
        vec![("mode", "allowlist"), ("agents", "ghost")],
        vec![("mode", "everyone")],
        vec![],
    ] {
        let (s, _, html) = ui.post("/ui/accounts/github/personal/access", &form).await;
        assert!(s == 400 || s == 404, "{form:?}: {s}");
        assert!(html.contains("Nothing was changed"), "{html}");
    }
    assert_eq!(
        app.agent(&claude).get("/api/github/personal/user").await.0,
        403
    );
    // A foreign page cannot post it.
    let r = app
        .http
        .post(format!(
            "{}/ui/accounts/github/personal/access",
            app.admin_url
        ))
        .header("cookie", &ui.cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", ui.csrf.as_str()), ("mode", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn presets_and_rules_decide_what_agents_get() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let claude = app.new_agent("claude");
    let ui = Ui::new(&app).await;

    // "Posts need approval, comments don't", for claude only.
    let v = version(&ui).await;
    let (s, _, _) = ui
        .post(
            RULES,
            &[
                ("version", &v),
                ("op", "preset"),
                ("preset", "comments-free"),
                ("agents", "claude"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    let (_, html) = ui.get(PAGE).await;
    assert!(
        html.contains("claude may comment on issues in */* without asking"),
        "{html}"
    );
    assert_eq!(
        submit(&app, &claude, "POST", "/repos/acme/w/issues/3/comments").await,
        "approved"
    );
    assert_eq!(
        submit(&app, &claude, "POST", "/repos/acme/w/issues").await,
        "pending"
    );

    // Read only, on top: every write refused, reads still run.
    let v = version(&ui).await;
    let (s, _, _) = ui
        .post(
            RULES,
            &[("version", &v), ("op", "preset"), ("preset", "read-only")],
        )
        .await;
    assert_eq!(s, 303);
    let (s, body) = app
        .agent(&claude)
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/repos/acme/w/issues/3/comments", "body": {}}], "comment": "c"}),
        )
        .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(
        app.agent(&claude).get("/api/github/personal/user").await.0,
        200
    );
    // Applying it again adds nothing twice.
    let v = version(&ui).await;
    ui.post(
        RULES,
        &[("version", &v), ("op", "preset"), ("preset", "read-only")],
    )
    .await;
    let policy = app.gw.account_policy("github", "personal").unwrap();
    assert_eq!(policy.rules.len(), 8, "{:?}", policy.rules);

    // Remove the four read-only rules one by one from the top.
    for _ in 0..4 {
        let v = version(&ui).await;
        let (s, _, _) = ui
            .post(RULES, &[("version", &v), ("op", "remove"), ("index", "0")])
            .await;
        assert_eq!(s, 303);
    }
    assert_eq!(
        submit(&app, &claude, "POST", "/repos/acme/w/issues/4/comments").await,
        "approved"
    );
}

#[tokio::test]
async fn rules_are_added_changed_moved_and_removed_and_a_stale_page_changes_nothing() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let claude = app.new_agent("claude");
    let ui = Ui::new(&app).await;

    let v = version(&ui).await;
    let add = |v: String, method: &'static str, path: &'static str, effect: &'static str| {
        vec![
            ("version".to_string(), v),
            ("op".into(), "add".into()),
            ("method".into(), method.into()),
            ("path".into(), path.into()),
            ("effect".into(), effect.into()),
        ]
    };
    let post = |fields: Vec<(String, String)>| {
        let ui = &ui;
        async move {
            let f: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            ui.post(RULES, &f).await
        }
    };
    assert_eq!(post(add(v, "DELETE", "/**", "deny")).await.0, 303);
    let v = version(&ui).await;
    assert_eq!(
        post(add(v.clone(), "POST", "/repos/*/*/issues", "auto_approve"))
            .await
            .0,
        303
    );

    // The page drawn before that second add is stale now.
    let (s, _, html) = post(add(v, "PATCH", "/x", "deny")).await;
    assert_eq!(s, 409, "{html}");
    assert!(html.contains("changed meanwhile"));
    assert_eq!(
        app.gw
            .account_policy("github", "personal")
            .unwrap()
            .rules
            .len(),
        2
    );

    let (_, html) = ui.get(PAGE).await;
    assert!(html.contains("every agent may not delete anything on the account"));
    assert!(html.contains("every agent may open issues in */* without asking"));
    assert_eq!(
        submit(&app, &claude, "POST", "/repos/o/r/issues").await,
        "approved"
    );

    // Change rule 2 into "always ask me", move it up, then remove rule 2.
    let v = version(&ui).await;
    let (s, _, _) = ui
        .post(
            RULES,
            &[
                ("version", &v),
                ("op", "replace"),
                ("index", "1"),
                ("method", "POST"),
                ("path", "/repos/*/*/issues"),
                ("effect", "require_approval"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    assert_eq!(
        submit(&app, &claude, "POST", "/repos/o/r/issues").await,
        "pending"
    );
    let v = version(&ui).await;
    assert_eq!(
        ui.post(RULES, &[("version", &v), ("op", "up"), ("index", "1")])
            .await
            .0,
        303
    );
    let rules = app.gw.account_policy("github", "personal").unwrap().rules;
    assert_eq!(rules[0].path, "/repos/*/*/issues");
    let v = version(&ui).await;
    assert_eq!(
        ui.post(RULES, &[("version", &v), ("op", "remove"), ("index", "1")])
            .await
            .0,
        303
    );
    let rules = app.gw.account_policy("github", "personal").unwrap().rules;
    assert_eq!(rules.len(), 1);

    // Bad input: each refused with a reason, nothing changed.
    let v = version(&ui).await;
    for (fields, want) in [
        (
            vec![
                ("op", "add"),
                ("method", "POST"),
                ("path", "no-slash"),
                ("effect", "deny"),
            ],
            400,
        ),
        (
            vec![
                ("op", "add"),
                ("method", "POST"),
                ("path", "/a/***"),
                ("effect", "deny"),
            ],
            400,
        ),
        (
            vec![
                ("op", "add"),
                ("method", "BREW"),
                ("path", "/a"),
                ("effect", "deny"),
            ],
            400,
        ),
        (
            vec![
                ("op", "add"),
                ("method", "POST"),
                ("path", "/a"),
                ("effect", "maybe"),
            ],
            400,
        ),
        (
            vec![
                ("op", "add"),
                ("method", "POST"),
                ("path", "/a"),
                ("effect", "deny"),
                ("agents", "ghost"),
            ],
            404,
        ),
        (vec![("op", "remove"), ("index", "7")], 400),
        (vec![("op", "up"), ("index", "0")], 400),
        (vec![("op", "down"), ("index", "0")], 400),
        (vec![("op", "remove"), ("index", "-1")], 400),
        (vec![("op", "explode")], 400),
        (vec![("op", "preset"), ("preset", "nope")], 400),
    ] {
        let mut f = vec![("version", v.as_str())];
        f.extend(fields.iter().copied());
        let (s, _, html) = ui.post(RULES, &f).await;
        assert_eq!(s, want, "{fields:?}: {html}");
        assert!(html.contains("Nothing was changed"), "{fields:?}");
    }
    // Without a version: refused.
    let (s, _, _) = ui.post(RULES, &[("op", "remove"), ("index", "0")]).await;
    assert_eq!(s, 409);
    assert_eq!(
        app.gw
            .account_policy("github", "personal")
            .unwrap()
            .rules
            .len(),
        1
    );

    // The limit: 200 rules, the 201st refused.
    let specs: Vec<agentgate_core::RuleSpec> = (0..agentgate_core::MAX_RULES)
        .map(|i| agentgate_core::RuleSpec {
            method: Some("POST".into()),
            path: format!("/r{i}"),
            agents: vec![],
            effect: agentgate_core::policy::Effect::Deny,
        })
        .collect();
    app.gw
        .set_account_rules("github", "personal", specs)
        .unwrap();
    let v = version(&ui).await;
    let (s, _, html) = ui
        .post(
            RULES,
            &[
                ("version", &v),
                ("op", "add"),
                ("method", "POST"),
                ("path", "/x"),
                ("effect", "deny"),
            ],
        )
        .await;
    assert_eq!(s, 400);
    assert!(html.contains("at most 200 rules"), "{html}");
}

#[tokio::test]
async fn the_dry_run_box_gives_the_deciding_rule_and_the_reason() {
    let app = spawn_app().await;
    app.new_agent("claude");
    app.gw
        .set_account_rules(
            "github",
            "personal",
            vec![agentgate_core::RuleSpec {
                method: Some("DELETE".into()),
                path: "/repos/**".into(),
                agents: vec![],
                effect: agentgate_core::policy::Effect::Deny,
            }],
        )
        .unwrap();
    let ui = Ui::new(&app).await;
    let (s, html) = ui
        .get(&format!(
            "{PAGE}?agent=claude&method=DELETE&path=/repos/o/r/issues/comments/9"
        ))
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("id=\"dry-answer\""), "{html}");
    assert!(html.contains("Refused"));
    assert!(html.contains("Deciding rule: Rule 1: every agent may not delete"));
    // The same request spelled with a `;` parameter is decided the same.
    let (_, html) = ui
        .get(&format!(
            "{PAGE}?agent=claude&method=DELETE&path=/repos/o/r;x/issues/1"
        ))
        .await;
    assert!(html.contains("Refused"), "{html}");
    let (_, html) = ui
        .get(&format!(
            "{PAGE}?agent=claude&method=POST&path=/repos/o/r/issues"
        ))
        .await;
    assert!(html.contains("Waits for your approval"));
    assert!(html.contains("No rule decides it."));
    // A privacy block is named as such; bad input is said, not a 500.
    let (_, html) = ui
        .get(&format!("{PAGE}?agent=claude&method=GET&path=/user/keys"))
        .await;
    assert!(html.contains("controls the GitHub account"), "{html}");
    let (s, html) = ui
        .get(&format!("{PAGE}?agent=ghost&method=GET&path=/user"))
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("No answer: "), "{html}");
    let (_, html) = ui
        .get(&format!("{PAGE}?agent=claude&method=GET&path=//evil"))
        .await;
    assert!(html.contains("No answer: "), "{html}");
    let (s, _) = ui.get("/ui/accounts/github/nobody").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_grant_from_the_queue_approves_the_next_matching_write_until_it_ends_or_is_revoked() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(clock.clone()).await;
    ok_upstream(&app).await;
    let claude = app.new_agent("claude");
    let other = app.new_agent("other");
    let ui = Ui::new(&app).await;

    let id = app
        .agent(&claude)
        .submit_one("POST", "/repos/o/r/issues/1/comments", json!({"body": "a"}))
        .await;
    let (_, html) = ui.get("/ui/queue").await;
    assert!(html.contains("Approve and allow this for"), "{html}");
    let digest = digest_of(&app.gw, &id);
    let (s, to, _) = ui
        .post(
            &format!("/ui/queue/{id}/approve"),
            &[("digest", &digest), ("allow", "60"), ("tz_offset", "")],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/queue?done=granted"));
    app.wait_done(&id).await;
    let grants = app.gw.grants().unwrap();
    assert_eq!(grants.len(), 1);
    let g = &grants[0];
    assert_eq!(
        (
            g.agent.as_str(),
            g.method.as_deref(),
            g.path.as_deref(),
            g.entry_id.as_deref()
        ),
        (
            "claude",
            Some("POST"),
            Some("/repos/o/r/issues/1/comments"),
            Some(id.as_str())
        )
    );
    assert!(
        (3590..=3600).contains(&g.remaining_secs),
        "{}",
        g.remaining_secs
    );
    let (_, html) = ui.get("/ui/grants").await;
    assert!(html.contains(&format!("id=\"grant-{}\"", g.id)), "{html}");
    assert!(
        html.contains(
            "claude may create /repos/o/r/issues/1/comments on github/personal without asking"
        ),
        "{html}"
    );

    // The same write: approved. Another path, method or agent: waits.
    let same = "/repos/o/r/issues/1/comments";
    assert_eq!(submit(&app, &claude, "POST", same).await, "approved");
    assert_eq!(
        submit(&app, &claude, "POST", "/repos/o/r/issues/2/comments").await,
        "pending"
    );
    assert_eq!(submit(&app, &claude, "PATCH", same).await, "pending");
    assert_eq!(submit(&app, &other, "POST", same).await, "pending");
    // A spelling that routes elsewhere too is not covered.
    assert_eq!(
        submit(&app, &claude, "POST", "/repos/o/r/issues/1/comments;x").await,
        "pending"
    );

    // It ends with its hour.
    clock.advance(time::Duration::minutes(61));
    assert_eq!(submit(&app, &claude, "POST", same).await, "pending");
    assert!(app.gw.grants().unwrap().is_empty());

    // "today" and revoking: the very next write waits again.
    let id = app
        .agent(&claude)
        .submit_one("POST", same, json!({"body": "b"}))
        .await;
    let digest = digest_of(&app.gw, &id);
    let (s, to, _) = ui
        .post(
            &format!("/ui/queue/{id}/approve"),
            &[
                ("digest", &digest),
                ("allow", "today"),
                ("tz_offset", "-300"),
            ],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/queue?done=granted"));
    let g = app.gw.grants().unwrap().remove(0);
    let want =
        agentgate_core::minutes_left_today(agentgate_core::clock::Clock::now(&*clock), -300) * 60;
    assert!(
        (want - 60..=want).contains(&g.remaining_secs),
        "{} vs {want}",
        g.remaining_secs
    );
    assert_eq!(submit(&app, &claude, "POST", same).await, "approved");
    let (s, to, _) = ui.post(&format!("/ui/grants/{}/revoke", g.id), &[]).await;
    assert_eq!((s, to.as_str()), (303, "/ui/grants?done=grant-revoked"));
    assert_eq!(submit(&app, &claude, "POST", same).await, "pending");
    // Revoking again is no error: it is over either way.
    assert_eq!(
        ui.post(&format!("/ui/grants/{}/revoke", g.id), &[]).await.0,
        303
    );

    // A deletion is never granted ahead: approved alone.
    let id = app
        .agent(&claude)
        .submit_one("DELETE", "/repos/o/r/issues/comments/9", json!(null))
        .await;
    let digest = digest_of(&app.gw, &id);
    let (s, to, _) = ui
        .post(
            &format!("/ui/queue/{id}/approve"),
            &[("digest", &digest), ("confirm", "yes"), ("allow", "60")],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/queue?done=grant-refused"));
    assert!(app.gw.grants().unwrap().is_empty());
    assert_eq!(app.wait_done(&id).await.status.as_str(), "completed");
    // A stale digest approves nothing and grants nothing.
    let id = app.agent(&claude).submit_one("POST", same, json!({})).await;
    let (s, _, _) = ui
        .post(
            &format!("/ui/queue/{id}/approve"),
            &[("digest", "00"), ("allow", "60")],
        )
        .await;
    assert_eq!(s, 409);
    assert!(app.gw.grants().unwrap().is_empty());
}

#[tokio::test]
async fn grants_are_given_by_hand_and_bad_ones_refused() {
    let app = spawn_app().await;
    app.new_agent("claude");
    let ui = Ui::new(&app).await;
    let (s, to, _) = ui
        .post(
            "/ui/grants",
            &[
                ("agent", "claude"),
                ("account", "github/personal"),
                ("minutes", "15"),
                ("method", "POST"),
                ("path", "/repos/o/*/issues"),
            ],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/ui/grants?done=grant-added"));
    for (fields, want) in [
        (
            vec![
                ("agent", "ghost"),
                ("account", "github/personal"),
                ("minutes", "15"),
            ],
            404,
        ),
        (
            vec![
                ("agent", "claude"),
                ("account", "github/nobody"),
                ("minutes", "15"),
            ],
            404,
        ),
        (
            vec![
                ("agent", "claude"),
                ("account", "github/personal"),
                ("minutes", "0"),
            ],
            400,
        ),
        (
            vec![
                ("agent", "claude"),
                ("account", "github/personal"),
                ("minutes", "1441"),
            ],
            400,
        ),
        (
            vec![
                ("agent", "claude"),
                ("account", "github/personal"),
                ("minutes", "ever"),
            ],
            400,
        ),
        (
            vec![
                ("agent", "claude"),
                ("account", "github/personal"),
                ("minutes", "15"),
                ("method", "GET"),
            ],
            400,
        ),
        (
            vec![
                ("agent", "claude"),
                ("account", "github/personal"),
                ("minutes", "15"),
                ("path", "x"),
            ],
            400,
        ),
        (
            vec![
                ("agent", "claude"),
                ("account", "nobody"),
                ("minutes", "15"),
            ],
            400,
        ),
    ] {
        let (s, _, html) = ui.post("/ui/grants", &fields).await;
        assert_eq!(s, want, "{fields:?}");
        assert!(html.contains("No grant was made"), "{fields:?}");
    }
    assert_eq!(app.gw.grants().unwrap().len(), 1);
}

#[tokio::test]
async fn the_audit_page_filters_and_exports_and_agents_show_their_last_hour() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let claude = app.new_agent("claude");
    let other = app.new_agent("other");
    for _ in 0..3 {
        assert_eq!(
            app.agent(&claude).get("/api/github/personal/user").await.0,
            200
        );
    }
    assert_eq!(
        app.agent(&other)
            .get("/api/github/personal/notifications")
            .await
            .0,
        200
    );
    app.agent(&claude)
        .submit_one("POST", "/repos/o/r/issues", json!({}))
        .await;
    let ui = Ui::new(&app).await;
    // Reads reach the log in batches.
    let mut html = String::new();
    for _ in 0..100 {
        html = ui.get("/ui/audit?agent=claude&kind=read").await.1;
        if html.matches("GET /user → 200").count() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(html.matches("GET /user → 200").count(), 3, "{html}");
    assert!(!html.contains("GET /notifications"));
    let (_, html) = ui.get("/ui/audit?kind=transition").await;
    assert!(html.contains("new → pending"), "{html}");
    assert!(!html.contains("GET /user"));
    let (_, html) = ui.get("/ui/audit?account=github/personal&within=1h").await;
    assert!(html.contains("GET /notifications") && html.contains("GET /user"));
    let (s, html) = ui.get("/ui/audit?until=yesterday").await;
    assert_eq!(s, 400);
    assert!(html.contains("is not a time"));
    assert_eq!(ui.get("/ui/audit?within=forever").await.0, 400);
    let (_, html) = ui.get("/ui/audit?until=2000-01-01").await;
    assert!(html.contains("Nothing matches"));

    let export = |format: &'static str| {
        let ui = &ui;
        async move {
            let r =
                ui.c.get(format!(
                    "{}/ui/audit/export?format={format}&agent=claude&kind=read",
                    ui.app.admin_url
                ))
                .header("cookie", &ui.cookie)
                .send()
                .await
                .unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            let cd = r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_string();
            (ct, cd, r.text().await.unwrap())
        }
    };
    let (ct, cd, body) = export("jsonl").await;
    assert_eq!(ct, "application/x-ndjson");
    assert!(cd.contains("agentgate-audit.jsonl"));
    assert_eq!(body.lines().count(), 3);
    for line in body.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (v["agent"].as_str(), v["path"].as_str()),
            (Some("claude"), Some("/user"))
        );
    }
    let (ct, _, body) = export("csv").await;
    assert!(ct.starts_with("text/csv"));
    assert_eq!(body.lines().count(), 4, "{body}");
    assert!(body.starts_with("id,at,kind"));
    let (s, _) = ui.get("/ui/audit/export?format=xml").await;
    assert_eq!(s, 400);
    // Signed out: nothing.
    let r = app
        .http
        .get(format!("{}/ui/audit/export", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200);

    let (_, html) = ui.get("/ui/agents").await;
    assert!(html.contains("Last hour: 3 reads"), "{html}");
    assert!(html.contains("github/personal /user</code> ×3"));
    assert!(html.contains("Last hour: 1 read</strong>"));
}
