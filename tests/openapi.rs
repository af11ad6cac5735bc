//! A running `accord serve` held to its own OpenAPI document
//! (`crates/server/assets/openapi.json`, which `crates/server/tests/openapi.rs` holds equal
//! to `server::ROUTES`). Over the store of `accord demo`, one valid request of every
//! operation of the document:
//!
//! - is answered 200 with a media type the document declares for it (JSON bodies parse,
//!   every line of an `application/x-ndjson` body too), with `Accord-Head` exactly where the
//!   document declares it (the log is not empty), and `/openapi.json` is the file verbatim;
//! - with an unknown query parameter instead, is refused with a declared 400 whose detail
//!   names the parameters the handler takes: exactly those the document declares;
//! - on an unknown ledger, is answered with a declared 404.
//!
//! Property-based fuzzing from the same document is `tests/schemathesis.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use testkit::http::{request, Response, Served};
use testkit::{accord, checked};

const DOC: &str = include_str!("../crates/server/assets/openapi.json");

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_json::from_str(DOC).expect("openapi.json is JSON")
}

/// `v`, or what its `$ref` (a local JSON pointer) points to.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        None => v,
        Some(r) => {
            let target = r
                .strip_prefix('#')
                .and_then(|p| doc.pointer(p))
                .unwrap_or_else(|| panic!("{r} does not resolve"));
            resolve(doc, target)
        }
    }
}

/// Every (METHOD, path template) of the document, with its operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, op) in item.as_object().expect("a path item") {
            if METHODS.contains(&key.as_str()) {
                ops.insert((key.to_ascii_uppercase(), path.clone()), op);
            }
        }
    }
    ops
}

/// The names of the query parameters of an operation (its path item's and its own).
fn query_parameters(doc: &Value, path: &str, op: &Value) -> BTreeSet<String> {
    let item = &doc["paths"][path];
    [&item["parameters"], &op["parameters"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .map(|p| resolve(doc, p))
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().expect("a name").to_string())
        .collect()
}

/// The response the document declares for `status` of an operation.
fn declared<'a>(doc: &'a Value, op: &'a Value, status: u16) -> Option<&'a Value> {
    op["responses"]
        .get(status.to_string())
        .map(|r| resolve(doc, r))
}

fn media(r: &Response) -> String {
    r.header("content-type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Checks that `r` is an answer the document allows for `op`.
fn check_declared(doc: &Value, what: &str, op: &Value, r: &Response) {
    let response = declared(doc, op, r.status).unwrap_or_else(|| {
        panic!(
            "{what}: answered {}, which the document does not declare: {}",
            r.status,
            text(r)
        )
    });
    let types: BTreeSet<&String> = response["content"]
        .as_object()
        .map(|c| c.keys().collect())
        .unwrap_or_default();
    let media = media(r);
    assert!(
        types.contains(&media),
        "{what}: {} answered as {media:?}; the document declares {types:?}",
        r.status
    );
    match media.as_str() {
        "application/json" | "application/problem+json" => {
            serde_json::from_slice::<Value>(&r.body)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", text(r)));
        }
        "application/x-ndjson" => {
            for line in text(r).lines() {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("{what}: a line is not JSON ({e}): {line}"));
            }
        }
        _ => {}
    }
}

/// The head of the answer to a GET that streams (Server-Sent Events): the status line and
/// headers only, then the connection is dropped.
fn stream_head(addr: &str, path: &str) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect to accord serve");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "GET {path}: the connection closed before the head");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: Vec::new(),
    }
}

fn send(served: &Served, method: &str, target: &str, body: Option<&str>) -> Response {
    if target.contains("/log/stream") && body.is_none() {
        let r = stream_head(&served.addr, target);
        if r.status == 200 {
            return r;
        }
    }
    match body {
        None => request(&served.addr, method, target, &[], None),
        Some(b) => request(
            &served.addr,
            method,
            target,
            &[("Content-Type", "application/x-ndjson")],
            Some(b.as_bytes()),
        ),
    }
}

/// A new party, for what-if questions and an append.
const EVENT: &str = "{\"id\": \"2020-01-01-party-acme\", \"type\": \"party_registered\", \"effective\": \"2020-01-01\", \"party\": \"acme\", \"name\": \"Acme Corp\", \"kind\": \"corporation\"}\n";

type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// One valid request per operation: (method, template, target, body). The append comes
/// last but one; `verify` then reads the log it grew.
fn requests() -> Vec<Case> {
    vec![
        ("GET", "/healthz", "/healthz", None),
        ("GET", "/metrics", "/metrics", None),
        ("GET", "/openapi.json", "/openapi.json", None),
        ("GET", "/v1/ledgers", "/v1/ledgers", None),
        (
            "GET",
            "/v1/ledgers/{ledger}/head",
            "/v1/ledgers/main/head",
            None,
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/log",
            "/v1/ledgers/main/log?since=30&limit=5",
            None,
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/log/stream",
            "/v1/ledgers/main/log/stream?since=40",
            None,
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/ownership",
            "/v1/ledgers/main/ownership?as_of=2025-10-28&entity=openai-group",
            None,
        ),
        (
            "POST",
            "/v1/ledgers/{ledger}/ownership",
            "/v1/ledgers/main/ownership?as_of=2025-10-28",
            Some(EVENT),
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/obligations",
            "/v1/ledgers/main/obligations?as_of=2025-10-28&known_at=36&all=true",
            None,
        ),
        (
            "POST",
            "/v1/ledgers/{ledger}/obligations",
            "/v1/ledgers/main/obligations?party=microsoft",
            Some(EVENT),
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/rights",
            "/v1/ledgers/main/rights?party=microsoft&format=csv",
            None,
        ),
        (
            "POST",
            "/v1/ledgers/{ledger}/rights",
            "/v1/ledgers/main/rights?all=true&format=table",
            Some(EVENT),
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/positions/{party}",
            "/v1/ledgers/main/positions/microsoft?as_of=2025-10-28",
            None,
        ),
        (
            "POST",
            "/v1/ledgers/{ledger}/positions/{party}",
            "/v1/ledgers/main/positions/acme",
            Some(EVENT),
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/timeline",
            "/v1/ledgers/main/timeline?entity=openai-group&format=svg",
            None,
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/diff",
            "/v1/ledgers/main/diff?as_of=2025-10-28&known_at=30&vs_known_at=2025-10-28T23:59:59Z",
            None,
        ),
        (
            "GET",
            "/v1/ledgers/{ledger}/export",
            "/v1/ledgers/main/export?format=jsonl",
            None,
        ),
        (
            "POST",
            "/v1/ledgers/{ledger}/events",
            "/v1/ledgers/main/events",
            Some(EVENT),
        ),
        (
            "POST",
            "/v1/ledgers/{ledger}/verify",
            "/v1/ledgers/main/verify",
            None,
        ),
    ]
}

/// The parameters a 400 for an unknown parameter says the request takes.
fn takes(detail: &str) -> BTreeSet<String> {
    let list = detail
        .split_once("(this request takes ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no list of parameters in {detail:?}"));
    if list == "no parameter" {
        return BTreeSet::new();
    }
    list.split(", ").map(str::to_string).collect()
}

#[test]
fn every_operation_answers_as_the_document_says() {
    let doc = doc();
    let ops = operations(&doc);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    checked(accord(&store).arg("demo"), &["demo"]);
    let served = Served::start(Some(&store), &[]);

    let requests = requests();
    let covered: BTreeSet<(String, String)> = requests
        .iter()
        .map(|(m, t, _, _)| (m.to_string(), t.to_string()))
        .collect();
    let documented: BTreeSet<(String, String)> = ops.keys().cloned().collect();
    assert_eq!(covered, documented, "one request for every operation");

    for (method, template, target, body) in &requests {
        let what = format!("{method} {target}");
        let op = ops[&(method.to_string(), template.to_string())];
        let r = send(&served, method, target, *body);
        assert_eq!(r.status, 200, "{what}: {}", text(&r));
        check_declared(&doc, &what, op, &r);
        let head_declared = declared(&doc, op, 200)
            .and_then(|r| r["headers"].as_object())
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("accord-head")));
        assert_eq!(
            r.header("accord-head").is_some(),
            head_declared,
            "{what}: Accord-Head is sent exactly where the document declares it"
        );
        if let Some(head) = r.header("accord-head") {
            let (seq, hash) = head.split_once(':').expect("SEQ:HASH");
            assert!(seq.parse::<u64>().is_ok_and(|s| s > 0), "{what}: {head}");
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{what}: {head}"
            );
        }
        if *target == "/openapi.json" {
            assert_eq!(r.body, DOC.as_bytes(), "/openapi.json is the file verbatim");
        }

        let path = target.split('?').next().unwrap_or(target);
        // The server's own routes take any query string; every other handler refuses an
        // unknown parameter, naming the ones it takes: the document's (a what-if also takes
        // known_at, only to refuse it: its events would be recorded now).
        if !matches!(path, "/healthz" | "/metrics" | "/openapi.json") {
            let probe = format!("{path}?zzz=1");
            let what = format!("{method} {probe}");
            let refused = send(&served, method, &probe, None);
            assert_eq!(refused.status, 400, "{what}: {}", text(&refused));
            check_declared(&doc, &what, op, &refused);
            let mut expected = query_parameters(&doc, template, op);
            let what_if = *method == "POST" && body.is_some() && !template.ends_with("/events");
            if what_if {
                expected.insert("known_at".into());
            }
            assert_eq!(
                takes(refused.json()["detail"].as_str().unwrap_or("")),
                expected,
                "{what}: the query parameters the handler takes are the document's"
            );
        }
        if let Some(rest) = target.strip_prefix("/v1/ledgers/main/") {
            let probe = format!("/v1/ledgers/nope/{rest}");
            let what = format!("{method} {probe}");
            let missing = send(&served, method, &probe, *body);
            assert_eq!(missing.status, 404, "{what}: {}", text(&missing));
            check_declared(&doc, &what, op, &missing);
        }
    }
}
