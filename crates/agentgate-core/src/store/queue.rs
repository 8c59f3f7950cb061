//! The `queue` table: write entries and their moves between states. Every move
//! is one conditional update (`... WHERE status = 'pending'`), so two processes
//! can never both move an entry out of the same state; which columns each move
//! sets is known here only.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, internal, is_unique_violation, json_column};
use crate::agent::Agent;
use crate::error::{Error, Result};
use crate::queue::{Entry, EntryFilter, RequestResult, Status, WriteRequest};

/// A decision on a pending entry, as [`Store::decide`] records it.
pub(crate) struct Decision<'a> {
    /// Approved, rejected, withdrawn or expired.
    pub to: Status,
    /// Who decided: "cli", "admin-api", "agent:NAME", "system", ...
    pub by: &'a str,
    /// Why, for rejections, withdrawals and expiry.
    pub reason: Option<&'a str>,
    /// For a withdrawal: only this agent's own entry may move.
    pub agent_id: Option<i64>,
    /// For an approval: only while the requests still have this digest.
    pub digest: Option<&'a str>,
}

/// A human's edit of a pending entry's requests, as [`Store::edit`] records it.
pub(crate) struct Edit<'a> {
    /// The digest the human saw and edited.
    pub from_digest: &'a str,
    pub requests: &'a [WriteRequest],
    pub by: &'a str,
}

/// What [`Store::insert_entry`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    Yes,
    /// The id is another entry's: try another.
    IdTaken,
    /// The agent has as many pending entries, or pending bytes, as it may.
    OverCap,
}

pub(crate) struct NewEntry<'a> {
    pub id: &'a str,
    pub agent: &'a Agent,
    pub service: &'a str,
    pub account: &'a str,
    /// The account row's id, which a later account of the same name never has.
    pub account_id: i64,
    pub comment: &'a str,
    pub requests: &'a [WriteRequest],
    pub now: &'a str,
    /// Entries the agent submitted at or after this time count against its
    /// bytes cap whatever became of them (see
    /// [`crate::config::MAX_PENDING_BYTES_PER_AGENT`]).
    pub recent_since: &'a str,
}

impl Store {
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

    /// Inserts a new pending entry, unless its agent's pending entries would
    /// then pass the caps (checked in the same statement, so concurrent
    /// submissions cannot slip past them together). The bytes cap counts
    /// all the agent submitted in the last day too, whatever became of it:
    /// writes withdrawn, or run at once by a rule, a grant or trust, would
    /// otherwise be stored without bound. Bytes, not characters: SQLite's
    /// `length` of text counts characters.
    pub fn insert_entry(&self, e: &NewEntry<'_>) -> Result<Inserted> {
        let requests =
            serde_json::to_string(e.requests).map_err(|e| internal(e, "serialize requests"))?;
        let digest = crate::request::digest(e.requests);
        match self.conn().execute(
            "INSERT INTO queue (id, agent_id, agent_name, service, account_name, account_id, comment, requests, status, submitted_at, digest)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10
             WHERE (SELECT count(*) FROM queue WHERE agent_id = ?2 AND status = 'pending') < ?11
               AND (SELECT coalesce(sum(length(CAST(requests AS BLOB)) + length(CAST(comment AS BLOB))), 0)
                    FROM queue WHERE agent_id = ?2 AND (status = 'pending' OR submitted_at >= ?13))
                   + length(CAST(?8 AS BLOB)) + length(CAST(?7 AS BLOB)) <= ?12",
            params![e.id, e.agent.id, e.agent.name, e.service, e.account, e.account_id, e.comment, requests, e.now, digest,
                    crate::config::MAX_PENDING_PER_AGENT as i64, crate::config::MAX_PENDING_BYTES_PER_AGENT as i64,
                    e.recent_since],
        ) {
            Ok(1) => Ok(Inserted::Yes),
            Ok(_) => Ok(Inserted::OverCap),
            Err(err) if is_unique_violation(&err) => Ok(Inserted::IdTaken),
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
        let columns = if f.summaries {
            SUMMARY_COLUMNS
        } else {
            ENTRY_COLUMNS
        };
        let mut sql = format!("SELECT {columns} FROM queue WHERE 1 = 1");
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
        if let Some(before) = &f.before {
            args.push(Box::new(before.clone()));
            sql.push_str(&format!(
                " AND (submitted_at, rowid) < (SELECT submitted_at, rowid FROM queue WHERE id = ?{})",
                args.len()
            ));
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

    /// Records a decision on a pending entry: the human's approval or
    /// rejection, the agent's withdrawal (with `agent_id`, only its own entry)
    /// or the system's expiry. `false` when the entry was no longer pending (or
    /// is not that agent's): someone else decided first.
    pub fn decide(&self, id: &str, d: &Decision<'_>, now: &str) -> Result<bool> {
        if !matches!(
            d.to,
            Status::Approved | Status::Rejected | Status::Withdrawn | Status::Expired
        ) {
            return Err(Error::Internal(anyhow::anyhow!(
                "{} is not a decision",
                d.to
            )));
        }
        self.transition(
            id,
            Status::Pending,
            d.to,
            (d.agent_id, d.digest),
            &[
                ("reviewed_at", &now),
                ("reviewed_by", &d.by),
                ("rejection_reason", &d.reason),
            ],
            now,
        )
    }

    /// Claims an approved entry for execution; `false` if another caller did first.
    pub fn start(&self, id: &str, now: &str) -> Result<bool> {
        self.transition(
            id,
            Status::Approved,
            Status::Executing,
            (None, None),
            &[("started_at", &now)],
            now,
        )
    }

    /// Ends an executing entry as completed or failed, with all its results.
    pub fn finish(
        &self,
        id: &str,
        to: Status,
        results: &[RequestResult],
        now: &str,
    ) -> Result<bool> {
        if !matches!(to, Status::Completed | Status::Failed) {
            return Err(Error::Internal(anyhow::anyhow!("{to} is not an outcome")));
        }
        let json = serde_json::to_string(results).map_err(|e| internal(e, "serialize results"))?;
        self.transition(
            id,
            Status::Executing,
            to,
            (None, None),
            &[("completed_at", &now), ("results", &json)],
            now,
        )
    }

    /// Moves one entry from `from` to `to` and sets the given columns, in one
    /// conditional statement, with the webhook's outbox row in the same
    /// transaction. Returns `false` when the entry was not in `from` (or, with
    /// `agent_id`, does not belong to that agent).
    fn transition(
        &self,
        id: &str,
        from: Status,
        to: Status,
        (agent_id, digest): (Option<i64>, Option<&str>),
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
        // Rows older than digests have none; their digest is computed when
        // read, and any edit writes one, so NULL means "never edited".
        if let Some(digest) = &digest {
            args.push(digest);
            sql.push_str(&format!(
                " AND (digest = ?{n} OR digest IS NULL)",
                n = args.len()
            ));
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

    /// Replaces a pending entry's requests with a human's edit, keeping the
    /// agent's own in `original_requests` (the first edit's "before"). Only
    /// while the entry is pending and still has the digest the human edited;
    /// `false` otherwise.
    pub fn edit(&self, id: &str, e: &Edit<'_>, now: &str) -> Result<bool> {
        let requests =
            serde_json::to_string(e.requests).map_err(|e| internal(e, "serialize requests"))?;
        let digest = crate::request::digest(e.requests);
        let current = self.entry(id)?;
        let Some(current) = current.filter(|c| c.status == Status::Pending) else {
            return Ok(false);
        };
        let before = serde_json::to_string(&current.requests)
            .map_err(|e| internal(e, "serialize requests"))?;
        let n = self.conn().execute(
            "UPDATE queue SET requests = ?2, digest = ?3,
                original_requests = COALESCE(original_requests, ?4),
                edited_at = ?5, edited_by = ?6
             WHERE id = ?1 AND status = 'pending' AND (digest = ?7 OR digest IS NULL)",
            params![id, requests, digest, before, now, e.by, e.from_digest],
        )?;
        Ok(n == 1)
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

    /// Deletes decided entries (completed, failed, rejected, withdrawn,
    /// expired) that ended before `cutoff`, with their webhook outbox rows;
    /// returns how many entries went. Pending, approved and executing
    /// entries are never pruned.
    /// Removes entries that ended before `cutoff`, and withdrawn ones (which
    /// never ran and no human decided) that ended before `withdrawn_cutoff`.
    pub fn prune_decided(&self, cutoff: &str, withdrawn_cutoff: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        const OLD: &str = "(status IN ('completed', 'failed', 'rejected', 'withdrawn', 'expired')
             AND coalesce(completed_at, reviewed_at, submitted_at) < ?1)
             OR (status = 'withdrawn' AND coalesce(reviewed_at, submitted_at) < ?2)";
        tx.execute(
            &format!("DELETE FROM outbox WHERE entry_id IN (SELECT id FROM queue WHERE {OLD})"),
            [cutoff, withdrawn_cutoff],
        )?;
        let n = tx.execute(
            &format!("DELETE FROM queue WHERE {OLD}"),
            [cutoff, withdrawn_cutoff],
        )?;
        tx.commit()?;
        Ok(n)
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
}

impl rusqlite::ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

const ENTRY_COLUMNS: &str =
    "id, agent_id, agent_name, service, account_name, comment, requests, status,
    submitted_at, reviewed_at, reviewed_by, started_at, completed_at, rejection_reason, results,
    account_id, digest, original_requests, edited_at, edited_by, original_requests IS NOT NULL";

/// [`ENTRY_COLUMNS`] for a list of summaries: SQLite's JSON functions keep
/// each request's method and path and drop every result's body, so bodies
/// never leave the database.
const SUMMARY_COLUMNS: &str = "id, agent_id, agent_name, service, account_name, comment,
    (SELECT json_group_array(json_object('method', json_extract(r.value, '$.method'),
                                         'path', json_extract(r.value, '$.path')))
       FROM json_each(queue.requests) AS r),
    status, submitted_at, reviewed_at, reviewed_by, started_at, completed_at, rejection_reason,
    (SELECT json_group_array(json(json_remove(x.value, '$.body'))) FROM json_each(queue.results) AS x),
    account_id, coalesce(digest, ''), NULL, edited_at, edited_by, original_requests IS NOT NULL";

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    let status: String = r.get(7)?;
    let requests: Vec<WriteRequest> = json_column(r, 6)?;
    let digest = match r.get::<_, Option<String>>(16)? {
        Some(d) => d,
        None => crate::request::digest(&requests),
    };
    let original: Option<String> = r.get(17)?;
    let original_requests = match original {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(17, rusqlite::types::Type::Text, Box::new(e))
        })?),
        None => None,
    };
    Ok(Entry {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        agent_name: r.get(2)?,
        service: r.get(3)?,
        account_name: r.get(4)?,
        comment: r.get(5)?,
        requests,
        digest,
        edited: r.get(20)?,
        original_requests,
        edited_at: r.get(18)?,
        edited_by: r.get(19)?,
        status: status.parse().map_err(|e: crate::status::UnknownStatus| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
        })?,
        submitted_at: r.get(8)?,
        reviewed_at: r.get(9)?,
        reviewed_by: r.get(10)?,
        started_at: r.get(11)?,
        completed_at: r.get(12)?,
        rejection_reason: r.get(13)?,
        results: json_column(r, 14)?,
        account_id: r.get(15)?,
        notification: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, store};
    use super::*;

    #[test]
    fn transition_only_moves_from_the_expected_state() {
        let (_d, s) = store();
        let agent = s.insert_agent("a", b"digest", "rms_x", "t").unwrap();
        let e = entry("q1", &agent);
        assert_eq!(s.insert_entry(&e).unwrap(), Inserted::Yes);
        assert_eq!(
            s.insert_entry(&e).unwrap(),
            Inserted::IdTaken,
            "duplicate ids are reported"
        );
        assert!(
            s.transition(
                "q1",
                Status::Pending,
                Status::Approved,
                (None, None),
                &[],
                "t"
            )
            .unwrap()
        );
        assert!(
            !s.transition(
                "q1",
                Status::Pending,
                Status::Approved,
                (None, None),
                &[],
                "t"
            )
            .unwrap()
        );
        assert!(
            !s.transition(
                "q1",
                Status::Approved,
                Status::Executing,
                (Some(agent.id + 1), None),
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
        assert_eq!(s.insert_entry(&e).unwrap(), Inserted::Yes);
        let submitted = s.queue_stamp().unwrap();
        assert_ne!(submitted, start);
        // Another process (the CLI) approving through its own connection.
        let other = Store::open(&dir.path().join("t.db")).unwrap();
        assert!(
            other
                .transition(
                    "q1",
                    Status::Pending,
                    Status::Approved,
                    (None, None),
                    &[],
                    "t"
                )
                .unwrap()
        );
        let approved = s.queue_stamp().unwrap();
        assert_ne!(approved, submitted);
        assert!(
            s.transition(
                "q1",
                Status::Approved,
                Status::Executing,
                (None, None),
                &[],
                "t"
            )
            .unwrap()
        );
        let executing = s.queue_stamp().unwrap();
        assert_ne!(executing, approved);
        // Saving results along the way changes the row but is no move.
        s.save_results("q1", &[]).unwrap();
        assert_eq!(s.queue_stamp().unwrap(), executing);
    }
}
