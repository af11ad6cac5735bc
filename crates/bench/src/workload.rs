//! A synthetic, valid workload of N events in the format of EVENTS.md.
//!
//! The generator is deterministic (a seeded SplitMix64) and builds the
//! workload as plain data first ([`Workload`]), then writes it as JSON Lines
//! ([`Workload::write_jsonl`]) or as a ledger-cli journal
//! ([`Workload::write_ledger`]).
//!
//! Validity over the whole timeline, in (effective, seq) order, holds by
//! construction rather than by luck:
//!
//! - every party, entity holder and the first obligations are set up on the
//!   first day; later parties and obligations are registered in the stream
//!   and referenced only afterwards (the stream's dates never decrease);
//! - each holder may transfer away at most 90 % of the units it was issued
//!   on the first day, whatever it receives, so no ordering of transfers
//!   (backdated ones included) can make a holding negative;
//! - each obligation may be settled at most 80 % of its original amount over
//!   all its settlements, backdated ones included; amendments only raise the
//!   amount; releases are never followed (in effective time) by a settlement;
//! - backdated events are settlements (on an obligation incurred, and not
//!   released, by their date) or transfers, dated 30 to 720 days before the
//!   events around them;
//! - reversals undo earlier settlements only, are dated on or after them,
//!   and never reverse the same event twice. Undoing a settlement can only
//!   lower what is settled, so the timeline stays valid.
//!
//! Obligation 0 (`ob-0`, USD, incurred on the first day, never released or
//! amended) keeps its 20 % headroom for the benchmark's single appends: see
//! [`Workload::probe_settlement`].

use std::io::{self, Write};

use chrono::{Days, NaiveDate};
use serde_json::{json, Map, Value};

/// Day 0 of the workload: 2016-01-01.
pub fn first_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2016, 1, 1).expect("2016-01-01 is a valid date")
}

/// The last day of the range, 2025-12-31, as a day number.
pub const LAST_DAY: u32 = 3652;

/// The smallest workload the generator makes (the first-day setup alone is
/// a few hundred events).
pub const MIN_EVENTS: usize = 1000;

/// The obligation kept open with headroom for the benchmark's single appends.
pub const PROBE_OBLIGATION: u32 = 0;

/// The calendar date of a day number.
pub fn date(day: u32) -> NaiveDate {
    first_date() + Days::new(u64::from(day))
}

/// `YYYY-MM-DD` of a day number.
pub fn date_str(day: u32) -> String {
    date(day).format("%Y-%m-%d").to_string()
}

/// SplitMix64: small, fast, good enough for a workload, and stable across
/// platforms and versions (unlike a library's default generator).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// An index into a non-empty slice of length `len`.
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `per_10000 / 10000`.
    fn chance(&mut self, per_10000: u64) -> bool {
        self.below(10_000) < per_10000
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Currency {
    Usd,
    Eur,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
        }
    }
}

const PARTY_KINDS: [&str; 7] = [
    "fund",
    "nonprofit",
    "public_benefit_corporation",
    "partnership",
    "individual",
    "group",
    "government",
];

const OBLIGATION_KINDS: [&str; 6] = [
    "purchase_commitment",
    "pledge",
    "funding_commitment",
    "loan",
    "revenue_share",
    "other",
];

const RIGHT_KINDS: [&str; 5] = [
    "ip_rights",
    "api_exclusivity",
    "right_of_first_refusal",
    "revenue_share",
    "board_seat",
];

#[derive(Clone, Debug)]
pub struct Party {
    pub kind: &'static str,
}

#[derive(Clone, Debug)]
pub struct Obligation {
    pub kind: &'static str,
    pub obligor: u32,
    pub obligee: Option<u32>,
    pub currency: Currency,
    /// The original amount, in cents.
    pub amount: u64,
    pub incurred: u32,
    /// The amount after the latest amendment in the stream, in cents.
    current: u64,
    /// What all settlements together may still take, in cents.
    budget: u64,
    released: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Right {
    pub kind: &'static str,
    pub holder: u32,
    pub grantor: u32,
    pub until: Option<u32>,
}

/// One event, without its id (the id is `ev-<position in the file, from 1>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    PartyRegistered {
        party: u32,
    },
    SharesIssued {
        issuer: u32,
        holder: u32,
        units: u64,
    },
    SharesTransferred {
        issuer: u32,
        from: u32,
        to: u32,
        units: u64,
    },
    /// `post_money` in whole USD.
    ValuationRecorded {
        entity: u32,
        post_money: u64,
    },
    /// `amount` in USD cents.
    InvestmentMade {
        investor: u32,
        investee: u32,
        amount: u64,
    },
    ObligationIncurred {
        obligation: u32,
    },
    /// `amount` in cents of the obligation's currency.
    ObligationSettled {
        obligation: u32,
        amount: u64,
    },
    /// The new total, in cents.
    ObligationAmended {
        obligation: u32,
        amount: u64,
    },
    ObligationReleased {
        obligation: u32,
    },
    RightGranted {
        right: u32,
    },
    RightEnded {
        right: u32,
    },
    /// `target` is the index in [`Workload::events`] of the reversed event.
    EventReversed {
        target: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub day: u32,
    /// Dated earlier than the events around it in the file.
    pub backdated: bool,
    pub kind: Kind,
}

/// Counts of a workload, for tests and the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: usize,
    pub parties: usize,
    pub entities: usize,
    pub obligations: usize,
    pub settlements: usize,
    pub transfers: usize,
    pub backdated: usize,
    pub reversals: usize,
    pub amendments: usize,
    pub releases: usize,
    pub rights_granted: usize,
    pub rights_ended: usize,
    pub investments: usize,
    pub valuations: usize,
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub seed: u64,
    pub parties: Vec<Party>,
    pub entities: usize,
    pub obligations: Vec<Obligation>,
    pub rights: Vec<Right>,
    pub events: Vec<Event>,
}

/// An entity that issues shares and the holders it issued them to on day 0,
/// each with the units it may still transfer away.
struct Entity {
    issuer: u32,
    holders: Vec<(u32, u64)>,
}

struct Gen {
    rng: Rng,
    w: Workload,
    registered: u32,
    entities: Vec<Entity>,
    /// Obligations that stream settlements, amendments and releases may pick.
    open: Vec<u32>,
    /// Event indexes of settlements not yet reversed.
    settlements: Vec<u32>,
    /// Rights not yet ended.
    active_rights: Vec<u32>,
}

/// Generates a workload of exactly `n` events (at least [`MIN_EVENTS`]).
pub fn generate(n: usize, seed: u64) -> Result<Workload, String> {
    if n < MIN_EVENTS {
        return Err(format!(
            "a workload needs at least {MIN_EVENTS} events, {n} asked"
        ));
    }
    let parties = (n / 1000).max(20);
    let obligations = (n / 500).max(10);
    let mut g = Gen {
        rng: Rng::new(seed),
        w: Workload {
            seed,
            parties: Vec::with_capacity(parties),
            entities: (parties / 2).clamp(4, 36),
            obligations: Vec::with_capacity(obligations),
            rights: Vec::new(),
            events: Vec::with_capacity(n),
        },
        registered: 0,
        entities: Vec::new(),
        open: Vec::new(),
        settlements: Vec::new(),
        active_rights: Vec::new(),
    };
    let first_parties = parties * 4 / 5;
    let first_obligations = (obligations / 5).max(4);
    g.setup(first_parties, first_obligations);
    let setup = g.w.events.len();
    if setup >= n {
        return Err(format!(
            "{n} events do not fit the first-day setup of {setup}"
        ));
    }

    let m = (n - setup) as u64;
    let later_parties = (parties - first_parties) as u64;
    let later_obligations = (obligations - first_obligations) as u64;
    let (mut next_party, mut next_obligation) = (0u64, 0u64);
    for i in 0..m {
        let day = 1 + (i * u64::from(LAST_DAY - 1) / (m - 1).max(1)) as u32;
        if next_party < later_parties && i >= next_party * m / later_parties {
            next_party += 1;
            g.register(day);
            continue;
        }
        if next_obligation < later_obligations && i >= next_obligation * m / later_obligations {
            next_obligation += 1;
            g.incur(day);
            continue;
        }
        let r = g.rng.below(10_000);
        let done = match r {
            0..200 => g.backdate(day),
            200..250 => g.reverse(day),
            250..400 => g.value(day),
            400..440 => g.invest(day),
            440..445 => g.amend(day),
            445..450 => g.release(day),
            450..490 => g.grant(day),
            490..505 => g.end_right(day),
            505..5505 => g.settle(day),
            _ => false,
        };
        if !done {
            g.transfer(day, false);
        }
    }
    debug_assert_eq!(g.w.events.len(), n);
    Ok(g.w)
}

impl Gen {
    fn push(&mut self, day: u32, backdated: bool, kind: Kind) -> u32 {
        let index = self.w.events.len() as u32;
        self.w.events.push(Event {
            day,
            backdated,
            kind,
        });
        index
    }

    /// Two distinct registered parties.
    fn two_parties(&mut self) -> (u32, u32) {
        let a = self.rng.below(u64::from(self.registered)) as u32;
        let mut b = self.rng.below(u64::from(self.registered - 1)) as u32;
        if b >= a {
            b += 1;
        }
        (a, b)
    }

    fn setup(&mut self, parties: usize, obligations: usize) {
        for _ in 0..parties {
            self.register(0);
        }
        let holders_each = 8.min(parties - 1);
        for e in 0..self.w.entities as u32 {
            let mut holders: Vec<(u32, u64)> = Vec::with_capacity(holders_each);
            while holders.len() < holders_each {
                let p = self.rng.below(parties as u64) as u32;
                if p == e || holders.iter().any(|&(h, _)| h == p) {
                    continue;
                }
                let units = self.rng.range(100_000_000, 1_000_000_000);
                self.push(
                    0,
                    false,
                    Kind::SharesIssued {
                        issuer: e,
                        holder: p,
                        units,
                    },
                );
                holders.push((p, units / 10 * 9));
            }
            self.entities.push(Entity { issuer: e, holders });
            self.value(0);
        }
        for _ in 0..obligations {
            self.incur(0);
        }
    }

    fn register(&mut self, day: u32) {
        let party = self.w.parties.len() as u32;
        let kind = if (party as usize) < self.w.entities {
            "corporation"
        } else {
            PARTY_KINDS[party as usize % PARTY_KINDS.len()]
        };
        self.w.parties.push(Party { kind });
        self.registered += 1;
        self.push(day, false, Kind::PartyRegistered { party });
    }

    fn incur(&mut self, day: u32) {
        let obligation = self.w.obligations.len() as u32;
        let (obligor, other) = self.two_parties();
        let kind = OBLIGATION_KINDS[self.rng.index(OBLIGATION_KINDS.len())];
        let probe = obligation == PROBE_OBLIGATION;
        let currency = if !probe && self.rng.chance(1000) {
            Currency::Eur
        } else {
            Currency::Usd
        };
        let amount = self.rng.range(1_000_000, 1_000_000_000) * 100;
        self.w.obligations.push(Obligation {
            kind: if probe { "purchase_commitment" } else { kind },
            obligor,
            obligee: (kind != "pledge" || probe).then_some(other),
            currency,
            amount,
            incurred: day,
            current: amount,
            budget: amount / 5 * 4,
            released: None,
        });
        self.open.push(obligation);
        self.push(day, false, Kind::ObligationIncurred { obligation });
    }

    /// A settlement amount for an obligation: 0.02 % to 0.2 % of it.
    fn settlement_amount(&mut self, obligation: u32) -> u64 {
        let amount = self.w.obligations[obligation as usize].amount;
        self.rng
            .range((amount / 5000).max(1), (amount / 500).max(1))
    }

    fn record_settlement(&mut self, day: u32, backdated: bool, obligation: u32, amount: u64) {
        self.w.obligations[obligation as usize].budget -= amount;
        let index = self.push(
            day,
            backdated,
            Kind::ObligationSettled { obligation, amount },
        );
        self.settlements.push(index);
    }

    fn settle(&mut self, day: u32) -> bool {
        for _ in 0..3 {
            if self.open.is_empty() {
                return false;
            }
            let j = self.rng.index(self.open.len());
            let obligation = self.open[j];
            let amount = self.settlement_amount(obligation);
            if amount <= self.w.obligations[obligation as usize].budget {
                self.record_settlement(day, false, obligation, amount);
                return true;
            }
            // Settled up to its headroom: no more stream activity on it.
            self.open.swap_remove(j);
        }
        false
    }

    fn transfer(&mut self, day: u32, backdated: bool) {
        let units = self.rng.range(1, 10_000);
        let e = self.rng.index(self.entities.len());
        let k = self.entities[e].holders.len();
        let start = self.rng.index(k);
        // A holder that can still give `units` away; with the budgets of
        // `setup` the first one tried always can.
        let found = (0..k)
            .map(|o| (start + o) % k)
            .find(|&h| self.entities[e].holders[h].1 >= units);
        let Some(from) = found else {
            // Not reached with the budgets of `setup`; stays valid regardless.
            let entity = self.entities[e].issuer;
            let post_money = 1_000_000;
            self.push(
                day,
                backdated,
                Kind::ValuationRecorded { entity, post_money },
            );
            return;
        };
        let mut to = self.rng.index(k - 1);
        if to >= from {
            to += 1;
        }
        let entity = &mut self.entities[e];
        entity.holders[from].1 -= units;
        let kind = Kind::SharesTransferred {
            issuer: entity.issuer,
            from: entity.holders[from].0,
            to: entity.holders[to].0,
            units,
        };
        self.push(day, backdated, kind);
    }

    fn backdate(&mut self, day: u32) -> bool {
        if day <= 31 {
            return false;
        }
        let back = self.rng.range(30, 720.min(u64::from(day) - 1)) as u32;
        let bday = day - back;
        if self.rng.chance(3000) {
            self.transfer(bday, true);
            return true;
        }
        for _ in 0..10 {
            let obligation = self.rng.index(self.w.obligations.len()) as u32;
            let o = &self.w.obligations[obligation as usize];
            if o.incurred > bday || o.released.is_some_and(|r| r <= bday) {
                continue;
            }
            let amount = self.settlement_amount(obligation);
            if amount <= self.w.obligations[obligation as usize].budget {
                self.record_settlement(bday, true, obligation, amount);
                return true;
            }
        }
        false
    }

    fn reverse(&mut self, day: u32) -> bool {
        let len = self.settlements.len();
        if len == 0 {
            return false;
        }
        let recent = len.saturating_sub(2000);
        let j = recent + self.rng.index(len - recent);
        let target = self.settlements.swap_remove(j);
        debug_assert!(self.w.events[target as usize].day <= day);
        self.push(day, false, Kind::EventReversed { target });
        true
    }

    fn value(&mut self, day: u32) -> bool {
        let e = self.rng.index(self.entities.len().max(1));
        let Some(entity) = self.entities.get(e).map(|e| e.issuer) else {
            return false;
        };
        let post_money = self.rng.range(10_000_000, 1_000_000_000_000);
        self.push(day, false, Kind::ValuationRecorded { entity, post_money });
        true
    }

    fn invest(&mut self, day: u32) -> bool {
        let (investor, investee) = self.two_parties();
        let amount = self.rng.range(100_000, 1_000_000_000) * 100;
        self.push(
            day,
            false,
            Kind::InvestmentMade {
                investor,
                investee,
                amount,
            },
        );
        true
    }

    fn amend(&mut self, day: u32) -> bool {
        if self.open.is_empty() {
            return false;
        }
        let obligation = self.open[self.rng.index(self.open.len())];
        if obligation == PROBE_OBLIGATION {
            return false;
        }
        let o = &mut self.w.obligations[obligation as usize];
        // Only upwards: a higher total never breaks a settlement.
        o.current += o.amount / 10;
        let amount = o.current;
        self.push(day, false, Kind::ObligationAmended { obligation, amount });
        true
    }

    fn release(&mut self, day: u32) -> bool {
        if self.open.is_empty() {
            return false;
        }
        let j = self.rng.index(self.open.len());
        let obligation = self.open[j];
        if obligation == PROBE_OBLIGATION {
            return false;
        }
        self.open.swap_remove(j);
        self.w.obligations[obligation as usize].released = Some(day);
        self.push(day, false, Kind::ObligationReleased { obligation });
        true
    }

    fn grant(&mut self, day: u32) -> bool {
        let right = self.w.rights.len() as u32;
        let (holder, grantor) = self.two_parties();
        let until = self
            .rng
            .chance(5000)
            .then(|| day + self.rng.range(180, 2500) as u32);
        let kind = RIGHT_KINDS[self.rng.index(RIGHT_KINDS.len())];
        self.w.rights.push(Right {
            kind,
            holder,
            grantor,
            until,
        });
        self.active_rights.push(right);
        self.push(day, false, Kind::RightGranted { right });
        true
    }

    fn end_right(&mut self, day: u32) -> bool {
        if self.active_rights.is_empty() {
            return false;
        }
        let j = self.rng.index(self.active_rights.len());
        let right = self.active_rights.swap_remove(j);
        self.push(day, false, Kind::RightEnded { right });
        true
    }
}

/// `12345` cents as `"123.45"`.
pub fn cents(amount: u64) -> String {
    format!("{}.{:02}", amount / 100, amount % 100)
}

fn money(amount_cents: u64, currency: Currency) -> Value {
    json!({"amount": cents(amount_cents), "currency": currency.code()})
}

pub fn party_id(p: u32) -> String {
    format!("p{p}")
}

pub fn obligation_id(o: u32) -> String {
    format!("ob-{o}")
}

pub fn right_id(r: u32) -> String {
    format!("rt-{r}")
}

/// The id of the event at `index` in [`Workload::events`].
pub fn event_id(index: u32) -> String {
    format!("ev-{}", index + 1)
}

impl Workload {
    /// The latest effective date of the workload, as a day number.
    pub fn last_day(&self) -> u32 {
        self.events.iter().map(|e| e.day).max().unwrap_or(0)
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            events: self.events.len(),
            parties: self.parties.len(),
            entities: self.entities,
            obligations: self.obligations.len(),
            ..Stats::default()
        };
        for e in &self.events {
            s.backdated += usize::from(e.backdated);
            match e.kind {
                Kind::ObligationSettled { .. } => s.settlements += 1,
                Kind::SharesTransferred { .. } => s.transfers += 1,
                Kind::EventReversed { .. } => s.reversals += 1,
                Kind::ObligationAmended { .. } => s.amendments += 1,
                Kind::ObligationReleased { .. } => s.releases += 1,
                Kind::RightGranted { .. } => s.rights_granted += 1,
                Kind::RightEnded { .. } => s.rights_ended += 1,
                Kind::InvestmentMade { .. } => s.investments += 1,
                Kind::ValuationRecorded { .. } => s.valuations += 1,
                _ => {}
            }
        }
        s
    }

    /// One event as a JSON object of EVENTS.md.
    pub fn event_json(&self, index: u32) -> Value {
        let e = &self.events[index as usize];
        let mut m = Map::new();
        m.insert("id".into(), event_id(index).into());
        m.insert("effective".into(), date_str(e.day).into());
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let p = |x: u32| Value::from(party_id(x));
        let type_name = match &e.kind {
            Kind::PartyRegistered { party } => {
                put("party", p(*party));
                put("name", format!("Party {party}").into());
                put("kind", self.parties[*party as usize].kind.into());
                "party_registered"
            }
            Kind::SharesIssued {
                issuer,
                holder,
                units,
            } => {
                put("issuer", p(*issuer));
                put("holder", p(*holder));
                put("units", units.to_string().into());
                "shares_issued"
            }
            Kind::SharesTransferred {
                issuer,
                from,
                to,
                units,
            } => {
                put("issuer", p(*issuer));
                put("from", p(*from));
                put("to", p(*to));
                put("units", units.to_string().into());
                "shares_transferred"
            }
            Kind::ValuationRecorded { entity, post_money } => {
                put("entity", p(*entity));
                put("post_money", money(post_money * 100, Currency::Usd));
                "valuation_recorded"
            }
            Kind::InvestmentMade {
                investor,
                investee,
                amount,
            } => {
                put("investor", p(*investor));
                put("investee", p(*investee));
                put("amount", money(*amount, Currency::Usd));
                put("instrument", "equity".into());
                "investment_made"
            }
            Kind::ObligationIncurred { obligation } => {
                let o = &self.obligations[*obligation as usize];
                put("obligation", obligation_id(*obligation).into());
                put("kind", o.kind.into());
                put("obligor", p(o.obligor));
                if let Some(obligee) = o.obligee {
                    put("obligee", p(obligee));
                }
                put("amount", money(o.amount, o.currency));
                put("due", date_str(o.incurred + 3650).into());
                "obligation_incurred"
            }
            Kind::ObligationSettled { obligation, amount } => {
                let o = &self.obligations[*obligation as usize];
                put("obligation", obligation_id(*obligation).into());
                put("amount", money(*amount, o.currency));
                put("reference", format!("inv-{}", index + 1).into());
                "obligation_settled"
            }
            Kind::ObligationAmended { obligation, amount } => {
                let o = &self.obligations[*obligation as usize];
                put("obligation", obligation_id(*obligation).into());
                put("amount", money(*amount, o.currency));
                put("reason", "scope extended".into());
                "obligation_amended"
            }
            Kind::ObligationReleased { obligation } => {
                put("obligation", obligation_id(*obligation).into());
                put("reason", "forgiven".into());
                "obligation_released"
            }
            Kind::RightGranted { right } => {
                let r = &self.rights[*right as usize];
                put("right", right_id(*right).into());
                put("kind", r.kind.into());
                put("holder", p(r.holder));
                put("grantor", p(r.grantor));
                if let Some(until) = r.until {
                    put("until", date_str(until).into());
                }
                "right_granted"
            }
            Kind::RightEnded { right } => {
                put("right", right_id(*right).into());
                put("reason", "terminated".into());
                "right_ended"
            }
            Kind::EventReversed { target } => {
                put("reverses", event_id(*target).into());
                put("reason", "booked in error".into());
                "event_reversed"
            }
        };
        m.insert("type".into(), type_name.into());
        Value::Object(m)
    }

    /// The whole workload as JSON Lines, one event a line, in file order.
    pub fn write_jsonl<W: Write>(&self, mut out: W) -> io::Result<()> {
        for i in 0..self.events.len() as u32 {
            serde_json::to_writer(&mut out, &self.event_json(i))?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// A small settlement of 1.00 on the probe obligation, as one JSON line:
    /// valid on any day from the first, in any number up to its headroom.
    pub fn probe_settlement(&self, id: &str, day: u32) -> String {
        let o = &self.obligations[PROBE_OBLIGATION as usize];
        json!({
            "id": id,
            "type": "obligation_settled",
            "effective": date_str(day),
            "obligation": obligation_id(PROBE_OBLIGATION),
            "amount": money(100, o.currency),
            "reference": "bench",
        })
        .to_string()
    }

    /// The same workload as a ledger-cli journal, following the mapping of
    /// `accord export --format ledger` in CLI.md (obligations, settlements,
    /// amendments, releases and investments; reversed events left out).
    /// Transactions are written in effective order.
    pub fn write_ledger<W: Write>(&self, mut out: W) -> io::Result<()> {
        let mut reversed = vec![false; self.events.len()];
        for e in &self.events {
            if let Kind::EventReversed { target } = e.kind {
                reversed[target as usize] = true;
            }
        }
        let mut order: Vec<u32> = (0..self.events.len() as u32).collect();
        order.sort_by_key(|&i| (self.events[i as usize].day, i));
        // (current amount, settled) of each obligation, in cents.
        let mut state: Vec<(u64, u64)> = self.obligations.iter().map(|o| (o.amount, 0)).collect();
        let tx = |out: &mut W, day: u32, what: &str, a: &str, b: &str, cur: &str, amount: i128| {
            let amount = signed_cents(amount);
            let minus = signed_cents_neg(&amount);
            writeln!(
                out,
                "{} {what}\n    {a}  {cur} {amount}\n    {b}  {cur} {minus}\n",
                date_str(day)
            )
        };
        for i in order {
            let e = &self.events[i as usize];
            if reversed[i as usize] {
                continue;
            }
            let id = event_id(i);
            match e.kind {
                Kind::ObligationIncurred { obligation } => {
                    let o = &self.obligations[obligation as usize];
                    let (x, obligor) = (obligation_id(obligation), party_id(o.obligor));
                    tx(
                        &mut out,
                        e.day,
                        &format!("{id} obligation_incurred {x}"),
                        &format!("obligations:{obligor}:{x}"),
                        &format!("commitments:{obligor}"),
                        o.currency.code(),
                        -i128::from(o.amount),
                    )?;
                }
                Kind::ObligationSettled { obligation, amount } => {
                    let o = &self.obligations[obligation as usize];
                    state[obligation as usize].1 += amount;
                    let (x, obligor) = (obligation_id(obligation), party_id(o.obligor));
                    tx(
                        &mut out,
                        e.day,
                        &format!("{id} obligation_settled {x}"),
                        &format!("obligations:{obligor}:{x}"),
                        &format!("settlements:{obligor}"),
                        o.currency.code(),
                        i128::from(amount),
                    )?;
                }
                Kind::ObligationAmended { obligation, amount } => {
                    let o = &self.obligations[obligation as usize];
                    let change = i128::from(amount) - i128::from(state[obligation as usize].0);
                    state[obligation as usize].0 = amount;
                    let (x, obligor) = (obligation_id(obligation), party_id(o.obligor));
                    tx(
                        &mut out,
                        e.day,
                        &format!("{id} obligation_amended {x}"),
                        &format!("obligations:{obligor}:{x}"),
                        &format!("commitments:{obligor}"),
                        o.currency.code(),
                        -change,
                    )?;
                }
                Kind::ObligationReleased { obligation } => {
                    let o = &self.obligations[obligation as usize];
                    let (amount, settled) = state[obligation as usize];
                    let (x, obligor) = (obligation_id(obligation), party_id(o.obligor));
                    tx(
                        &mut out,
                        e.day,
                        &format!("{id} obligation_released {x}"),
                        &format!("obligations:{obligor}:{x}"),
                        &format!("releases:{obligor}"),
                        o.currency.code(),
                        i128::from(amount) - i128::from(settled),
                    )?;
                }
                Kind::InvestmentMade {
                    investor,
                    investee,
                    amount,
                } => {
                    let (a, b) = (party_id(investor), party_id(investee));
                    tx(
                        &mut out,
                        e.day,
                        &format!("{id} investment_made"),
                        &format!("investments:{a}:{b}"),
                        &format!("funding:{a}"),
                        "USD",
                        i128::from(amount),
                    )?;
                }
                _ => {}
            }
        }
        out.flush()
    }
}

/// Signed cents as a plain decimal: `-12345` as `"-123.45"`.
fn signed_cents(amount: i128) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// The negation of a decimal written by [`signed_cents`].
fn signed_cents_neg(amount: &str) -> String {
    match amount.strip_prefix('-') {
        Some(rest) => rest.to_string(),
        None if amount.chars().all(|c| c == '0' || c == '.') => amount.to_string(),
        None => format!("-{amount}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_span_ten_years() {
        assert_eq!(date_str(0), "2016-01-01");
        assert_eq!(date_str(LAST_DAY), "2025-12-31");
    }

    #[test]
    fn cents_are_written_exactly() {
        assert_eq!(cents(12_345), "123.45");
        assert_eq!(cents(5), "0.05");
        assert_eq!(signed_cents(-12_345), "-123.45");
        assert_eq!(signed_cents_neg("-1.00"), "1.00");
        assert_eq!(signed_cents_neg("1.00"), "-1.00");
        assert_eq!(signed_cents_neg("0.00"), "0.00");
    }

    #[test]
    fn generation_is_deterministic_and_exact_in_size() {
        let a = generate(5000, 7).unwrap();
        let b = generate(5000, 7).unwrap();
        assert_eq!(a.events, b.events);
        assert_eq!(a.events.len(), 5000);
        assert_ne!(generate(5000, 8).unwrap().events, a.events);
        assert_eq!(a.last_day(), LAST_DAY);
    }
}
