//! The catalog of refusals: `tests/errors/<name>.jsonl` is appended to a
//! store that holds the imported sample log (`events/`), and must be refused
//! as `tests/errors/<name>.expect` says: the exit code on its first line,
//! then substrings that standard error must contain. Standard error must be
//! one line starting `error: `, and the log (`accord log --format json`,
//! `accord head`) must be byte-identical afterwards.
//!
//! There is one `<rule>.jsonl` per name in `domain::error::RULES`, and one
//! `parse_<what>.jsonl` per way a file fails to parse. Inputs too big to keep
//! in the repository have only an `.expect` file; [`generated`] writes them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use domain::event::{BATCH_EVENTS_MAX, HOLDINGS_MAX, LINE_LEN_MAX};
use testkit::{accord, ok};

/// A valid first line: refused along with the bad one.
const FRESH: &str = r#"{"id": "fresh-party", "type": "party_registered", "effective": "2025-11-01", "party": "fresh", "name": "Fresh Ltd", "kind": "corporation"}"#;

fn catalog() -> PathBuf {
    testkit::root().join("tests").join("errors")
}

/// The names of the catalog: every `<name>.expect` in tests/errors/.
fn names() -> BTreeSet<String> {
    std::fs::read_dir(catalog())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "expect"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The input of a case too big to keep as a file.
fn generated(name: &str) -> Option<String> {
    match name {
        "parse_line_too_long" => {
            let head = r#"{"id": "long-line", "type": "party_registered", "effective": "2025-11-01", "party": "acme", "name": "Acme", "kind": "corporation", "note": ""#;
            let tail = "\"}";
            let pad = LINE_LEN_MAX + 1 - head.len() - tail.len();
            let line = format!("{head}{}{tail}", "n".repeat(pad));
            assert_eq!(line.len(), LINE_LEN_MAX + 1);
            Some(format!("{FRESH}\n{line}\n"))
        }
        "parse_too_many_holdings" => {
            let holdings: Vec<String> = (0..=HOLDINGS_MAX)
                .map(|i| format!(r#"{{"holder": "holder-{i}", "units": "1"}}"#))
                .collect();
            Some(format!(
                r#"{FRESH}
{{"id": "crowded-table", "type": "holdings_stated", "effective": "2025-11-01", "issuer": "openai-group", "holdings": [{}]}}
"#,
                holdings.join(", ")
            ))
        }
        "parse_too_many_events" => {
            let mut text = format!("{FRESH}\n");
            text.push_str(&"{}\n".repeat(BATCH_EVENTS_MAX));
            Some(text)
        }
        _ => None,
    }
}

/// Runs one case; returns a description of what went wrong, if anything.
fn check(dir: &Path, sample: &Path, name: &str) -> Result<(), String> {
    let expect = std::fs::read_to_string(catalog().join(format!("{name}.expect"))).unwrap();
    let mut lines = expect.lines();
    let code: i32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("{name}.expect: the first line is not an exit code"))?;
    let wanted: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();

    let file = match generated(name) {
        Some(text) => {
            let file = dir.join(format!("{name}.jsonl"));
            std::fs::write(&file, text).unwrap();
            file
        }
        None => {
            let file = catalog().join(format!("{name}.jsonl"));
            if !file.exists() {
                return Err(format!("{name}.expect has no {name}.jsonl"));
            }
            let text = std::fs::read_to_string(&file).unwrap();
            if text.starts_with("//") || text.starts_with('#') {
                return Err(format!("{name}.jsonl: the first line is a comment"));
            }
            file
        }
    };

    let store = testkit::store_at(dir, &format!("store-{name}"));
    testkit::copy_store(sample, &store);
    let log_before = ok(&store, &["log", "--format", "json"]);
    let head_before = ok(&store, &["head"]);
    let o = accord(&store).arg("append").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let mut problems = Vec::new();
    if o.status.code() != Some(code) {
        problems.push(format!("exit code {:?}, not {code}", o.status.code()));
    }
    if !stderr.starts_with("error: ") || stderr.lines().count() != 1 {
        problems.push("stderr is not one line starting `error: `".to_string());
    }
    for w in &wanted {
        if !stderr.contains(w) {
            problems.push(format!("stderr does not contain {w:?}"));
        }
    }
    if ok(&store, &["log", "--format", "json"]) != log_before {
        problems.push("the log changed".to_string());
    }
    if ok(&store, &["head"]) != head_before {
        problems.push("the head changed".to_string());
    }
    testkit::remove_store(&store);
    if problems.is_empty() {
        Ok(())
    } else {
        let shown: String = stderr.chars().take(500).collect();
        Err(format!("{name}: {}; stderr: {shown}", problems.join("; ")))
    }
}

#[test]
fn every_rule_has_a_case() {
    let names = names();
    let missing: Vec<&&str> = domain::error::RULES
        .iter()
        .filter(|r| !names.contains(**r) || !catalog().join(format!("{r}.jsonl")).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "rules without tests/errors/<rule>.jsonl: {missing:?}"
    );
    // Every file belongs to a rule or is a parse failure.
    let stray: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with("parse_") && !domain::error::RULES.contains(&n.as_str()))
        .collect();
    assert!(stray.is_empty(), "cases named after no rule: {stray:?}");
}

// Each test runs on the embedded store and again on PostgreSQL.
testkit::both_backends! {
    #[test]
    fn every_case_is_refused_as_expected() {
        let dir = tempfile::tempdir().unwrap();
        // The sample store, built once and copied for each case.
        let sample = testkit::store_at(dir.path(), "sample");
        testkit::import_sample(&sample);
        // Every .jsonl has an .expect.
        for entry in std::fs::read_dir(catalog()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "jsonl") {
                assert!(
                    path.with_extension("expect").exists(),
                    "{} has no .expect",
                    path.display()
                );
            }
        }
        let failures: Vec<String> = names()
            .iter()
            .filter_map(|name| check(dir.path(), &sample, name).err())
            .collect();
        assert!(
            failures.is_empty(),
            "{} case(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
