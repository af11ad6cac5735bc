//! `copy`: every record of one store into another, keeping each seq, recorded time and hash,
//! so a ledger moves between stores without changing a head anyone wrote down.
//!
//! In two steps, so that a face can read (and check) the source before it creates the
//! target: `copy_out` reads the whole log and checks its chain, `copy_in` writes it into an
//! empty store as one atomic batch with the query keys rebuilt for it, then verifies it.

use domain::RecordedEvent;
use store::{Record, StoreError};

use crate::load::decode;
use crate::{Engine, Error, Progress, Verified};

/// A store's whole log, read and checked, ready to be written into another store.
pub struct LogCopy {
    records: Vec<Record>,
    events: Vec<RecordedEvent>,
}

impl LogCopy {
    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Engine {
    /// Reads the whole log for a copy, decoding every event and checking the hash chain on a
    /// second thread; a damaged log is refused before anything is written anywhere.
    pub fn copy_out(&self, progress: Option<&dyn Progress>) -> Result<LogCopy, Error> {
        let snapshot = self.store.read()?;
        let total = snapshot.len();
        if let Some(p) = progress {
            p.phase("read", total);
        }
        // The store's check hands each record on as it passes it (`read_checked`): the log
        // is read once.
        let (chain, read) = crate::load::read_checked(&*snapshot, |log| {
            let capacity = usize::try_from(total).unwrap_or(0);
            let mut copy = LogCopy {
                records: Vec::with_capacity(capacity),
                events: Vec::with_capacity(capacity),
            };
            for r in log {
                copy.events
                    .push(decode(&r).map_err(|m| Error::corrupt_at(r.seq, &m))?);
                copy.records.push(r);
                if let Some(p) = progress {
                    if (copy.records.len() as u64).is_multiple_of(domain::TICK_EVERY) {
                        p.advance(domain::TICK_EVERY);
                    }
                }
            }
            if let Some(p) = progress {
                p.advance(copy.records.len() as u64 % domain::TICK_EVERY);
            }
            Ok::<_, Error>(copy)
        });
        chain?;
        read
    }

    /// Refuses (`target_not_empty`) unless this store holds no event.
    pub fn check_empty(&self) -> Result<(), Error> {
        match self.store.read()?.len() {
            0 => Ok(()),
            n => Err(self.not_empty(n)),
        }
    }

    fn not_empty(&self, n: u64) -> Error {
        Error::refused(
            "target_not_empty",
            format!(
                "the store {} holds {n} event{}: copy needs an empty or missing target",
                self.store.location(),
                if n == 1 { "" } else { "s" }
            ),
        )
    }

    /// Writes a log read by `copy_out` into this store, which must be empty, as one atomic
    /// batch with the query keys rebuilt for it, then verifies this store.
    pub fn copy_in(
        &self,
        log: LogCopy,
        progress: Option<&dyn Progress>,
    ) -> Result<Verified, Error> {
        let mut txn = self.store.write()?;
        if !txn.is_empty() {
            return Err(self.not_empty(txn.len()));
        }
        let total = log.len() as u64;
        if let Some(p) = progress {
            p.phase("written", total);
        }
        if let Some(p) = progress {
            p.advance(total);
            p.committing(total);
        }
        // The target is empty, so its keys are worked out against an empty log; the store
        // writes the records meanwhile.
        let events = log.events;
        let mut failed = None;
        let written = txn
            .commit_records_then(&log.records, &mut || match crate::checkpoints::maintain(
                &store::EmptyLog,
                &events,
                0,
                &self.config,
            ) {
                Ok(aux) => Some(aux),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            })
            .map_err(|e| match e {
                StoreError::InvalidEvent { detail, .. } => {
                    Error::failed(format!("the log cannot be copied: {detail}"))
                }
                other => other.into(),
            })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if written.is_none() {
            return Err(Error::failed(
                "the log's query keys could not be worked out",
            ));
        }
        drop(events);
        drop(txn);
        if let Some(p) = progress {
            p.committed();
        }
        self.verify(None)
    }

    /// Copies this store's whole log into `target` (which must be empty): `copy_out`, then
    /// `copy_in`.
    pub fn copy_to(
        &self,
        target: &Engine,
        progress: Option<&dyn Progress>,
    ) -> Result<Verified, Error> {
        target.check_empty()?;
        let log = self.copy_out(progress)?;
        target.copy_in(log, progress)
    }
}
