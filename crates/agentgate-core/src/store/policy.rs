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
    pub method: Option<String>,
    pub path: Option<String>,
    pub entry_id: Option<String>,
    pub expires_at: String,
    pub created_at: String,
}

/// A grant to store.
pub(crate) struct NewGrant<'a> {
    pub agent_id: i64,
    pub service: &'a str,
    pub account: &'a str,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub entry_id: Option<&'a str>,
    pub expires_at: &'a str,
}

const GRANT_COLUMNS: &str =
    "id, agent_id, service, account_name, method, path, entry_id, expires_at, created_at";

fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        service: r.get(2)?,
        account: r.get(3)?,
        method: r.get(4)?,
        path: r.get(5)?,
        entry_id: r.get(6)?,
        expires_at: r.get(7)?,
        created_at: r.get(8)?,
    })
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

    /// Changes the account's rules with `change`, given the rules as they
    /// are now, in one transaction, so that two admins' edits never lose one
    /// another. `None` when there is no such account.
    pub fn update_account_rules(
        &self,
        service: &str,
        name: &str,
        change: impl FnOnce(Vec<Rule>) -> Result<Vec<Rule>>,
    ) -> Result<Option<Vec<Rule>>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT rules FROM accounts WHERE service = ?1 AND name = ?2",
                params![service, name],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some(current) = current else {
            return Ok(None);
        };
        let current: Vec<Rule> =
            serde_json::from_str(&current).map_err(|e| internal(e, "decode rules"))?;
        let rules = change(current)?;
        let json = serde_json::to_string(&rules).map_err(|e| internal(e, "serialize rules"))?;
        tx.execute(
            "UPDATE accounts SET rules = ?3 WHERE service = ?1 AND name = ?2",
            params![service, name, json],
        )?;
        tx.commit()?;
        Ok(Some(rules))
    }

    /// Stores grants, all or none: none when together they would make more
    /// than `max_live` live. Expired ones are dropped first. The ids, or
    /// `None` when the cap would be passed.
    pub fn insert_grants(
        &self,
        grants: &[NewGrant<'_>],
        now: &str,
        max_live: usize,
    ) -> Result<Option<Vec<i64>>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM grants WHERE expires_at <= ?1", [now])?;
        let live: usize = tx.query_row("SELECT COUNT(*) FROM grants", [], |r| r.get(0))?;
        if live + grants.len() > max_live {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(grants.len());
        for g in grants {
            tx.execute(
                "INSERT INTO grants (agent_id, service, account_name, method, path, entry_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![g.agent_id, g.service, g.account, g.method, g.path, g.entry_id, g.expires_at, now],
            )?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit()?;
        Ok(Some(ids))
    }

    /// Ends every grant on an account (it was removed: one added later
    /// under the name is another account).
    pub fn delete_account_grants(&self, service: &str, account: &str) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM grants WHERE service = ?1 AND account_name = ?2",
            params![service, account],
        )?)
    }

    /// Ends an agent's grants, and takes it out of every access list and
    /// rule: a rule that named only it is removed whole, since a rule with
    /// no agents would apply to every agent.
    pub fn forget_agent(&self, agent_id: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM grants WHERE agent_id = ?1", [agent_id])?;
        let rows: Vec<(i64, String, String)> = {
            let mut stmt = tx.prepare("SELECT id, access_agents, rules FROM accounts")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, listed, rules) in rows {
            let listed: Vec<i64> =
                serde_json::from_str(&listed).map_err(|e| internal(e, "decode access list"))?;
            let rules: Vec<Rule> =
                serde_json::from_str(&rules).map_err(|e| internal(e, "decode rules"))?;
            if !listed.contains(&agent_id) && !rules.iter().any(|r| r.agents.contains(&agent_id)) {
                continue;
            }
            let listed: Vec<i64> = listed.into_iter().filter(|a| *a != agent_id).collect();
            let rules: Vec<Rule> = rules
                .into_iter()
                .filter_map(|mut r| {
                    if !r.agents.contains(&agent_id) {
                        return Some(r);
                    }
                    r.agents.retain(|a| *a != agent_id);
                    (!r.agents.is_empty()).then_some(r)
                })
                .collect();
            tx.execute(
                "UPDATE accounts SET access_agents = ?2, rules = ?3 WHERE id = ?1",
                params![
                    id,
                    serde_json::to_string(&listed)
                        .map_err(|e| internal(e, "serialize access list"))?,
                    serde_json::to_string(&rules).map_err(|e| internal(e, "serialize rules"))?
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The agent's live grants on an account.
    pub fn live_grants_for(
        &self,
        agent_id: i64,
        service: &str,
        account: &str,
        now: &str,
    ) -> Result<Vec<GrantRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE agent_id = ?1 AND service = ?2 AND account_name = ?3 AND expires_at > ?4"
        ))?;
        let rows = stmt.query_map(params![agent_id, service, account, now], grant_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Live grants, soonest to expire first.
    pub fn live_grants(&self, now: &str) -> Result<Vec<GrantRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE expires_at > ?1 ORDER BY expires_at, id"
        ))?;
        let rows = stmt.query_map([now], grant_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_grant(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM grants WHERE id = ?1", [id])?
            == 1)
    }
}
