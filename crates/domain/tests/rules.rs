//! The rules of EVENTS.md as given/when/then tests: given a recorded log,
//! when a batch is appended, then it is planned (new and skipped events) or
//! refused with exactly one `Rejection`, naming the event and its line.

use chrono::{DateTime, TimeZone, Utc};
use domain::ledger::ObligationStatus;
use domain::values::{ClassName, Money, Slug};
use domain::{
    fold, plan_batch, timeline, BatchEvent, BatchRejection, Currency, Date, Event, EventId,
    KnownAt, Ledger, Plan, RecordedEvent, Rejection,
};
use rust_decimal::Decimal;

// ---------------------------------------------------------------- harness

/// The transaction time of every event in a `given` log.
fn recorded() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 1, 12, 0, 0).unwrap()
}

fn parse(line: &str) -> Event {
    Event::from_line(line).unwrap_or_else(|e| panic!("bad test event {line}: {e}"))
}

/// A recorded log: seq 1.., all recorded at one fixed instant.
fn given(lines: &[&str]) -> Vec<RecordedEvent> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| RecordedEvent {
            seq: i as u64 + 1,
            recorded: recorded(),
            event: parse(line),
        })
        .collect()
}

/// A batch as read from a file: event n on line n.
fn when(lines: &[&str]) -> Vec<BatchEvent> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| BatchEvent {
            line: Some(i + 1),
            event: parse(line),
        })
        .collect()
}

/// Then the batch is accepted.
fn accepted(log: &[RecordedEvent], batch: &[BatchEvent]) -> Plan {
    plan_batch(log, batch).unwrap_or_else(|e| panic!("expected the batch to be accepted: {e}"))
}

/// Then the batch is refused at `line`, naming event `id` in the rejection
/// and in its text. Returns the rejection for a closer look.
fn refused(log: &[RecordedEvent], batch: &[BatchEvent], line: usize, id: &str) -> Rejection {
    let err: BatchRejection = match plan_batch(log, batch) {
        Ok(plan) => panic!("expected a refusal of `{id}`, got {plan:?}"),
        Err(e) => e,
    };
    assert_eq!(err.line, Some(line), "wrong line in {err}");
    assert_eq!(err.rejection.event().as_str(), id, "wrong event in {err}");
    let text = err.rejection.to_string();
    assert!(
        text.contains(&format!("`{id}`")),
        "the text does not name `{id}`: {text}"
    );
    assert!(
        err.to_string().starts_with(&format!("line {line}: ")),
        "the text does not name line {line}: {err}"
    );
    err.rejection
}

/// The log after an accepted batch is appended as planned.
fn commit(log: &[RecordedEvent], batch: &[BatchEvent], plan: &Plan) -> Vec<RecordedEvent> {
    let next = log.last().map_or(1, |r| r.seq + 1);
    let mut out = log.to_vec();
    out.extend(plan.new.iter().zip(next..).map(|(&i, seq)| RecordedEvent {
        seq,
        recorded: recorded(),
        event: batch[i].event.clone(),
    }));
    out
}

/// Appends a batch that must be accepted and folds the resulting log.
fn ledger_after(log: &[RecordedEvent], batch: &[BatchEvent]) -> Ledger {
    let plan = accepted(log, batch);
    let log = commit(log, batch, &plan);
    fold(&timeline(&log, KnownAt::Everything), None).expect("the accepted log folds")
}

fn eid(s: &str) -> EventId {
    EventId::parse(s).unwrap()
}
fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}
fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}
fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}
fn money(amount: &str, currency: &str) -> Money {
    Money::new(dec(amount), Currency::parse(currency).unwrap())
}
fn common() -> ClassName {
    ClassName::common()
}

fn units(ledger: &Ledger, issuer: &str, holder: &str) -> Decimal {
    ledger
        .holdings
        .get(&slug(issuer))
        .and_then(|t| t.get(&(slug(holder), common())).copied())
        .unwrap_or(Decimal::ZERO)
}

// ------------------------------------------------------ event line makers

fn reg(id: &str, eff: &str, party: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"party_registered","effective":"{eff}","party":"{party}","name":"{party}","kind":"corporation"}}"#
    )
}
fn issue(id: &str, eff: &str, issuer: &str, holder: &str, units: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"shares_issued","effective":"{eff}","issuer":"{issuer}","holder":"{holder}","units":"{units}"}}"#
    )
}
fn transfer(id: &str, eff: &str, from: &str, to: &str, units: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"shares_transferred","effective":"{eff}","issuer":"acme","from":"{from}","to":"{to}","units":"{units}"}}"#
    )
}
fn incur(id: &str, eff: &str, obligation: &str, amount: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"obligation_incurred","effective":"{eff}","obligation":"{obligation}","kind":"loan","obligor":"acme","obligee":"bank","amount":{{"amount":"{amount}","currency":"USD"}}}}"#
    )
}
fn settle(id: &str, eff: &str, obligation: &str, amount: &str) -> String {
    settle_in(id, eff, obligation, amount, "USD")
}
fn settle_in(id: &str, eff: &str, obligation: &str, amount: &str, currency: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"obligation_settled","effective":"{eff}","obligation":"{obligation}","amount":{{"amount":"{amount}","currency":"{currency}"}}}}"#
    )
}
fn amend(id: &str, eff: &str, obligation: &str, amount: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"obligation_amended","effective":"{eff}","obligation":"{obligation}","amount":{{"amount":"{amount}","currency":"USD"}}}}"#
    )
}
fn release(id: &str, eff: &str, obligation: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"obligation_released","effective":"{eff}","obligation":"{obligation}","reason":"forgiven"}}"#
    )
}
fn grant(id: &str, eff: &str, right: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"right_granted","effective":"{eff}","right":"{right}","kind":"ip_rights","holder":"alice","grantor":"acme"}}"#
    )
}
fn end_right(id: &str, eff: &str, right: &str) -> String {
    format!(r#"{{"id":"{id}","type":"right_ended","effective":"{eff}","right":"{right}"}}"#)
}
fn declare(id: &str, eff: &str, milestone: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"milestone_declared","effective":"{eff}","milestone":"{milestone}","declared_by":"acme"}}"#
    )
}
fn verify(id: &str, eff: &str, milestone: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"milestone_verified","effective":"{eff}","milestone":"{milestone}","verified_by":"independent expert panel"}}"#
    )
}
fn reverse(id: &str, eff: &str, target: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"event_reversed","effective":"{eff}","reverses":"{target}","reason":"entered in error"}}"#
    )
}

/// acme (the issuer and obligor), alice, bob, carol and bank, all registered
/// on 2020-01-01 as p1..p5.
fn parties() -> Vec<String> {
    ["acme", "alice", "bob", "carol", "bank"]
        .iter()
        .enumerate()
        .map(|(i, p)| reg(&format!("p{}", i + 1), "2020-01-01", p))
        .collect()
}

/// `parties()` followed by more events.
fn world(more: &[&str]) -> Vec<RecordedEvent> {
    let base = parties();
    let lines: Vec<&str> = base
        .iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect();
    given(&lines)
}

// ------------------------------------------------------------------ parties

#[test]
fn unregistered_party_is_unknown() {
    let log = world(&[]);
    let batch = when(&[&issue("i1", "2024-01-01", "acme", "zed", "10")]);
    let r = refused(&log, &batch, 1, "i1");
    assert_eq!(
        r,
        Rejection::UnknownParty {
            event: eid("i1"),
            party: slug("zed"),
            date: date("2024-01-01"),
        }
    );
}

#[test]
fn party_registered_too_late_is_unknown_on_the_earlier_issue() {
    // dana is registered on 2024-06-01, but the issue to her is effective
    // on 2024-03-01: on that date she does not exist yet.
    let log = world(&[&reg("p-dana", "2024-06-01", "dana")]);
    let batch = when(&[&issue("i1", "2024-03-01", "acme", "dana", "10")]);
    let r = refused(&log, &batch, 1, "i1");
    assert_eq!(
        r,
        Rejection::UnknownParty {
            event: eid("i1"),
            party: slug("dana"),
            date: date("2024-03-01"),
        }
    );
}

#[test]
fn party_registered_too_late_in_the_same_batch_is_unknown() {
    let log = world(&[]);
    let batch = when(&[
        &reg("p-dana", "2024-06-01", "dana"),
        &issue("i1", "2024-03-01", "acme", "dana", "10"),
    ]);
    let r = refused(&log, &batch, 2, "i1");
    assert!(matches!(r, Rejection::UnknownParty { ref party, .. } if *party == slug("dana")));
}

#[test]
fn party_registered_on_the_same_day_is_known() {
    let log = world(&[]);
    let batch = when(&[
        &issue("i1", "2024-06-01", "acme", "dana", "10"),
        &reg("p-dana", "2024-06-01", "dana"),
    ]);
    // Same effective date: the registration is recorded after the issue, so
    // in seq order the issue comes first and dana is not registered yet.
    let r = refused(&log, &batch, 1, "i1");
    assert!(matches!(r, Rejection::UnknownParty { .. }));
    // Registered first, the same day is "on or before".
    let batch = when(&[
        &reg("p-dana", "2024-06-01", "dana"),
        &issue("i1", "2024-06-01", "acme", "dana", "10"),
    ]);
    let ledger = ledger_after(&log, &batch);
    assert_eq!(units(&ledger, "acme", "dana"), dec("10"));
}

#[test]
fn party_update_before_the_registration_is_refused() {
    // A party update before the registration date names an unknown party.
    let log = world(&[]);
    let batch = when(&[
        &reg("p-dana", "2024-06-01", "dana"),
        r#"{"id":"u1","type":"party_updated","effective":"2024-05-31","party":"dana","name":"Dana Inc."}"#,
    ]);
    let r = refused(&log, &batch, 2, "u1");
    assert_eq!(
        r,
        Rejection::UnknownParty {
            event: eid("u1"),
            party: slug("dana"),
            date: date("2024-05-31"),
        }
    );
}

#[test]
fn registering_a_party_twice_is_refused() {
    let log = world(&[]);
    let batch = when(&[&reg("again", "2024-01-01", "alice")]);
    let r = refused(&log, &batch, 1, "again");
    assert_eq!(
        r,
        Rejection::PartyAlreadyRegistered {
            event: eid("again"),
            party: slug("alice"),
            registered: date("2020-01-01"),
        }
    );
}

#[test]
fn backdated_second_registration_breaks_the_recorded_one() {
    // Registered earlier than the recorded registration: the recorded one
    // becomes the duplicate, and the refusal names the new event.
    let log = world(&[]);
    let batch = when(&[&reg("early", "2019-01-01", "alice")]);
    let r = refused(&log, &batch, 1, "early");
    let Rejection::BreaksLaterEvent { event, cause } = r else {
        panic!("expected BreaksLaterEvent, got {r:?}");
    };
    assert_eq!(event, eid("early"));
    assert_eq!(
        *cause,
        Rejection::PartyAlreadyRegistered {
            event: eid("p2"),
            party: slug("alice"),
            registered: date("2019-01-01"),
        }
    );
}

// ---------------------------------------------------------------- ownership

#[test]
fn transfer_beyond_holding_is_refused() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[&transfer("t1", "2024-02-01", "alice", "bob", "150")]);
    let r = refused(&log, &batch, 1, "t1");
    assert_eq!(
        r,
        Rejection::InsufficientUnits {
            event: eid("t1"),
            issuer: slug("acme"),
            holder: slug("alice"),
            class: common(),
            held: dec("100"),
            needed: dec("150"),
            date: date("2024-02-01"),
        }
    );
}

#[test]
fn transfer_before_the_issue_is_refused() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[&transfer("t1", "2023-12-31", "alice", "bob", "1")]);
    let r = refused(&log, &batch, 1, "t1");
    assert!(matches!(
        r,
        Rejection::InsufficientUnits { held, needed, .. } if held.is_zero() && needed == dec("1")
    ));
}

#[test]
fn transfer_of_another_class_is_refused() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[
        r#"{"id":"t1","type":"shares_transferred","effective":"2024-02-01","issuer":"acme","from":"alice","to":"bob","units":"1","class":"preferred"}"#,
    ]);
    let r = refused(&log, &batch, 1, "t1");
    assert!(matches!(
        r,
        Rejection::InsufficientUnits { ref class, held, .. }
            if class.as_str() == "preferred" && held.is_zero()
    ));
}

#[test]
fn cancelling_more_than_held_is_refused() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[
        r#"{"id":"c1","type":"shares_cancelled","effective":"2024-02-01","issuer":"acme","holder":"alice","units":"100.5"}"#,
    ]);
    let r = refused(&log, &batch, 1, "c1");
    assert!(matches!(
        r,
        Rejection::InsufficientUnits { held, needed, .. } if held == dec("100") && needed == dec("100.5")
    ));
}

#[test]
fn transfer_to_self_is_refused() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[&transfer("t1", "2024-02-01", "alice", "alice", "10")]);
    let r = refused(&log, &batch, 1, "t1");
    assert_eq!(
        r,
        Rejection::TransferToSelf {
            event: eid("t1"),
            party: slug("alice"),
        }
    );
}

#[test]
fn recapitalization_percents_must_sum_to_100() {
    let log = world(&[]);
    let batch = when(&[
        r#"{"id":"recap","type":"recapitalized","effective":"2025-10-28","issuer":"acme","holdings":[{"holder":"alice","percent":"27"},{"holder":"bob","percent":"26"},{"holder":"carol","percent":"46"}]}"#,
    ]);
    let r = refused(&log, &batch, 1, "recap");
    assert_eq!(
        r,
        Rejection::PercentsMustSumTo100 {
            event: eid("recap"),
            issuer: slug("acme"),
            sum: dec("99"),
        }
    );
}

#[test]
fn holdings_stated_percents_above_100_are_refused() {
    let log = world(&[]);
    let batch = when(&[
        r#"{"id":"open","type":"holdings_stated","effective":"2020-01-01","issuer":"acme","holdings":[{"holder":"alice","percent":"60"},{"holder":"bob","percent":"40.01"}]}"#,
    ]);
    let r = refused(&log, &batch, 1, "open");
    assert!(matches!(r, Rejection::PercentsMustSumTo100 { sum, .. } if sum == dec("100.01")));
}

#[test]
fn recapitalization_naming_an_unknown_holder_is_refused() {
    let log = world(&[]);
    let batch = when(&[
        r#"{"id":"recap","type":"recapitalized","effective":"2025-10-28","issuer":"acme","holdings":[{"holder":"alice","percent":"50"},{"holder":"others","percent":"50"}]}"#,
    ]);
    let r = refused(&log, &batch, 1, "recap");
    assert!(matches!(r, Rejection::UnknownParty { ref party, .. } if *party == slug("others")));
}

#[test]
fn valid_recapitalization_replaces_the_table() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[
        r#"{"id":"recap","type":"recapitalized","effective":"2025-10-28","issuer":"acme","holdings":[{"holder":"alice","percent":"27"},{"holder":"bob","percent":"26"},{"holder":"carol","percent":"47"}],"reason":"restructuring"}"#,
    ]);
    let plan = accepted(&log, &batch);
    assert_eq!(
        plan,
        Plan {
            new: vec![0],
            skipped: 0
        }
    );
    let ledger = ledger_after(&log, &batch);
    assert_eq!(units(&ledger, "acme", "alice"), dec("270000000"));
    assert_eq!(units(&ledger, "acme", "bob"), dec("260000000"));
    assert_eq!(units(&ledger, "acme", "carol"), dec("470000000"));
    assert_eq!(ledger.total_units(&slug("acme")), dec("1000000000"));
}

#[test]
fn recapitalization_cuts_a_later_transfer_short() {
    // After a backdated recap gives alice 10 units, her recorded transfer
    // of 50 no longer fits.
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t1", "2024-06-01", "alice", "bob", "50"),
    ]);
    let batch = when(&[
        r#"{"id":"recap","type":"recapitalized","effective":"2024-03-01","issuer":"acme","holdings":[{"holder":"alice","units":"10"},{"holder":"carol","units":"90"}]}"#,
    ]);
    let r = refused(&log, &batch, 1, "recap");
    let Rejection::BreaksLaterEvent { cause, .. } = r else {
        panic!("expected BreaksLaterEvent, got {r:?}");
    };
    assert!(matches!(
        *cause,
        Rejection::InsufficientUnits { ref event, held, .. } if *event == eid("t1") && held == dec("10")
    ));
}

#[test]
fn split_two_for_one_then_fractional_transfers_are_accepted() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "10")]);
    let batch = when(&[
        r#"{"id":"split","type":"shares_split","effective":"2024-02-01","issuer":"acme","numerator":"2","denominator":"1"}"#,
        &transfer("t1", "2024-03-01", "alice", "bob", "12.5"),
        &transfer("t2", "2024-03-02", "bob", "carol", "0.25"),
    ]);
    let ledger = ledger_after(&log, &batch);
    assert_eq!(units(&ledger, "acme", "alice"), dec("7.5"));
    assert_eq!(units(&ledger, "acme", "bob"), dec("12.25"));
    assert_eq!(units(&ledger, "acme", "carol"), dec("0.25"));
    assert_eq!(ledger.total_units(&slug("acme")), dec("20"));
}

#[test]
fn transfer_beyond_the_split_holding_is_refused() {
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "10"),
        r#"{"id":"split","type":"shares_split","effective":"2024-02-01","issuer":"acme","numerator":"1","denominator":"4"}"#,
    ]);
    let batch = when(&[&transfer("t1", "2024-03-01", "alice", "bob", "2.51")]);
    let r = refused(&log, &batch, 1, "t1");
    assert!(matches!(
        r,
        Rejection::InsufficientUnits { held, needed, .. } if held == dec("2.5") && needed == dec("2.51")
    ));
}

#[test]
fn backdated_transfer_that_starves_a_later_transfer_breaks_it() {
    // alice holds 100; a recorded transfer of 80 on 2024-06-01. A new
    // transfer of 50 on 2024-03-01 is fine on its own date (100 >= 50), but
    // leaves 50 for the recorded transfer of 80.
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t-later", "2024-06-01", "alice", "bob", "80"),
    ]);
    let batch = when(&[&transfer(
        "t-backdated",
        "2024-03-01",
        "alice",
        "carol",
        "50",
    )]);
    let r = refused(&log, &batch, 1, "t-backdated");
    assert_eq!(
        r,
        Rejection::BreaksLaterEvent {
            event: eid("t-backdated"),
            cause: Box::new(Rejection::InsufficientUnits {
                event: eid("t-later"),
                issuer: slug("acme"),
                holder: slug("alice"),
                class: common(),
                held: dec("50"),
                needed: dec("80"),
                date: date("2024-06-01"),
            }),
        }
    );
    assert!(r.to_string().contains("`t-later`"), "{r}");
}

#[test]
fn split_that_overflows_is_refused() {
    let log = world(&[&issue(
        "i1",
        "2024-01-01",
        "acme",
        "alice",
        "9999999999999999999999999999",
    )]);
    let batch = when(&[
        r#"{"id":"split","type":"shares_split","effective":"2024-02-01","issuer":"acme","numerator":"10","denominator":"1"}"#,
    ]);
    let r = refused(&log, &batch, 1, "split");
    assert_eq!(
        r,
        Rejection::ArithmeticOverflow {
            event: eid("split")
        }
    );
}

#[test]
fn issues_that_overflow_a_holding_are_refused() {
    let big = "9999999999999999999999999999";
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", big),
        &issue("i2", "2024-01-01", "acme", "alice", big),
        &issue("i3", "2024-01-01", "acme", "alice", big),
        &issue("i4", "2024-01-01", "acme", "alice", big),
        &issue("i5", "2024-01-01", "acme", "alice", big),
        &issue("i6", "2024-01-01", "acme", "alice", big),
        &issue("i7", "2024-01-01", "acme", "alice", big),
    ]);
    let batch = when(&[&issue("i8", "2024-01-02", "acme", "alice", big)]);
    let r = refused(&log, &batch, 1, "i8");
    assert!(matches!(r, Rejection::ArithmeticOverflow { .. }));
}

// -------------------------------------------------------------- obligations

#[test]
fn settling_an_unknown_obligation_is_refused() {
    let log = world(&[]);
    let batch = when(&[&settle("s1", "2024-02-01", "azure", "10")]);
    let r = refused(&log, &batch, 1, "s1");
    assert_eq!(
        r,
        Rejection::UnknownObligation {
            event: eid("s1"),
            obligation: slug("azure"),
            date: date("2024-02-01"),
        }
    );
}

#[test]
fn settling_before_the_obligation_is_incurred_is_refused() {
    let log = world(&[&incur("o1", "2024-02-01", "azure", "100")]);
    let batch = when(&[&settle("s1", "2024-01-31", "azure", "10")]);
    let r = refused(&log, &batch, 1, "s1");
    assert!(matches!(
        r,
        Rejection::UnknownObligation { ref obligation, date: d, .. }
            if *obligation == slug("azure") && d == date("2024-01-31")
    ));
}

#[test]
fn incurring_an_existing_obligation_is_refused() {
    let log = world(&[&incur("o1", "2024-01-01", "azure", "100")]);
    let batch = when(&[&incur("o2", "2024-05-01", "azure", "50")]);
    let r = refused(&log, &batch, 1, "o2");
    assert_eq!(
        r,
        Rejection::ObligationAlreadyExists {
            event: eid("o2"),
            obligation: slug("azure"),
        }
    );
}

#[test]
fn settlement_beyond_outstanding_is_refused() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-02-01", "azure", "60"),
    ]);
    let batch = when(&[&settle("s2", "2024-03-01", "azure", "40.01")]);
    let r = refused(&log, &batch, 1, "s2");
    assert_eq!(
        r,
        Rejection::SettlementExceedsOutstanding {
            event: eid("s2"),
            obligation: slug("azure"),
            amount: money("40.01", "USD"),
            outstanding: dec("40"),
            date: date("2024-03-01"),
        }
    );
}

#[test]
fn settlement_up_to_exactly_the_amount_settles_the_obligation() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-02-01", "azure", "60"),
    ]);
    let batch = when(&[&settle("s2", "2024-03-01", "azure", "40.00")]);
    let ledger = ledger_after(&log, &batch);
    let o = &ledger.obligations[&slug("azure")];
    assert_eq!(o.settled, dec("100"));
    assert_eq!(o.outstanding(), Decimal::ZERO);
    assert_eq!(o.status(), ObligationStatus::Settled);
}

#[test]
fn backdated_settlement_that_overfills_a_later_settlement_breaks_it() {
    // 100 owed; 70 settled on 2024-06-01. A settlement of 50 on 2024-03-01
    // fits on its own date, but then the recorded 70 exceeds the rest.
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s-later", "2024-06-01", "azure", "70"),
    ]);
    let batch = when(&[&settle("s-backdated", "2024-03-01", "azure", "50")]);
    let r = refused(&log, &batch, 1, "s-backdated");
    assert_eq!(
        r,
        Rejection::BreaksLaterEvent {
            event: eid("s-backdated"),
            cause: Box::new(Rejection::SettlementExceedsOutstanding {
                event: eid("s-later"),
                obligation: slug("azure"),
                amount: money("70", "USD"),
                outstanding: dec("50"),
                date: date("2024-06-01"),
            }),
        }
    );
}

#[test]
fn backdated_amendment_below_a_later_settlement_breaks_it() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-06-01", "azure", "70"),
    ]);
    let batch = when(&[&amend("a1", "2024-03-01", "azure", "60")]);
    let r = refused(&log, &batch, 1, "a1");
    let Rejection::BreaksLaterEvent { event, cause } = r else {
        panic!("expected BreaksLaterEvent, got {r:?}");
    };
    assert_eq!(event, eid("a1"));
    assert!(matches!(
        *cause,
        Rejection::SettlementExceedsOutstanding { ref event, outstanding, .. }
            if *event == eid("s1") && outstanding == dec("60")
    ));
}

#[test]
fn settlement_after_release_is_refused() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-02-01", "azure", "30"),
        &release("r1", "2024-03-01", "azure"),
    ]);
    let batch = when(&[&settle("s2", "2024-04-01", "azure", "1")]);
    let r = refused(&log, &batch, 1, "s2");
    assert_eq!(
        r,
        Rejection::SettlementAfterRelease {
            event: eid("s2"),
            obligation: slug("azure"),
            released: date("2024-03-01"),
        }
    );
}

#[test]
fn release_forgives_the_rest() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-02-01", "azure", "30"),
    ]);
    let batch = when(&[&release("r1", "2024-03-01", "azure")]);
    let ledger = ledger_after(&log, &batch);
    let o = &ledger.obligations[&slug("azure")];
    assert_eq!(o.status(), ObligationStatus::Released);
    assert_eq!(o.outstanding(), Decimal::ZERO);
    assert_eq!(o.settled, dec("30"));
    assert_eq!(o.released, Some(date("2024-03-01")));
}

#[test]
fn settlement_before_the_release_date_is_still_accepted() {
    // Recorded after the release, but effective before it.
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &release("r1", "2024-03-01", "azure"),
    ]);
    let batch = when(&[&settle("s1", "2024-02-15", "azure", "30")]);
    let ledger = ledger_after(&log, &batch);
    assert_eq!(ledger.obligations[&slug("azure")].settled, dec("30"));
}

#[test]
fn backdated_release_before_a_recorded_settlement_breaks_it() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-06-01", "azure", "30"),
    ]);
    let batch = when(&[&release("r1", "2024-03-01", "azure")]);
    let r = refused(&log, &batch, 1, "r1");
    assert_eq!(
        r,
        Rejection::BreaksLaterEvent {
            event: eid("r1"),
            cause: Box::new(Rejection::SettlementAfterRelease {
                event: eid("s1"),
                obligation: slug("azure"),
                released: date("2024-03-01"),
            }),
        }
    );
}

#[test]
fn releasing_twice_is_refused() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &release("r1", "2024-03-01", "azure"),
    ]);
    let batch = when(&[&release("r2", "2024-04-01", "azure")]);
    let r = refused(&log, &batch, 1, "r2");
    assert_eq!(
        r,
        Rejection::ObligationAlreadyReleased {
            event: eid("r2"),
            obligation: slug("azure"),
            released: date("2024-03-01"),
        }
    );
}

#[test]
fn amending_after_release_is_refused() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &release("r1", "2024-03-01", "azure"),
    ]);
    let batch = when(&[&amend("a1", "2024-04-01", "azure", "200")]);
    let r = refused(&log, &batch, 1, "a1");
    assert!(matches!(
        r,
        Rejection::ObligationAlreadyReleased { released, .. } if released == date("2024-03-01")
    ));
}

#[test]
fn amendment_below_settled_is_refused() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-02-01", "azure", "70"),
    ]);
    let batch = when(&[&amend("a1", "2024-03-01", "azure", "69.99")]);
    let r = refused(&log, &batch, 1, "a1");
    assert_eq!(
        r,
        Rejection::AmendmentBelowSettled {
            event: eid("a1"),
            obligation: slug("azure"),
            amount: money("69.99", "USD"),
            settled: dec("70"),
            date: date("2024-03-01"),
        }
    );
}

#[test]
fn amendment_down_to_exactly_the_settled_amount_settles_it() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-02-01", "azure", "70"),
    ]);
    let batch = when(&[&amend("a1", "2024-03-01", "azure", "70")]);
    let ledger = ledger_after(&log, &batch);
    let o = &ledger.obligations[&slug("azure")];
    assert_eq!(o.amount, money("70", "USD"));
    assert_eq!(o.status(), ObligationStatus::Settled);
}

#[test]
fn settlement_in_another_currency_is_refused() {
    let log = world(&[&incur("o1", "2024-01-01", "azure", "100")]);
    let batch = when(&[&settle_in("s1", "2024-02-01", "azure", "10", "EUR")]);
    let r = refused(&log, &batch, 1, "s1");
    assert_eq!(
        r,
        Rejection::CurrencyMismatch {
            event: eid("s1"),
            obligation: slug("azure"),
            expected: Currency::parse("USD").unwrap(),
            found: Currency::parse("EUR").unwrap(),
        }
    );
}

#[test]
fn amendment_in_another_currency_is_refused() {
    let log = world(&[&incur("o1", "2024-01-01", "azure", "100")]);
    let batch = when(&[
        r#"{"id":"a1","type":"obligation_amended","effective":"2024-02-01","obligation":"azure","amount":{"amount":"200","currency":"GBP"}}"#,
    ]);
    let r = refused(&log, &batch, 1, "a1");
    assert!(matches!(
        r,
        Rejection::CurrencyMismatch { ref found, .. } if found.as_str() == "GBP"
    ));
}

// ------------------------------------------------------ rights, milestones

#[test]
fn ending_an_unknown_right_is_refused() {
    let log = world(&[]);
    let batch = when(&[&end_right("e1", "2024-02-01", "ip")]);
    let r = refused(&log, &batch, 1, "e1");
    assert_eq!(
        r,
        Rejection::UnknownRight {
            event: eid("e1"),
            right: slug("ip"),
            date: date("2024-02-01"),
        }
    );
}

#[test]
fn amending_a_right_before_its_grant_is_refused() {
    let log = world(&[&grant("g1", "2024-02-01", "ip")]);
    let batch = when(&[
        r#"{"id":"ra","type":"right_amended","effective":"2024-01-15","right":"ip","until":"2030-12-31"}"#,
    ]);
    let r = refused(&log, &batch, 1, "ra");
    assert!(matches!(
        r,
        Rejection::UnknownRight { ref right, date: d, .. } if *right == slug("ip") && d == date("2024-01-15")
    ));
}

#[test]
fn granting_a_right_twice_is_refused() {
    let log = world(&[&grant("g1", "2024-01-01", "ip")]);
    let batch = when(&[&grant("g2", "2024-03-01", "ip")]);
    let r = refused(&log, &batch, 1, "g2");
    assert_eq!(
        r,
        Rejection::RightAlreadyExists {
            event: eid("g2"),
            right: slug("ip"),
        }
    );
}

#[test]
fn ending_a_right_twice_is_refused() {
    let log = world(&[
        &grant("g1", "2024-01-01", "ip"),
        &end_right("e1", "2024-06-01", "ip"),
    ]);
    let batch = when(&[&end_right("e2", "2024-07-01", "ip")]);
    let r = refused(&log, &batch, 1, "e2");
    assert_eq!(
        r,
        Rejection::RightAlreadyEnded {
            event: eid("e2"),
            right: slug("ip"),
            ended: date("2024-06-01"),
        }
    );
}

#[test]
fn granting_a_right_to_an_unknown_holder_is_refused() {
    let log = world(&[]);
    let batch = when(&[
        r#"{"id":"g1","type":"right_granted","effective":"2024-01-01","right":"ip","kind":"ip_rights","holder":"zed","grantor":"acme"}"#,
    ]);
    let r = refused(&log, &batch, 1, "g1");
    assert!(matches!(r, Rejection::UnknownParty { ref party, .. } if *party == slug("zed")));
}

#[test]
fn right_may_wait_for_a_milestone_not_yet_declared() {
    let log = world(&[]);
    let batch = when(&[
        r#"{"id":"g1","type":"right_granted","effective":"2024-01-01","right":"ip","kind":"ip_rights","holder":"alice","grantor":"acme","until_milestone":"agi"}"#,
    ]);
    let ledger = ledger_after(&log, &batch);
    let right = &ledger.rights[&slug("ip")];
    assert_eq!(right.status(date("2030-01-01"), &ledger.milestones), None);
}

#[test]
fn declaring_a_milestone_twice_is_refused() {
    let log = world(&[&declare("d1", "2024-01-01", "agi")]);
    let batch = when(&[&declare("d2", "2024-02-01", "agi")]);
    let r = refused(&log, &batch, 1, "d2");
    assert_eq!(
        r,
        Rejection::MilestoneAlreadyDeclared {
            event: eid("d2"),
            milestone: slug("agi"),
            declared: date("2024-01-01"),
        }
    );
}

#[test]
fn verifying_an_undeclared_milestone_is_refused() {
    let log = world(&[]);
    let batch = when(&[&verify("v1", "2024-02-01", "agi")]);
    let r = refused(&log, &batch, 1, "v1");
    assert_eq!(
        r,
        Rejection::MilestoneNotDeclared {
            event: eid("v1"),
            milestone: slug("agi"),
            date: date("2024-02-01"),
        }
    );
}

#[test]
fn verifying_before_the_declaration_date_is_refused() {
    let log = world(&[&declare("d1", "2024-03-01", "agi")]);
    let batch = when(&[&verify("v1", "2024-02-01", "agi")]);
    let r = refused(&log, &batch, 1, "v1");
    assert!(matches!(r, Rejection::MilestoneNotDeclared { .. }));
    // On the declaration date itself it is fine.
    let batch = when(&[&verify("v1", "2024-03-01", "agi")]);
    accepted(&log, &batch);
}

#[test]
fn verifying_a_milestone_twice_is_refused() {
    let log = world(&[
        &declare("d1", "2024-01-01", "agi"),
        &verify("v1", "2024-06-01", "agi"),
    ]);
    let batch = when(&[&verify("v2", "2024-07-01", "agi")]);
    let r = refused(&log, &batch, 1, "v2");
    assert_eq!(
        r,
        Rejection::MilestoneAlreadyVerified {
            event: eid("v2"),
            milestone: slug("agi"),
            verified: date("2024-06-01"),
        }
    );
}

// --------------------------------------------------------------- idempotency

#[test]
fn identical_reappend_is_skipped() {
    let line = issue("i1", "2024-01-01", "acme", "alice", "100");
    let log = world(&[&line]);
    let plan = accepted(&log, &when(&[&line]));
    assert_eq!(plan.skipped, 1);
    assert!(plan.new.is_empty());
}

#[test]
fn identical_reappend_with_the_same_source_and_note_is_skipped() {
    let line = r#"{"id":"i1","type":"shares_issued","effective":"2024-01-01","issuer":"acme","holder":"alice","units":"100","source":"https://example.com/filing","note":"founders"}"#;
    let log = world(&[line]);
    // Same content with keys in another order and the decimal written
    // another way is the same event.
    let again = r#"{"note":"founders","source":"https://example.com/filing","units":"100.0","holder":"alice","issuer":"acme","effective":"2024-01-01","type":"shares_issued","id":"i1"}"#;
    let plan = accepted(&log, &when(&[again]));
    assert_eq!(
        plan,
        Plan {
            new: vec![],
            skipped: 1
        }
    );
}

#[test]
fn same_id_with_a_different_note_conflicts_with_the_log() {
    let log = world(&[
        r#"{"id":"i1","type":"shares_issued","effective":"2024-01-01","issuer":"acme","holder":"alice","units":"100","note":"founders"}"#,
    ]);
    let batch = when(&[
        r#"{"id":"i1","type":"shares_issued","effective":"2024-01-01","issuer":"acme","holder":"alice","units":"100","note":"founders, corrected"}"#,
    ]);
    let r = refused(&log, &batch, 1, "i1");
    // The five parties are seq 1..5.
    assert!(
        matches!(&r, Rejection::IdConflict { event, seq: Some(6), .. } if *event == eid("i1")),
        "{r:?}"
    );
    assert!(r.to_string().contains("seq 6"), "{r}");
}

#[test]
fn same_id_with_a_missing_source_conflicts_with_the_log() {
    let log = world(&[
        r#"{"id":"i1","type":"shares_issued","effective":"2024-01-01","issuer":"acme","holder":"alice","units":"100","source":"filing"}"#,
    ]);
    let batch = when(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let r = refused(&log, &batch, 1, "i1");
    assert!(matches!(r, Rejection::IdConflict { seq: Some(6), .. }));
}

#[test]
fn same_id_with_another_type_conflicts_with_the_log() {
    let log = world(&[]);
    // p2 is alice's registration.
    let batch = when(&[&issue("p2", "2024-01-01", "acme", "alice", "100")]);
    let r = refused(&log, &batch, 1, "p2");
    assert!(
        matches!(&r, Rejection::IdConflict { event, seq: Some(2), .. } if *event == eid("p2")),
        "{r:?}"
    );
}

#[test]
fn the_same_event_twice_in_a_batch_is_skipped_once() {
    let log = world(&[]);
    let line = issue("i1", "2024-01-01", "acme", "alice", "100");
    let batch = when(&[&line, &line]);
    let plan = accepted(&log, &batch);
    assert_eq!(
        plan,
        Plan {
            new: vec![0],
            skipped: 1
        }
    );
    let ledger = ledger_after(&log, &batch);
    assert_eq!(units(&ledger, "acme", "alice"), dec("100"));
}

#[test]
fn same_id_twice_in_a_batch_with_different_content_conflicts() {
    let log = world(&[]);
    let batch = when(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &issue("i1", "2024-01-01", "acme", "alice", "101"),
    ]);
    let r = refused(&log, &batch, 2, "i1");
    assert!(
        matches!(&r, Rejection::IdConflict { event, seq: None, .. } if *event == eid("i1")),
        "{r:?}"
    );
    assert!(r.to_string().contains("earlier in this batch"), "{r}");
}

#[test]
fn a_batch_of_old_and_new_events_appends_only_the_new() {
    let old = issue("i1", "2024-01-01", "acme", "alice", "100");
    let log = world(&[&old]);
    let batch = when(&[
        &old,
        &transfer("t1", "2024-02-01", "alice", "bob", "40"),
        &old,
    ]);
    let plan = accepted(&log, &batch);
    assert_eq!(
        plan,
        Plan {
            new: vec![1],
            skipped: 2
        }
    );
}

// ----------------------------------------------------------------- batches

#[test]
fn the_third_event_of_a_batch_is_refused_by_its_line() {
    let log = world(&[]);
    let batch = when(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t1", "2024-02-01", "alice", "bob", "60"),
        &transfer("t2", "2024-03-01", "alice", "carol", "60"),
        &transfer("t3", "2024-04-01", "bob", "carol", "10"),
    ]);
    let r = refused(&log, &batch, 3, "t2");
    assert!(matches!(
        r,
        Rejection::InsufficientUnits { held, needed, .. } if held == dec("40") && needed == dec("60")
    ));
}

#[test]
fn the_line_comes_from_the_file_not_the_batch_position() {
    let log = world(&[]);
    let mut batch = when(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t1", "2024-02-01", "alice", "alice", "1"),
    ]);
    // As if the file had blank lines.
    batch[0].line = Some(4);
    batch[1].line = Some(9);
    let r = refused(&log, &batch, 9, "t1");
    assert!(matches!(r, Rejection::TransferToSelf { .. }));
    // Events that came from no file carry no line.
    batch[1].line = None;
    let err = plan_batch(&log, &batch).unwrap_err();
    assert_eq!(err.line, None);
    assert!(err.to_string().starts_with("event `t1`"), "{err}");
}

#[test]
fn a_batch_event_may_break_an_earlier_event_of_the_same_batch() {
    // Line 2 is effective before line 1 and starves it: line 2 is named.
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[
        &transfer("t-june", "2024-06-01", "alice", "bob", "80"),
        &transfer("t-march", "2024-03-01", "alice", "carol", "50"),
    ]);
    let r = refused(&log, &batch, 2, "t-march");
    let Rejection::BreaksLaterEvent { cause, .. } = r else {
        panic!("expected BreaksLaterEvent, got {r:?}");
    };
    assert_eq!(cause.event(), &eid("t-june"));
    assert_eq!(cause.rule(), "insufficient_units");
}

#[test]
fn an_empty_batch_is_an_empty_plan() {
    let log = world(&[]);
    assert_eq!(accepted(&log, &[]), Plan::default());
    assert_eq!(accepted(&[], &[]), Plan::default());
}

// --------------------------------------------------------------- reversals

#[test]
fn reversing_an_unknown_event_is_refused() {
    let log = world(&[]);
    let batch = when(&[&reverse("x1", "2024-01-01", "nope")]);
    let r = refused(&log, &batch, 1, "x1");
    assert_eq!(
        r,
        Rejection::UnknownReversedEvent {
            event: eid("x1"),
            reverses: eid("nope"),
        }
    );
}

#[test]
fn reversing_an_event_later_in_the_same_batch_is_refused() {
    let log = world(&[]);
    let batch = when(&[
        &reverse("x1", "2024-06-01", "i1"),
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
    ]);
    let r = refused(&log, &batch, 1, "x1");
    assert!(matches!(r, Rejection::UnknownReversedEvent { .. }));
}

#[test]
fn reversing_a_reversal_is_refused() {
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &reverse("x1", "2024-01-01", "i1"),
    ]);
    let batch = when(&[&reverse("x2", "2024-02-01", "x1")]);
    let r = refused(&log, &batch, 1, "x2");
    assert_eq!(
        r,
        Rejection::ReversalOfReversal {
            event: eid("x2"),
            reverses: eid("x1"),
        }
    );
}

#[test]
fn reversing_twice_is_refused() {
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &reverse("x1", "2024-01-01", "i1"),
    ]);
    let batch = when(&[&reverse("x2", "2024-02-01", "i1")]);
    let r = refused(&log, &batch, 1, "x2");
    assert_eq!(
        r,
        Rejection::AlreadyReversed {
            event: eid("x2"),
            reverses: eid("i1"),
            by: eid("x1"),
        }
    );
}

#[test]
fn reversing_twice_in_one_batch_is_refused() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[
        &reverse("x1", "2024-01-01", "i1"),
        &reverse("x2", "2024-01-01", "i1"),
    ]);
    let r = refused(&log, &batch, 2, "x2");
    assert!(matches!(r, Rejection::AlreadyReversed { ref by, .. } if *by == eid("x1")));
}

#[test]
fn reversal_effective_before_its_target_is_refused() {
    let log = world(&[&issue("i1", "2024-05-01", "acme", "alice", "100")]);
    let batch = when(&[&reverse("x1", "2024-04-30", "i1")]);
    let r = refused(&log, &batch, 1, "x1");
    assert_eq!(
        r,
        Rejection::ReversalBeforeEvent {
            event: eid("x1"),
            reverses: eid("i1"),
            effective: date("2024-04-30"),
            reversed_effective: date("2024-05-01"),
        }
    );
}

#[test]
fn reversing_a_registration_with_dependants_breaks_them() {
    let log = world(&[
        &reg("p-dana", "2024-01-01", "dana"),
        &issue("i1", "2024-02-01", "acme", "dana", "100"),
    ]);
    let batch = when(&[&reverse("x1", "2024-03-01", "p-dana")]);
    let r = refused(&log, &batch, 1, "x1");
    assert_eq!(
        r,
        Rejection::BreaksLaterEvent {
            event: eid("x1"),
            cause: Box::new(Rejection::UnknownParty {
                event: eid("i1"),
                party: slug("dana"),
                date: date("2024-02-01"),
            }),
        }
    );
    assert!(r.to_string().contains("`x1`"), "{r}");
    assert!(r.to_string().contains("`i1`"), "{r}");
}

#[test]
fn reversing_an_issue_that_a_transfer_needs_breaks_the_transfer() {
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t1", "2024-02-01", "alice", "bob", "60"),
    ]);
    let batch = when(&[&reverse("x1", "2024-03-01", "i1")]);
    let r = refused(&log, &batch, 1, "x1");
    let Rejection::BreaksLaterEvent { cause, .. } = r else {
        panic!("expected BreaksLaterEvent, got {r:?}");
    };
    assert!(matches!(
        *cause,
        Rejection::InsufficientUnits { ref event, held, .. } if *event == eid("t1") && held.is_zero()
    ));
}

#[test]
fn reversing_a_transfer_makes_room_for_a_new_one() {
    // alice: 100; t1 gave 80 to bob, so 50 more to carol does not fit...
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t1", "2024-02-01", "alice", "bob", "80"),
    ]);
    let t2 = transfer("t2", "2024-03-01", "alice", "carol", "50");
    let r = refused(&log, &when(&[&t2]), 1, "t2");
    assert!(matches!(r, Rejection::InsufficientUnits { held, .. } if held == dec("20")));
    // ...but once t1 is reversed (as if it never happened) it does, in one
    // batch or in two appends.
    let batch = when(&[&reverse("x1", "2024-02-01", "t1"), &t2]);
    let ledger = ledger_after(&log, &batch);
    assert_eq!(units(&ledger, "acme", "alice"), dec("50"));
    assert_eq!(units(&ledger, "acme", "bob"), Decimal::ZERO);
    assert_eq!(units(&ledger, "acme", "carol"), dec("50"));

    let first = when(&[&reverse("x1", "2024-02-01", "t1")]);
    let plan = accepted(&log, &first);
    let log = commit(&log, &first, &plan);
    accepted(&log, &when(&[&t2]));
}

#[test]
fn reversal_applies_as_if_the_event_never_happened_whatever_its_date() {
    // The reversal is effective long after the transfer; the transfer is
    // still gone from every date, so alice never held less than 100.
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t1", "2024-02-01", "alice", "bob", "80"),
    ]);
    let batch = when(&[
        &reverse("x1", "2025-12-31", "t1"),
        &transfer("t2", "2024-03-01", "alice", "carol", "100"),
    ]);
    let ledger = ledger_after(&log, &batch);
    assert_eq!(units(&ledger, "acme", "carol"), dec("100"));
}

#[test]
fn reversing_a_settlement_reopens_the_obligation() {
    let log = world(&[
        &incur("o1", "2024-01-01", "azure", "100"),
        &settle("s1", "2024-02-01", "azure", "100"),
    ]);
    let batch = when(&[
        &reverse("x1", "2024-02-01", "s1"),
        &settle("s2", "2024-03-01", "azure", "100"),
    ]);
    let ledger = ledger_after(&log, &batch);
    let o = &ledger.obligations[&slug("azure")];
    assert_eq!(o.settled, dec("100"));
    assert_eq!(o.status(), ObligationStatus::Settled);
}

#[test]
fn reversing_an_event_of_the_same_batch_is_accepted() {
    let log = world(&[]);
    let batch = when(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &reverse("x1", "2024-01-01", "i1"),
    ]);
    let ledger = ledger_after(&log, &batch);
    assert_eq!(units(&ledger, "acme", "alice"), Decimal::ZERO);
}

// ------------------------------------------------------------ rule names

#[test]
fn every_rejection_has_a_distinct_rule_name() {
    let e = || eid("e");
    let s = || slug("s");
    let d = || date("2024-01-01");
    let all = [
        Rejection::UnknownParty {
            event: e(),
            party: s(),
            date: d(),
        },
        Rejection::PartyAlreadyRegistered {
            event: e(),
            party: s(),
            registered: d(),
        },
        Rejection::InsufficientUnits {
            event: e(),
            issuer: s(),
            holder: s(),
            class: common(),
            held: Decimal::ZERO,
            needed: Decimal::ONE,
            date: d(),
        },
        Rejection::TransferToSelf {
            event: e(),
            party: s(),
        },
        Rejection::PercentsMustSumTo100 {
            event: e(),
            issuer: s(),
            sum: Decimal::ONE,
        },
        Rejection::UnknownObligation {
            event: e(),
            obligation: s(),
            date: d(),
        },
        Rejection::ObligationAlreadyExists {
            event: e(),
            obligation: s(),
        },
        Rejection::SettlementExceedsOutstanding {
            event: e(),
            obligation: s(),
            amount: money("1", "USD"),
            outstanding: Decimal::ZERO,
            date: d(),
        },
        Rejection::SettlementAfterRelease {
            event: e(),
            obligation: s(),
            released: d(),
        },
        Rejection::ObligationAlreadyReleased {
            event: e(),
            obligation: s(),
            released: d(),
        },
        Rejection::AmendmentBelowSettled {
            event: e(),
            obligation: s(),
            amount: money("1", "USD"),
            settled: Decimal::TWO,
            date: d(),
        },
        Rejection::CurrencyMismatch {
            event: e(),
            obligation: s(),
            expected: Currency::parse("USD").unwrap(),
            found: Currency::parse("EUR").unwrap(),
        },
        Rejection::UnknownRight {
            event: e(),
            right: s(),
            date: d(),
        },
        Rejection::RightAlreadyExists {
            event: e(),
            right: s(),
        },
        Rejection::RightAlreadyEnded {
            event: e(),
            right: s(),
            ended: d(),
        },
        Rejection::MilestoneAlreadyDeclared {
            event: e(),
            milestone: s(),
            declared: d(),
        },
        Rejection::MilestoneNotDeclared {
            event: e(),
            milestone: s(),
            date: d(),
        },
        Rejection::MilestoneAlreadyVerified {
            event: e(),
            milestone: s(),
            verified: d(),
        },
        Rejection::ArithmeticOverflow { event: e() },
        Rejection::IdConflict {
            event: e(),
            seq: None,
            differs: String::new(),
        },
        Rejection::UnknownReversedEvent {
            event: e(),
            reverses: e(),
        },
        Rejection::ReversalOfReversal {
            event: e(),
            reverses: e(),
        },
        Rejection::AlreadyReversed {
            event: e(),
            reverses: e(),
            by: e(),
        },
        Rejection::ReversalBeforeEvent {
            event: e(),
            reverses: e(),
            effective: d(),
            reversed_effective: d(),
        },
        Rejection::BreaksLaterEvent {
            event: e(),
            cause: Box::new(Rejection::ArithmeticOverflow { event: eid("f") }),
        },
    ];
    let names: std::collections::BTreeSet<&str> = all.iter().map(Rejection::rule).collect();
    assert_eq!(names.len(), all.len());
    for r in &all {
        assert!(r.to_string().starts_with("event `e`"), "{r}");
    }
}

// ------------------------------------------------ logs that fail the rules

/// A log written by an older, laxer version: `i-zed` names a party that is
/// never registered.
fn broken_log() -> Vec<RecordedEvent> {
    world(&[&issue("i-zed", "2024-01-01", "acme", "zed", "100")])
}

#[test]
fn a_batch_with_nothing_new_is_accepted_on_a_log_that_fails_the_rules() {
    let log = broken_log();
    assert_eq!(accepted(&log, &[]), Plan::default());
    let again = when(&[&reg("p2", "2020-01-01", "alice")]);
    assert_eq!(
        accepted(&log, &again),
        Plan {
            new: vec![],
            skipped: 1
        }
    );
}

#[test]
fn a_new_event_on_a_log_that_fails_the_rules_is_refused() {
    let log = broken_log();
    let batch = when(&[
        &reg("p-dana", "2024-01-01", "dana"),
        &issue("i1", "2024-02-01", "acme", "dana", "1"),
    ]);
    let r = refused(&log, &batch, 1, "p-dana");
    let Rejection::BreaksLaterEvent { cause, .. } = r else {
        panic!("expected BreaksLaterEvent, got {r:?}");
    };
    assert!(matches!(
        *cause,
        Rejection::UnknownParty { ref event, .. } if *event == eid("i-zed")
    ));
}

#[test]
// Regression: the bisection used to name line 1, whose damage line 2
// repairs; the fold of the whole batch stops at line 3, which is at fault.
fn the_refusal_names_the_event_that_breaks_the_whole_batch() {
    // Line 1 alone would starve `t-later`, but line 2 reverses `t-later`;
    // what is wrong with the batch as a whole is line 3.
    let log = world(&[
        &issue("i1", "2024-01-01", "acme", "alice", "100"),
        &transfer("t-later", "2024-06-01", "alice", "bob", "80"),
    ]);
    let batch = when(&[
        &transfer("t-march", "2024-03-01", "alice", "bob", "50"),
        &reverse("x1", "2024-06-01", "t-later"),
        &transfer("t-self", "2024-07-01", "alice", "alice", "1"),
    ]);
    let r = refused(&log, &batch, 3, "t-self");
    assert!(matches!(r, Rejection::TransferToSelf { .. }));
}

#[test]
fn an_id_conflict_says_which_fields_differ() {
    let log = world(&[&issue("i1", "2024-01-01", "acme", "alice", "100")]);
    let batch = when(&[&issue("i1", "2024-01-02", "acme", "alice", "100")]);
    let text = refused(&log, &batch, 1, "i1").to_string();
    assert!(
        text.contains("with different content: `effective` is 2024-01-01 there, 2024-01-02 here;"),
        "{text}"
    );
}
