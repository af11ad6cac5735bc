//! Crash safety: `accord append` and `accord import` are killed with SIGKILL at random moments
//! (before, during and after sled writes the batch), over and over on the same store. After
//! every kill the store must verify and hold either exactly what it held before or that plus
//! whole batches: never part of a batch, never a batch out of order.
//!
//! The kill moments come from a xorshift generator seeded with the iteration number, so a
//! failure reproduces (up to the machine's timing). The sleep range is calibrated by timing one
//! unkilled append first, so the test exercises the write window in debug and release builds
//! alike; it prints how the kills fell.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use testkit::{output, temp_store, text, Rng};

/// Events per `append` batch: large enough that sled spends a long, easily hit window writing
/// it, small enough that 20+ kills with a verify after each stay well under a minute in debug.
const APPEND_BATCH: usize = 6_000;
const APPEND_KILLS: u64 = 24;
/// `import` runs: files per directory and events per file.
const IMPORT_FILES: usize = 4;
const IMPORT_FILE_EVENTS: usize = 2_000;
const IMPORT_KILLS: u64 = 8;

fn parties_file(dir: &Path) -> PathBuf {
    let mut lines = vec![
        r#"{"id": "party-iss", "type": "party_registered", "effective": "2020-01-01", "party": "iss", "name": "Issuer Inc", "kind": "corporation"}"#.to_string(),
    ];
    for h in 0..8 {
        lines.push(format!(
            r#"{{"id": "party-h{h}", "type": "party_registered", "effective": "2020-01-01", "party": "h{h}", "name": "Holder {h}", "kind": "fund"}}"#
        ));
    }
    let path = dir.join("parties.jsonl");
    fs::write(&path, lines.join("\n") + "\n").expect("write parties");
    path
}

/// `n` valid events with ids prefixed by `tag`: shares issued to eight holders, and loans that
/// are incurred and partly settled. Returns the lines and the ids in order.
fn batch_lines(tag: &str, n: usize) -> (String, Vec<String>) {
    let mut out = String::with_capacity(n * 170);
    let mut ids = Vec::with_capacity(n);
    let mut i = 0usize;
    while ids.len() < n {
        let h = i % 8;
        if i % 3 == 2 && ids.len() + 2 <= n {
            let ob = format!("{tag}-o{i}");
            out.push_str(&format!(
                r#"{{"id": "{ob}", "type": "obligation_incurred", "effective": "2021-01-01", "obligation": "{ob}", "kind": "loan", "obligor": "iss", "obligee": "h{h}", "amount": {{"amount": "1000.50", "currency": "USD"}}}}"#
            ));
            out.push('\n');
            ids.push(ob.clone());
            let st = format!("{tag}-s{i}");
            out.push_str(&format!(
                r#"{{"id": "{st}", "type": "obligation_settled", "effective": "2021-02-01", "obligation": "{ob}", "amount": {{"amount": "400", "currency": "USD"}}}}"#
            ));
            out.push('\n');
            ids.push(st);
        } else {
            let id = format!("{tag}-i{i}");
            out.push_str(&format!(
                r#"{{"id": "{id}", "type": "shares_issued", "effective": "2021-01-01", "issuer": "iss", "holder": "h{h}", "units": "{}"}}"#,
                100 + i
            ));
            out.push('\n');
            ids.push(id);
        }
        i += 1;
    }
    (out, ids)
}

/// The ids of the events with seq > `after`, in seq order.
fn ids_since(store: &Path, after: u64) -> Vec<String> {
    let out = output(
        store,
        &["log", "--format", "json", "--since", &after.to_string()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "log failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("log line is JSON");
            v["id"].as_str().expect("log line has an id").to_string()
        })
        .collect()
}

/// `accord verify` exits 0; returns the event count it reports.
fn verify_ok(store: &Path, context: &str) -> u64 {
    let out = output(store, &["verify", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: verify failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(text(&out.stdout).trim()).expect("verify prints JSON");
    v["events"].as_u64().expect("verify reports events")
}

/// The two ranges kill moments are drawn from: `spread` runs from 0 to a bit more than a normal
/// run (so some kills come after the exit), `window` is the stretch after validation, when the
/// store is writing, which gets extra kills because it is where a crash can do harm.
fn spreads(validated: Duration, normal: Duration) -> (Duration, (Duration, Duration)) {
    let spread = normal * 5 / 4 + Duration::from_millis(20);
    let start = validated * 9 / 10;
    let end = normal.max(start + Duration::from_millis(20));
    (spread, (start, end))
}

/// Even seeds draw from the whole spread, odd seeds from the write window.
fn kill_delay(seed: u64, spread: Duration, (start, end): (Duration, Duration)) -> Duration {
    let mut rng = Rng::new(seed);
    let ms = |d: Duration| d.as_millis() as u64;
    if seed & 1 == 0 {
        Duration::from_millis(rng.below(ms(spread)))
    } else {
        Duration::from_millis(ms(start) + rng.below(ms(end) - ms(start)))
    }
}

fn db_size(store: &Path) -> u64 {
    fs::metadata(store.join("db")).map_or(0, |m| m.len())
}

/// How a kill fell relative to the child's work.
#[derive(Default, Debug)]
struct Tally {
    /// Killed before the calibrated end of validation (reading, parsing, validating).
    before_write: u32,
    /// Killed after the calibrated end of validation but before the process exited: while
    /// the store was encoding, writing or flushing the batch.
    mid_write: u32,
    /// Of those, kills after sled's `db` file had already grown: part of the batch was on disk
    /// and recovery had to discard it (or find it whole).
    torn_on_disk: u32,
    /// The process had already exited when the kill came.
    after_exit: u32,
    /// Kills after which the batch had landed as a whole.
    landed: u32,
}

/// Starts `args` against `store`, sleeps `delay`, SIGKILLs it and classifies the moment
/// (`validated`: how long the run takes before it starts writing, from a dry run).
fn run_and_kill(
    store: &Path,
    args: &[&str],
    delay: Duration,
    validated: Duration,
    tally: &mut Tally,
) {
    let size_before = db_size(store);
    let mut child = Command::new(testkit::bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("accord starts");
    thread::sleep(delay);
    let exited = child.try_wait().expect("try_wait").is_some();
    let grown = db_size(store) != size_before;
    // Killing an exited (unreaped) child is harmless; wait reaps it either way.
    let _ = child.kill();
    let status = child.wait().expect("wait");
    if exited {
        tally.after_exit += 1;
        assert_eq!(status.code(), Some(0), "an unkilled run must succeed");
    } else if grown {
        tally.mid_write += 1;
        tally.torn_on_disk += 1;
    } else if delay >= validated {
        tally.mid_write += 1;
    } else {
        tally.before_write += 1;
    }
}

#[test]
fn killed_appends_leave_the_whole_batch_or_nothing() {
    let (dir, store) = temp_store();
    let parties = parties_file(dir.path());
    let setup = output(&store, &["append", parties.to_str().expect("utf-8 path")]);
    assert_eq!(setup.status.code(), Some(0), "{}", text(&setup.stderr));

    // Calibrate on a scratch store: how long does an unkilled append of one batch take?
    let scratch = dir.path().join("scratch");
    assert_eq!(
        output(&scratch, &["append", parties.to_str().expect("utf-8 path")])
            .status
            .code(),
        Some(0)
    );
    let (lines, _) = batch_lines("calibrate", APPEND_BATCH);
    let calibrate = dir.path().join("calibrate.jsonl");
    fs::write(&calibrate, lines).expect("write batch");
    let started = Instant::now();
    let out = output(
        &scratch,
        &[
            "append",
            "--dry-run",
            calibrate.to_str().expect("utf-8 path"),
        ],
    );
    let validated = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let started = Instant::now();
    let out = output(
        &scratch,
        &["append", calibrate.to_str().expect("utf-8 path")],
    );
    let normal = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (spread, window) = spreads(validated, normal);

    let mut prior = 9u64;
    let mut tally = Tally::default();
    let mut generation = 0u64;
    let mut batch: Option<(PathBuf, Vec<String>)> = None;
    let test_started = Instant::now();
    for iteration in 0..APPEND_KILLS {
        let (file, ids) = batch.get_or_insert_with(|| {
            generation += 1;
            let tag = format!("g{generation}");
            let (lines, ids) = batch_lines(&tag, APPEND_BATCH);
            let file = dir.path().join(format!("{tag}.jsonl"));
            fs::write(&file, lines).expect("write batch");
            (file, ids)
        });
        let delay = kill_delay(iteration + 1, spread, window);
        run_and_kill(
            &store,
            &["append", file.to_str().expect("utf-8 path")],
            delay,
            validated,
            &mut tally,
        );

        let context = format!("iteration {iteration} (killed after {delay:?})");
        let count = verify_ok(&store, &context);
        let new = ids_since(&store, prior);
        if new.is_empty() {
            assert_eq!(count, prior, "{context}: verify count");
        } else {
            assert_eq!(
                new.len(),
                ids.len(),
                "{context}: a partial batch is visible ({} of {} events)",
                new.len(),
                ids.len()
            );
            assert_eq!(new.first(), ids.first(), "{context}: first id");
            assert_eq!(new.last(), ids.last(), "{context}: last id");
            assert_eq!(new, *ids, "{context}: the batch landed in another order");
            assert_eq!(count, prior + ids.len() as u64, "{context}: verify count");
            prior = count;
            tally.landed += 1;
            batch = None;
        }
    }
    println!(
        "append: {APPEND_KILLS} kills of {APPEND_BATCH}-event batches (a normal append took \
         {normal:?}, {validated:?} of it validating): {} before writing, {} mid-write ({} with \
         part of the batch already in sled's file), {} after exit; {} batches landed; final \
         log {prior} events; {:?}",
        tally.before_write,
        tally.mid_write,
        tally.torn_on_disk,
        tally.after_exit,
        tally.landed,
        test_started.elapsed()
    );
    assert!(
        tally.mid_write + tally.before_write > 0,
        "no kill hit a running append; the calibration is off"
    );
}

#[test]
fn killed_imports_leave_whole_files_in_order() {
    let (dir, store) = temp_store();
    let parties = parties_file(dir.path());
    let setup = output(&store, &["append", parties.to_str().expect("utf-8 path")]);
    assert_eq!(setup.status.code(), Some(0), "{}", text(&setup.stderr));

    let write_dir = |tag: &str| -> (PathBuf, Vec<Vec<String>>) {
        let sub = dir.path().join(tag);
        fs::create_dir_all(&sub).expect("mkdir");
        let mut files = Vec::new();
        for f in 0..IMPORT_FILES {
            let (lines, ids) = batch_lines(&format!("{tag}f{f}"), IMPORT_FILE_EVENTS);
            fs::write(sub.join(format!("{f:02}-part.jsonl")), lines).expect("write file");
            files.push(ids);
        }
        (sub, files)
    };

    // Calibrate with one unkilled import into a scratch store.
    let scratch = dir.path().join("scratch");
    assert_eq!(
        output(&scratch, &["append", parties.to_str().expect("utf-8 path")])
            .status
            .code(),
        Some(0)
    );
    let (calibrate, _) = write_dir("calibrate");
    let calibrate = calibrate.to_str().expect("utf-8 path");
    let started = Instant::now();
    let out = output(&scratch, &["import", "--dry-run", calibrate]);
    let validated = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let started = Instant::now();
    let out = output(&scratch, &["import", calibrate]);
    let normal = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (spread, window) = spreads(validated, normal);

    let mut prior = 9u64;
    let mut tally = Tally::default();
    let mut files_landed = 0usize;
    let mut partial_imports = 0u32;
    for iteration in 0..IMPORT_KILLS {
        let tag = format!("imp{iteration}");
        let (sub, files) = write_dir(&tag);
        let delay = kill_delay(1000 + iteration, spread, window);
        run_and_kill(
            &store,
            &["import", sub.to_str().expect("utf-8 path")],
            delay,
            validated,
            &mut tally,
        );

        let context = format!("import {iteration} (killed after {delay:?})");
        let count = verify_ok(&store, &context);
        let new = ids_since(&store, prior);
        // The new events must be files 0..k, each whole, in file-name order.
        let mut rest = &new[..];
        let mut whole = 0;
        for ids in &files {
            if rest.is_empty() {
                break;
            }
            assert!(
                rest.len() >= ids.len() && rest[..ids.len()] == ids[..],
                "{context}: file {whole} is not whole or not next in order ({} events follow)",
                rest.len()
            );
            rest = &rest[ids.len()..];
            whole += 1;
        }
        assert!(
            rest.is_empty(),
            "{context}: unexpected events after the files"
        );
        assert_eq!(count, prior + new.len() as u64, "{context}: verify count");
        if whole > 0 && whole < files.len() {
            partial_imports += 1;
        }
        files_landed += whole;
        prior = count;
    }
    println!(
        "import: {IMPORT_KILLS} kills of {IMPORT_FILES}x{IMPORT_FILE_EVENTS}-event imports (a \
         normal import took {normal:?}, {validated:?} of it validating): {} before writing, {} \
         mid-write ({} with part of a file already in sled's file), {} after exit; \
         {files_landed} files landed whole, {partial_imports} imports stopped between files",
        tally.before_write, tally.mid_write, tally.torn_on_disk, tally.after_exit
    );
}
