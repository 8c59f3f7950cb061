//! The agentgate gateway as a plain library.
//!
//! agentgate sits between AI agents and a person's online accounts. Agents call the
//! agent API with a bearer key: reads go straight to the service with the real
//! credentials injected, writes are queued until a human approves them. This crate
//! owns all of that — storage, keys, credentials, the upstream client, the write
//! queue and both HTTP routers — and knows nothing about any user interface. The
//! `agentgate` binary (CLI and headless server) and the desktop shell are thin
//! layers over [`Gateway`] and [`server`].

pub mod agent;
pub mod answers;
pub mod audit;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod display;
pub mod error;
mod gateway;
pub mod headers;
pub mod http;
pub mod keys;
pub mod limits;
pub mod password;
pub mod paths;
pub mod policy;
pub mod presets;
pub mod queue;
pub mod request;
pub mod rule_words;
pub mod secret;
pub mod server;
pub mod services;
pub mod status;
mod store;
pub mod upstream;

pub use agent::Agent;
pub use audit::{AuditFilter, AuditRecord, to_csv as audit_csv, to_json_lines as audit_json_lines};
pub use error::{Error, Result};
pub use gateway::{
    AccountInfo, AccountTest, AgentRead, Gateway, GrantInfo, GrantSpec, MAX_GRANT_MINUTES,
    MAX_LIVE_GRANTS, MAX_RULES, NewAccount, OAuthClientConfig, OAuthClientInfo, PolicyView,
    QueueEvent, RuleEdit, RuleSpec, Settings, SettingsUpdate, minutes_left_today, remaining_words,
};
pub use queue::EntryFilter;
pub use store::CROSS_PROCESS_DELAY;
