//! What the two OpenAPI 3.1 documents say besides their paths. The agent
//! API's (`/api/openapi.json`): the title, the bearer key scheme, and the
//! shape of the one request body that is parsed loosely. The admin API's
//! (`/admin/openapi.json`, on the admin listener): the title and the two ways
//! to present an admin session. The paths are collected from the routers
//! themselves (`agent.rs` and `admin/`, with utoipa-axum), so a route cannot
//! go undocumented; answers are the typed structs of [`crate::answers`] and
//! `admin/answers.rs`.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::session::SESSION_COOKIE;
use crate::queue::WriteRequest;

/// The body of a batch submission. The handler parses it loosely (to give a
/// precise message for each mistake); this is the shape it accepts.
#[derive(Serialize, ToSchema)]
pub struct SubmitBody {
    /// 1 to 50 requests, run in order, stopping at the first failure.
    pub requests: Vec<WriteRequest>,
    /// Why the agent wants this; a human decides on it.
    pub comment: String,
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
    components(schemas(SubmitBody)),
    modifiers(&BearerKey),
    security(("agent_key" = []))
)]
struct AgentApiBase;

/// The document before the router adds its paths.
pub fn agent_api_base() -> utoipa::openapi::OpenApi {
    AgentApiBase::openapi()
}

struct AdminSessionSchemes;

impl Modify for AdminSessionSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("agt_…")
                    .description(Some(
                        "The token POST /admin/login answers with: agt_ followed by letters and digits. Agent keys (rms_…) are refused.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The same token as the cookie POST /admin/login sets (HttpOnly, SameSite=Strict).",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentgate admin API",
        description = "The owner's side of agentgate, on the admin listener only: agents and their keys, accounts and their policies, the write queue's decisions, settings and the audit log. Every route but health, status, setup and login needs an admin session."
    ),
    modifiers(&AdminSessionSchemes),
    security(("admin_session" = []), ("agentgate_session" = []))
)]
struct AdminApiBase;

/// The admin document before the router adds its paths.
pub fn admin_api_base() -> utoipa::openapi::OpenApi {
    AdminApiBase::openapi()
}

/// A serialized OpenAPI document, made once when its router is built and
/// served from the router's extensions.
#[derive(Clone)]
pub(super) struct OpenApiJson(Arc<str>);

impl OpenApiJson {
    pub(super) fn new(doc: &utoipa::openapi::OpenApi) -> Self {
        OpenApiJson(doc.to_json().unwrap_or_default().into())
    }
}

impl IntoResponse for OpenApiJson {
    fn into_response(self) -> Response {
        (
            [(http::header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}
