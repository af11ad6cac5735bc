//! Concurrency: a store held open by one process is refused at once (exit 4, "in use by another
//! process") to every other process, reader or writer, and nothing changes; within one process,
//! threads appending through a shared `Store` produce one gapless chain with every batch kept
//! together.

use std::collections::HashMap;
use std::fs;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use store::{NewEvent, Store};
use testkit::{output, temp_store, text};

/// How long a refused command may take. The store refuses a held lock without waiting (its only
/// wait is a 0.5 s grace for sled's own lock, which never applies here because our lock is
/// checked first); a refusal measured about 4 ms in a debug build. The bound is not a benchmark
/// but a guard against waiting for the lock, so it leaves room for a loaded machine starting a
/// debug binary; the measured times are printed.
const REFUSAL_BOUND: Duration = Duration::from_secs(1);

fn party_line(id: &str) -> String {
    format!(
        r#"{{"id": "party-{id}", "type": "party_registered", "effective": "2024-01-01", "party": "{id}", "name": "Party {id}", "kind": "fund"}}"#
    )
}

#[test]
fn a_held_store_is_refused_at_once_and_left_unchanged() {
    let (dir, store) = temp_store();
    let events = testkit::events_dir();
    let out = output(&store, &["import", events.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before = output(&store, &["log", "--format", "json"]);
    assert_eq!(before.status.code(), Some(0));

    let more = dir.path().join("more.jsonl");
    fs::write(&more, party_line("newcomer") + "\n").expect("write");
    let more = more.to_str().expect("utf-8 path");

    let held = Store::create_or_open(&store).expect("the test holds the store");
    let commands: [&[&str]; 5] = [
        &["log"],
        &["ownership"],
        &["append", more],
        &["verify"],
        &["head"],
    ];
    let mut timings = Vec::new();
    for args in commands {
        let started = Instant::now();
        let out = output(&store, args);
        let took = started.elapsed();
        timings.push(format!("{} {took:?}", args[0]));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: the store ")
                && stderr.contains("is in use by another process"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(took < REFUSAL_BOUND, "{args:?} took {took:?}");
    }
    println!("refused while held: {}", timings.join(", "));
    assert_eq!(held.len(), 42);
    drop(held);

    let after = output(&store, &["log", "--format", "json"]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after.stderr));
    assert_eq!(text(&after.stdout), text(&before.stdout), "the log changed");
    let out = output(&store, &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn threads_appending_through_one_store_make_one_gapless_chain() {
    const THREADS: usize = 4;
    const BATCHES: usize = 25;
    const PER_BATCH: usize = 3;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let store = Arc::new(Store::create_or_open(&path).expect("open"));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let mut seqs = Vec::new();
                for b in 0..BATCHES {
                    let events: Vec<domain::Event> = (0..PER_BATCH)
                        .map(|i| {
                            domain::Event::from_line(&party_line(&format!("t{t}-b{b}-e{i}")))
                                .expect("valid event")
                        })
                        .collect();
                    let bodies: Vec<Vec<u8>> =
                        events.iter().map(domain::Event::canonical_bytes).collect();
                    let batch: Vec<NewEvent<'_>> = events
                        .iter()
                        .zip(&bodies)
                        .map(|(e, body)| NewEvent {
                            id: e.id.as_str(),
                            body,
                        })
                        .collect();
                    let receipt = store.append(&batch, Utc::now()).expect("append");
                    assert_eq!(receipt.appended, PER_BATCH as u64);
                    seqs.push((receipt.first_seq, receipt.last_seq));
                }
                seqs
            })
        })
        .collect();
    let mut ranges = Vec::new();
    for worker in workers {
        ranges.extend(worker.join().expect("worker finished"));
    }

    let total = (THREADS * BATCHES * PER_BATCH) as u64;
    let head = store.verify().expect("verifies").expect("not empty");
    assert_eq!(head.seq, total);
    // Every batch got its own contiguous range, and together they cover 1..=total.
    let mut ranges: Vec<(u64, u64)> = ranges
        .into_iter()
        .map(|(a, b)| (a.expect("first seq"), b.expect("last seq")))
        .collect();
    ranges.sort_unstable();
    let mut next = 1;
    for (first, last) in ranges {
        assert_eq!(first, next, "gap or overlap before seq {first}");
        assert_eq!(last, first + PER_BATCH as u64 - 1);
        next = last + 1;
    }
    assert_eq!(next, total + 1);

    let records: Vec<store::Record> = store.iter().collect::<Result<_, _>>().expect("reads");
    assert_eq!(records.len() as u64, total);
    // Each batch's events sit together in their order, and each thread's batches in its order.
    let mut last_batch: HashMap<String, usize> = HashMap::new();
    for chunk in records.chunks(PER_BATCH) {
        let name = |r: &store::Record| r.id.trim_start_matches("party-").to_string();
        let first = name(&chunk[0]);
        let (thread_tag, rest) = first.split_once("-b").expect("id shape");
        let (batch, _) = rest.split_once("-e").expect("id shape");
        for (i, r) in chunk.iter().enumerate() {
            assert_eq!(name(r), format!("{thread_tag}-b{batch}-e{i}"));
        }
        let batch: usize = batch.parse().expect("batch number");
        if let Some(previous) = last_batch.insert(thread_tag.to_string(), batch) {
            assert_eq!(batch, previous + 1, "thread {thread_tag} out of order");
        }
    }
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
    }
    drop(store);

    let out = output(&path, &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("ok: {total} events")));
    let out = output(&path, &["head"]);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("{total}:{}", head.hash_hex())
    );
}
