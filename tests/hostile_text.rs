//! Hostile text: control characters are refused in new events (EVENTS.md, Text), and what an
//! older store holds reaches people escaped (tables, the SVG chart, `error:` lines); wide
//! characters line up.

use std::path::Path;

use chrono::Utc;
use store::{NewEvent, Store};
use testkit::{accord, ok, run};

/// A store written directly, as an accord from before the text rule could have: a party
/// whose name drives a terminal, and one whose name holds a line break.
fn older_store(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("old.db");
    let bodies = [
        (
            "p1",
            r#"{"effective":"2020-01-01","id":"p1","kind":"corporation","name":"Evil\u001b]0;pwned\u0007\u001b[31m Corp","party":"evil","type":"party_registered"}"#,
        ),
        (
            "p2",
            r#"{"effective":"2020-01-01","id":"p2","kind":"individual","name":"Line\nBreak","party":"bob","type":"party_registered"}"#,
        ),
        (
            "s1",
            r#"{"class":"common","effective":"2020-02-01","holder":"bob","id":"s1","issuer":"evil","type":"shares_issued","units":"100"}"#,
        ),
    ];
    let store = Store::create_or_open(&path).unwrap();
    let batch: Vec<NewEvent<'_>> = bodies
        .iter()
        .map(|(id, body)| NewEvent {
            id,
            body: body.as_bytes(),
        })
        .collect();
    store.append(&batch, Utc::now()).unwrap();
    path
}

#[test]
fn control_characters_are_refused_in_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("new.db");
    for (field, line) in [
        ("name", r#"{"id":"p1","type":"party_registered","effective":"2020-01-01","party":"evil","name":"Evil\u001b[31m","kind":"corporation"}"#),
        ("name", r#"{"id":"p1","type":"party_registered","effective":"2020-01-01","party":"evil","name":"A\nB","kind":"corporation"}"#),
        ("source", "{\"id\":\"p1\",\"type\":\"party_registered\",\"effective\":\"2020-01-01\",\"party\":\"evil\",\"name\":\"E\",\"kind\":\"corporation\",\"source\":\"x\u{85}y\"}"),
    ] {
        let r = run(accord(&store).args(["append", "-"]).write_stdin(line.to_string()));
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr.contains(&format!("field `{field}` holds the control character")),
            "{}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1);
    }
    assert!(!store.exists());
    // Line feeds and tabs stay allowed in a note.
    let note = r#"{"id":"p1","type":"party_registered","effective":"2020-01-01","party":"acme","name":"Acme","kind":"corporation","note":"two\nlines\tand a tab"}"#;
    let r = run(accord(&store)
        .args(["append", "-"])
        .write_stdin(note.to_string()));
    assert_eq!(r.code, 0, "{r:?}");
    // `record` goes through the same rule; there a refused value is a bad flag value (exit 2).
    let r = run(accord(&store).args([
        "record",
        "party_registered",
        "--party",
        "evil",
        "--name",
        "Evil\u{1b}[2J",
        "--kind",
        "corporation",
    ]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("control character U+001B"),
        "{}",
        r.stderr
    );
}

#[test]
fn what_an_older_store_holds_is_escaped_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let store = older_store(dir.path());
    for args in [
        vec!["ownership"],
        vec!["position", "bob"],
        vec!["timeline", "--entity", "evil"],
    ] {
        let out = ok(&store, &args);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "{args:?}: {out:?}"
        );
        if args[0] != "position" {
            assert!(out.contains("Evil\\u{1b}]0;pwned"), "{args:?}: {out}");
        }
    }
    // A line break stays on its line.
    let out = ok(&store, &["position", "bob"]);
    assert!(out.starts_with("Line\\nBreak (bob) on "), "{out}");
    // JSON keeps the exact text.
    let json = ok(&store, &["ownership", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["entities"][0]["name"],
        "Evil\u{1b}]0;pwned\u{7}\u{1b}[31m Corp"
    );
    // The chart is valid XML.
    let svg = ok(&store, &["timeline", "--entity", "evil", "--format", "svg"]);
    roxmltree::Document::parse(&svg).expect("the chart is XML");
}

#[test]
fn wide_characters_line_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("wide.db");
    let lines = r#"{"id":"p1","type":"party_registered","effective":"2020-01-01","party":"acme","name":"Acme","kind":"corporation"}
{"id":"p2","type":"party_registered","effective":"2020-01-01","party":"bob","name":"Bob","kind":"individual"}
{"id":"s1","type":"shares_issued","effective":"2020-02-01","issuer":"acme","holder":"bob","units":"100","class":"优先股"}
{"id":"s2","type":"shares_issued","effective":"2020-02-01","issuer":"acme","holder":"acme","units":"2500","class":"common"}"#;
    let r = run(accord(&store)
        .args(["append", "-"])
        .write_stdin(lines.to_string()));
    assert_eq!(r.code, 0, "{r:?}");
    let out = ok(&store, &["ownership", "--as-of", "2020-03-01"]);
    // Every row of the table ends at the same display column (the value column is last).
    let widths: Vec<usize> = out
        .lines()
        .skip(1)
        .map(|l| {
            l.chars()
                .map(|c| {
                    if ('\u{4e00}'..='\u{9fff}').contains(&c) {
                        2
                    } else {
                        1
                    }
                })
                .sum()
        })
        .collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{out}");
}

#[test]
fn invisible_bidi_characters_are_accepted_but_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.db");
    // A right-to-left override in a name: stored as given (right-to-left names need the
    // marks), but a table shows it escaped, so the rest of the line is not turned around.
    ok(
        &store,
        &[
            "record",
            "party_registered",
            "--id",
            "p-rlo",
            "--effective",
            "2020-01-01",
            "--party",
            "rlo",
            "--name",
            "abc\u{202e}fed Corp",
            "--kind",
            "corporation",
        ],
    );
    let shown = ok(&store, &["position", "rlo", "--as-of", "2021-01-01"]);
    assert!(shown.contains("abc\\u{202e}fed Corp"), "{shown}");
    assert!(!shown.contains('\u{202e}'), "{shown}");
    let json = ok(&store, &["show", "p-rlo", "--format", "json"]);
    assert!(
        json.contains("abc\u{202e}fed Corp"),
        "JSON keeps the text exact: {json}"
    );
}
