//! Reddit: OAuth2 authorization code with a permanent refresh token.

use serde_json::Value;

use super::{Auth, Category, ClientAuth, Danger, OAuthSpec, ServiceDef};
use crate::paths::BlockRule;

pub static REDDIT_OAUTH: OAuthSpec = OAuthSpec {
    provider: "reddit",
    authorize_url: "https://www.reddit.com/api/v1/authorize",
    token_url: "https://www.reddit.com/api/v1/access_token",
    scopes: &[
        "identity",
        "read",
        "history",
        "submit",
        "edit",
        "vote",
        "mysubreddits",
    ],
    pkce: false,
    client_auth: ClientAuth::Basic,
    extra_params: &[("duration", "permanent")],
};

pub static REDDIT: ServiceDef = ServiceDef {
    key: "reddit",
    category: Category::Social,
    aliases: &[],
    display_name: "Reddit",
    description: "Subreddits, posts, comments and votes on Reddit.",
    auth: Auth::OAuth2(&REDDIT_OAUTH),
    default_base_url: Some("https://oauth.reddit.com"),
    base_url_template: None,
    credential_fields: &[],
    blocked: &[
        BlockRule("/message"),
        BlockRule("/api/v1/me/blocked"),
        BlockRule("/api/v1/me/friends"),
        BlockRule("/api/compose"),
        BlockRule("/prefs"),
        BlockRule("/api/read_message"),
        BlockRule("/api/unread_message"),
        BlockRule("/api/read_all_messages"),
        BlockRule("/api/del_msg"),
        BlockRule("/api/collapse_message"),
        BlockRule("/api/uncollapse_message"),
        // Modmail: the private conversations of the subreddits one moderates.
        BlockRule("/api/mod/conversations"),
        BlockRule("/api/mod/bulk_read"),
    ],
    // The account's own settings (who may message it, email, privacy) and
    // its tokens.
    control: &[
        BlockRule("/api/v1/me/prefs"),
        BlockRule("/api/v1/access_token"),
        BlockRule("/api/v1/revoke_token"),
        BlockRule("/api/v1/authorize"),
    ],
    by_number: &[],
    privacy: "Private messages (and any write naming one, t4_), modmail, blocked and friends lists and /prefs are blocked (403); account settings and tokens are never an agent's.",
    example_reads: &[
        "/api/v1/me",
        "/r/{subreddit}/hot?limit=10",
        "/r/{subreddit}/comments/{id}",
        "/user/{name}/submitted?limit=10",
    ],
    write_guidelines: &[
        "Reddit's write endpoints take form-encoded bodies: send body as a string like \"thing_id=t3_abc&text=...\" with headers {\"content-type\": \"application/x-www-form-urlencoded\"}.",
        "Comment: POST /api/comment with thing_id and text. Submit a post: POST /api/submit with sr, kind, title and text or url.",
        "Private messages (/message, /api/compose) are blocked.",
    ],
    identity_path: "/api/v1/me",
    identity_name: |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string),
    // Reddit refuses generic user agents; it asks for a descriptive one.
    default_headers: &[(
        "user-agent",
        concat!(
            "agentgate/",
            env!("CARGO_PKG_VERSION"),
            " (personal API gateway)"
        ),
    )],
    write_check: Some(no_message_things),
    compact: Some(super::compact::reddit),
    instance_oauth: None,
    private_items: None,
    reroute: Some(reddit_routes),
    private_in_answer: None,
    dangers: &[
        Danger::new("POST", "/api/del", "deletes a post or comment"),
        Danger::new(
            "POST",
            "/api/editusertext",
            "replaces the text of a post or comment",
        ),
    ],
    summarize: None,
};

/// Reddit names a private message `t4_…`: a comment whose parent is one is a
/// private reply, and any other write on one (report, block, edit) acts on a
/// message. Any parameter naming one, alone or in a comma-separated list, is
/// refused; free text (a comment's own words) is not a name.
fn no_message_things(req: &crate::queue::WriteRequest, _normalized_path: &str) -> Option<String> {
    const FREE_TEXT: &[&str] = &[
        "text",
        "title",
        "body",
        "richtext_json",
        "reason",
        "other_reason",
    ];
    req.fields()
        .iter()
        .filter(|(k, _)| !FREE_TEXT.iter().any(|t| k.trim().eq_ignore_ascii_case(t)))
        .any(|(_, v)| {
            v.split(',')
                .any(|part| part.trim().to_lowercase().starts_with("t4_"))
        })
        .then(|| {
            "a t4_ name is a private message; writes on private messages are blocked for privacy"
                .to_string()
        })
}

/// How Reddit's server routes a path besides as written: without a leading
/// `/r/NAME` (it serves every route under a subreddit prefix too), and
/// without any format extension on the last segment (`.json`, `.rss`,
/// `.compact`, `.mobile`, `.embed`, ...).
fn reddit_routes(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = path.to_string();
    // Prefixes can be stacked; each one is stripped.
    while let Some(rest) = current.strip_prefix("/r/") {
        let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if name.chars().count() < 2 {
            break;
        }
        current = format!("/{tail}");
        out.push(current.clone());
    }
    for form in [path.to_string()].into_iter().chain(out.clone()) {
        let (head, last) = form.rsplit_once('/').unwrap_or(("", &form));
        if let Some((stem, ext)) = last.rsplit_once('.')
            && !stem.is_empty()
            && (1..=12).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            out.push(format!("{head}/{stem}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::AgentPath;

    #[test]
    fn a_subreddit_prefix_or_an_extension_does_not_dodge_a_block() {
        for p in [
            "/r/xx/message/inbox",
            "/r/aa/r/bb/prefs/friends",
            "/R/Pics/api/mod/conversations",
            "/api/v1/me/friends.rss",
            "/r/xx/api/v1/me/prefs.compact",
            "/message/inbox.json-html",
        ] {
            let path = AgentPath::parse_with_query(p).unwrap();
            assert!(REDDIT.refusal_of(&path).is_some(), "{p}");
        }
        let fine = AgentPath::parse_with_query("/r/rust/hot.json").unwrap();
        assert!(REDDIT.refusal_of(&fine).is_none());
    }

    #[test]
    fn writes_naming_a_private_message_are_refused() {
        let check = REDDIT.write_check.unwrap();
        let form = |body: &str| {
            crate::queue::WriteRequest::parse(serde_json::json!({
                "method": "POST", "path": "/api/comment", "body": body,
                "headers": {"content-type": "application/x-www-form-urlencoded"}}))
            .unwrap()
        };
        for body in [
            "thing_id=t4_abc123&text=hi",
            "thing_id=T4_abc123&text=hi",
            "parent=%74%34_abc&text=hi",
            "thing_id=t1_x&thing_id=t4_y&text=hi",
            "id=t3_a,%20t4_b",
        ] {
            assert!(check(&form(body), "/api/comment").is_some(), "{body}");
        }
        let query = crate::queue::WriteRequest::parse(serde_json::json!({
            "method": "POST", "path": "/api/report?thing_id=t4_zz", "body": {}}))
        .unwrap();
        assert!(check(&query, "/api/report").is_some());
        for body in [
            "thing_id=t1_abc&text=hi",
            "thing_id=t3_abc&text=t4_ is a kind",
        ] {
            assert!(check(&form(body), "/api/comment").is_none(), "{body}");
        }
    }
}
