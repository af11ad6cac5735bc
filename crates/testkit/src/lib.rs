//! What accord's integration tests share, so that each test file keeps only
//! what is its own.
//!
//! - Running the binary: [`accord`] (a command on one store, to finish and
//!   run), [`command`] (no store), [`bin`] (its path); [`run`] (any exit),
//!   [`checked`] (must exit 0), [`ok`] and [`ok_stdin`] (its stdout), and
//!   [`output`] (the raw [`std::process::Output`]).
//! - Files and stores: [`root`], [`events_dir`] (the sample log),
//!   [`temp_store`], [`import_sample`], [`sample_store`], [`copy_dir`].
//! - Both backends: [`store_at`], [`copy_store`], [`remove_store`] make, copy and remove
//!   a store of the backend the test runs on; [`both_backends!`] runs each test of a
//!   block on the embedded store and again, under [`on_postgres`], on PostgreSQL.
//! - [`text`]: bytes of an output as text, for messages.
//! - [`Rng`]: a tiny deterministic generator, for generated logs and random
//!   moments that a failure can reproduce.
//! - [`vocab`]: the small event vocabulary of the property tests
//!   (`crates/domain/tests/no_panic.rs`, `tests/model.rs`).
//!
//! The binary is the root package's `accord`, found at run time by
//! [`assert_cmd::cargo::cargo_bin`]: cargo builds it for the root package's
//! integration tests, so the running helpers work there and not in the tests
//! of other packages (which use [`vocab`] and [`Rng`] only).
//!
//! Every helper fails the test (panics, saying what ran) rather than return
//! an error.

use std::path::{Path, PathBuf};

pub use assert_cmd::Command;
use tempfile::TempDir;

mod backend;
pub mod http;
pub mod pg;
mod rng;
pub mod vocab;

pub use backend::{copy_store, on_postgres, remove_store, store_at, Backend};
pub use rng::Rng;

// ------------------------------------------------------------ running the binary

/// The path of the built `accord` binary.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("accord")
}

/// `accord` with no store: `ACCORD_STORE` removed from its environment (and `ACCORD_WAIT=0`),
/// no `--store`. For `--help`, `demo` in a directory, and the like.
pub fn command() -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_remove("ACCORD_STORE");
    // As installed: `accord` on the PATH is this binary (what `demo`'s hint checks).
    cmd.env("PATH", path_with_bin());
    // Tests that hold a store see the refusal at once; a test of `--wait` passes its own.
    cmd.env("ACCORD_WAIT", "0");
    cmd
}

/// `$PATH` with the directory of the built binary first.
pub fn path_with_bin() -> String {
    let bin = bin();
    let dir = bin
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{dir}:{p}"),
        _ => dir,
    }
}

/// `accord --store STORE`, with `ACCORD_STORE` removed; add the arguments,
/// stdin and environment, then run it.
pub fn accord(store: &Path) -> Command {
    let mut cmd = command();
    cmd.arg("--store").arg(store);
    cmd
}

/// What a finished run left: the exit code (-1 when a signal ended it) and
/// the two outputs as UTF-8 text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to the end, whatever its exit code.
pub fn run(cmd: &mut Command) -> Run {
    let o = cmd.output().expect("accord runs");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `cmd` and fails the test, naming `args` and showing standard error,
/// unless it exits 0.
pub fn checked(cmd: &mut Command, args: &[&str]) -> Run {
    let o = cmd.output().expect("accord runs");
    assert!(
        o.status.success(),
        "accord {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Run {
        code: 0,
        stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
    }
}

/// `accord --store STORE ARGS`, which must exit 0: its standard output.
pub fn ok(store: &Path, args: &[&str]) -> String {
    checked(accord(store).args(args), args).stdout
}

/// [`ok`] answered by a replay of the whole log (`ACCORD_FULL_REPLAY=1`), never from the
/// query keys: what answers from the keys are compared with.
pub fn replayed(store: &Path, args: &[&str]) -> String {
    let mut cmd = accord(store);
    cmd.env("ACCORD_FULL_REPLAY", "1")
        .env("NO_COLOR", "1")
        .args(args);
    checked(&mut cmd, args).stdout
}

/// [`ok`] with `stdin` as standard input (for `append -`).
pub fn ok_stdin(store: &Path, args: &[&str], stdin: &str) -> String {
    checked(
        accord(store).args(args).write_stdin(stdin.to_string()),
        args,
    )
    .stdout
}

/// `accord --store STORE ARGS` as it ended, exit code and bytes unchecked.
pub fn output(store: &Path, args: &[&str]) -> std::process::Output {
    accord(store).args(args).output().expect("accord runs")
}

/// Output bytes as text, invalid UTF-8 replaced: for failure messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ------------------------------------------------------------ files and stores

/// The workspace root, where `events/`, `examples/` and `tests/` are.
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .expect("crates/testkit is two levels below the root")
        .to_path_buf()
}

/// The sample log: `events/*.jsonl`, imported in file-name order.
pub fn events_dir() -> PathBuf {
    root().join("events")
}

/// A fresh temporary directory and the path `store` in it, not yet created.
/// Keep the directory alive as long as the store is used.
/// Under [`on_postgres`], the store is a new schema of the shared test cluster instead.
pub fn temp_store() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_at(dir.path(), "store");
    (dir, store)
}

/// Imports the sample log into `store` (created if missing).
pub fn import_sample(store: &Path) {
    let o = accord(store)
        .arg("import")
        .arg(events_dir())
        .output()
        .expect("accord runs");
    assert!(o.status.success(), "import: {o:?}");
}

/// The store `DIR/store` (see [`store_at`]) holding the imported sample log.
pub fn sample_store(dir: &Path) -> PathBuf {
    let store = store_at(dir, "store");
    import_sample(&store);
    store
}

/// Copies the directory `from`, and everything below it, to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
