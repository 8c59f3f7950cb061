//! Applying the policy engine ([`crate::policy`]) to agents' requests, the
//! dry run that explains a decision to the admin, and who may use an account.
//! Editing rules is in [`super::rules`], grants in [`super::grants`].

use serde::Serialize;

use super::Gateway;
use crate::agent::Agent;
use crate::clock::{parse_timestamp, timestamp};
use crate::error::{Error, Result};
use crate::paths::AgentPath;
use crate::policy::{self, AccessMode, AccountPolicy, AgentFacts, Decision, GrantScope, Outcome};
use crate::services::ServiceDef;
use crate::store::AccountRow;

use super::rules::RuleSpec;

/// An account's policy as the admin sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub access_mode: AccessMode,
    pub access_agents: Vec<String>,
    /// Who may use the account, in words.
    pub access_words: String,
    pub rules: Vec<RuleSpec>,
    /// Each rule's effect in words, in the order of `rules`.
    pub rule_words: Vec<String>,
    /// Changes with every change to the rules; an edit that names it is
    /// refused (409) when someone else changed the rules meanwhile.
    pub version: String,
}

impl Gateway {
    /// The account an agent names, if it may use it. An account that does
    /// not exist gets the very answer of one the agent may not use, so that
    /// no agent can list the owner's account names by probing.
    pub(super) fn agent_account(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
    ) -> Result<(&'static ServiceDef, std::sync::Arc<AccountRow>)> {
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

    /// Refuses an agent the account's access mode excludes, in the contract's words.
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

    /// What the engine needs to know of the agent on this account. Grants
    /// are looked up only for writes of an agent that is not trusted, and
    /// never for a write that destroys, overwrites or exposes something
    /// (`dangerous`): those always get a human's second yes. A grant covers
    /// the write when its method matches and its pattern matches the path
    /// exactly as the service receives it, case for case.
    fn facts(
        &self,
        agent: &Agent,
        def: &ServiceDef,
        row: &AccountRow,
        method: &str,
        path: &AgentPath,
        dangerous: bool,
    ) -> Result<AgentFacts> {
        let grants = if policy::is_read(method) || agent.trusted || dangerous {
            Vec::new()
        } else {
            let now = timestamp(self.inner.clock.now());
            let exact = path.decoded();
            self.inner
                .store
                .live_grants_for(agent.id, def.key, &row.name, &now)?
                .into_iter()
                .filter(|g| {
                    g.method
                        .as_deref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(method))
                        && g.path
                            .as_deref()
                            .is_none_or(|p| policy::glob_match(p, &exact))
                })
                .filter_map(|g| {
                    Some(GrantScope {
                        method: None,
                        path: None,
                        until: parse_timestamp(&g.expires_at)?,
                    })
                })
                .collect()
        };
        Ok(AgentFacts {
            id: agent.id,
            trusted: agent.trusted,
            grants,
        })
    }

    /// The decision on one request. Rules are matched against every form a
    /// server may route the path as (decoded, without `;` parameters or a
    /// format suffix, and the service's own reroutes, such as XRPC by method
    /// name); the stricter decision holds, so no spelling dodges a rule.
    fn decision(
        &self,
        agent: &Agent,
        def: &ServiceDef,
        row: &AccountRow,
        method: &str,
        path: &AgentPath,
        dangerous: bool,
    ) -> Result<Decision> {
        let now = self.inner.clock.now();
        let facts = self.facts(agent, def, row, method, path, dangerous)?;
        let decide = |form: &str| policy::decide(&row.policy, &facts, method, form, now);
        // Without rules the form cannot matter; reads skip the allocation.
        if row.policy.rules.is_empty() {
            return Ok(decide(path.normalized()));
        }
        Ok(def
            .forms(path)
            .iter()
            .map(|form| decide(form))
            .max_by_key(|d| strictness(d.outcome))
            .unwrap_or_else(|| decide(path.normalized())))
    }

    /// Decides one request of `agent`: refusals as errors. `dangerous`: the
    /// write destroys, overwrites or exposes something (no grant covers it).
    pub(super) fn decide(
        &self,
        agent: &Agent,
        def: &ServiceDef,
        row: &AccountRow,
        method: &str,
        path: &AgentPath,
        dangerous: bool,
    ) -> Result<Decision> {
        let decision = self.decision(agent, def, row, method, path, dangerous)?;
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

    /// What would happen to `method path` from `agent` on the account, and
    /// why: the very decision a request would get, nothing sent.
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
        let method = method.trim().to_ascii_uppercase();
        if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(Error::invalid(format!(
                "unknown method {method:?}: GET, HEAD, POST, PUT, PATCH or DELETE"
            )));
        }
        let path =
            AgentPath::parse_with_query(path.trim()).map_err(|e| Error::invalid(e.to_string()))?;
        if !agent.enabled {
            return Ok(Decision {
                outcome: Outcome::NoAccess,
                rule: None,
                reason: format!("{} is disabled: every request is refused", agent.name),
            });
        }
        if let Some(refusal) = def.forms(&path).iter().find_map(|form| def.refusal(form)) {
            return Ok(Decision {
                outcome: Outcome::Denied,
                rule: None,
                reason: refusal.reason(def.display_name, "the path"),
            });
        }
        // The body is not known here: a write that the body makes
        // destructive gets no grant when it comes.
        self.decision(&agent, def, &row, &method, &path, false)
    }

    pub(super) fn agent_ids(&self, names: &[String]) -> Result<Vec<i64>> {
        names.iter().map(|n| self.agent(n).map(|a| a.id)).collect()
    }

    /// Agents by name; one no longer there is named as removed, never left
    /// out (a rule's list without it would read as "every agent").
    pub(super) fn agent_names(&self, ids: &[i64]) -> Result<Vec<String>> {
        let all = self.agents()?;
        Ok(ids
            .iter()
            .map(|id| {
                all.iter()
                    .find(|a| a.id == *id)
                    .map_or_else(|| format!("#{id} (removed)"), |a| a.name.clone())
            })
            .collect())
    }

    pub fn account_policy(&self, service: &str, name: &str) -> Result<PolicyView> {
        let (def, row) = self.account_row(service, name)?;
        self.policy_view(def, &row.policy)
    }

    pub(super) fn policy_view(&self, def: &ServiceDef, p: &AccountPolicy) -> Result<PolicyView> {
        let access_agents = self.agent_names(&p.listed)?;
        let names = crate::rule_words::who(&access_agents);
        let access_words = match p.mode {
            AccessMode::All => "Every agent may use this account.".to_string(),
            AccessMode::Allowlist if access_agents.is_empty() => {
                "No agent may use this account.".to_string()
            }
            AccessMode::Allowlist => format!("Only {names} may use this account."),
            AccessMode::Denylist if access_agents.is_empty() => {
                "Every agent may use this account.".to_string()
            }
            AccessMode::Denylist => format!("Every agent but {names} may use this account."),
        };
        let rules = p
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
            .collect::<Result<Vec<_>>>()?;
        let rule_words = rules
            .iter()
            .map(|r| {
                crate::rule_words::describe(
                    def.key,
                    r.method.as_deref(),
                    &r.path,
                    &r.agents,
                    r.effect,
                )
            })
            .collect();
        Ok(PolicyView {
            access_mode: p.mode,
            access_agents,
            access_words,
            rules,
            rule_words,
            version: super::rules::version(&p.rules),
        })
    }

    /// Marks an agent trusted: all its writes are approved automatically.
    pub fn set_agent_trusted(&self, name: &str, trusted: bool) -> Result<()> {
        if !self.inner.store.set_agent_trusted(name, trusted)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        tracing::warn!(agent = %name, trusted, "agent trust changed");
        Ok(())
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
        let mut ids = self.agent_ids(agents)?;
        ids.sort_unstable();
        ids.dedup();
        // Every agent is in: a list would only be remembered, never used.
        if mode == AccessMode::All {
            ids.clear();
        }
        self.inner
            .store
            .set_account_access(def.key, name, mode, &ids)?;
        tracing::info!(service = def.key, account = %name, mode = mode.as_str(), "access changed");
        self.account_policy(def.key, name)
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
