//! Integrity: tampering is reported by `verify` with the seq it hit, `--expect-head` accepts
//! exactly the logs that extend a written-down head, and damaged or truncated sled files are
//! either reported (exit 3 or 4, one `error:` line) or read back whole: never a panic, never
//! "ok" with fewer events.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use store::{NewEvent, Store};
use testkit::{copy_dir, import_sample, temp_store};

/// A damaged store must be answered promptly; this only catches hangs.
const RUN_LIMIT: Duration = Duration::from_secs(20);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs accord against `store`, killing it (and failing) if it takes longer than RUN_LIMIT.
fn accord(store: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(testkit::bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("accord starts");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("accord {args:?} on {} did not finish", store.display());
        }
        thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn ok(store: &Path, args: &[&str]) -> String {
    let run = accord(store, args);
    assert_eq!(run.code, Some(0), "accord {args:?}: {}", run.describe());
    run.stdout
}

/// The sample's lines in import order (file-name order, then line order).
fn sample_lines() -> Vec<String> {
    let mut files: Vec<PathBuf> = fs::read_dir(testkit::events_dir())
        .expect("events dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            fs::read_to_string(f)
                .expect("read sample")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The sample with the note of its `n`th event (1-based) replaced.
fn sample_with_note(n: usize, note: &str) -> Vec<String> {
    let mut lines = sample_lines();
    let mut v: serde_json::Value = serde_json::from_str(&lines[n - 1]).expect("sample is JSON");
    v["note"] = serde_json::Value::String(note.into());
    lines[n - 1] = v.to_string();
    lines
}

fn extra_parties(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "party-{tag}-{i}", "type": "party_registered", "effective": "2024-01-01", "party": "{tag}-{i}", "name": "Extra {tag} {i}", "kind": "fund"}}"#
            ) + "\n"
        })
        .collect()
}

fn append_text(store: &Path, dir: &Path, name: &str, text: &str) {
    let file = dir.join(name);
    fs::write(&file, text).expect("write events");
    ok(store, &["append", file.to_str().expect("utf-8 path")]);
}

fn head(store: &Path) -> String {
    ok(store, &["head"]).trim().to_string()
}

#[test]
fn verify_names_the_tampered_seq() {
    let (_dir, store) = temp_store();
    import_sample(&store);
    {
        let s = Store::create_or_open(&store).expect("open");
        s.tamper_body_for_tests(5, br#"{"tampered":true}"#)
            .expect("tamper");
    }
    let run = accord(&store, &["verify"]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert!(run.stderr.starts_with("error: "), "{}", run.describe());
    assert!(run.stderr.contains("seq 5"), "{}", run.describe());
    assert!(run.stdout.is_empty(), "{}", run.describe());
}

#[test]
fn expect_head_accepts_prefixes_only() {
    let (dir, store) = temp_store();
    import_sample(&store);
    let written = head(&store);
    let (seq, hash) = written.split_once(':').expect("SEQ:HASH");
    assert_eq!(seq, sample_lines().len().to_string());
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));

    ok(&store, &["verify", "--expect-head", &written]);
    append_text(&store, dir.path(), "more.jsonl", &extra_parties("more", 3));
    assert_ne!(head(&store), written);
    ok(&store, &["verify", "--expect-head", &written]);

    let expect_3 = |store: &Path, expected: &str, why: &str| {
        let run = accord(store, &["verify", "--expect-head", expected]);
        assert_eq!(run.code, Some(3), "{why}: {}", run.describe());
        assert!(
            run.stderr.starts_with("error: "),
            "{why}: {}",
            run.describe()
        );
    };
    // A different hash at the same seq.
    let flipped = if hash.starts_with('0') { "1" } else { "0" };
    expect_3(
        &store,
        &format!("{seq}:{flipped}{}", &hash[1..]),
        "modified hash",
    );
    // A seq beyond the log.
    expect_3(&store, &format!("1000:{hash}"), "seq beyond the log");

    // The same history with one event changed, rebuilt into a fresh store.
    let rebuilt = dir.path().join("rebuilt");
    let changed = dir.path().join("changed");
    fs::create_dir_all(&changed).expect("mkdir");
    fs::write(
        changed.join("all.jsonl"),
        sample_with_note(3, "a different note").join("\n") + "\n",
    )
    .expect("write");
    ok(&rebuilt, &["import", changed.to_str().expect("utf-8 path")]);
    ok(&rebuilt, &["verify"]);
    expect_3(&rebuilt, &written, "rebuilt with event 3 changed");
}

/// With recording times pinned (through the library), two stores that differ only in event 3
/// share their head up to seq 2 and differ from seq 3 on: `--expect-head` tells them apart
/// exactly there.
#[test]
fn expect_head_pins_the_exact_event_that_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .expect("valid time");
    let build = |name: &str, lines: &[String]| -> PathBuf {
        let path = dir.path().join(name);
        let events: Vec<domain::Event> = lines
            .iter()
            .map(|l| domain::Event::from_line(l).expect("sample parses"))
            .collect();
        let bodies: Vec<Vec<u8>> = events.iter().map(domain::Event::canonical_bytes).collect();
        let batch: Vec<NewEvent<'_>> = events
            .iter()
            .zip(&bodies)
            .map(|(e, b)| NewEvent {
                id: e.id.as_str(),
                body: b,
            })
            .collect();
        let s = Store::create_or_open(&path).expect("open");
        s.append(&batch, now).expect("append");
        path
    };
    let original = build("original", &sample_lines());
    let changed = build("changed", &sample_with_note(3, "a different note"));
    ok(&original, &["verify"]);
    ok(&changed, &["verify"]);
    let heads = |store: &Path| -> Vec<String> {
        ok(store, &["log", "--format", "json"])
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                format!("{}:{}", v["seq"], v["hash"].as_str().expect("hash"))
            })
            .collect()
    };
    let a = heads(&original);
    let b = heads(&changed);
    assert_eq!(a[..2], b[..2]);
    ok(&changed, &["verify", "--expect-head", &a[1]]);
    for (i, h) in a.iter().enumerate().skip(2) {
        assert_ne!(*h, b[i]);
        let run = accord(&changed, &["verify", "--expect-head", h]);
        assert_eq!(run.code, Some(3), "seq {}: {}", i + 1, run.describe());
    }
}

/// Builds the store the damage tests start from: the sample and three more appends, so sled's
/// file holds several flushed batches. Returns the size of `db` after each append and the
/// verify line of the whole store.
fn populated(dir: &Path) -> (PathBuf, Vec<u64>, String) {
    let store = dir.join("pristine");
    let size = || fs::metadata(store.join("db")).expect("db").len();
    import_sample(&store);
    let mut sizes = vec![size()];
    for round in 0..3 {
        append_text(
            &store,
            dir,
            &format!("extra{round}.jsonl"),
            &extra_parties(&format!("x{round}"), 5 + round * 20),
        );
        sizes.push(size());
    }
    let line = ok(&store, &["verify"]);
    (store, sizes, line)
}

/// Checks one damaged copy: a clean refusal or the whole, unchanged log.
fn check_damaged(store: &Path, what: &str, pristine: &str, tally: &mut [u32; 3]) {
    let run = accord(store, &["verify"]);
    match run.code {
        Some(0) => {
            assert_eq!(
                run.stdout, pristine,
                "{what}: verify passed with a different log"
            );
            tally[0] += 1;
        }
        Some(code @ (3 | 4)) => {
            let errors = run
                .stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count();
            assert!(
                run.stderr.starts_with("error: ") && errors == 1,
                "{what}: {}",
                run.describe()
            );
            assert!(run.stdout.is_empty(), "{what}: {}", run.describe());
            tally[usize::from(code == 4) + 1] += 1;
        }
        _ => panic!("{what}: {}", run.describe()),
    }
}

/// The end of the data in sled's file (sled pads its segments with zeros).
fn data_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

#[test]
fn flipped_bytes_in_sleds_file_are_caught_or_harmless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pristine, _, line) = populated(dir.path());
    let bytes = fs::read(pristine.join("db")).expect("read db");
    let end = data_end(&bytes);
    let mut tally = [0u32; 3];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let cases = 160usize;
    for i in 0..cases {
        // Half the offsets evenly spread over the data, half pseudo-random.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = if i % 2 == 0 {
            i * end / cases
        } else {
            (x % end as u64) as usize
        };
        let mask = if i % 3 == 0 { 0xff } else { 1u8 << (i % 8) };
        let copy = dir.path().join(format!("flip{i}"));
        copy_dir(&pristine, &copy);
        let mut damaged = bytes.clone();
        damaged[offset] ^= mask;
        fs::write(copy.join("db"), &damaged).expect("write db");
        check_damaged(
            &copy,
            &format!("byte {offset} ^ {mask:#04x}"),
            &line,
            &mut tally,
        );
        fs::remove_dir_all(&copy).expect("cleanup");
    }
    println!(
        "{cases} flipped bytes in {end} bytes of data: {} harmless, {} exit 3, {} exit 4",
        tally[0], tally[1], tally[2]
    );
    assert!(tally[1] + tally[2] > 0, "no flip was noticed at all");
}

#[test]
fn truncated_sled_files_never_pass_as_shorter_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pristine, sizes, line) = populated(dir.path());
    let bytes = fs::read(pristine.join("db")).expect("read db");
    let end = data_end(&bytes);
    let mut lengths: Vec<usize> = (0..60).map(|i| i * end / 60).collect();
    // The lost-tail cases: cut right after an earlier append's bytes, and one byte either side.
    for &size in &sizes[..sizes.len() - 1] {
        let size = usize::try_from(size).expect("small file").min(end);
        lengths.extend([size.saturating_sub(1), size, size + 1]);
    }
    lengths.extend([end - 1, end]);
    lengths.sort_unstable();
    lengths.dedup();
    let mut tally = [0u32; 3];
    for (i, &len) in lengths.iter().enumerate() {
        let copy = dir.path().join(format!("cut{i}"));
        copy_dir(&pristine, &copy);
        fs::write(copy.join("db"), &bytes[..len]).expect("write db");
        check_damaged(&copy, &format!("cut at {len}"), &line, &mut tally);
        fs::remove_dir_all(&copy).expect("cleanup");
    }
    println!(
        "{} truncations of {end} bytes of data: {} harmless, {} exit 3, {} exit 4",
        lengths.len(),
        tally[0],
        tally[1],
        tally[2]
    );
}

/// The measured failure this guards against: after two appends, cutting sled's file back to the
/// first append's bytes made sled recover the older state silently and `verify` say ok.
#[test]
fn a_lost_tail_is_reported_not_recovered() {
    let (dir, store) = temp_store();
    append_text(&store, dir.path(), "a.jsonl", &extra_parties("a", 1));
    let first = fs::read(store.join("db")).expect("db");
    append_text(&store, dir.path(), "b.jsonl", &extra_parties("b", 1));
    let acknowledged = head(&store);
    for keep in [data_end(&first), first.len()] {
        let copy = dir.path().join(format!("cut{keep}"));
        copy_dir(&store, &copy);
        let bytes = fs::read(copy.join("db")).expect("db");
        fs::write(copy.join("db"), &bytes[..keep]).expect("truncate");
        let run = accord(&copy, &["verify"]);
        assert!(
            matches!(run.code, Some(3 | 4)),
            "cut at {keep}: {}",
            run.describe()
        );
        assert!(run.stderr.starts_with("error: "), "{}", run.describe());
        // Other commands refuse the store as well, including a writer.
        for args in [&["log"][..], &["head"], &["ownership"]] {
            let run = accord(&copy, args);
            assert_eq!(run.code, Some(4), "{args:?}: {}", run.describe());
        }
        let file = dir.path().join("c.jsonl");
        fs::write(&file, extra_parties("c", 1)).expect("write");
        let run = accord(&copy, &["append", file.to_str().expect("utf-8 path")]);
        assert_eq!(run.code, Some(4), "append: {}", run.describe());
    }
    // Simulate sled recovering an older state exactly: an older copy of the whole store under
    // the newer head file.
    let older = dir.path().join("older");
    {
        let s = dir.path().join("fresh");
        append_text(&s, dir.path(), "a.jsonl", &extra_parties("a", 1));
        copy_dir(&s, &older);
    }
    let fresher = dir.path().join("fresher");
    copy_dir(&older, &fresher);
    append_text(&fresher, dir.path(), "b.jsonl", &extra_parties("b", 1));
    fs::copy(fresher.join("accord.head"), older.join("accord.head")).expect("copy head");
    let run = accord(&older, &["verify"]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert!(
        run.stderr.contains("lost acknowledged events") && run.stderr.contains("seq 2"),
        "{}",
        run.describe()
    );
    assert!(acknowledged.starts_with("2:"));
}

/// A store whose log file holds several sealed segments: 600 registrations in three appends
/// (a segment seals at about 32 KiB of records).
fn with_log_file(dir: &Path) -> (PathBuf, String) {
    let store = dir.join("sealed");
    for round in 0..3 {
        append_text(
            &store,
            dir,
            &format!("many{round}.jsonl"),
            &extra_parties(&format!("m{round}"), 200),
        );
    }
    let len = fs::metadata(store.join("accord.log"))
        .expect("log file")
        .len();
    assert!(len > 10_000, "the log file holds only {len} bytes");
    let line = ok(&store, &["verify"]);
    (store, line)
}

/// Every byte of the log file is covered by its segment's checksum and by the hash chain: a
/// flipped byte anywhere is reported, by verify (exit 3) and by a reader (exit 4).
#[test]
fn flipped_bytes_in_the_log_file_are_always_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pristine, _) = with_log_file(dir.path());
    let bytes = fs::read(pristine.join("accord.log")).expect("read log");
    let cases = 40usize;
    for i in 0..cases {
        let offset = i * bytes.len() / cases + i % 7;
        let mask = if i % 3 == 0 { 0xff } else { 1u8 << (i % 8) };
        let copy = dir.path().join(format!("flip{i}"));
        copy_dir(&pristine, &copy);
        let mut damaged = bytes.clone();
        damaged[offset] ^= mask;
        fs::write(copy.join("accord.log"), &damaged).expect("write log");
        let what = format!("byte {offset} ^ {mask:#04x}");
        let run = accord(&copy, &["verify"]);
        assert_eq!(run.code, Some(3), "{what}: {}", run.describe());
        assert!(
            run.stderr.starts_with("error: "),
            "{what}: {}",
            run.describe()
        );
        let run = accord(&copy, &["log", "--format", "json"]);
        assert_eq!(run.code, Some(4), "{what}: {}", run.describe());
        fs::remove_dir_all(&copy).expect("cleanup");
    }
}

/// A log file cut short, or gone, is refused at open; bytes past the committed end (an append
/// that crashed before its commit) are ignored by readers and dropped by the next writer.
#[test]
fn the_log_file_must_hold_every_committed_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pristine, line) = with_log_file(dir.path());
    let bytes = fs::read(pristine.join("accord.log")).expect("read log");
    for keep in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        let copy = dir.path().join(format!("cut{keep}"));
        copy_dir(&pristine, &copy);
        fs::write(copy.join("accord.log"), &bytes[..keep]).expect("truncate");
        let run = accord(&copy, &["verify"]);
        assert_eq!(run.code, Some(3), "cut at {keep}: {}", run.describe());
        assert!(
            run.stderr.contains("was truncated"),
            "cut at {keep}: {}",
            run.describe()
        );
        for args in [&["head"][..], &["ownership"]] {
            let run = accord(&copy, args);
            assert_eq!(run.code, Some(4), "{args:?}: {}", run.describe());
        }
        fs::remove_dir_all(&copy).expect("cleanup");
    }
    let gone = dir.path().join("gone");
    copy_dir(&pristine, &gone);
    fs::remove_file(gone.join("accord.log")).expect("remove log");
    let run = accord(&gone, &["verify"]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert!(run.stderr.contains("is missing"), "{}", run.describe());

    let extra = dir.path().join("extra");
    copy_dir(&pristine, &extra);
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xab; 5000]);
    fs::write(extra.join("accord.log"), &longer).expect("extend log");
    assert_eq!(ok(&extra, &["verify"]), line);
    append_text(
        &extra,
        dir.path(),
        "more.jsonl",
        &extra_parties("more", 200),
    );
    assert!(ok(&extra, &["verify"]).starts_with("ok: 800 events"));
    let after = fs::read(extra.join("accord.log")).expect("read log");
    assert_eq!(
        after[..bytes.len()],
        bytes[..],
        "committed bytes were rewritten"
    );
    assert!(
        !after.windows(16).any(|w| w == [0xab; 16]),
        "the uncommitted bytes are still there"
    );
}

/// A log written past the validator (here straight through the store) whose
/// events break a rule is reported by verify with the seq, and exit 3.
#[test]
fn verify_reports_a_stored_event_that_breaks_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_or_open(dir.path()).unwrap();
    let body = br#"{"amount":{"amount":"5","currency":"USD"},"effective":"2025-01-01","id":"s1","obligation":"nowhere","type":"obligation_settled"}"#;
    store
        .append(
            &[NewEvent {
                id: "s1",
                body: &body[..],
            }],
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        )
        .unwrap();
    drop(store);
    let run = accord(dir.path(), &["verify"]);
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert!(
        run.stderr
            .contains("integrity check failed at seq 1: replaying it breaks a rule"),
        "{}",
        run.describe()
    );
}
