//! SQLite persistence. This is the **only module that knows SQL**: nothing
//! outside `store/` names a table or a column (a tidy test checks it).
//!
//! One database file in WAL mode, opened by the server and by CLI commands at the
//! same time: every state change is a single statement or transaction, and queue
//! transitions are conditional updates (`... WHERE status = 'pending'`), so two
//! processes can never both move an entry out of the same state.
//!
//! One module per table, each with its column list beside its SQL: to add a
//! column, add a step to `migrations.rs` and change that table's module only.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, Row};

use crate::error::{Error, Result};

mod accounts;
mod agents;
mod audit;
mod cache;
mod migrations;
mod outbox;
mod policy;
mod queue;
mod sessions;
mod settings;

pub(crate) use accounts::AccountRow;
pub use cache::CROSS_PROCESS_DELAY;
pub(crate) use cache::{HotCache, KeyedAgent};
pub(crate) use outbox::OutboxRow;
pub(crate) use policy::NewGrant;
pub(crate) use queue::{Decision, Edit, Inserted, NewEntry};

pub(crate) struct Store {
    conn: Mutex<Connection>,
    /// Bumped after each use of the connection that changed rows, once the
    /// change is committed, so that the [`HotCache`] drops what it holds before
    /// its next answer, even within the request that made the change.
    writes: Arc<AtomicU64>,
}

/// The store's connection, held for one method. Dropping it counts the write,
/// if there was one; by then any transaction of the method has ended.
struct ConnGuard<'a> {
    conn: MutexGuard<'a, Connection>,
    changes_before: u64,
    writes: &'a AtomicU64,
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        if self.conn.total_changes() != self.changes_before {
            self.writes.fetch_add(1, Ordering::Release);
        }
    }
}

/// Database failures are internal errors: their details are logged, not shown.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(anyhow::Error::new(e).context("database operation failed"))
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static, what: &'static str) -> Error {
    Error::Internal(anyhow::Error::new(e).context(what))
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn =
            Connection::open(path).map_err(|e| internal(e, "failed to open the database"))?;
        restrict_permissions(path);
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL lets the CLI and the server use the file at once; NORMAL sync in WAL
        // mode never corrupts the file and only risks the last commits on power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let store = Store {
            conn: Mutex::new(conn),
            writes: Arc::new(AtomicU64::new(0)),
        };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> ConnGuard<'_> {
        // A panic while holding the lock cannot leave SQLite half-written (each
        // statement is atomic), so a poisoned lock is safe to keep using.
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        ConnGuard {
            changes_before: conn.total_changes(),
            conn,
            writes: &self.writes,
        }
    }

    /// The counter of this store's committed writes, for a [`HotCache`] to watch.
    pub fn writes(&self) -> Arc<AtomicU64> {
        self.writes.clone()
    }
}

fn json_column<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// The database holds key digests and the admin password hash: only its owner reads it.
#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::agent::Agent;

    pub(in crate::store) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    /// A pending entry with no requests.
    pub(in crate::store) fn entry<'a>(id: &'a str, agent: &'a Agent) -> NewEntry<'a> {
        NewEntry {
            id,
            agent,
            service: "github",
            account: "me",
            account_id: 1,
            comment: "c",
            requests: &[],
            now: "t",
            recent_since: "t",
        }
    }
}
