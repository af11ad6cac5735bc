//! Reads of many scattered records go on two threads in a command and on one in the server
//! (`engine::split_reads`). Both must give every answer a replay gives: as known now, as
//! known at past seqs, a what-if and a diff, on a log whose obligation's stream spans many
//! segments, with a backdated settlement and a reversal recorded late.
//!
//! The switch is process-wide; this file is its own test binary, and only the speed of
//! anything else running here could change.

mod common;
use common::append;

use domain::ledger::Ledger;
use domain::values::Date;
use domain::KnownAt;
use engine::{Access, Config, Engine, EventFile, Query, WhatIf};
use projector::Restatement;

fn config(full_replay: bool) -> Config {
    let mut c = common::ticking_config();
    c.checkpoint_every = 500;
    c.full_replay = full_replay;
    c
}

fn settle(id: &str, day: u32, amount: &str) -> String {
    let date = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
        + chrono::Duration::days(i64::from(day));
    format!(
        r#"{{"id":"{id}","type":"obligation_settled","effective":"{}","obligation":"big","amount":{{"amount":"{amount}","currency":"USD"}}}}"#,
        date.format("%Y-%m-%d")
    )
}

#[test]
fn split_and_unsplit_reads_answer_as_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let engine = Engine::open(&path, Access::Write, config(false)).unwrap();
    let mut lines = vec![
        r#"{"id":"p1","type":"party_registered","effective":"2020-01-01","party":"acme","name":"Acme","kind":"corporation"}"#.to_string(),
        r#"{"id":"p2","type":"party_registered","effective":"2020-01-01","party":"bank","name":"Bank","kind":"corporation"}"#.to_string(),
        r#"{"id":"o1","type":"obligation_incurred","effective":"2020-01-01","obligation":"big","kind":"loan","obligor":"acme","obligee":"bank","amount":{"amount":"1000000","currency":"USD"}}"#.to_string(),
    ];
    lines.extend((0..3000u32).map(|k| settle(&format!("s{k}"), 1 + k / 3, "1.25")));
    append(&engine, "import", &lines);
    // Later batches: a backdated settlement, a reversal, more settlements.
    append(&engine, "late", &[settle("back", 200, "7")]);
    append(
        &engine,
        "reversal",
        &[r#"{"id":"r1","type":"event_reversed","effective":"2021-01-01","reverses":"s10","reason":"test"}"#.to_string()],
    );
    append(
        &engine,
        "more",
        &(0..100u32)
            .map(|k| settle(&format!("m{k}"), 1001 + k, "2"))
            .collect::<Vec<_>>(),
    );
    drop(engine);

    let what_if = WhatIf::parse(&EventFile::new("what-if", settle("w", 300, "3") + "\n")).unwrap();
    let replay = Engine::open(&path, Access::Read, config(true)).unwrap();
    let expected = answers(&replay, &what_if);
    drop(replay);
    for split in [true, false] {
        engine::split_reads(split);
        let fast = Engine::open(&path, Access::Read, config(false)).unwrap();
        let got = answers(&fast, &what_if);
        assert_eq!(got.0.len(), expected.0.len());
        for (i, (a, e)) in got.0.iter().zip(&expected.0).enumerate() {
            assert!(
                a == e,
                "split reads {split}: ledger {i} differs from the replay"
            );
        }
        assert_eq!(
            got.1, expected.1,
            "split reads {split}: a diff differs from the replay"
        );
    }
    engine::split_reads(true);
}

/// Every question of the test: ledgers as of three dates at four known-ats and with the
/// what-if, and the diff of each date between the end of the import and now.
fn answers(engine: &Engine, what_if: &WhatIf) -> (Vec<Ledger>, Vec<Restatement>) {
    let head = 3003 + 1 + 1 + 100;
    let dates = ["2020-06-30", "2021-03-31", "2022-12-31"].map(|d| Date::parse(d).unwrap());
    let knowns = [
        KnownAt::Everything,
        KnownAt::Seq(3003),
        KnownAt::Seq(3004),
        KnownAt::Seq(head - 50),
    ];
    let (mut ledgers, mut diffs) = (Vec::new(), Vec::new());
    for &as_of in &dates {
        for &known_at in &knowns {
            let q = Query { as_of, known_at };
            ledgers.push(engine.projection(&q, None, None).unwrap().ledger);
        }
        let with = engine.projection(&Query::as_of(as_of), None, Some(what_if));
        ledgers.push(with.unwrap().ledger);
        let diff = engine.diff(as_of, KnownAt::Seq(3003), KnownAt::Everything);
        diffs.push(diff.unwrap().restatement);
    }
    (ledgers, diffs)
}
