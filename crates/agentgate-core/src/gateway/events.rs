//! Queue events: every transition of a queue entry, broadcast inside the
//! process so that live surfaces (the web admin's event stream, the desktop's
//! notifications and tray) learn of it at once instead of polling.
//!
//! Changes made by another process (the CLI working on the same database) are
//! not broadcast; surfaces that must see them also look at
//! [`Gateway::queue_stamp`] now and then.

use tokio::sync::broadcast;

use super::Gateway;
use crate::error::Result;
use crate::queue::{Entry, Status};

/// How many events a slow listener may fall behind before it is told it lagged
/// (and should re-read the queue).
const EVENT_BACKLOG: usize = 256;

/// One transition of one entry.
#[derive(Debug, Clone)]
pub struct QueueEvent {
    /// The entry as it was when the event was sent.
    pub entry: Entry,
    /// `None` for a newly queued entry.
    pub from: Option<Status>,
    pub to: Status,
    /// The `reviewed_by` style name of whoever caused it.
    pub by: String,
}

pub(super) fn channel() -> broadcast::Sender<QueueEvent> {
    broadcast::channel(EVENT_BACKLOG).0
}

impl Gateway {
    /// Every queue transition from now on, in order. A receiver that falls more
    /// than a few hundred events behind gets `RecvError::Lagged` and should
    /// re-read what it shows.
    pub fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.inner.events.subscribe()
    }

    /// A counter that moves whenever the queue does (a new entry, a transition,
    /// a deletion), in this process or any other.
    pub fn queue_stamp(&self) -> Result<i64> {
        self.inner.store.queue_stamp()
    }

    /// Cancelled once the gateway begins to stop: long-lived responses (event
    /// streams) end on it.
    pub fn closing(&self) -> tokio_util::sync::CancellationToken {
        self.inner.closing.clone()
    }

    /// How many entries wait for a human decision.
    pub fn pending_count(&self) -> Result<usize> {
        self.inner.store.count_with_status(Status::Pending)
    }

    pub(super) fn publish(&self, event: QueueEvent) {
        // Nobody listening is normal (a headless gateway with no browser open).
        let _ = self.inner.events.send(event);
    }
}
