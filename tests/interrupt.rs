//! Ctrl-C during an append: the command ends with exit 130 and one line that says exactly what
//! was written, and the store holds exactly that. An interrupt before the batch commits leaves
//! nothing (not even the store this command created); one while the batch commits waits for
//! it, and says the events are written.
//!
//! SIGINT is sent at moments spread over the whole run (parsing, checking, writing, flushing);
//! every outcome is checked, and the test needs the "nothing was written" outcome at least once.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use testkit::{bin, output, text};

/// A file of `n` valid events: one issuer, eight holders, shares issued to them.
fn big_file(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut out = String::with_capacity(n * 150);
    out.push_str(r#"{"id": "party-iss", "type": "party_registered", "effective": "2020-01-01", "party": "iss", "name": "Issuer Inc", "kind": "corporation"}"#);
    out.push('\n');
    for h in 0..8 {
        out.push_str(&format!(
            r#"{{"id": "party-h{h}", "type": "party_registered", "effective": "2020-01-01", "party": "h{h}", "name": "Holder {h}", "kind": "fund"}}"#
        ));
        out.push('\n');
    }
    for i in 9..n {
        out.push_str(&format!(
            r#"{{"id": "issue-{i}", "type": "shares_issued", "effective": "2021-01-01", "issuer": "iss", "holder": "h{}", "units": "{}"}}"#,
            i % 8,
            100 + i
        ));
        out.push('\n');
    }
    let path = dir.join("big.jsonl");
    fs::write(&path, out).expect("write the file");
    path
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

fn append_interrupted(store: &Path, file: &Path, after: Duration) -> Outcome {
    let child = Command::new(bin())
        .env_remove("ACCORD_STORE")
        .env("ACCORD_WAIT", "0")
        .arg("append")
        .arg("--store")
        .arg(store)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("accord starts");
    thread::sleep(after);
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let o = child.wait_with_output().expect("accord ends");
    Outcome {
        code: o.status.code(),
        stderr: text(&o.stderr),
    }
}

#[test]
fn an_interrupt_says_what_was_written_and_the_store_holds_exactly_that() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40_000;
    let file = big_file(dir.path(), n);

    // How long one whole append takes here, to spread the interrupts over it.
    let store = dir.path().join("timed");
    let start = Instant::now();
    let o = output(&store, &["append", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let whole = start.elapsed();

    let mut nothing = 0;
    let mut written = 0;
    for k in 0..10u32 {
        let store = dir.path().join(format!("s{k}"));
        let at = whole.mul_f64(0.08 + 0.1 * f64::from(k));
        let o = append_interrupted(&store, &file, at);
        let lines: Vec<&str> = o.stderr.lines().collect();
        match o.code {
            // Done before the interrupt came.
            Some(0) => assert_eq!(output(&store, &["head"]).status.code(), Some(0), "run {k}"),
            Some(130) => {
                assert_eq!(lines.len(), 1, "run {k}: one line, not {lines:?}");
                if lines[0] == "interrupted: nothing was written" {
                    nothing += 1;
                    assert!(
                        !store.exists(),
                        "run {k}: the store this append created is left behind"
                    );
                } else {
                    let expected = format!(
                        "interrupted: {} events were written, in 1 whole batch; nothing else was written",
                        present_count(n)
                    );
                    assert_eq!(lines[0], expected, "run {k}");
                    written += 1;
                    let head = text(&output(&store, &["head"]).stdout);
                    assert!(head.starts_with(&format!("{n}:")), "run {k}: head {head}");
                    let verify = output(&store, &["verify"]);
                    assert!(verify.status.success(), "run {k}: {}", text(&verify.stderr));
                }
            }
            // A signal before the handler was installed (clap still parsing): nothing begun.
            None => assert!(!store.exists(), "run {k}: killed, yet a store was made"),
            other => panic!("run {k}: exit {other:?}, stderr {:?}", o.stderr),
        }
    }
    println!("{nothing} interrupted before writing, {written} while flushing");
    assert!(
        nothing > 0,
        "no interrupt came before the write: the runs were too fast to test"
    );
}

fn present_count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
