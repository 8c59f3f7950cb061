//! Native notifications for queued writes, through `notify-rust` (the
//! freedesktop notification service on Linux).
//!
//! Each new pending entry pops one notification: who wants what, on which
//! account, plus the agent's comment (quoted, markup escaped), with Approve,
//! Reject and Review; a batch of several requests offers no Approve, since it
//! may be approved only from a view that shows every request. Approve and
//! Reject call the same core functions as every other surface, so an entry
//! decided elsewhere is not decided twice; a destructive request (a deletion,
//! or what the service's registry entry names) asks once more before it is
//! approved, and its notification is critical. When an entry is decided elsewhere its
//! notification is closed. More than [`BURST_LIMIT`] within [`BURST_WINDOW`]
//! become one "N writes waiting" notification. Clicking the body (the
//! `default` action, which daemons without buttons still offer) opens the
//! review. With no notification service at all the gateway carries on and the
//! tray still shows the count.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentgate_core::QueueEvent;
use agentgate_core::display;
use agentgate_core::queue::{Entry, Status, WriteRequest};
use agentgate_core::services;
use notify_rust::{Notification, Timeout};
use tauri::AppHandle;

use crate::{Desktop, NOTIFICATION_REVIEWER};

/// More notifications than this within [`BURST_WINDOW`] are one summary.
const BURST_LIMIT: usize = 3;
const BURST_WINDOW: Duration = Duration::from_secs(10);
/// The agent's comment is cut to this many characters in a notification.
const COMMENT_CHARS: usize = 200;
/// The longest request a notification writes out whole and offers Approve
/// for; a longer one is reviewed in the window.
const SHOWN_REQUEST_CHARS: usize = 600;

#[derive(Default)]
struct Shown {
    /// The notification showing each entry, by entry id.
    by_entry: HashMap<String, u32>,
    /// When recent notifications were shown, for the burst rule.
    recent: VecDeque<Instant>,
    /// The "N writes waiting" notification, while one is up.
    summary: Option<u32>,
}

pub fn start(
    app: AppHandle,
    desktop: Arc<Desktop>,
    mut events: tokio::sync::broadcast::Receiver<QueueEvent>,
) {
    let shown = Arc::new(Mutex::new(Shown::default()));
    tauri::async_runtime::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let (app, desktop, shown) = (app.clone(), desktop.clone(), shown.clone());
            // notify-rust talks to D-Bus synchronously: keep it off the runtime.
            std::thread::spawn(move || match (event.from, event.to) {
                (None, Status::Pending) => announce(&app, &desktop, &shown, &event.entry),
                (Some(Status::Pending), _) => withdraw(&shown, &event.entry.id, event.to),
                _ => {}
            });
        }
    });
}

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
fn danger(e: &Entry) -> Option<&'static str> {
    let def = services::find(&e.service)?;
    e.requests.iter().find_map(|r| def.danger(r))
}

fn announce(app: &AppHandle, desktop: &Arc<Desktop>, shown: &Mutex<Shown>, entry: &Entry) {
    let burst = {
        let mut s = shown.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while s
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > BURST_WINDOW)
        {
            s.recent.pop_front();
        }
        s.recent.push_back(now);
        s.recent.len() > BURST_LIMIT
    };
    if burst {
        summarize(app, desktop, shown);
        return;
    }
    let mut comment: String = entry.comment.chars().take(COMMENT_CHARS).collect();
    if entry.comment.chars().count() > COMMENT_CHARS {
        comment.push('…');
    }
    // The agent's words go to a server that may render markup and to a person
    // who must see where they start and end: escaped and quoted. A batch of
    // several requests is approved only from a view that shows every one of
    // them, so its notification offers Review, not Approve.
    let danger = danger(entry);
    let mut body = format!(
        "The agent says: {}",
        display::markup(&display::quoted(&comment))
    );
    if let Some(what) = danger {
        body.push_str(&format!("\nThis {what}."));
    }
    // Approve is offered only when the notification shows the whole request
    // it approves: one request, short enough to read here.
    let whole = match entry.requests.as_slice() {
        [only] => whole_request(only).filter(|t| t.chars().count() <= SHOWN_REQUEST_CHARS),
        _ => None,
    };
    let batch = whole.is_none();
    match &whole {
        Some(text) => body.push_str(&format!("\n{}", display::markup(text))),
        None if entry.requests.len() > 1 => body.push_str(&format!(
            "\n{} requests: review them all before approving.",
            entry.requests.len()
        )),
        None => {
            body.push_str("\nThe request is too long to show here: review it before approving.")
        }
    }
    let mut n = Notification::new();
    n.appname("agentgate")
        .summary(&display::terminal_line(&headline(entry)))
        .body(&body)
        .action("default", "Review");
    if !batch {
        n.action("approve", "Approve");
    }
    n.action("reject", "Reject")
        .action("review", "Review")
        .timeout(Timeout::Never);
    #[cfg(all(unix, not(target_os = "macos")))]
    if danger.is_some() {
        n.urgency(notify_rust::Urgency::Critical);
    }
    let handle = match n.show() {
        Ok(h) => h,
        Err(e) => {
            // No notification service: the tray's count still tells.
            tracing::warn!(error = %e, "could not show a notification");
            return;
        }
    };
    shown
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .by_entry
        .insert(entry.id.clone(), handle.id());
    let id = entry.id.clone();
    // What this notification showed: Approve approves that and nothing else.
    let digest = entry.digest.clone();
    let headline = headline(entry);
    match chosen_action(handle).as_str() {
        // Only an entry shown whole was offered Approve; a forged press on
        // another's notification opens the review instead.
        "approve" if batch => crate::show_window(app, Some(&id)),
        "approve" => match danger {
            Some(what) => confirm_destructive(app, desktop, &id, &digest, &headline, what),
            None => decide(desktop, &id, Some(&digest)),
        },
        "reject" => decide(desktop, &id, None),
        "review" | "default" => crate::show_window(app, Some(&id)),
        _ => {}
    }
}

/// Waits until the notification is acted on or closed and says how. The
/// action is handled after the wait has returned: notify-rust runs the wait on
/// its own executor, and showing another notification from inside its
/// callback would wait on that same executor forever.
fn chosen_action(handle: notify_rust::NotificationHandle) -> String {
    let mut chosen = String::new();
    handle.wait_for_action(|action| chosen = action.to_string());
    chosen
}

/// A destructive request is approved only after a second, explicit yes.
fn confirm_destructive(
    app: &AppHandle,
    desktop: &Arc<Desktop>,
    id: &str,
    digest: &str,
    headline: &str,
    what: &str,
) {
    let summary = if what.starts_with("deletes") {
        "Really approve a deletion?"
    } else {
        "Really approve this?"
    };
    let mut n = Notification::new();
    n.appname("agentgate")
        .summary(summary)
        .body(&format!(
            "{}\nThis {what}. It cannot be undone.",
            display::markup(headline)
        ))
        .action("confirm", "Yes, approve")
        .action("cancel", "Cancel")
        .action("default", "Review")
        .timeout(Timeout::Never);
    match n.show() {
        Ok(handle) => match chosen_action(handle).as_str() {
            "confirm" => decide(desktop, id, Some(digest)),
            "default" => crate::show_window(app, Some(id)),
            _ => {}
        },
        // Without a way to ask again, the window asks instead.
        Err(_) => crate::show_window(app, Some(id)),
    }
}

/// One request as the notification shows it: method, URL path with query,
/// the headers sent, and the body (a form's fields decoded); `None` when it
/// cannot be written out.
fn whole_request(r: &WriteRequest) -> Option<String> {
    let mut text = display::terminal_line(&format!("{} {}", r.method, r.path));
    for (name, value) in &r.headers {
        text.push_str(&format!("\n{name}: {}", display::terminal_line(value)));
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

/// Approves (and starts) the entry as shown (its digest), or rejects it
/// (`None`), through the core as every surface does; an entry decided or
/// changed elsewhere meanwhile stays as it is.
fn decide(desktop: &Arc<Desktop>, id: &str, approve: Option<&str>) {
    let gw = desktop.gw.clone();
    let id = id.to_string();
    let approve = approve.map(str::to_string);
    // The core starts an approved batch on the runtime, so the decision is
    // made there too (this is a notification thread).
    tauri::async_runtime::spawn(async move {
        let outcome = match approve {
            Some(digest) => gw.approve_and_start(&id, &digest, NOTIFICATION_REVIEWER),
            None => gw.reject(&id, NOTIFICATION_REVIEWER, None),
        };
        if let Err(e) = outcome {
            tracing::info!(entry = %id, error = %e, "not decided from the notification");
        }
    });
}

/// Shows or updates the one "N writes waiting" notification of a burst.
fn summarize(app: &AppHandle, desktop: &Arc<Desktop>, shown: &Mutex<Shown>) {
    let waiting = desktop.gw.pending_count().unwrap_or(0);
    let mut n = Notification::new();
    n.appname("agentgate")
        .summary(&format!("{waiting} writes waiting"))
        .body("Agents queued several writes at once. Review them in agentgate.")
        .action("default", "Review")
        .action("review", "Review")
        .timeout(Timeout::Never);
    let existing = shown.lock().unwrap_or_else(|e| e.into_inner()).summary;
    if let Some(id) = existing {
        // Replaces the summary in place; its waiting thread is still there.
        n.id(id);
        let _ = n.show();
        return;
    }
    match n.show() {
        Ok(handle) => {
            shown.lock().unwrap_or_else(|e| e.into_inner()).summary = Some(handle.id());
            if matches!(chosen_action(handle).as_str(), "review" | "default") {
                crate::show_window(app, None);
            }
            shown.lock().unwrap_or_else(|e| e.into_inner()).summary = None;
        }
        Err(e) => tracing::warn!(error = %e, "could not show a notification"),
    }
}

/// Closes the notification of an entry decided elsewhere (or by it).
fn withdraw(shown: &Mutex<Shown>, entry_id: &str, to: Status) {
    let Some(id) = shown
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .by_entry
        .remove(entry_id)
    else {
        return;
    };
    // notify-rust closes through a handle: taking over the id with a last word
    // gives one, and closing it ends the waiting thread too.
    let mut n = Notification::new();
    n.appname("agentgate")
        .id(id)
        .summary(&format!("Write {}", to.as_str()))
        .timeout(Timeout::Milliseconds(1000));
    if let Ok(handle) = n.show() {
        handle.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
