//! Cluster mode (PostgreSQL): several nodes serve one database, and each session has one
//! owner at a time. Sessions hash into a fixed number of partitions ([`partition`]); a lease
//! row per partition names its owner and an epoch, on the database's clock, and the live
//! nodes spread the partitions among themselves ([`balance`]). SQLite runs as one node.

pub mod balance;
pub mod keeper;
pub mod partition;
