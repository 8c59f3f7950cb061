//! Mastodon: an instance host and an access token (pasted, or from the instance's OAuth).

use serde_json::Value;

use super::{Auth, Category, CredentialField, Danger, InstanceOAuth, ServiceDef};
use crate::paths::BlockRule;
use crate::queue::{WriteRequest, field_named};

/// Instead of pasting a token, the admin can sign in on the instance: agentgate
/// registers itself there as an app and runs the authorization code flow.
pub static INSTANCE_OAUTH: InstanceOAuth = InstanceOAuth {
    register_path: "/api/v1/apps",
    authorize_path: "/oauth/authorize",
    token_path: "/oauth/token",
    scopes: &["read", "write"],
};

pub static MASTODON: ServiceDef = ServiceDef {
    key: "mastodon",
    category: Category::Social,
    aliases: &[],
    display_name: "Mastodon",
    description: "Timelines, posts, replies, boosts and favourites on a Mastodon instance.",
    auth: Auth::Bearer {
        field: "access_token",
    },
    default_base_url: None,
    base_url_template: Some("https://{host}"),
    credential_fields: &[CredentialField {
        name: "access_token",
        label: "Access token",
        secret: true,
    }],
    blocked: &[
        BlockRule("/api/v1/conversations*"),
        BlockRule("/api/v1/markers*"),
    ],
    control: &[
        BlockRule("/oauth"),
        BlockRule("/auth"),
        BlockRule("/api/v1/apps"),
        BlockRule("/api/v1/push"),
        BlockRule("/api/v1/emails"),
        BlockRule("/api/v1/admin"),
        BlockRule("/api/v2/admin"),
        BlockRule("/settings"),
    ],
    example_reads: &[
        "/api/v1/timelines/home?limit=20",
        "/api/v1/accounts/verify_credentials",
        "/api/v1/notifications?limit=20",
        "/api/v1/statuses/{id}/context",
        "/api/v2/search?q={query}",
    ],
    write_guidelines: &[
        "Post: POST /api/v1/statuses with {\"status\": \"...\", \"visibility\": \"public\" | \"unlisted\" | \"private\"}.",
        "Reply: add \"in_reply_to_id\": \"<status id>\".",
        "Direct messages (visibility \"direct\") and conversations are blocked.",
    ],
    identity_path: "/api/v1/accounts/verify_credentials",
    identity_name: |v: &Value| v.get("acct").and_then(Value::as_str).map(str::to_string),
    default_headers: &[],
    write_check: Some(no_direct_statuses),
    compact: Some(super::compact::mastodon),
    instance_oauth: Some(&INSTANCE_OAUTH),
    dangers: &[
        Danger::new("PUT", "/api/v1/statuses/*", "edits a published post"),
        Danger::new(
            "PATCH",
            "/api/v1/accounts/update_credentials",
            "changes the profile",
        ),
    ],
    summarize: Some(super::summary::mastodon),
};

/// Direct-visibility statuses are private messages: refused like a blocked path.
/// Direct-visibility statuses are private messages. Every parameter of every
/// write is looked at, decoded and with duplicates (the query string, form
/// fields, JSON), under any spelling of the name Mastodon would read as
/// `visibility`.
fn no_direct_statuses(req: &WriteRequest, _normalized_path: &str) -> Option<String> {
    req.fields()
        .iter()
        .any(|(k, v)| field_named(k, "visibility") && v.trim().eq_ignore_ascii_case("direct"))
        .then(|| {
            "direct-visibility statuses are private messages and are blocked for privacy"
                .to_string()
        })
}
