//! The `agentgate` command: the headless server (`agentgate serve`) and the admin
//! commands for a machine without the desktop app. Every command is a thin call
//! into `agentgate-core`.
//!
//! Admin commands open the same database and credential store as the server.
//! That is safe while the server runs: SQLite in WAL mode serialises writers, queue
//! transitions are conditional updates, and caches in the server are keyed by
//! versions stored in the database or revalidated against it, so the server sees
//! a change within a millisecond.

mod cli;
pub mod logging;

pub use cli::run;
