//! Plain-words summaries of queued writes ("Create issue 'Login bug' in
//! owner/repo"), so that the human deciding sees what a request does before
//! reading its body. Each returns `None` for endpoints it does not know.

use serde_json::Value;

use crate::display;
use crate::queue::WriteRequest;

/// Agent text is cut here, so that a summary stays one line.
const MAX_QUOTE: usize = 80;

/// Agent text in a summary: on one line, between double quotes with quotes
/// inside escaped (`display::quoted`), so where it starts and ends is never
/// in doubt and it cannot close its quote to write the rest of the line. The
/// gateway's own words are never quoted.
pub(crate) fn quote(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX_QUOTE {
        let cut: String = flat.chars().take(MAX_QUOTE - 1).collect();
        format!("{}…", display::quoted(&cut))
    } else {
        display::quoted(&flat)
    }
}

/// A parameter's name as a summary shows it: plain names as they are,
/// anything else quoted.
pub(crate) fn name(n: &str) -> String {
    if !n.is_empty()
        && n.len() <= 40
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'))
    {
        n.to_string()
    } else {
        quote(n)
    }
}

/// Every value the service may read for `name` (the query, a form body, a
/// JSON body's top level), quoted; several values all shown, since which
/// one a service takes is its own business.
fn said(req: &WriteRequest, name: &str) -> Option<String> {
    let values: Vec<String> = req
        .fields()
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| quote(&v))
        .collect();
    match values.len() {
        0 => None,
        1 => values.into_iter().next(),
        n => Some(format!("{} ({n} values given)", values.join(" or "))),
    }
}

/// The one value of `name`, when exactly one is given.
fn single(req: &WriteRequest, name: &str) -> Option<String> {
    let mut values = req.fields().into_iter().filter(|(k, _)| k == name);
    let first = values.next()?;
    values.next().is_none().then_some(first.1)
}

/// Agent text at `name`, or the gateway's word for its absence.
fn said_or(req: &WriteRequest, name: &str, absent: &str) -> String {
    said(req, name).unwrap_or_else(|| absent.to_string())
}

/// What a write carries beyond what its summary names: the query's
/// parameters and the name of every field of its body ("sets" for PATCH and
/// PUT). Appended to every summary, so that "Close o/r#4" cannot also
/// rewrite the title, nor "Create issue" assign it, unseen.
pub(crate) fn changes(req: &WriteRequest) -> Option<String> {
    let mut parts = Vec::new();
    let query = req.query();
    if !query.is_empty() {
        let shown: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", name(k), quote(v)))
            .collect();
        parts.push(format!("query {}", shown.join(", ")));
    }
    let fields: Vec<String> = match (req.form_fields(), &req.body) {
        (Some(form), _) => {
            let mut names: Vec<String> = form.iter().map(|(k, _)| name(k)).collect();
            names.dedup();
            names
        }
        (None, Some(Value::Object(o))) => o.keys().map(|k| name(k)).collect(),
        _ => Vec::new(),
    };
    if !fields.is_empty() {
        let verb = if matches!(req.method.as_str(), "PATCH" | "PUT") {
            "sets"
        } else {
            "fields"
        };
        parts.push(format!("{verb} {}", fields.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn segments(req: &WriteRequest) -> Vec<&str> {
    req.path_only().trim_matches('/').split('/').collect()
}

pub fn github(req: &WriteRequest) -> Option<String> {
    let s = segments(req);
    match (req.method.as_str(), s.as_slice()) {
        ("POST", ["repos", o, r, "issues"]) => Some(format!(
            "Create issue {} in {o}/{r}",
            said_or(req, "title", "(untitled)")
        )),
        ("POST", ["repos", o, r, "pulls"]) => Some(format!(
            "Open pull request {} in {o}/{r}",
            said_or(req, "title", "(untitled)")
        )),
        ("POST", ["repos", o, r, "issues", n, "comments"]) => Some(format!(
            "Comment on {o}/{r}#{n}: {}",
            said_or(req, "body", "(empty)")
        )),
        ("PATCH", ["repos", o, r, "issues" | "pulls", n])
            if single(req, "state").as_deref() == Some("closed") =>
        {
            Some(format!("Close {o}/{r}#{n}"))
        }
        ("PATCH", ["repos", o, r, "issues" | "pulls", n]) => Some(format!("Edit {o}/{r}#{n}")),
        ("DELETE", ["repos", o, r]) => Some(format!("DELETE the repository {o}/{r}")),
        ("PUT", ["repos", o, r, "pulls", n, "merge"]) => {
            Some(format!("Merge pull request {o}/{r}#{n}"))
        }
        _ => None,
    }
}

pub fn bluesky(req: &WriteRequest) -> Option<String> {
    let s = segments(req);
    let text_at = |v: &Value, pointer: &str| v.pointer(pointer).and_then(Value::as_str).map(quote);
    match s.as_slice() {
        ["com.atproto.repo.createRecord"] => {
            let body = req.body.as_ref()?;
            let record = body.get("record").unwrap_or(&Value::Null);
            match body.get("collection").and_then(Value::as_str)? {
                "app.bsky.feed.post" => {
                    let mut out = match text_at(record, "/reply/parent/uri") {
                        Some(parent) => format!("Reply on Bluesky to {parent}: "),
                        None => "Post to Bluesky: ".to_string(),
                    };
                    out.push_str(&text_at(record, "/text").unwrap_or_else(|| "(no text)".into()));
                    // What the text alone does not show: what it embeds and
                    // where its links and mentions point.
                    if let Some(embed) = record.get("embed") {
                        out.push_str(&format!(", embedding {}", bluesky_embed(embed)));
                    }
                    if let Some(Value::Array(facets)) = record.get("facets") {
                        let targets: Vec<String> = facets
                            .iter()
                            .filter_map(|f| f.get("features")?.as_array().cloned())
                            .flatten()
                            .filter_map(|f| {
                                f.get("uri")
                                    .or_else(|| f.get("did"))
                                    .and_then(Value::as_str)
                                    .map(quote)
                            })
                            .collect();
                        if !targets.is_empty() {
                            out.push_str(&format!(", linking {}", targets.join(", ")));
                        }
                    }
                    Some(out)
                }
                "app.bsky.feed.like" => Some(format!(
                    "Like the Bluesky post {}",
                    text_at(record, "/subject/uri").unwrap_or_else(|| "(none named)".into())
                )),
                "app.bsky.feed.repost" => Some(format!(
                    "Repost the Bluesky post {}",
                    text_at(record, "/subject/uri").unwrap_or_else(|| "(none named)".into())
                )),
                "app.bsky.graph.follow" => Some(format!(
                    "Follow {} on Bluesky",
                    text_at(record, "/subject").unwrap_or_else(|| "(nobody named)".into())
                )),
                other => Some(format!("Create a {} record on Bluesky", quote(other))),
            }
        }
        ["com.atproto.repo.deleteRecord"] => Some(format!(
            "Delete the Bluesky record {} {}",
            said_or(req, "collection", "(no collection)"),
            said_or(req, "rkey", "(no key)")
        )),
        ["com.atproto.repo.putRecord"] => Some(format!(
            "Replace the Bluesky record {} {}",
            said_or(req, "collection", "(no collection)"),
            said_or(req, "rkey", "(no key)")
        )),
        _ => None,
    }
}

/// What a Bluesky post embeds, in words: images, a link card, a quoted post.
fn bluesky_embed(embed: &Value) -> String {
    let kind = embed.get("$type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "app.bsky.embed.images" => {
            let n = embed
                .get("images")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            format!("{n} image(s)")
        }
        "app.bsky.embed.external" => format!(
            "a link card to {}",
            embed
                .pointer("/external/uri")
                .and_then(Value::as_str)
                .map_or_else(|| "(no address)".into(), quote)
        ),
        "app.bsky.embed.record" => format!(
            "the record {}",
            embed
                .pointer("/record/uri")
                .and_then(Value::as_str)
                .map_or_else(|| "(none named)".into(), quote)
        ),
        "app.bsky.embed.recordWithMedia" => "a quoted record with media".into(),
        other => format!("something of type {}", quote(other)),
    }
}

pub fn mastodon(req: &WriteRequest) -> Option<String> {
    let s = segments(req);
    match (req.method.as_str(), s.as_slice()) {
        ("POST", ["api", "v1", "statuses"]) => {
            let mut out = match said(req, "in_reply_to_id") {
                Some(to) => format!("Reply on Mastodon to status {to}: "),
                None => "Post to Mastodon: ".to_string(),
            };
            out.push_str(&said_or(req, "status", "(empty)"));
            if let Some(v) = said(req, "visibility") {
                out.push_str(&format!(", visible to {v}"));
            }
            if let Some(cw) = said(req, "spoiler_text") {
                out.push_str(&format!(", behind the warning {cw}"));
            }
            let media = req
                .fields()
                .iter()
                .filter(|(k, _)| crate::queue::field_named(k, "media_ids"))
                .count();
            if media > 0 {
                out.push_str(&format!(", with {media} attachment(s)"));
            }
            Some(out)
        }
        ("POST", ["api", "v1", "statuses", id, "favourite"]) => {
            Some(format!("Favourite Mastodon status {id}"))
        }
        ("POST", ["api", "v1", "statuses", id, "reblog"]) => {
            Some(format!("Boost Mastodon status {id}"))
        }
        ("DELETE", ["api", "v1", "statuses", id]) => Some(format!("Delete Mastodon status {id}")),
        _ => None,
    }
}

pub fn calendar(req: &WriteRequest) -> Option<String> {
    let s = segments(req);
    match (req.method.as_str(), s.as_slice()) {
        ("POST", ["calendars", cal, "events"]) => Some(format!(
            "Create event {} in calendar {cal}",
            said_or(req, "summary", "(untitled)")
        )),
        ("DELETE", ["calendars", cal, "events", id]) => {
            Some(format!("Delete event {id} from calendar {cal}"))
        }
        ("PATCH" | "PUT", ["calendars", _, "events", id]) => Some(match said(req, "summary") {
            Some(t) => format!("Change event {id} ({t})"),
            None => format!("Change event {id}"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(method: &str, path: &str, body: Value) -> WriteRequest {
        WriteRequest {
            method: method.into(),
            path: path.into(),
            body: Some(body),
            headers: Default::default(),
        }
    }

    #[test]
    fn known_endpoints_read_as_plain_words() {
        let gh = &crate::services::GITHUB;
        assert_eq!(
            gh.describe(&req(
                "POST",
                "/repos/o/r/issues",
                json!({"title": "Login bug"})
            )),
            "Create issue \"Login bug\" in o/r [fields title]"
        );
        assert_eq!(
            gh.describe(&req(
                "PATCH",
                "/repos/o/r/issues/4",
                json!({"state": "closed"})
            )),
            "Close o/r#4 [sets state]"
        );
        assert_eq!(
            bluesky(&req(
                "POST",
                "/com.atproto.repo.createRecord",
                json!({"collection": "app.bsky.feed.post", "record": {"text": "Hello\nworld"}})
            ))
            .unwrap(),
            "Post to Bluesky: \"Hello world\""
        );
        assert_eq!(
            calendar(&req(
                "POST",
                "/calendars/primary/events",
                json!({"summary": "Standup"})
            ))
            .unwrap(),
            "Create event \"Standup\" in calendar primary"
        );
        let long = "x".repeat(200);
        assert!(
            mastodon(&req("POST", "/api/v1/statuses", json!({"status": long})))
                .unwrap()
                .chars()
                .count()
                < 110
        );
        assert!(github(&req("POST", "/gists", json!({}))).is_none());
        assert_eq!(
            gh.describe(&req("POST", "/gists", json!({}))),
            "POST /gists on GitHub"
        );
        // Fields beyond those the words name are listed.
        assert_eq!(
            gh.describe(&req(
                "POST",
                "/repos/o/r/issues",
                json!({"title": "T", "assignees": ["x"]})
            )),
            "Create issue \"T\" in o/r [fields assignees, title]"
        );
    }

    /// What the service's words leave out is said: every field a PATCH sets,
    /// the query, replies, embeds and links.
    #[test]
    fn summaries_show_what_else_a_write_does() {
        let gh = &crate::services::GITHUB;
        let close = gh.describe(&req(
            "PATCH",
            "/repos/o/r/issues/4?state=open",
            json!({"state": "closed", "title": "Rewritten"}),
        ));
        assert!(close.contains("sets state, title"), "{close}");
        assert!(close.contains("query state=\"open\""), "{close}");
        let fallback = gh.describe(&req("PATCH", "/repos/o/r", json!({"private": false})));
        assert_eq!(fallback, "PATCH /repos/o/r on GitHub [sets private]");

        let post = bluesky(&req(
            "POST",
            "/com.atproto.repo.createRecord",
            json!({"collection": "app.bsky.feed.post", "record": {
                "text": "hi",
                "reply": {"parent": {"uri": "at://did:plc:x/app.bsky.feed.post/1"}},
                "embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://evil.example"}},
                "facets": [{"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://evil.example/2"}]}]
            }}),
        ))
        .unwrap();
        for part in [
            "Reply on Bluesky to \"at://did:plc:x/app.bsky.feed.post/1\"",
            "a link card to \"https://evil.example\"",
            "linking \"https://evil.example/2\"",
        ] {
            assert!(post.contains(part), "{post}");
        }
        let toot = mastodon(
            &WriteRequest::parse(json!({
                "method": "POST", "path": "/api/v1/statuses",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
                "body": "status=hello&in_reply_to_id=9&media_ids[]=1&media_ids[]=2&status=bye"
            }))
            .unwrap(),
        )
        .unwrap();
        assert!(
            toot.starts_with("Reply on Mastodon to status \"9\""),
            "{toot}"
        );
        assert!(
            toot.contains("\"hello\" or \"bye\" (2 values given)"),
            "{toot}"
        );
        assert!(toot.contains("2 attachment(s)"), "{toot}");
    }

    /// Agent text is always inside one pair of quotes it cannot close: no
    /// title can write the rest of the line, whatever quotes, newlines or
    /// control characters it holds.
    #[test]
    fn agent_text_cannot_imitate_the_summary() {
        let gh = &crate::services::GITHUB;
        for title in [
            "x\" in o/r (on github/personal) SAFE: read-only",
            "x' in o/r SAFE",
            "x\n[sets nothing]",
            "x\u{202e}esrever",
            "x\\\" in o/r",
        ] {
            let line = gh.describe(&req("POST", "/repos/o/r/issues", json!({"title": title})));
            // One quoted string, then the gateway's own words.
            let inner = line
                .strip_prefix("Create issue \"")
                .and_then(|rest| rest.strip_suffix("\" in o/r [fields title]"))
                .unwrap_or_else(|| panic!("{line}"));
            let mut escaped = false;
            for c in inner.chars() {
                assert!(escaped || c != '"', "the quote closed early: {line}");
                escaped = !escaped && c == '\\';
                assert!(!c.is_control() && c != '\u{202e}', "{line:?}");
            }
        }
    }
}
