//! Aggregates: the independent pieces of ledger state that one event reads
//! and changes.
//!
//! `Ledger::apply` reads only two things to accept or refuse an event: the
//! state of the event's own aggregate (one obligation, one issuer's cap
//! table, one right, ...) and the registrations of the parties the event
//! names. So the validity of a timeline is the validity of each aggregate's
//! own stream of events, given the party registrations, and an append needs
//! to re-check only the streams it touches. The store keeps an index from
//! aggregate to seqs for that (`cli/checkpoints.rs`).

use std::fmt;

use crate::event::{Event, Payload};
use crate::ledger::Ledger;
use crate::values::{MilestoneId, ObligationId, PartyId, RightId, Slug};

/// One aggregate of the ledger state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aggregate {
    /// A party's registration (and updates of its name and kind).
    Party(PartyId),
    /// An issuer's holdings table: every share event of that issuer.
    Issuer(PartyId),
    /// An entity's latest valuation.
    Valuation(PartyId),
    /// The investments one party made (they never refuse on their own, but
    /// their list is state that queries read). One list per investor, so that
    /// an investment reads and rewrites its investor's list, not every one.
    Investor(PartyId),
    Obligation(ObligationId),
    Right(RightId),
    Milestone(MilestoneId),
}

impl Aggregate {
    /// The aggregate an event changes; `None` for a reversal, which changes
    /// which events count and not any state by itself.
    pub fn of(event: &Event) -> Option<Aggregate> {
        Some(match &event.payload {
            Payload::PartyRegistered(p) => Aggregate::Party(p.party.clone()),
            Payload::PartyUpdated(p) => Aggregate::Party(p.party.clone()),
            Payload::SharesIssued(p) => Aggregate::Issuer(p.issuer.clone()),
            Payload::SharesTransferred(p) => Aggregate::Issuer(p.issuer.clone()),
            Payload::SharesCancelled(p) => Aggregate::Issuer(p.issuer.clone()),
            Payload::SharesSplit(p) => Aggregate::Issuer(p.issuer.clone()),
            Payload::Recapitalized(t) | Payload::HoldingsStated(t) => {
                Aggregate::Issuer(t.issuer.clone())
            }
            Payload::ValuationRecorded(p) => Aggregate::Valuation(p.entity.clone()),
            Payload::InvestmentMade(p) => Aggregate::Investor(p.investor.clone()),
            Payload::ObligationIncurred(p) => Aggregate::Obligation(p.obligation.clone()),
            Payload::ObligationSettled(p) => Aggregate::Obligation(p.obligation.clone()),
            Payload::ObligationAmended(p) => Aggregate::Obligation(p.obligation.clone()),
            Payload::ObligationReleased(p) => Aggregate::Obligation(p.obligation.clone()),
            Payload::RightGranted(p) => Aggregate::Right(p.right.clone()),
            Payload::RightAmended(p) => Aggregate::Right(p.right.clone()),
            Payload::RightEnded(p) => Aggregate::Right(p.right.clone()),
            Payload::MilestoneDeclared(p) => Aggregate::Milestone(p.milestone.clone()),
            Payload::MilestoneVerified(p) => Aggregate::Milestone(p.milestone.clone()),
            Payload::EventReversed(_) => return None,
        })
    }

    /// A short text key, `KIND:ID` (`o:azure-commitment`); ids are slugs,
    /// which hold no `:`, so the key is unambiguous.
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// Reads a key written by `key`.
    pub fn parse(key: &str) -> Option<Aggregate> {
        let (kind, id) = key.split_once(':')?;
        let id = Slug::parse(id).ok()?;
        Some(match kind {
            "p" => Aggregate::Party(id),
            "i" => Aggregate::Issuer(id),
            "v" => Aggregate::Valuation(id),
            "n" => Aggregate::Investor(id),
            "o" => Aggregate::Obligation(id),
            "r" => Aggregate::Right(id),
            "m" => Aggregate::Milestone(id),
            _ => return None,
        })
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregate::Party(id) => write!(f, "p:{id}"),
            Aggregate::Issuer(id) => write!(f, "i:{id}"),
            Aggregate::Valuation(id) => write!(f, "v:{id}"),
            Aggregate::Investor(id) => write!(f, "n:{id}"),
            Aggregate::Obligation(id) => write!(f, "o:{id}"),
            Aggregate::Right(id) => write!(f, "r:{id}"),
            Aggregate::Milestone(id) => write!(f, "m:{id}"),
        }
    }
}

impl Ledger {
    /// A ledger holding only the state of `aggregates` (an aggregate that
    /// does not exist here is absent there too).
    pub fn slice<'a>(&self, aggregates: impl IntoIterator<Item = &'a Aggregate>) -> Ledger {
        let mut out = Ledger::new();
        for a in aggregates {
            match a {
                Aggregate::Party(id) => {
                    if let Some(s) = self.parties.get(id) {
                        out.parties.insert(id.clone(), s.clone());
                    }
                }
                Aggregate::Issuer(id) => {
                    if let Some(s) = self.holdings.get(id) {
                        out.holdings.insert(id.clone(), s.clone());
                    }
                }
                Aggregate::Valuation(id) => {
                    if let Some(s) = self.valuations.get(id) {
                        out.valuations.insert(id.clone(), s.clone());
                    }
                }
                Aggregate::Investor(id) => {
                    if let Some(s) = self.investments.get(id) {
                        out.investments.insert(id.clone(), s.clone());
                    }
                }
                Aggregate::Obligation(id) => {
                    if let Some(s) = self.obligations.get(id) {
                        out.obligations.insert(id.clone(), s.clone());
                    }
                }
                Aggregate::Right(id) => {
                    if let Some(s) = self.rights.get(id) {
                        out.rights.insert(id.clone(), s.clone());
                    }
                }
                Aggregate::Milestone(id) => {
                    if let Some(s) = self.milestones.get(id) {
                        out.milestones.insert(id.clone(), s.clone());
                    }
                }
            }
        }
        out
    }

    /// Replaces the state of `aggregates` with their state in `slice`
    /// (removing those that `slice` lacks). The inverse of `slice`.
    pub fn overlay<'a>(
        &mut self,
        aggregates: impl IntoIterator<Item = &'a Aggregate>,
        slice: &Ledger,
    ) {
        fn put<K: Ord + Clone, V: Clone>(
            map: &mut std::collections::BTreeMap<K, V>,
            from: &std::collections::BTreeMap<K, V>,
            id: &K,
        ) {
            match from.get(id) {
                Some(v) => {
                    map.insert(id.clone(), v.clone());
                }
                None => {
                    map.remove(id);
                }
            }
        }
        for a in aggregates {
            match a {
                Aggregate::Party(id) => put(&mut self.parties, &slice.parties, id),
                Aggregate::Issuer(id) => put(&mut self.holdings, &slice.holdings, id),
                Aggregate::Valuation(id) => put(&mut self.valuations, &slice.valuations, id),
                Aggregate::Investor(id) => put(&mut self.investments, &slice.investments, id),
                Aggregate::Obligation(id) => put(&mut self.obligations, &slice.obligations, id),
                Aggregate::Right(id) => put(&mut self.rights, &slice.rights, id),
                Aggregate::Milestone(id) => put(&mut self.milestones, &slice.milestones, id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let id = Slug::parse("ob-1").unwrap();
        for a in [
            Aggregate::Party(id.clone()),
            Aggregate::Issuer(id.clone()),
            Aggregate::Valuation(id.clone()),
            Aggregate::Investor(id.clone()),
            Aggregate::Obligation(id.clone()),
            Aggregate::Right(id.clone()),
            Aggregate::Milestone(id.clone()),
        ] {
            assert_eq!(Aggregate::parse(&a.key()), Some(a));
        }
        assert_eq!(Aggregate::parse("x:ob-1"), None);
        assert_eq!(Aggregate::parse("o:Bad"), None);
        assert_eq!(Aggregate::parse("o"), None);
    }
}
