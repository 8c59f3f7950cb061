//! Configuration: built-in defaults, then an optional TOML file, then environment
//! variables, then command-line flags, each overriding the one before.
//!
//! | setting | file key | environment | default |
//! |---|---|---|---|
//! | data folder | `data_dir` | `AGENTGATE_DATA_DIR` | the platform's app data folder |
//! | config file | — | `AGENTGATE_CONFIG` | `<data folder>/config.toml` if present |
//! | agent listener | `listen` | `AGENTGATE_LISTEN`, `PORT` (port only) | `0.0.0.0:3050` |
//! | admin listener | `admin_listen` | `AGENTGATE_ADMIN_LISTEN` | `127.0.0.1:3051` |
//! | public URL | `base_url` | `BASE_URL` | `http://localhost:<agent port>` |
//! | credential backend | `credential_backend` | `AGENTGATE_CREDENTIAL_BACKEND` | `keychain` |
//! | key of the encrypted file | `secrets_key_file` | `AGENTGATE_SECRETS_KEY_FILE` | none |
//! | upstream timeout | `upstream_timeout_secs` | — | 30 |
//! | other names of the admin listener | `admin_hosts` | `AGENTGATE_ADMIN_HOSTS` (comma-separated) | none |
//! | first webhook retry | `webhook_retry_secs` | — | 60 (doubles per try) |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Largest request body the agent API accepts.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest upstream response body the gateway relays or stores.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
/// Most requests one queued batch may hold.
pub const MAX_BATCH_REQUESTS: usize = 50;
/// Longest agent comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// Pending writes one agent may have waiting at once; more are refused
/// (`429`) until a human decides or the agent withdraws some.
pub const MAX_PENDING_PER_AGENT: usize = 100;
/// The stored size of one agent's pending requests, and of all it submitted
/// in the last [`RECENT_SUBMISSIONS`] whatever became of them, in bytes, at
/// most: what an agent can add to the database in a day.
pub const MAX_PENDING_BYTES_PER_AGENT: usize = 16 * 1024 * 1024;
/// How far back an agent's submissions count against its bytes cap.
pub const RECENT_SUBMISSIONS: Duration = Duration::from_secs(24 * 3600);
/// How long a withdrawn entry is kept (it never ran and no human decided on
/// it).
pub const WITHDRAWN_KEPT: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_AGENT_PORT: u16 = 3050;
pub const DEFAULT_ADMIN_PORT: u16 = 3051;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialBackend {
    /// The OS keychain: Secret Service, macOS Keychain or Windows Credential Manager.
    Keychain,
    /// An encrypted file in the data folder, for servers with no keychain. Its key
    /// lives elsewhere (`secrets_key_file`).
    EncryptedFile,
}

impl std::str::FromStr for CredentialBackend {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "keychain" => Ok(CredentialBackend::Keychain),
            "encrypted-file" => Ok(CredentialBackend::EncryptedFile),
            other => bail!(
                "unknown credential backend {other:?}: use \"keychain\" or \"encrypted-file\""
            ),
        }
    }
}

impl std::fmt::Display for CredentialBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialBackend::Keychain => "keychain",
            CredentialBackend::EncryptedFile => "encrypted-file",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub agent_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The public URL of the agent API, when configured; otherwise the gateway
    /// derives `http://localhost:<bound port>` once it listens.
    pub base_url: Option<String>,
    pub credential_backend: CredentialBackend,
    pub secrets_key_file: Option<PathBuf>,
    pub upstream_timeout: Duration,
    pub max_response_bytes: usize,
    /// Names the admin listener answers to besides 127.0.0.1, localhost,
    /// [::1] and its own address (a reverse proxy's name, say).
    pub admin_hosts: Vec<String>,
    /// The wait before a failed webhook notification is tried again; it
    /// doubles with every further try.
    pub webhook_first_retry: Duration,
}

impl Config {
    /// A configuration with every default, rooted at `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            agent_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_AGENT_PORT),
            admin_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_ADMIN_PORT),
            base_url: None,
            credential_backend: CredentialBackend::Keychain,
            secrets_key_file: None,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            admin_hosts: Vec::new(),
            webhook_first_retry: Duration::from_secs(60),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("agentgate.db")
    }

    /// Builds the configuration from the environment and the given flags, reading
    /// the config file they point at (or the one in the data folder).
    pub fn load(flags: &Overrides) -> anyhow::Result<Config> {
        let env = Overrides::from_env()?;
        let merged = flags.clone().or(env);
        Config::from_overrides(merged)
    }

    fn from_overrides(o: Overrides) -> anyhow::Result<Config> {
        let data_dir = match &o.data_dir {
            Some(d) => d.clone(),
            None => default_data_dir()?,
        };
        let file_path = match &o.config_file {
            Some(p) => Some(p.clone()),
            None => Some(data_dir.join("config.toml")).filter(|p| p.exists()),
        };
        let file = match &file_path {
            Some(p) => FileConfig::read(p)?,
            None => FileConfig::default(),
        };
        // The data folder named in the file applies only when no flag or variable names one.
        let data_dir = match (&o.data_dir, &file.data_dir) {
            (None, Some(d)) => d.clone(),
            _ => data_dir,
        };
        let mut c = Config::with_data_dir(data_dir);
        if let Some(a) = o.listen.or(file.listen) {
            c.agent_addr = a;
        }
        if let Some(p) = o.port {
            c.agent_addr.set_port(p);
        }
        if let Some(a) = o.admin_listen.or(file.admin_listen) {
            c.admin_addr = a;
        }
        c.base_url = o
            .base_url
            .or(file.base_url)
            .map(|u| normalize_base_url(&u))
            .transpose()?;
        if let Some(b) = o.credential_backend.or(file.credential_backend) {
            c.credential_backend = b;
        }
        c.secrets_key_file = o.secrets_key_file.or(file.secrets_key_file);
        c.admin_hosts = o.admin_hosts.or(file.admin_hosts).unwrap_or_default();
        if let Some(t) = file.upstream_timeout_secs {
            if !(1..=600).contains(&t) {
                bail!("upstream_timeout_secs must be between 1 and 600, not {t}");
            }
            c.upstream_timeout = Duration::from_secs(t);
        }
        if let Some(t) = file.webhook_retry_secs {
            if !(1..=3600).contains(&t) {
                bail!("webhook_retry_secs must be between 1 and 3600, not {t}");
            }
            c.webhook_first_retry = Duration::from_secs(t);
        }
        // Port 0 asks the OS for a free port, so two port-0 listeners never clash.
        if c.agent_addr == c.admin_addr && c.agent_addr.port() != 0 {
            bail!(
                "the agent and admin listeners must differ (both are {})",
                c.agent_addr
            );
        }
        Ok(c)
    }
}

/// Values given on the command line or in the environment; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub port: Option<u16>,
    pub admin_listen: Option<SocketAddr>,
    pub base_url: Option<String>,
    pub credential_backend: Option<CredentialBackend>,
    pub secrets_key_file: Option<PathBuf>,
    pub admin_hosts: Option<Vec<String>>,
}

impl Overrides {
    fn or(self, other: Overrides) -> Overrides {
        Overrides {
            data_dir: self.data_dir.or(other.data_dir),
            config_file: self.config_file.or(other.config_file),
            listen: self.listen.or(other.listen),
            port: self.port.or(other.port),
            admin_listen: self.admin_listen.or(other.admin_listen),
            base_url: self.base_url.or(other.base_url),
            credential_backend: self.credential_backend.or(other.credential_backend),
            secrets_key_file: self.secrets_key_file.or(other.secrets_key_file),
            admin_hosts: self.admin_hosts.or(other.admin_hosts),
        }
    }

    pub fn from_env() -> anyhow::Result<Overrides> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        }
        fn parsed<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>>
        where
            T::Err: std::fmt::Display,
        {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<T>()
                        .map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid: {e}"))
                })
                .transpose()
        }
        Ok(Overrides {
            data_dir: var("AGENTGATE_DATA_DIR").map(PathBuf::from),
            config_file: var("AGENTGATE_CONFIG").map(PathBuf::from),
            listen: parsed("AGENTGATE_LISTEN")?,
            port: parsed("PORT")?,
            admin_listen: parsed("AGENTGATE_ADMIN_LISTEN")?,
            base_url: var("BASE_URL"),
            credential_backend: parsed("AGENTGATE_CREDENTIAL_BACKEND")?,
            secrets_key_file: var("AGENTGATE_SECRETS_KEY_FILE").map(PathBuf::from),
            admin_hosts: var("AGENTGATE_ADMIN_HOSTS").map(|v| {
                v.split(',')
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect()
            }),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    base_url: Option<String>,
    credential_backend: Option<CredentialBackend>,
    secrets_key_file: Option<PathBuf>,
    upstream_timeout_secs: Option<u64>,
    admin_hosts: Option<Vec<String>>,
    webhook_retry_secs: Option<u64>,
}

impl FileConfig {
    fn read(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "agentgate")
        .map(|d| d.data_dir().to_path_buf())
        .context("cannot find the platform's app data folder: pass --data-dir")
}

fn normalize_base_url(raw: &str) -> anyhow::Result<String> {
    let url =
        url::Url::parse(raw.trim()).with_context(|| format!("BASE_URL {raw:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("BASE_URL {raw:?} must be an http(s) URL with a host");
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Makes the encrypted-file backend with `key_file` the data folder's
/// choice, in its `config.toml`, so that every later command (another
/// terminal's `agentgate keys create` too) finds it without environment
/// variables. Other settings and comments in the file are kept: only the
/// two top-level lines are replaced. Returns the file's path.
pub fn remember_encrypted_file(data_dir: &Path, key_file: &Path) -> anyhow::Result<PathBuf> {
    let path = data_dir.join("config.toml");
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let key = key_file
        .to_str()
        .context("the key file's path is not UTF-8")?;
    let mut out = format!(
        "credential_backend = \"encrypted-file\"\nsecrets_key_file = {}\n",
        toml::Value::String(key.to_string())
    );
    let mut top = true;
    for line in old.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            top = false;
        }
        let ours = top
            && ["credential_backend", "secrets_key_file"].iter().any(|k| {
                t.strip_prefix(k)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
        if !ours {
            out.push_str(line);
            out.push('\n');
        }
    }
    // Checked before it replaces the old file: a config that no longer
    // parses would stop every command.
    toml::from_str::<FileConfig>(&out).context("the new config.toml would not parse")?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let tmp = data_dir.join("config.toml.tmp");
    std::fs::write(&tmp, &out).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:4000\"\nbase_url = \"https://gate.example/\"\nupstream_timeout_secs = 5\n",
        )
        .unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            config_file: Some(file),
            port: Some(4100),
            ..Default::default()
        };
        let c = Config::from_overrides(o).unwrap();
        assert_eq!(c.agent_addr, "127.0.0.1:4100".parse().unwrap());
        assert_eq!(c.admin_addr, "127.0.0.1:3051".parse().unwrap());
        assert_eq!(c.base_url.as_deref(), Some("https://gate.example"));
        assert_eq!(c.upstream_timeout, Duration::from_secs(5));
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:4000\"\n").unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            config_file: Some(file.clone()),
            ..Default::default()
        };
        assert!(Config::from_overrides(o.clone()).is_err());
        std::fs::write(&file, "upstream_timeout_secs = 0\n").unwrap();
        assert!(Config::from_overrides(o).is_err());
    }

    #[test]
    fn the_encrypted_file_choice_is_remembered_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "# mine\nwebhook_retry_secs = 7\ncredential_backend = \"keychain\"\nsecrets_key_file=\"/old\"\n",
        )
        .unwrap();
        let key = dir.path().join("k \"quoted\"");
        let path = remember_encrypted_file(dir.path(), &key).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# mine") && text.contains("webhook_retry_secs = 7"),
            "{text}"
        );
        assert!(
            !text.contains("keychain") && !text.contains("/old"),
            "{text}"
        );
        let c = Config::load(&Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.credential_backend, CredentialBackend::EncryptedFile);
        assert_eq!(c.secrets_key_file.as_deref(), Some(key.as_path()));
        assert_eq!(c.webhook_first_retry, Duration::from_secs(7));
        // Again: the same two lines, once.
        remember_encrypted_file(dir.path(), &key).unwrap();
        let again = std::fs::read_to_string(&path).unwrap();
        assert_eq!(again.matches("credential_backend").count(), 1);
    }
}
