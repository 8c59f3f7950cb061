//! The admin edits an account's ordered endpoint rules: the whole list at
//! once (the JSON API), or one change at a time (the window and the CLI: add,
//! change, move, remove, apply a preset). Each change is made in one
//! transaction on the rules as they are then, and may name the version it was
//! made from, so that two admins' edits never silently undo one another.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Gateway;
use super::policy::PolicyView;
use crate::error::{Error, Result};
use crate::policy::{self, Effect, Rule};

/// Most rules one account may hold.
pub const MAX_RULES: usize = 200;

/// A rule as the admin writes it: agents by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// One change to an account's rules. Positions count from 0.
#[derive(Debug, Clone)]
pub enum RuleEdit {
    /// Inserts the rule at `at` (the end when `None`).
    Add {
        rule: RuleSpec,
        at: Option<usize>,
    },
    Replace {
        index: usize,
        rule: RuleSpec,
    },
    Remove {
        index: usize,
    },
    /// Takes the rule at `from` and puts it at `to`.
    Move {
        from: usize,
        to: usize,
    },
    /// Adds a preset's rules, limited to `agents` (every agent when empty):
    /// its refusals and always-ask rules at the top, its run-without-asking
    /// rules at the end; rules already there are not added twice.
    Preset {
        key: String,
        agents: Vec<String>,
    },
}

fn changed_meanwhile() -> Error {
    Error::Conflict(
        "the rules were changed meanwhile (in another window or by the CLI); reload them and try again"
            .into(),
    )
}

/// A short fingerprint of the rules, to detect a change made meanwhile.
pub(super) fn version(rules: &[Rule]) -> String {
    let json = serde_json::to_vec(rules).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A method as the admin writes it: `None` (or "any", "*") for every
/// method; the write methods and `also` (in any case) name one.
pub(super) fn method_of(method: Option<&str>, also: &[&str]) -> Result<Option<String>> {
    let Some(m) = method.map(|m| m.trim().to_ascii_uppercase()) else {
        return Ok(None);
    };
    if m.is_empty() || m == "ANY" || m == "*" {
        return Ok(None);
    }
    let writes = ["POST", "PUT", "PATCH", "DELETE"];
    if writes.contains(&m.as_str()) || also.contains(&m.as_str()) {
        return Ok(Some(m));
    }
    let known: Vec<&str> = also.iter().chain(writes.iter()).copied().collect();
    Err(Error::invalid(format!(
        "unknown method {m:?}: {} or any",
        known.join(", ")
    )))
}

impl Gateway {
    /// Checks a rule and names its agents by id.
    fn rule_from_spec(&self, spec: &RuleSpec) -> Result<Rule> {
        let method = method_of(spec.method.as_deref(), &["GET", "HEAD"])?;
        let path = spec.path.trim();
        policy::check_glob(path).map_err(Error::invalid)?;
        let mut agents = self.agent_ids(&spec.agents)?;
        agents.sort_unstable();
        agents.dedup();
        Ok(Rule {
            method,
            path: path.to_lowercase(),
            agents,
            effect: spec.effect,
        })
    }

    /// Replaces the account's ordered rules. Takes effect on the next request.
    pub fn set_account_rules(
        &self,
        service: &str,
        name: &str,
        specs: Vec<RuleSpec>,
    ) -> Result<PolicyView> {
        self.set_account_rules_from(service, name, specs, None)
    }

    /// The same, only if the rules are still at `expected` (409 otherwise).
    pub fn set_account_rules_from(
        &self,
        service: &str,
        name: &str,
        specs: Vec<RuleSpec>,
        expected: Option<&str>,
    ) -> Result<PolicyView> {
        let (def, _) = self.account_row(service, name)?;
        if specs.len() > MAX_RULES {
            return Err(Error::invalid(format!(
                "an account holds at most {MAX_RULES} rules"
            )));
        }
        let rules = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                self.rule_from_spec(spec).map_err(|e| match e {
                    Error::Invalid(m) => Error::Invalid(format!("rules[{i}]: {m}")),
                    e => e,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.inner
            .store
            .update_account_rules(def.key, name, |current| {
                if let Some(expected) = expected
                    && version(&current) != expected
                {
                    return Err(changed_meanwhile());
                }
                Ok(rules.clone())
            })?
            .ok_or_else(|| {
                Error::not_found(format!("no {} account named {name:?}", def.display_name))
            })?;
        tracing::info!(service = def.key, account = %name, rules = rules.len(), "rules changed");
        self.account_policy(def.key, name)
    }

    /// Makes one change to the account's rules. With `expected`, refuses
    /// (409) when the rules are no longer at that version.
    pub fn edit_rules(
        &self,
        service: &str,
        name: &str,
        edit: RuleEdit,
        expected: Option<&str>,
    ) -> Result<PolicyView> {
        let (def, _) = self.account_row(service, name)?;
        // Agents are named by id before the transaction: it holds the
        // database, and looking them up inside would wait on itself.
        enum Change {
            Add(Rule, Option<usize>),
            Replace(usize, Rule),
            Remove(usize),
            Move(usize, usize),
            Preset(Vec<Rule>),
        }
        let change = match edit {
            RuleEdit::Add { rule, at } => Change::Add(self.rule_from_spec(&rule)?, at),
            RuleEdit::Replace { index, rule } => {
                Change::Replace(index, self.rule_from_spec(&rule)?)
            }
            RuleEdit::Remove { index } => Change::Remove(index),
            RuleEdit::Move { from, to } => Change::Move(from, to),
            RuleEdit::Preset { key, agents } => {
                let preset = crate::presets::find(def.key, &key).ok_or_else(|| {
                    Error::invalid(format!(
                        "{} has no preset {key:?}; it has: {}",
                        def.display_name,
                        crate::presets::for_service(def.key)
                            .iter()
                            .map(|p| p.key)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                let ids = self.agent_ids(&agents)?;
                Change::Preset(
                    preset
                        .rules
                        .iter()
                        .map(|(method, path, effect)| Rule {
                            method: method.map(str::to_string),
                            path: path.to_string(),
                            agents: ids.clone(),
                            effect: *effect,
                        })
                        .collect(),
                )
            }
        };
        let no_rule = |i: usize, len: usize| {
            Error::invalid(format!(
                "there is no rule {}: the account has {len}",
                i.saturating_add(1)
            ))
        };
        let changed = self
            .inner
            .store
            .update_account_rules(def.key, name, |mut rules| {
                if let Some(expected) = expected
                    && version(&rules) != expected
                {
                    return Err(changed_meanwhile());
                }
                let len = rules.len();
                match change {
                    Change::Add(rule, at) => {
                        let at = at.unwrap_or(len);
                        if at > len {
                            return Err(no_rule(at, len));
                        }
                        rules.insert(at, rule);
                    }
                    Change::Replace(i, rule) => {
                        *rules.get_mut(i).ok_or_else(|| no_rule(i, len))? = rule
                    }
                    Change::Remove(i) => {
                        if i >= len {
                            return Err(no_rule(i, len));
                        }
                        rules.remove(i);
                    }
                    Change::Move(from, to) => {
                        if from >= len {
                            return Err(no_rule(from, len));
                        }
                        if to >= len {
                            return Err(no_rule(to, len));
                        }
                        let rule = rules.remove(from);
                        rules.insert(to, rule);
                    }
                    Change::Preset(new) => {
                        // What a preset refuses or always asks for goes first, so
                        // it holds; what it lets run without asking goes last, so
                        // it never loosens a rule the admin wrote.
                        let (strict, loose): (Vec<Rule>, Vec<Rule>) = new
                            .into_iter()
                            .filter(|r| !rules.contains(r))
                            .partition(|r| {
                                matches!(r.effect, Effect::Deny | Effect::RequireApproval)
                            });
                        rules.splice(0..0, strict);
                        rules.extend(loose);
                    }
                }
                if rules.len() > MAX_RULES {
                    return Err(Error::invalid(format!(
                        "an account holds at most {MAX_RULES} rules"
                    )));
                }
                Ok(rules)
            })?;
        let rules = changed.ok_or_else(|| {
            Error::not_found(format!("no {} account named {name:?}", def.display_name))
        })?;
        tracing::info!(service = def.key, account = %name, rules = rules.len(), "rules changed");
        self.account_policy(def.key, name)
    }
}
