//! Appends that read only what they touch.
//!
//! `Ledger::apply` accepts or refuses an event from two things only: the
//! state of the event's own aggregate and the registrations of the parties
//! it names (`domain::aggregate`). So a small batch is validated against a
//! part of the log: the events of the aggregates it touches (the `ag/`
//! streams, reversed events left out), the registrations of every party
//! those events name, the recorded events that share an id with the batch
//! and the targets of its reversals. `plan_batch_at` checks that part as
//! `plan_batch` checks the whole log, with the same refusals: events left
//! out cannot change (their streams are untouched), so the first event to
//! fail is the same.
//!
//! The keys of `checkpoints` are then brought up to date without a replay:
//! the indexes are extended, each checkpoint dated on or after the batch's
//! earliest date gets a correction (`ov/DATE/AGGREGATE`) for each touched
//! aggregate, computed by the same fold, and a new checkpoint is taken from
//! the last one when enough events have come after it. Everything goes into
//! the batch's one atomic write.
//!
//! Cases that would need the whole log (a reversal of a party registration,
//! which every event naming the party depends on; a reversal of an event
//! already reversed, whose refusal names the earlier reversal; re-sending a
//! reversed event) return `None`, and the caller takes the full path.
//! `Config::full_append` forces the full path (tests compare the two).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::event::{Event, Payload};
use domain::ledger::Ledger;
use domain::values::Date;
use domain::{order, plan_batch_at, plan_batch_on, Aggregate, BatchEvent, Plan, RecordedEvent};
use store::{AuxWrite, NewEvent, Snapshot, Transaction};

use crate::checkpoints::{
    checkpoint_dates, checkpoint_list, checkpoint_writes, ck_value, corrupt, created, date_of_key,
    date_prefix, decode_seqs, decode_tail, encode_ledger, encode_seqs, encode_tail, extend_list,
    extend_pairs, history, key, keys_current, ledger_as_of, overlay_key, party_writes, read_stream,
    replay, stored_checkpoint, stored_pieces, stream_writes, tail_key, RV,
};
use crate::load::decode_at;
use crate::receipt::Receipt;
use crate::{Config, Error};

/// Batches larger than this take the full path: a big batch touches much of
/// the log anyway.
const MAX_EVENTS: usize = 1024;

/// Validates and appends one file's events (`name` for refusals, `events`
/// with their lines) reading only what they touch. `Ok(None)`: this batch
/// needs the full path, and nothing was written.
pub(crate) fn try_append(
    txn: &mut dyn Transaction,
    name: &str,
    events: &[(usize, Event)],
    config: &Config,
) -> Result<Option<Receipt>, Error> {
    let Some(p) = try_plan(txn, name, events, config)? else {
        return Ok(None);
    };
    commit(txn, &p, config).map(Some)
}

/// A batch validated against the part of the log it touches.
pub(crate) struct FastPlan {
    /// The touched aggregates' states it was validated from (the common case), or nothing.
    base: Ledger,
    /// The recorded events it was validated against.
    part: Vec<RecordedEvent>,
    pub(crate) batch: Vec<BatchEvent>,
    /// Which batch events are new, which were recorded already.
    pub(crate) plan: Plan,
    reversed: Reversed,
}

impl FastPlan {
    /// The batch's new events as they would be recorded after `head` at `now`.
    pub(crate) fn recorded(&self, head: u64, now: DateTime<Utc>) -> Vec<RecordedEvent> {
        self.plan
            .new
            .iter()
            .enumerate()
            .map(|(k, &i)| RecordedEvent {
                seq: head + 1 + k as u64,
                recorded: now,
                event: self.batch[i].event.clone(),
            })
            .collect()
    }
}

/// Validates one file's events as `try_append` does, writing nothing (`Ok(None)`: the batch
/// needs the full path). What-if projections use it too.
pub(crate) fn try_plan(
    store: &dyn Snapshot,
    name: &str,
    events: &[(usize, Event)],
    config: &Config,
) -> Result<Option<FastPlan>, Error> {
    if events.is_empty() || events.len() > MAX_EVENTS || config.full_append || !keys_current(store)?
    {
        return Ok(None);
    }
    let head = store.len();
    let reversed = Reversed::read(store)?;

    // Recorded events with the batch's ids (idempotency), and the targets
    // of its reversals.
    let mut wanted: BTreeSet<u64> = BTreeSet::new();
    let mut targets: Vec<u64> = Vec::new();
    for (_, e) in events {
        if let Some(seq) = store.seq_of(e.id.as_str())? {
            if reversed.get()?.contains(&seq) {
                return Ok(None);
            }
            wanted.insert(seq);
        }
        if let Payload::EventReversed(p) = &e.payload {
            if let Some(seq) = store.seq_of(p.reverses.as_str())? {
                if reversed.get()?.contains(&seq) {
                    return Ok(None);
                }
                wanted.insert(seq);
                targets.push(seq);
            }
        }
    }
    let batch: Vec<BatchEvent> = events
        .iter()
        .map(|(line, event)| BatchEvent {
            line: Some(*line),
            event: event.clone(),
        })
        .collect();
    // The aggregates the batch changes: its events' own, and those of the
    // events it reverses.
    let mut touched: BTreeSet<Aggregate> = events
        .iter()
        .filter_map(|(_, e)| Aggregate::of(e))
        .collect();

    // The common case, events dated after everything their aggregates hold:
    // the aggregates' current states are all the batch reads.
    let reverses = events
        .iter()
        .any(|(_, e)| matches!(e.payload, Payload::EventReversed(_)));
    if wanted.is_empty() && !reverses {
        if let Some(base) = tails(store, events, &touched)? {
            let plan =
                plan_batch_on(&base, &[], head + 1, &batch).map_err(|e| Error::batch(name, &e))?;
            return Ok(Some(FastPlan {
                base,
                part: Vec::new(),
                batch,
                plan,
                reversed,
            }));
        }
    }

    let mut part: BTreeMap<u64, RecordedEvent> = fetch(store, &wanted)?;
    for seq in &targets {
        let target = &part[seq].event;
        if matches!(target.payload, Payload::PartyRegistered(_)) {
            return Ok(None);
        }
        touched.extend(Aggregate::of(target));
    }

    // Their streams, then the registrations of every party named.
    let mut loaded: BTreeSet<Aggregate> = BTreeSet::new();
    load_streams(store, &touched, &reversed, &mut loaded, &mut part)?;
    let parties: BTreeSet<Aggregate> = part
        .values()
        .map(|r| &r.event)
        .chain(events.iter().map(|(_, e)| e))
        .flat_map(|e| e.referenced_parties())
        .map(|p| Aggregate::Party(p.clone()))
        .collect();
    load_streams(store, &parties, &reversed, &mut loaded, &mut part)?;

    let part: Vec<RecordedEvent> = part.into_values().collect();
    let plan = plan_batch_at(&part, head + 1, &batch).map_err(|e| Error::batch(name, &e))?;
    Ok(Some(FastPlan {
        base: Ledger::new(),
        part,
        batch,
        plan,
        reversed,
    }))
}

/// The ledger as of `as_of` with a what-if batch `new` (planned by `try_plan` as `plan`)
/// appended: the ledger as of `as_of` as known now, with the aggregates the batch changes
/// taken from the fold the plan was validated with, so nothing is read twice. `None` when
/// the keys are not current.
pub(crate) fn what_if_ledger(
    present: Option<Ledger>,
    as_of: Date,
    plan: &FastPlan,
    new: &[RecordedEvent],
) -> Result<Option<Ledger>, Error> {
    let Some(mut ledger) = present else {
        return Ok(None);
    };
    // What the batch changes: its events' aggregates and those of the events it reverses.
    let by_id: BTreeMap<&str, &RecordedEvent> = plan
        .part
        .iter()
        .chain(new)
        .map(|r| (r.event.id.as_str(), r))
        .collect();
    let mut changed: Vec<&RecordedEvent> = Vec::new();
    for r in new {
        match &r.event.payload {
            Payload::EventReversed(p) => changed.extend(by_id.get(p.reverses.as_str())),
            _ => changed.push(r),
        }
    }
    if changed.iter().all(|r| r.event.effective > as_of) {
        return Ok(Some(ledger));
    }
    let touched: BTreeSet<Aggregate> = changed
        .iter()
        .filter_map(|r| Aggregate::of(&r.event))
        .collect();
    // From tails (every batch event is dated after every touched aggregate's last event,
    // and one is on or before `as_of`) or from the aggregates' whole streams, the fold up to
    // `as_of` is their state there.
    let folded = fold_touched(&plan.base, &plan.part, new, &touched, &[as_of])?;
    let at = folded
        .slices
        .first()
        .map_or(&folded.end, |(_, slice)| slice);
    ledger.overlay(&touched, at);
    Ok(Some(ledger))
}

/// The state of every aggregate the batch reads (its own and the parties its
/// events name) from their tails, or `None` when some batch event is dated
/// before the last event of its aggregate (then the stream must be read).
fn tails(
    store: &dyn Snapshot,
    events: &[(usize, Event)],
    touched: &BTreeSet<Aggregate>,
) -> Result<Option<Ledger>, Error> {
    let mut base = Ledger::new();
    let mut last: BTreeMap<&Aggregate, Date> = BTreeMap::new();
    for a in touched {
        if let Some((date, slice)) = read_tail(store, a)? {
            base.overlay([a], &slice);
            last.insert(a, date);
        }
    }
    // Every event must be dated on or after the last event of *every* touched aggregate,
    // not only its own: the checkpoints to correct start at the batch's earliest date, and
    // a tail is an aggregate's state at a checkpoint only if nothing of it is dated after
    // that checkpoint. (An event after its own aggregate's tail beside one backdated in
    // another aggregate took this path and wrote the first one's tail as its state at every
    // checkpoint since the other's date; tests/known_at.rs found it.)
    if let Some(newest) = last.values().max() {
        if events.iter().any(|(_, e)| e.effective < *newest) {
            return Ok(None);
        }
    }
    let parties: BTreeSet<Aggregate> = events
        .iter()
        .flat_map(|(_, e)| e.referenced_parties())
        .map(|p| Aggregate::Party(p.clone()))
        .filter(|a| !touched.contains(a))
        .collect();
    for a in &parties {
        if let Some((_, slice)) = read_tail(store, a)? {
            base.overlay([a], &slice);
        }
    }
    Ok(Some(base))
}

fn read_tail(store: &dyn Snapshot, a: &Aggregate) -> Result<Option<(Date, Ledger)>, Error> {
    match store.aux_get(&tail_key(a))? {
        Some(v) => decode_tail(&v)
            .map(Some)
            .ok_or_else(|| corrupt("aggregate tail")),
        None => Ok(None),
    }
}

/// Writes the planned batch with every key it changes; `base` and `part` are
/// what it was validated against.
fn commit(txn: &mut dyn Transaction, p: &FastPlan, config: &Config) -> Result<Receipt, Error> {
    let head = txn.len();
    let skipped = p.plan.skipped as u64;
    if p.plan.new.is_empty() {
        let head = txn.head();
        return Ok(Receipt {
            appended: 0,
            skipped,
            first_seq: None,
            last_seq: None,
            head: head.as_ref().map(|h| h.hash_hex()),
            head_seq: head.as_ref().map(|h| h.seq),
            reversed: Vec::new(),
        });
    }
    let now: DateTime<Utc> = config.now();
    let new = p.recorded(head, now);
    let aux = writes(&*txn, &p.base, &p.part, &new, &p.reversed, config)?;
    let bodies: Vec<Vec<u8>> = new.iter().map(|r| r.event.canonical_bytes()).collect();
    let to_store: Vec<NewEvent<'_>> = new
        .iter()
        .zip(&bodies)
        .map(|(r, body)| NewEvent {
            id: r.event.id.as_str(),
            body,
        })
        .collect();
    let r = txn.commit(&to_store, now, &aux)?;
    let head = txn.head();
    Ok(Receipt {
        appended: r.appended,
        skipped: skipped + r.skipped,
        first_seq: r.first_seq,
        last_seq: r.last_seq,
        head: head.as_ref().map(|h| h.hash_hex()),
        head_seq: head.as_ref().map(|h| h.seq),
        reversed: Vec::new(),
    })
}

/// The set of reversed seqs (`rv`), decoded only when a batch needs it: most do not (no id
/// already recorded, no reversal), and decoding it costs as much as the log has reversals.
struct Reversed {
    bytes: Option<Vec<u8>>,
    set: std::cell::OnceCell<BTreeSet<u64>>,
}

impl Reversed {
    fn read(store: &dyn Snapshot) -> Result<Reversed, Error> {
        Ok(Reversed {
            bytes: store.aux_get(RV)?,
            set: std::cell::OnceCell::new(),
        })
    }

    fn get(&self) -> Result<&BTreeSet<u64>, Error> {
        if let Some(set) = self.set.get() {
            return Ok(set);
        }
        let set = match &self.bytes {
            Some(v) => decode_seqs(v).ok_or_else(|| corrupt("reversed set"))?,
            None => BTreeSet::new(),
        };
        Ok(self.set.get_or_init(|| set))
    }
}

/// Decodes the records at `seqs`.
fn fetch(
    store: &dyn Snapshot,
    seqs: &BTreeSet<u64>,
) -> Result<BTreeMap<u64, RecordedEvent>, Error> {
    let seqs: Vec<u64> = seqs.iter().copied().collect();
    Ok(decode_at(store, &seqs)?
        .into_iter()
        .map(|r| (r.seq, r))
        .collect())
}

/// Adds to `part` the events (not reversed) of each aggregate of `which`
/// that is not in `loaded` yet.
fn load_streams(
    store: &dyn Snapshot,
    which: &BTreeSet<Aggregate>,
    reversed: &Reversed,
    loaded: &mut BTreeSet<Aggregate>,
    part: &mut BTreeMap<u64, RecordedEvent>,
) -> Result<(), Error> {
    let mut seqs = BTreeSet::new();
    let reversed = reversed.get()?;
    for a in which {
        if !loaded.insert(a.clone()) {
            continue;
        }
        let stream = read_stream(store, a)?;
        seqs.extend(
            stream
                .into_iter()
                .filter(|s| !reversed.contains(s) && !part.contains_key(s)),
        );
    }
    part.extend(fetch(store, &seqs)?);
    Ok(())
}

/// The caller keys after appending `new` (validated against `base` and
/// `part`).
fn writes(
    store: &dyn Snapshot,
    base: &Ledger,
    part: &[RecordedEvent],
    new: &[RecordedEvent],
    reversed: &Reversed,
    config: &Config,
) -> Result<Vec<AuxWrite>, Error> {
    let mut writes = Vec::new();

    // The events the batch reverses, and the earliest date it changes.
    let by_id: BTreeMap<&str, &RecordedEvent> = part
        .iter()
        .chain(new)
        .map(|r| (r.event.id.as_str(), r))
        .collect();
    let mut reversed_now: Vec<&RecordedEvent> = Vec::new();
    for r in new {
        if let Payload::EventReversed(p) = &r.event.payload {
            // `plan_batch_at` accepted the reversal, so its target is here.
            if let Some(target) = by_id.get(p.reverses.as_str()) {
                reversed_now.push(target);
            }
        }
    }
    let from: Date = new
        .iter()
        .chain(reversed_now.iter().copied())
        .map(|r| r.event.effective)
        .min()
        .ok_or_else(|| corrupt("batch"))?;

    // Date index, reversed set, parties, streams.
    let mut by_date: BTreeMap<Date, Vec<u64>> = BTreeMap::new();
    for r in new {
        by_date.entry(r.event.effective).or_default().push(r.seq);
    }
    for (date, seqs) in by_date {
        // New seqs are above every stored one: they fill the last chunk, then start more.
        writes.extend(extend_list(Some(store), &date_prefix(date), &seqs)?);
    }
    let pairs: Vec<(u64, u64)> = new
        .iter()
        .filter_map(|r| match &r.event.payload {
            Payload::EventReversed(p) => by_id.get(p.reverses.as_str()).map(|t| (r.seq, t.seq)),
            _ => None,
        })
        .collect();
    if !pairs.is_empty() {
        writes.push(extend_pairs(Some(store), &pairs)?);
    }
    if !reversed_now.is_empty() {
        let mut all = reversed.get()?.clone();
        all.extend(reversed_now.iter().map(|r| r.seq));
        writes.push(AuxWrite {
            key: RV.to_vec(),
            value: Some(encode_seqs(&all)),
        });
    }
    writes.extend(party_writes(new));
    writes.extend(stream_writes(store, new, true)?);

    // Checkpoints on or after `from`: correct the touched aggregates.
    let touched: BTreeSet<Aggregate> = new
        .iter()
        .chain(reversed_now.iter().copied())
        .filter_map(|r| Aggregate::of(&r.event))
        .collect();
    let dates = checkpoint_dates(store, Some(from))?;
    let folded = fold_touched(base, part, new, &touched, &dates)?;
    // The history of each checkpoint it corrects: the touched aggregates' states there
    // before the batch, from the same fold without it.
    if !dates.is_empty() {
        let before = fold_touched(base, part, &[], &touched, &dates)?;
        let batch = (new[0].seq, new[new.len() - 1].seq);
        // An aggregate changes at a checkpoint only through an event dated on or before it.
        let changes: Vec<(Date, Aggregate)> = new
            .iter()
            .chain(reversed_now.iter().copied())
            .filter_map(|r| Some((r.event.effective, Aggregate::of(&r.event)?)))
            .collect();
        for (date, slice) in &before.slices {
            for a in &touched {
                if changes.iter().any(|(d, c)| d <= date && c == a) {
                    writes.push(history(*date, a, batch, slice)?);
                }
            }
        }
    }
    if !dates.is_empty() {
        writes.extend(corrections(
            store,
            &folded.slices,
            &touched,
            config.max_corrections,
        )?);
    } else {
        writes.extend(new_checkpoint(store, from, new.len(), config)?);
    }

    // The touched aggregates' tails.
    for a in &touched {
        writes.push(AuxWrite {
            key: tail_key(a),
            value: folded
                .last
                .get(a)
                .map(|date| encode_tail(*date, &folded.end.slice([a])))
                .transpose()?,
        });
    }

    writes.push(AuxWrite {
        key: b"ck".to_vec(),
        value: Some(ck_value(new.last().map_or(0, |r| r.seq))),
    });
    Ok(writes)
}

/// What one fold of `base`, `part` and `new` gives the touched aggregates.
struct Folded {
    /// Their state at each checkpoint date.
    slices: Vec<(Date, Ledger)>,
    /// The ledger at the end.
    end: Ledger,
    /// The date of the last event (not reversed) of each.
    last: BTreeMap<Aggregate, Date>,
}

fn fold_touched(
    base: &Ledger,
    part: &[RecordedEvent],
    new: &[RecordedEvent],
    touched: &BTreeSet<Aggregate>,
    dates: &[Date],
) -> Result<Folded, Error> {
    let timeline = order(part.iter().chain(new).map(|r| (r.seq, &r.event)).collect());
    let mut slices: Vec<(Date, Ledger)> = Vec::with_capacity(dates.len());
    let mut ledger = base.clone();
    let mut last = BTreeMap::new();
    let mut pending = dates.iter().copied().peekable();
    for (seq, event) in &timeline {
        while let Some(d) = pending.next_if(|d| *d < event.effective) {
            slices.push((d, ledger.slice(touched)));
        }
        replay(&mut ledger, *seq, event)?;
        if let Some(a) = Aggregate::of(event).filter(|a| touched.contains(a)) {
            last.insert(a, event.effective);
        }
    }
    for d in pending {
        slices.push((d, ledger.slice(touched)));
    }
    Ok(Folded {
        slices,
        end: ledger,
        last,
    })
}

/// A correction per (checkpoint date, touched aggregate), or the checkpoint
/// rewritten whole once it has collected too many.
fn corrections(
    store: &dyn Snapshot,
    slices: &[(Date, Ledger)],
    touched: &BTreeSet<Aggregate>,
    max_corrections: usize,
) -> Result<Vec<AuxWrite>, Error> {
    let mut writes = Vec::new();
    // The corrections of every checkpoint from the first date on, in one read (a database
    // store answers each read with a round trip).
    let all: Vec<Vec<u8>> = match slices.iter().map(|(d, _)| *d).min() {
        Some(first) => store.aux_keys(format!("ov/{first}/").as_bytes(), b"ov0")?,
        None => Vec::new(),
    };
    for (date, slice) in slices {
        let date = *date;
        let prefix = format!("ov/{date}/").into_bytes();
        let existing: Vec<Vec<u8>> = all
            .iter()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        let fresh = touched
            .iter()
            .filter(|a| !existing.contains(&overlay_key(date, a)))
            .count();
        if existing.len() + fresh > max_corrections {
            // Fold the corrections into the checkpoint itself.
            let mut whole = stored_checkpoint(store, date)?;
            whole.overlay(touched, slice);
            let old = stored_pieces(store, date, Some(date))?
                .remove(&date)
                .unwrap_or_default();
            writes.extend(checkpoint_writes(old, date, &whole)?);
            for k in existing {
                writes.push(AuxWrite {
                    key: k,
                    value: None,
                });
            }
            continue;
        }
        for a in touched {
            writes.push(AuxWrite {
                key: overlay_key(date, a),
                value: Some(encode_ledger(&slice.slice([a]))?),
            });
        }
    }
    Ok(writes)
}

/// A new checkpoint, when at least `checkpoint_every` events are dated after the
/// last one: taken on the last date before `from` that holds events (the
/// batch, all dated `from` or later, does not change it), from the keys as
/// they are.
fn new_checkpoint(
    store: &dyn Snapshot,
    from: Date,
    fresh: usize,
    config: &Config,
) -> Result<Vec<AuxWrite>, Error> {
    let last = checkpoint_dates(store, None)?.last().copied();
    let start = match last {
        Some(d) => {
            let mut k = key("dx", &d.to_string());
            k.push(0xff);
            k
        }
        None => b"dx/".to_vec(),
    };
    let end = key("dx", &from.to_string());
    let mut count = fresh;
    let mut date: Option<Date> = None;
    for (k, v) in store.aux_range(&start, &end, false)? {
        count += decode_seqs(&v).ok_or_else(|| corrupt("date index"))?.len();
        date = Some(date_of_key(&k).ok_or_else(|| corrupt("date index key"))?);
    }
    let Some(date) = date else {
        return Ok(Vec::new());
    };
    if count < config.every() {
        return Ok(Vec::new());
    }
    let ledger = ledger_as_of(store, date)?.ok_or_else(|| corrupt("checkpoint marker"))?;
    let mut dates = checkpoint_dates(store, None)?;
    dates.push(date);
    // Taken from the log as it was before the batch, which does not change it.
    // A date after the last checkpoint's: no piece is stored there.
    let mut writes = checkpoint_writes(Vec::new(), date, &ledger)?;
    writes.extend([created(date, store.len()), checkpoint_list(&dates)]);
    Ok(writes)
}
