//! End-to-end checks that need more than one command line: a missing store is
//! never created by a read, a store locked by another process (exit 4), a
//! tampered log (exit 3), `--expect-head` with the real head, `--known-at`
//! with recorded timestamps, the jsonl export round trip, `$ACCORD_STORE`.
//!
//! The locked and tampered stores are made with the `store` crate in this
//! test process.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use testkit::{accord, ok, ok_stdin, root, sample_store};

/// Runs and expects `code`, an empty stdout and one `error: ` line first on stderr.
fn fails(store: &Path, args: &[&str], code: i32) -> String {
    let o = accord(store).args(args).output().unwrap();
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(code), "accord {args:?}: {stderr}");
    assert!(o.stdout.is_empty(), "accord {args:?} printed to stdout");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

const READS: &[&[&str]] = &[
    &["log"],
    &["log", "--format", "json"],
    &["ownership"],
    &["obligations", "--format", "csv"],
    &["rights", "--all"],
    &["position", "microsoft"],
    &["verify"],
    &["head"],
    &["export", "--format", "jsonl"],
    &["export", "--format", "ledger"],
    &["timeline"],
    &["timeline", "--format", "svg"],
    &["diff", "--known-at", "1"],
];

#[test]
fn a_read_on_a_missing_store_fails_with_4_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("nowhere");
    for args in READS {
        let err = fails(&store, args, 4);
        assert!(err.contains("no store at"), "{err}");
        assert!(!store.exists(), "accord {args:?} created the store");
    }
    // Nor does a dry run.
    let o = accord(&store)
        .current_dir(root())
        .args(["append", "--dry-run", "events/01-parties.jsonl"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(!store.exists(), "append --dry-run created the store");
}

#[test]
fn a_read_on_an_empty_directory_leaves_it_empty() {
    let dir = tempfile::tempdir().unwrap();
    for args in READS {
        fails(dir.path(), args, 4);
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(entries.is_empty(), "accord {args:?} wrote {entries:?}");
    }
}

#[test]
fn a_store_locked_by_another_process_fails_with_4() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let head = ok(&store, &["head"]);
    {
        let _held = store::Store::open_existing(&store).expect("the test opens the store");
        for args in READS {
            let err = fails(&store, args, 4);
            assert!(err.contains("in use"), "accord {args:?}: {err}");
        }
        let err = fails(
            &store,
            &["import", root().join("events").to_str().unwrap()],
            4,
        );
        assert!(err.contains("in use"), "{err}");
        let err = fails(&store, &["demo"], 4);
        assert!(err.contains("in use"), "{err}");
        let o = accord(&store)
            .args(["append", "-"])
            .write_stdin(
                r#"{"id": "while-locked", "type": "party_registered", "effective": "2025-11-01", "party": "acme", "name": "Acme", "kind": "corporation"}"#,
            )
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4));
        assert!(o.stdout.is_empty());
    }
    // Released: the store is usable again and nothing was written meanwhile.
    assert_eq!(ok(&store, &["head"]), head);
    assert!(ok(&store, &["verify"]).starts_with("ok: 42 events, head "));
}

#[test]
fn verify_after_tampering_fails_with_3_naming_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    assert!(ok(&store, &["verify"]).starts_with("ok: 42 events"));
    {
        let s = store::Store::open_existing(&store).unwrap();
        let forged = br#"{"amount":{"amount":"99000000000","currency":"USD"},"effective":"2021-06-30","id":"2021-06-30-msft-investment-2","instrument":"profit_participation","investee":"openai-group","investor":"microsoft","label":"2021 tranche","type":"investment_made"}"#;
        s.tamper_body_for_tests(8, forged).unwrap();
    }
    let err = fails(&store, &["verify"], 3);
    assert!(err.contains("seq 8"), "{err}");
    let err = fails(&store, &["verify", "--format", "json"], 3);
    assert!(err.contains("seq 8"), "{err}");
}

#[test]
fn verify_expect_head_holds_for_every_later_append_and_fails_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let head = ok(&store, &["head"]);
    let head = head.trim_end();
    assert_eq!(
        ok(&store, &["verify", "--expect-head", head]),
        ok(&store, &["verify"])
    );
    let json: Value = serde_json::from_str(&ok(&store, &["head", "--format", "json"])).unwrap();
    assert_eq!(
        format!("{}:{}", json["seq"], json["hash"].as_str().unwrap()),
        head
    );
    assert!(json["recorded"].is_string());

    ok(
        &store,
        &[
            "record",
            "investment_made",
            "--id",
            "later",
            "--effective",
            "2025-11-01",
            "--investor",
            "microsoft",
            "--investee",
            "openai-group",
            "--amount",
            "$1B",
        ],
    );
    // The old head is still a prefix of the log.
    let out = ok(&store, &["verify", "--expect-head", head]);
    assert!(out.starts_with("ok: 43 events, head "), "{out}");
    // A different store with the same events has other hashes (recorded times differ).
    let other = tempfile::tempdir().unwrap();
    let other = sample_store(other.path());
    let other_head = ok(&other, &["head"]);
    if other_head.trim_end() != head {
        let err = fails(&other, &["verify", "--expect-head", head], 3);
        assert!(err.contains("seq 42"), "{err}");
    }
    // The uppercase form of the same hash is the same head.
    let upper = head.to_ascii_uppercase();
    ok(&store, &["verify", "--expect-head", &upper]);
}

#[test]
fn known_at_a_recorded_timestamp_shows_what_was_believed_then() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    ok_stdin(
        &store,
        &["append", "-"],
        r#"{"id": "azure-2026-01", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}}"#,
    );
    // Recorded times are in microseconds: make sure the reversal gets a later one.
    std::thread::sleep(std::time::Duration::from_millis(5));
    ok_stdin(
        &store,
        &["append", "-"],
        r#"{"id": "azure-2026-01-reversed", "type": "event_reversed", "effective": "2026-01-31", "reverses": "azure-2026-01", "reason": "booked twice"}"#,
    );
    let log: Vec<Value> = ok(&store, &["log", "--format", "json", "--since", "42"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(log.len(), 2);
    let settled_at = log[0]["recorded"].as_str().unwrap();
    let reversed_at = log[1]["recorded"].as_str().unwrap();
    assert!(settled_at < reversed_at, "{settled_at} {reversed_at}");

    let outstanding = |known_at: &str| -> String {
        let v: Value = serde_json::from_str(&ok(
            &store,
            &[
                "obligations",
                "--as-of",
                "2026-02-01",
                "--party",
                "openai-group",
                "--format",
                "json",
                "--known-at",
                known_at,
            ],
        ))
        .unwrap();
        // Microsoft's funding commitment names openai-group as obligee: take its own total.
        v["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["obligor"] == "openai-group")
            .unwrap()["outstanding"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outstanding(settled_at), "247500000000");
    assert_eq!(outstanding(reversed_at), "250000000000");
    assert_eq!(outstanding("43"), "247500000000");
    assert_eq!(outstanding("44"), "250000000000");
    // The same instant written with an offset.
    let t = chrono::DateTime::parse_from_rfc3339(settled_at).unwrap();
    let plus_two = t
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    assert_eq!(outstanding(&plus_two), "247500000000");
}

#[test]
fn export_jsonl_rebuilds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    ok_stdin(
        &store,
        &["append", "-"],
        concat!(
            r#"{"id": "azure-2026-01", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}, "note": "a \"quoted\" note, with a comma"}"#,
            "\n",
            r#"{"id": "azure-2026-01-reversed", "type": "event_reversed", "effective": "2026-01-31", "reverses": "azure-2026-01", "reason": "booked twice"}"#
        ),
    );
    let export = ok(&store, &["export", "--format", "jsonl"]);
    assert_eq!(export.lines().count(), 44);
    for line in export.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for k in ["seq", "recorded", "hash"] {
            assert!(v.get(k).is_none(), "{k} in {line}");
        }
    }
    let copy = dir.path().join("copy");
    ok_stdin(&copy, &["append", "-"], &export);
    assert_eq!(ok(&copy, &["export", "--format", "jsonl"]), export);
    let strip = |s: &str| -> Vec<Value> {
        s.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                let m = v.as_object_mut().unwrap();
                m.remove("recorded");
                m.remove("hash");
                v
            })
            .collect()
    };
    assert_eq!(
        strip(&ok(&copy, &["log", "--format", "json"])),
        strip(&ok(&store, &["log", "--format", "json"]))
    );
    for args in [
        &[
            "obligations",
            "--as-of",
            "2026-02-01",
            "--all",
            "--format",
            "json",
        ][..],
        &["ownership", "--as-of", "2025-10-28", "--format", "json"][..],
    ] {
        assert_eq!(ok(&copy, args), ok(&store, args));
    }
    // Appending the export again to either store changes nothing.
    let receipt: Value = serde_json::from_str(&ok_stdin(
        &store,
        &["append", "-", "--format", "json"],
        &export,
    ))
    .unwrap();
    assert_eq!(receipt["appended"], 0);
    assert_eq!(receipt["skipped"], 44);
}

#[test]
fn the_store_comes_from_the_flag_then_the_environment_then_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let env_store = dir.path().join("from-env");
    let mut cmd = Command::new(testkit::bin());
    let o = cmd
        .current_dir(dir.path())
        .env("ACCORD_STORE", &env_store)
        .arg("import")
        .arg(root().join("events"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(env_store.exists());
    assert!(!dir.path().join("accord.db").exists());

    // No flag, no environment: ./accord.db.
    let mut cmd = Command::new(testkit::bin());
    let o = cmd
        .current_dir(dir.path())
        .env_remove("ACCORD_STORE")
        .args(["append", "-"])
        .write_stdin(std::fs::read(root().join("events/01-parties.jsonl")).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(dir.path().join("accord.db").exists());

    // The flag wins over the environment.
    let mut cmd = Command::new(testkit::bin());
    let o = cmd
        .current_dir(dir.path())
        .env("ACCORD_STORE", &env_store)
        .args(["--store", "accord.db", "head"])
        .output()
        .unwrap();
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("6:"));
}

#[test]
fn csv_outputs_parse_with_a_header_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    for (args, header) in [
        (
            &["log"][..],
            "seq,recorded,effective,type,id,payload,source,note,hash",
        ),
        (
            &["ownership", "--as-of", "2025-10-28"][..],
            "as_of,entity,name,holder,class,units,percent,value,currency",
        ),
        (
            &["obligations", "--as-of", "2025-10-28"][..],
            "as_of,obligation,kind,obligor,obligee,currency,amount,settled,outstanding,status,due,overdue",
        ),
        (
            &["rights", "--as-of", "2025-10-28", "--all"][..],
            "as_of,right,kind,holder,grantor,until,until_milestone,in_force,ended",
        ),
        (
            &["position", "microsoft", "--as-of", "2025-10-28"][..],
            "section,item,detail,units,percent,amount,value,currency,multiple,status",
        ),
    ] {
        let mut full = args.to_vec();
        full.extend(["--format", "csv"]);
        let out = ok(&store, &full);
        assert_eq!(out.lines().next(), Some(header), "{args:?}");
        assert!(out.lines().count() > 1, "{args:?}: no rows");
        // Quoted fields may hold commas: count fields outside quotes.
        let columns = header.split(',').count();
        let mut quoted = false;
        let mut fields = 1;
        for c in out.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => fields += 1,
                '\n' if !quoted => {
                    assert_eq!(fields, columns, "{args:?}: a record of {fields} fields");
                    fields = 1;
                }
                _ => {}
            }
        }
        assert!(!quoted, "{args:?}: an unterminated quote");
    }
}
