//! The append-only `audit` table: reads and queue transitions.

use rusqlite::params;

use super::Store;
use crate::audit::{AuditFilter, AuditRecord};
use crate::error::Result;

/// The columns a record is written with, in the order of the insert's
/// parameters; `id` is the table's own (a macro, so that `concat!` builds each
/// query at compile time).
macro_rules! record_columns {
    () => {
        "at, kind, agent, service, account, method, path, status, latency_ms,
         entry_id, from_status, to_status, actor, surface, digest, detail, count"
    };
}

impl Store {
    pub fn insert_audit(&self, r: &AuditRecord) -> Result<()> {
        self.insert_audit_batch(std::slice::from_ref(r))
    }

    /// Inserts many records in one transaction.
    pub fn insert_audit_batch(&self, records: &[AuditRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(concat!(
                "INSERT INTO audit (",
                record_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))?;
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
                    r.surface,
                    r.digest,
                    r.detail,
                    r.count
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Audit records, newest first.
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut sql = String::from(concat!(
            "SELECT id, ",
            record_columns!(),
            " FROM audit WHERE 1 = 1"
        ));
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
                digest: r.get(15)?,
                detail: r.get(16)?,
                count: r.get(17)?,
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
}
