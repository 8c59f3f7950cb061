//! The OpenAPI 3.1 document of the agent API, at `/api/openapi.json`. It is
//! derived (utoipa) from annotations on the real handlers in `agent.rs`, and a
//! test requests every path it lists against the real router.
//!
//! The types here only describe JSON shapes for the document; handlers build
//! the same shapes with `serde_json`.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
}

#[derive(Serialize, ToSchema)]
pub struct WriteRequestDoc {
    /// POST, PUT, PATCH or DELETE.
    pub method: String,
    /// Relative to the service's API base; may carry a query string.
    pub path: String,
    /// Any JSON value, or a string sent as is.
    #[schema(value_type = Option<Object>)]
    pub body: Option<serde_json::Value>,
    /// Extra headers; credential, cookie, host and routing headers are dropped.
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema)]
pub struct SubmitBody {
    /// 1 to 50 requests, run in order, stopping at the first failure.
    pub requests: Vec<WriteRequestDoc>,
    /// Why the agent wants this; a human decides on it.
    pub comment: String,
}

#[derive(Serialize, ToSchema)]
pub struct QueuedAnswer {
    pub id: String,
    /// pending, or approved when the account's policy approved it.
    pub status: String,
    pub message: String,
    pub status_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResultDoc {
    pub index: u32,
    pub ok: bool,
    pub status: Option<u16>,
    #[schema(value_type = Option<Object>)]
    pub body: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationDoc {
    pub id: i64,
    pub event: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EntryDoc {
    pub id: String,
    /// pending, approved, executing, completed, failed, rejected, withdrawn or expired.
    pub status: String,
    pub service: String,
    pub account_name: String,
    pub comment: String,
    pub requests: Vec<WriteRequestDoc>,
    pub submitted_at: String,
    pub reviewed_at: Option<String>,
    pub completed_at: Option<String>,
    pub rejection_reason: Option<String>,
    pub results: Vec<ResultDoc>,
    pub notification: Option<NotificationDoc>,
}

#[derive(Serialize, ToSchema)]
pub struct EntryList {
    pub count: u32,
    pub entries: Vec<EntryDoc>,
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "agent_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rms_…")
                    .description(Some(
                        "The agent's key: rms_ followed by at least 32 letters and digits.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentgate agent API",
        description = "Reads go straight to the service with the account's credentials; writes are queued for a human's approval."
    ),
    paths(
        super::agent::health,
        super::agent::readme,
        super::agent::agent_start_here,
        super::agent::services,
        super::agent::skill,
        super::agent::category_skill,
        super::agent::openapi_json,
        super::agent::list_all,
        super::agent::submit,
        super::agent::list_account,
        super::agent::status,
        super::agent::withdraw,
        super::agent::account_root,
        super::agent::proxy,
        super::agent::mcp_doc,
    ),
    components(schemas(ErrorBody, SubmitBody, WriteRequestDoc, QueuedAnswer, EntryDoc, EntryList, ResultDoc, NotificationDoc, super::agent::WithdrawBody)),
    modifiers(&BearerKey),
    security(("agent_key" = []))
)]
pub struct AgentApiDoc;
