//! SQLite persistence. This is the only module that knows SQL.
//!
//! One database file in WAL mode, opened by the server and by CLI commands at the
//! same time: every state change is a single statement or transaction, and queue
//! transitions are conditional updates (`... WHERE status = 'pending'`), so two
//! processes can never both move an entry out of the same state.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::policy::{AccessMode, AccountPolicy, Rule};
use crate::queue::{Entry, RequestResult, Status, WriteRequest};

mod cache;
pub use cache::CROSS_PROCESS_DELAY;
pub(crate) use cache::{HotCache, KeyedAgent};

/// Each step upgrades the schema by one version; `PRAGMA user_version` records how
/// many have run, so any earlier database is brought up to date on open.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
     );
     -- AUTOINCREMENT so that a new agent never reuses a revoked agent's id and with it
     -- the revoked agent's queue entries.
     CREATE TABLE agents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        key_digest BLOB NOT NULL UNIQUE,
        key_hint TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
     );
     CREATE TABLE accounts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        service TEXT NOT NULL,
        name TEXT NOT NULL,
        base_url TEXT,
        secret_version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (service, name)
     );
     CREATE TABLE queue (
        id TEXT PRIMARY KEY,
        agent_id INTEGER NOT NULL,
        agent_name TEXT NOT NULL,
        service TEXT NOT NULL,
        account_name TEXT NOT NULL,
        comment TEXT NOT NULL,
        requests TEXT NOT NULL,
        status TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        reviewed_at TEXT,
        reviewed_by TEXT,
        started_at TEXT,
        completed_at TEXT,
        rejection_reason TEXT,
        results TEXT NOT NULL DEFAULT '[]'
     );
     CREATE INDEX queue_by_status ON queue (status, submitted_at);
     CREATE INDEX queue_by_agent ON queue (agent_id, submitted_at);
     CREATE TABLE admin_sessions (
        token_digest BLOB PRIMARY KEY,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
     );",
    // 2: accounts whose refresh was refused carry the reason until reconnected.
    "ALTER TABLE accounts ADD COLUMN needs_reconnect TEXT;",
    // 3: agents that want services' answers as sent, never compacted.
    "ALTER TABLE agents ADD COLUMN raw_responses INTEGER NOT NULL DEFAULT 0;",
    // 4: access control and policy. The ordered rules and the access list live on
    // the account row (reads need no extra query); agent ids, never reused, name
    // the agents.
    "ALTER TABLE accounts ADD COLUMN access_mode TEXT NOT NULL DEFAULT 'all';
     ALTER TABLE accounts ADD COLUMN access_agents TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE accounts ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE agents ADD COLUMN trusted INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE grants (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id INTEGER NOT NULL,
        service TEXT NOT NULL,
        account_name TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL
     );
     CREATE INDEX grants_by_account ON grants (agent_id, service, account_name, expires_at);",
    // 5: the append-only audit log. Rows are never changed; only retention
    // removes old ones.
    "CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT,
        service TEXT,
        account TEXT,
        method TEXT,
        path TEXT,
        status INTEGER,
        latency_ms REAL,
        entry_id TEXT,
        from_status TEXT,
        to_status TEXT,
        actor TEXT,
        surface TEXT
     );
     CREATE INDEX audit_by_time ON audit (at);
     CREATE INDEX audit_by_agent ON audit (agent, at);
     CREATE TRIGGER audit_is_append_only BEFORE UPDATE ON audit
     BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;",
    // 6: webhooks to agents. An outbox row is written in the same transaction as
    // the queue transition it announces, so a crash loses no notification.
    "ALTER TABLE agents ADD COLUMN webhook_url TEXT;
     ALTER TABLE agents ADD COLUMN webhook_on_approved INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entry_id TEXT NOT NULL,
        agent_id INTEGER NOT NULL,
        event TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        delivered_at TEXT,
        created_at TEXT NOT NULL
     );
     CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
     CREATE INDEX outbox_by_entry ON outbox (entry_id);
     CREATE INDEX outbox_by_agent ON outbox (agent_id, status);",
    // 7: who each account is, as the service said at its last test, so the admin
    // sees it without asking the service on every page view.
    "ALTER TABLE accounts ADD COLUMN identity TEXT;
     ALTER TABLE accounts ADD COLUMN tested_at TEXT;
     ALTER TABLE accounts ADD COLUMN test_error TEXT;",
    // 8: a counter of queue changes, kept by triggers so that it moves whichever
    // process (server, CLI) made the change. Open admin pages poll it every few
    // seconds; it replaces a count and max over the whole queue table.
    "CREATE TABLE queue_version (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
     INSERT INTO queue_version (id, n) VALUES (1, 0);
     CREATE TRIGGER queue_version_on_insert AFTER INSERT ON queue
     BEGIN UPDATE queue_version SET n = n + 1; END;
     CREATE TRIGGER queue_version_on_transition AFTER UPDATE OF status ON queue
     BEGIN UPDATE queue_version SET n = n + 1; END;
     CREATE TRIGGER queue_version_on_delete AFTER DELETE ON queue
     BEGIN UPDATE queue_version SET n = n + 1; END;",
];

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

#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, enough to tell keys apart in a list.
    pub key_hint: String,
    pub enabled: bool,
    pub created_at: String,
    /// Whether this agent gets services' answers as sent rather than compacted.
    pub raw_responses: bool,
    /// Whether all of this agent's writes are approved automatically.
    pub trusted: bool,
    /// Where outcomes of this agent's writes are POSTed.
    pub webhook_url: Option<String>,
    /// Whether approvals are announced too, not only final outcomes.
    pub webhook_on_approved: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AccountRow {
    /// Never reused, so (id, secret_version) names one version of one account's secret
    /// even across a remove and re-add under the same name.
    pub id: i64,
    pub service: String,
    pub name: String,
    pub base_url: Option<String>,
    pub secret_version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub needs_reconnect: Option<String>,
    /// Who may use the account and its endpoint rules, decoded once per row.
    pub policy: AccountPolicy,
    /// The API base the account's requests go to (its own base URL or the
    /// service's default), parsed once per row; `None` if neither parses, which
    /// the caller reports.
    pub api_base: Option<url::Url>,
    /// The account's name at the service, from the last successful test.
    pub identity: Option<String>,
    pub tested_at: Option<String>,
    /// Why the last test failed, if it did.
    pub test_error: Option<String>,
}

/// One audit record: a read or a queue transition.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: String,
    /// "read" or "transition".
    pub kind: String,
    pub agent: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub latency_ms: Option<f64>,
    pub entry_id: Option<String>,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    /// Who acted: an agent, "admin", "rule", "system".
    pub actor: Option<String>,
    /// Through which surface: agent, cli, web-admin, rule, system (later
    /// notification and window).
    pub surface: Option<String>,
}

/// Which audit records to list; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub agent: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// A notification to an agent's webhook, waiting, sent or given up.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub entry_id: String,
    pub agent_id: i64,
    pub event: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

const OUTBOX_COLUMNS: &str =
    "id, entry_id, agent_id, event, status, attempts, last_error, delivered_at";

fn outbox_from_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        entry_id: r.get(1)?,
        agent_id: r.get(2)?,
        event: r.get(3)?,
        status: r.get(4)?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
        delivered_at: r.get(7)?,
    })
}

pub(crate) struct GrantRow {
    pub id: i64,
    pub agent_id: i64,
    pub service: String,
    pub account: String,
    pub expires_at: String,
}

/// Which queue entries to list; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub status: Option<Status>,
    pub agent_id: Option<i64>,
    pub agent_name: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    pub limit: Option<usize>,
}

pub(crate) struct NewEntry<'a> {
    pub id: &'a str,
    pub agent: &'a Agent,
    pub service: &'a str,
    pub account: &'a str,
    pub comment: &'a str,
    pub requests: &'a [WriteRequest],
    pub now: &'a str,
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

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(Error::Internal(anyhow::anyhow!(
                "the database has schema version {version}, newer than this agentgate knows ({}); upgrade agentgate",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    #[cfg(test)]
    pub fn schema_version(&self) -> Result<usize> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    // ----- settings -----

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        select_setting(&self.conn(), key)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Stores `value` unless the key already has one, and returns whichever value
    /// is stored afterwards. Two processes racing here agree on one value.
    pub fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![key, value],
        )?;
        Ok(
            conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })?,
        )
    }

    // ----- agents -----

    pub fn insert_agent(&self, name: &str, digest: &[u8], hint: &str, now: &str) -> Result<Agent> {
        let conn = self.conn();
        let res = conn.execute(
            "INSERT INTO agents (name, key_digest, key_hint, enabled, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
            params![name, digest, hint, now],
        );
        match res {
            Ok(_) => Ok(Agent {
                id: conn.last_insert_rowid(),
                name: name.to_string(),
                key_hint: hint.to_string(),
                enabled: true,
                created_at: now.to_string(),
                raw_responses: false,
                trusted: false,
                webhook_url: None,
                webhook_on_approved: false,
            }),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "an agent named {name:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub fn agent_by_name(&self, name: &str) -> Result<Option<Agent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, key_hint, enabled, created_at, raw_responses, trusted, webhook_url, webhook_on_approved FROM agents WHERE name = ?1",
        )?;
        Ok(stmt.query_row([name], agent_from_row).optional()?)
    }

    pub fn agents(&self) -> Result<Vec<Agent>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, name, key_hint, enabled, created_at, raw_responses, trusted, webhook_url, webhook_on_approved FROM agents ORDER BY name")?;
        let rows = stmt.query_map([], agent_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Returns whether an agent of that name existed.
    pub fn set_agent_enabled(&self, name: &str, enabled: bool) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE agents SET enabled = ?2 WHERE name = ?1",
            params![name, enabled],
        )? == 1)
    }

    pub fn set_agent_trusted(&self, name: &str, trusted: bool) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE agents SET trusted = ?2 WHERE name = ?1",
            params![name, trusted],
        )? == 1)
    }

    pub fn set_account_access(
        &self,
        service: &str,
        name: &str,
        mode: AccessMode,
        agents: &[i64],
    ) -> Result<bool> {
        let agents =
            serde_json::to_string(agents).map_err(|e| internal(e, "serialize access list"))?;
        Ok(self.conn().execute(
            "UPDATE accounts SET access_mode = ?3, access_agents = ?4 WHERE service = ?1 AND name = ?2",
            params![service, name, mode.as_str(), agents],
        )? == 1)
    }

    pub fn set_account_rules(&self, service: &str, name: &str, rules: &[Rule]) -> Result<bool> {
        let rules = serde_json::to_string(rules).map_err(|e| internal(e, "serialize rules"))?;
        Ok(self.conn().execute(
            "UPDATE accounts SET rules = ?3 WHERE service = ?1 AND name = ?2",
            params![service, name, rules],
        )? == 1)
    }

    pub fn insert_grant(
        &self,
        agent_id: i64,
        service: &str,
        account: &str,
        expires_at: &str,
        now: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute("DELETE FROM grants WHERE expires_at <= ?1", [now])?;
        conn.execute(
            "INSERT INTO grants (agent_id, service, account_name, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![agent_id, service, account, expires_at, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The latest expiry of the agent's live grants on an account.
    pub fn grant_until(
        &self,
        agent_id: i64,
        service: &str,
        account: &str,
        now: &str,
    ) -> Result<Option<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT MAX(expires_at) FROM grants WHERE agent_id = ?1 AND service = ?2 AND account_name = ?3 AND expires_at > ?4",
        )?;
        Ok(stmt.query_row(params![agent_id, service, account, now], |r| r.get(0))?)
    }

    /// Live grants, soonest to expire first.
    pub fn live_grants(&self, now: &str) -> Result<Vec<GrantRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, agent_id, service, account_name, expires_at FROM grants WHERE expires_at > ?1 ORDER BY expires_at",
        )?;
        let rows = stmt.query_map([now], |r| {
            Ok(GrantRow {
                id: r.get(0)?,
                agent_id: r.get(1)?,
                service: r.get(2)?,
                account: r.get(3)?,
                expires_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_grant(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM grants WHERE id = ?1", [id])?
            == 1)
    }

    pub fn set_agent_raw(&self, name: &str, raw: bool) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE agents SET raw_responses = ?2 WHERE name = ?1",
            params![name, raw],
        )? == 1)
    }

    pub fn rename_agent(&self, name: &str, new_name: &str) -> Result<bool> {
        match self.conn().execute(
            "UPDATE agents SET name = ?2 WHERE name = ?1",
            params![name, new_name],
        ) {
            Ok(n) => Ok(n == 1),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "an agent named {new_name:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the agent and with it its key; its queue entries stay as history.
    pub fn delete_agent(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM agents WHERE name = ?1", [name])?
            == 1)
    }

    // ----- service accounts -----

    pub fn insert_account(
        &self,
        service: &str,
        name: &str,
        base_url: Option<&str>,
        now: &str,
    ) -> Result<()> {
        match self.conn().execute(
            "INSERT INTO accounts (service, name, base_url, secret_version, created_at, updated_at)
             VALUES (?1, ?2, ?3, 1, ?4, ?4)",
            params![service, name, base_url, now],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "a {service} account named {name:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub fn account(&self, service: &str, name: &str) -> Result<Option<AccountRow>> {
        select_account(&self.conn(), service, name)
    }

    pub fn accounts(&self) -> Result<Vec<AccountRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, service, name, base_url, secret_version, created_at, updated_at, needs_reconnect,
                    access_mode, access_agents, rules, identity, tested_at, test_error
             FROM accounts ORDER BY service, name",
        )?;
        let rows = stmt.query_map([], account_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Changes the base URL and, when the secret was replaced, bumps its version so
    /// that every process drops its cached copy.
    pub fn update_account(
        &self,
        service: &str,
        name: &str,
        base_url: Option<Option<&str>>,
        secret_changed: bool,
        now: &str,
    ) -> Result<bool> {
        let conn = self.conn();
        let n = match base_url {
            Some(url) => conn.execute(
                "UPDATE accounts SET base_url = ?3, secret_version = secret_version + ?4, updated_at = ?5
                 WHERE service = ?1 AND name = ?2",
                params![service, name, url, secret_changed as i64, now],
            )?,
            None => conn.execute(
                "UPDATE accounts SET secret_version = secret_version + ?3, updated_at = ?4
                 WHERE service = ?1 AND name = ?2",
                params![service, name, secret_changed as i64, now],
            )?,
        };
        Ok(n == 1)
    }

    pub fn set_needs_reconnect(
        &self,
        service: &str,
        name: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET needs_reconnect = ?3 WHERE service = ?1 AND name = ?2",
            params![service, name, reason],
        )?;
        Ok(())
    }

    /// Records the outcome of an account test. A failed test keeps the identity
    /// last seen, so the admin still knows which account it was.
    pub fn record_account_test(
        &self,
        service: &str,
        name: &str,
        identity: Option<&str>,
        error: Option<&str>,
        now: &str,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET identity = COALESCE(?3, identity), test_error = ?4, tested_at = ?5
             WHERE service = ?1 AND name = ?2",
            params![service, name, identity, error, now],
        )?;
        Ok(())
    }

    pub fn count_with_status(&self, status: Status) -> Result<usize> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT count(*) FROM queue WHERE status = ?1")?;
        let n: i64 = stmt.query_row([status.as_str()], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// A number that changes with every new entry, transition and deletion in
    /// the queue, made by any process; one row read.
    pub fn queue_stamp(&self) -> Result<i64> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT n FROM queue_version WHERE id = 1")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    pub fn delete_account(&self, service: &str, name: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM accounts WHERE service = ?1 AND name = ?2",
            params![service, name],
        )? == 1)
    }

    // ----- the write queue -----

    /// Inserts a new pending entry; `false` if the id is already taken.
    pub fn insert_entry(&self, e: &NewEntry<'_>) -> Result<bool> {
        let requests =
            serde_json::to_string(e.requests).map_err(|e| internal(e, "serialize requests"))?;
        match self.conn().execute(
            "INSERT INTO queue (id, agent_id, agent_name, service, account_name, comment, requests, status, submitted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
            params![e.id, e.agent.id, e.agent.name, e.service, e.account, e.comment, requests, e.now],
        ) {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    pub fn entry(&self, id: &str) -> Result<Option<Entry>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM queue WHERE id = ?1"))?;
        Ok(stmt.query_row([id], entry_from_row).optional()?)
    }

    pub fn entries(&self, f: &EntryFilter) -> Result<Vec<Entry>> {
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM queue WHERE 1 = 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut add = |clause: &str, v: Box<dyn rusqlite::ToSql>| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} = ?{}", args.len()));
        };
        if let Some(s) = f.status {
            add("status", Box::new(s.as_str()));
        }
        if let Some(a) = f.agent_id {
            add("agent_id", Box::new(a));
        }
        if let Some(a) = &f.agent_name {
            add("agent_name", Box::new(a.clone()));
        }
        if let Some(s) = &f.service {
            add("service", Box::new(s.clone()));
        }
        if let Some(a) = &f.account {
            add("account_name", Box::new(a.clone()));
        }
        sql.push_str(" ORDER BY submitted_at DESC, rowid DESC");
        if let Some(limit) = f.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), entry_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves one entry from `from` to `to` and sets the given columns, in one
    /// conditional statement. Returns `false` when the entry was not in `from`
    /// (or, with `agent_id`, does not belong to that agent): someone else decided first.
    pub fn transition(
        &self,
        id: &str,
        from: Status,
        to: Status,
        agent_id: Option<i64>,
        set: &[(&'static str, &dyn rusqlite::ToSql)],
        now: &str,
    ) -> Result<bool> {
        let mut sql = String::from("UPDATE queue SET status = ?1");
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&to as &dyn rusqlite::ToSql];
        for (column, value) in set {
            args.push(*value);
            sql.push_str(&format!(", {column} = ?{}", args.len()));
        }
        args.push(&id);
        sql.push_str(&format!(" WHERE id = ?{}", args.len()));
        args.push(&from);
        sql.push_str(&format!(" AND status = ?{}", args.len()));
        if let Some(agent_id) = &agent_id {
            args.push(agent_id);
            sql.push_str(&format!(" AND agent_id = ?{}", args.len()));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let moved = tx.execute(&sql, args.as_slice())? == 1;
        // Final states (and, for agents that asked, approval) are announced to the
        // agent's webhook: the outbox row commits with the transition or not at all.
        if moved && to.notifies() {
            tx.execute(
                "INSERT INTO outbox (entry_id, agent_id, event, status, attempts, next_attempt_at, created_at)
                 SELECT q.id, q.agent_id, ?2, 'pending', 0, ?3, ?3
                 FROM queue q JOIN agents a ON a.id = q.agent_id
                 WHERE q.id = ?1 AND a.webhook_url IS NOT NULL
                   AND (?2 <> 'approved' OR a.webhook_on_approved = 1)",
                params![id, to.as_str(), now],
            )?;
        }
        tx.commit()?;
        Ok(moved)
    }

    /// Saves the results so far of an executing entry, so that a crash mid-batch
    /// still shows which requests ran.
    pub fn save_results(&self, id: &str, results: &[RequestResult]) -> Result<()> {
        let json = serde_json::to_string(results).map_err(|e| internal(e, "serialize results"))?;
        self.conn().execute(
            "UPDATE queue SET results = ?2 WHERE id = ?1 AND status = 'executing'",
            params![id, json],
        )?;
        Ok(())
    }

    /// Pending entries submitted at or before `cutoff`.
    pub fn pending_before(&self, cutoff: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id FROM queue WHERE status = 'pending' AND submitted_at <= ?1 ORDER BY submitted_at",
        )?;
        let rows = stmt.query_map([cutoff], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn ids_with_status(&self, status: Status) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id FROM queue WHERE status = ?1 ORDER BY submitted_at")?;
        let rows = stmt.query_map([status.as_str()], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ----- audit -----

    pub fn insert_audit(&self, r: &AuditRecord) -> Result<()> {
        self.insert_audit_batch(std::slice::from_ref(r))
    }

    /// Inserts many records in one transaction.
    pub fn insert_audit_batch(&self, records: &[AuditRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (at, kind, agent, service, account, method, path, status, latency_ms,
                                    entry_id, from_status, to_status, actor, surface)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for r in records {
                stmt.execute(params![
                    r.at,
                    r.kind,
                    r.agent,
                    r.service,
                    r.account,
                    r.method,
                    r.path,
                    r.status,
                    r.latency_ms,
                    r.entry_id,
                    r.from_status,
                    r.to_status,
                    r.actor,
                    r.surface
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Audit records, newest first.
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut sql = String::from(
            "SELECT id, at, kind, agent, service, account, method, path, status, latency_ms,
                    entry_id, from_status, to_status, actor, surface FROM audit WHERE 1 = 1",
        );
        let mut args: Vec<String> = Vec::new();
        for (clause, value) in [
            ("kind = ?", &f.kind),
            ("agent = ?", &f.agent),
            ("service = ?", &f.service),
            ("account = ?", &f.account),
            ("at >= ?", &f.since),
            ("at < ?", &f.until),
        ] {
            if let Some(v) = value {
                args.push(v.clone());
                sql.push_str(&format!(" AND {}{}", clause, args.len()));
            }
        }
        // By time: read records arrive in batches, so ids are not in time order.
        sql.push_str(" ORDER BY at DESC, id DESC");
        if let Some(limit) = f.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(AuditRecord {
                id: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                agent: r.get(3)?,
                service: r.get(4)?,
                account: r.get(5)?,
                method: r.get(6)?,
                path: r.get(7)?,
                status: r.get(8)?,
                latency_ms: r.get(9)?,
                entry_id: r.get(10)?,
                from_status: r.get(11)?,
                to_status: r.get(12)?,
                actor: r.get(13)?,
                surface: r.get(14)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes audit records older than `cutoff` (retention); returns how many.
    pub fn prune_audit(&self, cutoff: &str) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM audit WHERE at < ?1", [cutoff])?)
    }

    // ----- webhook outbox -----

    pub fn set_agent_webhook(
        &self,
        name: &str,
        url: Option<Option<&str>>,
        on_approved: Option<bool>,
    ) -> Result<bool> {
        let conn = self.conn();
        let mut changed =
            conn.query_row("SELECT COUNT(*) FROM agents WHERE name = ?1", [name], |r| {
                r.get::<_, i64>(0)
            })? == 1;
        if let Some(url) = url {
            changed &= conn.execute(
                "UPDATE agents SET webhook_url = ?2 WHERE name = ?1",
                params![name, url],
            )? == 1;
        }
        if let Some(on) = on_approved {
            changed &= conn.execute(
                "UPDATE agents SET webhook_on_approved = ?2 WHERE name = ?1",
                params![name, on],
            )? == 1;
        }
        Ok(changed)
    }

    pub fn due_outbox(&self, now: &str, limit: usize) -> Result<Vec<OutboxRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now, limit as i64], outbox_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Reserves a due row for one sender until `lease_until`; `false` if another
    /// sender took it first.
    pub fn claim_outbox(&self, id: i64, now: &str, lease_until: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE outbox SET next_attempt_at = ?3 WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?2",
            params![id, now, lease_until],
        )? == 1)
    }

    pub fn outbox_delivered(&self, id: i64, attempts: i64, now: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET status = 'delivered', attempts = ?2, delivered_at = ?3, last_error = NULL WHERE id = ?1",
            params![id, attempts, now],
        )?;
        Ok(())
    }

    pub fn outbox_failed(&self, id: i64, attempts: i64, error: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET status = 'failed', attempts = ?2, last_error = ?3 WHERE id = ?1",
            params![id, attempts, error],
        )?;
        Ok(())
    }

    pub fn outbox_retry(&self, id: i64, attempts: i64, error: &str, next: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET attempts = ?2, last_error = ?3, next_attempt_at = ?4 WHERE id = ?1",
            params![id, attempts, error, next],
        )?;
        Ok(())
    }

    /// Makes a notification due again now (a retry the admin asked for).
    pub fn outbox_reset(&self, id: i64, now: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?2 WHERE id = ?1 AND status <> 'delivered'",
            params![id, now],
        )?;
        Ok(())
    }

    pub fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1"
        ))?;
        Ok(stmt.query_row([id], outbox_from_row).optional()?)
    }

    pub fn outbox_for_entry(&self, entry_id: &str) -> Result<Option<OutboxRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE entry_id = ?1 ORDER BY id DESC LIMIT 1"
        ))?;
        Ok(stmt.query_row([entry_id], outbox_from_row).optional()?)
    }

    pub fn outbox_list(
        &self,
        agent_id: Option<i64>,
        status: Option<&str>,
    ) -> Result<Vec<OutboxRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox
             WHERE (?1 IS NULL OR agent_id = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY id DESC LIMIT 500"
        ))?;
        let rows = stmt.query_map(params![agent_id, status], outbox_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ----- admin sessions -----

    pub fn insert_session(&self, digest: &[u8], now: &str, expires_at: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute("DELETE FROM admin_sessions WHERE expires_at <= ?1", [now])?;
        conn.execute(
            "INSERT INTO admin_sessions (token_digest, created_at, expires_at) VALUES (?1, ?2, ?3)",
            params![digest, now, expires_at],
        )?;
        Ok(())
    }

    pub fn session_valid(&self, digest: &[u8], now: &str) -> Result<bool> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM admin_sessions WHERE token_digest = ?1 AND expires_at > ?2",
        )?;
        Ok(stmt.exists(params![digest, now])?)
    }

    pub fn delete_session(&self, digest: &[u8]) -> Result<()> {
        self.conn().execute(
            "DELETE FROM admin_sessions WHERE token_digest = ?1",
            [digest],
        )?;
        Ok(())
    }

    pub fn delete_all_sessions(&self) -> Result<()> {
        self.conn().execute("DELETE FROM admin_sessions", [])?;
        Ok(())
    }
}

impl rusqlite::ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

const ENTRY_COLUMNS: &str =
    "id, agent_id, agent_name, service, account_name, comment, requests, status,
    submitted_at, reviewed_at, reviewed_by, started_at, completed_at, rejection_reason, results";

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    fn json<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
        let text: String = r.get(i)?;
        serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    }
    let status: String = r.get(7)?;
    Ok(Entry {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        agent_name: r.get(2)?,
        service: r.get(3)?,
        account_name: r.get(4)?,
        comment: r.get(5)?,
        requests: json(r, 6)?,
        status: status.parse().map_err(|e: Error| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
        })?,
        submitted_at: r.get(8)?,
        reviewed_at: r.get(9)?,
        reviewed_by: r.get(10)?,
        started_at: r.get(11)?,
        completed_at: r.get(12)?,
        rejection_reason: r.get(13)?,
        results: json(r, 14)?,
        notification: None,
    })
}

// ----- lookups shared by the store and the hot-path cache -----

fn select_setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?;
    Ok(stmt.query_row([key], |r| r.get(0)).optional()?)
}

/// Looks an agent up by key digest through the unique index: the cost does not
/// grow with the number of keys. Returns the stored digest too, for the caller's
/// constant-time comparison.
fn select_agent_by_digest(conn: &Connection, digest: &[u8]) -> Result<Option<(Agent, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, key_hint, enabled, created_at, raw_responses, trusted, webhook_url, webhook_on_approved, key_digest FROM agents WHERE key_digest = ?1",
    )?;
    Ok(stmt
        .query_row([digest], |r| {
            Ok((agent_from_row(r)?, r.get::<_, Vec<u8>>(9)?))
        })
        .optional()?)
}

fn select_account(conn: &Connection, service: &str, name: &str) -> Result<Option<AccountRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, service, name, base_url, secret_version, created_at, updated_at, needs_reconnect,
                access_mode, access_agents, rules, identity, tested_at, test_error
         FROM accounts WHERE service = ?1 AND name = ?2",
    )?;
    Ok(stmt
        .query_row(params![service, name], account_from_row)
        .optional()?)
}

fn json_column<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn agent_from_row(r: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: r.get(0)?,
        name: r.get(1)?,
        key_hint: r.get(2)?,
        enabled: r.get(3)?,
        created_at: r.get(4)?,
        raw_responses: r.get(5)?,
        trusted: r.get(6)?,
        webhook_url: r.get(7)?,
        webhook_on_approved: r.get(8)?,
    })
}

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    let service: String = r.get(1)?;
    let base_url: Option<String> = r.get(3)?;
    let api_base = base_url
        .as_deref()
        .or_else(|| crate::services::find(&service).and_then(|d| d.default_base_url))
        .and_then(|u| url::Url::parse(u).ok());
    Ok(AccountRow {
        api_base,
        id: r.get(0)?,
        service,
        name: r.get(2)?,
        base_url,
        secret_version: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        needs_reconnect: r.get(7)?,
        policy: AccountPolicy {
            mode: {
                let s: String = r.get(8)?;
                AccessMode::parse(&s).unwrap_or(AccessMode::Allowlist)
            },
            listed: json_column(r, 9)?,
            rules: json_column(r, 10)?,
        },
        identity: r.get(11)?,
        tested_at: r.get(12)?,
        test_error: r.get(13)?,
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
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    /// A pending entry with no requests.
    fn entry<'a>(id: &'a str, agent: &'a Agent) -> NewEntry<'a> {
        NewEntry {
            id,
            agent,
            service: "github",
            account: "me",
            comment: "c",
            requests: &[],
            now: "t",
        }
    }

    #[test]
    fn migrations_run_once_and_reopen_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        s.set_setting("k", "v").unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.setting("k").unwrap().as_deref(), Some("v"));
    }

    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO accounts (service, name, base_url, secret_version, created_at, updated_at)
             VALUES ('github', 'old', NULL, 3, 't', 't')",
            [],
        )
        .unwrap();
        drop(c);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        let row = s.account("github", "old").unwrap().unwrap();
        assert_eq!(row.secret_version, 3, "existing rows survive");
        assert_eq!(row.needs_reconnect, None);
        s.set_needs_reconnect("github", "old", Some("why")).unwrap();
        assert_eq!(
            s.account("github", "old")
                .unwrap()
                .unwrap()
                .needs_reconnect
                .as_deref(),
            Some("why")
        );
    }

    #[test]
    fn audit_rows_cannot_be_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = Store::open(&path).unwrap();
        s.insert_audit(&AuditRecord {
            at: "2026-01-01T00:00:00.000Z".into(),
            kind: "read".into(),
            status: Some(200),
            ..Default::default()
        })
        .unwrap();
        let err = s
            .conn()
            .execute("UPDATE audit SET status = 500", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert_eq!(
            s.audit(&AuditFilter::default()).unwrap()[0].status,
            Some(200)
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Store::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(Store::open(&path).is_err());
    }

    #[test]
    fn transition_only_moves_from_the_expected_state() {
        let (_d, s) = store();
        let agent = s.insert_agent("a", b"digest", "rms_x", "t").unwrap();
        let e = entry("q1", &agent);
        assert!(s.insert_entry(&e).unwrap());
        assert!(!s.insert_entry(&e).unwrap(), "duplicate ids are reported");
        assert!(
            s.transition("q1", Status::Pending, Status::Approved, None, &[], "t")
                .unwrap()
        );
        assert!(
            !s.transition("q1", Status::Pending, Status::Approved, None, &[], "t")
                .unwrap()
        );
        assert!(
            !s.transition(
                "q1",
                Status::Approved,
                Status::Executing,
                Some(agent.id + 1),
                &[],
                "t"
            )
            .unwrap()
        );
        assert_eq!(s.entry("q1").unwrap().unwrap().status, Status::Approved);
    }

    #[test]
    fn the_queue_stamp_moves_with_entries_and_transitions_from_any_connection() {
        let (dir, s) = store();
        let agent = s.insert_agent("a", b"digest", "rms_x", "t").unwrap();
        let start = s.queue_stamp().unwrap();
        let e = entry("q1", &agent);
        assert!(s.insert_entry(&e).unwrap());
        let submitted = s.queue_stamp().unwrap();
        assert_ne!(submitted, start);
        // Another process (the CLI) approving through its own connection.
        let other = Store::open(&dir.path().join("t.db")).unwrap();
        assert!(
            other
                .transition("q1", Status::Pending, Status::Approved, None, &[], "t")
                .unwrap()
        );
        let approved = s.queue_stamp().unwrap();
        assert_ne!(approved, submitted);
        assert!(
            s.transition("q1", Status::Approved, Status::Executing, None, &[], "t")
                .unwrap()
        );
        let executing = s.queue_stamp().unwrap();
        assert_ne!(executing, approved);
        // Saving results along the way changes the row but is no move.
        s.save_results("q1", &[]).unwrap();
        assert_eq!(s.queue_stamp().unwrap(), executing);
    }

    #[test]
    fn revoked_agent_ids_are_never_reused() {
        let (_d, s) = store();
        let a = s.insert_agent("a", b"1", "h", "t").unwrap();
        assert!(s.delete_agent("a").unwrap());
        let b = s.insert_agent("b", b"2", "h", "t").unwrap();
        assert_ne!(a.id, b.id);
    }
}
