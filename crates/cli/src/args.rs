//! The command line's definition: every command, flag and format, with the examples that
//! `--help` shows (clap derive), and the clap `Command` that is parsed, completed and
//! documented from it.

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{Args, ColorChoice, CommandFactory, Parser, Subcommand, ValueEnum};
use domain::values::Date;
use domain::KnownAt;

use crate::style;

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

// Every command's help ends with examples: lines indented two spaces under a
// line starting `Examples`, each one shell command line that works when
// pasted in a checkout of accord after `accord demo` (which writes
// ./accord.db). tests/help_examples.rs runs every one of them.

const EXAMPLES: &str = "\
Examples (from a checkout of accord; `accord demo` writes ./accord.db):
  accord demo                                  # load the Microsoft-OpenAI sample and show it
  accord append events/05-obligations.jsonl    # append a file as one atomic batch
  accord record obligation_settled --id azure-2026-01 --effective 2026-01-31 --obligation azure-commitment --amount '$2.5B' --reference 'invoice 2026-01'
  accord ownership --as-of 2025-10-28          # cap tables on a date
  accord obligations --as-of 2026-02-01 --known-at 42   # as known before that settlement
  accord verify                                # check the hash chain and every invariant

`accord COMMAND --help` shows the examples of each command; `accord man` prints
this help as a manual page, `accord completions bash|zsh|fish` a completion script.";

const APPEND_EXAMPLES: &str = "\
Examples:
  accord append events/05-obligations.jsonl             # one file, one atomic batch
  accord append --dry-run - < events/06-rights.jsonl     # validate standard input, write nothing
  accord append events/06-rights.jsonl --format json";

const IMPORT_EXAMPLES: &str = "\
Examples:
  accord import events/             # every *.jsonl file of events/, in file-name order
  accord import --dry-run events/   # validate them all, write nothing";

const RECORD_EXAMPLES: &str = "\
Flags: --id (generated when absent), --effective (default today), --source, --note,
--format table|json, then one flag per payload field. Amounts take human forms:
'$2.5B', '13.8B USD', 'USD 13.8B', '250000000000 USD'.

Examples:
  accord record obligation_settled --help    # the flags of one event type
  accord record obligation_settled --id azure-2026-01 --effective 2026-01-31 --obligation azure-commitment --amount '$2.5B' --reference 'invoice 2026-01'
  accord record investment_made --id msft-2026-02 --effective 2026-02-15 --investor microsoft --investee openai-group --amount '1B USD'
  accord record recapitalized --dry-run --id recap-2026-03 --effective 2026-03-01 --issuer openai-group --holding microsoft=27% --holding openai-foundation=26% --holding other-holders=47% --format json

With --id (and --effective), running the same command again records nothing new.";

const LOG_EXAMPLES: &str = "\
Examples:
  accord log
  accord log --since 20 --format json    # JSON Lines, with seq, recorded and hash
  accord log --format csv > log.csv";

const SHOW_EXAMPLES: &str = "\
Examples:
  accord show 2025-10-28-openai-group-recapitalization
  accord show 2025-10-28-openai-group-recapitalization --format json   # with reversed_by";

const OWNERSHIP_EXAMPLES: &str = "\
Examples:
  accord ownership --entity openai-group --as-of 2025-10-28
  accord ownership --as-of 2025-10-27 --format csv
  accord ownership --as-of 2025-10-28 --known-at 13 --format json    # as known before the recapitalization (seq 14) was recorded
  accord ownership --entity openai-group --as-of 2026-04-01 --with examples/what-if-round.jsonl   # pro forma: as if the file were appended (nothing is written)";

const OBLIGATIONS_EXAMPLES: &str = "\
Examples:
  accord obligations --as-of 2025-10-28 --party openai-group --all
  accord obligations --as-of 2026-02-01 --format json
  accord obligations --as-of 2026-02-01 --known-at 42 --format csv
  accord obligations --as-of 2026-04-01 --with examples/what-if-round.jsonl    # as if appended";

const RIGHTS_EXAMPLES: &str = "\
Examples:
  accord rights --as-of 2031-01-01 --all    # research-ip expired at the end of 2030
  accord rights --as-of 2026-05-01 --known-at 36    # as known before the April 2026 amendment (seqs 37-42) was recorded
  accord rights --party microsoft --format json
  accord rights --as-of 2026-04-01 --with examples/what-if-round.jsonl    # as if appended";

const POSITION_EXAMPLES: &str = "\
Examples:
  accord position microsoft --as-of 2025-10-28
  accord position openai-group --as-of 2026-02-01 --all --format json
  accord position sovereign-fund --as-of 2026-04-01 --with examples/what-if-round.jsonl";

const VERIFY_EXAMPLES: &str = "\
Examples:
  accord verify
  accord verify --expect-head \"$(accord head)\"    # also fail unless this prefix is intact";

const HEAD_EXAMPLES: &str = "\
Examples:
  accord head > head.txt    # write it down; later: accord verify --expect-head \"$(cat head.txt)\"
  accord head --format json";

const EXPORT_EXAMPLES: &str = "\
Examples:
  accord export --format jsonl > backup.jsonl    # re-appendable to an empty store
  accord export --format ledger --as-of 2025-12-31 > deals.journal
  accord export --format ledger --known-at 36 > as-known.journal

Cross-check with plain-text accounting: hledger -f deals.journal bal obligations";

const DEMO_EXAMPLES: &str = "\
Examples:
  accord demo                           # into ./accord.db, or --store, or $ACCORD_STORE
  accord --store demo.db demo --format json";

const COPY_EXAMPLES: &str = "\
Examples:
  test -e backup.db || accord copy accord.db backup.db    # every record, same seqs, hashes and head
  test -e second.db || accord copy accord.db second.db --format json    # a TO that holds events is refused

TO must be missing or an empty store; it is verified after the copy.";

const SERVE_EXAMPLES: &str = "\
Examples:
  accord serve                                     # ./accord.db as ledger main, on 127.0.0.1:8080
  accord serve --listen 127.0.0.1:0 --ledger deals=deals.db --ledger demo=accord.db
  accord serve --listen 0.0.0.0:8080 --tokens tokens.txt    # any address needs tokens

It prints `listening on http://HOST:PORT` once it accepts connections, then logs
each request on standard error. The web page is at /, the API under /v1
(GET /openapi.json describes it). SIGINT or SIGTERM stops it cleanly.";

const TOKEN_EXAMPLES: &str = "\
Examples:
  accord token new read                             # a token that may read every ledger
  accord token new write --ledgers deals --label 'deal desk'
  accord token new admin > admin.token && tail -n 1 admin.token >> tokens.txt    # line 1 of admin.token: the token

Line 1 is the token (give it to its user); line 2 is the line for the token
file, `ROLE LEDGERS SHA256 [LABEL]`, which holds only the token's SHA-256.";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  source <(accord completions bash)    # in ~/.bashrc
  mkdir -p ~/.zfunc && accord completions zsh > ~/.zfunc/_accord    # with fpath+=(~/.zfunc) in ~/.zshrc
  mkdir -p ~/.config/fish/completions && accord completions fish > ~/.config/fish/completions/accord.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  accord man > accord.1                  # read it with: man -l accord.1
  accord man export > accord-export.1    # the page of one command";

/// accord: an event-sourced, bitemporal ledger of corporate deals.
#[derive(Parser, Debug)]
#[command(name = "accord", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// The store: a directory, or a PostgreSQL URL (postgres://USER@HOST/DB?schema=NAME).
    /// Default: $ACCORD_STORE, else ./accord.db.
    // The environment is read by the command, not by clap: clap would show a value it took
    // from there in usage lines as if it were a required flag.
    #[arg(long, global = true, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// How long to wait for a store that another process holds, then exit 4 (0: fail at once).
    /// Default: $ACCORD_WAIT, else 5.
    #[arg(long, global = true, value_name = "SECONDS", allow_negative_numbers = true, value_parser = wait_seconds)]
    pub wait: Option<u64>,
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
    #[command(after_help = APPEND_EXAMPLES)]
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
    #[command(after_help = IMPORT_EXAMPLES)]
    Import {
        dir: PathBuf,
        /// Validate every file and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Build one event from flags and append it.
    #[command(after_help = RECORD_EXAMPLES, disable_help_flag = true)]
    Record {
        /// The event type, e.g. investment_made; `record TYPE --help` lists its flags.
        #[arg(value_name = "TYPE", allow_hyphen_values = true, value_parser = EventType)]
        type_name: String,
        /// --field value pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "FLAGS")]
        args: Vec<String>,
    },
    /// The stored events in seq order.
    #[command(after_help = LOG_EXAMPLES)]
    Log {
        /// Only events with a larger seq.
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// One recorded event: its fields, seq, recorded time, hash, and what reversed it.
    #[command(after_help = SHOW_EXAMPLES)]
    Show {
        /// The event's id.
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: ReadFormat,
    },
    /// Cap tables: units, percent and value of every holder.
    #[command(after_help = OWNERSHIP_EXAMPLES)]
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
    #[command(after_help = OBLIGATIONS_EXAMPLES)]
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
    #[command(after_help = RIGHTS_EXAMPLES)]
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
    #[command(after_help = POSITION_EXAMPLES)]
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
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify {
        /// Fail unless the log still holds this exact prefix (as printed by `accord head`).
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Print SEQ:HASH of the last event.
    #[command(after_help = HEAD_EXAMPLES)]
    Head {
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Write the events as JSON Lines (re-appendable) or as a ledger journal.
    #[command(after_help = EXPORT_EXAMPLES)]
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
        after_help = "Examples (after `accord demo`, whose seq 14 is the recapitalization and seqs 37-42 the April 2026 amendment):\n  accord diff --as-of 2025-10-28 --known-at 13    # before seq 14 was recorded vs everything: Microsoft 32.5 % -> 27 %\n  accord diff --as-of 2026-05-01 --known-at 36 --format json   # what the April 2026 amendment changed\n\nT is a seq, a date (end of that day, UTC) or an RFC 3339 timestamp."
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
    /// Copy every record of the store FROM into the empty store TO, keeping seqs, times and hashes.
    #[command(after_help = COPY_EXAMPLES)]
    Copy {
        /// The store to copy (a directory or a postgres:// URL; it must exist).
        from: PathBuf,
        /// The store to copy into (a directory or a postgres:// URL): missing (it is
        /// created) or empty.
        to: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Serve ledgers over HTTP for a team: the JSON API, the live log and the web page.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve {
        /// HOST:PORT to listen on; port 0 takes a free port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Serve STORE as the ledger NAME (repeatable). Default: the --store as `main`.
        #[arg(long = "ledger", value_name = "NAME=STORE")]
        ledgers: Vec<String>,
        /// The token file (see `accord token new`); without it, every request is allowed and
        /// only loopback addresses are served.
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
        /// The largest request body, in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
        max_body: usize,
        /// Let pages of this one origin call the API (CORS); none by default.
        #[arg(long, value_name = "ORIGIN")]
        cors: Option<String>,
    },
    /// Tokens for `accord serve --tokens FILE`.
    #[command(after_help = TOKEN_EXAMPLES)]
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Import the bundled Microsoft-OpenAI sample and show it around 2025-10-28.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo {
        #[arg(long, value_enum, default_value_t)]
        format: WriteFormat,
    },
    /// Print a shell completion script (bash, zsh or fish) on standard output.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the manual page (roff) of accord, or of one command, on standard output.
    #[command(after_help = MAN_EXAMPLES)]
    Man {
        /// A command, e.g. `export`; default: accord itself.
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

/// `accord token ...`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a new random token (line 1) and the line of the token file that grants it (line 2).
    #[command(after_help = TOKEN_EXAMPLES)]
    New {
        /// read (every GET), write (and appends, what-if) or admin (and verify).
        #[arg(value_enum)]
        role: TokenRole,
        /// The ledgers it may use, separated by commas (default: every ledger, `*`).
        #[arg(long, value_name = "NAMES", value_delimiter = ',')]
        ledgers: Option<Vec<String>>,
        /// Who or what the token is for, kept at the end of its line in the file.
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
    },
}

/// The roles of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenRole {
    Read,
    Write,
    Admin,
}

/// The shells that `accord completions` writes for (CLI.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s)
}

/// `--known-at`: a positive seq, a date (end of that day, UTC) or an RFC 3339 timestamp.
pub(crate) fn parse_known_at(s: &str) -> Result<KnownAt, String> {
    engine::parse_known_at(s)
}

/// The version that `--version` and the manual page show: the `accord`
/// package's, given by the binary (this crate is internal, `0.0.0`).
pub(crate) static VERSION: OnceLock<&'static str> = OnceLock::new();

/// The clap definition of the command line, as parsed, completed and
/// documented: with the binary's version, and colour only where allowed.
pub(crate) fn command() -> clap::Command {
    // clap colours help and usage errors on a terminal; NO_COLOR turns it off
    // whatever its value, as for accord's own output.
    let color = if style::allowed() {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    let cmd = Cli::command().color(color);
    match VERSION.get() {
        Some(v) => cmd.version(*v),
        None => cmd,
    }
}

impl From<WriteFormat> for present::Format {
    fn from(f: WriteFormat) -> present::Format {
        match f {
            WriteFormat::Table => present::Format::Table,
            WriteFormat::Json => present::Format::Json,
        }
    }
}

impl From<ReadFormat> for present::Format {
    fn from(f: ReadFormat) -> present::Format {
        match f {
            ReadFormat::Table => present::Format::Table,
            ReadFormat::Json => present::Format::Json,
            ReadFormat::Csv => present::Format::Csv,
        }
    }
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Append { .. } => "append",
            Command::Import { .. } => "import",
            Command::Record { .. } => "record",
            Command::Log { .. } => "log",
            Command::Show { .. } => "show",
            Command::Ownership { .. } => "ownership",
            Command::Obligations { .. } => "obligations",
            Command::Rights { .. } => "rights",
            Command::Position { .. } => "position",
            Command::Verify { .. } => "verify",
            Command::Head { .. } => "head",
            Command::Export { .. } => "export",
            Command::Timeline { .. } => "timeline",
            Command::Diff { .. } => "diff",
            Command::Copy { .. } => "copy",
            Command::Demo { .. } => "demo",
            Command::Serve { .. } => "serve",
            Command::Token { .. } => "token",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
        }
    }
}

/// The event types, offered by shell completion after `record`; any text is taken, so that
/// `record` itself refuses an unknown type with its own words (and a "did you mean").
#[derive(Clone)]
struct EventType;

impl clap::builder::TypedValueParser for EventType {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        Ok(value.to_string_lossy().into_owned())
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            domain::EVENT_TYPES
                .iter()
                .map(|t| clap::builder::PossibleValue::new(*t)),
        ))
    }
}

/// `--wait`: a whole number of seconds, 0 or more.
fn wait_seconds(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of seconds (0 fails at once)"))
}
