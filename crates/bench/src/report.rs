//! The results of a run and their Markdown table.

use std::fmt::Write as _;

/// A query measured cold once and warm several times.
#[derive(Clone, Debug)]
pub struct Query {
    /// The command line after `accord --store STORE`, e.g.
    /// `obligations --as-of 2023-12-31 --format json`.
    pub command: String,
    pub cold_ms: f64,
    pub warm_ms: f64,
    /// The highest peak RSS over all its runs, in KiB.
    pub max_rss_kib: u64,
}

/// ledger-cli on the same workload.
#[derive(Clone, Debug)]
pub enum Ledger {
    Measured {
        ms: f64,
        max_rss_kib: u64,
        /// Where the journal came from: `accord export` or the generator.
        journal: String,
        transactions: usize,
    },
    /// Why there is no figure (not installed, refused the journal, ...).
    Missing(String),
}

/// Every figure for one N.
#[derive(Clone, Debug)]
pub struct SizeResult {
    pub n: usize,
    pub import_ms: f64,
    pub import_rss_kib: u64,
    pub store_bytes: u64,
    pub queries: Vec<Query>,
    /// Issue 15's questions (known-at, what-if, diff, timeline, log tail, export), each
    /// with the label of its row.
    pub bitemporal: Vec<(&'static str, Query)>,
    pub append_normal_ms: f64,
    pub append_backdated_ms: f64,
    pub append_rss_kib: u64,
    pub verify_events: usize,
    pub verify_ms: f64,
    pub verify_rss_kib: u64,
    pub ledger: Ledger,
    /// `accord serve` on the same store, and the CLI path beside it (`--server-seconds 0`
    /// skips them).
    pub server: Option<crate::serve::ServerResult>,
    /// The same workload in a PostgreSQL ledger (`--postgres off` skips it).
    pub pg: Option<crate::postgres::PgResult>,
}

/// The machine the run happened on.
#[derive(Clone, Debug)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub memory: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = field(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = field(&meminfo, "MemTotal")
            .and_then(|m| m.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!("Linux {}", k.trim()))
            .unwrap_or_else(|_| "unknown kernel".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            kernel,
            memory,
        }
    }
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits: Vec<u8> = n.to_string().into_bytes();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect();
    groups.join(",")
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn rate(events: usize, ms: f64) -> String {
    let per_s = events as f64 / (ms / 1000.0);
    format!("{} ({:.2} s)", thousands(per_s.round() as u64), ms / 1000.0)
}

/// Everything the table needs besides the results.
pub struct Context<'a> {
    /// The PostgreSQL version, for the PostgreSQL table.
    pub postgres: &'a str,
    pub command: &'a str,
    pub date: &'a str,
    pub machine: &'a Machine,
    pub accord: &'a str,
    pub runs: usize,
    pub ledger_command: &'a str,
    pub notes: &'a [String],
}

/// The Markdown report: the table, then the machine and how it was measured.
pub fn render(ctx: &Context, results: &[SizeResult]) -> String {
    let mut rows: Vec<(String, Vec<String>, &str)> = Vec::new();
    let mut row = |label: String, f: &dyn Fn(&SizeResult) -> String, target: &'static str| {
        rows.push((label, results.iter().map(f).collect(), target));
    };
    row(
        "import (`append` of the whole file), events/s (wall)".into(),
        &|r| rate(r.n, r.import_ms),
        "≥ 500,000 (≤ 2 s)",
    );
    if let Some(first) = results.first() {
        for (q, query) in first.queries.iter().enumerate() {
            let cold = move |r: &SizeResult| r.queries.get(q).map_or("-".into(), |x| ms(x.cold_ms));
            let warm = move |r: &SizeResult| r.queries.get(q).map_or("-".into(), |x| ms(x.warm_ms));
            row(format!("`{}`, cold, ms", query.command), &cold, "≤ 50");
            row(
                format!("`{}`, warm (median of {}), ms", query.command, ctx.runs),
                &warm,
                "(≤ 50)",
            );
        }
    }
    row(
        format!(
            "single append, after the last date (median of {}), ms",
            ctx.runs
        ),
        &|r| ms(r.append_normal_ms),
        "≤ 20",
    );
    row(
        format!(
            "single append, backdated to mid-range (median of {}), ms",
            ctx.runs
        ),
        &|r| ms(r.append_backdated_ms),
        "≤ 20",
    );
    if let Some(first) = results.first() {
        for (q, (label, _)) in first.bitemporal.iter().enumerate() {
            let cell = move |r: &SizeResult| {
                r.bitemporal.get(q).map_or("-".into(), |(_, x)| {
                    format!(
                        "{} ms (cold {}), {} MiB",
                        ms(x.warm_ms),
                        ms(x.cold_ms),
                        mib(x.max_rss_kib)
                    )
                })
            };
            let target = match q {
                0..=3 => "≤ 50 ms",
                4 | 5 => "≤ 100 ms",
                6 => "≤ 20 ms",
                _ => "≤ 3 s, ≤ 256 MB",
            };
            row(
                format!("{label}, warm (median of {}) ms, peak RSS", ctx.runs),
                &cell,
                target,
            );
        }
    }
    row(
        "`verify`, events/s (wall)".into(),
        &|r| rate(r.verify_events, r.verify_ms),
        "≥ 1,000,000 (≤ 1 s)",
    );
    row(
        "peak RSS, import, MiB".into(),
        &|r| mib(r.import_rss_kib),
        "≤ 256 MB",
    );
    row(
        "peak RSS, queries (highest), MiB".into(),
        &|r| mib(r.queries.iter().map(|q| q.max_rss_kib).max().unwrap_or(0)),
        "≤ 256 MB",
    );
    row(
        "peak RSS, single appends (highest), MiB".into(),
        &|r| mib(r.append_rss_kib),
        "≤ 256 MB",
    );
    row(
        "peak RSS, verify, MiB".into(),
        &|r| mib(r.verify_rss_kib),
        "≤ 256 MB",
    );
    row(
        "store on disk, bytes/event".into(),
        &|r| format!("{:.0}", r.store_bytes as f64 / r.n as f64),
        "≤ 150",
    );
    row(
        format!("ledger-cli `{}`, ms", ctx.ledger_command),
        &|r| match &r.ledger {
            Ledger::Measured { ms: t, .. } => ms(*t),
            Ledger::Missing(why) => why.clone(),
        },
        "(issue 4: 11.7 s at 1M transactions)",
    );
    row(
        "ledger-cli peak RSS, MiB".into(),
        &|r| match &r.ledger {
            Ledger::Measured { max_rss_kib, .. } => mib(*max_rss_kib),
            Ledger::Missing(_) => "-".into(),
        },
        "(issue 4: 2 GB at 1M transactions)",
    );
    row(
        "ledger-cli journal: source, transactions".into(),
        &|r| match &r.ledger {
            Ledger::Measured {
                journal,
                transactions,
                ..
            } => format!("{journal}, {}", thousands(*transactions as u64)),
            Ledger::Missing(_) => "-".into(),
        },
        "",
    );

    let mut s = String::new();
    let _ = write!(s, "| figure |");
    for r in results {
        let _ = write!(s, " N = {} |", thousands(r.n as u64));
    }
    let _ = writeln!(s, " target at N = 1,000,000 |");
    let _ = write!(s, "|---|");
    for _ in results {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s, "---|");
    for (label, cells, target) in &rows {
        let _ = write!(s, "| {label} |");
        for c in cells {
            let _ = write!(s, " {c} |");
        }
        let _ = writeln!(s, " {target} |");
    }
    let m = ctx.machine;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Machine: {} CPU(s) (`nproc`), {}, {} RAM, {}. Date: {}.",
        m.nproc, m.cpu, m.memory, m.kernel, ctx.date
    );
    let _ = writeln!(
        s,
        "Command: `{}` (accord binary: `{}`).",
        ctx.command, ctx.accord
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Every figure is one fresh process, timed from spawn to `wait4`; peak RSS is the \
         process's own `ru_maxrss` from `wait4`. Cold: the store's files fsynced and dropped \
         from the page cache (`posix_fadvise(DONTNEED)`) just before. Warm: the median of the \
         {} runs that follow. Single appends are one settlement each, with the cache as the \
         queries left it; verify runs three times after them (N + {} events; the median, \
         and the largest peak RSS).",
        ctx.runs,
        2 * ctx.runs
    );
    for note in ctx.notes {
        let _ = writeln!(s);
        let _ = writeln!(s, "{note}");
    }
    if results.iter().any(|r| r.pg.is_some()) {
        let _ = writeln!(s);
        s.push_str(&render_pg(ctx, results));
    }
    if results.iter().any(|r| r.server.is_some()) {
        let _ = writeln!(s);
        s.push_str(&render_server(results));
    }
    s
}

/// The PostgreSQL table: the same figures, on a ledger in a throwaway cluster.
fn render_pg(ctx: &Context, results: &[SizeResult]) -> String {
    use crate::postgres::PgResult;
    let measured: Vec<(usize, &PgResult)> = results
        .iter()
        .filter_map(|r| r.pg.as_ref().map(|p| (r.n, p)))
        .collect();
    // The embedded store's figure of the same run, at the largest size, beside each row.
    let largest = results
        .iter()
        .filter(|r| r.pg.is_some())
        .max_by_key(|r| r.n);
    let mut rows: Vec<(String, Vec<String>, String, String)> = Vec::new();
    let mut row = |label: String,
                   f: &dyn Fn(usize, &PgResult) -> String,
                   embedded: &dyn Fn(&SizeResult) -> String,
                   target: &str| {
        rows.push((
            label,
            measured.iter().map(|(n, p)| f(*n, p)).collect(),
            largest.map_or(String::new(), embedded),
            target.to_string(),
        ));
    };
    let none = |_: &SizeResult| String::new();
    row(
        "import (`append` of the whole file), events/s (wall)".into(),
        &|n, p| rate(n, p.import_ms),
        &|r| rate(r.n, r.import_ms),
        "≤ 10 s",
    );
    if let Some((_, first)) = measured.first() {
        for (q, (command, ..)) in first.queries.iter().enumerate() {
            row(
                format!("`{command}`, cold (cluster restarted, its files evicted), ms"),
                &|_, p| p.queries.get(q).map_or("-".into(), |x| ms(x.1)),
                &|r| r.queries.get(q).map_or("-".into(), |x| ms(x.cold_ms)),
                "",
            );
            row(
                format!("`{command}`, fresh process (median of {}), ms", ctx.runs),
                &|_, p| p.queries.get(q).map_or("-".into(), |x| ms(x.2)),
                &|r| r.queries.get(q).map_or("-".into(), |x| ms(x.warm_ms)),
                "≤ 50",
            );
        }
    }
    if let Some((_, first)) = measured.first() {
        for q in 0..first.bitemporal.len() {
            let label = results
                .first()
                .and_then(|r| r.bitemporal.get(q))
                .map_or("-", |(label, _)| *label);
            row(
                format!(
                    "{label}, fresh process (median of {}), ms, peak RSS",
                    ctx.runs
                ),
                &|_, p| {
                    p.bitemporal
                        .get(q)
                        .map_or("-".into(), |x| format!("{} ms, {} MiB", ms(x.0), mib(x.1)))
                },
                &|r| {
                    r.bitemporal.get(q).map_or("-".into(), |(_, x)| {
                        format!("{} ms, {} MiB", ms(x.warm_ms), mib(x.max_rss_kib))
                    })
                },
                "",
            );
        }
    }
    row(
        format!(
            "single append, after the last date (median of {}), ms",
            ctx.runs
        ),
        &|_, p| ms(p.append_normal_ms),
        &|r| ms(r.append_normal_ms),
        "≤ 30",
    );
    row(
        format!(
            "single append, backdated to mid-range (median of {}), ms",
            ctx.runs
        ),
        &|_, p| ms(p.append_backdated_ms),
        &|r| ms(r.append_backdated_ms),
        "≤ 30",
    );
    row(
        "single-event appends, concurrent writers across `accord serve` processes, events/s".into(),
        &|_, p| {
            format!(
                "{} ({} writers, {} processes, p99 {:.1} ms)",
                thousands(p.writers_eps.round() as u64),
                p.writers,
                p.writer_processes,
                p.writers_p99_ms
            )
        },
        &|r| match &r.server {
            Some(x) => format!(
                "{} ({} clients, one process)",
                thousands(x.append_eps.round() as u64),
                x.append_clients
            ),
            None => String::new(),
        },
        "≥ 500",
    );
    row(
        "acknowledged events lost or doubled".into(),
        &|_, p| p.writers_faults.to_string(),
        &|r| {
            r.server
                .as_ref()
                .map_or(String::new(), |x| x.append_faults.to_string())
        },
        "0",
    );
    row(
        "`copy` from the embedded store, events/s (wall)".into(),
        &|_, p| rate(p.copy_events as usize, p.copy_ms),
        &none,
        "≤ 15 s",
    );
    row(
        "`verify`, events/s (wall)".into(),
        &|n, p| rate(n + 2 * ctx.runs, p.verify_ms),
        &|r| rate(r.verify_events, r.verify_ms),
        "",
    );
    row(
        "peak RSS, import / verify / copy, MiB".into(),
        &|_, p| {
            format!(
                "{} / {} / {}",
                mib(p.import_rss_kib),
                mib(p.verify_rss_kib),
                mib(p.copy_rss_kib)
            )
        },
        &|r| format!("{} / {} / -", mib(r.import_rss_kib), mib(r.verify_rss_kib)),
        "",
    );
    row(
        "peak RSS, queries (highest), MiB".into(),
        &|_, p| mib(p.queries.iter().map(|q| q.3).max().unwrap_or(0)),
        &|r| mib(r.queries.iter().map(|q| q.max_rss_kib).max().unwrap_or(0)),
        "",
    );
    row(
        "database, tables and indexes, bytes/event".into(),
        &|n, p| format!("{:.0}", p.db_bytes as f64 / n as f64),
        &|r| format!("{:.0} (on disk)", r.store_bytes as f64 / r.n as f64),
        "",
    );
    let mut s = String::new();
    let _ = write!(s, "| PostgreSQL |");
    for (n, _) in &measured {
        let _ = write!(s, " N = {} |", thousands(*n as u64));
    }
    if let Some(r) = largest {
        let _ = write!(
            s,
            " embedded store, same run, N = {} |",
            thousands(r.n as u64)
        );
    }
    let _ = writeln!(s, " target at N = 1,000,000 |");
    let _ = write!(s, "|---|");
    for _ in &measured {
        let _ = write!(s, "---:|");
    }
    if largest.is_some() {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s, "---|");
    for (label, cells, embedded, target) in &rows {
        let _ = write!(s, "| {label} |");
        for c in cells {
            let _ = write!(s, " {c} |");
        }
        if largest.is_some() {
            let _ = write!(s, " {embedded} |");
        }
        let _ = writeln!(s, " {target} |");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "PostgreSQL {}: a throwaway cluster of the machine's PostgreSQL (`initdb` defaults, \
         trust authentication over TCP on 127.0.0.1, `fsync` and `synchronous_commit` on), \
         on the same disk, sharing the same {} cores with accord. Each figure is a fresh \
         `accord --store postgres://...` process. Cold: the cluster restarted and its files \
         dropped from the page cache just before; a `CHECKPOINT` before the import and the copy. The writers: `accord serve --store URL` \
         processes on the one ledger, the writers' keep-alive connections spread over them, one settlement per \
         request; every acknowledged event is then looked up in the log through the other \
         server. `copy` reads the embedded store of the same size (N + {} events) into a new \
         schema and verifies it there.",
        ctx.postgres,
        ctx.machine.nproc,
        2 * ctx.runs
    );
    s
}

/// The server's table: each figure of `accord serve`, and the CLI path beside it.
fn render_server(results: &[SizeResult]) -> String {
    use crate::serve::ServerResult;
    type Cell = dyn Fn(&ServerResult) -> String;
    let rows: Vec<(&str, Box<Cell>, Box<Cell>, &str)> = vec![
        (
            "as-of queries, warm, requests/s",
            Box::new(|r| {
                format!(
                    "{} ({} connections)",
                    thousands(r.query_rps.round() as u64),
                    r.query_connections
                )
            }),
            Box::new(|r| format!("{:.1} (one process at a time)", r.cli_query_rps)),
            "≥ 2,000",
        ),
        (
            "as-of queries, p99, ms",
            Box::new(|r| format!("{:.1} (p50 {:.1})", r.query_p99_ms, r.query_p50_ms)),
            Box::new(|r| format!("{:.1}", r.cli_query_p99_ms)),
            "≤ 50",
        ),
        (
            "as-of queries, each computed (`Cache-Control: no-cache`), requests/s",
            Box::new(|r| {
                format!(
                    "{} (p99 {:.1} ms)",
                    thousands(r.fresh_rps.round() as u64),
                    r.fresh_p99_ms
                )
            }),
            Box::new(|r| format!("{:.1} (p99 {:.1} ms)", r.cli_query_rps, r.cli_query_p99_ms)),
            "",
        ),
        (
            "single-event appends acknowledged (durable), events/s",
            Box::new(|r| {
                format!(
                    "{} ({} clients, p99 {:.1} ms)",
                    thousands(r.append_eps.round() as u64),
                    r.append_clients,
                    r.append_p99_ms
                )
            }),
            Box::new(|r| format!("{:.1} (one process at a time)", r.cli_append_eps)),
            "≥ 1,000",
        ),
        (
            "acknowledged events lost or doubled",
            Box::new(|r| r.append_faults.to_string()),
            Box::new(|_| "-".into()),
            "0",
        ),
        (
            "a new event reaching open streams, ms",
            Box::new(|r| {
                format!(
                    "{:.1} to all {} (median of 5; worst {:.1})",
                    r.stream_ms, r.streams, r.stream_worst_ms
                )
            }),
            Box::new(|_| "- (polls `accord log --since`)".into()),
            "≤ 1,000",
        ),
        (
            "peak RSS under that load, MiB",
            Box::new(|r| mib(r.server_rss_kib)),
            Box::new(|r| format!("{} per process", mib(r.cli_rss_kib))),
            "≤ 256 MB",
        ),
    ];
    let mut s = String::new();
    let _ = write!(s, "| `accord serve` |");
    for r in results.iter().filter(|r| r.server.is_some()) {
        let n = thousands(r.n as u64);
        let _ = write!(s, " server, N = {n} | CLI path, N = {n} |");
    }
    let _ = writeln!(s, " target at N = 1,000,000 |");
    let _ = write!(s, "|---|");
    for _ in results.iter().filter(|r| r.server.is_some()) {
        let _ = write!(s, "---:|---:|");
    }
    let _ = writeln!(s, "---|");
    for (label, server, cli, target) in &rows {
        let _ = write!(s, "| {label} |");
        for r in results {
            if let Some(x) = &r.server {
                let _ = write!(s, " {} | {} |", server(x), cli(x));
            }
        }
        let _ = writeln!(s, " {target} |");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "The server is loaded from the benchmark's own process over loopback, one keep-alive \
         HTTP/1.1 connection per thread. Queries: obligations and ownership on 64 dates spread \
         over the range, each asked once before timing; the server keeps answers by head and \
         question, so warm questions are answered from memory until an append moves the \
         head, and the next row asks for every answer to be computed. Appends: one settlement per request, \
         after the last date; every acknowledged event is then looked up in the log. Streams: \
         100 `log/stream` connections open, then one append; the time until the last of them \
         has it. Peak RSS is the server's `VmHWM`. The CLI path runs one process per request, \
         one at a time (an embedded store admits one process at a time)."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
