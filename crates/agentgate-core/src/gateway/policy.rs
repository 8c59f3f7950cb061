//! Applying the policy engine ([`crate::policy`]) to agents' requests, and the
//! admin's side of it: access lists, endpoint rules, trusted agents, time-boxed
//! grants and the dry run.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Gateway;
use crate::agent::Agent;
use crate::clock::{parse_timestamp, timestamp};
use crate::error::{Error, Result};
use crate::paths::AgentPath;
use crate::policy::{self, AccessMode, AgentFacts, Decision, Effect, Outcome, Rule};
use crate::services::ServiceDef;
use crate::store::AccountRow;

/// Longest time-boxed grant, so that a forgotten one does not last for ever.
pub const MAX_GRANT_MINUTES: i64 = 24 * 60;
/// Most rules one account may hold.
pub const MAX_RULES: usize = 200;

/// A rule as the admin writes it: agents by name.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// GET, POST, PUT, PATCH, DELETE; absent (or "any") for every method.
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub agents: Vec<String>,
    pub effect: Effect,
}

/// An account's policy as the admin sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub access_mode: AccessMode,
    pub access_agents: Vec<String>,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GrantInfo {
    pub id: i64,
    pub agent: String,
    pub service: String,
    pub account: String,
    pub expires_at: String,
}

impl Gateway {
    /// Refuses an agent the account's access mode excludes, in the contract's words.
    /// The account an agent names, if it may use it. An account that does
    /// not exist gets the very answer of one the agent may not use, so that
    /// no agent can list the owner's account names by probing.
    pub(super) fn agent_account(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
    ) -> Result<(
        &'static ServiceDef,
        std::sync::Arc<crate::store::AccountRow>,
    )> {
        let def = crate::services::find(service)
            .ok_or_else(|| Error::not_found(format!("unknown service {service:?}")))?;
        match self.account_row(def.key, account) {
            Ok((def, row)) => {
                self.require_access(agent, def, &row)?;
                Ok((def, row))
            }
            Err(Error::NotFound(_)) => Err(access_denied(def, account)),
            Err(e) => Err(e),
        }
    }

    pub(super) fn require_access(
        &self,
        agent: &Agent,
        def: &ServiceDef,
        row: &AccountRow,
    ) -> Result<()> {
        if policy::has_access(&row.policy, agent.id) {
            Ok(())
        } else {
            Err(access_denied(def, &row.name))
        }
    }

    /// Decides one request of `agent`. Grants are looked up only for writes.
    pub(super) fn decide(
        &self,
        agent: &Agent,
        def: &ServiceDef,
        row: &AccountRow,
        method: &str,
        path: &AgentPath,
    ) -> Result<Decision> {
        let now = self.inner.clock.now();
        let read = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
        let granted_until = if read || agent.trusted {
            None
        } else {
            self.inner
                .store
                .grant_until(agent.id, def.key, &row.name, &timestamp(now))?
                .and_then(|t| parse_timestamp(&t))
        };
        let facts = AgentFacts {
            id: agent.id,
            trusted: agent.trusted,
            granted_until,
        };
        // Rules are matched against the path as decoded and as servers that
        // drop `;` parameters or format suffixes route it; the stricter
        // decision holds, so no spelling dodges a rule.
        let decision = path
            .match_forms()
            .map(|form| policy::decide(&row.policy, &facts, method, form, now))
            .max_by_key(|d| strictness(d.outcome))
            .unwrap_or_else(|| policy::decide(&row.policy, &facts, method, path.normalized(), now));
        match decision.outcome {
            Outcome::NoAccess => Err(access_denied(def, &row.name)),
            Outcome::Denied => Err(Error::Forbidden(format!(
                "{method} {path} on {}/{} is denied by the account's policy ({})",
                def.key, row.name, decision.reason
            ))),
            _ => Ok(decision),
        }
    }

    /// Whether the agent may use the account at all (for lists and docs).
    pub fn agent_may_use(&self, agent: &Agent, service: &str, account: &str) -> bool {
        self.account_row(service, account)
            .map(|(_, row)| policy::has_access(&row.policy, agent.id))
            .unwrap_or(false)
    }

    // ----- the admin's side -----

    fn agent_ids(&self, names: &[String]) -> Result<Vec<i64>> {
        names.iter().map(|n| self.agent(n).map(|a| a.id)).collect()
    }

    fn agent_names(&self, ids: &[i64]) -> Result<Vec<String>> {
        let all = self.agents()?;
        Ok(ids
            .iter()
            .filter_map(|id| all.iter().find(|a| a.id == *id).map(|a| a.name.clone()))
            .collect())
    }

    pub fn account_policy(&self, service: &str, name: &str) -> Result<PolicyView> {
        let (_, row) = self.account_row(service, name)?;
        Ok(PolicyView {
            access_mode: row.policy.mode,
            access_agents: self.agent_names(&row.policy.listed)?,
            rules: row
                .policy
                .rules
                .iter()
                .map(|r| {
                    Ok(RuleSpec {
                        method: r.method.clone(),
                        path: r.path.clone(),
                        agents: self.agent_names(&r.agents)?,
                        effect: r.effect,
                    })
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Sets who may use the account. Takes effect on the next request.
    pub fn set_account_access(
        &self,
        service: &str,
        name: &str,
        mode: AccessMode,
        agents: &[String],
    ) -> Result<PolicyView> {
        let (def, _) = self.account_row(service, name)?;
        let ids = self.agent_ids(agents)?;
        self.inner
            .store
            .set_account_access(def.key, name, mode, &ids)?;
        tracing::info!(service = def.key, account = %name, mode = mode.as_str(), "access changed");
        self.account_policy(def.key, name)
    }

    /// Replaces the account's ordered rules. Takes effect on the next request.
    pub fn set_account_rules(
        &self,
        service: &str,
        name: &str,
        specs: Vec<RuleSpec>,
    ) -> Result<PolicyView> {
        let (def, _) = self.account_row(service, name)?;
        if specs.len() > MAX_RULES {
            return Err(Error::invalid(format!(
                "an account holds at most {MAX_RULES} rules"
            )));
        }
        let mut rules = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let method = match spec.method.as_deref().map(str::to_ascii_uppercase) {
                None => None,
                Some(m) if m == "ANY" || m == "*" => None,
                Some(m)
                    if ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) =>
                {
                    Some(m)
                }
                Some(m) => return Err(Error::invalid(format!("rules[{i}]: unknown method {m:?}"))),
            };
            policy::check_glob(&spec.path)
                .map_err(|e| Error::invalid(format!("rules[{i}]: {e}")))?;
            rules.push(Rule {
                method,
                path: spec.path.to_lowercase(),
                agents: self.agent_ids(&spec.agents)?,
                effect: spec.effect,
            });
        }
        self.inner.store.set_account_rules(def.key, name, &rules)?;
        tracing::info!(service = def.key, account = %name, rules = rules.len(), "rules changed");
        self.account_policy(def.key, name)
    }

    /// What would happen to `method path` from `agent` on the account, and why.
    pub fn dry_run(
        &self,
        service: &str,
        name: &str,
        agent: &str,
        method: &str,
        path: &str,
    ) -> Result<Decision> {
        let (def, row) = self.account_row(service, name)?;
        let agent = self.agent(agent)?;
        let path = AgentPath::parse_with_query(path).map_err(|e| Error::invalid(e.to_string()))?;
        if let Some(refusal) = path.match_forms().find_map(|form| def.refusal(form)) {
            return Ok(Decision {
                outcome: Outcome::Denied,
                rule: None,
                reason: match refusal {
                    crate::services::Refusal::Privacy(rule) => format!(
                        "the path is blocked for privacy on {} ({rule:?})",
                        def.display_name
                    ),
                    crate::services::Refusal::AccountControl(rule) => format!(
                        "the path controls the {} account itself and is never an agent's ({rule:?})",
                        def.display_name
                    ),
                },
            });
        }
        let now = self.inner.clock.now();
        let granted_until = self
            .inner
            .store
            .grant_until(agent.id, def.key, &row.name, &timestamp(now))?
            .and_then(|t| parse_timestamp(&t));
        let facts = AgentFacts {
            id: agent.id,
            trusted: agent.trusted,
            granted_until,
        };
        Ok(policy::decide(
            &row.policy,
            &facts,
            &method.to_ascii_uppercase(),
            path.normalized(),
            now,
        ))
    }

    /// Marks an agent trusted: all its writes are approved automatically.
    pub fn set_agent_trusted(&self, name: &str, trusted: bool) -> Result<()> {
        if !self.inner.store.set_agent_trusted(name, trusted)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        tracing::warn!(agent = %name, trusted, "agent trust changed");
        Ok(())
    }

    /// Auto-approves the agent's writes to the account for `minutes`.
    pub fn grant(
        &self,
        agent: &str,
        service: &str,
        account: &str,
        minutes: i64,
    ) -> Result<GrantInfo> {
        let agent = self.agent(agent)?;
        let (def, row) = self.account_row(service, account)?;
        if !(1..=MAX_GRANT_MINUTES).contains(&minutes) {
            return Err(Error::invalid(format!(
                "a grant lasts 1 to {MAX_GRANT_MINUTES} minutes"
            )));
        }
        let now = self.inner.clock.now();
        let expires = now + time::Duration::minutes(minutes);
        let id = self.inner.store.insert_grant(
            agent.id,
            def.key,
            &row.name,
            &timestamp(expires),
            &timestamp(now),
        )?;
        tracing::info!(agent = %agent.name, service = def.key, account = %row.name, minutes, "grant given");
        Ok(GrantInfo {
            id,
            agent: agent.name,
            service: def.key.to_string(),
            account: row.name.clone(),
            expires_at: timestamp(expires),
        })
    }

    pub fn grants(&self) -> Result<Vec<GrantInfo>> {
        let now: OffsetDateTime = self.inner.clock.now();
        let agents = self.agents()?;
        Ok(self
            .inner
            .store
            .live_grants(&timestamp(now))?
            .into_iter()
            .map(|g| GrantInfo {
                id: g.id,
                agent: agents
                    .iter()
                    .find(|a| a.id == g.agent_id)
                    .map_or_else(|| format!("#{}", g.agent_id), |a| a.name.clone()),
                service: g.service,
                account: g.account,
                expires_at: g.expires_at,
            })
            .collect())
    }

    pub fn revoke_grant(&self, id: i64) -> Result<()> {
        if !self.inner.store.delete_grant(id)? {
            return Err(Error::not_found(format!("no grant {id}")));
        }
        Ok(())
    }
}

/// How much a decision holds an agent back, to pick the stricter of two.
fn strictness(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::NoAccess => 4,
        Outcome::Denied => 3,
        Outcome::Queue => 2,
        Outcome::Read => 1,
        Outcome::AutoApprove => 0,
    }
}

fn access_denied(def: &ServiceDef, account: &str) -> Error {
    Error::Forbidden(format!("Access denied to {}/{account}", def.key))
}
