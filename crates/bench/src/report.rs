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
    pub append_normal_ms: f64,
    pub append_backdated_ms: f64,
    pub append_rss_kib: u64,
    pub verify_events: usize,
    pub verify_ms: f64,
    pub verify_rss_kib: u64,
    pub ledger: Ledger,
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
         queries left it; verify runs once after them (N + {} events).",
        ctx.runs,
        2 * ctx.runs
    );
    for note in ctx.notes {
        let _ = writeln!(s);
        let _ = writeln!(s, "{note}");
    }
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
