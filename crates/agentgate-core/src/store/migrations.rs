//! The schema, as the list of steps that build it. Each step upgrades the
//! schema by one version; `PRAGMA user_version` records how many have run, so
//! any earlier database is brought up to date on open.

use super::Store;
use crate::error::{Error, Result};

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
    // 9: the account an entry was submitted for, by its id (never reused), so
    // that an entry never runs against another account added later under the
    // same name. Existing entries take the account of that name now.
    "ALTER TABLE queue ADD COLUMN account_id INTEGER;
     UPDATE queue SET account_id =
        (SELECT a.id FROM accounts a WHERE a.service = queue.service AND a.name = queue.account_name);",
    // 10: approvals bound to what was shown, and the human's edits. `digest`
    // is the SHA-256 of the canonical requests (NULL for older rows: computed
    // when read); an edit keeps the agent's own requests in
    // `original_requests`. The audit log records the digest of each
    // transition, and what an edit changed.
    "ALTER TABLE queue ADD COLUMN digest TEXT;
     ALTER TABLE queue ADD COLUMN original_requests TEXT;
     ALTER TABLE queue ADD COLUMN edited_at TEXT;
     ALTER TABLE queue ADD COLUMN edited_by TEXT;
     CREATE TRIGGER queue_version_on_edit AFTER UPDATE OF requests ON queue
     BEGIN UPDATE queue_version SET n = n + 1; END;
     ALTER TABLE audit ADD COLUMN digest TEXT;
     ALTER TABLE audit ADD COLUMN detail TEXT;",
    // 11: refused and failed reads are counted per agent, status and minute
    // instead of logged one by one.
    "ALTER TABLE audit ADD COLUMN count INTEGER;",
    // 12: grants scoped to a method and a path pattern (NULL: any), and the
    // queue entry whose approval made one.
    "ALTER TABLE grants ADD COLUMN method TEXT;
     ALTER TABLE grants ADD COLUMN path TEXT;
     ALTER TABLE grants ADD COLUMN entry_id TEXT;",
];

impl Store {
    pub(super) fn migrate(&self) -> Result<()> {
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
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::audit::{AuditFilter, AuditRecord};

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
}
