//! The JSON answers agents get, one typed struct each. The REST handlers, the
//! MCP tools, the webhook payload and the OpenAPI document all use these
//! types, so the shape an agent is promised is the shape it is sent.

use serde::Serialize;
use utoipa::ToSchema;

use crate::queue::{Entry, NotificationState, RequestResult, WriteRequest};
use crate::status::Status;

/// A queue entry as its agent sees it: the contract's fields, the requests as
/// queued, their results and the state of the webhook notification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentEntry {
    pub id: String,
    pub status: Status,
    pub service: String,
    pub account_name: String,
    pub comment: String,
    /// The requests as they run: the agent's own, or a human's edit of them.
    pub requests: Vec<WriteRequest>,
    /// Whether a human changed the requests before deciding.
    pub edited: bool,
    /// The requests as the agent submitted them, when a human edited them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_requests: Option<Vec<WriteRequest>>,
    pub submitted_at: String,
    pub reviewed_at: Option<String>,
    pub completed_at: Option<String>,
    /// Why it was rejected, withdrawn or expired.
    pub rejection_reason: Option<String>,
    /// One per request that ran, in order; a batch stops at the first failure.
    pub results: Vec<RequestResult>,
    /// The notification sent to the agent's webhook, when it has one.
    pub notification: Option<NotificationState>,
}

impl From<&Entry> for AgentEntry {
    fn from(e: &Entry) -> Self {
        AgentEntry {
            id: e.id.clone(),
            status: e.status,
            service: e.service.clone(),
            account_name: e.account_name.clone(),
            comment: e.comment.clone(),
            requests: e.requests.clone(),
            edited: e.edited,
            original_requests: e.original_requests.clone(),
            submitted_at: e.submitted_at.clone(),
            reviewed_at: e.reviewed_at.clone(),
            completed_at: e.completed_at.clone(),
            rejection_reason: e.rejection_reason.clone(),
            results: e.results.clone(),
            notification: e.notification.clone(),
        }
    }
}

/// A page of the agent's own entries, newest first, as summaries: each
/// request's method and path, results without the service's bodies (the
/// status of one entry gives it whole).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentEntryList {
    pub count: usize,
    pub entries: Vec<AgentEntry>,
    /// Pass as `before` for the next page; `null` on the last.
    pub next: Option<String>,
}

impl AgentEntryList {
    pub fn new(entries: &[Entry], next: Option<String>) -> Self {
        AgentEntryList {
            count: entries.len(),
            entries: entries.iter().map(AgentEntry::from).collect(),
            next,
        }
    }
}

/// The answer to a queued write.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Queued {
    pub id: String,
    /// pending, or approved when the account's policy approved it.
    pub status: Status,
    pub message: String,
    /// Where to ask for the outcome, relative to the gateway.
    pub status_url: String,
}

/// Every error answer: what went wrong in words; for an entry that was
/// already decided, its id and state too.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            id: None,
            status: None,
        }
    }
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always "ok" when the gateway answers.
    pub status: &'static str,
    pub version: &'static str,
}

/// What agentgate POSTs to an agent's webhook, in OpenClaw's `/hooks/wake`
/// shape: a text for the agent's model, and the entry (or entries) it is about.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookMessage {
    pub text: String,
    /// Always "now": wake the agent at once.
    pub mode: &'static str,
    /// `queue.<status>` for one entry, `queue.batch` for missed ones sent
    /// together, `test` for a test message.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<AgentEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<AgentEntry>>,
}

impl Queued {
    /// The answer for a write just queued (or approved by policy), with the
    /// URL of its status under the gateway's public `base_url`.
    pub fn new(base_url: &str, entry: &Entry) -> Self {
        let status_url = format!(
            "/api/queue/{}/{}/status/{}",
            entry.service, entry.account_name, entry.id
        );
        let what = if entry.status == Status::Pending {
            "Queued for human approval."
        } else {
            "Approved by the account's policy; it runs now."
        };
        Queued {
            id: entry.id.clone(),
            status: entry.status,
            message: format!("{what} Check the outcome with GET {base_url}{status_url}"),
            status_url,
        }
    }
}

/// A read through MCP: the service's status and its body (JSON when it
/// parses, else text).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadAnswer {
    pub status: u16,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}
