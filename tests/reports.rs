//! End-to-end checks of the analysts' reports that a scenario file cannot
//! express: the timeline's SVG is well-formed XML, a what-if leaves the
//! store byte-for-byte unchanged (its head and its whole log), and a diff
//! across a reversal names it. The scenario files `18-timeline.case`,
//! `19-what-if.case` and `20-diff.case` hold the rest.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `accord --store STORE ARGS` in the workspace root, with `stdin`: its exit
/// code, stdout and stderr.
fn run(store: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut cmd = testkit::accord(store);
    cmd.current_dir(testkit::root())
        .args(args)
        .write_stdin(stdin.to_string());
    let r = testkit::run(&mut cmd);
    (r.code, r.stdout, r.stderr)
}

fn ok(store: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(store, args, "");
    assert_eq!(code, 0, "accord {args:?}: {err}");
    assert!(err.is_empty(), "accord {args:?} wrote to stderr: {err}");
    out
}

fn sample(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    ok(&store, &["import", "events"]);
    store
}

/// Everything a reader can see of the store: its head and its whole log
/// with seqs, recorded times and hashes.
fn snapshot(store: &Path) -> (String, String) {
    (
        ok(store, &["head"]),
        ok(store, &["log", "--format", "json"]),
    )
}

#[test]
fn the_timeline_svg_is_well_formed_xml_naming_every_holder() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample(dir.path());
    let svg = ok(
        &store,
        &[
            "timeline",
            "--entity",
            "openai-group",
            "--as-of",
            "2026-10-28",
            "--format",
            "svg",
        ],
    );
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    for want in [
        "Ownership of OpenAI Group PBC (openai-group)",
        "Microsoft Corporation",
        "OpenAI Foundation",
        "2025-10-28",
        "32.5 %",
        "27 %",
        "26 %",
        "27 % since 2025-10-28",
        "26 % since 2025-10-28",
    ] {
        assert!(
            texts.iter().any(|t| t == want),
            "no text {want:?} in {texts:?}"
        );
    }
    // One step line per holder (polylines), and a marker per change point.
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 3, "{lines} polylines");
    let markers = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    // 5 change points on the plot, and 3 legend markers.
    assert_eq!(markers, 5 + 3);
}

#[test]
fn a_what_if_writes_nothing_whether_accepted_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample(dir.path());
    let before = snapshot(&store);
    let round = "tests/scenarios/data/what-if/round.jsonl";
    let overdraw = "tests/scenarios/data/what-if/overdraw.jsonl";
    for args in [
        &["ownership", "--with", round][..],
        &["obligations", "--all", "--with", round],
        &["rights", "--all", "--with", round],
        &["position", "sovereign-fund", "--with", round],
        &["position", "microsoft", "--format", "json", "--with", round],
    ] {
        ok(&store, args);
        assert_eq!(
            snapshot(&store),
            before,
            "accord {args:?} changed the store"
        );
    }
    for cmd in [
        &["ownership"][..],
        &["obligations"],
        &["rights"],
        &["position", "microsoft"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--with", overdraw]);
        let (code, out, err) = run(&store, &args, "");
        assert_eq!(code, 1, "accord {args:?}: {err}");
        assert!(out.is_empty(), "accord {args:?} printed {out}");
        assert_eq!(
            err.lines().next().unwrap_or(""),
            "error: tests/scenarios/data/what-if/overdraw.jsonl: line 2: event `proposed-pledge-payment-2`: settling USD 10000000000 on obligation `foundation-pledge` exceeds its outstanding 5000000000 on 2026-02-15"
        );
        assert_eq!(
            snapshot(&store),
            before,
            "accord {args:?} changed the store"
        );
    }
    // The refusal is word for word that of an append of the same file.
    let (_, _, append_err) = run(&store, &["append", overdraw], "");
    let (_, _, whatif_err) = run(&store, &["ownership", "--with", overdraw], "");
    assert_eq!(append_err, whatif_err);
    assert_eq!(snapshot(&store), before);
}

#[test]
fn a_what_if_on_a_missing_store_fails_with_4_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("nowhere");
    let (code, out, err) = run(
        &store,
        &[
            "ownership",
            "--with",
            "tests/scenarios/data/what-if/round.jsonl",
        ],
        "",
    );
    assert_eq!(code, 4, "{err}");
    assert!(out.is_empty());
    assert!(err.starts_with("error: no store at"), "{err}");
    assert!(!store.exists());
}

#[test]
fn a_diff_across_a_reversal_names_the_reversal_and_the_reversed_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample(dir.path());
    let settle = r#"{"id": "azure-2026-01", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}}"#;
    let (code, _, err) = run(&store, &["append", "-"], settle);
    assert_eq!(code, 0, "{err}");
    let before_reversal = ok(&store, &["head"]);
    let seq = before_reversal.split(':').next().unwrap().to_string();
    let reverse = r#"{"id": "azure-2026-01-reversed", "type": "event_reversed", "effective": "2026-02-15", "reverses": "azure-2026-01", "reason": "booked twice"}"#;
    let (code, _, err) = run(&store, &["append", "-"], reverse);
    assert_eq!(code, 0, "{err}");

    // The reversal is effective 2026-02-15, yet it restates 2026-02-01 too:
    // the reversed settlement is treated as if it had never happened.
    let json = ok(
        &store,
        &[
            "diff",
            "--as-of",
            "2026-02-01",
            "--known-at",
            &seq,
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v}");
    assert_eq!(changes[0]["area"], "obligations");
    assert_eq!(changes[0]["key"], "azure-commitment");
    assert_eq!(changes[0]["before"]["settled"]["amount"], "2500000000");
    assert_eq!(changes[0]["after"]["settled"]["amount"], "0");
    assert_eq!(
        changes[0]["events"],
        serde_json::json!(["azure-2026-01-reversed"])
    );
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{v}");
    assert_eq!(events[0]["reverses"], "azure-2026-01");
    assert_eq!(events[0]["type"], "event_reversed");

    // The other way round, the same change with before and after swapped.
    let back = ok(
        &store,
        &[
            "diff",
            "--as-of",
            "2026-02-01",
            "--known-at",
            "1000",
            "--vs-known-at",
            &seq,
            "--format",
            "json",
        ],
    );
    let b: Value = serde_json::from_str(&back).unwrap();
    assert_eq!(b["changes"][0]["before"], changes[0]["after"]);
    assert_eq!(b["changes"][0]["after"], changes[0]["before"]);
    assert_eq!(b["changes"][0]["events"], changes[0]["events"]);

    // The diff itself writes nothing either.
    let snap = snapshot(&store);
    ok(
        &store,
        &["diff", "--as-of", "2026-02-01", "--known-at", "1"],
    );
    assert_eq!(snapshot(&store), snap);
}
