//! Running approved batches: claiming an entry once, checking again that it
//! may still run, sending its requests in order, saving results as they come,
//! and recovering after a crash.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;

use super::Gateway;
use super::reads::UpstreamCall;
use crate::error::Result;
use crate::paths::AgentPath;
use crate::queue::{Entry, RequestResult, Status, WriteRequest};
use crate::services::ServiceDef;
use crate::store::AccountRow;

/// Largest upstream body kept in a queue entry's results.
const MAX_STORED_RESULT_BYTES: usize = 256 * 1024;

impl Gateway {
    /// Runs an approved entry's batch in order, stopping at the first failure.
    ///
    /// The entry is first claimed (approved to executing) in one conditional
    /// update, so however many callers race here, one runs the batch; the others
    /// get the entry as it stands. Results are saved after every request.
    pub async fn execute(&self, id: &str) -> Result<Entry> {
        let now = self.now();
        if !self.inner.store.start(id, &now)? {
            return self.entry(id);
        }
        let entry = self.entry(id)?;
        self.transitioned(&entry, Some(Status::Approved), Status::Executing, "system");
        let mut results = Vec::with_capacity(entry.requests.len());
        for (index, request) in entry.requests.iter().enumerate() {
            // Checked before every request, not once per batch: a batch can
            // take minutes, and a revocation or a removed account in the
            // middle of it stops what is left.
            let account = self.recheck(&entry);
            if let Err(why) = &account {
                tracing::warn!(entry = %id, index, reason = %why, "the rest of an approved batch was not run");
            }
            let result = match &account {
                Ok((def, row)) => self.run_request(def, row, index, request).await,
                Err(why) => RequestResult {
                    index,
                    ok: false,
                    status: None,
                    body: None,
                    error: Some(why.clone()),
                },
            };
            let ok = result.ok;
            results.push(result);
            self.inner.store.save_results(id, &results)?;
            if !ok {
                break;
            }
        }
        let status = if results.iter().all(|r| r.ok) {
            Status::Completed
        } else {
            Status::Failed
        };
        self.inner.store.finish(id, status, &results, &self.now())?;
        tracing::info!(entry = %id, status = %status, "write executed");
        self.transitioned(&entry, Some(Status::Executing), status, "system");
        self.entry(id)
    }

    /// What made the batch acceptable when a human approved it, checked again
    /// just before each of its requests runs: the agent still exists and is enabled, it may
    /// still use the account, the account is the very one it was submitted for
    /// (not another added since under the same name), and no privacy block,
    /// write check or rule now refuses a request. Returns the account to run
    /// it on, or why nothing may be sent.
    fn recheck(
        &self,
        entry: &Entry,
    ) -> std::result::Result<(&'static ServiceDef, Arc<AccountRow>), String> {
        let not_run = |why: String| format!("not run: {why}");
        let agent = match self.inner.store.agent_by_id(entry.agent_id) {
            Ok(Some(agent)) => agent,
            Ok(None) => {
                return Err(not_run(format!(
                    "the key of agent {:?} was revoked after this was submitted",
                    entry.agent_name
                )));
            }
            Err(e) => return Err(not_run(e.to_string())),
        };
        if !agent.enabled {
            return Err(not_run(format!(
                "agent {:?} was disabled after this was submitted",
                agent.name
            )));
        }
        let (def, row) = self
            .account_row(&entry.service, &entry.account_name)
            .map_err(|e| not_run(e.to_string()))?;
        if entry.account_id.is_some_and(|id| id != row.id) {
            return Err(not_run(format!(
                "{}/{} was removed and added again after this was submitted; \
                 the account of that name now is not the one it was approved for",
                def.key, row.name
            )));
        }
        self.require_access(&agent, def, &row)
            .map_err(|e| not_run(e.to_string()))?;
        for (i, r) in entry.requests.iter().enumerate() {
            // Stored before requests were canonical (an older version), or
            // changed in the database by hand: not what a human was shown.
            if !r.is_canonical() {
                return Err(not_run(format!(
                    "requests[{i}] is not in the form agentgate shows and sends; submit it again"
                )));
            }
        }
        // Then every check a submission passes, as things stand now.
        self.check_writes(&agent, def, &row, &entry.requests)
            .map_err(|e| not_run(e.to_string()))?;
        Ok((def, row))
    }

    /// Runs [`Gateway::execute`] in the background, tracked so that shutdown waits for it.
    pub fn spawn_execute(&self, id: String) {
        let gw = self.clone();
        self.inner.executions.spawn(async move {
            if let Err(e) = gw.execute(&id).await {
                tracing::error!(entry = %id, error = %e, "execution failed");
            }
        });
    }

    /// Waits (at most `limit`) for background executions to finish.
    pub async fn wait_for_executions(&self, limit: Duration) -> bool {
        self.inner.executions.close();
        tokio::time::timeout(limit, self.inner.executions.wait())
            .await
            .is_ok()
    }

    async fn run_request(
        &self,
        def: &'static ServiceDef,
        row: &AccountRow,
        index: usize,
        req: &WriteRequest,
    ) -> RequestResult {
        let fail = |error: String| RequestResult {
            index,
            ok: false,
            status: None,
            body: None,
            error: Some(error),
        };
        let Ok(method) = Method::from_bytes(req.method.as_bytes()) else {
            return fail(format!("invalid method {:?}", req.method));
        };
        let path = match AgentPath::parse_with_query(&req.path) {
            Ok(p) => p,
            Err(e) => return fail(e.to_string()),
        };
        // The canonical request's own headers and bytes: checked canonical
        // just before, so nothing but what the human saw is sent.
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.insert(n, v);
                }
                _ => return fail(format!("the header {name:?} cannot be sent")),
            }
        }
        let body = req.wire_body();
        match self
            .call_upstream(
                def,
                row,
                UpstreamCall {
                    method,
                    path: &path,
                    headers,
                    body,
                    follow: None,
                },
                false,
            )
            .await
        {
            Ok(resp) => RequestResult {
                index,
                ok: resp.status.is_success(),
                status: Some(resp.status.as_u16()),
                body: result_body(&resp.body).map(|body| without_private(def, body)),
                error: None,
            },
            Err(e) => fail(e.to_string()),
        }
    }

    /// Run once at start: entries left executing by a crash are marked failed and
    /// never re-run blindly (the batch may have partly happened); approved entries
    /// that never started are run.
    pub fn recover(&self) -> Result<()> {
        for id in self.inner.store.ids_with_status(Status::Executing)? {
            let entry = self.entry(&id)?;
            let mut results = entry.results.clone();
            results.push(RequestResult {
                index: results.len(),
                ok: false,
                status: None,
                body: None,
                error: Some(
                    "interrupted: agentgate stopped while this batch was running; it was not retried. \
                     Check the service before submitting again."
                        .into(),
                ),
            });
            self.inner
                .store
                .finish(&id, Status::Failed, &results, &self.now())?;
            tracing::warn!(entry = %id, "an interrupted batch was marked failed");
            self.transitioned(&entry, Some(Status::Executing), Status::Failed, "system");
        }
        for id in self.inner.store.ids_with_status(Status::Approved)? {
            self.spawn_execute(id);
        }
        Ok(())
    }
}

/// A write's answer as kept for its agent: private items out, as in a read's
/// (favouriting a direct message answers with the message).
fn without_private(def: &ServiceDef, mut body: Value) -> Value {
    match def.private_in_answer.map(|strip| strip(&mut body)) {
        Some(Err(why)) => Value::String(format!("[removed: {why}]")),
        _ => body,
    }
}

/// An upstream body as kept in results: JSON when it parses, else text, capped.
fn result_body(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    if body.len() <= MAX_STORED_RESULT_BYTES
        && let Ok(v) = serde_json::from_slice(body)
    {
        return Some(v);
    }
    let text =
        String::from_utf8_lossy(&body[..body.len().min(MAX_STORED_RESULT_BYTES)]).into_owned();
    Some(Value::String(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_bodies_are_json_or_capped_text() {
        assert_eq!(result_body(b"{\"a\":1}"), Some(serde_json::json!({"a": 1})));
        assert_eq!(result_body(b""), None);
        assert_eq!(result_body(b"plain"), Some(Value::String("plain".into())));
        let big = vec![b'x'; MAX_STORED_RESULT_BYTES * 2];
        match result_body(&big) {
            Some(Value::String(s)) => assert_eq!(s.len(), MAX_STORED_RESULT_BYTES),
            other => panic!("{other:?}"),
        }
    }
}
