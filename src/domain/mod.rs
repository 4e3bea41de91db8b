//! Pure types and rules of the service: identifiers, event validation and dedup keys, the
//! session's status and side effects. No I/O, no actors; everything here is unit-tested.

pub mod activity;
pub mod copied;
pub mod event;
pub mod ids;
pub mod interaction;
pub mod json;
pub mod search;
pub mod session;
pub mod time;

/// Where and why an input breaks a rule; becomes a 422 at the HTTP edge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ValidationError {
    /// Position in a batch, when the input was one.
    pub index: Option<usize>,
    /// The offending field, when there is one.
    pub field: Option<String>,
    pub detail: String,
}

impl ValidationError {
    pub fn field(field: &str, detail: impl Into<String>) -> Self {
        Self {
            index: None,
            field: Some(field.to_owned()),
            detail: format!("{field}: {}", detail.into()),
        }
    }
}
