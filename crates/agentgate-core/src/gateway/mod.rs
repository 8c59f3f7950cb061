//! [`Gateway`]: the one object every surface (agent API, admin API, CLI, desktop)
//! calls. It owns the store, the credential store, the upstream client and the
//! clock, and implements every operation once, so a queue entry is decided by the
//! same code whichever surface the human used.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio_util::task::TaskTracker;

mod accounts;
mod agents;
mod audit;
mod events;
mod execution;
mod grants;
mod oauth;
mod policy;
mod queue;
mod reads;
mod rules;
mod sessions;
mod settings;
mod signin;
pub mod webhooks;

pub use accounts::{AccountInfo, AccountTest, NewAccount};
pub use events::QueueEvent;
pub use grants::{
    GrantInfo, GrantSpec, MAX_GRANT_MINUTES, MAX_LIVE_GRANTS, minutes_left_today, remaining_words,
};
pub use oauth::{CONNECT_LIFETIME, OAuthClientConfig, OAuthClientInfo};
pub use policy::PolicyView;
pub use reads::AgentRead;
pub use rules::{MAX_RULES, RuleEdit, RuleSpec};
pub use settings::{Settings, SettingsUpdate};

use crate::clock::{Clock, timestamp};
use crate::config::Config;
use crate::credentials::CredentialStore;
use crate::error::{Error, Result};
use crate::keys;
use crate::password::LoginThrottle;
use crate::secret::Secret;
use crate::services::Credentials;
use crate::store::{HotCache, Store};
use crate::upstream::Upstream;

const SETTINGS_KEY: &str = "settings";
const PAUSED_KEY: &str = "paused";
const ADMIN_PASSWORD_KEY: &str = "admin_password_hash";
const INSTANCE_KEY: &str = "instance_id";
const PEPPER_FINGERPRINT_KEY: &str = "key_pepper_fingerprint";

/// (service, account name)
type AccountKey = (String, String);

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
    /// When each account lately asked its provider for new credentials
    /// because a service refused them: at most
    /// [`signin::REFRESHES_PER_INTERVAL`] per [`signin::MIN_REFRESH_INTERVAL`],
    /// whatever agents provoke.
    last_refresh: Mutex<HashMap<AccountKey, Vec<std::time::Instant>>>,
    /// Digests of unused launch secrets, with their expiry.
    launch_secrets: Mutex<Vec<(Vec<u8>, time::OffsetDateTime)>>,
    /// The digest of the session the desktop window signed in with last:
    /// ended when the window signs in again, so that each showing of the
    /// window leaves one session, not one more.
    window_session: Mutex<Option<Vec<u8>>>,
    /// The digest of the one-time code that first-run setup needs, while
    /// no admin password is set and a server announced one.
    setup_code: Mutex<Option<Vec<u8>>>,
    /// Agents whose webhook notifications are being sent right now.
    delivering: Mutex<std::collections::HashSet<i64>>,
    /// Queue transitions, for live surfaces.
    events: tokio::sync::broadcast::Sender<QueueEvent>,
    /// Cancelled when the server stops, so long-lived streams end and let the
    /// graceful shutdown finish.
    closing: tokio_util::sync::CancellationToken,
    /// OAuth connects in progress, by `state`.
    pending_connects: Mutex<HashMap<String, oauth::PendingConnect>>,
}

impl Gateway {
    /// The time on the gateway's clock (injected in tests).
    pub fn clock_now(&self) -> time::OffsetDateTime {
        self.inner.clock.now()
    }
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
                last_refresh: Mutex::new(HashMap::new()),
                pending_connects: Mutex::new(HashMap::new()),
                events: events::channel(),
                launch_secrets: Mutex::new(Vec::new()),
                window_session: Mutex::new(None),
                setup_code: Mutex::new(None),
                delivering: Mutex::new(std::collections::HashSet::new()),
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
