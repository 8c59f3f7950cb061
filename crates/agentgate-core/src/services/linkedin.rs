//! LinkedIn: OAuth2 authorization code with refresh.

use serde_json::Value;

use super::{Auth, Category, ClientAuth, OAuthSpec, ServiceDef};
use crate::paths::BlockRule;

pub static LINKEDIN_OAUTH: OAuthSpec = OAuthSpec {
    provider: "linkedin",
    authorize_url: "https://www.linkedin.com/oauth/v2/authorization",
    token_url: "https://www.linkedin.com/oauth/v2/accessToken",
    scopes: &["openid", "profile", "email", "w_member_social"],
    pkce: false,
    client_auth: ClientAuth::RequestBody,
    extra_params: &[],
};

pub static LINKEDIN: ServiceDef = ServiceDef {
    key: "linkedin",
    category: Category::Social,
    aliases: &[],
    display_name: "LinkedIn",
    description: "Your LinkedIn profile and posts.",
    auth: Auth::OAuth2(&LINKEDIN_OAUTH),
    default_base_url: Some("https://api.linkedin.com/v2"),
    base_url_template: None,
    credential_fields: &[],
    blocked: &[
        BlockRule("/messaging*"),
        BlockRule("/conversations*"),
        BlockRule("/messages*"),
        BlockRule("/rest/messaging*"),
        BlockRule("/rest/conversations*"),
        BlockRule("/rest/messages*"),
        BlockRule("/v2/messag*"),
        BlockRule("/v2/conversations*"),
    ],
    control: &[],
    by_number: &[],
    privacy: "Messaging, messages and conversations are blocked in every API version (403).",
    example_reads: &["/userinfo", "/me"],
    write_guidelines: &[
        "Share a post: POST /ugcPosts with author \"urn:li:person:<id from /userinfo sub>\", lifecycleState \"PUBLISHED\" and a shareCommentary text.",
        "Messaging and conversations are blocked.",
    ],
    identity_path: "/userinfo",
    identity_name: |v: &Value| {
        v.get("name")
            .or_else(|| v.get("email"))
            .and_then(Value::as_str)
            .map(str::to_string)
    },
    default_headers: &[("x-restli-protocol-version", "2.0.0")],
    write_check: None,
    compact: None,
    instance_oauth: None,
    private_items: None,
    reroute: None,
    private_in_answer: None,
    dangers: &[],
    summarize: None,
};
