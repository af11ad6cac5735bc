//! The ledger state machine: the state of every aggregate after a sequence of
//! events, and the rules an event must satisfy to be applied to that state.
//!
//! `Ledger::apply` is the single place where the invariants of EVENTS.md are
//! enforced; validation and projection both fold through it, so a rule can
//! never hold in one and not the other. It does not choose which events to
//! fold or in which order: that is `timeline`'s job.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Rejection;
use crate::event::*;
use crate::values::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartyState {
    pub name: Text,
    pub kind: PartyKind,
    pub registered: Date,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Investment {
    pub event: EventId,
    pub date: Date,
    pub investor: PartyId,
    pub investee: PartyId,
    pub amount: Money,
    pub instrument: Instrument,
    pub label: Option<Text>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObligationStatus {
    Open,
    Settled,
    Released,
}

impl ObligationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ObligationStatus::Open => "open",
            ObligationStatus::Settled => "settled",
            ObligationStatus::Released => "released",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObligationState {
    pub obligation: ObligationId,
    pub kind: ObligationKind,
    pub obligor: PartyId,
    pub obligee: Option<PartyId>,
    /// The latest total, in the obligation's one currency.
    pub amount: Money,
    pub settled: Decimal,
    pub released: Option<Date>,
    pub purpose: Option<Text>,
    pub due: Option<Date>,
    pub incurred: Date,
}

impl ObligationState {
    pub fn currency(&self) -> &Currency {
        &self.amount.currency
    }
    pub fn outstanding(&self) -> Decimal {
        if self.released.is_some() {
            Decimal::ZERO
        } else {
            self.amount.amount.0 - self.settled
        }
    }
    pub fn status(&self) -> ObligationStatus {
        if self.released.is_some() {
            ObligationStatus::Released
        } else if self.outstanding() <= Decimal::ZERO {
            ObligationStatus::Settled
        } else {
            ObligationStatus::Open
        }
    }
}

/// Why a right is no longer in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RightEnd {
    /// Its `until` date has passed.
    Expired,
    /// Its `until_milestone` was verified.
    Milestone,
    /// A `right_ended` event ended it.
    Ended,
}

impl RightEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            RightEnd::Expired => "expired",
            RightEnd::Milestone => "milestone",
            RightEnd::Ended => "ended",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RightState {
    pub right: RightId,
    pub kind: KindSlug,
    pub holder: PartyId,
    pub grantor: PartyId,
    pub description: Option<Text>,
    pub until: Option<Date>,
    pub until_milestone: Option<MilestoneId>,
    pub granted: Date,
    pub ended: Option<Date>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct MilestoneState {
    pub declared: Option<(Date, PartyId)>,
    pub description: Option<Text>,
    pub verified: Option<(Date, Text)>,
}

/// Units held, keyed by holder and class.
pub type HoldingTable = BTreeMap<(PartyId, ClassName), Decimal>;

/// The state of every aggregate after the events applied so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub parties: BTreeMap<PartyId, PartyState>,
    /// Issuer -> holdings. A holding that falls to zero is removed.
    #[serde(with = "holdings_serde")]
    pub holdings: BTreeMap<PartyId, HoldingTable>,
    /// Entity -> the latest valuation applied, with its date.
    pub valuations: BTreeMap<PartyId, (Date, Money)>,
    /// Investor -> the investments they made, in fold order (each investor's list is one
    /// aggregate: an investment changes its investor's list only).
    pub investments: BTreeMap<PartyId, Vec<Investment>>,
    pub obligations: BTreeMap<ObligationId, ObligationState>,
    pub rights: BTreeMap<RightId, RightState>,
    pub milestones: BTreeMap<MilestoneId, MilestoneState>,
}

impl RightState {
    /// Whether the right is in force on `as_of`, given the milestones as of
    /// that date, and if not, why. When several ends apply, the earliest wins;
    /// on the same day an explicit `right_ended` is named first.
    pub fn status(
        &self,
        as_of: Date,
        milestones: &BTreeMap<MilestoneId, MilestoneState>,
    ) -> Option<RightEnd> {
        let mut ends: Vec<(Date, RightEnd)> = Vec::new();
        if let Some(d) = self.ended.filter(|d| *d <= as_of) {
            ends.push((d, RightEnd::Ended));
        }
        if let Some(m) = &self.until_milestone {
            if let Some((d, _)) = milestones.get(m).and_then(|s| s.verified.as_ref()) {
                if *d <= as_of {
                    ends.push((*d, RightEnd::Milestone));
                }
            }
        }
        if let Some(until) = self.until.filter(|u| *u < as_of) {
            // Not in force from the day after `until`.
            let from = until.0.succ_opt().map(Date).unwrap_or(until);
            ends.push((from, RightEnd::Expired));
        }
        ends.sort_by_key(|(d, why)| (*d, *why != RightEnd::Ended));
        ends.first().map(|(_, why)| *why)
    }
}

/// The class an event names, or `common`: borrowed, so that a replay allocates nothing for it.
fn class_or_common(c: &Option<ClassName>) -> &ClassName {
    static COMMON: std::sync::LazyLock<ClassName> = std::sync::LazyLock::new(ClassName::common);
    c.as_ref().unwrap_or(&COMMON)
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Total units of an issuer over all classes.
    pub fn total_units(&self, issuer: &PartyId) -> Decimal {
        self.holdings
            .get(issuer)
            .map(|t| t.values().copied().sum())
            .unwrap_or(Decimal::ZERO)
    }

    /// The units `holder` holds of `issuer` over all classes; `None` when its table has no
    /// entry for the holder.
    pub fn units_held(&self, issuer: &PartyId, holder: &PartyId) -> Option<Decimal> {
        let table = self.holdings.get(issuer)?;
        let mut units: Option<Decimal> = None;
        for ((h, _), u) in table.range((holder.clone(), ClassName::before_all())..) {
            if h != holder {
                break;
            }
            *units.get_or_insert(Decimal::ZERO) += *u;
        }
        units
    }

    fn require_party(&self, event: &Event, party: &PartyId) -> Result<(), Rejection> {
        match self.parties.get(party) {
            Some(p) if p.registered <= event.effective => Ok(()),
            _ => Err(Rejection::UnknownParty {
                event: event.id.clone(),
                party: party.clone(),
                date: event.effective,
            }),
        }
    }

    fn obligation_mut(
        &mut self,
        event: &Event,
        id: &ObligationId,
    ) -> Result<&mut ObligationState, Rejection> {
        self.obligations
            .get_mut(id)
            .ok_or_else(|| Rejection::UnknownObligation {
                event: event.id.clone(),
                obligation: id.clone(),
                date: event.effective,
            })
    }

    fn right_mut(&mut self, event: &Event, id: &RightId) -> Result<&mut RightState, Rejection> {
        let right = self
            .rights
            .get_mut(id)
            .ok_or_else(|| Rejection::UnknownRight {
                event: event.id.clone(),
                right: id.clone(),
                date: event.effective,
            })?;
        if let Some(ended) = right.ended {
            return Err(Rejection::RightAlreadyEnded {
                event: event.id.clone(),
                right: id.clone(),
                ended,
            });
        }
        Ok(right)
    }

    fn insufficient(
        event: &Event,
        (issuer, holder, class): (&PartyId, &PartyId, &ClassName),
        held: Decimal,
        needed: Decimal,
    ) -> Rejection {
        Rejection::InsufficientUnits {
            event: event.id.clone(),
            issuer: issuer.clone(),
            holder: holder.clone(),
            class: class.clone(),
            held,
            needed,
            date: event.effective,
        }
    }

    fn take_units(
        &mut self,
        event: &Event,
        issuer: &PartyId,
        holder: &PartyId,
        class: &ClassName,
        units: Decimal,
    ) -> Result<(), Rejection> {
        // Without a table the holder holds nothing.
        let Some(table) = self.holdings.get_mut(issuer) else {
            if units > Decimal::ZERO {
                return Err(Self::insufficient(
                    event,
                    (issuer, holder, class),
                    Decimal::ZERO,
                    units,
                ));
            }
            return Ok(());
        };
        // Ids are cloned once per move, for the key: a replay moves units a million times.
        let key = (holder.clone(), class.clone());
        let held = table.get(&key).copied().unwrap_or(Decimal::ZERO);
        if held < units {
            return Err(Self::insufficient(
                event,
                (issuer, holder, class),
                held,
                units,
            ));
        }
        let rest = held - units;
        if rest.is_zero() {
            table.remove(&key);
        } else {
            table.insert(key, rest);
        }
        if table.is_empty() {
            self.holdings.remove(issuer);
        }
        Ok(())
    }

    fn give_units(
        &mut self,
        event: &Event,
        issuer: &PartyId,
        holder: &PartyId,
        class: &ClassName,
        units: Decimal,
    ) -> Result<(), Rejection> {
        let key = (holder.clone(), class.clone());
        match self.holdings.get_mut(issuer) {
            Some(table) => {
                let slot = table.entry(key).or_insert(Decimal::ZERO);
                *slot = slot.checked_add(units).ok_or_else(|| overflow(event))?;
            }
            None => {
                self.holdings
                    .insert(issuer.clone(), HoldingTable::from([(key, units)]));
            }
        }
        Ok(())
    }

    /// `take_units` from `from` and `give_units` to `to` (another holder), finding the
    /// issuer's table once: for the positive units every event carries, the same state and
    /// the same refusals as the two one after the other (a table the take empties and the
    /// give refills ends as this one does).
    fn move_units(
        &mut self,
        event: &Event,
        issuer: &PartyId,
        (from, to): (&PartyId, &PartyId),
        class: &ClassName,
        units: Decimal,
    ) -> Result<(), Rejection> {
        let Some(table) = self.holdings.get_mut(issuer) else {
            self.take_units(event, issuer, from, class, units)?;
            return self.give_units(event, issuer, to, class, units);
        };
        let key = (from.clone(), class.clone());
        match table.get_mut(&key) {
            Some(held) if *held >= units => {
                *held -= units;
                if held.is_zero() {
                    table.remove(&key);
                }
            }
            held => {
                let held = held.map_or(Decimal::ZERO, |h| *h);
                return Err(Self::insufficient(
                    event,
                    (issuer, from, class),
                    held,
                    units,
                ));
            }
        }
        let slot = table
            .entry((to.clone(), class.clone()))
            .or_insert(Decimal::ZERO);
        *slot = slot.checked_add(units).ok_or_else(|| overflow(event))?;
        Ok(())
    }

    fn check_currency(event: &Event, o: &ObligationState, money: &Money) -> Result<(), Rejection> {
        if money.currency != *o.currency() {
            return Err(Rejection::CurrencyMismatch {
                event: event.id.clone(),
                obligation: o.obligation.clone(),
                expected: o.currency().clone(),
                found: money.currency.clone(),
            });
        }
        Ok(())
    }

    /// Applies one event, or refuses it with the rule it breaks. On refusal
    /// the ledger may be partly changed; callers discard it.
    pub fn apply(&mut self, event: &Event) -> Result<(), Rejection> {
        if !matches!(event.payload, Payload::PartyRegistered(_)) {
            event.each_referenced_party(|party| self.require_party(event, party))?;
        }
        let id = || event.id.clone();
        match &event.payload {
            Payload::PartyRegistered(p) => {
                if let Some(existing) = self.parties.get(&p.party) {
                    return Err(Rejection::PartyAlreadyRegistered {
                        event: id(),
                        party: p.party.clone(),
                        registered: existing.registered,
                    });
                }
                self.parties.insert(
                    p.party.clone(),
                    PartyState {
                        name: p.name.clone(),
                        kind: p.kind,
                        registered: event.effective,
                    },
                );
            }
            Payload::PartyUpdated(p) => {
                if let Some(party) = self.parties.get_mut(&p.party) {
                    if let Some(name) = &p.name {
                        party.name = name.clone();
                    }
                    if let Some(kind) = p.kind {
                        party.kind = kind;
                    }
                }
            }
            Payload::SharesIssued(p) => {
                let class = class_or_common(&p.class);
                self.give_units(event, &p.issuer, &p.holder, class, p.units.value())?;
            }
            Payload::SharesTransferred(p) => {
                if p.from == p.to {
                    return Err(Rejection::TransferToSelf {
                        event: id(),
                        party: p.from.clone(),
                    });
                }
                let class = class_or_common(&p.class);
                self.move_units(event, &p.issuer, (&p.from, &p.to), class, p.units.value())?;
            }
            Payload::SharesCancelled(p) => {
                let class = class_or_common(&p.class);
                self.take_units(event, &p.issuer, &p.holder, class, p.units.value())?;
            }
            Payload::SharesSplit(p) => {
                if let Some(table) = self.holdings.get_mut(&p.issuer) {
                    for ((_, class), units) in table.iter_mut() {
                        if p.class.as_ref().is_some_and(|c| c != class) {
                            continue;
                        }
                        *units = mul_div(*units, p.numerator.value(), p.denominator.value())
                            .ok_or_else(|| overflow(event))?;
                    }
                    table.retain(|_, u| !u.is_zero());
                }
            }
            Payload::Recapitalized(t) | Payload::HoldingsStated(t) => {
                let table = holdings_from_table(event, t)?;
                if table.is_empty() {
                    self.holdings.remove(&t.issuer);
                } else {
                    self.holdings.insert(t.issuer.clone(), table);
                }
            }
            Payload::ValuationRecorded(p) => {
                self.valuations
                    .insert(p.entity.clone(), (event.effective, p.post_money.clone()));
            }
            Payload::InvestmentMade(p) => self
                .investments
                .entry(p.investor.clone())
                .or_default()
                .push(Investment {
                    event: id(),
                    date: event.effective,
                    investor: p.investor.clone(),
                    investee: p.investee.clone(),
                    amount: p.amount.clone(),
                    instrument: p.instrument.unwrap_or_default(),
                    label: p.label.clone(),
                }),
            Payload::ObligationIncurred(p) => {
                if self.obligations.contains_key(&p.obligation) {
                    return Err(Rejection::ObligationAlreadyExists {
                        event: id(),
                        obligation: p.obligation.clone(),
                    });
                }
                self.obligations.insert(
                    p.obligation.clone(),
                    ObligationState {
                        obligation: p.obligation.clone(),
                        kind: p.kind,
                        obligor: p.obligor.clone(),
                        obligee: p.obligee.clone(),
                        amount: p.amount.clone(),
                        settled: Decimal::ZERO,
                        released: None,
                        purpose: p.purpose.clone(),
                        due: p.due,
                        incurred: event.effective,
                    },
                );
            }
            Payload::ObligationSettled(p) => {
                let o = self.obligation_mut(event, &p.obligation)?;
                Self::check_currency(event, o, &p.amount)?;
                if let Some(released) = o.released {
                    return Err(Rejection::SettlementAfterRelease {
                        event: id(),
                        obligation: p.obligation.clone(),
                        released,
                    });
                }
                let outstanding = o.outstanding();
                if p.amount.amount.0 > outstanding {
                    return Err(Rejection::SettlementExceedsOutstanding {
                        event: id(),
                        obligation: p.obligation.clone(),
                        amount: p.amount.clone(),
                        outstanding,
                        date: event.effective,
                    });
                }
                o.settled = o
                    .settled
                    .checked_add(p.amount.amount.0)
                    .ok_or_else(|| overflow(event))?;
            }
            Payload::ObligationAmended(p) => {
                let o = self.obligation_mut(event, &p.obligation)?;
                Self::check_currency(event, o, &p.amount)?;
                if let Some(released) = o.released {
                    return Err(Rejection::ObligationAlreadyReleased {
                        event: id(),
                        obligation: p.obligation.clone(),
                        released,
                    });
                }
                if p.amount.amount.0 < o.settled {
                    return Err(Rejection::AmendmentBelowSettled {
                        event: id(),
                        obligation: p.obligation.clone(),
                        amount: p.amount.clone(),
                        settled: o.settled,
                        date: event.effective,
                    });
                }
                o.amount = p.amount.clone();
            }
            Payload::ObligationReleased(p) => {
                let o = self.obligation_mut(event, &p.obligation)?;
                if let Some(released) = o.released {
                    return Err(Rejection::ObligationAlreadyReleased {
                        event: id(),
                        obligation: p.obligation.clone(),
                        released,
                    });
                }
                o.released = Some(event.effective);
            }
            Payload::RightGranted(p) => {
                if self.rights.contains_key(&p.right) {
                    return Err(Rejection::RightAlreadyExists {
                        event: id(),
                        right: p.right.clone(),
                    });
                }
                self.rights.insert(
                    p.right.clone(),
                    RightState {
                        right: p.right.clone(),
                        kind: p.kind.clone(),
                        holder: p.holder.clone(),
                        grantor: p.grantor.clone(),
                        description: p.description.clone(),
                        until: p.until,
                        until_milestone: p.until_milestone.clone(),
                        granted: event.effective,
                        ended: None,
                    },
                );
            }
            Payload::RightAmended(p) => {
                let r = self.right_mut(event, &p.right)?;
                if let Some(until) = &p.until {
                    r.until = *until;
                }
                if let Some(m) = &p.until_milestone {
                    r.until_milestone = m.clone();
                }
            }
            Payload::RightEnded(p) => {
                let r = self.right_mut(event, &p.right)?;
                r.ended = Some(event.effective);
            }
            Payload::MilestoneDeclared(p) => {
                let m = self.milestones.entry(p.milestone.clone()).or_default();
                if let Some((declared, _)) = &m.declared {
                    return Err(Rejection::MilestoneAlreadyDeclared {
                        event: id(),
                        milestone: p.milestone.clone(),
                        declared: *declared,
                    });
                }
                m.declared = Some((event.effective, p.declared_by.clone()));
                m.description = p.description.clone();
            }
            Payload::MilestoneVerified(p) => {
                let m = match self.milestones.get_mut(&p.milestone) {
                    Some(m) if m.declared.is_some() => m,
                    _ => {
                        return Err(Rejection::MilestoneNotDeclared {
                            event: id(),
                            milestone: p.milestone.clone(),
                            date: event.effective,
                        })
                    }
                };
                if let Some((verified, _)) = &m.verified {
                    return Err(Rejection::MilestoneAlreadyVerified {
                        event: id(),
                        milestone: p.milestone.clone(),
                        verified: *verified,
                    });
                }
                m.verified = Some((event.effective, p.verified_by.clone()));
            }
            // A reversal changes which events are folded, not the state;
            // `timeline` applies it.
            Payload::EventReversed(_) => {}
        }
        Ok(())
    }
}

/// `a * b / c`, multiplying first for exactness and dividing first only when
/// the product would not fit; `None` when neither fits.
fn mul_div(a: Decimal, b: Decimal, c: Decimal) -> Option<Decimal> {
    a.checked_mul(b)
        .and_then(|x| x.checked_div(c))
        .or_else(|| a.checked_div(c).and_then(|x| x.checked_mul(b)))
}

fn overflow(event: &Event) -> Rejection {
    Rejection::ArithmeticOverflow {
        event: event.id.clone(),
    }
}

/// Builds the holding table that a `recapitalized` or `holdings_stated`
/// event states, in units.
fn holdings_from_table(event: &Event, t: &HoldingsTable) -> Result<HoldingTable, Rejection> {
    let mut table = HoldingTable::new();
    let percent_form = t.holdings.iter().any(|h| h.percent.is_some());
    if percent_form {
        let mut sum = Decimal::ZERO;
        for h in &t.holdings {
            let p = h.percent.map(|p| p.0).unwrap_or_default();
            sum = sum.checked_add(p).ok_or_else(|| overflow(event))?;
        }
        if sum != Decimal::ONE_HUNDRED {
            return Err(Rejection::PercentsMustSumTo100 {
                event: event.id.clone(),
                issuer: t.issuer.clone(),
                sum,
            });
        }
    }
    let total = t
        .total_units
        .map(|u| u.value())
        .unwrap_or_else(default_total_units);
    for h in &t.holdings {
        let units = match (h.percent, h.units) {
            (Some(p), _) => {
                mul_div(p.0, total, Decimal::ONE_HUNDRED).ok_or_else(|| overflow(event))?
            }
            (None, Some(u)) => u.value(),
            // `Event::check_shape` guarantees one of the two.
            (None, None) => Decimal::ZERO,
        };
        if !units.is_zero() {
            table.insert((h.holder.clone(), class_or_common(&h.class).clone()), units);
        }
    }
    Ok(table)
}

/// JSON maps need string keys: a holding table is written as a list of
/// `[holder, class, units]` (units as a decimal string).
mod holdings_serde {
    use std::collections::BTreeMap;

    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::HoldingTable;
    use crate::values::{ClassName, PartyId};

    type Rows = BTreeMap<PartyId, Vec<(PartyId, ClassName, Decimal)>>;

    pub fn serialize<S: Serializer>(
        holdings: &BTreeMap<PartyId, HoldingTable>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let rows: Rows = holdings
            .iter()
            .map(|(issuer, table)| {
                let list = table
                    .iter()
                    .map(|((holder, class), units)| (holder.clone(), class.clone(), *units))
                    .collect();
                (issuer.clone(), list)
            })
            .collect();
        rows.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<PartyId, HoldingTable>, D::Error> {
        let rows = Rows::deserialize(d)?;
        Ok(rows
            .into_iter()
            .map(|(issuer, list)| {
                let table = list
                    .into_iter()
                    .map(|(holder, class, units)| ((holder, class), units))
                    .collect();
                (issuer, table)
            })
            .collect())
    }
}
