//! Property-based fuzzing of `accord serve` from its own OpenAPI document, with
//! schemathesis (PyPI; `.ci/run` installs the pinned version): `accord demo` into a
//! temporary store, `accord serve --listen 127.0.0.1:0` on it, then
//! `schemathesis run http://127.0.0.1:PORT/openapi.json` with the checks that no answer is a
//! 5xx and that every answer's status, media type, headers and body match the document.
//!
//! Bounded: a fixed number of examples per operation, a fixed seed, one worker, and a hard
//! limit on the whole run. The hooks below (written next to the store) give schemathesis
//! what it cannot take from the document: a generator of event files, the ledger `main`
//! and the sample's parties most of the time, and a live log that sends its events at once.
//!
//! With `CI=true` a missing schemathesis fails the test; elsewhere the test says what is
//! missing and passes without fuzzing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{accord, checked};

/// Test cases per API operation and phase.
const MAX_EXAMPLES: &str = "100";
/// The seed of every run, so a failure found once is found again.
const SEED: &str = "20251028";
/// The checks: no 5xx, and every answer as the document says.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";
/// The whole run is stopped, and fails, after this long.
const LIMIT: Duration = Duration::from_secs(240);

/// Schemathesis hooks (`SCHEMATHESIS_HOOKS`).
const HOOKS: &str = r#"
"""Schemathesis hooks for accord's API (written by tests/schemathesis.rs).

- Event files (application/x-ndjson, application/jsonl) have no built-in serializer: they are
  sent as they are, like text, and bodies are drawn as JSON Lines mixing events that name the
  sample's parties (some valid, most refused by a rule), other JSON and garbage (bad UTF-8
  included), rather than from the document's schema (a string).
- The ledger is `main` most of the time, and a party one of the sample's, so that requests
  reach the reports rather than stop at a 404.
- The live log is read from a small `since`, so its stream sends 20 events at once and
  schemathesis cuts it there instead of waiting for the request timeout.
"""

import json

import schemathesis
from hypothesis import strategies as st

LEDGER = "/v1/ledgers/{ledger}"
PARTIES = ["microsoft", "openai-group", "openai-foundation", "other-holders"]
OBLIGATIONS = ["azure-commitment", "foundation-pledge", "msft-funding"]
RIGHTS = ["ip-rights", "revenue-share", "research-ip"]

slug = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,12}\Z")
party = st.one_of(st.sampled_from(PARTIES), slug)
date = st.one_of(
    st.dates().map(str),
    st.from_regex(r"\A(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]\Z"),
)
decimal = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,30}(\.[0-9]{1,30})?\Z"),
    st.integers(min_value=1, max_value=10**15).map(str),
    st.sampled_from(["0", "1e3", "1,000", "", " 1", "NaN", "0.0000000000000000000000000001"]),
    st.integers(),
)
currency = st.sampled_from(["USD", "EUR", "usd", "US", "USDX"])
money = st.fixed_dictionaries({"amount": decimal, "currency": currency})
event_id = st.from_regex(r"\A[A-Za-z0-9._:-]{1,40}\Z")


def event(payload):
    return st.fixed_dictionaries(
        {"id": event_id, "effective": date, **payload},
        optional={"source": st.text(max_size=20), "note": st.text(max_size=20)},
    )


EVENTS = st.one_of(
    event({"type": st.just("party_registered"), "party": party, "name": st.text(min_size=1, max_size=20),
           "kind": st.sampled_from(["corporation", "nonprofit", "group", "fund", "alien"])}),
    event({"type": st.just("party_updated"), "party": party, "name": st.text(max_size=20)}),
    event({"type": st.just("shares_issued"), "issuer": party, "holder": party, "units": decimal}),
    event({"type": st.just("shares_transferred"), "issuer": party, "from": party, "to": party, "units": decimal}),
    event({"type": st.just("shares_cancelled"), "issuer": party, "holder": party, "units": decimal}),
    event({"type": st.just("shares_split"), "issuer": party, "numerator": decimal, "denominator": decimal}),
    event({"type": st.sampled_from(["recapitalized", "holdings_stated"]), "issuer": party,
           "holdings": st.lists(st.fixed_dictionaries({"holder": party, "percent": decimal}), max_size=3)}),
    event({"type": st.just("valuation_recorded"), "entity": party, "post_money": money}),
    event({"type": st.just("investment_made"), "investor": party, "investee": party, "amount": money}),
    event({"type": st.just("obligation_incurred"), "obligation": slug,
           "kind": st.sampled_from(["loan", "pledge", "other", "gift"]), "obligor": party, "obligee": party,
           "amount": money}),
    event({"type": st.just("obligation_settled"), "obligation": st.sampled_from(OBLIGATIONS), "amount": money}),
    event({"type": st.just("obligation_amended"), "obligation": st.sampled_from(OBLIGATIONS), "amount": money}),
    event({"type": st.just("obligation_released"), "obligation": st.sampled_from(OBLIGATIONS)}),
    event({"type": st.just("right_granted"), "right": slug, "kind": slug, "holder": party, "grantor": party,
           "until": st.one_of(st.none(), date)}),
    event({"type": st.just("right_amended"), "right": st.sampled_from(RIGHTS), "until": st.one_of(st.none(), date)}),
    event({"type": st.just("right_ended"), "right": st.sampled_from(RIGHTS)}),
    event({"type": st.just("milestone_declared"), "milestone": slug, "declared_by": party}),
    event({"type": st.just("milestone_verified"), "milestone": st.sampled_from(["agi", "nope"]),
           "verified_by": st.text(max_size=10)}),
    event({"type": st.just("event_reversed"), "reverses": event_id, "reason": st.text(max_size=10)}),
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

LINE = st.one_of(
    EVENTS.map(json.dumps),
    EVENTS.map(json.dumps),
    JSON.map(json.dumps),
    st.text(max_size=30),
    st.just(""),
)

BODY = st.one_of(
    st.lists(LINE, max_size=4).map(lambda lines: "\n".join(lines).encode("utf-8")),
    st.binary(max_size=40),
)

schemathesis.serializer.alias(["application/x-ndjson", "application/jsonl"], "text/plain")


@schemathesis.hook
def before_generate_body(ctx, strategy):
    return BODY


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    drawn = {}
    for name, value in path_parameters.items():
        if name == "ledger":
            drawn[name] = st.sampled_from(["main"] * 7 + [value])
        elif name == "party":
            drawn[name] = st.sampled_from(PARTIES + ["nobody", value])
        else:
            drawn[name] = st.just(value)
    return st.fixed_dictionaries(drawn)


def _small(value):
    if isinstance(value, int) and value > 19:
        return value % 20
    if isinstance(value, str) and value.isdigit() and len(value) > 1:
        return str(int(value) % 20)
    return value


@schemathesis.hook.apply_to(path=LEDGER + "/log/stream")
def map_query(ctx, query):
    if query and "since" in query:
        query["since"] = _small(query["since"])
    return query


@schemathesis.hook.apply_to(path=LEDGER + "/log/stream")
def map_headers(ctx, headers):
    if headers and "Last-Event-ID" in headers:
        headers["Last-Event-ID"] = _small(headers["Last-Event-ID"])
    return headers
"#;

/// The version of schemathesis on the PATH, or why there is none. A missing one fails
/// under CI (`CI=true`), and is reported and skipped elsewhere.
fn schemathesis() -> Option<String> {
    let why = match Command::new("schemathesis").arg("--version").output() {
        Ok(o) if o.status.success() => {
            return Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
        }
        Ok(o) => format!(
            "`schemathesis --version` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("schemathesis is not on the PATH ({e})"),
    };
    let msg = format!("{why}: install it with `pip install schemathesis` (.ci/run pins it)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {msg}");
    }
    eprintln!("SKIPPED the schemathesis fuzzing of the API: {msg}");
    None
}

/// `accord serve` on `store`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(store: &Path, log: &Path) -> Server {
        let log = std::fs::File::create(log).expect("the server's log file");
        let mut child = Command::new(testkit::bin())
            .env_remove("ACCORD_STORE")
            .arg("--store")
            .arg(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("accord serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("its stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("accord serve prints where it listens");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("accord serve printed {line:?}"))
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a file, for a failure's message.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn the_api_answers_every_generated_request_as_its_document_says() {
    let Some(version) = schemathesis() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    checked(accord(&store).arg("demo"), &["demo"]);
    let server_log = dir.path().join("server.log");
    let server = Server::start(&store, &server_log);
    let hooks = dir.path().join("accord_hooks.py");
    std::fs::write(&hooks, HOOKS).unwrap();
    let report = dir.path().join("schemathesis.txt");

    let schema = format!("{}/openapi.json", server.url);
    let args = [
        "run",
        schema.as_str(),
        "--checks",
        CHECKS,
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ];
    let started = Instant::now();
    let mut run = Command::new("schemathesis")
        .args(args)
        .current_dir(dir.path())
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&report).unwrap())
        .stderr(std::fs::File::create(dir.path().join("schemathesis.err")).unwrap())
        .spawn()
        .expect("schemathesis starts");
    let status = loop {
        if let Some(status) = run.try_wait().expect("schemathesis runs") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = run.kill();
            let _ = run.wait();
            panic!(
                "schemathesis {args:?} did not finish within {LIMIT:?}; its output so far:\n{}",
                tail(&report, 80)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&report).unwrap_or_default();
    let errors = std::fs::read_to_string(dir.path().join("schemathesis.err")).unwrap_or_default();
    assert!(
        status.success(),
        "{version}: `schemathesis {}` found the API answering other than its document says \
         ({status}):\n{output}\n{errors}\nthe server's log ends:\n{}",
        args.join(" "),
        tail(&server_log, 40)
    );
    println!(
        "{version}, {:.0?}: {}",
        started.elapsed(),
        output
            .lines()
            .filter(|l| l.contains("generated") || l.contains("No issues"))
            .collect::<Vec<_>>()
            .join("; ")
    );
}
