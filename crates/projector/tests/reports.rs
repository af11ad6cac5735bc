//! `ownership_timeline` and `restatement` as a library, given a small log:
//! what counts as a change, which events are named, and that transaction
//! time is respected.

use chrono::{TimeZone, Utc};
use domain::{Date, Event, KnownAt, RecordedEvent, Slug};
use projector::{ownership_timeline, restatement};
use serde_json::{json, Value};

/// Each line is one event, recorded one day after the one before.
fn log(lines: &[Value]) -> Vec<RecordedEvent> {
    lines
        .iter()
        .enumerate()
        .map(|(i, v)| RecordedEvent {
            seq: i as u64 + 1,
            recorded: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::days(i as i64),
            event: Event::from_line(&v.to_string()).unwrap(),
        })
        .collect()
}

fn party(id: &str) -> Value {
    json!({"id": format!("reg-{id}"), "type": "party_registered", "effective": "2020-01-01",
           "party": id, "name": id.to_uppercase(), "kind": "corporation"})
}

fn issue(id: &str, date: &str, holder: &str, units: &str) -> Value {
    json!({"id": id, "type": "shares_issued", "effective": date, "issuer": "acme",
           "holder": holder, "units": units})
}

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn base() -> Vec<Value> {
    vec![
        party("acme"),
        party("alice"),
        party("bob"),
        issue("i1", "2021-01-01", "alice", "100"),
        // Two events on one date are one change, at the end of the day.
        issue("i2", "2022-01-01", "bob", "50"),
        issue("i3", "2022-01-01", "bob", "50"),
        // A split changes units, not percents: a change of units alone.
        json!({"id": "split", "type": "shares_split", "effective": "2022-06-01", "issuer": "acme",
               "numerator": "2", "denominator": "1"}),
        // Alice leaves.
        json!({"id": "t1", "type": "shares_transferred", "effective": "2023-01-01", "issuer": "acme",
               "from": "alice", "to": "bob", "units": "200"}),
    ]
}

#[test]
fn a_timeline_lists_end_of_day_changes_and_splits() {
    let log = log(&base());
    let t = ownership_timeline(&log, date("2030-01-01"), KnownAt::Everything, None).unwrap();
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["entities"].as_array().unwrap().len(), 1);
    let acme = &v["entities"][0];
    assert_eq!(acme["entity"], "acme");
    assert_eq!(
        acme["holders"],
        json!([{"holder": "bob", "name": "BOB"}, {"holder": "alice", "name": "ALICE"}])
    );
    assert_eq!(
        acme["changes"],
        json!([
            {"date": "2021-01-01", "events": ["i1"],
             "holders": [{"holder": "alice", "units": "100", "percent": "100", "before": null,
                          "units_before": null}]},
            {"date": "2022-01-01", "events": ["i2", "i3"],
             "holders": [{"holder": "alice", "units": "100", "percent": "50", "before": "100",
                          "units_before": "100"},
                         {"holder": "bob", "units": "100", "percent": "50", "before": null,
                          "units_before": null}]},
            {"date": "2022-06-01", "events": ["split"],
             "holders": [{"holder": "alice", "units": "200", "percent": "50", "before": "50",
                          "units_before": "100"},
                         {"holder": "bob", "units": "200", "percent": "50", "before": "50",
                          "units_before": "100"}]},
            {"date": "2023-01-01", "events": ["t1"],
             "holders": [{"holder": "bob", "units": "400", "percent": "100", "before": "50",
                          "units_before": "200"},
                         {"holder": "alice", "units": "0", "percent": "0", "before": "50",
                          "units_before": "200"}]}
        ])
    );
}

#[test]
fn a_timeline_respects_valid_and_transaction_time_and_reversals() {
    let mut lines = base();
    lines.push(
        json!({"id": "undo-i3", "type": "event_reversed", "effective": "2022-01-01",
                      "reverses": "i3", "reason": "never issued"}),
    );
    let log = log(&lines);
    let cut = ownership_timeline(&log, date("2022-12-31"), KnownAt::Everything, None).unwrap();
    assert_eq!(cut.entities[0].changes.len(), 3, "two issues and the split");
    // Known after the reversal: bob got 50 units only, a third.
    let after = ownership_timeline(&log, date("2022-12-31"), KnownAt::Everything, None).unwrap();
    let day = &after.entities[0].changes[1];
    assert_eq!(day.events, vec!["i2".to_string()]);
    assert_eq!(day.holders[0].holder.as_str(), "alice");
    assert_eq!(day.holders[0].percent.to_string(), "66.666667");
    // Known before it: half and half, both events named.
    let before = ownership_timeline(&log, date("2022-12-31"), KnownAt::Seq(8), None).unwrap();
    let day = &before.entities[0].changes[1];
    assert_eq!(day.events, vec!["i2".to_string(), "i3".to_string()]);
    assert_eq!(day.holders[0].percent.to_string(), "50");
    // Only one entity, by id; another has no changes.
    let only = Slug::parse("bob").unwrap();
    let none =
        ownership_timeline(&log, date("2030-01-01"), KnownAt::Everything, Some(&only)).unwrap();
    assert!(none.entities.is_empty());
}

#[test]
fn a_restatement_names_the_reversal_for_the_rows_it_changes() {
    let mut lines = base();
    lines.push(
        json!({"id": "undo-i3", "type": "event_reversed", "effective": "2022-03-01",
                      "reverses": "i3", "reason": "never issued"}),
    );
    let log = log(&lines);
    let r = restatement(&log, date("2022-02-01"), KnownAt::Seq(8), KnownAt::Seq(9)).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v["changes"],
        json!([
            {"area": "ownership", "key": "acme:alice:common",
             "before": {"entity": "acme", "holder": "alice", "class": "common", "units": "100", "percent": "50", "value": null},
             "after": {"entity": "acme", "holder": "alice", "class": "common", "units": "100", "percent": "66.666667", "value": null},
             "events": ["undo-i3"]},
            {"area": "ownership", "key": "acme:bob:common",
             "before": {"entity": "acme", "holder": "bob", "class": "common", "units": "100", "percent": "50", "value": null},
             "after": {"entity": "acme", "holder": "bob", "class": "common", "units": "50", "percent": "33.333333", "value": null},
             "events": ["undo-i3"]}
        ])
    );
    assert_eq!(
        v["events"],
        json!([{"seq": 9, "id": "undo-i3", "type": "event_reversed", "effective": "2022-03-01", "reverses": "i3"}])
    );
    // Before the reversed event's date, nothing to restate.
    let early = restatement(&log, date("2021-06-01"), KnownAt::Seq(8), KnownAt::Seq(9)).unwrap();
    assert!(early.changes.is_empty() && early.events.is_empty());
}

#[test]
fn a_restatement_names_a_milestone_for_the_rights_waiting_for_it() {
    let lines = vec![
        party("acme"),
        party("bob"),
        json!({"id": "g", "type": "right_granted", "effective": "2021-01-01", "right": "ip",
               "kind": "ip_rights", "holder": "bob", "grantor": "acme", "until_milestone": "agi"}),
        json!({"id": "other", "type": "right_granted", "effective": "2021-01-01", "right": "rofr",
               "kind": "right_of_first_refusal", "holder": "bob", "grantor": "acme"}),
        json!({"id": "d", "type": "milestone_declared", "effective": "2024-01-01", "milestone": "agi",
               "declared_by": "acme"}),
        json!({"id": "v", "type": "milestone_verified", "effective": "2024-02-01", "milestone": "agi",
               "verified_by": "a panel"}),
    ];
    let log = log(&lines);
    let r = restatement(
        &log,
        date("2025-01-01"),
        KnownAt::Seq(4),
        KnownAt::Everything,
    )
    .unwrap();
    assert_eq!(r.changes.len(), 1, "{r:?}");
    assert_eq!(r.changes[0].area, "rights");
    assert_eq!(r.changes[0].key, "ip");
    assert_eq!(r.changes[0].events, vec!["d".to_string(), "v".to_string()]);
    assert_eq!(r.changes[0].after.as_ref().unwrap()["ended"], "milestone");
}

#[test]
fn a_restatement_names_a_valuation_only_for_values() {
    let mut lines = base();
    lines.push(
        json!({"id": "val", "type": "valuation_recorded", "effective": "2023-06-01",
                      "entity": "acme", "post_money": {"amount": "1000", "currency": "USD"}}),
    );
    lines.push(issue("i4", "2023-07-01", "alice", "400"));
    let log = log(&lines);
    // At 2023-06-15 only the value of bob's holding changes.
    let r = restatement(
        &log,
        date("2023-06-15"),
        KnownAt::Seq(8),
        KnownAt::Everything,
    )
    .unwrap();
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].events, vec!["val".to_string()]);
    // At 2023-08-01 alice is back: her row is new, named by the issue and
    // the valuation that sets its value; the later issue is not named on
    // an earlier date.
    let r = restatement(
        &log,
        date("2023-08-01"),
        KnownAt::Seq(8),
        KnownAt::Everything,
    )
    .unwrap();
    let alice = r
        .changes
        .iter()
        .find(|c| c.key == "acme:alice:common")
        .unwrap();
    assert!(alice.before.is_none());
    assert_eq!(alice.events, vec!["val".to_string(), "i4".to_string()]);
}

#[test]
fn a_restated_row_names_the_events_that_changed_it_not_every_event_of_its_entity() {
    let mut lines = vec![party("acme"), party("alice"), party("bob"), party("carol")];
    lines.push(issue("i-alice", "2021-01-01", "alice", "100"));
    lines.push(issue("i-bob", "2021-01-01", "bob", "100"));
    lines.push(issue("i-carol", "2021-01-01", "carol", "200"));
    let log = log(&lines);
    // Known at seq 5 (alice's issue) against everything: bob and carol are new rows, alice is
    // diluted from 100 % to 25 %.
    let r = projector::restatement(
        &log,
        date("2022-01-01"),
        KnownAt::Seq(5),
        KnownAt::Everything,
    )
    .unwrap();
    let events = |key: &str| -> Vec<String> {
        r.changes
            .iter()
            .find(|c| c.key == key)
            .unwrap_or_else(|| panic!("no change of {key}"))
            .events
            .clone()
    };
    assert_eq!(events("acme:bob:common"), ["i-bob"]);
    assert_eq!(events("acme:carol:common"), ["i-carol"]);
    // Alice's units did not change: the issues to the others diluted her.
    assert_eq!(events("acme:alice:common"), ["i-bob", "i-carol"]);
}
