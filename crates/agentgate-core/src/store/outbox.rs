//! The `outbox` table: notifications to agents' webhooks, written with the
//! queue transition they announce and delivered with leases.

use rusqlite::{OptionalExtension, Row, params};

use super::Store;
use crate::error::Result;

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

impl Store {
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
}
