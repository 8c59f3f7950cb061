//! The Model Context Protocol server at `/mcp` on the agent listener
//! (Streamable HTTP, stateless, JSON answers), for agents that speak MCP.
//!
//! Every MCP request passes the same bearer-key middleware as the REST routes;
//! the authenticated agent travels in the request's extensions, which rmcp
//! hands to each tool call. The tools call the same `Gateway` functions as
//! REST, so access lists, rules, the pause switch, rate limits, the queue and
//! the audit log apply unchanged.

use std::sync::Arc;

use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::docs;
use crate::agent::Agent;
use crate::answers::{AgentEntry, AgentEntryList, Queued, ReadAnswer};
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::error::Error;
use crate::gateway::{AgentRead, Gateway};
use crate::queue::Submission;

/// The MCP service to mount at `/mcp`, behind the agent-key middleware.
pub fn service(gw: Gateway) -> StreamableHttpService<AgentTools, NeverSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    config.max_request_body_bytes = DEFAULT_MAX_BODY_BYTES;
    // Agents reach the gateway by whatever name the network gives it; the bearer
    // key, not the Host header, is what protects these tools.
    let config = config.disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(AgentTools::new(gw.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

#[derive(Clone)]
pub struct AgentTools {
    gw: Gateway,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadArgs {
    pub service: String,
    pub account: String,
    /// Upstream path relative to the service's API base, e.g. /user/repos.
    pub path: String,
    /// Query string without the leading '?', e.g. per_page=5&page=2.
    #[serde(default)]
    pub query: Option<String>,
    /// The service's own JSON instead of the compact form.
    #[serde(default)]
    pub raw: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SubmitArgs {
    pub service: String,
    pub account: String,
    /// The batch, run in order: each {method: POST|PUT|PATCH|DELETE, path, body?, headers?}.
    pub requests: Vec<Value>,
    /// Why you want this; a human decides on it.
    pub comment: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EntryArgs {
    pub service: String,
    pub account: String,
    /// The queue entry's id, as submit returned it.
    pub id: String,
    /// For withdraw: why.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListArgs {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    /// At most this many (default 50, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next` of the page before.
    #[serde(default)]
    pub before: Option<String>,
}

fn agent_of(parts: &http::request::Parts) -> Result<Arc<Agent>, ErrorData> {
    parts
        .extensions
        .get::<Arc<Agent>>()
        .cloned()
        .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))
}

/// Gateway refusals are tool errors the agent can read, with the HTTP status
/// REST would have answered.
fn refused(e: Error) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(
        json!({"error": super::error::shown_message(&e), "status": e.status_code()}).to_string(),
    )])
}

fn ok(v: Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(v.to_string())])
}

fn outcome<T: serde::Serialize>(r: Result<T, Error>) -> Result<CallToolResult, ErrorData> {
    let r = r.and_then(|v| serde_json::to_value(v).map_err(|e| Error::Internal(e.into())));
    Ok(match r {
        Ok(v) => ok(v),
        Err(Error::Internal(e)) => {
            tracing::error!(error = ?e, "internal error in an MCP tool");
            refused(Error::Internal(anyhow::anyhow!("internal error")))
        }
        Err(e) => refused(e),
    })
}

#[tool_router]
impl AgentTools {
    fn new(gw: Gateway) -> Self {
        AgentTools { gw }
    }

    #[tool(description = "Who you are, which accounts you may use, and how writes work.")]
    async fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = agent_of(&parts)?;
        outcome(docs::readme(&self.gw, &agent))
    }

    #[tool(
        description = "Read from a service with the account's credentials (a GET). Returns the service's status and body."
    )]
    async fn read(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(a): Parameters<ReadArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = agent_of(&parts)?;
        let path = if a.path.starts_with('/') {
            a.path.clone()
        } else {
            format!("/{}", a.path)
        };
        let headers = http::HeaderMap::new();
        let result = self
            .gw
            .read(
                &agent,
                AgentRead {
                    service: &a.service,
                    account: &a.account,
                    path: &path,
                    query: a.query.as_deref(),
                    headers: &headers,
                    raw: a.raw,
                },
            )
            .await
            .map(|resp| {
                let body = serde_json::from_slice::<Value>(&resp.body).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&resp.body).into_owned())
                });
                ReadAnswer {
                    status: resp.status.as_u16(),
                    body,
                }
            });
        outcome(result)
    }

    #[tool(
        description = "Propose a batch of writes (POST/PUT/PATCH/DELETE) with a comment for the human who approves it. Returns the queue entry id."
    )]
    async fn submit(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(a): Parameters<SubmitArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = agent_of(&parts)?;
        let submission = Submission {
            requests: Some(Value::Array(a.requests)),
            comment: Some(Value::String(a.comment)),
        };
        outcome(
            self.gw
                .submit(&agent, &a.service, &a.account, submission)
                .map(|e| Queued::new(&self.gw.base_url(), &e)),
        )
    }

    #[tool(description = "The status of one of your queue entries, with results once it ran.")]
    async fn status(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(a): Parameters<EntryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = agent_of(&parts)?;
        outcome(
            self.gw
                .agent_entry(&agent, &a.service, &a.account, &a.id)
                .map(|e| AgentEntry::from(&e)),
        )
    }

    #[tool(description = "Withdraw one of your pending queue entries.")]
    async fn withdraw(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(a): Parameters<EntryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = agent_of(&parts)?;
        outcome(
            self.gw
                .withdraw(&agent, &a.service, &a.account, &a.id, a.reason)
                .map(|e| AgentEntry::from(&e)),
        )
    }

    #[tool(
        description = "Your queue entries, newest first, optionally for one account: a page of summaries (limit, before = the previous page's next); status gives one entry whole."
    )]
    async fn list(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(a): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = agent_of(&parts)?;
        outcome(
            self.gw
                .agent_entries(
                    &agent,
                    a.service.as_deref(),
                    a.account.as_deref(),
                    &crate::queue::Page {
                        limit: a.limit,
                        before: a.before.clone(),
                    },
                )
                .map(|(list, next)| AgentEntryList::new(&list, next)),
        )
    }
}

#[tool_handler]
impl ServerHandler for AgentTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentgate", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "agentgate reaches the user's accounts. Reads run at once; writes are proposed with \
                 submit and run only after a human approves them. Start with whoami.",
            )
    }
}
