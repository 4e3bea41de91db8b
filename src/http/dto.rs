//! An interaction as every answer shows it: the interaction routes, the Claude Code hook
//! route and the problem JSON of a conflict (which carries the interaction as it stands).

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::interaction::Interaction;
use crate::domain::json::JsonText;
use crate::domain::time::format_millis;

/// An interaction as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InteractionDto {
    interaction_id: String,
    session_id: String,
    /// `command` for commands; any kind for approvals and questions.
    kind: String,
    /// Any JSON, as given.
    #[schema(value_type = Value)]
    payload: JsonText,
    /// `queued`, `pending`, `completed`, `timed_out` or `cancelled`.
    status: &'static str,
    /// `ok`, `error`, `approved`, `rejected` or `ended`.
    outcome: Option<&'static str>,
    /// The result slot, written once: any JSON.
    #[schema(value_type = Option<Value>)]
    result: Option<JsonText>,
    /// `result`, `event`, `timeout` or `cancel`.
    completed_by: Option<&'static str>,
    /// Who approved or rejected it, as the deciding client said.
    decided_by: Option<String>,
    created_at: String,
    deadline: Option<String>,
    completed_at: Option<String>,
    event_count: i64,
}

impl InteractionDto {
    pub fn new(session_id: &str, i: &Interaction) -> Self {
        Self {
            interaction_id: i.id.to_string(),
            session_id: session_id.to_owned(),
            kind: i.kind.clone(),
            payload: i.payload.clone(),
            status: i.status.as_str(),
            outcome: i.outcome.map(|o| o.as_str()),
            result: i.result.clone(),
            completed_by: i.completed_by.map(|c| c.as_str()),
            decided_by: i.decided_by.as_ref().map(|d| d.as_str().to_owned()),
            created_at: format_millis(i.created_at),
            deadline: i.deadline.map(format_millis),
            completed_at: i.completed_at.map(format_millis),
            event_count: i.event_count,
        }
    }
}
