//! Webhooks to agents: when one of an agent's queue entries reaches a final
//! state (or, if the agent asked, is approved), the gateway POSTs a message in
//! the shape OpenClaw's `/hooks/wake` accepts, plus structured fields.
//!
//! Delivery is durable: the outbox row is committed with the state change
//! (see `Store::transition`), and [`Gateway::deliver_due`] sends what is due,
//! retrying failures with exponential back-off and jitter until
//! [`MAX_ATTEMPTS`] tries have failed. Each try is claimed first with a lease,
//! so two workers never send the same row at once.

use std::time::Duration;

use http::HeaderValue;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use futures::StreamExt;

use super::Gateway;
use crate::answers::{AgentEntry, WebhookMessage};
use crate::clock::timestamp;
use crate::error::{Error, Result};
use crate::queue::{Entry, NotificationState};
use crate::secret::Secret;
use crate::store::OutboxRow;

/// Agents whose webhooks are sent to at once, at most.
const CONCURRENT_DELIVERIES: usize = 16;
/// Tries before a notification is given up as failed.
pub const MAX_ATTEMPTS: i64 = 6;
/// Each try's time limit.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed row is reserved for the worker sending it: longer than
/// one try may take, so that a row a crashed process had claimed is tried
/// again soon after.
const LEASE: time::Duration = time::Duration::seconds(15);

impl From<OutboxRow> for NotificationState {
    fn from(r: OutboxRow) -> Self {
        NotificationState {
            id: r.id,
            entry_id: r.entry_id,
            event: r.event,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
            delivered_at: r.delivered_at,
        }
    }
}

impl Gateway {
    fn webhook_token_name(&self, agent_id: i64) -> String {
        format!("{}/webhook-token/{agent_id}", self.inner.instance)
    }

    /// Sets an agent's webhook: URL (`Some(None)` removes it), bearer token
    /// (kept in the credential store) and whether approvals are announced.
    pub fn set_webhook(
        &self,
        agent: &str,
        url: Option<Option<String>>,
        token: Option<Secret>,
        on_approved: Option<bool>,
        allow_plain_http: bool,
    ) -> Result<()> {
        let a = self.agent(agent)?;
        let url = match url {
            Some(Some(u)) => Some(Some(check_webhook_url(&u, allow_plain_http)?)),
            other => other,
        };
        if let Some(t) = token {
            if t.is_empty() {
                self.inner.creds.delete(&self.webhook_token_name(a.id))?;
            } else {
                self.inner.creds.set(&self.webhook_token_name(a.id), &t)?;
            }
        }
        self.inner.store.set_agent_webhook(
            &a.name,
            url.as_ref().map(|u| u.as_deref()),
            on_approved,
        )?;
        Ok(())
    }

    pub fn webhook_has_token(&self, agent_id: i64) -> Result<bool> {
        Ok(self
            .inner
            .creds
            .get(&self.webhook_token_name(agent_id))?
            .is_some())
    }

    /// The latest notification of an entry, if one was queued.
    pub fn notification(&self, entry_id: &str) -> Result<Option<NotificationState>> {
        Ok(self.inner.store.outbox_for_entry(entry_id)?.map(Into::into))
    }

    pub fn notifications(
        &self,
        agent: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<NotificationState>> {
        let agent_id = agent.map(|a| self.agent(a).map(|a| a.id)).transpose()?;
        Ok(self
            .inner
            .store
            .outbox_list(agent_id, status)?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Sends every notification that is due; returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize> {
        let now = self.inner.clock.now();
        // One agent's endpoint at a time in order, agents side by side: a
        // slow or dead endpoint delays only its own agent's notifications.
        let mut by_agent: std::collections::BTreeMap<i64, Vec<OutboxRow>> =
            std::collections::BTreeMap::new();
        for row in self.inner.store.due_outbox(&timestamp(now), 100)? {
            by_agent.entry(row.agent_id).or_default().push(row);
        }
        let results: Vec<Result<usize>> = futures::stream::iter(by_agent.into_values())
            .map(|rows| async move {
                let mut delivered = 0;
                for row in rows {
                    delivered += usize::from(self.deliver_one(row).await?);
                }
                Ok(delivered)
            })
            .buffer_unordered(CONCURRENT_DELIVERIES)
            .collect()
            .await;
        results.into_iter().sum()
    }

    /// Starts sending due notifications in the background, one task per
    /// agent, without waiting for them: an agent whose endpoint is still being
    /// waited for is skipped until its task ends, so a slow endpoint never
    /// delays another agent's notifications. At most
    /// [`CONCURRENT_DELIVERIES`] agents are sent to at once. The server's
    /// delivery loop calls this every second.
    pub fn start_due_deliveries(&self) -> Result<()> {
        let now = self.inner.clock.now();
        let mut by_agent: std::collections::BTreeMap<i64, Vec<OutboxRow>> =
            std::collections::BTreeMap::new();
        for row in self.inner.store.due_outbox(&timestamp(now), 100)? {
            by_agent.entry(row.agent_id).or_default().push(row);
        }
        for (agent, rows) in by_agent {
            {
                let mut busy = self
                    .inner
                    .delivering
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if busy.contains(&agent) || busy.len() >= CONCURRENT_DELIVERIES {
                    continue;
                }
                busy.insert(agent);
            }
            let gw = self.clone();
            self.inner.executions.spawn(async move {
                for row in rows {
                    if let Err(e) = gw.deliver_one(row).await {
                        tracing::error!(error = %e, "delivering a webhook failed");
                    }
                }
                gw.inner
                    .delivering
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&agent);
            });
        }
        Ok(())
    }

    /// Claims and sends one due notification; whether it was delivered.
    async fn deliver_one(&self, row: OutboxRow) -> Result<bool> {
        let now = self.inner.clock.now();
        if !self
            .inner
            .store
            .claim_outbox(row.id, &timestamp(now), &timestamp(now + LEASE))?
        {
            return Ok(false);
        }
        let result = match self.inner.store.entry(&row.entry_id)? {
            Some(entry) => {
                let payload = payload(&entry, &row.event);
                self.post_to_agent(row.agent_id, &payload).await
            }
            None => Err("the queue entry no longer exists".to_string()),
        };
        let attempts = row.attempts + 1;
        let now = self.inner.clock.now();
        match result {
            Ok(()) => {
                self.inner
                    .store
                    .outbox_delivered(row.id, attempts, &timestamp(now))?;
                return Ok(true);
            }
            Err(e) if attempts >= MAX_ATTEMPTS => {
                tracing::warn!(entry = %row.entry_id, error = %e, "webhook failed for good");
                self.inner.store.outbox_failed(row.id, attempts, &e)?;
            }
            Err(e) => {
                let next = now
                    + time::Duration::try_from(backoff(
                        self.config().webhook_first_retry,
                        attempts,
                    ))
                    .unwrap_or(LEASE);
                tracing::info!(entry = %row.entry_id, error = %e, attempts, "webhook failed; will retry");
                self.inner
                    .store
                    .outbox_retry(row.id, attempts, &e, &timestamp(next))?;
            }
        }
        Ok(false)
    }

    /// Sends one failed notification again at once.
    pub async fn retry_notification(&self, id: i64) -> Result<NotificationState> {
        let row = self
            .inner
            .store
            .outbox_row(id)?
            .ok_or_else(|| Error::not_found(format!("no notification {id}")))?;
        if row.status == "delivered" {
            return Err(Error::Conflict(format!(
                "notification {id} was delivered already"
            )));
        }
        self.inner
            .store
            .outbox_reset(id, &timestamp(self.inner.clock.now()))?;
        self.deliver_due().await?;
        Ok(self
            .inner
            .store
            .outbox_row(id)?
            .ok_or_else(|| Error::not_found(format!("no notification {id}")))?
            .into())
    }

    /// Sends all of an agent's failed notifications as one batched message.
    /// Returns how many it covered (0 when none were missed).
    pub async fn retry_all_notifications(&self, agent: &str) -> Result<usize> {
        let a = self.agent(agent)?;
        let rows = self.inner.store.outbox_list(Some(a.id), Some("failed"))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut lines = vec![format!("📬 [agentgate] {} missed updates", rows.len())];
        let mut entries = Vec::new();
        for r in &rows {
            if let Some(e) = self.inner.store.entry(&r.entry_id)? {
                lines.push(headline(&e, &r.event));
                entries.push(AgentEntry::from(&e));
            }
        }
        let message = WebhookMessage {
            text: lines.join("\n"),
            mode: "now",
            kind: "queue.batch".into(),
            entry: None,
            entries: Some(entries),
        };
        self.post_to_agent(a.id, &message)
            .await
            .map_err(|e| Error::Upstream(format!("the agent's webhook refused the batch: {e}")))?;
        let now = timestamp(self.inner.clock.now());
        for r in &rows {
            self.inner
                .store
                .outbox_delivered(r.id, r.attempts + 1, &now)?;
        }
        Ok(rows.len())
    }

    /// Sends a test message to check an agent's webhook setup.
    pub async fn test_webhook(&self, agent: &str) -> Result<()> {
        let a = self.agent(agent)?;
        if a.webhook_url.is_none() {
            return Err(Error::Conflict(format!(
                "agent {:?} has no webhook URL to test: set one first",
                a.name
            )));
        }
        let message = WebhookMessage {
            text: format!(
                "🔔 [agentgate] Test message for agent {}: webhooks work.",
                a.name
            ),
            mode: "now",
            kind: "test".into(),
            entry: None,
            entries: None,
        };
        self.post_to_agent(a.id, &message)
            .await
            .map_err(|e| Error::Upstream(format!("the test message was not delivered: {e}")))
    }

    async fn post_to_agent(
        &self,
        agent_id: i64,
        payload: &impl serde::Serialize,
    ) -> std::result::Result<(), String> {
        let agent = self
            .inner
            .store
            .agents()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|a| a.id == agent_id)
            .ok_or("the agent was revoked")?;
        let url = agent.webhook_url.ok_or("the agent has no webhook URL")?;
        let mut req = self
            .inner
            .upstream
            .client()
            .post(&url)
            .timeout(WEBHOOK_TIMEOUT)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(serde_json::to_string(payload).map_err(|e| e.to_string())?);
        if let Some(token) = self
            .inner
            .creds
            .get(&self.webhook_token_name(agent_id))
            .map_err(|e| e.to_string())?
        {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| "the webhook token holds characters a header cannot carry")?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} seconds", WEBHOOK_TIMEOUT.as_secs())
            } else {
                format!("could not connect: {e}")
            }
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", resp.status()))
        }
    }
}

/// The first retry's wait (`webhook_retry_secs`, 60 s) doubled per earlier
/// attempt, with ±20 % jitter so that many failed deliveries do not retry in
/// step.
fn backoff(first: Duration, attempts: i64) -> Duration {
    let base = first.as_secs_f64() * 2f64.powi((attempts - 1).clamp(0, 10) as i32);
    let r = crate::keys::random_bytes::<1>()[0] as f64 / 255.0;
    Duration::from_secs_f64(base * (0.8 + 0.4 * r))
}

/// A webhook URL as stored: http(s) with a host and no credentials in it.
/// Plain `http://` carries the webhook's bearer token in clear, so it is
/// taken only for this machine (loopback), unless the admin allows it for
/// the agent (`allow_plain_http`, say on a private network).
fn check_webhook_url(raw: &str, allow_plain_http: bool) -> Result<String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| Error::invalid(format!("webhook URL {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::invalid(
            "a webhook URL is http:// or https:// with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            "put the webhook's credentials in its token, not in the URL",
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() == "http" && !loopback && !allow_plain_http {
        return Err(Error::invalid(
            "a plain http:// webhook to another machine would carry its token in clear: \
             use https://, or allow plain http for this agent explicitly (allow_plain_http)",
        ));
    }
    Ok(url.to_string())
}

fn emoji(event: &str) -> &'static str {
    match event {
        "completed" => "✅",
        "failed" => "❌",
        "rejected" => "🚫",
        "expired" => "⌛",
        "approved" => "👍",
        _ => "ℹ️",
    }
}

/// The most useful link an outcome has: what the write created or changed.
fn relevant_url(entry: &Entry) -> Option<String> {
    for r in entry.results.iter().rev() {
        let Some(body) = &r.body else { continue };
        for key in ["html_url", "url", "permalink", "uri", "self"] {
            if let Some(u) = body.get(key).and_then(Value::as_str) {
                if let Some(rest) = u.strip_prefix("at://") {
                    // at://did/app.bsky.feed.post/rkey becomes its bsky.app page.
                    let parts: Vec<&str> = rest.split('/').collect();
                    if parts.len() == 3 && parts[1] == "app.bsky.feed.post" {
                        return Some(format!(
                            "https://bsky.app/profile/{}/post/{}",
                            parts[0], parts[2]
                        ));
                    }
                }
                if u.starts_with("https://") || u.starts_with("http://") {
                    return Some(u.to_string());
                }
                if key == "permalink" && u.starts_with('/') {
                    return Some(format!("https://www.reddit.com{u}"));
                }
            }
        }
    }
    None
}

fn headline(entry: &Entry, event: &str) -> String {
    format!("{} [agentgate] Queue #{} {}", emoji(event), entry.id, event)
}

fn payload(entry: &Entry, event: &str) -> Value {
    let mut text = headline(entry, event);
    text.push_str(&format!("\n→ {}/{}", entry.service, entry.account_name));
    if let Some(url) = relevant_url(entry) {
        text.push_str(&format!("\n→ {url}"));
    }
    if (event == "rejected" || event == "expired")
        && let Some(reason) = &entry.rejection_reason
    {
        text.push_str(&format!("\nReason: \"{reason}\""));
    }
    if event == "failed"
        && let Some(err) = entry.results.iter().rev().find_map(|r| {
            r.error
                .clone()
                .or_else(|| (!r.ok).then(|| format!("HTTP {}", r.status.unwrap_or(0))))
        })
    {
        text.push_str(&format!("\nError: {err}"));
    }
    text.push_str(&format!("\nOriginal: \"{}\"", entry.comment));
    serde_json::to_value(WebhookMessage {
        text,
        mode: "now",
        kind: format!("queue.{event}"),
        entry: Some(AgentEntry::from(entry)),
        entries: None,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::queue::{RequestResult, Status};

    fn entry() -> Entry {
        Entry {
            id: "abc123".into(),
            agent_id: 1,
            agent_name: "bot".into(),
            service: "github".into(),
            account_name: "personal".into(),
            account_id: Some(1),
            comment: "file the bug".into(),
            requests: vec![],
            digest: String::new(),
            edited: false,
            original_requests: None,
            edited_at: None,
            edited_by: None,
            status: Status::Completed,
            submitted_at: "t".into(),
            reviewed_at: None,
            reviewed_by: None,
            started_at: None,
            completed_at: None,
            rejection_reason: None,
            notification: None,
            results: vec![RequestResult {
                index: 0,
                ok: true,
                status: Some(201),
                body: Some(
                    json!({"url": "https://api.github.com/repos/o/r/issues/7", "html_url": "https://github.com/o/r/issues/7"}),
                ),
                error: None,
            }],
        }
    }

    #[test]
    fn the_text_names_entry_account_link_and_comment() {
        let p = payload(&entry(), "completed");
        assert_eq!(
            p["text"],
            "✅ [agentgate] Queue #abc123 completed\n→ github/personal\n→ https://github.com/o/r/issues/7\nOriginal: \"file the bug\""
        );
        assert_eq!(p["mode"], "now");
        assert_eq!(p["type"], "queue.completed");
        assert_eq!(p["entry"]["id"], "abc123");
    }

    #[test]
    fn bluesky_records_link_to_their_page() {
        let mut e = entry();
        e.results[0].body =
            Some(json!({"uri": "at://did:plc:me/app.bsky.feed.post/3k", "cid": "x"}));
        assert_eq!(
            relevant_url(&e).as_deref(),
            Some("https://bsky.app/profile/did:plc:me/post/3k")
        );
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempts in 1..=6 {
            let d = backoff(Duration::from_secs(60), attempts).as_secs_f64();
            let base = 60.0 * 2f64.powi(attempts as i32 - 1);
            assert!(d >= base * 0.79 && d <= base * 1.21, "{attempts}: {d}");
        }
    }

    #[test]
    fn webhook_urls_are_https_or_local_unless_plain_http_is_allowed() {
        assert!(check_webhook_url("https://agent.example/hooks/wake", false).is_ok());
        assert!(check_webhook_url("ftp://x", false).is_err());
        assert!(check_webhook_url("https://user:pw@x/", false).is_err());
        for local in [
            "http://127.0.0.1:18789/hooks",
            "http://localhost/h",
            "http://[::1]:1/h",
        ] {
            assert!(check_webhook_url(local, false).is_ok(), "{local}");
        }
        for remote in [
            "http://agent.example/hooks",
            "http://10.0.0.2/h",
            "http://127.0.0.1.evil.example/",
        ] {
            assert!(check_webhook_url(remote, false).is_err(), "{remote}");
            assert!(check_webhook_url(remote, true).is_ok(), "{remote}");
        }
    }
}
