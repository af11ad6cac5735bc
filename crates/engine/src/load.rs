//! Reading the log back: each stored record decoded into its event.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use domain::event::{Event, Payload};
use domain::RecordedEvent;
use store::{Record, RecordIter, Snapshot, StoreError};

use crate::{Engine, Error};

/// One stored event with its place in the log, as `accord log` shows it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub seq: u64,
    /// The recorded time as stored (RFC 3339, microseconds, UTC).
    pub recorded: String,
    pub hash: String,
    pub event: Event,
    /// The id of the reversal that removed this event, as known now.
    pub reversed_by: Option<String>,
}

impl LogEntry {
    /// A stored record decoded, without its reversal.
    fn of(r: Record) -> Result<LogEntry, Error> {
        let e = decode(&r).map_err(|m| Error::corrupt_at(r.seq, &m))?;
        Ok(LogEntry {
            seq: r.seq,
            hash: r.hash_hex(),
            recorded: r.recorded,
            event: e.event,
            reversed_by: None,
        })
    }
}

impl Engine {
    /// The stored events with a seq above `since`, in seq order, each with the reversal that
    /// reversed it. Only the records after `since` are read: a reversal is always recorded
    /// after the event it reverses, so every reversal of an event shown is among them. The
    /// cost grows with the output, not with the log.
    pub fn log(&self, since: u64) -> Result<Vec<LogEntry>, Error> {
        let snapshot = self.store.read()?;
        let mut entries = Vec::new();
        let mut reversals: ahash::AHashMap<String, String> = ahash::AHashMap::new();
        if snapshot.len() <= since {
            return Ok(entries);
        }
        for r in snapshot.records_after(since) {
            let entry = LogEntry::of(r?)?;
            if let Payload::EventReversed(p) = &entry.event.payload {
                reversals.insert(p.reverses.to_string(), entry.event.id.to_string());
            }
            entries.push(entry);
        }
        for entry in &mut entries {
            entry.reversed_by = reversals.remove(entry.event.id.as_str());
        }
        Ok(entries)
    }

    /// At most `limit` stored events with a seq above `since`, in seq order, and the head of
    /// the view they were read from. Only those records are read and decoded, so a page costs
    /// what it holds, not the log; `reversed_by` is left empty (the log's JSON lines do not
    /// carry it).
    pub fn log_page(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<(Vec<LogEntry>, Option<store::Head>), Error> {
        let snapshot = self.store.read()?;
        let head = snapshot.head();
        let mut entries = Vec::new();
        if head.as_ref().is_some_and(|h| h.seq > since) {
            for r in snapshot.records_after(since).take(limit) {
                entries.push(LogEntry::of(r?)?);
            }
        }
        Ok((entries, head))
    }

    /// The recorded event with this id (`unknown_event` when none has it).
    pub fn show(&self, id: &str) -> Result<LogEntry, Error> {
        let snapshot = self.store.read()?;
        let unknown = || {
            Error::refused(
                "unknown_event",
                format!("no recorded event has the id `{id}` (see `accord log`)"),
            )
        };
        let seq = snapshot.seq_of(id)?.ok_or_else(unknown)?;
        let record = snapshot.records_at(&[seq])?.pop().ok_or_else(unknown)?;
        let event = decode(&record)
            .map_err(|m| Error::corrupt_at(seq, &m))?
            .event;
        // The reversal that names it, if one is recorded.
        let mut reversed_by = None;
        for r in snapshot.records_after(seq) {
            let r = r?;
            let e = decode(&r).map_err(|m| Error::corrupt_at(r.seq, &m))?;
            if let Payload::EventReversed(p) = &e.event.payload {
                if p.reverses.as_str() == id {
                    reversed_by = Some(e.event.id.to_string());
                }
            }
        }
        Ok(LogEntry {
            seq,
            hash: record.hash_hex(),
            recorded: record.recorded,
            event,
            reversed_by,
        })
    }
}

/// A stored record's event, checked against the record's id and recorded time.
pub(crate) fn decode(r: &Record) -> Result<RecordedEvent, String> {
    decode_with(r, &mut RecordedTimes::default())
}

/// The recorded time last parsed: the records of one batch share theirs, and a long pass
/// parses each only once.
#[derive(Default)]
pub(crate) struct RecordedTimes(Option<(String, DateTime<Utc>)>);

impl RecordedTimes {
    fn parse(&mut self, text: &str) -> Result<DateTime<Utc>, String> {
        if let Some((last, at)) = &self.0 {
            if last == text {
                return Ok(*at);
            }
        }
        let at = DateTime::parse_from_rfc3339(text)
            .map_err(|_| format!("bad recorded time {text:?}"))?
            .with_timezone(&Utc);
        self.0 = Some((text.to_string(), at));
        Ok(at)
    }
}

/// `decode`, parsing the recorded time only when it differs from the last one `times` saw.
pub(crate) fn decode_with(r: &Record, times: &mut RecordedTimes) -> Result<RecordedEvent, String> {
    let text = std::str::from_utf8(&r.body).map_err(|_| "the event is not UTF-8".to_string())?;
    let event = Event::from_line(text).map_err(|e| e.to_string())?;
    if event.id.as_str() != r.id {
        return Err(format!(
            "the stored id `{}` differs from the event's id `{}`",
            r.id, event.id
        ));
    }
    let recorded = times.parse(&r.recorded)?;
    Ok(RecordedEvent {
        seq: r.seq,
        recorded,
        event,
    })
}

/// The decoded log of a snapshot.
pub(crate) fn load_events(snapshot: &dyn Snapshot) -> Result<Vec<RecordedEvent>, Error> {
    let count = usize::try_from(snapshot.len()).unwrap_or(0);
    decode_records(snapshot.records(), count, |_| {}).map_err(Error::from)
}

/// The records with seqs in `after+1 ..= upto`, decoded.
pub(crate) fn decode_range(
    store: &dyn Snapshot,
    after: u64,
    upto: u64,
) -> Result<Vec<RecordedEvent>, Error> {
    if upto <= after {
        return Ok(Vec::new());
    }
    let count = usize::try_from(upto - after).unwrap_or(usize::MAX);
    let records = Box::new(store.records_after(after).take(count));
    decode_records(records, count, |_| {}).map_err(Error::from)
}

/// Whether `decode_at` may read on a second thread (see `split_reads`).
static SPLIT_READS: AtomicBool = AtomicBool::new(true);

/// Whether a read of many scattered records (an aggregate's stream, an entity's timeline, the
/// events dated after a checkpoint) is split over two threads: on by default, which is what a
/// process answering one question wants. A process answering many at once (`accord serve`,
/// whose engine calls are already one per core) turns it off: a second thread per read
/// gains it nothing, and each one's allocations land in another of the allocator's arenas,
/// which raised the server's peak memory under load by a quarter.
pub fn split_reads(on: bool) {
    SPLIT_READS.store(on, Ordering::Relaxed);
}

/// Whether reads may be split over two threads (`split_reads`).
pub(crate) fn splitting() -> bool {
    SPLIT_READS.load(Ordering::Relaxed)
}

/// The records at `seqs`, decoded, in the order asked. Many records are scattered over as many
/// segments, each read and decompressed whole for the few records wanted (an aggregate's
/// stream, an entity's timeline): their two halves are read on two threads.
pub(crate) fn decode_at(store: &dyn Snapshot, seqs: &[u64]) -> Result<Vec<RecordedEvent>, Error> {
    /// Below this, a second thread costs more than it saves.
    const SPLIT_FROM: usize = 64;
    let read = |seqs: &[u64]| -> Result<Vec<RecordedEvent>, Error> {
        store
            .records_at(seqs)?
            .iter()
            .map(|record| decode(record).map_err(|m| Error::corrupt_at(record.seq, &m)))
            .collect()
    };
    if seqs.len() < SPLIT_FROM || !splitting() {
        return read(seqs);
    }
    // Most callers ask in seq order, so the halves are two runs of the log that share at most
    // one segment (a timeline asks stream after stream, and may read a segment twice).
    let (first, second) = seqs.split_at(seqs.len() / 2);
    let (a, b) = in_parallel(|| read(first), || read(second));
    let mut events = a?;
    events.extend(b?);
    Ok(events)
}

/// `first()` on this thread and `second()` on another, meanwhile; both here, one after the
/// other, when a thread cannot be started.
pub(crate) fn in_parallel<A, B: Send>(
    first: impl FnOnce() -> A,
    second: impl FnOnce() -> Result<B, Error> + Send,
) -> (A, Result<B, Error>) {
    let second = std::sync::Mutex::new(Some(second));
    // Only borrows `second`, so it is `Copy`: a thread that does not start leaves it here.
    let run = || {
        let f = second.lock().ok().and_then(|mut s| s.take());
        f.map_or_else(|| Err(Error::failed("a read ran twice")), |f| f())
    };
    std::thread::scope(
        |scope| match std::thread::Builder::new().spawn_scoped(scope, run) {
            Ok(other) => {
                let a = first();
                let b = other
                    .join()
                    .unwrap_or_else(|_| Err(Error::failed("a read on a second thread panicked")));
                (a, b)
            }
            Err(_) => (first(), run()),
        },
    )
}

impl From<DecodeFailure> for Error {
    fn from(e: DecodeFailure) -> Error {
        match e {
            DecodeFailure::Store(e) => Error::from(e),
            DecodeFailure::Event(seq, m) => Error::corrupt_at(seq, &m),
        }
    }
}

/// Why `decode_records` stopped.
pub(crate) enum DecodeFailure {
    Store(StoreError),
    Event(u64, String),
}

/// Decodes every record in order (about `count` of them), showing each to `each` first.
/// Decoding JSON is most of a replay's time, so each round of records is split over two
/// threads.
pub(crate) fn decode_records(
    mut records: RecordIter<'_>,
    count: usize,
    mut each: impl FnMut(&Record),
) -> Result<Vec<RecordedEvent>, DecodeFailure> {
    /// Records decoded per round: enough to keep both threads busy, few enough that the raw
    /// records of one round stay small next to the decoded log.
    const CHUNK: usize = 16 * 1024;
    let decode_chunk = |chunk: &[Record]| -> Result<Vec<RecordedEvent>, DecodeFailure> {
        let mut times = RecordedTimes::default();
        chunk
            .iter()
            .map(|r| decode_with(r, &mut times).map_err(|m| DecodeFailure::Event(r.seq, m)))
            .collect()
    };
    let mut times = RecordedTimes::default();
    // Sized once: grown by doubling, a million decoded events would be copied and their
    // pages touched twice over (a fresh page is not free on a virtual machine). Capped, as
    // the count is the store's word.
    let mut events: Vec<RecordedEvent> = Vec::with_capacity(count.min(1 << 24));
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        for r in records.by_ref().take(CHUNK) {
            let r = r.map_err(DecodeFailure::Store)?;
            each(&r);
            chunk.push(r);
        }
        if chunk.is_empty() {
            break;
        }
        let (first, second) = chunk.split_at(chunk.len() / 2);
        // The first half is decoded straight into `events`, the second on another thread.
        let (a, b) = std::thread::scope(|scope| {
            let other = scope.spawn(|| decode_chunk(second));
            let a = first.iter().try_for_each(|r| {
                events
                    .push(decode_with(r, &mut times).map_err(|m| DecodeFailure::Event(r.seq, m))?);
                Ok(())
            });
            let b = other.join().unwrap_or_else(|_| {
                Err(DecodeFailure::Event(
                    second.first().map_or(0, |r| r.seq),
                    "decoding panicked".into(),
                ))
            });
            (a, b)
        });
        a?;
        events.extend(b?);
    }
    Ok(events)
}

/// Runs the store's own check of `snapshot` (`Snapshot::verify_each`) on a second thread
/// while `read` reads the records of the log in seq order from what that check hands on: the
/// log is read (and decompressed) once for both. `read` sees the records in batches as the
/// check passes them. Where the feed ends is no verdict: after a failed check it may end
/// anywhere, so the check's result, returned beside `read`'s answer, is what decides. If
/// `read` stops early, the check goes on alone.
pub(crate) fn read_checked<T>(
    snapshot: &dyn Snapshot,
    read: impl FnOnce(&mut Feed) -> T,
) -> (Result<Option<store::Head>, StoreError>, T) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Record>>(FEED_DEPTH);
    let last = snapshot.len();
    std::thread::scope(|scope| {
        let chain = scope.spawn(move || {
            let mut hand = Hand {
                tx: Some(tx),
                batch: Vec::with_capacity(FEED_BATCH),
                last,
            };
            snapshot.verify_each(&mut |r| hand.hand(r))
        });
        let mut feed = Feed {
            rx,
            pending: Vec::new().into_iter(),
        };
        let answer = read(&mut feed);
        // Whatever `read` did, the check must not wait on a feed no one reads.
        drop(feed);
        let head = chain.join().unwrap_or_else(|_| {
            Err(StoreError::Corrupt {
                seq: None,
                detail: "the hash check panicked".into(),
            })
        });
        (head, answer)
    })
}

/// Records per batch handed from the store's check to the reader, and batches in flight:
/// enough for the check to run ahead while the reader prepares (verify's plan of the
/// timeline takes some 70 ms at 1M, a fifth of a million records), about 12 MB.
const FEED_BATCH: usize = 1024;
const FEED_DEPTH: usize = 32;

/// The store's check's end of a `Feed`.
struct Hand {
    /// `None` once the reader stopped reading: the records are dropped.
    tx: Option<std::sync::mpsc::SyncSender<Vec<Record>>>,
    batch: Vec<Record>,
    /// The last seq of the view: its batch goes at once (not after the check's work on the
    /// store's own indexes), so no record is left behind.
    last: u64,
}

impl Hand {
    fn hand(&mut self, record: Record) {
        let Some(tx) = &self.tx else {
            return;
        };
        let end = record.seq >= self.last;
        self.batch.push(record);
        if self.batch.len() >= FEED_BATCH || end {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(FEED_BATCH));
            if tx.send(full).is_err() {
                self.tx = None;
            }
        }
    }
}

/// The reader's end of `read_checked`: the records in seq order, as the check passed them.
pub(crate) struct Feed {
    rx: std::sync::mpsc::Receiver<Vec<Record>>,
    pending: std::vec::IntoIter<Record>,
}

impl Iterator for Feed {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.pending.next() {
                return Some(r);
            }
            self.pending = self.rx.recv().ok()?.into_iter();
        }
    }
}
