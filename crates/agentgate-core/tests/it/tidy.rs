//! The architecture's invariants as tests, in the style of rust-analyzer's tidy
//! tests: a layout that drifts from ARCHITECTURE.md fails here, not in review.
//! They read the workspace's sources as text; nothing is built or run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its path relative to `dir` ("/"-separated).
fn rust_files(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// The source before its unit tests: what the tidy rules are about.
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Source files of every crate of the workspace (not their tests).
fn all_sources() -> Vec<(String, String)> {
    let ws = workspace();
    let mut out = Vec::new();
    for (dir, prefix) in [
        (core_src(), "crates/agentgate-core/src/"),
        (ws.join("src"), "src/"),
        (ws.join("src-tauri/src"), "src-tauri/src/"),
    ] {
        for (rel, text) in rust_files(&dir) {
            out.push((format!("{prefix}{rel}"), text));
        }
    }
    out
}

fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[test]
fn only_the_store_knows_sql() {
    let offenders: Vec<_> = all_sources()
        .into_iter()
        .filter(|(path, text)| {
            !path.starts_with("crates/agentgate-core/src/store/") && mentions(text, "rusqlite")
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        offenders.is_empty(),
        "only store/ may use rusqlite; found in {offenders:?}"
    );
}

#[test]
fn only_credentials_rs_talks_to_the_keychain() {
    let offenders: Vec<_> = all_sources()
        .into_iter()
        .filter(|(path, text)| {
            path != "crates/agentgate-core/src/credentials.rs" && mentions(text, "keyring")
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        offenders.is_empty(),
        "only credentials.rs may use the keychain; found in {offenders:?}"
    );
}

/// The `[dependencies]`-like tables of a manifest, as (table, crate) pairs.
fn dependencies(manifest: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let mut out = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = doc.get(table).and_then(|t| t.as_table()) {
            out.extend(deps.keys().map(|k| (table.to_string(), k.clone())));
        }
    }
    out
}

#[test]
fn only_the_desktop_crate_knows_tauri() {
    let ws = workspace();
    for manifest in [
        ws.join("Cargo.toml"),
        ws.join("crates/agentgate-core/Cargo.toml"),
    ] {
        let tauri: Vec<_> = dependencies(&manifest)
            .into_iter()
            .filter(|(_, name)| name.starts_with("tauri") || name.starts_with("wry"))
            .collect();
        assert!(tauri.is_empty(), "{}: {tauri:?}", manifest.display());
    }
    for (path, text) in all_sources() {
        if !path.starts_with("src-tauri/") {
            assert!(!mentions(text.as_str(), "tauri"), "{path} names tauri");
        }
    }
}

/// The core's top-level modules, and which of them each one names through
/// `crate::`. A module's own children are part of it.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(&core_src());
    let top = |rel: &str| -> String {
        rel.split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|(rel, _)| top(rel))
        .filter(|m| m != "lib")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &files {
        let from = top(rel);
        if from == "lib" {
            continue;
        }
        let text = without_tests(text);
        let deps = graph.entry(from.clone()).or_default();
        // `crate::name` anywhere, and `use crate::{a, b::c}` groups.
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if modules.contains(name) && name != from {
                        deps.insert(name.to_string());
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&name) && name != from {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn the_core_modules_form_layers_without_import_circles() {
    let graph = module_graph();
    assert!(graph.contains_key("gateway") && graph.contains_key("store"));
    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = path.iter().position(|p| *p == m) {
            panic!(
                "import circle between the core's modules: {} -> {m}",
                path[at..].join(" -> ")
            );
        }
        path.push(m);
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, path, done);
        }
        path.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
    // The layering that ARCHITECTURE.md draws, checked in the one direction
    // that matters most: nothing below the gateway reaches up to it or to HTTP.
    for (m, deps) in &graph {
        if !matches!(m.as_str(), "gateway" | "http" | "server") {
            assert!(
                !deps.contains("gateway") && !deps.contains("http") && !deps.contains("server"),
                "{m} reaches up into {deps:?}"
            );
        }
    }
}

#[test]
fn core_files_stay_readable_in_one_sitting() {
    for (rel, text) in rust_files(&core_src()) {
        let lines = without_tests(&text).lines().count();
        let limit = if rel == "gateway/mod.rs" || rel.starts_with("store/") {
            500
        } else {
            800
        };
        assert!(
            lines <= limit,
            "{rel} has {lines} lines before its tests (at most {limit})"
        );
    }
}

/// Backticked words of the code map that look like paths.
fn code_map_paths(architecture: &str) -> Vec<String> {
    let start = architecture
        .find("## Code map")
        .expect("ARCHITECTURE.md has a code map");
    let map = &architecture[start..];
    let map = &map[..map[3..].find("\n## ").map_or(map.len(), |i| i + 3)];
    map.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| (w.ends_with(".rs") || w.ends_with('/')) && !w.contains(' '))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_code_map_and_the_tree_agree() {
    let ws = workspace();
    let architecture = std::fs::read_to_string(ws.join("ARCHITECTURE.md")).unwrap();
    let named = code_map_paths(&architecture);
    // Every path the code map names exists, relative to the workspace or to
    // the folder its section is about.
    let roots = [
        ws.clone(),
        core_src(),
        core_src().join("../tests/it"),
        ws.join("src"),
        ws.join("src-tauri"),
        ws.join("src-tauri/src"),
        ws.join("tests/e2e"),
    ];
    for p in &named {
        let found = roots
            .iter()
            .any(|root| root.join(p.trim_end_matches('/')).exists());
        assert!(found, "ARCHITECTURE.md names `{p}`, which does not exist");
    }
    // Every source file of the core is named, by its path under src/.
    let named: BTreeSet<&str> = named.iter().map(String::as_str).collect();
    let missing: Vec<String> = rust_files(&core_src())
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|rel| rel != "lib.rs" && !named.contains(rel.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name {missing:?}"
    );
    for stale in ["(planned)", "(later)"] {
        assert!(
            !architecture.contains(stale),
            "ARCHITECTURE.md still says {stale}"
        );
    }
}

/// Routes the agent router registers by hand (`.route("…")`,
/// `.nest_service("…")`), in OpenAPI's spelling (`{*path}` is `{path}`).
fn hand_routes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(core_src().join("http/agent.rs")).unwrap();
    hand_routes_in(&text)
}

/// The same for a router's source text.
fn hand_routes_in(text: &str) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for call in [".route(", ".nest_service("] {
        for (i, _) in text.match_indices(call) {
            let rest = text[i + call.len()..].trim_start();
            if let Some(rest) = rest.strip_prefix('"') {
                routes.insert(openapi_spelling(&rest[..rest.find('"').unwrap()]));
            }
        }
    }
    routes
}

fn openapi_spelling(route: &str) -> String {
    route.replace("{*", "{")
}

/// Every route of the agent listener: the hand-registered ones and those
/// utoipa-axum registers from the handlers' own annotations.
fn agent_routes() -> BTreeSet<String> {
    let doc = agentgate_core::http::agent_api_document();
    let mut routes = hand_routes();
    routes.extend(doc.paths.paths.keys().cloned());
    routes
}

#[test]
fn the_agent_contract_names_exactly_the_routes_that_exist() {
    let doc = std::fs::read_to_string(workspace().join("docs/agent-api.md"))
        .expect("the agent contract is in the repository as docs/agent-api.md");
    let section = &doc[doc.find("\n## Routes").expect("a ## Routes section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let documented: BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(2))
        .filter_map(|cell| cell.trim().strip_prefix('`')?.strip_suffix('`'))
        .map(openapi_spelling)
        .collect();
    let routes = agent_routes();
    assert!(routes.len() >= 10, "{routes:?}");
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let invented: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && invented.is_empty(),
        "docs/agent-api.md and the router disagree: not documented {undocumented:?}, \
         documented but not routed {invented:?}"
    );
}

#[test]
fn the_openapi_document_names_every_agent_route() {
    let doc = agentgate_core::http::agent_api_document();
    let documented: BTreeSet<String> = doc.paths.paths.keys().cloned().collect();
    let undocumented: Vec<_> = hand_routes()
        .into_iter()
        // Where an OAuth provider sends the owner's browser back; not for agents.
        .filter(|r| r != "/oauth/callback/{service}" && !documented.contains(r))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(documented.len() >= 14, "{documented:?}");
}

/// Routes the admin router registers by hand, in `http/admin/`.
fn admin_hand_routes() -> BTreeSet<String> {
    rust_files(&core_src().join("http/admin"))
        .iter()
        .flat_map(|(_, text)| hand_routes_in(without_tests(text)))
        .collect()
}

#[test]
fn the_openapi_document_names_every_admin_route() {
    let doc = agentgate_core::http::admin_api_document();
    let documented: BTreeSet<String> = doc.paths.paths.keys().cloned().collect();
    let routes = admin_hand_routes();
    // The legacy `/admin/keys…` alias is registered by hand.
    assert!(routes.contains("/admin/keys/{name}"), "{routes:?}");
    let undocumented: Vec<_> = routes
        .into_iter()
        // Not the API: the web admin's pages, where an OAuth provider sends
        // the owner's browser back, and the liveness probe.
        .filter(|r| {
            r != "/ui"
                && !r.starts_with("/ui/")
                && r != "/oauth/callback/{service}"
                && r != "/health"
        })
        .filter(|r| !documented.contains(r))
        .collect();
    assert!(
        undocumented.is_empty(),
        "admin routes missing from the admin OpenAPI document: {undocumented:?}"
    );
    assert!(documented.len() >= 30, "{documented:?}");
}
