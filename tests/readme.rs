//! The README's walkthrough, pasted as a new user would: every `sh` block from
//! "## Walkthrough" to the next section runs in bash, in a fresh directory holding
//! `events/` and `examples/`, with the built `accord` on the PATH (`/tmp/` becomes a
//! temporary directory). Each command must exit 0, or 1 with the text of an `# error:` line
//! that follows it; a figure in a command's comment (a number with a thousands separator, or a
//! percent) must be in its output. Then the whole walkthrough runs a second time in the same
//! place: every command behaves the same, its figures still hold, and the log does not change.

use std::path::Path;
use std::process;

use testkit::{copy_dir, root};

/// One command of the walkthrough, with its comment and the error it must end with.
#[derive(Debug)]
struct Step {
    command: String,
    comment: String,
    error: Option<String>,
}

/// Splits a line at a `#` that starts a comment (outside quotes, after a space).
fn split_comment(line: &str) -> (String, String) {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => {
                return (
                    line[..i].trim_end().to_string(),
                    line[i + 1..].trim().to_string(),
                )
            }
            None => {}
        }
        prev = c;
    }
    (line.trim_end().to_string(), String::new())
}

fn walkthrough() -> Vec<Step> {
    section("## Walkthrough")
}

/// The commands of the `sh` blocks of one section of the README.
fn section(heading: &str) -> Vec<Step> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find(heading).expect("the section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i);
    let section = &rest[..end];
    let mut steps: Vec<Step> = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            inside = line == "```sh" && !inside;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(error) = line.strip_prefix("# error: ") {
            steps.last_mut().expect("a command before its error").error = Some(error.to_string());
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let (command, comment) = split_comment(&pending);
        pending.clear();
        if command.starts_with("cargo ") {
            continue;
        }
        steps.push(Step {
            command,
            comment,
            error: None,
        });
    }
    steps
}

/// Runs every step in one bash, each one's output and exit code marked.
fn run_all(dir: &Path, tmp: &Path, steps: &[Step]) -> Vec<(String, i32)> {
    let mut script = String::new();
    for (i, s) in steps.iter().enumerate() {
        let command = s.command.replace("/tmp/", &format!("{}/", tmp.display()));
        script.push_str(&format!(
            "echo '@@@ {i}'\n{{ {command}\n}} 2>&1\necho \"@@@ rc $?\"\n"
        ));
    }
    let o = process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", testkit::path_with_bin())
        .env("HOME", dir.join("home"))
        .env("NO_COLOR", "1")
        .env("ACCORD_WAIT", "0")
        .env_remove("ACCORD_STORE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut results = Vec::new();
    for chunk in text.split("@@@ ").skip(1) {
        if let Some(rc) = chunk.strip_prefix("rc ") {
            let code = rc.trim().parse().unwrap_or(-1);
            let last: &mut (String, i32) = results.last_mut().expect("an output before its rc");
            last.1 = code;
        } else {
            let body = chunk.split_once('\n').map_or("", |(_, b)| b);
            results.push((body.to_string(), -2));
        }
    }
    results
}

/// The figures a comment claims: numbers with a thousands separator, and percents.
fn figures(comment: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = comment.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_end_matches([',', ':', ';', ')']);
        let numeric = !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == '.');
        if !numeric {
            continue;
        }
        if words
            .get(i + 1)
            .is_some_and(|n| n.trim_end_matches([',', ':', ';', ')']) == "%")
        {
            out.push(format!("{w} %"));
        } else if w.contains(',') {
            out.push(w.to_string());
        }
    }
    out
}

fn log_of(dir: &Path, tmp: &Path) -> String {
    let o = process::Command::new(testkit::bin())
        .args(["log", "--format", "json", "--store"])
        .arg(tmp.join("walkthrough.db"))
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_walkthrough_works_when_pasted_twice_and_shows_what_it_says() {
    let steps = walkthrough();
    assert!(
        steps.len() >= 20,
        "only {} commands: {steps:?}",
        steps.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("events"), &dir.path().join("events"));
    copy_dir(&root().join("examples"), &dir.path().join("examples"));
    std::fs::create_dir(dir.path().join("home")).unwrap();

    let mut failures = Vec::new();
    let mut logs = Vec::new();
    for round in ["first", "second"] {
        failures.extend(check(round, dir.path(), tmp.path(), &steps));
        logs.push(log_of(dir.path(), tmp.path()));
    }
    assert!(
        logs[0].lines().count() > 20,
        "the walkthrough recorded nothing: {}",
        logs[0]
    );
    if logs[0] != logs[1] {
        failures.push("the second run of the walkthrough changed the log".to_string());
    }
    let claims: usize = steps.iter().map(|s| figures(&s.comment).len()).sum();
    println!(
        "{} commands, {claims} figures checked, run twice",
        steps.len()
    );
    assert!(claims >= 6, "the comments claim only {claims} figures");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs the steps once and says what went wrong: an exit code, a missing `# error:` text,
/// an error not announced, a figure of a comment not in the output.
fn check(round: &str, dir: &Path, tmp: &Path, steps: &[Step]) -> Vec<String> {
    let mut failures = Vec::new();
    let results = run_all(dir, tmp, steps);
    assert_eq!(results.len(), steps.len(), "{round} run: {results:?}");
    for (step, (out, code)) in steps.iter().zip(&results) {
        let wanted = if step.error.is_some() { 1 } else { 0 };
        if *code != wanted {
            failures.push(format!(
                "{round} run: `{}` exits {code}, not {wanted}:\n{out}",
                step.command
            ));
        }
        if let Some(error) = &step.error {
            if !out.contains(&format!("error: {error}")) {
                failures.push(format!(
                    "{round} run: `{}` does not say {error:?}:\n{out}",
                    step.command
                ));
            }
        } else if out.contains("error:") {
            failures.push(format!(
                "{round} run: `{}` says an error:\n{out}",
                step.command
            ));
        }
        for figure in figures(&step.comment) {
            if !out.contains(&figure) {
                failures.push(format!(
                    "{round} run: `{}` claims {figure:?} in its comment, but prints:\n{out}",
                    step.command
                ));
            }
        }
    }
    failures
}

/// The server section, pasted twice as the walkthrough is, on a free port instead of 8080:
/// every `curl` of it answers what its comment says, and `kill` stops the server (exit 0).
#[test]
fn the_server_section_works_when_pasted_twice() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let steps: Vec<Step> = section("## Serving a team")
        .into_iter()
        .map(|mut s| {
            s.command = s.command.replace("8080", &port.to_string());
            s.comment = s.comment.replace("8080", &port.to_string());
            s
        })
        .collect();
    assert!(
        steps.len() >= 10,
        "only {} commands: {steps:?}",
        steps.len()
    );
    assert!(steps.iter().any(|s| s.command.contains("curl")));
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("events"), &dir.path().join("events"));
    copy_dir(&root().join("examples"), &dir.path().join("examples"));
    std::fs::create_dir(dir.path().join("home")).unwrap();
    let mut failures = Vec::new();
    for round in ["first", "second"] {
        failures.extend(check(round, dir.path(), tmp.path(), &steps));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn comments_and_figures_are_read_as_meant() {
    assert_eq!(
        split_comment("accord record x --amount '$2.5B'   # 247,500,000,000 USD outstanding"),
        (
            "accord record x --amount '$2.5B'".to_string(),
            "247,500,000,000 USD outstanding".to_string()
        )
    );
    assert_eq!(
        split_comment(r##"echo '{"a":" #"}' | accord append -"##).1,
        String::new()
    );
    assert_eq!(
        figures("Microsoft 27 %, worth 135,000,000,000 USD; seq 12"),
        vec!["27 %".to_string(), "135,000,000,000".to_string()]
    );
}

/// The PostgreSQL section, pasted twice against a throwaway cluster (its URL in place of
/// `localhost`, free ports in place of 8081 and 8082): every command exits 0 and shows
/// what its comment says. Without PostgreSQL it says so and passes, unless `CI=true`.
#[test]
fn the_postgresql_section_works_when_pasted_twice() {
    let Some(pg) = testkit::pg::Cluster::start() else {
        return;
    };
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string()
    };
    let (a, b) = (free(), free());
    let base = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let steps: Vec<Step> = section("## One ledger in PostgreSQL")
        .into_iter()
        .map(|mut s| {
            s.command = s
                .command
                .replace("postgres://postgres@localhost/postgres", &base)
                .replace("8081", &a)
                .replace("8082", &b);
            s
        })
        .collect();
    assert!(
        steps.len() >= 10,
        "only {} commands: {steps:?}",
        steps.len()
    );
    assert!(steps.iter().any(|s| s.command.contains(&base)));
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("events"), &dir.path().join("events"));
    copy_dir(&root().join("examples"), &dir.path().join("examples"));
    std::fs::create_dir(dir.path().join("home")).unwrap();
    let mut failures = Vec::new();
    for round in ["first", "second"] {
        failures.extend(check(round, dir.path(), tmp.path(), &steps));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The copy out holds the database's very log.
    let url = format!("{base}?schema=deals");
    assert_eq!(
        testkit::ok(Path::new(&url), &["head"]),
        testkit::ok(&tmp.path().join("deals.db"), &["head"])
    );
}
