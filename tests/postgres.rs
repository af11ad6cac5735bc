//! The PostgreSQL store against a real, throwaway PostgreSQL (`testkit::pg`): the sample in
//! a `postgres://` store answers exactly as in an embedded one; `copy` moves a ledger both
//! ways keeping every seq, time and hash; `verify` names the first row changed, deleted or
//! inserted behind accord's back; several CLI processes append at once; `accord serve` on a
//! database ledger sees the CLI's appends; a server that cannot be reached is exit 4.
//! Without PostgreSQL these tests say so and pass, unless `CI=true`.

use std::collections::BTreeSet;
use std::path::Path;

use testkit::pg::Cluster;
use testkit::{ok, ok_stdin, output, sample_store, text};

fn store(url: &str) -> &Path {
    Path::new(url)
}

#[test]
fn a_database_ledger_answers_as_an_embedded_one_and_copies_both_ways() {
    let Some(pg) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let embedded = sample_store(dir.path());
    let url = pg.url("sample");
    // A read of a ledger not created yet is exit 4; nothing is created by it.
    let o = output(store(&url), &["head"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    // Copied in: the same head, the same log, the same answers.
    let copied = ok(store(&url), &["copy", embedded.to_str().unwrap(), &url]);
    let head = ok(&embedded, &["head"]);
    assert!(copied.contains(head.trim()), "{copied} vs {head}");
    assert_eq!(ok(store(&url), &["head"]), head);
    assert_eq!(
        ok(store(&url), &["log", "--format", "json"]),
        ok(&embedded, &["log", "--format", "json"])
    );
    for as_of in ["2025-10-27", "2025-10-28", "2026-04-28"] {
        for known in [None, Some("36")] {
            for report in [
                vec!["ownership"],
                vec!["obligations", "--all"],
                vec!["rights", "--all"],
                vec!["position", "microsoft"],
            ] {
                let mut args = report.clone();
                args.extend(["--as-of", as_of, "--format", "json"]);
                if let Some(k) = known {
                    args.extend(["--known-at", k]);
                }
                assert_eq!(ok(store(&url), &args), ok(&embedded, &args), "{args:?}");
            }
        }
    }
    assert!(ok(store(&url), &["verify"]).starts_with("ok: 42 events"));
    // Appends to it, then copied back out: identical again.
    let file = dir.path().join("settle.jsonl");
    std::fs::write(
        &file,
        r#"{"id":"pg-settle-1","type":"obligation_settled","effective":"2026-05-01","obligation":"msft-funding","amount":{"amount":"100000000","currency":"USD"}}
"#,
    )
    .unwrap();
    ok(store(&url), &["append", file.to_str().unwrap()]);
    let back = dir.path().join("back.db");
    ok(store(&url), &["copy", &url, back.to_str().unwrap()]);
    assert_eq!(ok(&back, &["head"]), ok(store(&url), &["head"]));
    assert_eq!(
        ok(&back, &["log", "--format", "json"]),
        ok(store(&url), &["log", "--format", "json"])
    );
    // A refused append writes nothing.
    let before = ok(store(&url), &["log", "--format", "json"]);
    let o = output(
        store(&url),
        &[
            "append",
            file.to_str().unwrap().replace("settle", "nope").as_str(),
        ],
    );
    assert_ne!(o.status.code(), Some(0));
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, r#"{"id":"x","type":"obligation_settled","effective":"2026-05-01","obligation":"msft-funding","amount":{"amount":"900000000000","currency":"USD"}}
"#).unwrap();
    let o = output(store(&url), &["append", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(ok(store(&url), &["log", "--format", "json"]), before);
}

#[test]
fn verify_names_the_first_row_changed_behind_accords_back() {
    let Some(pg) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let embedded = sample_store(dir.path());
    let mut client = pg.client();
    for (schema, tamper, seq) in [
        ("changed", "UPDATE changed.events SET body = body || ' '::bytea WHERE seq = 17", 17),
        ("rehashed", "UPDATE rehashed.events SET hash = sha256(hash) WHERE seq = 30", 30),
        ("deleted", "DELETE FROM deleted.events WHERE seq = 20", 20),
        (
            "inserted",
            "INSERT INTO inserted.events SELECT 43, recorded, hash, 'extra', body FROM inserted.events WHERE seq = 42",
            43,
        ),
    ] {
        let url = pg.url(schema);
        ok(store(&url), &["copy", embedded.to_str().unwrap(), &url]);
        client.batch_execute(tamper).unwrap();
        let o = output(store(&url), &["verify"]);
        assert_eq!(o.status.code(), Some(3), "{schema}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(&format!("seq {seq}")),
            "{schema}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn processes_append_to_one_database_ledger_at_once() {
    let Some(pg) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url("shared");
    let parties = testkit::events_dir().join("01-parties.jsonl");
    ok(store(&url), &["append", parties.to_str().unwrap()]);
    let obligations = dir.path().join("ob.jsonl");
    std::fs::write(&obligations, r#"{"id":"o1","type":"obligation_incurred","effective":"2024-01-02","obligation":"big","kind":"loan","obligor":"microsoft","obligee":"openai-group","amount":{"amount":"1000000","currency":"USD"}}
"#).unwrap();
    ok(store(&url), &["append", obligations.to_str().unwrap()]);
    // Four processes, ids shared by pairs, twenty appends each.
    let children: Vec<_> = (0..4)
        .map(|p| {
            let url = url.clone();
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for k in 0..20 {
                    let id = format!("g{}-k{k}", p % 2);
                    let f = dir.join(format!("p{p}-{k}.jsonl"));
                    std::fs::write(&f, format!(r#"{{"id":"{id}","type":"obligation_settled","effective":"2024-06-01","obligation":"big","amount":{{"amount":"1","currency":"USD"}}}}
"#)).unwrap();
                    let o = output(Path::new(&url), &["append", f.to_str().unwrap()]);
                    assert!(o.status.success(), "{}", text(&o.stderr));
                }
            })
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    let log = ok(store(&url), &["log", "--format", "json"]);
    let rows: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = rows.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=rows.len() as u64).collect::<Vec<_>>(), "gapless");
    let ids: BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rows.len(), "no id twice");
    assert_eq!(rows.len(), 6 + 1 + 40);
    assert!(ok(store(&url), &["verify"]).starts_with("ok: 47 events"));
}

#[test]
fn the_server_on_a_database_ledger_sees_the_clis_appends() {
    let Some(pg) = Cluster::start() else { return };
    let url = pg.url("served");
    let s = testkit::http::Served::start(None, &["--ledger", &format!("main={url}")]);
    let ledgers = s.get("/v1/ledgers").json();
    assert!(ledgers["ledgers"][0]["head"].is_null());
    let parties = std::fs::read_to_string(testkit::events_dir().join("01-parties.jsonl")).unwrap();
    let r = s.post("/v1/ledgers/main/events", &parties);
    assert_eq!(r.status, 200, "{}", r.text());
    // A CLI appends beside the server; the server answers with it.
    let investments = testkit::events_dir().join("02-investments.jsonl");
    ok(store(&url), &["append", investments.to_str().unwrap()]);
    let head = s.get("/v1/ledgers/main/head").json();
    assert_eq!(head["seq"], 9);
    assert_eq!(
        s.get("/v1/ledgers/main/log?since=6").text(),
        ok(store(&url), &["log", "--since", "6", "--format", "json"])
    );
    assert_eq!(s.terminate(), Some(0));
}

#[test]
fn an_unreachable_server_is_exit_4_with_its_reason() {
    let Some(_pg) = Cluster::start() else { return };
    let started = std::time::Instant::now();
    let o = output(store("postgres://postgres@127.0.0.1:9/postgres"), &["head"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o.stderr).contains("refused"), "{}", text(&o.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A bad schema name is refused before any connection.
    let o = output(
        store("postgres://postgres@127.0.0.1:9/postgres?schema=Bad-Name"),
        &["head"],
    );
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o.stderr).contains("schema"), "{}", text(&o.stderr));
}

#[test]
fn two_servers_on_one_database_ledger_stream_each_others_appends() {
    let Some(pg) = Cluster::start() else { return };
    let url = pg.url("two");
    let ledger = format!("main={url}");
    let a = testkit::http::Served::start(None, &["--ledger", &ledger]);
    let b = testkit::http::Served::start(None, &["--ledger", &ledger]);
    let parties = std::fs::read_to_string(testkit::events_dir().join("01-parties.jsonl")).unwrap();
    assert_eq!(a.post("/v1/ledgers/main/events", &parties).status, 200);
    // B's stream, opened after A's append, delivers it, and then B's own.
    use std::io::{BufRead, BufReader, Write};
    let mut c = std::net::TcpStream::connect(&b.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        c,
        "GET /v1/ledgers/main/log/stream?since=0 HTTP/1.0\r\nHost: {}\r\n\r\n",
        b.addr
    )
    .unwrap();
    let mut r = BufReader::new(c);
    let mut ids = Vec::new();
    let mut line = String::new();
    let investments =
        std::fs::read_to_string(testkit::events_dir().join("02-investments.jsonl")).unwrap();
    let mut sent = false;
    while ids.len() < 9 {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(id) = line.strip_prefix("id: ") {
            ids.push(id.trim().parse::<u64>().unwrap());
            if ids.len() == 6 && !sent {
                // Appended through A: B sees it by its poll.
                assert_eq!(a.post("/v1/ledgers/main/events", &investments).status, 200);
                sent = true;
            }
        }
    }
    assert_eq!(ids, (1..=9).collect::<Vec<u64>>());
}

#[test]
fn a_killed_import_leaves_the_batch_whole_or_absent() {
    let Some(pg) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A big file: the sample's parties, then many settlements of one obligation.
    let mut text = std::fs::read_to_string(testkit::events_dir().join("01-parties.jsonl")).unwrap();
    text.push_str(r#"{"id":"o1","type":"obligation_incurred","effective":"2024-01-02","obligation":"big","kind":"loan","obligor":"microsoft","obligee":"openai-group","amount":{"amount":"100000000","currency":"USD"}}
"#);
    for k in 0..40_000 {
        text.push_str(&format!(r#"{{"id":"s{k}","type":"obligation_settled","effective":"2024-06-01","obligation":"big","amount":{{"amount":"1","currency":"USD"}}}}
"#));
    }
    let file = dir.path().join("big.jsonl");
    std::fs::write(&file, text).unwrap();
    for (round, wait_ms) in [150u64, 600, 1500].into_iter().enumerate() {
        let url = pg.url(&format!("killed{round}"));
        let mut child = std::process::Command::new(testkit::bin())
            .env_remove("ACCORD_STORE")
            .args(["--store", &url, "append", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Whole or absent: 0 or 40,007 events, and verify agrees.
        let o = output(store(&url), &["head", "--format", "json"]);
        let events = if o.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            v["seq"].as_u64().unwrap_or(0)
        } else {
            0
        };
        assert!(
            events == 0 || events == 40_007,
            "round {round}: {events} events"
        );
        if events > 0 {
            assert!(ok(store(&url), &["verify"]).starts_with("ok: 40007 events"));
        }
    }
}

/// A settlement of 1 USD of the obligation `big`, as one line.
fn settlement(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"obligation_settled","effective":"2024-06-01","obligation":"big","amount":{{"amount":"1","currency":"USD"}}}}
"#
    )
}

/// The sample's parties and the obligation `big` (100,000,000 USD), as one file's text.
fn parties_and_big() -> String {
    let mut text = std::fs::read_to_string(testkit::events_dir().join("01-parties.jsonl")).unwrap();
    text.push_str(r#"{"id":"o1","type":"obligation_incurred","effective":"2024-01-02","obligation":"big","kind":"loan","obligor":"microsoft","obligee":"openai-group","amount":{"amount":"100000000","currency":"USD"}}
"#);
    text
}

/// The parties, `big`, then `n` settlements of it: one file of `n + 7` events.
fn big_batch(n: usize) -> String {
    let mut text = parties_and_big();
    for k in 0..n {
        text.push_str(&settlement(&format!("s{k}")));
    }
    text
}

/// The events of the ledger (`seq`, `id`), checked gapless and without an id twice.
fn log_of(url: &str) -> Vec<(u64, String)> {
    let log = ok(store(url), &["log", "--format", "json"]);
    let rows: Vec<(u64, String)> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let seqs: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=rows.len() as u64).collect::<Vec<_>>(), "gapless");
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "an id twice");
    rows
}

/// The number of events of the ledger (0 when it does not exist).
fn events_in(url: &str) -> u64 {
    let o = output(store(url), &["head", "--format", "json"]);
    if !o.status.success() {
        return 0;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["seq"].as_u64().unwrap_or(0)
}

/// Reads `want` events from a `log/stream` of `addr` opened after seq `since`: their seqs,
/// in the order delivered.
fn stream(addr: String, since: u64, want: usize) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        write!(
            c,
            "GET /v1/ledgers/main/log/stream?since={since} HTTP/1.0\r\nHost: {addr}\r\n\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(c);
        let mut seqs = Vec::new();
        let mut line = String::new();
        while seqs.len() < want {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "the stream ended");
            if let Some(id) = line.strip_prefix("id: ") {
                seqs.push(id.trim().parse::<u64>().unwrap());
            }
        }
        seqs
    })
}

/// Four CLI processes and two servers append to one ledger at once, every id sent by two
/// CLIs and one server: each event is in the log once, seq gapless, verify ok, and both
/// servers' live streams deliver every event once, in order.
#[test]
fn four_clis_and_two_servers_append_to_one_ledger_at_once() {
    let Some(pg) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url("six");
    ok_stdin(store(&url), &["append", "-"], &parties_and_big());
    let ledger = format!("main={url}");
    let a = testkit::http::Served::start(None, &["--ledger", &ledger]);
    let b = testkit::http::Served::start(None, &["--ledger", &ledger]);
    const EACH: usize = 15;
    // Two groups of ids; each sent by two CLIs and one server.
    let distinct = 2 * EACH;
    let streams = [
        stream(a.addr.clone(), 7, distinct),
        stream(b.addr.clone(), 7, distinct),
    ];
    let mut writers = Vec::new();
    for p in 0..4 {
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        writers.push(std::thread::spawn(move || {
            for k in 0..EACH {
                let f = dir.join(format!("cli{p}-{k}.jsonl"));
                std::fs::write(&f, settlement(&format!("g{}-{k}", p % 2))).unwrap();
                let o = output(Path::new(&url), &["append", f.to_str().unwrap()]);
                assert!(o.status.success(), "CLI {p}: {}", text(&o.stderr));
            }
        }));
    }
    for (g, addr) in [(0, a.addr.clone()), (1, b.addr.clone())] {
        writers.push(std::thread::spawn(move || {
            for k in 0..EACH {
                let r = testkit::http::request(
                    &addr,
                    "POST",
                    "/v1/ledgers/main/events",
                    &[("Content-Type", "application/x-ndjson")],
                    Some(settlement(&format!("g{g}-{k}")).as_bytes()),
                );
                assert_eq!(r.status, 200, "server {g}: {}", r.text());
            }
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    let rows = log_of(&url);
    assert_eq!(rows.len(), 7 + distinct);
    for g in 0..2 {
        for k in 0..EACH {
            let id = format!("g{g}-{k}");
            assert!(rows.iter().any(|r| r.1 == id), "{id} is missing");
        }
    }
    assert!(ok(store(&url), &["verify"]).starts_with(&format!("ok: {} events", 7 + distinct)));
    let all: Vec<u64> = (8..=(7 + distinct) as u64).collect();
    for (s, name) in streams.into_iter().zip(["A", "B"]) {
        assert_eq!(s.join().unwrap(), all, "server {name}'s stream");
    }
    // The outstanding amount went down by exactly one dollar per distinct event.
    let obligations = ok(
        store(&url),
        &[
            "obligations",
            "--all",
            "--as-of",
            "2024-12-31",
            "--format",
            "json",
        ],
    );
    assert!(
        obligations.contains(&format!("\"{}\"", 100_000_000 - distinct)),
        "{obligations}"
    );
}

/// `accord serve` killed (SIGKILL) while it appends a big batch: the batch is in the ledger
/// whole or not at all, whole when it was acknowledged, and the ledger verifies.
#[test]
fn a_server_killed_mid_batch_leaves_it_whole_or_absent() {
    let Some(pg) = Cluster::start() else { return };
    let body = big_batch(30_000);
    // How long the append takes here, so that the kills land before, during and after it.
    let whole = {
        let ledger = format!("main={}", pg.url("served_timed"));
        let served = testkit::http::Served::start(None, &["--ledger", &ledger]);
        let t = std::time::Instant::now();
        assert_eq!(served.post("/v1/ledgers/main/events", &body).status, 200);
        t.elapsed().as_millis() as u64
    };
    for (round, percent) in [5u64, 30, 60, 90, 150].into_iter().enumerate() {
        let wait_ms = whole * percent / 100;
        let url = pg.url(&format!("served{round}"));
        let ledger = format!("main={url}");
        let mut served = testkit::http::Served::start(None, &["--ledger", &ledger]);
        let addr = served.addr.clone();
        let body = body.clone();
        // The status line, if the server answered before it died.
        let poster = std::thread::spawn(move || -> Option<u16> {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect(&addr).ok()?;
            write!(
                c,
                "POST /v1/ledgers/main/events HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .ok()?;
            c.write_all(body.as_bytes()).ok()?;
            let mut answer = String::new();
            c.read_to_string(&mut answer).ok()?;
            answer.split_whitespace().nth(1)?.parse().ok()
        });
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        let _ = served.child.kill();
        let _ = served.child.wait();
        let acknowledged = poster.join().unwrap() == Some(200);
        let events = events_in(&url);
        eprintln!("round {round}: killed after {wait_ms} ms, acknowledged {acknowledged}, {events} events");
        assert!(
            events == 0 || events == 30_007,
            "round {round}: {events} events"
        );
        if acknowledged {
            assert_eq!(events, 30_007, "round {round}: acknowledged, then lost");
        }
        if events > 0 {
            assert!(ok(store(&url), &["verify"]).starts_with("ok: 30007 events"));
        }
    }
}

/// The database crashes and restarts (`pg_ctl -m immediate restart`) while a CLI appends a
/// big batch: the CLI fails with exit 4 naming the lost connection, or succeeded first; the
/// batch is whole or absent, whole when the CLI said so, and the ledger verifies.
#[test]
fn the_database_restarted_mid_batch_leaves_it_whole_or_absent() {
    let Some(pg) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    std::fs::write(&file, big_batch(40_000)).unwrap();
    // How long the append takes here, so that the crashes land before, during and after it.
    let whole = {
        let t = std::time::Instant::now();
        ok(
            store(&pg.url("restarted_timed")),
            &["append", file.to_str().unwrap()],
        );
        t.elapsed().as_millis() as u64
    };
    for (round, percent) in [10u64, 40, 70, 95, 150].into_iter().enumerate() {
        let wait_ms = whole * percent / 100;
        let url = pg.url(&format!("restarted{round}"));
        let child = std::process::Command::new(testkit::bin())
            .env_remove("ACCORD_STORE")
            .args(["--store", &url, "append", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        pg.restart("immediate");
        let o = child.wait_with_output().unwrap();
        let stderr = text(&o.stderr);
        let events = events_in(&url);
        eprintln!(
            "round {round}: restarted after {wait_ms} ms, exit {:?}, {events} events: {}",
            o.status.code(),
            stderr.trim()
        );
        match o.status.code() {
            Some(0) => assert_eq!(events, 40_007, "round {round}: acknowledged, then lost"),
            Some(4) => {
                assert!(stderr.starts_with("error: "), "round {round}: {stderr}");
                assert_eq!(stderr.lines().count(), 1, "round {round}: {stderr}");
            }
            other => panic!("round {round}: exit {other:?}: {stderr}"),
        }
        assert!(
            events == 0 || events == 40_007,
            "round {round}: {events} events"
        );
        if events > 0 {
            assert!(ok(store(&url), &["verify"]).starts_with("ok: 40007 events"));
        }
    }
}

/// Several processes make the same new ledger at once: one creates it, the others wait for
/// it and append after it (here: skip the identical batch), and none fails. A refused first
/// append leaves no ledger behind.
#[test]
fn first_appends_race_to_create_the_ledger() {
    let Some(pg) = Cluster::start() else { return };
    let parties = testkit::events_dir().join("01-parties.jsonl");
    for round in 0..3 {
        let url = pg.url(&format!("race{round}"));
        let children: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(testkit::bin())
                    .env_remove("ACCORD_STORE")
                    .args(["--store", &url, "append", parties.to_str().unwrap()])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {}", text(&o.stderr));
        }
        assert_eq!(log_of(&url).len(), 6, "round {round}");
    }
    let url = pg.url("refused");
    let o = testkit::accord(store(&url))
        .args(["append", "-"])
        .write_stdin(settlement("orphan"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let mut c = pg.client();
    let found: Option<String> = c
        .query_one("SELECT to_regnamespace('refused')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(found, None, "a refused first append left its schema");
}

/// The layout is versioned: a ledger written by a later accord (a newer layout) is refused
/// with exit 4 and left as it is, for reads and writes alike; a version no accord wrote too.
#[test]
fn a_ledger_of_another_layout_is_refused_and_left_alone() {
    let Some(pg) = Cluster::start() else { return };
    let url = pg.url("layout");
    ok_stdin(store(&url), &["append", "-"], &parties_and_big());
    let before = ok(store(&url), &["log", "--format", "json"]);
    let mut c = pg.client();
    for (version, words) in [(2, "upgrade accord"), (0, "no accord wrote")] {
        c.batch_execute(&format!("UPDATE layout.meta SET version = {version}"))
            .unwrap();
        for args in [vec!["head"], vec!["append", "-"]] {
            let o = testkit::accord(store(&url))
                .args(&args)
                .write_stdin(settlement("late"))
                .output()
                .unwrap();
            let stderr = text(&o.stderr);
            assert_eq!(o.status.code(), Some(4), "{args:?}: {stderr}");
            assert!(stderr.contains(words), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
    c.batch_execute("UPDATE layout.meta SET version = 1")
        .unwrap();
    assert_eq!(ok(store(&url), &["log", "--format", "json"]), before);
    assert!(ok(store(&url), &["verify"]).starts_with("ok: 7 events"));
}

/// A deadlock that the database breaks by aborting accord's write: another session holds
/// the keys accord is about to update, then asks for the head row that accord holds. The
/// append is tried again whole (validation included), lands once, and the ledger verifies.
#[test]
fn a_write_the_database_aborts_in_a_deadlock_is_tried_again() {
    let Some(pg) = Cluster::start() else { return };
    let url = pg.url("deadlock");
    ok_stdin(store(&url), &["append", "-"], &parties_and_big());
    // The other session waits long before it looks for a deadlock, so that accord's
    // backend (one second, the default) is the one that finds it and gives up.
    let mut other = pg.client();
    other
        .batch_execute(
            "SET deadlock_timeout = '30s'; BEGIN; SELECT key FROM deadlock.aux FOR UPDATE",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, settlement("after-deadlock")).unwrap();
    let child = std::process::Command::new(testkit::bin())
        .env_remove("ACCORD_STORE")
        .args(["--store", &url, "append", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // accord now holds the head row and waits for a key the other session holds.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let mut waiting = pg.client();
    let blocked: i64 = waiting
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%aux%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        blocked, 1,
        "accord is not waiting for the other session's keys"
    );
    // The other session asks for the head row: a deadlock, which accord's backend breaks.
    other
        .batch_execute("SELECT head_seq FROM deadlock.meta FOR UPDATE; COMMIT")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("appended 1 event"),
        "{}",
        text(&o.stdout)
    );
    let rows = log_of(&url);
    assert_eq!(rows.len(), 8);
    assert_eq!(rows.iter().filter(|r| r.1 == "after-deadlock").count(), 1);
    assert!(ok(store(&url), &["verify"]).starts_with("ok: 8 events"));
}

/// A password in a URL (`user:PASSWORD@` or `password=`) is never shown, in any message or
/// output; `copy` names a target that already holds the log, or the same ledger twice; a
/// URL accord cannot use is exit 4 saying why; a served ledger not created yet is 503.
#[test]
fn messages_never_show_a_password_and_say_what_they_mean() {
    let Some(pg) = Cluster::start() else { return };
    let secret = "s3cr3t-pw";
    let with_password = |schema: &str| {
        format!(
            "postgres://postgres:{secret}@127.0.0.1:{}/postgres?schema={schema}",
            pg.port
        )
    };
    let refused = |args: &[&str]| {
        let o = testkit::command().args(args).output().unwrap();
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(!all.contains(secret), "{args:?} shows the password: {all}");
        (o.status.code(), all)
    };
    // A read of a ledger that does not exist.
    let missing = with_password("missing");
    let (code, all) = refused(&["--store", &missing, "head"]);
    assert_eq!(code, Some(4), "{all}");
    assert!(
        all.contains("no store at postgres://postgres:***@"),
        "{all}"
    );
    // An unreachable server, the password as a parameter.
    let param = format!("postgres://postgres@127.0.0.1:1/postgres?password={secret}&schema=x");
    let (code, all) = refused(&["--store", &param, "head"]);
    assert_eq!(code, Some(4), "{all}");
    assert!(all.contains("password=***"), "{all}");
    // demo shows its store.
    let demo = with_password("demo");
    let (code, all) = refused(&["--store", &demo, "demo"]);
    assert_eq!(code, Some(0), "{all}");
    // The same ledger served twice.
    let (code, all) = refused(&[
        "serve",
        "--ledger",
        &format!("a={demo}"),
        "--ledger",
        &format!("b={demo}"),
    ]);
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("already served"), "{all}");
    // copy: onto the same ledger, onto a ledger that holds this very log.
    let (code, all) = refused(&["copy", &demo, &demo]);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("are the same store"), "{all}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.db");
    ok(store(&demo), &["copy", &demo, out.to_str().unwrap()]);
    let again = with_password("demo");
    let (code, all) = refused(&["copy", out.to_str().unwrap(), &again]);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("already holds this very log"), "{all}");
    // A URL accord cannot use.
    let twice = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?schema=a&schema=b",
        pg.port
    );
    let (code, all) = refused(&["--store", &twice, "head"]);
    assert_eq!(code, Some(4), "{all}");
    assert!(all.contains("`schema` is given twice"), "{all}");
    // A served ledger whose first append has not come yet: 503, as for a directory.
    let later = pg.url("later");
    let served = testkit::http::Served::start(None, &["--ledger", &format!("l={later}")]);
    let r = served.get("/v1/ledgers/l/obligations?as_of=2026-01-01");
    assert_eq!(r.status, 503, "{}", r.text());
    let parties = std::fs::read_to_string(testkit::events_dir().join("01-parties.jsonl")).unwrap();
    assert_eq!(served.post("/v1/ledgers/l/events", &parties).status, 200);
    assert_eq!(
        served
            .get("/v1/ledgers/l/obligations?as_of=2026-01-01")
            .status,
        200
    );
}

/// The history of checkpoints (what each was as known before each batch that changed it)
/// is checked by `verify` too: an entry deleted, or holding another entry's state, is an
/// integrity failure (exit 3) that names the checkpoint; so is a checkpoint with a piece
/// cut short or one piece too many.
#[test]
fn verify_finds_a_checkpoint_history_changed_behind_accords_back() {
    let Some(pg) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let w = accord_bench::workload::generate(2000, 11).unwrap();
    let file = dir.path().join("w.jsonl");
    let mut text_w = Vec::new();
    w.write_jsonl(&mut text_w).unwrap();
    std::fs::write(&file, &text_w).unwrap();
    let mut client = pg.client();
    let run = |url: &str, args: &[&str]| {
        let mut cmd = testkit::accord(Path::new(url));
        cmd.env("ACCORD_CHECKPOINT_EVERY", "97").args(args);
        testkit::run(&mut cmd)
    };
    for (schema, tamper, says) in [
        (
            "deleted",
            "DELETE FROM deleted.aux WHERE key = (SELECT key FROM deleted.aux WHERE key LIKE 'oh/%' ORDER BY key LIMIT 1)",
            "has no history",
        ),
        (
            "swapped",
            "UPDATE swapped.aux SET value = (SELECT value FROM swapped.aux WHERE key LIKE 'oh/%' ORDER BY key DESC LIMIT 1) \
             WHERE key = (SELECT key FROM swapped.aux WHERE key LIKE 'oh/%' ORDER BY key LIMIT 1)",
            "differs from the log",
        ),
        (
            // The last checkpoint's last piece cut short: it no longer decodes.
            "piece_short",
            "UPDATE piece_short.aux SET value = substring(value from 1 for length(value) - 1) \
             WHERE key = (SELECT key FROM piece_short.aux WHERE key LIKE 'cp/%' ORDER BY key DESC LIMIT 1)",
            "does not decode",
        ),
        (
            // A piece numbered past the last one of the first checkpoint.
            "piece_extra",
            "INSERT INTO piece_extra.aux (key, value) SELECT substring(key from 1 for 14) || convert_to('0fffff', 'UTF8'), value \
             FROM piece_extra.aux WHERE key LIKE 'cp/%' ORDER BY key LIMIT 1",
            "does not decode",
        ),
    ] {
        let url = pg.url(schema);
        assert_eq!(run(&url, &["append", file.to_str().unwrap()]).code, 0);
        for (k, day) in [(0, 300), (1, 1200), (2, 2000)] {
            let probe = dir.path().join(format!("probe{k}.jsonl"));
            std::fs::write(&probe, w.probe_settlement(&format!("probe-{k}"), day) + "\n").unwrap();
            let r = run(&url, &["append", probe.to_str().unwrap()]);
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
        let r = run(&url, &["verify"]);
        assert_eq!(r.code, 0, "{schema}: {}", r.stderr);
        let entries: i64 = client
            .query_one(&format!("SELECT count(*) FROM {schema}.aux WHERE key LIKE 'oh/%'"), &[])
            .unwrap()
            .get(0);
        assert!(entries > 3, "{schema}: {entries} history entries");
        client.batch_execute(tamper).unwrap();
        let r = run(&url, &["verify"]);
        assert_eq!(r.code, 3, "{schema}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{schema}: {}", r.stderr);
    }
}
