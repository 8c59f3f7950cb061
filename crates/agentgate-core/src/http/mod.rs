//! The two HTTP surfaces, each its own router on its own listener:
//! [`agent_router`] (the agent API, reachable over the network) and
//! [`admin_router`] (the admin API, loopback by default). No admin route exists on
//! the agent router, and the admin router accepts only admin sessions, never an
//! agent key.

mod admin;
mod agent;
mod docs;
mod error;
mod extract;
mod host;
pub mod listen;
mod mcp;
mod oauth;
mod openapi;
mod session;
mod trace;
mod ui;

pub use admin::{admin_router, document as admin_api_document};
pub use agent::{agent_router, document as agent_api_document};
pub use error::ApiError;
pub use session::SESSION_COOKIE;
