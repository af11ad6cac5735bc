//! Exports: the log as JSON Lines (re-appendable to an empty store) or as a plain-text
//! accounting journal that hledger and ledger-cli read.

use std::collections::HashMap;
use std::io::{self, Write};

use domain::event::Payload;
use domain::values::Date;
use domain::{KnownAt, RecordedEvent};

use crate::{Engine, Error};

impl Engine {
    /// The events known at `known_at` and effective on or before `as_of` (all when `None`),
    /// one canonical JSON line each, in seq order.
    pub fn export_jsonl(
        &self,
        as_of: Option<Date>,
        known_at: KnownAt,
        out: &mut dyn Write,
    ) -> Result<(), Error> {
        let events = self.events()?;
        let write = |out: &mut dyn Write| -> io::Result<()> {
            for r in events.iter().filter(|r| known_at.includes(r)) {
                if as_of.is_some_and(|d| r.event.effective > d) {
                    continue;
                }
                out.write_all(&r.event.canonical_bytes())?;
                writeln!(out)?;
            }
            Ok(())
        };
        write(out).map_err(Error::Output)
    }

    /// The ledger journal of the events known at `known_at`, effective on or before `as_of`.
    pub fn export_ledger(
        &self,
        as_of: Option<Date>,
        known_at: KnownAt,
        out: &mut dyn Write,
    ) -> Result<(), Error> {
        let events = self.events()?;
        ledger_export(&events, as_of, known_at, out).map_err(Error::Output)
    }
}

/// `export --format ledger`: one transaction per event, reversed events left
/// out, so that hledger and ledger-cli can cross-check balances.
fn ledger_export(
    events: &[RecordedEvent],
    as_of: Option<Date>,
    known_at: KnownAt,
    out: &mut dyn Write,
) -> io::Result<()> {
    let ordered = domain::timeline(events, known_at);
    // Amounts per obligation as the fold goes, to post amendments and releases.
    let mut obligations: HashMap<
        String,
        (String, rust_decimal::Decimal, rust_decimal::Decimal, String),
    > = HashMap::new();
    // `normalize` drops trailing zeros; a zero is written `0`, never `-0`.
    let amt = |d: rust_decimal::Decimal, c: &str| {
        if d.is_zero() {
            format!("{c} 0")
        } else {
            format!("{c} {}", d.normalize())
        }
    };
    for (_, e) in ordered {
        if as_of.is_some_and(|d| e.effective > d) {
            break;
        }
        let mut post = |title: String, lines: Vec<(String, String)>| -> io::Result<()> {
            writeln!(out, "{} {title}", e.effective)?;
            writeln!(out, "    ; id: {}", e.id)?;
            for (account, amount) in lines {
                writeln!(out, "    {account:<50}  {amount}")?;
            }
            writeln!(out)
        };
        match &e.payload {
            Payload::ObligationIncurred(p) => {
                let c = p.amount.currency.to_string();
                let a = p.amount.amount.0;
                obligations.insert(
                    p.obligation.to_string(),
                    (
                        p.obligor.to_string(),
                        a,
                        rust_decimal::Decimal::ZERO,
                        c.clone(),
                    ),
                );
                post(
                    format!("{} incurred", p.obligation),
                    vec![
                        (
                            format!("obligations:{}:{}", p.obligor, p.obligation),
                            amt(-a, &c),
                        ),
                        (format!("commitments:{}", p.obligor), amt(a, &c)),
                    ],
                )?;
            }
            Payload::ObligationSettled(p) => {
                if let Some((obligor, _, settled, c)) = obligations.get_mut(p.obligation.as_str()) {
                    let a = p.amount.amount.0;
                    *settled += a;
                    let (obligor, c) = (obligor.clone(), c.clone());
                    post(
                        format!("{} settled", p.obligation),
                        vec![
                            (
                                format!("obligations:{obligor}:{}", p.obligation),
                                amt(a, &c),
                            ),
                            (format!("settlements:{obligor}"), amt(-a, &c)),
                        ],
                    )?;
                }
            }
            Payload::ObligationAmended(p) => {
                if let Some((obligor, amount, _, c)) = obligations.get_mut(p.obligation.as_str()) {
                    let change = p.amount.amount.0 - *amount;
                    *amount = p.amount.amount.0;
                    let (obligor, c) = (obligor.clone(), c.clone());
                    // One transaction per event, even when it changes nothing
                    // (zero postings), so that `hledger reg` shows every event.
                    post(
                        format!("{} amended", p.obligation),
                        vec![
                            (
                                format!("obligations:{obligor}:{}", p.obligation),
                                amt(-change, &c),
                            ),
                            (format!("commitments:{obligor}"), amt(change, &c)),
                        ],
                    )?;
                }
            }
            Payload::ObligationReleased(p) => {
                if let Some((obligor, amount, settled, c)) = obligations.get(p.obligation.as_str())
                {
                    let rest = *amount - *settled;
                    post(
                        format!("{} released", p.obligation),
                        vec![
                            (
                                format!("obligations:{obligor}:{}", p.obligation),
                                amt(rest, c),
                            ),
                            (format!("releases:{obligor}"), amt(-rest, c)),
                        ],
                    )?;
                }
            }
            Payload::InvestmentMade(p) => {
                let c = p.amount.currency.to_string();
                let a = p.amount.amount.0;
                post(
                    format!("investment {} in {}", p.investor, p.investee),
                    vec![
                        (
                            format!("investments:{}:{}", p.investor, p.investee),
                            amt(a, &c),
                        ),
                        (format!("funding:{}", p.investor), amt(-a, &c)),
                    ],
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}
