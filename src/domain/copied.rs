//! What an event may copy into its session: `conversation_started`'s conversation id and
//! `session_status_changed`'s status are written into the session row and into every
//! `session.updated` notification, so they are checked to be short when the event is
//! validated, before anything is stored.

use serde_json::value::RawValue;

use super::json::{self, Fields};
use super::ValidationError;

/// The longest `data.conversation_id` a `conversation_started` event may link. It is copied
/// into the session row and into every `session.updated` notification, so it must be short.
pub const MAX_CONVERSATION_ID_LEN: usize = 256;
/// The longest `data.status` a `session_status_changed` event may carry (it is logged when it
/// is not a status).
pub const MAX_STATUS_LEN: usize = 64;

/// Checks the members of `data` that an event of `event_type` copies into its session: they
/// are short strings, so no small event can multiply into large rows and notifications.
pub fn check_copied_fields(
    event_type: &str,
    data: Option<&RawValue>,
) -> Result<(), ValidationError> {
    let (name, max) = match event_type {
        "conversation_started" => ("conversation_id", MAX_CONVERSATION_ID_LEN),
        "session_status_changed" => ("status", MAX_STATUS_LEN),
        _ => return Ok(()),
    };
    let Some(value) = data.and_then(Fields::of).and_then(|mut f| f.take(name)) else {
        return Ok(());
    };
    match json::string(value) {
        Some(text) if text.len() > max => Err(ValidationError::field(
            &format!("data.{name}"),
            format!("must be at most {max} bytes"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn fields_copied_into_the_session_are_short() {
        let data = |v: Value| serde_json::value::to_raw_value(&v).unwrap();
        let long_id = "c".repeat(MAX_CONVERSATION_ID_LEN + 1);
        let refused = check_copied_fields(
            "conversation_started",
            Some(&data(json!({"conversation_id": long_id}))),
        )
        .unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("data.conversation_id"));
        let ok_id = "c".repeat(MAX_CONVERSATION_ID_LEN);
        assert!(check_copied_fields(
            "conversation_started",
            Some(&data(json!({"conversation_id": ok_id})))
        )
        .is_ok());
        let long_status = json!({"status": "s".repeat(MAX_STATUS_LEN + 1)});
        assert_eq!(
            check_copied_fields("session_status_changed", Some(&data(long_status.clone())))
                .unwrap_err()
                .field
                .as_deref(),
            Some("data.status")
        );
        assert!(check_copied_fields("other", Some(&data(long_status))).is_ok());
        assert!(check_copied_fields("session_status_changed", None).is_ok());
    }
}
