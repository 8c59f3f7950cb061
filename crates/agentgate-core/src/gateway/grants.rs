//! Time-boxed grants: for a while, an agent's writes to an account (all of
//! them, or one method and path pattern) are approved without asking. They are
//! made by the admin directly, or beside an approval ("approve and allow this
//! for an hour"), scoped as narrowly as the approved request allows. An
//! explicit `deny` or `require_approval` rule still wins over any grant.

use serde::Serialize;
use time::OffsetDateTime;

use super::Gateway;
use crate::clock::{parse_timestamp, timestamp};
use crate::error::{Error, Result};
use crate::paths::AgentPath;
use crate::queue::Entry;
use crate::store::NewGrant;

/// Longest time-boxed grant, so that a forgotten one does not last for ever.
pub const MAX_GRANT_MINUTES: i64 = 24 * 60;
/// Most grants live at once: each is looked at on every write of its agent.
pub const MAX_LIVE_GRANTS: usize = 100;

/// A grant to make.
#[derive(Debug, Clone, Default)]
pub struct GrantSpec {
    pub agent: String,
    pub service: String,
    pub account: String,
    /// 1 to [`MAX_GRANT_MINUTES`].
    pub minutes: i64,
    /// A write method, or `None` for all of them.
    pub method: Option<String>,
    /// A path pattern like a rule's, or `None` for every path.
    pub path: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GrantInfo {
    pub id: i64,
    pub agent: String,
    pub service: String,
    pub account: String,
    /// The write method it covers; absent: every write method.
    pub method: Option<String>,
    /// The path pattern it covers; absent: every path.
    pub path: Option<String>,
    /// The queue entry whose approval made it, if one did.
    pub entry_id: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    /// Seconds left, as of the answer.
    pub remaining_secs: i64,
    /// What it allows, in words.
    pub words: String,
}

/// Minutes from `now` to the next midnight at `utc_offset_minutes` (the
/// viewer's time zone), at least 1: what "today" means for a grant.
pub fn minutes_left_today(now: OffsetDateTime, utc_offset_minutes: i64) -> i64 {
    let local = now + time::Duration::minutes(utc_offset_minutes.clamp(-18 * 60, 18 * 60));
    let since_midnight = i64::from(local.hour()) * 60 + i64::from(local.minute());
    (24 * 60 - since_midnight).clamp(1, MAX_GRANT_MINUTES)
}

/// Endpoints whose body, not their path, says what is done: every Bluesky
/// write (an XRPC procedure: a post, a like, a follow, a deletion) and
/// GitHub's GraphQL.
fn rpc(service: &str, normalized: &str) -> bool {
    match service {
        "bluesky" => true,
        "github" => normalized.ends_with("/graphql"),
        _ => false,
    }
}

/// "12 min", "1 h 5 min", "40 s".
pub fn remaining_words(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{} s", s.max(0)),
        s if s < 3600 => format!("{} min", s / 60),
        s if s % 3600 < 60 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

impl Gateway {
    /// Auto-approves the agent's writes to the account (or one method and
    /// path pattern of them) for `minutes`.
    pub fn grant(&self, spec: &GrantSpec) -> Result<GrantInfo> {
        let agent = self.agent(&spec.agent)?;
        let mut made = self.make_grants(
            &agent,
            spec,
            &[(spec.method.clone(), spec.path.clone())],
            None,
        )?;
        made.pop()
            .ok_or_else(|| Error::not_found("the grant ended at once"))
    }

    /// Checks and stores grants of one agent on one account, all or none.
    fn make_grants(
        &self,
        agent: &crate::agent::Agent,
        spec: &GrantSpec,
        scopes: &[(Option<String>, Option<String>)],
        entry_id: Option<&str>,
    ) -> Result<Vec<GrantInfo>> {
        let (def, row) = self.account_row(&spec.service, &spec.account)?;
        if !(1..=MAX_GRANT_MINUTES).contains(&spec.minutes) {
            return Err(Error::invalid(format!(
                "a grant lasts 1 to {MAX_GRANT_MINUTES} minutes"
            )));
        }
        let mut checked = Vec::with_capacity(scopes.len());
        for (method, path) in scopes {
            // A grant approves writes; reads need none.
            let method = super::rules::method_of(method.as_deref(), &[])?;
            let path = match path.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(p) => {
                    crate::policy::check_glob(p).map_err(Error::invalid)?;
                    // Kept as written: a grant matches case for case.
                    Some(p.to_string())
                }
            };
            checked.push((method, path));
        }
        let now = self.inner.clock.now();
        let expires = timestamp(now + time::Duration::minutes(spec.minutes));
        let new: Vec<NewGrant<'_>> = checked
            .iter()
            .map(|(method, path)| NewGrant {
                agent_id: agent.id,
                service: def.key,
                account: &row.name,
                method: method.as_deref(),
                path: path.as_deref(),
                entry_id,
                expires_at: &expires,
            })
            .collect();
        let ids = self
            .inner
            .store
            .insert_grants(&new, &timestamp(now), MAX_LIVE_GRANTS)?
            .ok_or_else(|| {
                Error::invalid(format!(
                    "at most {MAX_LIVE_GRANTS} grants run at once; revoke one first"
                ))
            })?;
        tracing::info!(agent = %agent.name, service = def.key, account = %row.name, minutes = spec.minutes, grants = ids.len(), "grant given");
        Ok(self
            .grants()?
            .into_iter()
            .filter(|g| ids.contains(&g.id))
            .collect())
    }

    /// Grants what an approved entry did, for `minutes`: its agent (by id,
    /// whatever it is called now), its account, and each request's method
    /// and exact path (the query and the body are not part of a grant), all
    /// or none.
    pub fn grant_like(&self, entry: &Entry, minutes: i64) -> Result<Vec<GrantInfo>> {
        let def = crate::services::find(&entry.service)
            .ok_or_else(|| Error::not_found(format!("unknown service {:?}", entry.service)))?;
        let agent = self
            .inner
            .store
            .agent_by_id(entry.agent_id)?
            .ok_or_else(|| Error::not_found("the entry's agent was revoked"))?;
        let mut scopes: Vec<(Option<String>, Option<String>)> = Vec::new();
        for r in &entry.requests {
            // A write that destroys or exposes something asks for a second
            // yes every time; a grant would skip it.
            if let Some(what) = def.danger(r) {
                return Err(Error::invalid(format!(
                    "this write {what}, so it is never granted ahead; it was approved alone"
                )));
            }
            let path =
                AgentPath::parse_with_query(&r.path).map_err(|e| Error::invalid(e.to_string()))?;
            // Where the body says what is done (an XRPC procedure, GraphQL),
            // the path names no single kind of write: approved alone.
            if rpc(def.key, path.normalized()) {
                return Err(Error::invalid(
                    "on this endpoint the body says what is done, so a grant for it would cover every kind of write; it was approved alone",
                ));
            }
            let path = path.decoded();
            // A grant's path is a pattern: a path holding `*` or `?` would
            // grant more than the request that was approved.
            if path.contains(['*', '?']) {
                return Err(Error::invalid(
                    "this request's path holds '*' or '?', so a grant cannot name it exactly; it was approved alone",
                ));
            }
            let scope = (Some(r.method.to_ascii_uppercase()), Some(path));
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let spec = GrantSpec {
            agent: agent.name.clone(),
            service: entry.service.clone(),
            account: entry.account_name.clone(),
            minutes,
            method: None,
            path: None,
        };
        self.make_grants(&agent, &spec, &scopes, Some(&entry.id))
    }

    /// Live grants, soonest to end first.
    pub fn grants(&self) -> Result<Vec<GrantInfo>> {
        let now: OffsetDateTime = self.inner.clock.now();
        let agents = self.agents()?;
        Ok(self
            .inner
            .store
            .live_grants(&timestamp(now))?
            .into_iter()
            .map(|g| {
                let agent = agents
                    .iter()
                    .find(|a| a.id == g.agent_id)
                    .map_or_else(|| format!("#{}", g.agent_id), |a| a.name.clone());
                let remaining_secs =
                    parse_timestamp(&g.expires_at).map_or(0, |t| (t - now).whole_seconds().max(0));
                // The path may be an agent's: hidden characters shown as escapes.
                let action = match &g.path {
                    Some(p) => crate::display::web_text(&crate::rule_words::action(
                        &g.service,
                        g.method.as_deref(),
                        p,
                    )),
                    None => match &g.method {
                        Some(m) => format!("send any {m}"),
                        None => "write anything".to_string(),
                    },
                };
                let words = format!(
                    "{agent} may {action} on {}/{} without asking, for {}",
                    g.service,
                    g.account,
                    remaining_words(remaining_secs)
                );
                GrantInfo {
                    id: g.id,
                    agent,
                    service: g.service,
                    account: g.account,
                    method: g.method,
                    path: g.path,
                    entry_id: g.entry_id,
                    created_at: g.created_at,
                    expires_at: g.expires_at,
                    remaining_secs,
                    words,
                }
            })
            .collect())
    }

    /// Ends a grant at once: the agent's next write waits for a human again.
    pub fn revoke_grant(&self, id: i64) -> Result<()> {
        if !self.inner.store.delete_grant(id)? {
            return Err(Error::not_found(format!("no grant {id}")));
        }
        tracing::info!(grant = id, "grant revoked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_ends_at_the_viewers_midnight() {
        let now = time::macros::datetime!(2026-11-30 22:30 UTC);
        assert_eq!(minutes_left_today(now, 0), 90);
        // UTC+1: 23:30 there.
        assert_eq!(minutes_left_today(now, 60), 30);
        // UTC-5: 17:30 there.
        assert_eq!(minutes_left_today(now, -300), 390);
        let midnight = time::macros::datetime!(2026-11-30 00:00 UTC);
        assert_eq!(minutes_left_today(midnight, 0), MAX_GRANT_MINUTES);
        assert_eq!(
            minutes_left_today(now, 100_000),
            minutes_left_today(now, 18 * 60)
        );
    }

    #[test]
    fn remaining_time_in_words() {
        assert_eq!(remaining_words(40), "40 s");
        assert_eq!(remaining_words(15 * 60), "15 min");
        assert_eq!(remaining_words(3600), "1 h");
        assert_eq!(remaining_words(3900), "1 h 5 min");
    }
}
