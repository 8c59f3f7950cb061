//! The admin's credentials and sessions: the password, sign-in with its
//! throttle, and the desktop window's single-use launch secrets.

use std::net::IpAddr;

use super::{ADMIN_PASSWORD_KEY, Gateway};
use crate::clock::timestamp;
use crate::error::{Error, Result};
use crate::keys;
use crate::password;
use crate::secret::Secret;

/// How long a desktop window's sign-in secret may wait to be used.
pub const LAUNCH_SECRET_LIFETIME: time::Duration = time::Duration::seconds(60);

impl Gateway {
    pub fn admin_password_set(&self) -> Result<bool> {
        Ok(self.inner.store.setting(ADMIN_PASSWORD_KEY)?.is_some())
    }

    /// Sets or replaces the admin password and ends every admin session.
    pub fn set_admin_password(&self, password: &Secret) -> Result<()> {
        let hash = password::hash_password(password)?;
        self.inner.store.set_setting(ADMIN_PASSWORD_KEY, &hash)?;
        self.inner.store.delete_all_sessions()?;
        tracing::info!("admin password changed");
        Ok(())
    }

    /// Sets the first admin password; refused once one exists.
    pub fn setup_admin_password(&self, password: &Secret) -> Result<()> {
        password::check_password_rules(password)?;
        let hash = password::hash_password(password)?;
        if self
            .inner
            .store
            .setting_or_insert(ADMIN_PASSWORD_KEY, &hash)?
            != hash
        {
            return Err(Error::Conflict(
                "the admin password is already set; log in instead".into(),
            ));
        }
        Ok(())
    }

    /// Checks the password and opens an admin session, returning its token.
    pub async fn login(&self, client: IpAddr, password: Secret) -> Result<Secret> {
        let now = self.inner.clock.now();
        self.inner.throttle.check(client, now)?;
        let Some(hash) = self.inner.store.setting(ADMIN_PASSWORD_KEY)? else {
            return Err(Error::Conflict(
                "no admin password is set yet: set one first".into(),
            ));
        };
        // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || password::verify_password(&password, &hash))
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        if !ok {
            self.inner.throttle.record_failure(client, now);
            tracing::warn!(%client, "failed admin login");
            return Err(Error::Unauthorized("wrong password".into()));
        }
        self.inner.throttle.record_success(client);
        self.new_admin_session()
    }

    fn new_admin_session(&self) -> Result<Secret> {
        let now = self.inner.clock.now();
        let token = keys::new_admin_token();
        self.inner.store.insert_session(
            &keys::token_digest(&token),
            &timestamp(now),
            &timestamp(now + password::SESSION_LIFETIME),
        )?;
        Ok(Secret::new(token))
    }

    /// A single-use secret that signs the desktop app's own window in without
    /// the password (`/ui/launch?secret=…`). Only the process that hosts the
    /// gateway can mint one; it lives [`LAUNCH_SECRET_LIFETIME`] and is kept
    /// only as a digest, in memory, so it dies with the process.
    pub fn launch_secret(&self) -> Secret {
        let secret = keys::new_admin_token();
        let expires = self.inner.clock.now() + LAUNCH_SECRET_LIFETIME;
        let mut held = self
            .inner
            .launch_secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = self.inner.clock.now();
        held.retain(|(_, until)| *until > now);
        held.push((keys::token_digest(&secret), expires));
        Secret::new(secret)
    }

    /// Trades a launch secret for an admin session, once.
    pub fn redeem_launch_secret(&self, secret: &str) -> Result<Secret> {
        let digest = keys::token_digest(secret);
        let now = self.inner.clock.now();
        let found = {
            let mut held = self
                .inner
                .launch_secrets
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let at = held
                .iter()
                .position(|(d, until)| keys::digests_equal(d, &digest) && *until > now);
            at.map(|i| held.swap_remove(i))
        };
        if found.is_none() {
            return Err(Error::Unauthorized(
                "this sign-in link is unknown, used or expired".into(),
            ));
        }
        tracing::info!("the desktop window signed in");
        self.new_admin_session()
    }

    pub fn admin_session_valid(&self, token: &str) -> Result<bool> {
        if !token.starts_with(keys::ADMIN_TOKEN_PREFIX) || token.len() > 200 {
            return Ok(false);
        }
        self.inner
            .store
            .session_valid(&keys::token_digest(token), &self.now())
    }

    pub fn logout(&self, token: &str) -> Result<()> {
        self.inner.store.delete_session(&keys::token_digest(token))
    }
}
