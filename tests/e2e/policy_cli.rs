//! `agentgate access`, `rules` and `grants` from the terminal: every command,
//! its `--json`, and bad input (unknown agent, bad glob, a rule list over the
//! limit), against the release of the real binary and a running server that
//! must see each change.

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

fn ok(install: &Install, args: &[&str]) -> String {
    let out = install.run(args, None);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn fails(install: &Install, args: &[&str], why: &str) {
    let out = install.run(args, None);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
    assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
}

fn json_of(install: &Install, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(install, &all)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules_and_grants_from_the_cli_hold_on_a_running_server() {
    let install = Install::new();
    let mock = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&mock)
        .await;
    let claude = install.github_agent("claude", &mock.uri(), "ghp_cli");
    let other = ok(&install, &["keys", "create", "other"])
        .trim()
        .to_string();
    let server = install.serve();
    let read = |key: String| {
        let url = server.url("/api/github/personal/user");
        async move { get_json(&url, Some(&key)).await.0 }
    };
    assert_eq!(read(other.clone()).await, 200);

    // Access.
    let out = ok(
        &install,
        &["access", "set", "github", "personal", "only", "claude"],
    );
    assert!(out.contains("Only claude may use this account."), "{out}");
    assert_eq!(read(other.clone()).await, 403);
    assert_eq!(read(claude.clone()).await, 200);
    let v = json_of(&install, &["access", "show", "github", "personal"]);
    assert_eq!(
        (v["access_mode"].as_str(), &v["access_agents"]),
        (Some("allowlist"), &json!(["claude"]))
    );
    fails(
        &install,
        &["access", "set", "github", "personal", "only", "ghost"],
        "no agent named",
    );
    fails(
        &install,
        &["access", "set", "github", "personal", "only"],
        "name the agents",
    );
    fails(
        &install,
        &["access", "set", "github", "nobody", "all"],
        "nobody",
    );
    assert_eq!(
        install
            .run(&["access", "set", "github", "personal", "some"], None)
            .status
            .code(),
        Some(2)
    );
    ok(&install, &["access", "set", "github", "personal", "all"]);
    assert_eq!(read(other.clone()).await, 200);

    // Rules: add, presets, move, remove, dry run.
    let out = ok(
        &install,
        &[
            "rules", "add", "github", "personal", "--method", "DELETE", "--path", "/**",
            "--effect", "deny",
        ],
    );
    assert!(
        out.contains("1. every agent may not delete anything on the account"),
        "{out}"
    );
    let out = ok(&install, &["rules", "presets", "github"]);
    assert!(
        out.contains("read-only") && out.contains("comments-free"),
        "{out}"
    );
    let out = ok(
        &install,
        &[
            "rules",
            "preset",
            "github",
            "personal",
            "comments-free",
            "--agent",
            "claude",
        ],
    );
    assert!(
        out.contains("claude may comment on issues in */* without asking"),
        "{out}"
    );
    let v = json_of(&install, &["rules", "list", "github", "personal"]);
    assert_eq!(v["rules"].as_array().unwrap().len(), 5);
    // A preset's always-ask rules go on top, its run-without-asking ones last.
    assert_eq!(v["rules"][0]["effect"], "require_approval");
    assert_eq!(v["rules"][2]["path"], "/**");
    assert_eq!(v["rules"][4]["effect"], "auto_approve");
    let (s, v) = post_json(
        &server.url("/api/queue/github/personal/submit"),
        &claude,
        &json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues/1/comments", "body": {"body": "hi"}}], "comment": "c"}),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (201, Some("approved")), "{v}");

    let out = ok(&install, &["rules", "move", "github", "personal", "3", "1"]);
    assert!(
        out.lines().nth(1).unwrap().contains("may not delete"),
        "{out}"
    );
    let out = ok(
        &install,
        &[
            "rules",
            "dry-run",
            "github",
            "personal",
            "--agent",
            "claude",
            "--method",
            "DELETE",
            "/repos/o/r/issues/comments/1",
        ],
    );
    assert!(
        out.contains("denied") && out.contains("deciding rule: 1"),
        "{out}"
    );
    let v = json_of(
        &install,
        &[
            "rules",
            "dry-run",
            "github",
            "personal",
            "--agent",
            "other",
            "--method",
            "POST",
            "/repos/o/r/issues",
        ],
    );
    assert_eq!(v["outcome"], "queue");
    let out = ok(&install, &["rules", "remove", "github", "personal", "1"]);
    assert!(!out.contains("may not delete"), "{out}");

    fails(
        &install,
        &[
            "rules", "add", "github", "personal", "--path", "no-slash", "--effect", "deny",
        ],
        "starts with '/'",
    );
    fails(
        &install,
        &[
            "rules", "add", "github", "personal", "--path", "/a/***", "--effect", "deny",
        ],
        "'***'",
    );
    fails(
        &install,
        &[
            "rules", "add", "github", "personal", "--path", "/a", "--effect", "maybe",
        ],
        "unknown effect",
    );
    fails(
        &install,
        &[
            "rules", "add", "github", "personal", "--method", "BREW", "--path", "/a", "--effect",
            "deny",
        ],
        "unknown method",
    );
    fails(
        &install,
        &[
            "rules", "add", "github", "personal", "--path", "/a", "--effect", "deny", "--agent",
            "ghost",
        ],
        "no agent named",
    );
    fails(
        &install,
        &["rules", "remove", "github", "personal", "0"],
        "numbered from 1",
    );
    fails(
        &install,
        &["rules", "remove", "github", "personal", "99"],
        "no rule 99",
    );
    fails(
        &install,
        &["rules", "preset", "github", "personal", "nope"],
        "no preset",
    );
    fails(
        &install,
        &["rules", "presets", "myspace"],
        "unknown service",
    );
    fails(
        &install,
        &[
            "rules", "dry-run", "github", "personal", "--agent", "ghost", "/x",
        ],
        "no agent named",
    );
    fails(&install, &["rules", "list", "github", "nobody"], "nobody");
    assert_eq!(
        json_of(&install, &["rules", "list", "github", "personal"])["rules"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Grants.
    let g = json_of(
        &install,
        &[
            "grants",
            "add",
            "--agent",
            "other",
            "--account",
            "github/personal",
            "--minutes",
            "30",
            "--method",
            "POST",
            "--path",
            "/repos/o/*/issues",
        ],
    );
    assert_eq!(
        (g["method"].as_str(), g["path"].as_str()),
        (Some("POST"), Some("/repos/o/*/issues"))
    );
    let id = g["id"].as_i64().unwrap().to_string();
    let out = ok(&install, &["grants", "list"]);
    assert!(
        out.contains("other may open issues in o/* on github/personal without asking"),
        "{out}"
    );
    let submit = |key: String| {
        let url = server.url("/api/queue/github/personal/submit");
        async move {
            post_json(&url, &key, &json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "t"}}], "comment": "c"}))
                .await
                .1["status"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert_eq!(submit(other.clone()).await, "approved");
    ok(&install, &["grants", "revoke", &id]);
    assert_eq!(submit(other.clone()).await, "pending");
    fails(&install, &["grants", "revoke", &id], "no grant");
    for (args, why) in [
        (vec!["--minutes", "0"], "1 to 1440"),
        (vec!["--minutes", "2000"], "1 to 1440"),
        (vec!["--minutes", "5", "--method", "GET"], "unknown method"),
        (vec!["--minutes", "5", "--path", "x"], "starts with '/'"),
    ] {
        let mut all = vec![
            "grants",
            "add",
            "--agent",
            "other",
            "--account",
            "github/personal",
        ];
        all.extend(args);
        fails(&install, &all, why);
    }
    fails(
        &install,
        &[
            "grants",
            "add",
            "--agent",
            "ghost",
            "--account",
            "github/personal",
            "--minutes",
            "5",
        ],
        "no agent named",
    );
    fails(
        &install,
        &[
            "grants",
            "add",
            "--agent",
            "other",
            "--account",
            "personal",
            "--minutes",
            "5",
        ],
        "service/name",
    );
    assert_eq!(json_of(&install, &["grants", "list"]), json!([]));
    let out = install.run(&["grants", "list"], None);
    assert!(stderr(&out).contains("no grants are running"));

    // The audit log from the CLI, narrowed to the account and a time.
    let out = ok(
        &install,
        &[
            "audit",
            "--service",
            "github",
            "--account",
            "personal",
            "--since",
            "2000-01-01",
            "--kind",
            "read",
        ],
    );
    assert!(out.lines().count() >= 3, "{out}");
    fails(
        &install,
        &["audit", "--since", "yesterday"],
        "is not a time",
    );
    drop(server);
}

#[test]
fn a_rule_list_over_the_limit_is_refused_whole() {
    let install = Install::new();
    install.github_agent("claude", "http://127.0.0.1:9", "ghp_x");
    // Presets add up to four rules at a time; 200 is the limit.
    for i in 0..200 {
        let path = format!("/r{i}");
        let out = install.run(
            &[
                "rules", "add", "github", "personal", "--method", "POST", "--path", &path,
                "--effect", "deny",
            ],
            None,
        );
        assert!(out.status.success(), "{i}: {}", stderr(&out));
    }
    fails(
        &install,
        &[
            "rules",
            "add",
            "github",
            "personal",
            "--path",
            "/one-more",
            "--effect",
            "deny",
        ],
        "at most 200 rules",
    );
    fails(
        &install,
        &["rules", "preset", "github", "personal", "read-only"],
        "at most 200 rules",
    );
    let v = json_of(&install, &["rules", "list", "github", "personal"]);
    assert_eq!(v["rules"].as_array().unwrap().len(), 200);
}
