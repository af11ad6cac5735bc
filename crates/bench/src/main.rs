//! `accord-bench`: the benchmark of issue 4.
//!
//!     cargo build --release && cargo run --release -p accord-bench -- \
//!         [--sizes 10000,100000,1000000] [--accord target/release/accord] \
//!         [--work DIR] [--out FILE]
//!
//! For each N: generate a valid workload, import it into an empty store,
//! query it cold and warm, append to it, verify it, and run ledger-cli on
//! the same data; then print one Markdown table to stdout and to `--out`.
//! Any failure of accord aborts the run with its standard error.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use accord_bench::measure::{self, median, Run};
use accord_bench::report::{self, Context, Ledger, Machine, Query, SizeResult};
use accord_bench::workload::{self, date_str, Workload, LAST_DAY};
use accord_bench::VERIFY_RUNS;

/// Benchmark accord on synthetic workloads of N events and compare with ledger-cli.
#[derive(Parser, Debug)]
#[command(name = "accord-bench")]
struct Args {
    /// Workload sizes, in events (each at least 1000, at most 1,000,000: one batch).
    #[arg(long, value_delimiter = ',', default_values_t = vec![10_000usize, 100_000, 1_000_000])]
    sizes: Vec<usize>,
    /// The accord binary. Default: `accord` next to this binary, else target/release/accord.
    #[arg(long)]
    accord: Option<PathBuf>,
    /// Working directory for workloads, stores and journals (wiped per size).
    #[arg(long, default_value = "target/bench/work")]
    work: PathBuf,
    /// Where the Markdown report is written (as well as stdout).
    #[arg(long, default_value = "target/bench/results.md")]
    out: PathBuf,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Warm runs per query and single appends per kind (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds of each load on `accord serve` (queries, appends); 0 skips the server.
    #[arg(long, default_value_t = 10)]
    server_seconds: u64,
    /// `auto`: the PostgreSQL column on a throwaway cluster of the machine's PostgreSQL
    /// (a note instead when it is not installed); `off`: no PostgreSQL column.
    #[arg(long, default_value = "auto", value_parser = ["auto", "off"])]
    postgres: String,
    /// Single-event writers on PostgreSQL, spread over `--pg-writer-processes` servers.
    #[arg(long, default_value_t = 8)]
    pg_writers: usize,
    #[arg(long, default_value_t = 2)]
    pg_writer_processes: usize,
    /// Seconds any one command may run before it is killed and the run aborted.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn progress(msg: &str) {
    eprintln!("accord-bench: {msg}");
}

fn run(args: &Args) -> Result<(), String> {
    for &n in &args.sizes {
        if !(workload::MIN_EVENTS..=1_000_000).contains(&n) {
            return Err(format!(
                "size {n}: each size must be between {} and 1,000,000 events (one batch)",
                workload::MIN_EVENTS
            ));
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let accord = find_accord(args.accord.as_deref())?;
    let version = Run::new(&accord, &["--version"]).measure_ok()?;
    progress(&format!(
        "using {} ({})",
        accord.display(),
        String::from_utf8_lossy(&version.stdout).trim()
    ));
    let ledger = find_ledger();
    let mut notes = Vec::new();
    if let Err(why) = &ledger {
        notes.push(format!("ledger-cli: {why}."));
    }

    let cluster = if args.postgres == "auto" {
        progress("starting a throwaway PostgreSQL cluster");
        let c = testkit::pg::Cluster::start();
        if c.is_none() {
            notes.push("PostgreSQL: not installed, so no PostgreSQL column.".into());
        }
        c
    } else {
        None
    };
    let postgres = match &cluster {
        Some(c) => {
            let mut client = c.client();
            client
                .query_one("SHOW server_version", &[])
                .map(|r| r.get::<_, String>(0))
                .unwrap_or_default()
        }
        None => String::new(),
    };

    let d80 = LAST_DAY * 4 / 5;
    let d80_next = date_str(d80 + 1);
    let ledger_args = ["bal", "-e", d80_next.as_str()];
    let mut results = Vec::new();
    for &n in &args.sizes {
        let dir = args.work.join(format!("n{n}"));
        let r = bench_size(
            args,
            &accord,
            ledger.as_ref().ok(),
            &ledger_args,
            cluster.as_ref(),
            n,
            &dir,
        )?;
        results.push(r);
    }

    let command = std::env::args().collect::<Vec<_>>().join(" ");
    notes.push(format!(
        "Workload (seed {}): parties about N/1000 (at least 20), up to 36 share-issuing \
         entities, obligations about N/500 with partial settlements over 2016-01-01 to \
         2025-12-31, share transfers, valuations, amendments, releases, rights, investments, \
         about 2 % backdated events and 0.5 % reversals of settlements. As-of dates: {} (80 % \
         through the range) and {} (the last date). ledger-cli balances as of {} \
         (`-e` is exclusive, hence the day after).",
        args.seed,
        date_str(d80),
        date_str(LAST_DAY),
        date_str(d80),
    ));
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = Machine::detect();
    let ledger_command = format!("ledger -f JOURNAL {}", ledger_args.join(" "));
    let table = report::render(
        &Context {
            command: &command,
            date: &date,
            machine: &machine,
            accord: &accord.display().to_string(),
            runs: args.runs,
            postgres: &postgres,
            ledger_command: &ledger_command,
            notes: &notes,
        },
        &results,
    );
    println!("{table}");
    if let Some(parent) = args.out.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    fs::write(&args.out, &table).map_err(|e| format!("{}: {e}", args.out.display()))?;
    progress(&format!("report written to {}", args.out.display()));
    Ok(())
}

/// `--accord`, else `accord` in the same directory as this binary (the same
/// target directory and profile), else `target/release/accord`.
fn find_accord(given: Option<&Path>) -> Result<PathBuf, String> {
    let candidate = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("accord")))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("target/release/accord")),
    };
    if !candidate.is_file() {
        return Err(format!(
            "the accord binary is not at {}: run `cargo build --release` first, or pass --accord PATH",
            candidate.display()
        ));
    }
    fs::canonicalize(&candidate).map_err(|e| format!("{}: {e}", candidate.display()))
}

/// The ledger binary, installing it once with apt-get if it is missing.
fn find_ledger() -> Result<PathBuf, String> {
    let ledger = PathBuf::from("ledger");
    let works = || Run::new(&ledger, &["--version"]).measure_ok().is_ok();
    if works() {
        return Ok(ledger);
    }
    progress("ledger not found; trying `apt-get install -y ledger` once");
    let installed = Run::new(Path::new("apt-get"), &["install", "-y", "ledger"]).measure_ok();
    if let Err(e) = &installed {
        progress(&format!(
            "apt-get failed: {}",
            e.lines().last().unwrap_or("")
        ));
    }
    if works() {
        Ok(ledger)
    } else {
        Err("not installed".into())
    }
}

fn bench_size(
    args: &Args,
    accord: &Path,
    ledger: Option<&PathBuf>,
    ledger_args: &[&str],
    cluster: Option<&testkit::pg::Cluster>,
    n: usize,
    dir: &Path,
) -> Result<SizeResult, String> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let store = dir.join("store");
    let store_arg = store.display().to_string();
    let accord_run = |rest: &[&str]| {
        let mut a = vec!["--store", store_arg.as_str()];
        a.extend_from_slice(rest);
        Run::new(accord, &a).timeout(Duration::from_secs(args.timeout))
    };

    progress(&format!("N = {n}: generating the workload"));
    let w = workload::generate(n, args.seed)?;
    let stats = w.stats();
    progress(&format!("N = {n}: {stats:?}"));
    let events = dir.join("events.jsonl");
    let file = fs::File::create(&events).map_err(io(&events))?;
    w.write_jsonl(BufWriter::new(file)).map_err(io(&events))?;

    // Import into an empty store.
    progress(&format!("N = {n}: import"));
    let events_arg = events.display().to_string();
    let import = accord_run(&["append", &events_arg, "--format", "json"]).measure_ok()?;
    let receipt: serde_json::Value = serde_json::from_slice(&import.stdout)
        .map_err(|e| format!("import: unexpected output ({e}): {}", lossy(&import.stdout)))?;
    if receipt["appended"].as_u64() != Some(n as u64) {
        return Err(format!(
            "import appended {} of {n} events",
            receipt["appended"]
        ));
    }
    // A transaction time between the import and the bench's own appends.
    let after_import = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let store_bytes = measure::size_on_disk(&store).map_err(io(&store))?;
    progress(&format!(
        "N = {n}: import {:.0} ms, peak RSS {:.1} MiB, store {store_bytes} bytes",
        import.millis(),
        import.rss_mib()
    ));

    // As-of queries, cold then warm.
    let d80 = date_str(LAST_DAY * 4 / 5);
    let last = date_str(LAST_DAY);
    let mut queries = Vec::new();
    let measure_query = |command: String, out: Option<&Path>| -> Result<Query, String> {
        progress(&format!("N = {n}: {command}"));
        let words: Vec<&str> = command.split(' ').collect();
        let mut q = accord_run(&words);
        if let Some(out) = out {
            q = q.stdout_to(out);
        }
        measure::evict(&store).map_err(|e| format!("evicting {}: {e}", store.display()))?;
        let cold = q.measure_ok()?;
        let (warm, rss) = q.measure_median(args.runs)?;
        let max_rss_kib = rss.max(cold.max_rss_kib);
        progress(&format!(
            "N = {n}: cold {:.1} ms, warm {warm:.1} ms, peak RSS {:.1} MiB",
            cold.millis(),
            max_rss_kib as f64 / 1024.0
        ));
        Ok(Query {
            command,
            cold_ms: cold.millis(),
            warm_ms: warm,
            max_rss_kib,
        })
    };
    for command in [
        format!("obligations --as-of {d80} --format json"),
        format!("obligations --as-of {last} --format json"),
        format!("ownership --as-of {d80}"),
        format!("ownership --as-of {last}"),
    ] {
        queries.push(measure_query(command, None)?);
    }

    // Single appends: a settlement after the last date, and one backdated
    // to the middle of the range, each on the obligation kept with headroom.
    let mut append_rss_kib = 0;
    let mut single = |kind: &str, day: u32| -> Result<f64, String> {
        progress(&format!("N = {n}: single appends, {kind}"));
        let mut times = Vec::new();
        for k in 1..=args.runs {
            let id = format!("bench-{kind}-{k}");
            let file = dir.join(format!("{id}.jsonl"));
            fs::write(&file, w.probe_settlement(&id, day) + "\n").map_err(io(&file))?;
            let o = accord_run(&["append", &file.display().to_string()]).measure_ok()?;
            append_rss_kib = append_rss_kib.max(o.max_rss_kib);
            times.push(o.millis());
        }
        progress(&format!("N = {n}: {kind} append {:.1} ms", median(&times)));
        Ok(median(&times))
    };
    let append_normal_ms = single("normal", LAST_DAY + 1)?;
    let append_backdated_ms = single("backdated", LAST_DAY / 2)?;

    // Three runs (one on a noisy machine can be half as slow again): the median time, the
    // largest peak RSS.
    progress(&format!("N = {n}: verify"));
    let (verify_ms, verify_rss_kib) = accord_run(&["verify"]).measure_median(VERIFY_RUNS)?;
    let verify_events = n + 2 * args.runs;
    progress(&format!(
        "N = {n}: verify {verify_ms:.0} ms (median of {VERIFY_RUNS}), peak RSS {:.1} MiB",
        verify_rss_kib as f64 / 1024.0
    ));

    // The bitemporal questions and the linear passes of issue 15, after the single appends:
    // as known at the import's end, those appends are the corrections not yet known.
    let head = n + 2 * args.runs;
    let what_if = dir.join("what-if.jsonl");
    fs::write(
        &what_if,
        w.probe_settlement("bench-what-if", LAST_DAY / 2) + "\n",
    )
    .map_err(io(&what_if))?;
    let exported = dir.join("export.bench");
    let mut bitemporal = Vec::new();
    for (label, command, to_file) in
        accord_bench::bitemporal_commands(n, head, &after_import, &what_if)
    {
        let out = to_file.then_some(exported.as_path());
        bitemporal.push((label, measure_query(command, out)?));
    }
    let _ = fs::remove_file(&exported);

    let ledger = match ledger {
        Some(bin) => {
            let timeout = Duration::from_secs(args.timeout);
            run_ledger(&w, &accord_run, (bin, ledger_args, timeout), n, dir)?
        }
        None => Ledger::Missing("ledger: not installed".into()),
    };

    let pg = match cluster {
        Some(cluster) => {
            let say = |m: &str| progress(&format!("N = {n}: {m}"));
            Some(accord_bench::postgres::bench(
                &accord_bench::postgres::Plan {
                    accord,
                    cluster,
                    embedded: &store,
                    dir,
                    workload: &w,
                    events: &events,
                    n,
                    runs: args.runs,
                    seconds: args.server_seconds.max(1),
                    timeout: Duration::from_secs(args.timeout),
                    writers: args.pg_writers.max(1),
                    writer_processes: args.pg_writer_processes.clamp(1, args.pg_writers.max(1)),
                    progress: &say,
                },
            )?)
        }
        None => None,
    };

    // The server last: its loads append to the store.
    let server = if args.server_seconds > 0 {
        let say = |m: &str| progress(&format!("N = {n}: {m}"));
        Some(accord_bench::serve::bench(&accord_bench::serve::Plan {
            accord,
            store: &store,
            dir,
            workload: &w,
            seconds: args.server_seconds,
            progress: &say,
        })?)
    } else {
        None
    };

    Ok(SizeResult {
        n,
        import_ms: import.millis(),
        import_rss_kib: import.max_rss_kib,
        store_bytes,
        queries,
        bitemporal,
        append_normal_ms,
        append_backdated_ms,
        append_rss_kib,
        verify_events,
        verify_ms,
        verify_rss_kib,
        ledger,
        server,
        pg,
    })
}

/// ledger-cli on the same workload: the journal of `accord export --format
/// ledger` (as known at seq N, so without the bench's own appends), or, if
/// ledger-cli refuses it, the journal written by the generator.
fn run_ledger(
    w: &Workload,
    accord_run: &dyn Fn(&[&str]) -> Run,
    (ledger, ledger_args, timeout): (&Path, &[&str], Duration),
    n: usize,
    dir: &Path,
) -> Result<Ledger, String> {
    progress(&format!(
        "N = {n}: accord export --format ledger (not measured)"
    ));
    let exported = dir.join("export.journal");
    let known_at = n.to_string();
    let last = date_str(LAST_DAY);
    accord_run(&[
        "export",
        "--format",
        "ledger",
        "--as-of",
        &last,
        "--known-at",
        &known_at,
    ])
    .stdout_to(&exported)
    .measure_ok()?;

    let mut refusals = Vec::new();
    for source in ["accord export", "generator"] {
        let journal = if source == "generator" {
            let path = dir.join("generated.journal");
            let file = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            w.write_ledger(BufWriter::new(file))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            path
        } else {
            exported.clone()
        };
        let journal_arg = journal.display().to_string();
        let mut a = vec!["-f", journal_arg.as_str()];
        a.extend_from_slice(ledger_args);
        progress(&format!("N = {n}: ledger on the journal of the {source}"));
        let o = Run::new(ledger, &a)
            .timeout(timeout)
            .stdout_to(&dir.join("ledger-bal.txt"))
            .measure()
            .map_err(|e| format!("ledger: {e}"))?;
        if o.success() {
            return Ok(Ledger::Measured {
                ms: o.millis(),
                max_rss_kib: o.max_rss_kib,
                journal: source.to_string(),
                transactions: count_transactions(&journal)?,
            });
        }
        let why = lossy(&o.stderr);
        progress(&format!(
            "ledger refused the journal of the {source}: {why}"
        ));
        refusals.push(format!("{source}: {}", why.lines().next().unwrap_or("")));
    }
    Ok(Ledger::Missing(format!(
        "ledger refused both journals ({})",
        refusals.join("; ")
    )))
}

/// An I/O error message naming the path.
fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Transactions in a journal: the lines that start with a date.
fn count_transactions(journal: &Path) -> Result<usize, String> {
    let text = fs::read_to_string(journal).map_err(|e| format!("{}: {e}", journal.display()))?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .count())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_string()
}
