//! An agent as the rest of the core sees it: a name with a key (kept only as a
//! digest in the store) and the agent's own switches.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, enough to tell keys apart in a list.
    pub key_hint: String,
    pub enabled: bool,
    pub created_at: String,
    /// Whether this agent gets services' answers as sent rather than compacted.
    pub raw_responses: bool,
    /// Whether all of this agent's writes are approved automatically.
    pub trusted: bool,
    /// Where outcomes of this agent's writes are POSTed.
    pub webhook_url: Option<String>,
    /// Whether approvals are announced too, not only final outcomes.
    pub webhook_on_approved: bool,
}
