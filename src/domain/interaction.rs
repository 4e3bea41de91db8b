//! The interaction state machine (contract §6): one unit of work in a session, a command the
//! client runs or a question a person answers. Completion happens once, by the first of a
//! decision, a `session_end` event naming it, its deadline, or a cancel; the result slot is
//! written once. These rules are pure and exhaustively unit-tested; the session actor applies
//! them one at a time, so they hold under any interleaving of callers.

use serde_json::Value;

use super::ids::InteractionId;
use super::json::JsonText;
use super::ValidationError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InteractionStatus {
    /// A command waiting to be handed out; its deadline has not started.
    Queued,
    Pending,
    Completed,
    TimedOut,
    Cancelled,
}

impl InteractionStatus {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "queued" => Self::Queued,
            "pending" => Self::Pending,
            "completed" => Self::Completed,
            "timed_out" => Self::TimedOut,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// Still waiting for something to happen.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Pending)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    Approved,
    Rejected,
    Ended,
}

impl Outcome {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "ok" => Self::Ok,
            "error" => Self::Error,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "ended" => Self::Ended,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Ended => "ended",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletedBy {
    Result,
    Event,
    Timeout,
    Cancel,
}

impl CompletedBy {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "result" => Self::Result,
            "event" => Self::Event,
            "timeout" => Self::Timeout,
            "cancel" => Self::Cancel,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Result => "result",
            Self::Event => "event",
            Self::Timeout => "timeout",
            Self::Cancel => "cancel",
        }
    }
}

/// A result or a person's decision: what fills the result slot.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// `POST …/result {"status": "ok"|"error", "output": any}`
    Result { ok: bool, output: JsonText },
    /// `POST …/resolve {"response": any, "decided_by": string}`
    Resolve {
        response: JsonText,
        by: Option<DecidedBy>,
    },
    /// `POST …/reject {"reason": string, "decided_by": string}`
    Reject {
        reason: Option<String>,
        by: Option<DecidedBy>,
    },
}

/// Who decided an approval, as the deciding client says (a person's name or handle; the
/// service cannot check it): 1 to 128 characters without control characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecidedBy(String);

impl DecidedBy {
    pub const MAX_CHARS: usize = 128;
    /// The rule as a pattern, for the API document: not all white space, no control
    /// characters (the length is [`Self::MAX_CHARS`]).
    pub const PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

    pub fn parse(text: String) -> Result<Self, ValidationError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::field(
                "decided_by",
                format!("must be 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValidationError::field(
                "decided_by",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Decision {
    fn by(&self) -> Option<DecidedBy> {
        match self {
            Self::Resolve { by, .. } | Self::Reject { by, .. } => by.clone(),
            Self::Result { .. } => None,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            Self::Result { ok: true, .. } => Outcome::Ok,
            Self::Result { ok: false, .. } => Outcome::Error,
            Self::Resolve { .. } => Outcome::Approved,
            Self::Reject { .. } => Outcome::Rejected,
        }
    }

    fn result(self) -> JsonText {
        match self {
            Self::Result { output, .. } => output,
            Self::Resolve { response, .. } => response,
            Self::Reject { reason, .. } => {
                JsonText::from_value(&reason.map(Value::String).unwrap_or(Value::Null))
            }
        }
    }
}

/// The largest `timeout_ms` an interaction may ask for: one day.
pub const MAX_TIMEOUT_MS: i64 = 24 * 60 * 60 * 1000;

/// Checks a requested `timeout_ms`.
pub fn parse_timeout_ms(
    value: Option<&serde_json::Number>,
    default_ms: i64,
) -> Result<i64, ValidationError> {
    match value {
        None => Ok(default_ms),
        Some(n) => match super::event::integral(&Value::Number(n.clone())) {
            Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Ok(ms),
            _ => Err(ValidationError::field(
                "timeout_ms",
                format!("must be an integer from 1 to {MAX_TIMEOUT_MS}"),
            )),
        },
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Interaction {
    pub id: InteractionId,
    pub kind: String,
    /// Set at creation, never changed.
    pub payload: JsonText,
    pub status: InteractionStatus,
    pub outcome: Option<Outcome>,
    /// The result slot; written once.
    pub result: Option<JsonText>,
    pub completed_by: Option<CompletedBy>,
    /// Who decided an approval, when the decision said.
    pub decided_by: Option<DecidedBy>,
    /// Creation order within the session; commands are handed out in this order.
    pub position: i64,
    pub created_at: i64,
    pub timeout_ms: i64,
    /// When it times out; `None` while queued.
    pub deadline: Option<i64>,
    pub completed_at: Option<i64>,
    pub event_count: i64,
}

impl Interaction {
    /// Tests elsewhere: an interaction of `kind` at `position` in `status`, with an empty
    /// payload and nothing else set.
    #[cfg(test)]
    pub(crate) fn for_test(id: &str, kind: &str, position: i64, status: InteractionStatus) -> Self {
        Self {
            id: InteractionId::parse(id).expect("a valid id"),
            kind: kind.into(),
            payload: JsonText::empty_object(),
            status,
            outcome: None,
            result: None,
            completed_by: None,
            decided_by: None,
            position,
            created_at: 0,
            timeout_ms: 1000,
            deadline: None,
            completed_at: None,
            event_count: 0,
        }
    }
}

/// Why a decision or cancel was refused (HTTP 409).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Completed already, by something that the request contradicts.
    AlreadyCompleted(String),
    /// A queued command has not been handed out; nobody can have answered it yet.
    NotStarted(String),
}

impl Interaction {
    pub fn is_command(&self) -> bool {
        self.kind == "command"
    }

    /// A queued command is handed out: its deadline starts now.
    pub fn start(&mut self, now: i64) {
        if self.status == InteractionStatus::Queued {
            self.status = InteractionStatus::Pending;
            self.deadline = Some(now + self.timeout_ms);
        }
    }

    /// Applies a result or decision. `Ok(true)` when this completed the interaction now,
    /// `Ok(false)` when it was accepted without completing it (idempotent repeat, or the result
    /// of an interaction that an event completed first).
    pub fn decide(&mut self, decision: Decision, now: i64) -> Result<bool, Refusal> {
        let id = self.id.as_str().to_owned();
        match self.status {
            InteractionStatus::Queued => Err(Refusal::NotStarted(format!(
                "command {id} is queued: it has not been handed out, so it cannot have a result yet"
            ))),
            InteractionStatus::Pending => {
                self.outcome = Some(decision.outcome());
                self.decided_by = decision.by();
                self.result = Some(decision.result());
                self.complete(InteractionStatus::Completed, CompletedBy::Result, now);
                Ok(true)
            }
            InteractionStatus::Completed => {
                let outcome = decision.outcome();
                let by = decision.by();
                let result = decision.result();
                if self.completed_by == Some(CompletedBy::Event) && self.result.is_none() {
                    // The session_end got here first; the result slot is still free.
                    self.outcome = Some(outcome);
                    self.decided_by = by;
                    self.result = Some(result);
                    Ok(false)
                } else if self.outcome == Some(outcome)
                    && self
                        .result
                        .as_ref()
                        .is_some_and(|kept| kept.same_document(&result))
                {
                    Ok(false)
                } else {
                    Err(Refusal::AlreadyCompleted(format!(
                        "interaction {id} already completed with another result"
                    )))
                }
            }
            InteractionStatus::TimedOut | InteractionStatus::Cancelled => {
                Err(Refusal::AlreadyCompleted(format!(
                    "interaction {id} is {}: it takes no result",
                    self.status.as_str()
                )))
            }
        }
    }

    /// A `session_end` event naming the interaction: completes it if it is still open.
    pub fn end_by_event(&mut self, now: i64) -> bool {
        if !self.status.is_open() {
            return false;
        }
        self.outcome = Some(Outcome::Ended);
        self.complete(InteractionStatus::Completed, CompletedBy::Event, now);
        true
    }

    /// The deadline fired: times out if still pending and the deadline has passed.
    pub fn time_out(&mut self, now: i64) -> bool {
        let due = self.deadline.is_some_and(|d| d <= now);
        if self.status != InteractionStatus::Pending || !due {
            return false;
        }
        self.complete(InteractionStatus::TimedOut, CompletedBy::Timeout, now);
        true
    }

    /// Cancels; a repeated cancel is an idempotent `Ok(false)`.
    pub fn cancel(&mut self, now: i64) -> Result<bool, Refusal> {
        match self.status {
            InteractionStatus::Queued | InteractionStatus::Pending => {
                self.complete(InteractionStatus::Cancelled, CompletedBy::Cancel, now);
                Ok(true)
            }
            InteractionStatus::Cancelled => Ok(false),
            InteractionStatus::Completed | InteractionStatus::TimedOut => {
                Err(Refusal::AlreadyCompleted(format!(
                    "interaction {} is already {}",
                    self.id,
                    self.status.as_str()
                )))
            }
        }
    }

    fn complete(&mut self, status: InteractionStatus, by: CompletedBy, now: i64) {
        self.status = status;
        self.completed_by = Some(by);
        self.completed_at = Some(now);
    }
}

/// Which queued commands a `commands/next` caller takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommandFilter {
    /// Every command: an executor.
    #[default]
    Any,
    /// Only commands whose payload has a non-empty string `prompt`: an agent's hook that
    /// delivers the next instruction a person sent (Claude Code's Stop hook).
    Prompts,
}

impl CommandFilter {
    pub fn takes(self, command: &Interaction) -> bool {
        match self {
            CommandFilter::Any => true,
            CommandFilter::Prompts => command
                .payload
                .member_str("prompt")
                .is_some_and(|prompt| !prompt.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: Value) -> Option<JsonText> {
        Some(JsonText::from_value(&value))
    }

    fn pending() -> Interaction {
        Interaction {
            id: InteractionId::parse("i1").unwrap(),
            kind: "approval".into(),
            payload: JsonText::empty_object(),
            status: InteractionStatus::Pending,
            outcome: None,
            result: None,
            completed_by: None,
            decided_by: None,
            position: 1,
            created_at: 0,
            timeout_ms: 1000,
            deadline: Some(1000),
            completed_at: None,
            event_count: 0,
        }
    }

    fn ok(output: Value) -> Decision {
        Decision::Result {
            ok: true,
            output: JsonText::from_value(&output),
        }
    }

    /// The store finds open interactions by `completed_at IS NULL` (the partial
    /// `interactions_open` index), so every way out of the open states must set it, and
    /// nothing that keeps an interaction open may.
    #[test]
    fn an_interaction_has_a_completion_time_exactly_when_it_is_no_longer_open() {
        let queued = || Interaction {
            status: InteractionStatus::Queued,
            deadline: None,
            ..pending()
        };
        let mut started = queued();
        started.start(3);
        let mut transitions: Vec<(&str, Interaction)> = vec![("queued", queued())];
        transitions.push(("started", started));
        let mut decided = pending();
        decided.decide(ok(json!(1)), 5).unwrap();
        transitions.push(("decided", decided));
        let mut ended = pending();
        ended.end_by_event(5);
        transitions.push(("ended by event", ended));
        let mut timed_out = pending();
        timed_out.time_out(5_000);
        transitions.push(("timed out", timed_out));
        let mut cancelled = pending();
        cancelled.cancel(5).unwrap();
        transitions.push(("cancelled", cancelled));
        let mut cancelled_queued = queued();
        cancelled_queued.cancel(5).unwrap();
        transitions.push(("cancelled while queued", cancelled_queued));
        let mut refused = queued();
        assert!(refused.decide(ok(json!(1)), 5).is_err());
        transitions.push(("queued, decision refused", refused));
        for (what, i) in transitions {
            assert_eq!(
                i.completed_at.is_none(),
                i.status.is_open(),
                "{what}: status {:?}, completed_at {:?}",
                i.status,
                i.completed_at
            );
        }
    }

    #[test]
    fn a_decision_completes_a_pending_interaction_once() {
        let mut i = pending();
        assert_eq!(i.decide(ok(json!(1)), 5), Ok(true));
        assert_eq!(i.status, InteractionStatus::Completed);
        assert_eq!(i.outcome, Some(Outcome::Ok));
        assert_eq!(i.completed_by, Some(CompletedBy::Result));
        assert_eq!(i.completed_at, Some(5));
        // The same result again is idempotent; another one is refused.
        assert_eq!(i.decide(ok(json!(1)), 6), Ok(false));
        assert!(matches!(
            i.decide(ok(json!(2)), 6),
            Err(Refusal::AlreadyCompleted(_))
        ));
        assert!(matches!(
            i.decide(
                Decision::Reject {
                    reason: None,
                    by: None
                },
                6
            ),
            Err(Refusal::AlreadyCompleted(_))
        ));
        assert!(!i.end_by_event(7));
        assert!(!i.time_out(2000));
        assert!(matches!(i.cancel(8), Err(Refusal::AlreadyCompleted(_))));
        assert_eq!(i.completed_at, Some(5));
    }

    #[test]
    fn a_result_after_the_event_fills_the_slot_without_completing_again() {
        let mut i = pending();
        assert!(i.end_by_event(3));
        assert_eq!(
            (i.outcome, i.completed_by),
            (Some(Outcome::Ended), Some(CompletedBy::Event))
        );
        assert_eq!(
            i.decide(
                Decision::Result {
                    ok: false,
                    output: JsonText::from_value(&json!("boom"))
                },
                4
            ),
            Ok(false)
        );
        assert_eq!(i.outcome, Some(Outcome::Error));
        assert_eq!(i.completed_by, Some(CompletedBy::Event));
        assert_eq!(i.result, text(json!("boom")));
        assert_eq!(i.completed_at, Some(3));
        // Written once: the same again is fine, another is refused.
        assert_eq!(
            i.decide(
                Decision::Result {
                    ok: false,
                    output: JsonText::from_value(&json!("boom"))
                },
                5
            ),
            Ok(false)
        );
        assert!(i.decide(ok(json!("other")), 5).is_err());
        assert!(!i.end_by_event(6));
    }

    #[test]
    fn decisions_map_to_outcomes_and_keep_who_decided_first() {
        let by = |name: &str| Some(DecidedBy::parse(name.into()).unwrap());
        let approve = |name: &str| Decision::Resolve {
            response: JsonText::from_value(&json!({"allow": true})),
            by: by(name),
        };
        let mut a = pending();
        a.decide(approve("Ana"), 1).unwrap();
        assert_eq!(
            (a.outcome, a.result.clone(), a.decided_by.clone()),
            (
                Some(Outcome::Approved),
                text(json!({"allow": true})),
                by("Ana")
            )
        );
        // The same decision from another tab is accepted again; the first decider stays.
        assert_eq!(a.decide(approve("Bo"), 2), Ok(false));
        assert_eq!(a.decided_by, by("Ana"));
        let mut r = pending();
        r.decide(
            Decision::Reject {
                reason: Some("no".into()),
                by: None,
            },
            1,
        )
        .unwrap();
        assert_eq!(
            (r.outcome, r.result, r.decided_by),
            (Some(Outcome::Rejected), text(json!("no")), None)
        );
    }

    #[test]
    fn who_decided_is_a_short_printable_name() {
        assert_eq!(DecidedBy::parse("  Ana  ".into()).unwrap().as_str(), "Ana");
        assert!(
            DecidedBy::parse("é".repeat(128)).is_ok(),
            "characters, not bytes"
        );
        for bad in ["", "   ", "a\nb", "\u{7}bell", &"x".repeat(129)] {
            assert!(DecidedBy::parse(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeout_fires_only_when_due_and_pending() {
        let mut i = pending();
        assert!(!i.time_out(999));
        assert!(i.time_out(1000));
        assert_eq!(i.status, InteractionStatus::TimedOut);
        assert_eq!(i.completed_by, Some(CompletedBy::Timeout));
        assert!(!i.time_out(1001));
        assert!(matches!(
            i.decide(ok(json!(1)), 1002),
            Err(Refusal::AlreadyCompleted(_))
        ));
        assert!(matches!(i.cancel(1002), Err(Refusal::AlreadyCompleted(_))));
    }

    #[test]
    fn cancel_is_idempotent_and_final() {
        let mut i = pending();
        assert_eq!(i.cancel(1), Ok(true));
        assert_eq!(i.cancel(2), Ok(false));
        assert_eq!(i.completed_at, Some(1));
        assert!(i.decide(ok(json!(1)), 3).is_err());
        assert!(!i.end_by_event(3));
        assert!(!i.time_out(5000));
    }

    #[test]
    fn queued_commands_take_no_decision_until_started() {
        let mut c = pending();
        c.kind = "command".into();
        c.status = InteractionStatus::Queued;
        c.deadline = None;
        assert!(!c.time_out(i64::MAX));
        assert!(matches!(
            c.decide(ok(json!(1)), 1),
            Err(Refusal::NotStarted(_))
        ));
        c.start(100);
        assert_eq!(
            (c.status, c.deadline),
            (InteractionStatus::Pending, Some(1100))
        );
        assert_eq!(c.decide(ok(json!(1)), 200), Ok(true));
        let mut q = pending();
        q.status = InteractionStatus::Queued;
        assert!(
            q.end_by_event(1),
            "a session_end naming a queued command completes it"
        );
    }

    #[test]
    fn timeouts_are_validated() {
        assert_eq!(parse_timeout_ms(None, 30_000), Ok(30_000));
        let number = |v: Value| match v {
            Value::Number(n) => n,
            other => panic!("{other} is not a number"),
        };
        assert_eq!(parse_timeout_ms(Some(&number(json!(5))), 30_000), Ok(5));
        assert_eq!(parse_timeout_ms(Some(&number(json!(5.0))), 30_000), Ok(5));
        for bad in [json!(0), json!(-1), json!(1.5), json!(MAX_TIMEOUT_MS + 1)] {
            assert!(
                parse_timeout_ms(Some(&number(bad.clone())), 1).is_err(),
                "{bad}"
            );
        }
    }
}
