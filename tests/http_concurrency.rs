//! Many writers at once through `accord serve`: 16 clients append together (ids shared
//! between clients on purpose), and every acknowledged event is in the log exactly once, `seq`
//! gapless, `verify` ok, and a live stream delivered each event once, in order. Then a
//! `kill -9` in the middle of concurrent appends: after it, every acknowledged event is there
//! and `verify` passes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::http::Served;
use testkit::{output, sample_store, text};

/// A settlement of 1 USD of `msft-funding` with this id: its content follows from the id, so
/// two clients sending the same id send the same event.
fn settle(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"obligation_settled","effective":"2026-05-01","obligation":"msft-funding","amount":{{"amount":"1","currency":"USD"}}}}"#
    )
}

/// Reads `n` events of a stream, or fails after `deadline`.
fn read_stream(addr: &str, since: u64, n: usize, deadline: Duration) -> Vec<(u64, String)> {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        c,
        "GET /v1/ledgers/main/log/stream?since={since} HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(c);
    let start = Instant::now();
    let mut out = Vec::new();
    let mut id = None;
    let mut line = String::new();
    while out.len() < n {
        assert!(
            start.elapsed() < deadline,
            "the stream delivered {} of {n}",
            out.len()
        );
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            panic!("the stream ended after {} events", out.len());
        }
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.trim().parse::<u64>().unwrap());
        } else if let Some(v) = line.strip_prefix("data: ") {
            let data: serde_json::Value = serde_json::from_str(v.trim()).unwrap();
            out.push((id.take().unwrap(), data["id"].as_str().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn sixteen_clients_appending_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let s = Arc::new(Served::start(Some(&store), &[]));
    const CLIENTS: usize = 16;
    const EACH: usize = 30;
    // Client c sends ids of group c % 8: every id is sent by two clients.
    let distinct: BTreeSet<String> = (0..CLIENTS / 2)
        .flat_map(|g| (0..EACH).map(move |k| format!("c{g}-k{k}")))
        .collect();
    let stream = {
        let addr = s.addr.clone();
        let n = distinct.len();
        std::thread::spawn(move || read_stream(&addr, 42, n, Duration::from_secs(120)))
    };
    // Give the stream time to connect; it would also catch up from `since` if it were late.
    std::thread::sleep(Duration::from_millis(200));
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let s = s.clone();
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                for k in 0..EACH {
                    // Every third request is a batch of two: this event and the next one.
                    let id = format!("c{}-k{k}", c % 8);
                    let mut body = settle(&id) + "\n";
                    if k % 3 == 0 && k + 1 < EACH {
                        body.push_str(&(settle(&format!("c{}-k{}", c % 8, k + 1)) + "\n"));
                    }
                    let r = s.post("/v1/ledgers/main/events", &body);
                    assert_eq!(r.status, 200, "{}", r.text());
                    let receipt = r.json();
                    let appended = receipt["appended"].as_u64().unwrap();
                    let skipped = receipt["skipped"].as_u64().unwrap();
                    assert_eq!(appended + skipped, body.lines().count() as u64);
                    let mut ack = acknowledged.lock().unwrap();
                    for line in body.lines() {
                        let v: serde_json::Value = serde_json::from_str(line).unwrap();
                        *ack.entry(v["id"].as_str().unwrap().to_string())
                            .or_default() += 1;
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_eq!(
        acknowledged.keys().cloned().collect::<BTreeSet<_>>(),
        distinct
    );
    // The log: each id once, seqs gapless after the sample's 42.
    let log = s.get("/v1/ledgers/main/log?since=42&limit=10000").text();
    let rows: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = rows.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (43..43 + distinct.len() as u64).collect::<Vec<_>>());
    let ids: BTreeSet<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), rows.len(), "no id twice");
    assert_eq!(ids, distinct);
    // verify, over HTTP and by the CLI once the server stopped.
    let v = s.post_with("/v1/ledgers/main/verify", &[], b"").json();
    assert_eq!(v["ok"], true, "{v}");
    // The stream: each event once, in seq order.
    let streamed = stream.join().unwrap();
    let in_log: Vec<(u64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(streamed, in_log);
    // Outstanding went down by exactly one dollar per distinct event.
    let ob = s
        .get("/v1/ledgers/main/obligations?as_of=2026-06-01&party=microsoft")
        .json();
    let funding = ob["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["obligation"] == "msft-funding")
        .unwrap()
        .clone();
    let expected = 1_400_000_000u64 - distinct.len() as u64;
    assert_eq!(funding["outstanding"]["amount"], expected.to_string());
    let s = Arc::try_unwrap(s).ok().unwrap();
    assert_eq!(s.terminate(), Some(0));
    let o = output(&store, &["verify"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn kill_9_during_concurrent_appends_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    for round in 0..3u64 {
        let s = Arc::new(Served::start(Some(&store), &[]));
        let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let (s, acknowledged, stop) = (s.clone(), acknowledged.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut k = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let id = format!("r{round}-c{c}-k{k}");
                        k += 1;
                        let body = settle(&id) + "\n";
                        // A request the kill cut short is neither acknowledged nor counted.
                        let Ok(r) =
                            std::panic::catch_unwind(|| s.post("/v1/ledgers/main/events", &body))
                        else {
                            break;
                        };
                        if r.status == 200 {
                            acknowledged.lock().unwrap().push(id);
                        } else {
                            break;
                        }
                    }
                })
            })
            .collect();
        // Let appends run, then kill -9 at a moment that varies by round.
        std::thread::sleep(Duration::from_millis(300 + 250 * round));
        let pid = s.child.id();
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in clients {
            let _ = c.join();
        }
        drop(s);
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            !acknowledged.is_empty(),
            "round {round}: some appends were acknowledged"
        );
        let o = output(&store, &["verify"]);
        assert!(o.status.success(), "round {round}: {}", text(&o.stderr));
        let log = testkit::ok(&store, &["log", "--format", "json"]);
        let ids: BTreeSet<String> = log
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["id"].as_str().unwrap().to_string()
            })
            .collect();
        for id in &acknowledged {
            assert!(ids.contains(id), "round {round}: acknowledged {id} is lost");
        }
    }
}
