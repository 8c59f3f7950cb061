//! Service accounts: adding, changing, testing and removing them, and the
//! credentials they hold (read from the credential store, cached by version).

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderMap, Method};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::Gateway;
use super::agents::check_name;
use super::reads::UpstreamCall;
use crate::error::{Error, Result};
use crate::paths::AgentPath;
use crate::secret::Secret;
use crate::services::{self, Credentials, ServiceDef};
use crate::store::AccountRow;

pub struct NewAccount {
    pub service: String,
    pub name: String,
    pub base_url: Option<String>,
    pub credentials: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountInfo {
    pub service: String,
    pub service_name: &'static str,
    pub auth_method: &'static str,
    /// Why the account must be reconnected, when a token refresh was refused.
    pub needs_reconnect: Option<String>,
    pub name: String,
    pub base_url: String,
    pub custom_base_url: bool,
    /// Who the account is at the service, as its last successful test said.
    pub identity: Option<String>,
    /// When the account was last tested, and why that test failed if it did.
    pub tested_at: Option<String>,
    pub test_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountTest {
    pub ok: bool,
    pub status: Option<u16>,
    /// Who the account is, as the service says.
    pub identity: Option<String>,
    pub error: Option<String>,
}

impl Gateway {
    pub fn add_account(&self, new: NewAccount) -> Result<AccountInfo> {
        let def = services::find(&new.service)
            .ok_or_else(|| Error::invalid(format!("unknown service {:?}", new.service)))?;
        if let services::Auth::OAuth2(spec) = def.auth {
            return Err(Error::invalid(format!(
                "{} accounts sign in through {}'s OAuth: start with POST /admin/oauth/connect",
                def.display_name, spec.provider
            )));
        }
        let name = check_name(&new.name, "account name")?;
        let base_url = new
            .base_url
            .as_deref()
            .map(|u| self.resolve_base_url(def, u))
            .transpose()?;
        if base_url.is_none() && def.default_base_url.is_none() {
            return Err(Error::invalid(format!(
                "{} accounts need a base URL",
                def.display_name
            )));
        }
        let creds = check_credentials(def, new.credentials)?;
        let now = self.now();
        // The row goes in first so that a name clash never touches the existing
        // account's secret; if storing the secret then fails, the row is removed.
        self.inner
            .store
            .insert_account(def.key, name, base_url.as_deref(), &now)?;
        if let Err(e) = self
            .inner
            .creds
            .set(&self.secret_name(def.key, name), &creds.to_secret())
        {
            let _ = self.inner.store.delete_account(def.key, name);
            return Err(e);
        }
        tracing::info!(service = def.key, account = %name, "account added");
        self.account_info(def.key, name)
    }

    pub fn accounts(&self) -> Result<Vec<AccountInfo>> {
        self.inner
            .store
            .accounts()?
            .into_iter()
            .filter_map(|r| account_info(&r))
            .map(Ok)
            .collect()
    }

    pub fn account_info(&self, service: &str, name: &str) -> Result<AccountInfo> {
        let (_, row) = self.account_row(service, name)?;
        account_info(&row).ok_or_else(|| Error::not_found(format!("unknown service {service:?}")))
    }

    /// Changes an account's base URL (`Some(None)` returns to the service default)
    /// and/or replaces its credentials.
    pub fn update_account(
        &self,
        service: &str,
        name: &str,
        base_url: Option<Option<String>>,
        credentials: Option<BTreeMap<String, Secret>>,
    ) -> Result<AccountInfo> {
        let (def, _) = self.account_row(service, name)?;
        let secret_changed = credentials.is_some();
        let base_url = match base_url {
            Some(Some(u)) => Some(Some(self.resolve_base_url(def, &u)?)),
            Some(None) if def.default_base_url.is_none() => {
                return Err(Error::invalid(format!(
                    "{} accounts need a base URL",
                    def.display_name
                )));
            }
            other => other,
        };
        if let Some(c) = credentials {
            let creds = check_credentials(def, c)?;
            self.inner
                .creds
                .set(&self.secret_name(def.key, name), &creds.to_secret())?;
        }
        self.inner.store.update_account(
            def.key,
            name,
            base_url.as_ref().map(|u| u.as_deref()),
            secret_changed,
            &self.now(),
        )?;
        self.account_info(def.key, name)
    }

    pub fn remove_account(&self, service: &str, name: &str) -> Result<()> {
        let (def, row) = self.account_row(service, name)?;
        self.inner.store.delete_account(def.key, name)?;
        self.inner.store.delete_account_grants(def.key, name)?;
        // Its pending writes can never run (an account added later under the
        // name is another): the system rejects them, saying why.
        let pending = self.inner.store.entries(&crate::queue::EntryFilter {
            status: Some(crate::queue::Status::Pending),
            service: Some(def.key.to_string()),
            account: Some(name.to_string()),
            ..Default::default()
        })?;
        for entry in pending
            .iter()
            .filter(|e| e.account_id.is_none_or(|id| id == row.id))
        {
            match self.record_decision(
                &entry.id,
                crate::queue::Status::Rejected,
                "system",
                Some(format!(
                    "the account {}/{name} was removed, so this write can no longer run",
                    def.key
                )),
                None,
            ) {
                Ok(_) | Err(Error::AlreadyDecided { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.inner.creds.delete(&self.secret_name(def.key, name))?;
        self.inner
            .credential_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(def.key.to_string(), name.to_string()));
        tracing::info!(service = def.key, account = %name, "account removed");
        Ok(())
    }

    /// Asks the service who the account is, with the stored credentials.
    pub async fn test_account(&self, service: &str, name: &str) -> Result<AccountTest> {
        let test = self.run_account_test(service, name).await?;
        self.inner.store.record_account_test(
            services::find(service).map_or(service, |d| d.key),
            name,
            test.identity.as_deref(),
            test.error.as_deref(),
            &self.now(),
        )?;
        Ok(test)
    }

    async fn run_account_test(&self, service: &str, name: &str) -> Result<AccountTest> {
        let (def, row) = self.account_row(service, name)?;
        let path = AgentPath::parse_with_query(def.identity_path)
            .map_err(|e| Error::Internal(e.into()))?;
        let result = self
            .call_upstream(
                def,
                &row,
                UpstreamCall {
                    method: Method::GET,
                    path: &path,
                    headers: HeaderMap::new(),
                    body: None,
                    follow: None,
                },
                row.needs_reconnect.is_some(),
            )
            .await;
        Ok(match result {
            Ok(resp) if resp.status.is_success() => {
                let identity = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| (def.identity_name)(&v));
                AccountTest {
                    ok: true,
                    status: Some(resp.status.as_u16()),
                    identity,
                    error: None,
                }
            }
            Ok(resp) => AccountTest {
                ok: false,
                status: Some(resp.status.as_u16()),
                identity: None,
                error: Some(format!(
                    "{} answered {}{}",
                    def.display_name,
                    resp.status,
                    if resp.status.as_u16() == 401 {
                        ": the credentials were refused"
                    } else {
                        ""
                    }
                )),
            },
            Err(e) => AccountTest {
                ok: false,
                status: None,
                identity: None,
                error: Some(e.to_string()),
            },
        })
    }

    pub(super) fn secret_name(&self, service: &str, account: &str) -> String {
        format!("{}/{service}/{account}", self.inner.instance)
    }

    pub(super) fn account_row(
        &self,
        service: &str,
        name: &str,
    ) -> Result<(&'static ServiceDef, Arc<AccountRow>)> {
        let def = services::find(service)
            .ok_or_else(|| Error::not_found(format!("unknown service {service:?}")))?;
        let row =
            self.inner.hot.account(def.key, name)?.ok_or_else(|| {
                Error::not_found(format!("no {} account named {name:?}", def.key))
            })?;
        Ok((def, row))
    }

    pub(super) fn credentials(&self, row: &AccountRow) -> Result<Arc<Credentials>> {
        let key = (row.service.clone(), row.name.clone());
        let version = (row.id, row.secret_version);
        if let Some((v, c)) = self
            .inner
            .credential_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && *v == version
        {
            return Ok(c.clone());
        }
        let secret = self
            .inner
            .creds
            .get(&self.secret_name(&row.service, &row.name))?
            .ok_or_else(|| {
                Error::Credentials(format!(
                    "the credentials of {}/{} are missing from the {}; add the account again",
                    row.service,
                    row.name,
                    self.inner.creds.describe()
                ))
            })?;
        let creds = Arc::new(Credentials::from_secret(&secret)?);
        self.inner
            .credential_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (version, creds.clone()));
        Ok(creds)
    }

    /// An account's API base from what the admin typed: a full URL, or for
    /// services with a template (Mastodon, Jira, Bluesky, GitHub Enterprise) just
    /// the host name.
    pub(super) fn resolve_base_url(&self, def: &ServiceDef, raw: &str) -> Result<String> {
        let raw = raw.trim();
        match def.base_url_template {
            Some(t) if !raw.contains("://") => {
                let host = raw.trim_end_matches('/');
                if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
                    return Err(Error::invalid(format!(
                        "{raw:?} is neither a URL nor a host name"
                    )));
                }
                check_base_url(&t.replace("{host}", host))
            }
            _ => check_base_url(raw),
        }
    }

    /// Adds an OAuth-connected account, or gives an existing one its new tokens.
    pub(super) fn upsert_oauth_account(
        &self,
        def: &'static ServiceDef,
        name: &str,
        base_url: Option<&str>,
        creds: &Credentials,
    ) -> Result<AccountInfo> {
        if self.inner.store.account(def.key, name)?.is_none() {
            self.inner
                .store
                .insert_account(def.key, name, base_url, &self.now())?;
        } else if let Some(url) = base_url {
            self.inner
                .store
                .update_account(def.key, name, Some(Some(url)), false, &self.now())?;
        }
        self.store_credentials(def, name, creds)?;
        self.account_info(def.key, name)
    }
}

fn account_info(row: &AccountRow) -> Option<AccountInfo> {
    let def = services::find(&row.service)?;
    Some(AccountInfo {
        service: def.key.to_string(),
        service_name: def.display_name,
        auth_method: def.auth.method(),
        needs_reconnect: row.needs_reconnect.clone(),
        name: row.name.clone(),
        base_url: row
            .base_url
            .clone()
            .or(def.default_base_url.map(str::to_string))
            .unwrap_or_default(),
        custom_base_url: row.base_url.is_some(),
        identity: row.identity.clone(),
        tested_at: row.tested_at.clone(),
        test_error: row.test_error.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    })
}

/// A base URL receives credentials, so it must be HTTPS (plain HTTP only to this
/// machine) with no user, query or fragment.
pub(super) fn check_base_url(raw: &str) -> Result<String> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::invalid(format!("base URL {raw:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.host().is_none() {
        return Err(Error::invalid(format!(
            "base URL {raw:?} must be https:// (plain http:// only for this machine)"
        )));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Error::invalid(format!(
            "base URL {raw:?} must not hold a user name, password, query or fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn check_credentials(def: &ServiceDef, given: BTreeMap<String, Secret>) -> Result<Credentials> {
    for name in given.keys() {
        if !def.credential_fields.iter().any(|f| f.name == name) {
            return Err(Error::invalid(format!(
                "{} credentials have no field {name:?}; expected {}",
                def.display_name,
                field_list(def)
            )));
        }
    }
    for f in def.credential_fields {
        if given
            .get(f.name)
            .is_none_or(|v| v.expose().trim().is_empty())
        {
            return Err(Error::invalid(format!(
                "{} credentials need {}",
                def.display_name,
                field_list(def)
            )));
        }
    }
    Ok(Credentials(
        given
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v.expose().trim())))
            .collect(),
    ))
}

fn field_list(def: &ServiceDef) -> String {
    def.credential_fields
        .iter()
        .map(|f| format!("{:?} ({})", f.name, f.label))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_safe_to_send_credentials_to() {
        assert_eq!(
            check_base_url("https://ghe.corp/api/v3/").unwrap(),
            "https://ghe.corp/api/v3"
        );
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:8080").is_ok());
        for bad in [
            "http://ghe.corp",
            "ftp://x",
            "https://user:pw@x",
            "https://x/?a=b",
            "not a url",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }
}
