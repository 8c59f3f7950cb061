//! The states of a queue entry. A leaf module: the core's error type names a
//! state (an entry already decided), so the states cannot depend on it.
//!
//! ```text
//! pending -> approved -> executing -> completed
//!                                  -> failed
//! pending -> rejected      (by a human, with an optional reason)
//! pending -> withdrawn     (by the submitting agent)
//! pending -> expired       (nobody decided in time)
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Executing,
    Completed,
    Failed,
    Rejected,
    Withdrawn,
    /// Nobody decided within the pending-entry lifetime.
    Expired,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::Approved,
        Status::Executing,
        Status::Completed,
        Status::Failed,
        Status::Rejected,
        Status::Withdrawn,
        Status::Expired,
    ];

    /// Whether reaching this state is announced to the agent's webhook.
    pub fn notifies(self) -> bool {
        matches!(
            self,
            Status::Completed
                | Status::Failed
                | Status::Rejected
                | Status::Expired
                | Status::Approved
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Executing => "executing",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
            Status::Expired => "expired",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// A status name that is none of [`Status::ALL`].
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown status {0:?}; expected one of pending, approved, executing, completed, failed, rejected, withdrawn, expired"
)]
pub struct UnknownStatus(pub String);
