//! Compact forms of the chattiest answers (timelines, feeds, threads, profiles,
//! listings). Agents pay for every token they read; these keep what an agent
//! acts on (ids and URIs to reply to, authors, text, times, counts, links) and
//! drop the rest. An agent that wants the service's own JSON sends
//! `X-Agentgate-Raw: true`, or its key is set to raw.

use serde_json::{Map, Value, json};

/// Nesting kept in threads and comment trees before replies are cut off.
const MAX_DEPTH: usize = 6;

/// Copies the listed fields that are present (and not null) from `v`.
fn pick(v: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        if let Some(x) = v.get(*f).filter(|x| !x.is_null()) {
            out.insert((*f).to_string(), x.clone());
        }
    }
    out
}

fn array(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

// ----- Bluesky -----

pub fn bluesky(path: &str, v: &Value) -> Option<Value> {
    let method = path.trim_start_matches('/');
    match method {
        "app.bsky.feed.gettimeline"
        | "app.bsky.feed.getauthorfeed"
        | "app.bsky.feed.getfeed"
        | "app.bsky.feed.getlistfeed" => {
            let feed: Vec<Value> = array(v, "feed").iter().map(bsky_feed_item).collect();
            Some(json!({"cursor": v.get("cursor"), "feed": feed}))
        }
        "app.bsky.feed.getpostthread" => Some(json!({"thread": bsky_thread(v.get("thread")?, 0)})),
        "app.bsky.feed.getposts" => {
            Some(json!({"posts": array(v, "posts").iter().map(bsky_post).collect::<Vec<_>>()}))
        }
        "app.bsky.actor.getprofile" => Some(bsky_profile(v)),
        "app.bsky.actor.getprofiles" => Some(
            json!({"profiles": array(v, "profiles").iter().map(bsky_profile).collect::<Vec<_>>()}),
        ),
        "app.bsky.notification.listnotifications" => {
            let items: Vec<Value> = array(v, "notifications")
                .iter()
                .map(|n| {
                    json!({
                        "reason": n.get("reason"),
                        "author": n.pointer("/author/handle"),
                        "uri": n.get("uri"),
                        "reason_subject": n.get("reasonSubject"),
                        "text": n.pointer("/record/text"),
                        "indexed_at": n.get("indexedAt"),
                        "is_read": n.get("isRead"),
                    })
                })
                .collect();
            Some(json!({"cursor": v.get("cursor"), "notifications": items}))
        }
        _ => None,
    }
}

fn bsky_post(p: &Value) -> Value {
    let mut out = Map::new();
    for (k, ptr) in [
        ("uri", "/uri"),
        ("cid", "/cid"),
        ("author", "/author/handle"),
        ("author_did", "/author/did"),
        ("author_name", "/author/displayName"),
        ("text", "/record/text"),
        ("created_at", "/record/createdAt"),
        ("reply_to", "/record/reply/parent/uri"),
        ("replies", "/replyCount"),
        ("reposts", "/repostCount"),
        ("likes", "/likeCount"),
        ("quotes", "/quoteCount"),
    ] {
        if let Some(x) = p.pointer(ptr).filter(|x| !x.is_null()) {
            out.insert(k.to_string(), x.clone());
        }
    }
    if let Some(embed) = p.get("embed").and_then(bsky_embed) {
        out.insert("embed".into(), embed);
    }
    Value::Object(out)
}

fn bsky_embed(e: &Value) -> Option<Value> {
    let t = e.get("$type").and_then(Value::as_str).unwrap_or("");
    if t.starts_with("app.bsky.embed.external") {
        Some(json!({"link": e.pointer("/external/uri"), "title": e.pointer("/external/title")}))
    } else if t.starts_with("app.bsky.embed.images") {
        let alts: Vec<Value> = array(e, "images")
            .iter()
            .map(|i| i.get("alt").cloned().unwrap_or(Value::Null))
            .collect();
        Some(json!({"images": alts.len(), "alt": alts}))
    } else if t.starts_with("app.bsky.embed.record") {
        Some(json!({"quote": e.pointer("/record/uri").or_else(|| e.pointer("/record/record/uri"))}))
    } else {
        None
    }
}

fn bsky_feed_item(item: &Value) -> Value {
    let mut post = bsky_post(item.get("post").unwrap_or(&Value::Null));
    if let (Some(by), Value::Object(o)) = (item.pointer("/reason/by/handle"), &mut post) {
        o.insert("reposted_by".into(), by.clone());
    }
    post
}

fn bsky_thread(t: &Value, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(post) = t.get("post") {
        out.insert("post".into(), bsky_post(post));
    }
    if depth == 0
        && let Some(parent) = t.get("parent")
    {
        out.insert(
            "parent".into(),
            bsky_post(parent.get("post").unwrap_or(&Value::Null)),
        );
    }
    let replies = array(t, "replies");
    if depth < MAX_DEPTH {
        out.insert(
            "replies".into(),
            Value::Array(replies.iter().map(|r| bsky_thread(r, depth + 1)).collect()),
        );
    } else if !replies.is_empty() {
        out.insert("more_replies".into(), json!(replies.len()));
    }
    Value::Object(out)
}

fn bsky_profile(p: &Value) -> Value {
    Value::Object(pick(
        p,
        &[
            "did",
            "handle",
            "displayName",
            "description",
            "followersCount",
            "followsCount",
            "postsCount",
            "createdAt",
        ],
    ))
}

// ----- Mastodon -----

pub fn mastodon(path: &str, v: &Value) -> Option<Value> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", "v1", "timelines", ..]
        | ["api", "v1", "accounts", _, "statuses"]
        | ["api", "v1", "favourites"]
        | ["api", "v1", "bookmarks"] => Some(Value::Array(
            v.as_array()?.iter().map(masto_status).collect(),
        )),
        ["api", "v1", "statuses", _] => Some(masto_status(v)),
        ["api", "v1", "statuses", _, "context"] => Some(json!({
            "ancestors": array(v, "ancestors").iter().map(masto_status).collect::<Vec<_>>(),
            "descendants": array(v, "descendants").iter().map(masto_status).collect::<Vec<_>>(),
        })),
        ["api", "v1", "accounts", "verify_credentials"] | ["api", "v1", "accounts", _]
            if v.get("acct").is_some() =>
        {
            Some(masto_account(v))
        }
        ["api", "v1", "notifications"] => Some(Value::Array(
            v.as_array()?
                .iter()
                .map(|n| {
                    json!({
                        "id": n.get("id"),
                        "type": n.get("type"),
                        "account": n.pointer("/account/acct"),
                        "created_at": n.get("created_at"),
                        "status": n.get("status").filter(|s| !s.is_null()).map(masto_status),
                    })
                })
                .collect(),
        )),
        _ => None,
    }
}

fn masto_status(s: &Value) -> Value {
    let mut out = pick(
        s,
        &[
            "id",
            "url",
            "created_at",
            "visibility",
            "in_reply_to_id",
            "replies_count",
            "reblogs_count",
            "favourites_count",
            "spoiler_text",
        ],
    );
    if let Some(acct) = s.pointer("/account/acct") {
        out.insert("account".into(), acct.clone());
    }
    if let Some(html) = s.get("content").and_then(Value::as_str) {
        out.insert("text".into(), Value::String(html_to_text(html)));
    }
    if let Some(r) = s.get("reblog").filter(|r| !r.is_null()) {
        out.insert("reblog".into(), masto_status(r));
    }
    let media: Vec<Value> = array(s, "media_attachments")
        .iter()
        .map(|m| json!({"type": m.get("type"), "url": m.get("url"), "description": m.get("description")}))
        .collect();
    if !media.is_empty() {
        out.insert("media".into(), Value::Array(media));
    }
    if out.get("spoiler_text").and_then(Value::as_str) == Some("") {
        out.remove("spoiler_text");
    }
    Value::Object(out)
}

fn masto_account(a: &Value) -> Value {
    let mut out = pick(
        a,
        &[
            "id",
            "acct",
            "display_name",
            "url",
            "followers_count",
            "following_count",
            "statuses_count",
            "created_at",
        ],
    );
    if let Some(note) = a.get("note").and_then(Value::as_str) {
        out.insert("note".into(), Value::String(html_to_text(note)));
    }
    Value::Object(out)
}

/// Mastodon content is HTML: this keeps its text, with paragraph and line breaks.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            out.push_str(&rest[lt..]);
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        if tag.starts_with("br") || tag == "/p" {
            out.push('\n');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    let text = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.trim_end_matches('\n').to_string()
}

// ----- Reddit -----

pub fn reddit(_path: &str, v: &Value) -> Option<Value> {
    match v {
        Value::Object(_) if v.get("kind").and_then(Value::as_str) == Some("Listing") => {
            Some(reddit_listing(v, 0))
        }
        // A post with its comments is two listings.
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.get("kind").and_then(Value::as_str) == Some("Listing")) =>
        {
            Some(Value::Array(
                items.iter().map(|l| reddit_listing(l, 0)).collect(),
            ))
        }
        _ => None,
    }
}

fn reddit_listing(l: &Value, depth: usize) -> Value {
    let children: Vec<Value> = l
        .pointer("/data/children")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(|t| reddit_thing(t, depth)).collect())
        .unwrap_or_default();
    json!({"after": l.pointer("/data/after"), "before": l.pointer("/data/before"), "items": children})
}

fn reddit_thing(t: &Value, depth: usize) -> Value {
    let d = t.get("data").unwrap_or(&Value::Null);
    let mut out = pick(
        d,
        &[
            "name",
            "id",
            "title",
            "author",
            "subreddit",
            "score",
            "num_comments",
            "created_utc",
            "permalink",
            "url",
            "selftext",
            "body",
            "parent_id",
            "link_id",
            "count",
        ],
    );
    out.insert("kind".into(), t.get("kind").cloned().unwrap_or(Value::Null));
    if out.get("selftext").and_then(Value::as_str) == Some("") {
        out.remove("selftext");
    }
    if let Some(replies) = d.get("replies").filter(|r| r.is_object()) {
        if depth < MAX_DEPTH {
            out.insert("replies".into(), reddit_listing(replies, depth + 1));
        } else {
            out.insert("more_replies".into(), json!(true));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bluesky_timeline_keeps_what_an_agent_acts_on() {
        let raw = json!({"cursor": "c1", "feed": [{
            "post": {"uri": "at://did:plc:a/app.bsky.feed.post/1", "cid": "bafy", "author": {"did": "did:plc:a", "handle": "a.bsky.social", "displayName": "A", "avatar": "https://cdn/x.jpg", "labels": [], "viewer": {}},
                     "record": {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2026-01-01T00:00:00Z", "langs": ["en"]},
                     "replyCount": 1, "repostCount": 2, "likeCount": 3, "indexedAt": "x", "viewer": {}, "labels": [],
                     "embed": {"$type": "app.bsky.embed.external#view", "external": {"uri": "https://example.com", "title": "Ex", "description": "long", "thumb": "t"}}},
            "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": {"handle": "b.bsky.social"}}
        }]});
        let c = bluesky("/app.bsky.feed.gettimeline", &raw).unwrap();
        let p = &c["feed"][0];
        assert_eq!(p["text"], "hello");
        assert_eq!(p["author"], "a.bsky.social");
        assert_eq!(p["uri"], "at://did:plc:a/app.bsky.feed.post/1");
        assert_eq!(p["cid"], "bafy");
        assert_eq!(p["likes"], 3);
        assert_eq!(p["reposted_by"], "b.bsky.social");
        assert_eq!(p["embed"]["link"], "https://example.com");
        assert!(c.to_string().len() < raw.to_string().len() / 2 + 200);
        assert!(
            bluesky("/com.atproto.repo.getrecord", &raw).is_none(),
            "unknown endpoints stay raw"
        );
    }

    #[test]
    fn mastodon_statuses_become_text() {
        let raw = json!([{"id": "1", "url": "https://m/1", "created_at": "t", "visibility": "public", "content": "<p>Hi &amp; welcome<br>line two</p><p>para</p>",
                          "account": {"acct": "me", "avatar": "x", "emojis": []}, "replies_count": 0, "reblogs_count": 1, "favourites_count": 2,
                          "spoiler_text": "", "media_attachments": [], "emojis": [], "tags": []}]);
        let c = mastodon("/api/v1/timelines/home", &raw).unwrap();
        assert_eq!(c[0]["text"], "Hi & welcome\nline two\npara");
        assert_eq!(c[0]["account"], "me");
        assert!(c[0].get("spoiler_text").is_none());
        assert!(mastodon("/api/v1/instance", &json!({})).is_none());
    }

    #[test]
    fn reddit_listings_keep_posts_and_comment_trees() {
        let raw = json!({"kind": "Listing", "data": {"after": "t3_b", "before": null, "children": [
            {"kind": "t3", "data": {"name": "t3_a", "id": "a", "title": "Post", "author": "u", "subreddit": "rust", "score": 5, "num_comments": 2,
                                    "permalink": "/r/rust/comments/a", "selftext": "", "thumbnail": "x", "preview": {"images": []}}}]}});
        let c = reddit("/r/rust/hot", &raw).unwrap();
        assert_eq!(c["after"], "t3_b");
        assert_eq!(c["items"][0]["title"], "Post");
        assert!(c["items"][0].get("preview").is_none());
    }
}
