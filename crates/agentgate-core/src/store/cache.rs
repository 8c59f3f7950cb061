//! The lookups every agent request makes (its key, the account, the pause
//! switch), answered from memory while the database is unchanged.
//!
//! Two signals empty it:
//!
//! - a write through this process's [`super::Store`] (the admin API, the web
//!   admin, the tray) bumps a counter once committed; the next lookup sees it, so
//!   a key revoked here is refused by the very next request, and a request that
//!   changes a row and reads it back sees its own change.
//! - for other processes (CLI commands open the database themselves), SQLite's
//!   `PRAGMA data_version`, which changes whenever another connection commits, is
//!   asked on a connection of the cache's own, at most once per
//!   [`CROSS_PROCESS_DELAY`]. A key revoked from the CLI is refused by requests
//!   that arrive that long after the command committed.
//!
//! Asking SQLite costs a read transaction (two file-lock system calls and a
//! statement), about a tenth of the gateway's own work per request when asked for
//! every request; once a millisecond it costs nothing measurable. The three
//! queries per request it replaces, with their row decoding (policy JSON
//! included), cost three times that.
//!
//! Only rows that exist are kept: an unknown key or account name is looked up
//! every time, so nobody can fill the cache by sending made-up keys. Each map is
//! also capped.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::accounts::{AccountRow, select_account};
use super::agents::select_agent_by_digest;
use super::internal;
use super::settings::select_setting;
use crate::agent::Agent;
use crate::error::Result;

/// Most entries one map holds before it is emptied and refilled on demand.
const MAX_ENTRIES: usize = 4096;

/// How long after another process commits a change the cache may still answer
/// from rows older than it: a millisecond, less than any agent's round trip.
pub const CROSS_PROCESS_DELAY: Duration = Duration::from_millis(1);

/// An agent with the key digest as stored, for the caller's constant-time check.
/// Both are shared, so a hit costs two reference counts, not copies.
#[derive(Clone)]
pub(crate) struct KeyedAgent {
    pub agent: Arc<Agent>,
    pub digest: Arc<[u8]>,
}

pub(crate) struct HotCache {
    state: Mutex<State>,
}

struct State {
    conn: Connection,
    /// This process's store's write counter, and its value at the last check.
    local_writes: Arc<AtomicU64>,
    local_seen: u64,
    /// The `data_version` the maps below were filled under, and the instant
    /// just before it was read: every commit completed by then is reflected.
    version: Option<i64>,
    checked_at: Option<Instant>,
    /// How many times the database was asked, for the tests.
    checks: u64,
    agents: HashMap<Vec<u8>, KeyedAgent>,
    /// By service, then account name, so a hit needs no owned key.
    accounts: HashMap<String, HashMap<String, Arc<AccountRow>>>,
    accounts_len: usize,
    settings: HashMap<String, Option<String>>,
}

impl State {
    /// Empties the maps if anything was committed since they were filled: at once
    /// for this process's writes, within [`CROSS_PROCESS_DELAY`] for others'.
    fn revalidate(&mut self) -> Result<()> {
        let local = self.local_writes.load(Ordering::Acquire);
        let now = Instant::now();
        let recent = self
            .checked_at
            .is_some_and(|t| now.duration_since(t) < CROSS_PROCESS_DELAY);
        if local == self.local_seen && recent {
            return Ok(());
        }
        self.checks += 1;
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if local != self.local_seen || self.version != Some(version) {
            self.agents.clear();
            self.accounts.clear();
            self.accounts_len = 0;
            self.settings.clear();
        }
        self.local_seen = local;
        self.version = Some(version);
        self.checked_at = Some(now);
        Ok(())
    }
}

impl HotCache {
    /// Opens the cache's own connection to the database `store` has already
    /// created and migrated.
    pub fn open(path: &Path, store: &super::Store) -> Result<HotCache> {
        let conn =
            Connection::open(path).map_err(|e| internal(e, "failed to open the database"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(HotCache {
            state: Mutex::new(State {
                conn,
                local_seen: store.writes().load(Ordering::Acquire),
                local_writes: store.writes(),
                version: None,
                checked_at: None,
                checks: 0,
                agents: HashMap::new(),
                accounts: HashMap::new(),
                accounts_len: 0,
                settings: HashMap::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change below is a whole map operation, so a panic elsewhere while
        // the lock was held cannot leave a half-written entry behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The agent whose key has this digest, with the digest as stored.
    pub fn agent_by_digest(&self, digest: &[u8]) -> Result<Option<KeyedAgent>> {
        let mut s = self.state();
        s.revalidate()?;
        if let Some(hit) = s.agents.get(digest) {
            return Ok(Some(hit.clone()));
        }
        let Some(found) = select_agent_by_digest(&s.conn, digest)? else {
            return Ok(None);
        };
        let (agent, stored) = found;
        let found = KeyedAgent {
            agent: Arc::new(agent),
            digest: stored.into(),
        };
        if s.agents.len() >= MAX_ENTRIES {
            s.agents.clear();
        }
        s.agents.insert(digest.to_vec(), found.clone());
        Ok(Some(found))
    }

    pub fn account(&self, service: &str, name: &str) -> Result<Option<Arc<AccountRow>>> {
        let mut s = self.state();
        s.revalidate()?;
        if let Some(hit) = s.accounts.get(service).and_then(|m| m.get(name)) {
            return Ok(Some(hit.clone()));
        }
        let Some(found) = select_account(&s.conn, service, name)? else {
            return Ok(None);
        };
        let found = Arc::new(found);
        if s.accounts_len >= MAX_ENTRIES {
            s.accounts.clear();
            s.accounts_len = 0;
        }
        s.accounts
            .entry(service.to_string())
            .or_default()
            .insert(name.to_string(), found.clone());
        s.accounts_len += 1;
        Ok(Some(found))
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        let mut s = self.state();
        s.revalidate()?;
        if let Some(hit) = s.settings.get(key) {
            return Ok(hit.clone());
        }
        let found = select_setting(&s.conn, key)?;
        if s.settings.len() >= MAX_ENTRIES {
            s.settings.clear();
        }
        s.settings.insert(key.to_string(), found.clone());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn setup() -> (tempfile::TempDir, Store, HotCache) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let hot = HotCache::open(&path, &store).unwrap();
        (dir, store, hot)
    }

    fn enabled(hot: &HotCache, digest: &[u8]) -> Option<bool> {
        hot.agent_by_digest(digest)
            .unwrap()
            .map(|a| a.agent.enabled)
    }

    fn past_the_delay() {
        std::thread::sleep(CROSS_PROCESS_DELAY * 2);
    }

    impl HotCache {
        fn checks(&self) -> u64 {
            self.state().checks
        }
        fn cached_agents(&self) -> usize {
            self.state().agents.len()
        }
    }

    #[test]
    fn a_change_made_in_this_process_is_seen_at_once() {
        let (_dir, store, hot) = setup();
        store.insert_agent("a", b"digest-a", "rms_a", NOW).unwrap();
        assert_eq!(enabled(&hot, b"digest-a"), Some(true));
        store.set_agent_enabled("a", false).unwrap();
        assert_eq!(enabled(&hot, b"digest-a"), Some(false));
        store.delete_agent("a").unwrap();
        assert_eq!(enabled(&hot, b"digest-a"), None);
        store.set_setting("paused", "1").unwrap();
        assert_eq!(hot.setting("paused").unwrap().as_deref(), Some("1"));
    }

    #[test]
    fn another_process_commit_is_seen_within_the_delay() {
        let (dir, store, hot) = setup();
        store.insert_agent("a", b"digest-a", "rms_a", NOW).unwrap();
        store.set_setting("paused", "0").unwrap();
        assert_eq!(enabled(&hot, b"digest-a"), Some(true));
        assert_eq!(hot.setting("paused").unwrap().as_deref(), Some("0"));
        // The CLI: its own connection, nothing shared with this process.
        let cli = Connection::open(dir.path().join("t.db")).unwrap();
        cli.execute("UPDATE agents SET enabled = 0 WHERE name = 'a'", [])
            .unwrap();
        cli.execute("UPDATE settings SET value = '1' WHERE key = 'paused'", [])
            .unwrap();
        past_the_delay();
        assert_eq!(enabled(&hot, b"digest-a"), Some(false));
        assert_eq!(hot.setting("paused").unwrap().as_deref(), Some("1"));
    }

    #[test]
    fn the_database_is_asked_at_most_once_per_delay() {
        let (_dir, store, hot) = setup();
        store.insert_agent("a", b"digest-a", "rms_a", NOW).unwrap();
        store
            .insert_account("github", "personal", None, NOW)
            .unwrap();
        let before = hot.checks();
        let span = CROSS_PROCESS_DELAY * 20;
        let start = Instant::now();
        let mut lookups = 0u64;
        while start.elapsed() < span {
            assert!(hot.agent_by_digest(b"digest-a").unwrap().is_some());
            assert!(hot.account("github", "personal").unwrap().is_some());
            assert_eq!(hot.setting("paused").unwrap(), None);
            lookups += 3;
        }
        let checks = hot.checks() - before;
        // One per elapsed delay at most, and one for the window already open.
        let most = (start.elapsed().as_micros() / CROSS_PROCESS_DELAY.as_micros()) as u64 + 1;
        assert!(
            checks >= 1 && checks <= most,
            "{checks} checks in {:?}",
            start.elapsed()
        );
        assert!(lookups > 5 * checks, "{lookups} lookups, {checks} checks");
    }

    #[test]
    fn made_up_keys_are_not_kept() {
        let (_dir, store, hot) = setup();
        store.insert_agent("a", b"digest-a", "rms_a", NOW).unwrap();
        for i in 0..100 {
            assert!(
                hot.agent_by_digest(format!("unknown-{i}").as_bytes())
                    .unwrap()
                    .is_none()
            );
        }
        assert_eq!(hot.cached_agents(), 0);
        hot.agent_by_digest(b"digest-a").unwrap();
        assert_eq!(hot.cached_agents(), 1);
    }

    #[test]
    fn the_maps_stay_within_their_cap() {
        let (_dir, store, hot) = setup();
        for i in 0..=MAX_ENTRIES {
            let digest = format!("digest-{i}");
            store
                .insert_agent(&format!("a{i}"), digest.as_bytes(), "rms_a", NOW)
                .unwrap();
        }
        for i in 0..=MAX_ENTRIES {
            let digest = format!("digest-{i}");
            assert!(hot.agent_by_digest(digest.as_bytes()).unwrap().is_some());
            assert!(hot.cached_agents() <= MAX_ENTRIES);
        }
    }
}
