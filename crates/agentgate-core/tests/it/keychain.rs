//! The real OS keychain. These tests run when `AGENTGATE_TEST_KEYCHAIN=1`, which
//! the test script sets after starting a D-Bus session with an unlocked
//! gnome-keyring; without it they pass without touching any keychain, so a
//! developer's own keyring is never written by `cargo test`.

use std::sync::Arc;

use agentgate_core::clock::SystemClock;
use agentgate_core::config::CredentialBackend;
use agentgate_core::credentials::{self, CredentialStore, KeychainStore};
use agentgate_core::secret::Secret;
use agentgate_core::{Gateway, NewAccount};

use crate::helpers::test_config;

fn enabled() -> bool {
    std::env::var("AGENTGATE_TEST_KEYCHAIN").is_ok_and(|v| v == "1")
}

#[test]
fn keychain_round_trip() {
    if !enabled() {
        eprintln!("skipped: AGENTGATE_TEST_KEYCHAIN is not 1");
        return;
    }
    let store = KeychainStore::open().expect("the test script provides an unlocked keyring");
    let name = format!(
        "test-{}/github/roundtrip",
        agentgate_core::keys::random_base62(8)
    );
    store.set(&name, &Secret::new("kc-secret-1")).unwrap();
    assert_eq!(store.get(&name).unwrap().unwrap().expose(), "kc-secret-1");
    store.set(&name, &Secret::new("kc-secret-2")).unwrap();
    assert_eq!(store.get(&name).unwrap().unwrap().expose(), "kc-secret-2");
    store.delete(&name).unwrap();
    assert!(store.get(&name).unwrap().is_none());
    store.delete(&name).unwrap();
}

#[test]
fn account_tokens_land_in_the_keychain_and_not_in_the_database() {
    if !enabled() {
        eprintln!("skipped: AGENTGATE_TEST_KEYCHAIN is not 1");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path());
    config.credential_backend = CredentialBackend::Keychain;
    let creds = credentials::open(&config).unwrap();
    let gw = Gateway::open(config, creds, Arc::new(SystemClock)).unwrap();
    let token = format!("ghp_keychain_{}", agentgate_core::keys::random_base62(16));
    gw.add_account(NewAccount {
        service: "github".into(),
        name: "kc".into(),
        base_url: None,
        credentials: [("token".to_string(), Secret::new(token.clone()))]
            .into_iter()
            .collect(),
    })
    .unwrap();
    // secret-tool, a separate Secret Service client, sees the item.
    let listing = secret_tool_listing();
    assert!(
        listing.contains("/github/kc"),
        "secret-tool does not list the item: {listing}"
    );
    assert!(
        listing.contains(&token),
        "secret-tool does not show the stored token"
    );
    let db = std::fs::read(data.path().join("agentgate.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(&token));
    gw.remove_account("github", "kc").unwrap();
}

#[path = "../../../../tests/support/secret_tool.rs"]
mod secret_tool;
use secret_tool::secret_tool_listing;
