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
        BlockRule("/api/v2/polls"),
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
        // Pleroma's and Akkoma's own: the instance's administration, account
        // backups (every post, private ones included), password, email,
        // two-factor codes, moving or deleting the account.
        BlockRule("/api/v1/pleroma/admin"),
        BlockRule("/api/pleroma/admin"),
        BlockRule("/api/v1/pleroma/backups"),
        BlockRule("/media/backups"),
        BlockRule("/api/pleroma/accounts/mfa"),
        BlockRule("/api/v1/pleroma/accounts/mfa"),
        BlockRule("/api/pleroma/change_password"),
        BlockRule("/api/pleroma/change_email"),
        BlockRule("/api/pleroma/delete_account"),
        BlockRule("/api/pleroma/disable_account"),
        BlockRule("/api/pleroma/move_account"),
        BlockRule("/api/pleroma/aliases"),
        BlockRule("/api/oauth_tokens"),
    ],
    by_number: &[],
    privacy: "Direct messages are private: statuses whose visibility is not public, unlisted, private or local (direct, limited, ...) are removed from every answer (X-Agentgate-Private-Removed), fetching one is 403, writing one (any other visibility, anywhere) is 403; conversations, markers, polls by id, translations and Pleroma chats are blocked, and so are replies that do not say their visibility; OAuth, apps, push, email, settings and Pleroma's admin, backups, password and two-factor endpoints are never an agent's.",
    example_reads: &[
        "/api/v1/timelines/home?limit=20",
        "/api/v1/accounts/verify_credentials",
        "/api/v1/notifications?limit=20",
        "/api/v1/statuses/{id}/context",
        "/api/v2/search?q={query}",
    ],
    write_guidelines: &[
        "Post: POST /api/v1/statuses with {\"status\": \"...\", \"visibility\": \"public\" | \"unlisted\" | \"private\"}.",
        "Reply: add \"in_reply_to_id\": \"<status id>\", and always a visibility (a reply without one is refused).",
        "Direct messages (any visibility but public, unlisted, private or local) and conversations are blocked.",
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

/// The visibilities of statuses that are not private messages (`local` is
/// Pleroma's and Akkoma's public to the instance). Anything else (`direct`;
/// `limited`, which Mastodon's API accepts, seen only by those mentioned; the
/// `list:`, `circle` or `mutual` of servers that speak the same API) is
/// refused: an allow-list, since a server may add more.
const PUBLIC_ENOUGH: &[&str] = &["public", "unlisted", "private", "local"];

/// Whether a visibility, as a server reads it (blanks and case aside), is one
/// of [`PUBLIC_ENOUGH`].
fn public_enough(visibility: &str) -> bool {
    PUBLIC_ENOUGH.contains(&visibility.trim().to_lowercase().as_str())
}

/// Actions on a status that answer with the status itself, its visibility
/// included, so that a private one is caught in the answer. Any other write
/// under a status (a translation) would show its text without it.
const STATUS_ACTIONS: &[&str] = &[
    "interaction_policy",
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
/// would read as `visibility`: only [`PUBLIC_ENOUGH`] visibilities pass.
fn no_direct_statuses(req: &WriteRequest, normalized_path: &str) -> Option<String> {
    let fields = req.fields();
    // A JSON null is the server's default, as if the field were not given.
    let named = |name: &'static str| {
        fields
            .iter()
            .filter(move |(k, v)| field_named(k, name) && v.as_str() != "null")
    };
    if let Some((_, v)) = named("visibility").find(|(_, v)| !public_enough(v)) {
        return Some(format!(
            "visibility {:?} makes a private message (only public, unlisted, private and local are allowed); blocked for privacy",
            crate::display::terminal_line(v)
        ));
    }
    // Pleroma and Akkoma make any post in a conversation direct.
    if named("in_reply_to_conversation_id").next().is_some() {
        return Some(
            "in_reply_to_conversation_id posts into a private conversation; blocked for privacy"
                .into(),
        );
    }
    // A reply without a visibility takes the replied-to post's on some
    // servers, which may be a private message's. Said means said as the
    // server reads it: `visibility` exactly, at the top level.
    if named("in_reply_to_id").next().is_some()
        && !fields
            .iter()
            .any(|(k, v)| k == "visibility" && public_enough(v))
    {
        return Some(
            "a reply must say its visibility (public, unlisted, private or local): without one it may take a private message's; blocked for privacy"
                .into(),
        );
    }
    let segments: Vec<&str> = normalized_path.trim_matches('/').split('/').collect();
    if let ["api", "v1", "statuses", _, rest @ ..] = segments.as_slice()
        && !rest.is_empty()
        && !answers_with_the_status(rest)
    {
        return Some(format!(
            "{normalized_path} answers with a status's text without saying whether it is a private message; blocked for privacy"
        ));
    }
    None
}

/// Whether a write under `/api/v1/statuses/{id}/` answers with the status
/// itself (visibility included): its actions, revoking a quote of it, and
/// an emoji reaction (Fedibird).
fn answers_with_the_status(rest: &[&str]) -> bool {
    match rest {
        [action] => STATUS_ACTIONS.contains(&without_format(action)),
        ["quotes", _, "revoke"] | ["emoji_reactions", _] => true,
        _ => false,
    }
}

/// A path segment as Mastodon's router reads it: without a `.json` format.
fn without_format(segment: &str) -> &str {
    segment.strip_suffix(".json").unwrap_or(segment)
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
    match segments {
        ["api", "v1", "statuses", _, sub] => !matches!(
            without_format(sub),
            "context" | "reblogged_by" | "favourited_by"
        ),
        // Deeper: Akkoma's `translations/{lang}`, and whatever else a server adds.
        ["api", "v1", "statuses", _, _, _, ..] => true,
        _ => false,
    }
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

/// Whether an object is private itself: a status whose `visibility` is not
/// public, unlisted, followers-only or local (`direct`, `limited`, and what
/// other servers of the same API add); anything shaped like a status (text
/// and an author) that does not say an allowed visibility; a Pleroma chat
/// message, or a notification of one.
fn is_direct(v: &Value) -> bool {
    let Some(o) = v.as_object() else {
        return false;
    };
    match o.get("visibility") {
        Some(Value::String(s)) if !public_enough(s) => return true,
        Some(Value::String(_)) => {}
        _ => {
            let status_like = o.contains_key("content")
                && (o.contains_key("account") || o.contains_key("account_id"));
            if status_like {
                return true;
            }
        }
    }
    o.contains_key("chat_message")
        || o.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.to_lowercase().contains("chat"))
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
