//! Every command's `--help` ends with examples that work when pasted: this
//! test reads `accord --help` for the list of commands, then each command's
//! `--help`, takes every example line (indented two spaces under a line
//! starting `Examples`), and runs it with bash, as a new user would paste it,
//! in a fresh directory holding a copy of `events/` and the store that
//! `accord demo` leaves in `./accord.db`. Each must exit 0 without an error,
//! and again when pasted a second time, without changing the log then: every
//! example is safe to paste twice. A `diff` example must show a change. A
//! command without an example fails the test.

use std::process;

use testkit::{command, copy_dir, root};

fn help(args: &[&str]) -> String {
    let o = command().env("NO_COLOR", "1").args(args).output().unwrap();
    assert!(o.status.success(), "accord {args:?} exits 0");
    assert!(o.stderr.is_empty(), "accord {args:?} writes help to stdout");
    String::from_utf8(o.stdout).unwrap()
}

/// The command names of `accord --help`, `help` left out.
fn commands() -> Vec<String> {
    let text = help(&["--help"]);
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// The example lines of a help text.
fn examples(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("Examples") {
            inside = true;
        } else if inside && line.starts_with("  ") && !line.trim().is_empty() {
            found.push(line.trim().to_string());
        } else if inside {
            inside = false;
        }
    }
    found
}

/// A directory as a new user has it after `accord demo` in a checkout: `events/`,
/// `examples/` and `./accord.db`.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("events"), &dir.path().join("events"));
    copy_dir(&root().join("examples"), &dir.path().join("examples"));
    std::fs::create_dir(dir.path().join("home")).unwrap();
    let o = command()
        .current_dir(dir.path())
        .arg("demo")
        .output()
        .unwrap();
    assert!(o.status.success(), "accord demo");
    dir
}

/// Runs one pasted line with bash in `dir`, the built `accord` first on PATH.
fn paste_in(dir: &std::path::Path, line: &str) -> process::Output {
    process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -eo pipefail\n{line}"))
        .current_dir(dir)
        .env("PATH", testkit::path_with_bin())
        .env("HOME", dir.join("home"))
        .env_remove("ACCORD_STORE")
        .output()
        .unwrap()
}

/// The log of `./accord.db` in `dir`, as JSON Lines.
fn log_of(dir: &std::path::Path) -> String {
    let o = paste_in(dir, "accord log --format json");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let commands = commands();
    for expected in ["append", "import", "record", "log", "export", "demo", "man"] {
        assert!(commands.iter().any(|c| c == expected), "{commands:?}");
    }
    assert!(!examples(&help(&["--help"])).is_empty(), "accord --help");
    for c in &commands {
        let ex = examples(&help(&[c, "--help"]));
        assert!(!ex.is_empty(), "accord {c} --help has no example");
        for line in &ex {
            assert!(
                line.contains(&format!("accord {c}")) || line.contains(&format!("demo.db {c}")),
                "an example of {c} that does not run {c}: {line}"
            );
        }
        // -h shows the same examples.
        assert_eq!(examples(&help(&[c, "-h"])), ex, "accord {c} -h");
    }
}

#[test]
fn every_example_in_the_help_works_when_pasted() {
    let mut lines = examples(&help(&["--help"]));
    for c in commands() {
        lines.extend(examples(&help(&[&c, "--help"])));
    }
    assert!(lines.len() >= 30, "only {} examples", lines.len());
    let mut failures = Vec::new();
    for line in &lines {
        let dir = workdir();
        if line.starts_with("accord serve") {
            failures.extend(serve_twice(dir.path(), line));
            continue;
        }
        let first = paste_in(dir.path(), line);
        let after_first = log_of(dir.path());
        let second = paste_in(dir.path(), line);
        for (run, o) in [("first", &first), ("second", &second)] {
            let stderr = String::from_utf8_lossy(&o.stderr);
            if !o.status.success() || stderr.contains("error") {
                failures.push(format!(
                    "{line}\n  {run} paste: exit {:?}\n  {}",
                    o.status.code(),
                    stderr.trim()
                ));
            }
        }
        if log_of(dir.path()) != after_first {
            failures.push(format!("{line}\n  the second paste changed the log"));
        }
        let stdout = String::from_utf8_lossy(&first.stdout);
        if line.starts_with("accord diff")
            && (stdout.contains("No change") || stdout.contains("\"changes\": []"))
        {
            failures.push(format!("{line}\n  shows no change:\n{stdout}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples fail:\n{}",
        failures.len(),
        lines.len(),
        failures.join("\n")
    );
}

/// A `serve` example runs until stopped: pasted (on a free port instead of 8080, with a token
/// file when it names one), it must print its `listening on` line, then stop with exit 0 on
/// SIGTERM, twice, leaving the log as it was.
fn serve_twice(dir: &std::path::Path, line: &str) -> Vec<String> {
    use std::io::BufRead;
    let mut failures = Vec::new();
    if line.contains("tokens.txt") {
        let o = paste_in(dir, "accord token new admin | tail -n 1 > tokens.txt");
        assert!(o.status.success());
    }
    let before = log_of(dir);
    for run in ["first", "second"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // On a free port: 8080 may be taken on the machine that runs the tests.
        let pasted = if line.contains("--listen") {
            line.replace("8080", &port.to_string())
        } else {
            line.replacen(
                "accord serve",
                &format!("accord serve --listen 127.0.0.1:{port}"),
                1,
            )
        };
        let mut child = process::Command::new("bash")
            .arg("-c")
            .arg(format!("exec {pasted}"))
            .current_dir(dir)
            .env("PATH", testkit::path_with_bin())
            .env("HOME", dir.join("home"))
            .env_remove("ACCORD_STORE")
            .stdout(process::Stdio::piped())
            .stderr(process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let _ = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
        if !first.starts_with("listening on http://") {
            failures.push(format!("{line}\n  {run} paste printed {first:?}"));
        }
        let _ = process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        if status.code() != Some(0) {
            failures.push(format!(
                "{line}\n  {run} paste: SIGTERM ended it with {status:?}"
            ));
        }
    }
    if log_of(dir) != before {
        failures.push(format!("{line}\n  serving changed the log"));
    }
    failures
}
