//! The write queue's vocabulary: entry states, the requests an agent submits, and
//! the rules a submission must meet before it is stored.
//!
//! ```text
//! pending -> approved -> executing -> completed
//!                                  -> failed
//! pending -> rejected      (by a human, with an optional reason)
//! pending -> withdrawn     (by the submitting agent)
//! pending -> expired       (nobody decided in time)
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{MAX_BATCH_REQUESTS, MAX_COMMENT_CHARS};
use crate::error::Error;
pub use crate::request::{WRITE_METHODS, WriteRequest, field_named};
pub use crate::status::Status;

/// Which queue entries to list; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub status: Option<Status>,
    pub agent_id: Option<i64>,
    pub agent_name: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    pub limit: Option<usize>,
    /// Only entries listed after this one (its id): the next page.
    pub before: Option<String>,
    /// Summaries only: each request's method and path, results without the
    /// service's bodies, no original requests. The store leaves the bodies in
    /// the database, so a long list costs little memory.
    pub summaries: bool,
}

/// One page of a list: at most `limit` entries after the entry `before`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: Option<usize>,
    pub before: Option<String>,
}

/// Entries an agent's list answers by default, and at most.
pub const LIST_PAGE: usize = 50;
pub const MAX_LIST_PAGE: usize = 100;

/// What happened to one request of an executed batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestResult {
    pub index: usize,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The service's answer: JSON when it parsed, else text (capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: String,
    #[serde(skip)]
    pub agent_id: i64,
    #[serde(rename = "agent")]
    pub agent_name: String,
    pub service: String,
    pub account_name: String,
    /// The id of the account row it was submitted for (none for entries older
    /// than that record).
    #[serde(skip)]
    pub account_id: Option<i64>,
    pub comment: String,
    pub requests: Vec<WriteRequest>,
    /// SHA-256 of the canonical requests, in hex: an approval names the
    /// digest of what the human was shown, and runs nothing if it differs.
    pub digest: String,
    /// Whether a human changed the requests before deciding.
    pub edited: bool,
    /// The requests as the agent submitted them, when a human edited them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_requests: Option<Vec<WriteRequest>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_by: Option<String>,
    pub status: Status,
    pub submitted_at: String,
    pub reviewed_at: Option<String>,
    pub reviewed_by: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub rejection_reason: Option<String>,
    pub results: Vec<RequestResult>,
    /// The webhook notification of this entry, when the agent has a webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationState>,
}

/// What an entry shows about the notification sent to its agent's webhook.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NotificationState {
    pub id: i64,
    /// The queue entry it announces.
    pub entry_id: String,
    /// The state announced: completed, failed, rejected, expired or approved.
    pub event: String,
    /// pending (being sent or retried), delivered or failed (given up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

/// The body of `POST /api/queue/{service}/{account}/submit`, before validation.
/// Fields are loosely typed so that a wrong type gets a precise message instead of
/// a serde error about the whole document.
#[derive(Debug, Deserialize)]
pub struct Submission {
    pub requests: Option<Value>,
    pub comment: Option<Value>,
}

/// Checks a submission against every rule and limit, returning the batch to store
/// (paths normalised, headers filtered) and the comment.
pub fn validate_submission(sub: Submission) -> Result<(Vec<WriteRequest>, String), Error> {
    let comment = match sub.comment {
        Some(Value::String(c)) if !c.trim().is_empty() => c,
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(Error::invalid(
                "\"comment\" is required: say why you want this, a human decides on it",
            ));
        }
        Some(_) => return Err(Error::invalid("\"comment\" must be a string")),
    };
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(Error::invalid(format!(
            "\"comment\" is longer than the limit of {MAX_COMMENT_CHARS} characters"
        )));
    }
    let requests = validate_requests(sub.requests)?;
    Ok((requests, comment))
}

/// Parses a batch of requests (a submission's, or a human's edit of one)
/// into their canonical form, within the batch limits.
pub fn validate_requests(requests: Option<Value>) -> Result<Vec<WriteRequest>, Error> {
    let raw = match requests {
        Some(Value::Array(r)) => r,
        None | Some(Value::Null) => {
            return Err(Error::invalid(
                "\"requests\" is required: a non-empty array of requests",
            ));
        }
        Some(_) => return Err(Error::invalid("\"requests\" must be an array")),
    };
    if raw.is_empty() {
        return Err(Error::invalid("\"requests\" must not be empty"));
    }
    if raw.len() > MAX_BATCH_REQUESTS {
        return Err(Error::invalid(format!(
            "a batch holds at most {MAX_BATCH_REQUESTS} requests; this one has {}",
            raw.len()
        )));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            WriteRequest::parse(r).map_err(|e| Error::invalid(format!("requests[{i}]: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sub(v: Value) -> Submission {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_good_submission_is_normalised() {
        let (reqs, comment) = validate_submission(sub(json!({
            "requests": [{"method": "post", "path": "repos/o/r/issues", "body": {"title": "Bug"},
                          "headers": {"Accept": "application/json", "Authorization": "Bearer x", "Host": "evil"}}],
            "comment": "file the bug"
        })))
        .unwrap();
        assert_eq!(comment, "file the bug");
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].path, "/repos/o/r/issues");
        assert_eq!(
            reqs[0].headers.keys().collect::<Vec<_>>(),
            ["accept", "content-type"],
            "credential and routing headers are dropped; the body's type is said"
        );
        assert_eq!(reqs[0].headers["accept"], "application/json");
    }

    #[test]
    fn bad_submissions_say_what_is_wrong() {
        let cases = [
            (json!({"requests": [], "comment": "c"}), "must not be empty"),
            (
                json!({"requests": [{"method": "GET", "path": "/x"}], "comment": "c"}),
                "must be one of",
            ),
            (
                json!({"requests": [{"method": "POST", "path": "/x"}]}),
                "comment",
            ),
            (
                json!({"requests": [{"method": "POST", "path": "/x"}], "comment": 3}),
                "must be a string",
            ),
            (
                json!({"requests": "nope", "comment": "c"}),
                "must be an array",
            ),
            (
                json!({"requests": [{"method": "POST"}], "comment": "c"}),
                "\"path\" is required",
            ),
            (
                json!({"requests": [{"method": "POST", "path": "/a/../b"}], "comment": "c"}),
                "..",
            ),
            (
                json!({"requests": [{"method": "POST", "path": "/x", "extra": 1}], "comment": "c"}),
                "unknown field",
            ),
        ];
        for (input, needle) in cases {
            let err = validate_submission(sub(input.clone()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(needle),
                "{input} gave {err:?}, expected {needle:?}"
            );
        }
        let many: Vec<Value> = (0..=MAX_BATCH_REQUESTS)
            .map(|_| json!({"method": "POST", "path": "/x"}))
            .collect();
        assert!(validate_submission(sub(json!({"requests": many, "comment": "c"}))).is_err());
    }

    #[test]
    fn status_parses_case_insensitively() {
        assert_eq!("Pending".parse::<Status>().unwrap(), Status::Pending);
        assert!("nope".parse::<Status>().is_err());
    }
}
