//! `verify`'s half of the query keys: the whole log replayed and every checkpoint, index,
//! tail and history entry compared with what the replay gives.
//!
//! Two ways to the same verdict:
//!
//! - [`streamed`], the way a healthy store is checked: the events are read in timeline order
//!   (effective date, then seq) and folded as they come, a few thousand at a time, so that the
//!   memory it takes is the ledger and a few compact indexes, whatever the log's length. The
//!   order comes from the store's date index (`dx/`), taken as a *plan* only: every event's
//!   date is checked against it as the event is read, and the index itself is then compared
//!   with the one the events give, like every other key. An event dated no earlier than every
//!   event before it in the log (all but the backdated ones) comes from one sequential read of
//!   the log; the others are read where they stand, in batches. The reversed set that the fold
//!   leaves out is planned from `rv` the same way, and compared after.
//! - [`check`], over the decoded log held in memory: the reference, and what reports a
//!   failure. The streamed check never reports one: at the first thing it does not find as it
//!   expects (a plan that does not hold, a rule broken, a key that differs, a read that
//!   fails), it gives up, and `verify` runs `check`, whose message names the damage. So the
//!   streamed check only has to be right when it accepts, and a damaged store's report is the
//!   same whichever way found it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use domain::event::Payload;
use domain::ledger::Ledger;
use domain::values::Date;
use domain::{order, Aggregate, RecordedEvent};
use store::{Record, Snapshot};

use crate::checkpoints::{
    checkpoint_list, checkpoint_prefix, date_prefix, decode_seqs, decode_tail, decode_varints,
    encode_pairs, encode_seqs, extend_list, join_pieces, key, key_date, ledger_plain,
    load_checkpoint, parse_history, piece_key, stream_prefix, tail_key, CK, CL, FORMAT, RS, RV,
};
use crate::load::{decode_with, Feed, RecordedTimes};
use crate::Error;

/// The first aggregate whose state differs between two ledgers, if one can be named.
fn differing_aggregate(a: &Ledger, b: &Ledger) -> Option<Aggregate> {
    fn differing<K: Ord + Clone, V: PartialEq>(
        x: &BTreeMap<K, V>,
        y: &BTreeMap<K, V>,
    ) -> Option<K> {
        x.keys()
            .chain(y.keys())
            .find(|k| x.get(*k) != y.get(*k))
            .cloned()
    }
    if let Some(k) = differing(&a.parties, &b.parties) {
        return Some(Aggregate::Party(k));
    }
    if let Some(k) = differing(&a.holdings, &b.holdings) {
        return Some(Aggregate::Issuer(k));
    }
    if let Some(k) = differing(&a.valuations, &b.valuations) {
        return Some(Aggregate::Valuation(k));
    }
    if let Some(k) = differing(&a.investments, &b.investments) {
        return Some(Aggregate::Investor(k));
    }
    if let Some(k) = differing(&a.obligations, &b.obligations) {
        return Some(Aggregate::Obligation(k));
    }
    if let Some(k) = differing(&a.rights, &b.rights) {
        return Some(Aggregate::Right(k));
    }
    differing(&a.milestones, &b.milestones).map(Aggregate::Milestone)
}

/// Why `check` failed.
pub(crate) enum CheckFailure {
    /// Replaying the log breaks a rule at this event.
    Rule(Box<domain::FoldError>),
    /// A checkpoint or index key differs from what the log gives.
    Keys(String),
    /// The check itself could not run (its second thread panicked): no verdict on the log.
    Failed(Error),
}

/// Caller keys by key, in key order (so that of two damaged keys the same one is reported).
type Keys = BTreeMap<Vec<u8>, Vec<u8>>;

/// The caller keys of a store whose keys are current, and the checkpoints their pieces name.
struct Stored {
    all: Keys,
    /// The dates of the checkpoints (from their pieces' keys, not from `cl`, which is
    /// compared with them).
    dates: BTreeSet<Date>,
    pieces_of: BTreeMap<Date, usize>,
    /// The dates of the checkpoints with a correction (`ov/`).
    corrected: BTreeSet<Date>,
    /// A checkpoint key that names no date.
    damaged: Option<String>,
}

impl Stored {
    /// The keys to check: `None` when there are none, or they were written for an older head
    /// or format (then no query uses them, and the next append rebuilds them).
    fn read(store: &dyn Snapshot) -> Result<Option<Stored>, String> {
        let Some(ck) = store.aux_get(CK).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if ck.len() != 9 || !(1..=FORMAT).contains(&ck[0]) {
            return Err("the checkpoint marker is damaged".into());
        }
        if ck[0] != FORMAT || ck[1..] != store.len().to_be_bytes() {
            return Ok(None);
        }
        let all: Keys = store
            .aux_range(b"", &[0xff], false)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let mut dates = BTreeSet::new();
        let mut pieces_of: BTreeMap<Date, usize> = BTreeMap::new();
        let mut damaged = None;
        for d in all.keys().filter_map(|k| k.strip_prefix(b"cp/")) {
            // `DATE/NNNNNN`: the pieces themselves are checked when the checkpoint is.
            match d
                .get(..10)
                .filter(|_| d.len() == 17 && d[10] == b'/')
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| Date::parse(t).ok())
            {
                Some(d) => {
                    dates.insert(d);
                    *pieces_of.entry(d).or_default() += 1;
                }
                None => {
                    damaged.get_or_insert_with(|| "a checkpoint key is damaged".to_string());
                }
            }
        }
        let corrected = all
            .keys()
            .filter(|k| k.starts_with(b"ov/"))
            .filter_map(|k| key_date(k))
            .collect();
        Ok(Some(Stored {
            all,
            dates,
            pieces_of,
            corrected,
            damaged,
        }))
    }

    /// Compares the stored checkpoint of `d` with `ledger`, the replay there, keeping the
    /// first difference found.
    fn compare(&self, store: &dyn Snapshot, d: Date, ledger: &Ledger, first: &mut Option<String>) {
        if first.is_some() {
            return;
        }
        // Every piece the keys hold for the date, numbered from 0 without a gap.
        let prefix = checkpoint_prefix(d);
        let count = self.pieces_of.get(&d).copied().unwrap_or(0);
        let mut pieces = Vec::new();
        for i in 0..count {
            match self.all.get_key_value(&piece_key(d, i)) {
                Some((k, v)) => pieces.push((k.as_slice(), v.as_slice())),
                None => break,
            }
        }
        let Some(joined) = (pieces.len() == count)
            .then(|| join_pieces(&prefix, pieces))
            .flatten()
        else {
            *first = Some(format!("checkpoint {d} does not decode"));
            return;
        };
        // Without corrections, the stored encoding is compared with the replay's, which is
        // cheaper than decoding it; where they differ (a checkpoint written before decimals
        // were encoded normalized, or damage), the values are compared.
        if !self.corrected.contains(&d)
            && ledger_plain(&joined)
                .is_some_and(|plain| plain == crate::ledger_codec::encode(ledger))
        {
            return;
        }
        let stored = load_checkpoint(store, d, &joined).ok();
        match stored {
            None => *first = Some(format!("checkpoint {d} does not decode")),
            Some(stored) if stored != *ledger => {
                *first = Some(format!(
                    "checkpoint {d} differs from a replay of the log{}",
                    differing_aggregate(&stored, ledger)
                        .map(|a| format!(" (aggregate {a})"))
                        .unwrap_or_default()
                ))
            }
            Some(_) => {}
        }
    }
}

/// The index keys (everything but checkpoints, tails and history) that the events give, as
/// they are shown one by one, in any order.
#[derive(Default)]
struct IndexFold {
    by_date: BTreeMap<Date, Vec<u64>>,
    streams: ahash::AHashMap<Aggregate, Vec<u64>>,
    parties: Vec<Vec<u8>>,
    /// Each reversal's seq and the id of the event it reverses.
    reversals: Vec<(u64, String)>,
}

impl IndexFold {
    /// `r`, dated in the index unless `dated` is false (the streamed check builds the date
    /// lists from its plan, which every event was checked against).
    fn add(&mut self, r: &RecordedEvent, aggregate: Option<&Aggregate>, dated: bool) {
        if dated {
            self.by_date
                .entry(r.event.effective)
                .or_default()
                .push(r.seq);
        }
        if let Some(a) = aggregate {
            match self.streams.get_mut(a) {
                Some(list) => list.push(r.seq),
                None => {
                    self.streams.insert(a.clone(), vec![r.seq]);
                }
            }
        }
        match &r.event.payload {
            Payload::PartyRegistered(p) => self.parties.push(key("pt", p.party.as_str())),
            Payload::EventReversed(p) => self.reversals.push((r.seq, p.reverses.to_string())),
            _ => {}
        }
    }

    /// The keys but the reversals' (`reversal_keys`), with `ck` as stored and the list of
    /// the checkpoints there are; and the reversals.
    fn finish(self, ck: &[u8], checkpoints: &BTreeSet<Date>) -> (Keys, Vec<(u64, String)>) {
        let mut expected = Keys::new();
        if let Some(v) = checkpoint_list(checkpoints).value {
            expected.insert(CL.to_vec(), v);
        }
        for k in self.parties {
            expected.insert(k, Vec::new());
        }
        let lists = self
            .by_date
            .into_iter()
            .map(|(date, seqs)| (date_prefix(date), seqs))
            .chain(
                self.streams
                    .into_iter()
                    .map(|(a, seqs)| (stream_prefix(&a), seqs)),
            );
        for (prefix, mut seqs) in lists {
            // Ascending, as stored (a no-op when the events came in seq order).
            seqs.sort_unstable();
            for w in extend_list(None, &prefix, &seqs).unwrap_or_default() {
                expected.insert(w.key, w.value.unwrap_or_default());
            }
        }
        expected.insert(CK.to_vec(), ck.to_vec());
        (expected, self.reversals)
    }
}

/// Adds to `expected` the reversed set and the reversals' index that `reversals` (each
/// reversal's seq and the id it reverses) give; `seq_of` finds the seq of a reversed id.
fn reversal_keys(
    expected: &mut Keys,
    reversals: &[(u64, String)],
    seq_of: impl Fn(&str) -> Option<u64>,
) {
    let mut pairs: Vec<(u64, u64)> = reversals
        .iter()
        .filter_map(|(r, id)| seq_of(id).map(|t| (*r, t)))
        .collect();
    pairs.sort_unstable();
    let reversed: BTreeSet<u64> = pairs.iter().map(|(_, t)| *t).collect();
    if !reversed.is_empty() {
        expected.insert(RV.to_vec(), encode_seqs(&reversed));
    }
    if !pairs.is_empty() {
        expected.insert(RS.to_vec(), encode_pairs(&pairs));
    }
}

/// The checkpoints' history as stored: every entry by aggregate, and when each checkpoint
/// began to keep one.
struct History {
    /// Aggregate -> (date, first seq of the batch, last seq of the batch, state).
    entries: BTreeMap<Aggregate, Vec<(Date, u64, u64, Ledger)>>,
    /// (checkpoint date, the seq it was taken at).
    created: Vec<(Date, u64)>,
}

impl History {
    fn read(all: &Keys, head: u64, dates: &BTreeSet<Date>) -> Result<History, String> {
        let mut entries: BTreeMap<Aggregate, Vec<(Date, u64, u64, Ledger)>> = BTreeMap::new();
        for (k, v) in all.iter().filter(|(k, _)| k.starts_with(b"oh/")) {
            let damaged = || {
                format!(
                    "checkpoint history {:?} is damaged",
                    String::from_utf8_lossy(k)
                )
            };
            let (date, a, first, last, slice) = parse_history(k, v).ok_or_else(damaged)?;
            if !dates.contains(&date) || first == 0 || first > last || last > head {
                return Err(damaged());
            }
            entries
                .entry(a)
                .or_default()
                .push((date, first, last, slice));
        }
        // A damaged creation key is reported with the other keys.
        let mut created = Vec::new();
        for (k, v) in all.iter().filter(|(k, _)| k.starts_with(b"cs/")) {
            if let (Some(d), Ok(b)) = (key_date(k), <[u8; 8]>::try_from(v.as_slice())) {
                created.push((d, u64::from_be_bytes(b)));
            }
        }
        Ok(History { entries, created })
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.created.is_empty()
    }

    /// The seq after which some event may need history: the earliest a checkpoint was taken.
    fn since(&self) -> Option<u64> {
        self.created.iter().map(|(_, s)| *s).min()
    }

    /// Completeness: the event `seq`, which changes `a` at `effective` (its own date, or for a
    /// reversal its target's), falls inside the batch of an entry of `a` at every checkpoint
    /// taken before it and dated on or after `effective`.
    fn covers(&self, a: &Aggregate, effective: Date, seq: u64) -> Result<(), String> {
        for (date, since) in &self.created {
            if seq <= *since || effective > *date {
                continue;
            }
            let covered = self.entries.get(a).is_some_and(|list| {
                list.iter()
                    .any(|(d, first, last, _)| d == date && (*first..=*last).contains(&seq))
            });
            if !covered {
                return Err(format!(
                    "checkpoint {date} has no history of seq {seq} (aggregate {a})"
                ));
            }
        }
        Ok(())
    }

    /// Each entry of `a`: its state must be what `part` (the parties' events, every reversal
    /// and `a`'s own events, in seq order) folds to at the entry's date as known before its
    /// batch. Every reversal, so that a reversed party registration is left out as the log
    /// leaves it out (a reversal of an event outside the part changes nothing here).
    fn check_states(&self, a: &Aggregate, part: &[&RecordedEvent]) -> Result<(), String> {
        let Some(list) = self.entries.get(a) else {
            return Ok(());
        };
        // The entries of one batch (one `first`) share a fold: the part as known before the
        // batch, in timeline order, compared at each of their dates as the fold passes it.
        let mut batches: BTreeMap<u64, Vec<(Date, &Ledger)>> = BTreeMap::new();
        for (date, first, _, slice) in list {
            batches.entry(*first).or_default().push((*date, slice));
        }
        for (first, mut at) in batches {
            at.sort_unstable_by_key(|(date, _)| *date);
            let timeline = order(
                part.iter()
                    .filter(|r| r.seq < first)
                    .map(|r| (r.seq, &r.event))
                    .collect(),
            );
            let mut ledger = Ledger::new();
            let mut pending = at.into_iter().peekable();
            let compare = |ledger: &Ledger, date: Date, slice: &Ledger| {
                if ledger.slice([a]) == slice.slice([a]) {
                    Ok(())
                } else {
                    Err(format!(
                        "checkpoint history of {a} at {date} before seq {first} differs from the log"
                    ))
                }
            };
            for (seq, event) in timeline {
                while let Some((date, slice)) = pending.next_if(|(d, _)| *d < event.effective) {
                    compare(&ledger, date, slice)?;
                }
                let Some((date, _)) = pending.peek() else {
                    break;
                };
                if ledger.apply(event).is_err() {
                    return Err(format!(
                        "checkpoint history of {a} at {date} does not fold (seq {seq})"
                    ));
                }
            }
            for (date, slice) in pending {
                compare(&ledger, date, slice)?;
            }
        }
        Ok(())
    }
}

/// Whether an event is shared by every history entry's fold (see `History::check_states`).
fn shared(r: &RecordedEvent) -> bool {
    matches!(
        r.event.payload,
        Payload::PartyRegistered(_) | Payload::PartyUpdated(_) | Payload::EventReversed(_)
    )
}

/// Checks every history entry against the log, which is held whole (see `History`).
fn check_history(all: &Keys, log: &[RecordedEvent], dates: &BTreeSet<Date>) -> Result<(), String> {
    let head = log.last().map_or(0, |r| r.seq);
    let history = History::read(all, head, dates)?;
    if history.is_empty() {
        return Ok(());
    }
    // The reversals' targets, found in one pass.
    let mut targets: ahash::AHashMap<&str, Option<(Aggregate, Date)>> = log
        .iter()
        .filter_map(|r| match &r.event.payload {
            Payload::EventReversed(p) => Some((p.reverses.as_str(), None)),
            _ => None,
        })
        .collect();
    for r in log {
        if let Some(t) = targets.get_mut(r.event.id.as_str()) {
            *t = Aggregate::of(&r.event).map(|a| (a, r.event.effective));
        }
    }
    if let Some(since) = history.since() {
        // The log is in seq order: the events after `since` are a suffix of it.
        for r in &log[log.partition_point(|r| r.seq <= since)..] {
            let change = match &r.event.payload {
                Payload::EventReversed(p) => targets.get(p.reverses.as_str()).cloned().flatten(),
                _ => Aggregate::of(&r.event).map(|a| (a, r.event.effective)),
            };
            if let Some((a, effective)) = change {
                history.covers(&a, effective, r.seq)?;
            }
        }
    }
    // One pass over the log sorts out the shared events and each aggregate's own.
    let mut common: Vec<&RecordedEvent> = Vec::new();
    let mut own: ahash::AHashMap<&Aggregate, Vec<&RecordedEvent>> =
        history.entries.keys().map(|a| (a, Vec::new())).collect();
    if !history.entries.is_empty() {
        for r in log {
            if shared(r) {
                common.push(r);
            } else if let Some(list) = Aggregate::of(&r.event).and_then(|a| own.get_mut(&a)) {
                list.push(r);
            }
        }
    }
    for a in history.entries.keys() {
        let mut part: Vec<&RecordedEvent> = common
            .iter()
            .copied()
            .chain(own.get(a).into_iter().flatten().copied())
            .collect();
        part.sort_unstable_by_key(|r| r.seq);
        history.check_states(a, &part)?;
    }
    Ok(())
}

/// The ids of the events that some reversal in `log` reverses.
fn reversed_ids(log: &[RecordedEvent]) -> ahash::AHashSet<&str> {
    log.iter()
        .filter_map(|r| match &r.event.payload {
            Payload::EventReversed(p) => Some(p.reverses.as_str()),
            _ => None,
        })
        .collect()
}

/// Each aggregate's last effective date among the events a replay folds (reversals and the
/// events they reverse left out): what its tail's date must be.
fn last_dates(log: &[RecordedEvent]) -> ahash::AHashMap<Aggregate, Date> {
    let reversed = reversed_ids(log);
    let mut last: ahash::AHashMap<Aggregate, Date> = ahash::AHashMap::new();
    for r in log {
        if matches!(r.event.payload, Payload::EventReversed(_))
            || reversed.contains(r.event.id.as_str())
        {
            continue;
        }
        if let Some(a) = Aggregate::of(&r.event) {
            let date = last.entry(a).or_insert(r.event.effective);
            *date = (*date).max(r.event.effective);
        }
    }
    last
}

/// Everything after the replay: the tails against the replay's ledger and `last` dates, the
/// history's verdict, then every other key against `expected` (both ways).
fn compare_keys(
    store: &dyn Snapshot,
    stored: &Stored,
    expected: &Keys,
    last: &ahash::AHashMap<Aggregate, Date>,
    ledger: &Ledger,
    history: Result<(), String>,
) -> Result<(), String> {
    let all = &stored.all;
    // Tails are compared as values, not bytes: a decimal keeps the scale it
    // was appended with (`5.50`) in memory but not in the log (`5.5`).
    for (k, v) in all.iter().filter(|(k, _)| k.starts_with(b"at/")) {
        let aggregate = std::str::from_utf8(&k[3..]).ok().and_then(Aggregate::parse);
        let matches = match (aggregate, decode_tail(v)) {
            (Some(a), Some((date, slice))) => {
                last.get(&a) == Some(&date) && slice == ledger.slice([&a])
            }
            _ => false,
        };
        if !matches {
            return Err(format!(
                "aggregate tail {:?} differs from the log",
                String::from_utf8_lossy(k)
            ));
        }
    }
    if let Some(a) = last.keys().find(|a| !all.contains_key(&tail_key(a))) {
        return Err(format!("the tail of aggregate {a} is missing"));
    }
    history?;
    for (k, v) in all {
        if k.starts_with(b"cp/") || k.starts_with(b"at/") || k.starts_with(b"oh/") {
            continue;
        }
        if k.starts_with(b"cs/") {
            let date = key_date(k).filter(|d| stored.dates.contains(d));
            let seq = <[u8; 8]>::try_from(v.as_slice()).map(u64::from_be_bytes);
            if date.is_none() || seq.map_or(true, |s| s > store.len()) {
                return Err(format!(
                    "checkpoint creation key {:?} is damaged or has no checkpoint",
                    String::from_utf8_lossy(k)
                ));
            }
            continue;
        }
        // Corrections were applied to their checkpoint above; one without
        // a checkpoint corrects nothing and is damage.
        if k.starts_with(b"ov/") {
            if key_date(k).is_none_or(|d| !stored.dates.contains(&d)) {
                return Err(format!(
                    "checkpoint correction {:?} has no checkpoint",
                    String::from_utf8_lossy(k)
                ));
            }
            continue;
        }
        if expected.get(k) != Some(v) {
            return Err(format!(
                "index key {:?} differs from the log",
                String::from_utf8_lossy(k)
            ));
        }
    }
    for k in expected.keys() {
        if !all.contains_key(k) {
            return Err(format!(
                "index key {:?} is missing",
                String::from_utf8_lossy(k)
            ));
        }
    }
    Ok(())
}

/// Replays the whole log as known now, checking every rule, and compares
/// every checkpoint and index key with what the replay gives, in one pass.
/// A rule broken anywhere is reported before a key that differs; a store
/// without current keys only has its rules checked.
pub(crate) fn check(store: &dyn Snapshot, log: &[RecordedEvent]) -> Result<(), CheckFailure> {
    // The keys are read on a second thread while this one puts the log in timeline order.
    let (timeline, keys) = crate::load::in_parallel(
        || order(log.iter().map(|r| (r.seq, &r.event)).collect()),
        || Ok(Stored::read(store)),
    );
    let keys = keys.map_err(CheckFailure::Failed)?;
    let mut first_difference: Option<String> = match &keys {
        Ok(Some(stored)) => stored.damaged.clone(),
        _ => None,
    };
    let stored = keys.as_ref().ok().and_then(Option::as_ref);
    let no_dates = BTreeSet::new();
    let dates = stored.map_or(&no_dates, |s| &s.dates);
    // Each checkpoint is compared when the replay reaches its date, so no
    // state is kept beyond the one being folded.
    let mut replay = || -> Result<Ledger, CheckFailure> {
        let mut ledger = Ledger::new();
        let mut pending = dates.iter().copied().peekable();
        let mut compare = |d: Date, ledger: &Ledger| {
            if let Some(s) = stored {
                s.compare(store, d, ledger, &mut first_difference);
            }
        };
        for (seq, event) in &timeline {
            while let Some(d) = pending.next_if(|d| *d < event.effective) {
                compare(d, &ledger);
            }
            ledger.apply(event).map_err(|rejection| {
                CheckFailure::Rule(Box::new(domain::FoldError {
                    seq: *seq,
                    rejection,
                }))
            })?;
        }
        for d in pending {
            compare(d, &ledger);
        }
        Ok(ledger)
    };
    // The replay here; meanwhile, when there are keys to compare, the index keys the log
    // gives, each aggregate's last date and the checkpoints' history are worked out on a
    // second thread (each result is reported in its turn below).
    let (ledger, derived) = match stored {
        Some(s) => {
            let (ledger, derived) = crate::load::in_parallel(replay, || {
                let mut index = IndexFold::default();
                for r in log {
                    index.add(r, Aggregate::of(&r.event).as_ref(), true);
                }
                let seq_of: ahash::AHashMap<&str, u64> = {
                    let targets = reversed_ids(log);
                    log.iter()
                        .filter(|r| targets.contains(r.event.id.as_str()))
                        .map(|r| (r.event.id.as_str(), r.seq))
                        .collect()
                };
                let (mut expected, reversals) = index.finish(&s.all[CK], &s.dates);
                reversal_keys(&mut expected, &reversals, |id| seq_of.get(id).copied());
                Ok((
                    expected,
                    last_dates(log),
                    check_history(&s.all, log, &s.dates),
                ))
            });
            (ledger?, Some(derived.map_err(CheckFailure::Failed)?))
        }
        None => (replay()?, None),
    };
    let stored = match keys {
        Err(m) => return Err(CheckFailure::Keys(m)),
        Ok(None) => return Ok(()),
        Ok(Some(stored)) => stored,
    };
    if let Some(m) = first_difference {
        return Err(CheckFailure::Keys(m));
    }
    let Some((expected, last, history)) = derived else {
        return Err(CheckFailure::Keys("the keys were read twice".into()));
    };
    compare_keys(store, &stored, &expected, &last, &ledger, history).map_err(CheckFailure::Keys)
}

/// What a streamed check that passed saw.
pub(crate) struct Streamed {
    pub events: u64,
    /// The hash of the event asked for, when the log has it.
    pub hash: Option<String>,
}

/// Events per message from the reader to the fold.
const BATCH: usize = 4096;

/// One batch of events from the reader, each with its aggregate.
type Batch = Vec<(RecordedEvent, Option<Aggregate>)>;

/// The streamed check (see the module's documentation): `Ok` when the log and every key
/// agree, `Err` with the first thing found otherwise, which the caller does not report but
/// answers by running `check`. `hash_of`: a seq whose hash to keep.
///
/// Two threads: one reads and decodes the log in timeline order and works out the index keys
/// the events give; this one folds them, comparing each checkpoint as the fold passes its date.
/// `log`: the records in seq order as the store's own check hands them on (`read_checked`);
/// where they end is not a verdict (the caller's check of the store gives that).
pub(crate) fn streamed(
    store: &dyn Snapshot,
    log: &mut Feed,
    hash_of: Option<u64>,
) -> Result<Streamed, String> {
    let stored = Stored::read(store)?.ok_or("the keys are not current")?;
    if let Some(m) = &stored.damaged {
        return Err(m.clone());
    }
    let head = store.len();
    let plan = Plan::of(&stored, head)?;
    let planned_reversed = match stored.all.get(RV) {
        Some(v) => decode_seqs(v).ok_or("the reversed set does not decode")?,
        None => BTreeSet::new(),
    };
    let history = History::read(&stored.all, head, &stored.dates)?;

    let (tx, rx) = mpsc::sync_channel::<Result<Batch, String>>(2);
    // The batches folded go back to the reader, which made them, to be freed there: a free on
    // the thread that allocated is cheaper than one from another thread.
    let (done_tx, done_rx) = mpsc::channel::<Batch>();
    let (reading, folded) = std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("accord-verify-read".into())
            .spawn_scoped(scope, || {
                plan.read(store, log, &stored, &history, hash_of, (tx, done_rx))
            });
        let folded = match &reader {
            Ok(_) => fold_streamed(
                store,
                &stored,
                &plan,
                &planned_reversed,
                &history,
                (rx, done_tx),
            ),
            Err(e) => Err(format!("no thread for the reads: {e}")),
        };
        let reading = reader
            .map_err(|e| e.to_string())
            .and_then(|r| r.join().map_err(|_| "the reads panicked".to_string()))
            .and_then(|r| r);
        (reading, folded)
    });
    let Read {
        hash,
        mut expected,
        reversals,
        streams,
    } = reading?;
    let Folded {
        ledger,
        last,
        targets,
        late_reversals,
        mut shared_events,
    } = folded?;

    // The reversed set the fold left out must be the one the log gives: every planned event's
    // id reversed by some reversal, and every id a reversal names either a planned event's or
    // none in the log (ids are unique in a log, which the store's own check holds to).
    let reversed_ids: ahash::AHashSet<&str> = reversals.iter().map(|(_, id)| id.as_str()).collect();
    if targets.len() != planned_reversed.len()
        || targets
            .values()
            .any(|t| !reversed_ids.contains(t.id.as_str()))
    {
        return Err("the reversed set differs from the log".into());
    }
    let seq_of: ahash::AHashMap<&str, u64> = targets
        .iter()
        .map(|(seq, t)| (t.id.as_str(), *seq))
        .collect();
    for id in &reversed_ids {
        if !seq_of.contains_key(id) && store.seq_of(id).map_err(|e| e.to_string())?.is_some() {
            return Err(format!(
                "event {id} is reversed but not in the reversed set"
            ));
        }
    }
    for (seq, id) in &late_reversals {
        let target = seq_of.get(id.as_str()).and_then(|t| targets.get(t));
        if let Some(Target {
            aggregate: Some(a),
            effective,
            ..
        }) = target
        {
            history.covers(a, *effective, *seq)?;
        }
    }
    // Each aggregate with history, its own events read back where they stand.
    shared_events.sort_unstable_by_key(|r| r.seq);
    for a in history.entries.keys() {
        let seqs = streams.get(a).map_or(&[][..], Vec::as_slice);
        let own = crate::load::decode_at(store, seqs).map_err(|e| e.to_string())?;
        // A party's own events are shared ones too: each once.
        let mut part: Vec<&RecordedEvent> = shared_events.iter().chain(own.iter()).collect();
        part.sort_unstable_by_key(|r| r.seq);
        part.dedup_by_key(|r| r.seq);
        history.check_states(a, &part)?;
    }
    reversal_keys(&mut expected, &reversals, |id| seq_of.get(id).copied());
    compare_keys(store, &stored, &expected, &last, &ledger, Ok(()))?;
    Ok(Streamed { events: head, hash })
}

/// What the fold of a streamed check gives the checks after it.
struct Folded {
    ledger: Ledger,
    /// Each aggregate's last date among the events folded.
    last: ahash::AHashMap<Aggregate, Date>,
    /// The events of the planned reversed set, by seq.
    targets: ahash::AHashMap<u64, Target>,
    /// The reversals recorded after the first checkpoint was taken: (seq, reversed id).
    late_reversals: Vec<(u64, String)>,
    /// The events every history entry's fold shares (see `History::check_states`), when
    /// there are entries.
    shared_events: Vec<RecordedEvent>,
}

/// An event of the planned reversed set.
struct Target {
    id: domain::values::EventId,
    aggregate: Option<Aggregate>,
    effective: Date,
}

/// The fold of a streamed check, from the batches of `rx`.
fn fold_streamed(
    store: &dyn Snapshot,
    stored: &Stored,
    plan: &Plan,
    planned_reversed: &BTreeSet<u64>,
    history: &History,
    (rx, done): (mpsc::Receiver<Result<Batch, String>>, mpsc::Sender<Batch>),
) -> Result<Folded, String> {
    let since = history.since();
    let keep_shared = !history.entries.is_empty();
    let mut ledger = Ledger::new();
    let mut pending = stored.dates.iter().copied().peekable();
    let mut first_difference = None;
    let mut last: ahash::AHashMap<Aggregate, Date> = ahash::AHashMap::new();
    let mut targets = ahash::AHashMap::new();
    let mut late_reversals = Vec::new();
    let mut shared_events = Vec::new();
    let mut next = plan.order.iter();
    for batch in rx.iter() {
        let batch = batch?;
        for (r, aggregate) in &batch {
            if next.next() != Some(&r.seq) || plan.date(r.seq) != Some(r.event.effective) {
                return Err(format!("seq {} is not where the date index puts it", r.seq));
            }
            let reversal = match &r.event.payload {
                Payload::EventReversed(p) => Some(p.reverses.as_str()),
                _ => None,
            };
            let reversed = planned_reversed.contains(&r.seq);
            if reversed {
                let target = Target {
                    id: r.event.id.clone(),
                    aggregate: aggregate.clone(),
                    effective: r.event.effective,
                };
                targets.insert(r.seq, target);
            }
            if since.is_some_and(|s| r.seq > s) {
                match (reversal, &aggregate) {
                    (Some(id), _) => late_reversals.push((r.seq, id.to_string())),
                    (None, Some(a)) => history.covers(a, r.event.effective, r.seq)?,
                    (None, None) => {}
                }
            }
            if reversal.is_none() && !reversed {
                while let Some(d) = pending.next_if(|d| *d < r.event.effective) {
                    stored.compare(store, d, &ledger, &mut first_difference);
                }
                ledger
                    .apply(&r.event)
                    .map_err(|e| format!("seq {}: {e}", r.seq))?;
                if let Some(a) = aggregate {
                    match last.get_mut(a) {
                        Some(d) => *d = r.event.effective,
                        None => {
                            last.insert(a.clone(), r.event.effective);
                        }
                    }
                }
            }
            if keep_shared && shared(r) {
                shared_events.push(r.clone());
            }
        }
        // The reader frees it; if the reader is gone, it is freed here.
        let _ = done.send(batch);
    }
    if next.next().is_some() {
        return Err("the log ended before the date index".into());
    }
    for d in pending {
        stored.compare(store, d, &ledger, &mut first_difference);
    }
    if let Some(m) = first_difference {
        return Err(m);
    }
    Ok(Folded {
        ledger,
        last,
        targets,
        late_reversals,
        shared_events,
    })
}

/// `records` decoded, each event with its aggregate.
fn decode_all(records: &[Record], times: &mut RecordedTimes) -> Result<Batch, String> {
    records
        .iter()
        .map(|record| {
            let r = decode_with(record, times).map_err(|m| format!("seq {}: {m}", record.seq))?;
            let aggregate = Aggregate::of(&r.event);
            Ok((r, aggregate))
        })
        .collect()
}

/// What the reads of a streamed check give beside the events.
struct Read {
    /// The hash of the event asked for, when the log has it.
    hash: Option<String>,
    /// The index keys the events give, but for the reversals'.
    expected: Keys,
    /// Each reversal's seq and the id it reverses.
    reversals: Vec<(u64, String)>,
    /// The streams of the aggregates with history.
    streams: BTreeMap<Aggregate, Vec<u64>>,
}

/// The order a streamed check reads the log in, from the date index.
struct Plan {
    /// Every seq in timeline order: by date, then by seq.
    order: Vec<u64>,
    /// The date of each seq (index `seq - 1`).
    dates: Vec<Date>,
    /// Whether each seq (index `seq - 1`) is dated before some event recorded before it:
    /// those are read where they stand; the others, in seq order, are already in timeline
    /// order.
    late: Vec<bool>,
}

impl Plan {
    /// The plan of a log of `len` events: every seq must be in the date index exactly once.
    fn of(stored: &Stored, len: u64) -> Result<Plan, String> {
        let n = usize::try_from(len).map_err(|_| "the log is too long")?;
        let mut dates: Vec<Option<Date>> = vec![None; n];
        for (k, v) in stored.all.iter().filter(|(k, _)| k.starts_with(b"dx/")) {
            let date = key_date(k).ok_or("a date index key is damaged")?;
            for seq in decode_varints(v).ok_or("a date index chunk does not decode")? {
                let slot = usize::try_from(seq)
                    .ok()
                    .and_then(|s| s.checked_sub(1))
                    .and_then(|i| dates.get_mut(i))
                    .ok_or("the date index names a seq the log does not have")?;
                if slot.replace(date).is_some() {
                    return Err(format!("the date index names seq {seq} twice"));
                }
            }
        }
        let dates: Vec<Date> = dates
            .into_iter()
            .collect::<Option<_>>()
            .ok_or("the date index misses a seq")?;
        // Stable, so that seqs of one date stay ascending; the log is mostly in date order
        // already, which the sort finds.
        let mut order: Vec<u64> = (1..=len).collect();
        order.sort_by_key(|s| dates[(*s - 1) as usize]);
        let mut late = Vec::with_capacity(n);
        let mut latest: Option<Date> = None;
        for d in &dates {
            late.push(latest.is_some_and(|l| *d < l));
            latest = latest.max(Some(*d));
        }
        Ok(Plan { order, dates, late })
    }

    fn date(&self, seq: u64) -> Option<Date> {
        self.dates
            .get(usize::try_from(seq).ok()?.checked_sub(1)?)
            .copied()
    }

    fn is_late(&self, seq: u64) -> bool {
        seq.checked_sub(1)
            .and_then(|i| self.late.get(usize::try_from(i).ok()?))
            .copied()
            .unwrap_or(false)
    }

    /// Reads and decodes the log in `order`, a batch at a time, into `tx`: the events in
    /// seq order from one pass over the log, the late ones where they stand. Then gives the
    /// hash of `hash_of` (when the log has it), the index keys the events give but for the
    /// reversals', and the streams of the aggregates with `history`.
    fn read(
        &self,
        store: &dyn Snapshot,
        log: &mut Feed,
        stored: &Stored,
        history: &History,
        hash_of: Option<u64>,
        (tx, done): (
            mpsc::SyncSender<Result<Batch, String>>,
            mpsc::Receiver<Batch>,
        ),
    ) -> Result<Read, String> {
        let mut hash = None;
        let mut index = IndexFold::default();
        let mut times = RecordedTimes::default();
        let mut run = || -> Result<(), String> {
            for batch in self.order.chunks(BATCH) {
                // The batches the fold is through with, freed on this thread that made them.
                while done.try_recv().is_ok() {}
                let late: Vec<u64> = batch.iter().copied().filter(|s| self.is_late(*s)).collect();
                let mut fetched: ahash::AHashMap<u64, Record> = store
                    .records_at(&late)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|r| (r.seq, r))
                    .collect();
                let mut records = Vec::with_capacity(batch.len());
                for &seq in batch {
                    let record = if self.is_late(seq) {
                        fetched.remove(&seq).ok_or("a late record was not read")?
                    } else {
                        loop {
                            let r = log.next().ok_or("the log ended early")?;
                            if r.seq == seq {
                                break r;
                            }
                            if !self.is_late(r.seq) {
                                return Err(format!("seq {} came out of order", r.seq));
                            }
                        }
                    };
                    if hash_of == Some(record.seq) {
                        hash = Some(record.hash_hex());
                    }
                    records.push(record);
                }
                let events = decode_all(&records, &mut times)?;
                for (r, aggregate) in &events {
                    index.add(r, aggregate.as_ref(), false);
                }
                if tx.send(Ok(events)).is_err() {
                    // The fold stopped: its verdict is in.
                    return Ok(());
                }
            }
            Ok(())
        };
        match run() {
            Ok(()) => {
                // The date lists are the plan's, which every event is checked against.
                for run in self.order.chunk_by(|a, b| self.date(*a) == self.date(*b)) {
                    if let Some(date) = run.first().and_then(|s| self.date(*s)) {
                        index.by_date.insert(date, run.to_vec());
                    }
                }
                let streams = history
                    .entries
                    .keys()
                    .map(|a| (a.clone(), index.streams.get(a).cloned().unwrap_or_default()))
                    .collect();
                let (expected, reversals) = index.finish(&stored.all[CK], &stored.dates);
                Ok(Read {
                    hash,
                    expected,
                    reversals,
                    streams,
                })
            }
            Err(m) => {
                let _ = tx.send(Err(m.clone()));
                Err(m)
            }
        }
    }
}
