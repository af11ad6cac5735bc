//! A compact binary encoding of `Ledger` for checkpoints: decoding JSON was
//! most of the time of a query answered from a checkpoint, and of `verify`'s
//! comparison of every checkpoint with the replay.
//!
//! Layout: format byte `1`, then each part of the ledger as a count
//! (varint) and its entries in key order. Strings are a varint length and
//! UTF-8 bytes; decimals are their exact 16-byte form
//! (`Decimal::serialize`), so the scale survives; dates are days since
//! 0001-01-01 (zigzag varint); enums are one byte; `Option` is a byte `0`
//! or `1` before the value. Every id and text goes back through its `parse`,
//! so a damaged checkpoint decodes to `None`, never to an invalid value.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use domain::event::{Instrument, ObligationKind, PartyKind};
use domain::ledger::{
    HoldingTable, Investment, Ledger, MilestoneState, ObligationState, PartyState, RightState,
};
use domain::values::{ClassName, Currency, Date, Dec, EventId, KindSlug, Money, Slug, Text};
use rust_decimal::Decimal;

const FORMAT: u8 = 1;

const PARTY_KINDS: [PartyKind; 8] = [
    PartyKind::Corporation,
    PartyKind::Nonprofit,
    PartyKind::PublicBenefitCorporation,
    PartyKind::Partnership,
    PartyKind::Fund,
    PartyKind::Individual,
    PartyKind::Group,
    PartyKind::Government,
];
const INSTRUMENTS: [Instrument; 6] = [
    Instrument::Equity,
    Instrument::ProfitParticipation,
    Instrument::Convertible,
    Instrument::Safe,
    Instrument::Debt,
    Instrument::Other,
];
const OBLIGATION_KINDS: [ObligationKind; 6] = [
    ObligationKind::PurchaseCommitment,
    ObligationKind::Pledge,
    ObligationKind::FundingCommitment,
    ObligationKind::Loan,
    ObligationKind::RevenueShare,
    ObligationKind::Other,
];

fn index_of<T: PartialEq>(all: &[T], v: &T) -> u8 {
    // Every variant is listed (the arrays' lengths are checked by a test).
    all.iter().position(|x| x == v).unwrap_or(0) as u8
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    /// Normalized (`5.50` as `5.5`), so that equal ledgers encode to equal bytes: `verify`
    /// compares a checkpoint's encoding with its replay's before decoding it.
    fn dec(&mut self, d: &Decimal) {
        self.0.extend_from_slice(&d.normalize().serialize());
    }
    fn date(&mut self, d: &Date) {
        let days = i64::from(d.0.num_days_from_ce());
        self.varint(((days << 1) ^ (days >> 63)) as u64);
    }
    fn money(&mut self, m: &Money) {
        self.dec(&m.amount.0);
        self.str(m.currency.as_str());
    }
    fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut W, &T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }
}

struct R<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> R<'a> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// A count, bounded by the bytes left (every entry takes at least one).
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.bytes.len() - self.pos).then_some(n)
    }
    fn raw(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.count()?;
        std::str::from_utf8(self.raw(n)?).ok()
    }
    fn slug(&mut self) -> Option<Slug> {
        Slug::parse(self.str()?).ok()
    }
    fn text(&mut self) -> Option<Text> {
        Text::parse(self.str()?).ok()
    }
    fn dec(&mut self) -> Option<Decimal> {
        let bytes: [u8; 16] = self.raw(16)?.try_into().ok()?;
        Some(Decimal::deserialize(bytes))
    }
    fn date(&mut self) -> Option<Date> {
        let z = self.varint()?;
        let days = ((z >> 1) as i64) ^ -((z & 1) as i64);
        NaiveDate::from_num_days_from_ce_opt(i32::try_from(days).ok()?).map(Date)
    }
    fn money(&mut self) -> Option<Money> {
        let amount = self.dec()?;
        let currency = Currency::parse(self.str()?).ok()?;
        Some(Money {
            amount: Dec(amount),
            currency,
        })
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut R<'a>) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => f(self).map(Some),
            _ => None,
        }
    }
    fn pick<T: Copy>(&mut self, all: &[T]) -> Option<T> {
        all.get(usize::from(self.u8()?)).copied()
    }
}

pub(crate) fn encode(ledger: &Ledger) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(64 * 1024));
    w.u8(FORMAT);
    w.len(ledger.parties.len());
    for (id, p) in &ledger.parties {
        w.str(id.as_str());
        w.str(p.name.as_str());
        w.u8(index_of(&PARTY_KINDS, &p.kind));
        w.date(&p.registered);
    }
    w.len(ledger.holdings.len());
    for (issuer, table) in &ledger.holdings {
        w.str(issuer.as_str());
        w.len(table.len());
        for ((holder, class), units) in table {
            w.str(holder.as_str());
            w.str(class.as_str());
            w.dec(units);
        }
    }
    w.len(ledger.valuations.len());
    for (entity, (date, money)) in &ledger.valuations {
        w.str(entity.as_str());
        w.date(date);
        w.money(money);
    }
    // One flat list, investor after investor, each in fold order (what a list in fold order
    // of every investment, as older checkpoints hold it, decodes to as well).
    w.len(ledger.investments.values().map(Vec::len).sum());
    for i in ledger.investments.values().flatten() {
        w.str(i.event.as_str());
        w.date(&i.date);
        w.str(i.investor.as_str());
        w.str(i.investee.as_str());
        w.money(&i.amount);
        w.u8(index_of(&INSTRUMENTS, &i.instrument));
        w.opt(&i.label, |w, t| w.str(t.as_str()));
    }
    w.len(ledger.obligations.len());
    for (id, o) in &ledger.obligations {
        w.str(id.as_str());
        w.u8(index_of(&OBLIGATION_KINDS, &o.kind));
        w.str(o.obligor.as_str());
        w.opt(&o.obligee, |w, p| w.str(p.as_str()));
        w.money(&o.amount);
        w.dec(&o.settled);
        w.opt(&o.released, |w, d| w.date(d));
        w.opt(&o.purpose, |w, t| w.str(t.as_str()));
        w.opt(&o.due, |w, d| w.date(d));
        w.date(&o.incurred);
    }
    w.len(ledger.rights.len());
    for (id, r) in &ledger.rights {
        w.str(id.as_str());
        w.str(r.kind.as_str());
        w.str(r.holder.as_str());
        w.str(r.grantor.as_str());
        w.opt(&r.description, |w, t| w.str(t.as_str()));
        w.opt(&r.until, |w, d| w.date(d));
        w.opt(&r.until_milestone, |w, m| w.str(m.as_str()));
        w.date(&r.granted);
        w.opt(&r.ended, |w, d| w.date(d));
    }
    w.len(ledger.milestones.len());
    for (id, m) in &ledger.milestones {
        w.str(id.as_str());
        w.opt(&m.declared, |w, (d, p)| {
            w.date(d);
            w.str(p.as_str());
        });
        w.opt(&m.description, |w, t| w.str(t.as_str()));
        w.opt(&m.verified, |w, (d, t)| {
            w.date(d);
            w.str(t.as_str());
        });
    }
    w.0
}

pub(crate) fn decode(bytes: &[u8]) -> Option<Ledger> {
    let mut r = R { bytes, pos: 0 };
    if r.u8()? != FORMAT {
        return None;
    }
    let mut ledger = Ledger::new();
    for _ in 0..r.count()? {
        let id = r.slug()?;
        let state = PartyState {
            name: r.text()?,
            kind: r.pick(&PARTY_KINDS)?,
            registered: r.date()?,
        };
        ledger.parties.insert(id, state);
    }
    for _ in 0..r.count()? {
        let issuer = r.slug()?;
        let mut table = HoldingTable::new();
        for _ in 0..r.count()? {
            let holder = r.slug()?;
            let class = ClassName::parse(r.str()?).ok()?;
            table.insert((holder, class), r.dec()?);
        }
        ledger.holdings.insert(issuer, table);
    }
    for _ in 0..r.count()? {
        let entity = r.slug()?;
        let valuation = (r.date()?, r.money()?);
        ledger.valuations.insert(entity, valuation);
    }
    for _ in 0..r.count()? {
        let investment = Investment {
            event: EventId::parse(r.str()?).ok()?,
            date: r.date()?,
            investor: r.slug()?,
            investee: r.slug()?,
            amount: r.money()?,
            instrument: r.pick(&INSTRUMENTS)?,
            label: r.opt(R::text)?,
        };
        ledger
            .investments
            .entry(investment.investor.clone())
            .or_default()
            .push(investment);
    }
    let mut obligations = BTreeMap::new();
    for _ in 0..r.count()? {
        let id = r.slug()?;
        let state = ObligationState {
            obligation: id.clone(),
            kind: r.pick(&OBLIGATION_KINDS)?,
            obligor: r.slug()?,
            obligee: r.opt(R::slug)?,
            amount: r.money()?,
            settled: r.dec()?,
            released: r.opt(R::date)?,
            purpose: r.opt(R::text)?,
            due: r.opt(R::date)?,
            incurred: r.date()?,
        };
        obligations.insert(id, state);
    }
    ledger.obligations = obligations;
    for _ in 0..r.count()? {
        let id = r.slug()?;
        let state = RightState {
            right: id.clone(),
            kind: KindSlug::parse(r.str()?).ok()?,
            holder: r.slug()?,
            grantor: r.slug()?,
            description: r.opt(R::text)?,
            until: r.opt(R::date)?,
            until_milestone: r.opt(R::slug)?,
            granted: r.date()?,
            ended: r.opt(R::date)?,
        };
        ledger.rights.insert(id, state);
    }
    for _ in 0..r.count()? {
        let id = r.slug()?;
        let state = MilestoneState {
            declared: r.opt(|r| Some((r.date()?, r.slug()?)))?,
            description: r.opt(R::text)?,
            verified: r.opt(|r| Some((r.date()?, r.text()?)))?,
        };
        ledger.milestones.insert(id, state);
    }
    (r.pos == bytes.len()).then_some(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_listed_once() {
        for (i, k) in PARTY_KINDS.iter().enumerate() {
            assert_eq!(usize::from(index_of(&PARTY_KINDS, k)), i);
        }
        for (i, k) in INSTRUMENTS.iter().enumerate() {
            assert_eq!(usize::from(index_of(&INSTRUMENTS, k)), i);
        }
        for (i, k) in OBLIGATION_KINDS.iter().enumerate() {
            assert_eq!(usize::from(index_of(&OBLIGATION_KINDS, k)), i);
        }
        // A new variant must be added to the arrays: these matches stop compiling.
        for k in PARTY_KINDS {
            match k {
                PartyKind::Corporation
                | PartyKind::Nonprofit
                | PartyKind::PublicBenefitCorporation
                | PartyKind::Partnership
                | PartyKind::Fund
                | PartyKind::Individual
                | PartyKind::Group
                | PartyKind::Government => {}
            }
        }
        for k in INSTRUMENTS {
            match k {
                Instrument::Equity
                | Instrument::ProfitParticipation
                | Instrument::Convertible
                | Instrument::Safe
                | Instrument::Debt
                | Instrument::Other => {}
            }
        }
        for k in OBLIGATION_KINDS {
            match k {
                ObligationKind::PurchaseCommitment
                | ObligationKind::Pledge
                | ObligationKind::FundingCommitment
                | ObligationKind::Loan
                | ObligationKind::RevenueShare
                | ObligationKind::Other => {}
            }
        }
    }

    #[test]
    fn the_sample_round_trips_and_damage_is_refused() {
        let mut ledger = Ledger::new();
        for text in [
            include_str!("../../../events/01-parties.jsonl"),
            include_str!("../../../events/02-investments.jsonl"),
            include_str!("../../../events/03-ownership.jsonl"),
            include_str!("../../../events/04-recapitalization.jsonl"),
            include_str!("../../../events/05-obligations.jsonl"),
            include_str!("../../../events/06-rights.jsonl"),
            include_str!("../../../events/07-amendment-2026-04.jsonl"),
            concat!(
                r#"{"id": "d", "type": "milestone_declared", "effective": "2030-01-01", "milestone": "agi", "declared_by": "openai-group", "description": "AGI"}"#,
                "\n",
                r#"{"id": "v", "type": "milestone_verified", "effective": "2030-02-01", "milestone": "agi", "verified_by": "the panel"}"#,
                "\n",
            ),
        ] {
            for (_, e) in &domain::parse_jsonl(text).expect("the sample parses") {
                ledger.apply(e).expect("the sample applies");
            }
        }
        assert!(!ledger.rights.is_empty());
        assert!(!ledger.milestones.is_empty() && !ledger.valuations.is_empty());
        assert!(!ledger.obligations.is_empty() && !ledger.holdings.is_empty());
        let bytes = encode(&ledger);
        assert_eq!(decode(&bytes), Some(ledger));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
    }
}
