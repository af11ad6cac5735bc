//! `verify`: the whole log re-read and every derived key recomputed.

use std::path::Path;

use store::{Access, StoreError};

use crate::audit::CheckFailure;
use crate::load::{decode_records, DecodeFailure};
use crate::{Config, Engine, Error, ExpectedHead};

/// What a passing `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub events: usize,
    pub head: Option<store::Head>,
    /// Whether the log was checked in one streamed pass, in bounded memory (a store whose
    /// query keys are current and agree with it), rather than decoded whole (keys of an
    /// older format, or a check that names damage).
    pub streamed: bool,
}

fn integrity(e: StoreError) -> Error {
    match e {
        StoreError::Corrupt { seq, detail } => Error::Integrity {
            seq,
            message: match seq {
                Some(s) => format!("integrity check failed at seq {s}: {detail}"),
                None => format!("integrity check failed: {detail}"),
            },
        },
        other => Error::from(other),
    }
}

impl Engine {
    /// Opens the store at `location` for `verify`: damage found while opening (a log shorter
    /// than its acknowledged head, bytes that do not decode) is an integrity failure, not an
    /// unavailable store.
    pub fn open_for_verify(location: &Path, config: Config) -> Result<Engine, Error> {
        match store::open_with(location, Access::Read, &config.opening()) {
            Ok(store) => Ok(Engine::with_store(store, config)),
            Err(e @ StoreError::Corrupt { .. }) => Err(integrity(e)),
            Err(e) => Err(e.into()),
        }
    }

    /// Re-reads the whole log: seq continuity, the hash chain, the store's own indexes,
    /// decoding, every rule replayed, and every query checkpoint and index compared with the
    /// replay. With `expected`, also fails unless the log still holds that exact prefix.
    pub fn verify(&self, expected: Option<&ExpectedHead>) -> Result<Verified, Error> {
        // The store checks the hash chain and its own indexes on a second thread, handing
        // each record on as it passes it, while this one streams those records through the
        // replay (`audit::streamed`): the log is read once. Neither takes a lock of its own,
        // so a writer of the same process waits for the snapshot rather than for one of them.
        let snapshot = self.store.read()?;
        let keep_hash_of = expected.map(|e| e.seq);
        // `full_replay` asks for the reference everywhere (tests compare the two).
        let (head, streamed) = if self.config.full_replay {
            (snapshot.verify(), None)
        } else {
            crate::load::read_checked(&*snapshot, |log| {
                crate::audit::streamed(&*snapshot, log, keep_hash_of).ok()
            })
        };
        let head = head.map_err(integrity)?;
        let streamed_ok = streamed.is_some();
        let (events, hash_at_expected) = match streamed {
            Some(s) => (usize::try_from(s.events).unwrap_or(usize::MAX), s.hash),
            // Keys of an older format, or something the streamed check did not find as it
            // expected: the log decoded whole and checked by the reference, which names the
            // damage if there is one.
            None => self.verify_in_memory(&*snapshot, keep_hash_of)?,
        };
        // `0`, the empty log, is a prefix of every log.
        if let Some(ExpectedHead { seq, hash }) = expected.filter(|e| e.seq > 0) {
            match &hash_at_expected {
                Some(h) if h == hash => {}
                Some(h) => {
                    return Err(Error::Integrity {
                        seq: Some(*seq),
                        message: format!(
                            "the log does not hold the expected prefix: seq {seq} has hash {h}, not {hash}: history up to seq {seq} was rewritten"
                        ),
                    })
                }
                None => {
                    return Err(Error::Integrity {
                        seq: Some(*seq),
                        message: format!(
                            "the log does not hold the expected prefix: it has {} events, fewer than seq {seq}: it was truncated or replaced",
                            events
                        ),
                    })
                }
            }
        }
        Ok(Verified {
            events,
            head,
            streamed: streamed_ok,
        })
    }

    /// The reference check over the log decoded whole (`audit::check`): the number of events
    /// and the hash of `keep_hash_of`.
    fn verify_in_memory(
        &self,
        snapshot: &dyn store::Snapshot,
        keep_hash_of: Option<u64>,
    ) -> Result<(usize, Option<String>), Error> {
        let mut hash = None;
        let count = usize::try_from(snapshot.len()).unwrap_or(0);
        let events = decode_records(snapshot.records(), count, |r| {
            if keep_hash_of == Some(r.seq) {
                hash = Some(r.hash_hex());
            }
        })
        .map_err(|e| match e {
            DecodeFailure::Store(e) => integrity(e),
            DecodeFailure::Event(seq, m) => Error::Integrity {
                seq: Some(seq),
                message: format!(
                    "integrity check failed at seq {seq}: the event does not decode: {m}"
                ),
            },
        })?;
        // One replay checks every rule and, against it, the query checkpoints and
        // indexes derived from the log.
        crate::audit::check(snapshot, &events).map_err(|f| match f {
            CheckFailure::Rule(e) => Error::Integrity {
                seq: Some(e.seq),
                message: format!(
                    "integrity check failed at seq {}: replaying it breaks a rule: {}",
                    e.seq, e.rejection
                ),
            },
            CheckFailure::Keys(m) => Error::Integrity {
                seq: None,
                message: format!(
                    "integrity check failed: the query checkpoints disagree with the log: {m}"
                ),
            },
            CheckFailure::Failed(e) => e,
        })?;
        let count = events.len();
        // Freeing a million decoded events takes a tenth of a second that the answer need
        // not wait for.
        drop_elsewhere(events);
        Ok((count, hash))
    }
}

/// Drops `value` on a thread of its own; when no thread can be started, the refused closure
/// drops it here.
fn drop_elsewhere<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("accord-free".into())
        .spawn(move || drop(value));
}
