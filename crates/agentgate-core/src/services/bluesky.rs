//! Bluesky (and any AT Protocol PDS): a session from handle and app password.

use serde_json::Value;

use super::{Auth, Category, CredentialField, Danger, ServiceDef};
use crate::paths::BlockRule;

pub static BLUESKY: ServiceDef = ServiceDef {
    key: "bluesky",
    category: Category::Social,
    aliases: &["bsky"],
    display_name: "Bluesky",
    description: "Posts, timelines, threads, profiles and notifications on Bluesky or another AT Protocol server.",
    auth: Auth::AtprotoSession,
    default_base_url: Some("https://bsky.social/xrpc"),
    base_url_template: Some("https://{host}/xrpc"),
    credential_fields: &[
        CredentialField {
            name: "identifier",
            label: "Handle or email",
            secret: false,
        },
        CredentialField {
            name: "app_password",
            label: "App password",
            secret: true,
        },
    ],
    blocked: &[BlockRule("/chat.bsky.*"), BlockRule("/com.atproto.admin.*")],
    control: &[
        BlockRule("/com.atproto.server.getserviceauth"),
        BlockRule("/com.atproto.server.createapppassword"),
        BlockRule("/com.atproto.server.listapppasswords"),
        BlockRule("/com.atproto.server.revokeapppassword"),
        BlockRule("/com.atproto.server.createsession"),
        BlockRule("/com.atproto.server.refreshsession"),
        BlockRule("/com.atproto.server.deletesession"),
        BlockRule("/com.atproto.server.createaccount"),
        BlockRule("/com.atproto.server.deleteaccount"),
        BlockRule("/com.atproto.server.requestaccountdelete"),
        BlockRule("/com.atproto.server.deactivateaccount"),
        BlockRule("/com.atproto.server.activateaccount"),
        BlockRule("/com.atproto.server.updateemail"),
        BlockRule("/com.atproto.server.requestemailupdate"),
        BlockRule("/com.atproto.server.confirmemail"),
        BlockRule("/com.atproto.server.requestemailconfirmation"),
        BlockRule("/com.atproto.server.requestpasswordreset"),
        BlockRule("/com.atproto.server.resetpassword"),
        BlockRule("/com.atproto.server.reservesigningkey"),
        BlockRule("/com.atproto.server.createinvitecode*"),
        BlockRule("/com.atproto.server.getaccountinvitecodes"),
        BlockRule("/com.atproto.identity.*"),
        // The session's own details (the account's email) and replacing the
        // whole repository.
        BlockRule("/com.atproto.server.getsession"),
        BlockRule("/com.atproto.repo.importrepo"),
        BlockRule("/com.atproto.temp.*"),
        BlockRule("/tools.ozone.*"),
        // A push registration sends the account's notifications to a service
        // and token the caller picks.
        BlockRule("/app.bsky.notification.registerpush"),
        BlockRule("/app.bsky.notification.unregisterpush"),
    ],
    by_number: &[],
    privacy: "Chats (chat.bsky.*, by any path and as records) and moderation are blocked; push registrations, sessions, service-auth tokens, app passwords and account or identity management are never an agent's (403).",
    example_reads: &[
        "/app.bsky.feed.getTimeline?limit=20",
        "/app.bsky.actor.getProfile?actor={handle}",
        "/app.bsky.feed.getAuthorFeed?actor={handle}&limit=20",
        "/app.bsky.feed.getPostThread?uri={at-uri}",
        "/app.bsky.notification.listNotifications?limit=20",
    ],
    write_guidelines: &[
        "Post: POST /com.atproto.repo.createRecord with {\"repo\": \"<your DID>\", \"collection\": \"app.bsky.feed.post\", \"record\": {\"$type\": \"app.bsky.feed.post\", \"text\": \"...\", \"createdAt\": \"<RFC 3339 time>\"}}.",
        "Links and mentions are facets; their byteStart/byteEnd are UTF-8 byte offsets into text, not character offsets.",
        "A mention facet needs the mentioned account's DID (resolve it with app.bsky.actor.getProfile), not its handle.",
        "Posts hold at most 300 characters (graphemes).",
        "Private messages (chat.bsky.*) are blocked.",
    ],
    identity_path: "/com.atproto.server.getSession",
    identity_name: |v: &Value| v.get("handle").and_then(Value::as_str).map(str::to_string),
    default_headers: &[],
    write_check: Some(no_chat_records),
    compact: Some(super::compact::bluesky),
    instance_oauth: None,
    private_items: None,
    reroute: Some(xrpc_routes),
    private_in_answer: None,
    dangers: &[
        Danger::new(
            "POST",
            "/com.atproto.repo.deleterecord",
            "deletes a post or another record",
        ),
        Danger::new(
            "POST",
            "/com.atproto.repo.putrecord",
            "replaces a record (the profile, a post)",
        ),
        Danger::new(
            "POST",
            "/com.atproto.repo.applywrites",
            "writes several records at once, which may delete or replace them",
        ),
    ],
    summarize: Some(super::summary::bluesky),
};

/// Chat settings live as records in the account's repository
/// (`chat.bsky.actor.declaration`: who may send it messages): a write of a
/// `chat.bsky.*` record, anywhere in the body (an `applyWrites` holds
/// several), is blocked like the chat methods.
fn no_chat_records(req: &crate::queue::WriteRequest, _normalized_path: &str) -> Option<String> {
    fn chat_record(v: &Value) -> bool {
        match v {
            Value::Object(o) => o.iter().any(|(k, v)| {
                (k == "collection" || k == "$type")
                    && v.as_str()
                        .is_some_and(|s| s.trim().to_lowercase().starts_with("chat.bsky."))
                    || chat_record(v)
            }),
            Value::Array(a) => a.iter().any(chat_record),
            _ => false,
        }
    }
    let in_fields = req.fields().iter().any(|(k, v)| {
        crate::request::field_named(k, "collection")
            && v.trim().to_lowercase().starts_with("chat.bsky.")
    });
    (in_fields || req.body.as_ref().is_some_and(chat_record)).then(|| {
        "chat.bsky.* records are the account's chat settings: blocked for privacy like the chat methods".to_string()
    })
}

/// An XRPC server routes by the method's name, the last segment, whatever
/// comes before it (an account added without `/xrpc` in its base, say).
fn xrpc_routes(path: &str) -> Vec<String> {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some((head, method)) if !head.is_empty() && !method.is_empty() => {
            vec![format!("/{method}")]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::AgentPath;

    #[test]
    fn blocks_hold_whatever_comes_before_the_method_name() {
        for p in [
            "/xrpc/chat.bsky.convo.listConvos",
            "/anything/com.atproto.server.getServiceAuth",
            "/xrpc/com.atproto.server.getSession",
            "/com.atproto.repo.importRepo",
        ] {
            let path = AgentPath::parse_with_query(p).unwrap();
            assert!(BLUESKY.refusal_of(&path).is_some(), "{p}");
        }
        let fine = AgentPath::parse_with_query("/xrpc/app.bsky.feed.getTimeline").unwrap();
        assert!(BLUESKY.refusal_of(&fine).is_none());
    }
}
