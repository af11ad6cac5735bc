//! Fast as-of queries: ledger checkpoints, an index from effective date to
//! seqs, the set of reversed seqs and the registered parties, kept in the
//! store's caller keys.
//!
//! Every append rewrites what it changes **in the same atomic batch** as its
//! events (`Store::append_with`), so these keys always describe the log they
//! are stored with; `ck` names the head they were written for, and a store
//! whose head differs (appended by an older accord) is answered by a full
//! replay instead. A query as of D, as known now, loads the last checkpoint
//! on or before D and folds only the events dated after it and up to D.
//! `verify` recomputes all of it from the log and compares.
//!
//! Keys (all under the store's caller prefix):
//!
//! - `ck` -> format byte `9`, the head seq (u64 BE) the keys were written for
//!   (older formats count as not current: the next append rebuilds every
//!   key);
//! - `cl` -> the dates of every checkpoint, `YYYY-MM-DD` each, ascending;
//! - `cp/YYYY-MM-DD/NNNNNN` -> the ledger after every (not reversed) event dated on
//!   or before that day: LZ4 (size prepended) of its binary
//!   encoding (`ledger_codec`), cut in pieces of `PIECE` bytes numbered from 0 (six hex
//!   digits). A checkpoint is a few hundred kilobytes at 1M events; whole, it made the
//!   embedded store's page of sixteen keys around it a separate file that every open of the
//!   store read back and every read of a neighbouring key (`ck`, `cl`) pulled whole;
//! - `ov/YYYY-MM-DD/AGGREGATE` -> a correction of that checkpoint: the state
//!   of one aggregate there (a `Ledger` holding only it, encoded like a
//!   checkpoint), written by an append that changed it from an earlier date
//!   instead of rewriting the whole checkpoint; the checkpoint is the stored
//!   ledger with its corrections applied;
//! - `ag/AGGREGATE/K` -> the seqs of the events of that aggregate (`o:ID`,
//!   `i:ISSUER`, ...; see `domain::aggregate`), varints, ascending (reversed
//!   events included), in chunks: chunk K (8 hex digits) holds the stream's
//!   seqs number K * 1024 to K * 1024 + 1023, so that an append re-checks only
//!   what it touches and rewrites only the last chunk, whatever the stream's
//!   length;
//! - `at/AGGREGATE` -> the aggregate's *tail*: the date of its last event
//!   (not reversed), `YYYY-MM-DD`, then its state after all its events (a
//!   `Ledger` holding only it, encoded like a checkpoint), so that an event
//!   dated after the tail is checked without reading the stream; absent
//!   when every event of the aggregate is reversed;
//! - `dx/YYYY-MM-DD/K` -> the seqs of the events dated that day, varints,
//!   ascending (reversed events and reversals included), in chunks of 1,024 as
//!   for `ag/`;
//! - `rv` -> the seqs of reversed events, varints, ascending;
//! - `rs` -> each reversal's seq and the seq it reverses, varint pairs, ascending by
//!   the reversal's seq: the reversed set as known at any seq, without reading the log;
//! - `pt/PARTY` -> empty: some event registers PARTY;
//! - `cs/YYYY-MM-DD` -> the seq (u64 BE) from which that checkpoint answers for the past
//!   too: the log's head when it was taken. From then on, every batch that changes an
//!   aggregate's state there leaves its *history* entry first;
//! - `oh/YYYY-MM-DD/AGGREGATE/FIRST` -> the state of that aggregate at that checkpoint as
//!   known just before the batch whose first seq is FIRST (16 hex digits), which changed it:
//!   the batch's last seq (u64 BE), then the state encoded like a correction. So the
//!   checkpoint as known at any seq s >= `cs` that ends a batch is the checkpoint with, for
//!   each aggregate, the entry of the first batch after s (`known_at`): corrections are
//!   keyed by the seq that made them as well as overwritten.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use domain::event::{Event, Payload};
use domain::ledger::Ledger;
use domain::values::{Date, Slug};
use domain::{order, Aggregate, RecordedEvent};
use store::{AuxWrite, Snapshot};

use crate::load::decode_at;
use crate::{Config, Error};

/// A batch of at least this many events ends on a checkpoint when at least
/// this many events follow the last one.
const END_CHECKPOINT_MIN: usize = 1024;

pub(crate) const CK: &[u8] = b"ck";
/// The format byte of `ck` (6: `dx/` and `ag/` in chunks of seqs; 7: `rs`; 8: checkpoints in
/// pieces; 9: one investments aggregate per investor, `n:PARTY`).
pub(crate) const FORMAT: u8 = 9;
/// The size of a checkpoint's pieces: sixteen keys of a page of the embedded store stay well
/// under the size (128 KiB) from which it writes the page as a file of its own.
const PIECE: usize = 4096;
/// Seqs per chunk of a `dx/` or `ag/` list.
const CHUNK: usize = 1024;
/// The list of checkpoint dates, so that finding them reads one small key
/// and not the checkpoints (a store may read a key's whole page, values included).
pub(crate) const CL: &[u8] = b"cl";
pub(crate) const RV: &[u8] = b"rv";
pub(crate) const RS: &[u8] = b"rs";

/// The `rs` value for (reversal seq, reversed seq) pairs, sorted by the reversal's seq.
pub(crate) fn encode_pairs(pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (r, t) in pairs {
        put_varint(&mut buf, *r);
        put_varint(&mut buf, *t);
    }
    buf
}

/// Decodes `rs`; `None` when damaged.
pub(crate) fn decode_pairs(bytes: &[u8]) -> Option<Vec<(u64, u64)>> {
    let values = decode_varints(bytes)?;
    if values.len() % 2 != 0 {
        return None;
    }
    Some(values.chunks(2).map(|p| (p[0], p[1])).collect())
}

/// The stored pairs with `new` added (all recorded after them).
pub(crate) fn extend_pairs(
    store: Option<&dyn Snapshot>,
    new: &[(u64, u64)],
) -> Result<AuxWrite, Error> {
    let mut pairs = match store {
        Some(s) => match s.aux_get(RS)? {
            Some(v) => decode_pairs(&v).ok_or_else(|| corrupt("reversal index"))?,
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    pairs.extend_from_slice(new);
    pairs.sort_unstable();
    Ok(AuxWrite {
        key: RS.to_vec(),
        value: Some(encode_pairs(&pairs)),
    })
}

pub(crate) fn key(prefix: &str, rest: &str) -> Vec<u8> {
    format!("{prefix}/{rest}").into_bytes()
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn encode_seqs<'a>(seqs: impl IntoIterator<Item = &'a u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    for s in seqs {
        put_varint(&mut buf, *s);
    }
    buf
}

pub(crate) fn decode_seqs(bytes: &[u8]) -> Option<BTreeSet<u64>> {
    decode_varints(bytes).map(|v| v.into_iter().collect())
}

/// Varints written by `put_varint`, in order; `None` when one is cut short or too long.
pub(crate) fn decode_varints(bytes: &[u8]) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    let mut value = 0u64;
    let mut shift = 0u32;
    for b in bytes {
        if shift > 63 {
            return None;
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            out.push(value);
            value = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(out)
}

pub(crate) fn encode_ledger(ledger: &Ledger) -> Result<Vec<u8>, Error> {
    Ok(lz4_flex::block::compress_prepend_size(
        &crate::ledger_codec::encode(ledger),
    ))
}

/// The writes that store `ledger` as the checkpoint of `date`: the keys of `old` (the pieces
/// stored there, if any) are dropped first, so a shorter checkpoint leaves none of them
/// behind. The store applies writes in order.
pub(crate) fn checkpoint_writes(
    old: impl IntoIterator<Item = Vec<u8>>,
    date: Date,
    ledger: &Ledger,
) -> Result<Vec<AuxWrite>, Error> {
    let bytes = encode_ledger(ledger)?;
    let mut writes: Vec<AuxWrite> = old
        .into_iter()
        .map(|key| AuxWrite { key, value: None })
        .collect();
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        writes.push(AuxWrite {
            key: piece_key(date, i),
            value: Some(piece.to_vec()),
        });
    }
    Ok(writes)
}

/// The keys of the pieces stored for the checkpoints dated on or after `from` (and on or
/// before `through`), by date, in one read.
pub(crate) fn stored_pieces(
    store: &dyn Snapshot,
    from: Date,
    through: Option<Date>,
) -> Result<BTreeMap<Date, Vec<Vec<u8>>>, Error> {
    let end = match through {
        Some(d) => list_end(&checkpoint_prefix(d)),
        None => b"cp0".to_vec(),
    };
    let mut by_date: BTreeMap<Date, Vec<Vec<u8>>> = BTreeMap::new();
    for k in store.aux_keys(&key("cp", &from.to_string()), &end)? {
        let date = key_date(&k).ok_or_else(|| corrupt("checkpoint key"))?;
        by_date.entry(date).or_default().push(k);
    }
    Ok(by_date)
}

/// The key of piece `i` of the checkpoint of `date`.
pub(crate) fn piece_key(date: Date, i: usize) -> Vec<u8> {
    let mut k = checkpoint_prefix(date);
    k.extend(format!("{i:06x}").into_bytes());
    k
}

/// The prefix of a checkpoint's pieces, `cp/YYYY-MM-DD/`.
pub(crate) fn checkpoint_prefix(date: Date) -> Vec<u8> {
    format!("cp/{date}/").into_bytes()
}

/// A checkpoint's encoding put back together from its pieces (`entries`: the keys under its
/// prefix, in order, with their values); `None` when a piece is missing, misnamed or
/// out of place.
pub(crate) fn join_pieces<'a>(
    prefix: &[u8],
    entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut count = 0usize;
    let mut short = false;
    for (k, v) in entries {
        // Named exactly as written, numbered from 0; every piece full but the last, none empty.
        let named = k.strip_prefix(prefix)? == format!("{count:06x}").as_bytes();
        if !named || short || v.is_empty() || v.len() > PIECE {
            return None;
        }
        short = v.len() < PIECE;
        bytes.extend_from_slice(v);
        count += 1;
    }
    (count > 0).then_some(bytes)
}

/// The stored encoding of the checkpoint of `date`, its pieces joined; `None` when there is
/// none.
fn checkpoint_bytes(store: &dyn Snapshot, date: Date) -> Result<Option<Vec<u8>>, Error> {
    let prefix = checkpoint_prefix(date);
    let entries = store.aux_range(&prefix, &list_end(&prefix), false)?;
    if entries.is_empty() {
        return Ok(None);
    }
    join_pieces(
        &prefix,
        entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
    )
    .map(Some)
    .ok_or_else(|| corrupt("checkpoint pieces"))
}

pub(crate) fn decode_ledger(bytes: &[u8]) -> Option<Ledger> {
    crate::ledger_codec::decode(&ledger_plain(bytes)?)
}

/// A stored ledger's encoding, uncompressed: `None` unless it is exactly the size it states.
pub(crate) fn ledger_plain(bytes: &[u8]) -> Option<Vec<u8>> {
    // Refuse absurd sizes before allocating.
    let size = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if size > bytes.len().saturating_mul(255) {
        return None;
    }
    let plain = lz4_flex::block::decompress_size_prepended(bytes).ok()?;
    // The decoder stops, without an error, at a block that ends early, and cuts its output
    // back to what it wrote when the stated size is larger.
    (plain.len() == size).then_some(plain)
}

/// Whether the keys were written for the store's current head.
pub(crate) fn keys_current(store: &dyn Snapshot) -> Result<bool, Error> {
    let head = store.len();
    Ok(store
        .aux_get(CK)?
        .is_some_and(|v| v.len() == 9 && v[0] == FORMAT && v[1..] == head.to_be_bytes()))
}

/// The `ck` value for keys written for a log ending at `head`.
pub(crate) fn ck_value(head: u64) -> Vec<u8> {
    let mut ck = vec![FORMAT];
    ck.extend_from_slice(&head.to_be_bytes());
    ck
}

/// The key of a checkpoint correction.
pub(crate) fn overlay_key(date: Date, aggregate: &Aggregate) -> Vec<u8> {
    format!("ov/{date}/{aggregate}").into_bytes()
}

/// The key of the seq from which a checkpoint answers for the past too.
pub(crate) fn created_key(date: Date) -> Vec<u8> {
    format!("cs/{date}").into_bytes()
}

/// The `cs/DATE` write for a checkpoint that describes the log up to `seq`.
pub(crate) fn created(date: Date, seq: u64) -> AuxWrite {
    AuxWrite {
        key: created_key(date),
        value: Some(seq.to_be_bytes().to_vec()),
    }
}

/// The seq stored under `cs/DATE`, if any.
pub(crate) fn created_seq(store: &dyn Snapshot, date: Date) -> Result<Option<u64>, Error> {
    match store.aux_get(&created_key(date))? {
        Some(v) => Ok(Some(u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| corrupt("checkpoint creation seq"))?,
        ))),
        None => Ok(None),
    }
}

/// The history entry of `aggregate` at the checkpoint of `date`: its state there (in
/// `slice`) as known before the batch of seqs `first..=last`.
pub(crate) fn history(
    date: Date,
    aggregate: &Aggregate,
    (first, last): (u64, u64),
    slice: &Ledger,
) -> Result<AuxWrite, Error> {
    let mut value = last.to_be_bytes().to_vec();
    value.extend(encode_ledger(&slice.slice([aggregate]))?);
    Ok(AuxWrite {
        key: format!("oh/{date}/{aggregate}/{first:016x}").into_bytes(),
        value: Some(value),
    })
}

/// A history entry: (date, aggregate, first seq, last seq, state).
pub(crate) type HistoryEntry = (Date, Aggregate, u64, u64, Ledger);

/// Decodes a history entry.
pub(crate) fn parse_history(key: &[u8], value: &[u8]) -> Option<HistoryEntry> {
    let (date, aggregate, first, last) = parse_history_key(key, value)?;
    let slice = decode_ledger(value.get(8..)?)?;
    Some((date, aggregate, first, last, slice))
}

/// A history entry's date, aggregate, first and last seq, without decoding its state.
pub(crate) fn parse_history_key(key: &[u8], value: &[u8]) -> Option<(Date, Aggregate, u64, u64)> {
    let text = std::str::from_utf8(key.strip_prefix(b"oh/")?).ok()?;
    let date = Date::parse(text.get(..10)?).ok()?;
    let rest = text.get(11..)?;
    let (aggregate, first) = rest.rsplit_once('/')?;
    if first.len() != 16 {
        return None;
    }
    let first = u64::from_str_radix(first, 16).ok()?;
    let last = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    Some((date, Aggregate::parse(aggregate)?, first, last))
}

/// The key of an aggregate's tail.
pub(crate) fn tail_key(aggregate: &Aggregate) -> Vec<u8> {
    format!("at/{aggregate}").into_bytes()
}

/// An aggregate's tail: the date of its last event and its state.
pub(crate) fn encode_tail(last: Date, slice: &Ledger) -> Result<Vec<u8>, Error> {
    let mut out = last.to_string().into_bytes();
    out.extend(encode_ledger(slice)?);
    Ok(out)
}

pub(crate) fn decode_tail(bytes: &[u8]) -> Option<(Date, Ledger)> {
    let date = Date::parse(std::str::from_utf8(bytes.get(..10)?).ok()?).ok()?;
    Some((date, decode_ledger(&bytes[10..])?))
}

/// The prefix of an aggregate's stream chunks, `ag/AGGREGATE/`.
pub(crate) fn stream_prefix(aggregate: &Aggregate) -> Vec<u8> {
    format!("ag/{aggregate}/").into_bytes()
}

/// The prefix of a day's date index chunks, `dx/YYYY-MM-DD/`.
pub(crate) fn date_prefix(date: Date) -> Vec<u8> {
    format!("dx/{date}/").into_bytes()
}

/// The date of a `dx/DATE/CHUNK` key.
pub(crate) fn date_of_key(key: &[u8]) -> Option<Date> {
    key_date(key)
}

/// The key just past every chunk under `prefix` (which ends with `/`).
pub(crate) fn list_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = b'0';
    }
    end
}

fn chunk_key(prefix: &[u8], index: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(format!("{index:08x}").as_bytes());
    k
}

/// Every seq of an aggregate's stream, ascending: its chunks in key order.
pub(crate) fn read_stream(store: &dyn Snapshot, aggregate: &Aggregate) -> Result<Vec<u64>, Error> {
    let from = stream_prefix(aggregate);
    let mut seqs = Vec::new();
    for (_, v) in store.aux_range(&from, &list_end(&from), false)? {
        seqs.extend(decode_seqs(&v).ok_or_else(|| corrupt("aggregate stream"))?);
    }
    Ok(seqs)
}

/// The writes that add `seqs` (ascending, all above the stored ones) to the list kept in
/// chunks under `prefix`: the last stored chunk is filled up to `CHUNK` seqs, then new
/// chunks follow, so chunk k always holds the list's seqs k * CHUNK to (k + 1) * CHUNK - 1
/// whatever the batches were (and `verify` can recompute them). `store` is `None` when
/// nothing is stored yet. An append rewrites at most one chunk it does not start.
pub(crate) fn extend_list(
    store: Option<&dyn Snapshot>,
    prefix: &[u8],
    seqs: &[u64],
) -> Result<Vec<AuxWrite>, Error> {
    let last = match store {
        Some(s) => s.aux_range(prefix, &list_end(prefix), true)?.pop(),
        None => None,
    };
    let (mut index, mut value, mut count) = match last {
        Some((k, v)) => {
            let index = std::str::from_utf8(&k[prefix.len()..])
                .ok()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| corrupt("index chunk key"))?;
            let count = v.iter().filter(|b| *b & 0x80 == 0).count();
            (index, v, count)
        }
        None => (0, Vec::new(), 0),
    };
    let mut writes = Vec::new();
    let mut changed = false;
    for &seq in seqs {
        if count >= CHUNK {
            if changed {
                writes.push(AuxWrite {
                    key: chunk_key(prefix, index),
                    value: Some(std::mem::take(&mut value)),
                });
            }
            value.clear();
            index += 1;
            count = 0;
        }
        put_varint(&mut value, seq);
        count += 1;
        changed = true;
    }
    if changed {
        writes.push(AuxWrite {
            key: chunk_key(prefix, index),
            value: Some(value),
        });
    }
    Ok(writes)
}

/// The date of a `cp/DATE/PIECE`, `ov/DATE/...` (or any `XX/DATE...`) key.
pub(crate) fn key_date(key: &[u8]) -> Option<Date> {
    let text = std::str::from_utf8(key.get(3..13)?).ok()?;
    Date::parse(text).ok()
}

/// The checkpoint of `date` (its stored encoding given), with the corrections of that date
/// applied.
pub(crate) fn load_checkpoint(
    store: &dyn Snapshot,
    date: Date,
    value: &[u8],
) -> Result<Ledger, Error> {
    let mut ledger = decode_ledger(value).ok_or_else(|| corrupt("checkpoint"))?;
    let from = format!("ov/{date}/").into_bytes();
    let to = format!("ov/{date}0").into_bytes();
    for (k, v) in store.aux_range(&from, &to, false)? {
        let aggregate = std::str::from_utf8(&k[from.len()..])
            .ok()
            .and_then(Aggregate::parse)
            .ok_or_else(|| corrupt("checkpoint correction key"))?;
        let slice = decode_ledger(&v).ok_or_else(|| corrupt("checkpoint correction"))?;
        ledger.overlay([&aggregate], &slice);
    }
    Ok(ledger)
}

/// The checkpoint of `date` (which the checkpoint list names), with its corrections applied.
pub(crate) fn stored_checkpoint(store: &dyn Snapshot, date: Date) -> Result<Ledger, Error> {
    let value = checkpoint_bytes(store, date)?.ok_or_else(|| corrupt("checkpoint"))?;
    load_checkpoint(store, date, &value)
}

/// The dates of every checkpoint on or after `from` (all when `None`).
pub(crate) fn checkpoint_dates(
    store: &dyn Snapshot,
    from: Option<Date>,
) -> Result<Vec<Date>, Error> {
    let list = store.aux_get(CL)?.unwrap_or_default();
    let dates = decode_dates(&list).ok_or_else(|| corrupt("checkpoint list"))?;
    Ok(dates
        .into_iter()
        .filter(|d| from.is_none_or(|f| *d >= f))
        .collect())
}

fn decode_dates(bytes: &[u8]) -> Option<Vec<Date>> {
    if !bytes.len().is_multiple_of(10) {
        return None;
    }
    bytes
        .chunks(10)
        .map(|c| Date::parse(std::str::from_utf8(c).ok()?).ok())
        .collect()
}

/// The `cl` write for checkpoints on `dates`.
pub(crate) fn checkpoint_list<'a>(dates: impl IntoIterator<Item = &'a Date>) -> AuxWrite {
    let mut value = Vec::new();
    for d in dates {
        value.extend_from_slice(d.to_string().as_bytes());
    }
    AuxWrite {
        key: CL.to_vec(),
        value: Some(value),
    }
}

/// Applies one stored event; stored events were validated, so a refusal
/// means a corrupt store.
pub(crate) fn replay(ledger: &mut Ledger, seq: u64, event: &Event) -> Result<(), Error> {
    ledger
        .apply(event)
        .map_err(|rejection| Error::replay(&domain::FoldError { seq, rejection }))
}

pub(crate) fn corrupt(what: &str) -> Error {
    Error::corrupt(what)
}

/// The caller keys after appending `log[new_from..]`: what changed, for
/// `Store::append_with`. `log` is the whole log with the new events at the
/// end, already validated.
pub(crate) fn maintain(
    store: &dyn Snapshot,
    log: &[RecordedEvent],
    new_from: usize,
    config: &Config,
) -> Result<Vec<AuxWrite>, Error> {
    maintain_ticked(store, log, new_from, config, None)
}

/// `maintain`, telling `tick` of the events its fold of the timeline applies (every
/// `domain::TICK_EVERY`), for an import whose check that fold is.
pub(crate) fn maintain_ticked(
    store: &dyn Snapshot,
    log: &[RecordedEvent],
    new_from: usize,
    config: &Config,
    tick: Option<domain::Tick<'_>>,
) -> Result<Vec<AuxWrite>, Error> {
    let up_to_date = keys_current(store)?;
    // Without keys for the log as it is, everything is (re)built.
    let new_from = if up_to_date { new_from } else { 0 };
    let new = &log[new_from..];
    let mut writes = Vec::new();
    if !up_to_date {
        // Everything derived is rebuilt: drop what an older head left. The
        // store applies writes in order, so the rebuilt keys that follow win.
        writes.push(AuxWrite {
            key: RS.to_vec(),
            value: None,
        });
        for (start, end) in [
            (b"cp/", b"cp0"),
            (b"ov/", b"ov0"),
            (b"ag/", b"ag0"),
            (b"at/", b"at0"),
            (b"dx/", b"dx0"),
            (b"cs/", b"cs0"),
            (b"oh/", b"oh0"),
        ] {
            for k in store.aux_keys(start, end)? {
                writes.push(AuxWrite {
                    key: k,
                    value: None,
                });
            }
        }
    }

    // The earliest date whose state the new events change.
    let mut from: Option<Date> = new.iter().map(|r| r.event.effective).min();
    let reversals: Vec<&str> = new
        .iter()
        .filter_map(|r| match &r.event.payload {
            Payload::EventReversed(p) => Some(p.reverses.as_str()),
            _ => None,
        })
        .collect();
    let mut reversed_now: BTreeSet<u64> = BTreeSet::new();
    let mut target_seq: ahash::AHashMap<&str, u64> = ahash::AHashMap::new();
    // The aggregates whose tails change (all of them when rebuilding).
    let mut touched: Option<BTreeSet<Aggregate>> =
        up_to_date.then(|| new.iter().filter_map(|r| Aggregate::of(&r.event)).collect());
    if !reversals.is_empty() {
        let wanted: BTreeSet<&str> = reversals.iter().copied().collect();
        for r in log {
            if wanted.contains(r.event.id.as_str()) {
                reversed_now.insert(r.seq);
                target_seq.insert(r.event.id.as_str(), r.seq);
                let d = r.event.effective;
                from = Some(from.map_or(d, |f| f.min(d)));
                if let (Some(t), Some(a)) = (touched.as_mut(), Aggregate::of(&r.event)) {
                    t.insert(a);
                }
            }
        }
    }
    let Some(from) = from else {
        return Ok(writes);
    };

    // Effective dates -> seqs.
    let mut by_date: BTreeMap<Date, BTreeSet<u64>> = BTreeMap::new();
    for r in new {
        by_date.entry(r.event.effective).or_default().insert(r.seq);
    }
    for (date, seqs) in by_date {
        let seqs: Vec<u64> = seqs.into_iter().collect();
        writes.extend(extend_list(
            up_to_date.then_some(store),
            &date_prefix(date),
            &seqs,
        )?);
    }

    // Reversals by the seq that recorded them.
    let pairs: Vec<(u64, u64)> = new
        .iter()
        .filter_map(|r| match &r.event.payload {
            Payload::EventReversed(p) => target_seq.get(p.reverses.as_str()).map(|t| (r.seq, *t)),
            _ => None,
        })
        .collect();
    if !pairs.is_empty() {
        writes.push(extend_pairs(up_to_date.then_some(store), &pairs)?);
    }

    // Reversed seqs.
    if !reversed_now.is_empty() {
        if up_to_date {
            if let Some(old) = store.aux_get(RV)? {
                reversed_now.extend(decode_seqs(&old).ok_or_else(|| corrupt("reversed set"))?);
            }
        }
        writes.push(AuxWrite {
            key: RV.to_vec(),
            value: Some(encode_seqs(&reversed_now)),
        });
    }

    // Registered parties.
    writes.extend(party_writes(new));

    // Aggregate streams: the new seqs are above every stored one, so they
    // extend the stored list.
    writes.extend(stream_writes(store, new, up_to_date)?);

    // Checkpoints: keep the dates there are, re-take those on or after
    // `from` (dropping their corrections), and add one at the end of a day
    // once `every()` events were folded since the last.
    let existing: Vec<Date> = if up_to_date {
        for k in store.aux_keys(&key("ov", &from.to_string()), b"ov0")? {
            writes.push(AuxWrite {
                key: k,
                value: None,
            });
        }
        checkpoint_dates(store, None)?
    } else {
        Vec::new()
    };
    let every = config.every();
    let mut pending = existing.iter().copied().peekable();
    let mut dates: BTreeSet<Date> = existing.iter().copied().collect();
    // Re-taking a stored checkpoint drops its pieces first (a rebuild dropped them all), all
    // found in one read.
    let mut stored = if up_to_date {
        stored_pieces(store, from, None)?
    } else {
        BTreeMap::new()
    };
    let mut snapshot = |date: Date, ledger: &Ledger, writes: &mut Vec<AuxWrite>| {
        let old = stored.remove(&date).unwrap_or_default();
        checkpoint_writes(old, date, ledger).map(|w| writes.extend(w))
    };
    let timeline = order(log.iter().map(|r| (r.seq, &r.event)).collect());
    let mut ledger = Ledger::new();
    let mut since = 0usize;
    let mut last: HashMap<Aggregate, Date> = HashMap::new();
    for (i, (seq, event)) in timeline.iter().enumerate() {
        if let Some(a) = Aggregate::of(event) {
            if touched.as_ref().is_none_or(|t| t.contains(&a)) {
                last.insert(a, event.effective);
            }
        }
        while let Some(&d) = pending.peek() {
            if d >= event.effective {
                break;
            }
            if d >= from {
                snapshot(d, &ledger, &mut writes)?;
            }
            since = 0;
            pending.next();
        }
        replay(&mut ledger, *seq, event)?;
        if let Some(tick) = tick {
            if (i + 1) % domain::TICK_EVERY as usize == 0 {
                tick(domain::TICK_EVERY);
            }
        }
        since += 1;
        let day_ends = timeline
            .get(i + 1)
            .is_none_or(|(_, next)| next.effective > event.effective);
        let is_existing = pending.peek() == Some(&event.effective);
        // A big batch (an import) also ends on a checkpoint once a thousand
        // events or so follow the last one, since its last dates are the
        // ones asked most.
        let tail_min = every.min(END_CHECKPOINT_MIN);
        let batch_ends = i + 1 == timeline.len() && new.len() >= tail_min && since >= tail_min;
        if day_ends && (since >= every || batch_ends) && !is_existing && event.effective >= from {
            snapshot(event.effective, &ledger, &mut writes)?;
            dates.insert(event.effective);
            since = 0;
        }
    }
    if let Some(tick) = tick {
        tick(timeline.len() as u64 % domain::TICK_EVERY);
    }
    for d in pending {
        if d >= from {
            snapshot(d, &ledger, &mut writes)?;
        }
    }
    writes.push(checkpoint_list(&dates));

    // History: an existing checkpoint the batch changes keeps, for each aggregate the batch
    // changes there, its state before the batch; a new checkpoint answers from the new head.
    let head = log.last().map_or(0, |r| r.seq);
    let existing: BTreeSet<Date> = existing.into_iter().collect();
    for d in &dates {
        if !existing.contains(d) {
            writes.push(created(*d, head));
        }
    }
    if let Some(first) = new.first().map(|r| r.seq) {
        let mut changes: Vec<(Date, Aggregate)> = new
            .iter()
            .filter_map(|r| Some((r.event.effective, Aggregate::of(&r.event)?)))
            .collect();
        for r in log {
            if reversed_now.contains(&r.seq) {
                changes.extend(Aggregate::of(&r.event).map(|a| (r.event.effective, a)));
            }
        }
        for d in existing.iter().filter(|d| **d >= from) {
            let changed: BTreeSet<&Aggregate> = changes
                .iter()
                .filter(|(date, _)| date <= d)
                .map(|(_, a)| a)
                .collect();
            if changed.is_empty() {
                continue;
            }
            let before = stored_checkpoint(store, *d)?;
            for a in changed {
                writes.push(history(*d, a, (first, head), &before)?);
            }
        }
    }

    // Tails.
    let tails: Vec<Aggregate> = match touched {
        Some(t) => t.into_iter().collect(),
        None => last.keys().cloned().collect(),
    };
    for a in tails {
        writes.push(AuxWrite {
            key: tail_key(&a),
            value: last
                .get(&a)
                .map(|d| encode_tail(*d, &ledger.slice([&a])))
                .transpose()?,
        });
    }

    writes.push(AuxWrite {
        key: CK.to_vec(),
        value: Some(ck_value(log.last().map_or(0, |r| r.seq))),
    });
    Ok(writes)
}

/// `pt/PARTY` for every party that `new` registers.
pub(crate) fn party_writes(new: &[RecordedEvent]) -> Vec<AuxWrite> {
    new.iter()
        .filter_map(|r| match &r.event.payload {
            Payload::PartyRegistered(p) => Some(AuxWrite {
                key: key("pt", p.party.as_str()),
                value: Some(Vec::new()),
            }),
            _ => None,
        })
        .collect()
}

/// The aggregate streams with the seqs of `new` added (to the stored ones
/// when `extend`, else from nothing). `new` is in seq order, after every
/// stored seq.
pub(crate) fn stream_writes(
    store: &dyn Snapshot,
    new: &[RecordedEvent],
    extend: bool,
) -> Result<Vec<AuxWrite>, Error> {
    let mut streams: BTreeMap<Aggregate, Vec<u64>> = BTreeMap::new();
    for r in new {
        if let Some(a) = Aggregate::of(&r.event) {
            streams.entry(a).or_default().push(r.seq);
        }
    }
    let mut writes = Vec::with_capacity(streams.len());
    for (a, seqs) in streams {
        // New seqs are above every stored one: they fill the last chunk, then start more.
        writes.extend(extend_list(
            extend.then_some(store),
            &stream_prefix(&a),
            &seqs,
        )?);
    }
    Ok(writes)
}

/// The ledger as of `as_of`, as known now, from the last checkpoint on or
/// before it and the events dated after that; `None` when the store's keys
/// were not written for its current head (then the caller replays the log).
pub(crate) fn ledger_as_of(store: &dyn Snapshot, as_of: Date) -> Result<Option<Ledger>, Error> {
    // Keys order dates as `YYYY-MM-DD` text, which holds for four-digit years only.
    if store.is_empty() || !(0..=9999).contains(&as_of.year()) || !keys_current(store)? {
        return Ok(None);
    }
    let day = as_of.to_string();
    let mut upper = key("cp", &day);
    upper.push(0xff);
    // The last piece on or before the day names the checkpoint to read.
    let (mut ledger, after) = match store.aux_range(b"cp/", &upper, true)?.pop() {
        Some((k, _)) => {
            let date = key_date(&k).ok_or_else(|| corrupt("checkpoint key"))?;
            (stored_checkpoint(store, date)?, Some(date))
        }
        None => (Ledger::new(), None),
    };
    let reversed = match store.aux_get(RV)? {
        Some(v) => decode_seqs(&v).ok_or_else(|| corrupt("reversed set"))?,
        None => BTreeSet::new(),
    };
    fold_dated(store, &mut ledger, after, as_of, |s| !reversed.contains(&s))?;
    Ok(Some(ledger))
}

/// Folds into `ledger` (the state at the checkpoint of `after`, or nothing) the events dated
/// after `after` and on or before `as_of` that `counts`, found through the date index, in
/// (effective, seq) order.
pub(crate) fn fold_dated(
    store: &dyn Snapshot,
    ledger: &mut Ledger,
    after: Option<Date>,
    as_of: Date,
    counts: impl Fn(u64) -> bool,
) -> Result<(), Error> {
    fold_events(ledger, &dated_events(store, after, as_of, counts)?)
}

/// The events dated after `after` and on or before `as_of` that `counts`, found through the
/// date index, reversals left out, in (effective, seq) order: what `fold_dated` folds.
pub(crate) fn dated_events(
    store: &dyn Snapshot,
    after: Option<Date>,
    as_of: Date,
    counts: impl Fn(u64) -> bool,
) -> Result<Vec<(u64, Event)>, Error> {
    let seqs = dated_seqs(store, after, as_of, counts, usize::MAX)?.unwrap_or_default();
    decode_dated(store, &seqs)
}

/// The date index's keys for the days after `after` (all days when `None`) up to `as_of`.
pub(crate) fn date_range(after: Option<Date>, as_of: Date) -> (Vec<u8>, Vec<u8>) {
    let from = match after {
        Some(d) => {
            let mut k = date_prefix(d);
            k.pop();
            k.push(0xff);
            k
        }
        None => b"dx/".to_vec(),
    };
    let mut to = key("dx", &as_of.to_string());
    to.push(0xff);
    (from, to)
}

/// The seqs of `dated_events`, ascending, nothing decoded; `None` as soon as more than
/// `limit` of them count.
pub(crate) fn dated_seqs(
    store: &dyn Snapshot,
    after: Option<Date>,
    as_of: Date,
    counts: impl Fn(u64) -> bool,
    limit: usize,
) -> Result<Option<Vec<u64>>, Error> {
    let (from, to) = date_range(after, as_of);
    let mut seqs = BTreeSet::new();
    for (_, v) in store.aux_range(&from, &to, false)? {
        let day = decode_seqs(&v).ok_or_else(|| corrupt("date index"))?;
        seqs.extend(day.into_iter().filter(|s| counts(*s)));
        if seqs.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(seqs.into_iter().collect()))
}

/// The events at `seqs`, reversals left out, in (effective, seq) order.
pub(crate) fn decode_dated(store: &dyn Snapshot, seqs: &[u64]) -> Result<Vec<(u64, Event)>, Error> {
    let mut events: Vec<(u64, Event)> = Vec::with_capacity(seqs.len());
    for r in decode_at(store, seqs)? {
        if !matches!(r.event.payload, Payload::EventReversed(_)) {
            events.push((r.seq, r.event));
        }
    }
    events.sort_by_key(|(seq, e)| (e.effective, *seq));
    Ok(events)
}

/// Folds `events` (in (effective, seq) order) into `ledger`.
pub(crate) fn fold_events(ledger: &mut Ledger, events: &[(u64, Event)]) -> Result<(), Error> {
    for (seq, event) in events {
        replay(ledger, *seq, event)?;
    }
    Ok(())
}

/// Whether some event registers `party`, from the keys; `None` when they
/// are not current.
pub(crate) fn party_registered(store: &dyn Snapshot, party: &Slug) -> Result<Option<bool>, Error> {
    if !keys_current(store)? {
        return Ok(None);
    }
    Ok(Some(store.aux_get(&key("pt", party.as_str()))?.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::event::Event;

    fn ledger_of(lines: &[&str]) -> Ledger {
        let mut ledger = Ledger::new();
        for line in lines {
            let event = Event::from_line(line).expect("event");
            ledger.apply(&event).expect("applies");
        }
        ledger
    }

    fn parties(n: usize) -> Ledger {
        let lines: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"type":"party_registered","id":"e{i}","effective":"2025-01-01","party":"party-{i}","name":"Party number {i} with a long enough name","kind":"fund"}}"#
                )
            })
            .collect();
        ledger_of(&lines.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn a_checkpoint_is_cut_in_numbered_pieces_that_join_back() {
        let ledger = parties(2000);
        let date = Date::parse("2025-01-01").unwrap();
        let writes = checkpoint_writes(Vec::new(), date, &ledger).unwrap();
        let bytes = encode_ledger(&ledger).unwrap();
        assert!(
            writes.len() > 2,
            "{} bytes in {} pieces",
            bytes.len(),
            writes.len()
        );
        for (i, w) in writes.iter().enumerate() {
            assert_eq!(w.key, format!("cp/2025-01-01/{i:06x}").into_bytes());
            assert!(w.value.as_ref().unwrap().len() <= PIECE);
        }
        let prefix = checkpoint_prefix(date);
        let entries = || {
            writes
                .iter()
                .map(|w| (w.key.as_slice(), w.value.as_deref().unwrap()))
        };
        let joined = join_pieces(&prefix, entries()).unwrap();
        assert_eq!(decode_ledger(&joined).unwrap(), ledger);
        // A piece missing, out of place or misnamed is not a checkpoint.
        assert_eq!(join_pieces(&prefix, entries().skip(1)), None);
        assert_eq!(join_pieces(&prefix, entries().rev()), None);
        let renamed = b"cp/2025-01-01/00000x".to_vec();
        let odd = std::iter::once((renamed.as_slice(), &b"x"[..]));
        assert_eq!(join_pieces(&prefix, odd), None);
        assert_eq!(join_pieces(&prefix, std::iter::empty()), None);
        // Numbers written otherwise, a piece too short before the last, an empty one.
        let last = writes.len() - 1;
        let with = |i: usize, key: &[u8], value: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
            let mut e: Vec<(Vec<u8>, Vec<u8>)> =
                entries().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            e[i] = (key.to_vec(), value.to_vec());
            e
        };
        let join = |e: &[(Vec<u8>, Vec<u8>)]| {
            join_pieces(&prefix, e.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
        };
        let first = entries().next().unwrap().1.to_vec();
        assert_eq!(join(&with(0, b"cp/2025-01-01/+00000", &first)), None);
        let upper = format!("cp/2025-01-01/{last:06X}").into_bytes();
        let tail = entries().next_back().unwrap().1.to_vec();
        if format!("{last:06X}") != format!("{last:06x}") {
            assert_eq!(join(&with(last, &upper, &tail)), None);
        }
        assert_eq!(join(&with(0, &writes[0].key, &first[..10])), None);
        let mut extra = with(last, &writes[last].key, &tail);
        extra.push((piece_key(date, last + 1), Vec::new()));
        assert_eq!(join(&extra), None);
    }

    #[test]
    fn a_checkpoint_rewritten_shorter_leaves_no_piece_behind() {
        let date = Date::parse("2025-01-01").unwrap();
        let long = parties(2000);
        let short = parties(3);
        let mut keys: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let apply = |keys: &mut BTreeMap<Vec<u8>, Vec<u8>>, writes: Vec<AuxWrite>| {
            for w in writes {
                match w.value {
                    Some(v) => keys.insert(w.key, v),
                    None => keys.remove(&w.key),
                };
            }
        };
        apply(
            &mut keys,
            checkpoint_writes(Vec::new(), date, &long).unwrap(),
        );
        assert!(keys.len() > 2);
        let old: Vec<Vec<u8>> = keys.keys().cloned().collect();
        apply(&mut keys, checkpoint_writes(old, date, &short).unwrap());
        assert_eq!(keys.len(), 1, "{:?}", keys.keys().collect::<Vec<_>>());
        let prefix = checkpoint_prefix(date);
        let joined = join_pieces(
            &prefix,
            keys.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .unwrap();
        assert_eq!(decode_ledger(&joined).unwrap(), short);
    }
}
