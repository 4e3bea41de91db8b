//! The order of the keys in a JSON document as its author wrote them, so that a settings file
//! rewritten by `hook install` keeps the user's order. Values are held as `serde_json::Value`,
//! whose objects sort their keys (the server's canonical forms rely on that), so the order is
//! read separately from the original text and applied when the new document is written:
//! keys the original had come first, in its order; new keys follow, sorted.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// The key order of one JSON value and of everything inside it.
#[derive(Debug, Default)]
pub struct KeyOrder {
    keys: Vec<String>,
    members: HashMap<String, KeyOrder>,
    items: Vec<KeyOrder>,
}

impl KeyOrder {
    /// The order in `text`; empty when it is not JSON.
    pub fn of(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// `value` as pretty-printed JSON, its keys in this order.
    pub fn pretty(&self, value: &Value) -> String {
        serde_json::to_string_pretty(&Ordered(value, Some(self))).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderVisitor)
    }
}

struct OrderVisitor;

impl<'de> Visitor<'de> for OrderVisitor {
    type Value = KeyOrder;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
        let mut order = KeyOrder::default();
        while let Some(key) = map.next_key::<String>()? {
            let member: KeyOrder = map.next_value()?;
            if !order.members.contains_key(&key) {
                order.keys.push(key.clone());
            }
            order.members.insert(key, member);
        }
        Ok(order)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyOrder, A::Error> {
        let mut order = KeyOrder::default();
        while let Some(item) = seq.next_element::<KeyOrder>()? {
            order.items.push(item);
        }
        Ok(order)
    }

    // Scalars have no keys.
    fn visit_bool<E>(self, _: bool) -> Result<KeyOrder, E> {
        Ok(KeyOrder::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<KeyOrder, E> {
        Ok(KeyOrder::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<KeyOrder, E> {
        Ok(KeyOrder::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<KeyOrder, E> {
        Ok(KeyOrder::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<KeyOrder, E> {
        Ok(KeyOrder::default())
    }
    fn visit_unit<E>(self) -> Result<KeyOrder, E> {
        Ok(KeyOrder::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<KeyOrder, D::Error> {
        IgnoredAny::deserialize(d).map(|_| KeyOrder::default())
    }
}

/// A value written with the key order of the original, where there is one.
struct Ordered<'a>(&'a Value, Option<&'a KeyOrder>);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(object) => {
                let known = self.1.map_or(&[][..], |o| o.keys.as_slice());
                let first = known.iter().filter(|k| object.contains_key(*k));
                let rest = object.keys().filter(|k| !known.contains(k));
                let mut map = serializer.serialize_map(Some(object.len()))?;
                for key in first.chain(rest) {
                    let inner = self.1.and_then(|o| o.members.get(key));
                    map.serialize_entry(key, &Ordered(&object[key], inner))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for (i, item) in items.iter().enumerate() {
                    seq.serialize_element(&Ordered(item, self.1.and_then(|o| o.items.get(i))))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_authors_order_is_kept_and_new_keys_follow() {
        let original = r#"{"model": "opus", "hooks": {"Stop": [{"matcher": "", "hooks": [
            {"type": "command", "command": "notify.sh", "timeout": 5}]}]},
            "env": {"Z": "1", "A": "2"}, "apiKeyHelper": "x"}"#;
        let order = KeyOrder::of(original);
        let mut value: Value = serde_json::from_str(original).unwrap();
        value["hooks"]["PreToolUse"] = json!([{"hooks": []}]);
        value.as_object_mut().unwrap().remove("apiKeyHelper");
        value["permissions"] = json!({"allow": []});
        let written = order.pretty(&value);
        let keys_in = |text: &str, keys: &[&str]| {
            let at: Vec<usize> = keys
                .iter()
                .map(|k| text.find(&format!("\"{k}\"")).unwrap())
                .collect();
            at.windows(2).all(|w| w[0] < w[1])
        };
        assert!(
            keys_in(&written, &["model", "hooks", "env", "permissions"]),
            "{written}"
        );
        assert!(keys_in(&written, &["Stop", "PreToolUse"]), "{written}");
        assert!(keys_in(&written, &["Z", "A"]), "{written}");
        assert!(
            keys_in(&written, &["type", "command", "timeout"]),
            "{written}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&written).unwrap(),
            value,
            "the same document"
        );
    }

    #[test]
    fn without_an_original_keys_are_sorted() {
        let written = KeyOrder::of("not json").pretty(&json!({"b": 1, "a": [{"d": 1, "c": 2}]}));
        assert!(written.find("\"a\"").unwrap() < written.find("\"b\"").unwrap());
        assert!(written.find("\"c\"").unwrap() < written.find("\"d\"").unwrap());
    }
}
