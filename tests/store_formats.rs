//! Stores written by an earlier accord stay readable: `tests/fixtures/store-before-frames` was
//! written before sealed segments were stored in frames (one LZ4 block per segment). Today's
//! accord verifies it, answers from it as a replay does, copies it into a store of today's
//! format with the same records, and appends to it, after which the store holds segments of
//! both formats and still verifies.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use testkit::{copy_dir, ok, replayed, root};

const EVENTS: u64 = 1042;
const HEAD: &str = "17735aa4993f2c2bc0b36d7660d52ddf0d0358c0b2b05b5482bf22413107c395";

/// A copy of the fixture in a fresh directory (never the fixture itself: opening a store
/// writes to it).
fn fixture(dir: &Path) -> PathBuf {
    let store = dir.join("old");
    copy_dir(&root().join("tests/fixtures/store-before-frames"), &store);
    store
}

/// Every answer that reads the log, as `store` gives it.
fn answers(store: &Path) -> Vec<String> {
    let mut out = vec![ok(store, &["log", "--format", "json"])];
    for date in ["2019-07-22", "2025-10-28", "2026-06-30"] {
        for report in ["ownership", "obligations", "rights"] {
            out.push(ok(store, &[report, "--as-of", date, "--format", "json"]));
        }
    }
    out.push(ok(
        store,
        &["timeline", "--entity", "openai-group", "--format", "json"],
    ));
    out
}

#[test]
fn a_store_written_before_frames_verifies_and_answers_as_a_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = fixture(dir.path());
    assert_eq!(
        ok(&old, &["verify"]).trim(),
        format!("ok: {EVENTS} events, head {HEAD}")
    );
    for date in ["2019-07-22", "2026-06-30"] {
        for report in ["ownership", "obligations"] {
            let args = [report, "--as-of", date, "--format", "json"];
            assert_eq!(ok(&old, &args), replayed(&old, &args), "{args:?}");
        }
    }
    let log = ok(&old, &["log", "--format", "json"]);
    assert_eq!(log.lines().count() as u64, EVENTS);
    for seq in [1, 42, 43, 600, EVENTS] {
        check_show(&old, &log, seq);
    }
}

/// `show` of the event at `seq` (its id read from `log`, the JSON lines of the whole log)
/// names that seq and its hash.
fn check_show(store: &Path, log: &str, seq: u64) {
    let line = log
        .lines()
        .nth(seq as usize - 1)
        .expect("the log has this seq");
    let logged: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    let id = logged["id"].as_str().expect("an id");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(store, &["show", id, "--format", "json"])).expect("JSON");
    assert_eq!(shown["seq"], serde_json::json!(seq), "{shown}");
    assert_eq!(shown["hash"], logged["hash"], "{shown}");
}

#[test]
fn a_copy_into_todays_format_holds_the_same_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = fixture(dir.path());
    let new = dir.path().join("new");
    ok(
        &old,
        &[
            "copy",
            &old.display().to_string(),
            &new.display().to_string(),
        ],
    );
    assert!(ok(&new, &["verify"]).contains(HEAD));
    assert_eq!(answers(&old), answers(&new));
}

#[test]
fn appending_to_it_mixes_both_formats_and_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = fixture(dir.path());
    // Enough bytes to seal several segments of today's format after the old ones.
    let mut batch = String::new();
    for k in 0..600 {
        writeln!(
            batch,
            r#"{{"id":"fx-party-{k}","type":"party_registered","effective":"2026-07-01","party":"fx-{k}","name":"Fixture party {k} with a name long enough to fill segments","kind":"corporation"}}"#
        )
        .expect("write to a String");
    }
    let file = dir.path().join("more.jsonl");
    std::fs::write(&file, batch).expect("write the batch");
    ok(&old, &["append", &file.display().to_string()]);
    let single = dir.path().join("one.jsonl");
    std::fs::write(
        &single,
        r#"{"id":"fx-party-last","type":"party_registered","effective":"2026-07-02","party":"fx-last","name":"Last","kind":"corporation"}"#,
    )
    .expect("write the event");
    ok(&old, &["append", &single.display().to_string()]);

    let total = EVENTS + 601;
    assert!(ok(&old, &["verify"]).starts_with(&format!("ok: {total} events")));
    // Records from old segments, new ones and the segment in between read alike, one by one
    // and in one pass.
    let log = ok(&old, &["log", "--format", "json"]);
    assert_eq!(log.lines().count() as u64, total, "{log}");
    for seq in [1, 500, EVENTS, EVENTS + 1, EVENTS + 300, total] {
        check_show(&old, &log, seq);
    }
    let args = ["position", "fx-last", "--format", "json"];
    assert_eq!(ok(&old, &args), replayed(&old, &args));
}
