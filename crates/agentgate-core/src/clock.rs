//! Time is passed in rather than read deep inside, so that expiry and throttling
//! can be tested with a clock the test controls.

use std::sync::Mutex;
use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(start))
    }
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Timestamps are stored and shown as fixed-width UTC RFC 3339 with milliseconds,
/// so that they sort correctly as text in SQLite.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub fn timestamp(t: OffsetDateTime) -> String {
    format_utc(t, TIMESTAMP)
}

/// The same with microseconds, for the audit log: a read's record reaches the
/// table in a later batch than a transition of the same millisecond, so
/// milliseconds alone cannot say which came first.
const PRECISE_TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn precise_timestamp(t: OffsetDateTime) -> String {
    format_utc(t, PRECISE_TIMESTAMP)
}

fn format_utc(t: OffsetDateTime, format: &[FormatItem<'static>]) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, TIMESTAMP)
        .ok()
        .map(|p| p.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_sort_as_text() {
        let a = time::macros::datetime!(2026-01-02 03:04:05.678 UTC);
        let b = a + time::Duration::milliseconds(1);
        assert_eq!(timestamp(a), "2026-01-02T03:04:05.678Z");
        assert_eq!(parse_timestamp(&timestamp(a)), Some(a));
        assert!(timestamp(a) < timestamp(b));
        let c = a + time::Duration::microseconds(1);
        assert_eq!(precise_timestamp(a), "2026-01-02T03:04:05.678000Z");
        assert!(precise_timestamp(a) < precise_timestamp(c));
    }
}
