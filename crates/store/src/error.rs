//! The store's error type. It only classifies failures of the log (missing, locked, corrupt,
//! I/O, conflicting ids); it deliberately does not decide how a program reports them.

use std::path::PathBuf;

/// Everything that can go wrong when opening, reading or appending to the log.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// A reader asked for a store that does not exist; nothing was created.
    #[error("there is no store at {path}")]
    Missing { path: PathBuf },

    /// The path is not a store and accord will not make one there: a regular file, a
    /// directory that holds other things, or a path whose parent directory is missing.
    #[error("{detail}")]
    NotAStore { path: PathBuf, detail: String },

    /// Another process (or another open handle in this process) holds the store's lock, and
    /// kept it for as long as the opener was willing to wait. `holder` is what the holder
    /// said of itself (its pid and command), when it said something.
    #[error("the store {} is in use by another process{}{}", path.display(), fmt_holder(holder), fmt_waited(waited))]
    Locked {
        path: PathBuf,
        holder: Option<String>,
        waited: std::time::Duration,
    },

    /// Stored bytes that do not decode, a broken hash chain, a gap in the sequence, or an index
    /// that disagrees with the log. `seq` names the first bad record when it is known.
    #[error("the store is corrupt{}: {detail}", fmt_seq(.seq))]
    Corrupt { seq: Option<u64>, detail: String },

    /// The operating system refused a file operation.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// sled reported a failure that is neither plain I/O nor corruption (an unsupported
    /// configuration or an internal bug report); kept separate so its text is not lost.
    #[error("the storage engine failed on {path}: {detail}")]
    Backend { path: PathBuf, detail: String },

    /// The database gave up on the transaction to resolve a conflict with another one (a
    /// serialization failure or a deadlock): nothing of it was written, and the whole write,
    /// validation included, may simply be tried again.
    #[error(
        "the database {path} gave up on the write to resolve a conflict with another: {detail}"
    )]
    Conflict { path: PathBuf, detail: String },

    /// The id is already recorded (or appears earlier in the same batch) with a different body.
    #[error("event id {id:?} is already recorded at seq {seq} with a different body")]
    IdConflict { id: String, seq: u64 },

    /// The event cannot be encoded at all (its id is longer than the hash chain's u32 length
    /// field allows); nothing was written.
    #[error("event {index} of the batch cannot be stored: {detail}")]
    InvalidEvent { index: usize, detail: String },
}

fn fmt_holder(holder: &Option<String>) -> String {
    match holder {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

fn fmt_waited(waited: &std::time::Duration) -> String {
    if waited.is_zero() {
        return String::new();
    }
    let ms = waited.as_millis();
    if ms.is_multiple_of(1000) {
        format!("; gave up after waiting {} s", ms / 1000)
    } else {
        format!("; gave up after waiting {ms} ms")
    }
}

fn fmt_seq(seq: &Option<u64>) -> String {
    match seq {
        Some(seq) => format!(" at seq {seq}"),
        None => String::new(),
    }
}

impl StoreError {
    /// True when the store itself cannot be used (missing, locked, corrupt, I/O or engine
    /// failure), as opposed to a request the caller got wrong. The CLI maps this to exit code 4.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Missing { .. }
            | StoreError::NotAStore { .. }
            | StoreError::Locked { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Io { .. }
            | StoreError::Backend { .. }
            | StoreError::Conflict { .. } => true,
            StoreError::IdConflict { .. } | StoreError::InvalidEvent { .. } => false,
        }
    }

    pub(crate) fn corrupt(seq: Option<u64>, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            seq,
            detail: detail.into(),
        }
    }
}
