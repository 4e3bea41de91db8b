//! Event validation and the dedup key (contract §5). A request body becomes a list of
//! [`NewEvent`]s only when every event in it is valid; the first invalid one names its index.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::ids::{EventId, EventType, InteractionId};
use super::json::{self, JsonText};
use super::time::parse_rfc3339_micros;
use super::ValidationError;

/// An integer JSON number, also when written with a zero fraction (`5.0`): JSON does not tell
/// the two apart, so neither do we.
pub fn integral(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// Client sequence numbers are below this (one past the largest must still be a number).
pub const MAX_SEQUENCE: i64 = i64::MAX - 1;

/// A validated event, not yet stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    /// The client's `timestamp`, in microseconds since the epoch.
    pub occurred_at_us: i64,
    /// The `data` object's text, as sent.
    pub data: Option<JsonText>,
    pub event_id: Option<EventId>,
    pub interaction_id: Option<InteractionId>,
    /// The client's own per-session counter, when it sends one.
    pub sequence: Option<i64>,
    /// Identity for deduplication: `e:<event_id>`, or `c:<sha256>` of the content key.
    pub dedup_key: String,
}

impl NewEvent {
    /// The `data` field as stored: the JSON text of the object, or `null`.
    pub fn data_json(&self) -> String {
        match &self.data {
            Some(text) => text.as_str().to_owned(),
            None => "null".into(),
        }
    }

    /// A string field of `data`, when present.
    pub fn data_str(&self, key: &str) -> Option<String> {
        self.data.as_ref()?.member_str(key)
    }
}

/// Why a request body could not become events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is not an event or a `{"events": [...]}` object (HTTP 400).
    #[error("{0}")]
    Shape(String),
    /// More events than a batch may hold (HTTP 413).
    #[error("a batch holds at most {max} events; this one has {count}")]
    TooMany { count: usize, max: usize },
    /// An event breaks a rule (HTTP 422).
    #[error(transparent)]
    Invalid(ValidationError),
}

/// One event as posted.
// What the API document shows and what is read; every rule beyond the members' JSON types is
// checked in its conversion to a `NewEvent`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventInput {
    #[schema(value_type = EventType)]
    pub event_type: String,
    /// RFC 3339 with offset.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Stored as given.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Box<RawValue>>,
    /// Idempotency key: 1–128 printable ASCII chars.
    #[schema(pattern = r"^[ -~]{1,128}$", min_length = 1, max_length = 128)]
    pub event_id: Option<String>,
    #[schema(value_type = Option<InteractionId>)]
    pub interaction_id: Option<String>,
    /// The client's own per-session counter from 0; events are applied in this order.
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 9223372036854775805_u64)]
    pub sequence: Option<serde_json::Number>,
}

/// A batch: stored all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventBatch {
    pub events: Vec<EventInput>,
}

/// `POST …/events` takes one event or a batch.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
pub enum EventsBody {
    One(EventInput),
    Batch(EventBatch),
}

impl EventsBody {
    /// What the body must be.
    pub const SHAPE: &str = "an event object or {\"events\": [...]}";

    /// Reads a checked body: a batch when it has `events`, else one event. An error in one
    /// event names its index (0 for a lone event).
    pub fn read(body: &RawValue) -> Result<Self, BodyError> {
        #[derive(Deserialize)]
        struct Members<'a> {
            #[serde(borrow)]
            events: Option<&'a RawValue>,
        }
        let shape = || BodyError::Shape(format!("the body must be {}", Self::SHAPE));
        let members: Members = match body.get().starts_with('{') {
            true => serde_json::from_str(body.get()).map_err(|_| shape())?,
            false => return Err(shape()),
        };
        let read = |refusal| match refusal {
            json::ReadRefusal::Shape => shape(),
            json::ReadRefusal::Invalid(e) => BodyError::Invalid(e),
        };
        match members.events {
            Some(events) => {
                let Some(elements) = json::elements(events) else {
                    return Err(BodyError::Shape("`events` must be an array".into()));
                };
                // serde would read an event from an array of its members in order too.
                if let Some(i) = elements.iter().position(|e| !json::is_object(e)) {
                    return Err(BodyError::Invalid(ValidationError {
                        index: Some(i),
                        field: None,
                        detail: format!("events[{i}]: an event must be a JSON object"),
                    }));
                }
                json::read_as(body).map(Self::Batch).map_err(read)
            }
            None => json::read_as(body)
                .map(Self::One)
                .map_err(|refusal| match read(refusal) {
                    BodyError::Invalid(mut e) => {
                        e.index = Some(0);
                        BodyError::Invalid(e)
                    }
                    other => other,
                }),
        }
    }

    /// The events, validated: all of them, or the first one's error with its index.
    pub fn into_events(self, max_batch: usize) -> Result<Vec<NewEvent>, BodyError> {
        match self {
            Self::One(event) => NewEvent::try_from(event).map(|e| vec![e]).map_err(|mut e| {
                e.index = Some(0);
                BodyError::Invalid(e)
            }),
            Self::Batch(EventBatch { events }) if events.len() > max_batch => {
                Err(BodyError::TooMany {
                    count: events.len(),
                    max: max_batch,
                })
            }
            Self::Batch(EventBatch { events }) if events.is_empty() => Err(BodyError::Invalid(
                ValidationError::field("events", "must hold at least one event"),
            )),
            Self::Batch(EventBatch { events }) => events
                .into_iter()
                .enumerate()
                .map(|(i, event)| {
                    NewEvent::try_from(event).map_err(|mut e| {
                        e.detail = format!("events[{i}].{}", e.detail);
                        e.index = Some(i);
                        BodyError::Invalid(e)
                    })
                })
                .collect(),
        }
    }
}

/// Validates a whole body: one event object, or `{"events": [event, ...]}`.
pub fn parse_body(body: &RawValue, max_batch: usize) -> Result<Vec<NewEvent>, BodyError> {
    EventsBody::read(body)?.into_events(max_batch)
}

impl TryFrom<EventInput> for NewEvent {
    type Error = ValidationError;

    fn try_from(input: EventInput) -> Result<Self, ValidationError> {
        let event_type = EventType::parse(&input.event_type)?;
        let occurred_at_us = parse_rfc3339_micros(&input.timestamp)
            .ok_or_else(|| ValidationError::field("timestamp", "not an RFC 3339 time"))?;
        let data = input.data.as_deref();
        if data.is_some_and(|raw| !json::is_object(raw)) {
            return Err(ValidationError::field("data", "must be a JSON object"));
        }
        super::copied::check_copied_fields(event_type.as_str(), data)?;
        let event_id = input.event_id.as_deref().map(EventId::parse).transpose()?;
        let interaction_id = input
            .interaction_id
            .as_deref()
            .map(InteractionId::parse)
            .transpose()?;
        let sequence = input.sequence.as_ref().map(sequence).transpose()?;
        let dedup_key = dedup_key(
            event_id.as_ref(),
            interaction_id.as_ref(),
            &event_type,
            occurred_at_us,
            data,
        );
        Ok(NewEvent {
            event_type,
            occurred_at_us,
            data: data.map(JsonText::compact),
            event_id,
            interaction_id,
            sequence,
            dedup_key,
        })
    }
}

/// A client sequence number: an unsigned integer (`5.0` too) below [`MAX_SEQUENCE`], so that
/// the next expected number still fits.
fn sequence(number: &serde_json::Number) -> Result<i64, ValidationError> {
    let value = Value::Number(number.clone());
    value
        .as_u64()
        .and_then(|n| i64::try_from(n).ok())
        .or_else(|| integral(&value).filter(|n| *n >= 0))
        .filter(|n| *n < MAX_SEQUENCE)
        .ok_or_else(|| {
            ValidationError::field(
                "sequence",
                format!("must be an unsigned integer below {MAX_SEQUENCE}"),
            )
        })
}

/// The identity under which an event is stored once per session: its `event_id`, or else a
/// hash of `(interaction_id, event_type, timestamp, data)`. `data` is hashed in its canonical
/// form (serde_json keeps object keys sorted), so key order in the request does not matter.
pub fn dedup_key(
    event_id: Option<&EventId>,
    interaction_id: Option<&InteractionId>,
    event_type: &EventType,
    occurred_at_us: i64,
    data: Option<&RawValue>,
) -> String {
    if let Some(id) = event_id {
        return format!("e:{}", id.as_str());
    }
    let mut hasher = Sha256::new();
    // Length-prefixed parts, so no two different tuples hash the same input.
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    match interaction_id {
        Some(id) => part(id.as_str().as_bytes()),
        None => part(b"\x00none"),
    }
    part(event_type.as_str().as_bytes());
    part(&occurred_at_us.to_le_bytes());
    match data.map(json::canonical) {
        Some(text) => part(text.as_bytes()),
        None => part(b"\x00none"),
    }
    let digest = hasher.finalize();
    let mut key = String::with_capacity(2 + 64);
    key.push_str("c:");
    for byte in digest {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The parser, given a document built with `json!`.
    fn parse_body(body: Value, max_batch: usize) -> Result<Vec<NewEvent>, BodyError> {
        super::parse_body(&serde_json::value::to_raw_value(&body).unwrap(), max_batch)
    }

    fn one(v: Value) -> Result<NewEvent, BodyError> {
        parse_body(v, 1000).map(|mut e| e.remove(0))
    }

    fn invalid(v: Value) -> ValidationError {
        match parse_body(v, 1000) {
            Err(BodyError::Invalid(e)) => e,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_minimal_and_a_full_event() {
        let e = one(json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z"})).unwrap();
        assert_eq!(e.event_type.as_str(), "x");
        assert!(e.data.is_none() && e.event_id.is_none() && e.sequence.is_none());
        let e = one(
            json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
            "data": {"a": 1}, "event_id": "id 1", "interaction_id": "i1", "sequence": 7,
            "unknown": true}),
        )
        .unwrap();
        assert_eq!(e.sequence, Some(7));
        assert_eq!(e.dedup_key, "e:id 1");
        assert_eq!(e.data_json(), r#"{"a":1}"#);
    }

    #[test]
    fn each_field_rule_names_its_field() {
        let ts = "2026-11-22T10:00:00Z";
        let cases = [
            (json!({"timestamp": ts}), "event_type"),
            (json!({"event_type": 5, "timestamp": ts}), "event_type"),
            (
                json!({"event_type": "bad type", "timestamp": ts}),
                "event_type",
            ),
            (json!({"event_type": "x"}), "timestamp"),
            (
                json!({"event_type": "x", "timestamp": "2026-11-22"}),
                "timestamp",
            ),
            (json!({"event_type": "x", "timestamp": 12}), "timestamp"),
            (
                json!({"event_type": "x", "timestamp": ts, "data": [1]}),
                "data",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "data": "s"}),
                "data",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "event_id": ""}),
                "event_id",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "event_id": 3}),
                "event_id",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "interaction_id": "a/b"}),
                "interaction_id",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "sequence": -1}),
                "sequence",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "sequence": 1.5}),
                "sequence",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "sequence": -2.0}),
                "sequence",
            ),
            (
                json!({"event_type": "x", "timestamp": ts, "sequence": "1"}),
                "sequence",
            ),
        ];
        for (body, field) in cases {
            let err = invalid(body.clone());
            assert_eq!(err.field.as_deref(), Some(field), "{body}");
            assert_eq!(err.index, Some(0), "{body}");
        }
    }

    #[test]
    fn integral_floats_are_integers() {
        let e =
            one(json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z", "sequence": 3.0}))
                .unwrap();
        assert_eq!(e.sequence, Some(3));
        assert_eq!(integral(&json!(7.0)), Some(7));
        assert_eq!(integral(&json!(7.5)), None);
    }

    #[test]
    fn a_batch_reports_the_first_bad_index() {
        let ok = json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z"});
        let bad = json!({"event_type": "x", "timestamp": "nope"});
        let err = invalid(json!({"events": [ok, ok, ok, bad, bad]}));
        assert_eq!(err.index, Some(3));
        assert_eq!(err.field.as_deref(), Some("timestamp"));
        assert_eq!(err.detail, "events[3].timestamp: not an RFC 3339 time");
        let err = invalid(json!({"events": [ok, 5]}));
        assert_eq!((err.index, err.field), (Some(1), None));
        // An event is an object, never an array of its members in order.
        let err = invalid(json!({"events": [ok, ["x", "2026-11-22T10:00:00Z"]]}));
        assert_eq!((err.index, err.field), (Some(1), None));
    }

    #[test]
    fn rejects_wrong_shapes_and_sizes() {
        assert!(matches!(
            parse_body(json!([1]), 10),
            Err(BodyError::Shape(_))
        ));
        assert!(matches!(
            parse_body(json!({"events": {}}), 10),
            Err(BodyError::Shape(_))
        ));
        assert!(matches!(
            parse_body(json!({"events": []}), 10),
            Err(BodyError::Invalid(_))
        ));
        let ok = json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z"});
        assert_eq!(
            parse_body(json!({"events": [ok, ok, ok]}), 2),
            Err(BodyError::TooMany { count: 3, max: 2 })
        );
    }

    #[test]
    fn content_key_ignores_key_order_and_unknown_fields_but_not_content() {
        let a = one(
            json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
            "data": {"a": 1, "b": 2}}),
        )
        .unwrap();
        let b = one(
            json!({"timestamp": "2026-11-22T11:00:00+01:00", "event_type": "x",
            "data": {"b": 2, "a": 1}, "other": 1}),
        )
        .unwrap();
        assert_eq!(a.dedup_key, b.dedup_key);
        assert!(a.dedup_key.starts_with("c:"));
        let c = one(
            json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
            "data": {"a": 1, "b": 3}}),
        )
        .unwrap();
        assert_ne!(a.dedup_key, c.dedup_key);
        let d = one(
            json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z",
            "data": {"a": 1, "b": 2}, "interaction_id": "i"}),
        )
        .unwrap();
        assert_ne!(a.dedup_key, d.dedup_key);
        let e = one(
            json!({"event_type": "y", "timestamp": "2026-11-22T10:00:00Z",
            "data": {"a": 1, "b": 2}}),
        )
        .unwrap();
        assert_ne!(a.dedup_key, e.dedup_key);
    }
}

/// Property tests: the parser is total (never panics, whatever the JSON) and its answers are
/// consistent with the rules.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The parser, given a document built with `json!`.
    fn parse_body(body: Value, max_batch: usize) -> Result<Vec<NewEvent>, BodyError> {
        super::parse_body(&serde_json::value::to_raw_value(&body).unwrap(), max_batch)
    }

    /// Any JSON value, nested a few levels, with awkward strings and numbers.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,80}".prop_map(Value::String),
            "[a-z_]{1,12}".prop_map(Value::String),
            Just(json!("2026-11-22T10:00:00Z")),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("event_type".to_owned()),
                        Just("timestamp".to_owned()),
                        Just("data".to_owned()),
                        Just("event_id".to_owned()),
                        Just("interaction_id".to_owned()),
                        Just("sequence".to_owned()),
                        Just("events".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_and_errors_point_inside_the_batch(body in any_json()) {
            let len = body.get("events").and_then(Value::as_array).map_or(1, Vec::len);
            match parse_body(body, 50) {
                Ok(events) => prop_assert!(!events.is_empty() && events.len() <= 50),
                Err(BodyError::Invalid(e)) => {
                    let index = e.index.unwrap_or(0);
                    prop_assert!(index < len.max(1), "index {index} of {len}");
                    prop_assert!(!e.detail.is_empty());
                }
                Err(BodyError::Shape(_)) | Err(BodyError::TooMany { .. }) => {}
            }
        }

        #[test]
        fn well_formed_events_are_accepted(
            event_type in "[A-Za-z0-9._:-]{1,64}",
            seconds in 0u32..86_400,
            event_id in proptest::option::of("[ -~]{1,128}"),
            interaction_id in proptest::option::of(
                "[A-Za-z0-9._:-]{1,128}".prop_filter("not . or ..", |id| id != "." && id != "..")
            ),
            sequence in proptest::option::of(0u64..(MAX_SEQUENCE as u64)),
            data in proptest::option::of(prop::collection::btree_map("[a-z]{1,5}", any::<i32>(), 0..5)),
        ) {
            let mut event = json!({
                "event_type": event_type,
                "timestamp": format!("2026-11-22T{:02}:{:02}:{:02}Z", seconds / 3600, seconds / 60 % 60, seconds % 60),
            });
            if let Some(id) = &event_id { event["event_id"] = json!(id); }
            if let Some(id) = &interaction_id { event["interaction_id"] = json!(id); }
            if let Some(s) = sequence { event["sequence"] = json!(s); }
            if let Some(d) = &data { event["data"] = json!(d); }
            let parsed = parse_body(event, 10);
            prop_assert!(parsed.is_ok(), "{parsed:?}");
            let parsed = parsed.unwrap().remove(0);
            prop_assert_eq!(parsed.sequence.map(|s| s as u64), sequence);
            match &event_id {
                Some(id) => prop_assert_eq!(parsed.dedup_key, format!("e:{id}")),
                None => prop_assert!(parsed.dedup_key.starts_with("c:") && parsed.dedup_key.len() == 66),
            }
        }

        #[test]
        fn session_ids_follow_exactly_the_rule(id in ".{0,140}") {
            let rule = !id.is_empty()
                && id.len() <= 128
                && id != "."
                && id != ".."
                && id.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
            prop_assert_eq!(crate::domain::ids::SessionId::parse(&id).is_ok(), rule);
        }

        #[test]
        fn the_content_key_ignores_data_key_order(
            pairs in prop::collection::vec(("[a-z]{1,6}", any::<i32>()), 1..8),
        ) {
            let forward: serde_json::Map<String, Value> =
                pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let backward: serde_json::Map<String, Value> =
                pairs.iter().rev().map(|(k, v)| (k.clone(), json!(v))).collect();
            let a = parse_body(json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z", "data": forward}), 1).unwrap();
            let b = parse_body(json!({"event_type": "x", "timestamp": "2026-11-22T10:00:00Z", "data": backward}), 1).unwrap();
            // Last write wins for repeated keys in both maps alike only when keys are unique.
            let unique = pairs.iter().map(|(k, _)| k).collect::<std::collections::HashSet<_>>().len() == pairs.len();
            if unique {
                prop_assert_eq!(&a[0].dedup_key, &b[0].dedup_key);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_pipeline(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(raw) = serde_json::from_slice::<&RawValue>(&bytes) {
                if json::check_body(raw).is_ok() {
                    let _ = super::parse_body(raw, 10);
                }
            }
        }
    }
}
