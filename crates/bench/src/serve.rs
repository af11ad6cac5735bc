//! The server's figures: `accord serve` on the benchmark's store, loaded from this process
//! over loopback (keep-alive HTTP/1.1 connections, one thread each), beside the same work
//! done the CLI way (one process per request).
//!
//! - as-of queries from 32 connections, warm (each question asked once before timing);
//! - single-event appends from 16 clients, every acknowledged event then checked to be in
//!   the log exactly once;
//! - how long a new event takes to reach 100 open `log/stream` connections;
//! - the server's peak memory (`VmHWM`) under all of that.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::measure::{median, Run};
use crate::workload::{date_str, Workload, LAST_DAY};

/// What one size's server run measured.
#[derive(Clone, Debug, Default)]
pub struct ServerResult {
    pub query_connections: usize,
    pub query_rps: f64,
    pub query_p50_ms: f64,
    pub query_p99_ms: f64,
    /// The same load with `Cache-Control: no-cache`: every answer computed.
    pub fresh_rps: f64,
    pub fresh_p99_ms: f64,
    pub append_clients: usize,
    pub append_eps: f64,
    pub append_p99_ms: f64,
    /// Acknowledged events missing from the log or in it twice (0 when all is well).
    pub append_faults: u64,
    pub streams: usize,
    /// Median over rounds of the time until the last of the streams had the new event.
    pub stream_ms: f64,
    pub stream_worst_ms: f64,
    pub server_rss_kib: u64,
    /// The CLI path: one process per request, one at a time (the embedded store admits one
    /// process at a time).
    pub cli_query_rps: f64,
    pub cli_query_p99_ms: f64,
    pub cli_append_eps: f64,
    pub cli_rss_kib: u64,
}

/// A running `accord serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(accord: &Path, store: &Path, log: &Path) -> Result<Server, String> {
        let store = store.display().to_string();
        Server::start_with(
            accord,
            &["--store", &store, "serve", "--listen", "127.0.0.1:0"],
            log,
        )
    }

    /// `accord ARGS` (a `serve` command), once it prints the address it listens on.
    pub(crate) fn start_with(accord: &Path, args: &[&str], log: &Path) -> Result<Server, String> {
        let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(accord)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("accord serve: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("accord serve: no stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("accord serve: {e}"))?;
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .ok_or_else(|| format!("accord serve printed {line:?}"))?
            .to_string();
        Ok(Server { child, addr })
    }

    /// The peak resident memory of the server so far, KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: String,
}

impl Conn {
    pub(crate) fn open(addr: &str) -> Result<Conn, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone().map_err(|e| e.to_string())?),
            writer: s,
            addr: addr.to_string(),
        })
    }

    /// Sends one request and reads its whole answer (bodies have a Content-Length).
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), String> {
        self.request_with(method, path, body, "")
    }

    /// `request` with extra header lines (each ending in CRLF).
    fn request_with(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        extra: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}", self.addr);
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        if let Some(b) = body {
            head.push_str(b);
        }
        self.writer
            .write_all(head.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().map_err(|_| "bad content-length")?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| format!("read: {e}"))?;
        Ok((status, body))
    }
}

/// The `q`-th quantile of `values` (sorted here), nearest rank.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The questions of the query load: obligations and ownership on 64 dates spread over the
/// workload's range.
fn questions() -> Vec<String> {
    (0..64u32)
        .flat_map(|i| {
            let day = LAST_DAY * (i + 1) / 64;
            let d = date_str(day);
            [
                format!("/v1/ledgers/main/obligations?as_of={d}"),
                format!("/v1/ledgers/main/ownership?as_of={d}"),
            ]
        })
        .collect()
}

pub struct Plan<'a> {
    pub accord: &'a Path,
    pub store: &'a Path,
    pub dir: &'a Path,
    pub workload: &'a Workload,
    pub seconds: u64,
    pub progress: &'a dyn Fn(&str),
}

/// Runs every server figure on `store` (which it appends to), then the CLI path.
pub fn bench(plan: &Plan<'_>) -> Result<ServerResult, String> {
    let progress = plan.progress;
    let mut r = ServerResult {
        query_connections: 32,
        append_clients: 16,
        streams: 100,
        ..ServerResult::default()
    };
    let server = Server::start(plan.accord, plan.store, &plan.dir.join("serve.log"))?;
    let addr = server.addr.clone();
    let load = Duration::from_secs(plan.seconds);

    // As-of queries, warm.
    let qs = Arc::new(questions());
    {
        let mut c = Conn::open(&addr)?;
        for q in qs.iter() {
            let (status, body) = c.request("GET", q, None)?;
            if status != 200 {
                return Err(format!(
                    "GET {q}: {status} {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
    progress(&format!(
        "server: {} connections of as-of queries for {} s",
        r.query_connections, plan.seconds
    ));
    (r.query_rps, r.query_p50_ms, r.query_p99_ms) =
        query_load(&addr, &qs, r.query_connections, load, "")?;
    progress(&format!(
        "server: {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms",
        r.query_rps, r.query_p50_ms, r.query_p99_ms
    ));
    progress("server: the same, each answer computed (Cache-Control: no-cache)");
    let fresh;
    (r.fresh_rps, fresh, r.fresh_p99_ms) = query_load(
        &addr,
        &qs,
        r.query_connections,
        load,
        "Cache-Control: no-cache\r\n",
    )?;
    progress(&format!(
        "server: {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms",
        r.fresh_rps, fresh, r.fresh_p99_ms
    ));

    // Single-event appends from 16 clients.
    let head_before = head_seq(&addr)?;
    progress(&format!(
        "server: {} clients of single-event appends for {} s",
        r.append_clients, plan.seconds
    ));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let append_lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let template = Arc::new(plan.workload.probe_settlement("@ID@", LAST_DAY + 1));
    let start = Instant::now();
    let workers: Vec<_> = (0..r.append_clients)
        .map(|t| {
            let (acked, append_lat, addr) = (acked.clone(), append_lat.clone(), addr.clone());
            let template = template.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = Conn::open(&addr)?;
                let mut mine = Vec::new();
                let mut ids = Vec::new();
                let mut k = 0;
                while start.elapsed() < load {
                    let id = format!("serve-bench-{t}-{k}");
                    k += 1;
                    let body = template.replace("@ID@", &id) + "\n";
                    let t0 = Instant::now();
                    let (status, answer) =
                        c.request("POST", "/v1/ledgers/main/events", Some(&body))?;
                    if status != 200 {
                        return Err(format!(
                            "append: {status} {}",
                            String::from_utf8_lossy(&answer)
                        ));
                    }
                    mine.push(t0.elapsed().as_secs_f64() * 1000.0);
                    ids.push(id);
                }
                acked.lock().map_err(|_| "poisoned")?.extend(ids);
                append_lat.lock().map_err(|_| "poisoned")?.extend(mine);
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "an append thread panicked")??;
    }
    let took = start.elapsed().as_secs_f64();
    let acked = acked.lock().map_err(|_| "poisoned")?.clone();
    let mut lat = append_lat.lock().map_err(|_| "poisoned")?.clone();
    r.append_eps = acked.len() as f64 / took;
    r.append_p99_ms = quantile(&mut lat, 0.99);
    r.append_faults = check_appended(&addr, head_before, &acked)?;
    progress(&format!(
        "server: {:.0} events/s acknowledged, p99 {:.1} ms, {} lost or doubled",
        r.append_eps, r.append_p99_ms, r.append_faults
    ));

    // A new event reaching 100 open streams.
    progress(&format!(
        "server: a new event to {} open streams",
        r.streams
    ));
    let mut rounds = Vec::new();
    let (tx, rx) = mpsc::channel::<Instant>();
    let stop = Arc::new(AtomicBool::new(false));
    let since = head_seq(&addr)?;
    let mut readers = Vec::new();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    for _ in 0..r.streams {
        let (tx, addr, stop, ready) = (tx.clone(), addr.clone(), stop.clone(), ready_tx.clone());
        readers.push(std::thread::spawn(move || -> Result<(), String> {
            let mut s = TcpStream::connect(&addr).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            write!(
                s,
                "GET /v1/ledgers/main/log/stream?since={since} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            )
            .map_err(|e| e.to_string())?;
            let mut reader = BufReader::new(s);
            let mut line = String::new();
            // The answer's head, then the events.
            loop {
                line.clear();
                reader.read_line(&mut line).map_err(|e| e.to_string())?;
                if line.trim_end().is_empty() {
                    break;
                }
            }
            let _ = ready.send(());
            while !stop.load(Ordering::Relaxed) {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) if line.contains("data: ") => {
                        let _ = tx.send(Instant::now());
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            Ok(())
        }));
    }
    for _ in 0..r.streams {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "a stream did not open")?;
    }
    let mut c = Conn::open(&addr)?;
    for round in 0..5 {
        let body = plan
            .workload
            .probe_settlement(&format!("serve-bench-stream-{round}"), LAST_DAY + 1)
            + "\n";
        let t0 = Instant::now();
        let (status, _) = c.request("POST", "/v1/ledgers/main/events", Some(&body))?;
        if status != 200 {
            return Err(format!("stream round append: {status}"));
        }
        let mut last = t0;
        for _ in 0..r.streams {
            let at = rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "a stream did not get the event within 10 s")?;
            last = last.max(at);
        }
        rounds.push((last - t0).as_secs_f64() * 1000.0);
    }
    stop.store(true, Ordering::Relaxed);
    r.stream_ms = median(&rounds);
    r.stream_worst_ms = rounds.iter().cloned().fold(0.0, f64::max);
    progress(&format!(
        "server: the event reached all {} streams in {:.1} ms (median of 5, worst {:.1})",
        r.streams, r.stream_ms, r.stream_worst_ms
    ));
    r.server_rss_kib = server.peak_rss_kib();
    progress(&format!(
        "server: peak RSS {:.1} MiB",
        r.server_rss_kib as f64 / 1024.0
    ));
    drop(server);
    for t in readers {
        let _ = t.join();
    }

    // The CLI path: one process per request, one after the other.
    progress("CLI path: as-of queries and single appends, one process each");
    let store_arg = plan.store.display().to_string();
    let cli = |args: &[&str]| {
        let mut a = vec!["--store", store_arg.as_str()];
        a.extend_from_slice(args);
        Run::new(plan.accord, &a)
    };
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut k = 0usize;
    while start.elapsed() < load.min(Duration::from_secs(5)) || lat.len() < 10 {
        let day = LAST_DAY * (k as u32 % 64 + 1) / 64;
        let d = date_str(day);
        let command = if k.is_multiple_of(2) {
            "obligations"
        } else {
            "ownership"
        };
        k += 1;
        let o = cli(&[command, "--as-of", &d, "--format", "json"]).measure_ok()?;
        r.cli_rss_kib = r.cli_rss_kib.max(o.max_rss_kib);
        lat.push(o.millis());
    }
    r.cli_query_rps = lat.len() as f64 / start.elapsed().as_secs_f64();
    r.cli_query_p99_ms = quantile(&mut lat, 0.99);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < load.min(Duration::from_secs(5)) || n < 10 {
        let id = format!("cli-bench-{n}");
        let file = plan.dir.join("cli-append.jsonl");
        std::fs::write(
            &file,
            plan.workload.probe_settlement(&id, LAST_DAY + 1) + "\n",
        )
        .map_err(|e| e.to_string())?;
        let o = cli(&["append", &file.display().to_string()]).measure_ok()?;
        r.cli_rss_kib = r.cli_rss_kib.max(o.max_rss_kib);
        n += 1;
    }
    r.cli_append_eps = n as f64 / start.elapsed().as_secs_f64();
    progress(&format!(
        "CLI path: {:.1} queries/s (p99 {:.1} ms), {:.1} appends/s",
        r.cli_query_rps, r.cli_query_p99_ms, r.cli_append_eps
    ));
    Ok(r)
}

/// `connections` threads asking the questions in turn for `load`: (requests/s, p50, p99).
fn query_load(
    addr: &str,
    qs: &Arc<Vec<String>>,
    connections: usize,
    load: Duration,
    extra: &'static str,
) -> Result<(f64, f64, f64), String> {
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let start = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|i| {
            let (qs, latencies, addr) = (qs.clone(), latencies.clone(), addr.to_string());
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = Conn::open(&addr)?;
                let mut mine = Vec::new();
                let mut k = i * 7;
                while start.elapsed() < load {
                    let q = &qs[k % qs.len()];
                    k += 1;
                    let t = Instant::now();
                    let (status, _) = c.request_with("GET", q, None, extra)?;
                    if status != 200 {
                        return Err(format!("GET {q}: {status}"));
                    }
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                latencies.lock().map_err(|_| "poisoned")?.extend(mine);
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a query thread panicked")??;
    }
    let took = start.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map_err(|_| "poisoned")?.clone();
    let rps = lat.len() as f64 / took;
    Ok((rps, quantile(&mut lat, 0.5), quantile(&mut lat, 0.99)))
}

pub(crate) fn head_seq(addr: &str) -> Result<u64, String> {
    let mut c = Conn::open(addr)?;
    let (status, body) = c.request("GET", "/v1/ledgers/main/head", None)?;
    if status != 200 {
        return Err(format!("head: {status}"));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(v["seq"].as_u64().unwrap_or(0))
}

/// Acknowledged ids missing from the log after `since`, plus ids in it twice, plus events
/// in it that nobody had acknowledged.
pub(crate) fn check_appended(addr: &str, since: u64, acked: &[String]) -> Result<u64, String> {
    let mut c = Conn::open(addr)?;
    let mut seen = std::collections::HashMap::<String, u64>::new();
    let mut after = since;
    loop {
        let (status, body) = c.request(
            "GET",
            &format!("/v1/ledgers/main/log?since={after}&limit=10000"),
            None,
        )?;
        if status != 200 {
            return Err(format!("log: {status}"));
        }
        let text = String::from_utf8_lossy(&body);
        let mut any = false;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            after = v["seq"].as_u64().unwrap_or(after);
            *seen
                .entry(v["id"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
            any = true;
        }
        if !any {
            break;
        }
    }
    let mut faults = 0;
    for id in acked {
        if seen.remove(id) != Some(1) {
            faults += 1;
        }
    }
    Ok(faults + seen.len() as u64)
}
