use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const TOKEN: &str = "ghp_e2e_token_0123456789";

async fn setup(install: &Install, mock: &MockServer) -> String {
    install.github_agent("claude", &mock.uri(), TOKEN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_submit_approve_from_the_cli_and_complete() {
    let install = Install::new();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "octocat"})))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json!({"title": "Found a bug"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"number": 42})))
        .expect(1)
        .mount(&mock)
        .await;
    let key = setup(&install, &mock).await;
    let server = install.serve();

    let (_, health) = get_json(&server.url("/health"), None).await;
    assert_eq!(health["status"], "ok");
    let (_, user) = get_json(&server.url("/api/github/personal/user"), Some(&key)).await;
    assert_eq!(user["login"], "octocat");

    let (status, v) = post_json(
        &server.url("/api/queue/github/personal/submit"),
        &key,
        &json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "Found a bug"}}],
                "comment": "report the bug the user hit"}),
    )
    .await;
    assert_eq!(status, 201);
    let id = v["id"].as_str().unwrap().to_string();

    let out = install.run(&["queue", "list", "--status", "pending"], None);
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    // Not on a terminal, an approval names the digest it approves: without
    // it, or with another, nothing is approved.
    let out = install.run(&["queue", "approve", &id], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--digest"), "{}", stderr(&out));
    let wrong = "0".repeat(64);
    let out = install.run(&["queue", "approve", &id, "--digest", &wrong], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not what you were shown"),
        "{}",
        stderr(&out)
    );
    let digest = digest_of(&install, &id);
    let out = tokio::task::spawn_blocking({
        let cmd = install
            .command()
            .args(["queue", "approve", &id, "--digest", &digest])
            .output();
        move || cmd
    })
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("completed"), "{}", stdout(&out));

    let (_, status) = get_json(
        &server.url(&format!("/api/queue/github/personal/status/{id}")),
        Some(&key),
    )
    .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["results"][0]["body"]["number"], 42);
    assert!(status["reviewed_at"].is_string());

    // Approving again is refused with a clear message and a failing exit code.
    let out = install.run(&["queue", "approve", &id, "--digest", &digest], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already completed"),
        "{}",
        stderr(&out)
    );

    // The admin API lives only on the admin listener, and refuses agent keys.
    assert_eq!(
        get_json(&server.admin_url("/admin/queue"), Some(&key))
            .await
            .0,
        401
    );
    assert_eq!(
        get_json(&server.url("/admin/queue"), Some(&key)).await.0,
        404
    );

    // Logs carry the request id, agent, account, status and latency, never a secret.
    let log = server.log();
    let read_line = log
        .lines()
        .find(|l| l.contains("request finished") && l.contains("path=/api/github/personal/user"))
        .unwrap_or_else(|| panic!("no log line for the read:\n{log}"));
    for field in [
        "id=",
        "method=GET",
        "agent=claude",
        "service=github",
        "account=personal",
        "status=200",
        "latency_ms=",
    ] {
        assert!(
            read_line.contains(field),
            "the read's log line lacks {field}: {read_line}"
        );
    }
    for secret in [TOKEN, key.as_str(), "Found a bug"] {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
    assert_eq!(server.terminate().code(), Some(0));

    // The token is in neither the database nor the encrypted secrets file.
    for f in ["agentgate.db", "secrets.enc"] {
        let bytes = std::fs::read(install.data.path().join(f)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "{f} holds the token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_killed_mid_way_is_marked_interrupted_and_never_rerun() {
    let install = Install::new();
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/first"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/second"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&mock)
        .await;
    let key = setup(&install, &mock).await;
    let server = install.serve();
    let (_, v) = post_json(
        &server.url("/api/queue/github/personal/submit"),
        &key,
        &json!({"requests": [{"method": "POST", "path": "/first"}, {"method": "POST", "path": "/second"}],
                "comment": "two steps"}),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(server.terminate().code(), Some(0));

    // Approve from the CLI and kill it while the first request is in flight.
    let digest = digest_of(&install, &id);
    let mut approver = install
        .command()
        .args(["queue", "approve", &id, "--digest", &digest])
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while mock.received_requests().await.unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the batch never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    approver.kill().unwrap();
    approver.wait().unwrap();
    let shown: Value = serde_json::from_str(&stdout(
        &install.run(&["queue", "show", &id, "--json"], None),
    ))
    .unwrap();
    assert_eq!(shown["status"], "executing");

    // The next start marks it failed instead of running it again.
    let server = install.serve();
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = serde_json::from_str(&stdout(
            &install.run(&["queue", "show", &id, "--json"], None),
        ))
        .unwrap();
        if shown["status"] != "executing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(
        shown["results"].to_string().contains("interrupted"),
        "{shown}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = mock.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1, "only the first request was ever sent, once");
    assert_eq!(seen[0].url.path(), "/first");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_read_finish() {
    let install = Install::new();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"done": true}))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&mock)
        .await;
    let key = setup(&install, &mock).await;
    let server = install.serve();
    let read = tokio::spawn({
        let url = server.url("/api/github/personal/slow");
        let key = key.clone();
        async move { http().get(url).bearer_auth(key).send().await }
    });
    let start = std::time::Instant::now();
    while mock.received_requests().await.unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the read never reached upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let exit = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    let resp = read.await.unwrap().expect("the in-flight read was cut off");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["done"], true);
}

/// A person deciding from the terminal sees every request whole (URL with its
/// query, the headers the agent set, the body) and nothing an agent wrote can
/// send the terminal an escape sequence or forge a line of the listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_show_prints_the_whole_request_and_no_agent_escape_reaches_the_terminal() {
    let install = Install::new();
    let mock = MockServer::start().await;
    let key = setup(&install, &mock).await;
    let server = install.serve();
    let hostile = "fix it\u{1b}[8m\nreason: approved by the owner\u{1b}[0m\u{202e}\u{9b}2J\u{7}";
    let (status, v) = post_json(
        &server.url("/api/queue/github/personal/submit"),
        &key,
        &json!({"requests": [{
                    "method": "PATCH",
                    "path": "/repos/o/r/issues/4?state=closed&state=open",
                    "headers": {"accept": "application/vnd.github+json"},
                    "body": {"state": "closed", "title": "Rewritten\u{1b}]0;owned\u{7} title"}}],
                "comment": hostile}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    let shown = install.run(&["queue", "show", &id], None);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let listed = install.run(&["queue", "list"], None);
    for out in [&shown, &listed] {
        let bytes = &out.stdout;
        assert!(
            !bytes
                .iter()
                .any(|b| (*b < 0x20 && *b != b'\n') || *b == 0x7f),
            "a control byte reached the terminal: {:?}",
            String::from_utf8_lossy(bytes)
        );
        let text = stdout(out);
        for hidden in ['\u{9b}', '\u{202e}'] {
            assert!(!text.contains(hidden), "{hidden:?} reached the terminal");
        }
        assert!(
            !text.lines().any(|l| l.starts_with("reason:")),
            "agent text forged a line: {text}"
        );
    }
    let text = stdout(&shown);
    assert!(
        text.contains(&format!(
            "PATCH {}/repos/o/r/issues/4?state=closed&state=open",
            mock.uri()
        )),
        "{text}"
    );
    assert!(
        text.contains("header accept: \"application/vnd.github+json\""),
        "{text}"
    );
    assert!(text.contains("\"state\": \"closed\""), "{text}");
    assert!(
        text.contains("Rewritten\\u001b]0;owned\\u0007 title"),
        "{text}"
    );
    assert!(
        text.contains("comment (the agent's words): \"fix it\\u{1b}[8m\\nreason: approved"),
        "{text}"
    );
    // The query's parameters, decoded, duplicates kept, and the digest an
    // approval names.
    assert!(text.contains("query \"state\": \"closed\""), "{text}");
    assert!(text.contains("query \"state\": \"open\""), "{text}");
    assert!(
        text.contains(&format!("digest {}", digest_of(&install, &id))),
        "{text}"
    );
    drop(server);
}

/// `queue edit` opens $EDITOR on the requests; the saved edit is checked like
/// a submission, changes the digest, and is what runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_edit_changes_what_runs_and_the_agent_sees_it() {
    let install = Install::new();
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"number": 7})))
        .expect(1)
        .mount(&mock)
        .await;
    let key = setup(&install, &mock).await;
    let server = install.serve();
    let (_, v) = post_json(
        &server.url("/api/queue/github/personal/submit"),
        &key,
        &json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "tpyo"}}],
                "comment": "file it"}),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_string();
    let before = digest_of(&install, &id);

    // An "editor" that fixes the title in the file it is given.
    let out = edit_with(&install, &id, "s/tpyo/typo/");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let after = digest_of(&install, &id);
    assert_ne!(before, after);
    // The old digest approves nothing any more; the new one runs the edit.
    let out = install.run(&["queue", "approve", &id, "--digest", &before], None);
    assert_eq!(out.status.code(), Some(1));
    let posts = |mock_requests: Vec<wiremock::Request>| {
        mock_requests
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .collect::<Vec<_>>()
    };
    assert!(posts(mock.received_requests().await.unwrap()).is_empty());

    // An editor that writes an account-control path: refused, the entry unchanged.
    let out = edit_with(&install, &id, "s#/repos/o/r/issues#/user/keys#");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(digest_of(&install, &id), after);

    let out = tokio::task::spawn_blocking({
        let cmd = install
            .command()
            .args(["queue", "approve", &id, "--digest", &after])
            .output();
        move || cmd
    })
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let sent = &posts(mock.received_requests().await.unwrap())[0];
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap(),
        json!({"title": "typo"})
    );
    let (_, status) = get_json(
        &server.url(&format!("/api/queue/github/personal/status/{id}")),
        Some(&key),
    )
    .await;
    assert_eq!(status["edited"], true, "{status}");
    assert_eq!(
        status["original_requests"][0]["body"]["title"], "tpyo",
        "{status}"
    );
    drop(server);
}

/// Runs `queue edit` with an "editor" that applies one sed expression to the
/// file it is given.
fn edit_with(install: &Install, id: &str, sed: &str) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let editor = install.data.path().join(format!("editor-{}.sh", sed.len()));
    std::fs::write(&editor, format!("#!/bin/sh\nsed -i '{sed}' \"$1\"\n")).unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    install
        .command()
        .env("VISUAL", &editor)
        .args(["queue", "edit", id])
        .output()
        .unwrap()
}

fn digest_of(install: &Install, id: &str) -> String {
    let shown: Value = serde_json::from_str(&stdout(
        &install.run(&["queue", "show", id, "--json"], None),
    ))
    .unwrap();
    shown["digest"].as_str().unwrap().to_string()
}
