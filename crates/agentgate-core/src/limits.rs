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

/// Reads one agent may have in flight at once; more are refused (`429`)
/// rather than queued, so one agent cannot hold every upstream connection.
pub const CONCURRENT_READS_PER_AGENT: usize = 8;

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(i64, Kind), VecDeque<OffsetDateTime>>>,
    in_flight: Mutex<HashMap<i64, std::sync::Arc<tokio::sync::Semaphore>>>,
}

impl RateLimiter {
    /// A slot for one read of `agent` while it runs, or a refusal when the
    /// agent has [`CONCURRENT_READS_PER_AGENT`] reads in flight already.
    pub fn read_slot(&self, agent: i64) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        let slots = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > 10_000 {
                // Agents with nothing in flight hold no state worth keeping.
                map.retain(|_, s| s.available_permits() < CONCURRENT_READS_PER_AGENT);
            }
            map.entry(agent)
                .or_insert_with(|| {
                    std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS_PER_AGENT))
                })
                .clone()
        };
        slots.try_acquire_owned().map_err(|_| Error::Throttled {
            message: format!(
                "at most {CONCURRENT_READS_PER_AGENT} reads of one agent run at once; wait for one to finish"
            ),
            retry_after_secs: 1,
        })
    }

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
