//! Integration tests: the real service over HTTP, on SQLite and on PostgreSQL.

mod common;

mod binary;
mod cluster;
mod connections;
mod cross_site;
mod deploy;
mod durability;
mod edges;
mod events;
mod faults;
mod fuzz;
mod hook;
mod hostile_inputs;
mod hot_reads;
mod interactions;
mod isolation;
mod notifications;
mod openapi;
mod ordering;
mod queries;
mod race_harness;
mod scope_limits;
mod scopes_and_limits;
mod search;
mod sessions;
mod shutdown;
mod single_node;
mod store_writes;
mod stream_tokens;
