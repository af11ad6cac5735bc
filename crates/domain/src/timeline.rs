//! Which events count, and in which order: the bitemporal selection.
//!
//! Transaction time (`known_at`) picks the recorded events and the reversals
//! that apply; valid time (`as_of`) cuts the fold. Events take effect in
//! effective-date order, and on one date in `seq` order. This module decides
//! nothing about what an event does; `Ledger::apply` does.

use ahash::AHashSet as HashSet;

use chrono::{DateTime, Utc};

use crate::error::Rejection;
use crate::event::{Event, Payload};
use crate::ledger::Ledger;
use crate::tick::{Tick, TICK_EVERY};
use crate::values::Date;

/// An event as the log holds it: with its position and its transaction time.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub seq: u64,
    pub recorded: DateTime<Utc>,
    pub event: Event,
}

/// Transaction time: how much of the log a question may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KnownAt {
    /// Everything recorded.
    #[default]
    Everything,
    /// Up to and including this seq.
    Seq(u64),
    /// Recorded at or before this instant.
    Time(DateTime<Utc>),
}

impl KnownAt {
    pub fn includes(self, r: &RecordedEvent) -> bool {
        match self {
            KnownAt::Everything => true,
            KnownAt::Seq(s) => r.seq <= s,
            KnownAt::Time(t) => r.recorded <= t,
        }
    }
}

/// Orders events for folding: drops reversed events and the reversals
/// themselves, then sorts by (effective, seq).
pub fn order(entries: Vec<(u64, &Event)>) -> Vec<(u64, &Event)> {
    let reversed: HashSet<&str> = entries
        .iter()
        .filter_map(|(_, e)| match &e.payload {
            Payload::EventReversed(r) => Some(r.reverses.as_str()),
            _ => None,
        })
        .collect();
    // The sort key is held next to each entry: reading it through the reference costs a
    // cache miss per comparison, and a replay sorts a million of them.
    let mut keyed: Vec<(Date, u64, &Event)> = entries
        .into_iter()
        .filter(|(_, e)| {
            !matches!(e.payload, Payload::EventReversed(_)) && !reversed.contains(e.id.as_str())
        })
        .map(|(seq, e)| (e.effective, seq, e))
        .collect();
    // Stable, as before: entries with equal keys (what-if events, in some callers) keep
    // the order they came in.
    keyed.sort_by_key(|(date, seq, _)| (*date, *seq));
    keyed.into_iter().map(|(_, seq, e)| (seq, e)).collect()
}

/// The events known at `known_at`, reversals applied, in effective order.
pub fn timeline(log: &[RecordedEvent], known_at: KnownAt) -> Vec<(u64, &Event)> {
    order(
        log.iter()
            .filter(|r| known_at.includes(r))
            .map(|r| (r.seq, &r.event))
            .collect(),
    )
}

/// A refusal found while folding, with the seq of the event that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldError {
    pub seq: u64,
    pub rejection: Rejection,
}

/// Folds an ordered timeline up to and including `as_of` (all of it when
/// `None`), checking every rule at every step.
pub fn fold(ordered: &[(u64, &Event)], as_of: Option<Date>) -> Result<Ledger, FoldError> {
    fold_from(Ledger::new(), ordered, as_of)
}

/// `fold` starting from `ledger` instead of an empty ledger.
pub fn fold_from(
    ledger: Ledger,
    ordered: &[(u64, &Event)],
    as_of: Option<Date>,
) -> Result<Ledger, FoldError> {
    fold_ticked(ledger, ordered, as_of, None)
}

/// `fold_from` that tells `tick` of the events folded whose seq is at least `from`, in steps
/// of [`TICK_EVERY`], as it goes.
pub(crate) fn fold_ticked(
    mut ledger: Ledger,
    ordered: &[(u64, &Event)],
    as_of: Option<Date>,
    tick: Option<(u64, Tick<'_>)>,
) -> Result<Ledger, FoldError> {
    let mut counted = 0u64;
    for (seq, event) in ordered {
        if let Some((from, tick)) = tick {
            if *seq >= from {
                counted += 1;
                if counted == TICK_EVERY {
                    tick(counted);
                    counted = 0;
                }
            }
        }
        if as_of.is_some_and(|d| event.effective > d) {
            break;
        }
        ledger.apply(event).map_err(|rejection| FoldError {
            seq: *seq,
            rejection,
        })?;
    }
    if let Some((_, tick)) = tick {
        tick(counted);
    }
    Ok(ledger)
}
