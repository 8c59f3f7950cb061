//! Plain-words summaries of queued writes ("Create issue 'Login bug' in
//! owner/repo"), so that the human deciding sees what a request does before
//! reading its body. Each returns `None` for endpoints it does not know.

use serde_json::Value;

use crate::queue::WriteRequest;

/// Text is cut here, so that a summary stays one line.
const MAX_QUOTE: usize = 80;

fn quote(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > MAX_QUOTE {
        format!(
            "'{}…'",
            flat.chars().take(MAX_QUOTE - 1).collect::<String>()
        )
    } else {
        format!("'{flat}'")
    }
}

fn field<'a>(req: &'a WriteRequest, name: &str) -> Option<&'a str> {
    req.body.as_ref()?.get(name)?.as_str()
}

fn segments(req: &WriteRequest) -> Vec<&str> {
    let path = req.path.split('?').next().unwrap_or("");
    path.trim_matches('/').split('/').collect()
}

pub fn github(req: &WriteRequest) -> Option<String> {
    let s = segments(req);
    match (req.method.as_str(), s.as_slice()) {
        ("POST", ["repos", o, r, "issues"]) => Some(format!(
            "Create issue {} in {o}/{r}",
            quote(field(req, "title").unwrap_or("(untitled)"))
        )),
        ("POST", ["repos", o, r, "pulls"]) => Some(format!(
            "Open pull request {} in {o}/{r}",
            quote(field(req, "title").unwrap_or("(untitled)"))
        )),
        ("POST", ["repos", o, r, "issues", n, "comments"]) => Some(format!(
            "Comment on {o}/{r}#{n}: {}",
            quote(field(req, "body").unwrap_or(""))
        )),
        ("PATCH", ["repos", o, r, "issues" | "pulls", n])
            if field(req, "state") == Some("closed") =>
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
    match s.as_slice() {
        ["com.atproto.repo.createRecord"] => {
            let body = req.body.as_ref()?;
            match body.get("collection").and_then(Value::as_str)? {
                "app.bsky.feed.post" => Some(format!(
                    "Post to Bluesky: {}",
                    quote(
                        body.pointer("/record/text")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    )
                )),
                "app.bsky.feed.like" => Some("Like a Bluesky post".into()),
                "app.bsky.feed.repost" => Some("Repost a Bluesky post".into()),
                "app.bsky.graph.follow" => Some(format!(
                    "Follow {} on Bluesky",
                    body.pointer("/record/subject")
                        .and_then(Value::as_str)
                        .unwrap_or("someone")
                )),
                other => Some(format!("Create a {other} record on Bluesky")),
            }
        }
        ["com.atproto.repo.deleteRecord"] => Some("Delete a Bluesky record".into()),
        _ => None,
    }
}

pub fn mastodon(req: &WriteRequest) -> Option<String> {
    let s = segments(req);
    match (req.method.as_str(), s.as_slice()) {
        ("POST", ["api", "v1", "statuses"]) => Some(format!(
            "Post to Mastodon: {}",
            quote(field(req, "status").unwrap_or(""))
        )),
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
            quote(field(req, "summary").unwrap_or("(untitled)"))
        )),
        ("DELETE", ["calendars", cal, "events", id]) => {
            Some(format!("Delete event {id} from calendar {cal}"))
        }
        ("PATCH" | "PUT", ["calendars", _, "events", id]) => Some(match field(req, "summary") {
            Some(t) => format!("Change event {id} ({})", quote(t)),
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
        assert_eq!(
            github(&req(
                "POST",
                "/repos/o/r/issues",
                json!({"title": "Login bug"})
            ))
            .unwrap(),
            "Create issue 'Login bug' in o/r"
        );
        assert_eq!(
            github(&req(
                "PATCH",
                "/repos/o/r/issues/4",
                json!({"state": "closed"})
            ))
            .unwrap(),
            "Close o/r#4"
        );
        assert_eq!(
            bluesky(&req(
                "POST",
                "/com.atproto.repo.createRecord",
                json!({"collection": "app.bsky.feed.post", "record": {"text": "Hello\nworld"}})
            ))
            .unwrap(),
            "Post to Bluesky: 'Hello world'"
        );
        assert_eq!(
            calendar(&req(
                "POST",
                "/calendars/primary/events",
                json!({"summary": "Standup"})
            ))
            .unwrap(),
            "Create event 'Standup' in calendar primary"
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
        let def = &crate::services::GITHUB;
        assert_eq!(
            def.describe(&req("POST", "/gists", json!({}))),
            "POST /gists on GitHub"
        );
    }
}
