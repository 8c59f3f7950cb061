//! What an attack review of grants, presets and rule edits found, each kept
//! from coming back: a grant never runs a write that needs a second yes, it
//! covers the path exactly as approved (no case or look-alike), it goes to
//! the agent that submitted, it ends with its account; presets never loosen
//! the admin's own rules; rules match every form the service routes; a
//! revoked agent leaves rules and lists without widening any.

use serde_json::{Value, json};

use agentgate_core::RuleSpec;
use agentgate_core::policy::Effect;

use crate::helpers::*;

async fn write(app: &TestApp, key: &str, method: &str, path: &str, body: Value) -> (u16, String) {
    let (s, v) = app
        .agent(key)
        .submit(
            "personal",
            json!({"requests": [{"method": method, "path": path, "body": body}], "comment": "c"}),
        )
        .await;
    (s, v["status"].as_str().unwrap_or_default().to_string())
}

/// Approves an entry as shown and grants its like for an hour, as the
/// queue page's "Approve and allow this for 1 h" does.
async fn approve_and_allow(app: &TestApp, id: &str) -> agentgate_core::Result<usize> {
    let digest = digest_of(&app.gw, id);
    let entry = app.gw.approve_and_start(id, &digest, "web-admin").unwrap();
    app.gw.grant_like(&entry, 60).map(|g| g.len())
}

fn rule(method: &str, path: &str, agents: &[&str], effect: Effect) -> RuleSpec {
    RuleSpec {
        method: Some(method.into()),
        path: path.into(),
        agents: agents.iter().map(|a| a.to_string()).collect(),
        effect,
    }
}

#[tokio::test]
async fn a_grant_never_runs_a_write_that_needs_a_second_yes() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let key = app.new_agent("claude");
    let id = app
        .agent(&key)
        .submit_one("PATCH", "/repos/o/r", json!({"description": "new words"}))
        .await;
    assert_eq!(approve_and_allow(&app, &id).await.unwrap(), 1);
    // The harmless edit again: runs. Making it public, or archiving it: waits.
    assert_eq!(
        write(
            &app,
            &key,
            "PATCH",
            "/repos/o/r",
            json!({"description": "again"})
        )
        .await,
        (201, "approved".into())
    );
    for body in [
        json!({"private": false}),
        json!({"visibility": "public"}),
        json!({"archived": true}),
    ] {
        assert_eq!(
            write(&app, &key, "PATCH", "/repos/o/r", body.clone()).await,
            (201, "pending".into()),
            "{body}"
        );
    }
    // A force push under a grant for an ordinary ref update: waits.
    let id = app
        .agent(&key)
        .submit_one(
            "PATCH",
            "/repos/o/r/git/refs/heads/main",
            json!({"sha": "abc"}),
        )
        .await;
    approve_and_allow(&app, &id).await.unwrap();
    assert_eq!(
        write(
            &app,
            &key,
            "PATCH",
            "/repos/o/r/git/refs/heads/main",
            json!({"sha": "000", "force": true})
        )
        .await,
        (201, "pending".into())
    );
}

#[tokio::test]
async fn a_grant_covers_the_path_exactly_as_approved() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let key = app.new_agent("claude");
    let path = "/repos/o/r/issues/1/comments";
    let id = app
        .agent(&key)
        .submit_one("POST", path, json!({"body": "a"}))
        .await;
    approve_and_allow(&app, &id).await.unwrap();
    assert_eq!(
        write(&app, &key, "POST", path, json!({})).await.1,
        "approved"
    );
    for spelling in [
        "/repos/O/R/issues/1/comments",
        "/REPOS/o/r/ISSUES/1/COMMENTS",
        "/repos/o/r/issues/%EF%BC%91/comments",
        "/repos/%EF%BD%8F/r/issues/1/comments",
        "/repos/o/r/issues/1/%EF%BD%83omments",
        "/repos/o/r/issues/1/comments;x",
        "/repos/o/r/issues/1/comments.json",
        "/repos/o/r/issues/1/comments/",
        "/api/v3/repos/o/r/issues/1/comments",
    ] {
        let (s, status) = write(&app, &key, "POST", spelling, json!({})).await;
        assert!(s != 201 || status == "pending", "{spelling}: {s} {status}");
    }
    // A path with hidden characters is approved alone, never granted; had
    // one been granted, it would be shown with escapes.
    let id = app
        .agent(&key)
        .submit_one("POST", "/repos/o/r/issues/1/%E2%80%AEstnemmoc", json!({}))
        .await;
    let err = approve_and_allow(&app, &id).await.unwrap_err();
    assert!(err.to_string().contains("invisible"), "{err}");
    let grants = app.gw.grants().unwrap();
    assert_eq!(grants.len(), 1);
    assert!(
        grants.iter().all(|g| !g.words.contains('\u{202e}')),
        "{grants:?}"
    );
    let html = app.ui_page("/ui/grants").await;
    assert!(!html.contains('\u{202e}'), "the grants page shows it raw");
    let html = app.ui_page("/ui/accounts/github/personal").await;
    assert!(!html.contains('\u{202e}'));
}

#[tokio::test]
async fn a_grant_goes_to_the_submitter_and_ends_with_its_account() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let first = app.new_agent("t2");
    let third = app.new_agent("t3");
    let id = app
        .agent(&first)
        .submit_one("POST", "/w/1", json!({}))
        .await;
    // Renamed between submission and approval, another agent takes the name.
    app.gw.rename_agent("t2", "t2old").unwrap();
    app.gw.rename_agent("t3", "t2").unwrap();
    approve_and_allow(&app, &id).await.unwrap();
    assert_eq!(app.gw.grants().unwrap()[0].agent, "t2old");
    assert_eq!(
        write(&app, &first, "POST", "/w/1", json!({})).await.1,
        "approved"
    );
    assert_eq!(
        write(&app, &third, "POST", "/w/1", json!({})).await.1,
        "pending"
    );
    // The account removed: its grants end (one added later is another).
    app.gw.remove_account("github", "personal").unwrap();
    assert!(app.gw.grants().unwrap().is_empty());
}

#[tokio::test]
async fn grants_from_a_batch_are_all_made_or_none() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let key = app.new_agent("claude");
    for i in 0..agentgate_core::MAX_LIVE_GRANTS - 1 {
        app.gw
            .grant(&agentgate_core::GrantSpec {
                agent: "claude".into(),
                service: "github".into(),
                account: "personal".into(),
                minutes: 60,
                method: Some("POST".into()),
                path: Some(format!("/g{i}")),
            })
            .unwrap();
    }
    let (s, v) = app
        .agent(&key)
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/a", "body": {}}, {"method": "POST", "path": "/b", "body": {}}], "comment": "c"}),
        )
        .await;
    assert_eq!(s, 201);
    let id = v["id"].as_str().unwrap();
    let err = approve_and_allow(&app, id).await.unwrap_err();
    assert!(err.to_string().contains("at most 100 grants"), "{err}");
    assert_eq!(
        app.gw.grants().unwrap().len(),
        agentgate_core::MAX_LIVE_GRANTS - 1
    );
}

#[tokio::test]
async fn presets_never_loosen_the_admins_own_rules() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let key = app.new_agent("claude");
    app.gw
        .set_account_rules(
            "github",
            "personal",
            vec![
                rule("POST", "/repos/secret/**", &[], Effect::RequireApproval),
                rule("POST", "/repos/private/**", &[], Effect::Deny),
            ],
        )
        .unwrap();
    app.gw
        .edit_rules(
            "github",
            "personal",
            agentgate_core::RuleEdit::Preset {
                key: "comments-free".into(),
                agents: vec![],
            },
            None,
        )
        .unwrap();
    assert_eq!(
        write(
            &app,
            &key,
            "POST",
            "/repos/secret/x/issues/1/comments",
            json!({})
        )
        .await
        .1,
        "pending"
    );
    assert_eq!(
        write(
            &app,
            &key,
            "POST",
            "/repos/private/x/issues/1/comments",
            json!({})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        write(
            &app,
            &key,
            "POST",
            "/repos/open/x/issues/1/comments",
            json!({})
        )
        .await
        .1,
        "approved"
    );
    // Its always-ask rules still go first.
    let rules = app.gw.account_policy("github", "personal").unwrap().rules;
    assert_eq!(rules[0].effect, Effect::RequireApproval);
    assert_eq!(rules.last().unwrap().effect, Effect::AutoApprove);
}

#[tokio::test]
async fn rules_hold_on_every_form_the_service_routes_and_no_deletions_means_none() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    let key = app.new_agent("claude");
    app.gw
        .set_account_rules(
            "github",
            "personal",
            vec![rule("POST", "/repos/*/*/issues", &[], Effect::Deny)],
        )
        .unwrap();
    // GitHub Enterprise answers under /api/v3 too.
    assert_eq!(
        write(&app, &key, "POST", "/api/v3/repos/o/r/issues", json!({}))
            .await
            .0,
        403
    );
    let d = app
        .gw
        .dry_run(
            "github",
            "personal",
            "claude",
            "POST",
            "/api/v3/repos/o/r/issues",
        )
        .unwrap();
    assert_eq!(
        d.outcome,
        agentgate_core::policy::Outcome::Denied,
        "{}",
        d.reason
    );
    // No deletions, even for a trusted agent: GraphQL (which can delete) too.
    app.gw.set_agent_trusted("claude", true).unwrap();
    app.gw
        .edit_rules(
            "github",
            "personal",
            agentgate_core::RuleEdit::Preset {
                key: "no-deletions".into(),
                agents: vec![],
            },
            None,
        )
        .unwrap();
    assert_eq!(
        write(
            &app,
            &key,
            "POST",
            "/graphql",
            json!({"query": "mutation{deleteIssue(input:{issueId:\"1\"}){clientMutationId}}"})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        write(&app, &key, "DELETE", "/api/v3/repos/o/r", json!(null))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn a_revoked_agent_leaves_rules_and_lists_without_widening_any() {
    let app = spawn_app().await;
    ok_upstream(&app).await;
    app.new_agent("temp");
    app.new_agent("keep");
    let other = app.new_agent("other");
    app.gw
        .set_account_rules(
            "github",
            "personal",
            vec![
                rule("POST", "/**", &["temp"], Effect::AutoApprove),
                rule("PATCH", "/**", &["temp", "keep"], Effect::AutoApprove),
            ],
        )
        .unwrap();
    app.gw
        .set_account_access(
            "github",
            "personal",
            agentgate_core::policy::AccessMode::Allowlist,
            &["temp".into(), "other".into()],
        )
        .unwrap();
    app.gw.revoke_agent("temp").unwrap();
    let p = app.gw.account_policy("github", "personal").unwrap();
    assert_eq!(p.rules.len(), 1, "{:?}", p.rules);
    assert_eq!(p.rules[0].agents, vec!["keep".to_string()]);
    assert_eq!(p.access_agents, vec!["other".to_string()]);
    // Put back as read, the rules still name nobody extra.
    let again = app
        .gw
        .set_account_rules("github", "personal", p.rules.clone())
        .unwrap();
    assert_eq!(again.rules, p.rules);
    assert_eq!(
        write(&app, &other, "POST", "/x", json!({})).await.1,
        "pending"
    );
}

#[tokio::test]
async fn hostile_rule_and_audit_input_is_refused_not_a_crash() {
    let app = spawn_app().await;
    app.new_agent("claude");
    app.new_agent("other");
    let ui = Ui::new(&app).await;
    let v = {
        let (_, html) = ui.get("/ui/accounts/github/personal").await;
        let at = html.find("name=\"version\" value=\"").unwrap() + 22;
        html[at..at + 16].to_string()
    };
    let huge = usize::MAX.to_string();
    for op in ["down", "up", "remove", "replace"] {
        let (s, _, html) = ui
            .post(
                "/ui/accounts/github/personal/rules",
                &[
                    ("version", &v),
                    ("op", op),
                    ("index", &huge),
                    ("method", "POST"),
                    ("path", "/x"),
                    ("effect", "deny"),
                ],
            )
            .await;
        assert_eq!(s, 400, "{op}: {html}");
    }
    let (s, _, _) = ui
        .post(
            "/ui/accounts/github/personal/rules",
            &[
                ("version", &v),
                ("op", "add"),
                ("method", "POST"),
                ("path", "/a\u{1b}[31m"),
                ("effect", "deny"),
            ],
        )
        .await;
    assert_eq!(s, 400);
    // The same agents named again and again are one.
    let mut fields = vec![
        ("version", v.as_str()),
        ("op", "add"),
        ("method", "POST"),
        ("path", "/x"),
        ("effect", "deny"),
    ];
    for _ in 0..50 {
        fields.push(("agents", "claude"));
        fields.push(("agents", "other"));
    }
    assert_eq!(
        ui.post("/ui/accounts/github/personal/rules", &fields)
            .await
            .0,
        303
    );
    let rules = app.gw.account_policy("github", "personal").unwrap().rules;
    assert_eq!(rules[0].agents.len(), 2);
    for until in [
        "9999-12-31T23:59:59-23:59",
        "0001-01-01",
        "1969-12-31T23:59:59Z",
    ] {
        let (s, html) = ui.get(&format!("/ui/audit?until={until}")).await;
        assert_eq!(s, 400, "{until}: {html}");
        let (s, _) = ui.get(&format!("/ui/audit/export?until={until}")).await;
        assert_eq!(s, 400, "{until}");
    }
}
