//! What a notification says: the headline (who wants what, where), the
//! danger a write carries, and one request written out whole. Agent text in
//! them is escaped by the caller for the server's markup.

use agentgate_core::display;
use agentgate_core::queue::{Entry, WriteRequest};
use agentgate_core::services;

/// The one readable line: who wants what, on which account.
pub fn headline(e: &Entry) -> String {
    let what = match services::find(&e.service) {
        Some(def) => match e.requests.as_slice() {
            [only] => def.describe(only),
            [first, rest @ ..] => format!("{} (+{} more)", def.describe(first), rest.len()),
            [] => "an empty batch".into(),
        },
        None => format!("{} requests", e.requests.len()),
    };
    format!(
        "{} wants to: {what} (on {}/{})",
        e.agent_name, e.service, e.account_name
    )
}

/// What the entry destroys, overwrites or exposes, as the service's registry
/// entry says, if anything: then Approve asks a second time.
pub fn danger(e: &Entry) -> Option<&'static str> {
    let def = services::find(&e.service)?;
    e.requests.iter().find_map(|r| def.danger(r))
}

/// Text for a server that renders markup, line by line: each line escaped
/// (hidden characters shown as escapes), the line breaks kept.
pub fn markup_lines(text: &str) -> String {
    text.split('\n')
        .map(display::markup)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One request as the notification shows it: method, URL path with query,
/// the headers sent, and the body (a form's fields decoded); `None` when it
/// cannot be written out.
pub fn whole_request(r: &WriteRequest) -> Option<String> {
    let mut text = display::terminal_line(&format!("{} {}", r.method, r.path));
    for (name, value) in &r.headers {
        // Quoted, backslashes escaped: a value cannot draw a line of its own.
        text.push_str(&format!("\n{name}: {}", display::quoted(value)));
    }
    if let Some(fields) = r.form_fields() {
        for (name, value) in fields {
            text.push_str(&format!(
                "\n{} = {}",
                display::quoted(&name),
                display::quoted(&value)
            ));
        }
    } else if let Some(body) = &r.body {
        let json = serde_json::to_string_pretty(body).ok()?;
        text.push('\n');
        text.push_str(&display::terminal_block(&json, ""));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentgate_core::queue::Status;

    fn entry(method: &str) -> Entry {
        Entry {
            id: "abc".into(),
            agent_id: 1,
            agent_name: "bot".into(),
            service: "github".into(),
            account_name: "personal".into(),
            account_id: Some(1),
            comment: "Please".into(),
            requests: vec![WriteRequest {
                method: method.into(),
                path: "/repos/o/r/issues".into(),
                body: Some(serde_json::json!({"title": "Login bug"})),
                headers: Default::default(),
            }],
            digest: String::new(),
            edited: false,
            original_requests: None,
            edited_at: None,
            edited_by: None,
            status: Status::Pending,
            submitted_at: String::new(),
            reviewed_at: None,
            reviewed_by: None,
            started_at: None,
            completed_at: None,
            rejection_reason: None,
            results: Vec::new(),
            notification: None,
        }
    }

    #[test]
    fn the_headline_says_who_wants_what_where() {
        assert_eq!(
            headline(&entry("POST")),
            "bot wants to: Create issue \"Login bug\" in o/r [fields title] (on github/personal)"
        );
        assert!(danger(&entry("POST")).is_none());
        assert!(danger(&entry("DELETE")).is_some());
    }
}
