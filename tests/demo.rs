//! Acceptance of `accord demo` on a fresh store: the figures of the
//! 2025-10-28 Microsoft-OpenAI agreement, idempotence, and `verify`.

use std::path::Path;

use testkit::{accord, checked};

/// `accord ARGS`, which must exit 0 and write nothing to stderr: its stdout.
fn run(store: &Path, args: &[&str]) -> String {
    let r = checked(accord(store).args(args), args);
    assert!(r.stderr.is_empty(), "accord {args:?} wrote to stderr");
    r.stdout
}

/// The position of `needle` in `hay` at or after `from`, or a failure that shows `hay`.
fn find(hay: &str, needle: &str, from: usize) -> usize {
    match hay[from..].find(needle) {
        Some(i) => from + i,
        None => panic!("{needle:?} not found after byte {from} of:\n{hay}"),
    }
}

#[test]
fn demo_shows_the_recapitalization_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo.db");
    let out = run(&store, &["demo"]);

    // The day before: Microsoft 32.5 %.
    let before = find(&out, "As of 2025-10-27", 0);
    let msft_before = find(&out, "microsoft", before);
    let line = out[msft_before..].lines().next().unwrap();
    assert!(line.contains("32.5 %"), "{line}");
    assert!(line.contains("162,500,000,000 USD"), "{line}");
    // Microsoft's funding commitment: $13B, $11.6B paid in by 2025-09-30.
    let funding = &out[find(&out, "msft-funding", before)..];
    let funding = funding.lines().next().unwrap();
    assert!(funding.contains("13,000,000,000 USD"), "{funding}");
    assert!(funding.contains("1,400,000,000 USD"), "{funding}");

    // The day of: Microsoft 27 % worth $135B, the Foundation 26 % worth $130B.
    let day = find(&out, "As of 2025-10-28", before);
    let msft = &out[find(&out, "  microsoft ", day)..];
    let msft = msft.lines().next().unwrap();
    assert!(msft.contains("27 %"), "{msft}");
    assert!(msft.contains("135,000,000,000"), "{msft}");
    let foundation = &out[find(&out, "  openai-foundation ", day)..];
    let foundation = foundation.lines().next().unwrap();
    assert!(foundation.contains("26 %"), "{foundation}");
    assert!(foundation.contains("130,000,000,000"), "{foundation}");

    // The $250B Azure commitment and the $25B pledge, outstanding.
    let obligations = find(&out, "Obligations on 2025-10-28:", day);
    let azure = &out[find(&out, "azure-commitment", obligations)..];
    let azure = azure.lines().next().unwrap();
    assert!(azure.contains("250,000,000,000 USD"), "{azure}");
    assert!(azure.contains("open"), "{azure}");
    let pledge = &out[find(&out, "foundation-pledge", obligations)..];
    let pledge = pledge.lines().next().unwrap();
    assert!(pledge.contains("25,000,000,000 USD"), "{pledge}");
    let totals = find(&out, "Outstanding by obligor:", obligations);
    let totals = &out[totals..find(&out, "Rights on 2025-10-28", totals)];
    assert!(totals.contains("25,000,000,000 USD"), "{totals}");
    assert!(totals.contains("250,000,000,000 USD"), "{totals}");
    assert!(out.contains("42 appended, 0 already there"), "{out}");

    // The day after the April 2026 amendment: Azure API exclusivity ended, the revenue share
    // through 2030 without an AGI limit, OpenAI free to use any cloud.
    let april = find(&out, "As of 2026-04-28", day);
    let rights = &out[find(&out, "Rights on 2026-04-28:", april)..];
    let row = |right: &str| {
        rights[find(rights, &format!("  {right} "), 0)..]
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    assert!(
        row("azure-api-exclusivity").contains("no (ended)"),
        "{rights}"
    );
    assert!(row("ip-exclusivity").contains("no (ended)"), "{rights}");
    assert!(row("openai-any-cloud").ends_with("yes"), "{rights}");
    let share = row("revenue-share");
    assert!(
        share.contains("2030-12-31") && share.ends_with("yes"),
        "{share}"
    );

    // A second run appends nothing and leaves the log byte-identical.
    let log = run(&store, &["log", "--format", "json"]);
    assert_eq!(log.lines().count(), 42);
    let head = run(&store, &["head"]);
    let again = run(&store, &["demo"]);
    assert!(again.contains("0 appended, 42 already there"), "{again}");
    assert_eq!(run(&store, &["log", "--format", "json"]), log);
    assert_eq!(run(&store, &["head"]), head);
    // The same report both times, but for the counts line.
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&again), body(&out));

    // verify: `ok: 22 events, head <64 hex>`, the same hash as `head`.
    let verify = run(&store, &["verify"]);
    let hash = verify
        .strip_prefix("ok: 42 events, head ")
        .and_then(|h| h.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("verify printed {verify:?}"));
    assert_eq!(hash.len(), 64, "{verify}");
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{verify}"
    );
    assert_eq!(head, format!("42:{hash}\n"));
}

#[test]
fn demo_json_has_the_three_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo.db");
    let out = run(&store, &["demo", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["appended"], 42);
    assert_eq!(v["skipped"], 0);
    let days = v["days"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(days[0]["as_of"], "2025-10-27");
    assert_eq!(days[1]["as_of"], "2025-10-28");
    assert_eq!(days[2]["as_of"], "2026-04-28");
    let holders = |d: &serde_json::Value| d["ownership"]["entities"][0]["holders"].clone();
    let msft = |d: &serde_json::Value| {
        holders(d)
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["holder"] == "microsoft")
            .cloned()
            .unwrap()
    };
    assert_eq!(msft(&days[0])["percent"], "32.5");
    assert_eq!(msft(&days[1])["percent"], "27");
    assert_eq!(msft(&days[1])["value"]["amount"], "135000000000");
    let totals = &days[1]["obligations"]["totals"];
    assert_eq!(totals[0]["outstanding"], "1400000000");
    assert_eq!(totals[1]["outstanding"], "25000000000");
    assert_eq!(totals[2]["outstanding"], "250000000000");
}

#[test]
fn demo_matches_an_import_of_the_events_folder() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo.db");
    let imported = dir.path().join("imported.db");
    run(&demo, &["demo"]);
    testkit::import_sample(&imported);
    let export = |s: &Path| run(s, &["export", "--format", "jsonl"]);
    assert_eq!(export(&demo), export(&imported));
}

/// `accord demo` never loads the sample into a user's own ledger.
#[test]
fn demo_refuses_a_store_with_events_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("mine.db");
    let own = r#"{"id": "p-1", "type": "party_registered", "effective": "2020-01-01", "party": "alice", "name": "Alice", "kind": "individual"}"#;
    let o = accord(&store)
        .args(["append", "-"])
        .write_stdin(own)
        .output()
        .unwrap();
    assert!(o.status.success());
    let before = run(&store, &["log", "--format", "json"]);
    for args in [vec!["demo"], vec!["demo", "--format", "json"]] {
        let o = accord(&store).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(
            err.starts_with("error: the store ") && err.contains("`p-1`"),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
    assert_eq!(run(&store, &["log", "--format", "json"]), before);
}

#[test]
fn the_hint_at_the_end_names_a_command_that_runs_from_here() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Installed: `accord` on the PATH is this binary.
    let installed = run(&store, &["demo"]);
    assert!(installed.contains("\nTry: accord --store "), "{installed}");
    assert!(!installed.contains("not on your PATH"), "{installed}");
    // As `cargo run -- demo` runs it: not on the PATH, so the hint gives the binary's path
    // and how to put it on the PATH.
    let o = testkit::command()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(dir.path())
        .args(["demo"])
        .output()
        .unwrap();
    let text = testkit::text(&o.stdout);
    let bin = testkit::bin().canonicalize().unwrap();
    assert!(
        text.contains(&format!("\nTry: {} --store ", bin.display())),
        "{text}"
    );
    let dir_of_bin = bin.parent().unwrap().display().to_string();
    assert!(
        text.contains(&format!("export PATH=\"{dir_of_bin}:$PATH\"")),
        "{text}"
    );
}
