//! Reports: a projection of the log as of a date and as known at a time, what-if, the
//! ownership timeline and the restatement (diff) between two transaction times.
//!
//! A question as known now, without what-if, is answered from the query checkpoints
//! (`checkpoints::ledger_as_of`) without a replay; every other one replays the log.

use domain::values::{Date, Slug};
use domain::{KnownAt, Payload, RecordedEvent};
use projector::{project, Projection, Restatement, TimelineReport};

use crate::known_at::{entity_events, last_seq, ledger_in_view};
use crate::load::load_events;
use crate::{Engine, Error, WhatIf};

/// Valid time and transaction time of a question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    /// Events effective on or before this date count.
    pub as_of: Date,
    /// Events recorded up to this time count.
    pub known_at: KnownAt,
}

impl Query {
    /// As of `as_of`, as known now.
    pub fn as_of(as_of: Date) -> Query {
        Query {
            as_of,
            known_at: KnownAt::Everything,
        }
    }
}

/// The restatement of a date between two transaction times, and the last seq each one sees.
#[derive(Clone, Debug)]
pub struct DiffReport {
    pub restatement: Restatement,
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
}

impl Engine {
    /// The projection of the log for `query`. `party`, when given, must be registered
    /// somewhere in the log, so that a mistyped id is refused rather than answered with an
    /// empty report. With `with`, the what-if file's events count as appended after the log
    /// (validated as an append; nothing is written).
    pub fn projection(
        &self,
        query: &Query,
        party: Option<&Slug>,
        with: Option<&WhatIf>,
    ) -> Result<Projection, Error> {
        let snapshot = self.store.read()?;
        // The keys answer without a replay (`known_at`), unless the store's keys are not
        // current or the what-if file needs the whole log; what-if with a past transaction
        // time is left to the replay.
        if !self.config.full_replay && (with.is_none() || query.known_at == KnownAt::Everything) {
            let known = |extra: &[RecordedEvent]| -> Result<Option<bool>, Error> {
                match party {
                    Some(p) => Ok(crate::checkpoints::party_registered(&*snapshot, p)?
                        .map(|k| k || registers(extra, p))),
                    None => Ok(Some(true)),
                }
            };
            let answer = match with {
                Some(file) => file.ledger_fast(&*snapshot, query.as_of, &self.config)?,
                None => {
                    let seq = last_seq(&*snapshot, query.known_at)?;
                    ledger_in_view(&*snapshot, query.as_of, seq)?.map(|l| (l, Vec::new()))
                }
            };
            if let Some((ledger, extra)) = answer {
                match known(&extra)? {
                    Some(false) => {
                        if let Some(party) = party {
                            return Err(unknown_party(party));
                        }
                    }
                    Some(true) => {
                        return Ok(Projection {
                            as_of: query.as_of,
                            ledger,
                        })
                    }
                    None => {}
                }
            }
        }
        let mut events = load_events(&*snapshot)?;
        drop(snapshot);
        if let Some(file) = with {
            file.extend(&mut events, &self.config)?;
        }
        if let Some(party) = party {
            if !registers(&events, party) {
                return Err(unknown_party(party));
            }
        }
        project(&events, query.as_of, query.known_at).map_err(|e| Error::replay(&e))
    }

    /// Each holder's percent of every entity (or of `entity` alone) at every date on which it
    /// changed, up to `query.as_of`.
    pub fn timeline(&self, query: &Query, entity: Option<&Slug>) -> Result<TimelineReport, Error> {
        // One entity's timeline reads its ownership stream and the parties it names.
        if let (Some(e), false) = (entity, self.config.full_replay) {
            let snapshot = self.store.read()?;
            if crate::checkpoints::party_registered(&*snapshot, e)? == Some(false) {
                return Err(unknown_party(e));
            }
            let known = last_seq(&*snapshot, query.known_at)?;
            if let Some(part) = entity_events(&*snapshot, e, query.as_of, known)? {
                drop(snapshot);
                return projector::ownership_timeline(
                    &part,
                    query.as_of,
                    KnownAt::Everything,
                    Some(e),
                )
                .map_err(|e| Error::replay(&e));
            }
        }
        let events = self.events()?;
        if let Some(e) = entity {
            if !registers(&events, e) {
                return Err(unknown_party(e));
            }
        }
        projector::ownership_timeline(&events, query.as_of, query.known_at, entity)
            .map_err(|e| Error::replay(&e))
    }

    /// What changed on `as_of` between what was known at `from` and at `to`, row by row, with
    /// the events responsible.
    pub fn diff(&self, as_of: Date, from: KnownAt, to: KnownAt) -> Result<DiffReport, Error> {
        if !self.config.full_replay {
            let snapshot = self.store.read()?;
            let (from, to) = (last_seq(&*snapshot, from)?, last_seq(&*snapshot, to)?);
            if let Some(restatement) = crate::known_at::restatement(&*snapshot, as_of, from, to)? {
                return Ok(DiffReport {
                    restatement,
                    from_seq: (from > 0).then_some(from),
                    to_seq: (to > 0).then_some(to),
                });
            }
        }
        let events = self.events()?;
        let restatement =
            projector::restatement(&events, as_of, from, to).map_err(|e| Error::replay(&e))?;
        let last_seq = |k: KnownAt| -> Option<u64> {
            events
                .iter()
                .filter(|r: &&RecordedEvent| k.includes(r))
                .map(|r| r.seq)
                .max()
        };
        Ok(DiffReport {
            restatement,
            from_seq: last_seq(from),
            to_seq: last_seq(to),
        })
    }

    /// The date from which `party` is registered (the effective date of the event that
    /// registers it, as known now), if any event registers it.
    pub fn registered_from(&self, party: &Slug) -> Result<Option<Date>, Error> {
        let events = self.events()?;
        let reversed: std::collections::HashSet<&str> = events
            .iter()
            .filter_map(|r| match &r.event.payload {
                Payload::EventReversed(p) => Some(p.reverses.as_str()),
                _ => None,
            })
            .collect();
        Ok(events
            .iter()
            .filter(|r| !reversed.contains(r.event.id.as_str()))
            .filter_map(|r| match &r.event.payload {
                Payload::PartyRegistered(p) if p.party == *party => Some(r.event.effective),
                _ => None,
            })
            .min())
    }

    /// The whole decoded log.
    pub fn events(&self) -> Result<Vec<RecordedEvent>, Error> {
        let snapshot = self.store.read()?;
        load_events(&*snapshot)
    }
}

/// A projection of an already decoded log (the demo shows several dates of one log).
pub fn project_events(events: &[RecordedEvent], query: &Query) -> Result<Projection, Error> {
    project(events, query.as_of, query.known_at).map_err(|e| Error::replay(&e))
}

fn registers(events: &[RecordedEvent], party: &Slug) -> bool {
    events
        .iter()
        .any(|r| matches!(&r.event.payload, Payload::PartyRegistered(p) if p.party == *party))
}

fn unknown_party(party: &Slug) -> Error {
    Error::refused(
        "unknown_party",
        format!("unknown party `{party}`: no event registers it (see `accord log`)"),
    )
}
