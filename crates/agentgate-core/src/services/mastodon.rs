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
        // Streams carry direct messages as they arrive, and never end.
        BlockRule("/api/v1/streaming"),
        // A poll fetched (or voted in) by id shows its options without saying
        // whose status it belongs to, which may be a direct message; a status
        // shows its own poll.
        BlockRule("/api/v1/polls"),
        // Pleroma and Akkoma, which serve the Mastodon API too, keep direct
        // chats and conversations under their own prefix.
        BlockRule("/api/v1/pleroma/chats"),
        BlockRule("/api/v2/pleroma/chats"),
        BlockRule("/api/v1/pleroma/conversations"),
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
    by_number: &[],

    privacy: "Direct messages are private: statuses whose visibility is not public, unlisted or private (direct, limited, ...) are removed from every answer (X-Agentgate-Private-Removed), fetching one is 403, writing one (any other visibility, anywhere) is 403; conversations, markers, polls by id, translations and Pleroma chats are blocked; OAuth, apps, push, email and settings are never an agent's.",
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
        "Direct messages (any visibility but public, unlisted or private) and conversations are blocked.",
    ],
    identity_path: "/api/v1/accounts/verify_credentials",
    identity_name: |v: &Value| v.get("acct").and_then(Value::as_str).map(str::to_string),
    default_headers: &[],
    write_check: Some(no_direct_statuses),
    compact: Some(super::compact::mastodon),
    instance_oauth: Some(&INSTANCE_OAUTH),
    private_items: Some(private_items),
    reroute: None,
    private_in_answer: Some(private_in_answer),
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

/// The visibilities of statuses that are not private messages. Anything else
/// (`direct`; `limited`, which Mastodon's API accepts, seen only by those
/// mentioned; the `list:`, `circle` or `mutual` of servers that speak the
/// same API) is refused: an allow-list, since a server may add more.
const PUBLIC_ENOUGH: &[&str] = &["public", "unlisted", "private"];

/// Actions on a status that answer with the status itself, its visibility
/// included, so that a private one is caught in the answer. Any other write
/// under a status (a translation) would show its text without it.
const STATUS_ACTIONS: &[&str] = &[
    "favourite",
    "unfavourite",
    "reblog",
    "unreblog",
    "bookmark",
    "unbookmark",
    "mute",
    "unmute",
    "pin",
    "unpin",
];

/// Private messages are never written, nor read through a write. Every
/// parameter of every write is looked at, decoded and with duplicates (the
/// query string, form fields, JSON), under any spelling of the name Mastodon
/// would read as `visibility`: only public, unlisted and followers-only pass.
fn no_direct_statuses(req: &WriteRequest, normalized_path: &str) -> Option<String> {
    if let Some((_, v)) = req.fields().iter().find(|(k, v)| {
        field_named(k, "visibility") && !PUBLIC_ENOUGH.contains(&v.trim().to_lowercase().as_str())
    }) {
        return Some(format!(
            "visibility {:?} makes a private message (only public, unlisted and private are allowed); blocked for privacy",
            crate::display::terminal_line(v)
        ));
    }
    let segments: Vec<&str> = normalized_path.trim_matches('/').split('/').collect();
    if let ["api", "v1", "statuses", _, sub, ..] = segments.as_slice()
        && !(segments.len() == 5 && STATUS_ACTIONS.contains(sub))
    {
        return Some(format!(
            "{normalized_path} answers with a status's text without saying whether it is a private message; blocked for privacy"
        ));
    }
    None
}

/// Reads whose answers can hold statuses (and so direct messages): their
/// answers are checked, and one that does not parse is refused.
const STATUS_BEARING: &[&str] = &[
    "/api/v1/notifications",
    "/api/v2/notifications",
    "/api/v1/timelines",
    "/api/v1/statuses",
    "/api/v1/bookmarks",
    "/api/v1/favourites",
    "/api/v1/search",
    "/api/v2/search",
    "/api/v1/scheduled_statuses",
    "/api/v1/trends",
    "/api/v1/conversations",
];

/// What of a status a sub-resource shows without saying the status's
/// visibility (its source text, edit history, link card, translation):
/// unknowable, so refused. Who boosted or favourited it says no more than
/// the account list.
fn hides_visibility(segments: &[&str]) -> bool {
    matches!(segments, ["api", "v1", "statuses", _, sub] if !matches!(*sub, "context" | "reblogged_by" | "favourited_by"))
}

/// Direct-visibility statuses are private messages: wherever one appears in
/// an answer (a notification's status, a timeline, a thread's context, a
/// search, a scheduled status's parameters, a reblog), the list item holding
/// it is removed, and grouped notifications that point at a removed status go
/// with it. An answer that is itself private (one status or notification
/// fetched by id) is refused.
fn private_items(
    normalized_path: &str,
    answer: Option<&mut Value>,
) -> Option<Result<usize, String>> {
    let segments: Vec<&str> = normalized_path.trim_matches('/').split('/').collect();
    let bearing = STATUS_BEARING
        .iter()
        .any(|p| normalized_path == *p || normalized_path.starts_with(&format!("{p}/")))
        || matches!(
            segments.as_slice(),
            ["api", "v1", "accounts", _, "statuses"]
        );
    if !bearing {
        return None;
    }
    if hides_visibility(&segments) {
        return Some(Err(format!(
            "{normalized_path} shows a status without saying whether it is a private message, so agentgate does not pass it on"
        )));
    }
    let Some(answer) = answer else {
        return Some(Err(format!(
            "the answer to {normalized_path} could not be checked for private messages (it is not JSON), so agentgate does not pass it on"
        )));
    };
    if holds_direct(answer) && !matches!(answer, Value::Array(_)) && !is_container(answer) {
        return Some(Err(
            "this is a private message (a direct-visibility status); agentgate never reads them"
                .into(),
        ));
    }
    let mut removed_ids = Vec::new();
    let removed = strip_direct(answer, &mut removed_ids);
    // Grouped notifications (v2) name their status by id.
    let mut orphans = 0;
    if !removed_ids.is_empty() {
        orphans = strip_referring(answer, &removed_ids);
    }
    Some(Ok(removed + orphans))
}

/// Direct statuses anywhere in any JSON answer (a write's too: favouriting
/// or bookmarking a status answers with it): list items holding one are
/// removed; an answer that is or holds one outside a list is private whole.
fn private_in_answer(answer: &mut Value) -> Result<usize, String> {
    if holds_direct(answer) && !matches!(answer, Value::Array(_)) && !is_container(answer) {
        return Err(
            "the service's answer is a private message (a direct-visibility status); agentgate does not pass it on"
                .into(),
        );
    }
    let mut removed_ids = Vec::new();
    let removed = strip_direct(answer, &mut removed_ids);
    let orphans = if removed_ids.is_empty() {
        0
    } else {
        strip_referring(answer, &removed_ids)
    };
    Ok(removed + orphans)
}

/// Whether an object is a private status itself: one whose `visibility` is
/// not public, unlisted or followers-only (`direct`, `limited`, and what
/// other servers of the same API add).
fn is_direct(v: &Value) -> bool {
    v.get("visibility")
        .and_then(Value::as_str)
        .is_some_and(|s| !PUBLIC_ENOUGH.contains(&s.trim().to_lowercase().as_str()))
}

/// Whether a direct status is anywhere inside.
fn holds_direct(v: &Value) -> bool {
    match v {
        Value::Object(o) => is_direct(v) || o.values().any(holds_direct),
        Value::Array(a) => a.iter().any(holds_direct),
        _ => false,
    }
}

/// An answer whose top level is a wrapper of lists (a thread's context, a
/// search, grouped notifications) rather than one item.
fn is_container(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        !o.is_empty()
            && !o.contains_key("id")
            && o.values().all(|x| {
                matches!(x, Value::Array(_)) || x.is_null() || x.is_string() || x.is_number()
            })
    })
}

/// Removes every list element that holds a direct status; returns how many,
/// and collects the ids of the direct statuses removed.
fn strip_direct(v: &mut Value, removed_ids: &mut Vec<String>) -> usize {
    match v {
        Value::Array(items) => {
            let before = items.len();
            items.retain(|item| {
                if holds_direct(item) {
                    collect_direct_ids(item, removed_ids);
                    false
                } else {
                    true
                }
            });
            let mut n = before - items.len();
            for item in items.iter_mut() {
                n += strip_direct(item, removed_ids);
            }
            n
        }
        Value::Object(o) => o.values_mut().map(|x| strip_direct(x, removed_ids)).sum(),
        _ => 0,
    }
}

fn collect_direct_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if is_direct(v)
                && let Some(id) = o.get("id").and_then(Value::as_str)
            {
                out.push(id.to_string());
            }
            o.values().for_each(|x| collect_direct_ids(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_direct_ids(x, out)),
        _ => {}
    }
}

/// Removes list elements that refer to a removed status by `status_id`.
fn strip_referring(v: &mut Value, ids: &[String]) -> usize {
    match v {
        Value::Array(items) => {
            let before = items.len();
            items.retain(|item| {
                !item
                    .get("status_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| ids.iter().any(|r| r == id))
            });
            let n = before - items.len();
            n + items
                .iter_mut()
                .map(|x| strip_referring(x, ids))
                .sum::<usize>()
        }
        Value::Object(o) => o.values_mut().map(|x| strip_referring(x, ids)).sum(),
        _ => 0,
    }
}
