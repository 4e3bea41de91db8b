//! `PUT /sessions/{id}`: create the session if it does not exist.

use super::{Answer, Command};
use crate::actors::session::overlay::Overlay;
use crate::domain::json::JsonText;
use crate::domain::session::Session;

/// Create the session if it does not exist. `metadata` is used only on creation.
#[derive(Debug)]
pub(crate) struct EnsureSession {
    pub metadata: Option<JsonText>,
}

#[derive(Clone, Debug)]
pub(crate) struct EnsureOutcome {
    pub session: Session,
    /// This call created it (201) rather than found it (200).
    pub created: bool,
}

impl Command for EnsureSession {
    type Answer = EnsureOutcome;
    const MAY_CREATE: bool = true;

    fn plan(self, overlay: &mut Overlay<'_>, reply: Answer<EnsureOutcome>) {
        let created = overlay.ensure_session(self.metadata);
        let result = match overlay.session() {
            Some(session) => Ok(EnsureOutcome {
                session: session.clone(),
                created,
            }),
            None => Err(overlay.no_session()),
        };
        overlay.answer(reply, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::session::state::testing::{answer_of, TestSession};

    #[test]
    fn the_first_put_creates_with_its_metadata_and_later_ones_find_it() {
        let mut s = TestSession::new();
        let metadata = JsonText::parse(r#"{"repo":"a"}"#.into()).unwrap();
        let (first, plan) = s.run(EnsureSession {
            metadata: Some(metadata),
        });
        assert_eq!(plan.notification_kinds(), ["session.created"]);
        let first = answer_of(first).unwrap();
        assert!(first.created);
        assert_eq!(first.session.metadata.as_str(), r#"{"repo":"a"}"#);

        let other = JsonText::parse(r#"{"repo":"b"}"#.into()).unwrap();
        let (second, plan) = s.run(EnsureSession {
            metadata: Some(other),
        });
        assert!(plan.write.is_none(), "nothing to store");
        let second = answer_of(second).unwrap();
        assert!(!second.created);
        assert_eq!(second.session.metadata.as_str(), r#"{"repo":"a"}"#);
    }
}
