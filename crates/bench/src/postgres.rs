//! The PostgreSQL column: the same workload in a PostgreSQL ledger of a throwaway cluster
//! (the machine's PostgreSQL, started by `testkit::pg` into a temporary directory, stopped
//! at the end), measured the way the embedded store is.
//!
//! - import: `accord --store URL append` of the workload file into a new schema;
//! - as-of queries: cold (the cluster restarted and its files dropped from the page cache
//!   just before), then warm (the median of the runs that follow), each a fresh process;
//! - single appends, after the last date and backdated, each a fresh process;
//! - verify;
//! - `accord copy` of the embedded store (after its own appends) into a new schema;
//! - before the import and before the copy, a `CHECKPOINT`, so that neither pays for
//!   flushing what came before it;
//! - single-event appends from 8 writers across 2 `accord serve` processes on the one
//!   ledger (4 keep-alive connections each), every acknowledged event then checked to be in
//!   the log exactly once.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::measure::{self, median, Run};
use crate::serve::{check_appended, quantile, Conn, Server};
use crate::workload::{date_str, Workload, LAST_DAY};

/// What one size measured on PostgreSQL.
#[derive(Clone, Debug, Default)]
pub struct PgResult {
    pub import_ms: f64,
    pub import_rss_kib: u64,
    /// Table and index bytes of the ledger's schema after the import.
    pub db_bytes: u64,
    /// (command, cold ms, warm ms, peak RSS KiB)
    pub queries: Vec<(String, f64, f64, u64)>,
    /// Issue 15's questions (`crate::bitemporal_commands`): (fresh-process ms, the median,
    /// and peak RSS KiB).
    pub bitemporal: Vec<(f64, u64)>,
    pub append_normal_ms: f64,
    pub append_backdated_ms: f64,
    pub verify_ms: f64,
    pub verify_rss_kib: u64,
    pub copy_events: u64,
    pub copy_ms: f64,
    pub copy_rss_kib: u64,
    pub writers: usize,
    pub writer_processes: usize,
    pub writers_eps: f64,
    pub writers_p99_ms: f64,
    pub writers_faults: u64,
}

pub struct Plan<'a> {
    pub accord: &'a Path,
    pub cluster: &'a testkit::pg::Cluster,
    /// The embedded store of the same size, copied into the database.
    pub embedded: &'a Path,
    pub dir: &'a Path,
    pub workload: &'a Workload,
    pub events: &'a Path,
    pub n: usize,
    pub runs: usize,
    pub seconds: u64,
    pub timeout: Duration,
    /// Writers and the `accord serve` processes they are spread over.
    pub writers: usize,
    pub writer_processes: usize,
    pub progress: &'a dyn Fn(&str),
}

/// Every PostgreSQL figure of one size.
pub fn bench(plan: &Plan<'_>) -> Result<PgResult, String> {
    let say = plan.progress;
    let n = plan.n;
    let url = plan.cluster.url(&format!("bench_{n}"));
    let accord_run = |rest: &[&str]| {
        let mut a = vec!["--store", url.as_str()];
        a.extend_from_slice(rest);
        Run::new(plan.accord, &a).timeout(plan.timeout)
    };
    let mut r = PgResult {
        writers: plan.writers,
        writer_processes: plan.writer_processes,
        ..PgResult::default()
    };

    // Each size starts from a quiet cluster: what the sizes before it wrote is flushed
    // (a checkpoint) before the import, as the embedded store's runs start from a new
    // directory.
    checkpoint(plan.cluster)?;
    say("PostgreSQL: import");
    let events = plan.events.display().to_string();
    let import = accord_run(&["append", &events, "--format", "json"]).measure_ok()?;
    let receipt: serde_json::Value =
        serde_json::from_slice(&import.stdout).map_err(|e| format!("import: {e}"))?;
    if receipt["appended"].as_u64() != Some(n as u64) {
        return Err(format!(
            "PostgreSQL import appended {} of {n} events",
            receipt["appended"]
        ));
    }
    let after_import = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    r.import_ms = import.millis();
    r.import_rss_kib = import.max_rss_kib;
    r.db_bytes = schema_bytes(plan.cluster, &format!("bench_{n}"))?;
    say(&format!(
        "PostgreSQL: import {:.0} ms, peak RSS {:.1} MiB, {} bytes in the database",
        r.import_ms,
        import.rss_mib(),
        r.db_bytes
    ));

    let d80 = date_str(LAST_DAY * 4 / 5);
    let last = date_str(LAST_DAY);
    for command in [
        format!("obligations --as-of {d80} --format json"),
        format!("obligations --as-of {last} --format json"),
        format!("ownership --as-of {d80}"),
        format!("ownership --as-of {last}"),
    ] {
        let words: Vec<&str> = command.split(' ').collect();
        let q = accord_run(&words);
        plan.cluster.restart("fast");
        measure::evict(&plan.cluster.data_dir())
            .map_err(|e| format!("evicting the cluster's files: {e}"))?;
        let cold = q.measure_ok()?;
        let (warm, rss) = q.measure_median(plan.runs)?;
        let rss = rss.max(cold.max_rss_kib);
        say(&format!(
            "PostgreSQL: {command}: cold {:.1} ms, warm {warm:.1} ms",
            cold.millis()
        ));
        r.queries.push((command, cold.millis(), warm, rss));
    }

    let single = |kind: &str, day: u32| -> Result<f64, String> {
        let mut times = Vec::new();
        for k in 1..=plan.runs {
            let id = format!("pg-bench-{kind}-{k}");
            let file = plan.dir.join(format!("{id}.jsonl"));
            std::fs::write(&file, plan.workload.probe_settlement(&id, day) + "\n")
                .map_err(|e| format!("{}: {e}", file.display()))?;
            times.push(
                accord_run(&["append", &file.display().to_string()])
                    .measure_ok()?
                    .millis(),
            );
        }
        say(&format!(
            "PostgreSQL: {kind} append {:.1} ms",
            median(&times)
        ));
        Ok(median(&times))
    };
    r.append_normal_ms = single("normal", LAST_DAY + 1)?;
    r.append_backdated_ms = single("backdated", LAST_DAY / 2)?;

    let what_if = plan.dir.join("pg-what-if.jsonl");
    std::fs::write(
        &what_if,
        plan.workload
            .probe_settlement("pg-bench-what-if", LAST_DAY / 2)
            + "\n",
    )
    .map_err(|e| format!("{}: {e}", what_if.display()))?;
    let exported = plan.dir.join("pg-export.bench");
    let head = n + 2 * plan.runs;
    for (_, command, to_file) in crate::bitemporal_commands(n, head, &after_import, &what_if) {
        let words: Vec<&str> = command.split(' ').collect();
        let mut q = accord_run(&words);
        if to_file {
            q = q.stdout_to(&exported);
        }
        let (ms, rss) = q.measure_median(plan.runs)?;
        say(&format!("PostgreSQL: {command}: {ms:.1} ms"));
        r.bitemporal.push((ms, rss));
    }
    let _ = std::fs::remove_file(&exported);

    // As for the embedded store: the median time, the largest peak RSS.
    say("PostgreSQL: verify");
    (r.verify_ms, r.verify_rss_kib) = accord_run(&["verify"]).measure_median(crate::VERIFY_RUNS)?;
    say(&format!(
        "PostgreSQL: verify {:.0} ms (median of {})",
        r.verify_ms,
        crate::VERIFY_RUNS
    ));

    checkpoint(plan.cluster)?;
    say("PostgreSQL: copy from the embedded store");
    let target = plan.cluster.url(&format!("bench_{n}_copy"));
    let embedded = plan.embedded.display().to_string();
    let copy = Run::new(
        plan.accord,
        &["copy", &embedded, &target, "--format", "json"],
    )
    .timeout(plan.timeout)
    .measure_ok()?;
    let copied: serde_json::Value =
        serde_json::from_slice(&copy.stdout).map_err(|e| format!("copy: {e}"))?;
    r.copy_events = copied["copied"].as_u64().unwrap_or(0);
    r.copy_ms = copy.millis();
    r.copy_rss_kib = copy.max_rss_kib;
    say(&format!(
        "PostgreSQL: copied {} events in {:.0} ms",
        r.copy_events, r.copy_ms
    ));

    writers(plan, &url, &mut r)?;
    Ok(r)
}

/// Single-event appends from `r.writers` connections spread over `r.writer_processes`
/// servers on the one ledger.
fn writers(plan: &Plan<'_>, url: &str, r: &mut PgResult) -> Result<(), String> {
    let say = plan.progress;
    say(&format!(
        "PostgreSQL: {} writers across {} `accord serve` processes for {} s",
        r.writers, r.writer_processes, plan.seconds
    ));
    let servers: Vec<Server> = (0..r.writer_processes)
        .map(|i| {
            Server::start_with(
                plan.accord,
                &["--store", url, "serve", "--listen", "127.0.0.1:0"],
                &plan.dir.join(format!("pg-serve-{i}.log")),
            )
        })
        .collect::<Result<_, _>>()?;
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let since = crate::serve::head_seq(&addrs[0])?;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let template = Arc::new(plan.workload.probe_settlement("@ID@", LAST_DAY + 1));
    let load = Duration::from_secs(plan.seconds);
    let start = Instant::now();
    let workers: Vec<_> = (0..r.writers)
        .map(|t| {
            let addr = addrs[t % addrs.len()].clone();
            let (acked, latencies, template) = (acked.clone(), latencies.clone(), template.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = Conn::open(&addr)?;
                let (mut ids, mut mine) = (Vec::new(), Vec::new());
                let mut k = 0;
                while start.elapsed() < load {
                    let id = format!("pg-writer-{t}-{k}");
                    k += 1;
                    let body = template.replace("@ID@", &id) + "\n";
                    let t0 = Instant::now();
                    let (status, answer) =
                        c.request("POST", "/v1/ledgers/main/events", Some(&body))?;
                    if status != 200 {
                        return Err(format!(
                            "append through {addr}: {status} {}",
                            String::from_utf8_lossy(&answer)
                        ));
                    }
                    mine.push(t0.elapsed().as_secs_f64() * 1000.0);
                    ids.push(id);
                }
                acked.lock().map_err(|_| "poisoned")?.extend(ids);
                latencies.lock().map_err(|_| "poisoned")?.extend(mine);
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a writer thread panicked")??;
    }
    let took = start.elapsed().as_secs_f64();
    let acked = acked.lock().map_err(|_| "poisoned")?.clone();
    let mut lat = latencies.lock().map_err(|_| "poisoned")?.clone();
    r.writers_eps = acked.len() as f64 / took;
    r.writers_p99_ms = quantile(&mut lat, 0.99);
    // Read back through the other server: what one acknowledged, the other sees.
    r.writers_faults = check_appended(&addrs[addrs.len() - 1], since, &acked)?;
    say(&format!(
        "PostgreSQL: {:.0} events/s acknowledged, p99 {:.1} ms, {} lost or doubled",
        r.writers_eps, r.writers_p99_ms, r.writers_faults
    ));
    drop(servers);
    Ok(())
}

/// Flushes what the cluster holds in memory to its files (`CHECKPOINT`).
fn checkpoint(cluster: &testkit::pg::Cluster) -> Result<(), String> {
    cluster
        .client()
        .batch_execute("CHECKPOINT")
        .map_err(|e| format!("CHECKPOINT: {e}"))
}

/// The bytes of the tables and indexes of `schema`.
fn schema_bytes(cluster: &testkit::pg::Cluster, schema: &str) -> Result<u64, String> {
    let mut c = cluster.client();
    let row = c
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[&schema],
        )
        .map_err(|e| format!("sizing {schema}: {e}"))?;
    Ok(row.get::<_, i64>(0) as u64)
}
