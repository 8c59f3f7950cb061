//! Integration tests of the gateway library: real SQLite files, real listeners on
//! 127.0.0.1, and wiremock servers standing in for the services.

mod admin_api;
mod agent_api;
mod approval;
mod audit;
mod bad_input;
mod canonical;
mod grant_attacks;
mod helpers;
mod hostile_writes;
mod keychain;
mod listeners;
mod mcp;
mod policy;
mod privacy_props;
mod privacy_routes;
mod private_reads;
mod queue;
mod recheck;
mod reliability;
mod security;
mod services;
mod tidy;
mod ui;
mod ui_pages;
mod ui_policy;
mod webhooks;
