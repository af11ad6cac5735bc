//! The engine's one error type. It classifies what went wrong; how it is shown (an exit code,
//! an HTTP status) is the caller's business.

use std::fmt;

/// Why an engine call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was refused: a file that does not parse, an event that breaks a rule, an id
    /// recorded with other content, a party no event registers. Nothing was written.
    #[error("{0}")]
    Refused(Refusal),
    /// The store cannot be used: missing, locked by another process, unreachable, damaged in a
    /// way found while reading, or failing to write.
    #[error("{message}")]
    Unavailable {
        reason: Unavailable,
        message: String,
    },
    /// `verify` found the log or what is derived from it damaged, or not holding an expected
    /// prefix.
    #[error("{message}")]
    Integrity { seq: Option<u64>, message: String },
    /// An argument the caller passed is not valid (a date, a known-at time, a `SEQ:HASH`).
    #[error("{0}")]
    BadArgument(String),
    /// An append's `expect_head` is no longer the head; nothing was written.
    #[error("the head is {actual}, not the expected {expected}: nothing was written")]
    HeadMoved { expected: String, actual: String },
    /// Writing a streamed answer (an export) to the caller's writer failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

/// Why a store is unavailable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// There is no store there.
    Missing,
    /// Another process holds it.
    Locked,
    /// The database gave up on a write to resolve a conflict with another (nothing of it
    /// was written); trying the whole write again may well succeed.
    Conflict,
    /// Anything else: damage found while reading, an I/O failure.
    Failed,
}

/// A refused input, with what a caller needs to point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// A stable snake_case name: the broken rule (`insufficient_units`, `id_conflict`, ...),
    /// `parse_error` for a line that is not a valid event, `unknown_party`, `unreadable_input`.
    pub code: &'static str,
    /// The event refused, when there is one.
    pub event: Option<String>,
    /// Its line in the file, when the input was a file.
    pub line: Option<usize>,
    /// The one-line message, naming the file, the line, the event and the rule.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> Error {
        Error::Refused(Refusal {
            code,
            event: None,
            line: None,
            message: message.into(),
        })
    }

    /// A refused batch of the file `name`.
    pub(crate) fn batch(name: &str, e: &domain::BatchRejection) -> Error {
        Error::Refused(Refusal {
            code: e.rejection.rule(),
            event: Some(e.rejection.event().to_string()),
            line: e.line,
            message: format!("{name}: {e}"),
        })
    }

    pub(crate) fn failed(message: impl Into<String>) -> Error {
        Error::Unavailable {
            reason: Unavailable::Failed,
            message: message.into(),
        }
    }

    /// The store is damaged in a way a read found: `verify` says more.
    pub(crate) fn corrupt(what: &str) -> Error {
        Error::failed(format!(
            "the store is corrupt: its {what} does not decode (run `accord verify`)"
        ))
    }

    /// A stored event does not decode.
    pub(crate) fn corrupt_at(seq: u64, m: &str) -> Error {
        Error::failed(format!(
            "the store is corrupt: seq {seq} does not decode: {m}"
        ))
    }

    /// Replaying a stored event breaks a rule: it was validated when appended, so the store is
    /// damaged.
    pub(crate) fn replay(e: &domain::FoldError) -> Error {
        Error::failed(format!(
            "the store is corrupt: replaying seq {} breaks a rule: {}",
            e.seq, e.rejection
        ))
    }
}

impl From<store::StoreError> for Error {
    fn from(e: store::StoreError) -> Error {
        use store::StoreError as S;
        match e {
            S::IdConflict { .. } => Error::Refused(Refusal {
                code: "id_conflict",
                event: match &e {
                    S::IdConflict { id, .. } => Some(id.clone()),
                    _ => None,
                },
                line: None,
                message: e.to_string(),
            }),
            S::Missing { .. } => Error::Unavailable {
                reason: Unavailable::Missing,
                message: e.to_string(),
            },
            S::Locked { .. } => Error::Unavailable {
                reason: Unavailable::Locked,
                message: e.to_string(),
            },
            S::Conflict { .. } => Error::Unavailable {
                reason: Unavailable::Conflict,
                message: e.to_string(),
            },
            other => Error::failed(other.to_string()),
        }
    }
}
