//! Agents' reads, and the one way any request reaches a service: the account's
//! API base, the agent's filtered headers, credentials added last, and one
//! refresh-and-retry when a refreshable credential is refused.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use url::Url;

use super::{Gateway, signin};
use crate::agent::Agent;
use crate::error::{Error, Result};
use crate::headers;
use crate::paths::AgentPath;
use crate::services::{self, ServiceDef};
use crate::store::AccountRow;
use crate::upstream::{UpstreamRequest, UpstreamResponse};

/// An agent's read, as it arrived.
pub struct AgentRead<'a> {
    pub service: &'a str,
    pub account: &'a str,
    /// The upstream path, still percent-encoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The service's answer as sent, never compacted.
    pub raw: bool,
}

/// One request to a service, before credentials are added.
pub(super) struct UpstreamCall<'a> {
    pub(super) method: Method,
    pub(super) path: &'a AgentPath,
    /// The agent's own headers, already filtered.
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Bytes>,
    /// For an agent's read: whether a redirect to this path is one the
    /// agent's rules allow.
    pub(super) follow: Option<&'a (dyn Fn(&AgentPath) -> bool + Sync)>,
}

impl Gateway {
    /// Performs an agent's read: the account's credentials are injected and the
    /// upstream answer is returned less hop-by-hop headers. The chattiest JSON
    /// answers are compacted unless `raw` (the agent's `X-Agentgate-Raw` header)
    /// or the agent's own setting asks for them as sent.
    pub async fn read(&self, agent: &Agent, read: AgentRead<'_>) -> Result<UpstreamResponse> {
        let start = std::time::Instant::now();
        let (service, account, path) = (read.service, read.account, read.path);
        let result = self.read_inner(agent, read).await;
        let answered = match &result {
            Ok(resp) => Ok(resp.status.as_u16()),
            Err(e) => Err(e.status_code()),
        };
        self.audit_read(
            &agent.name,
            services::find(service).map_or_else(|| service.to_string().into(), |d| d.key.into()),
            account,
            path,
            answered,
            start.elapsed().as_secs_f64() * 1000.0,
        );
        result
    }

    async fn read_inner(&self, agent: &Agent, read: AgentRead<'_>) -> Result<UpstreamResponse> {
        self.check_not_paused()?;
        self.check_rate(agent, crate::limits::Kind::Read)?;
        let _slot = self.inner.limits.read_slot(agent.id)?;
        let (def, row) = self.agent_account(agent, read.service, read.account)?;
        let path =
            AgentPath::parse(read.path, read.query).map_err(|e| Error::invalid(e.to_string()))?;
        check_not_blocked(def, &path)?;
        refused_whatever_the_answer(def, &path)?;
        self.decide(agent, def, &row, "GET", &path, false)?;
        tracing::debug!(agent = %agent.name, "read");
        let rules_allow =
            |next: &AgentPath| self.decide(agent, def, &row, "GET", next, false).is_ok();
        let resp = self
            .call_upstream(
                def,
                &row,
                UpstreamCall {
                    method: Method::GET,
                    path: &path,
                    headers: headers::read_headers(read.headers),
                    body: None,
                    follow: Some(&rules_allow),
                },
                false,
            )
            .await?;
        // Private items leave the answer before anything else looks at it,
        // so the raw and the compact form are both without them.
        let resp = without_private_items(def, &path, resp)?;
        if read.raw || agent.raw_responses || !resp.status.is_success() {
            return Ok(resp);
        }
        Ok(compact(def, &path, resp))
    }

    /// Sends one request to the account's service with its credentials. When a
    /// refreshable credential is refused, it is renewed and the request sent once
    /// more (a refused request did not happen, so repeating it is safe).
    pub(super) async fn call_upstream(
        &self,
        def: &'static ServiceDef,
        row: &AccountRow,
        call: UpstreamCall<'_>,
        force_refresh: bool,
    ) -> Result<UpstreamResponse> {
        let UpstreamCall {
            method,
            path,
            headers: agent_headers,
            body,
            follow,
        } = call;
        let base = effective_base_url(def, row)?;
        let url = path
            .resolve(base)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in def.default_headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        for (name, value) in agent_headers {
            if let Some(name) = name {
                headers.insert(name, value);
            }
        }
        // A redirect is followed only to a path the agent could have asked
        // for itself: under the account's base, past the privacy blocks, and
        // (for an agent's read) allowed by the account's rules.
        let may_follow = |next: &Url| {
            let Some(rest) = next
                .path()
                .strip_prefix(base.path().trim_end_matches('/'))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            else {
                return false;
            };
            let Ok(next_path) = AgentPath::parse(rest, next.query()) else {
                return false;
            };
            check_not_blocked(def, &next_path).is_ok()
                && follow.is_none_or(|allowed| allowed(&next_path))
        };
        let send = |auth: HeaderMap| {
            let mut headers = headers.clone();
            // Credentials go last so nothing an agent sent can replace them.
            headers.extend(auth);
            self.inner.upstream.send_following(
                UpstreamRequest {
                    method: method.clone(),
                    url: url.clone(),
                    headers,
                    body: body.clone(),
                },
                self.upstream_timeout(),
                self.inner.config.max_response_bytes,
                &may_follow,
            )
        };
        let first_refused = force_refresh.then_some((row.id, row.secret_version));
        let (auth, used) = self.auth_headers(def, row, first_refused).await?;
        let resp = send(auth).await?;
        if !force_refresh && signin::is_auth_failure(def, &resp) {
            tracing::info!(service = def.key, account = %row.name, status = resp.status.as_u16(), "credentials refused; refreshing once");
            let (auth, _) = self.auth_headers(def, row, Some(used)).await?;
            return send(auth).await;
        }
        Ok(resp)
    }

    pub(super) fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.settings().upstream_timeout_secs)
    }
}

/// The account's API base, parsed when its row was read; when there is none, why.
pub(super) fn effective_base_url<'a>(def: &ServiceDef, row: &'a AccountRow) -> Result<&'a Url> {
    if let Some(base) = &row.api_base {
        return Ok(base);
    }
    Err(match row.base_url.as_deref().or(def.default_base_url) {
        None => Error::invalid(format!("{}/{} has no base URL", def.key, row.name)),
        Some(raw) => Error::Internal(anyhow::anyhow!(
            "stored base URL is invalid: {}",
            Url::parse(raw)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        )),
    })
}

/// Replaces a chatty JSON answer by its compact form, when the service has one
/// for this path. Anything that does not parse stays as it came.
fn compact(def: &ServiceDef, path: &AgentPath, mut resp: UpstreamResponse) -> UpstreamResponse {
    let Some(compactor) = def.compact else {
        return resp;
    };
    let Ok(value) = serde_json::from_slice::<Value>(&resp.body) else {
        return resp;
    };
    if let Some(small) = compactor(path.normalized(), &value)
        && let Ok(bytes) = serde_json::to_vec(&small)
    {
        resp.body = Bytes::from(bytes);
        resp.headers.remove(http::header::CONTENT_ENCODING);
        resp.headers.remove(http::header::ETAG);
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers.insert(
            HeaderName::from_static("x-agentgate-compact"),
            HeaderValue::from_static("true"),
        );
    }
    resp
}

/// Takes private items (direct messages) out of an answer that can carry
/// them, says how many in `X-Agentgate-Private-Removed`, and refuses an answer
/// that is private itself or that cannot be checked.
fn without_private_items(
    def: &ServiceDef,
    path: &AgentPath,
    mut resp: UpstreamResponse,
) -> Result<UpstreamResponse> {
    if !resp.status.is_success() || (def.private_items.is_none() && def.private_in_answer.is_none())
    {
        return Ok(resp);
    }
    // The endpoint's own rule, matched on every form the service may route
    // the path as (like the blocks): it may refuse an answer it cannot check.
    let mut parsed = None;
    let mut removed = 0;
    if let Some(filter) = def.private_items
        && let Some(form) = def
            .forms(path)
            .into_iter()
            .find(|f| filter(f, None).is_some())
    {
        parsed = serde_json::from_slice::<Value>(&resp.body).ok();
        match filter(&form, parsed.as_mut()) {
            None => {}
            Some(Err(why)) => return Err(Error::Blocked(why)),
            Some(Ok(n)) => removed += n,
        }
    }
    // Then every JSON answer, whatever the endpoint, on what it holds.
    if let Some(strip) = def.private_in_answer {
        if parsed.is_none() {
            parsed = serde_json::from_slice::<Value>(&resp.body).ok();
        }
        if let Some(v) = parsed.as_mut() {
            removed += strip(v).map_err(Error::Blocked)?;
        }
    }
    if removed > 0 {
        let body = serde_json::to_vec(&parsed).map_err(|e| Error::Internal(e.into()))?;
        resp.body = Bytes::from(body);
        resp.headers.remove(http::header::CONTENT_ENCODING);
        resp.headers.remove(http::header::ETAG);
        resp.headers.insert(
            HeaderName::from_static("x-agentgate-private-removed"),
            HeaderValue::from(removed),
        );
    }
    Ok(resp)
}

/// A path whose every answer the service's filter refuses (one that shows a
/// status without its visibility) is refused before it is sent: asked with
/// an empty answer, the filter refuses it on the path alone.
fn refused_whatever_the_answer(def: &ServiceDef, path: &AgentPath) -> Result<()> {
    let Some(filter) = def.private_items else {
        return Ok(());
    };
    for form in def.forms(path) {
        if let Some(Err(why)) = filter(&form, Some(&mut Value::Null)) {
            return Err(Error::Blocked(why));
        }
    }
    Ok(())
}

pub(super) fn check_not_blocked(def: &ServiceDef, path: &AgentPath) -> Result<()> {
    match def.refusal_of(path) {
        None => Ok(()),
        Some(refusal) => Err(Error::Blocked(
            refusal.reason(def.display_name, &path.to_string()),
        )),
    }
}
