//! Validation of a batch against the log: idempotency, reversal rules and
//! every invariant over the whole timeline.
//!
//! A batch is checked as the timeline it would produce: the log plus the new
//! events, reversals applied, folded from the first date to the last, so a
//! backdated event is checked against every later date and not only its own.
//! When the fold fails at an event that is already recorded, the new event
//! responsible is found by bisecting the batch and the refusal names it.

use ahash::AHashMap as HashMap;

use crate::error::Rejection;
use crate::event::{Event, Payload};
use crate::ledger::Ledger;
use crate::tick::Tick;
use crate::timeline::{fold_ticked, order, FoldError, RecordedEvent};
use crate::values::EventId;

/// What an accepted batch will do.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Plan {
    /// Indexes into the batch of the events to append, in batch order.
    pub new: Vec<usize>,
    /// Events already recorded with identical content.
    pub skipped: usize,
}

/// A refused batch: the rule, and the line of the offending event when the
/// batch came from a file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{rejection}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct BatchRejection {
    pub line: Option<usize>,
    pub rejection: Rejection,
}

/// One event of a batch and the line it came from, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchEvent {
    pub line: Option<usize>,
    pub event: Event,
}

/// The fields in which two events with the same id differ, for the `id_conflict` refusal:
/// `: `effective` is 2026-12-01 there, 2026-12-02 here` (at most three fields, values cut
/// at 60 characters).
fn differences(recorded: &Event, new: &Event) -> String {
    let (a, b) = (recorded.to_json(), new.to_json());
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let show = |v: Option<&serde_json::Value>| -> String {
        let text = match v {
            None => "absent".to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let mut cut: String = text.chars().filter(|c| !c.is_control()).take(60).collect();
        if text.chars().count() > 60 {
            cut.push('…');
        }
        cut
    };
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("`{k}` is {} there, {} here", show(a.get(k)), show(b.get(k))))
        .collect();
    match diffs.len() {
        0 => String::new(),
        n if n <= 3 => format!(": {}", diffs.join("; ")),
        n => format!(": {} (and {} more fields)", diffs[..3].join("; "), n - 3),
    }
}

/// Checks a batch against the log. On success, says which events are new
/// and how many are skipped as identical re-appends.
pub fn plan_batch(log: &[RecordedEvent], batch: &[BatchEvent]) -> Result<Plan, BatchRejection> {
    plan_batch_at(log, log.last().map_or(1, |r| r.seq + 1), batch)
}

/// `plan_batch` against part of the log: `log` holds, in any order, every
/// recorded event the batch can depend on (those of the aggregates it
/// touches, the registrations of the parties they name, the recorded events
/// with the batch's ids and the targets of its reversals), and the batch's
/// events will get seqs from `next_seq` on. Events left out are ones the
/// batch cannot change (see `aggregate`), so the first event to fail is the
/// same as over the whole log.
pub fn plan_batch_at(
    log: &[RecordedEvent],
    next_seq: u64,
    batch: &[BatchEvent],
) -> Result<Plan, BatchRejection> {
    plan_batch_on(&Ledger::new(), log, next_seq, batch)
}

/// `plan_batch_at` with the fold starting from `base` instead of an empty
/// ledger: `base` holds the state that the recorded events left out of
/// `log` give the aggregates the batch reads, all of it dated on or before
/// every batch event of the same aggregate (so no left-out event comes
/// after a batch event in the timeline).
pub fn plan_batch_on(
    base: &Ledger,
    log: &[RecordedEvent],
    next_seq: u64,
    batch: &[BatchEvent],
) -> Result<Plan, BatchRejection> {
    plan_batch_ticked(base, log, next_seq, batch, None)
}

/// `plan_batch_on` that tells `tick` how many of the batch's new events it has checked, as
/// it goes, for a progress bar (the ticks add up to the new events when the batch passes).
pub fn plan_batch_ticked(
    base: &Ledger,
    log: &[RecordedEvent],
    next_seq: u64,
    batch: &[BatchEvent],
    tick: Option<Tick<'_>>,
) -> Result<Plan, BatchRejection> {
    let plan = plan_ids(log, batch)?;
    let new: Vec<(Option<usize>, &Event)> = plan
        .new
        .iter()
        .map(|&i| (batch[i].line, &batch[i].event))
        .collect();
    check_timeline(base, log, next_seq, &new, tick)?;
    Ok(plan)
}

/// The first half of `plan_batch_ticked`: which events of `batch` are new (the others are
/// already recorded, or repeated in the batch, with identical content), and the rules on
/// ids and reversals. The timeline the new events make is left to `check_timeline`, so
/// that a caller can do other work on them meanwhile.
pub fn plan_ids(log: &[RecordedEvent], batch: &[BatchEvent]) -> Result<Plan, BatchRejection> {
    let by_id: HashMap<&EventId, &RecordedEvent> = log.iter().map(|r| (&r.event.id, r)).collect();
    let reject = |b: &BatchEvent, rejection: Rejection| BatchRejection {
        line: b.line,
        rejection,
    };

    // Idempotency: identical content is skipped, other content refused.
    let mut plan = Plan::default();
    // Sized up front: growing a map of a million ids rehashes every id it holds, each a
    // read of a string somewhere else in memory (a tenth of an import's time).
    // Each new event with its place in the batch.
    let mut in_batch: HashMap<&EventId, (usize, &Event)> = HashMap::with_capacity(batch.len());
    for (i, b) in batch.iter().enumerate() {
        let id = &b.event.id;
        if let Some(r) = by_id.get(id) {
            if r.event.canonical_bytes() == b.event.canonical_bytes() {
                plan.skipped += 1;
                continue;
            }
            return Err(reject(
                b,
                Rejection::IdConflict {
                    event: id.clone(),
                    seq: Some(r.seq),
                    differs: differences(&r.event, &b.event),
                },
            ));
        }
        if let Some(&(_, earlier)) = in_batch.get(id) {
            if earlier.canonical_bytes() == b.event.canonical_bytes() {
                plan.skipped += 1;
                continue;
            }
            return Err(reject(
                b,
                Rejection::IdConflict {
                    event: id.clone(),
                    seq: None,
                    differs: differences(earlier, &b.event),
                },
            ));
        }
        in_batch.insert(id, (i, &b.event));
        plan.new.push(i);
    }

    // Reversals: the target is recorded before, is no reversal, is not
    // already reversed, and is not effective after the reversal.
    let mut reversed_by: HashMap<&EventId, &EventId> = HashMap::new();
    for r in log {
        if let Payload::EventReversed(p) = &r.event.payload {
            reversed_by.insert(&p.reverses, &r.event.id);
        }
    }
    for &i in &plan.new {
        let b = &batch[i];
        if let Payload::EventReversed(p) = &b.event.payload {
            let target = by_id
                .get(&p.reverses)
                .map(|r| &r.event)
                // A new event before this one in the batch.
                .or_else(|| {
                    in_batch
                        .get(&p.reverses)
                        .and_then(|&(at, e)| (at < i).then_some(e))
                });
            let id = || b.event.id.clone();
            let Some(target) = target else {
                return Err(reject(
                    b,
                    Rejection::UnknownReversedEvent {
                        event: id(),
                        reverses: p.reverses.clone(),
                    },
                ));
            };
            if matches!(target.payload, Payload::EventReversed(_)) {
                return Err(reject(
                    b,
                    Rejection::ReversalOfReversal {
                        event: id(),
                        reverses: p.reverses.clone(),
                    },
                ));
            }
            if let Some(by) = reversed_by.get(&p.reverses) {
                return Err(reject(
                    b,
                    Rejection::AlreadyReversed {
                        event: id(),
                        reverses: p.reverses.clone(),
                        by: (*by).clone(),
                    },
                ));
            }
            if b.event.effective < target.effective {
                return Err(reject(
                    b,
                    Rejection::ReversalBeforeEvent {
                        event: id(),
                        reverses: p.reverses.clone(),
                        effective: b.event.effective,
                        reversed_effective: target.effective,
                    },
                ));
            }
            reversed_by.insert(&p.reverses, &b.event.id);
        }
    }

    Ok(plan)
}

/// The second half of `plan_batch_ticked`: the invariants over the whole timeline that `log`
/// and `new` (the batch's new events in batch order, each with its line, recorded from
/// `next_seq` on) make, folded from `base`.
pub fn check_timeline(
    base: &Ledger,
    log: &[RecordedEvent],
    next_seq: u64,
    new: &[(Option<usize>, &Event)],
    tick: Option<Tick<'_>>,
) -> Result<(), BatchRejection> {
    // Nothing new is appended, so nothing can break (and below, a log that
    // fails on its own would have no new event to name).
    if new.is_empty() {
        return Ok(());
    }

    // Invariants over the whole timeline the batch would produce.
    let check_ticked = |count: usize, tick: Option<Tick<'_>>| -> Result<(), FoldError> {
        let entries: Vec<(u64, &Event)> = log
            .iter()
            .map(|r| (r.seq, &r.event))
            .chain(
                new[..count]
                    .iter()
                    .enumerate()
                    .map(|(k, (_, e))| (next_seq + k as u64, *e)),
            )
            .collect();
        fold_ticked(
            base.clone(),
            &order(entries),
            None,
            tick.map(|t| (next_seq, t)),
        )
        .map(|_| ())
    };
    let check = |count: usize| check_ticked(count, None);
    let Err(failure) = check_ticked(new.len(), tick) else {
        return Ok(());
    };

    // The fold of the whole batch stopped at a new event. If the batch up
    // to and including that event already fails there, the event is at
    // fault on its own. Otherwise a later event of the batch broke it (a
    // backdated one, or a reversal), and the search below finds which.
    let mut good = 0usize;
    if failure.seq >= next_seq {
        let k = (failure.seq - next_seq) as usize;
        match check(k + 1) {
            Err(f) if f.seq == failure.seq => {
                return Err(BatchRejection {
                    line: new[k].0,
                    rejection: f.rejection,
                });
            }
            Ok(()) => good = k + 1,
            Err(_) => {}
        }
    }

    // Find the new event whose addition breaks the timeline: a prefix of
    // the batch that passes followed by one that fails. Bisection keeps
    // this logarithmic in the batch size; the empty prefix is the log as
    // it is.
    let mut bad = new.len();
    let mut bad_failure = failure;
    if good > 0 || check(0).is_ok() {
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            match check(mid) {
                Ok(()) => good = mid,
                Err(f) => {
                    bad = mid;
                    bad_failure = f;
                }
            }
        }
    } else {
        // The log itself fails the current rules (written by an older,
        // laxer version): refuse the batch, naming its first event.
        bad = 1;
    }
    let (culprit_line, culprit) = new[bad.saturating_sub(1)];
    let culprit_seq = next_seq + bad.saturating_sub(1) as u64;
    let rejection = if bad_failure.seq == culprit_seq {
        bad_failure.rejection
    } else {
        Rejection::BreaksLaterEvent {
            event: culprit.id.clone(),
            cause: Box::new(bad_failure.rejection),
        }
    };
    Err(BatchRejection {
        line: culprit_line,
        rejection,
    })
}
