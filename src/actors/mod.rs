//! The actors that serialize all writes: the registry (one session actor per scope and
//! session), the session actors (each the single writer of its session) and the writer (group
//! commit). `messages` is the protocol between them and [`commands`] the operations a session
//! performs; the rest of the service reaches sessions through [`SessionHandle`], which shards
//! them over several registries and threads.

pub mod error;
mod handle;
pub mod key;
pub mod messages;
pub mod registry;
pub mod session;
pub mod writer;

pub use handle::SessionHandle;
pub use registry::Registry;
pub(crate) use session::commands;
pub use writer::Writer;
