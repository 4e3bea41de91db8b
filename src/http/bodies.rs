//! The request bodies: one type per body, which is both what the OpenAPI document shows and
//! what the handler reads (through [`super::extract::Json`]). A member of the wrong JSON type
//! is refused as it is read, naming it; the rules beyond that are the domain's, applied in the
//! conversion of each body into what the actor is sent.

use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::actors::commands::{CreateInteraction, EnsureSession};
use crate::domain::event::EventsBody;
use crate::domain::ids::{EventType, InteractionId};
use crate::domain::interaction::{parse_timeout_ms, DecidedBy, Decision};
use crate::domain::json::{self, JsonText, ReadRefusal};
use crate::domain::ValidationError;

/// A body a handler reads: how it is read from the checked JSON, and what an empty body is.
pub trait RequestBody: Sized {
    /// The JSON an empty body stands for; `None` when a body must be sent.
    const WHEN_EMPTY: Option<&'static str> = Some("{}");

    fn read(body: &RawValue) -> Result<Self, ApiError>;
}

/// A body that is a JSON object of `T`'s members. (serde would also read a struct from an
/// array of its members in order; a body is an object.)
fn read_object<T: serde::de::DeserializeOwned>(body: &RawValue) -> Result<T, ApiError> {
    let not_an_object = || ApiError::BadRequest("the body must be a JSON object".into());
    if !json::is_object(body) {
        return Err(not_an_object());
    }
    json::read_as(body).map_err(|refusal| match refusal {
        ReadRefusal::Shape => not_an_object(),
        ReadRefusal::Invalid(e) => e.into(),
    })
}

macro_rules! object_bodies {
    ($($body:ty),*) => {
        $(impl RequestBody for $body {
            fn read(body: &RawValue) -> Result<Self, ApiError> {
                read_object(body)
            }
        })*
    };
}

object_bodies!(
    NewInteractionBody,
    NewCommandBody,
    ResultBody,
    ResolveBody,
    RejectBody
);

impl RequestBody for EventsBody {
    const WHEN_EMPTY: Option<&'static str> = None;

    fn read(body: &RawValue) -> Result<Self, ApiError> {
        Ok(EventsBody::read(body)?)
    }
}

/// A member that may hold any JSON, `null` when absent.
fn any_json(member: Option<Box<RawValue>>) -> JsonText {
    member.map_or_else(JsonText::null, |raw| JsonText::compact(&raw))
}

/// The client's interaction id, or a fresh UUID.
fn interaction_id(member: Option<String>) -> Result<InteractionId, ValidationError> {
    match member {
        Some(id) => InteractionId::parse(&id),
        None => InteractionId::parse(&uuid::Uuid::new_v4().to_string()),
    }
}

/// The timeout as sent, checked; `default_ms` when absent.
fn timeout_ms(member: Option<serde_json::Number>, default_ms: i64) -> Result<i64, ValidationError> {
    parse_timeout_ms(member.as_ref(), default_ms)
}

/// `PUT /v1/sessions/{id}`: optional; `null` is no body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PutSessionBody {
    /// Used only when the session is created.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

impl RequestBody for PutSessionBody {
    fn read(body: &RawValue) -> Result<Self, ApiError> {
        match body.get() {
            "null" => Ok(Self::default()),
            _ => read_object(body),
        }
    }
}

impl TryFrom<PutSessionBody> for EnsureSession {
    type Error = ValidationError;

    fn try_from(body: PutSessionBody) -> Result<Self, ValidationError> {
        let metadata = match body.metadata {
            Some(raw) if !json::is_object(&raw) => {
                return Err(ValidationError::field("metadata", "must be a JSON object"))
            }
            metadata => metadata.map(|raw| JsonText::compact(&raw)),
        };
        Ok(EnsureSession { metadata })
    }
}

/// `POST /v1/sessions/{id}/interactions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewInteractionBody {
    /// Server-made UUID when absent.
    #[schema(value_type = Option<InteractionId>)]
    pub interaction_id: Option<String>,
    #[schema(value_type = EventType)]
    pub kind: String,
    /// Any JSON.
    #[schema(value_type = Option<Value>)]
    pub payload: Option<Box<RawValue>>,
    /// 1 to 86400000; default ORCH_INTERACTION_TIMEOUT_MS.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 86_400_000)]
    pub timeout_ms: Option<serde_json::Number>,
}

impl NewInteractionBody {
    /// The interaction to create, its timeout `default_timeout_ms` when the body has none.
    pub fn into_command(self, default_timeout_ms: i64) -> Result<CreateInteraction, ApiError> {
        let id = interaction_id(self.interaction_id)?;
        let kind = EventType::parse(&self.kind)
            .map_err(|_| {
                ValidationError::field("kind", "must be 1-64 chars of A-Z a-z 0-9 . _ : -")
            })?
            .into_string();
        Ok(CreateInteraction {
            id,
            kind,
            payload: any_json(self.payload),
            timeout_ms: timeout_ms(self.timeout_ms, default_timeout_ms)?,
            queued: false,
        })
    }
}

/// `POST /v1/sessions/{id}/commands`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCommandBody {
    #[schema(value_type = Option<InteractionId>)]
    pub interaction_id: Option<String>,
    /// Any JSON: the command.
    #[schema(value_type = Value)]
    pub payload: Box<RawValue>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 86_400_000)]
    pub timeout_ms: Option<serde_json::Number>,
}

impl NewCommandBody {
    /// The command to queue, its timeout `default_timeout_ms` when the body has none.
    pub fn into_command(self, default_timeout_ms: i64) -> Result<CreateInteraction, ApiError> {
        Ok(CreateInteraction {
            id: interaction_id(self.interaction_id)?,
            kind: "command".into(),
            payload: JsonText::compact(&self.payload),
            timeout_ms: timeout_ms(self.timeout_ms, default_timeout_ms)?,
            queued: true,
        })
    }
}

/// `POST …/interactions/{iid}/result`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResultBody {
    /// `ok` or `error`.
    #[schema(pattern = "^(ok|error)$")]
    pub status: String,
    /// Any JSON.
    #[schema(value_type = Option<Value>)]
    pub output: Option<Box<RawValue>>,
}

impl TryFrom<ResultBody> for Decision {
    type Error = ValidationError;

    fn try_from(body: ResultBody) -> Result<Self, ValidationError> {
        let ok = match body.status.as_str() {
            "ok" => true,
            "error" => false,
            _ => {
                return Err(ValidationError::field(
                    "status",
                    "must be \"ok\" or \"error\"",
                ))
            }
        };
        Ok(Decision::Result {
            ok,
            output: any_json(body.output),
        })
    }
}

/// `POST …/interactions/{iid}/resolve`: approve.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResolveBody {
    /// Any JSON.
    #[schema(value_type = Option<Value>)]
    pub response: Option<Box<RawValue>>,
    /// Who decides, as the client says (a person's name or handle), shown with the decision.
    #[schema(value_type = Option<DecidedBy>)]
    pub decided_by: Option<String>,
}

impl TryFrom<ResolveBody> for Decision {
    type Error = ValidationError;

    fn try_from(body: ResolveBody) -> Result<Self, ValidationError> {
        Ok(Decision::Resolve {
            response: any_json(body.response),
            by: body.decided_by.map(DecidedBy::parse).transpose()?,
        })
    }
}

/// `POST …/interactions/{iid}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectBody {
    pub reason: Option<String>,
    /// Who decides, as the client says (a person's name or handle), shown with the decision.
    #[schema(value_type = Option<DecidedBy>)]
    pub decided_by: Option<String>,
}

impl TryFrom<RejectBody> for Decision {
    type Error = ValidationError;

    fn try_from(body: RejectBody) -> Result<Self, ValidationError> {
        Ok(Decision::Reject {
            reason: body.reason,
            by: body.decided_by.map(DecidedBy::parse).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: RequestBody>(text: &str) -> Result<T, ApiError> {
        T::read(&RawValue::from_string(text.to_owned()).unwrap())
    }

    fn field_of(error: ApiError) -> Option<String> {
        match error {
            ApiError::Validation(e) => e.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_body_is_an_object() {
        for text in ["[1]", r#"["k"]"#, r#""text""#, "3"] {
            assert!(
                matches!(
                    read::<NewInteractionBody>(text),
                    Err(ApiError::BadRequest(_))
                ),
                "{text}"
            );
        }
        assert!(matches!(
            read::<PutSessionBody>("[]"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn put_session_takes_null_or_an_object_of_metadata() {
        let none = EnsureSession::try_from(read::<PutSessionBody>("null").unwrap()).unwrap();
        assert!(none.metadata.is_none());
        let body = read::<PutSessionBody>(r#"{"metadata": {"a": 1}}"#).unwrap();
        let some = EnsureSession::try_from(body).unwrap();
        assert_eq!(some.metadata.unwrap().as_str(), r#"{"a":1}"#);
        let body = read::<PutSessionBody>(r#"{"metadata": [1]}"#).unwrap();
        let refused = EnsureSession::try_from(body).unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("metadata"));
    }

    #[test]
    fn an_interaction_names_the_member_that_breaks_a_rule() {
        let command = read::<NewInteractionBody>(r#"{"kind": "approval", "payload": null}"#)
            .unwrap()
            .into_command(5_000)
            .unwrap();
        assert_eq!(
            (command.kind.as_str(), command.timeout_ms),
            ("approval", 5_000)
        );
        assert!(!command.queued && command.payload.as_str() == "null");
        for (text, field) in [
            (r#"{}"#, "kind"),
            (r#"{"kind": 5}"#, "kind"),
            (r#"{"kind": "a b"}"#, "kind"),
            (
                r#"{"kind": "k", "interaction_id": "a b"}"#,
                "interaction_id",
            ),
            (r#"{"kind": "k", "timeout_ms": 0}"#, "timeout_ms"),
            (r#"{"kind": "k", "timeout_ms": "5"}"#, "timeout_ms"),
        ] {
            let error = read::<NewInteractionBody>(text).and_then(|body| body.into_command(5_000));
            assert_eq!(
                field_of(error.unwrap_err()).as_deref(),
                Some(field),
                "{text}"
            );
        }
    }

    #[test]
    fn a_command_needs_a_payload_and_null_is_one() {
        let queued = read::<NewCommandBody>(r#"{"payload": null, "timeout_ms": 2.0}"#)
            .unwrap()
            .into_command(5_000)
            .unwrap();
        assert!(queued.queued && queued.timeout_ms == 2);
        let missing = read::<NewCommandBody>("{}").unwrap_err();
        assert_eq!(field_of(missing).as_deref(), Some("payload"));
    }

    #[test]
    fn decisions_keep_their_rules() {
        let ok = Decision::try_from(read::<ResultBody>(r#"{"status": "ok"}"#).unwrap());
        assert!(matches!(ok, Ok(Decision::Result { ok: true, .. })));
        let maybe = read::<ResultBody>(r#"{"status": "maybe"}"#).unwrap();
        assert_eq!(
            Decision::try_from(maybe).unwrap_err().field.as_deref(),
            Some("status")
        );
        let by = read::<ResolveBody>(r#"{"decided_by": "  Ana "}"#).unwrap();
        match Decision::try_from(by).unwrap() {
            Decision::Resolve { by: Some(by), .. } => assert_eq!(by.as_str(), "Ana"),
            other => panic!("{other:?}"),
        }
        let blank = read::<RejectBody>(r#"{"decided_by": " "}"#).unwrap();
        assert_eq!(
            Decision::try_from(blank).unwrap_err().field.as_deref(),
            Some("decided_by")
        );
        let reason = read::<RejectBody>(r#"{"reason": 5}"#).unwrap_err();
        assert_eq!(field_of(reason).as_deref(), Some("reason"));
    }
}
