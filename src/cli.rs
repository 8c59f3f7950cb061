use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agentgate_core::clock::SystemClock;
use agentgate_core::config::{Config, CredentialBackend, Overrides};
use agentgate_core::display;
use agentgate_core::queue::Status;
use agentgate_core::secret::Secret;
use agentgate_core::{Error, Gateway, NewAccount, credentials, server, services};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};

/// How the CLI names itself in a queue entry's `reviewed_by`.
const REVIEWER: &str = "cli";

mod policy;
mod queue;

#[derive(Parser)]
#[command(
    name = "agentgate",
    version,
    about = "A gateway that lets AI agents read your accounts and queues their writes for your approval",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Folder holding the database [default: the platform's app data folder]
    #[arg(long, global = true, env = "AGENTGATE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file [default: <data dir>/config.toml if it exists]
    #[arg(long, global = true, env = "AGENTGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where service credentials are kept: keychain or encrypted-file
    #[arg(
        long,
        global = true,
        env = "AGENTGATE_CREDENTIAL_BACKEND",
        value_name = "BACKEND"
    )]
    credential_backend: Option<CredentialBackend>,
    /// Key file of the encrypted-file backend; must be outside the data folder
    #[arg(
        long,
        global = true,
        env = "AGENTGATE_SECRETS_KEY_FILE",
        value_name = "FILE"
    )]
    secrets_key_file: Option<PathBuf>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: the agent API and the admin API
    Serve(ServeArgs),
    /// Manage agents and their API keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage service accounts
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Review queued writes
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Admin password
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The encrypted-file credential backend
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// OAuth clients for the services that sign in with OAuth
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Who may use an account
    #[command(subcommand)]
    Access(policy::AccessCommand),
    /// An account's endpoint rules: list, add, remove, move, presets, dry-run
    #[command(subcommand)]
    Rules(policy::RulesCommand),
    /// Time-boxed grants: an agent's writes run without asking for a while
    #[command(subcommand)]
    Grants(policy::GrantsCommand),
    /// Refuse all agents' reads and submissions until resumed (a kill switch)
    Pause,
    /// Let agents read and submit again
    Resume,
    /// Print the audit log (reads and queue transitions), newest first
    Audit {
        /// read or transition
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        service: Option<String>,
        /// An account's name (with --service)
        #[arg(long)]
        account: Option<String>,
        /// Only records at or after this time (e.g. 2026-11-30T14:00:00Z)
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time
        #[arg(long)]
        until: Option<String>,
        /// At most this many records
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// jsonl or csv
        #[arg(long, value_parser = ["jsonl", "csv"], default_value = "jsonl")]
        format: String,
    },
}

#[derive(Subcommand)]
enum OauthCommand {
    /// Store the OAuth client registered with a provider (google, reddit, linkedin,
    /// fitbit); the client secret is read from stdin or a hidden prompt
    SetClient {
        provider: String,
        /// The client id the provider issued
        #[arg(long)]
        client_id: String,
        /// Use this authorize endpoint instead of the provider's usual one
        #[arg(long, value_name = "URL")]
        authorize_url: Option<String>,
        /// Use this token endpoint instead of the provider's usual one
        #[arg(long, value_name = "URL")]
        token_url: Option<String>,
    },
    /// List providers and whether their client is set
    Clients,
    /// Forget a provider's client
    RemoveClient { provider: String },
}

#[derive(Args)]
struct ServeArgs {
    /// Address of the agent API
    #[arg(long, env = "AGENTGATE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Port of the agent API (keeps the listen host)
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// Address of the admin API (keep it on loopback unless you know why not)
    #[arg(long, env = "AGENTGATE_ADMIN_LISTEN", value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// Public URL of the agent API, used in agent docs and OAuth callbacks
    #[arg(long, env = "BASE_URL", value_name = "URL")]
    base_url: Option<String>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an agent and print its key once, alone on a line
    Create { name: String },
    /// List agents
    List,
    /// Delete an agent's key for good
    Revoke { name: String },
    /// Refuse an agent's key until enabled again
    Disable { name: String },
    /// Accept a disabled agent's key again
    Enable { name: String },
    /// Rename an agent
    Rename { name: String, new_name: String },
    /// Approve all of an agent's writes automatically ("on"), except where a rule
    /// denies them or requires approval; "off" (the default) asks you each time
    Trust {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        mode: String,
    },
    /// Give an agent services' answers as sent ("on") or compacted ("off", the default)
    Raw {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        mode: String,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Add an account; secrets are read from stdin or a hidden prompt, never from
    /// arguments. OAuth services (reddit, calendar, youtube, linkedin, fitbit)
    /// connect through the admin API instead: POST /admin/oauth/connect
    Add {
        /// Service key, e.g. github, bluesky, mastodon, jira
        service: String,
        /// A name for this account, e.g. personal
        name: String,
        /// API base URL, or just the host for Mastodon, Jira, a Bluesky PDS or GitHub Enterprise
        #[arg(long, value_name = "URL|HOST")]
        base_url: Option<String>,
    },
    /// List accounts
    List,
    /// Remove an account and its stored credentials
    Remove { service: String, name: String },
    /// Ask the service who the account is
    Test { service: String, name: String },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// List queue entries, newest first
    List {
        /// Only entries in this state (pending, approved, executing, completed, failed, rejected, withdrawn)
        #[arg(long)]
        status: Option<Status>,
        /// Only entries of this agent
        #[arg(long)]
        agent: Option<String>,
        /// At most this many entries
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one entry whole: every request's URL, query, headers and body, and its digest
    Show { id: String },
    /// Approve a pending entry exactly as shown, and run it. Without --digest,
    /// on a terminal, the entry is shown and you confirm it; otherwise pass the
    /// digest `queue show` printed
    Approve {
        id: String,
        /// The digest `queue show` printed: nothing runs if the entry changed since
        #[arg(long)]
        digest: Option<String>,
    },
    /// Change a pending entry's requests before deciding: opens $VISUAL or
    /// $EDITOR on them as JSON (remove a request to drop it); checked like a
    /// submission, then approve it
    Edit { id: String },
    /// Reject a pending entry
    Reject {
        id: String,
        /// Why, for the agent
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set the admin password, read from stdin (or a hidden prompt); ends all admin sessions
    SetPassword,
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Keep credentials in an encrypted file from now on (for machines without
    /// a keychain): makes a key outside the data folder unless it exists, and
    /// writes the choice to the data folder's config.toml for every later command
    UseFile {
        /// The key file [default: ~/.config/agentgate/secrets.key]
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Write a new random key for the encrypted-file backend (never overwrites)
    GenerateKey { path: PathBuf },
}

/// Output piped into a program that stops reading (`agentgate queue list |
/// head`) ends the process quietly, with the status a shell gives a process
/// that SIGPIPE stopped, instead of a panic's backtrace.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

pub fn run() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_));
    init_logging(serving);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    crate::logging::init_to(filter, std::io::stderr, std::io::stderr().is_terminal());
}

fn load_config(g: &Global, serve: Option<&ServeArgs>) -> anyhow::Result<Config> {
    Config::load(&Overrides {
        data_dir: g.data_dir.clone(),
        config_file: g.config.clone(),
        listen: serve.and_then(|s| s.listen),
        port: serve.and_then(|s| s.port),
        admin_listen: serve.and_then(|s| s.admin_listen),
        base_url: serve.and_then(|s| s.base_url.clone()),
        credential_backend: g.credential_backend,
        secrets_key_file: g.secrets_key_file.clone(),
        admin_hosts: None,
    })
}

fn open_gateway(config: Config) -> anyhow::Result<Gateway> {
    let creds = credentials::open(&config)?;
    Ok(Gateway::open(config, creds, Arc::new(SystemClock))?)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Serve(args) => {
            let gw = open_gateway(load_config(g, Some(&args))?)?;
            let running = server::start(gw).await?;
            eprintln!(
                "agentgate: agents on http://{}, admin on http://{}",
                running.agent_addr, running.admin_addr
            );
            server::shutdown_signal().await;
            tracing::info!("stopping");
            running.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets(SecretsCommand::UseFile { key_file }) => {
            let config = load_config(g, None)?;
            let key_file = match key_file.or(g.secrets_key_file.clone()) {
                Some(k) => std::path::absolute(k)?,
                None => directories::BaseDirs::new()
                    .context("cannot find the home folder: pass --key-file")?
                    .config_dir()
                    .join("agentgate")
                    .join("secrets.key"),
            };
            let fresh = !key_file.exists();
            if fresh {
                if let Some(dir) = key_file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                credentials::generate_key_file(&key_file)?;
            }
            // Opening the store first checks that the key fits and lives
            // outside the data folder, before the choice is remembered; a key
            // made just now for a store it does not fit is taken back.
            let mut check = config.clone();
            check.credential_backend = CredentialBackend::EncryptedFile;
            check.secrets_key_file = Some(key_file.clone());
            if let Err(e) = credentials::open(&check) {
                if fresh {
                    let _ = std::fs::remove_file(&key_file);
                }
                return Err(e.into());
            }
            if fresh {
                eprintln!(
                    "wrote a new key to {}; back it up: without it the credentials cannot be read",
                    key_file.display()
                );
            }
            let written =
                agentgate_core::config::remember_encrypted_file(&config.data_dir, &key_file)?;
            eprintln!(
                "credentials are kept in an encrypted file from now on (key: {}); the choice is in {}",
                key_file.display(),
                written.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets(SecretsCommand::GenerateKey { path }) => {
            credentials::generate_key_file(&path)?;
            eprintln!(
                "wrote a new key to {}; keep it outside the data folder and back it up",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(AdminCommand::SetPassword) => {
            let gw = open_gateway(load_config(g, None)?)?;
            let password = read_password()?;
            gw.set_admin_password(&password)?;
            eprintln!("admin password set");
            Ok(ExitCode::SUCCESS)
        }
        Command::Pause | Command::Resume => {
            let pause = matches!(cli.command, Command::Pause);
            open_gateway(load_config(g, None)?)?.set_paused(pause)?;
            eprintln!(
                "{}",
                if pause {
                    "agents paused: reads and submissions are refused"
                } else {
                    "agents resumed"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            kind,
            agent,
            service,
            account,
            since,
            until,
            limit,
            format,
        } => {
            let gw = open_gateway(load_config(g, None)?)?;
            let records = gw.audit(&agentgate_core::AuditFilter {
                kind,
                agent,
                service,
                account,
                since: since.as_deref().map(audit_time).transpose()?,
                until: until.as_deref().map(audit_time).transpose()?,
                limit: Some(limit),
            })?;
            let text = if format == "csv" {
                agentgate_core::audit_csv(&records)
            } else {
                agentgate_core::audit_json_lines(&records)
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(cmd) => keys(g, open_gateway(load_config(g, None)?)?, cmd),
        Command::Oauth(cmd) => oauth(g, open_gateway(load_config(g, None)?)?, cmd),
        Command::Accounts(cmd) => accounts(g, open_gateway(load_config(g, None)?)?, cmd).await,
        Command::Queue(cmd) => queue::queue(g, open_gateway(load_config(g, None)?)?, cmd).await,
        Command::Access(cmd) => policy::access(g, open_gateway(load_config(g, None)?)?, cmd),
        Command::Rules(cmd) => policy::rules(g, open_gateway(load_config(g, None)?)?, cmd),
        Command::Grants(cmd) => policy::grants(g, open_gateway(load_config(g, None)?)?, cmd),
    }
}

/// A time given on the command line, as the audit log's records state theirs.
fn audit_time(s: &str) -> anyhow::Result<String> {
    Ok(agentgate_core::clock::precise_timestamp(
        agentgate_core::audit::parse_time(s)?,
    ))
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn keys(g: &Global, gw: Gateway, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Create { name } => {
            let (agent, key) = gw.create_agent(&name)?;
            if g.json {
                print_json(&serde_json::json!({"agent": agent, "key": key.expose()}))?;
            } else {
                eprintln!(
                    "created agent {:?}; its key is shown once, store it now:",
                    agent.name
                );
                println!("{}", key.expose());
            }
        }
        KeysCommand::List => {
            let agents = gw.agents()?;
            if g.json {
                print_json(&agents)?;
            } else if agents.is_empty() {
                eprintln!("no agents yet: agentgate keys create NAME");
            } else {
                println!("{:<24} {:<12} {:<9} CREATED", "NAME", "KEY", "STATE");
                for a in agents {
                    let state = if a.enabled { "enabled" } else { "disabled" };
                    println!(
                        "{:<24} {:<12} {:<9} {}",
                        a.name, a.key_hint, state, a.created_at
                    );
                }
            }
        }
        KeysCommand::Revoke { name } => {
            gw.revoke_agent(&name)?;
            eprintln!("revoked {name:?}");
        }
        KeysCommand::Disable { name } => {
            gw.set_agent_enabled(&name, false)?;
            eprintln!("disabled {name:?}");
        }
        KeysCommand::Enable { name } => {
            gw.set_agent_enabled(&name, true)?;
            eprintln!("enabled {name:?}");
        }
        KeysCommand::Trust { name, mode } => {
            gw.set_agent_trusted(&name, mode == "on")?;
            if mode == "on" {
                eprintln!(
                    "warning: {name:?}'s writes now run without asking you, on every account it may use, \
                     unless a rule requires approval or denies them"
                );
            } else {
                eprintln!("{name:?}'s writes wait for you again");
            }
        }
        KeysCommand::Raw { name, mode } => {
            gw.set_agent_raw(&name, mode == "on")?;
            eprintln!("raw responses {mode} for {name:?}");
        }
        KeysCommand::Rename { name, new_name } => {
            gw.rename_agent(&name, &new_name)?;
            eprintln!("renamed {name:?} to {new_name:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn accounts(g: &Global, gw: Gateway, cmd: AccountsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountsCommand::Add {
            service,
            name,
            base_url,
        } => {
            let def = services::find(&service).ok_or_else(|| {
                let known: Vec<_> = services::REGISTRY.iter().map(|s| s.key).collect();
                anyhow::anyhow!(
                    "unknown service {service:?}; known services: {}",
                    known.join(", ")
                )
            })?;
            let credentials = read_credentials(def)?;
            let info = gw.add_account(NewAccount {
                service,
                name,
                base_url,
                credentials,
            })?;
            if g.json {
                print_json(&info)?;
            } else {
                eprintln!("added {}/{} ({})", info.service, info.name, info.base_url);
            }
        }
        AccountsCommand::List => {
            let list = gw.accounts()?;
            if g.json {
                print_json(&list)?;
            } else if list.is_empty() {
                eprintln!("no accounts yet: agentgate accounts add SERVICE NAME");
            } else {
                println!("{:<12} {:<24} BASE URL", "SERVICE", "NAME");
                for a in list {
                    println!("{:<12} {:<24} {}", a.service, a.name, a.base_url);
                }
            }
        }
        AccountsCommand::Remove { service, name } => {
            gw.remove_account(&service, &name)?;
            eprintln!("removed {service}/{name} and its credentials");
        }
        AccountsCommand::Test { service, name } => {
            let t = gw.test_account(&service, &name).await?;
            if g.json {
                print_json(&t)?;
            } else if t.ok {
                println!(
                    "ok: signed in as {}",
                    display::terminal_line(t.identity.as_deref().unwrap_or("(unknown)"))
                );
            } else {
                println!(
                    "failed: {}",
                    display::terminal_line(t.error.as_deref().unwrap_or("unknown error"))
                );
            }
            if !t.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a service's credential fields: a hidden prompt per field on a terminal;
/// otherwise stdin holds the single secret, or a JSON object when the service
/// needs several fields.
fn read_credentials(def: &services::ServiceDef) -> anyhow::Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    if def.credential_fields.is_empty() {
        anyhow::bail!(
            "{} accounts sign in with OAuth: set the provider's client with `agentgate oauth set-client`, \
             then connect through the admin API (POST /admin/oauth/connect)",
            def.display_name
        );
    }
    if std::io::stdin().is_terminal() {
        for f in def.credential_fields {
            let v = if f.secret {
                rpassword::prompt_password(format!("{}: ", f.label))
                    .context("cannot read from the terminal")?
            } else {
                eprint!("{}: ", f.label);
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read from the terminal")?;
                line.trim().to_string()
            };
            out.insert(f.name.to_string(), Secret::new(v));
        }
        return Ok(out);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read stdin")?;
    let input = Secret::new(input.trim());
    if let [only] = def.credential_fields {
        out.insert(only.name.to_string(), input);
    } else {
        let map: BTreeMap<String, String> = serde_json::from_str(input.expose()).map_err(|_| {
            anyhow::anyhow!(
                "{} needs several fields; pipe a JSON object with {}",
                def.display_name,
                def.credential_fields
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        out.extend(map.into_iter().map(|(k, v)| (k, Secret::new(v))));
    }
    Ok(out)
}

fn read_password() -> anyhow::Result<Secret> {
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("New admin password: ")?;
        let b = rpassword::prompt_password("Again: ")?;
        if a != b {
            anyhow::bail!("the two passwords differ");
        }
        return Ok(Secret::new(a));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read stdin")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        return Err(Error::invalid("no password on stdin").into());
    }
    Ok(Secret::new(pw))
}

fn oauth(g: &Global, gw: Gateway, cmd: OauthCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OauthCommand::SetClient {
            provider,
            client_id,
            authorize_url,
            token_url,
        } => {
            let secret = if std::io::stdin().is_terminal() {
                rpassword::prompt_password("Client secret (empty for none): ")?
            } else {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read stdin")?;
                s.trim().to_string()
            };
            gw.set_oauth_client(
                &provider,
                agentgate_core::OAuthClientConfig {
                    client_id,
                    client_secret: Some(Secret::new(secret)).filter(|s| !s.is_empty()),
                    authorize_url,
                    token_url,
                },
            )?;
            eprintln!("OAuth client for {provider} stored");
        }
        OauthCommand::Clients => {
            let list = gw.oauth_clients()?;
            if g.json {
                print_json(&list)?;
            } else {
                println!(
                    "{:<10} {:<24} {:<8} CLIENT ID",
                    "PROVIDER", "SERVICES", "STATE"
                );
                for c in list {
                    let state = if c.configured { "set" } else { "not set" };
                    println!(
                        "{:<10} {:<24} {:<8} {}",
                        c.provider,
                        c.services.join(","),
                        state,
                        c.client_id.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        OauthCommand::RemoveClient { provider } => {
            gw.remove_oauth_client(&provider)?;
            eprintln!("OAuth client for {provider} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
