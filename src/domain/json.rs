//! Rules every JSON input obeys, whatever field it is in. Both backends must store what one
//! accepts: PostgreSQL's text columns and its `jsonb` cannot hold the NUL character (SQLite
//! can), so a string holding one is refused at validation on either backend, before it can
//! reach, and fail, a group commit shared with other sessions' writes.

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;

use super::ValidationError;

/// A JSON document kept as its text: memory is the size of the text (a parsed `Value` takes
/// many times that), a clone shares it, and it is written out as it is.
#[derive(Clone)]
pub struct JsonText(Arc<RawValue>);

impl JsonText {
    /// `{}`.
    pub fn empty_object() -> Self {
        Self::from_value(&Value::Object(Default::default()))
    }

    /// The text of `value`.
    pub fn from_value(value: &Value) -> Self {
        let raw =
            serde_json::value::to_raw_value(value).expect("a serde_json Value always serializes");
        Self(Arc::from(raw))
    }

    /// Checks that `text` is JSON and keeps it as it is.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        Ok(Self(Arc::from(RawValue::from_string(text)?)))
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Checks that no string in `value`, key or value, holds a NUL character; the error names the
/// first one's path (`events[3].data.name`), and its batch index when it is in `events[i]`.
pub fn refuse_nul(value: &Value) -> Result<(), ValidationError> {
    let Some(path) = first_nul(value, String::new()) else {
        return Ok(());
    };
    let index = path
        .strip_prefix("events[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok());
    let field = if path.is_empty() {
        "body".to_owned()
    } else {
        path
    };
    Err(ValidationError {
        index,
        detail: format!("{field}: text must not contain the NUL character (\\u0000)"),
        field: Some(field),
    })
}

fn first_nul(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| first_nul(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(inner)
            } else {
                first_nul(item, inner)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_anywhere_is_named_by_its_path() {
        assert!(refuse_nul(&json!({"a": ["b", {"c": "d"}], "n": 1})).is_ok());
        let e = refuse_nul(&json!({"events": [{}, {"data": {"id": "a\u{0}b"}}]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("events[1].data.id"));
        assert_eq!(e.index, Some(1));
        let e = refuse_nul(&json!({"metadata": {"k\u{0}": 1}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("metadata.k\u{0}"));
        let e = refuse_nul(&json!(["x", "\u{0}"])).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("[1]"));
        let e = refuse_nul(&json!("\u{0}")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
    }
}
