//! The engine used as a library, without the binary: the sample log imported through
//! `Engine::append`, then every kind of question asked and the log verified.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use domain::values::{Date, Slug};
use domain::KnownAt;
use engine::{
    Access, Config, Engine, Error, EventFile, ExpectedHead, Options, Parsed, Query, Unavailable,
    WhatIf,
};
use projector::Scope;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// The sample log's files, in import order.
fn sample_files() -> Vec<EventFile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(events_dir())
        .expect("events/ is readable")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("an events file");
            EventFile::new(p.display().to_string(), text)
        })
        .collect()
}

/// A clock that moves one second per reading, from 2026-01-01: recorded times are
/// predictable, and the engine reads no other clock.
fn clock() -> Config {
    let seconds = Arc::new(AtomicI64::new(0));
    Config::new(move || {
        let s = seconds.fetch_add(1, Ordering::SeqCst);
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    })
}

/// Parsed files, which must parse.
fn parsed(files: Vec<EventFile>) -> Parsed {
    Parsed::files(files).expect("the files parse")
}

fn date(s: &str) -> Date {
    Date::parse(s).expect("a date")
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).expect("an id")
}

/// A store with the sample log imported, and the engine on it.
fn sample() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ledger = Engine::open(&dir.path().join("accord.db"), Access::Write, clock()).expect("open");
    let receipts = ledger
        .append(parsed(sample_files()), &Options::default())
        .expect("the sample log is valid");
    assert_eq!(receipts.len(), 7);
    let appended: u64 = receipts.iter().map(|f| f.receipt.appended).sum();
    assert_eq!(appended, 42);
    (dir, ledger)
}

fn percent_of(ledger: &Engine, day: &str, holder: &str) -> Option<String> {
    let p = ledger
        .projection(&Query::as_of(date(day)), None, None)
        .expect("a projection");
    let report = p.ownership(Some(&slug("openai-group")));
    report.entities[0]
        .holders
        .iter()
        .find(|h| h.holder.as_str() == holder)
        .map(|h| h.percent.to_string())
}

#[test]
fn the_sample_log_answers_ownership_obligations_rights_and_verifies() {
    let (_dir, ledger) = sample();

    // Ownership: Microsoft's stake before and after the recapitalization.
    assert_eq!(
        percent_of(&ledger, "2025-10-27", "microsoft").as_deref(),
        Some("32.5")
    );
    assert_eq!(
        percent_of(&ledger, "2025-10-28", "microsoft").as_deref(),
        Some("27")
    );
    assert_eq!(
        percent_of(&ledger, "2025-10-28", "openai-foundation").as_deref(),
        Some("26")
    );
    let p = ledger
        .projection(&Query::as_of(date("2025-10-28")), None, None)
        .unwrap();
    let microsoft = p.ownership(None).entities[0]
        .holders
        .iter()
        .find(|h| h.holder.as_str() == "microsoft")
        .cloned()
        .unwrap();
    assert_eq!(
        microsoft.value.map(|v| v.amount.to_string()).as_deref(),
        Some("135000000000")
    );

    // Obligations: Microsoft's funding commitment ($13B, $11.6B paid in), then from 2025-10-28
    // the Azure commitment and the pledge.
    let outstanding = |day: &str| -> Vec<(String, String)> {
        ledger
            .projection(&Query::as_of(date(day)), None, None)
            .unwrap()
            .obligations(None, Scope::Current)
            .obligations
            .iter()
            .map(|o| (o.obligation.clone(), o.outstanding.amount.to_string()))
            .collect()
    };
    assert_eq!(
        outstanding("2025-10-27"),
        vec![("msft-funding".to_string(), "1400000000".to_string())]
    );
    assert_eq!(
        outstanding("2025-10-28"),
        vec![
            ("azure-commitment".to_string(), "250000000000".to_string()),
            ("foundation-pledge".to_string(), "25000000000".to_string()),
            ("msft-funding".to_string(), "1400000000".to_string()),
        ]
    );

    // Rights in force on both sides of the agreement.
    let in_force = |day: &str| -> BTreeSet<String> {
        ledger
            .projection(&Query::as_of(date(day)), None, None)
            .unwrap()
            .rights(None, Scope::Current)
            .rights
            .iter()
            .filter(|r| r.in_force)
            .map(|r| r.right.clone())
            .collect()
    };
    assert!(in_force("2025-10-27").contains("compute-rofr"));
    assert!(!in_force("2025-10-28").contains("compute-rofr"));
    assert!(in_force("2025-10-28").contains("research-ip"));
    assert!(!in_force("2031-01-01").contains("research-ip"));

    // A party's position, and a party no event registers.
    let position = ledger
        .projection(
            &Query::as_of(date("2025-10-28")),
            Some(&slug("microsoft")),
            None,
        )
        .unwrap()
        .position(&slug("microsoft"), Scope::Current);
    assert_eq!(position.holdings.len(), 1);
    match ledger.projection(
        &Query::as_of(date("2025-10-28")),
        Some(&slug("nobody")),
        None,
    ) {
        Err(Error::Refused(r)) => assert_eq!(r.code, "unknown_party"),
        other => panic!("expected an unknown party, got {other:?}"),
    }

    // verify: every event, the head the store reports.
    let verified = ledger.verify(None).expect("the sample log verifies");
    assert_eq!(verified.events, 42);
    let head = ledger.head().unwrap().expect("a head");
    assert_eq!(verified.head.as_ref(), Some(&head));
    let expected = ExpectedHead {
        seq: head.seq,
        hash: head.hash_hex(),
    };
    ledger
        .verify(Some(&expected))
        .expect("the head is a prefix");
    let wrong = ExpectedHead {
        seq: 3,
        hash: "0".repeat(64),
    };
    assert!(matches!(
        ledger.verify(Some(&wrong)),
        Err(Error::Integrity { seq: Some(3), .. })
    ));

    // The clock of the config is the one the log records.
    let log = ledger.log(0).unwrap();
    assert_eq!(log.len(), 42);
    let first: DateTime<Utc> = log[0].recorded.parse().unwrap();
    assert!(first >= Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    assert!(first < Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 0).unwrap());
}

#[test]
fn a_refused_batch_names_its_event_line_and_rule_and_writes_nothing() {
    let (_dir, ledger) = sample();
    let before = ledger.head().unwrap();
    let bad = EventFile::new(
        "over.jsonl",
        concat!(
            r#"{"id": "s-1", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "foundation-pledge", "amount": {"amount": "1", "currency": "USD"}}"#,
            "\n",
            r#"{"id": "s-2", "type": "obligation_settled", "effective": "2026-02-28", "obligation": "foundation-pledge", "amount": {"amount": "30000000000", "currency": "USD"}}"#,
            "\n"
        ),
    );
    for dry_run in [false, true] {
        let options = Options {
            dry_run,
            ..Options::default()
        };
        match ledger.append(parsed(vec![bad.clone()]), &options) {
            Err(Error::Refused(r)) => {
                assert_eq!(r.line, Some(2));
                assert_eq!(r.event.as_deref(), Some("s-2"));
                assert_eq!(r.code, "settlement_exceeds_outstanding");
                assert!(
                    r.message.starts_with("over.jsonl: line 2: "),
                    "{}",
                    r.message
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(ledger.head().unwrap(), before);
    }
    // A line that is not an event.
    match Parsed::files(vec![EventFile::new("bad.jsonl", "{\"id\": 1}\n")]) {
        Err(Error::Refused(r)) => {
            assert_eq!((r.code, r.line), ("parse_error", Some(1)));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(ledger.head().unwrap(), before);
}

#[test]
fn expect_head_is_compare_and_append() {
    let (_dir, ledger) = sample();
    let head = ledger.head().unwrap().unwrap();
    let line = |id: &str| {
        EventFile::new(
            "one.jsonl",
            format!(
                r#"{{"id": "{id}", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "foundation-pledge", "amount": {{"amount": "1", "currency": "USD"}}}}"#
            ),
        )
    };
    let stale = ExpectedHead {
        seq: head.seq - 1,
        hash: "a".repeat(64),
    };
    let moved = ledger.append(
        parsed(vec![line("s-1")]),
        &Options {
            expect_head: Some(&stale),
            ..Options::default()
        },
    );
    assert!(matches!(moved, Err(Error::HeadMoved { .. })), "{moved:?}");
    assert!(matches!(
        ledger.append(
            parsed(vec![line("s-1")]),
            &Options {
                expect_head: Some(&ExpectedHead::empty()),
                ..Options::default()
            },
        ),
        Err(Error::HeadMoved { .. })
    ));
    assert_eq!(ledger.head().unwrap().as_ref(), Some(&head));
    let current = ExpectedHead {
        seq: head.seq,
        hash: head.hash_hex(),
    };
    let receipts = ledger
        .append(
            parsed(vec![line("s-1")]),
            &Options {
                expect_head: Some(&current),
                ..Options::default()
            },
        )
        .expect("the head is the expected one");
    assert_eq!(receipts[0].receipt.first_seq, Some(43));
    // Sent again: skipped, nothing new.
    let again = ledger
        .append(parsed(vec![line("s-1")]), &Options::default())
        .unwrap();
    assert_eq!(
        (again[0].receipt.appended, again[0].receipt.skipped),
        (0, 1)
    );
    ledger.verify(None).expect("still verifies");
}

#[test]
fn what_if_diff_and_timeline_through_the_library() {
    let (_dir, ledger) = sample();
    let head = ledger.head().unwrap().unwrap();

    // What-if: as if a settlement were appended; nothing is written.
    let file = EventFile::new(
        "what-if.jsonl",
        r#"{"id": "w-1", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}}"#,
    );
    let what_if = WhatIf::parse(&file).unwrap();
    let outstanding = ledger
        .projection(&Query::as_of(date("2026-02-01")), None, Some(&what_if))
        .unwrap()
        .obligations(None, Scope::Current)
        .obligations
        .iter()
        .find(|o| o.obligation == "azure-commitment")
        .map(|o| o.outstanding.amount.to_string());
    assert_eq!(outstanding.as_deref(), Some("247500000000"));
    assert_eq!(ledger.head().unwrap().as_ref(), Some(&head));

    // Appended for real, then the diff between before and after it.
    ledger
        .append(parsed(vec![file]), &Options::default())
        .unwrap();
    let diff = ledger
        .diff(date("2026-02-01"), KnownAt::Seq(42), KnownAt::Everything)
        .unwrap();
    assert_eq!((diff.from_seq, diff.to_seq), (Some(42), Some(43)));
    assert_eq!(diff.restatement.changes.len(), 1);
    assert_eq!(diff.restatement.changes[0].key, "azure-commitment");

    // As known at seq 42, the settlement is not there.
    let known = ledger
        .projection(
            &Query {
                as_of: date("2026-02-01"),
                known_at: KnownAt::Seq(42),
            },
            None,
            None,
        )
        .unwrap()
        .obligations(None, Scope::Current);
    let azure = known
        .obligations
        .iter()
        .find(|o| o.obligation == "azure-commitment")
        .unwrap();
    assert_eq!(azure.outstanding.amount.to_string(), "250000000000");

    // The timeline of the cap table: a change on 2025-10-28.
    let timeline = ledger
        .timeline(
            &Query::as_of(date("2026-01-01")),
            Some(&slug("openai-group")),
        )
        .unwrap();
    let dates: Vec<String> = timeline.entities[0]
        .changes
        .iter()
        .map(|c| c.date.to_string())
        .collect();
    assert!(dates.contains(&"2025-10-28".to_string()), "{dates:?}");
}

#[test]
fn a_missing_store_is_not_created_by_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-here");
    match Engine::open(&path, Access::Read, clock()) {
        Err(Error::Unavailable { reason, .. }) => assert_eq!(reason, Unavailable::Missing),
        Err(other) => panic!("expected a missing store, got {other:?}"),
        Ok(_) => panic!("a missing store opened"),
    }
    assert!(!path.exists());
    // A dry run against nothing validates against an empty log.
    let receipts =
        engine::dry_run_on_empty(parsed(sample_files()), &clock(), &Options::default()).unwrap();
    assert_eq!(receipts.iter().map(|f| f.receipt.appended).sum::<u64>(), 42);
    assert!(!path.exists());
}

#[test]
fn a_second_engine_on_the_same_store_is_refused_as_locked() {
    let (dir, _ledger) = sample();
    match Engine::open(&dir.path().join("accord.db"), Access::Read, clock()) {
        Err(Error::Unavailable { reason, .. }) => assert_eq!(reason, Unavailable::Locked),
        Err(other) => panic!("expected a locked store, got {other:?}"),
        Ok(_) => panic!("a held store opened twice"),
    }
}

#[test]
fn a_copy_has_the_same_log_and_current_query_keys() {
    let (dir, ledger) = sample();
    let target_path = dir.path().join("copy.db");
    let target = Engine::open(&target_path, Access::Write, clock()).unwrap();
    let verified = ledger.copy_to(&target, None).expect("the copy verifies");
    assert_eq!(verified.events, 42);
    assert_eq!(verified.head, ledger.head().unwrap());
    for day in ["2025-10-27", "2025-10-28", "2026-02-01"] {
        let q = Query::as_of(date(day));
        let a = ledger.projection(&q, None, None).unwrap();
        let b = target.projection(&q, None, None).unwrap();
        assert_eq!(a.ledger, b.ledger, "{day}");
    }
    // The target's checkpoints were written with its records: they name its head.
    drop(target);
    let store = store::Store::open_existing(&target_path).unwrap();
    let mut ck = vec![9u8];
    ck.extend_from_slice(&42u64.to_be_bytes());
    assert_eq!(store.aux_get(b"ck").unwrap(), Some(ck));
    assert!(store.aux_get(b"pt/microsoft").unwrap().is_some());
    drop(store);
    // A second copy into it is refused: it is not empty any more.
    let target = Engine::open(&target_path, Access::Write, clock()).unwrap();
    match ledger.copy_to(&target, None) {
        Err(Error::Refused(r)) => assert_eq!(r.code, "target_not_empty"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn one_engine_shared_by_a_writer_and_readers_never_deadlocks() {
    let (_dir, ledger) = sample();
    let ledger = Arc::new(ledger);
    let (done, finished) = std::sync::mpsc::channel::<&'static str>();
    let writer = {
        let ledger = Arc::clone(&ledger);
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 0..40 {
                let line = format!(
                    r#"{{"id": "w-{i}", "type": "obligation_settled", "effective": "2026-02-{:02}", "obligation": "azure-commitment", "amount": {{"amount": "1", "currency": "USD"}}}}"#,
                    1 + i % 28
                );
                ledger
                    .append(
                        parsed(vec![EventFile::new("w.jsonl", line)]),
                        &Options::default(),
                    )
                    .expect("an append");
            }
            let _ = done.send("writer");
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|k| {
            let ledger = Arc::clone(&ledger);
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..15 {
                    if k == 0 {
                        ledger.verify(None).expect("a verify");
                    } else {
                        ledger
                            .projection(&Query::as_of(date("2026-03-01")), None, None)
                            .expect("a query");
                    }
                }
                let _ = done.send("reader");
            })
        })
        .collect();
    for _ in 0..3 {
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("every thread finishes: no deadlock");
    }
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(ledger.verify(None).unwrap().events, 82);
}
