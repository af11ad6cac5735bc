//! What accord writes for a terminal, and only for one: colour (bold table
//! headers, a red `error:`) and the progress bar of slow appends.
//!
//! Piped output never holds an escape code, with or without `NO_COLOR`, and a
//! slow import with standard error piped writes nothing to it. Under a
//! pseudo-terminal (util-linux `script`, when present), colour appears
//! without `NO_COLOR`, never with it (set to anything, even empty), and a
//! slow import draws its bar.

use std::path::{Path, PathBuf};
use std::process;
use std::time::{Duration, Instant};

use testkit::{sample_store, Command};

/// `accord --store STORE` as a terminal's user runs it: `NO_COLOR` unset,
/// `TERM` a colour terminal.
fn accord(store: &Path) -> Command {
    let mut cmd = testkit::accord(store);
    cmd.env_remove("NO_COLOR").env("TERM", "xterm-256color");
    cmd
}

/// Commands whose table output has headers, errors of each exit code, help.
const RUNS: &[&[&str]] = &[
    &["ownership", "--as-of", "2025-10-28"],
    &["obligations", "--as-of", "2026-01-01", "--all"],
    &["rights", "--as-of", "2031-01-01", "--all"],
    &["position", "microsoft", "--as-of", "2025-10-28"],
    &["log"],
    &["verify"],
    &["head"],
    &["demo"],
    &["position", "nobody"],
    &["ownership", "--as-of", "2025-13-01"],
    &["no-such-command"],
    &["--help"],
    &["obligations", "--help"],
];

#[test]
fn piped_output_has_no_escape_codes_with_or_without_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    for no_color in [None, Some(""), Some("1")] {
        for args in RUNS {
            let mut cmd = accord(&store);
            if let Some(v) = no_color {
                cmd.env("NO_COLOR", v);
            }
            let o = cmd.args(*args).output().unwrap();
            for (name, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                assert!(
                    !bytes.contains(&0x1b),
                    "accord {args:?} (NO_COLOR={no_color:?}) wrote an escape code to piped {name}"
                );
            }
            if !o.status.success() && o.status.code() != Some(0) {
                assert!(
                    String::from_utf8_lossy(&o.stderr).starts_with("error: "),
                    "accord {args:?}"
                );
            }
        }
    }
    // The missing store too (exit 4).
    let o = accord(&dir.path().join("nowhere"))
        .arg("log")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert!(o.stderr.starts_with(b"error: "));
}

/// A file of `n` investments, slow enough to import that the bar would show.
fn big_file(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::from(
        r#"{"id": "reg-a", "type": "party_registered", "effective": "2020-01-01", "party": "a", "kind": "corporation", "name": "A"}
{"id": "reg-b", "type": "party_registered", "effective": "2020-01-01", "party": "b", "kind": "corporation", "name": "B"}
"#,
    );
    for i in 0..n {
        text.push_str(&format!(
            r#"{{"id": "inv-{i}", "type": "investment_made", "effective": "2020-01-02", "investor": "a", "investee": "b", "amount": {{"amount": "1", "currency": "USD"}}}}"#
        ));
        text.push('\n');
    }
    let path = dir.join("big.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

const BIG: usize = 80_000;

#[test]
fn a_slow_import_with_stderr_piped_writes_nothing_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path(), BIG);
    let store = dir.path().join("store");
    let o = accord(&store).arg("append").arg(&file).output().unwrap();
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.starts_with(&format!("appended {} events", BIG + 2)),
        "{out}"
    );
}

/// Runs `accord ARGS` under a pseudo-terminal with util-linux `script`;
/// None when `script` is not there. Standard output and error both go to the
/// terminal, so the returned text holds both.
fn on_a_terminal(store: &Path, args: &[&str], no_color: Option<&str>) -> Option<String> {
    let script = process::Command::new("script").arg("--version").output();
    if !script.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED the pseudo-terminal checks: util-linux `script` is not installed");
        return None;
    }
    let bin = testkit::bin();
    let mut line = format!("'{}' --store '{}'", bin.display(), store.display());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut cmd = process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("ACCORD_STORE")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let o = cmd.output().unwrap();
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn on_a_terminal_colour_shows_unless_no_color_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let table = ["obligations", "--as-of", "2026-01-01"];
    let Some(coloured) = on_a_terminal(&store, &table, None) else {
        return;
    };
    assert!(coloured.contains("\x1b[1m"), "no bold header: {coloured:?}");
    assert!(coloured.contains("azure-commitment"));
    let missing = dir.path().join("nowhere");
    let error = on_a_terminal(&missing, &["log"], None).unwrap();
    assert!(error.contains("\x1b[1;31merror:"), "{error:?}");
    for value in ["", "1"] {
        for (store, args) in [(&store, &table[..]), (&missing, &["log"][..])] {
            let plain = on_a_terminal(store, args, Some(value)).unwrap();
            assert!(
                !plain.contains('\x1b'),
                "NO_COLOR={value:?} accord {args:?}: {plain:?}"
            );
        }
        let help = on_a_terminal(&store, &["--help"], Some(value)).unwrap();
        assert!(
            !help.contains('\x1b'),
            "NO_COLOR={value:?} --help: {help:?}"
        );
    }
}

#[test]
fn on_a_terminal_a_slow_import_draws_its_bar() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path(), BIG);
    let store = dir.path().join("store");
    let started = Instant::now();
    let Some(text) = on_a_terminal(&store, &["append", file.to_str().unwrap()], None) else {
        return;
    };
    let took = started.elapsed();
    assert!(
        text.contains(&format!("appended {} events", BIG + 2)),
        "{text}"
    );
    // The bar appears after a second; on a machine fast enough to finish
    // sooner there is nothing to see.
    if took > Duration::from_millis(1500) {
        let drawn = steps_drawn(&text);
        assert!(
            !drawn.is_empty(),
            "an import of {took:?} drew no bar: {text:?}"
        );
        // The bar moves forward only: steps come in order, and each counts up.
        for w in drawn.windows(2) {
            assert!(
                w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1),
                "the bar went back from {:?} to {:?}",
                w[0],
                w[1]
            );
        }
    } else {
        eprintln!("the import took {took:?}: too quick for the bar");
    }
}

/// Each "reading|checking|writing N/M events" the bar drew, as (step, N).
fn steps_drawn(text: &str) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    for (step, verb) in ["reading ", "checking ", "writing "].iter().enumerate() {
        let mut rest = text;
        while let Some(i) = rest.find(verb) {
            rest = &rest[i + verb.len()..];
            let count: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .collect();
            if rest[count.len()..].starts_with('/') {
                if let Ok(n) = count.replace(',', "").parse::<u64>() {
                    out.push((step, n, text.len() - rest.len()));
                }
            }
        }
    }
    // In the order drawn.
    out.sort_by_key(|(_, _, at)| *at);
    out.into_iter().map(|(s, n, _)| (s, n)).collect()
}

/// `accord copy` into PostgreSQL draws the same bar on a terminal (reading, then writing),
/// and the copy holds every event.
#[test]
fn on_a_terminal_a_slow_copy_into_postgresql_draws_its_bar() {
    let Some(pg) = testkit::pg::Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path(), 3 * BIG);
    let store = dir.path().join("store");
    let o = accord(&store).arg("append").arg(&file).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let url = pg.url("copied");
    let started = Instant::now();
    let Some(text) = on_a_terminal(&store, &["copy", store.to_str().unwrap(), &url], None) else {
        return;
    };
    let took = started.elapsed();
    assert!(
        text.contains(&format!("copied {} events", 3 * BIG + 2)),
        "{text}"
    );
    if took > Duration::from_millis(1500) {
        let drawn = steps_drawn(&text);
        assert!(
            !drawn.is_empty(),
            "a copy of {took:?} drew no bar: {text:?}"
        );
    } else {
        eprintln!("the copy took {took:?}: too quick for the bar");
    }
}
