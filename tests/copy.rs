//! `accord copy FROM TO`: every record moves with its seq, recorded time and hash, the
//! query keys are rebuilt for the target, and the target verifies; a target that holds
//! events is refused and a missing source creates nothing.

use std::path::Path;

use testkit::{accord, ok, ok_stdin, output, run, sample_store, text};

const SETTLE: &str = r#"{"id": "s-1", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}}
{"id": "s-0", "type": "obligation_settled", "effective": "2025-11-30", "obligation": "foundation-pledge", "amount": {"amount": "1000000000", "currency": "USD"}}"#;

const REVERSE: &str = r#"{"id": "r-1", "type": "event_reversed", "effective": "2026-01-31", "reverses": "s-1", "reason": "booked twice"}"#;

/// Every answer a user could ask, for comparing two stores.
fn answers(store: &Path) -> Vec<String> {
    let mut all = vec![
        ok(store, &["log", "--format", "json"]),
        ok(store, &["head"]),
    ];
    for day in ["2025-10-27", "2025-10-28", "2025-12-31", "2026-02-01"] {
        for report in ["ownership", "obligations", "rights"] {
            all.push(ok(store, &[report, "--as-of", day, "--format", "json"]));
        }
        all.push(ok(
            store,
            &[
                "obligations",
                "--as-of",
                day,
                "--known-at",
                "23",
                "--format",
                "json",
            ],
        ));
    }
    all
}

#[test]
fn a_copy_keeps_every_record_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let from = sample_store(dir.path());
    // A second batch, one of it backdated, and a reversal: the target's checkpoints, streams
    // and reversed set must all be rebuilt.
    ok_stdin(&from, &["append", "-"], SETTLE);
    ok_stdin(&from, &["append", "-"], REVERSE);
    let to = dir.path().join("copy.db");
    let copied = ok(
        &from,
        &["copy", from.to_str().unwrap(), to.to_str().unwrap()],
    );
    let head = ok(&from, &["head"]);
    assert_eq!(copied, format!("copied 45 events, head {head}"));
    assert_eq!(answers(&from), answers(&to));
    assert!(ok(&to, &["verify"]).starts_with("ok: 45 events"));

    // The copy goes on as its own ledger: an append there leaves the source alone.
    let more = r#"{"id": "s-2", "type": "obligation_settled", "effective": "2026-02-28", "obligation": "azure-commitment", "amount": {"amount": "1", "currency": "USD"}}"#;
    ok_stdin(&to, &["append", "-"], more);
    assert_eq!(ok(&from, &["head"]), head);
    assert!(ok(&to, &["head"]).starts_with("46:"));
    assert!(ok(&to, &["verify"]).starts_with("ok: 46 events"));

    // JSON, into an empty directory.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let json = ok(
        &from,
        &[
            "copy",
            from.to_str().unwrap(),
            empty.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["copied"], 45);
    assert_eq!(v["head"], head.trim());

    // The same copy again: refused (exit 1) like any target with events, saying that it
    // already holds this very log, and the target is left as it was.
    let before = ok(&empty, &["log", "--format", "json"]);
    let again = output(
        &from,
        &["copy", from.to_str().unwrap(), empty.to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(
        err.contains("already holds this very log (45 events, head 45:")
            && err.contains("nothing to copy"),
        "{err}"
    );
    assert_eq!(ok(&empty, &["log", "--format", "json"]), before);
}

#[test]
fn a_target_with_events_is_refused_and_a_missing_source_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let from = sample_store(dir.path());
    let other = dir.path().join("other.db");
    ok_stdin(
        &other,
        &["append", "-"],
        r#"{"id": "p-1", "type": "party_registered", "effective": "2020-01-01", "party": "alice", "name": "Alice", "kind": "individual"}"#,
    );
    let before = ok(&other, &["log", "--format", "json"]);
    let r = run(accord(&from).args(["copy", from.to_str().unwrap(), other.to_str().unwrap()]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("error: the store "), "{}", r.stderr);
    assert!(r.stderr.contains("holds 1 event:"), "{}", r.stderr);
    assert_eq!(ok(&other, &["log", "--format", "json"]), before);

    let missing = dir.path().join("missing.db");
    let target = dir.path().join("target.db");
    let r = run(accord(&from).args(["copy", missing.to_str().unwrap(), target.to_str().unwrap()]));
    assert_eq!(r.code, 4, "{r:?}");
    assert!(!missing.exists() && !target.exists());
}

#[test]
fn a_store_is_not_copied_into_itself_and_a_damaged_source_creates_no_target() {
    let dir = tempfile::tempdir().unwrap();
    let from = sample_store(dir.path());
    let before = ok(&from, &["log", "--format", "json"]);
    let same = format!("{}/", from.display());
    let r = run(accord(&from).args(["copy", from.to_str().unwrap(), &same]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("the same store"), "{}", r.stderr);
    assert_eq!(ok(&from, &["log", "--format", "json"]), before);

    // A record whose body was changed behind accord's back: the chain check of the copy
    // refuses the source before any target exists.
    {
        let s = store::Store::open_existing(&from).unwrap();
        let forged = br#"{"amount":{"amount":"99000000000","currency":"USD"},"effective":"2021-06-30","id":"2021-06-30-msft-investment-2","instrument":"profit_participation","investee":"openai-group","investor":"microsoft","label":"2021 tranche","type":"investment_made"}"#;
        s.tamper_body_for_tests(8, forged).unwrap();
    }
    let target = dir.path().join("target.db");
    let r = run(accord(&from).args(["copy", from.to_str().unwrap(), target.to_str().unwrap()]));
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("seq 8"), "{}", r.stderr);
    assert!(!target.exists(), "a refused copy created its target");
}
