//! The small event vocabulary of the property tests: four parties, six
//! amounts, two obligations, two rights and two milestones, so that random
//! events often refer to each other, validly or not.
//!
//! [`Vocabulary::build`] makes the JSON of one event of any type of
//! `EVENT_TYPES` from a few random bytes; [`Vocabulary::events`] is the
//! proptest strategy over those bytes. `crates/domain/tests/no_panic.rs`
//! feeds the events to the parser and the planner,
//! `tests/model.rs` appends them to a real store; each sets its own
//! [`Vocabulary`] (how many ids, how many dates, how often euros) and weights
//! the event types as it needs.

use chrono::{Duration, NaiveDate};
use domain::EVENT_TYPES;
use proptest::prelude::*;
use serde_json::{json, Value};

pub const PARTIES: [&str; 4] = ["acme", "beta", "carol", "dave"];
pub const AMOUNTS: [&str; 6] = ["1", "5", "10", "100", "0.5", "250"];
pub const OBLIGATIONS: [&str; 2] = ["ob-a", "ob-b"];
pub const RIGHTS: [&str; 2] = ["r-a", "r-b"];
pub const MILESTONES: [&str; 2] = ["m1", "m2"];

/// `xs[r]`, wrapping around.
pub fn pick<'a>(r: u8, xs: &[&'a str]) -> &'a str {
    xs[r as usize % xs.len()]
}

/// The index of an event type in `EVENT_TYPES`.
pub fn ty(name: &str) -> usize {
    EVENT_TYPES
        .iter()
        .position(|t| *t == name)
        .unwrap_or_else(|| panic!("no event type {name}"))
}

/// The knobs of the vocabulary.
#[derive(Clone, Copy, Debug)]
pub struct Vocabulary {
    /// Event ids are `e0` to `e{ids - 1}` (reversals name the same ids).
    pub ids: u8,
    /// Effective dates are `days` dates 30 days apart from 2021-01-01.
    pub days: u16,
    /// One amount in `eur_one_in` is in EUR, the rest in USD.
    pub eur_one_in: u8,
    /// Whether the two holders of a stated or recapitalized table are always
    /// two parties (otherwise the same party may stand twice).
    pub distinct_holders: bool,
}

impl Vocabulary {
    /// The `day`th date of the grid (wrapping around).
    pub fn date(&self, day: u16) -> String {
        (NaiveDate::from_ymd_opt(2021, 1, 1).unwrap()
            + Duration::days(30 * i64::from(day % self.days)))
        .to_string()
    }

    /// An amount of the vocabulary, in EUR or USD.
    pub fn money(&self, a: u8, c: u8) -> Value {
        let currency = if c % self.eur_one_in < 1 {
            "EUR"
        } else {
            "USD"
        };
        json!({"amount": pick(a, &AMOUNTS), "currency": currency})
    }

    /// One event of type `EVENT_TYPES[ty]` (wrapping around), its fields
    /// drawn from `r`, effective on the `day`th date of the grid.
    pub fn build(&self, id: u8, ty: usize, r: [u8; 8], day: u16) -> Value {
        let p = |i: usize| pick(r[i], &PARTIES);
        let money = |a: usize, c: usize| self.money(r[a], r[c]);
        let mut v = match EVENT_TYPES[ty % EVENT_TYPES.len()] {
            "party_registered" => json!({"party": p(0), "name": "N", "kind": "corporation"}),
            "party_updated" => json!({"party": p(0), "name": "M"}),
            "shares_issued" => {
                json!({"issuer": p(0), "holder": p(1), "units": pick(r[2], &AMOUNTS)})
            }
            "shares_transferred" => {
                json!({"issuer": p(0), "from": p(1), "to": p(2), "units": pick(r[3], &AMOUNTS)})
            }
            "shares_cancelled" => {
                json!({"issuer": p(0), "holder": p(1), "units": pick(r[2], &AMOUNTS)})
            }
            "shares_split" => json!({"issuer": p(0), "numerator": pick(r[1], &AMOUNTS),
                                      "denominator": pick(r[2], &AMOUNTS)}),
            "recapitalized" | "holdings_stated" => {
                let holdings = if r[3] % 2 != 1 {
                    let other = if self.distinct_holders {
                        pick(r[1].wrapping_add(1 + r[2] % 3), &PARTIES)
                    } else {
                        p(2)
                    };
                    json!([{"holder": p(1), "percent": "60"}, {"holder": other, "percent": "40"}])
                } else {
                    json!([{"holder": p(1), "units": pick(r[4], &AMOUNTS)}])
                };
                json!({"issuer": p(0), "holdings": holdings})
            }
            "valuation_recorded" => json!({"entity": p(0), "post_money": money(1, 2)}),
            "investment_made" => json!({"investor": p(0), "investee": p(1), "amount": money(2, 3)}),
            "obligation_incurred" => json!({"obligation": pick(r[0], &OBLIGATIONS), "kind": "loan",
                                             "obligor": p(1), "obligee": p(2),
                                             "amount": money(3, 4)}),
            "obligation_settled" | "obligation_amended" => {
                json!({"obligation": pick(r[0], &OBLIGATIONS), "amount": money(3, 4)})
            }
            "obligation_released" => json!({"obligation": pick(r[0], &OBLIGATIONS)}),
            "right_granted" => {
                let mut m = json!({"right": pick(r[0], &RIGHTS), "kind": "ip_rights",
                                   "holder": p(1), "grantor": p(2)});
                let limit = r[3] % 3;
                if limit == 0 {
                    m["until"] = json!(self.date(u16::from(r[4])));
                }
                if limit == 1 {
                    m["until_milestone"] = json!(pick(r[4], &MILESTONES));
                }
                m
            }
            "right_amended" => {
                if r[3] % 2 != 1 {
                    json!({"right": pick(r[0], &RIGHTS), "until": self.date(u16::from(r[4]))})
                } else {
                    json!({"right": pick(r[0], &RIGHTS), "until_milestone": null})
                }
            }
            "right_ended" => json!({"right": pick(r[0], &RIGHTS)}),
            "milestone_declared" => {
                json!({"milestone": pick(r[0], &MILESTONES), "declared_by": p(1)})
            }
            "milestone_verified" => {
                json!({"milestone": pick(r[0], &MILESTONES), "verified_by": "panel"})
            }
            "event_reversed" => {
                json!({"reverses": format!("e{}", r[0] % self.ids), "reason": "oops"})
            }
            other => unreachable!("type {other}"),
        };
        v["id"] = json!(format!("e{}", id % self.ids));
        v["type"] = json!(EVENT_TYPES[ty % EVENT_TYPES.len()]);
        v["effective"] = json!(self.date(day));
        v
    }

    /// Events of the vocabulary as JSON, their types drawn from `types`
    /// (indexes into `EVENT_TYPES`, see [`ty`]); the test parses them.
    pub fn events(self, types: impl Strategy<Value = usize>) -> impl Strategy<Value = Value> {
        (any::<u8>(), types, any::<[u8; 8]>(), 0..self.days)
            .prop_map(move |(id, ty, r, day)| self.build(id, ty, r, day))
    }
}
