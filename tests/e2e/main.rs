//! End-to-end tests through the built `agentgate` binary: real processes, a real
//! SQLite file, the encrypted-file (or, in CI, the OS keychain) credential store,
//! and wiremock standing in for GitHub on 127.0.0.1.

mod browser;
mod browser_policy;
mod cli;
mod flow;
mod harness;
mod policy_cli;
mod reliability;
