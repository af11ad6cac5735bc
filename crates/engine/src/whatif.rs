//! What-if projections (`--with FILE` on `ownership`, `obligations`,
//! `rights` and `position`): the events of FILE are validated exactly as
//! `accord append FILE` would validate them (same parser, same `plan_batch`,
//! same refusals and exit codes) and then projected as if appended after the
//! log, recorded now.
//!
//! Nothing here writes: the extra events live only in memory. What-if does not
//! combine with `--known-at` (the file's events would be recorded now, after
//! any past transaction time, so they could never count).

use domain::event::Event;
use domain::RecordedEvent;

use store::Snapshot;

use crate::append::{parse_file, plan_file};
use crate::{Config, Error, EventFile};

/// A what-if file, parsed, with the name its refusals use.
#[derive(Clone, Debug)]
pub struct WhatIf {
    name: String,
    events: Vec<(usize, Event)>,
}

impl WhatIf {
    /// Parses the file as `append` does, so a bad file is refused the same way (before any
    /// store is opened).
    pub fn parse(file: &EventFile) -> Result<WhatIf, Error> {
        let events = parse_file(&file.name, &file.text)?;
        Ok(WhatIf {
            name: file.name.clone(),
            events,
        })
    }

    /// Validates the file against `log` as an append would and adds its new events (those
    /// not already recorded) after the log, recorded now.
    pub(crate) fn extend(
        &self,
        log: &mut Vec<RecordedEvent>,
        config: &Config,
    ) -> Result<(), Error> {
        plan_file(log, &self.name, self.events.clone(), config.now()).map(|_| ())
    }

    /// The ledger as of `as_of` with the file's new events recorded now after the head of
    /// `store`, validated as a fast append validates them (reading only what they touch)
    /// and folded from what that validation read; `None` when the file needs the whole log
    /// (then `extend` does it).
    ///
    /// The validation (the touched aggregates' streams) and the present answer (a checkpoint
    /// and the events dated after it) read different parts of the store, so, where reads may
    /// be split (`split_reads`), the present answer is worked out on a second thread
    /// meanwhile. A refusal of the file still wins over anything the other thread found.
    pub(crate) fn ledger_fast(
        &self,
        store: &dyn Snapshot,
        as_of: domain::values::Date,
        config: &Config,
    ) -> Result<Option<(domain::ledger::Ledger, Vec<RecordedEvent>)>, Error> {
        let plan = || crate::fast_append::try_plan(store, &self.name, &self.events, config);
        let present = || crate::checkpoints::ledger_as_of(store, as_of);
        let (plan, present) = if crate::load::splitting() {
            crate::load::in_parallel(plan, present)
        } else {
            let plan = plan();
            match plan {
                Ok(Some(_)) => (plan, present()),
                _ => (plan, Ok(None)),
            }
        };
        let Some(p) = plan? else {
            return Ok(None);
        };
        let new = p.recorded(store.len(), config.now());
        Ok(crate::fast_append::what_if_ledger(present?, as_of, &p, &new)?.map(|l| (l, new)))
    }
}
