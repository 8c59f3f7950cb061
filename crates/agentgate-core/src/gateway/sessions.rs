//! The admin's credentials and sessions: the password, sign-in with its
//! throttle, and the desktop window's single-use launch secrets.

use std::net::IpAddr;

use super::{ADMIN_PASSWORD_KEY, Gateway};
use crate::clock::timestamp;
use crate::error::{Error, Result};
use crate::keys;
use crate::password;
use crate::secret::Secret;

/// A setup code as typed: case, spaces and dashes do not matter.
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

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

    /// Replaces the admin password from a signed-in session (the web admin's
    /// settings), ending every other session: the one making the change
    /// carries on.
    pub fn change_admin_password(&self, password: &Secret, session_token: &str) -> Result<()> {
        let hash = password::hash_password(password)?;
        self.inner.store.set_setting(ADMIN_PASSWORD_KEY, &hash)?;
        self.inner
            .store
            .delete_other_sessions(&keys::token_digest(session_token))?;
        tracing::info!("admin password changed from the web admin");
        Ok(())
    }

    /// Makes sure an admin credential exists, so that first-run setup is never
    /// open: the desktop app calls this before its listeners open. Without a
    /// password, a random secret becomes it, kept in the credential store
    /// (the OS keychain) and nowhere else; the app's own window signs in with
    /// launch secrets, and the person can choose a password for other
    /// browsers in Settings. Returns whether one was made.
    pub fn ensure_admin_credential(&self) -> Result<bool> {
        if self.admin_password_set()? {
            return Ok(false);
        }
        let secret = Secret::new(keys::new_admin_token());
        let hash = password::hash_password(&secret)?;
        let kept = self
            .inner
            .store
            .setting_or_insert(ADMIN_PASSWORD_KEY, &hash)?;
        if kept != hash {
            return Ok(false);
        }
        self.inner
            .creds
            .set(&format!("{}/admin-secret", self.inner.instance), &secret)?;
        tracing::info!("an admin credential was made and kept in the credential store");
        Ok(true)
    }

    /// A new one-time code for first-run setup, while no admin password is
    /// set (`None` once one is). It replaces any earlier code. Only the
    /// process hosting the gateway can make one: `serve` prints it in its log,
    /// so that no request from the network alone can create the admin.
    pub fn issue_setup_code(&self) -> Result<Option<Secret>> {
        if self.admin_password_set()? {
            return Ok(None);
        }
        let raw = keys::random_base62(15).to_uppercase();
        let code = format!("{}-{}-{}", &raw[..5], &raw[5..10], &raw[10..]);
        *self
            .inner
            .setup_code
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(keys::token_digest(&normalize_code(&code)));
        Ok(Some(Secret::new(code)))
    }

    /// Sets the first admin password, with the setup code the server printed;
    /// refused once a password exists. A wrong code counts as a failed
    /// sign-in for the client's address.
    pub async fn setup_admin_password(
        &self,
        client: IpAddr,
        code: &str,
        password: &Secret,
    ) -> Result<()> {
        if self.admin_password_set()? {
            return Err(Error::Conflict(
                "the admin password is already set; log in instead".into(),
            ));
        }
        password::check_password_rules(password)?;
        let attempt = self
            .inner
            .throttle
            .begin(client, self.inner.clock.now())
            .await?;
        let expected = self
            .inner
            .setup_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(expected) = expected else {
            return Err(Error::Forbidden(
                "first-run setup is closed here: set the admin password with \
                 `agentgate admin set-password` on the gateway's machine"
                    .into(),
            ));
        };
        if keys::token_digest(&normalize_code(code)) != expected {
            tracing::warn!(%client, "wrong first-run setup code");
            return Err(Error::Unauthorized(
                "the setup code is not right: it is printed in the log of `agentgate serve` \
                 (or set the password with `agentgate admin set-password`)"
                    .into(),
            ));
        }
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
        attempt.succeeded();
        *self
            .inner
            .setup_code
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        tracing::info!("admin password set by first-run setup");
        Ok(())
    }

    /// Checks the password and opens an admin session, returning its token.
    pub async fn login(&self, client: IpAddr, password: Secret) -> Result<Secret> {
        let Some(hash) = self.inner.store.setting(ADMIN_PASSWORD_KEY)? else {
            return Err(Error::Conflict(
                "no admin password is set yet: set one first".into(),
            ));
        };
        // The slot is taken before argon2 runs, and at most a few checks run
        // at once, so concurrent guesses neither slip under the limit nor
        // exhaust memory.
        let attempt = self
            .inner
            .throttle
            .begin(client, self.inner.clock.now())
            .await?;
        // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || password::verify_password(&password, &hash))
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        if !ok {
            tracing::warn!(%client, "failed admin login");
            return Err(Error::Unauthorized("wrong password".into()));
        }
        attempt.succeeded();
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
        let token = self.new_admin_session()?;
        // One window, one session: the one it held before ends now.
        self.swap_window_session(Some(keys::token_digest(token.expose())))?;
        Ok(token)
    }

    /// Ends the desktop window's session: its window process has ended, and
    /// the cookie it held must be worth nothing after it.
    pub fn end_window_session(&self) -> Result<()> {
        self.swap_window_session(None)
    }

    /// Makes `next` (a session's digest) the window's session and ends the
    /// one before it, if any.
    fn swap_window_session(&self, next: Option<Vec<u8>>) -> Result<()> {
        let previous = std::mem::replace(
            &mut *self
                .inner
                .window_session
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            next,
        );
        match previous {
            Some(digest) => self.inner.store.delete_session(&digest),
            None => Ok(()),
        }
    }

    /// Whether `token` is the desktop window's own session (signed in by a
    /// launch secret, ended by the app, never by the person).
    pub fn is_window_session(&self, token: &str) -> bool {
        let digest = keys::token_digest(token);
        self.inner
            .window_session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .is_some_and(|d| keys::digests_equal(d, &digest))
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
