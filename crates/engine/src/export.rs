//! Exports: the log as JSON Lines (re-appendable to an empty store) or as a plain-text
//! accounting journal that hledger and ledger-cli read.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use domain::event::{Event, Payload};
use domain::values::Date;
use domain::{KnownAt, RecordedEvent};

use store::{Record, Snapshot};

use crate::checkpoints::{corrupt, date_of_key, decode_seqs};
use crate::known_at::{last_seq, View};
use crate::load::decode;
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
        if !self.config.full_replay {
            let snapshot = self.store.read()?;
            if !snapshot.is_empty() && crate::checkpoints::keys_current(&*snapshot)? {
                return stream_ledger(&*snapshot, as_of, known_at, out);
            }
        }
        let events = self.events()?;
        ledger_export(&events, as_of, known_at, out).map_err(Error::Output)
    }
}

/// `export --format ledger` in bounded memory: the log is read once in seq order and each
/// event is written as soon as no later record can come before it in (effective, seq)
/// order. The date index gives every seq's effective date before any record is read, so
/// the earliest date still to come after each record is known; only the events the journal
/// posts (obligations and investments) wait in between, decoded.
fn stream_ledger(
    store: &dyn Snapshot,
    as_of: Option<Date>,
    known_at: KnownAt,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let known = last_seq(store, known_at)?;
    let until = as_of.unwrap_or(Date(chrono::NaiveDate::MAX));
    let view = View::cheapest(store, known, until)?;
    // Every seq's effective date, then the earliest date of the seqs after each one.
    let len = usize::try_from(known).map_err(|_| corrupt("log length"))?;
    let mut date_of: Vec<Option<Date>> = vec![None; len];
    for (k, v) in store.aux_range(b"dx/", b"dx0", false)? {
        let date = date_of_key(&k).ok_or_else(|| corrupt("date index key"))?;
        for seq in decode_seqs(&v).ok_or_else(|| corrupt("date index"))? {
            if let Some(slot) = seq.checked_sub(1).and_then(|i| date_of.get_mut(i as usize)) {
                *slot = Some(date);
            }
        }
    }
    let mut later: Vec<Option<Date>> = vec![None; len + 1];
    for i in (0..len).rev() {
        later[i] = match (date_of[i], later[i + 1]) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        };
    }
    drop(date_of);

    // A pipeline of three threads: one reads the records (and keeps those the journal may
    // post), one decodes them, this one orders and writes.
    std::thread::scope(|scope| -> Result<(), Error> {
        type Raw = Result<(u64, Vec<Record>), Error>;
        let (send_raw, receive_raw) = std::sync::mpsc::sync_channel::<Raw>(2);
        let (send, receive) = std::sync::mpsc::sync_channel::<Result<(u64, Vec<Event>), Error>>(2);
        let view = &view;
        scope.spawn(move || {
            let mut records = store.records_after(0).take(len);
            loop {
                let mut kept = Vec::new();
                let mut last = None;
                for r in records.by_ref().take(16 * 1024) {
                    match r {
                        Ok(r) => {
                            last = Some(r.seq);
                            if may_post(&r.body) && view.counts(r.seq) {
                                kept.push(r);
                            }
                        }
                        Err(e) => {
                            let _ = send_raw.send(Err(Error::from(e)));
                            return;
                        }
                    }
                }
                let Some(last) = last else {
                    return;
                };
                if send_raw.send(Ok((last, kept))).is_err() {
                    return;
                }
            }
        });
        scope.spawn(move || {
            for raw in receive_raw {
                let events = raw.and_then(|(last, chunk)| {
                    let mut events = Vec::with_capacity(chunk.len());
                    for record in &chunk {
                        let r = decode(record).map_err(|m| Error::corrupt_at(record.seq, &m))?;
                        if posts(&r.event) && r.event.effective <= until {
                            events.push(r.event);
                        }
                    }
                    Ok((last, events))
                });
                let failed = events.is_err();
                if send.send(events).is_err() || failed {
                    return;
                }
            }
        });
        let mut journal = Journal::default();
        let mut waiting: BTreeMap<(Date, u64), Box<Event>> = BTreeMap::new();
        for message in receive {
            let (last, events) = message?;
            // `Event` carries no seq: the chunk's events keep their order by a counter that
            // follows seq order.
            for e in events {
                let seq = waiting.len() as u64 + journal.posted;
                waiting.insert((e.effective, seq), Box::new(e));
            }
            // Every record after `last` is dated on or after `later[last]` and has a greater
            // seq, so whatever waits dated on or before it comes first.
            let watermark = later.get(last as usize).copied().flatten();
            while let Some(entry) = waiting.first_entry() {
                if watermark.is_some_and(|w| entry.key().0 > w) {
                    break;
                }
                journal.post(&entry.remove(), out).map_err(Error::Output)?;
            }
        }
        for (_, e) in waiting {
            journal.post(&e, out).map_err(Error::Output)?;
        }
        Ok(())
    })
}

/// Whether the journal posts a transaction for this event.
fn posts(e: &Event) -> bool {
    matches!(
        e.payload,
        Payload::ObligationIncurred(_)
            | Payload::ObligationSettled(_)
            | Payload::ObligationAmended(_)
            | Payload::ObligationReleased(_)
            | Payload::InvestmentMade(_)
    )
}

/// Whether a stored event may be one the journal posts, from its canonical bytes alone
/// (compact JSON, so a key reads `"type":"` and a quote inside a string is escaped): an
/// event of another type is not decoded at all. A body without that key is decoded.
fn may_post(body: &[u8]) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    static KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"type\":\""));
    static OBLIGATION: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"type\":\"obligation_"));
    static INVESTMENT: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"type\":\"investment_made\""));
    KEY.find(body).is_none() || OBLIGATION.find(body).is_some() || INVESTMENT.find(body).is_some()
}

/// `export --format ledger`: one transaction per event, reversed events left
/// out, so that hledger and ledger-cli can cross-check balances.
fn ledger_export(
    events: &[RecordedEvent],
    as_of: Option<Date>,
    known_at: KnownAt,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut journal = Journal::default();
    for (_, e) in domain::timeline(events, known_at) {
        if as_of.is_some_and(|d| e.effective > d) {
            break;
        }
        journal.post(e, out)?;
    }
    Ok(())
}

/// The journal being written: each obligation's obligor, amount, settled amount and
/// currency so far, to post amendments and releases.
#[derive(Default)]
pub(crate) struct Journal {
    /// Transactions written so far.
    posted: u64,
    obligations: HashMap<String, (String, rust_decimal::Decimal, rust_decimal::Decimal, String)>,
}

impl Journal {
    /// Writes the transaction of `e`, the next event in (effective, seq) order.
    pub(crate) fn post(&mut self, e: &Event, out: &mut dyn Write) -> io::Result<()> {
        self.posted += 1;
        let obligations = &mut self.obligations;
        // `normalize` drops trailing zeros; a zero is written `0`, never `-0`.
        let amt = |d: rust_decimal::Decimal, c: &str| {
            if d.is_zero() {
                format!("{c} 0")
            } else {
                format!("{c} {}", d.normalize())
            }
        };
        let mut post = |title: String, lines: Vec<(String, String)>| -> io::Result<()> {
            writeln!(out, "{} {title}", e.effective)?;
            writeln!(out, "    ; id: {}", e.id)?;
            for (account, amount) in lines {
                // `{account:<50}`, without the formatter writing the padding a character at a time.
                const SPACES: &[u8; 50] = &[b' '; 50];
                out.write_all(b"    ")?;
                out.write_all(account.as_bytes())?;
                let width = account.chars().count();
                out.write_all(&SPACES[..50usize.saturating_sub(width)])?;
                out.write_all(b"  ")?;
                out.write_all(amount.as_bytes())?;
                out.write_all(b"\n")?;
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
        Ok(())
    }
}
