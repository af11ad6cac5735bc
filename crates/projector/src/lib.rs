//! Projections: a pure fold of the log into the reports people ask for —
//! cap tables, obligations, rights and milestones, and one party's position —
//! for any valid date (`as_of`) and any transaction time (`known_at`).
//!
//! Deterministic and free of I/O: the same events and the same question
//! always give the same answer. The report types serialize to the JSON shapes
//! of CLI.md; formatting for people is the CLI's business, not this crate's.

// A refusal carries the event and the values involved, which makes it large;
// it is the cold path, so it is returned by value rather than boxed.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};

use domain::event::Event;
use domain::ledger::{Ledger, ObligationState, RightState};
use domain::values::{Currency, Date, Dec, Money, PartyId};
use domain::{fold, order, FoldError, KnownAt, ObligationStatus, RecordedEvent};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

/// Decimal places of a percent in reports (stored units keep full precision).
pub const PERCENT_DP: u32 = 6;
/// Decimal places of a money value derived from a valuation.
pub const VALUE_DP: u32 = 2;
/// Decimal places of an investment multiple.
pub const MULTIPLE_DP: u32 = 2;

fn round(d: Decimal, dp: u32) -> Dec {
    Dec(d
        .round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
        .normalize())
}

/// The state of the ledger on one date, as known at one time.
#[derive(Clone, Debug)]
pub struct Projection {
    pub as_of: Date,
    pub ledger: Ledger,
}

/// Projects the log on `as_of` as known at `known_at`.
///
/// The log was validated on append, so a fold error here means the stored
/// events break today's rules (a corrupt or foreign log); it is returned, not
/// hidden.
pub fn project(
    log: &[RecordedEvent],
    as_of: Date,
    known_at: KnownAt,
) -> Result<Projection, FoldError> {
    project_entries(
        log.iter()
            .filter(|r| known_at.includes(r))
            .map(|r| (r.seq, &r.event))
            .collect(),
        as_of,
    )
}

/// Projects an explicit list of `(seq, event)` entries, for what-if questions
/// that add unrecorded events after the log.
pub fn project_entries(entries: Vec<(u64, &Event)>, as_of: Date) -> Result<Projection, FoldError> {
    let ordered = order(entries);
    let ledger = fold(&ordered, Some(as_of))?;
    Ok(Projection { as_of, ledger })
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OwnershipReport {
    pub as_of: Date,
    pub entities: Vec<EntityTable>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EntityTable {
    pub entity: PartyId,
    pub name: Option<String>,
    pub total_units: Dec,
    pub post_money: Option<Money>,
    pub holders: Vec<HolderRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HolderRow {
    pub holder: PartyId,
    pub class: String,
    pub units: Dec,
    pub percent: Dec,
    pub value: Option<Money>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObligationsReport {
    pub as_of: Date,
    pub obligations: Vec<ObligationRow>,
    pub totals: Vec<TotalRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObligationRow {
    pub obligation: String,
    pub kind: &'static str,
    pub obligor: PartyId,
    pub obligee: Option<PartyId>,
    pub amount: Money,
    pub settled: Money,
    pub outstanding: Money,
    pub status: &'static str,
    pub due: Option<Date>,
    /// Open with its `due` date before `as_of`.
    pub overdue: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TotalRow {
    pub obligor: PartyId,
    pub currency: Currency,
    pub outstanding: Dec,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RightsReport {
    pub as_of: Date,
    pub rights: Vec<RightRow>,
    pub milestones: Vec<MilestoneRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RightRow {
    pub right: String,
    pub kind: String,
    pub holder: PartyId,
    pub grantor: PartyId,
    pub until: Option<Date>,
    pub until_milestone: Option<String>,
    pub in_force: bool,
    pub ended: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MilestoneRow {
    pub milestone: String,
    pub declared: Option<Date>,
    pub verified: Option<Date>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PositionReport {
    pub party: PartyId,
    pub name: Option<String>,
    pub as_of: Date,
    pub holdings: Vec<PositionHolding>,
    pub invested: Vec<InvestedRow>,
    pub owes: Vec<ObligationRow>,
    pub owed: Vec<ObligationRow>,
    pub rights_held: Vec<RightRow>,
    pub rights_granted: Vec<RightRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PositionHolding {
    pub entity: PartyId,
    pub class: String,
    pub units: Dec,
    pub percent: Dec,
    pub value: Option<Money>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InvestedRow {
    pub investee: PartyId,
    pub amount: Money,
    pub value: Option<Money>,
    pub multiple: Option<Dec>,
}

/// Which obligations or rights a report lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    /// Only open obligations, only rights in force.
    #[default]
    Current,
    /// Settled and released obligations, ended rights too.
    All,
}

impl Projection {
    fn name_of(&self, party: &PartyId) -> Option<String> {
        self.ledger
            .parties
            .get(party)
            .map(|p| p.name.as_str().to_string())
    }

    /// `units` of an issuer's total as a percent, rounded for display.
    fn percent(units: Decimal, total: Decimal) -> Dec {
        if total.is_zero() {
            return Dec(Decimal::ZERO);
        }
        let p = units
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|x| x.checked_div(total))
            .or_else(|| {
                units
                    .checked_div(total)
                    .and_then(|f| f.checked_mul(Decimal::ONE_HUNDRED))
            })
            .unwrap_or_default();
        round(p, PERCENT_DP)
    }

    /// The value of `units` of an entity under its latest valuation.
    fn value(&self, entity: &PartyId, units: Decimal, total: Decimal) -> Option<Money> {
        let (_, post) = self.ledger.valuations.get(entity)?;
        if total.is_zero() {
            return None;
        }
        let amount = post.amount.0;
        let v = units
            .checked_mul(amount)
            .and_then(|x| x.checked_div(total))
            .or_else(|| units.checked_div(total).and_then(|f| f.checked_mul(amount)))?;
        Some(Money {
            amount: round(v, VALUE_DP),
            currency: post.currency.clone(),
        })
    }

    /// Cap tables of every entity with units on this date, or only `entity`.
    pub fn ownership(&self, entity: Option<&PartyId>) -> OwnershipReport {
        let entities = self
            .ledger
            .holdings
            .iter()
            .filter(|(issuer, _)| entity.is_none_or(|e| e == *issuer))
            .filter_map(|(issuer, table)| {
                let total = self.ledger.total_units(issuer);
                if total.is_zero() {
                    return None;
                }
                let mut holders: Vec<HolderRow> = table
                    .iter()
                    .map(|((holder, class), units)| HolderRow {
                        holder: holder.clone(),
                        class: class.as_str().to_string(),
                        units: Dec(units.normalize()),
                        percent: Self::percent(*units, total),
                        value: self.value(issuer, *units, total),
                    })
                    .collect();
                holders.sort_by(|a, b| {
                    b.units
                        .cmp(&a.units)
                        .then_with(|| a.holder.cmp(&b.holder))
                        .then_with(|| a.class.cmp(&b.class))
                });
                Some(EntityTable {
                    entity: issuer.clone(),
                    name: self.name_of(issuer),
                    total_units: Dec(total.normalize()),
                    post_money: self.ledger.valuations.get(issuer).map(|(_, m)| m.clone()),
                    holders,
                })
            })
            .collect();
        OwnershipReport {
            as_of: self.as_of,
            entities,
        }
    }

    fn obligation_row(&self, o: &ObligationState) -> ObligationRow {
        let money = |d: Decimal| Money {
            amount: Dec(d.normalize()),
            currency: o.currency().clone(),
        };
        ObligationRow {
            obligation: o.obligation.as_str().to_string(),
            kind: o.kind.as_str(),
            obligor: o.obligor.clone(),
            obligee: o.obligee.clone(),
            amount: money(o.amount.amount.0),
            settled: money(o.settled),
            outstanding: money(o.outstanding()),
            status: o.status().as_str(),
            due: o.due,
            overdue: o.status() == ObligationStatus::Open && o.due.is_some_and(|d| d < self.as_of),
        }
    }

    fn obligation_rows(
        &self,
        scope: Scope,
        keep: impl Fn(&ObligationState) -> bool,
    ) -> Vec<ObligationRow> {
        self.ledger
            .obligations
            .values()
            .filter(|o| keep(o))
            .filter(|o| scope == Scope::All || o.status() == domain::ObligationStatus::Open)
            .map(|o| self.obligation_row(o))
            .collect()
    }

    /// Obligations where `party` (if given) is obligor or obligee.
    pub fn obligations(&self, party: Option<&PartyId>, scope: Scope) -> ObligationsReport {
        let obligations = self.obligation_rows(scope, |o| {
            party.is_none_or(|p| o.obligor == *p || o.obligee.as_ref() == Some(p))
        });
        let mut sums: BTreeMap<(PartyId, Currency), Decimal> = BTreeMap::new();
        for o in &obligations {
            *sums
                .entry((o.obligor.clone(), o.outstanding.currency.clone()))
                .or_default() += o.outstanding.amount.0;
        }
        let totals = sums
            .into_iter()
            .map(|((obligor, currency), outstanding)| TotalRow {
                obligor,
                currency,
                outstanding: Dec(outstanding.normalize()),
            })
            .collect();
        ObligationsReport {
            as_of: self.as_of,
            obligations,
            totals,
        }
    }

    fn right_row(&self, r: &RightState) -> RightRow {
        let end = r.status(self.as_of, &self.ledger.milestones);
        RightRow {
            right: r.right.as_str().to_string(),
            kind: r.kind.as_str().to_string(),
            holder: r.holder.clone(),
            grantor: r.grantor.clone(),
            until: r.until,
            until_milestone: r.until_milestone.as_ref().map(|m| m.as_str().to_string()),
            in_force: end.is_none(),
            ended: end.map(|e| e.as_str()),
        }
    }

    fn right_rows(&self, scope: Scope, keep: impl Fn(&RightState) -> bool) -> Vec<RightRow> {
        self.ledger
            .rights
            .values()
            .filter(|r| keep(r))
            .map(|r| self.right_row(r))
            .filter(|row| scope == Scope::All || row.in_force)
            .collect()
    }

    /// Rights where `party` (if given) is holder or grantor, and the
    /// milestones that are declared or that a listed right waits for.
    pub fn rights(&self, party: Option<&PartyId>, scope: Scope) -> RightsReport {
        let rights = self.right_rows(scope, |r| {
            party.is_none_or(|p| r.holder == *p || r.grantor == *p)
        });
        let mut ids: BTreeSet<String> = self
            .ledger
            .milestones
            .iter()
            .filter(|(_, m)| m.declared.is_some())
            .map(|(id, _)| id.as_str().to_string())
            .collect();
        ids.extend(rights.iter().filter_map(|r| r.until_milestone.clone()));
        let milestones = ids
            .into_iter()
            .map(|id| {
                let state = domain::values::Slug::parse(&id)
                    .ok()
                    .and_then(|slug| self.ledger.milestones.get(&slug));
                MilestoneRow {
                    declared: state.and_then(|s| s.declared.as_ref().map(|(d, _)| *d)),
                    verified: state.and_then(|s| s.verified.as_ref().map(|(d, _)| *d)),
                    milestone: id,
                }
            })
            .collect();
        RightsReport {
            as_of: self.as_of,
            rights,
            milestones,
        }
    }

    /// Everything about one party on this date.
    pub fn position(&self, party: &PartyId, scope: Scope) -> PositionReport {
        let mut holdings = Vec::new();
        for (issuer, table) in &self.ledger.holdings {
            let total = self.ledger.total_units(issuer);
            for ((holder, class), units) in table {
                if holder == party {
                    holdings.push(PositionHolding {
                        entity: issuer.clone(),
                        class: class.as_str().to_string(),
                        units: Dec(units.normalize()),
                        percent: Self::percent(*units, total),
                        value: self.value(issuer, *units, total),
                    });
                }
            }
        }
        // Investments grouped by investee and currency; the multiple compares
        // the holding's value with the money put in, same currency only.
        let mut invested: BTreeMap<(PartyId, Currency), Decimal> = BTreeMap::new();
        for i in self.ledger.investments.get(party).into_iter().flatten() {
            *invested
                .entry((i.investee.clone(), i.amount.currency.clone()))
                .or_default() += i.amount.amount.0;
        }
        let invested = invested
            .into_iter()
            .map(|((investee, currency), amount)| {
                let total = self.ledger.total_units(&investee);
                let units: Decimal = self
                    .ledger
                    .holdings
                    .get(&investee)
                    .map(|t| {
                        t.iter()
                            .filter(|((h, _), _)| h == party)
                            .map(|(_, u)| *u)
                            .sum()
                    })
                    .unwrap_or_default();
                let value = if units.is_zero() {
                    None
                } else {
                    self.value(&investee, units, total)
                };
                let multiple = value
                    .as_ref()
                    .filter(|v| v.currency == currency && !amount.is_zero())
                    .and_then(|v| v.amount.0.checked_div(amount))
                    .map(|m| round(m, MULTIPLE_DP));
                InvestedRow {
                    investee,
                    amount: Money {
                        amount: Dec(amount.normalize()),
                        currency,
                    },
                    value,
                    multiple,
                }
            })
            .collect();
        PositionReport {
            party: party.clone(),
            name: self.name_of(party),
            as_of: self.as_of,
            holdings,
            invested,
            owes: self.obligation_rows(scope, |o| o.obligor == *party),
            owed: self.obligation_rows(scope, |o| o.obligee.as_ref() == Some(party)),
            rights_held: self.right_rows(scope, |r| r.holder == *party),
            rights_granted: self.right_rows(scope, |r| r.grantor == *party),
        }
    }
}

pub mod restatement;
pub mod timeline;

pub use restatement::{restatement, Change, Responsible, Restatement};
pub use timeline::{ownership_timeline, EntityTimeline, TimelineChange, TimelineReport};
