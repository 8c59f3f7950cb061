//! Per-agent rate limits: a sliding window of request times per agent and kind.
//! Limits are per process, kept in memory, and read their time from the
//! gateway's clock so tests can move it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Read,
    Submit,
}

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(i64, Kind), VecDeque<OffsetDateTime>>>,
}

impl RateLimiter {
    /// Counts one request of `agent`, or refuses it with the seconds until the
    /// oldest request in the window leaves it. A limit of 0 means unlimited.
    pub fn check(
        &self,
        agent: i64,
        kind: Kind,
        limit: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        if limit == 0 {
            return Ok(());
        }
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let times = map.entry((agent, kind)).or_default();
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            let retry = times
                .front()
                .map_or(1, |t| (*t + window - now).whole_seconds().max(1))
                as u64;
            let what = match kind {
                Kind::Read => format!("{limit} reads per minute"),
                Kind::Submit => format!("{limit} submissions per hour"),
            };
            return Err(Error::Throttled {
                message: format!("rate limit reached ({what} per agent); retry in {retry} seconds"),
                retry_after_secs: retry,
            });
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliding_window_refuses_the_excess_then_recovers() {
        let l = RateLimiter::default();
        let t0 = time::macros::datetime!(2026-11-24 12:00 UTC);
        for i in 0..3 {
            l.check(
                1,
                Kind::Read,
                3,
                Duration::minutes(1),
                t0 + Duration::seconds(i),
            )
            .unwrap();
        }
        match l.check(
            1,
            Kind::Read,
            3,
            Duration::minutes(1),
            t0 + Duration::seconds(10),
        ) {
            Err(Error::Throttled {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 50),
            other => panic!("{other:?}"),
        }
        l.check(2, Kind::Read, 3, Duration::minutes(1), t0).unwrap();
        l.check(1, Kind::Submit, 3, Duration::hours(1), t0).unwrap();
        l.check(
            1,
            Kind::Read,
            3,
            Duration::minutes(1),
            t0 + Duration::seconds(60),
        )
        .unwrap();
        l.check(1, Kind::Read, 0, Duration::minutes(1), t0).unwrap();
    }
}
