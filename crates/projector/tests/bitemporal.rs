//! Valid time and transaction time together: a settlement, and later a
//! reversal of it. Known before the reversal, the settlement counts from its
//! effective date; known after, it never happened, on any date, even on
//! dates before the reversal's own effective date.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{plan_batch, BatchEvent, Date, Event, KnownAt, RecordedEvent, Slug};
use projector::{project, Scope};
use serde_json::{json, Value};

fn at(seq: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::hours(seq as i64)
}

/// Appends each line as its own batch, validated against the log so far.
fn append(log: &mut Vec<RecordedEvent>, line: &str) {
    let event = Event::from_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let batch = [BatchEvent { line: None, event }];
    let plan = plan_batch(log, &batch).unwrap_or_else(|e| panic!("{line} is refused: {e}"));
    assert_eq!(plan.new, vec![0]);
    let seq = log.len() as u64 + 1;
    let [BatchEvent { event, .. }] = batch;
    log.push(RecordedEvent {
        seq,
        recorded: at(seq),
        event,
    });
}

const SETTLEMENT_SEQ: u64 = 4;
const REVERSAL_SEQ: u64 = 6;

fn log() -> Vec<RecordedEvent> {
    let mut log = Vec::new();
    for line in [
        r#"{"id":"p-acme","type":"party_registered","effective":"2020-01-01","party":"acme","name":"Acme","kind":"corporation"}"#,
        r#"{"id":"p-bank","type":"party_registered","effective":"2020-01-01","party":"bank","name":"Bank","kind":"corporation"}"#,
        r#"{"id":"loan","type":"obligation_incurred","effective":"2024-01-01","obligation":"loan","kind":"loan","obligor":"acme","obligee":"bank","amount":{"amount":"100","currency":"USD"},"due":"2024-12-31"}"#,
        // seq 4: the whole loan repaid on 2024-06-01...
        r#"{"id":"repaid","type":"obligation_settled","effective":"2024-06-01","obligation":"loan","amount":{"amount":"100","currency":"USD"},"reference":"wire 1"}"#,
        // seq 5: an unrelated, later fact.
        r#"{"id":"note","type":"party_updated","effective":"2024-03-01","party":"bank","name":"Big Bank"}"#,
        // seq 6: ...was a mistake, as recorded later.
        r#"{"id":"undo","type":"event_reversed","effective":"2024-09-01","reverses":"repaid","reason":"the wire bounced"}"#,
    ] {
        append(&mut log, line);
    }
    assert_eq!(log[SETTLEMENT_SEQ as usize - 1].event.id.as_str(), "repaid");
    assert_eq!(log[REVERSAL_SEQ as usize - 1].event.id.as_str(), "undo");
    log
}

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

/// The `--all` row of the loan and the open obligations, on `as_of` known at
/// `known_at`.
fn loan(log: &[RecordedEvent], as_of: &str, known_at: KnownAt) -> (Value, Value) {
    let p = project(log, date(as_of), known_at).unwrap();
    let all = serde_json::to_value(p.obligations(None, Scope::All)).unwrap();
    let open = serde_json::to_value(p.obligations(None, Scope::Current)).unwrap();
    (all["obligations"][0].clone(), open)
}

fn money(amount: &str) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

/// Transaction times that see the settlement but not its reversal.
fn before_reversal() -> Vec<KnownAt> {
    vec![
        KnownAt::Seq(SETTLEMENT_SEQ),
        KnownAt::Seq(REVERSAL_SEQ - 1),
        KnownAt::Time(at(SETTLEMENT_SEQ)),
        KnownAt::Time(at(REVERSAL_SEQ) - Duration::seconds(1)),
    ]
}

/// Transaction times that see the reversal.
fn after_reversal() -> Vec<KnownAt> {
    vec![
        KnownAt::Seq(REVERSAL_SEQ),
        KnownAt::Seq(99),
        KnownAt::Time(at(REVERSAL_SEQ)),
        KnownAt::Time(at(REVERSAL_SEQ) + Duration::days(365)),
        KnownAt::Everything,
    ]
}

#[test]
fn known_before_the_reversal_the_settlement_counts_from_its_date() {
    let log = log();
    for known in before_reversal() {
        for as_of in ["2024-06-01", "2024-08-31", "2024-09-01", "2030-01-01"] {
            let (row, open) = loan(&log, as_of, known);
            assert_eq!(row["settled"], money("100"), "{as_of} {known:?}");
            assert_eq!(row["outstanding"], money("0"), "{as_of} {known:?}");
            assert_eq!(row["status"], "settled", "{as_of} {known:?}");
            assert_eq!(open["obligations"], json!([]), "{as_of} {known:?}");
            assert_eq!(open["totals"], json!([]), "{as_of} {known:?}");
        }
    }
}

#[test]
fn known_after_the_reversal_the_settlement_never_counts() {
    let log = log();
    // Even on dates before the reversal's own effective date (2024-09-01):
    // a reversal restates history, it does not undo from its date on.
    for known in after_reversal() {
        for as_of in ["2024-06-01", "2024-08-31", "2024-09-01", "2030-01-01"] {
            let (row, open) = loan(&log, as_of, known);
            assert_eq!(row["settled"], money("0"), "{as_of} {known:?}");
            assert_eq!(row["outstanding"], money("100"), "{as_of} {known:?}");
            assert_eq!(row["status"], "open", "{as_of} {known:?}");
            assert_eq!(open["obligations"][0]["obligation"], "loan");
            assert_eq!(
                open["totals"],
                json!([{"obligor": "acme", "currency": "USD", "outstanding": "100"}]),
                "{as_of} {known:?}"
            );
        }
    }
}

#[test]
fn before_the_settlement_date_it_never_counts() {
    let log = log();
    for known in before_reversal().into_iter().chain(after_reversal()) {
        for as_of in ["2024-01-01", "2024-05-31"] {
            let (row, open) = loan(&log, as_of, known);
            assert_eq!(row["settled"], money("0"), "{as_of} {known:?}");
            assert_eq!(row["outstanding"], money("100"), "{as_of} {known:?}");
            assert_eq!(row["status"], "open", "{as_of} {known:?}");
            assert_eq!(open["obligations"].as_array().unwrap().len(), 1);
        }
        // Before it was incurred there is nothing at all.
        let p = project(&log, date("2023-12-31"), known).unwrap();
        assert!(p.obligations(None, Scope::All).obligations.is_empty());
    }
}

#[test]
fn before_the_settlement_was_recorded_it_never_counts() {
    let log = log();
    for known in [
        KnownAt::Seq(SETTLEMENT_SEQ - 1),
        KnownAt::Time(at(SETTLEMENT_SEQ) - Duration::seconds(1)),
    ] {
        for as_of in ["2024-05-31", "2024-06-01", "2030-01-01"] {
            let (row, _) = loan(&log, as_of, known);
            assert_eq!(row["settled"], money("0"), "{as_of} {known:?}");
            assert_eq!(row["status"], "open", "{as_of} {known:?}");
        }
    }
}

#[test]
fn the_reversal_leaves_other_events_alone() {
    let log = log();
    let bank = Slug::parse("bank").unwrap();
    for known in before_reversal().into_iter().chain(after_reversal()) {
        let p = project(&log, date("2024-06-01"), known).unwrap();
        let v = serde_json::to_value(p.position(&bank, Scope::All)).unwrap();
        // The rename (seq 5) shows once it is known, reversal or not.
        let name = if known.includes(&log[4]) {
            "Big Bank"
        } else {
            "Bank"
        };
        assert_eq!(v["name"], name, "{known:?}");
        assert_eq!(v["owed"][0]["obligation"], "loan", "{known:?}");
    }
}

#[test]
fn the_reversed_settlement_can_be_replaced() {
    // After the reversal the loan is open again, so a new settlement of the
    // whole amount is accepted; known before it, the loan stays open.
    let mut log = log();
    append(
        &mut log,
        r#"{"id":"repaid-2","type":"obligation_settled","effective":"2024-10-01","obligation":"loan","amount":{"amount":"100","currency":"USD"}}"#,
    );
    let (row, _) = loan(&log, "2024-10-01", KnownAt::Everything);
    assert_eq!(row["status"], "settled");
    let (row, _) = loan(&log, "2024-09-30", KnownAt::Everything);
    assert_eq!(row["status"], "open");
    let (row, _) = loan(&log, "2024-10-01", KnownAt::Seq(REVERSAL_SEQ));
    assert_eq!(row["status"], "open");
}
