//! The `agents` table: names, key digests, and each agent's own switches.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, is_unique_violation};
use crate::agent::Agent;
use crate::error::{Error, Result};

/// The columns [`agent_from_row`] reads, in its order (a macro, so that
/// `concat!` builds each query at compile time).
macro_rules! agent_columns {
    () => {
        "id, name, key_hint, enabled, created_at, raw_responses, trusted, webhook_url, webhook_on_approved"
    };
}

impl Store {
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

    /// The agent of that id, if it was not revoked.
    pub fn agent_by_id(&self, id: i64) -> Result<Option<Agent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = ?1"
        ))?;
        Ok(stmt.query_row([id], agent_from_row).optional()?)
    }

    pub fn agent_by_name(&self, name: &str) -> Result<Option<Agent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE name = ?1"
        ))?;
        Ok(stmt.query_row([name], agent_from_row).optional()?)
    }

    pub fn agents(&self) -> Result<Vec<Agent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents ORDER BY name"
        ))?;
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
}

/// Looks an agent up by key digest through the unique index: the cost does not
/// grow with the number of keys. Returns the stored digest too, for the caller's
/// constant-time comparison.
pub(super) fn select_agent_by_digest(
    conn: &Connection,
    digest: &[u8],
) -> Result<Option<(Agent, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        agent_columns!(),
        ", key_digest FROM agents WHERE key_digest = ?1"
    ))?;
    Ok(stmt
        .query_row([digest], |r| {
            Ok((agent_from_row(r)?, r.get::<_, Vec<u8>>(9)?))
        })
        .optional()?)
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

#[cfg(test)]
mod tests {
    use super::super::tests::store;

    #[test]
    fn revoked_agent_ids_are_never_reused() {
        let (_d, s) = store();
        let a = s.insert_agent("a", b"1", "h", "t").unwrap();
        assert!(s.delete_agent("a").unwrap());
        let b = s.insert_agent("b", b"2", "h", "t").unwrap();
        assert_ne!(a.id, b.id);
    }
}
