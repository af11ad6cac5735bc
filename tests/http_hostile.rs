//! Hostile clients against `accord serve`: bytes that are not HTTP, headers that never end
//! or never arrive, bodies over the limit (announced or chunked), text meant to break a log
//! line, hundreds of idle connections. After each, the server still answers, nothing was
//! written, and it never panicked.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use testkit::http::{request, Served};
use testkit::sample_store;

fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits, at most `limit`, until the server closes `s`; true if it did.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        if start.elapsed() > limit {
            return false;
        }
    }
}

#[test]
fn hostile_bytes_headers_and_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let s = Served::start_env(
        Some(&store),
        &["--max-body", "65536"],
        &[("ACCORD_HEADER_TIMEOUT", "2"), ("ACCORD_IDLE_TIMEOUT", "3")],
    );
    let head = || s.get("/v1/ledgers/main/head").text();
    let before = head();
    let log = s.get("/v1/ledgers/main/log").body;

    // Not HTTP at all.
    for junk in [
        &b"\x00\x01\x02\xff\xfe garbage\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /v1/ledgers/main/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/ledgers/main/events HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\nzz\r\n",
    ] {
        let answer = raw(&s.addr, junk);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
            "{junk:?} -> {answer}"
        );
    }
    // A header block over 64 KiB.
    let mut big = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100_000));
    big.extend_from_slice(b"\r\n\r\n");
    let answer = raw(&s.addr, &big);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    // A body announced over the limit is refused before it is read.
    let answer = raw(
        &s.addr,
        b"POST /v1/ledgers/main/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\nContent-Length: 10000000\r\n\r\n{}",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");
    // A chunked body that grows over the limit.
    let mut chunked = b"POST /v1/ledgers/main/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(b"1000\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 4096));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(&s.addr, &chunked);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Not UTF-8.
    let r = s.post_with(
        "/v1/ledgers/main/events",
        &[("Content-Type", "application/x-ndjson")],
        b"{\"id\": \"\xff\xfe\"}\n",
    );
    assert_eq!((r.status, r.code().as_str()), (422, "unreadable_input"));
    // Text meant for a terminal or a log line comes back escaped, on one line.
    let r = s.get("/v1/ledgers/main/positions/%1b%5b31mred%0aline");
    assert_eq!(r.status, 400);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        !detail.contains('\u{1b}') && !detail.contains('\n'),
        "{detail:?}"
    );
    let r = s.get("/v1/ledgers/main/ownership?%e2%80%ae=1");
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("\\u{202e}"),
        "{}",
        r.text()
    );

    // Headers that never end: the connection is closed after the header timeout.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(20)),
        "slow headers kept open"
    );
    // A connection that says nothing: closed after the idle timeout.
    let mut idle = TcpStream::connect(&s.addr).unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)),
        "an idle connection kept open"
    );
    // A keep-alive connection idle after its answer: closed too.
    let mut kept = TcpStream::connect(&s.addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(
        closed_within(&mut kept, Duration::from_secs(20)),
        "a kept-alive connection kept open"
    );

    // Hundreds of connections that do nothing do not keep others out.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    let r = request(&s.addr, "GET", "/healthz", &[], None);
    assert_eq!(r.status, 200);
    drop(idle);

    // Still the same log, and still answering.
    assert_eq!(head(), before);
    assert_eq!(s.get("/v1/ledgers/main/log").body, log);
    let v = s.post_with("/v1/ledgers/main/verify", &[], b"").json();
    assert_eq!(v["ok"], true);
}

#[test]
fn cors_only_for_the_origin_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let s = Served::start(Some(&store), &["--cors", "https://deals.example.com"]);
    let r = s.get_with(
        "/v1/ledgers/main/head",
        &[("Origin", "https://deals.example.com")],
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://deals.example.com")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("accord-head")
    );
    let pre = request(
        &s.addr,
        "OPTIONS",
        "/v1/ledgers/main/events",
        &[
            ("Origin", "https://deals.example.com"),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    assert_eq!(pre.status, 204);
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    // A bad origin is a usage error at start.
    let o = testkit::output(&store, &["serve", "--cors", "*"]);
    assert_eq!(o.status.code(), Some(2));
}
