//! Presses on this app's notifications (`ActionInvoked`) and their ends
//! (`NotificationClosed`), heard on one subscription made before the first
//! notification is shown. Waiting for a press per notification, as
//! notify-rust does, subscribes only after the notification is up: a press
//! in that instant (a script, a fast hand, a loaded machine) was lost. Here a
//! press that comes before anyone waits for it is kept a little while for
//! the waiter.
//!
//! Any client of the session bus could send these signals; only the
//! notification server should. That bus is the user's own: whatever can
//! speak on it can also run the `agentgate` CLI on the same data folder, so
//! the signals' sender is not checked (notify-rust never did either).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

#[cfg(all(unix, not(target_os = "macos")))]
use futures::StreamExt;

/// What a closed notification answers, as notify-rust says it.
pub const CLOSED: &str = "__closed";
/// How long a press nobody waits for yet is kept.
const EARLY_KEPT: Duration = Duration::from_secs(10);
const EARLY_MAX: usize = 64;

#[derive(Default)]
struct Presses {
    waiting: HashMap<u32, std::sync::mpsc::Sender<String>>,
    early: VecDeque<(Instant, u32, String)>,
}

static PRESSES: OnceLock<Mutex<Presses>> = OnceLock::new();

fn lock() -> Option<std::sync::MutexGuard<'static, Presses>> {
    PRESSES
        .get()
        .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Subscribes, before any notification is shown. Without a session bus
/// nothing is heard here, and [`wait`] falls back to notify-rust's own wait.
pub fn listen() {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        let subscribed = tauri::async_runtime::block_on(async {
            let conn = crate::host::session().await?;
            let queued = std::num::NonZeroUsize::new(256);
            let rule = |member: &'static str| {
                zbus::MatchRule::builder()
                    .msg_type(zbus::message::Type::Signal)
                    .interface("org.freedesktop.Notifications")
                    .member(member)
                    .build()
            };
            let pressed =
                zbus::MessageStream::for_match_rule(rule("ActionInvoked")?, &conn, queued).await?;
            let closed =
                zbus::MessageStream::for_match_rule(rule("NotificationClosed")?, &conn, queued)
                    .await?;
            Ok::<_, zbus::Error>(futures::stream::select(pressed, closed))
        });
        match subscribed {
            Ok(mut signals) => {
                let _ = PRESSES.set(Mutex::new(Presses::default()));
                tauri::async_runtime::spawn(async move {
                    while let Some(Ok(msg)) = signals.next().await {
                        let body = msg.body();
                        if let Ok((id, action)) = body.deserialize::<(u32, String)>() {
                            heard(id, action);
                        } else if let Ok((id, _reason)) = body.deserialize::<(u32, u32)>() {
                            heard(id, CLOSED.to_string());
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not listen for notification presses"),
        }
    }
}

#[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]
fn heard(id: u32, action: String) {
    let Some(mut p) = lock() else { return };
    if let Some(waiter) = p.waiting.remove(&id) {
        let _ = waiter.send(action);
        return;
    }
    let now = Instant::now();
    p.early
        .retain(|(at, ..)| now.duration_since(*at) < EARLY_KEPT);
    if p.early.len() == EARLY_MAX {
        p.early.pop_front();
    }
    p.early.push_back((now, id, action));
}

/// Waits until notification `handle` is pressed or closed and says how
/// (an action's key, or [`CLOSED`]). The action is handled after the wait
/// has returned, on the caller's thread.
pub fn wait(handle: notify_rust::NotificationHandle) -> String {
    let id = handle.id();
    let rx = {
        let Some(mut p) = lock() else {
            let mut chosen = String::new();
            handle.wait_for_action(|action| chosen = action.to_string());
            return chosen;
        };
        if let Some(at) = p.early.iter().position(|(_, early, _)| *early == id) {
            return p.early.remove(at).map(|(.., a)| a).unwrap_or_default();
        }
        let (tx, rx) = std::sync::mpsc::channel();
        // A newer notification under the same id (one shown again in its
        // place) takes over; the older wait then ends with nothing.
        p.waiting.insert(id, tx);
        rx
    };
    rx.recv().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_press_heard_before_the_wait_is_kept_for_it() {
        let _ = PRESSES.set(Mutex::new(Presses::default()));
        heard(4_000_001, "approve".into());
        let early = lock()
            .unwrap()
            .early
            .iter()
            .any(|(_, id, _)| *id == 4_000_001);
        assert!(early);
        for i in 0..(EARLY_MAX as u32 + 10) {
            heard(5_000_000 + i, "reject".into());
        }
        assert!(lock().unwrap().early.len() <= EARLY_MAX);
    }
}
