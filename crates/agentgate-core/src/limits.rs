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
/// Requests with a body (submissions, writes on read URLs, MCP calls) one
/// agent may have being read and handled at once; with the 1 MiB body limit
/// this bounds what one agent's uploads hold in memory.
pub const CONCURRENT_BODIES_PER_AGENT: usize = 4;

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(i64, Kind), VecDeque<OffsetDateTime>>>,
    in_flight: Mutex<HashMap<i64, std::sync::Arc<tokio::sync::Semaphore>>>,
    bodies: Mutex<HashMap<i64, std::sync::Arc<tokio::sync::Semaphore>>>,
}

/// Takes one of `size` slots of `agent` in `map`, or refuses with `message`.
fn take_slot(
    map: &Mutex<HashMap<i64, std::sync::Arc<tokio::sync::Semaphore>>>,
    agent: i64,
    size: usize,
    message: String,
) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
    let slots = {
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            // Agents with nothing in flight hold no state worth keeping.
            map.retain(|_, s| s.available_permits() < size);
        }
        map.entry(agent)
            .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(size)))
            .clone()
    };
    slots.try_acquire_owned().map_err(|_| Error::Throttled {
        message,
        retry_after_secs: 1,
    })
}

impl RateLimiter {
    /// A slot for one read of `agent` while it runs, or a refusal when the
    /// agent has [`CONCURRENT_READS_PER_AGENT`] reads in flight already.
    pub fn read_slot(&self, agent: i64) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        take_slot(
            &self.in_flight,
            agent,
            CONCURRENT_READS_PER_AGENT,
            format!(
                "at most {CONCURRENT_READS_PER_AGENT} reads of one agent run at once; wait for one to finish"
            ),
        )
    }

    /// A slot for one request with a body of `agent`, or a refusal when it
    /// has [`CONCURRENT_BODIES_PER_AGENT`] such requests in progress.
    pub fn body_slot(&self, agent: i64) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        take_slot(
            &self.bodies,
            agent,
            CONCURRENT_BODIES_PER_AGENT,
            format!(
                "at most {CONCURRENT_BODIES_PER_AGENT} requests with a body of one agent are handled at once; wait for one to finish"
            ),
        )
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
