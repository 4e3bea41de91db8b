//! JSON as the service receives and keeps it: as text. A request body is checked in one pass
//! over its bytes and read as its type by [`read_as`], whose members that may hold any JSON
//! keep their text; nothing builds a tree of the whole document (a parsed `serde_json::Value`
//! takes many times the size of its text). [`Fields`] reads stored documents' members. Payloads, metadata, results and event data are kept as
//! [`JsonText`]: the member's text without insignificant whitespace, exactly as sent
//! otherwise.
//!
//! The same rules hold whatever field a value is in. Both backends must store what one
//! accepts: PostgreSQL's text columns and its `jsonb` cannot hold the NUL character (SQLite
//! can), so a string holding one is refused at validation on either backend, before it can
//! reach, and fail, a group commit shared with other sessions' writes. Nesting is limited to
//! [`MAX_DEPTH`], as deep as serde_json parses a value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::ValidationError;

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 128;

/// A JSON document kept as its text: memory is the size of the text, a clone shares it, and
/// it is written out as it is. (The box inside the `Arc` lets a checked text be shared
/// without copying it again.)
#[derive(Clone)]
pub struct JsonText(Arc<Box<RawValue>>);

impl JsonText {
    /// `{}`.
    pub fn empty_object() -> Self {
        Self::from_value(&Value::Object(Default::default()))
    }

    /// `null`.
    pub fn null() -> Self {
        Self::from_value(&Value::Null)
    }

    /// The text of `value`.
    pub fn from_value(value: &Value) -> Self {
        let raw =
            serde_json::value::to_raw_value(value).expect("a serde_json Value always serializes");
        Self(Arc::new(raw))
    }

    /// Checks that `text` is JSON and keeps it as it is.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        Ok(Self(Arc::new(RawValue::from_string(text)?)))
    }

    /// A member of a checked body, kept without its insignificant whitespace.
    pub fn compact(raw: &RawValue) -> Self {
        let text = raw.get();
        let compacted = without_whitespace(text);
        Self::parse(compacted).expect("removing whitespace outside strings keeps JSON valid")
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// A string member of this object, when it is an object that has one.
    pub fn member_str(&self, name: &str) -> Option<String> {
        self.fields()?.take(name).and_then(string)
    }

    /// The members, when this is an object: read once for several of them.
    pub fn fields(&self) -> Option<Fields<'_>> {
        Fields::of(&self.0)
    }

    /// Both are the same JSON document: the same text, or texts that differ only in key order
    /// (a retry of a decision need not be the same bytes to be the same decision).
    pub fn same_document(&self, other: &Self) -> bool {
        if self.as_str() == other.as_str() {
            return true;
        }
        let parse = |text: &JsonText| serde_json::from_str::<Value>(text.as_str());
        matches!((parse(self), parse(other)), (Ok(a), Ok(b)) if a == b)
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Why a body that is JSON was still refused.
#[derive(Debug, PartialEq)]
pub enum BodyRefusal {
    /// Arrays and objects nest deeper than [`MAX_DEPTH`] (HTTP 400, as unparseable JSON).
    TooDeep,
    /// A string could not be stored (HTTP 422).
    Invalid(ValidationError),
}

/// Checks a whole body, already known to be JSON, in one pass over its text: nesting within
/// [`MAX_DEPTH`]; no NUL in any string, key or value; and no `\uD800`-`\uDFFF` escape that
/// is not half of a surrogate pair, which is not Unicode (RFC 8259 §8.2) and which serde_json
/// skips unchecked until something decodes it. The error names the first such string's path
/// (`events[3].data.name`), and its batch index when it is in `events[i]`.
pub fn check_body(raw: &RawValue) -> Result<(), BodyRefusal> {
    let text = raw.get();
    let scan = Scan::of(text);
    if scan.depth > MAX_DEPTH {
        return Err(BodyRefusal::TooDeep);
    }
    if !scan.escaped_nul && !scan.escaped_surrogate {
        return Ok(());
    }
    let Some((path, why)) = first_unstorable(text) else {
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
    Err(BodyRefusal::Invalid(ValidationError {
        index,
        detail: format!("{field}: {why}"),
        field: Some(field),
    }))
}

/// Why a checked body could not be read as its type.
#[derive(Debug, PartialEq)]
pub enum ReadRefusal {
    /// The body is another kind of JSON value than the type (HTTP 400).
    Shape,
    /// A member is missing, given twice, of the wrong type, or breaks its type's rule (HTTP
    /// 422, naming it by its path).
    Invalid(ValidationError),
}

/// Reads a checked body as `T`. A member at fault is named by its path, with its position
/// in the first array on that path as the error's `index` (`events[3].timestamp`: index 3,
/// field `timestamp`), and serde's "invalid type: integer `7`, expected a string" is said
/// as "must be a string".
pub fn read_as<T: de::DeserializeOwned>(raw: &RawValue) -> Result<T, ReadRefusal> {
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let path = e.path().to_string();
        let message = without_position(e.inner().to_string());
        member_refusal(&path, &message).map_or(ReadRefusal::Shape, ReadRefusal::Invalid)
    })
}

/// serde_json ends a message with where in the text it happened; the path says it better.
fn without_position(mut message: String) -> String {
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    message
}

/// The member a deserialization error is about, or `None` when it is about the whole body.
fn member_refusal(path: &str, message: &str) -> Option<ValidationError> {
    let named = |quote: &str| {
        message
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix('`'))
    };
    let within = |name: &str| match path {
        "." => name.to_owned(),
        _ => format!("{path}.{name}"),
    };
    let (path, why) = if let Some(name) = named("missing field `") {
        (within(name), "is required".to_owned())
    } else if let Some(name) = named("duplicate field `") {
        (within(name), "is given more than once".to_owned())
    } else if path == "." {
        return None;
    } else {
        (path.to_owned(), must_be(message))
    };
    // A member's name; none when the value at fault is an element of an array.
    let field = path
        .rsplit('.')
        .next()
        .filter(|last| !last.ends_with(']'))
        .map(str::to_owned);
    let index = path
        .split_once('[')
        .and_then(|(_, rest)| rest.split(']').next())
        .and_then(|n| n.parse().ok());
    Some(ValidationError {
        index,
        field,
        detail: format!("{path}: {why}"),
    })
}

/// "invalid type: integer `7`, expected a string" as "must be a string", in JSON's words.
fn must_be(message: &str) -> String {
    let mismatch = message.starts_with("invalid type") || message.starts_with("invalid value");
    match message.split_once(", expected ") {
        Some((_, expected)) if mismatch => {
            let expected = if expected.starts_with("struct ") || expected == "a map" {
                "a JSON object"
            } else if expected == "a sequence" {
                "a JSON array"
            } else {
                expected
            };
            format!("must be {expected}")
        }
        _ => message.to_owned(),
    }
}

/// The members of a JSON object, each still the text it was sent as. A member is parsed only
/// when it is taken, and only as the type asked for; unknown members cost nothing.
pub struct Fields<'a>(BTreeMap<String, &'a RawValue>);

impl<'a> Fields<'a> {
    /// The members of `raw`, or `None` when it is not an object. A repeated key keeps its last
    /// value, as a parsed object would.
    pub fn of(raw: &'a RawValue) -> Option<Self> {
        if !raw.get().starts_with('{') {
            return None;
        }
        serde_json::from_str(raw.get()).ok().map(Self)
    }

    /// No members: what an empty body is.
    pub fn none() -> Self {
        Self(BTreeMap::new())
    }

    /// Takes a member out; `null` counts as absent.
    pub fn take(&mut self, name: &str) -> Option<&'a RawValue> {
        self.take_value(name).filter(|raw| raw.get() != "null")
    }

    /// Takes a member out, `null` included: for members whose value can be any JSON.
    pub fn take_value(&mut self, name: &str) -> Option<&'a RawValue> {
        self.0.remove(name)
    }
}

/// The text, when `raw` is a JSON string.
pub fn string(raw: &RawValue) -> Option<String> {
    raw.get()
        .starts_with('"')
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// The number, when `raw` is a JSON number.
pub fn number(raw: &RawValue) -> Option<Value> {
    raw.get()
        .starts_with(|c: char| c == '-' || c.is_ascii_digit())
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// `raw` is a JSON object.
pub fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

/// The elements, when `raw` is a JSON array.
pub fn elements(raw: &RawValue) -> Option<Vec<&RawValue>> {
    raw.get()
        .starts_with('[')
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// The canonical text of a checked value: object keys sorted (the last of a repeated key
/// kept), no whitespace, strings escaped the one way serde_json writes them, numbers as sent.
/// It is what serializing the parsed `Value` gives, written in one walk over the text
/// without building the tree.
pub fn canonical(raw: &RawValue) -> String {
    let mut out = String::with_capacity(raw.get().len());
    Canonical {
        text: raw.get(),
        at: 0,
    }
    .value(&mut out);
    out
}

/// A walk over valid JSON text (the parser has checked it) that writes its canonical form.
struct Canonical<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Canonical<'t> {
    fn peek(&self) -> u8 {
        self.text.as_bytes().get(self.at).copied().unwrap_or(b' ')
    }

    fn skip_whitespace(&mut self) {
        while self.at < self.text.len() && matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn value(&mut self, out: &mut String) {
        self.skip_whitespace();
        match self.peek() {
            b'{' => self.object(out),
            b'[' => self.array(out),
            b'"' => {
                let string = self.string();
                write_string(string, out);
            }
            _ => {
                let start = self.at;
                while self.at < self.text.len()
                    && !matches!(
                        self.peek(),
                        b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.at += 1;
                }
                write_scalar(&self.text[start..self.at], out);
            }
        }
    }

    /// The string at the cursor, quotes included, as sent.
    fn string(&mut self) -> &'t str {
        let start = self.at;
        self.at = string_end(self.text.as_bytes(), start, &mut Escapes::default()) + 1;
        &self.text[start..self.at]
    }

    fn array(&mut self, out: &mut String) {
        self.at += 1;
        out.push('[');
        self.skip_whitespace();
        if self.peek() == b']' {
            self.at += 1;
            out.push(']');
            return;
        }
        loop {
            self.value(out);
            self.skip_whitespace();
            let separator = self.peek();
            self.at += 1;
            if separator == b']' {
                out.push(']');
                return;
            }
            out.push(',');
        }
    }

    fn object(&mut self, out: &mut String) {
        self.at += 1;
        out.push('{');
        let region = out.len();
        // Each member's key, and where its canonical `"key":value` was written.
        let mut members: Vec<(std::borrow::Cow<'t, str>, std::ops::Range<usize>)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == b'}' {
            self.at += 1;
            out.push('}');
            return;
        }
        loop {
            self.skip_whitespace();
            let key = self.string();
            self.skip_whitespace();
            self.at += 1; // ':'
            if !members.is_empty() {
                out.push(',');
            }
            let start = out.len();
            write_string(key, out);
            out.push(':');
            self.value(out);
            members.push((decoded(key), start..out.len()));
            self.skip_whitespace();
            let separator = self.peek();
            self.at += 1;
            if separator == b'}' {
                break;
            }
        }
        if members.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            // Stable, so of a repeated key the last one sent ends last; only it is kept.
            members.sort_by(|a, b| a.0.cmp(&b.0));
            let written = out.split_off(region);
            let mut first = true;
            for (i, (key, range)) in members.iter().enumerate() {
                if members.get(i + 1).is_some_and(|next| next.0 == *key) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&written[range.start - region..range.end - region]);
            }
        }
        out.push('}');
    }
}

/// Writes a number or literal as serde_json does: numbers as sent, but for the exponent
/// (`1E5` is written `1e+5`).
fn write_scalar(token: &str, out: &mut String) {
    if token.contains(['e', 'E']) && !matches!(token, "true" | "false") {
        if let Ok(number) = serde_json::from_str::<serde_json::Number>(token) {
            out.push_str(&number.to_string());
            return;
        }
    }
    out.push_str(token);
}

/// A string's value: its text between the quotes when it has no escape.
fn decoded(string: &str) -> std::borrow::Cow<'_, str> {
    if string.contains('\\') {
        std::borrow::Cow::Owned(serde_json::from_str(string).unwrap_or_default())
    } else {
        std::borrow::Cow::Borrowed(&string[1..string.len() - 1])
    }
}

/// Writes a string as serde_json escapes it. Without a backslash, the text as sent is already
/// that: valid JSON has no raw control character or quote inside a string.
fn write_string(string: &str, out: &mut String) {
    if string.contains('\\') {
        let value: String = serde_json::from_str(string).unwrap_or_default();
        out.push_str(&serde_json::to_string(&value).unwrap_or_default());
    } else {
        out.push_str(string);
    }
}

/// What one pass over a valid JSON text finds.
struct Scan {
    /// The deepest nesting of arrays and objects.
    depth: usize,
    /// A string holds `\u0000`: the only way JSON text can carry a NUL.
    escaped_nul: bool,
    /// A string holds an escape in `\uD800`-`\uDFFF`: paired or not, a walk tells.
    escaped_surrogate: bool,
}

impl Scan {
    fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        let (mut depth, mut deepest) = (0usize, 0usize);
        let mut escapes = Escapes::default();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => i = string_end(bytes, i, &mut escapes),
                b'{' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
        Self {
            depth: deepest,
            escaped_nul: escapes.nul,
            escaped_surrogate: escapes.surrogate,
        }
    }
}

/// The escapes a scan notes in strings.
#[derive(Default)]
struct Escapes {
    nul: bool,
    surrogate: bool,
}

/// The index of the quote that closes the string opening at `start`; notes the escapes in it.
fn string_end(bytes: &[u8], start: usize, escapes: &mut Escapes) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return i,
            b'\\' => {
                if bytes.get(i + 1) == Some(&b'u') {
                    match bytes.get(i + 2..i + 4) {
                        Some(b"00") if bytes.get(i + 4..i + 6) == Some(b"00") => escapes.nul = true,
                        Some([b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F']) => {
                            escapes.surrogate = true
                        }
                        _ => {}
                    }
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `text` without whitespace outside strings.
fn without_whitespace(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut kept_from, mut i, mut ignored) = (0, 0, Escapes::default());
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i, &mut ignored) + 1,
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.push_str(&text[kept_from..i]);
                i += 1;
                kept_from = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[kept_from..]);
    out
}

/// The path of the first string or key holding a NUL, walking the text once without building
/// it; `""` is the whole document.
fn first_unstorable(text: &str) -> Option<(String, &'static str)> {
    let mut path = String::new();
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = FindNul {
        path: &mut path,
        found: &mut found,
    };
    // The walk stops with an error at the NUL it finds, and `found` says where. serde_json
    // itself stops it at a string it cannot decode, a lone surrogate: `path` is then left
    // where the walk was (the value, or for a key, the object holding it).
    match seed.deserialize(&mut deserializer) {
        Ok(()) => None,
        Err(_) => Some(match found {
            Some(at) => (at, "text must not contain the NUL character (\\u0000)"),
            None => (
                path,
                "text must be Unicode: a \\uD800-\\uDFFF escape must be half of a surrogate pair",
            ),
        }),
    }
}

/// Walks a value, extending `path` as it goes down, and stops at the first NUL (or where
/// serde_json cannot decode a string).
struct FindNul<'p> {
    path: &'p mut String,
    found: &'p mut Option<String>,
}

impl FindNul<'_> {
    fn stop<E: de::Error>(self) -> Result<(), E> {
        *self.found = Some(self.path.clone());
        Err(E::custom("NUL found"))
    }
}

impl<'de> DeserializeSeed<'de> for FindNul<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FindNul<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if s.contains('\0') {
            self.stop()
        } else {
            Ok(())
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let parent = self.path.len();
        let mut index = 0;
        loop {
            self.path.push_str(&format!("[{index}]"));
            let element = FindNul {
                path: &mut *self.path,
                found: &mut *self.found,
            };
            if seq.next_element_seed(element)?.is_none() {
                break;
            }
            self.path.truncate(parent);
            index += 1;
        }
        self.path.truncate(parent);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let parent = self.path.len();
        while let Some(key) = map.next_key::<String>()? {
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(&key);
            if key.contains('\0') {
                return self.stop();
            }
            map.next_value_seed(FindNul {
                path: &mut *self.path,
                found: &mut *self.found,
            })?;
            self.path.truncate(parent);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod read_as {
        use super::super::{read_as, ReadRefusal};
        use crate::domain::ValidationError;
        use serde::Deserialize;
        use serde_json::value::RawValue;

        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Item {
            name: String,
        }

        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Body {
            items: Vec<Item>,
            count: Option<u32>,
        }

        fn read(text: &str) -> Result<Body, ReadRefusal> {
            read_as(&RawValue::from_string(text.to_owned()).unwrap())
        }

        fn refusal(index: Option<usize>, field: &str, detail: &str) -> ReadRefusal {
            ReadRefusal::Invalid(ValidationError {
                index,
                field: Some(field.to_owned()),
                detail: detail.to_owned(),
            })
        }

        #[test]
        fn a_member_at_fault_is_named_by_its_path() {
            assert!(read(r#"{"items": [{"name": "a"}], "extra": 1}"#).is_ok());
            assert_eq!(
                read(r#"{"items": [{"name": "a"}, {"name": 7}]}"#).unwrap_err(),
                refusal(Some(1), "name", "items[1].name: must be a string")
            );
            assert_eq!(
                read(r#"{"items": [{}]}"#).unwrap_err(),
                refusal(Some(0), "name", "items[0].name: is required")
            );
            assert_eq!(
                read(r#"{"count": 1}"#).unwrap_err(),
                refusal(None, "items", "items: is required")
            );
            assert_eq!(
                read(r#"{"items": [], "items": []}"#).unwrap_err(),
                refusal(None, "items", "items: is given more than once")
            );
            assert_eq!(
                read(r#"{"items": {}}"#).unwrap_err(),
                refusal(None, "items", "items: must be a JSON array")
            );
            assert_eq!(
                read(r#"{"items": [5]}"#).unwrap_err(),
                ReadRefusal::Invalid(ValidationError {
                    index: Some(0),
                    field: None,
                    detail: "items[0]: must be a JSON object".into(),
                })
            );
        }

        #[test]
        fn another_kind_of_value_is_the_wrong_shape() {
            assert_eq!(read(r#""text""#).unwrap_err(), ReadRefusal::Shape);
            assert_eq!(read("7").unwrap_err(), ReadRefusal::Shape);
        }
    }
    use serde_json::json;

    fn raw(value: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    fn refused_field(value: Value) -> Option<String> {
        match check_body(&raw(value)) {
            Err(BodyRefusal::Invalid(e)) => e.field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_nul_anywhere_is_named_by_its_path() {
        assert!(check_body(&raw(json!({"a": ["b", {"c": "d"}], "n": 1}))).is_ok());
        let body = raw(json!({"events": [{}, {"data": {"id": "a\u{0}b"}}]}));
        let Err(BodyRefusal::Invalid(e)) = check_body(&body) else {
            panic!("a NUL was let through")
        };
        assert_eq!(e.field.as_deref(), Some("events[1].data.id"));
        assert_eq!(e.index, Some(1));
        assert_eq!(
            refused_field(json!({"metadata": {"k\u{0}": 1}})).as_deref(),
            Some("metadata.k\u{0}")
        );
        assert_eq!(refused_field(json!(["x", "\u{0}"])).as_deref(), Some("[1]"));
        assert_eq!(refused_field(json!("\u{0}")).as_deref(), Some("body"));
        assert_eq!(
            refused_field(json!({"a": [[1, {"b": ["", "\u{0}"]}]]})).as_deref(),
            Some("a[0][1].b[1]")
        );
    }

    fn refusal_of(text: &str) -> Option<ValidationError> {
        let raw = RawValue::from_string(text.to_owned()).expect("JSON as serde_json skims it");
        match check_body(&raw) {
            Ok(()) => None,
            Err(BodyRefusal::Invalid(e)) => Some(e),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lone_surrogate_escape_is_refused_where_it_is() {
        for (text, field) in [
            (r#"{"payload": {"c": "\ud800"}}"#, "payload.c"),
            (r#"{"payload": {"c": "x\uDBFFy"}}"#, "payload.c"),
            (r#"{"payload": {"c": "\udc00"}}"#, "payload.c"),
            (r#"{"payload": {"c": "\ud800\ud800"}}"#, "payload.c"),
            (
                r#"{"events": [{}, {"data": ["ok", "\uDFFF"]}]}"#,
                "events[1].data[1]",
            ),
            (r#"{"k": {"\ud800": 1}}"#, "k"),
            (r#""\ud83d""#, "body"),
        ] {
            let e = refusal_of(text).unwrap_or_else(|| panic!("{text} was let through"));
            assert_eq!(e.field.as_deref(), Some(field), "{text}");
            assert!(e.detail.contains("surrogate"), "{}", e.detail);
        }
        assert_eq!(
            refusal_of(r#"{"events": [{}, {"data": "\udfff"}]}"#)
                .unwrap()
                .index,
            Some(1)
        );
        // Pairs are Unicode; an escaped backslash before `ud800` is no escape.
        for text in [
            r#"{"a": "\ud83d\ude00", "b": "\uD83D\uDE00x"}"#,
            r#"{"a": "\\ud800"}"#,
            r#"{"a": "\u00e9\u0041"}"#,
        ] {
            assert!(refusal_of(text).is_none(), "{text}");
        }
    }

    #[test]
    fn documents_that_do_not_parse_are_never_the_same() {
        let a = JsonText::parse(r#"{"c":"\ud800"}"#.into()).unwrap();
        let b = JsonText::parse(r#"{"c":"\udbff"}"#.into()).unwrap();
        assert!(!a.same_document(&b));
        assert!(a.same_document(&a.clone()), "the same text is the same");
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_no_nul() {
        let text = RawValue::from_string(r#"{"a": "\\u0000", "b": 2}"#.to_owned()).unwrap();
        assert!(check_body(&text).is_ok());
    }

    #[test]
    fn nesting_is_limited_to_what_a_parser_accepts() {
        let nested = |depth: usize| {
            RawValue::from_string(format!("{}{}", "[".repeat(depth), "]".repeat(depth))).unwrap()
        };
        assert!(check_body(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            check_body(&nested(MAX_DEPTH + 1)),
            Err(BodyRefusal::TooDeep)
        );
        // Brackets inside strings are text.
        let text = RawValue::from_string(format!(r#"["{}"]"#, "[".repeat(500))).unwrap();
        assert!(check_body(&text).is_ok());
    }

    #[test]
    fn compact_text_drops_only_the_whitespace_outside_strings() {
        let text = RawValue::from_string(
            "{ \"a b\" : [ 1 ,\n\t2.50 ] , \"s\": \" x\\\" y \", \"n\": 18446744073709551616 }"
                .to_owned(),
        )
        .unwrap();
        assert_eq!(
            JsonText::compact(&text).as_str(),
            r#"{"a b":[1,2.50],"s":" x\" y ","n":18446744073709551616}"#
        );
    }

    #[test]
    fn fields_borrow_members_and_parse_only_what_is_taken() {
        let text = RawValue::from_string(
            r#"{"s": "x", "n": 3.0, "o": {"k": 1}, "z": null, "s": "last"}"#.to_owned(),
        )
        .unwrap();
        let mut fields = Fields::of(&text).unwrap();
        assert_eq!(fields.take("s").and_then(string).as_deref(), Some("last"));
        assert_eq!(fields.take("n").and_then(number), Some(json!(3.0)));
        assert!(fields.take("o").is_some_and(is_object));
        assert!(fields.take("z").is_none());
        assert!(fields.take("o").is_none(), "taken once");
        assert!(Fields::of(&raw(json!([1]))).is_none());
        assert_eq!(string(&raw(json!(5))), None);
        assert_eq!(number(&raw(json!("5"))), None);
    }

    /// JSON text with whitespace, unsorted and repeated keys, escapes and numbers as people
    /// write them.
    fn any_json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let space = prop_oneof![Just(""), Just(" "), Just("\n\t "), Just("\r\n")];
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("-0".to_owned()),
            Just("1E5".to_owned()),
            Just("2.50e-3".to_owned()),
            Just("18446744073709551616".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap()),
            ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just(r#""\u0041\/\ud83d\ude00\u001f\"""#.to_owned()),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            let key = prop_oneof![
                "[a-c]{1,2}".prop_map(|k| format!("\"{k}\"")),
                Just(r#""\u0061""#.to_owned()),
                Just(r#""b\n""#.to_owned()),
            ];
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..5), space.clone())
                    .prop_map(|(items, s)| format!("[{s}{}{s}]", items.join(&format!("{s},{s}")))),
                (prop::collection::vec((key, inner), 0..6), space.clone()).prop_map(
                    |(members, s)| {
                        let members: Vec<String> = members
                            .iter()
                            .map(|(k, v)| format!("{k}{s}:{s}{v}"))
                            .collect();
                        format!("{{{s}{}{s}}}", members.join(&format!("{s},{s}")))
                    }
                ),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn canonical_text_is_what_the_parsed_value_serializes_to(text in any_json_text()) {
            let raw = RawValue::from_string(text.clone()).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            proptest::prop_assert_eq!(canonical(&raw), parsed.to_string());
        }

        #[test]
        fn compact_text_is_the_same_document(text in any_json_text()) {
            let raw = RawValue::from_string(text.clone()).unwrap();
            let compact = JsonText::compact(&raw);
            proptest::prop_assert_eq!(
                serde_json::from_str::<Value>(compact.as_str()).unwrap(),
                serde_json::from_str::<Value>(&text).unwrap()
            );
            proptest::prop_assert!(!compact.as_str().contains('\n'));
        }
    }

    #[test]
    fn the_same_document_ignores_key_order_only() {
        let a = JsonText::from_value(&json!({"a": 1, "b": [2]}));
        let b = JsonText::parse(r#"{"b":[2],"a":1}"#.to_owned()).unwrap();
        let c = JsonText::from_value(&json!({"a": 1, "b": [3]}));
        assert!(a.same_document(&b) && !a.same_document(&c));
        assert_eq!(
            JsonText::from_value(&json!({"id": "x"})).member_str("id"),
            Some("x".to_owned())
        );
    }
}
