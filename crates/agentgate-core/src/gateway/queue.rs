//! The write queue: submission, the agent's and the admin's views of entries,
//! the human's decision, the agent's withdrawal and expiry.

use std::collections::HashMap;

use super::Gateway;
use super::reads::check_not_blocked;
use crate::agent::Agent;
use crate::clock::timestamp;
use crate::error::{Error, Result};
use crate::keys;
use crate::paths::AgentPath;
use crate::queue::{self, Entry, EntryFilter, Status, Submission};
use crate::services;
use crate::store::{Decision, NewEntry};

impl Gateway {
    /// Validates and stores a batch as a new pending entry.
    pub fn submit(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
        submission: Submission,
    ) -> Result<Entry> {
        self.check_not_paused()?;
        self.check_rate(agent, crate::limits::Kind::Submit)?;
        let (def, row) = self.agent_account(agent, service, account)?;
        let (requests, comment) = queue::validate_submission(submission)?;
        let auto_approve = self.check_writes(agent, def, &row, &requests)?;
        // A batch runs without a human only when policy approves every request in it.
        let auto = auto_approve
            .iter()
            .all(|d| d.outcome == crate::policy::Outcome::AutoApprove);
        let now = self.now();
        let recent_since = timestamp(self.inner.clock.now() - crate::config::RECENT_SUBMISSIONS);
        for _ in 0..5 {
            let id = keys::random_base62(12).to_lowercase();
            let new = NewEntry {
                id: &id,
                agent,
                service: def.key,
                account: &row.name,
                account_id: row.id,
                comment: &comment,
                requests: &requests,
                now: &now,
                recent_since: &recent_since,
            };
            let inserted = self.inner.store.insert_entry(&new)?;
            if inserted == crate::store::Inserted::OverCap {
                return Err(Error::Throttled {
                    message: format!(
                        "agent {:?} has as many writes stored as it may ({} pending entries; \
                         {} MiB of requests pending or submitted in the last 24 hours, whatever \
                         became of them): wait for the human's decisions, or for the day to pass",
                        agent.name,
                        crate::config::MAX_PENDING_PER_AGENT,
                        crate::config::MAX_PENDING_BYTES_PER_AGENT / (1024 * 1024)
                    ),
                    retry_after_secs: 60,
                });
            }
            if inserted == crate::store::Inserted::Yes {
                tracing::info!(entry = %id, agent = %agent.name, service = def.key, account = %row.name, requests = requests.len(), "write queued");
                self.transitioned_id(&id, None, Status::Pending, &format!("agent:{}", agent.name));
                if auto {
                    let reason = &auto_approve[0].reason;
                    let digest = crate::request::digest(&requests);
                    return self.approve_and_start(&id, &digest, &format!("rule: {reason}"));
                }
                return self.entry(&id);
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "could not find a free queue id"
        )))
    }

    /// Every check a submitted (or edited) batch must pass before it is
    /// stored: privacy blocks and account control, the service's write
    /// checks, and the rules, which say for each request whether it needs a
    /// human. The first refusal is the answer, naming the request.
    pub(super) fn check_writes(
        &self,
        agent: &Agent,
        def: &'static services::ServiceDef,
        row: &crate::store::AccountRow,
        requests: &[crate::queue::WriteRequest],
    ) -> Result<Vec<crate::policy::Decision>> {
        let mut decisions = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            let path = AgentPath::parse_with_query(&r.path)
                .map_err(|e| Error::invalid(format!("requests[{i}]: {e}")))?;
            check_not_blocked(def, &path).map_err(|e| match e {
                Error::Blocked(m) => Error::Blocked(format!("requests[{i}]: {m}")),
                other => other,
            })?;
            // On every form the service may route the path as, as blocks are.
            if let Some(check) = def.write_check
                && let Some(why) = def.forms(&path).iter().find_map(|form| check(r, form))
            {
                return Err(Error::Blocked(format!("requests[{i}]: {why}")));
            }
            let decision = self
                .decide(agent, def, row, &r.method, &path, def.danger(r).is_some())
                .map_err(|e| match e {
                    Error::Forbidden(m) => Error::Forbidden(format!("requests[{i}]: {m}")),
                    other => other,
                })?;
            decisions.push(decision);
        }
        Ok(decisions)
    }

    /// A human's change to a pending entry's requests before deciding on it:
    /// `requests` replaces them whole (a request left out is dropped from the
    /// batch). It is parsed and checked exactly like a submission, against
    /// the entry's agent and account, and only while the entry still has the
    /// digest the human edited. The agent's own requests are kept and shown
    /// to it beside the edit.
    pub fn edit(
        &self,
        id: &str,
        digest: &str,
        requests: serde_json::Value,
        by: &str,
    ) -> Result<Entry> {
        let entry = self.entry(id)?;
        if entry.status != Status::Pending {
            return Err(self.already_decided(id));
        }
        if entry.digest != digest {
            return Err(changed_since_shown(&entry));
        }
        let requests = queue::validate_requests(Some(requests)).map_err(|e| match e {
            Error::Invalid(m) if m.contains("must not be empty") => Error::invalid(
                "an edit keeps at least one request; to run none of them, reject the entry",
            ),
            other => other,
        })?;
        if requests == entry.requests {
            return Err(Error::invalid("the edit changes nothing"));
        }
        let agent = self
            .inner
            .store
            .agent_by_id(entry.agent_id)?
            .ok_or_else(|| Error::Conflict("the agent of this entry was revoked".into()))?;
        let (def, row) = self.account_row(&entry.service, &entry.account_name)?;
        if entry.account_id.is_some_and(|a| a != row.id) {
            return Err(Error::Conflict(format!(
                "{}/{} was removed and added again since this was submitted",
                def.key, row.name
            )));
        }
        self.require_access(&agent, def, &row)?;
        self.check_writes(&agent, def, &row, &requests)?;
        let now = self.now();
        let edit = crate::store::Edit {
            from_digest: digest,
            requests: &requests,
            by,
        };
        if !self.inner.store.edit(id, &edit, &now)? {
            let current = self.entry(id)?;
            return Err(if current.status == Status::Pending {
                changed_since_shown(&current)
            } else {
                self.already_decided(id)
            });
        }
        let edited = self.entry(id)?;
        tracing::info!(entry = %id, by, requests = requests.len(), "write edited");
        self.edited(&entry, &edited, by);
        Ok(edited)
    }

    /// An entry, for the admin.
    pub fn entry(&self, id: &str) -> Result<Entry> {
        let e = self
            .inner
            .store
            .entry(id)?
            .ok_or_else(|| Error::not_found(format!("no queue entry {id:?}")))?;
        self.with_notification(e)
    }

    /// Adds the state of the entry's webhook notification, if it has one.
    pub(super) fn with_notification(&self, mut e: Entry) -> Result<Entry> {
        e.notification = self.notification(&e.id)?;
        Ok(e)
    }

    /// An entry, for the agent that submitted it; to any other agent it does not exist.
    pub fn agent_entry(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
        id: &str,
    ) -> Result<Entry> {
        // An agent that lost access to the account sees none of its entries
        // there; an account that does not exist answers the same, except
        // that the agent still sees its own entries on an account removed
        // since (how they ended).
        let refused = match self.agent_account(agent, service, account) {
            Ok(_) => None,
            Err(Error::Forbidden(m)) if self.account_row(service, account).is_err() => Some(m),
            Err(e) => return Err(e),
        };
        match self.inner.store.entry(id)? {
            Some(e)
                if e.agent_id == agent.id
                    && services::find(service).is_some_and(|d| d.key == e.service)
                    && e.account_name == account =>
            {
                self.with_notification(e)
            }
            _ => Err(match refused {
                Some(m) => Error::Forbidden(m),
                None => Error::not_found(format!(
                    "no queue entry {id:?} of yours on {service}/{account}"
                )),
            }),
        }
    }

    pub fn entries(&self, filter: &EntryFilter) -> Result<Vec<Entry>> {
        self.inner
            .store
            .entries(filter)?
            .into_iter()
            .map(|e| self.with_notification(e))
            .collect()
    }

    pub fn agent_entries(
        &self,
        agent: &Agent,
        service: Option<&str>,
        account: Option<&str>,
        page: &queue::Page,
    ) -> Result<(Vec<Entry>, Option<String>)> {
        let service = match service {
            Some(s) => Some(
                services::find(s)
                    .ok_or_else(|| Error::not_found(format!("unknown service {s:?}")))?
                    .key,
            ),
            None => None,
        };
        if let (Some(s), Some(a)) = (service, account) {
            self.agent_account(agent, s, a)?;
        }
        let limit = page
            .limit
            .unwrap_or(queue::LIST_PAGE)
            .clamp(1, queue::MAX_LIST_PAGE);
        // Summaries: the bodies stay in the database; one entry's status
        // gives them whole.
        let entries = self.inner.store.entries(&EntryFilter {
            agent_id: Some(agent.id),
            service: service.map(str::to_string),
            account: account.map(str::to_string),
            limit: Some(limit),
            before: page.before.clone(),
            summaries: true,
            ..Default::default()
        })?;
        let next = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.id.clone()))
            .flatten();
        // Entries on accounts the agent has since lost access to are not shown.
        let mut allowed: HashMap<(String, String), bool> = HashMap::new();
        let shown = entries
            .into_iter()
            .filter(|e| {
                *allowed
                    .entry((e.service.clone(), e.account_name.clone()))
                    .or_insert_with(|| self.agent_may_use(agent, &e.service, &e.account_name))
            })
            .map(|e| self.with_notification(e))
            .collect::<Result<Vec<_>>>()?;
        Ok((shown, next))
    }

    /// The submitting agent takes back its own pending entry.
    pub fn withdraw(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
        id: &str,
        reason: Option<String>,
    ) -> Result<Entry> {
        let entry = self.agent_entry(agent, service, account, id)?;
        let now = self.now();
        let by = format!("agent:{}", agent.name);
        let reason = reason_text(reason);
        let moved = self.inner.store.decide(
            id,
            &Decision {
                to: Status::Withdrawn,
                by: &by,
                reason: reason.as_deref(),
                agent_id: Some(agent.id),
                digest: None,
            },
            &now,
        )?;
        if !moved {
            return Err(self.already_decided(&entry.id));
        }
        tracing::info!(entry = %id, agent = %agent.name, "write withdrawn");
        self.transitioned_id(id, Some(Status::Pending), Status::Withdrawn, &by);
        self.entry(id)
    }

    /// Records the approval of a pending entry, without running it. One
    /// conditional update decides: of two approvals at the same instant exactly
    /// one succeeds, the other gets `AlreadyDecided`. Surfaces call
    /// [`Gateway::approve_and_start`] or [`Gateway::approve_and_run`] instead.
    ///
    /// `digest` is the digest of the requests as the approving human was
    /// shown them: if the entry's requests no longer have it (an edit since),
    /// nothing is approved and the answer is a conflict.
    pub fn approve(&self, id: &str, digest: &str, by: &str) -> Result<Entry> {
        self.record_decision(id, Status::Approved, by, None, Some(digest))
    }

    /// The human's approval from a long-running surface (admin API, web admin,
    /// notification) or a policy rule: the decision, then the batch started in
    /// the background, tracked so that a graceful stop waits for it. Must be
    /// called on the Tokio runtime.
    pub fn approve_and_start(&self, id: &str, digest: &str, by: &str) -> Result<Entry> {
        let entry = self.approve(id, digest, by)?;
        self.spawn_execute(entry.id.clone());
        Ok(entry)
    }

    /// The approval from a surface whose process ends after it (the CLI): the
    /// decision, then the batch run to its end before returning.
    pub async fn approve_and_run(&self, id: &str, digest: &str, by: &str) -> Result<Entry> {
        self.approve(id, digest, by)?;
        self.execute(id).await
    }

    pub fn reject(&self, id: &str, by: &str, reason: Option<String>) -> Result<Entry> {
        self.record_decision(id, Status::Rejected, by, reason, None)
    }

    /// Moves a pending entry to the human's decision, recorded with who decided
    /// and (for a rejection) why.
    pub(super) fn record_decision(
        &self,
        id: &str,
        to: Status,
        by: &str,
        reason: Option<String>,
        digest: Option<&str>,
    ) -> Result<Entry> {
        if to == Status::Approved {
            self.check_approvable(id, digest.unwrap_or(""))?;
        }
        let now = self.now();
        let reason = reason_text(reason);
        let moved = self.inner.store.decide(
            id,
            &Decision {
                to,
                by,
                reason: reason.as_deref(),
                agent_id: None,
                digest,
            },
            &now,
        )?;
        if !moved {
            let current = self.entry(id)?;
            return Err(if current.status == Status::Pending {
                changed_since_shown(&current)
            } else {
                self.already_decided(id)
            });
        }
        tracing::info!(entry = %id, by, status = %to, "write decided");
        self.transitioned_id(id, Some(Status::Pending), to, by);
        self.entry(id)
    }

    /// A write is approved only while its agent may still act: a revoked
    /// agent's writes are rejected by the system, a disabled agent's wait
    /// (held) until it is enabled again or a human rejects them.
    fn check_approvable(&self, id: &str, digest: &str) -> Result<()> {
        let Some(entry) = self.inner.store.entry(id)? else {
            return Err(Error::not_found(format!("no queue entry {id:?}")));
        };
        if entry.status == Status::Pending && entry.digest != digest {
            return Err(changed_since_shown(&entry));
        }
        // The account it names must be the one it was submitted for (not
        // another added since under that name); else it could never run.
        if entry.status == Status::Pending
            && let Some(id) = entry.account_id
            && self
                .account_row(&entry.service, &entry.account_name)
                .map_or(true, |(_, row)| row.id != id)
        {
            return Err(Error::Conflict(format!(
                "{}/{} was removed (and perhaps added again) since this was submitted; \
                 it cannot run on another account: reject it",
                entry.service, entry.account_name
            )));
        }
        match self.inner.store.agent_by_id(entry.agent_id)? {
            None => {
                self.reject_for_revoked_agent(&entry)?;
                Err(self.already_decided(id))
            }
            Some(agent) if !agent.enabled => Err(Error::Conflict(format!(
                "agent {:?} is disabled: its writes wait until it is enabled again (or reject them)",
                agent.name
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Rejects a pending write of an agent whose key was revoked; one already
    /// decided stays as it is.
    pub(super) fn reject_for_revoked_agent(&self, entry: &Entry) -> Result<()> {
        match self.record_decision(
            &entry.id,
            Status::Rejected,
            "system",
            Some(format!(
                "the key of agent {:?} was revoked, so its writes can no longer be approved",
                entry.agent_name
            )),
            None,
        ) {
            Ok(_) | Err(Error::AlreadyDecided { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Expires pending entries older than the configured lifetime; returns their ids.
    pub fn expire_pending(&self) -> Result<Vec<String>> {
        let hours = self.settings().pending_expiry_hours;
        let now = self.inner.clock.now();
        let cutoff = timestamp(now - time::Duration::hours(hours as i64));
        let stamp = timestamp(now);
        let reason = format!("expired: nobody decided within {hours} hours");
        let mut expired = Vec::new();
        for id in self.inner.store.pending_before(&cutoff)? {
            if self.inner.store.decide(
                &id,
                &Decision {
                    to: Status::Expired,
                    by: "system",
                    reason: Some(&reason),
                    agent_id: None,
                    digest: None,
                },
                &stamp,
            )? {
                tracing::info!(entry = %id, "pending write expired");
                self.transitioned_id(&id, Some(Status::Pending), Status::Expired, "system");
                expired.push(id);
            }
        }
        Ok(expired)
    }

    pub(super) fn already_decided(&self, id: &str) -> Error {
        match self.inner.store.entry(id) {
            Ok(Some(e)) => Error::AlreadyDecided {
                id: e.id,
                status: e.status,
            },
            Ok(None) => Error::not_found(format!("no queue entry {id:?}")),
            Err(e) => e,
        }
    }
}

/// The answer to an approval or edit that names another digest than the
/// entry has: what the human saw is not what would run.
fn changed_since_shown(entry: &Entry) -> Error {
    Error::Conflict(format!(
        "entry {} is not what you were shown (its requests changed, or no digest was given); \
         look at it again before deciding; nothing was run",
        entry.id
    ))
}

/// A reason as kept with a decision: blank is none, and at most 2,000 characters.
fn reason_text(reason: Option<String>) -> Option<String> {
    reason
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.chars().take(2000).collect())
}
