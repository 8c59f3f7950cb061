//! Property tests of the privacy blocks: thousands of spellings of every
//! blocked and account-control endpoint, and of every private field, that a
//! service could route or read as the original. None may reach the service,
//! none may be queued.
//!
//! A spelling mixes: letter case, percent-encoding of any character (either
//! hex case), fullwidth look-alikes (which servers that fold Unicode read as
//! ASCII), a trailing slash, `;` parameters, `.json`/`.xml` suffixes, a
//! sub-path, and a query with duplicate keys.

use agentgate_core::SettingsUpdate;
use agentgate_core::paths::AgentPath;
use agentgate_core::services::{self, ServiceDef};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use crate::helpers::{TestApp, add_bluesky, add_mastodon, spawn_app};

/// How one character is spelled.
fn spell_char(c: char, how: u8) -> String {
    match how {
        1 => c.to_ascii_uppercase().to_string(),
        2 => format!("%{:02X}", c as u32),
        3 => format!("%{:02x}", c as u32),
        // Fullwidth forms of letters and digits, percent-encoded as a client
        // would send them.
        4 if c.is_ascii_alphanumeric() => {
            let wide = char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap();
            let mut buf = [0u8; 4];
            wide.encode_utf8(&mut buf)
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect()
        }
        _ => c.to_string(),
    }
}

const SUFFIXES: &[&str] = &[
    "",
    "/",
    ";x=1",
    ".json",
    ".xml",
    "/sub",
    "/sub/",
    ".json?a=1",
];
const QUERIES: &[&str] = &["", "?a=1", "?a=1&a=2", "?limit=5&since_id=%31"];

/// Spellings of `path` that a server may route to the same endpoint.
fn spelling(path: String) -> impl Strategy<Value = String> {
    let len = path.chars().count();
    (
        prop::collection::vec(0u8..8, len),
        0..SUFFIXES.len(),
        0..QUERIES.len(),
    )
        .prop_map(move |(hows, suffix, query)| {
            let mut out: String = path
                .chars()
                .zip(hows)
                // Keep most characters as they are, so that several
                // spellings mix in one path.
                .map(|(c, how)| {
                    if c == '/' {
                        c.to_string()
                    } else {
                        spell_char(c, how)
                    }
                })
                .collect();
            out.push_str(SUFFIXES[suffix]);
            if !out.contains('?') {
                out.push_str(QUERIES[query]);
            }
            out
        })
}

/// A concrete path for each blocked or account-control rule of a service.
fn rule_paths(def: &ServiceDef) -> Vec<String> {
    def.blocked
        .iter()
        .chain(def.control)
        .chain(def.by_number.iter().map(|(r, _)| r))
        .map(|r| {
            // A number rule (`/repositories/#`) is met by any number.
            if let Some(prefix) = r.0.strip_suffix('#') {
                return format!("{prefix}42");
            }
            let p = r.0.trim_end_matches('*');
            // A prefix rule (`/chat.bsky.*`) is met by any name under it.
            if p.ends_with('.') || p.ends_with('/') {
                format!("{p}convo")
            } else {
                p.to_string()
            }
        })
        .collect()
}

/// For every one of the nine services, every spelling of every blocked and
/// account-control path is refused by the very check the gateway runs (or
/// does not parse at all).
#[test]
fn no_spelling_of_a_blocked_path_passes_the_check_on_any_service() {
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    let targets: Vec<(&'static ServiceDef, String)> = services::REGISTRY
        .iter()
        .flat_map(|def| rule_paths(def).into_iter().map(move |p| (*def, p)))
        .collect();
    assert!(targets.len() > 40, "{}", targets.len());
    let strategy = (0..targets.len()).prop_flat_map(|i| {
        let (def, path) = targets[i].clone();
        spelling(path).prop_map(move |s| (def, s))
    });
    runner
        .run(&strategy, |(def, spelled)| {
            if let Ok(path) = AgentPath::parse_with_query(&spelled) {
                prop_assert!(
                    def.refusal_of(&path).is_some(),
                    "{} lets {spelled:?} through",
                    def.key
                );
            }
            Ok(())
        })
        .unwrap();
}

/// Ways to say `visibility=direct` that Mastodon may read.
fn direct_field() -> impl Strategy<Value = (&'static str, &'static str)> {
    let names = prop::sample::select(vec![
        "visibility",
        "Visibility",
        "VISIBILITY",
        "status[visibility]",
        "visibility[]",
        "params[visibility]",
    ]);
    let values = prop::sample::select(vec!["direct", "Direct", "DIRECT", " direct", "direct\n"]);
    (names, values)
}

/// Percent-encodes some characters of a form or query component.
fn encode_some(s: &str, hows: &[u8]) -> String {
    s.chars()
        .zip(hows.iter().cycle())
        .map(|(c, how)| match (c, how % 4) {
            (' ', _) => "+".to_string(),
            ('\n', _) => "%0A".to_string(),
            ('[', _) => "%5B".to_string(),
            (']', _) => "%5D".to_string(),
            (c, 1) if c.is_ascii_alphanumeric() => format!("%{:02X}", c as u32),
            (c, 2) if c.is_ascii_alphanumeric() => format!("%{:02x}", c as u32),
            (c, _) => c.to_string(),
        })
        .collect()
}

/// One hostile write of a direct message: the field in a JSON body, a form
/// body or the query, alone or after a public value of the same name.
fn direct_write() -> impl Strategy<Value = serde_json::Value> {
    (
        direct_field(),
        0u8..3,
        any::<bool>(),
        prop::collection::vec(0u8..4, 8),
    )
        .prop_map(|((name, value), place, duplicate, hows)| {
            let pair = format!("{}={}", encode_some(name, &hows), encode_some(value, &hows));
            let before = if duplicate { "visibility=public&" } else { "" };
            match place {
                0 => json!({"method": "POST", "path": "/api/v1/statuses",
                            "body": {"status": "hi", name: value}}),
                1 => json!({"method": "POST", "path": "/api/v1/statuses",
                            "headers": {"content-type": "application/x-www-form-urlencoded"},
                            "body": format!("status=hi&{before}{pair}")}),
                _ => json!({"method": "POST",
                            "path": format!("/api/v1/statuses?{before}{pair}"),
                            "body": {"status": "hi"}}),
            }
        })
}

/// Against a running gateway with services on loopback: 10,000 hostile
/// reads and writes, over HTTP as an agent sends them, of blocked and
/// account-control endpoints (GitHub, Mastodon, Bluesky) and of Mastodon
/// direct messages. None reaches the service; nothing is queued.
#[test]
fn no_hostile_variant_reaches_the_service_or_the_queue() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, key) = rt.block_on(async {
        let app = spawn_app().await;
        add_mastodon(&app, "m");
        add_bluesky(&app, "b");
        app.gw
            .update_settings(SettingsUpdate {
                reads_per_minute: Some(0),
                submissions_per_hour: Some(0),
                ..Default::default()
            })
            .unwrap();
        let key = app.new_agent("prober");
        (app, key)
    });
    let seen_before = rt.block_on(app.upstream.received_requests()).unwrap().len();

    let mut targets: Vec<(&str, &str, String)> = Vec::new();
    for (service, account) in [("github", "personal"), ("mastodon", "m"), ("bluesky", "b")] {
        let def = services::find(service).unwrap();
        for p in rule_paths(def) {
            targets.push((service, account, p));
        }
    }
    let paths = (0..targets.len(), any::<bool>()).prop_flat_map(move |(i, write)| {
        let (service, account, path) = targets[i].clone();
        spelling(path).prop_map(move |s| (service, account, s, write))
    });
    let mut runner = TestRunner::new(Config {
        cases: 8_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&paths, |(service, account, spelled, write)| {
            let status = rt.block_on(probe(&app, &key, service, account, &spelled, write));
            prop_assert!(
                matches!(status, 400 | 403),
                "{service}/{account} {spelled:?} (write: {write}) answered {status}"
            );
            Ok(())
        })
        .unwrap();

    let mut runner = TestRunner::new(Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&direct_write(), |request| {
            let (status, v) = rt.block_on(app.agent(&key).submit_to(
                "mastodon",
                "m",
                json!({"requests": [request.clone()], "comment": "c"}),
            ));
            prop_assert!(
                matches!(status, 400 | 403),
                "{request} answered {status}: {v}"
            );
            Ok(())
        })
        .unwrap();

    let seen_after = rt.block_on(app.upstream.received_requests()).unwrap();
    assert_eq!(
        seen_after.len(),
        seen_before,
        "reached the service: {:?}",
        seen_after[seen_before..]
            .iter()
            .map(|r| r.url.to_string())
            .collect::<Vec<_>>()
    );
    assert!(app.gw.entries(&Default::default()).unwrap().is_empty());
}

/// One read (GET) or queued write (POST) of a spelled path; the answer's status.
async fn probe(
    app: &TestApp,
    key: &str,
    service: &str,
    account: &str,
    spelled: &str,
    write: bool,
) -> u16 {
    if write {
        let (s, _) = app
            .agent(key)
            .submit_to(
                service,
                account,
                json!({"requests": [{"method": "POST", "path": spelled, "body": {}}], "comment": "c"}),
            )
            .await;
        return s;
    }
    let (s, _) = app
        .agent(key)
        .get(&format!("/api/{service}/{account}{spelled}"))
        .await;
    s
}
