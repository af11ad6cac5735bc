//! The `Store` handle: opening and locking a store directory, atomic appends, reading records
//! in seq order and verifying the whole log. It deliberately does not interpret ids or bodies,
//! read a clock, or decide how errors are shown to users.

use std::collections::BTreeMap;

use ahash::AHashMap as HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};

use crate::codec::{
    self, DirEntry, AUX_PREFIX, DIR_END, DIR_END_KEY, DIR_PREFIX, ID_PREFIX, LEGACY_ID_PREFIX,
    LOG_END_KEY, META_KEY, SEG_PREFIX,
};
use crate::error::StoreError;
use crate::{
    recorded_string, Head, NewEvent, Receipt, Record, SEGMENT_MAX_BYTES, SEGMENT_MAX_EVENTS,
};

/// The file every opener locks exclusively; see `acquire_lock` for why sled's own lock is not
/// enough.
const LOCK_FILE: &str = "accord.lock";
/// sled's data file; its presence is what makes a directory a store for `open_existing`.
const SLED_DB_FILE: &str = "db";
/// sled's configuration file, written when sled creates a database.
const SLED_CONF_FILE: &str = "conf";
/// The head sidecar: `SEQ:HASHHEX\n` of the last acknowledged append, kept outside sled so that
/// a sled file that lost its tail cannot silently pass for a shorter log (see the crate docs).
const HEAD_FILE: &str = "accord.head";
/// The log file: sealed segments, appended and never rewritten (see the crate docs).
const LOG_FILE: &str = "accord.log";
/// Where the next sidecar is written and fsync'd before it is renamed over `HEAD_FILE`.
const HEAD_TMP_FILE: &str = "accord.head.tmp";
/// Bounds sled's page cache, which otherwise defaults to 1 GiB.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;
/// How long to wait for sled's own file lock while already holding ours (see `open_sled`).
const SLED_LOCK_GRACE: Duration = Duration::from_secs(2);
/// The first key after every segment key (`b"seg"` with its last byte incremented).
const SEG_END: &[u8] = b"seh";
const ZERO_HASH: [u8; 32] = [0u8; 32];

/// An open, exclusively locked store. Appends are serialized by an internal mutex, so a
/// `Store` can be shared between threads.
pub struct Store {
    // Fields drop in declaration order: sled must be closed (flushing and releasing its own
    // file lock) before `lock` releases ours, or a process waiting on our lock could find
    // sled's still held.
    db: sled::Db,
    /// sled's data file, opened again for `fdatasync` (see `flush_durably`).
    db_file: File,
    /// The writer's state: held for the whole of a write transaction, so that appends from
    /// threads of this process run one after the other.
    state: Mutex<State>,
    /// The head readers see. A read snapshot holds it shared for its lifetime; a commit holds
    /// it exclusively while its batch is applied and flushed, so a snapshot never sees half a
    /// batch (sled has no multi-key snapshots of its own).
    published: RwLock<Option<Head>>,
    /// The log file: open for writing in a writer, for reading in a reader, and `None` in a
    /// reader of a store that has none (written before it existed, or too small to have sealed
    /// a segment).
    log: Option<File>,
    /// Where the segment directory ends (the first seq of the last segment) while it is
    /// current, 0 when it is not: reads of scattered records then find their segments in it
    /// instead of walking sled's segment keys. Changed with the published head.
    dir_end: AtomicU64,
    path: PathBuf,
    _lock: File,
}

/// What appends need to know about the end of the log. Only this process can write the store
/// (we hold the exclusive lock), so the cached values stay true between appends.
struct State {
    /// First seq of the last segment, which the next append may extend.
    tail: Option<u64>,
    /// The seq the head sidecar names (0 when there is none yet); when it is behind `head`, the
    /// next append brings it up to date.
    acknowledged: u64,
    /// The committed length of the log file (`LOG_END_KEY`); bytes past it are left over from
    /// an append that did not commit, and the next sealed segment overwrites them.
    log_end: u64,
    /// Whether the segment directory lists every segment before the last one, so that appends
    /// keep it so.
    dir_current: bool,
}

impl Store {
    /// Opens the store at `path` for writing, creating the directory and an empty store if
    /// they do not exist yet. Like `open_existing`, it refuses (`Corrupt`) a sled database that
    /// lacks events the `accord.head` sidecar says were acknowledged.
    ///
    /// A store is created only where the path does not exist yet (its parent must) or is an
    /// empty directory: a regular file, or a directory holding anything but a store's own
    /// files, is `NotAStore` and left as it is.
    pub fn create_or_open(path: &Path) -> Result<Store, StoreError> {
        Store::create_or_open_with(path, &Opening::default())
    }

    /// `create_or_open`, waiting for another holder of the lock as `opening` says.
    pub fn create_or_open_with(path: &Path, opening: &Opening) -> Result<Store, StoreError> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => check_store_dir(path)?,
            Ok(_) => return Err(not_a_file(path)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if !parent.is_dir() {
                    return Err(StoreError::NotAStore {
                        path: path.to_path_buf(),
                        detail: format!(
                            "cannot create the store {}: the directory {} does not exist (accord creates the store, not its parents)",
                            path.display(),
                            parent.display()
                        ),
                    });
                }
                match fs::create_dir(path) {
                    Ok(()) => {}
                    // Created meanwhile by another process: opened (and checked) below.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => check_store_dir(path)?,
                    Err(e) => return Err(io_error(path)(e)),
                }
            }
            Err(e) => return Err(io_error(path)(e)),
        }
        let lock = acquire_lock(path, opening)?;
        Store::open_locked(path, lock, true)
    }

    /// Opens an existing store for reading. A path that does not exist, or a directory that
    /// holds no store, gives `StoreError::Missing` and nothing is created.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        Store::open_existing_with(path, &Opening::default())
    }

    /// `open_existing`, waiting for another holder of the lock as `opening` says.
    pub fn open_existing_with(path: &Path, opening: &Opening) -> Result<Store, StoreError> {
        let missing = || StoreError::Missing {
            path: path.to_path_buf(),
        };
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(not_a_file(path)),
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(io_error(path)(e)),
        }
        // Without sled's data file sled would create a fresh database here, which a reader
        // must never do.
        match fs::metadata(path.join(SLED_DB_FILE)) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(missing()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // A directory of other things is said to be that, not a missing store.
                check_store_dir(path)?;
                return Err(missing());
            }
            Err(e) => return Err(io_error(path)(e)),
        }
        // sled writes `conf` when it creates a database; a `db` without it is not a store
        // sled made, and letting sled open it would reinitialize the directory.
        if !path.join(SLED_CONF_FILE).is_file() {
            return Err(StoreError::corrupt(
                None,
                format!(
                    "{} holds a `db` file but no `conf`: it is not a complete accord store",
                    path.display()
                ),
            ));
        }
        // The store exists, so (re)creating its lock file inside it is not creating a store.
        let lock = acquire_lock(path, opening)?;
        Store::open_locked(path, lock, false)
    }

    fn open_locked(path: &Path, lock: File, writer: bool) -> Result<Store, StoreError> {
        let db = open_sled(path)?;
        let db_path = path.join(SLED_DB_FILE);
        let db_file = File::open(&db_path).map_err(io_error(&db_path))?;
        let head = match db.get(META_KEY).map_err(sled_error(path))? {
            Some(bytes) => {
                let (seq, hash, recorded) = codec::decode_head(&bytes)?;
                Some(Head {
                    seq,
                    hash,
                    recorded,
                })
            }
            None => None,
        };
        let tail = match db.scan_prefix(SEG_PREFIX).keys().next_back() {
            Some(key) => {
                let key = key.map_err(sled_error(path))?;
                Some(codec::parse_seg_key(&key).ok_or_else(|| {
                    StoreError::corrupt(None, "malformed segment key at the end of the log")
                })?)
            }
            None => None,
        };
        let log_end = match db.get(LOG_END_KEY).map_err(sled_error(path))? {
            Some(v) => u64::from_be_bytes(v[..].try_into().map_err(|_| {
                StoreError::corrupt(None, "the log file's recorded length is damaged")
            })?),
            None => 0,
        };
        let log = open_log_file(path, writer, log_end)?;
        let sidecar = read_head_file(path)?;
        migrate_legacy_index(&db, &db_file, path)?;
        let dir_current = match tail {
            None => true,
            Some(t) if directory_end(&db, path)? == Some(t) => true,
            Some(t) if writer => {
                build_directory(&db, &db_file, path, t)?;
                true
            }
            Some(_) => false,
        };
        let store = Store {
            db,
            db_file,
            published: RwLock::new(head.clone()),
            state: Mutex::new(State {
                tail,
                acknowledged: sidecar.as_ref().map_or(0, |(seq, _)| *seq),
                log_end,
                dir_current,
            }),
            log,
            dir_end: AtomicU64::new(match (tail, dir_current) {
                (Some(t), true) => t,
                _ => 0,
            }),
            path: path.to_path_buf(),
            _lock: lock,
        };
        if let Some((seq, hash)) = sidecar {
            store.check_acknowledged(head.as_ref(), seq, &hash)?;
        }
        Ok(store)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // State is replaced only after a write succeeded, by plain assignments that cannot
        // panic halfway, so a poisoned mutex still guards consistent values.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn published(&self) -> RwLockReadGuard<'_, Option<Head>> {
        // The head is replaced whole, after its batch was applied: a poisoned lock still
        // guards a consistent value.
        self.published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self) -> RwLockWriteGuard<'_, Option<Head>> {
        self.published
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The last record's seq, hash and recorded time; None for an empty log.
    pub fn head(&self) -> Result<Option<Head>, StoreError> {
        Ok(self.published().clone())
    }

    /// Number of records (which is also the head's seq, since seqs start at 1 without gaps).
    pub fn len(&self) -> u64 {
        self.published().as_ref().map_or(0, |h| h.seq)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Atomic batch: all events become visible, or none (also across a crash). Events whose id
    /// is already recorded with byte-identical body are skipped and counted; an id recorded with
    /// a different body gives `IdConflict` and nothing is written. Within the batch, a repeated
    /// id with identical body is skipped, with a different body it is an `IdConflict` naming the
    /// first one's provisional seq. All appended events get the same `recorded` =
    /// max(now, last recorded), so `recorded` never decreases along seq. Flushed to disk, and
    /// the new head recorded in the `accord.head` sidecar (see the crate docs), before
    /// returning Ok; if the flush or the sidecar write fails the events may still be visible,
    /// and appending the same batch again is then skipped as idempotent (and completes the
    /// sidecar).
    pub fn append(
        &self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
    ) -> Result<Receipt, StoreError> {
        self.append_with(batch, now, None)
    }

    /// `append`, plus the caller's own keys written in the same atomic batch, so that what
    /// the caller derives from the events (its indexes) can never disagree with the log, even
    /// across a crash. `aux` names the seq the batch's first event must get (the caller
    /// computed its writes for it) and the writes: `(key, Some(value))` sets, `(key, None)`
    /// removes, keys are in the caller's namespace (see `aux_get`). With `aux`, every event
    /// must be new and get exactly those seqs; otherwise nothing is written and the error is
    /// `InvalidEvent`.
    pub fn append_with(
        &self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: Option<(u64, &[AuxWrite])>,
    ) -> Result<Receipt, StoreError> {
        let mut state = self.state();
        let current = self.head()?;
        let aux = aux.map(|(first, aux)| (first, Keys::Given(aux)));
        self.append_locked(&mut state, current, batch, now, aux, None)?
            .ok_or_else(given_keys_declined)
    }

    /// `append_with` for a caller that holds the writer's state.
    /// `current` is the head as the caller's transaction sees it. With `grouped` (the head
    /// readers see, held exclusively by a group of commits), the batch is applied and put in
    /// `grouped` but not flushed: the group's `flush` makes it durable. `None` when the
    /// caller's `Keys::Later` declined (nothing written).
    fn append_locked(
        &self,
        state: &mut State,
        current: Option<Head>,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: Option<(u64, Keys<'_>)>,
        grouped: Option<&mut Option<Head>>,
    ) -> Result<Option<Receipt>, StoreError> {
        // Only holders of `state` change the head, so it stays as read here.
        let head_seq = current.as_ref().map_or(0, |h| h.seq);
        if let Some((first, _)) = &aux {
            if *first != head_seq + 1 {
                return Err(StoreError::InvalidEvent {
                    index: 0,
                    detail: format!(
                        "the caller expected the batch at seq {first} but the log is at seq {head_seq}"
                    ),
                });
            }
        }

        for (index, event) in batch.iter().enumerate() {
            if u32::try_from(event.id.len()).is_err() {
                return Err(StoreError::InvalidEvent {
                    index,
                    detail: "the id is longer than 4 GiB".into(),
                });
            }
        }

        // Decide which events are new before writing anything, so a conflict anywhere leaves
        // the log untouched.
        let mut seen: HashMap<&str, (u64, &[u8])> = HashMap::with_capacity(batch.len());
        let mut fresh: Vec<&NewEvent<'_>> = Vec::with_capacity(batch.len());
        let mut skipped = 0u64;
        let mut bodies = BodyLookup::new(self, head_seq);
        for event in batch {
            if let Some(&(seq, body)) = seen.get(event.id) {
                if body == event.body {
                    skipped += 1;
                    continue;
                }
                return Err(StoreError::IdConflict {
                    id: event.id.to_owned(),
                    seq,
                });
            }
            // An empty log has no index entries, so a fresh import skips the lookups.
            let recorded_seq = if head_seq == 0 {
                None
            } else {
                self.seq_of_upto(event.id, head_seq)?
            };
            if let Some(seq) = recorded_seq {
                if !bodies.same_body(seq, event.id, event.body)? {
                    return Err(StoreError::IdConflict {
                        id: event.id.to_owned(),
                        seq,
                    });
                }
                skipped += 1;
                seen.insert(event.id, (seq, event.body));
                continue;
            }
            let provisional = head_seq + fresh.len() as u64 + 1;
            seen.insert(event.id, (provisional, event.body));
            fresh.push(event);
        }
        drop(bodies);
        if aux.is_some() && fresh.len() != batch.len() {
            return Err(StoreError::InvalidEvent {
                index: 0,
                detail: format!(
                    "{} of the batch's events are already recorded, so the caller's index \
                     writes do not apply",
                    batch.len() - fresh.len()
                ),
            });
        }

        if fresh.is_empty() {
            // A sidecar left behind by a crash between sled's flush and its own write (or an old
            // store without one) is brought up to date here, once sled's state is durable.
            // (A group's flush does it for the group.)
            if let (Some(head), None) = (&current, &grouped) {
                if state.acknowledged < head.seq {
                    flush_durably(&self.db, &self.db_file, &self.path)?;
                    write_head_file(&self.path, head.seq, &head.hash)?;
                    state.acknowledged = head.seq;
                }
            }
            return Ok(Some(Receipt {
                appended: 0,
                skipped,
                first_seq: None,
                last_seq: None,
                head: current,
            }));
        }

        let now = now.trunc_subsecs(6);
        let recorded_at = match &current {
            Some(head) => {
                let last = parse_recorded(&head.recorded)
                    .map_err(|e| StoreError::corrupt(Some(head.seq), e))?;
                now.max(last)
            }
            None => now,
        };
        let recorded = recorded_string(recorded_at);

        let last_seq = head_seq.checked_add(fresh.len() as u64).ok_or_else(|| {
            StoreError::corrupt(Some(head_seq), "the log has run out of seq numbers")
        })?;
        // Each hash is chained as the records are written, so a big batch holds no second
        // list of them.
        let mut prev = current.as_ref().map_or(ZERO_HASH, |h| h.hash);
        let records = fresh.iter().zip(head_seq + 1..).map(|(event, seq)| {
            let hash = codec::chain_hash(&prev, seq, &recorded, event.id, event.body);
            prev = hash;
            Stored {
                seq,
                recorded: &recorded,
                hash,
                id: event.id,
                body: event.body,
            }
        });
        let aux = aux.map_or(Keys::Given(&[]), |(_, aux)| aux);
        let Some(head) = self.write_records(state, head_seq, records, aux, grouped)? else {
            return Ok(None);
        };
        Ok(Some(Receipt {
            appended: fresh.len() as u64,
            skipped,
            first_seq: Some(head_seq + 1),
            last_seq: Some(last_seq),
            head: Some(head),
        }))
    }

    /// Appends records that already have their seq, recorded time and hash (a copy of another
    /// store's log), with the caller's key writes, in one atomic, flushed batch. Each record
    /// must follow the head (seq, recorded time never going back, hash chained from the one
    /// before, id not yet recorded); otherwise nothing is written and the error is
    /// `InvalidEvent` naming the first record that does not.
    fn append_records_locked(
        &self,
        state: &mut State,
        batch: &[Record],
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError> {
        let current = self.head()?;
        let head_seq = current.as_ref().map_or(0, |h| h.seq);
        let mut prev = current.as_ref().map_or(ZERO_HASH, |h| h.hash);
        let mut last = match &current {
            Some(h) => {
                Some(parse_recorded(&h.recorded).map_err(|e| StoreError::corrupt(Some(h.seq), e))?)
            }
            None => None,
        };
        let invalid = |index: usize, detail: String| StoreError::InvalidEvent { index, detail };
        let mut seen: HashMap<&str, u64> = HashMap::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        for (index, r) in batch.iter().enumerate() {
            let want = head_seq + 1 + index as u64;
            if r.seq != want {
                return Err(invalid(
                    index,
                    format!("seq {} where seq {want} comes next", r.seq),
                ));
            }
            if u32::try_from(r.id.len()).is_err() {
                return Err(invalid(index, "the id is longer than 4 GiB".into()));
            }
            let at = parse_recorded(&r.recorded).map_err(|e| invalid(index, e))?;
            if recorded_string(at) != r.recorded {
                return Err(invalid(
                    index,
                    format!("recorded time {:?} is not in the store's form", r.recorded),
                ));
            }
            if last.is_some_and(|l| at < l) {
                return Err(invalid(
                    index,
                    format!("seq {want}: recorded time goes backwards"),
                ));
            }
            last = Some(at);
            if codec::chain_hash(&prev, r.seq, &r.recorded, &r.id, &r.body) != r.hash {
                return Err(invalid(
                    index,
                    format!("seq {want}: the hash does not chain from the record before"),
                ));
            }
            if seen.insert(&r.id, r.seq).is_some()
                || (head_seq > 0 && self.seq_of_upto(&r.id, head_seq)?.is_some())
            {
                return Err(invalid(
                    index,
                    format!("seq {want}: id {:?} is already recorded", r.id),
                ));
            }
            records.push(Stored {
                seq: r.seq,
                recorded: &r.recorded,
                hash: r.hash,
                id: &r.id,
                body: &r.body,
            });
            prev = r.hash;
        }
        if records.is_empty() {
            return Ok(Receipt {
                appended: 0,
                skipped: 0,
                first_seq: None,
                last_seq: None,
                head: current,
            });
        }
        let appended = records.len() as u64;
        let head = self
            .write_records(state, head_seq, records.into_iter(), Keys::Given(aux), None)?
            .ok_or_else(given_keys_declined)?;
        Ok(Receipt {
            appended,
            skipped: 0,
            first_seq: Some(head_seq + 1),
            last_seq: Some(head.seq),
            head: Some(head),
        })
    }

    /// Writes `records` (chained from the head at `head_seq`) and the caller's key writes in
    /// one sled batch, then flushes and updates the sidecar; returns the new head.
    ///
    /// With `grouped`, the published head is already held exclusively by the caller: the
    /// batch is applied, its head put there, and nothing is flushed (the group's `flush`
    /// does it once for every batch of the group).
    fn write_records<'r>(
        &self,
        state: &mut State,
        head_seq: u64,
        records: impl Iterator<Item = Stored<'r>>,
        aux: Keys<'_>,
        grouped: Option<&mut Option<Head>>,
    ) -> Result<Option<Head>, StoreError> {
        let mut writes = sled::Batch::default();
        // The segments that stop being the last one, for the directory.
        let mut listed: Vec<DirEntry> = Vec::new();
        let mut segment = match state.tail {
            Some(first) => match self.reopen_tail(first, head_seq)? {
                Tail::Open(segment) => Some(segment),
                // Full, so it stays where it is and the directory lists it.
                Tail::Full(entry) => {
                    listed.push(entry);
                    None
                }
            },
            None => None,
        }
        .unwrap_or_else(|| SegmentBuilder::new(head_seq + 1));
        // Full segments go to the log file, each where the last committed one ends; nothing
        // refers to them until the sled batch below commits.
        let mut buckets: BTreeMap<u16, Vec<(u64, u64)>> = BTreeMap::new();
        let mut last: Option<Stored<'r>> = None;
        // Full segments are sealed (framed, compressed, written) on a second thread, started
        // when the batch fills its first one, while this one chains the hashes and builds the
        // next; a segment that cannot be handed over (no thread) is sealed here.
        let sealed = std::thread::scope(|scope| {
            let mut sealer = None;
            let mut inline = (state.log_end, Vec::new());
            for r in records {
                if segment.is_full_for(codec::encoded_record_len(r.recorded, r.id, r.body)) {
                    let full = std::mem::replace(&mut segment, SegmentBuilder::new(r.seq));
                    if sealer.is_none() && inline.1.is_empty() {
                        let (tx, rx) = std::sync::mpsc::sync_channel::<SegmentBuilder>(2);
                        let start = inline.0;
                        sealer = std::thread::Builder::new()
                            .name("accord-seal".into())
                            .spawn_scoped(scope, move || self.seal_all(rx, start))
                            .ok()
                            .map(|handle| (tx, handle));
                    }
                    match &sealer {
                        // A closed channel: the sealer stopped on an error, reported below.
                        Some((tx, _)) => {
                            if tx.send(full).is_err() {
                                break;
                            }
                        }
                        None => {
                            let (first, pointer, end) = self.seal(full, inline.0)?;
                            inline.1.push((first, pointer));
                            inline.0 = end;
                        }
                    }
                }
                segment.push(r.recorded, &r.hash, r.id, r.body);
                let fp = codec::id_fingerprint(r.id);
                buckets
                    .entry(codec::id_bucket(fp))
                    .or_default()
                    .push((fp, r.seq));
                last = Some(r);
            }
            match sealer {
                Some((tx, handle)) => {
                    drop(tx);
                    handle.join().unwrap_or_else(|_| {
                        Err(StoreError::corrupt(
                            None,
                            "sealing the log's segments panicked",
                        ))
                    })
                }
                None => Ok(inline),
            }
        });
        let (log_end, sealed) = sealed?;
        // Keys worked out meanwhile are asked for now that the records are written. Declined,
        // nothing refers to what was written past the log's committed end: it is cut off
        // again (or, should that fail, by the next writer, as after a crash).
        let later;
        let aux: &[AuxWrite] = match aux {
            Keys::Given(aux) => aux,
            Keys::Later(work_out) => match work_out() {
                Some(aux) => {
                    later = aux;
                    &later
                }
                None => {
                    if log_end != state.log_end {
                        if let Ok(log) = self.log_for_writing() {
                            let _ = log.set_len(state.log_end);
                        }
                    }
                    return Ok(None);
                }
            },
        };
        for (first, pointer) in sealed {
            writes.insert(&codec::seg_key(first)[..], pointer.as_slice());
            listed.push((first, Some(pointer)));
        }
        let last = last.ok_or_else(|| {
            StoreError::corrupt(Some(head_seq), "an empty batch reached the writer")
        })?;
        let tail = segment.first_seq;
        segment.write_to(&mut writes);
        if state.dir_current && state.tail != Some(tail) {
            self.extend_directory(&listed, tail, &mut writes)?;
        }
        if log_end != state.log_end {
            // The sealed segments must be durable before the batch that refers to them.
            let log = self.log_for_writing()?;
            log.sync_data()
                .map_err(io_error(&self.path.join(LOG_FILE)))?;
            writes.insert(LOG_END_KEY, &log_end.to_be_bytes()[..]);
        }
        for (bucket, mut entries) in buckets {
            if head_seq > 0 {
                entries.extend(self.id_bucket(bucket)?);
            }
            entries.sort_unstable();
            writes.insert(
                &codec::id_bucket_key(bucket)[..],
                codec::encode_id_bucket(&entries),
            );
        }
        for w in aux {
            let key = aux_key(&w.key);
            match &w.value {
                Some(v) => writes.insert(key, v.as_slice()),
                None => writes.remove(key),
            }
        }
        writes.insert(
            META_KEY,
            codec::encode_head(last.seq, &last.hash, last.recorded),
        );

        // Readers wait while the batch is applied (and, outside a group, flushed), and then
        // see all of it; a group holds the published head until its own flush.
        let in_group = grouped.is_some();
        let mut own: Option<RwLockWriteGuard<'_, Option<Head>>> = None;
        let published: &mut Option<Head> = match grouped {
            Some(held) => held,
            None => own.insert(self.publish()),
        };
        self.db
            .apply_batch(writes)
            .map_err(sled_error(&self.path))?;
        // The batch is applied, so the cache must follow it even if the flush below fails.
        let head = Head {
            seq: last.seq,
            hash: last.hash,
            recorded: last.recorded.to_string(),
        };
        *published = Some(head.clone());
        state.tail = Some(tail);
        if state.dir_current {
            self.dir_end.store(tail, Ordering::Release);
        }
        state.log_end = log_end;
        if in_group {
            return Ok(Some(head));
        }
        let flushed = flush_durably(&self.db, &self.db_file, &self.path);
        drop(own);
        flushed?;
        // Only now is the batch durable, so only now may the sidecar vouch for it. If this write
        // fails the events stay (as after a failed flush) and the next append retries it.
        write_head_file(&self.path, head.seq, &head.hash)?;
        state.acknowledged = head.seq;
        Ok(Some(head))
    }

    /// Writes a full segment to the log file at `offset`; returns its first seq, its pointer
    /// (the segment's sled value) and where the log file now ends.
    fn seal(
        &self,
        segment: SegmentBuilder,
        offset: u64,
    ) -> Result<(u64, Vec<u8>, u64), StoreError> {
        let log = self.log_for_writing()?;
        let file = self.path.join(LOG_FILE);
        let first = segment.first_seq;
        let count = segment.count;
        let (stored, table) = codec::frame_segment(first, &segment.plain())?;
        write_all_at(log, &stored, offset).map_err(io_error(&file))?;
        let pointer = codec::encode_framed_pointer(count, offset, &stored, table);
        Ok((first, pointer, offset + stored.len() as u64))
    }

    /// `seal` for each segment `segments` gives, in order, from `offset` on: where the log
    /// file then ends, and each segment's first seq and pointer. Stops at the first error
    /// (dropping `segments`, so that the sender stops too).
    fn seal_all(
        &self,
        segments: std::sync::mpsc::Receiver<SegmentBuilder>,
        mut offset: u64,
    ) -> Result<Sealed, StoreError> {
        let mut sealed = Vec::new();
        for segment in segments {
            let (first, pointer, end) = self.seal(segment, offset)?;
            sealed.push((first, pointer));
            offset = end;
        }
        Ok((offset, sealed))
    }

    /// Adds `listed` (segments that are no longer the last one, in seq order) to the segment
    /// directory in `writes`, and names `tail` as where it ends: the last chunk is filled up to
    /// `DIR_CHUNK` entries, then new chunks follow.
    fn extend_directory(
        &self,
        listed: &[DirEntry],
        tail: u64,
        writes: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        if !listed.is_empty() {
            let last = self
                .db
                .range(DIR_PREFIX..DIR_END)
                .next_back()
                .transpose()
                .map_err(sled_error(&self.path))?;
            let mut entries = match last {
                Some((key, value)) => directory_entries(&key, &value)?,
                None => Vec::new(),
            };
            entries.extend(listed.iter().cloned());
            for (key, value) in codec::directory_chunks(&entries) {
                writes.insert(&key[..], value);
            }
        }
        writes.insert(DIR_END_KEY, &tail.to_be_bytes()[..]);
        Ok(())
    }

    fn log_for_writing(&self) -> Result<&File, StoreError> {
        self.log.as_ref().ok_or_else(|| StoreError::Io {
            path: self.path.join(LOG_FILE),
            source: std::io::Error::other("the log file is not open for writing"),
        })
    }

    /// Every record of the segment `first` whose sled value is `value` (see `segment_records_of`).
    fn segment_records(&self, first: u64, value: &[u8]) -> Result<Vec<Record>, StoreError> {
        self.segment_records_of(first, value, None, &mut Scratch::default())
    }

    /// The records of the segment `first` whose sled value is `value`: all of them, or only
    /// the seqs of `wanted` (ascending, all in the segment). A segment in sled decodes from the
    /// value; a sealed one is read from the log file and checked against its checksums. Of a
    /// framed segment only the frames holding wanted seqs are read, checked and decompressed.
    fn segment_records_of(
        &self,
        first: u64,
        value: &[u8],
        wanted: Option<&[u64]>,
        scratch: &mut Scratch,
    ) -> Result<Vec<Record>, StoreError> {
        let keep = |s: u64| wanted.is_none_or(|w| w.binary_search(&s).is_ok());
        let upto = wanted.and_then(|w| w.last().copied()).unwrap_or(u64::MAX);
        let Some(at) = codec::decode_pointer(first, value)? else {
            return codec::decode_segment_upto(first, value, keep, upto);
        };
        let Some(table) = at.table else {
            let bytes = &mut scratch.span;
            self.read_log(first, at.offset, at.len, bytes)?;
            codec::check_file_segment(first, &at, bytes)?;
            return codec::decode_segment_upto(first, bytes, keep, upto);
        };
        let Some(wanted) = wanted else {
            // A whole framed segment is one read.
            let Scratch { span, plain, .. } = scratch;
            self.read_log(first, at.offset, at.len, span)?;
            let frames = codec::frame_table(first, &at, &span[..table as usize])?;
            let mut out = Vec::with_capacity(at.count as usize);
            for f in &frames {
                let bytes = &span[f.at as usize..(f.at + f.len) as usize];
                codec::frame_plain(first, &at, f, bytes, plain)?;
                let start = first + u64::from(f.first);
                out.extend(codec::decode_plain_upto(start, plain, keep, u64::MAX)?);
            }
            return Ok(out);
        };
        // Part of one: its table, then the frames that hold wanted seqs.
        self.read_log(first, at.offset, table, &mut scratch.table)?;
        let frames = codec::frame_table(first, &at, &scratch.table)?;
        let needed: Vec<&codec::Frame> = frames
            .iter()
            .filter(|f| {
                let i = wanted.partition_point(|s| *s < first + u64::from(f.first));
                wanted.get(i).is_some_and(|s| f.holds(first, *s))
            })
            .collect();
        // Each run of adjacent needed frames is one read of the file.
        let mut out = Vec::new();
        let mut k = 0;
        while k < needed.len() {
            let mut run = k + 1;
            while run < needed.len()
                && needed[run].first == needed[run - 1].first + needed[run - 1].count
            {
                run += 1;
            }
            let (low, high) = (needed[k], needed[run - 1]);
            let Scratch { span, plain, .. } = scratch;
            self.read_log(first, at.offset + low.at, high.at + high.len - low.at, span)?;
            for f in &needed[k..run] {
                let from = (f.at - low.at) as usize;
                let bytes = &span[from..from + f.len as usize];
                codec::frame_plain(first, &at, f, bytes, plain)?;
                let start = first + u64::from(f.first);
                let last = start + u64::from(f.count) - 1;
                out.extend(codec::decode_plain_upto(
                    start,
                    plain,
                    keep,
                    upto.min(last),
                )?);
            }
            k = run;
        }
        Ok(out)
    }

    /// `len` bytes of the log file at `offset`, for the segment `first`, into `bytes`.
    fn read_log(
        &self,
        first: u64,
        offset: u64,
        len: u64,
        bytes: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        let file = self.path.join(LOG_FILE);
        let Some(log) = &self.log else {
            return Err(StoreError::corrupt(
                Some(first),
                format!("the segment is in {}, which is missing", file.display()),
            ));
        };
        bytes.clear();
        bytes.resize(len as usize, 0);
        read_exact_at(log, bytes, offset).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                StoreError::corrupt(Some(first), "the log file ends inside a segment")
            } else {
                io_error(&file)(e)
            }
        })
    }

    /// Loads the last segment for extension if it has room; checks on the way that it ends
    /// exactly at the head, since extending a segment that does not would bake in a gap.
    fn reopen_tail(&self, first: u64, head_seq: u64) -> Result<Tail, StoreError> {
        let bytes = self
            .db
            .get(codec::seg_key(first))
            .map_err(sled_error(&self.path))?
            .ok_or_else(|| StoreError::corrupt(Some(first), "the last segment disappeared"))?;
        let count = codec::segment_count(first, &bytes)?;
        if first.checked_add(u64::from(count)) != head_seq.checked_add(1) {
            return Err(StoreError::corrupt(
                Some(first),
                format!("the last segment holds {count} records but the head is seq {head_seq}"),
            ));
        }
        // A sealed segment is full by definition.
        let entry = codec::dir_entry(first, &bytes)?;
        if count >= SEGMENT_MAX_EVENTS || entry.1.is_some() {
            return Ok(Tail::Full(entry));
        }
        let plain = codec::plain_segment(first, &bytes)?.into_owned();
        if plain.len() >= SEGMENT_MAX_BYTES {
            return Ok(Tail::Full(entry));
        }
        Ok(Tail::Open(SegmentBuilder {
            first_seq: first,
            buf: plain,
            count,
            last_recorded: None,
        }))
    }

    /// The seq of a recorded id, if any (for idempotency checks by callers). The id index
    /// holds fingerprints; a match is confirmed against the record itself.
    pub fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        self.seq_of_upto(id, self.len())
    }

    /// `seq_of` for a caller that holds the state lock and knows the head.
    fn seq_of_upto(&self, id: &str, head_seq: u64) -> Result<Option<u64>, StoreError> {
        let fp = codec::id_fingerprint(id);
        for (_, seq) in self
            .id_bucket(codec::id_bucket(fp))?
            .into_iter()
            .filter(|(f, _)| *f == fp)
        {
            if seq == 0 || seq > head_seq {
                return Err(StoreError::corrupt(
                    Some(seq),
                    format!("the id index maps {id:?} beyond the head (seq {head_seq})"),
                ));
            }
            let (first, records) = self.segment_containing(seq)?;
            let record = usize::try_from(seq - first)
                .ok()
                .and_then(|i| records.get(i))
                .ok_or_else(|| StoreError::corrupt(Some(seq), "no segment holds this seq"))?;
            if record.id == id {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// The decoded entries of one id index bucket (empty when it has none).
    fn id_bucket(&self, bucket: u16) -> Result<Vec<(u64, u64)>, StoreError> {
        match self
            .db
            .get(codec::id_bucket_key(bucket))
            .map_err(sled_error(&self.path))?
        {
            Some(bytes) => codec::decode_id_bucket(bucket, &bytes),
            None => Ok(Vec::new()),
        }
    }

    /// The records with the given seqs, in the order asked, reading each segment once.
    /// A seq beyond the head is `Corrupt` (callers take seqs from their own indexes).
    pub fn records_at(&self, seqs: &[u64]) -> Result<Vec<Record>, StoreError> {
        self.records_at_upto(seqs, self.len())
    }

    /// `records_at` for a log that ends at `head_seq`. The segment keys from the first wanted
    /// seq's to the last one's are walked forward once (a lookup per seq would walk sled's
    /// tree backwards each time), and each segment that holds a wanted seq is read once.
    fn records_at_upto(&self, seqs: &[u64], head_seq: u64) -> Result<Vec<Record>, StoreError> {
        let mut sorted: Vec<u64> = seqs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if let Some(&seq) = sorted.iter().find(|s| **s == 0 || **s > head_seq) {
            return Err(StoreError::corrupt(
                Some(seq),
                format!("asked for seq {seq} but the log ends at seq {head_seq}"),
            ));
        }
        // The wanted records in seq order, since the segments are walked in seq order.
        let mut found: Vec<Record> = Vec::with_capacity(sorted.len());
        let mut scratch = Scratch::default();
        let dir_end = self.dir_end.load(Ordering::Acquire);
        if dir_end > 0 && !sorted.is_empty() {
            self.records_by_directory(&sorted, dir_end, &mut found, &mut scratch)?;
        } else if let (Some(&low), Some(&high)) = (sorted.first(), sorted.last()) {
            let missing = |seq: u64| StoreError::corrupt(Some(seq), "no segment holds this seq");
            let low_key = codec::seg_key(low);
            let (start, _) = self
                .db
                .range(SEG_PREFIX..=&low_key[..])
                .next_back()
                .transpose()
                .map_err(sled_error(&self.path))?
                .ok_or_else(|| missing(low))?;
            let high_key = codec::seg_key(high);
            let mut segments = self.db.range(start.to_vec()..=high_key.to_vec()).peekable();
            let mut i = 0;
            while i < sorted.len() {
                let (key, value) = segments
                    .next()
                    .transpose()
                    .map_err(sled_error(&self.path))?
                    .ok_or_else(|| missing(sorted[i]))?;
                let first = codec::parse_seg_key(&key)
                    .ok_or_else(|| StoreError::corrupt(Some(sorted[i]), "malformed segment key"))?;
                let next = match segments.peek() {
                    Some(Ok((k, _))) => codec::parse_seg_key(k).unwrap_or(u64::MAX),
                    _ => u64::MAX,
                };
                if sorted[i] < first {
                    return Err(missing(sorted[i]));
                }
                let end = i + sorted[i..].partition_point(|s| *s < next);
                if end == i {
                    continue;
                }
                // Only the wanted records of the segment are copied out.
                let wanted = Some(&sorted[i..end]);
                found.extend(self.segment_records_of(first, &value, wanted, &mut scratch)?);
                i = end;
            }
        }
        if let Some(lost) = sorted
            .iter()
            .zip(found.iter().map(|r| r.seq).chain(std::iter::repeat(0)))
            .find(|(want, got)| *want != got)
        {
            return Err(StoreError::corrupt(
                Some(*lost.0),
                "no segment holds this seq",
            ));
        }
        // Asked in seq order, each once (the common case): the records as found.
        if sorted.len() == seqs.len() && sorted == seqs {
            return Ok(found);
        }
        let found: HashMap<u64, Record> = found.into_iter().map(|r| (r.seq, r)).collect();
        Ok(seqs.iter().map(|s| found[s].clone()).collect())
    }

    /// `records_at` for `sorted` (ascending, each once) through the segment directory, which
    /// ends at `dir_end` (the last segment's first seq): the chunks listing the segments of
    /// the wanted seqs are read instead of every segment key between them.
    fn records_by_directory(
        &self,
        sorted: &[u64],
        dir_end: u64,
        found: &mut Vec<Record>,
        scratch: &mut Scratch,
    ) -> Result<(), StoreError> {
        let missing = |seq: u64| StoreError::corrupt(Some(seq), "no segment holds this seq");
        let split = sorted.partition_point(|s| *s < dir_end);
        let (listed, last) = sorted.split_at(split);
        if let (Some(&low), Some(&high)) = (listed.first(), listed.last()) {
            // The chunk listing `low`'s segment is the last one starting at or before it.
            let start = self
                .db
                .range(DIR_PREFIX.to_vec()..=codec::dir_key(low).to_vec())
                .next_back()
                .transpose()
                .map_err(sled_error(&self.path))?
                .map_or_else(|| DIR_PREFIX.to_vec(), |(k, _)| k.to_vec());
            let mut entries: Vec<DirEntry> = Vec::new();
            for kv in self.db.range(start..=codec::dir_key(high).to_vec()) {
                let (key, value) = kv.map_err(sled_error(&self.path))?;
                entries.extend(directory_entries(&key, &value)?);
            }
            let mut i = 0;
            for (j, (first, value)) in entries.iter().enumerate() {
                if i == listed.len() {
                    break;
                }
                let next = entries.get(j + 1).map_or(dir_end, |e| e.0);
                if listed[i] < *first {
                    return Err(missing(listed[i]));
                }
                let end = i + listed[i..].partition_point(|s| *s < next);
                if end == i {
                    continue;
                }
                let wanted = Some(&listed[i..end]);
                let records = match value {
                    Some(pointer) => self.segment_records_of(*first, pointer, wanted, scratch)?,
                    None => {
                        let value = self.segment_value(*first)?;
                        self.segment_records_of(*first, &value, wanted, scratch)?
                    }
                };
                found.extend(records);
                i = end;
            }
            if i < listed.len() {
                return Err(missing(listed[i]));
            }
        }
        if !last.is_empty() {
            let value = self.segment_value(dir_end)?;
            found.extend(self.segment_records_of(dir_end, &value, Some(last), scratch)?);
        }
        Ok(())
    }

    /// The sled value of the segment starting at `first`.
    fn segment_value(&self, first: u64) -> Result<sled::IVec, StoreError> {
        self.db
            .get(codec::seg_key(first))
            .map_err(sled_error(&self.path))?
            .ok_or_else(|| StoreError::corrupt(Some(first), "no segment holds this seq"))
    }

    /// The caller's keys in `[from, to)` with their values, in key order, each key without the
    /// store's prefix. `last_only` gives at most the last one.
    pub fn aux_range(
        &self,
        from: &[u8],
        to: &[u8],
        last_only: bool,
    ) -> Result<AuxEntries, StoreError> {
        let mut range = self.db.range(aux_key(from)..aux_key(to));
        let strip = |kv: Result<(sled::IVec, sled::IVec), sled::Error>| {
            kv.map(|(k, v)| (k[AUX_PREFIX.len()..].to_vec(), v.to_vec()))
                .map_err(sled_error(&self.path))
        };
        if last_only {
            return range.next_back().map(strip).into_iter().collect();
        }
        range.map(strip).collect()
    }

    /// The caller's keys in `[from, to)`, in key order, without their values.
    pub fn aux_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.db
            .range(aux_key(from)..aux_key(to))
            .keys()
            .map(|k| {
                k.map(|k| k[AUX_PREFIX.len()..].to_vec())
                    .map_err(sled_error(&self.path))
            })
            .collect()
    }

    /// A caller's key written by `append_with`.
    pub fn aux_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(aux_key(key))
            .map_err(sled_error(&self.path))?
            .map(|v| v.to_vec()))
    }

    /// All records in seq order, up to the head as of this call, decoding one segment at a
    /// time. A decoding error or a seq gap is yielded once as `Corrupt`, then iteration ends.
    pub fn iter(&self) -> Records<'_> {
        self.iter_from(0)
    }

    /// The records with seq > `after`, in seq order (see `iter`).
    pub fn iter_from(&self, after: u64) -> Records<'_> {
        self.iter_between(after, self.len())
    }

    /// The records with `after` < seq <= `limit`, in seq order.
    fn iter_between(&self, after: u64, limit: u64) -> Records<'_> {
        let mut records = Records {
            inner: None,
            pending: Vec::new().into_iter(),
            expected: 1,
            after,
            limit,
            path: self.path.clone(),
            done: after >= limit,
            store: self,
        };
        if records.done {
            return records;
        }
        // Start at the segment holding `after + 1`: the last segment key <= seg_key(after + 1).
        let wanted = codec::seg_key(after + 1);
        let start = match self.db.range(SEG_PREFIX..=&wanted[..]).next_back() {
            // No segment at or before it: start at the beginning and let the continuity check
            // report the missing seqs.
            None => Ok(None),
            Some(Err(e)) => Err(sled_error(&self.path)(e)),
            Some(Ok((key, _))) => match codec::parse_seg_key(&key) {
                Some(first) => Ok(Some(first)),
                None => Err(StoreError::corrupt(
                    Some(after + 1),
                    "malformed segment key",
                )),
            },
        };
        let start = match start {
            Ok(start) => start,
            Err(e) => {
                records.pending = Vec::new().into_iter();
                records.inner = Some(Err(e));
                return records;
            }
        };
        let from = start.map_or_else(|| SEG_PREFIX.to_vec(), |s| codec::seg_key(s).to_vec());
        records.expected = start.unwrap_or(1);
        records.inner = Some(Ok(self.db.range(from..SEG_END.to_vec())));
        records
    }

    /// Re-reads the whole log: seqs continue from 1 without gaps, every record decodes, every
    /// hash recomputes from its predecessor, `recorded` never decreases, the head key matches the
    /// last record and the id index maps exactly the recorded ids to their seqs. Returns the head,
    /// or `Corrupt` naming the first bad seq.
    pub fn verify(&self) -> Result<Option<Head>, StoreError> {
        crate::Snapshot::verify(&self.read())
    }

    /// `verify` for a view that keeps commits out while it lives (a snapshot holds the
    /// published head, a write transaction the writer's state) and whose log has `capacity`
    /// records. It takes no lock itself, so it can run beside the view's other reads.
    fn verify_view(
        &self,
        capacity: u64,
        each: &mut dyn FnMut(Record),
    ) -> Result<Option<Head>, StoreError> {
        let sled_err = sled_error(&self.path);
        let acknowledged = read_head_file(&self.path)?;
        let mut acknowledged_seen: Option<[u8; 32]> = None;

        let mut expected = 1u64;
        let mut prev = ZERO_HASH;
        let mut last_recorded: Option<(String, DateTime<Utc>)> = None;
        let mut expected_index: Vec<(u16, u64, u64)> =
            Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        // Every segment as the directory must list it.
        let mut segments: Vec<DirEntry> = Vec::new();
        for entry in self.db.scan_prefix(SEG_PREFIX) {
            let (key, value) = entry.map_err(&sled_err)?;
            let first = codec::parse_seg_key(&key)
                .ok_or_else(|| StoreError::corrupt(Some(expected), "malformed segment key"))?;
            if first != expected {
                return Err(StoreError::corrupt(
                    Some(first.min(expected)),
                    format!("segment starts at seq {first}, expected {expected}"),
                ));
            }
            segments.push(codec::dir_entry(first, &value)?);
            for record in self.segment_records(first, &value)? {
                let seq = record.seq;
                let hash =
                    codec::chain_hash(&prev, seq, &record.recorded, &record.id, &record.body);
                if hash != record.hash {
                    return Err(StoreError::corrupt(
                        Some(seq),
                        "the stored hash does not match the record's contents",
                    ));
                }
                let changed = last_recorded
                    .as_ref()
                    .is_none_or(|(text, _)| *text != record.recorded);
                if changed {
                    let at = parse_recorded(&record.recorded)
                        .map_err(|e| StoreError::corrupt(Some(seq), e))?;
                    if let Some((_, before)) = &last_recorded {
                        if at < *before {
                            return Err(StoreError::corrupt(
                                Some(seq),
                                "recorded time goes backwards",
                            ));
                        }
                    }
                    last_recorded = Some((record.recorded.clone(), at));
                }
                let fp = codec::id_fingerprint(&record.id);
                expected_index.push((codec::id_bucket(fp), fp, seq));
                if acknowledged.as_ref().is_some_and(|(s, _)| *s == seq) {
                    acknowledged_seen = Some(hash);
                }
                prev = hash;
                expected = seq + 1;
                each(record);
            }
        }
        let last_seq = expected - 1;
        self.verify_directory(segments)?;

        let stored_head = match self.db.get(META_KEY).map_err(&sled_err)? {
            Some(bytes) => Some(codec::decode_head(&bytes).map_err(|e| match e {
                StoreError::Corrupt { detail, .. } => {
                    StoreError::corrupt(Some(last_seq.max(1)), detail)
                }
                other => other,
            })?),
            None => None,
        };
        let head = match stored_head {
            None if last_seq == 0 => None,
            None => {
                return Err(StoreError::corrupt(
                    Some(last_seq),
                    "records exist but the head is missing",
                ))
            }
            Some((seq, hash, recorded)) => {
                let matches = seq == last_seq
                    && hash == prev
                    && last_recorded
                        .as_ref()
                        .is_some_and(|(text, _)| *text == recorded);
                if !matches {
                    return Err(StoreError::corrupt(
                        Some(seq.min(last_seq).max(1)),
                        format!(
                            "the head (seq {seq}) does not match the last record (seq {last_seq})"
                        ),
                    ));
                }
                Some(Head {
                    seq,
                    hash,
                    recorded,
                })
            }
        };

        if let Some((seq, hash)) = &acknowledged {
            match acknowledged_seen {
                None => return Err(lost_events(last_seq, *seq, hash)),
                Some(found) if found != *hash => return Err(rewritten(*seq, &found, hash)),
                Some(_) => {}
            }
        }

        // The id index must hold exactly one entry per record, under its id's fingerprint.
        expected_index.sort_unstable();
        // And no id twice (an append refuses a recorded id): records that share a
        // fingerprint are read back, and their ids compared.
        for group in expected_index.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            if group.len() < 2 {
                continue;
            }
            let seqs: Vec<u64> = group.iter().map(|(_, _, seq)| *seq).collect();
            let mut first_of: HashMap<String, u64> = HashMap::new();
            for record in self.records_at_upto(&seqs, last_seq)? {
                if let Some(first) = first_of.insert(record.id.clone(), record.seq) {
                    return Err(StoreError::corrupt(
                        Some(record.seq.max(first)),
                        format!(
                            "seq {} has the id of seq {}, {:?}",
                            record.seq.max(first),
                            record.seq.min(first),
                            record.id
                        ),
                    ));
                }
            }
        }
        let mut expected = expected_index.into_iter().peekable();
        for kv in self.db.scan_prefix(ID_PREFIX) {
            let (key, value) = kv.map_err(&sled_err)?;
            let bucket = codec::parse_id_bucket_key(&key)
                .ok_or_else(|| StoreError::corrupt(None, "malformed id index key"))?;
            for (fp, seq) in codec::decode_id_bucket(bucket, &value)? {
                match expected.next() {
                    Some(e) if e == (bucket, fp, seq) => {}
                    Some((_, _, want)) => {
                        return Err(StoreError::corrupt(
                            Some(want.min(seq)),
                            format!(
                                "the id index does not match the records at seq {}",
                                want.min(seq)
                            ),
                        ))
                    }
                    None => {
                        return Err(StoreError::corrupt(
                            Some(seq),
                            format!("the id index has a stray entry for seq {seq}"),
                        ))
                    }
                }
            }
        }
        if let Some((_, _, seq)) = expected.next() {
            return Err(StoreError::corrupt(
                Some(seq),
                format!("the id index lacks the record at seq {seq}"),
            ));
        }
        Ok(head)
    }

    /// Checks that the segment directory, where it says it is current (it ends at the last of
    /// `segments`), lists exactly the segments before it. One an older accord left behind
    /// (ending at a segment that is no longer the last) is ignored by readers and rebuilt by
    /// the next writer, so it is no damage.
    fn verify_directory(&self, mut segments: Vec<DirEntry>) -> Result<(), StoreError> {
        let Some((tail, _)) = segments.pop() else {
            return Ok(());
        };
        if directory_end(&self.db, &self.path)? != Some(tail) {
            return Ok(());
        }
        let mut listed: Vec<DirEntry> = Vec::new();
        for kv in self.db.range(DIR_PREFIX..DIR_END) {
            let (key, value) = kv.map_err(sled_error(&self.path))?;
            listed.extend(directory_entries(&key, &value)?);
        }
        if let Some(k) =
            (0..segments.len().max(listed.len())).find(|&k| segments.get(k) != listed.get(k))
        {
            let seq = segments.get(k).or(listed.get(k)).map_or(tail, |e| e.0);
            return Err(StoreError::corrupt(
                Some(seq),
                format!("the segment directory does not list the segment at seq {seq} as it is"),
            ));
        }
        Ok(())
    }

    /// Test-only raw access: rewrites the record `seq` with its body replaced by `body`,
    /// keeping the old hash, to simulate tampering that `verify` must report.
    #[doc(hidden)]
    pub fn tamper_body_for_tests(&self, seq: u64, body: &[u8]) -> Result<(), StoreError> {
        let mut state = self.state();
        let (first, mut records) = self.segment_containing(seq)?;
        let index = usize::try_from(seq - first)
            .ok()
            .filter(|&i| i < records.len())
            .ok_or_else(|| StoreError::corrupt(Some(seq), "no such record"))?;
        records[index].body = body.to_vec();
        let mut segment = SegmentBuilder::new(first);
        for record in &records {
            segment.push(&record.recorded, &record.hash, &record.id, &record.body);
        }
        self.db
            .insert(codec::seg_key(first), segment.finish())
            .map_err(sled_error(&self.path))?;
        // The directory would still name the segment's old place.
        self.db
            .remove(DIR_END_KEY)
            .map_err(sled_error(&self.path))?;
        self.dir_end.store(0, Ordering::Release);
        state.dir_current = false;
        flush_durably(&self.db, &self.db_file, &self.path)?;
        Ok(())
    }

    /// The decoded segment whose range includes `seq`: the last segment key <= seg_key(seq).
    fn segment_containing(&self, seq: u64) -> Result<(u64, Vec<Record>), StoreError> {
        let wanted = codec::seg_key(seq);
        let (key, value) = self
            .db
            .range(SEG_PREFIX..=&wanted[..])
            .next_back()
            .transpose()
            .map_err(sled_error(&self.path))?
            .ok_or_else(|| StoreError::corrupt(Some(seq), "no segment holds this seq"))?;
        let first = codec::parse_seg_key(&key)
            .ok_or_else(|| StoreError::corrupt(Some(seq), "malformed segment key"))?;
        Ok((first, self.segment_records(first, &value)?))
    }

    /// Checks at open that sled still holds the acknowledged head `seq`/`hash`: the log may
    /// have grown past it (a crash after sled's flush but before the sidecar write), never
    /// shrunk below it or changed it.
    fn check_acknowledged(
        &self,
        head: Option<&Head>,
        seq: u64,
        hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        let head_seq = head.map_or(0, |h| h.seq);
        if seq > head_seq {
            return Err(lost_events(head_seq, seq, hash));
        }
        let found = match head {
            Some(head) if head.seq == seq => head.hash,
            _ => {
                let (first, records) = self.segment_containing(seq)?;
                usize::try_from(seq - first)
                    .ok()
                    .and_then(|i| records.get(i))
                    .map(|r| r.hash)
                    .ok_or_else(|| StoreError::corrupt(Some(seq), "no segment holds this seq"))?
            }
        };
        if found != *hash {
            return Err(rewritten(seq, &found, hash));
        }
        Ok(())
    }
}

/// The names a store directory holds: sled's files and accord's own.
fn is_store_file(name: &str) -> bool {
    matches!(
        name,
        SLED_DB_FILE | SLED_CONF_FILE | "blobs" | LOCK_FILE | HEAD_FILE | HEAD_TMP_FILE | LOG_FILE
    ) || name.starts_with("snap.")
}

/// Refuses a directory that holds anything but a store's own files (an empty one is fine).
fn check_store_dir(path: &Path) -> Result<(), StoreError> {
    let entries = fs::read_dir(path).map_err(io_error(path))?;
    let mut others: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(path))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_store_file(&name) {
            others.push(name);
        }
    }
    if others.is_empty() {
        return Ok(());
    }
    others.sort();
    let n = others.len();
    let shown: Vec<String> = others.iter().take(3).map(|n| format!("{n:?}")).collect();
    Err(StoreError::NotAStore {
        path: path.to_path_buf(),
        detail: format!(
            "{} is not an accord store: it holds {n} other file{} ({}{}); use a new path or an empty directory",
            path.display(),
            if n == 1 { "" } else { "s" },
            shown.join(", "),
            if n > 3 { ", ..." } else { "" }
        ),
    })
}

fn not_a_file(path: &Path) -> StoreError {
    StoreError::NotAStore {
        path: path.to_path_buf(),
        detail: format!(
            "{} is a file, not an accord store (a store is a directory); use a new path",
            path.display()
        ),
    }
}

/// Opens the log file: a writer creates it, a reader only opens one that exists. Either way it
/// must hold at least the committed length; a writer drops what lies past it (left by an append
/// that did not commit), so that the file holds exactly the committed segments.
fn open_log_file(path: &Path, writer: bool, log_end: u64) -> Result<Option<File>, StoreError> {
    let file_path = path.join(LOG_FILE);
    let opened = if writer {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&file_path)
    } else {
        File::open(&file_path)
    };
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound && log_end == 0 => return Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(StoreError::corrupt(
                None,
                format!(
                    "the log file {} is missing, but the store holds {log_end} bytes of                      events there",
                    file_path.display()
                ),
            ))
        }
        Err(e) => return Err(io_error(&file_path)(e)),
    };
    let len = file.metadata().map_err(io_error(&file_path))?.len();
    if len < log_end {
        return Err(StoreError::corrupt(
            None,
            format!(
                "the log file {} was truncated: it has {len} bytes, but the store's events                  reach byte {log_end}",
                file_path.display()
            ),
        ));
    }
    if writer && len > log_end {
        file.set_len(log_end).map_err(io_error(&file_path))?;
        file.sync_all().map_err(io_error(&file_path))?;
    }
    Ok(Some(file))
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if n == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Rewrites the one-key-per-id index of format-1 stores (`id` + id -> seq) into buckets, in
/// one atomic, flushed batch; a no-op for current stores.
fn migrate_legacy_index(db: &sled::Db, db_file: &File, path: &Path) -> Result<(), StoreError> {
    let mut buckets: BTreeMap<u16, Vec<(u64, u64)>> = BTreeMap::new();
    let mut writes = sled::Batch::default();
    let mut any = false;
    for kv in db.scan_prefix(LEGACY_ID_PREFIX) {
        let (key, value) = kv.map_err(sled_error(path))?;
        let id = std::str::from_utf8(&key[LEGACY_ID_PREFIX.len()..])
            .map_err(|_| StoreError::corrupt(None, "a legacy id index key is not UTF-8"))?;
        let seq: [u8; 8] = value[..].try_into().map_err(|_| {
            StoreError::corrupt(
                None,
                format!("legacy id index entry for {id:?} is not 8 bytes"),
            )
        })?;
        let fp = codec::id_fingerprint(id);
        buckets
            .entry(codec::id_bucket(fp))
            .or_default()
            .push((fp, u64::from_be_bytes(seq)));
        writes.remove(&key[..]);
        any = true;
    }
    if !any {
        return Ok(());
    }
    for (bucket, mut entries) in buckets {
        entries.sort_unstable();
        writes.insert(
            &codec::id_bucket_key(bucket)[..],
            codec::encode_id_bucket(&entries),
        );
    }
    db.apply_batch(writes).map_err(sled_error(path))?;
    flush_durably(db, db_file, path)
}

/// The entries of the directory chunk stored under `key`.
fn directory_entries(key: &[u8], value: &[u8]) -> Result<Vec<DirEntry>, StoreError> {
    let first = codec::parse_dir_key(key)
        .ok_or_else(|| StoreError::corrupt(None, "malformed directory key"))?;
    codec::decode_directory(first, value)
}

/// The last segment as an append finds it: room left, or full (its directory entry, for when
/// the append starts the next one).
enum Tail {
    Open(SegmentBuilder),
    Full(DirEntry),
}

/// Where the segment directory says it ends (`DIR_END_KEY`), if it says. A value that is not
/// 8 bytes says nothing: the directory only speeds reads up, so a damaged end makes it not
/// current (readers walk the segment keys, the next writer rebuilds it) rather than the store
/// unreadable.
fn directory_end(db: &sled::Db, path: &Path) -> Result<Option<u64>, StoreError> {
    Ok(db
        .get(DIR_END_KEY)
        .map_err(sled_error(path))?
        .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
        .map(u64::from_be_bytes))
}

/// Writes the segment directory of a store that has none, or one an older accord left
/// behind (it appended without extending it), for the segments before `tail`, the last one:
/// once per store, when a writer opens it.
fn build_directory(
    db: &sled::Db,
    db_file: &File,
    path: &Path,
    tail: u64,
) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for kv in db.range(DIR_PREFIX..DIR_END) {
        let (key, _) = kv.map_err(sled_error(path))?;
        batch.remove(key);
    }
    let mut entries: Vec<DirEntry> = Vec::new();
    for kv in db.range(SEG_PREFIX.to_vec()..codec::seg_key(tail).to_vec()) {
        let (key, value) = kv.map_err(sled_error(path))?;
        let first = codec::parse_seg_key(&key)
            .ok_or_else(|| StoreError::corrupt(None, "malformed segment key"))?;
        entries.push(codec::dir_entry(first, &value)?);
    }
    for (key, value) in codec::directory_chunks(&entries) {
        batch.insert(&key[..], value);
    }
    batch.insert(DIR_END_KEY, &tail.to_be_bytes()[..]);
    db.apply_batch(batch).map_err(sled_error(path))?;
    flush_durably(db, db_file, path)?;
    Ok(())
}

/// sled's flush, made durable. sled writes its file with `sync_file_range`, which flushes
/// neither the disk's write cache nor the metadata of blocks that a write allocated (into a
/// hole, or past the end of the file), so a flushed batch could be lost to a power cut until
/// sled's next periodic `fsync`. An `fdatasync` of sled's file after the flush closes that
/// window; every acknowledgement follows one.
fn flush_durably(db: &sled::Db, db_file: &File, path: &Path) -> Result<(), StoreError> {
    db.flush().map_err(sled_error(path))?;
    db_file
        .sync_data()
        .map_err(io_error(&path.join(SLED_DB_FILE)))
}

/// Reads the head sidecar: None when there is none (a new store, or one written before the
/// sidecar existed). A sidecar that does not parse is `Corrupt`: it is only ever replaced whole
/// by a rename, so a damaged one means damaged storage.
fn read_head_file(path: &Path) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    let file = path.join(HEAD_FILE);
    let bytes = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&file)(e)),
    };
    let damaged = || {
        StoreError::corrupt(
            None,
            format!(
                "the head file {} is damaged (expected `SEQ:HASH`, found {:?})",
                file.display(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(100)])
            ),
        )
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| damaged())?;
    let line = text.strip_suffix('\n').ok_or_else(damaged)?;
    let (seq, hash) = line.split_once(':').ok_or_else(damaged)?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(damaged());
    }
    let seq: u64 = seq.parse().map_err(|_| damaged())?;
    if seq == 0 || hash.len() != 64 || hash.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(damaged());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hash, &mut out).map_err(|_| damaged())?;
    Ok(Some((seq, out)))
}

/// Durably replaces the head sidecar: write a temporary file, fsync it, rename it over the
/// sidecar, fsync the directory so that the rename itself survives a power cut.
fn write_head_file(path: &Path, seq: u64, hash: &[u8; 32]) -> Result<(), StoreError> {
    use std::io::Write;
    let tmp = path.join(HEAD_TMP_FILE);
    let target = path.join(HEAD_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    file.write_all(format!("{seq}:{}\n", hex::encode(hash)).as_bytes())
        .map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(io_error(&target))?;
    sync_dir(path)
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(path))
}

/// Other platforms cannot open a directory as a file; their rename is as durable as it gets.
#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn lost_events(ends_at: u64, seq: u64, hash: &[u8; 32]) -> StoreError {
    StoreError::corrupt(
        Some(ends_at + 1),
        format!(
            "the store lost acknowledged events: it ends at seq {ends_at} but seq {seq} \
             (hash {}) was acknowledged (recorded in {HEAD_FILE}); the database file was \
             truncated, damaged or replaced by an older copy",
            hex::encode(hash)
        ),
    )
}

fn rewritten(seq: u64, found: &[u8; 32], acknowledged: &[u8; 32]) -> StoreError {
    StoreError::corrupt(
        Some(seq),
        format!(
            "the record at seq {seq} has hash {} but hash {} was acknowledged (recorded in \
             {HEAD_FILE}); the log was rewritten or replaced",
            hex::encode(found),
            hex::encode(acknowledged)
        ),
    )
}

/// Finds stored bodies by seq during one append, keeping the last decoded segment because
/// re-appended batches usually look up consecutive seqs.
struct BodyLookup<'s> {
    store: &'s Store,
    head_seq: u64,
    cached: Option<(u64, Vec<Record>)>,
}

impl<'s> BodyLookup<'s> {
    fn new(store: &'s Store, head_seq: u64) -> Self {
        BodyLookup {
            store,
            head_seq,
            cached: None,
        }
    }

    /// Whether record `seq` (which the index says holds `id`) has exactly `body`.
    fn same_body(&mut self, seq: u64, id: &str, body: &[u8]) -> Result<bool, StoreError> {
        if seq == 0 || seq > self.head_seq {
            return Err(StoreError::corrupt(
                Some(seq),
                format!(
                    "the id index maps {id:?} beyond the head (seq {})",
                    self.head_seq
                ),
            ));
        }
        let hit = matches!(&self.cached, Some((first, records))
            if seq >= *first && seq - *first < records.len() as u64);
        if !hit {
            self.cached = Some(self.store.segment_containing(seq)?);
        }
        let record = self.cached.as_ref().and_then(|(first, records)| {
            usize::try_from(seq - first)
                .ok()
                .and_then(|i| records.get(i))
        });
        match record {
            Some(record) if record.id == id => Ok(record.body == body),
            Some(record) => Err(StoreError::corrupt(
                Some(seq),
                format!(
                    "the id index maps {id:?} here but the record's id is {:?}",
                    record.id
                ),
            )),
            None => Err(StoreError::corrupt(Some(seq), "no segment holds this seq")),
        }
    }
}

/// The caller's key writes of a batch: given, or worked out by the caller (`Later`, called
/// once the batch's records are written; `None` declines the batch, nothing is committed).
pub(crate) enum Keys<'k> {
    Given(&'k [AuxWrite]),
    Later(&'k mut dyn FnMut() -> Option<Vec<AuxWrite>>),
}

/// What a commit with `Keys::Given` says should it come back declined (it cannot: only
/// `Later` declines).
fn given_keys_declined() -> StoreError {
    StoreError::corrupt(None, "given key writes were declined")
}

/// A record about to be written: its place, recorded time and hash already decided.
struct Stored<'a> {
    seq: u64,
    recorded: &'a str,
    hash: [u8; 32],
    id: &'a str,
    body: &'a [u8],
}

/// Where the log file ends after segments were sealed, and each one's first seq and pointer
/// (its sled value), in order.
type Sealed = (u64, Vec<(u64, Vec<u8>)>);

struct SegmentBuilder {
    first_seq: u64,
    /// Header (count patched in `finish`) followed by encoded records.
    buf: Vec<u8>,
    count: u32,
    /// The `recorded` of the last record written in this segment, so that a record recorded
    /// at the same time refers back to it with a zero length.
    last_recorded: Option<String>,
}

impl SegmentBuilder {
    fn new(first_seq: u64) -> Self {
        SegmentBuilder {
            first_seq,
            buf: codec::segment_header(0).to_vec(),
            count: 0,
            last_recorded: None,
        }
    }

    /// Whether a record of (at most) `record_len` bytes must go to a new segment. An empty
    /// segment takes any record, so an oversized event still gets stored.
    fn is_full_for(&self, record_len: usize) -> bool {
        self.count >= SEGMENT_MAX_EVENTS
            || (self.count > 0 && self.buf.len() + record_len > SEGMENT_MAX_BYTES)
    }

    fn push(&mut self, recorded: &str, hash: &[u8; 32], id: &str, body: &[u8]) {
        let same = self.last_recorded.as_deref() == Some(recorded);
        codec::encode_record(&mut self.buf, same, recorded, hash, id, body);
        if !same {
            self.last_recorded = Some(recorded.to_string());
        }
        self.count += 1;
    }

    /// The plain segment (format 1), its count patched in.
    fn plain(mut self) -> Vec<u8> {
        let header = codec::segment_header(self.count);
        self.buf[..codec::SEGMENT_HEADER_LEN].copy_from_slice(&header);
        self.buf
    }

    /// The segment as sled keeps it (format 2).
    fn finish(self) -> Vec<u8> {
        codec::compress_segment(&self.plain())
    }

    fn write_to(self, writes: &mut sled::Batch) {
        let key = codec::seg_key(self.first_seq);
        writes.insert(&key[..], self.finish());
    }
}

/// Buffers that reads of many segments reuse: bytes read from the log file (frames, and a
/// frame table or a whole segment), and one frame decompressed.
#[derive(Default)]
struct Scratch {
    span: Vec<u8>,
    plain: Vec<u8>,
    table: Vec<u8>,
}

/// Streaming iterator over records in seq order; see `Store::iter`.
pub struct Records<'a> {
    /// The sled range over segment keys, or the error met while positioning it.
    inner: Option<Result<sled::Iter, StoreError>>,
    pending: std::vec::IntoIter<Record>,
    /// The seq the next segment must start with.
    expected: u64,
    after: u64,
    /// The head seq when the iterator was made: later appends are not part of this pass, and
    /// cutting there keeps a concurrently extended tail segment from looking like a gap.
    limit: u64,
    path: PathBuf,
    done: bool,
    store: &'a Store,
}

impl Records<'_> {
    fn fail(&mut self, e: StoreError) -> Option<Result<Record, StoreError>> {
        self.done = true;
        self.pending = Vec::new().into_iter();
        Some(Err(e))
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.pending.next() {
                if record.seq <= self.after {
                    continue;
                }
                if record.seq > self.limit {
                    self.done = true;
                    self.pending = Vec::new().into_iter();
                    return None;
                }
                return Some(Ok(record));
            }
            if self.done {
                return None;
            }
            let next = match self.inner.take() {
                None => return None,
                Some(Err(e)) => return self.fail(e),
                Some(Ok(mut iter)) => {
                    let next = iter.next();
                    self.inner = Some(Ok(iter));
                    next
                }
            };
            let (key, value) = match next {
                None => {
                    self.done = true;
                    if self.expected <= self.limit {
                        return self.fail(StoreError::corrupt(
                            Some(self.expected),
                            format!("the log ends before the head (seq {})", self.limit),
                        ));
                    }
                    return None;
                }
                Some(Err(e)) => {
                    let e = sled_error(&self.path)(e);
                    return self.fail(e);
                }
                Some(Ok(kv)) => kv,
            };
            let Some(first) = codec::parse_seg_key(&key) else {
                return self.fail(StoreError::corrupt(
                    Some(self.expected),
                    "malformed segment key",
                ));
            };
            if first > self.limit {
                self.done = true;
                return None;
            }
            if first != self.expected {
                return self.fail(StoreError::corrupt(
                    Some(first.min(self.expected)),
                    format!("segment starts at seq {first}, expected {}", self.expected),
                ));
            }
            let decoded = self.store.segment_records(first, &value);
            match decoded {
                Ok(records) => {
                    self.expected = first.saturating_add(records.len() as u64);
                    self.pending = records.into_iter();
                }
                Err(e) => return self.fail(e),
            }
        }
    }
}

/// Takes our exclusive lock on `path/accord.lock` without waiting. sled 0.34 does take its own
/// non-blocking lock on its `db` file, but only after creating `blobs/` and reading `conf`, and
/// it reports a held lock as an `io::ErrorKind::Other` error recognizable only by its message;
/// our own lock comes first, touches nothing else and maps cleanly to `Locked`.
fn acquire_lock(path: &Path, opening: &Opening) -> Result<File, StoreError> {
    let lock_path = path.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    let started = Instant::now();
    loop {
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => break,
            Ok(false) if started.elapsed() < opening.wait => {
                std::thread::sleep(LOCK_POLL.min(opening.wait.saturating_sub(started.elapsed())));
            }
            Ok(false) => {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                    holder: read_holder(&file),
                    waited: opening.wait,
                })
            }
            Err(e) => return Err(io_error(&lock_path)(e)),
        }
    }
    // Say who holds it, for whoever waits next; an opener that says nothing still clears
    // what an earlier holder said.
    let said = opening
        .holder
        .as_deref()
        .map(|h| format!("pid {}: {h}", std::process::id()));
    let written = file
        .set_len(0)
        .and_then(|()| write_all_at(&file, said.unwrap_or_default().as_bytes(), 0));
    written.map_err(io_error(&lock_path))?;
    Ok(file)
}

/// How often a waiting opener tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// What the holder of the lock wrote of itself, if anything readable.
fn read_holder(file: &File) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut reader = file;
    reader.seek(SeekFrom::Start(0)).ok()?;
    let mut buf = Vec::new();
    reader.take(256).read_to_end(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf).ok()?.trim();
    // Only what an accord wrote: one short line of printable characters.
    let printable = !text.is_empty() && text.chars().all(|c| !c.is_control());
    printable.then(|| text.to_string())
}

/// How to open a store another process may hold.
#[derive(Clone, Debug, Default)]
pub struct Opening {
    /// How long to wait for the lock before `Locked`.
    pub wait: Duration,
    /// What this opener says of itself to whoever waits for it (`accord verify`); the pid is
    /// added.
    pub holder: Option<String>,
}

/// Opens sled while holding our lock. If sled's own lock is still held, it is almost always a
/// handle of this same process that is still shutting down (sled's background threads keep its
/// lock file open briefly after `Store` is dropped), so we retry for a short grace period; a
/// foreign process that ignores our lock file still ends in `Locked` within two seconds.
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_CAPACITY);
    let deadline = Instant::now() + SLED_LOCK_GRACE;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_sled_lock_error(&e) => {
                if Instant::now() >= deadline {
                    return Err(StoreError::Locked {
                        path: path.to_path_buf(),
                        holder: None,
                        waited: Duration::ZERO,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(sled_error(path)(e)),
        }
    }
}

fn is_sled_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == ErrorKind::Other
        && io.to_string().contains("could not acquire lock"))
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sled_error(path: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |e| match e {
        sled::Error::Io(source) => StoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        sled::Error::Corruption { at, .. } => StoreError::corrupt(
            None,
            match at {
                Some(at) => format!(
                    "sled found damaged bytes on disk (at offset {} of its file {})",
                    at.lid(),
                    path.join(SLED_DB_FILE).display()
                ),
                None => format!(
                    "sled found damaged bytes on disk (in {}; it did not say where)",
                    path.join(SLED_DB_FILE).display()
                ),
            },
        ),
        other => StoreError::Backend {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

/// Caller keys (without the store's prefix) and their values, in key order.
pub type AuxEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// A write of one of the caller's keys: `Some` sets it, `None` removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuxWrite {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

fn aux_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUX_PREFIX.len() + key.len());
    out.extend_from_slice(AUX_PREFIX);
    out.extend_from_slice(key);
    out
}

fn parse_recorded(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("recorded time {text:?} does not parse: {e}"))
}

/// A read of the embedded store: the log up to the head it was taken at, with the caller's keys
/// as that head left them. Commits of this process wait until it is dropped; other processes
/// are kept out by the store's lock.
pub struct EmbeddedRead<'s> {
    store: &'s Store,
    head: RwLockReadGuard<'s, Option<Head>>,
}

/// A write transaction on the embedded store: it holds the writer's state, so what it reads
/// (head, id index, caller keys, records) stays as read until it commits or is dropped.
pub struct EmbeddedWrite<'s> {
    store: &'s Store,
    state: MutexGuard<'s, State>,
    head: Option<Head>,
    /// Commits are grouped (`Transaction::group`): each is applied at once, and all are
    /// flushed together by `flush`.
    grouped: bool,
    /// While a group has applied batches that are not flushed yet: the head readers see, held
    /// exclusively, so that no reader sees a batch before it is durable.
    held: Option<RwLockWriteGuard<'s, Option<Head>>>,
}

impl Store {
    /// A consistent read of the log as it is now.
    pub fn read(&self) -> EmbeddedRead<'_> {
        EmbeddedRead {
            store: self,
            head: self.published(),
        }
    }

    /// Starts a write: waits for appends of other threads of this process to finish.
    pub fn write(&self) -> EmbeddedWrite<'_> {
        let state = self.state();
        let head = self.published().clone();
        EmbeddedWrite {
            store: self,
            state,
            head,
            grouped: false,
            held: None,
        }
    }
}

/// The reads of a snapshot of the embedded store: everything up to the head it holds.
macro_rules! embedded_snapshot {
    ($view:ident) => {
        impl crate::Snapshot for $view<'_> {
            fn head(&self) -> Option<Head> {
                self.head.clone()
            }
            fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
                self.store.seq_of_upto(id, self.len())
            }
            fn records_at(&self, seqs: &[u64]) -> Result<Vec<Record>, StoreError> {
                self.store.records_at_upto(seqs, self.len())
            }
            fn records_after(&self, after: u64) -> crate::RecordIter<'_> {
                Box::new(self.store.iter_between(after, self.len()))
            }
            fn aux_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                self.store.aux_get(key)
            }
            fn aux_range(
                &self,
                from: &[u8],
                to: &[u8],
                last_only: bool,
            ) -> Result<AuxEntries, StoreError> {
                self.store.aux_range(from, to, last_only)
            }
            fn aux_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
                self.store.aux_keys(from, to)
            }
            fn verify_each(
                &self,
                each: &mut dyn FnMut(Record),
            ) -> Result<Option<Head>, StoreError> {
                self.store.verify_view(self.len(), each)
            }
        }
    };
}

embedded_snapshot!(EmbeddedRead);
embedded_snapshot!(EmbeddedWrite);

impl EmbeddedWrite<'_> {
    /// A commit of `batch` with the caller's keys, given or worked out once the records are
    /// written (`None`: the caller declined, nothing written).
    fn commit_keys(
        &mut self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: Keys<'_>,
    ) -> Result<Option<Receipt>, StoreError> {
        let first = crate::Snapshot::len(self) + 1;
        let store = self.store;
        if self.grouped {
            let held = self.held.get_or_insert_with(|| store.publish());
            let receipt = store.append_locked(
                &mut self.state,
                self.head.clone(),
                batch,
                now,
                Some((first, aux)),
                Some(&mut **held),
            );
            // Whatever happened, the transaction goes on from the head the batch left.
            self.head = (**held).clone();
            return receipt;
        }
        let receipt = store.append_locked(
            &mut self.state,
            self.head.clone(),
            batch,
            now,
            Some((first, aux)),
            None,
        );
        // Whatever happened, the transaction goes on from the head the store now has.
        self.head = store.head()?;
        receipt
    }
}

impl crate::Transaction for EmbeddedWrite<'_> {
    fn commit(
        &mut self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError> {
        self.commit_keys(batch, now, Keys::Given(aux))?
            .ok_or_else(given_keys_declined)
    }

    fn commit_then(
        &mut self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: &mut dyn FnMut() -> Option<Vec<AuxWrite>>,
    ) -> Result<Option<Receipt>, StoreError> {
        self.commit_keys(batch, now, Keys::Later(aux))
    }

    fn group(&mut self) {
        self.grouped = true;
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let store = self.store;
        // Readers still wait (`held`) until the group is durable, then see all of it.
        flush_durably(&store.db, &store.db_file, &store.path)?;
        if let Some(head) = held.as_ref() {
            write_head_file(&store.path, head.seq, &head.hash)?;
            self.state.acknowledged = head.seq;
        }
        drop(held);
        Ok(())
    }

    fn commit_records(
        &mut self,
        records: &[Record],
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError> {
        crate::Transaction::flush(self)?;
        let store = self.store;
        let receipt = store.append_records_locked(&mut self.state, records, aux);
        self.head = store.head()?;
        receipt
    }
}

impl crate::Backend for Store {
    fn read(&self) -> Result<Box<dyn crate::Snapshot + '_>, StoreError> {
        Ok(Box::new(Store::read(self)))
    }
    fn write(&self) -> Result<Box<dyn crate::Transaction + '_>, StoreError> {
        Ok(Box::new(Store::write(self)))
    }
    fn location(&self) -> String {
        self.path.display().to_string()
    }
}
