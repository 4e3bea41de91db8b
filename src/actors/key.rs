//! Which session a request is for: the key the registry routes by and a session actor owns.

use crate::domain::ids::SessionId;

/// Which session a message is for: session ids are unique per scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub scope: String,
    pub session_id: SessionId,
}
