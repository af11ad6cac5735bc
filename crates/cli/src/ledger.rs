//! Opening the engine on the store a command names, with the tuning that tests set through
//! the environment, and today's date: what the engine is told instead of reading them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use domain::values::Date;
use engine::{Access, Config, Engine, EventFile, FileReceipt, Options, Parsed};

use crate::failure::Failure;
use crate::progress::Progress;

/// The store a command uses: `--store`, else `$ACCORD_STORE` (clap reads both), else
/// `./accord.db`.
pub(crate) fn store_path(cli_store: Option<PathBuf>) -> PathBuf {
    cli_store
        .or_else(|| {
            std::env::var_os("ACCORD_STORE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("accord.db"))
}

/// `--wait` when not given: `$ACCORD_WAIT`, else 5 seconds.
pub(crate) fn env_wait() -> Result<u64, Failure> {
    match std::env::var("ACCORD_WAIT") {
        Ok(v) if !v.is_empty() => v.trim().parse().map_err(|_| {
            Failure::Usage(format!(
                "invalid $ACCORD_WAIT {v:?}: use a whole number of seconds"
            ))
        }),
        _ => Ok(5),
    }
}

/// Today, UTC: the default `--as-of`.
pub(crate) fn today() -> Date {
    Date(Utc::now().date_naive())
}

/// The engine's configuration: the system clock, `--wait`, and the checkpoint interval
/// (`ACCORD_CHECKPOINT_EVERY`), correction limit (`ACCORD_MAX_CORRECTIONS`) and full-path
/// appends (`ACCORD_FULL_APPEND=1`) and full-replay queries (`ACCORD_FULL_REPLAY=1`) that
/// tests use to reach checkpoints on small logs and to compare the two paths of each.
pub(crate) fn config() -> Config {
    let mut config = Config::new(Utc::now);
    if let Some((wait, holder)) = OPENING.get() {
        config.wait = *wait;
        config.holder = Some(holder.clone());
    }
    if let Some(n) = env_number("ACCORD_CHECKPOINT_EVERY").filter(|n| *n > 0) {
        config.checkpoint_every = n;
    }
    if let Some(n) = env_number("ACCORD_MAX_CORRECTIONS") {
        config.max_corrections = n;
    }
    config.full_append = std::env::var_os("ACCORD_FULL_APPEND").is_some_and(|v| v != "0");
    config.full_replay = std::env::var_os("ACCORD_FULL_REPLAY").is_some_and(|v| v != "0");
    config
}

/// `--wait` and what this process says of itself to whoever waits for a store it holds.
static OPENING: OnceLock<(Duration, String)> = OnceLock::new();

/// Set once, before any store is opened.
pub(crate) fn set_opening(wait_seconds: u64, command: &str) {
    let _ = OPENING.set((
        Duration::from_secs(wait_seconds),
        format!("accord {command}"),
    ));
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Opens an existing store for reading; a missing one is exit 4 with a hint.
pub(crate) fn open_for_read(path: &Path) -> Result<Engine, Failure> {
    Engine::open(path, Access::Read, config()).map_err(|e| read_failure(path, e))
}

/// The failure of opening `path` for reading.
pub(crate) fn read_failure(path: &Path, e: engine::Error) -> Failure {
    match e {
        engine::Error::Unavailable {
            reason: engine::Unavailable::Missing,
            ..
        } => Failure::Unavailable(format!(
            "no store at {} (create one with `accord append FILE` or `accord demo`, or pass --store)",
            engine::shown_location(path)
        )),
        other => other.into(),
    }
}

/// Validates every file against the log as it grows, then appends each file as one atomic
/// batch. Nothing is written unless every file is valid; a dry run writes nothing and never
/// creates a store (a missing one counts as empty).
pub(crate) fn append_files(
    path: &Path,
    files: Vec<EventFile>,
    dry_run: bool,
) -> Result<Vec<FileReceipt>, Failure> {
    // Shown on a terminal only, once the command has run for a second.
    let progress = Progress::for_append(dry_run);
    // Parsed before the store is opened: a bad file creates nothing, and is refused (exit 1)
    // even when the store is locked.
    let parsed = Parsed::files_with(files, Some(&progress))?;
    append_parsed(path, parsed, dry_run, &progress)
}

/// An append (or a copy) of at least this many events reopens the store once before the
/// command ends (`engine::settle`), so that the next command opens it as fast as usual.
const SETTLE_AFTER: u64 = 100_000;

/// Settles the store at `path` after a write of `events` events, when that many call for it.
pub(crate) fn settle_after(path: &Path, events: u64) {
    if events >= SETTLE_AFTER {
        engine::settle(path);
    }
}

/// `append_files` for files already parsed.
pub(crate) fn append_parsed(
    path: &Path,
    parsed: Parsed,
    dry_run: bool,
    progress: &Progress,
) -> Result<Vec<FileReceipt>, Failure> {
    let options = Options {
        dry_run,
        expect_head: None,
        progress: Some(progress),
    };
    let receipts = if dry_run && !may_exist(path) {
        engine::dry_run_on_empty(parsed, &config(), &options)?
    } else if dry_run {
        match Engine::open(path, Access::Read, config()) {
            Ok(ledger) => ledger.append(parsed, &options)?,
            // A database ledger whose schema is not there yet is empty.
            Err(engine::Error::Unavailable {
                reason: engine::Unavailable::Missing,
                ..
            }) => engine::dry_run_on_empty(parsed, &config(), &options)?,
            Err(e) => return Err(read_failure(path, e)),
        }
    } else {
        let existed = path.exists();
        if !existed {
            progress.created(path.to_path_buf());
        }
        let appended =
            Engine::open(path, Access::Write, config()).and_then(|e| e.append(parsed, &options));
        // A refusal comes before any write: a store this command created for it holds
        // nothing, and goes again, so that nothing refused leaves anything behind.
        if let (Err(engine::Error::Refused(_)), false) = (&appended, existed) {
            remove_created(path);
        }
        let receipts = appended?;
        let count: u64 = receipts.iter().map(|r| r.receipt.appended).sum();
        settle_after(path, count);
        receipts
    };
    Ok(receipts)
}

/// Removes a store that this command created and that holds no event (a directory; a
/// database ledger's schema is made only by a write that commits).
pub(crate) fn remove_created(path: &Path) {
    if !is_database(path) {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// Is the store a database ledger (`postgres://...`) rather than a directory?
pub(crate) fn is_database(path: &Path) -> bool {
    path.to_str().is_some_and(engine::is_database_url)
}

/// Whether a store may be there: a directory that exists, or any database ledger (only its
/// server knows).
pub(crate) fn may_exist(path: &Path) -> bool {
    path.exists() || is_database(path)
}
