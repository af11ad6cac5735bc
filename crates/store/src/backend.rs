//! The log behind an interface: what the engine above may ask of any store.
//!
//! A store is a [`Backend`]. Reads go through a [`Snapshot`], one consistent view of the log
//! and of the caller's keys derived from it; a write is a [`Transaction`]: it reads what it
//! validates against (head, id index, caller keys, records) under the writer's lock, then
//! commits the new events and the caller's key writes together, or nothing.
//!
//! - The embedded store ([`Store`], a directory) takes an exclusive process lock when it is
//!   opened; within the process, a write holds the writer's mutex from its first read to its
//!   commit, and a snapshot is the log up to the head it was taken at (commits of the same
//!   process wait for open snapshots while they apply their batch).
//! - A database backend maps a snapshot to a repeatable-read transaction and a write to a
//!   transaction that first locks the ledger's head row (`SELECT ... FOR UPDATE`); nothing
//!   above this crate needs to change for it.
//!
//! A thread must not commit while it holds a snapshot of the same store: the commit would wait
//! for that snapshot.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::{AuxEntries, AuxWrite, Head, NewEvent, Opening, Receipt, Record, Store, StoreError};

/// Records in seq order; a damaged or missing record is yielded once as an error, then the
/// iteration ends.
pub type RecordIter<'a> = Box<dyn Iterator<Item = Result<Record, StoreError>> + 'a>;

/// One consistent view of a log: its head as of when the view was taken, the records up to it
/// and the caller's keys as that head left them.
pub trait Snapshot: Sync {
    /// The last record's seq, hash and recorded time; `None` for an empty log.
    fn head(&self) -> Option<Head>;
    /// The number of records, which is also the head's seq.
    fn len(&self) -> u64 {
        self.head().map_or(0, |h| h.seq)
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The seq of a recorded id.
    fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError>;
    /// The records with these seqs, in the order asked; a seq past the head is `Corrupt`.
    fn records_at(&self, seqs: &[u64]) -> Result<Vec<Record>, StoreError>;
    /// The records with a seq above `after`, up to the head.
    fn records_after(&self, after: u64) -> RecordIter<'_>;
    /// Every record, up to the head.
    fn records(&self) -> RecordIter<'_> {
        self.records_after(0)
    }
    /// One of the caller's keys.
    fn aux_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The caller's keys in `[from, to)` with their values, in key order; `last_only` gives at
    /// most the last one.
    fn aux_range(&self, from: &[u8], to: &[u8], last_only: bool) -> Result<AuxEntries, StoreError>;
    /// The caller's keys in `[from, to)`, without their values.
    fn aux_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Re-reads the whole log of this view: seq continuity, every hash link, the store's own
    /// indexes and its record of acknowledged appends. Returns the head, or `Corrupt` naming
    /// the first bad seq. It may run on another thread beside the view's other reads.
    fn verify(&self) -> Result<Option<Head>, StoreError> {
        self.verify_each(&mut |_| {})
    }
    /// `verify`, handing every record to `each` in seq order as soon as its hash link is
    /// checked, so that a caller who reads the whole log beside the check (`accord verify`
    /// decodes every event) reads it once. The records handed prove nothing until the check
    /// returns `Ok`: on `Err`, some or all of them may have been handed (damage in the
    /// store's own indexes is found after the last record).
    fn verify_each(&self, each: &mut dyn FnMut(Record)) -> Result<Option<Head>, StoreError>;
}

/// An empty log: no record and no key (what the keys of a log are worked out against when it
/// is written into a store that must be empty).
pub struct EmptyLog;

impl Snapshot for EmptyLog {
    fn head(&self) -> Option<Head> {
        None
    }
    fn seq_of(&self, _id: &str) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    fn records_at(&self, seqs: &[u64]) -> Result<Vec<Record>, StoreError> {
        match seqs.first() {
            None => Ok(Vec::new()),
            Some(&seq) => Err(StoreError::Corrupt {
                seq: Some(seq),
                detail: "asked for a seq past the head".into(),
            }),
        }
    }
    fn records_after(&self, _after: u64) -> RecordIter<'_> {
        Box::new(std::iter::empty())
    }
    fn aux_get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    fn aux_range(&self, _from: &[u8], _to: &[u8], _last: bool) -> Result<AuxEntries, StoreError> {
        Ok(Vec::new())
    }
    fn aux_keys(&self, _from: &[u8], _to: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(Vec::new())
    }
    fn verify_each(&self, _each: &mut dyn FnMut(Record)) -> Result<Option<Head>, StoreError> {
        Ok(None)
    }
}

/// A write: everything read through it stays as read until `commit`, which appends a batch
/// after the head it read, with the caller's key writes, atomically and durably. A transaction
/// may commit several batches one after the other (an import writes each file as its own
/// batch), each seeing the ones before; dropping it writes nothing more.
pub trait Transaction: Snapshot {
    /// Appends `batch` (every event new, seqs from `len() + 1`) and applies `aux`
    /// (`Some` sets, `None` removes) in one atomic, flushed write. `now` is the recorded time
    /// (never before the head's). Returns once the batch is durable.
    fn commit(
        &mut self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError>;

    /// `commit`, with the key writes worked out by `aux` (on this thread) while the store is
    /// already writing the batch's records where nothing refers to them yet (the embedded
    /// store's log file past its committed end). `aux` returning `None` writes nothing and
    /// gives `Ok(None)`; it is not called for a batch with no new event.
    fn commit_then(
        &mut self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: &mut dyn FnMut() -> Option<Vec<AuxWrite>>,
    ) -> Result<Option<Receipt>, StoreError> {
        match aux() {
            Some(aux) => self.commit(batch, now, &aux).map(Some),
            None => Ok(None),
        }
    }

    /// Appends records that keep their seq, recorded time and hash (a copy of another log):
    /// each must follow the head (the next seq, a recorded time not before the head's, a hash
    /// chained from the one before, an id not recorded yet), or nothing is written
    /// (`InvalidEvent`). With `aux`, in one atomic, flushed write.
    fn commit_records(
        &mut self,
        records: &[Record],
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError>;

    /// `commit_records`, with the key writes worked out by `aux` (on this thread) while the
    /// store is already writing the records where it can (the PostgreSQL store's `COPY`
    /// runs meanwhile). `aux` returning `None` writes nothing and gives `Ok(None)`.
    fn commit_records_then(
        &mut self,
        records: &[Record],
        aux: &mut dyn FnMut() -> Option<Vec<AuxWrite>>,
    ) -> Result<Option<Receipt>, StoreError> {
        match aux() {
            Some(aux) => self.commit_records(records, &aux).map(Some),
            None => Ok(None),
        }
    }

    /// Group commit: from now on each `commit` is applied at once (the next one validates
    /// against it) but made durable only by `flush`, which makes every batch of the group
    /// durable together (one flush for all). Readers see none of them before `flush`
    /// returns; a batch of a group is acknowledged only after it. A backend that flushes
    /// every commit may ignore it.
    fn group(&mut self) {}

    /// Makes the group's batches durable (see `group`); nothing to do outside a group.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store of one log.
pub trait Backend: Send + Sync {
    /// A consistent read of the log as it is now.
    fn read(&self) -> Result<Box<dyn Snapshot + '_>, StoreError>;
    /// Starts a write transaction (waits for other writers of this store).
    fn write(&self) -> Result<Box<dyn Transaction + '_>, StoreError>;
    /// Where the store is, for messages.
    fn location(&self) -> String;
    /// Whether the store has been created (a database ledger may be opened for its first
    /// append before it exists). An opened directory store always has.
    fn exists(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// For appends: a missing store is created.
    Write,
    /// For reads: a missing store is `StoreError::Missing`, and nothing is created.
    Read,
}

/// Opens the store at `location`: a PostgreSQL URL (`postgres://`, `postgresql://`), else an
/// embedded store, a directory (which fails at once, `Locked`, when another process holds it).
pub fn open(location: &Path, access: Access) -> Result<Box<dyn Backend>, StoreError> {
    open_with(location, access, &Opening::default())
}

/// `open`, waiting for another holder as `opening` says.
pub fn open_with(
    location: &Path,
    access: Access,
    opening: &Opening,
) -> Result<Box<dyn Backend>, StoreError> {
    // A PostgreSQL URL (`postgres://...`): the ledger in that database.
    if let Some(url) = location.to_str().filter(|l| crate::pg::is_url(l)) {
        return Ok(Box::new(crate::pg::PgStore::open(
            url,
            access == Access::Write,
        )?));
    }
    let store = match access {
        Access::Write => Store::create_or_open_with(location, opening)?,
        Access::Read => Store::open_existing_with(location, opening)?,
    };
    Ok(Box::new(store))
}

/// After a large append to the embedded store at `location`, opens and closes it once more, so
/// that the appending process, not the next reader, pays for sled's snapshot: sled 0.34 writes
/// one only while opening, after replaying its whole log since the last one, which after an
/// import of 1M events made the first query take 200 ms instead of 60. Nothing for a database
/// store. Best effort: a store that cannot be opened now (another process took it) is left
/// as it is, as consistent as before.
pub fn settle(location: &Path) {
    if location.to_str().is_some_and(crate::pg::is_url) {
        return;
    }
    let opening = Opening {
        wait: std::time::Duration::ZERO,
        holder: None,
    };
    drop(Store::open_existing_with(location, &opening));
}
