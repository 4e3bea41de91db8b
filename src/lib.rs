//! orchestrator: coordinates the sessions of AI coding agents. Clients post session events and
//! command results; one actor per session serializes everything that happens to it, a registry
//! makes sure there is exactly one such actor, and a writer commits in groups, answering only
//! after the commit. [`start`] builds the whole service (the `startup` module); `main` and the
//! tests both use it.

pub mod actors;
pub mod claude_code;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod hook;
pub mod http;
pub mod log_limit;
pub mod metrics;
pub mod shutdown;
mod startup;
pub mod store;

pub use startup::{start, RunningServer, StartError};
