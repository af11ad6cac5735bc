//! The date index and the aggregate streams are kept in chunks of 1,024 seqs. Appends of
//! every size (one event, a few, more than a chunk at once) on one day and one obligation,
//! through the fast path and the full one, across several chunk boundaries, must leave the
//! keys exactly as `verify` recomputes them from the log, and every answer as a replay
//! gives it.

mod common;
use common::append;

use domain::values::Date;
use domain::KnownAt;
use engine::{Access, Config, Engine, Query};

fn config(full: bool) -> Config {
    let mut c = common::ticking_config();
    c.full_append = full;
    c
}

fn settle(k: usize) -> String {
    format!(
        r#"{{"id":"s{k}","type":"obligation_settled","effective":"2025-06-01","obligation":"big","amount":{{"amount":"1","currency":"USD"}}}}"#
    )
}

#[test]
fn appends_of_every_size_keep_the_chunks_as_verify_recomputes_them() {
    for full in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(&dir.path().join("s"), Access::Write, config(full)).unwrap();
        append(
            &engine,
            "setup",
            &[
                r#"{"id":"p1","type":"party_registered","effective":"2024-01-01","party":"acme","name":"Acme","kind":"corporation"}"#.to_string(),
                r#"{"id":"p2","type":"party_registered","effective":"2024-01-01","party":"bank","name":"Bank","kind":"corporation"}"#.to_string(),
                r#"{"id":"o1","type":"obligation_incurred","effective":"2024-01-02","obligation":"big","kind":"loan","obligor":"acme","obligee":"bank","amount":{"amount":"1000000","currency":"USD"}}"#.to_string(),
            ],
        );
        // 1 + 7 + 1,030 + one at a time + 2,100: every kind of crossing of a chunk end.
        let mut k = 0;
        let mut batch = |n: usize| -> Vec<String> {
            let lines = (k..k + n).map(settle).collect();
            k += n;
            lines
        };
        for (i, n) in [1, 7, 1030, 1, 1, 1, 2100].into_iter().enumerate() {
            append(&engine, &format!("b{i}"), &batch(n));
        }
        for _ in 0..20 {
            append(&engine, "one", &batch(1));
        }
        let verified = engine
            .verify(None)
            .expect("the keys are as the log gives them");
        assert_eq!(verified.events, 3 + 3141 + 20);
        // The answer from the keys is the answer of a replay.
        let as_of = Date::parse("2025-06-02").unwrap();
        let now = engine.projection(&Query::as_of(as_of), None, None).unwrap();
        let replay = engine
            .projection(
                &Query {
                    as_of,
                    known_at: KnownAt::Seq(verified.events as u64),
                },
                None,
                None,
            )
            .unwrap();
        assert_eq!(now.ledger, replay.ledger, "full append: {full}");
    }
}
