//! Native notifications for queued writes, through `notify-rust` (the
//! freedesktop notification service on Linux), that always tell the truth.
//!
//! Each new pending entry pops one notification: who wants what, on which
//! account, plus the agent's comment (quoted, markup escaped), with Approve
//! and Reject, and Review as the notification's own (default) action; a batch
//! of several requests offers no Approve, since it may be approved only from a
//! view that shows every request. Approve and Reject call the same core
//! functions as every other surface, so an entry decided elsewhere is not
//! decided twice; a destructive request (a deletion, or what the service's
//! registry entry names) is critical and asks once more before it is approved.
//!
//! Truth over time:
//! - an entry decided anywhere (here, the window, the CLI, another admin) has
//!   its notifications closed, its confirmation too: this process's events
//!   say so at once, and the queue stamp, looked at every second, tells of
//!   other processes;
//! - a press on an entry decided meanwhile says what happened to it;
//! - on Quit every notification is withdrawn; at start the writes still
//!   pending are announced again (one summary if several);
//! - more than [`BURST_LIMIT`] within [`BURST_WINDOW`] become one summary
//!   that counts that burst, as long as its writes wait.
//!
//! With no notification service at all the gateway carries on and the tray
//! still shows the count.

mod ledger;
mod presses;
mod text;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentgate_core::display;
use agentgate_core::queue::{Entry, Status};
use agentgate_core::{Error, QueueEvent};
use notify_rust::{Hint, Notification, Timeout};
use tauri::AppHandle;

use crate::{Desktop, NOTIFICATION_REVIEWER};
pub use text::headline;
use text::{danger, markup_lines, whole_request};

/// More notifications than this within [`BURST_WINDOW`] are one summary.
const BURST_LIMIT: usize = 3;
const BURST_WINDOW: Duration = Duration::from_secs(10);
/// The agent's comment is cut to this many characters in a notification.
const COMMENT_CHARS: usize = 200;
/// The longest request a notification writes out whole and offers Approve
/// for; a longer one is reviewed in the window.
const SHOWN_REQUEST_CHARS: usize = 600;
/// How often the queue stamp is looked at for decisions of other processes.
const FOLLOW: Duration = Duration::from_secs(1);
/// The icon the packages install, and their desktop entry.
const ICON: &str = "agentgate-desktop";
const DESKTOP_ENTRY: &str = "agentgate";
const BURST_BODY: &str = "Agents queued several writes at once. Review them in agentgate.";

#[derive(Default)]
struct Shown {
    /// The notification showing each entry, by entry id, with the digest of
    /// the requests it shows (an edit makes it stale).
    by_entry: HashMap<String, (u32, String)>,
    /// The "Really approve?" notification of an entry, while one is up.
    confirming: HashMap<String, u32>,
    /// When recent entries were announced, for the burst rule.
    recent: VecDeque<(Instant, String)>,
    /// The summary notification, while one is up, the entries it counts,
    /// and its words (kept as it is updated).
    summary: Option<u32>,
    burst: Vec<String>,
    summary_body: &'static str,
}

impl Shown {
    fn is_empty(&self) -> bool {
        self.by_entry.is_empty()
            && self.confirming.is_empty()
            && self.summary.is_none()
            && self.burst.is_empty()
    }
}

/// The notifications of this app, kept so that they can be withdrawn.
pub struct Notifier {
    app: AppHandle,
    desktop: Arc<Desktop>,
    shown: Mutex<Shown>,
}

/// A notification as every one of this app starts: its name, icon, desktop
/// entry and category, so that desktops file it as this app's and do not drop
/// it into a tray at once.
fn base(summary: &str, urgent: bool) -> Notification {
    let mut n = Notification::new();
    n.appname("agentgate")
        .icon(ICON)
        .summary(summary)
        .hint(Hint::DesktopEntry(DESKTOP_ENTRY.into()))
        .hint(Hint::Category("x-agentgate.write".into()));
    #[cfg(all(unix, not(target_os = "macos")))]
    n.urgency(if urgent {
        notify_rust::Urgency::Critical
    } else {
        notify_rust::Urgency::Normal
    });
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = urgent;
    n
}

/// What the notifier's own thread works through, one at a time, so that
/// what is shown (and counted in a burst) never races itself; waiting for a
/// person's press happens on threads of its own.
enum Job {
    Event(Box<QueueEvent>),
    /// The queue stamp moved: look at what is shown.
    Recheck,
    AtStart,
}

pub fn start(
    app: AppHandle,
    desktop: Arc<Desktop>,
    mut events: tokio::sync::broadcast::Receiver<QueueEvent>,
) -> Arc<Notifier> {
    let notifier = Arc::new(Notifier {
        app,
        desktop,
        shown: Mutex::new(Shown::default()),
    });
    // Before anything is shown, so that no press goes unheard.
    presses::listen();
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let _ = jobs.send(Job::AtStart);
    let forward = jobs.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    if forward.send(Job::Event(Box::new(e))).is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = forward.send(Job::Recheck);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    // notify-rust talks to D-Bus synchronously: keep it off the runtime.
    let n = notifier.clone();
    std::thread::spawn(move || {
        for job in queue {
            match job {
                Job::Event(event) => match (event.from, event.to) {
                    (None, Status::Pending) => n.announce(&event.entry),
                    (Some(Status::Pending), _) => n.withdraw(&event.entry.id, event.to),
                    _ => {}
                },
                Job::Recheck => n.recheck(),
                Job::AtStart => {
                    ledger::close_leftovers();
                    n.announce_waiting();
                }
            }
        }
    });
    let n = notifier.clone();
    std::thread::spawn(move || n.follow(jobs));
    notifier
}

impl Notifier {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shown> {
        self.shown.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes what is on screen now, so that a run after a crash can close it.
    fn save(&self) {
        let ids: Vec<u32> = {
            let s = self.lock();
            s.by_entry
                .values()
                .map(|(id, _)| *id)
                .chain(s.confirming.values().copied())
                .chain(s.summary)
                .collect()
        };
        ledger::save(&ids);
    }

    /// At start: what still waits from before is announced again, one
    /// notification for one write, a summary for several.
    fn announce_waiting(self: &Arc<Self>) {
        let pending = self
            .desktop
            .gw
            .entries(&agentgate_core::EntryFilter {
                status: Some(Status::Pending),
                limit: Some(BURST_LIMIT + 1),
                ..Default::default()
            })
            .unwrap_or_default();
        match pending.as_slice() {
            [] => {}
            [one] => self.announce(one),
            _ => {
                let total = self.desktop.gw.pending_count().unwrap_or(pending.len());
                let ids = self
                    .desktop
                    .gw
                    .entries(&agentgate_core::EntryFilter {
                        status: Some(Status::Pending),
                        limit: Some(total.max(1)),
                        summaries: true,
                        ..Default::default()
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                self.lock().burst = ids;
                self.summarize(Some("Writes are waiting from before agentgate started."));
            }
        }
    }

    /// Watches the queue stamp, which moves with every change in any
    /// process, and has what is shown looked at when it does.
    fn follow(&self, jobs: std::sync::mpsc::Sender<Job>) {
        let mut last = self.desktop.gw.queue_stamp().ok();
        loop {
            std::thread::sleep(FOLLOW);
            if self.desktop.quitting() {
                return;
            }
            // Nothing on screen, nothing that can go stale: the database is
            // left alone (a change meanwhile costs one recheck later).
            if self.lock().is_empty() {
                continue;
            }
            let stamp = self.desktop.gw.queue_stamp().ok();
            if stamp != last {
                last = stamp;
                if jobs.send(Job::Recheck).is_err() {
                    return;
                }
            }
        }
    }

    /// Closes what an entry decided elsewhere still shows, and shows again
    /// an entry edited since its notification (its Approve would be refused).
    fn recheck(self: &Arc<Self>) {
        let tracked: Vec<(String, Option<String>)> = {
            let s = self.lock();
            s.by_entry
                .iter()
                .map(|(id, (_, digest))| (id.clone(), Some(digest.clone())))
                .chain(s.confirming.keys().map(|id| (id.clone(), None)))
                .chain(s.burst.iter().map(|id| (id.clone(), None)))
                .collect()
        };
        for (id, digest) in tracked {
            match self.desktop.gw.entry(&id) {
                Ok(e) if e.status == Status::Pending => {
                    if digest.is_some_and(|d| d != e.digest) {
                        self.withdraw(&id, Status::Pending);
                        self.announce(&e);
                    }
                }
                Ok(e) => self.withdraw(&id, e.status),
                // Gone (pruned or its account removed): nothing to decide.
                Err(_) => self.withdraw(&id, Status::Rejected),
            }
        }
    }

    fn announce(self: &Arc<Self>, entry: &Entry) {
        let burst = {
            let mut s = self.lock();
            let now = Instant::now();
            while s
                .recent
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > BURST_WINDOW)
            {
                s.recent.pop_front();
            }
            s.recent.push_back((now, entry.id.clone()));
            if s.recent.len() > BURST_LIMIT {
                // The burst is what arrived within the window and still waits
                // unannounced; entries with their own notification keep it.
                let ids: Vec<String> = s
                    .recent
                    .iter()
                    .map(|(_, id)| id.clone())
                    .filter(|id| !s.by_entry.contains_key(id))
                    .collect();
                for id in ids {
                    if !s.burst.contains(&id) {
                        s.burst.push(id);
                    }
                }
                true
            } else {
                false
            }
        };
        if burst {
            self.summarize(Some(BURST_BODY));
            return;
        }
        let mut comment: String = entry.comment.chars().take(COMMENT_CHARS).collect();
        if entry.comment.chars().count() > COMMENT_CHARS {
            comment.push('…');
        }
        // The agent's words go to a server that may render markup and to a
        // person who must see where they start and end: escaped and quoted.
        let danger = danger(entry);
        let mut body = format!(
            "The agent says: {}",
            display::markup(&display::quoted(&comment))
        );
        if let Some(what) = danger {
            body.push_str(&format!("\nThis {what}."));
        }
        // Approve is offered only when the notification shows the whole
        // request it approves: one request, short enough to read here.
        let whole = match entry.requests.as_slice() {
            [only] => whole_request(only).filter(|t| t.chars().count() <= SHOWN_REQUEST_CHARS),
            _ => None,
        };
        let batch = whole.is_none();
        match &whole {
            Some(text) => body.push_str(&format!("\n{}", markup_lines(text))),
            None if entry.requests.len() > 1 => body.push_str(&format!(
                "\n{} requests: review them all before approving.",
                entry.requests.len()
            )),
            None => {
                body.push_str("\nThe request is too long to show here: review it before approving.")
            }
        }
        let mut n = base(&display::terminal_line(&headline(entry)), danger.is_some());
        n.body(&body).action("default", "Review");
        if !batch {
            n.action("approve", "Approve");
        }
        n.action("reject", "Reject").timeout(Timeout::Never);
        let handle = match n.show() {
            Ok(h) => h,
            Err(e) => {
                // No notification service: the tray's count still tells.
                tracing::warn!(error = %e, "could not show a notification");
                return;
            }
        };
        self.lock()
            .by_entry
            .insert(entry.id.clone(), (handle.id(), entry.digest.clone()));
        self.save();
        // Decided while this was being shown: the decision's withdrawal found
        // nothing to close yet, so close it now.
        if let Ok(now) = self.desktop.gw.entry(&entry.id)
            && now.status != Status::Pending
        {
            self.withdraw(&entry.id, now.status);
        }
        let id = entry.id.clone();
        // What this notification showed: Approve approves that and nothing else.
        let digest = entry.digest.clone();
        let headline = headline(entry);
        let me = self.clone();
        std::thread::spawn(move || match chosen_action(handle).as_str() {
            // Only an entry shown whole was offered Approve; a forged press
            // on another's notification opens the review instead.
            "approve" if batch => crate::show_window(&me.app, Some(&id)),
            "approve" => match danger {
                Some(what) => me.confirm_destructive(&id, &digest, &headline, what),
                None => me.decide(&id, Some(&digest)),
            },
            "reject" => me.decide(&id, None),
            "default" => crate::show_window(&me.app, Some(&id)),
            _ => {}
        });
    }

    /// A destructive request is approved only after a second, explicit yes.
    fn confirm_destructive(self: &Arc<Self>, id: &str, digest: &str, headline: &str, what: &str) {
        // Decided while the first notification was up: say so instead.
        if !self.still_pending(id) {
            return;
        }
        let summary = if what.starts_with("deletes") {
            "Really approve a deletion?"
        } else {
            "Really approve this?"
        };
        let mut n = base(summary, true);
        n.body(&format!(
            "{}\nThis {what}. It cannot be undone.",
            display::markup(headline)
        ))
        .action("default", "Review")
        .action("confirm", "Yes, approve")
        .action("cancel", "Cancel")
        .timeout(Timeout::Never);
        match n.show() {
            Ok(handle) => {
                self.lock().confirming.insert(id.to_string(), handle.id());
                self.save();
                if let Ok(now) = self.desktop.gw.entry(id)
                    && now.status != Status::Pending
                {
                    self.withdraw(id, now.status);
                }
                let chosen = chosen_action(handle);
                self.lock().confirming.remove(id);
                match chosen.as_str() {
                    "confirm" => self.decide(id, Some(digest)),
                    "default" => crate::show_window(&self.app, Some(id)),
                    _ => {}
                }
            }
            // Without a way to ask again, the window asks instead.
            Err(_) => crate::show_window(&self.app, Some(id)),
        }
    }

    /// Whether the entry still waits; if not, the person is told what
    /// happened to it (their press came after another decision).
    fn still_pending(&self, id: &str) -> bool {
        match self.desktop.gw.entry(id) {
            Ok(e) if e.status == Status::Pending => true,
            Ok(e) => {
                self.tell_decided(&e);
                false
            }
            Err(_) => false,
        }
    }

    /// "Already approved (by cli)": what became of an entry a press was for.
    fn tell_decided(&self, e: &Entry) {
        let by = e
            .reviewed_by
            .as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        let mut n = base(&format!("Already {}{by}", e.status.as_str()), false);
        n.body(&display::markup(&display::terminal_line(&headline(e))))
            .action("default", "Review")
            .timeout(Timeout::Milliseconds(8000));
        if let Ok(handle) = n.show()
            && chosen_action(handle) == "default"
        {
            crate::show_window(&self.app, Some(&e.id));
        }
    }

    /// Approves (and starts) the entry as shown (its digest), or rejects it
    /// (`None`), through the core as every surface does; an entry decided or
    /// changed elsewhere meanwhile stays as it is, and the person is told.
    fn decide(&self, id: &str, approve: Option<&str>) {
        let gw = self.desktop.gw.clone();
        let outcome = {
            // The core starts an approved batch on the runtime, so the
            // decision is made there too (this is a notification thread).
            let (id, approve) = (id.to_string(), approve.map(str::to_string));
            tauri::async_runtime::block_on(async move {
                match approve {
                    Some(digest) => gw.approve_and_start(&id, &digest, NOTIFICATION_REVIEWER),
                    None => gw.reject(
                        &id,
                        NOTIFICATION_REVIEWER,
                        Some("rejected from the desktop notification".into()),
                    ),
                }
            })
        };
        match outcome {
            Ok(_) => {}
            Err(Error::AlreadyDecided { .. }) => {
                if let Ok(e) = self.desktop.gw.entry(id) {
                    self.tell_decided(&e);
                }
            }
            Err(e) => {
                tracing::info!(entry = %id, error = %e, "not decided from the notification");
                // Changed since shown (an edit): the window shows it as it is.
                let mut n = base("Not decided: it changed since shown", false);
                n.body(&display::markup(&e.to_string()))
                    .action("default", "Review")
                    .timeout(Timeout::Milliseconds(8000));
                if let Ok(handle) = n.show()
                    && chosen_action(handle) == "default"
                {
                    crate::show_window(&self.app, Some(id));
                }
            }
        }
    }

    /// Shows or updates the one summary of a burst: how many of its writes
    /// still wait.
    /// Shows or updates the one summary of a burst: how many of its writes
    /// still wait. `body` is its words when it is first shown (an update
    /// keeps them); `None` only updates a summary that is up.
    fn summarize(self: &Arc<Self>, body: Option<&'static str>) {
        let (waiting, existing, words) = {
            let mut s = self.lock();
            let gw = &self.desktop.gw;
            s.burst
                .retain(|id| gw.entry(id).is_ok_and(|e| e.status == Status::Pending));
            if s.summary.is_none()
                && let Some(body) = body
            {
                s.summary_body = body;
            }
            (s.burst.len(), s.summary, s.summary_body)
        };
        if waiting == 0 {
            return self.close_summary();
        }
        let mut n = base(
            &match waiting {
                1 => "1 write waiting".to_string(),
                n => format!("{n} writes waiting"),
            },
            false,
        );
        n.body(words)
            .action("default", "Review")
            .timeout(Timeout::Never);
        if let Some(id) = existing {
            // Replaces the summary in place; its waiting thread is still there.
            n.id(id);
            let _ = n.show();
            return;
        }
        if body.is_none() {
            return;
        }
        match n.show() {
            Ok(handle) => {
                self.lock().summary = Some(handle.id());
                self.save();
                let me = self.clone();
                std::thread::spawn(move || {
                    if chosen_action(handle) == "default" {
                        crate::show_window(&me.app, None);
                    }
                    let mut s = me.lock();
                    s.summary = None;
                    s.burst.clear();
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not show a notification"),
        }
    }

    fn close_summary(&self) {
        let id = self.lock().summary.take();
        if let Some(id) = id {
            close(id, "Nothing waiting");
            self.save();
        }
    }

    /// Closes the notifications of an entry decided (here or elsewhere).
    fn withdraw(self: &Arc<Self>, entry_id: &str, to: Status) {
        let (main, confirm, in_burst) = {
            let mut s = self.lock();
            let in_burst = s.burst.iter().any(|id| id == entry_id);
            (
                s.by_entry.remove(entry_id).map(|(id, _)| id),
                s.confirming.remove(entry_id),
                in_burst,
            )
        };
        let last_word = match to {
            // Shown again as it is now (an edit), never "Write pending".
            Status::Pending => "Changed: shown again".to_string(),
            to => format!("Write {}", to.as_str()),
        };
        for id in main.into_iter().chain(confirm) {
            close(id, &last_word);
        }
        self.save();
        if in_burst {
            self.summarize(None);
        }
    }

    /// On Quit: nothing of this app stays on screen with dead buttons.
    pub fn withdraw_all(&self) {
        let ids: Vec<u32> = {
            let mut guard = self.lock();
            let s = &mut *guard;
            let mut ids: Vec<u32> = s.by_entry.drain().map(|(_, (id, _))| id).collect();
            ids.extend(s.confirming.drain().map(|(_, id)| id));
            ids.extend(s.summary.take());
            s.burst.clear();
            ids
        };
        for id in ids {
            close(id, "agentgate quit");
        }
        ledger::save(&[]);
    }
}

/// Closes notification `id`: notify-rust closes through a handle, so it takes
/// over the id with a last word and closes that, which also ends the thread
/// waiting on the old one.
pub(crate) fn close(id: u32, last_word: &str) {
    let mut n = base(last_word, false);
    n.id(id).timeout(Timeout::Milliseconds(1000));
    if let Ok(handle) = n.show() {
        handle.close();
    }
}

/// Waits until the notification is acted on or closed and says how.
fn chosen_action(handle: notify_rust::NotificationHandle) -> String {
    presses::wait(handle)
}
