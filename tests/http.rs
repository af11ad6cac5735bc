//! `accord serve` against the CLI: every endpoint answers exactly what the same CLI command
//! prints for the same store and question; every error status of HTTP.md's table; the
//! role and ledger matrix of tokens; `expect_head`; a refused request leaves the log
//! byte-identical; the CLI on a store the server holds names the server; SIGTERM stops it.
//!
//! The server holds its store, so the CLI asks a byte-for-byte copy of it (same seqs,
//! recorded times and hashes).

use std::path::Path;

use testkit::http::{Response, Served};
use testkit::{copy_dir, ok, output, sample_store, text};

/// The sample store served, and a copy of it for the CLI.
fn served_sample(args: &[&str]) -> (tempfile::TempDir, Served, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let copy = dir.path().join("copy");
    copy_dir(&store, &copy);
    let server = Served::start(Some(&store), args);
    (dir, server, copy)
}

fn cli(store: &Path, args: &[&str]) -> String {
    ok(store, args)
}

fn body_of(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.text()
}

const SETTLE: &str = r#"{"id":"http-settle-1","type":"obligation_settled","effective":"2026-05-01","obligation":"msft-funding","amount":{"amount":"100000000","currency":"USD"}}
"#;

#[test]
fn every_read_endpoint_answers_the_cli_json() {
    let (dir, s, copy) = served_sample(&[]);
    let b = "/v1/ledgers/main";
    // (HTTP path, CLI arguments)
    let mut cases: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |path: String, args: &[&str]| {
        cases.push((path, args.iter().map(|a| a.to_string()).collect()));
    };
    add(format!("{b}/head"), &["head", "--format", "json"]);
    add(
        format!("{b}/log?since=30"),
        &["log", "--since", "30", "--format", "json"],
    );
    add(format!("{b}/log?format=csv"), &["log", "--format", "csv"]);
    for as_of in ["2025-10-27", "2025-10-28", "2026-04-28"] {
        for known in [None, Some("36"), Some("2025-11-01")] {
            let mut q = format!("as_of={as_of}");
            let mut t = vec!["--as-of", as_of];
            if let Some(k) = known {
                q.push_str(&format!("&known_at={k}"));
                t.extend(["--known-at", k]);
            }
            for (route, cmd) in [
                ("ownership", vec!["ownership"]),
                ("obligations", vec!["obligations"]),
                (
                    "obligations?all=true&party=microsoft",
                    vec!["obligations", "--all", "--party", "microsoft"],
                ),
                ("rights", vec!["rights"]),
                ("rights?all=true", vec!["rights", "--all"]),
                ("positions/microsoft", vec!["position", "microsoft"]),
                (
                    "positions/microsoft?all=true",
                    vec!["position", "microsoft", "--all"],
                ),
                (
                    "ownership?entity=openai-group",
                    vec!["ownership", "--entity", "openai-group"],
                ),
                (
                    "timeline?entity=openai-group",
                    vec!["timeline", "--entity", "openai-group"],
                ),
            ] {
                for format in ["json", "csv"] {
                    let sep = if route.contains('?') { '&' } else { '?' };
                    let path = format!("{b}/{route}{sep}{q}&format={format}");
                    let mut args = cmd.clone();
                    args.extend(t.iter().copied());
                    args.extend(["--format", format]);
                    add(path, &args);
                }
            }
        }
    }
    add(
        format!("{b}/timeline?entity=openai-group&as_of=2026-04-28&format=svg"),
        &[
            "timeline",
            "--entity",
            "openai-group",
            "--as-of",
            "2026-04-28",
            "--format",
            "svg",
        ],
    );
    add(
        format!("{b}/ownership?as_of=2025-10-28"),
        &["ownership", "--as-of", "2025-10-28", "--format", "json"],
    );
    add(
        format!("{b}/obligations?as_of=2026-02-01&format=table"),
        &["obligations", "--as-of", "2026-02-01"],
    );
    add(
        format!("{b}/diff?as_of=2026-04-28&known_at=36"),
        &[
            "diff",
            "--as-of",
            "2026-04-28",
            "--known-at",
            "36",
            "--format",
            "json",
        ],
    );
    add(
        format!("{b}/diff?as_of=2026-04-28&known_at=30&vs_known_at=40&format=csv"),
        &[
            "diff",
            "--as-of",
            "2026-04-28",
            "--known-at",
            "30",
            "--vs-known-at",
            "40",
            "--format",
            "csv",
        ],
    );
    add(
        format!("{b}/export?format=jsonl"),
        &["export", "--format", "jsonl"],
    );
    add(
        format!("{b}/export?format=ledger&as_of=2025-12-31&known_at=36"),
        &[
            "export",
            "--format",
            "ledger",
            "--as-of",
            "2025-12-31",
            "--known-at",
            "36",
        ],
    );
    let head = cli(&copy, &["head"]).trim().to_string();
    for (path, args) in &cases {
        let r = s.get(path);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            body_of(&r),
            cli(&copy, &args),
            "GET {path} = accord {args:?}"
        );
        assert_eq!(r.header("accord-head"), Some(head.as_str()), "GET {path}");
    }
    // Media types.
    let media = |p: &str| {
        s.get(p)
            .header("content-type")
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(media(&format!("{b}/ownership")), "application/json");
    assert_eq!(
        media(&format!("{b}/ownership?format=csv")),
        "text/csv; charset=utf-8"
    );
    assert_eq!(media(&format!("{b}/log")), "application/x-ndjson");
    assert_eq!(
        media(&format!("{b}/timeline?entity=openai-group&format=svg")),
        "image/svg+xml"
    );
    // An SVG runs nothing opened on its own, computed or cached.
    for _ in 0..2 {
        let r = s.get(&format!("{b}/timeline?entity=openai-group&format=svg"));
        assert_eq!(
            r.header("content-security-policy"),
            Some("default-src 'none'; style-src 'unsafe-inline'")
        );
    }
    // `limit` caps the lines of the log.
    let page = body_of(&s.get(&format!("{b}/log?since=10&limit=5")));
    let all = cli(&copy, &["log", "--since", "10", "--format", "json"]);
    let first5: Vec<&str> = all.lines().take(5).collect();
    assert_eq!(page.lines().collect::<Vec<_>>(), first5);
    drop(dir);
}

#[test]
fn what_if_and_writes_answer_as_the_cli_does() {
    let (dir, s, copy) = served_sample(&[]);
    let b = "/v1/ledgers/main";
    let file = dir.path().join("settle.jsonl");
    std::fs::write(&file, SETTLE).unwrap();
    let f = file.to_str().unwrap();
    for (route, args) in [
        (
            "obligations?as_of=2026-06-01",
            vec!["obligations", "--as-of", "2026-06-01"],
        ),
        (
            "ownership?as_of=2026-06-01",
            vec!["ownership", "--as-of", "2026-06-01"],
        ),
        (
            "rights?as_of=2026-06-01&all=true",
            vec!["rights", "--as-of", "2026-06-01", "--all"],
        ),
        (
            "positions/microsoft?as_of=2026-06-01",
            vec!["position", "microsoft", "--as-of", "2026-06-01"],
        ),
    ] {
        let r = s.post(&format!("{b}/{route}"), SETTLE);
        let mut args = args.clone();
        args.extend(["--with", f, "--format", "json"]);
        assert_eq!(body_of(&r), cli(&copy, &args), "POST {route}");
    }
    // Nothing was written by the what-ifs.
    assert_eq!(s.get(&format!("{b}/head")).json()["seq"], 42);

    // A dry run: the CLI's receipt, nothing written.
    let r = s.post(&format!("{b}/events?dry_run=true"), SETTLE);
    assert_eq!(
        body_of(&r),
        cli(&copy, &["append", "--dry-run", f, "--format", "json"])
    );
    assert_eq!(s.get(&format!("{b}/head")).json()["seq"], 42);

    // An append: the CLI's receipt but for the head, whose hash covers the recorded time.
    let r = s.post(&format!("{b}/events"), SETTLE);
    let http = r.json();
    let mine: serde_json::Value =
        serde_json::from_str(&cli(&copy, &["append", f, "--format", "json"])).unwrap();
    for field in ["appended", "skipped", "first_seq", "last_seq"] {
        assert_eq!(http[field], mine[field], "{field}");
    }
    let head = s.get(&format!("{b}/head")).json();
    assert_eq!(head["seq"], 43);
    assert_eq!(http["head"], head["hash"]);
    assert_eq!(
        r.header("accord-head").unwrap(),
        format!("43:{}", head["hash"].as_str().unwrap())
    );
    // Sent again: idempotent, skipped.
    let again = s.post(&format!("{b}/events"), SETTLE).json();
    assert_eq!(
        (again["appended"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(1))
    );
    // expect_head: the head as it is commits, an old one is 412 and writes nothing.
    let h = format!("43:{}", head["hash"].as_str().unwrap());
    let next = SETTLE.replace("http-settle-1", "http-settle-2");
    let r = s.post(&format!("{b}/events?expect_head={h}"), &next);
    assert_eq!(r.status, 200, "{}", r.text());
    let log = s.get(&format!("{b}/log")).body;
    let r = s.post(
        &format!("{b}/events?expect_head={h}"),
        &next.replace("settle-2", "settle-3"),
    );
    assert_eq!((r.status, r.code().as_str()), (412, "head_moved"));
    assert_eq!(s.get(&format!("{b}/log")).body, log, "a 412 writes nothing");
    // verify: the CLI's JSON.
    let v = s.post_with(&format!("{b}/verify"), &[], b"");
    assert_eq!(v.status, 200);
    assert_eq!(v.json()["ok"], true);
    assert_eq!(v.json()["events"], 44);
    let v = s.post_with(&format!("{b}/verify?expect_head={h}"), &[], b"");
    assert_eq!(v.json()["ok"], true, "{}", v.text());
    let wrong = format!("43:{}", "0".repeat(64));
    let v = s.post_with(&format!("{b}/verify?expect_head={wrong}"), &[], b"");
    assert_eq!(
        (v.status, v.json()["ok"].clone()),
        (200, serde_json::json!(false))
    );
    assert!(
        v.json()["detail"].as_str().unwrap().contains("43"),
        "{}",
        v.text()
    );
    drop(dir);
}

#[test]
fn every_error_status_of_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let copy = dir.path().join("copy");
    copy_dir(&store, &copy);
    let missing = dir.path().join("not-yet");
    let main = format!("main={}", store.display());
    let empty = format!("empty={}", missing.display());
    let s = Served::start(
        None,
        &["--ledger", &main, "--ledger", &empty, "--max-body", "4096"],
    );
    let b = "/v1/ledgers/main";
    let log = || s.get(&format!("{b}/log")).body;
    let before = log();
    let expect = |r: Response, status: u16, code: &str| {
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_string()),
            "{}",
            r.text()
        );
        let p = r.json();
        assert_eq!(p["status"], status);
        assert_eq!(p["type"], "about:blank");
        assert!(p["title"].is_string());
        let detail = p["detail"].as_str().unwrap();
        assert!(!detail.is_empty() && !detail.contains('\n'), "{detail:?}");
        p
    };
    // 400: a bad parameter, an unknown one, a repeated one.
    expect(
        s.get(&format!("{b}/ownership?as_of=2025-13-01")),
        400,
        "bad_request",
    );
    let p = expect(
        s.get(&format!("{b}/ownership?asof=2025-10-28")),
        400,
        "bad_request",
    );
    assert!(p["detail"].as_str().unwrap().contains("asof"));
    expect(
        s.get(&format!("{b}/ownership?format=xml")),
        400,
        "bad_request",
    );
    expect(
        s.get(&format!("{b}/log?since=1&since=2")),
        400,
        "bad_request",
    );
    expect(s.get(&format!("{b}/log?limit=10001")), 400, "bad_request");
    expect(s.get(&format!("{b}/diff")), 400, "bad_request");
    expect(
        s.post(&format!("{b}/ownership?known_at=3"), SETTLE),
        400,
        "bad_request",
    );
    expect(
        s.post(&format!("{b}/events?expect_head=nonsense"), SETTLE),
        400,
        "bad_request",
    );
    // The detail is the CLI's words.
    let p = expect(
        s.get(&format!("{b}/ownership?known_at=0")),
        400,
        "bad_request",
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("use a positive integer"),
        "{p}"
    );
    // 404: no such ledger, party or path.
    expect(s.get("/v1/ledgers/nope/ownership"), 404, "unknown_ledger");
    let p = expect(
        s.get(&format!("{b}/positions/nobody")),
        404,
        "unknown_party",
    );
    let cli_words = text(&output(&copy, &["position", "nobody"]).stderr);
    assert_eq!(
        format!("error: {}", p["detail"].as_str().unwrap()),
        cli_words.lines().next().unwrap()
    );
    expect(
        s.get(&format!("{b}/obligations?party=nobody")),
        404,
        "unknown_party",
    );
    expect(s.get("/v2/whatever"), 404, "not_found");
    expect(s.get("/../../etc/passwd"), 404, "not_found");
    expect(s.get("/%2e%2e/Cargo.toml"), 404, "not_found");
    // 409: an id recorded with other content.
    let conflict = r#"{"id":"2025-10-28-openai-group-recapitalization","type":"party_registered","effective":"2025-10-28","party":"someone","name":"Someone","kind":"corporation"}
"#;
    let p = expect(s.post(&format!("{b}/events"), conflict), 409, "id_conflict");
    assert_eq!(p["event"], "2025-10-28-openai-group-recapitalization");
    // 413: over --max-body.
    let big = SETTLE.repeat(100);
    expect(s.post(&format!("{b}/events"), &big), 413, "too_large");
    // 415: another media type.
    let r = s.post_with(
        &format!("{b}/events"),
        &[("Content-Type", "application/json")],
        SETTLE.as_bytes(),
    );
    expect(r, 415, "unsupported_media_type");
    // 422: a parse error and a broken invariant, with event and line.
    let p = expect(
        s.post(&format!("{b}/events"), "{\"id\": 1}\n"),
        422,
        "parse_error",
    );
    assert_eq!(p["line"], 1);
    let overdraw = SETTLE.replace("100000000", "900000000000");
    let p = expect(
        s.post(&format!("{b}/events"), &overdraw),
        422,
        "settlement_exceeds_outstanding",
    );
    assert_eq!(p["event"], "http-settle-1");
    assert_eq!(p["line"], 1);
    let f = dir.path().join("over.jsonl");
    std::fs::write(&f, &overdraw).unwrap();
    let cli_words = text(&output(&copy, &["append", f.to_str().unwrap()]).stderr);
    let detail = p["detail"].as_str().unwrap();
    assert!(
        cli_words.contains(detail.trim_start_matches("<body>: ")),
        "{detail} vs {cli_words}"
    );
    // 503: a ledger whose store is not there yet.
    expect(s.get("/v1/ledgers/empty/ownership"), 503, "unavailable");
    // 405: a method the route does not take.
    let r = s.post_with(&format!("{b}/head"), &[], b"");
    assert_eq!(r.status, 405);
    // Every refusal left the log as it was.
    assert_eq!(log(), before);
    // The empty ledger is listed with no head, and is created by its first append.
    let ledgers = s.get("/v1/ledgers").json();
    assert_eq!(ledgers["ledgers"][1]["ledger"], "empty");
    assert!(ledgers["ledgers"][1]["head"].is_null());
    assert!(!missing.exists());
    let party = r#"{"id":"p1","type":"party_registered","effective":"2024-01-01","party":"acme","name":"Acme","kind":"corporation"}
"#;
    // `expect_head=0`: only onto an empty log.
    let r = s.post(&format!("{b}/events?expect_head=0"), party);
    assert_eq!((r.status, r.code().as_str()), (412, "head_moved"));
    let r = s.post("/v1/ledgers/empty/events?expect_head=0", party);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/v1/ledgers/empty/head").json()["seq"], 1);
    // verify: `0` is a prefix of every log; `0:HASH` is no head at all.
    let v = s.post_with(&format!("{b}/verify?expect_head=0"), &[], b"");
    assert_eq!(v.json()["ok"], true, "{}", v.text());
    let zero = format!("0:{}", "0".repeat(64));
    let v = s.post_with(&format!("{b}/verify?expect_head={zero}"), &[], b"");
    assert_eq!((v.status, v.code().as_str()), (400, "bad_request"));
    assert!(missing.exists());
}

/// A request made with a token (`Authorization` header value).
type Ask<'a> = Box<dyn Fn(&str) -> Response + 'a>;

#[test]
fn tokens_roles_and_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let other = dir.path().join("other");
    let tokens = dir.path().join("tokens.txt");
    let mut file = String::from("# the team\n");
    let mut names = Vec::new();
    for (role, ledgers) in [
        ("read", "main"),
        ("write", "main"),
        ("admin", "*"),
        ("write", "other"),
    ] {
        let out = testkit::checked(
            testkit::command().args(["token", "new", role, "--ledgers", ledgers]),
            &["token", "new"],
        )
        .stdout;
        let mut lines = out.lines();
        let token = lines.next().unwrap().to_string();
        let line = lines.next().unwrap().to_string();
        assert!(!line.contains(&token), "the file never holds a token");
        assert!(token.len() >= 32, "at least 128 bits: {token}");
        file.push_str(&line);
        file.push('\n');
        names.push(token);
    }
    std::fs::write(&tokens, &file).unwrap();
    let main = format!("main={}", store.display());
    let oth = format!("other={}", other.display());
    let s = Served::start(
        None,
        &[
            "--ledger",
            &main,
            "--ledger",
            &oth,
            "--tokens",
            tokens.to_str().unwrap(),
        ],
    );
    let [read, write, admin, write_other] = [0, 1, 2, 3].map(|i| format!("Bearer {}", names[i]));
    let get = |path: &str, auth: Option<&str>| {
        let h: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        s.get_with(path, &h)
    };
    let post = |path: &str, auth: Option<&str>, body: &str| {
        let mut h = vec![("Content-Type", "application/x-ndjson")];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        s.post_with(path, &h, body.as_bytes())
    };
    // No token or an unknown one: 401 with WWW-Authenticate.
    for auth in [None, Some("Bearer accord_0000"), Some("Basic YTpi")] {
        let r = get("/v1/ledgers/main/head", auth);
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "unauthorized"),
            "{auth:?}"
        );
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    // No token needed: health, the document, the page.
    assert_eq!(get("/healthz", None).status, 200);
    assert_eq!(get("/openapi.json", None).status, 200);
    assert_eq!(get("/", None).status, 200);
    // The matrix: (token, request) -> status.
    let q = "/v1/ledgers/main/obligations?as_of=2026-02-01";
    let cases: Vec<(&str, u16, Ask<'_>)> = vec![
        (read.as_str(), 200, Box::new(|a| get(q, Some(a)))),
        (write.as_str(), 200, Box::new(|a| get(q, Some(a)))),
        (admin.as_str(), 200, Box::new(|a| get(q, Some(a)))),
        (write_other.as_str(), 403, Box::new(|a| get(q, Some(a)))),
        (
            read.as_str(),
            403,
            Box::new(|a| post("/v1/ledgers/main/events?dry_run=true", Some(a), SETTLE)),
        ),
        (read.as_str(), 403, Box::new(|a| post(q, Some(a), SETTLE))),
        (write.as_str(), 200, Box::new(|a| post(q, Some(a), SETTLE))),
        (
            write.as_str(),
            200,
            Box::new(|a| post("/v1/ledgers/main/events?dry_run=true", Some(a), SETTLE)),
        ),
        (
            write_other.as_str(),
            403,
            Box::new(|a| post("/v1/ledgers/main/events", Some(a), SETTLE)),
        ),
        (
            write.as_str(),
            403,
            Box::new(|a| post("/v1/ledgers/main/verify", Some(a), "")),
        ),
        (
            admin.as_str(),
            200,
            Box::new(|a| post("/v1/ledgers/main/verify", Some(a), "")),
        ),
        (
            read.as_str(),
            403,
            Box::new(|a| get("/v1/ledgers/other/head", Some(a))),
        ),
        (
            admin.as_str(),
            404,
            Box::new(|a| get("/v1/ledgers/nope/head", Some(a))),
        ),
        (
            read.as_str(),
            403,
            Box::new(|a| get("/v1/ledgers/nope/head", Some(a))),
        ),
        (read.as_str(), 200, Box::new(|a| get("/metrics", Some(a)))),
    ];
    for (i, (auth, status, request)) in cases.iter().enumerate() {
        let r = request(auth);
        assert_eq!(
            r.status,
            *status,
            "case {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if *status == 403 {
            assert_eq!(r.code(), "forbidden");
        }
    }
    // GET /v1/ledgers lists only what the token may read.
    let listed = |auth: &str| -> Vec<String> {
        get("/v1/ledgers", Some(auth)).json()["ledgers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ledger"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&read), ["main"]);
    assert_eq!(listed(&admin), ["main", "other"]);
    assert_eq!(listed(&write_other), ["other"]);
    // A write with the write token lands; with the token of another ledger it did not.
    let r = post("/v1/ledgers/main/events", Some(&write), SETTLE);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get("/v1/ledgers/main/head", Some(&read)).json()["seq"], 43);
    // With tokens, any Host is answered (a proxy in front names its own).
    let r = s.get_with("/healthz", &[("Host", "deals.example.com")]);
    assert_eq!(r.status, 200);
}

#[test]
fn without_tokens_only_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    // Refused at start: any other address needs tokens.
    let o = output(&store, &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--tokens"), "{}", text(&o.stderr));
    // A bad --ledger is a usage error.
    let o = output(
        &store,
        &["serve", "--listen", "127.0.0.1:0", "--ledger", "Main=x"],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = output(
        &store,
        &["serve", "--listen", "127.0.0.1:0", "--ledger", "x"],
    );
    assert_eq!(o.status.code(), Some(2));
    // A bad token file is a usage error naming its line.
    let t = dir.path().join("t.txt");
    std::fs::write(&t, "read *\n").unwrap();
    let o = output(
        &store,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            t.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("line 1"), "{}", text(&o.stderr));
    // Served on loopback: requests for another Host are refused (DNS rebinding).
    let s = Served::start(Some(&store), &[]);
    for host in [
        "evil.example",
        "127.0.0.1.nip.io",
        "localhost.evil.example:80",
    ] {
        let r = s.get_with("/healthz", &[("Host", host)]);
        assert_eq!((r.status, r.code().as_str()), (403, "forbidden"), "{host}");
    }
    for host in ["localhost", "localhost:8080", "127.0.0.1", "[::1]:9"] {
        assert_eq!(
            s.get_with("/healthz", &[("Host", host)]).status,
            200,
            "{host}"
        );
    }
    // No CORS unless asked for.
    assert!(s
        .get("/healthz")
        .header("access-control-allow-origin")
        .is_none());
}

#[test]
fn the_cli_on_a_store_the_server_holds_names_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let s = Served::start(Some(&store), &[]);
    let o = testkit::accord(&store)
        .args(["--wait", "1", "head"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    let err = text(&o.stderr);
    assert!(
        err.contains("accord serve") && err.contains(&s.addr),
        "the message names the server and where it listens: {err}"
    );
    // SIGTERM: a clean stop, exit 0, and the store is free again.
    assert_eq!(s.terminate(), Some(0));
    assert!(ok(&store, &["head"]).starts_with("42:"));
}

#[test]
fn the_log_stream_resumes_after_last_event_id() {
    let (_dir, s, _copy) = served_sample(&[]);
    let b = "/v1/ledgers/main";
    use std::io::{BufRead, BufReader, Write};
    let open = |extra: &str, path: &str| {
        let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(c, "GET {path} HTTP/1.0\r\nHost: {}\r\n{extra}\r\n", s.addr).unwrap();
        BufReader::new(c)
    };
    // The ids and data of the next n events on a stream.
    let read =
        |r: &mut BufReader<std::net::TcpStream>, n: usize| -> Vec<(u64, serde_json::Value)> {
            let mut out = Vec::new();
            let mut id = None;
            let mut line = String::new();
            while out.len() < n {
                line.clear();
                assert!(r.read_line(&mut line).unwrap() > 0, "the stream ended");
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.trim().parse::<u64>().unwrap());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    out.push((id.take().unwrap(), serde_json::from_str(v.trim()).unwrap()));
                }
            }
            out
        };
    let mut a = open("", &format!("{b}/log/stream?since=40"));
    let mut b2 = open("Last-Event-ID: 41\r\n", &format!("{b}/log/stream?since=1"));
    let got = read(&mut a, 2);
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [41, 42]);
    let log: Vec<serde_json::Value> = s
        .get(&format!("{b}/log?since=40"))
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(), log);
    assert_eq!(read(&mut b2, 1)[0].0, 42, "Last-Event-ID wins over since");
    // A new event reaches both.
    assert_eq!(s.post(&format!("{b}/events"), SETTLE).status, 200);
    assert_eq!(read(&mut a, 1)[0].0, 43);
    let (seq, data) = read(&mut b2, 1).remove(0);
    assert_eq!((seq, data["id"].as_str()), (43, Some("http-settle-1")));
}

/// What a review of the server found, each held: a refused first append creates no store,
/// no token is 401 before anything else, `/metrics` shows a scoped token its own ledgers
/// only, and the settings that could never work are refused at start.
#[test]
fn refusals_create_nothing_and_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let fresh = dir.path().join("fresh");
    // A refused first append creates no store; a valid one does.
    let s = Served::start(None, &["--ledger", &format!("new={}", fresh.display())]);
    let r = s.post("/v1/ledgers/new/events", SETTLE);
    assert_eq!(
        (r.status, r.code().as_str()),
        (422, "unknown_obligation"),
        "{}",
        r.text()
    );
    assert!(!fresh.exists(), "a refused append created the store");
    assert_eq!(s.get("/v1/ledgers/new/head").status, 503);
    // A party no event registers, named by an event of the body: refused input (422).
    let invest = r#"{"id":"i1","type":"investment_made","effective":"2024-01-01","investor":"nobody","investee":"nobody-else","amount":{"amount":"1","currency":"USD"}}
"#;
    let r = s.post("/v1/ledgers/new/events", invest);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(!fresh.exists());
    let party = r#"{"id":"p1","type":"party_registered","effective":"2024-01-01","party":"acme","name":"Acme","kind":"corporation"}
"#;
    assert_eq!(s.post("/v1/ledgers/new/events", party).status, 200);
    assert!(fresh.exists());
    // Parameters of the server's own routes are checked too; page paths take GET only.
    assert_eq!(s.get("/healthz?x=1").status, 400);
    assert_eq!(s.get("/openapi.json?x=1").status, 400);
    let r = s.post_with("/", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET,HEAD")));
    // One Host only.
    let r = s.get_with(
        "/healthz",
        &[("Host", "localhost"), ("Host", "evil.example")],
    );
    assert_eq!(r.status, 400);
    // A `+` of a time zone sent unescaped (a space) still reads as meant.
    let r = s.get("/v1/ledgers/new/ownership?known_at=2026-01-01T00:00:00+01:00");
    assert_eq!(r.status, 200, "{}", r.text());
    // Events are UTF-8 whatever the client claims.
    let r = s.post_with(
        "/v1/ledgers/new/events",
        &[("Content-Type", "application/x-ndjson; charset=latin1")],
        party.as_bytes(),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_media_type")
    );
    drop(s);

    // With tokens: no token is 401 before a bad parameter is looked at; /metrics of a
    // token for one ledger shows that ledger only.
    let line = |role: &str, ledgers: &str| {
        let out = testkit::checked(
            testkit::command().args(["token", "new", role, "--ledgers", ledgers]),
            &["token", "new"],
        )
        .stdout;
        let mut l = out.lines();
        (l.next().unwrap().to_string(), l.next().unwrap().to_string())
    };
    let (other_token, other_line) = line("read", "other");
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, format!("{other_line}\n")).unwrap();
    let main = format!("main={}", store.display());
    let oth = format!("other={}", dir.path().join("o").display());
    let s = Served::start(
        None,
        &[
            "--ledger",
            &main,
            "--ledger",
            &oth,
            "--tokens",
            tokens.to_str().unwrap(),
        ],
    );
    for path in [
        "/v1/ledgers/main/ownership?bogus=1",
        "/v1/ledgers/zzz/positions/Bad",
        "/metrics?x=1",
    ] {
        assert_eq!(s.get(path).status, 401, "{path}");
    }
    let bearer = format!("Bearer {other_token}");
    let m = s.get_with("/metrics", &[("Authorization", &bearer)]).text();
    assert!(m.contains("ledger=\"other\""), "{m}");
    assert!(!m.contains("ledger=\"main\""), "{m}");
    drop(s);

    // At start: one store under two names, a store whose directory is missing, a token
    // file without a token, a token granted twice, --store beside --ledger.
    let run = |args: &[&str]| {
        let o = testkit::command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), text(&o.stderr))
    };
    let a = format!("a={}", store.display());
    let b = format!("b={}/", store.display());
    let (code, err) = run(&["--ledger", &a, "--ledger", &b]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("already served as ledger a"), "{err}");
    let (code, err) = run(&["--ledger", "z=/nonexistent/dir/z"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("/nonexistent/dir"), "{err}");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nobody yet\n").unwrap();
    let (code, err) = run(&["--ledger", &a, "--tokens", empty.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    let twice = dir.path().join("twice.txt");
    std::fs::write(&twice, format!("{other_line}\n{other_line}\n")).unwrap();
    let (code, err) = run(&["--ledger", &a, "--tokens", twice.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("line 2") && err.contains("line 1"), "{err}");
    let o = testkit::accord(&store)
        .args(["serve", "--listen", "127.0.0.1:0", "--ledger", &a])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}
