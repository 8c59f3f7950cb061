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

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, Vec<OffsetDateTime>>>,
}

impl LoginThrottle {
    /// Refuses a login attempt from `ip` while it has too many recent failures.
    pub fn check(&self, ip: IpAddr, now: OffsetDateTime) -> Result<(), Error> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(ip).or_default();
        list.retain(|t| *t + FAILURE_WINDOW > now);
        if list.len() >= MAX_FAILURES {
            let retry = (list[0] + FAILURE_WINDOW - now).whole_seconds().max(1) as u64;
            return Err(Error::Throttled {
                message: format!("too many failed logins; try again in {retry} seconds"),
                retry_after_secs: retry,
            });
        }
        Ok(())
    }

    pub fn record_failure(&self, ip: IpAddr, now: OffsetDateTime) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bound memory under a flood of addresses: forget addresses whose failures expired.
        if map.len() > 10_000 {
            map.retain(|_, v| v.iter().any(|t| *t + FAILURE_WINDOW > now));
        }
        map.entry(ip).or_default().push(now);
    }

    pub fn record_success(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
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

    #[test]
    fn throttle_locks_out_after_repeated_failures_then_recovers() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        for i in 0..MAX_FAILURES {
            t.check(ip, start).unwrap();
            t.record_failure(ip, start + Duration::seconds(i as i64));
        }
        let err = t.check(ip, start + Duration::seconds(10)).unwrap_err();
        assert!(matches!(err, Error::Throttled { retry_after_secs, .. } if retry_after_secs > 800));
        t.check(other, start).unwrap();
        t.check(ip, start + FAILURE_WINDOW + Duration::seconds(1))
            .unwrap();
    }
}
