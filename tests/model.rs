//! Model-checked invariants of the real store driven through the domain.
//!
//! Each case runs 5 to 15 steps against a store in a temporary directory.
//! A step appends a small batch (1 to 3 events from a small vocabulary, valid
//! or not, some backdated, some reversals) exactly as `accord append` does:
//! load the log, `plan_batch`, append the new events' canonical bytes. Or it
//! reopens the store. The model is the list of accepted events. After every
//! step: the store holds exactly the model's events, `verify` passes, every
//! projection folds with sane ownership and obligations, and a reopen changes
//! no report.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{plan_batch, BatchEvent, Date, Event, KnownAt, RecordedEvent, EVENT_TYPES};
use projector::{project, Scope};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use store::{NewEvent, Store};
use testkit::vocab::{ty, Vocabulary, PARTIES};

// ------------------------------------------------------------ vocabulary

/// Ids `e0` to `e39`, 24 dates (so a later step often backdates), one amount
/// in seven in EUR; the two holders of a table are two parties.
const VOCAB: Vocabulary = Vocabulary {
    ids: 40,
    days: 24,
    eur_one_in: 7,
    distinct_holders: true,
};

/// Creations (issues, obligations, rights, milestones) and reversals are
/// weighted up, so that both valid and invalid batches are common.
fn event() -> impl Strategy<Value = Event> {
    VOCAB
        .events(prop_oneof![
            3 => Just(ty("shares_issued")),
            2 => Just(ty("obligation_incurred")),
            1 => Just(ty("right_granted")),
            1 => Just(ty("milestone_declared")),
            2 => Just(ty("event_reversed")),
            10 => 0..EVENT_TYPES.len(),
        ])
        .prop_map(|v| Event::from_json(v.clone()).unwrap_or_else(|e| panic!("vocabulary {v}: {e}")))
}

#[derive(Clone, Debug)]
enum Step {
    Append(Vec<Event>),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => prop::collection::vec(event(), 1..4).prop_map(Step::Append),
        1 => Just(Step::Reopen),
    ]
}

// ------------------------------------------------------------ the real thing

fn load(store: &Store) -> Vec<RecordedEvent> {
    store
        .iter()
        .map(|r| {
            let r = r.expect("store record");
            let text = std::str::from_utf8(&r.body).expect("utf-8 body");
            let event = Event::from_line(text).expect("stored body decodes");
            assert_eq!(event.id.as_str(), r.id, "record id vs body id");
            let recorded: DateTime<Utc> = DateTime::parse_from_rfc3339(&r.recorded)
                .expect("recorded is RFC 3339")
                .with_timezone(&Utc);
            RecordedEvent {
                seq: r.seq,
                recorded,
                event,
            }
        })
        .collect()
}

fn open(path: &Path) -> Store {
    Store::create_or_open(path).expect("open store")
}

/// The dates to project on: every effective date of the log plus one day after.
fn dates(model: &[Event]) -> Vec<Date> {
    let set: BTreeSet<Date> = model
        .iter()
        .flat_map(|e| [e.effective, Date(e.effective.0.succ_opt().unwrap())])
        .collect();
    set.into_iter().collect()
}

fn dec(d: &domain::Dec) -> f64 {
    d.0.to_string().parse().expect("decimal as f64")
}

/// Checks the store against the model; returns the reports (as JSON) on
/// every date, for comparison across a reopen.
fn check(store: &Store, model: &[Event]) -> Result<Vec<String>, TestCaseError> {
    let log = load(store);
    let stored: Vec<(String, Vec<u8>)> = log
        .iter()
        .map(|r| (r.event.id.to_string(), r.event.canonical_bytes()))
        .collect();
    let expected: Vec<(String, Vec<u8>)> = model
        .iter()
        .map(|e| (e.id.to_string(), e.canonical_bytes()))
        .collect();
    prop_assert_eq!(stored, expected);
    for (i, r) in log.iter().enumerate() {
        prop_assert_eq!(r.seq, i as u64 + 1);
    }
    prop_assert!(log.windows(2).all(|w| w[0].recorded <= w[1].recorded));
    let head = store
        .verify()
        .map_err(|e| TestCaseError::fail(format!("verify: {e}")))?;
    prop_assert_eq!(head.map(|h| h.seq), log.last().map(|r| r.seq));

    let mut reports = Vec::new();
    for as_of in dates(model) {
        let p = project(&log, as_of, KnownAt::Everything)
            .map_err(|e| TestCaseError::fail(format!("project on {as_of}: {e:?}")))?;
        let own = p.ownership(None);
        for t in &own.entities {
            let sum: f64 = t.holders.iter().map(|h| dec(&h.percent)).sum();
            let tolerance = 1e-6 * (t.holders.len() as f64 + 1.0);
            prop_assert!(
                (sum - 100.0).abs() <= tolerance,
                "{} on {}: percents sum to {}",
                t.entity,
                as_of,
                sum
            );
            for h in &t.holders {
                prop_assert!(
                    dec(&h.units) > 0.0,
                    "{} on {}: {} holds {}",
                    t.entity,
                    as_of,
                    h.holder,
                    h.units.0
                );
            }
        }
        let obs = p.obligations(None, Scope::All);
        for o in &obs.obligations {
            prop_assert!(
                o.settled.amount.0 <= o.amount.amount.0,
                "{} on {}: settled {} > amount {}",
                o.obligation,
                as_of,
                o.settled.amount.0,
                o.amount.amount.0
            );
        }
        let rights = p.rights(None, Scope::All);
        reports.push(
            serde_json::to_string(&json!({
                "ownership": own,
                "obligations": obs,
                "rights": rights,
            }))
            .unwrap(),
        );
    }
    Ok(reports)
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut store = open(&path);
    let mut model: Vec<Event> = Vec::new();
    // Every party is registered before the grid starts, so that most events
    // find their parties; this is an ordinary append through plan_batch.
    let setup: Vec<BatchEvent> = PARTIES
        .iter()
        .map(|p| BatchEvent {
            line: None,
            event: Event::from_json(json!({"id": format!("reg-{p}"), "type": "party_registered",
                "effective": "2020-01-01", "party": p, "name": p, "kind": "corporation"}))
            .unwrap(),
        })
        .collect();
    let plan = plan_batch(&[], &setup).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(plan.new.len(), PARTIES.len());
    let bodies: Vec<Vec<u8>> = setup.iter().map(|b| b.event.canonical_bytes()).collect();
    let appends: Vec<NewEvent<'_>> = setup
        .iter()
        .zip(&bodies)
        .map(|(b, body)| NewEvent {
            id: b.event.id.as_str(),
            body,
        })
        .collect();
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    store
        .append(&appends, t0)
        .map_err(|e| TestCaseError::fail(format!("append: {e}")))?;
    model.extend(setup.into_iter().map(|b| b.event));
    let mut reports = check(&store, &model)?;
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::Append(events) => {
                let log = load(&store);
                let batch: Vec<BatchEvent> = events
                    .into_iter()
                    .enumerate()
                    .map(|(i, event)| BatchEvent {
                        line: Some(i + 1),
                        event,
                    })
                    .collect();
                if let Ok(plan) = plan_batch(&log, &batch) {
                    let new: Vec<&Event> = plan.new.iter().map(|&i| &batch[i].event).collect();
                    let bodies: Vec<Vec<u8>> = new.iter().map(|e| e.canonical_bytes()).collect();
                    let appends: Vec<NewEvent<'_>> = new
                        .iter()
                        .zip(&bodies)
                        .map(|(e, b)| NewEvent {
                            id: e.id.as_str(),
                            body: b,
                        })
                        .collect();
                    if !appends.is_empty() {
                        let now = t0 + Duration::seconds(60 * (n as i64 + 1));
                        let receipt = store
                            .append(&appends, now)
                            .map_err(|e| TestCaseError::fail(format!("append: {e}")))?;
                        prop_assert_eq!(receipt.appended, appends.len() as u64);
                        prop_assert_eq!(receipt.skipped, 0);
                    }
                    model.extend(new.into_iter().cloned());
                }
                reports = check(&store, &model)?;
            }
            Step::Reopen => {
                drop(store);
                store = open(&path);
                let again = check(&store, &model)?;
                prop_assert_eq!(&again, &reports, "reports changed across a reopen");
                reports = again;
            }
        }
    }
    if std::env::var_os("MODEL_STATS").is_some() {
        eprintln!("accepted {} events", model.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(steps in prop::collection::vec(step(), 5..16)) {
        run(steps)?;
    }
}
