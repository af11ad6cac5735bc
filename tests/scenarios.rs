//! Runs the plain-text scenario cases of `tests/scenarios/*.case` against the
//! `accord` binary, in the style of hledger's shelltests. The format is
//! described in `tests/scenarios/README.md`.
//!
//! Every case gets a fresh store in a temporary directory, passed with
//! `--store`. All cases run (each in its own store); failures are collected
//! and reported together. `SCENARIO=name` runs only the cases whose file name
//! contains `name`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use testkit::{root, Command};

/// The section keywords a `# ` line may start with.
const KEYWORDS: &[&str] = &[
    "given",
    "run",
    "stdin",
    "exit",
    "stdout",
    "stdout-json",
    "stdout-contains",
    "stderr-contains",
];

/// One command to run and what it must do.
#[derive(Debug, Default)]
struct Run {
    line: usize,
    args: Vec<String>,
    stdin: Option<String>,
    exit: i32,
    stdout: Option<String>,
    stdout_json: Option<String>,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
}

#[derive(Debug)]
enum Step {
    /// Append a file, or import a directory (path relative to the workspace root).
    GivenPath {
        line: usize,
        path: String,
    },
    /// Append these JSON Lines through `append -`.
    GivenInline {
        line: usize,
        body: String,
    },
    Run(Run),
}

/// Splits a command line like a shell would, for the simple cases: blanks
/// separate words, and '...' or "..." quote (no escapes inside).
fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unterminated quote in {s:?}"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// A body: the lines up to the next section, trailing blank lines dropped.
fn body(lines: &[&str]) -> String {
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    lines[..end].iter().map(|l| format!("{l}\n")).collect()
}

fn parse_case(text: &str) -> Result<Vec<Step>, String> {
    // (line number, keyword, argument, body lines)
    let mut sections: Vec<(usize, &str, &str, Vec<&str>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("##") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (kw, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            let kw = kw.trim();
            if !KEYWORDS.contains(&kw) {
                return Err(format!("line {}: unknown section `# {kw}`", i + 1));
            }
            sections.push((i + 1, kw, arg.trim(), Vec::new()));
        } else if let Some(last) = sections.last_mut() {
            last.3.push(line);
        } else if !line.trim().is_empty() {
            return Err(format!(
                "line {}: text before the first section (use `##` for comments)",
                i + 1
            ));
        }
    }
    let mut steps = Vec::new();
    for (line, kw, arg, lines) in sections {
        let no_body = || -> Result<(), String> {
            if lines.iter().any(|l| !l.trim().is_empty()) {
                Err(format!("line {line}: `# {kw}` takes no body"))
            } else {
                Ok(())
            }
        };
        if kw == "given" {
            if arg.is_empty() {
                steps.push(Step::GivenInline {
                    line,
                    body: body(&lines),
                });
            } else {
                no_body()?;
                steps.push(Step::GivenPath {
                    line,
                    path: arg.to_string(),
                });
            }
            continue;
        }
        if kw == "run" {
            no_body()?;
            let args = split_args(arg).map_err(|e| format!("line {line}: {e}"))?;
            if args.is_empty() {
                return Err(format!("line {line}: `# run` needs the arguments"));
            }
            steps.push(Step::Run(Run {
                line,
                args,
                ..Run::default()
            }));
            continue;
        }
        let Some(Step::Run(run)) = steps.last_mut() else {
            return Err(format!("line {line}: `# {kw}` must follow a `# run`"));
        };
        match kw {
            "stdin" => run.stdin = Some(body(&lines)),
            "exit" => {
                run.exit = arg
                    .parse()
                    .map_err(|_| format!("line {line}: bad exit code {arg:?}"))?
            }
            "stdout" => run.stdout = Some(body(&lines)),
            "stdout-json" => run.stdout_json = Some(body(&lines)),
            "stdout-contains" => run.stdout_contains.extend(
                lines
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.to_string()),
            ),
            "stderr-contains" => {
                if arg.is_empty() {
                    return Err(format!("line {line}: `# stderr-contains TEXT`"));
                }
                run.stderr_contains.push(arg.to_string());
            }
            _ => unreachable!("keywords are checked above"),
        }
        if kw == "exit" || kw == "stderr-contains" {
            no_body()?;
        }
    }
    Ok(steps)
}

/// Replaces what varies between runs: the store path, recording times
/// (RFC 3339 with microseconds) and SHA-256 hex hashes.
fn normalize(text: &str, store: &Path) -> String {
    // A store shown quoted for a shell (a URL holds `?`) is the same store.
    let shown = store.display().to_string();
    let text = text
        .replace(&format!("'{shown}'"), "<STORE>")
        .replace(&shown, "<STORE>");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(n) = timestamp_len(&chars[i..]) {
            out.push_str("<TIME>");
            i += n;
            continue;
        }
        let boundary_before = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if boundary_before {
            let run = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || ('a'..='f').contains(c))
                .count();
            let boundary_after = chars
                .get(i + run)
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            if run == 64 && boundary_after {
                out.push_str("<HASH>");
                i += run;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Length of a `YYYY-MM-DDTHH:MM:SS.ffffffZ` timestamp at the start of `c`.
fn timestamp_len(c: &[char]) -> Option<usize> {
    const SHAPE: &str = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if c.len() < SHAPE.len() {
        return None;
    }
    for (s, &ch) in SHAPE.chars().zip(c) {
        let ok = if s == 'd' {
            ch.is_ascii_digit()
        } else {
            ch == s
        };
        if !ok {
            return None;
        }
    }
    Some(SHAPE.len())
}

/// A stream of JSON values (one document, or JSON Lines).
fn json_values(text: &str) -> Result<Vec<Value>, String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// `expected` is a subset of `actual`: every key of an expected object is in
/// the actual object with a matching value; arrays match element by element
/// and have the same length; the string "<ANY>" matches any value.
fn json_subset(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(s), _) if s == "<ANY>" => Ok(()),
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .ok_or_else(|| format!("{path}.{k}: missing in the output"))?;
                json_subset(ev, av, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: {} elements expected, {} found: {}",
                    e.len(),
                    a.len(),
                    actual
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                json_subset(ev, av, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path}: expected {expected}, found {actual}")),
    }
}

/// Parses RFC 4180 CSV; every record must have as many fields as the header.
fn check_csv(text: &str) -> Result<(), String> {
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut field = String::new();
    let mut record = Vec::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            '"' => return Err(format!("a quote inside an unquoted field: {field:?}")),
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err("an unterminated quoted field".into());
    }
    if !record.is_empty() || !field.is_empty() {
        return Err("the last record does not end with a newline".into());
    }
    let header = records.first().ok_or("no header row")?;
    if header.iter().any(|h| h.is_empty() || h.contains(' ')) {
        return Err(format!("a header cell is empty or not a name: {header:?}"));
    }
    let mut seen = std::collections::HashSet::new();
    if !header.iter().all(|h| seen.insert(h)) {
        return Err(format!("repeated header cells: {header:?}"));
    }
    for (i, r) in records.iter().enumerate() {
        if r.len() != header.len() {
            return Err(format!(
                "record {} has {} fields, the header {}",
                i + 1,
                r.len(),
                header.len()
            ));
        }
    }
    Ok(())
}

/// `accord --store STORE` in the workspace root, without colour.
fn accord(store: &Path) -> Command {
    let mut cmd = testkit::accord(store);
    cmd.current_dir(root()).env("NO_COLOR", "1");
    cmd
}

fn run_case(path: &Path) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    run_case_in(path, &dir.path().join("store"))
}

/// Runs a case on `store`, which must not hold anything yet (a path, or a database URL).
fn run_case_in(path: &Path, store: &Path) -> Result<usize, String> {
    let store = store.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let steps = parse_case(&text)?;
    if !steps.iter().any(|s| matches!(s, Step::Run(_))) {
        return Err("no `# run` section".into());
    }
    let mut runs = 0;
    for step in &steps {
        match step {
            Step::GivenPath { line, path } => {
                let full = root().join(path);
                let sub = if full.is_dir() { "import" } else { "append" };
                let o = accord(&store).arg(sub).arg(&full).output().unwrap();
                if !o.status.success() {
                    return Err(format!(
                        "line {line}: `# given {path}` failed: {}",
                        String::from_utf8_lossy(&o.stderr)
                    ));
                }
            }
            Step::GivenInline { line, body } => {
                let o = accord(&store)
                    .args(["append", "-"])
                    .write_stdin(body.as_bytes())
                    .output()
                    .unwrap();
                if !o.status.success() {
                    return Err(format!(
                        "line {line}: `# given` failed: {}",
                        String::from_utf8_lossy(&o.stderr)
                    ));
                }
            }
            Step::Run(run) => {
                check_run(run, &store).map_err(|e| {
                    format!("line {}: accord {}\n{e}", run.line, run.args.join(" "))
                })?;
                runs += 1;
            }
        }
    }
    Ok(runs)
}

fn check_run(run: &Run, store: &Path) -> Result<(), String> {
    let mut cmd = accord(store);
    cmd.args(&run.args);
    cmd.write_stdin(run.stdin.clone().unwrap_or_default().into_bytes());
    let o = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8(o.stdout).map_err(|_| "stdout is not UTF-8")?;
    let stderr = String::from_utf8(o.stderr).map_err(|_| "stderr is not UTF-8")?;
    let mut problems = String::new();
    let code = o.status.code().unwrap_or(-1);
    if code != run.exit {
        let _ = writeln!(problems, "exit code {code}, expected {}", run.exit);
    }
    // The contract of CLI.md, checked on every run.
    if run.exit == 0 {
        if !stderr.is_empty() {
            let _ = writeln!(problems, "a success printed to stderr");
        }
        if !stdout.is_empty() && !stdout.ends_with('\n') {
            let _ = writeln!(problems, "stdout does not end with a newline");
        }
    } else {
        if !stderr.starts_with("error: ") {
            let _ = writeln!(problems, "stderr does not start with `error: `");
        }
        if !stdout.is_empty() {
            let _ = writeln!(problems, "a failure printed to stdout");
        }
    }
    let is_csv = run
        .args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "csv")
        || run.args.iter().any(|a| a == "--format=csv");
    if is_csv && code == 0 {
        if let Err(e) = check_csv(&stdout) {
            let _ = writeln!(problems, "the CSV output is not valid: {e}");
        }
    }
    let out = normalize(&stdout, store);
    let err = normalize(&stderr, store);
    if let Some(expected) = &run.stdout {
        // Trailing blank lines are not significant (a body cannot hold them).
        if out.trim_end_matches('\n') != expected.trim_end_matches('\n') {
            let _ = writeln!(
                problems,
                "stdout differs.\n--- expected\n{expected}--- actual (normalized)\n{out}---"
            );
        }
    }
    if let Some(expected) = &run.stdout_json {
        let result = json_values(expected)
            .map_err(|e| format!("the case's JSON does not parse: {e}"))
            .and_then(|exp| {
                let act = json_values(&out).map_err(|e| format!("stdout is not JSON: {e}"))?;
                if exp.len() != act.len() {
                    return Err(format!(
                        "{} JSON values expected, {} found",
                        exp.len(),
                        act.len()
                    ));
                }
                for (i, (e, a)) in exp.iter().zip(&act).enumerate() {
                    json_subset(e, a, &format!("value {}", i + 1))?;
                }
                Ok(())
            });
        if let Err(e) = result {
            let _ = writeln!(problems, "stdout JSON: {e}\n--- actual\n{out}---");
        }
    }
    for want in &run.stdout_contains {
        if !out.contains(want.as_str()) {
            let _ = writeln!(
                problems,
                "stdout lacks {want:?}\n--- actual (normalized)\n{out}---"
            );
        }
    }
    for want in &run.stderr_contains {
        if !err.contains(want.as_str()) {
            let _ = writeln!(problems, "stderr lacks {want:?}: {err}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{problems}--- stderr\n{stderr}"))
    }
}

/// Every case again with a PostgreSQL store (a schema of a throwaway cluster per case): the
/// same commands give the same outputs on both backends. Without PostgreSQL it says so and
/// passes, unless `CI=true`.
#[test]
fn scenarios_on_postgres() {
    let Some(pg) = testkit::pg::Cluster::start() else {
        return;
    };
    let dir = root().join("tests/scenarios");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/scenarios exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    let mut runs = 0;
    for (i, case) in cases.iter().enumerate() {
        let url = pg.url(&format!("case{i}"));
        match run_case_in(case, Path::new(&url)) {
            Ok(n) => runs += n,
            Err(e) => failures.push(format!(
                "=== {}\n{e}",
                case.file_name().unwrap().to_string_lossy()
            )),
        }
    }
    eprintln!(
        "{} case files on PostgreSQL, {runs} runs passed",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} case files failed on PostgreSQL:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn scenarios() {
    let dir = root().join("tests/scenarios");
    let filter = std::env::var("SCENARIO").ok();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/scenarios exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .filter(|p| {
            filter
                .as_deref()
                .is_none_or(|f| p.file_name().unwrap().to_string_lossy().contains(f))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no *.case file in {}", dir.display());
    // Cases are independent (each has its own store): run them on a few threads.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let results: Vec<(String, Result<usize, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<&PathBuf> = cases.iter().skip(t).step_by(threads).collect();
                scope.spawn(move || {
                    mine.into_iter()
                        .map(|case| {
                            let name = case.file_name().unwrap().to_string_lossy().to_string();
                            (name, run_case(case))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case thread panicked"))
            .collect()
    });
    let mut failures = Vec::new();
    let mut runs = 0;
    for (name, result) in results {
        match result {
            Ok(n) => runs += n,
            Err(e) => failures.push(format!("=== {name}\n{e}")),
        }
    }
    failures.sort();
    eprintln!("{} case files, {runs} runs passed", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} case files failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_runner_itself() {
    assert_eq!(
        split_args(r#"record x --amount '13.8B USD' --note "a b" --x=y"#).unwrap(),
        [
            "record",
            "x",
            "--amount",
            "13.8B USD",
            "--note",
            "a b",
            "--x=y"
        ]
    );
    assert_eq!(split_args("a ''").unwrap(), ["a", ""]);
    assert!(split_args("a 'b").is_err());
    let store = Path::new("/tmp/s");
    let h = "ab".repeat(32);
    assert_eq!(
        normalize(
            &format!("head 3:{h} at 2026-01-02T03:04:05.123456Z in /tmp/s"),
            store
        ),
        "head 3:<HASH> at <TIME> in <STORE>"
    );
    assert_eq!(normalize(&"a".repeat(65), store), "a".repeat(65));
    assert!(check_csv("a,b\n1,\"x,\"\"y\"\"\"\n").is_ok());
    assert!(check_csv("a,b\n1\n").is_err());
    assert!(check_csv("").is_err());
    let e: Value = serde_json::json!({"a": [1, {"b": "<ANY>"}]});
    let a: Value = serde_json::json!({"a": [1, {"b": 2, "c": 3}], "d": 4});
    assert!(json_subset(&e, &a, "").is_ok());
    assert!(json_subset(&a, &e, "").is_err());
    assert!(parse_case("# bogus\n").is_err());
    assert!(parse_case("# exit 1\n").is_err());
    let steps = parse_case("## c\n# given\n{}\n\n# run log\n# exit 4\n# stdout\nx\n\n").unwrap();
    assert_eq!(steps.len(), 2);
    match &steps[1] {
        Step::Run(r) => {
            assert_eq!(r.exit, 4);
            assert_eq!(r.stdout.as_deref(), Some("x\n"));
        }
        other => panic!("{other:?}"),
    }
}
