//! accord's application as a library: open a store, append batches (validated against only
//! what they touch), answer every report as of a date and as known at a time, what-if, diff,
//! timeline data, verify, export and copy.
//!
//! The engine never prints, never reads argv, a terminal, the clock or the environment: the
//! time comes from the [`Config`]'s clock and the caller's arguments, tuning knobs from the
//! `Config`. Its errors ([`Error`]) say what went wrong, not how to show it. Faces (the
//! command line, a server) parse their input, call the engine and render its answers.
//!
//! ```no_run
//! use engine::{Config, Engine, EventFile, Parsed, Query};
//! use store::Access;
//!
//! let config = Config::new(chrono::Utc::now);
//! let text = std::fs::read_to_string("events/01-parties.jsonl").unwrap();
//! let parsed = Parsed::files(vec![EventFile::new("01-parties.jsonl", text)])?;
//! let ledger = Engine::open("accord.db".as_ref(), Access::Write, config)?;
//! ledger.append(parsed, &engine::Options::default())?;
//! let as_of = domain::Date::parse("2025-10-28").unwrap();
//! let cap_tables = ledger.projection(&Query::as_of(as_of), None, None)?.ownership(None);
//! # Ok::<(), engine::Error>(())
//! ```

mod append;
mod audit;
mod checkpoints;
mod copy;
mod error;
mod export;
mod fast_append;
mod known_at;
mod ledger_codec;
mod load;
mod query;
mod receipt;
mod time;
mod verify;
mod whatif;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use store::Backend;

pub use append::{dry_run_on_empty, EventFile, Options, Parsed, Progress};
pub use copy::LogCopy;
pub use error::{Error, Refusal, Unavailable};
pub use load::{split_reads, LogEntry};
pub use query::{project_events, DiffReport, Query};
pub use receipt::{FileReceipt, Receipt};
/// Whether a store location names a database (`postgres://...`) rather than a directory.
pub use store::pg::is_url as is_database_url;
/// A store's location as it may be shown: a database URL without its password.
pub use store::pg::shown as shown_location;
pub use store::{settle, Access, Head};
pub use time::{parse_known_at, ExpectedHead};
pub use verify::Verified;
pub use whatif::WhatIf;

/// What the engine is told instead of reading the clock or the environment.
#[derive(Clone)]
pub struct Config {
    /// The time appends record (read once per batch, when it commits).
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// A query checkpoint is taken once this many events were folded since the last one
    /// (0: the default, [`CHECKPOINT_EVERY`]).
    pub checkpoint_every: usize,
    /// Corrections one checkpoint may collect before it is rewritten whole.
    pub max_corrections: usize,
    /// Validate every append against the whole log, never against only what it touches
    /// (tests compare the two paths).
    pub full_append: bool,
    /// Answer every question by a replay of the whole log, never from the keys, and verify
    /// with the log decoded whole, never streamed (tests compare the two).
    pub full_replay: bool,
    /// How long opening waits for a store that another process holds (default: not at all).
    pub wait: std::time::Duration,
    /// What this process says of itself to those who wait for a store it holds
    /// (`accord verify`, `accord serve on 127.0.0.1:8080`).
    pub holder: Option<String>,
}

/// Checkpoints are taken every this many events by default.
pub const CHECKPOINT_EVERY: usize = 16 * 1024;
/// Corrections a checkpoint collects before it is rewritten whole, by default.
pub const MAX_CORRECTIONS: usize = 256;

impl Config {
    /// The default tuning, with `clock` as the time appends record.
    pub fn new(clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Config {
        Config {
            clock: Arc::new(clock),
            checkpoint_every: CHECKPOINT_EVERY,
            max_corrections: MAX_CORRECTIONS,
            full_append: false,
            full_replay: false,
            wait: std::time::Duration::ZERO,
            holder: None,
        }
    }

    pub(crate) fn opening(&self) -> store::Opening {
        store::Opening {
            wait: self.wait,
            holder: self.holder.clone(),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The checkpoint interval in force.
    pub(crate) fn every(&self) -> usize {
        match self.checkpoint_every {
            0 => CHECKPOINT_EVERY,
            n => n,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("checkpoint_every", &self.checkpoint_every)
            .field("max_corrections", &self.max_corrections)
            .field("full_append", &self.full_append)
            .field("full_replay", &self.full_replay)
            .field("wait", &self.wait)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// One open ledger: a store and how to work on it.
pub struct Engine {
    store: Box<dyn Backend>,
    config: Config,
}

impl Engine {
    /// Opens the store at `location`: for appends (`Access::Write`, creating it when missing)
    /// or for reading (`Access::Read`: a missing store is `Unavailable::Missing`, and nothing
    /// is created).
    pub fn open(location: &Path, access: Access, config: Config) -> Result<Engine, Error> {
        Ok(Engine {
            store: store::open_with(location, access, &config.opening())?,
            config,
        })
    }

    /// An engine over a store the caller opened.
    pub fn with_store(store: Box<dyn Backend>, config: Config) -> Engine {
        Engine { store, config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The last event's seq, hash and recorded time; `None` for an empty log.
    pub fn head(&self) -> Result<Option<store::Head>, Error> {
        Ok(self.store.read()?.head())
    }

    /// Whether the store has been created (a database ledger opened for its first append
    /// may not exist yet).
    pub fn exists(&self) -> Result<bool, Error> {
        Ok(self.store.exists()?)
    }
}
