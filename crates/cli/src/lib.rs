//! The command line: argv, formats and exit codes. The only crate that talks
//! to a person; everything it knows about events, storage and reports it asks
//! of `domain`, `store` and `projector`.
//!
//! Exit codes (CLI.md): 0 success, 1 input refused (nothing written),
//! 2 usage error, 3 integrity check failed, 4 store unavailable.

mod commands;
mod diff;
mod human;
mod record;
mod render;
mod timeline;
mod whatif;

use std::io::{self, Write};
use std::path::PathBuf;

use chrono::{DateTime, NaiveTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::values::Date;
use domain::KnownAt;

pub use commands::Failure;

/// Format of commands that write or check (`append`, `import`, `record`, `verify`, `head`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum WriteFormat {
    #[default]
    Table,
    Json,
}

/// Format of read commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ReadFormat {
    #[default]
    Table,
    Json,
    Csv,
}

/// Format of `timeline`: the read formats, and an SVG chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum TimelineFormat {
    #[default]
    Table,
    Json,
    Csv,
    Svg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Ledger,
}

const EXAMPLES: &str = "\
Examples:
  accord demo                                   load the Microsoft-OpenAI sample and show it
  accord append events.jsonl                    append a file as one atomic batch
  accord record obligation_settled --obligation azure-commitment --amount '$2B' --effective 2026-01-31
  accord ownership --as-of 2025-10-28           cap tables on a date
  accord obligations --as-of 2026-01-01 --known-at 2025-12-31
  accord verify                                 check the hash chain and every invariant";

/// accord: an event-sourced, bitemporal ledger of corporate deals.
#[derive(Parser, Debug)]
#[command(name = "accord", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// The store (a sled directory). Default: $ACCORD_STORE, else ./accord.db.
    #[arg(long, global = true, env = "ACCORD_STORE", value_name = "PATH")]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Valid time and transaction time of a question.
#[derive(Args, Debug, Clone, Copy)]
pub struct TimeArgs {
    /// Valid time: events effective on or before DATE count (default: today, UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<Date>,
    /// Transaction time: an RFC 3339 timestamp, a date (end of that day, UTC) or a seq.
    #[arg(long, value_name = "T", value_parser = parse_known_at)]
    pub known_at: Option<KnownAt>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Append one event file (JSON Lines, `-` for stdin) as one atomic batch.
    #[command(
        after_help = "Example:\n  accord append events/01-parties.jsonl\n  cat new.jsonl | accord append - --dry-run"
    )]
    Append {
        /// The file, or `-` for standard input.
        file: String,
        /// Validate against the store and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Append every *.jsonl file of DIR in file-name order, each file one batch.
    #[command(after_help = "Example:\n  accord import events/")]
    Import {
        dir: PathBuf,
        /// Validate every file and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Build one event from flags and append it.
    #[command(
        after_help = "Flags: --id (generated when absent), --effective (default today), --source, --note,\n--format table|json, then one flag per payload field, e.g.\n  accord record investment_made --investor microsoft --investee openai-group --amount '13.8B USD'\n  accord record recapitalized --issuer openai-group --holding microsoft=27% --holding openai-foundation=26% --holding other-holders=47%\n`accord record TYPE --help` lists the flags of TYPE."
    )]
    Record {
        /// The event type, e.g. investment_made.
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// --field value pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "FLAGS")]
        args: Vec<String>,
    },
    /// The stored events in seq order.
    #[command(after_help = "Example:\n  accord log --since 10 --format json")]
    Log {
        /// Only events with a larger seq.
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// Cap tables: units, percent and value of every holder.
    #[command(
        after_help = "Examples:\n  accord ownership --entity openai-group --as-of 2025-10-28\n  accord ownership --entity openai-group --as-of 2026-04-01 --with tests/scenarios/data/what-if/round.jsonl\n    (a pro-forma cap table after a proposed round; the file is in the repository)"
    )]
    Ownership {
        /// Only this entity.
        #[arg(long, value_name = "ID")]
        entity: Option<String>,
        #[command(flatten)]
        time: TimeArgs,
        /// What-if: answer as if the events of FILE (`-`: stdin) were appended;
        /// validated like an append, nothing is written. Not with --known-at.
        #[arg(long, value_name = "FILE", conflicts_with = "known_at")]
        with: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// Obligations: amount, settled, outstanding, status; totals per obligor.
    #[command(
        after_help = "Examples:\n  accord obligations --as-of 2025-10-28 --party openai-group --all\n  accord obligations --as-of 2026-04-01 --with tests/scenarios/data/what-if/round.jsonl   as if appended"
    )]
    Obligations {
        /// Only obligations where this party is obligor or obligee.
        #[arg(long, value_name = "ID")]
        party: Option<String>,
        /// Include settled and released obligations.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        time: TimeArgs,
        /// What-if: answer as if the events of FILE (`-`: stdin) were appended;
        /// validated like an append, nothing is written. Not with --known-at.
        #[arg(long, value_name = "FILE", conflicts_with = "known_at")]
        with: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// Rights in force, and the milestones they wait for.
    #[command(
        after_help = "Examples:\n  accord rights --as-of 2031-01-01 --all\n  accord rights --as-of 2026-04-01 --with tests/scenarios/data/what-if/round.jsonl   as if appended"
    )]
    Rights {
        /// Only rights this party holds or granted.
        #[arg(long, value_name = "ID")]
        party: Option<String>,
        /// Include rights no longer in force.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        time: TimeArgs,
        /// What-if: answer as if the events of FILE (`-`: stdin) were appended;
        /// validated like an append, nothing is written. Not with --known-at.
        #[arg(long, value_name = "FILE", conflicts_with = "known_at")]
        with: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// Everything about one party: holdings, investments, obligations, rights.
    #[command(
        after_help = "Examples:\n  accord position microsoft --as-of 2025-10-28\n  accord position sovereign-fund --as-of 2026-04-01 --with tests/scenarios/data/what-if/round.jsonl"
    )]
    Position {
        party: String,
        /// Include settled and released obligations and ended rights.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        time: TimeArgs,
        /// What-if: answer as if the events of FILE (`-`: stdin) were appended;
        /// validated like an append, nothing is written. Not with --known-at.
        #[arg(long, value_name = "FILE", conflicts_with = "known_at")]
        with: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// Re-read the whole log: seq continuity, hash chain, decoding, invariants.
    #[command(after_help = "Example:\n  accord verify --expect-head \"$(accord head)\"")]
    Verify {
        /// Fail unless the log still holds this exact prefix (as printed by `accord head`).
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Print SEQ:HASH of the last event.
    #[command(after_help = "Example:\n  accord head > head.txt")]
    Head {
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Write the events as JSON Lines (re-appendable) or as a ledger journal.
    #[command(
        after_help = "Example:\n  accord export --format jsonl > backup.jsonl\n  accord export --format ledger --as-of 2025-12-31 > deals.journal"
    )]
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[command(flatten)]
        time: TimeArgs,
    },
    /// Each holder's percent of an entity at every date it changed; `svg` draws a chart.
    #[command(
        after_help = "Examples:\n  accord timeline --entity openai-group\n  accord timeline --entity openai-group --format svg > ownership.svg\n\n--as-of (default today) is the last date shown; --known-at as elsewhere.\nsvg draws one entity: pass --entity when several have holdings."
    )]
    Timeline {
        /// Only this entity (required for svg when several entities have holdings).
        #[arg(long, value_name = "ID")]
        entity: Option<String>,
        #[command(flatten)]
        time: TimeArgs,
        #[arg(long, value_enum, default_value_t)]
        format: TimelineFormat,
    },
    /// What changed on a date between two transaction times, and which events did it.
    #[command(
        after_help = "Examples:\n  accord diff --as-of 2026-02-01 --known-at 23 --vs-known-at 24\n  accord diff --as-of 2025-10-28 --known-at 2025-10-27 --format json   (vs everything recorded)\n\nT is a seq, a date (end of that day, UTC) or an RFC 3339 timestamp."
    )]
    Diff {
        /// Valid time: the date compared (default: today, UTC).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        as_of: Option<Date>,
        /// The earlier view: what was known at T1.
        #[arg(long, value_name = "T1")]
        known_at: String,
        /// The later view: what was known at T2 (default: everything recorded).
        #[arg(long, value_name = "T2")]
        vs_known_at: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// Import the bundled Microsoft-OpenAI sample and show it around 2025-10-28.
    #[command(after_help = "Example:\n  accord --store /tmp/demo.db demo")]
    Demo {
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
}

fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s)
}

/// `--known-at`: a positive seq, a date (end of that day, UTC) or an RFC 3339 timestamp.
pub(crate) fn parse_known_at(s: &str) -> Result<KnownAt, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(0) | Err(_) => Err(format!("invalid seq {s:?}: use a positive integer")),
            Ok(n) => Ok(KnownAt::Seq(n)),
        };
    }
    if s.len() == 10 {
        let d = Date::parse(s)?;
        let end = d
            .naive()
            .and_time(NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or_default())
            .and_utc();
        return Ok(KnownAt::Time(end));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| KnownAt::Time(t.with_timezone(&Utc)))
        .map_err(|_| {
            format!("invalid time {s:?}: use an RFC 3339 timestamp, a date YYYY-MM-DD or a seq")
        })
}

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = commands::execute(cli, &mut out);
    let _ = out.flush();
    match result {
        Ok(()) | Err(Failure::BrokenPipe) => 0,
        Err(failure) => {
            let _ = writeln!(io::stderr(), "error: {}", failure.message());
            failure.exit_code()
        }
    }
}
