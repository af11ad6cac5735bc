//! accord's domain: the events of format v1, their value types, the ledger
//! state machine that enforces the invariants, and batch validation.
//!
//! Pure: this crate never reads a clock, a file or the environment. Time
//! arrives as arguments; bytes arrive as strings.

// A `Rejection` names the event and every value involved (ids, dates,
// decimals, money), so it is large; it is built only on the refusal path,
// where its size costs nothing that matters.
#![allow(clippy::result_large_err)]

pub mod aggregate;
pub mod error;
pub mod event;
pub mod ledger;
pub mod tick;
pub mod timeline;
pub mod validate;
pub mod values;

pub use aggregate::Aggregate;
pub use error::Rejection;
pub use event::{
    parse_jsonl, parse_jsonl_ticked, Event, FileError, ParseError, Payload, EVENT_TYPES,
};
pub use ledger::{Ledger, ObligationStatus, RightEnd};
pub use tick::{Tick, TICK_EVERY};
pub use timeline::{fold, fold_from, order, timeline, FoldError, KnownAt, RecordedEvent};
pub use validate::{
    check_timeline, plan_batch, plan_batch_at, plan_batch_on, plan_batch_ticked, plan_ids,
    BatchEvent, BatchRejection, Plan,
};
pub use values::{Currency, Date, Dec, EventId, Money, Slug};
