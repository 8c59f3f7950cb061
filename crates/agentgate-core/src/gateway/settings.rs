//! Settings the admin changes while the gateway runs, the pause switch shared
//! by every surface, and the per-agent rate limits they set.

use serde::{Deserialize, Serialize};

use super::{Gateway, PAUSED_KEY, SETTINGS_KEY};
use crate::agent::Agent;
use crate::error::{Error, Result};

/// Settings the admin can change while the gateway runs. Fields added later
/// take their defaults when older stored settings lack them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub upstream_timeout_secs: u64,
    /// Pending entries nobody decided on expire after this many hours.
    pub pending_expiry_hours: u64,
    /// Reads per minute per agent; 0 for no limit.
    pub reads_per_minute: u32,
    /// Submissions per hour per agent; 0 for no limit.
    pub submissions_per_hour: u32,
    /// Audit records older than this many days are removed.
    pub audit_retention_days: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            upstream_timeout_secs: crate::config::DEFAULT_UPSTREAM_TIMEOUT.as_secs(),
            pending_expiry_hours: 7 * 24,
            reads_per_minute: 600,
            submissions_per_hour: 120,
            audit_retention_days: 90,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub upstream_timeout_secs: Option<u64>,
    pub pending_expiry_hours: Option<u64>,
    pub reads_per_minute: Option<u32>,
    pub submissions_per_hour: Option<u32>,
    pub audit_retention_days: Option<u64>,
}

impl Gateway {
    // ----- pause -----

    /// Pauses or resumes all agents. Kept in the database, so the CLI, the web
    /// admin and the desktop tray share one switch and it survives a restart.
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        self.inner
            .store
            .set_setting(PAUSED_KEY, if paused { "1" } else { "0" })?;
        tracing::warn!(
            paused,
            "agents {}",
            if paused { "paused" } else { "resumed" }
        );
        Ok(())
    }

    pub fn is_paused(&self) -> Result<bool> {
        Ok(self.inner.hot.setting(PAUSED_KEY)?.as_deref() == Some("1"))
    }

    pub(super) fn check_not_paused(&self) -> Result<()> {
        if self.is_paused()? {
            return Err(Error::Paused(
                "agentgate is paused by its owner: reads and submissions are refused until it is resumed".into(),
            ));
        }
        Ok(())
    }

    /// A slot for one of the agent's requests with a body, held while it is
    /// read and handled.
    pub fn body_slot(&self, agent: &Agent) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.inner.limits.body_slot(agent.id)
    }

    pub(super) fn check_rate(&self, agent: &Agent, kind: crate::limits::Kind) -> Result<()> {
        let s = self.settings();
        let (limit, window) = match kind {
            crate::limits::Kind::Read => (s.reads_per_minute, time::Duration::minutes(1)),
            crate::limits::Kind::Submit => (s.submissions_per_hour, time::Duration::hours(1)),
        };
        self.inner
            .limits
            .check(agent.id, kind, limit, window, self.inner.clock.now())
    }

    pub fn settings(&self) -> Settings {
        self.inner
            .settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn update_settings(&self, update: SettingsUpdate) -> Result<Settings> {
        let mut s = self.settings();
        if let Some(t) = update.upstream_timeout_secs {
            if !(1..=600).contains(&t) {
                return Err(Error::invalid(
                    "upstream_timeout_secs must be between 1 and 600",
                ));
            }
            s.upstream_timeout_secs = t;
        }
        if let Some(h) = update.pending_expiry_hours {
            if !(1..=24 * 365).contains(&h) {
                return Err(Error::invalid(
                    "pending_expiry_hours must be between 1 and 8760",
                ));
            }
            s.pending_expiry_hours = h;
        }
        if let Some(n) = update.reads_per_minute {
            if n > 100_000 {
                return Err(Error::invalid(
                    "reads_per_minute must be at most 100000 (0: no limit)",
                ));
            }
            s.reads_per_minute = n;
        }
        if let Some(n) = update.submissions_per_hour {
            if n > 100_000 {
                return Err(Error::invalid(
                    "submissions_per_hour must be at most 100000 (0: no limit)",
                ));
            }
            s.submissions_per_hour = n;
        }
        if let Some(d) = update.audit_retention_days {
            if !(1..=3650).contains(&d) {
                return Err(Error::invalid(
                    "audit_retention_days must be between 1 and 3650",
                ));
            }
            s.audit_retention_days = d;
        }
        let json = serde_json::to_string(&s).map_err(|e| Error::Internal(e.into()))?;
        self.inner.store.set_setting(SETTINGS_KEY, &json)?;
        *self
            .inner
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = s.clone();
        Ok(s)
    }
}
