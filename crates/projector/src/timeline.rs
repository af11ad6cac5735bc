//! Ownership over time: each holder's percentage of an entity at every date
//! on which it changed, for `accord timeline`.
//!
//! One fold of the timeline, with a snapshot of every cap table at the end of
//! each effective date; a date counts as a change for an entity when some
//! holder's percent, rounded as reports show it, or units differ from the day
//! before (a split changes units alone). It draws nothing: the chart is the
//! CLI's business.

use std::collections::{BTreeMap, BTreeSet};

use domain::event::Payload;
use domain::ledger::Ledger;
use domain::values::{Date, Dec, PartyId};
use domain::{order, FoldError, KnownAt, RecordedEvent};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::Projection;

/// Every entity's ownership changes up to `as_of`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineReport {
    pub as_of: Date,
    pub entities: Vec<EntityTimeline>,
}

/// One entity's changes, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EntityTimeline {
    pub entity: PartyId,
    /// The entity's name as of `as_of`.
    pub name: Option<String>,
    /// Every holder that appears, largest stake on `as_of` first, then
    /// former holders by id.
    pub holders: Vec<TimelineHolder>,
    pub changes: Vec<TimelineChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineHolder {
    pub holder: PartyId,
    /// The holder's name as of `as_of`.
    pub name: Option<String>,
}

/// The end of one effective date on which some holder's percent or units changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineChange {
    pub date: Date,
    /// Ids of the ownership events of this entity effective on this date.
    pub events: Vec<String>,
    /// Only the holders whose percent or units changed; a holder that left
    /// has percent `"0"`.
    pub holders: Vec<TimelinePoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelinePoint {
    pub holder: PartyId,
    /// Units over all classes.
    pub units: Dec,
    /// Percent of the entity over all classes, rounded as in `ownership`.
    pub percent: Dec,
    /// The percent the day before, `null` when the holder held nothing.
    pub before: Option<Dec>,
    /// The units the day before, `null` when the holder held nothing.
    pub units_before: Option<Dec>,
}

/// Holder -> (units over all classes, rounded percent).
type Stakes = BTreeMap<PartyId, (Decimal, Dec)>;

fn stakes(ledger: &Ledger, issuer: &PartyId) -> Stakes {
    let total = ledger.total_units(issuer);
    let mut units: BTreeMap<PartyId, Decimal> = BTreeMap::new();
    if let Some(table) = ledger.holdings.get(issuer) {
        for ((holder, _class), u) in table {
            *units.entry(holder.clone()).or_default() += *u;
        }
    }
    units
        .into_iter()
        .map(|(h, u)| (h, (u, Projection::percent(u, total))))
        .collect()
}

/// One holder's stake in `issuer` (whose units total `total`): `None` when the holder has no
/// entry in its table, as `stakes` leaves it out.
fn stake(
    ledger: &Ledger,
    issuer: &PartyId,
    holder: &PartyId,
    total: Decimal,
) -> Option<(Decimal, Dec)> {
    ledger
        .units_held(issuer, holder)
        .map(|u| (u, Projection::percent(u, total)))
}

/// The point of `holder` on a date its stake went from `was` (`None`: no entry) to `now`, if
/// that is a change.
fn point(
    holder: &PartyId,
    was: Option<(Decimal, Dec)>,
    now: (Decimal, Dec),
) -> Option<TimelinePoint> {
    let (units, percent) = now;
    let changed = match was {
        Some((u, p)) => p != percent || u != units,
        None => !units.is_zero() || !percent.0.is_zero(),
    };
    changed.then(|| TimelinePoint {
        holder: holder.clone(),
        units: Dec(units.normalize()),
        percent,
        before: was.map(|(_, p)| p),
        units_before: was.map(|(u, _)| Dec(u.normalize())),
    })
}

/// The issuer whose ownership table an event changes, if any.
pub fn ownership_issuer(payload: &Payload) -> Option<&PartyId> {
    match payload {
        Payload::SharesIssued(p) => Some(&p.issuer),
        Payload::SharesTransferred(p) => Some(&p.issuer),
        Payload::SharesCancelled(p) => Some(&p.issuer),
        Payload::SharesSplit(p) => Some(&p.issuer),
        Payload::Recapitalized(p) | Payload::HoldingsStated(p) => Some(&p.issuer),
        _ => None,
    }
}

/// Each holder's percent of each entity (or only `entity`) at every date
/// up to `as_of` on which it changed, as known at `known_at`.
pub fn ownership_timeline(
    log: &[RecordedEvent],
    as_of: Date,
    known_at: KnownAt,
    entity: Option<&PartyId>,
) -> Result<TimelineReport, FoldError> {
    let ordered = order(
        log.iter()
            .filter(|r| known_at.includes(r))
            .map(|r| (r.seq, &r.event))
            .collect(),
    );
    let mut ledger = Ledger::new();
    // Each entity's total units and stakes at the end of the last date that touched it.
    let mut last: BTreeMap<PartyId, (Decimal, Stakes)> = BTreeMap::new();
    let mut changes: BTreeMap<PartyId, Vec<TimelineChange>> = BTreeMap::new();
    let mut i = 0;
    while i < ordered.len() {
        let date = ordered[i].1.effective;
        if date > as_of {
            break;
        }
        // Apply the whole date, then compare end-of-day states. Of each entity the date
        // touches: its events, and the holders they move units between (`None`: any holder,
        // after an issue, a cancellation, a split or a restatement).
        let mut touched: BTreeMap<PartyId, (Vec<String>, Option<BTreeSet<PartyId>>)> =
            BTreeMap::new();
        while i < ordered.len() && ordered[i].1.effective == date {
            let (seq, event) = ordered[i];
            ledger
                .apply(event)
                .map_err(|rejection| FoldError { seq, rejection })?;
            // Of the asked entity only, when one is asked.
            let issuer =
                ownership_issuer(&event.payload).filter(|i| entity.is_none_or(|e| e == *i));
            if let Some(issuer) = issuer {
                // Ids are cloned only when first met: a date holds many events of few parties.
                if !touched.contains_key(issuer) {
                    touched.insert(issuer.clone(), (Vec::new(), Some(BTreeSet::new())));
                }
                if let Some((events, holders)) = touched.get_mut(issuer) {
                    events.push(event.id.as_str().to_string());
                    match (&event.payload, holders.as_mut()) {
                        (Payload::SharesTransferred(p), Some(h)) => {
                            for moved in [&p.from, &p.to] {
                                if !h.contains(moved) {
                                    h.insert(moved.clone());
                                }
                            }
                        }
                        _ => *holders = None,
                    }
                }
            }
            i += 1;
        }
        // Only the asked entity, when one is asked: no other was gathered.
        for (issuer, (events, moved)) in touched {
            let (total_before, mut now) = last.remove(&issuer).unwrap_or_default();
            // Transfers alone never change the total.
            let total = match moved {
                Some(_) if !now.is_empty() => total_before,
                _ => ledger.total_units(&issuer),
            };
            let mut points: Vec<TimelinePoint> = Vec::new();
            match moved {
                // Units moved between holders only: every other holder's units and percent
                // are what they were, so only the movers are compared.
                Some(movers) if !now.is_empty() => {
                    for h in movers {
                        let was = now.get(&h).copied();
                        let stake = stake(&ledger, &issuer, &h, total);
                        points.extend(point(&h, was, stake.unwrap_or_default()));
                        match stake {
                            Some(s) => now.insert(h, s),
                            None => now.remove(&h),
                        };
                    }
                }
                _ => {
                    let before = std::mem::replace(&mut now, stakes(&ledger, &issuer));
                    let holders: BTreeSet<&PartyId> = before.keys().chain(now.keys()).collect();
                    for h in holders {
                        let stake = now.get(h).copied().unwrap_or_default();
                        points.extend(point(h, before.get(h).copied(), stake));
                    }
                }
            }
            points.sort_by(|a, b| b.percent.cmp(&a.percent).then(a.holder.cmp(&b.holder)));
            if !points.is_empty() {
                changes
                    .entry(issuer.clone())
                    .or_default()
                    .push(TimelineChange {
                        date,
                        events,
                        holders: points,
                    });
            }
            last.insert(issuer, (total, now));
        }
    }
    let name_of = |p: &PartyId| ledger.parties.get(p).map(|s| s.name.as_str().to_string());
    let entities = changes
        .into_iter()
        .map(|(issuer, changes)| {
            // Current holders by stake, then former holders by id.
            let current = last
                .get(&issuer)
                .map(|(_, s)| s)
                .cloned()
                .unwrap_or_default();
            let mut ids: Vec<&PartyId> = changes
                .iter()
                .flat_map(|c| c.holders.iter().map(|p| &p.holder))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            ids.sort_by(|a, b| {
                let pa = current.get(*a).map(|(_, p)| *p);
                let pb = current.get(*b).map(|(_, p)| *p);
                pb.cmp(&pa).then(a.cmp(b))
            });
            EntityTimeline {
                name: name_of(&issuer),
                holders: ids
                    .into_iter()
                    .map(|h| TimelineHolder {
                        holder: h.clone(),
                        name: name_of(h),
                    })
                    .collect(),
                entity: issuer,
                changes,
            }
        })
        .collect();
    Ok(TimelineReport { as_of, entities })
}
