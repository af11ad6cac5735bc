//! Bitemporal questions without a replay of the log: the ledger as of a date, as known at a
//! seq; the restatement between two seqs; one entity's ownership events.
//!
//! The ledger is a product of aggregates (`domain::aggregate`): an aggregate's state depends
//! on its own events only (given the party registrations they need, which a valid log
//! always has). So the view "as of D, as known at seq s" differs from the ledger as of D as
//! known now only in the aggregates that some event *changes* between the two: an event
//! recorded after s, or the target of a reversal recorded after s, dated on or before D. Every other aggregate is taken from
//! the present answer (`checkpoints::ledger_as_of`), and each changed aggregate is folded
//! again from the last checkpoint dated before the first event that changes it, with the
//! events of its own stream that the view sees.
//!
//! The cost is the events recorded after s (they are read to find what they change) and the
//! changed aggregates' streams since their checkpoints, not the log's length; when s is
//! early in the log, folding the log up to s is cheaper, and that is what is done.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::event::{Event, Payload};
use domain::ledger::Ledger;
use domain::values::{Date, PartyId};
use domain::{order, Aggregate, KnownAt, RecordedEvent};
use projector::{Projection, Restatement};
use store::Snapshot;

use crate::checkpoints::{
    checkpoint_dates, corrupt, created_seq, date_of_key, date_range, dated_events, dated_seqs,
    decode_dated, decode_ledger, decode_pairs, decode_seqs, fold_events, keys_current,
    ledger_as_of, list_end, parse_history_key, read_stream, replay, stored_checkpoint, RS, RV,
};
use crate::load::{decode_at, decode_range};
use crate::Error;

/// The last seq that `known_at` sees in a log of `store.len()` events (0: none). Recorded
/// times never go backwards along the log, so a time is found by bisection.
pub(crate) fn last_seq(store: &dyn Snapshot, known_at: KnownAt) -> Result<u64, Error> {
    let head = store.len();
    match known_at {
        KnownAt::Everything => Ok(head),
        KnownAt::Seq(s) => Ok(s.min(head)),
        KnownAt::Time(t) => {
            // Invariant: recorded(lo) <= t (lo = 0 stands for "before the log"), recorded(hi) > t.
            let (mut lo, mut hi) = (0u64, head + 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if recorded_at(store, mid)? <= t {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            Ok(lo)
        }
    }
}

fn recorded_at(store: &dyn Snapshot, seq: u64) -> Result<DateTime<Utc>, Error> {
    let record = store
        .records_at(&[seq])?
        .pop()
        .ok_or_else(|| corrupt("log record"))?;
    DateTime::parse_from_rfc3339(&record.recorded)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Error::corrupt_at(seq, &format!("bad recorded time {:?}", record.recorded)))
}

/// What a view sees of the log: the events up to `known` (a seq), not reversed by a reversal
/// it sees.
pub(crate) struct View {
    pub known: u64,
    /// The seqs (of the log) the view does not count because a reversal it sees removes them.
    pub reversed: BTreeSet<u64>,
    /// The aggregates whose state differs from the log as known now, each with the date of
    /// the earliest event that makes it differ.
    changed: BTreeMap<Aggregate, Date>,
}

impl View {
    /// The view of `store` as known at seq `known` (at most the head), for a question as of
    /// `as_of`.
    pub(crate) fn read(store: &dyn Snapshot, known: u64, as_of: Date) -> Result<View, Error> {
        let head = store.len();
        let late = decode_range(store, known, head)?;
        let mut reversed = match store.aux_get(RV)? {
            Some(v) => decode_seqs(&v).ok_or_else(|| corrupt("reversed set"))?,
            None => BTreeSet::new(),
        };
        let mut changed: BTreeMap<Aggregate, Date> = BTreeMap::new();
        let mut change = |a: Option<Aggregate>, date: Date| {
            if let Some(a) = a {
                if date <= as_of {
                    let d = changed.entry(a).or_insert(date);
                    *d = (*d).min(date);
                }
            }
        };
        // Events of the log the view lacks.
        for r in &late {
            change(Aggregate::of(&r.event), r.event.effective);
        }
        // Reversals: one recorded after `known` gives its target back to the view. A target
        // that is itself late is already counted above (and the view never sees it).
        let by_id: BTreeMap<&str, &RecordedEvent> =
            late.iter().map(|r| (r.event.id.as_str(), r)).collect();
        for r in &late {
            let Payload::EventReversed(p) = &r.event.payload else {
                continue;
            };
            if by_id.contains_key(p.reverses.as_str()) {
                continue;
            }
            let Some(seq) = store.seq_of(p.reverses.as_str())? else {
                continue;
            };
            let target = fetch_one(store, seq)?;
            change(Aggregate::of(&target.event), target.event.effective);
            reversed.remove(&seq);
        }
        Ok(View {
            known,
            reversed,
            changed,
        })
    }

    /// The view at `known` from the keys alone, nothing of the log decoded: the reversed set
    /// as known then, from the reversals' index (`rs`). It knows which events count, not
    /// which aggregates the later events change (`changed` is empty), so it serves the
    /// checkpoints' history and filtering, not `refold`. `None` when the index is missing.
    pub(crate) fn at(store: &dyn Snapshot, known: u64) -> Result<Option<View>, Error> {
        let mut reversed = match store.aux_get(RV)? {
            Some(v) => decode_seqs(&v).ok_or_else(|| corrupt("reversed set"))?,
            None => BTreeSet::new(),
        };
        match store.aux_get(RS)? {
            Some(v) => {
                let pairs = decode_pairs(&v).ok_or_else(|| corrupt("reversal index"))?;
                for (reversal, target) in pairs {
                    if reversal > known {
                        reversed.remove(&target);
                    }
                }
            }
            None if !reversed.is_empty() => return Ok(None),
            None => {}
        }
        Ok(Some(View {
            known,
            reversed,
            changed: BTreeMap::new(),
        }))
    }

    /// `at` when the index is there, else `read`.
    pub(crate) fn cheapest(store: &dyn Snapshot, known: u64, as_of: Date) -> Result<View, Error> {
        match View::at(store, known)? {
            Some(view) => Ok(view),
            None => View::read(store, known, as_of),
        }
    }

    /// Whether the view counts the log's event `seq`.
    pub(crate) fn counts(&self, seq: u64) -> bool {
        seq <= self.known && !self.reversed.contains(&seq)
    }
}

/// The events a timeline of `entity` needs, as the view at `known` sees them: the entity's
/// ownership stream and the streams of every party those events name (their registrations
/// and names), in seq order, with nothing reversed among them. `None` when the keys are not
/// current.
pub(crate) fn entity_events(
    store: &dyn Snapshot,
    entity: &PartyId,
    as_of: Date,
    known: u64,
) -> Result<Option<Vec<RecordedEvent>>, Error> {
    if store.is_empty() || !keys_current(store)? {
        return Ok(None);
    }
    let view = View::cheapest(store, known.min(store.len()), as_of)?;
    let stream = |a: &Aggregate| -> Result<Vec<u64>, Error> {
        Ok(read_stream(store, a)?
            .into_iter()
            .filter(|s| view.counts(*s))
            .collect())
    };
    let mut events = decode_at(store, &stream(&Aggregate::Issuer(entity.clone()))?)?;
    // A hash set: the stream names a handful of parties thousands of times over.
    let mut parties: ahash::AHashSet<&PartyId> = ahash::AHashSet::new();
    parties.insert(entity);
    for r in &events {
        match &r.event.payload {
            Payload::SharesTransferred(p) => {
                parties.insert(&p.issuer);
                parties.insert(&p.from);
                parties.insert(&p.to);
            }
            _ => parties.extend(r.event.referenced_parties()),
        }
    }
    // In id order, so that of two damaged streams the same one is always reported.
    let mut parties: Vec<&PartyId> = parties.into_iter().collect();
    parties.sort_unstable();
    let mut seqs = Vec::new();
    for p in parties {
        seqs.extend(stream(&Aggregate::Party(p.clone()))?);
    }
    seqs.sort_unstable();
    seqs.dedup();
    events.extend(decode_at(store, &seqs)?);
    events.sort_by_key(|r| r.seq);
    events.dedup_by_key(|r| r.seq);
    Ok(Some(events))
}

fn fetch_one(store: &dyn Snapshot, seq: u64) -> Result<RecordedEvent, Error> {
    decode_at(store, &[seq])?
        .pop()
        .ok_or_else(|| corrupt("log record"))
}

/// The ledger as of `as_of` as the view of `store` at `known` sees it; `None` when the
/// store's keys are not current (the caller replays the log).
pub(crate) fn ledger_in_view(
    store: &dyn Snapshot,
    as_of: Date,
    known: u64,
) -> Result<Option<Ledger>, Error> {
    let head = store.len();
    let known = known.min(head);
    if store.is_empty() || !(0..=9999).contains(&as_of.year()) || !keys_current(store)? {
        return Ok(None);
    }
    if known == head {
        return ledger_as_of(store, as_of);
    }
    // A seq inside a batch (or before a checkpoint was taken) has no history: the fold since
    // the earliest change recorded after it, when that is well under the other ways.
    let at = View::at(store, known)?;
    if let Some(view) = &at {
        let budget = known.min(head - known) / 2;
        if let Some(ledger) = ledger_from_settled(store, as_of, view, budget)? {
            return Ok(Some(ledger));
        }
    }
    // Early in the log, the fold of what the view sees is the cheaper way.
    if known < head - known {
        let log = decode_range(store, 0, known)?;
        let mut ledger = Ledger::new();
        for (seq, event) in order(log.iter().map(|r| (r.seq, &r.event)).collect()) {
            if event.effective > as_of {
                break;
            }
            replay(&mut ledger, seq, event)?;
        }
        return Ok(Some(ledger));
    }
    // As known at the end of a batch after the checkpoint before `as_of` was taken, its
    // history answers (the cost of the question as known now, plus the events after
    // `known`); otherwise the aggregates the later events change are folded again.
    if let Some(view) = &at {
        if let Some(ledger) = ledger_from_history(store, as_of, view)? {
            return Ok(Some(ledger));
        }
    }
    let view = View::read(store, known, as_of)?;
    ledger_of_view(store, as_of, &view)
}

/// The ledger as of `as_of` as `view` sees it, from the last checkpoint that nothing recorded
/// after `view.known` changes: one dated before every event recorded later, and before every
/// event that a reversal recorded later gives back to the view. That checkpoint as known now
/// is what the view knew of it (its corrections included), so the answer is the checkpoint
/// and the events dated after it that the view counts: a fold since the earliest change made
/// after `known`, whatever the length of the log before it. `None` when that fold would take
/// more than `budget` events.
fn ledger_from_settled(
    store: &dyn Snapshot,
    as_of: Date,
    view: &View,
    budget: u64,
) -> Result<Option<Ledger>, Error> {
    let known = view.known;
    let dates = checkpoint_dates(store, None)?;
    // The earliest date, on or before `as_of`, of an event recorded after `known`: the date
    // index read oldest first, a stretch between two checkpoints at a time, until one is found.
    // Reading a seq of the index costs a small part of decoding an event, so the scan gives
    // up past 4 times the budget: then the other ways are cheaper anyway.
    let mut settled: Option<Date> = None;
    let mut bounds: Vec<Option<Date>> = vec![None];
    bounds.extend(dates.iter().copied().filter(|d| *d < as_of).map(Some));
    let mut scanned = 0u64;
    'scan: for (i, after) in bounds.iter().enumerate() {
        let upto = bounds.get(i + 1).copied().flatten().unwrap_or(as_of);
        let (from, to) = date_range(*after, upto);
        for (k, v) in store.aux_range(&from, &to, false)? {
            let seqs = decode_seqs(&v).ok_or_else(|| corrupt("date index"))?;
            scanned += seqs.len() as u64;
            if scanned > budget.saturating_mul(4) {
                return Ok(None);
            }
            if seqs.last().is_some_and(|s| *s > known) {
                settled = Some(date_of_key(&k).ok_or_else(|| corrupt("date index key"))?);
                break 'scan;
            }
        }
    }
    // The events that reversals recorded after `known` give back (those recorded after it
    // themselves are in the date index already), by their dates.
    let mut given_back: Vec<u64> = match store.aux_get(RS)? {
        Some(v) => decode_pairs(&v)
            .ok_or_else(|| corrupt("reversal index"))?
            .into_iter()
            .filter(|(reversal, target)| *reversal > known && *target <= known)
            .map(|(_, target)| target)
            .collect(),
        None => Vec::new(),
    };
    if given_back.len() as u64 > budget {
        return Ok(None);
    }
    given_back.sort_unstable();
    given_back.dedup();
    for r in decode_at(store, &given_back)? {
        if r.event.effective <= as_of {
            settled = Some(settled.map_or(r.event.effective, |d| d.min(r.event.effective)));
        }
    }
    // The last checkpoint on or before `as_of` and before that date, and what follows it.
    let base = dates
        .iter()
        .rev()
        .find(|d| **d <= as_of && settled.is_none_or(|s| **d < s))
        .copied();
    let limit = usize::try_from(budget).unwrap_or(usize::MAX);
    let Some(seqs) = dated_seqs(store, base, as_of, |s| view.counts(s), limit)? else {
        return Ok(None);
    };
    let mut ledger = match base {
        Some(date) => stored_checkpoint(store, date)?,
        None => Ledger::new(),
    };
    fold_events(&mut ledger, &decode_dated(store, &seqs)?)?;
    Ok(Some(ledger))
}

/// The ledger as of `as_of` as `view` sees it, from the last
/// checkpoint on or before `as_of` and its history; `None` when that checkpoint was taken
/// after `view.known`, or some batch that changed it ends after `view.known` but starts on or
/// before it (a seq inside a batch, which no history entry describes).
fn ledger_from_history(
    store: &dyn Snapshot,
    as_of: Date,
    view: &View,
) -> Result<Option<Ledger>, Error> {
    match HistoryBase::read(store, as_of, view.known)? {
        Some(base) => base.ledger(view),
        None => Ok(None),
    }
}

/// What the checkpoints' history gives every view of one date: the last checkpoint on or
/// before it (with the seq it was taken at), its history entries, and the events dated
/// after it. A restatement reads it once for its two sides.
struct HistoryBase {
    /// The checkpoint's ledger (empty without one).
    ledger: Ledger,
    /// The seq the checkpoint was taken at (0 without one).
    created: u64,
    /// The history entries of the checkpoint: (aggregate, first seq of the batch, last seq
    /// of the batch, the entry's value).
    entries: Vec<(Aggregate, u64, u64, Vec<u8>)>,
    /// The events dated after the checkpoint, on or before the date, reversals left out, in
    /// (effective, seq) order; every view counts a subset of them.
    events: Vec<(u64, Event)>,
}

impl HistoryBase {
    /// The base for views that see at most seq `known`; `None` when the checkpoint was taken
    /// after `known` (or its creation is not recorded), so that none of them can use it.
    fn read(store: &dyn Snapshot, as_of: Date, known: u64) -> Result<Option<HistoryBase>, Error> {
        let dates = checkpoint_dates(store, None)?;
        let (ledger, created, entries, after) = match dates.iter().rev().find(|d| **d <= as_of) {
            Some(&date) => {
                let created = match created_seq(store, date)? {
                    Some(seq) if seq <= known => seq,
                    _ => return Ok(None),
                };
                let ledger = stored_checkpoint(store, date)?;
                let from = format!("oh/{date}/").into_bytes();
                let mut entries = Vec::new();
                for (k, v) in store.aux_range(&from, &list_end(&from), false)? {
                    let (_, a, start, end) =
                        parse_history_key(&k, &v).ok_or_else(|| corrupt("checkpoint history"))?;
                    entries.push((a, start, end, v));
                }
                (ledger, created, entries, Some(date))
            }
            None => (Ledger::new(), 0, Vec::new(), None),
        };
        let events = dated_events(store, after, as_of, |s| s <= known)?;
        Ok(Some(HistoryBase {
            ledger,
            created,
            entries,
            events,
        }))
    }

    /// The ledger as `view` sees it, or `None` when the history cannot tell (the checkpoint
    /// was taken after the view, or inside the batch the view ends in).
    fn ledger(&self, view: &View) -> Result<Option<Ledger>, Error> {
        if self.created > view.known {
            return Ok(None);
        }
        // For each aggregate, the entry of the first batch after `known`.
        let mut first: BTreeMap<&Aggregate, (u64, &[u8])> = BTreeMap::new();
        for (a, start, end, v) in &self.entries {
            if *start <= view.known && view.known < *end {
                return Ok(None);
            }
            if *start > view.known && first.get(a).is_none_or(|(s, _)| start < s) {
                first.insert(a, (*start, v));
            }
        }
        let mut ledger = self.ledger.clone();
        // Only the entries used are decoded.
        for (a, (_, value)) in first {
            let slice = value
                .get(8..)
                .and_then(decode_ledger)
                .ok_or_else(|| corrupt("checkpoint history"))?;
            ledger.overlay([a], &slice);
        }
        // Then the events dated after the checkpoint that the view counts.
        for (seq, event) in &self.events {
            if view.counts(*seq) {
                replay(&mut ledger, *seq, event)?;
            }
        }
        Ok(Some(ledger))
    }
}

/// The ledger as of `as_of` as `view` sees it (the keys are current).
fn ledger_of_view(store: &dyn Snapshot, as_of: Date, view: &View) -> Result<Option<Ledger>, Error> {
    let Some(mut ledger) = ledger_as_of(store, as_of)? else {
        return Ok(None);
    };
    if !view.changed.is_empty() {
        refold(store, view, as_of, &mut ledger)?;
    }
    Ok(Some(ledger))
}

/// What changed on `as_of` between the views at seqs `from` and `to`; `None` when the keys
/// are not current.
pub(crate) fn restatement(
    store: &dyn Snapshot,
    as_of: Date,
    from: u64,
    to: u64,
) -> Result<Option<Restatement>, Error> {
    let head = store.len();
    if store.is_empty() || !(0..=9999).contains(&as_of.year()) || !keys_current(store)? {
        return Ok(None);
    }
    // Each side from the checkpoints' history when it can, else from its decoded view.
    let mut views = Vec::with_capacity(2);
    let mut sides = Vec::with_capacity(2);
    // One base for both sides, read (once a side can use it) for the later of the two.
    let mut base: Option<Option<HistoryBase>> = None;
    for known in [from.min(head), to.min(head)] {
        let mut answer = None;
        if let Some(view) = View::at(store, known)? {
            if base.is_none() {
                base = Some(HistoryBase::read(store, as_of, from.max(to).min(head))?);
            }
            if let Some(b) = base.as_ref().and_then(Option::as_ref) {
                if let Some(ledger) = b.ledger(&view)? {
                    answer = Some((view, ledger));
                }
            }
        }
        let (view, ledger) = match answer {
            Some(found) => found,
            None => {
                let view = View::read(store, known, as_of)?;
                match ledger_of_view(store, as_of, &view)? {
                    Some(ledger) => (view, ledger),
                    None => return Ok(None),
                }
            }
        };
        views.push(view);
        sides.push(Projection { as_of, ledger });
    }
    // The events one side knows and the other does not: those between the two seqs.
    let (lo, hi) = (from.min(to).min(head), from.max(to).min(head));
    let between = decode_range(store, lo, hi)?;
    let differing: Vec<&RecordedEvent> = between.iter().collect();
    let by_id: BTreeMap<&str, &RecordedEvent> = differing
        .iter()
        .map(|r| (r.event.id.as_str(), *r))
        .collect();
    let mut targets: BTreeMap<String, RecordedEvent> = BTreeMap::new();
    for r in &differing {
        if let Payload::EventReversed(p) = &r.event.payload {
            if !by_id.contains_key(p.reverses.as_str()) {
                if let Some(seq) = store.seq_of(p.reverses.as_str())? {
                    targets.insert(p.reverses.to_string(), fetch_one(store, seq)?);
                }
            }
        }
    }
    // The valuations in force on either side, for the entities whose valuations differ.
    let entities: BTreeSet<PartyId> = differing
        .iter()
        .map(|r| &r.event)
        .chain(targets.values().map(|r| &r.event))
        .filter_map(|e| match &e.payload {
            Payload::ValuationRecorded(p) => Some(p.entity.clone()),
            _ => None,
        })
        .collect();
    let mut in_force: Vec<String> = Vec::new();
    for entity in entities {
        let stream = read_stream(store, &Aggregate::Valuation(entity))?;
        let valuations = decode_at(store, &stream)?;
        for view in &views {
            let latest = valuations
                .iter()
                .filter(|r| view.counts(r.seq) && r.event.effective <= as_of)
                .max_by_key(|r| (r.event.effective, r.seq));
            in_force.extend(latest.map(|r| r.event.id.to_string()));
        }
    }
    let in_force: BTreeSet<&str> = in_force.iter().map(String::as_str).collect();
    let target_of = |id: &str| -> Option<&Event> {
        by_id
            .get(id)
            .map(|r| &r.event)
            .or_else(|| targets.get(id).map(|r| &r.event))
    };
    Ok(Some(projector::restatement::restate(
        &sides[0], &sides[1], &differing, target_of, &in_force,
    )))
}

/// Replaces, in `ledger` (the ledger as of `as_of` as known now), the state of every
/// aggregate the view changes with its state in the view.
fn refold(
    store: &dyn Snapshot,
    view: &View,
    as_of: Date,
    ledger: &mut Ledger,
) -> Result<(), Error> {
    // Each changed aggregate starts from the last checkpoint dated before the first event
    // that changes it (nothing before that date differs), or from nothing.
    let dates = checkpoint_dates(store, None)?;
    let mut start: BTreeMap<&Aggregate, Option<Date>> = BTreeMap::new();
    let mut by_checkpoint: BTreeMap<Option<Date>, Vec<&Aggregate>> = BTreeMap::new();
    for (a, first) in &view.changed {
        let c = dates.iter().rev().find(|d| *d < first).copied();
        start.insert(a, c);
        by_checkpoint.entry(c).or_default().push(a);
    }
    for (c, aggregates) in &by_checkpoint {
        let base = match c {
            Some(date) => stored_checkpoint(store, *date)?,
            None => Ledger::new(),
        };
        ledger.overlay(aggregates.iter().copied(), &base);
    }

    // Their events that the view counts, dated after their start and on or before `as_of`.
    let mut seqs: Vec<u64> = Vec::new();
    for a in view.changed.keys() {
        seqs.extend(
            read_stream(store, a)?
                .into_iter()
                .filter(|s| view.counts(*s)),
        );
    }
    seqs.sort_unstable();
    seqs.dedup();
    let mut events: Vec<(u64, Event)> = Vec::with_capacity(seqs.len());
    let wanted = |e: &Event| -> bool {
        Aggregate::of(e).is_some_and(|a| match start.get(&a) {
            Some(from) => e.effective <= as_of && from.is_none_or(|f| e.effective > f),
            None => false,
        })
    };
    for r in decode_at(store, &seqs)? {
        if wanted(&r.event) {
            events.push((r.seq, r.event));
        }
    }
    events.sort_by_key(|(seq, e)| (e.effective, *seq));
    for (seq, event) in &events {
        replay(ledger, *seq, event)?;
    }
    Ok(())
}
