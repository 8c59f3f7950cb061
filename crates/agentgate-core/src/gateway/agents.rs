//! Agents: creating them with their key, recognising a key on every request,
//! and the admin's changes (enable, rename, raw answers, revoke).

use std::sync::Arc;

use super::Gateway;
use crate::agent::Agent;
use crate::error::{Error, Result};
use crate::keys;
use crate::queue::{EntryFilter, Status};
use crate::secret::Secret;
use crate::store::KeyedAgent;

impl Gateway {
    /// Creates an agent and returns it with its key, which is never available again.
    pub fn create_agent(&self, name: &str) -> Result<(Agent, Secret)> {
        let name = check_name(name, "agent name")?;
        let key = keys::new_agent_key();
        let digest = keys::agent_key_digest(self.inner.pepper.expose().as_bytes(), &key);
        let agent =
            self.inner
                .store
                .insert_agent(name, &digest, &keys::key_hint(&key), &self.now())?;
        tracing::info!(agent = %agent.name, "agent created");
        Ok((agent, Secret::new(key)))
    }

    /// Resolves an `Authorization` header value to an enabled agent.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Agent>> {
        let Some(header) = authorization else {
            return Err(Error::Unauthorized(
                "missing Authorization header: send \"Authorization: Bearer rms_...\"".into(),
            ));
        };
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Error::Unauthorized("the Authorization header must be \"Bearer <key>\"".into())
            })?;
        if !keys::is_well_formed_agent_key(key) {
            return Err(Error::Unauthorized(
                "malformed API key: agent keys look like rms_ followed by 40 letters and digits"
                    .into(),
            ));
        }
        let digest = keys::agent_key_digest(self.inner.pepper.expose().as_bytes(), key);
        let found = self.inner.hot.agent_by_digest(&digest)?;
        match found {
            Some(KeyedAgent {
                agent,
                digest: stored,
            }) if keys::digests_equal(&stored, &digest) => {
                if agent.enabled {
                    Ok(agent)
                } else {
                    Err(Error::Forbidden(format!(
                        "agent {:?} is disabled",
                        agent.name
                    )))
                }
            }
            _ => Err(Error::Unauthorized("unknown API key".into())),
        }
    }

    pub fn agent(&self, name: &str) -> Result<Agent> {
        self.inner
            .store
            .agent_by_name(name)?
            .ok_or_else(|| Error::not_found(format!("no agent named {name:?}")))
    }

    pub fn agents(&self) -> Result<Vec<Agent>> {
        self.inner.store.agents()
    }

    pub fn set_agent_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        if !self.inner.store.set_agent_enabled(name, enabled)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        tracing::info!(agent = %name, enabled, "agent updated");
        Ok(())
    }

    /// Whether the agent gets services' answers as sent (never compacted).
    pub fn set_agent_raw(&self, name: &str, raw: bool) -> Result<()> {
        if !self.inner.store.set_agent_raw(name, raw)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        Ok(())
    }

    pub fn rename_agent(&self, name: &str, new_name: &str) -> Result<()> {
        let new_name = check_name(new_name, "agent name")?;
        if !self.inner.store.rename_agent(name, new_name)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        Ok(())
    }

    /// Deletes the agent's key for good. Its queue entries stay as history.
    /// Its pending writes are rejected by the system: nobody may approve them
    /// any more (an approved one that has not run yet is refused when it would).
    pub fn revoke_agent(&self, name: &str) -> Result<()> {
        let agent = self.agent(name)?;
        if !self.inner.store.delete_agent(name)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        // Its grants end, and it leaves access lists and rules: a rule that
        // named only it goes too (with no agents it would name every one).
        self.inner.store.forget_agent(agent.id)?;
        tracing::info!(agent = %name, "agent revoked");
        let pending = self.inner.store.entries(&EntryFilter {
            status: Some(Status::Pending),
            agent_id: Some(agent.id),
            ..Default::default()
        })?;
        for entry in &pending {
            self.reject_for_revoked_agent(entry)?;
        }
        Ok(())
    }
}

/// Names of agents and accounts: short, printable, and safe in URLs and keychain item names.
pub(super) fn check_name<'a>(name: &'a str, what: &str) -> Result<&'a str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(name)
    } else {
        Err(Error::invalid(format!(
            "{what} {name:?} must be 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted() {
        assert!(check_name("claude-code_1.2", "n").is_ok());
        for bad in ["", "a/b", "a b", ".hidden", &"x".repeat(65), "é"] {
            assert!(check_name(bad, "n").is_err(), "{bad:?}");
        }
    }
}
