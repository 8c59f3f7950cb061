//! What the agent API's OpenAPI 3.1 document (`/api/openapi.json`) says
//! besides its paths: the title, the bearer key scheme, and the shape of the
//! one request body that is parsed loosely. The paths are collected from the
//! router itself (`agent.rs`, with utoipa-axum), so a route cannot go
//! undocumented; answers are the typed structs of [`crate::answers`].

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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
