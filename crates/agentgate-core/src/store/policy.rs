//! Policy columns and the `grants` table: trusted agents, each account's access
//! list and ordered rules, and time-boxed grants.

use rusqlite::params;

use super::{Store, internal};
use crate::error::Result;
use crate::policy::{AccessMode, Rule};

pub(crate) struct GrantRow {
    pub id: i64,
    pub agent_id: i64,
    pub service: String,
    pub account: String,
    pub expires_at: String,
}

impl Store {
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
}
