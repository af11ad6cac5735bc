//! The PostgreSQL store against a real, throwaway PostgreSQL (`testkit::pg`): the sample in
//! a `postgres://` store answers exactly as in an embedded one; `copy` moves a ledger both
//! ways keeping every seq, time and hash; `verify` names the first row changed, deleted or
//! inserted behind accord's back; several CLI processes append at once; `accord serve` on a
//! database ledger sees the CLI's appends; a server that cannot be reached is exit 4.
//! Without PostgreSQL these tests say so and pass, unless `CI=true`.

use std::collections::BTreeSet;
use std::path::Path;

use testkit::pg::Cluster;
use testkit::{ok, output, sample_store, text};

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
