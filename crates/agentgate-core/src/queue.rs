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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{MAX_BATCH_REQUESTS, MAX_COMMENT_CHARS};
use crate::error::Error;
use crate::headers;
use crate::paths::AgentPath;
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
}

/// One upstream request of a batch, frozen once submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WriteRequest {
    /// POST, PUT, PATCH or DELETE.
    pub method: String,
    /// Relative to the service's API base; may carry a query string.
    pub path: String,
    /// Any JSON value, or a string sent as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    /// Extra headers; credential, cookie, host and routing headers are dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl WriteRequest {
    /// Every parameter the service may read from this request, decoded the
    /// way it decodes them, duplicates kept: the query string's, the fields
    /// of a form body, and the top-level fields of a JSON body (or of JSON
    /// held in a string). Checks that look for a field look here, so that no
    /// spelling or place of it goes unseen.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if let Some((_, query)) = self.path.split_once('?') {
            out.extend(
                url::form_urlencoded::parse(query.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        let mut json_fields = |v: &Value| {
            if let Value::Object(o) = v {
                for (k, v) in o {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.push((k.clone(), text));
                }
            }
        };
        match &self.body {
            Some(Value::String(text)) => {
                if let Ok(v) = serde_json::from_str::<Value>(text) {
                    json_fields(&v);
                }
                out.extend(
                    url::form_urlencoded::parse(text.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned())),
                );
            }
            Some(v) => json_fields(v),
            None => {}
        }
        out
    }
}

/// Whether a parameter's name is `name`, also as part of a bracketed name
/// (`status[visibility]`, `visibility[]`) as Rails-style services read them.
pub fn field_named(key: &str, name: &str) -> bool {
    key.split(['[', ']'])
        .any(|part| part.trim().eq_ignore_ascii_case(name))
}

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

pub const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

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
    let raw = match sub.requests {
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
    let requests = raw
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            validate_request(r).map_err(|e| Error::invalid(format!("requests[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((requests, comment))
}

fn validate_request(r: Value) -> Result<WriteRequest, String> {
    let Value::Object(mut obj) = r else {
        return Err("each request must be an object with \"method\" and \"path\"".into());
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "method" | "path" | "body" | "headers") {
            return Err(format!(
                "unknown field {key:?}; a request has method, path, body and headers"
            ));
        }
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m.to_ascii_uppercase(),
        Some(_) => return Err("\"method\" must be a string".into()),
        None => return Err("\"method\" is required".into()),
    };
    if !WRITE_METHODS.contains(&method.as_str()) {
        return Err(format!(
            "\"method\" must be one of POST, PUT, PATCH, DELETE (reads are not queued; call GET directly), not {method:?}"
        ));
    }
    let path = match obj.remove("path") {
        Some(Value::String(p)) => p,
        Some(_) => return Err("\"path\" must be a string".into()),
        None => return Err("\"path\" is required".into()),
    };
    let path = AgentPath::parse_with_query(&path)
        .map_err(|e| e.to_string())?
        .to_string();
    let body = match obj.remove("body") {
        None | Some(Value::Null) => None,
        Some(b) => Some(b),
    };
    let headers = match obj.remove("headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(h)) => {
            let mut out = BTreeMap::new();
            for (name, value) in h {
                let Value::String(value) = value else {
                    return Err(format!("header {name:?} must have a string value"));
                };
                if let Some((name, value)) = headers::agent_header(&name, &value)? {
                    out.insert(name, value);
                }
            }
            out
        }
        Some(_) => return Err("\"headers\" must be an object of strings".into()),
    };
    let request = WriteRequest {
        method,
        path,
        body,
        headers,
    };
    // A method override would run another method than the one a human
    // approves (a POST that the service treats as a DELETE).
    if let Some((k, _)) = request
        .fields()
        .into_iter()
        .find(|(k, _)| field_named(k, "_method"))
    {
        return Err(format!(
            "the parameter {k:?} overrides the method; send the request with the method it means"
        ));
    }
    // A string body is sent as it is: labelled JSON (or not labelled at all,
    // which is sent as JSON) the human would see a string where the service
    // reads a document.
    if let Some(Value::String(text)) = &request.body {
        let json_type = request
            .headers
            .get("content-type")
            .is_none_or(|t| t.to_ascii_lowercase().contains("json"));
        if json_type {
            return Err(if serde_json::from_str::<Value>(text).is_ok() {
                "the body is a string holding JSON; send the JSON itself as \"body\"".into()
            } else {
                "a text body needs a \"content-type\" header saying what it is \
                 (e.g. application/x-www-form-urlencoded or text/plain)"
                    .into()
            });
        }
    }
    Ok(request)
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
            reqs[0].headers.len(),
            1,
            "credential and routing headers are dropped"
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
