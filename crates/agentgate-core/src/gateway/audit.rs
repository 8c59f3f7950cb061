//! Writing and reading the audit log. Recording never fails the action it
//! records: a failed insert is logged and the request goes on.

use std::borrow::Cow;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::Gateway;
use crate::audit::{AuditFilter, AuditRecord};
use crate::clock::{precise_timestamp, timestamp};
use crate::error::Result;
use crate::queue::{Entry, Status};
use crate::store::Store;

/// Read records waiting for the writer at most; past that, records are dropped
/// (and the drop logged) rather than slowing agents down.
const READ_LOG_CAPACITY: usize = 10_000;
/// Most records one transaction writes.
const READ_LOG_BATCH: usize = 500;
/// How long the writer gathers records after the first before writing them.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);
/// Longest path kept in a read record; a longer one is cut, marked with `…`.
pub const MAX_AUDIT_PATH_CHARS: usize = 256;
/// Refused or failed reads are counted, not written one by one: one record
/// per agent, answer status and minute, written once the minute is over.
const COALESCE_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// Distinct (agent, status, minute) counts held at most; past that, refused
/// reads are dropped from the log (and the drop logged).
const MAX_COALESCED: usize = 10_000;

/// What a read leaves for the writer: only what the request path has to copy.
/// The writer turns it into an [`AuditRecord`] (timestamp text, kind, method),
/// off the request path.
struct ReadRecord {
    at: time::OffsetDateTime,
    agent: String,
    service: Cow<'static, str>,
    account: String,
    path: String,
    status: u16,
    latency_ms: f64,
}

impl ReadRecord {
    fn into_audit(self, count: Option<u32>) -> AuditRecord {
        AuditRecord {
            at: precise_timestamp(self.at),
            kind: "read".into(),
            agent: Some(self.agent),
            service: Some(self.service.into_owned()),
            account: Some(self.account),
            method: Some("GET".into()),
            path: Some(cut_path(self.path)),
            status: Some(self.status),
            latency_ms: Some((self.latency_ms * 100.0).round() / 100.0),
            count,
            ..Default::default()
        }
    }
}

/// A path as the log keeps it: at most [`MAX_AUDIT_PATH_CHARS`] characters.
fn cut_path(path: String) -> String {
    match path.char_indices().nth(MAX_AUDIT_PATH_CHARS) {
        Some((at, _)) => format!("{}…", &path[..at]),
        None => path,
    }
}

/// Refused and failed reads being counted: the first of each (agent,
/// status, minute) with how many there were, and since when it is held.
type Coalesced =
    std::collections::HashMap<(String, u16, i64), (ReadRecord, u32, std::time::Instant)>;

enum Msg {
    Record(Box<ReadRecord>),
    /// Answered once everything sent before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// Writes read records off the request path: one SQLite write per read would
/// serialise every read on the database. Records reach the database within
/// one batch; a crash can lose the last batch of read records, never a
/// transition (those are written synchronously).
pub(super) struct ReadLog {
    tx: SyncSender<Msg>,
    refused: std::sync::Arc<std::sync::Mutex<Coalesced>>,
}

impl ReadLog {
    pub(super) fn start(store: Store) -> ReadLog {
        let (tx, rx) = sync_channel(READ_LOG_CAPACITY);
        let refused = std::sync::Arc::new(std::sync::Mutex::new(Coalesced::new()));
        let held = refused.clone();
        std::thread::Builder::new()
            .name("agentgate-audit".into())
            .spawn(move || {
                lower_priority();
                write_loop(&store, rx, &held)
            })
            .expect("cannot start the audit writer thread");
        ReadLog { tx, refused }
    }

    /// Counts a refused or failed read instead of queueing a record for it,
    /// so that a flood of them neither grows the log nor pushes real records
    /// out of the writer's queue.
    fn count_refused(&self, r: ReadRecord) {
        let minute = r.at.unix_timestamp().div_euclid(60);
        let mut held = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let key = (r.agent.clone(), r.status, minute);
        if let Some((_, count, _)) = held.get_mut(&key) {
            *count += 1;
        } else if held.len() < MAX_COALESCED {
            held.insert(key, (r, 1, std::time::Instant::now()));
        } else {
            tracing::warn!("too many refused reads to count; one was left out of the audit log");
        }
    }

    fn send(&self, r: ReadRecord) {
        match self.tx.try_send(Msg::Record(Box::new(r))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("audit writer is behind; a read record was dropped")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("audit writer stopped; a read record was dropped")
            }
        }
    }

    /// Waits until every record sent so far is in the database.
    fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// The writer's nice value. A batch it writes while a read arrives delays that
/// read when both share a core: with the writer at the same priority, the
/// gateway's p99 at 1,000 reads/s on one core was 0.8-3 ms; at 10, 0.6-0.75 ms
/// (BENCHMARKS.md). At 10 the writer still gets about a tenth of a core it has to
/// fight for, more than the ~6 % it needs at the gateway's saturation, so records
/// are not left to pile up.
#[cfg(target_os = "linux")]
const WRITER_NICE: i32 = 10;

/// Makes the calling thread (the writer) yield to request handling. Linux sets
/// nice values per thread; elsewhere the call would renice the whole process, so
/// it is not made. A process already nicer than this is left as it is.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        if getpriority_process(me).is_ok_and(|nice| nice < WRITER_NICE)
            && let Err(e) = setpriority_process(me, WRITER_NICE)
        {
            tracing::debug!(error = %e, "could not lower the audit writer's priority");
        }
    }
}

/// Takes out the counts whose minute is over (all of them with `all`).
fn due_counts(held: &std::sync::Mutex<Coalesced>, all: bool) -> Vec<AuditRecord> {
    let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
    let due: Vec<_> = held
        .iter()
        .filter(|(_, (_, _, since))| all || since.elapsed() >= COALESCE_FOR)
        .map(|(k, _)| k.clone())
        .collect();
    due.into_iter()
        .filter_map(|k| held.remove(&k))
        .map(|(r, count, _)| r.into_audit(Some(count)))
        .collect()
}

fn write_loop(store: &Store, rx: Receiver<Msg>, refused: &std::sync::Mutex<Coalesced>) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(READ_LOG_BATCH);
    loop {
        let first = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(m) => m,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let counts = due_counts(refused, false);
                if !counts.is_empty()
                    && let Err(e) = store.insert_audit_batch(&counts)
                {
                    tracing::error!(error = %e, "could not write counted reads to the audit log");
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // Gather for a moment so that busy traffic wakes this thread once per
        // batch instead of once per read; a flush does not wait.
        if matches!(first, Msg::Record(_)) {
            std::thread::sleep(GATHER);
        }
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(r) => batch.push(r.into_audit(None)),
                Msg::Flush(done) => flushes.push(done),
            }
            if batch.len() < READ_LOG_BATCH {
                next = rx.try_recv().ok();
            }
        }
        batch.extend(due_counts(refused, !flushes.is_empty()));
        if !batch.is_empty() {
            if let Err(e) = store.insert_audit_batch(&batch) {
                tracing::error!(error = %e, records = batch.len(), "could not write read records to the audit log");
            }
            batch.clear();
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Splits a `reviewed_by` value into who acted and through which surface.
fn actor_and_surface(by: &str) -> (String, &'static str) {
    if let Some(agent) = by.strip_prefix("agent:") {
        (agent.to_string(), "agent")
    } else if by.starts_with("rule") {
        ("rule".into(), "rule")
    } else {
        match by {
            "cli" => ("admin".into(), "cli"),
            "admin-api" | "web-admin" => ("admin".into(), "web-admin"),
            "notification" => ("admin".into(), "notification"),
            "window" => ("admin".into(), "window"),
            _ => ("system".into(), "system"),
        }
    }
}

impl Gateway {
    fn record(&self, r: AuditRecord) {
        if let Err(e) = self.inner.store.insert_audit(&r) {
            tracing::error!(error = %e, kind = %r.kind, "could not write the audit log");
        }
    }

    pub(super) fn audit_read(
        &self,
        agent: &str,
        service: Cow<'static, str>,
        account: &str,
        path: &str,
        // The answer's status: `Err` when the gateway refused the read or
        // could not get an answer.
        answered: std::result::Result<u16, u16>,
        latency_ms: f64,
    ) {
        let (status, refused) = match answered {
            Ok(s) => (s, false),
            Err(s) => (s, true),
        };
        let record = ReadRecord {
            at: self.inner.clock.now(),
            agent: agent.into(),
            service,
            account: account.into(),
            path: path.into(),
            status,
            latency_ms,
        };
        if refused {
            self.inner.audit_reads.count_refused(record);
        } else {
            self.inner.audit_reads.send(record);
        }
    }

    /// Records that `entry` moved from `from` (none for a new entry) to `to`,
    /// decided by `by` (a `reviewed_by` value: "cli", "admin-api", "agent:NAME",
    /// "rule: ...", "system"), in the audit log and to live listeners.
    pub(super) fn transitioned(&self, entry: &Entry, from: Option<Status>, to: Status, by: &str) {
        let (actor, surface) = actor_and_surface(by);
        self.record(AuditRecord {
            at: precise_timestamp(self.inner.clock.now()),
            kind: "transition".into(),
            agent: Some(entry.agent_name.clone()),
            service: Some(entry.service.clone()),
            account: Some(entry.account_name.clone()),
            entry_id: Some(entry.id.clone()),
            from_status: from.map(|s| s.as_str().to_string()),
            to_status: Some(to.as_str().to_string()),
            actor: Some(actor),
            surface: Some(surface.into()),
            digest: Some(entry.digest.clone()),
            ..Default::default()
        });
        self.publish(super::QueueEvent {
            entry: entry.clone(),
            from,
            to,
            by: by.to_string(),
        });
    }

    /// Records a human's edit of a pending entry: the digest after it, and in
    /// `detail` the digest and requests before and the requests after.
    pub(super) fn edited(&self, before: &Entry, after: &Entry, by: &str) {
        let (actor, surface) = actor_and_surface(by);
        let detail = serde_json::json!({
            "digest_before": before.digest,
            "before": before.requests,
            "after": after.requests,
        });
        self.record(AuditRecord {
            at: precise_timestamp(self.inner.clock.now()),
            kind: "edit".into(),
            agent: Some(after.agent_name.clone()),
            service: Some(after.service.clone()),
            account: Some(after.account_name.clone()),
            entry_id: Some(after.id.clone()),
            from_status: Some(Status::Pending.as_str().to_string()),
            to_status: Some(Status::Pending.as_str().to_string()),
            actor: Some(actor),
            surface: Some(surface.into()),
            digest: Some(after.digest.clone()),
            detail: Some(detail.to_string()),
            ..Default::default()
        });
    }

    /// Like [`Gateway::transitioned`] when only the id is at hand.
    pub(super) fn transitioned_id(&self, id: &str, from: Option<Status>, to: Status, by: &str) {
        match self.inner.store.entry(id) {
            Ok(Some(e)) => self.transitioned(&e, from, to, by),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not write the audit log"),
        }
    }

    /// Audit records, newest first, as the filter narrows them.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        self.inner.audit_reads.flush();
        self.inner.store.audit(filter)
    }

    /// Removes audit records older than the retention setting.
    pub fn prune_audit(&self) -> Result<usize> {
        self.inner.audit_reads.flush();
        let days = self.settings().audit_retention_days;
        let cutoff = self.inner.clock.now() - time::Duration::days(days as i64);
        self.inner.store.prune_audit(&timestamp(cutoff))
    }

    /// Removes decided queue entries that ended longer ago than the audit
    /// log's retention: the log keeps their story (transitions, digests,
    /// edits) as long; their requests and results go with them.
    pub fn prune_decided(&self) -> Result<usize> {
        let days = self.settings().audit_retention_days;
        let cutoff = self.inner.clock.now() - time::Duration::days(days as i64);
        let withdrawn = self.inner.clock.now() - crate::config::WITHDRAWN_KEPT;
        let n = self
            .inner
            .store
            .prune_decided(&timestamp(cutoff), &timestamp(withdrawn))?;
        if n > 0 {
            tracing::info!(
                entries = n,
                "decided queue entries past the retention were removed"
            );
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_writer_runs_below_request_handling() {
        let dir = tempfile::tempdir().unwrap();
        let log = ReadLog::start(Store::open(&dir.path().join("a.db")).unwrap());
        log.flush();
        // Field 19 of /proc/<tid>/stat is the nice value; the name in parentheses
        // (field 2) has no spaces here.
        let nices: Vec<i32> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| {
                let t = t.unwrap().path();
                let comm = std::fs::read_to_string(t.join("comm")).ok()?;
                (comm.trim() == "agentgate-audit").then(|| {
                    let stat = std::fs::read_to_string(t.join("stat")).unwrap();
                    stat.split_whitespace().nth(18).unwrap().parse().unwrap()
                })
            })
            .collect();
        assert!(!nices.is_empty(), "no writer thread found");
        assert!(nices.iter().all(|n| *n >= WRITER_NICE), "{nices:?}");
    }

    #[test]
    fn reviewers_map_to_surfaces() {
        for (by, actor, surface) in [
            ("cli", "admin", "cli"),
            ("admin-api", "admin", "web-admin"),
            ("agent:bot", "bot", "agent"),
            ("rule: rule 1 approves it", "rule", "rule"),
            ("system", "system", "system"),
        ] {
            let (a, s) = super::actor_and_surface(by);
            assert_eq!((a.as_str(), s), (actor, surface), "{by}");
        }
    }
}
