//! `copy`: every record of one store into another, keeping each seq, recorded time and hash,
//! so a ledger moves between stores without changing a head anyone wrote down.

use store::Record;

use crate::load::decode;
use crate::{Engine, Error, Progress, Verified};

impl Engine {
    /// Copies this store's whole log into `target`, which must be empty, as one atomic batch
    /// with the query keys rebuilt for it, then verifies `target`. Returns what that verify
    /// found.
    pub fn copy_to(
        &self,
        target: &Engine,
        progress: Option<&dyn Progress>,
    ) -> Result<Verified, Error> {
        let snapshot = self.store.read()?;
        let total = snapshot.len();
        if let Some(p) = progress {
            p.phase("read", total);
        }
        let mut records: Vec<Record> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut events = Vec::with_capacity(records.capacity());
        for r in snapshot.records() {
            let r = r?;
            events.push(decode(&r).map_err(|m| Error::corrupt_at(r.seq, &m))?);
            records.push(r);
            if let Some(p) = progress {
                p.advance(1);
            }
        }
        drop(snapshot);
        let mut txn = target.store.write()?;
        if !txn.is_empty() {
            return Err(Error::refused(
                "target_not_empty",
                format!(
                    "the store {} holds {} events: copy needs an empty or missing target",
                    target.store.location(),
                    txn.len()
                ),
            ));
        }
        if let Some(p) = progress {
            p.phase("written", total);
        }
        let aux = crate::checkpoints::maintain(&*txn, &events, 0, &target.config)?;
        drop(events);
        txn.commit_records(&records, &aux).map_err(|e| match e {
            store::StoreError::InvalidEvent { detail, .. } => Error::failed(format!(
                "the store {} cannot be copied: {detail} (run `accord verify` on it)",
                self.store.location()
            )),
            other => other.into(),
        })?;
        drop(txn);
        if let Some(p) = progress {
            p.advance(total);
        }
        target.verify(None)
    }
}
