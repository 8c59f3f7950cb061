//! Signing upstream requests with an account's credentials, and keeping
//! refreshable credentials (OAuth2 tokens, AT Protocol sessions) fresh.
//!
//! Refreshable credentials are renewed shortly before they expire and once when
//! the service refuses them. Refreshing is single-flight per account: whoever
//! takes the account's refresh lock first renews; the others find a newer
//! secret version once they get the lock and use it. New credentials are stored
//! (credential store, then version bump) before any request uses them. A refresh
//! the provider refuses marks the account as needing reconnection.

use std::sync::Arc;

use base64::Engine;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::reads::effective_base_url;
use super::{Gateway, SecretVersion};
use crate::error::{Error, Result};
use crate::services::{Auth, Credentials, ServiceDef};
use crate::store::AccountRow;
use crate::upstream::{UpstreamRequest, UpstreamResponse};

/// Credentials within this many seconds of expiry are renewed before use.
const REFRESH_MARGIN_SECS: i64 = 60;
/// Within this window an account asks its provider for new credentials
/// because of refusals at most [`REFRESHES_PER_INTERVAL`] times. An agent that
/// provokes refusals (a token without the right scope, a path that answers
/// 401) cannot make the gateway hammer the provider's token endpoint and use
/// up the owner's sign-in quota; two allow a session refresh to be followed
/// by a fresh sign-in when the refresh token was refused too.
pub(super) const MIN_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
pub(super) const REFRESHES_PER_INTERVAL: usize = 2;
/// Largest answer accepted from a session or token endpoint.
const MAX_AUTH_RESPONSE_BYTES: usize = 256 * 1024;

/// Why a refresh failed: the provider refused (the account must be reconnected)
/// or the provider could not be reached (try again later).
pub(super) enum RefreshError {
    Refused(String),
    Unreachable(Error),
}

impl Gateway {
    /// The headers that carry the account's credentials, and the version of the
    /// secret they came from. Expired refreshable credentials are renewed first.
    /// `refused` names a version the service just refused: it is renewed
    /// unless someone already replaced it.
    pub(super) async fn auth_headers(
        &self,
        def: &'static ServiceDef,
        row: &AccountRow,
        refused: Option<SecretVersion>,
    ) -> Result<(HeaderMap, SecretVersion)> {
        if let Some(reason) = &row.needs_reconnect
            && refused.is_none()
        {
            return Err(needs_reconnect(def, &row.name, reason));
        }
        let mut version = (row.id, row.secret_version);
        let mut creds = self.credentials(row)?;
        if refreshable(def) {
            if let Some(stale) = refused {
                (creds, version) = self.refresh(def, &row.name, stale, true).await?;
            } else if self.expired(def, &creds) {
                (creds, version) = self.refresh(def, &row.name, version, false).await?;
            }
        }
        Ok((sign(def, &creds)?, version))
    }

    fn expired(&self, def: &ServiceDef, creds: &Credentials) -> bool {
        let now = self.inner.clock.now().unix_timestamp();
        let expires_at = match def.auth {
            Auth::AtprotoSession => match creds.get("access_jwt") {
                None => return true,
                Some(jwt) => jwt_expiry(jwt.expose()),
            },
            Auth::OAuth2(_) => creds
                .get("expires_at")
                .and_then(|e| e.expose().parse::<i64>().ok()),
            Auth::Bearer { .. } | Auth::Basic { .. } => None,
        };
        // Without a known expiry the service's refusal is what triggers a refresh.
        expires_at.is_some_and(|exp| exp <= now + REFRESH_MARGIN_SECS)
    }

    /// Renews the account's credentials once, however many requests ask at once:
    /// `stale` is the version the caller found wanting; if the stored version has
    /// moved on since, that newer one is the answer. A renewal because the
    /// service refused the credentials (`on_refusal`, which agents can
    /// provoke) happens at most once per [`MIN_REFRESH_INTERVAL`]; one
    /// because they expire is driven by time alone.
    pub(super) async fn refresh(
        &self,
        def: &'static ServiceDef,
        name: &str,
        stale: SecretVersion,
        on_refusal: bool,
    ) -> Result<(Arc<Credentials>, SecretVersion)> {
        let lock = self
            .inner
            .refresh_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((def.key.to_string(), name.to_string()))
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        let current_row = self.reload_row(def, name)?;
        let current_version = (current_row.id, current_row.secret_version);
        if current_version != stale {
            // Someone renewed them while this request waited for the lock.
            return Ok((self.credentials(&current_row)?, current_version));
        }
        let current = self.credentials(&current_row)?;
        if on_refusal && !self.refresh_due(def, name) {
            tracing::info!(service = def.key, account = %name, "credentials refreshed less than a minute ago; not asking again");
            return Ok((current, current_version));
        }
        let result = match def.auth {
            Auth::AtprotoSession => self.atproto_session(def, &current_row, &current).await,
            Auth::OAuth2(spec) => self.oauth_refresh(spec, &current).await,
            Auth::Bearer { .. } | Auth::Basic { .. } => return Ok((current, current_version)),
        };
        match result {
            Ok(fresh) => {
                self.store_credentials(def, name, &fresh)?;
                tracing::info!(service = def.key, account = %name, "credentials refreshed");
                let row = self.reload_row(def, name)?;
                Ok((self.credentials(&row)?, (row.id, row.secret_version)))
            }
            Err(RefreshError::Refused(reason)) => {
                self.inner
                    .store
                    .set_needs_reconnect(def.key, name, Some(&reason))?;
                tracing::warn!(service = def.key, account = %name, %reason, "refresh refused; the account needs reconnecting");
                Err(needs_reconnect(def, name, &reason))
            }
            Err(RefreshError::Unreachable(e)) => Err(e),
        }
    }

    /// Whether the account may ask its provider for new credentials because
    /// of a refusal now (and if so, that it does, from now).
    fn refresh_due(&self, def: &ServiceDef, name: &str) -> bool {
        let mut last = self
            .inner
            .last_refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (def.key.to_string(), name.to_string());
        let now = std::time::Instant::now();
        let recent = last.entry(key).or_default();
        recent.retain(|at| now.duration_since(*at) < MIN_REFRESH_INTERVAL);
        if recent.len() >= REFRESHES_PER_INTERVAL {
            return false;
        }
        recent.push(now);
        true
    }

    fn reload_row(&self, def: &ServiceDef, name: &str) -> Result<AccountRow> {
        self.inner
            .store
            .account(def.key, name)?
            .ok_or_else(|| Error::not_found(format!("no {} account named {name:?}", def.key)))
    }

    /// Saves new credentials and makes every process see them: the secret first,
    /// then the version bump that invalidates cached copies.
    pub(super) fn store_credentials(
        &self,
        def: &ServiceDef,
        name: &str,
        creds: &Credentials,
    ) -> Result<()> {
        self.inner
            .creds
            .set(&self.secret_name(def.key, name), &creds.to_secret())?;
        self.inner
            .store
            .update_account(def.key, name, None, true, &self.now())?;
        self.inner.store.set_needs_reconnect(def.key, name, None)?;
        Ok(())
    }

    /// Creates (or renews) an AT Protocol session: the refresh token first, then
    /// the app password when the refresh token is refused.
    async fn atproto_session(
        &self,
        def: &ServiceDef,
        row: &AccountRow,
        current: &Credentials,
    ) -> std::result::Result<Credentials, RefreshError> {
        let base = effective_base_url(def, row).map_err(RefreshError::Unreachable)?;
        let mut out = current.clone();
        if let Some(refresh) = current.get("refresh_jwt") {
            let resp = self
                .xrpc_post(
                    base,
                    "com.atproto.server.refreshSession",
                    Some(refresh.expose()),
                    None,
                )
                .await
                .map_err(RefreshError::Unreachable)?;
            if resp.status.is_success()
                && let Some(v) = session_fields(&resp)
            {
                apply_session(&mut out, &v);
                return Ok(out);
            }
            tracing::info!(service = def.key, account = %row.name, status = resp.status.as_u16(), "session refresh refused; signing in again");
        }
        let (Some(identifier), Some(password)) =
            (current.get("identifier"), current.get("app_password"))
        else {
            return Err(RefreshError::Refused(
                "the stored credentials lack the identifier or app password".into(),
            ));
        };
        let body = json!({"identifier": identifier.expose(), "password": password.expose()});
        let resp = self
            .xrpc_post(base, "com.atproto.server.createSession", None, Some(body))
            .await
            .map_err(RefreshError::Unreachable)?;
        // Only an explicit refusal (400, 401 or 403 with an AT Protocol error)
        // needs the owner; rate limits, server errors and unreadable answers
        // are tried again later.
        let explicit = matches!(resp.status.as_u16(), 400 | 401 | 403)
            && serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .is_some_and(|v| v.get("error").is_some_and(Value::is_string));
        match session_fields(&resp) {
            Some(v) if resp.status.is_success() => {
                apply_session(&mut out, &v);
                Ok(out)
            }
            _ if explicit => Err(RefreshError::Refused(format!(
                "signing in with the app password was refused ({})",
                resp.status
            ))),
            _ => Err(RefreshError::Unreachable(Error::Upstream(format!(
                "the server answered {} when creating a session; try again later",
                resp.status
            )))),
        }
    }

    async fn xrpc_post(
        &self,
        base: &Url,
        method: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Result<UpstreamResponse> {
        let mut url = base.clone();
        url.set_path(&format!("{}/{method}", base.path().trim_end_matches('/')));
        let mut headers = HeaderMap::new();
        if let Some(token) = bearer {
            headers.extend(bearer_header(token)?);
        }
        if body.is_some() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        self.inner
            .upstream
            .send(
                UpstreamRequest {
                    method: Method::POST,
                    url,
                    headers,
                    body: body.map(|b| b.to_string().into()),
                },
                self.upstream_timeout(),
                MAX_AUTH_RESPONSE_BYTES,
            )
            .await
    }
}

/// Whether a service's answer says the credentials were refused, so that a
/// refresh and one retry are worth it.
pub(super) fn is_auth_failure(def: &ServiceDef, resp: &UpstreamResponse) -> bool {
    if !refreshable(def) {
        return false;
    }
    match resp.status {
        // A token that lacks a scope is not renewed into one that has it.
        StatusCode::UNAUTHORIZED => !resp
            .headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("insufficient_scope"))),
        // AT Protocol servers answer an expired access token with 400 ExpiredToken.
        StatusCode::BAD_REQUEST if matches!(def.auth, Auth::AtprotoSession) => {
            serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .is_some_and(|e| e == "ExpiredToken" || e == "InvalidToken")
        }
        _ => false,
    }
}

pub(super) fn refreshable(def: &ServiceDef) -> bool {
    matches!(def.auth, Auth::AtprotoSession | Auth::OAuth2(_))
}

fn needs_reconnect(def: &ServiceDef, name: &str, reason: &str) -> Error {
    Error::Unauthorized(format!(
        "{}/{name} needs to be reconnected by its owner in agentgate ({reason})",
        def.key
    ))
}

fn sign(def: &ServiceDef, creds: &Credentials) -> Result<HeaderMap> {
    match def.auth {
        Auth::Bearer { field } => bearer_header(creds.field(field)?.expose()),
        Auth::Basic { user, password } => {
            let raw = format!(
                "{}:{}",
                creds.field(user)?.expose(),
                creds.field(password)?.expose()
            );
            let encoded = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
            );
            drop(zeroize::Zeroizing::new(raw));
            secret_header(&format!("Basic {}", encoded.as_str()))
        }
        Auth::AtprotoSession => bearer_header(creds.field("access_jwt")?.expose()),
        Auth::OAuth2(_) => bearer_header(creds.field("access_token")?.expose()),
    }
}

fn bearer_header(token: &str) -> Result<HeaderMap> {
    secret_header(&format!("Bearer {token}"))
}

/// An `Authorization` header marked sensitive, so HTTP libraries never print it.
fn secret_header(value: &str) -> Result<HeaderMap> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::Credentials("the stored credentials hold characters a header cannot carry".into())
    })?;
    v.set_sensitive(true);
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, v);
    Ok(h)
}

fn session_fields(resp: &UpstreamResponse) -> Option<Value> {
    let v: Value = serde_json::from_slice(&resp.body).ok()?;
    (v.get("accessJwt").and_then(Value::as_str).is_some()
        && v.get("refreshJwt").and_then(Value::as_str).is_some())
    .then_some(v)
}

fn apply_session(out: &mut Credentials, v: &Value) {
    for (field, key) in [
        ("access_jwt", "accessJwt"),
        ("refresh_jwt", "refreshJwt"),
        ("did", "did"),
        ("handle", "handle"),
    ] {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            out.set(field, s);
        }
    }
}

/// The `exp` claim of a JWT, read without verifying it: only to know when to renew.
fn jwt_expiry(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"exp":1700000000,"sub":"did:plc:x"}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.sig")), Some(1_700_000_000));
        assert_eq!(jwt_expiry("not a jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.b"), None);
    }

    #[test]
    fn signed_headers_are_sensitive() {
        let mut c = Credentials::default();
        c.set("token", "t0k");
        let h = sign(&crate::services::GITHUB, &c).unwrap();
        assert!(h[AUTHORIZATION].is_sensitive());
        assert!(!format!("{h:?}").contains("t0k"));
        let mut c = Credentials::default();
        c.set("email", "me@example.com");
        c.set("api_token", "secret");
        let h = sign(&crate::services::JIRA, &c).unwrap();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("me@example.com:secret")
        );
        assert_eq!(h[AUTHORIZATION].to_str().unwrap(), expected);
    }
}
