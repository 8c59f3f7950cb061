//! [`Gateway`]: the one object every surface (agent API, admin API, CLI, desktop)
//! calls. It owns the store, the credential store, the upstream client and the
//! clock, and implements every operation once, so a queue entry is decided by the
//! same code whichever surface the human used.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::task::TaskTracker;
use url::Url;

pub mod audit;
mod events;
mod oauth;
mod policy;
mod signin;
pub mod webhooks;

pub use events::QueueEvent;
pub use oauth::{CONNECT_LIFETIME, OAuthClientConfig, OAuthClientInfo};
pub use policy::{GrantInfo, MAX_GRANT_MINUTES, PolicyView, RuleSpec};

use crate::admin::{self, LoginThrottle};
use crate::clock::{Clock, timestamp};
use crate::config::Config;
use crate::credentials::CredentialStore;
use crate::error::{Error, Result};
use crate::keys;
use crate::paths::AgentPath;
use crate::queue::{self, Entry, RequestResult, Status, Submission, WriteRequest};
use crate::secret::Secret;
use crate::services::{self, Credentials, ServiceDef};
use crate::store::{AccountRow, Agent, EntryFilter, HotCache, KeyedAgent, NewEntry, Store};
use crate::upstream::{self, Upstream, UpstreamRequest, UpstreamResponse};

const SETTINGS_KEY: &str = "settings";
const PAUSED_KEY: &str = "paused";
const ADMIN_PASSWORD_KEY: &str = "admin_password_hash";
const INSTANCE_KEY: &str = "instance_id";
const PEPPER_FINGERPRINT_KEY: &str = "key_pepper_fingerprint";
/// How long a desktop window's sign-in secret may wait to be used.
pub const LAUNCH_SECRET_LIFETIME: time::Duration = time::Duration::seconds(60);
/// Largest upstream body kept in a queue entry's results.
const MAX_STORED_RESULT_BYTES: usize = 256 * 1024;

/// (service, account name)
type AccountKey = (String, String);

/// An agent's read, as it arrived.
pub struct AgentRead<'a> {
    pub service: &'a str,
    pub account: &'a str,
    /// The upstream path, still percent-encoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The service's answer as sent, never compacted.
    pub raw: bool,
}

/// One request to a service, before credentials are added.
struct UpstreamCall<'a> {
    method: Method,
    path: &'a AgentPath,
    /// The agent's own headers, already filtered.
    headers: HeaderMap,
    body: Option<Bytes>,
}
/// (account row id, secret version): changes whenever the stored secret may have.
pub(crate) type SecretVersion = (i64, i64);

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Store,
    /// Agents by key, accounts and the pause switch, as every agent request needs
    /// them; revalidated against the database on each use.
    hot: HotCache,
    /// Read records for the audit log, written in batches by a background thread.
    audit_reads: audit::ReadLog,
    creds: Box<dyn CredentialStore>,
    clock: Arc<dyn Clock>,
    upstream: Upstream,
    instance: String,
    pepper: Secret,
    /// Decoded credentials by account, tagged with the account's secret version so
    /// that a change made by another process (the CLI) is seen on the next request.
    credential_cache: Mutex<HashMap<AccountKey, (SecretVersion, Arc<Credentials>)>>,
    settings: RwLock<Settings>,
    throttle: LoginThrottle,
    limits: crate::limits::RateLimiter,
    executions: TaskTracker,
    /// The agent listener's port once bound, for the derived public URL.
    agent_port: AtomicU16,
    /// One lock per account, so that concurrent requests refresh its tokens once.
    refresh_locks: Mutex<HashMap<AccountKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Digests of unused launch secrets, with their expiry.
    launch_secrets: Mutex<Vec<(Vec<u8>, time::OffsetDateTime)>>,
    /// Queue transitions, for live surfaces.
    events: tokio::sync::broadcast::Sender<QueueEvent>,
    /// Cancelled when the server stops, so long-lived streams end and let the
    /// graceful shutdown finish.
    closing: tokio_util::sync::CancellationToken,
    /// OAuth connects in progress, by `state`.
    pending_connects: Mutex<HashMap<String, oauth::PendingConnect>>,
}

/// Settings the admin can change while the gateway runs. Fields added later
/// take their defaults when older stored settings lack them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub upstream_timeout_secs: u64,
    /// Pending entries nobody decided on expire after this many hours.
    pub pending_expiry_hours: u64,
    /// Reads per minute per agent; 0 for no limit.
    pub reads_per_minute: u32,
    /// Submissions per hour per agent; 0 for no limit.
    pub submissions_per_hour: u32,
    /// Audit records older than this many days are removed.
    pub audit_retention_days: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            upstream_timeout_secs: crate::config::DEFAULT_UPSTREAM_TIMEOUT.as_secs(),
            pending_expiry_hours: 7 * 24,
            reads_per_minute: 600,
            submissions_per_hour: 120,
            audit_retention_days: 90,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub upstream_timeout_secs: Option<u64>,
    pub pending_expiry_hours: Option<u64>,
    pub reads_per_minute: Option<u32>,
    pub submissions_per_hour: Option<u32>,
    pub audit_retention_days: Option<u64>,
}

pub struct NewAccount {
    pub service: String,
    pub name: String,
    pub base_url: Option<String>,
    pub credentials: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct AccountTest {
    pub ok: bool,
    pub status: Option<u16>,
    /// Who the account is, as the service says.
    pub identity: Option<String>,
    pub error: Option<String>,
}

impl Gateway {
    /// Opens (creating if needed) the data folder and database, and checks that the
    /// credential store holds this installation's key secret.
    pub fn open(
        config: Config,
        creds: Box<dyn CredentialStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway> {
        create_private_dir(&config.data_dir)?;
        let store = Store::open(&config.database_path())?;
        let instance =
            store.setting_or_insert(INSTANCE_KEY, &keys::random_base62(12).to_lowercase())?;
        let pepper = load_pepper(&store, creds.as_ref(), &instance)?;
        let settings = match store.setting(SETTINGS_KEY)? {
            Some(s) => serde_json::from_str(&s).map_err(|e| {
                Error::Internal(anyhow::Error::new(e).context("stored settings are damaged"))
            })?,
            None => Settings {
                upstream_timeout_secs: config.upstream_timeout.as_secs(),
                ..Settings::default()
            },
        };
        let config_port = config.agent_addr.port();
        // The audit writer gets its own connection: in WAL mode its batch writes
        // never hold up the request path's reads.
        let audit_reads = audit::ReadLog::start(Store::open(&config.database_path())?);
        let hot = HotCache::open(&config.database_path(), &store)?;
        Ok(Gateway {
            inner: Arc::new(Inner {
                config,
                audit_reads,
                store,
                hot,
                creds,
                clock,
                upstream: Upstream::new()?,
                instance,
                pepper,
                credential_cache: Mutex::new(HashMap::new()),
                settings: RwLock::new(settings),
                throttle: LoginThrottle::default(),
                limits: crate::limits::RateLimiter::default(),
                executions: TaskTracker::new(),
                agent_port: AtomicU16::new(config_port),
                refresh_locks: Mutex::new(HashMap::new()),
                pending_connects: Mutex::new(HashMap::new()),
                events: events::channel(),
                launch_secrets: Mutex::new(Vec::new()),
                closing: tokio_util::sync::CancellationToken::new(),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The public URL of the agent API, as agents should call it.
    pub fn base_url(&self) -> String {
        match &self.inner.config.base_url {
            Some(u) => u.clone(),
            None => format!(
                "http://localhost:{}",
                self.inner.agent_port.load(Ordering::Relaxed)
            ),
        }
    }

    pub(crate) fn set_agent_port(&self, port: u16) {
        self.inner.agent_port.store(port, Ordering::Relaxed);
    }

    pub fn credential_backend(&self) -> String {
        self.inner.creds.describe()
    }

    fn now(&self) -> String {
        timestamp(self.inner.clock.now())
    }

    // ----- agents -----

    /// Creates an agent and returns it with its key, which is never available again.
    pub fn create_agent(&self, name: &str) -> Result<(Agent, Secret)> {
        let name = check_name(name, "agent name")?;
        let key = keys::new_agent_key();
        let digest = keys::agent_key_digest(self.inner.pepper.expose().as_bytes(), &key);
        let agent =
            self.inner
                .store
                .insert_agent(name, &digest, &keys::key_hint(&key), &self.now())?;
        tracing::info!(agent = %agent.name, "agent created");
        Ok((agent, Secret::new(key)))
    }

    /// Resolves an `Authorization` header value to an enabled agent.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Agent>> {
        let Some(header) = authorization else {
            return Err(Error::Unauthorized(
                "missing Authorization header: send \"Authorization: Bearer rms_...\"".into(),
            ));
        };
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Error::Unauthorized("the Authorization header must be \"Bearer <key>\"".into())
            })?;
        if !keys::is_well_formed_agent_key(key) {
            return Err(Error::Unauthorized(
                "malformed API key: agent keys look like rms_ followed by 40 letters and digits"
                    .into(),
            ));
        }
        let digest = keys::agent_key_digest(self.inner.pepper.expose().as_bytes(), key);
        let found = self.inner.hot.agent_by_digest(&digest)?;
        match found {
            Some(KeyedAgent {
                agent,
                digest: stored,
            }) if keys::digests_equal(&stored, &digest) => {
                if agent.enabled {
                    Ok(agent)
                } else {
                    Err(Error::Forbidden(format!(
                        "agent {:?} is disabled",
                        agent.name
                    )))
                }
            }
            _ => Err(Error::Unauthorized("unknown API key".into())),
        }
    }

    pub fn agent(&self, name: &str) -> Result<Agent> {
        self.inner
            .store
            .agent_by_name(name)?
            .ok_or_else(|| Error::not_found(format!("no agent named {name:?}")))
    }

    pub fn agents(&self) -> Result<Vec<Agent>> {
        self.inner.store.agents()
    }

    pub fn set_agent_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        if !self.inner.store.set_agent_enabled(name, enabled)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        tracing::info!(agent = %name, enabled, "agent updated");
        Ok(())
    }

    /// Whether the agent gets services' answers as sent (never compacted).
    pub fn set_agent_raw(&self, name: &str, raw: bool) -> Result<()> {
        if !self.inner.store.set_agent_raw(name, raw)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        Ok(())
    }

    pub fn rename_agent(&self, name: &str, new_name: &str) -> Result<()> {
        let new_name = check_name(new_name, "agent name")?;
        if !self.inner.store.rename_agent(name, new_name)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        Ok(())
    }

    /// Deletes the agent's key for good. Its queue entries stay as history.
    pub fn revoke_agent(&self, name: &str) -> Result<()> {
        if !self.inner.store.delete_agent(name)? {
            return Err(Error::not_found(format!("no agent named {name:?}")));
        }
        tracing::info!(agent = %name, "agent revoked");
        Ok(())
    }

    // ----- service accounts -----

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
        let (def, _) = self.account_row(service, name)?;
        self.inner.store.delete_account(def.key, name)?;
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

    fn secret_name(&self, service: &str, account: &str) -> String {
        format!("{}/{service}/{account}", self.inner.instance)
    }

    fn account_row(
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

    fn credentials(&self, row: &AccountRow) -> Result<Arc<Credentials>> {
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

    // ----- calling services -----

    /// Performs an agent's read: the account's credentials are injected and the
    /// upstream answer is returned less hop-by-hop headers. The chattiest JSON
    /// answers are compacted unless `raw` (the agent's `X-Agentgate-Raw` header)
    /// or the agent's own setting asks for them as sent.
    pub async fn read(&self, agent: &Agent, read: AgentRead<'_>) -> Result<UpstreamResponse> {
        let start = std::time::Instant::now();
        let (service, account, path) = (read.service, read.account, read.path);
        let result = self.read_inner(agent, read).await;
        let status = match &result {
            Ok(resp) => resp.status.as_u16(),
            Err(e) => e.status_code(),
        };
        self.audit_read(
            &agent.name,
            services::find(service).map_or_else(|| service.to_string().into(), |d| d.key.into()),
            account,
            path,
            status,
            start.elapsed().as_secs_f64() * 1000.0,
        );
        result
    }

    async fn read_inner(&self, agent: &Agent, read: AgentRead<'_>) -> Result<UpstreamResponse> {
        self.check_not_paused()?;
        self.check_rate(agent, crate::limits::Kind::Read)?;
        let (def, row) = self.account_row(read.service, read.account)?;
        self.require_access(agent, def, &row)?;
        let path =
            AgentPath::parse(read.path, read.query).map_err(|e| Error::invalid(e.to_string()))?;
        check_not_blocked(def, &path)?;
        self.decide(agent, def, &row, "GET", &path)?;
        tracing::debug!(agent = %agent.name, "read");
        let resp = self
            .call_upstream(
                def,
                &row,
                UpstreamCall {
                    method: Method::GET,
                    path: &path,
                    headers: upstream::read_headers(read.headers),
                    body: None,
                },
                false,
            )
            .await?;
        if read.raw || agent.raw_responses || !resp.status.is_success() {
            return Ok(resp);
        }
        Ok(compact(def, &path, resp))
    }

    /// Sends one request to the account's service with its credentials. When a
    /// refreshable credential is refused, it is renewed and the request sent once
    /// more (a refused request did not happen, so repeating it is safe).
    async fn call_upstream(
        &self,
        def: &'static ServiceDef,
        row: &AccountRow,
        call: UpstreamCall<'_>,
        force_refresh: bool,
    ) -> Result<UpstreamResponse> {
        let UpstreamCall {
            method,
            path,
            headers: agent_headers,
            body,
        } = call;
        let base = effective_base_url(def, row)?;
        let url = path
            .resolve(base)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in def.default_headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        for (name, value) in agent_headers {
            if let Some(name) = name {
                headers.insert(name, value);
            }
        }
        let send = |auth: HeaderMap| {
            let mut headers = headers.clone();
            // Credentials go last so nothing an agent sent can replace them.
            headers.extend(auth);
            self.inner.upstream.send(
                UpstreamRequest {
                    method: method.clone(),
                    url: url.clone(),
                    headers,
                    body: body.clone(),
                },
                self.upstream_timeout(),
                self.inner.config.max_response_bytes,
            )
        };
        let first_refused = force_refresh.then_some((row.id, row.secret_version));
        let (auth, used) = self.auth_headers(def, row, first_refused).await?;
        let resp = send(auth).await?;
        if !force_refresh && signin::is_auth_failure(def, &resp) {
            tracing::info!(service = def.key, account = %row.name, status = resp.status.as_u16(), "credentials refused; refreshing once");
            let (auth, _) = self.auth_headers(def, row, Some(used)).await?;
            return send(auth).await;
        }
        Ok(resp)
    }

    fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.settings().upstream_timeout_secs)
    }

    /// An account's API base from what the admin typed: a full URL, or for
    /// services with a template (Mastodon, Jira, Bluesky, GitHub Enterprise) just
    /// the host name.
    fn resolve_base_url(&self, def: &ServiceDef, raw: &str) -> Result<String> {
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
    fn upsert_oauth_account(
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

    // ----- the write queue -----

    /// Validates and stores a batch as a new pending entry.
    pub fn submit(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
        submission: Submission,
    ) -> Result<Entry> {
        self.check_not_paused()?;
        self.check_rate(agent, crate::limits::Kind::Submit)?;
        let (def, row) = self.account_row(service, account)?;
        self.require_access(agent, def, &row)?;
        let (requests, comment) = queue::validate_submission(submission)?;
        let mut auto_approve = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            let path = AgentPath::parse_with_query(&r.path)
                .map_err(|e| Error::invalid(format!("requests[{i}]: {e}")))?;
            check_not_blocked(def, &path)?;
            if let Some(check) = def.write_check
                && let Some(why) = check(r, path.normalized())
            {
                return Err(Error::Blocked(format!("requests[{i}]: {why}")));
            }
            let decision =
                self.decide(agent, def, &row, &r.method, &path)
                    .map_err(|e| match e {
                        Error::Forbidden(m) => Error::Forbidden(format!("requests[{i}]: {m}")),
                        other => other,
                    })?;
            auto_approve.push(decision);
        }
        // A batch runs without a human only when policy approves every request in it.
        let auto = auto_approve
            .iter()
            .all(|d| d.outcome == crate::policy::Outcome::AutoApprove);
        let now = self.now();
        for _ in 0..5 {
            let id = keys::random_base62(12).to_lowercase();
            let new = NewEntry {
                id: &id,
                agent,
                service: def.key,
                account: &row.name,
                comment: &comment,
                requests: &requests,
                now: &now,
            };
            if self.inner.store.insert_entry(&new)? {
                tracing::info!(entry = %id, agent = %agent.name, service = def.key, account = %row.name, requests = requests.len(), "write queued");
                self.transitioned_id(&id, None, Status::Pending, &format!("agent:{}", agent.name));
                if auto {
                    let reason = &auto_approve[0].reason;
                    let entry = self.approve(&id, &format!("rule: {reason}"))?;
                    self.spawn_execute(id);
                    return Ok(entry);
                }
                return self.entry(&id);
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "could not find a free queue id"
        )))
    }

    /// An entry, for the admin.
    pub fn entry(&self, id: &str) -> Result<Entry> {
        let e = self
            .inner
            .store
            .entry(id)?
            .ok_or_else(|| Error::not_found(format!("no queue entry {id:?}")))?;
        self.with_notification(e)
    }

    /// Adds the state of the entry's webhook notification, if it has one.
    fn with_notification(&self, mut e: Entry) -> Result<Entry> {
        e.notification = self.notification(&e.id)?;
        Ok(e)
    }

    /// An entry, for the agent that submitted it; to any other agent it does not exist.
    pub fn agent_entry(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
        id: &str,
    ) -> Result<Entry> {
        // An agent that lost access to the account sees none of its entries there.
        if let Ok((def, row)) = self.account_row(service, account) {
            self.require_access(agent, def, &row)?;
        }
        match self.inner.store.entry(id)? {
            Some(e)
                if e.agent_id == agent.id
                    && services::find(service).is_some_and(|d| d.key == e.service)
                    && e.account_name == account =>
            {
                self.with_notification(e)
            }
            _ => Err(Error::not_found(format!(
                "no queue entry {id:?} of yours on {service}/{account}"
            ))),
        }
    }

    pub fn entries(&self, filter: &EntryFilter) -> Result<Vec<Entry>> {
        self.inner
            .store
            .entries(filter)?
            .into_iter()
            .map(|e| self.with_notification(e))
            .collect()
    }

    pub fn agent_entries(
        &self,
        agent: &Agent,
        service: Option<&str>,
        account: Option<&str>,
    ) -> Result<Vec<Entry>> {
        let service = match service {
            Some(s) => Some(
                services::find(s)
                    .ok_or_else(|| Error::not_found(format!("unknown service {s:?}")))?
                    .key,
            ),
            None => None,
        };
        if let (Some(s), Some(a)) = (service, account) {
            let (def, row) = self.account_row(s, a)?;
            self.require_access(agent, def, &row)?;
        }
        let entries = self.inner.store.entries(&EntryFilter {
            agent_id: Some(agent.id),
            service: service.map(str::to_string),
            account: account.map(str::to_string),
            limit: Some(500),
            ..Default::default()
        })?;
        // Entries on accounts the agent has since lost access to are not shown.
        let mut allowed: HashMap<(String, String), bool> = HashMap::new();
        entries
            .into_iter()
            .filter(|e| {
                *allowed
                    .entry((e.service.clone(), e.account_name.clone()))
                    .or_insert_with(|| self.agent_may_use(agent, &e.service, &e.account_name))
            })
            .map(|e| self.with_notification(e))
            .collect()
    }

    /// The submitting agent takes back its own pending entry.
    pub fn withdraw(
        &self,
        agent: &Agent,
        service: &str,
        account: &str,
        id: &str,
        reason: Option<String>,
    ) -> Result<Entry> {
        let entry = self.agent_entry(agent, service, account, id)?;
        let now = self.now();
        let by = format!("agent:{}", agent.name);
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .map(|r| truncate(&r, 2000));
        let moved = self.inner.store.transition(
            id,
            Status::Pending,
            Status::Withdrawn,
            Some(agent.id),
            &[
                ("reviewed_at", &now),
                ("reviewed_by", &by),
                ("rejection_reason", &reason),
            ],
            &now,
        )?;
        if !moved {
            return Err(self.already_decided(&entry.id));
        }
        tracing::info!(entry = %id, agent = %agent.name, "write withdrawn");
        self.transitioned_id(id, Some(Status::Pending), Status::Withdrawn, &by);
        self.entry(id)
    }

    /// Approves a pending entry. One conditional update decides: of two approvals
    /// at the same instant exactly one succeeds, the other gets `AlreadyDecided`.
    /// The caller then runs [`Gateway::execute`] (or [`Gateway::spawn_execute`]).
    pub fn approve(&self, id: &str, by: &str) -> Result<Entry> {
        self.record_decision(id, Status::Approved, by, None)
    }

    pub fn reject(&self, id: &str, by: &str, reason: Option<String>) -> Result<Entry> {
        self.record_decision(id, Status::Rejected, by, reason)
    }

    /// Moves a pending entry to the human's decision, recorded with who decided
    /// and (for a rejection) why.
    fn record_decision(
        &self,
        id: &str,
        to: Status,
        by: &str,
        reason: Option<String>,
    ) -> Result<Entry> {
        let now = self.now();
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .map(|r| truncate(&r, 2000));
        let moved = self.inner.store.transition(
            id,
            Status::Pending,
            to,
            None,
            &[
                ("reviewed_at", &now),
                ("reviewed_by", &by),
                ("rejection_reason", &reason),
            ],
            &now,
        )?;
        if !moved {
            return Err(self.already_decided(id));
        }
        tracing::info!(entry = %id, by, status = %to, "write decided");
        self.transitioned_id(id, Some(Status::Pending), to, by);
        self.entry(id)
    }

    /// Expires pending entries older than the configured lifetime; returns their ids.
    pub fn expire_pending(&self) -> Result<Vec<String>> {
        let hours = self.settings().pending_expiry_hours;
        let now = self.inner.clock.now();
        let cutoff = timestamp(now - time::Duration::hours(hours as i64));
        let stamp = timestamp(now);
        let reason = format!("expired: nobody decided within {hours} hours");
        let mut expired = Vec::new();
        for id in self.inner.store.pending_before(&cutoff)? {
            if self.inner.store.transition(
                &id,
                Status::Pending,
                Status::Expired,
                None,
                &[
                    ("reviewed_at", &stamp),
                    ("reviewed_by", &"system"),
                    ("rejection_reason", &reason),
                ],
                &stamp,
            )? {
                tracing::info!(entry = %id, "pending write expired");
                self.transitioned_id(&id, Some(Status::Pending), Status::Expired, "system");
                expired.push(id);
            }
        }
        Ok(expired)
    }

    // ----- pause -----

    /// Pauses or resumes all agents. Kept in the database, so the CLI, the web
    /// admin and the desktop tray share one switch and it survives a restart.
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        self.inner
            .store
            .set_setting(PAUSED_KEY, if paused { "1" } else { "0" })?;
        tracing::warn!(
            paused,
            "agents {}",
            if paused { "paused" } else { "resumed" }
        );
        Ok(())
    }

    pub fn is_paused(&self) -> Result<bool> {
        Ok(self.inner.hot.setting(PAUSED_KEY)?.as_deref() == Some("1"))
    }

    fn check_not_paused(&self) -> Result<()> {
        if self.is_paused()? {
            return Err(Error::Paused(
                "agentgate is paused by its owner: reads and submissions are refused until it is resumed".into(),
            ));
        }
        Ok(())
    }

    fn check_rate(&self, agent: &Agent, kind: crate::limits::Kind) -> Result<()> {
        let s = self.settings();
        let (limit, window) = match kind {
            crate::limits::Kind::Read => (s.reads_per_minute, time::Duration::minutes(1)),
            crate::limits::Kind::Submit => (s.submissions_per_hour, time::Duration::hours(1)),
        };
        self.inner
            .limits
            .check(agent.id, kind, limit, window, self.inner.clock.now())
    }

    fn already_decided(&self, id: &str) -> Error {
        match self.inner.store.entry(id) {
            Ok(Some(e)) => Error::AlreadyDecided {
                id: e.id,
                status: e.status,
            },
            Ok(None) => Error::not_found(format!("no queue entry {id:?}")),
            Err(e) => e,
        }
    }

    /// Runs an approved entry's batch in order, stopping at the first failure.
    ///
    /// The entry is first claimed (approved to executing) in one conditional
    /// update, so however many callers race here, one runs the batch; the others
    /// get the entry as it stands. Results are saved after every request.
    pub async fn execute(&self, id: &str) -> Result<Entry> {
        let now = self.now();
        if !self.inner.store.transition(
            id,
            Status::Approved,
            Status::Executing,
            None,
            &[("started_at", &now)],
            &now,
        )? {
            return self.entry(id);
        }
        let entry = self.entry(id)?;
        self.transitioned(&entry, Some(Status::Approved), Status::Executing, "system");
        let mut results = Vec::with_capacity(entry.requests.len());
        let account = self.account_row(&entry.service, &entry.account_name);
        for (index, request) in entry.requests.iter().enumerate() {
            let result = match &account {
                Ok((def, row)) => self.run_request(def, row, index, request).await,
                Err(e) => RequestResult {
                    index,
                    ok: false,
                    status: None,
                    body: None,
                    error: Some(e.to_string()),
                },
            };
            let ok = result.ok;
            results.push(result);
            self.inner.store.save_results(id, &results)?;
            if !ok {
                break;
            }
        }
        let status = if results.iter().all(|r| r.ok) {
            Status::Completed
        } else {
            Status::Failed
        };
        let now = self.now();
        let results_json =
            serde_json::to_string(&results).map_err(|e| Error::Internal(e.into()))?;
        self.inner.store.transition(
            id,
            Status::Executing,
            status,
            None,
            &[("completed_at", &now), ("results", &results_json)],
            &now,
        )?;
        tracing::info!(entry = %id, status = %status, "write executed");
        self.transitioned(&entry, Some(Status::Executing), status, "system");
        self.entry(id)
    }

    /// Runs [`Gateway::execute`] in the background, tracked so that shutdown waits for it.
    pub fn spawn_execute(&self, id: String) {
        let gw = self.clone();
        self.inner.executions.spawn(async move {
            if let Err(e) = gw.execute(&id).await {
                tracing::error!(entry = %id, error = %e, "execution failed");
            }
        });
    }

    /// Waits (at most `limit`) for background executions to finish.
    pub async fn wait_for_executions(&self, limit: Duration) -> bool {
        self.inner.executions.close();
        tokio::time::timeout(limit, self.inner.executions.wait())
            .await
            .is_ok()
    }

    async fn run_request(
        &self,
        def: &'static ServiceDef,
        row: &AccountRow,
        index: usize,
        req: &WriteRequest,
    ) -> RequestResult {
        let fail = |error: String| RequestResult {
            index,
            ok: false,
            status: None,
            body: None,
            error: Some(error),
        };
        let Ok(method) = Method::from_bytes(req.method.as_bytes()) else {
            return fail(format!("invalid method {:?}", req.method));
        };
        let path = match AgentPath::parse_with_query(&req.path) {
            Ok(p) => p,
            Err(e) => return fail(e.to_string()),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            // Stored headers were filtered at submit; they are filtered again here
            // so that the rule holds even for entries written by an older version.
            if let Ok(Some((n, v))) = upstream::agent_header(name, value)
                && let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(n.as_bytes()),
                    HeaderValue::from_str(&v),
                )
            {
                headers.insert(n, v);
            }
        }
        let body = match &req.body {
            None => None,
            Some(Value::String(s)) => Some(Bytes::from(s.clone())),
            Some(v) => Some(Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
        };
        if body.is_some() && !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        match self
            .call_upstream(
                def,
                row,
                UpstreamCall {
                    method,
                    path: &path,
                    headers,
                    body,
                },
                false,
            )
            .await
        {
            Ok(resp) => RequestResult {
                index,
                ok: resp.status.is_success(),
                status: Some(resp.status.as_u16()),
                body: result_body(&resp.body),
                error: None,
            },
            Err(e) => fail(e.to_string()),
        }
    }

    /// Run once at start: entries left executing by a crash are marked failed and
    /// never re-run blindly (the batch may have partly happened); approved entries
    /// that never started are run.
    pub fn recover(&self) -> Result<()> {
        for id in self.inner.store.ids_with_status(Status::Executing)? {
            let entry = self.entry(&id)?;
            let mut results = entry.results.clone();
            results.push(RequestResult {
                index: results.len(),
                ok: false,
                status: None,
                body: None,
                error: Some(
                    "interrupted: agentgate stopped while this batch was running; it was not retried. \
                     Check the service before submitting again."
                        .into(),
                ),
            });
            let now = self.now();
            let json = serde_json::to_string(&results).map_err(|e| Error::Internal(e.into()))?;
            self.inner.store.transition(
                &id,
                Status::Executing,
                Status::Failed,
                None,
                &[("completed_at", &now), ("results", &json)],
                &now,
            )?;
            tracing::warn!(entry = %id, "an interrupted batch was marked failed");
            self.transitioned(&entry, Some(Status::Executing), Status::Failed, "system");
        }
        for id in self.inner.store.ids_with_status(Status::Approved)? {
            self.spawn_execute(id);
        }
        Ok(())
    }

    // ----- admin -----

    pub fn admin_password_set(&self) -> Result<bool> {
        Ok(self.inner.store.setting(ADMIN_PASSWORD_KEY)?.is_some())
    }

    /// Sets or replaces the admin password and ends every admin session.
    pub fn set_admin_password(&self, password: &Secret) -> Result<()> {
        let hash = admin::hash_password(password)?;
        self.inner.store.set_setting(ADMIN_PASSWORD_KEY, &hash)?;
        self.inner.store.delete_all_sessions()?;
        tracing::info!("admin password changed");
        Ok(())
    }

    /// Sets the first admin password; refused once one exists.
    pub fn setup_admin_password(&self, password: &Secret) -> Result<()> {
        admin::check_password_rules(password)?;
        let hash = admin::hash_password(password)?;
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
        let ok = tokio::task::spawn_blocking(move || admin::verify_password(&password, &hash))
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
            &timestamp(now + admin::SESSION_LIFETIME),
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

    pub fn settings(&self) -> Settings {
        self.inner
            .settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn update_settings(&self, update: SettingsUpdate) -> Result<Settings> {
        let mut s = self.settings();
        if let Some(t) = update.upstream_timeout_secs {
            if !(1..=600).contains(&t) {
                return Err(Error::invalid(
                    "upstream_timeout_secs must be between 1 and 600",
                ));
            }
            s.upstream_timeout_secs = t;
        }
        if let Some(h) = update.pending_expiry_hours {
            if !(1..=24 * 365).contains(&h) {
                return Err(Error::invalid(
                    "pending_expiry_hours must be between 1 and 8760",
                ));
            }
            s.pending_expiry_hours = h;
        }
        if let Some(n) = update.reads_per_minute {
            if n > 100_000 {
                return Err(Error::invalid(
                    "reads_per_minute must be at most 100000 (0: no limit)",
                ));
            }
            s.reads_per_minute = n;
        }
        if let Some(n) = update.submissions_per_hour {
            if n > 100_000 {
                return Err(Error::invalid(
                    "submissions_per_hour must be at most 100000 (0: no limit)",
                ));
            }
            s.submissions_per_hour = n;
        }
        if let Some(d) = update.audit_retention_days {
            if !(1..=3650).contains(&d) {
                return Err(Error::invalid(
                    "audit_retention_days must be between 1 and 3650",
                ));
            }
            s.audit_retention_days = d;
        }
        let json = serde_json::to_string(&s).map_err(|e| Error::Internal(e.into()))?;
        self.inner.store.set_setting(SETTINGS_KEY, &json)?;
        *self
            .inner
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = s.clone();
        Ok(s)
    }
}

fn load_pepper(store: &Store, creds: &dyn CredentialStore, instance: &str) -> Result<Secret> {
    use sha2::Digest;
    let name = format!("{instance}/key-pepper");
    let fingerprint = |s: &Secret| {
        hex::encode(sha2::Sha256::digest(format!(
            "agentgate-pepper:{}",
            s.expose()
        )))
    };
    let expected = match store.setting(PEPPER_FINGERPRINT_KEY)? {
        Some(f) => f,
        None => {
            let candidate = match creds.get(&name)? {
                Some(existing) => existing,
                None => {
                    let fresh = Secret::new(keys::random_base62(43));
                    creds.set(&name, &fresh)?;
                    fresh
                }
            };
            store.setting_or_insert(PEPPER_FINGERPRINT_KEY, &fingerprint(&candidate))?
        }
    };
    let pepper = creds.get(&name)?.ok_or_else(|| {
        Error::Credentials(format!(
            "the {} has no key secret for this data folder, so agent keys cannot be checked. \
             Was the data folder made with another credential backend? Use that one again.",
            creds.describe()
        ))
    })?;
    if fingerprint(&pepper) != expected {
        return Err(Error::Credentials(format!(
            "the key secret in the {} does not belong to this data folder; use the credential backend it was made with",
            creds.describe()
        )));
    }
    Ok(pepper)
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

/// The account's API base, parsed when its row was read; when there is none, why.
fn effective_base_url<'a>(def: &ServiceDef, row: &'a AccountRow) -> Result<&'a Url> {
    if let Some(base) = &row.api_base {
        return Ok(base);
    }
    Err(match row.base_url.as_deref().or(def.default_base_url) {
        None => Error::invalid(format!("{}/{} has no base URL", def.key, row.name)),
        Some(raw) => Error::Internal(anyhow::anyhow!(
            "stored base URL is invalid: {}",
            Url::parse(raw)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        )),
    })
}

/// Replaces a chatty JSON answer by its compact form, when the service has one
/// for this path. Anything that does not parse stays as it came.
fn compact(def: &ServiceDef, path: &AgentPath, mut resp: UpstreamResponse) -> UpstreamResponse {
    let Some(compactor) = def.compact else {
        return resp;
    };
    let Ok(value) = serde_json::from_slice::<Value>(&resp.body) else {
        return resp;
    };
    if let Some(small) = compactor(path.normalized(), &value)
        && let Ok(bytes) = serde_json::to_vec(&small)
    {
        resp.body = Bytes::from(bytes);
        resp.headers.remove(http::header::CONTENT_ENCODING);
        resp.headers.remove(http::header::ETAG);
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers.insert(
            HeaderName::from_static("x-agentgate-compact"),
            HeaderValue::from_static("true"),
        );
    }
    resp
}

fn check_not_blocked(def: &ServiceDef, path: &AgentPath) -> Result<()> {
    if let Some(rule) = def.blocked_rule(path.normalized()) {
        return Err(Error::Blocked(format!(
            "{} is blocked for privacy on {} (rule {:?}); agentgate never reads or writes it",
            path, def.display_name, rule.0
        )));
    }
    Ok(())
}

/// Names of agents and accounts: short, printable, and safe in URLs and keychain item names.
fn check_name<'a>(name: &'a str, what: &str) -> Result<&'a str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(name)
    } else {
        Err(Error::invalid(format!(
            "{what} {name:?} must be 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

/// A base URL receives credentials, so it must be HTTPS (plain HTTP only to this
/// machine) with no user, query or fragment.
fn check_base_url(raw: &str) -> Result<String> {
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

/// An upstream body as kept in results: JSON when it parses, else text, capped.
fn result_body(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    if body.len() <= MAX_STORED_RESULT_BYTES
        && let Ok(v) = serde_json::from_slice(body)
    {
        return Some(v);
    }
    let text =
        String::from_utf8_lossy(&body[..body.len().min(MAX_STORED_RESULT_BYTES)]).into_owned();
    Some(Value::String(text))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Internal(
            anyhow::Error::new(e)
                .context(format!("cannot create the data folder {}", dir.display())),
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
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

    #[test]
    fn names_are_restricted() {
        assert!(check_name("claude-code_1.2", "n").is_ok());
        for bad in ["", "a/b", "a b", ".hidden", &"x".repeat(65), "é"] {
            assert!(check_name(bad, "n").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn result_bodies_are_json_or_capped_text() {
        assert_eq!(result_body(b"{\"a\":1}"), Some(serde_json::json!({"a": 1})));
        assert_eq!(result_body(b""), None);
        assert_eq!(result_body(b"plain"), Some(Value::String("plain".into())));
        let big = vec![b'x'; MAX_STORED_RESULT_BYTES * 2];
        match result_body(&big) {
            Some(Value::String(s)) => assert_eq!(s.len(), MAX_STORED_RESULT_BYTES),
            other => panic!("{other:?}"),
        }
    }
}
