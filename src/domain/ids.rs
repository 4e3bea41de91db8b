//! Identifier rules of the contract (§1): session and interaction ids, event types, event ids.

use std::fmt;

use super::ValidationError;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Checks the `A-Z a-z 0-9 . _ : -` rule with a length range; returns what is wrong. Names
/// that are path segments (`/v1/sessions/{id}`) must not be `.` or `..`: browsers and proxies
/// resolve those before a request is sent, so such a session could never be opened.
fn check_name(value: &str, max: usize, path_segment: bool) -> Result<(), String> {
    if path_segment && (value == "." || value == "..") {
        return Err("must not be . or ..".into());
    }
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > max {
        return Err(format!("must be at most {max} characters"));
    }

    if let Some(bad) = value.chars().find(|c| !is_name_char(*c)) {
        return Err(format!(
            "character {bad:?} is not allowed (use A-Z a-z 0-9 . _ : -)"
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $field:expr, $path_segment:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;
            /// The rule as a regular expression, for documents that show it (OpenAPI); the
            /// `.`/`..` rule of path segments is not in it.
            pub const PATTERN: &str = concat!("^[A-Za-z0-9._:-]{1,", stringify!($max), "}$");

            pub fn parse(value: &str) -> Result<Self, ValidationError> {
                check_name(value, $max, $path_segment)
                    .map(|()| Self(value.to_owned()))
                    .map_err(|why| ValidationError::field($field, why))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A client-chosen session id, unique per scope.
    SessionId, 128, "session_id", true
);
name_type!(
    /// A client- or server-chosen interaction id, unique per session.
    InteractionId, 128, "interaction_id", true
);
name_type!(
    /// An event's type, case-sensitive.
    EventType, 64, "event_type", false
);

/// An optional client idempotency key: 1–128 printable ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventId(String);

impl EventId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let why = if value.is_empty() {
            Some("must not be empty".to_owned())
        } else if value.len() > Self::MAX_LEN {
            Some(format!("must be at most {} characters", Self::MAX_LEN))
        } else if !value.chars().all(|c| (' '..='~').contains(&c)) {
            Some("must be printable ASCII".to_owned())
        } else {
            None
        };
        match why {
            Some(why) => Err(ValidationError::field("event_id", why)),
            None => Ok(Self(value.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_follow_the_character_and_length_rules() {
        assert!(SessionId::parse("a").is_ok());
        assert!(SessionId::parse("Sess-1.2_3:x").is_ok());
        assert!(SessionId::parse(&"x".repeat(128)).is_ok());
        assert!(SessionId::parse(&"x".repeat(129)).is_err());
        assert!(SessionId::parse("").is_err());
        assert!(SessionId::parse("has space").is_err());
        assert!(SessionId::parse("slash/no").is_err());
        assert!(SessionId::parse("ünï").is_err());
        for dots in [".", ".."] {
            assert!(SessionId::parse(dots).is_err(), "{dots}");
            assert!(InteractionId::parse(dots).is_err(), "{dots}");
        }
        assert!(SessionId::parse("...").is_ok());
        assert!(SessionId::parse(".a").is_ok());
        let err = SessionId::parse("a b").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("session_id"));
        assert!(err.detail.starts_with("session_id: "), "{}", err.detail);
    }

    #[test]
    fn event_types_are_at_most_64() {
        assert!(EventType::parse(&"t".repeat(64)).is_ok());
        assert!(EventType::parse(&"t".repeat(65)).is_err());
        assert_eq!(
            EventType::parse("").unwrap_err().field.as_deref(),
            Some("event_type")
        );
    }

    #[test]
    fn event_ids_are_printable_ascii() {
        assert!(EventId::parse("abc 123 ~!@#").is_ok());
        assert!(EventId::parse(&"e".repeat(128)).is_ok());
        assert!(EventId::parse(&"e".repeat(129)).is_err());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("tab\there").is_err());
        assert!(EventId::parse("é").is_err());
    }
}
