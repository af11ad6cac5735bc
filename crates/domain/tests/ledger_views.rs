//! What the ledger shows: when a right is in force (`RightState::status`),
//! and which events count at a transaction time (`timeline` with `KnownAt`)
//! and a valid time (`fold` with `as_of`).

use chrono::{DateTime, TimeZone, Utc};
use domain::ledger::{Ledger, ObligationStatus, RightEnd};
use domain::values::{ClassName, Slug};
use domain::{fold, timeline, Date, Event, EventId, KnownAt, RecordedEvent, Rejection};
use rust_decimal::Decimal;

// ---------------------------------------------------------------- harness

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 1, hour, 0, 0).unwrap()
}

/// A recorded log: seq 1.., event n recorded at hour n of 2025-11-01.
fn given(lines: &[&str]) -> Vec<RecordedEvent> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| RecordedEvent {
            seq: i as u64 + 1,
            recorded: at(i as u32 + 1),
            event: Event::from_line(line).unwrap_or_else(|e| panic!("bad test event {line}: {e}")),
        })
        .collect()
}

fn ledger(log: &[RecordedEvent], known_at: KnownAt, as_of: Option<&str>) -> Ledger {
    fold(&timeline(log, known_at), as_of.map(date)).expect("the log folds")
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
fn ids(ordered: &[(u64, &Event)]) -> Vec<String> {
    ordered.iter().map(|(_, e)| e.id.to_string()).collect()
}
fn units(ledger: &Ledger, holder: &str) -> Decimal {
    ledger
        .holdings
        .get(&slug("acme"))
        .and_then(|t| t.get(&(slug(holder), ClassName::common())).copied())
        .unwrap_or(Decimal::ZERO)
}

/// The status of right `ip` on `on`, in a ledger folded up to `on`.
fn right_status(log: &[RecordedEvent], on: &str) -> Option<RightEnd> {
    let l = ledger(log, KnownAt::Everything, Some(on));
    l.rights[&slug("ip")].status(date(on), &l.milestones)
}

const ACME: &str = r#"{"id":"p1","type":"party_registered","effective":"2020-01-01","party":"acme","name":"Acme","kind":"corporation"}"#;
const ALICE: &str = r#"{"id":"p2","type":"party_registered","effective":"2020-01-01","party":"alice","name":"Alice","kind":"individual"}"#;
const BOB: &str = r#"{"id":"p3","type":"party_registered","effective":"2020-01-01","party":"bob","name":"Bob","kind":"individual"}"#;

fn grant(until: Option<&str>, until_milestone: Option<&str>) -> String {
    let mut line = r#"{"id":"g1","type":"right_granted","effective":"2024-01-01","right":"ip","kind":"ip_rights","holder":"alice","grantor":"acme""#.to_string();
    if let Some(u) = until {
        line.push_str(&format!(r#","until":"{u}""#));
    }
    if let Some(m) = until_milestone {
        line.push_str(&format!(r#","until_milestone":"{m}""#));
    }
    line.push('}');
    line
}

fn declare(eff: &str) -> String {
    format!(
        r#"{{"id":"d1","type":"milestone_declared","effective":"{eff}","milestone":"agi","declared_by":"acme"}}"#
    )
}
fn verify(eff: &str) -> String {
    format!(
        r#"{{"id":"v1","type":"milestone_verified","effective":"{eff}","milestone":"agi","verified_by":"independent expert panel"}}"#
    )
}
fn end_right(eff: &str) -> String {
    format!(
        r#"{{"id":"e1","type":"right_ended","effective":"{eff}","right":"ip","reason":"terminated"}}"#
    )
}

// ------------------------------------------------------------ right status

#[test]
fn right_without_limits_stays_in_force() {
    let log = given(&[ACME, ALICE, &grant(None, None)]);
    assert_eq!(right_status(&log, "2024-01-01"), None);
    assert_eq!(right_status(&log, "2099-12-31"), None);
}

#[test]
fn right_does_not_exist_before_its_grant() {
    let log = given(&[ACME, ALICE, &grant(None, None)]);
    let l = ledger(&log, KnownAt::Everything, Some("2023-12-31"));
    assert!(!l.rights.contains_key(&slug("ip")));
}

#[test]
fn right_is_in_force_on_its_until_date_and_expired_the_day_after() {
    let log = given(&[ACME, ALICE, &grant(Some("2030-12-31"), None)]);
    assert_eq!(right_status(&log, "2030-12-30"), None);
    assert_eq!(right_status(&log, "2030-12-31"), None);
    assert_eq!(right_status(&log, "2031-01-01"), Some(RightEnd::Expired));
    assert_eq!(right_status(&log, "2040-06-01"), Some(RightEnd::Expired));
}

#[test]
fn verified_milestone_ends_the_right_on_the_verification_date() {
    let log = given(&[
        ACME,
        ALICE,
        &grant(None, Some("agi")),
        &declare("2025-01-01"),
        &verify("2026-03-15"),
    ]);
    assert_eq!(right_status(&log, "2026-03-14"), None);
    assert_eq!(right_status(&log, "2026-03-15"), Some(RightEnd::Milestone));
    assert_eq!(right_status(&log, "2027-01-01"), Some(RightEnd::Milestone));
    // Declared is not enough.
    assert_eq!(right_status(&log, "2025-06-01"), None);
}

#[test]
fn verification_after_as_of_is_not_seen_even_in_a_full_fold() {
    // Folded over everything, the milestones carry the verification date;
    // `status` still only counts ends on or before the date asked.
    let log = given(&[
        ACME,
        ALICE,
        &grant(None, Some("agi")),
        &declare("2025-01-01"),
        &verify("2026-03-15"),
    ]);
    let l = ledger(&log, KnownAt::Everything, None);
    let right = &l.rights[&slug("ip")];
    assert_eq!(right.status(date("2026-03-14"), &l.milestones), None);
    assert_eq!(
        right.status(date("2026-03-15"), &l.milestones),
        Some(RightEnd::Milestone)
    );
}

#[test]
fn right_ended_ends_it_from_its_effective_date() {
    let log = given(&[ACME, ALICE, &grant(None, None), &end_right("2025-05-01")]);
    assert_eq!(right_status(&log, "2025-04-30"), None);
    assert_eq!(right_status(&log, "2025-05-01"), Some(RightEnd::Ended));
    let l = ledger(&log, KnownAt::Everything, None);
    assert_eq!(l.rights[&slug("ip")].ended, Some(date("2025-05-01")));
}

#[test]
fn earliest_end_wins_milestone_before_until_and_end() {
    let log = given(&[
        ACME,
        ALICE,
        &grant(Some("2026-12-31"), Some("agi")),
        &declare("2025-01-01"),
        &verify("2026-06-01"),
        &end_right("2026-09-01"),
    ]);
    assert_eq!(right_status(&log, "2026-05-31"), None);
    assert_eq!(right_status(&log, "2026-06-01"), Some(RightEnd::Milestone));
    assert_eq!(right_status(&log, "2026-10-01"), Some(RightEnd::Milestone));
    assert_eq!(right_status(&log, "2030-01-01"), Some(RightEnd::Milestone));
}

#[test]
fn earliest_end_wins_until_before_milestone() {
    let log = given(&[
        ACME,
        ALICE,
        &grant(Some("2026-01-31"), Some("agi")),
        &declare("2025-01-01"),
        &verify("2026-06-01"),
    ]);
    assert_eq!(right_status(&log, "2026-01-31"), None);
    assert_eq!(right_status(&log, "2026-02-01"), Some(RightEnd::Expired));
    assert_eq!(right_status(&log, "2026-07-01"), Some(RightEnd::Expired));
}

#[test]
fn earliest_end_wins_explicit_end_before_the_rest() {
    let log = given(&[
        ACME,
        ALICE,
        &grant(Some("2026-12-31"), Some("agi")),
        &declare("2025-01-01"),
        &end_right("2026-03-01"),
        &verify("2026-06-01"),
    ]);
    assert_eq!(right_status(&log, "2026-03-01"), Some(RightEnd::Ended));
    assert_eq!(right_status(&log, "2027-06-01"), Some(RightEnd::Ended));
}

#[test]
fn on_the_same_day_an_explicit_end_is_named_first() {
    let log = given(&[
        ACME,
        ALICE,
        &grant(None, Some("agi")),
        &declare("2025-01-01"),
        &verify("2026-06-01"),
        &end_right("2026-06-01"),
    ]);
    assert_eq!(right_status(&log, "2026-06-01"), Some(RightEnd::Ended));

    // Ended on the first day after `until`: both end it that day.
    let log = given(&[
        ACME,
        ALICE,
        &grant(Some("2026-05-31"), None),
        &end_right("2026-06-01"),
    ]);
    assert_eq!(right_status(&log, "2026-06-01"), Some(RightEnd::Ended));
}

#[test]
fn milestone_verified_before_the_grant_ends_the_right_at_once() {
    let log = given(&[
        ACME,
        ALICE,
        &declare("2023-01-01"),
        &verify("2023-06-01"),
        &grant(None, Some("agi")),
    ]);
    assert_eq!(right_status(&log, "2024-01-01"), Some(RightEnd::Milestone));
}

#[test]
fn amending_until_to_null_removes_the_limit() {
    let log = given(&[
        ACME,
        ALICE,
        &grant(Some("2026-12-31"), None),
        r#"{"id":"a1","type":"right_amended","effective":"2025-01-01","right":"ip","until":null}"#,
    ]);
    // Before the amendment the limit applies to dates up to it...
    let l = ledger(&log, KnownAt::Everything, Some("2024-12-31"));
    assert_eq!(l.rights[&slug("ip")].until, Some(date("2026-12-31")));
    // ...and from it on there is none.
    assert_eq!(right_status(&log, "2030-01-01"), None);
}

#[test]
fn amending_until_milestone_switches_the_milestone() {
    let log = given(&[
        ACME,
        ALICE,
        &grant(None, Some("agi")),
        &declare("2025-01-01"),
        r#"{"id":"a1","type":"right_amended","effective":"2025-02-01","right":"ip","until_milestone":"asi"}"#,
        &verify("2026-06-01"),
    ]);
    // `agi` was verified, but the right now waits for `asi`.
    assert_eq!(right_status(&log, "2027-01-01"), None);
}

// ----------------------------------------------------------------- timeline

const ISSUE: &str = r#"{"id":"i1","type":"shares_issued","effective":"2024-01-01","issuer":"acme","holder":"alice","units":"100"}"#;
const TRANSFER: &str = r#"{"id":"t1","type":"shares_transferred","effective":"2024-06-01","issuer":"acme","from":"alice","to":"bob","units":"40"}"#;
const REVERSE_TRANSFER: &str = r#"{"id":"x1","type":"event_reversed","effective":"2024-07-01","reverses":"t1","reason":"never signed"}"#;

#[test]
fn timeline_orders_by_effective_date_then_seq() {
    let log = given(&[
        ACME,
        r#"{"id":"late","type":"party_registered","effective":"2024-01-02","party":"late","name":"L","kind":"fund"}"#,
        r#"{"id":"b","type":"party_registered","effective":"2024-01-01","party":"b","name":"B","kind":"fund"}"#,
        r#"{"id":"a","type":"party_registered","effective":"2024-01-01","party":"a","name":"A","kind":"fund"}"#,
    ]);
    let ordered = timeline(&log, KnownAt::Everything);
    assert_eq!(ids(&ordered), ["p1", "b", "a", "late"]);
    let seqs: Vec<u64> = ordered.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 3, 4, 2]);
}

#[test]
fn timeline_drops_reversed_events_and_the_reversals() {
    let log = given(&[ACME, ALICE, BOB, ISSUE, TRANSFER, REVERSE_TRANSFER]);
    let ordered = timeline(&log, KnownAt::Everything);
    assert_eq!(ids(&ordered), ["p1", "p2", "p3", "i1"]);
    assert_eq!(KnownAt::default(), KnownAt::Everything);
}

#[test]
fn reversal_recorded_later_does_not_apply_at_an_earlier_seq() {
    let log = given(&[ACME, ALICE, BOB, ISSUE, TRANSFER, REVERSE_TRANSFER]);
    // Known at seq 5, the transfer stands.
    let before = timeline(&log, KnownAt::Seq(5));
    assert_eq!(ids(&before), ["p1", "p2", "p3", "i1", "t1"]);
    let l = ledger(&log, KnownAt::Seq(5), None);
    assert_eq!(units(&l, "alice"), dec("60"));
    assert_eq!(units(&l, "bob"), dec("40"));
    // Known at seq 6, it never happened, on every date.
    let l = ledger(&log, KnownAt::Seq(6), Some("2024-06-30"));
    assert_eq!(units(&l, "alice"), dec("100"));
    assert_eq!(units(&l, "bob"), Decimal::ZERO);
}

#[test]
fn reversal_recorded_later_does_not_apply_at_an_earlier_time() {
    // Event n is recorded at hour n: the reversal (seq 6) at 06:00.
    let log = given(&[ACME, ALICE, BOB, ISSUE, TRANSFER, REVERSE_TRANSFER]);
    let just_before = at(6) - chrono::Duration::seconds(1);
    let l = ledger(&log, KnownAt::Time(just_before), None);
    assert_eq!(units(&l, "bob"), dec("40"));
    // Recorded at the known-at instant is included.
    let l = ledger(&log, KnownAt::Time(at(6)), None);
    assert_eq!(units(&l, "bob"), Decimal::ZERO);
    // Before the transfer was recorded, it is not known at all.
    let l = ledger(&log, KnownAt::Time(at(4)), None);
    assert_eq!(units(&l, "alice"), dec("100"));
    // Before the issue was recorded, nothing is held.
    let l = ledger(&log, KnownAt::Time(at(3)), None);
    assert!(l.holdings.is_empty());
}

#[test]
fn known_at_hides_a_backdated_event_recorded_later() {
    // The settlement effective 2024-03-01 was recorded last (seq 6).
    let log = given(&[
        ACME,
        ALICE,
        r#"{"id":"o1","type":"obligation_incurred","effective":"2024-01-01","obligation":"azure","kind":"purchase_commitment","obligor":"acme","obligee":"alice","amount":{"amount":"100","currency":"USD"}}"#,
        r#"{"id":"s2","type":"obligation_settled","effective":"2024-06-01","obligation":"azure","amount":{"amount":"20","currency":"USD"}}"#,
        r#"{"id":"s3","type":"obligation_settled","effective":"2024-09-01","obligation":"azure","amount":{"amount":"30","currency":"USD"}}"#,
        r#"{"id":"s1","type":"obligation_settled","effective":"2024-03-01","obligation":"azure","amount":{"amount":"50","currency":"USD"}}"#,
    ]);
    let settled =
        |known_at, as_of| ledger(&log, known_at, Some(as_of)).obligations[&slug("azure")].settled;
    assert_eq!(settled(KnownAt::Seq(5), "2024-04-01"), Decimal::ZERO);
    assert_eq!(settled(KnownAt::Everything, "2024-04-01"), dec("50"));
    assert_eq!(settled(KnownAt::Seq(5), "2024-12-31"), dec("50"));
    assert_eq!(settled(KnownAt::Everything, "2024-12-31"), dec("100"));
    let l = ledger(&log, KnownAt::Everything, None);
    assert_eq!(
        l.obligations[&slug("azure")].status(),
        ObligationStatus::Settled
    );
    let l = ledger(&log, KnownAt::Everything, Some("2024-08-31"));
    let o = &l.obligations[&slug("azure")];
    assert_eq!(o.status(), ObligationStatus::Open);
    assert_eq!(o.outstanding(), dec("30"));
}

// --------------------------------------------------------------- fold as_of

#[test]
fn fold_as_of_includes_the_day_and_stops_after_it() {
    let log = given(&[ACME, ALICE, BOB, ISSUE, TRANSFER]);
    assert!(ledger(&log, KnownAt::Everything, Some("2023-12-31"))
        .holdings
        .is_empty());
    let l = ledger(&log, KnownAt::Everything, Some("2024-05-31"));
    assert_eq!(units(&l, "alice"), dec("100"));
    let l = ledger(&log, KnownAt::Everything, Some("2024-06-01"));
    assert_eq!(units(&l, "alice"), dec("60"));
    assert_eq!(units(&l, "bob"), dec("40"));
    assert_eq!(l, ledger(&log, KnownAt::Everything, None));
}

#[test]
fn party_update_shows_from_its_effective_date() {
    let log = given(&[
        ACME,
        r#"{"id":"u1","type":"party_updated","effective":"2025-10-28","party":"acme","name":"Acme Group PBC","kind":"public_benefit_corporation"}"#,
    ]);
    let l = ledger(&log, KnownAt::Everything, Some("2025-10-27"));
    assert_eq!(l.parties[&slug("acme")].name.as_str(), "Acme");
    let l = ledger(&log, KnownAt::Everything, Some("2025-10-28"));
    let acme = &l.parties[&slug("acme")];
    assert_eq!(acme.name.as_str(), "Acme Group PBC");
    assert_eq!(acme.kind.as_str(), "public_benefit_corporation");
    assert_eq!(acme.registered, date("2020-01-01"));
}

#[test]
fn valuation_is_the_latest_on_or_before_the_date() {
    let log = given(&[
        ACME,
        r#"{"id":"v-a","type":"valuation_recorded","effective":"2024-01-01","entity":"acme","post_money":{"amount":"100","currency":"USD"}}"#,
        r#"{"id":"v-b","type":"valuation_recorded","effective":"2025-01-01","entity":"acme","post_money":{"amount":"500","currency":"USD"}}"#,
    ]);
    let l = ledger(&log, KnownAt::Everything, Some("2024-12-31"));
    assert_eq!(l.valuations[&slug("acme")].1.amount.0, dec("100"));
    let l = ledger(&log, KnownAt::Everything, Some("2025-01-01"));
    assert_eq!(l.valuations[&slug("acme")].0, date("2025-01-01"));
    assert_eq!(l.valuations[&slug("acme")].1.amount.0, dec("500"));
}

#[test]
fn fold_names_the_seq_of_an_event_that_breaks_a_rule() {
    // A log written without checks: the transfer takes more than is held.
    let log = given(&[
        ACME,
        ALICE,
        BOB,
        ISSUE,
        r#"{"id":"t9","type":"shares_transferred","effective":"2024-06-01","issuer":"acme","from":"alice","to":"bob","units":"140"}"#,
    ]);
    let err = fold(&timeline(&log, KnownAt::Everything), None).unwrap_err();
    assert_eq!(err.seq, 5);
    assert!(matches!(
        err.rejection,
        Rejection::InsufficientUnits { ref event, held, .. }
            if *event == EventId::parse("t9").unwrap() && held == dec("100")
    ));
    // Up to a date before it, the same log folds.
    assert!(fold(
        &timeline(&log, KnownAt::Everything),
        Some(date("2024-05-31"))
    )
    .is_ok());
    // And known before it was recorded, too.
    assert!(fold(&timeline(&log, KnownAt::Seq(4)), None).is_ok());
}
