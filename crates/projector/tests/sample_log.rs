//! The bundled sample log (`events/*.jsonl`, the Microsoft–OpenAI story)
//! replayed as `accord import` does, file by file, and its balances checked
//! against the figures the official texts give: Microsoft's funding commitment,
//! the stakes before and after the 2025-10-28 recapitalization, the rights on
//! 2025-06-01, 2025-10-28 and 2026-05-01, and what was known before and after the
//! 2026-04-27 amendment was recorded.

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
    assert_eq!(log.len(), 42);
    assert_eq!(
        log.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=42).collect::<Vec<u64>>()
    );
}

#[test]
fn every_event_names_a_source_and_no_figure_comes_from_the_seed_article() {
    for r in sample_log() {
        let e = &r.event;
        let source = e.source.as_ref().map(|s| s.to_string()).unwrap_or_default();
        assert!(
            source.starts_with("https://"),
            "{}: source {source:?}",
            e.id
        );
        let note = e.note.as_ref().map(|s| s.to_string()).unwrap_or_default();
        assert!(!note.is_empty(), "{}: no note", e.id);
        // Each note says how far the record goes: an official text, the press, an inference
        // or a modelling choice.
        assert!(
            [
                "OFFICIAL",
                "PRESS-ONLY",
                "INFERRED",
                "MODELLING CHOICE",
                "SPLIT OFF"
            ]
            .iter()
            .any(|k| note.contains(k)),
            "{}: the note does not say its status: {note}",
            e.id
        );
        assert!(!note.contains("13.8B cumulative"), "{}", e.id);
    }
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
    assert!(checked >= 6, "only {checked} dates with a table");
}

#[test]
fn microsoft_stake_before_and_after_the_recapitalization() {
    let log = sample_log();
    let before = on(&log, "2025-10-27").ownership(None);
    let row = holder_row(&before, "openai-group", "microsoft");
    assert_eq!(row["percent"], "32.5");
    assert_eq!(row["units"], "325000000");
    // At the $500B mark of the 2025-10-02 secondary sale.
    assert_eq!(
        row["value"],
        json!({"amount": "162500000000", "currency": "USD"})
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
fn valuation_marks_follow_the_funding_rounds() {
    let log = sample_log();
    let post_money = |day: &str| {
        to_value(&on(&log, day).ownership(None))["entities"][0]["post_money"]["amount"].clone()
    };
    assert_eq!(post_money("2024-10-01"), Value::Null);
    assert_eq!(post_money("2024-10-02"), "157000000000");
    assert_eq!(post_money("2025-03-31"), "300000000000");
    assert_eq!(post_money("2025-10-02"), "500000000000");
    assert_eq!(post_money("2025-10-28"), "500000000000");
}

#[test]
fn microsoft_funding_is_a_13b_commitment_with_11_6b_paid_in() {
    let log = sample_log();
    let funding = |day: &str| -> Value {
        let report = to_value(&on(&log, day).obligations(None, Scope::All));
        report["obligations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["obligation"] == "msft-funding")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(funding("2019-07-21"), Value::Null);
    let first = funding("2019-07-22");
    assert_eq!(first["amount"]["amount"], "1000000000");
    assert_eq!(first["obligor"], "microsoft");
    assert_eq!(first["obligee"], "openai-group");
    assert_eq!(first["kind"], "funding_commitment");
    assert_eq!(funding("2023-01-23")["amount"]["amount"], "13000000000");
    let paid = funding("2025-09-30");
    assert_eq!(paid["settled"]["amount"], "11600000000");
    assert_eq!(paid["outstanding"]["amount"], "1400000000");
    assert_eq!(paid["status"], "open");
    // No event claims the press's $13.8B anywhere.
    for r in &log {
        let text = String::from_utf8(r.event.canonical_bytes()).unwrap();
        assert!(!text.contains("13800000000"), "{}", r.event.id);
    }
}

#[test]
fn microsoft_position_on_the_recapitalization_day() {
    let log = sample_log();
    let p = on(&log, "2025-10-28").position(&slug("microsoft"), Scope::Current);
    let v = to_value(&p);
    assert_eq!(v["party"], "microsoft");
    assert_eq!(v["name"], "Microsoft Corporation");
    assert_eq!(v["invested"], json!([]));
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
    let ids = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                o[if key.starts_with("rights") {
                    "right"
                } else {
                    "obligation"
                }]
                .as_str()
                .unwrap()
                .to_string()
            })
            .collect()
    };
    assert_eq!(ids("owes"), ["msft-funding"]);
    assert_eq!(ids("owed"), ["azure-commitment"]);
    assert_eq!(
        ids("rights_held"),
        [
            "agi-expert-panel",
            "azure-api-exclusivity",
            "ip-exclusivity",
            "ip-rights",
            "msft-pursue-agi",
            "research-ip",
            "revenue-share"
        ]
    );
    assert_eq!(
        ids("rights_granted"),
        [
            "openai-national-security-api",
            "openai-open-weights",
            "openai-third-party-products",
            "revenue-share-to-openai"
        ]
    );
}

#[test]
fn outstanding_obligations_before_and_on_the_recapitalization_day() {
    let log = sample_log();
    let before = to_value(&on(&log, "2025-10-27").obligations(None, Scope::Current));
    assert_eq!(
        before["totals"],
        json!([{"obligor": "microsoft", "currency": "USD", "outstanding": "1400000000"}])
    );

    let after = to_value(&on(&log, "2025-10-28").obligations(None, Scope::Current));
    assert_eq!(
        after["obligations"][0],
        json!({
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
        })
    );
    assert_eq!(
        after["obligations"][1],
        json!({
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
        })
    );
    assert_eq!(
        after["totals"],
        json!([
            {"obligor": "microsoft", "currency": "USD", "outstanding": "1400000000"},
            {"obligor": "openai-foundation", "currency": "USD", "outstanding": "25000000000"},
            {"obligor": "openai-group", "currency": "USD", "outstanding": "250000000000"},
        ])
    );
}

fn rights_in_force_known(log: &[RecordedEvent], day: &str, known: KnownAt) -> BTreeSet<String> {
    let p = project(log, date(day), known).unwrap();
    let report = to_value(&p.rights(None, Scope::Current));
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

fn rights_in_force(log: &[RecordedEvent], day: &str) -> BTreeSet<String> {
    rights_in_force_known(log, day, KnownAt::Everything)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The row of `right` in the `--all` rights report on `day`.
fn right_row(log: &[RecordedEvent], day: &str, right: &str) -> Value {
    right_row_known(log, day, right, KnownAt::Everything)
}

fn right_row_known(log: &[RecordedEvent], day: &str, right: &str, known: KnownAt) -> Value {
    let p = project(log, date(day), known).unwrap();
    let report = to_value(&p.rights(None, Scope::All));
    report["rights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["right"] == right)
        .unwrap_or_else(|| panic!("no right {right} on {day}: {report}"))
        .clone()
}

/// Microsoft's rights that the 2025-10-28 agreement shaped, and OpenAI's new ones.
const OCTOBER_2025: &[&str] = &[
    "agi-expert-panel",
    "azure-api-exclusivity",
    "foundation-additional-equity",
    "ip-exclusivity",
    "ip-rights",
    "msft-pursue-agi",
    "openai-national-security-api",
    "openai-open-weights",
    "openai-third-party-products",
    "research-ip",
    "revenue-share",
    "revenue-share-to-openai",
];

#[test]
fn rights_in_force_over_time() {
    let log = sample_log();
    // 2019 to 2025-01-20: exclusive cloud, and the terms that run through 2030 or to AGI.
    assert_eq!(
        rights_in_force(&log, "2024-06-01"),
        set(&[
            "azure-api-exclusivity",
            "exclusive-cloud",
            "ip-rights",
            "revenue-share",
            "revenue-share-to-openai"
        ])
    );
    // 2025-06-01: the right of first refusal has replaced exclusive cloud.
    assert_eq!(
        rights_in_force(&log, "2025-06-01"),
        set(&[
            "azure-api-exclusivity",
            "compute-rofr",
            "ip-rights",
            "revenue-share",
            "revenue-share-to-openai"
        ])
    );
    for right in ["ip-rights", "azure-api-exclusivity", "revenue-share"] {
        let row = right_row(&log, "2025-06-01", right);
        assert_eq!(row["until"], "2030-12-31", "{right} before 2025-10-28");
        assert_eq!(row["until_milestone"], "agi", "{right} before 2025-10-28");
    }
    // No expert panel before 2025-10-28.
    assert!(!rights_in_force(&log, "2025-10-27").contains("agi-expert-panel"));

    // 2025-10-28: the definitive agreement.
    assert_eq!(rights_in_force(&log, "2025-10-28"), set(OCTOBER_2025));
    let ip = right_row(&log, "2025-10-28", "ip-rights");
    assert_eq!(
        (ip["until"].clone(), ip["until_milestone"].clone()),
        ("2032-12-31".into(), Value::Null)
    );
    let api = right_row(&log, "2025-10-28", "azure-api-exclusivity");
    assert_eq!(
        (api["until"].clone(), api["until_milestone"].clone()),
        (Value::Null, "agi".into())
    );
    let research = right_row(&log, "2025-10-28", "research-ip");
    assert_eq!(research["until"], "2030-12-31");
    assert_eq!(research["until_milestone"], "agi");
    let rofr = right_row(&log, "2025-10-28", "compute-rofr");
    assert_eq!(rofr["ended"], "ended");

    // 2026-05-01, after the 2026-04-27 amendment: the licence is non-exclusive, OpenAI may
    // serve any cloud, Microsoft no longer pays a revenue share, and OpenAI's share runs
    // through 2030 whatever happens with AGI.
    let may = rights_in_force(&log, "2026-05-01");
    for gone in [
        "ip-exclusivity",
        "azure-api-exclusivity",
        "revenue-share-to-openai",
    ] {
        assert!(!may.contains(gone), "{gone} on 2026-05-01");
        assert_eq!(
            right_row(&log, "2026-05-01", gone)["ended"],
            "ended",
            "{gone}"
        );
    }
    for new in [
        "azure-first-ship",
        "openai-any-cloud",
        "ip-rights",
        "revenue-share",
    ] {
        assert!(may.contains(new), "{new} on 2026-05-01");
    }
    let share = right_row(&log, "2026-05-01", "revenue-share");
    assert_eq!(
        (share["until"].clone(), share["until_milestone"].clone()),
        ("2030-12-31".into(), Value::Null)
    );

    // The ends: research-ip and the revenue share through 2030, the licence through 2032.
    assert!(rights_in_force(&log, "2030-12-31").contains("research-ip"));
    let later = rights_in_force(&log, "2031-01-01");
    assert!(!later.contains("research-ip") && !later.contains("revenue-share"));
    assert_eq!(
        right_row(&log, "2031-01-01", "research-ip")["ended"],
        "expired"
    );
    assert!(rights_in_force(&log, "2032-12-31").contains("ip-rights"));
    assert!(!rights_in_force(&log, "2033-01-01").contains("ip-rights"));
}

#[test]
fn what_was_known_before_the_april_2026_amendment_was_recorded() {
    let log = sample_log();
    // The last seq recorded before the first event of the amendment.
    let before = log
        .iter()
        .find(|r| r.event.effective == date("2026-04-27"))
        .map(|r| r.seq - 1)
        .expect("the amendment is in the log");
    let known_before = KnownAt::Seq(before);
    // Asked about 2026-05-01 before the amendment was recorded, the ledger still answered
    // with the October 2025 terms: exclusivity and both revenue shares until AGI.
    assert_eq!(
        rights_in_force_known(&log, "2026-05-01", known_before),
        set(OCTOBER_2025)
    );
    let api = right_row_known(&log, "2026-05-01", "azure-api-exclusivity", known_before);
    assert_eq!(api["in_force"], true);
    assert_eq!(api["until_milestone"], "agi");
    let share = right_row_known(&log, "2026-05-01", "revenue-share", known_before);
    assert_eq!(
        (share["until"].clone(), share["until_milestone"].clone()),
        (Value::Null, "agi".into())
    );
    // Once it is recorded, the same question has the new answer, and the old one stays
    // readable.
    let api = right_row(&log, "2026-05-01", "azure-api-exclusivity");
    assert_eq!(api["in_force"], false);
    assert_eq!(api["ended"], "ended");
    // Dates before the amendment answer the same either way.
    assert_eq!(
        rights_in_force_known(&log, "2026-04-26", known_before),
        rights_in_force(&log, "2026-04-26")
    );
}

#[test]
fn the_agi_milestone_is_listed_undeclared() {
    let log = sample_log();
    // From 2031 no right in force waits for AGI any more, so none lists it.
    for day in ["2025-10-27", "2025-10-28", "2026-05-01"] {
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
                "name": "OpenAI LP",
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
