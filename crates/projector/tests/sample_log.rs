//! The bundled sample log (`events/*.jsonl`, the Microsoft–OpenAI story)
//! replayed as `accord import` does, file by file, and its balances checked
//! against the figures the announcements give.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use domain::{parse_jsonl, plan_batch, BatchEvent, Date, KnownAt, RecordedEvent, Slug};
use projector::{project, OwnershipReport, Projection, Scope};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const EVENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");

/// Every `*.jsonl` file of the sample folder in file-name order, each
/// validated as one batch against the log so far, then appended with the
/// next seqs and one fixed recorded time.
fn sample_log() -> Vec<RecordedEvent> {
    let mut files: Vec<_> = std::fs::read_dir(EVENTS_DIR)
        .unwrap_or_else(|e| panic!("cannot read {EVENTS_DIR}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "sample files: {files:?}");
    let recorded = Utc.with_ymd_and_hms(2025, 11, 1, 12, 0, 0).unwrap();
    let mut log: Vec<RecordedEvent> = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let batch: Vec<BatchEvent> = parse_jsonl(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .into_iter()
            .map(|(line, event)| BatchEvent {
                line: Some(line),
                event,
            })
            .collect();
        let plan = plan_batch(&log, &batch)
            .unwrap_or_else(|e| panic!("{} is refused: {e}", path.display()));
        assert_eq!(plan.skipped, 0, "{}", path.display());
        assert_eq!(plan.new.len(), batch.len(), "{}", path.display());
        for i in plan.new {
            let seq = log.len() as u64 + 1;
            log.push(RecordedEvent {
                seq,
                recorded,
                event: batch[i].event.clone(),
            });
        }
    }
    log
}

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str_exact(v.as_str().unwrap_or_else(|| panic!("{v} is no string"))).unwrap()
}

fn on(log: &[RecordedEvent], day: &str) -> Projection {
    project(log, date(day), KnownAt::Everything)
        .unwrap_or_else(|e| panic!("the sample log folds on {day}: {e:?}"))
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

/// The holder row of `holder` in the table of `entity`.
fn holder_row(report: &OwnershipReport, entity: &str, holder: &str) -> Value {
    let report = to_value(report);
    let table = report["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == entity)
        .unwrap_or_else(|| panic!("no table of {entity} in {report}"))
        .clone();
    table["holders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["holder"] == holder)
        .unwrap_or_else(|| panic!("{holder} holds nothing in {table}"))
        .clone()
}

#[test]
fn the_sample_files_are_accepted_in_order() {
    let log = sample_log();
    assert_eq!(log.len(), 22);
    assert_eq!(
        log.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=22).collect::<Vec<u64>>()
    );
}

#[test]
fn openai_group_adds_up_to_100_percent_on_every_date_it_changes() {
    let log = sample_log();
    let dates: BTreeSet<Date> = log.iter().map(|r| r.event.effective).collect();
    let mut checked = 0;
    for d in dates {
        let p = project(&log, d, KnownAt::Everything).unwrap();
        let report = to_value(&p.ownership(Some(&slug("openai-group"))));
        let entities = report["entities"].as_array().unwrap();
        if d < date("2023-01-23") {
            assert!(
                entities.is_empty(),
                "no table before the opening position, {d}"
            );
            continue;
        }
        assert_eq!(entities.len(), 1, "{report}");
        let holders = entities[0]["holders"].as_array().unwrap();
        let percent: Decimal = holders.iter().map(|h| dec(&h["percent"])).sum();
        let units: Decimal = holders.iter().map(|h| dec(&h["units"])).sum();
        assert_eq!(percent, Decimal::ONE_HUNDRED, "on {d}: {report}");
        assert_eq!(units, dec(&entities[0]["total_units"]), "on {d}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} dates with a table");
}

#[test]
fn microsoft_stake_before_and_after_the_recapitalization() {
    let log = sample_log();
    let before = on(&log, "2025-10-27").ownership(None);
    let row = holder_row(&before, "openai-group", "microsoft");
    assert_eq!(row["percent"], "32.5");
    assert_eq!(row["units"], "325000000");
    assert_eq!(
        row["value"],
        json!({"amount": "97500000000", "currency": "USD"})
    );

    let after = on(&log, "2025-10-28").ownership(None);
    let row = holder_row(&after, "openai-group", "microsoft");
    assert_eq!(row["percent"], "27");
    assert_eq!(
        row["value"],
        json!({"amount": "135000000000", "currency": "USD"})
    );
    let foundation = holder_row(&after, "openai-group", "openai-foundation");
    assert_eq!(foundation["percent"], "26");
    assert_eq!(
        foundation["value"],
        json!({"amount": "130000000000", "currency": "USD"})
    );
    // The Foundation held nothing before.
    let before = to_value(&before);
    assert!(!before
        .to_string()
        .contains("\"holder\":\"openai-foundation\""));
}

#[test]
fn microsoft_position_on_the_recapitalization_day() {
    let log = sample_log();
    let p = on(&log, "2025-10-28").position(&slug("microsoft"), Scope::Current);
    let v = to_value(&p);
    assert_eq!(v["party"], "microsoft");
    assert_eq!(v["name"], "Microsoft Corporation");
    assert_eq!(
        v["invested"],
        json!([{
            "investee": "openai-group",
            "amount": {"amount": "13800000000", "currency": "USD"},
            "value": {"amount": "135000000000", "currency": "USD"},
            "multiple": "9.78",
        }])
    );
    assert_eq!(
        v["holdings"],
        json!([{
            "entity": "openai-group",
            "class": "common",
            "units": "270000000",
            "percent": "27",
            "value": {"amount": "135000000000", "currency": "USD"},
        }])
    );
    assert_eq!(v["owes"], json!([]));
    let owed: Vec<&str> = v["owed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["obligation"].as_str().unwrap())
        .collect();
    assert_eq!(owed, ["azure-commitment"]);
}

#[test]
fn outstanding_obligations_before_and_on_the_recapitalization_day() {
    let log = sample_log();
    for scope in [Scope::Current, Scope::All] {
        let before = to_value(&on(&log, "2025-10-27").obligations(None, scope));
        assert_eq!(before["obligations"], json!([]), "{scope:?}");
        assert_eq!(before["totals"], json!([]), "{scope:?}");
    }

    let after = to_value(&on(&log, "2025-10-28").obligations(None, Scope::Current));
    assert_eq!(
        after,
        json!({
            "as_of": "2025-10-28",
            "obligations": [
                {
                    "obligation": "azure-commitment",
                    "kind": "purchase_commitment",
                    "obligor": "openai-group",
                    "obligee": "microsoft",
                    "amount": {"amount": "250000000000", "currency": "USD"},
                    "settled": {"amount": "0", "currency": "USD"},
                    "outstanding": {"amount": "250000000000", "currency": "USD"},
                    "status": "open",
                    "due": null,
                    "overdue": false,
                },
                {
                    "obligation": "foundation-pledge",
                    "kind": "pledge",
                    "obligor": "openai-foundation",
                    "obligee": null,
                    "amount": {"amount": "25000000000", "currency": "USD"},
                    "settled": {"amount": "0", "currency": "USD"},
                    "outstanding": {"amount": "25000000000", "currency": "USD"},
                    "status": "open",
                    "due": null,
                    "overdue": false,
                },
            ],
            "totals": [
                {"obligor": "openai-foundation", "currency": "USD", "outstanding": "25000000000"},
                {"obligor": "openai-group", "currency": "USD", "outstanding": "250000000000"},
            ],
        })
    );
    let for_microsoft =
        to_value(&on(&log, "2025-10-28").obligations(Some(&slug("microsoft")), Scope::Current));
    assert_eq!(
        for_microsoft["totals"],
        json!([{"obligor": "openai-group", "currency": "USD", "outstanding": "250000000000"}])
    );
}

fn rights_in_force(log: &[RecordedEvent], day: &str) -> BTreeSet<String> {
    let report = to_value(&on(log, day).rights(None, Scope::Current));
    report["rights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["in_force"], true, "{r}");
            assert_eq!(r["ended"], Value::Null, "{r}");
            r["right"].as_str().unwrap().to_string()
        })
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The row of `right` in the `--all` rights report on `day`.
fn right_row(log: &[RecordedEvent], day: &str, right: &str) -> Value {
    let report = to_value(&on(log, day).rights(None, Scope::All));
    report["rights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["right"] == right)
        .unwrap_or_else(|| panic!("no right {right} on {day}: {report}"))
        .clone()
}

#[test]
fn rights_in_force_over_time() {
    let log = sample_log();
    assert_eq!(
        rights_in_force(&log, "2025-10-27"),
        set(&[
            "azure-api-exclusivity",
            "compute-rofr",
            "ip-rights",
            "revenue-share"
        ])
    );
    assert_eq!(
        rights_in_force(&log, "2025-10-28"),
        set(&[
            "azure-api-exclusivity",
            "ip-rights",
            "research-ip",
            "revenue-share"
        ])
    );
    // research-ip is in force through 2030-12-31, not the day after.
    assert!(rights_in_force(&log, "2030-12-31").contains("research-ip"));
    assert_eq!(
        rights_in_force(&log, "2031-01-01"),
        set(&["azure-api-exclusivity", "ip-rights", "revenue-share"])
    );
    assert!(rights_in_force(&log, "2032-12-31").contains("ip-rights"));
    assert_eq!(
        rights_in_force(&log, "2033-01-01"),
        set(&["azure-api-exclusivity", "revenue-share"])
    );

    let rofr = right_row(&log, "2025-10-28", "compute-rofr");
    assert_eq!(rofr["in_force"], false);
    assert_eq!(rofr["ended"], "ended");
    let research = right_row(&log, "2031-01-01", "research-ip");
    assert_eq!(research["in_force"], false);
    assert_eq!(research["ended"], "expired");
    assert_eq!(research["until"], "2030-12-31");
    assert_eq!(research["until_milestone"], "agi");
    let ip = right_row(&log, "2033-01-01", "ip-rights");
    assert_eq!(ip["ended"], "expired");
    assert_eq!(ip["until"], "2032-12-31");
    assert_eq!(
        ip["until_milestone"],
        Value::Null,
        "the amendment removed it"
    );
    // Before the amendment, the IP rights waited for AGI with no end date.
    let ip = right_row(&log, "2025-10-27", "ip-rights");
    assert_eq!(ip["until"], Value::Null);
    assert_eq!(ip["until_milestone"], "agi");
}

#[test]
fn the_agi_milestone_is_listed_undeclared() {
    let log = sample_log();
    for day in ["2025-10-27", "2025-10-28", "2031-01-01"] {
        let report = to_value(&on(&log, day).rights(None, Scope::Current));
        assert_eq!(
            report["milestones"],
            json!([{"milestone": "agi", "declared": null, "verified": null}]),
            "{day}"
        );
    }
}

#[test]
fn ownership_json_has_the_cli_shape() {
    let log = sample_log();
    let report = on(&log, "2025-10-28").ownership(None);
    let expected = json!({
        "as_of": "2025-10-28",
        "entities": [{
            "entity": "openai-group",
            "name": "OpenAI Group PBC",
            "total_units": "1000000000",
            "post_money": {"amount": "500000000000", "currency": "USD"},
            "holders": [
                {"holder": "other-holders", "class": "common", "units": "470000000",
                 "percent": "47", "value": {"amount": "235000000000", "currency": "USD"}},
                {"holder": "microsoft", "class": "common", "units": "270000000",
                 "percent": "27", "value": {"amount": "135000000000", "currency": "USD"}},
                {"holder": "openai-foundation", "class": "common", "units": "260000000",
                 "percent": "26", "value": {"amount": "130000000000", "currency": "USD"}},
            ],
        }],
    });
    assert_eq!(to_value(&report), expected);
    // The text itself, fields in the order of CLI.md.
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        concat!(
            r#"{"as_of":"2025-10-28","entities":[{"entity":"openai-group","name":"OpenAI Group PBC","#,
            r#""total_units":"1000000000","post_money":{"amount":"500000000000","currency":"USD"},"#,
            r#""holders":[{"holder":"other-holders","class":"common","units":"470000000","percent":"47","#,
            r#""value":{"amount":"235000000000","currency":"USD"}},"#,
            r#"{"holder":"microsoft","class":"common","units":"270000000","percent":"27","#,
            r#""value":{"amount":"135000000000","currency":"USD"}},"#,
            r#"{"holder":"openai-foundation","class":"common","units":"260000000","percent":"26","#,
            r#""value":{"amount":"130000000000","currency":"USD"}}]}]}"#
        )
    );

    // Before any valuation: null, not a missing field and not zero.
    let report = on(&log, "2024-06-30").ownership(None);
    assert_eq!(
        to_value(&report),
        json!({
            "as_of": "2024-06-30",
            "entities": [{
                "entity": "openai-group",
                "name": "OpenAI Global, LLC",
                "total_units": "1000000000",
                "post_money": null,
                "holders": [
                    {"holder": "other-holders", "class": "common", "units": "675000000",
                     "percent": "67.5", "value": null},
                    {"holder": "microsoft", "class": "common", "units": "325000000",
                     "percent": "32.5", "value": null},
                ],
            }],
        })
    );
    // Before the opening position there is no table at all.
    assert_eq!(
        to_value(&on(&log, "2023-01-22").ownership(None)),
        json!({"as_of": "2023-01-22", "entities": []})
    );
}
