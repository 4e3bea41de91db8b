//! Text search over events: which words of an event are searchable, and how what a person
//! types becomes a query. Only what people look for is indexed — the tool, its command, file
//! path, pattern or URL, the prompt, messages, the agent's reply and errors — never outputs or
//! file contents. Both backends index the same words: the text is cut into lowercase runs of
//! letters and digits here, so SQLite's FTS5 and PostgreSQL's `simple` configuration see the
//! same tokens, and a query matches the same events on either.

use super::event::NewEvent;
use super::json::{self, Fields};
use super::ValidationError;

/// The most words text an event contributes, in bytes: a long reply is searched by its start.
pub const MAX_WORDS_BYTES: usize = 2048;
/// The longest search text accepted, in bytes, and the most terms in it.
pub const MAX_QUERY_BYTES: usize = 256;
const MAX_QUERY_TERMS: usize = 16;
/// The longest tool name kept for the tool filter, in bytes.
const MAX_TOOL_BYTES: usize = 64;

/// Members of an event's `data` whose text is searched, in this order.
const DATA_FIELDS: &[&str] = &[
    "tool_name",
    "prompt",
    "message",
    "title",
    "reason",
    "error",
    "agent_type",
    "last_assistant_message",
    "command",
    "text",
];
/// Members of `data.tool_input` whose text is searched.
const TOOL_INPUT_FIELDS: &[&str] = &[
    "command",
    "description",
    "file_path",
    "notebook_path",
    "path",
    "pattern",
    "glob",
    "url",
    "query",
    "prompt",
    "subagent_type",
];

/// What an event gives the search index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventWords {
    /// The tool it is about (`data.tool_name`), for the tool filter.
    pub tool: Option<String>,
    /// Its searchable text as space-separated lowercase words, at most [`MAX_WORDS_BYTES`].
    pub words: String,
}

impl EventWords {
    pub fn of(event: &NewEvent) -> Self {
        let mut found = Self::default();
        let Some(mut data) = event.data.as_ref().and_then(|d| d.fields()) else {
            return found;
        };
        let tool_input = data.take("tool_input");
        for name in DATA_FIELDS {
            let Some(text) = data.take(name).and_then(json::string) else {
                continue;
            };
            if *name == "tool_name" && text.len() <= MAX_TOOL_BYTES && !text.trim().is_empty() {
                found.tool = Some(text.clone());
            }
            found.add(&text);
        }
        if let Some(mut input) = tool_input.and_then(Fields::of) {
            for name in TOOL_INPUT_FIELDS {
                if let Some(text) = input.take(name).and_then(json::string) {
                    found.add(&text);
                }
            }
        }
        found
    }

    /// Appends the words of `text`, within the byte bound.
    fn add(&mut self, text: &str) {
        for word in words(text) {
            let room = MAX_WORDS_BYTES.saturating_sub(self.words.len() + 1);
            if word.len() > room {
                return;
            }
            if !self.words.is_empty() {
                self.words.push(' ');
            }
            self.words.push_str(&word);
        }
    }
}

/// The lowercase runs of letters and digits in `text`.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// A person's search text as terms that must all match. A term is what they typed between
/// spaces, as a phrase of its words: `src/main.rs` finds `src main rs` in that order. The last
/// word of the last term matches as a prefix, so results follow typing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Vec<String>>,
}

impl SearchQuery {
    /// `None` when the text has no words (nothing to search for).
    pub fn parse(text: &str) -> Result<Option<Self>, ValidationError> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(ValidationError::field(
                "q",
                format!("at most {MAX_QUERY_BYTES} bytes"),
            ));
        }
        let terms: Vec<Vec<String>> = text
            .split_whitespace()
            .map(|term| words(term).collect::<Vec<_>>())
            .filter(|term| !term.is_empty())
            .collect();
        if terms.len() > MAX_QUERY_TERMS {
            return Err(ValidationError::field(
                "q",
                format!("at most {MAX_QUERY_TERMS} words"),
            ));
        }
        Ok((!terms.is_empty()).then_some(Self { terms }))
    }

    /// The query in SQLite FTS5's syntax: each term a quoted phrase (the words are letters and
    /// digits only, so nothing needs escaping), the last one a prefix.
    pub fn fts5(&self) -> String {
        let mut out = String::new();
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                out.push_str(" AND ");
            }
            out.push('"');
            out.push_str(&term.join(" "));
            out.push('"');
            if i + 1 == self.terms.len() {
                out.push('*');
            }
        }
        out
    }

    /// The query as a PostgreSQL `tsquery` text: words of a term joined by `<->` (followed
    /// by), terms by `&`, the last word a prefix (`:*`).
    pub fn tsquery(&self) -> String {
        let mut out = String::new();
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                out.push_str(" & ");
            }
            out.push('(');
            out.push_str(&term.join(" <-> "));
            if i + 1 == self.terms.len() {
                out.push_str(":*");
            }
            out.push(')');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: serde_json::Value) -> NewEvent {
        let body = json!({"event_type": "PreToolUse", "timestamp": "2026-12-05T10:00:00Z",
            "data": data});
        let text = body.to_string();
        let raw: &serde_json::value::RawValue = serde_json::from_str(&text).unwrap();
        crate::domain::event::parse_body(raw, 1).unwrap().remove(0)
    }

    #[test]
    fn a_tool_use_is_searched_by_its_tool_command_and_path_not_its_output() {
        let words = EventWords::of(&event(json!({
            "tool_name": "Bash",
            "tool_input": {"command": "cargo test --workspace", "description": "Run the tests"},
            "tool_response": {"stdout": "secret output"},
            "cwd": "/home/dev/acme",
        })));
        assert_eq!(words.tool.as_deref(), Some("Bash"));
        assert_eq!(words.words, "bash cargo test workspace run the tests");
        let edit = EventWords::of(&event(json!({
            "tool_name": "Edit",
            "tool_input": {"file_path": "/src/Main.rs", "old_string": "a", "new_string": "b"},
        })));
        assert_eq!(edit.words, "edit src main rs");
    }

    #[test]
    fn prompts_replies_and_messages_are_searched() {
        let prompt = EventWords::of(&event(json!({"prompt": "Fix the flaky Test, please"})));
        assert_eq!(prompt.words, "fix the flaky test please");
        assert_eq!(prompt.tool, None);
        let reply = EventWords::of(&event(json!({"last_assistant_message": "Déjà fait."})));
        assert_eq!(reply.words, "déjà fait");
        assert_eq!(
            EventWords::of(&event(json!({"n": 1}))),
            EventWords::default()
        );
    }

    #[test]
    fn the_words_are_bounded_and_whole() {
        let long = "word ".repeat(1000);
        let words = EventWords::of(&event(json!({"prompt": long})));
        assert!(words.words.len() <= MAX_WORDS_BYTES);
        assert!(words.words.split(' ').all(|w| w == "word"));
        let odd_tool = EventWords::of(&event(json!({"tool_name": "x".repeat(65)})));
        assert_eq!(odd_tool.tool, None, "not a tool name worth filtering by");
    }

    #[test]
    fn search_text_becomes_phrases_with_a_prefix_last() {
        let q = SearchQuery::parse("  src/main.rs  Cargo te")
            .unwrap()
            .unwrap();
        assert_eq!(q.fts5(), r#""src main rs" AND "cargo" AND "te"*"#);
        assert_eq!(q.tsquery(), "(src <-> main <-> rs) & (cargo) & (te:*)");
        assert_eq!(SearchQuery::parse(" \"*' ").unwrap(), None, "no words");
        assert_eq!(
            SearchQuery::parse("a\"b OR c").unwrap().unwrap().fts5(),
            r#""a b" AND "or" AND "c"*"#,
            "operators and quotes are words or nothing"
        );
        assert!(SearchQuery::parse(&"x".repeat(257)).is_err());
        assert!(SearchQuery::parse(&"x ".repeat(17)).is_err());
    }
}
