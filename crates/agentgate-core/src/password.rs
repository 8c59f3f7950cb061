//! The admin's password and login throttling.
//!
//! The password is stored only as an argon2id hash. Failed logins are counted per
//! client address: after [`MAX_FAILURES`] within [`FAILURE_WINDOW`] further tries
//! from that address are refused (even with the right password) until the oldest
//! failure leaves the window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use time::{Duration, OffsetDateTime};

use crate::error::Error;
use crate::secret::Secret;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// How long an admin session (cookie or CLI token) lasts.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

fn argon2() -> Argon2<'static> {
    // OWASP's first argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_password_rules(password: &Secret) -> Result<(), Error> {
    let n = password.expose().chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "the admin password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "the admin password must have at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

pub fn hash_password(password: &Secret) -> Result<String, Error> {
    check_password_rules(password)?;
    let salt = SaltString::encode_b64(&crate::keys::random_bytes::<16>())
        .map_err(|e| Error::Internal(anyhow::anyhow!("salt encoding failed: {e}")))?;
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(anyhow::anyhow!("password hashing failed: {e}")))
}

pub fn verify_password(password: &Secret, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            argon2()
                .verify_password(password.expose().as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Password checks (argon2, 19 MiB each) that run at once at most; a
/// further attempt waits for one to end.
pub const CONCURRENT_CHECKS: usize = 2;
/// The longest wait the back-off asks for between two failed attempts.
pub const MAX_BACKOFF: Duration = Duration::seconds(60);

/// Failed sign-ins (and setup codes) per client address. An attempt takes its
/// slot before the password is checked, as a failure until it proves right,
/// so that concurrent attempts cannot all slip under the limit; after each
/// failure the next attempt must wait longer (1 s, 2 s, 4 s, ... up to
/// [`MAX_BACKOFF`]); [`MAX_FAILURES`] in [`FAILURE_WINDOW`] lock the address
/// out for the rest of the window.
pub struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, Vec<OffsetDateTime>>>,
    checks: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            failures: Mutex::default(),
            checks: std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CHECKS)),
        }
    }
}

/// An attempt that holds its slot: counted as a failure unless
/// [`Attempt::succeeded`] is called.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    ip: IpAddr,
    at: OffsetDateTime,
    _check: tokio::sync::OwnedSemaphorePermit,
}

impl LoginThrottle {
    /// Takes a slot for one attempt from `ip`, or says how long to wait.
    /// Resolves once a password check may run.
    pub async fn begin(&self, ip: IpAddr, now: OffsetDateTime) -> Result<Attempt<'_>, Error> {
        {
            let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > 10_000 {
                map.retain(|_, v| v.iter().any(|t| *t + FAILURE_WINDOW > now));
            }
            let list = map.entry(ip).or_default();
            list.retain(|t| *t + FAILURE_WINDOW > now);
            let wait = if list.len() >= MAX_FAILURES {
                Some((list[0] + FAILURE_WINDOW - now, "too many failed attempts"))
            } else {
                list.last().and_then(|last| {
                    let backoff =
                        (Duration::seconds(1) * 2i32.pow(list.len() as u32 - 1)).min(MAX_BACKOFF);
                    (*last + backoff > now)
                        .then(|| (*last + backoff - now, "after a failed attempt, wait"))
                })
            };
            if let Some((left, why)) = wait {
                let retry = left.whole_seconds().max(1) as u64;
                return Err(Error::Throttled {
                    message: format!("{why}; try again in {retry} seconds"),
                    retry_after_secs: retry,
                });
            }
            list.push(now);
        }
        let check = self
            .checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(Attempt {
            throttle: self,
            ip,
            at: now,
            _check: check,
        })
    }
}

impl Attempt<'_> {
    /// The attempt was right: the address's failures are forgotten.
    pub fn succeeded(self) {
        self.throttle
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.ip);
    }

    /// When the attempt was made.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let pw = Secret::new("correct horse battery");
        let h = hash_password(&pw).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &h));
        assert!(!verify_password(&Secret::new("wrong password"), &h));
        assert!(!verify_password(&pw, "not a hash"));
        assert!(hash_password(&Secret::new("short")).is_err());
    }

    #[tokio::test]
    async fn throttle_backs_off_locks_out_and_recovers() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let mut at = start;
        for i in 0..MAX_FAILURES {
            // Failing: the slot stays counted.
            drop(t.begin(ip, at).await.unwrap());
            let next = at + Duration::seconds(1 << i);
            if i + 1 < MAX_FAILURES {
                let err = t
                    .begin(ip, next - Duration::milliseconds(500))
                    .await
                    .err()
                    .unwrap();
                assert!(
                    matches!(err, Error::Throttled { .. }),
                    "the back-off holds after {} failures",
                    i + 1
                );
            }
            at = next;
        }
        let err = t.begin(ip, at).await.err().unwrap();
        assert!(matches!(err, Error::Throttled { retry_after_secs, .. } if retry_after_secs > 800));
        t.begin(other, start).await.unwrap().succeeded();
        let later = start + FAILURE_WINDOW + Duration::seconds(100);
        t.begin(ip, later).await.unwrap().succeeded();
        t.begin(ip, later).await.unwrap();
    }

    /// Concurrent attempts take their slots before any password is checked:
    /// of many at once, one gets to check.
    #[tokio::test]
    async fn concurrent_attempts_cannot_slip_under_the_limit() {
        let t = std::sync::Arc::new(LoginThrottle::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.begin(ip, now).await.is_ok() })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap());
        }
        assert_eq!(admitted, 1);
    }
}
