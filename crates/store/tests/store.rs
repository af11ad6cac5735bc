//! Behavioural tests of the store through its public API: sequence, time, hash chain,
//! idempotency, batching into segments, verification, opening and locking.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use store::{
    recorded_string, AuxWrite, NewEvent, Record, Store, StoreError, SEGMENT_MAX_BYTES,
    SEGMENT_MAX_EVENTS,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn at(secs: i64) -> DateTime<Utc> {
    // A fixed, valid instant; chrono only returns None for out-of-range seconds.
    Utc.timestamp_opt(1_800_000_000 + secs, 123_456_789)
        .single()
        .expect("in-range timestamp")
}

fn ev<'a>(id: &'a str, body: &'a [u8]) -> NewEvent<'a> {
    NewEvent { id, body }
}

fn all(store: &Store) -> Result<Vec<Record>, StoreError> {
    store.iter().collect()
}

/// The documented chain formula, written out independently of the crate's code.
fn expected_hash(prev: &[u8; 32], r: &Record) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(r.seq.to_be_bytes());
    h.update((r.recorded.len() as u32).to_be_bytes());
    h.update(r.recorded.as_bytes());
    h.update((r.id.len() as u32).to_be_bytes());
    h.update(r.id.as_bytes());
    h.update((r.body.len() as u64).to_be_bytes());
    h.update(&r.body);
    h.finalize().into()
}

#[test]
fn recorded_string_has_microseconds_and_z() {
    assert_eq!(recorded_string(at(0)), "2027-01-15T08:00:00.123456Z");
}

#[test]
fn seq_continues_across_appends_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    {
        let store = Store::create_or_open(&path)?;
        assert!(store.is_empty());
        assert_eq!(store.head()?, None);
        let r = store.append(&[ev("a", b"1"), ev("b", b"2")], at(0))?;
        assert_eq!((r.appended, r.first_seq, r.last_seq), (2, Some(1), Some(2)));
        let r = store.append(&[ev("c", b"3")], at(1))?;
        assert_eq!((r.first_seq, r.last_seq), (Some(3), Some(3)));
    }
    let store = Store::create_or_open(&path)?;
    assert_eq!(store.len(), 3);
    let r = store.append(&[ev("d", b"4"), ev("e", b"5")], at(2))?;
    assert_eq!((r.first_seq, r.last_seq), (Some(4), Some(5)));
    let seqs: Vec<u64> = all(&store)?.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let ids: Vec<String> = all(&store)?.into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["a", "b", "c", "d", "e"]);
    assert_eq!(store.seq_of("d")?, Some(4));
    assert_eq!(store.seq_of("zz")?, None);
    assert_eq!(store.verify()?.map(|h| h.seq), Some(5));
    Ok(())
}

#[test]
fn recorded_never_decreases_when_now_goes_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    store.append(&[ev("a", b"1")], at(100))?;
    let r = store.append(&[ev("b", b"2"), ev("c", b"3")], at(5))?;
    let head = r.head.ok_or("head after append")?;
    assert_eq!(head.recorded, recorded_string(at(100)));
    store.append(&[ev("d", b"4")], at(200))?;
    let records = all(&store)?;
    let times: Vec<&str> = records.iter().map(|r| r.recorded.as_str()).collect();
    assert_eq!(
        times,
        vec![
            recorded_string(at(100)),
            recorded_string(at(100)),
            recorded_string(at(100)),
            recorded_string(at(200)),
        ]
    );
    store.verify()?;
    Ok(())
}

#[test]
fn hash_chain_recomputes_with_the_documented_formula() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    store.append(&[ev("a", b"{\"x\":1}"), ev("b", b"")], at(0))?;
    store.append(&[ev("c", b"body")], at(1))?;
    let mut prev = [0u8; 32];
    for r in all(&store)? {
        assert_eq!(r.hash, expected_hash(&prev, &r), "seq {}", r.seq);
        assert_eq!(r.hash_hex(), hex::encode(r.hash));
        assert!(r.hash_hex().chars().all(|c| !c.is_ascii_uppercase()));
        prev = r.hash;
    }
    let head = store.head()?.ok_or("head")?;
    assert_eq!(head.hash, prev);
    assert_eq!(head.seq, 3);
    Ok(())
}

#[test]
fn reappending_identical_events_is_skipped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    store.append(&[ev("a", b"1"), ev("b", b"2")], at(0))?;
    let before = store.head()?;
    let r = store.append(&[ev("a", b"1"), ev("b", b"2")], at(1))?;
    assert_eq!((r.appended, r.skipped, r.first_seq), (0, 2, None));
    assert_eq!(r.head, before);
    // Mixed: one old, one new, one repeated within the batch.
    let r = store.append(&[ev("b", b"2"), ev("c", b"3"), ev("c", b"3")], at(2))?;
    assert_eq!((r.appended, r.skipped), (1, 2));
    assert_eq!((r.first_seq, r.last_seq), (Some(3), Some(3)));
    assert_eq!(store.len(), 3);
    Ok(())
}

#[test]
fn id_conflict_leaves_the_log_unchanged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    store.append(&[ev("a", b"1"), ev("b", b"2")], at(0))?;
    let head = store.head()?;
    let err = store
        .append(&[ev("new", b"n"), ev("b", b"different")], at(1))
        .err()
        .ok_or("expected a conflict")?;
    assert!(
        matches!(&err, StoreError::IdConflict { id, seq: 2 } if id == "b"),
        "{err:?}"
    );
    assert!(!err.is_unavailable());
    // Within one batch: the first occurrence's provisional seq is named.
    let err = store
        .append(&[ev("x", b"1"), ev("x", b"2")], at(1))
        .err()
        .ok_or("expected a conflict")?;
    assert!(
        matches!(&err, StoreError::IdConflict { id, seq: 3 } if id == "x"),
        "{err:?}"
    );
    assert_eq!(store.head()?, head);
    assert_eq!(store.len(), 2);
    assert_eq!(store.seq_of("new")?, None);
    assert_eq!(store.seq_of("x")?, None);
    drop(store);
    let store = Store::open_existing(dir.path())?;
    assert_eq!(store.head()?, head);
    assert_eq!(all(&store)?.len(), 2);
    store.verify()?;
    Ok(())
}

#[test]
fn large_batches_span_segments_and_round_trip() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    // Small events overflow the event limit; big ones overflow the byte limit.
    let n = SEGMENT_MAX_EVENTS as usize * 2 + 17;
    let ids: Vec<String> = (0..n).map(|i| format!("small-{i}")).collect();
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| i.to_string().into_bytes()).collect();
    let batch: Vec<NewEvent<'_>> = ids.iter().zip(&bodies).map(|(i, b)| ev(i, b)).collect();
    store.append(&batch[..5], at(0))?;
    let r = store.append(&batch, at(1))?;
    assert_eq!((r.appended, r.skipped), (n as u64 - 5, 5));

    let big_ids: Vec<String> = (0..40).map(|i| format!("big-{i}")).collect();
    let big: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; SEGMENT_MAX_BYTES / 7]).collect();
    let huge = vec![9u8; SEGMENT_MAX_BYTES * 3];
    let mut batch: Vec<NewEvent<'_>> = big_ids.iter().zip(&big).map(|(i, b)| ev(i, b)).collect();
    batch.push(ev("huge", &huge));
    store.append(&batch, at(2))?;
    drop(store);

    let store = Store::open_existing(dir.path())?;
    let records = all(&store)?;
    assert_eq!(records.len(), n + 41);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        if i < n {
            assert_eq!((r.id.as_str(), &r.body), (ids[i].as_str(), &bodies[i]));
        } else if i < n + 40 {
            assert_eq!(
                (r.id.as_str(), &r.body),
                (big_ids[i - n].as_str(), &big[i - n])
            );
        } else {
            assert_eq!((r.id.as_str(), &r.body), ("huge", &huge));
        }
    }
    assert_eq!(store.verify()?.map(|h| h.seq), Some(n as u64 + 41));
    Ok(())
}

/// Reads of scattered records find their segments in the segment directory, whichever way
/// the segments are stored (sealed in the log file, or full and left in sled). A store whose
/// directory is stale (an older accord appended without it) is read by walking the segment
/// keys and its next writer rebuilds the directory; a damaged one fails reads and `verify`.
#[test]
fn the_segment_directory_finds_scattered_records_and_is_checked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store");
    let store = Store::create_or_open(&path)?;
    let mut next = 0usize;
    for round in 0..12 {
        // Exactly a segment's count of small events leaves a full segment in sled; batches of
        // larger ones seal segments into the log file.
        let (n, size) = if round % 4 == 0 {
            (SEGMENT_MAX_EVENTS as usize, 3)
        } else {
            (150, 300)
        };
        let ids: Vec<String> = (next..next + n).map(|i| format!("e{i}")).collect();
        let bodies: Vec<Vec<u8>> = (next..next + n)
            .map(|i| format!("{i:0size$}").into_bytes())
            .collect();
        let batch: Vec<NewEvent<'_>> = ids.iter().zip(&bodies).map(|(i, b)| ev(i, b)).collect();
        store.append(&batch, at(round))?;
        next += n;
    }
    let everything = all(&store)?;
    let len = everything.len() as u64;
    let by_seq = |seqs: &[u64]| -> Vec<Record> {
        seqs.iter()
            .map(|s| everything[*s as usize - 1].clone())
            .collect()
    };
    let scattered: Vec<u64> = (1..=len).step_by(37).chain([2, 1025, len]).collect();
    let mut sorted = scattered.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let asked = [len, 1, len, 1024, 1025, 3000];
    assert_eq!(store.records_at(&sorted)?, by_seq(&sorted));
    assert_eq!(store.records_at(&asked)?, by_seq(&asked));
    assert!(store.verify()?.is_some());
    drop(store);

    // Stale, as an older accord leaves it: readers walk, the next writer rebuilds it.
    let raw = sled::Config::new().path(&path).open()?;
    raw.insert(b"sdend", &5u64.to_be_bytes()[..])?;
    raw.flush()?;
    drop(raw);
    let reader = Store::open_existing(&path)?;
    assert_eq!(reader.records_at(&sorted)?, by_seq(&sorted));
    assert!(reader.verify()?.is_some());
    drop(reader);
    // A damaged end says nothing: the store still opens and reads the old way.
    let raw = sled::Config::new().path(&path).open()?;
    raw.insert(b"sdend", &b"bad"[..])?;
    raw.flush()?;
    drop(raw);
    let reader = Store::open_existing(&path)?;
    assert_eq!(reader.records_at(&asked)?, by_seq(&asked));
    drop(reader);
    drop(Store::create_or_open(&path)?);
    let raw = sled::Config::new().path(&path).open()?;
    let tail = raw
        .scan_prefix(b"seg")
        .keys()
        .next_back()
        .ok_or("segments")??;
    assert_eq!(
        raw.get(b"sdend")?.ok_or("a directory end")?.as_ref(),
        &tail[3..]
    );

    // Damaged: a chunk gone.
    let (first_chunk, _) = raw.scan_prefix(b"sdx").next().ok_or("a chunk")??;
    raw.remove(first_chunk)?;
    raw.flush()?;
    drop(raw);
    let damaged = Store::open_existing(&path)?;
    assert!(matches!(
        damaged.records_at(&sorted),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(damaged.verify(), Err(StoreError::Corrupt { .. })));
    Ok(())
}

#[test]
fn iter_from_starts_after_the_given_seq() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    let ids: Vec<String> = (0..3000).map(|i| format!("e{i}")).collect();
    for chunk in ids.chunks(700) {
        let batch: Vec<NewEvent<'_>> = chunk.iter().map(|i| ev(i, i.as_bytes())).collect();
        store.append(&batch, at(0))?;
    }
    for after in [0u64, 1, 699, 700, 1023, 1024, 1025, 2999, 3000, 5000] {
        let seqs: Vec<u64> = store
            .iter_from(after)
            .map(|r| r.map(|r| r.seq))
            .collect::<Result<_, _>>()?;
        let want: Vec<u64> = (after + 1..=3000).collect();
        assert_eq!(seqs, want, "after {after}");
    }
    let first = store.iter_from(1500).next().ok_or("a record")??;
    assert_eq!((first.seq, first.id.as_str()), (1501, "e1500"));
    Ok(())
}

#[test]
fn verify_names_the_tampered_seq() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    let ids: Vec<String> = (0..1500).map(|i| format!("e{i}")).collect();
    let batch: Vec<NewEvent<'_>> = ids.iter().map(|i| ev(i, b"body")).collect();
    store.append(&batch, at(0))?;
    assert!(store.verify().is_ok());
    store.tamper_body_for_tests(1200, b"forged")?;
    let err = store.verify().err().ok_or("verify must fail")?;
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                seq: Some(1200),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    // The tampered bytes still decode, so plain iteration shows them.
    let r = store.iter_from(1199).next().ok_or("a record")??;
    assert_eq!(r.body, b"forged");
    Ok(())
}

#[test]
fn verify_of_an_empty_store_is_ok() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    assert_eq!(store.verify()?, None);
    assert_eq!(store.iter().count(), 0);
    let r = store.append(&[], at(0))?;
    assert_eq!((r.appended, r.skipped, r.head), (0, 0, None));
    Ok(())
}

fn listing(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[test]
fn open_existing_on_a_missing_path_creates_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nope");
    let err = Store::open_existing(&path).err().ok_or("must fail")?;
    assert!(
        matches!(&err, StoreError::Missing { path: p } if *p == path),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert!(!path.exists());
    assert!(listing(dir.path())?.is_empty());
    // An existing but empty directory is not a store either, and stays empty.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty)?;
    let err = Store::open_existing(&empty).err().ok_or("must fail")?;
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    assert!(listing(&empty)?.is_empty());
    Ok(())
}

/// `settle` leaves sled's snapshot of a store just written, which sled writes only while
/// opening (without it the next open replays sled's whole log), and creates nothing where no
/// store is.
#[test]
fn settle_leaves_a_snapshot_and_creates_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let snapshots = |p: &Path| -> Result<usize, std::io::Error> {
        Ok(listing(p)?
            .iter()
            .filter(|n| n.starts_with("snap."))
            .count())
    };
    let path = dir.path().join("store");
    {
        let store = Store::create_or_open(&path)?;
        let body = body_of(1, 1);
        store.append(
            &[NewEvent {
                id: "a",
                body: &body,
            }],
            at(1),
        )?;
    }
    let before = snapshots(&path)?;
    store::settle(&path);
    assert!(snapshots(&path)? >= 1, "{:?}", listing(&path)?);
    assert!(snapshots(&path)? >= before);
    let reopened = Store::open_existing(&path)?;
    assert_eq!(reopened.len(), 1);
    assert!(reopened.verify()?.is_some());
    drop(reopened);
    let missing = dir.path().join("nope");
    store::settle(&missing);
    assert!(!missing.exists());
    Ok(())
}

#[test]
fn second_open_in_the_same_process_is_locked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    let started = Instant::now();
    for second in [
        Store::create_or_open(dir.path()),
        Store::open_existing(dir.path()),
    ] {
        let err = second.err().ok_or("second open must fail")?;
        assert!(matches!(&err, StoreError::Locked { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "the store {} is in use by another process",
                dir.path().display()
            )
        );
        assert!(err.is_unavailable());
    }
    assert!(started.elapsed() < Duration::from_millis(300));
    drop(store);
    // Released on drop.
    Store::open_existing(dir.path())?;
    Ok(())
}

const CHILD_ENV: &str = "ACCORD_STORE_LOCK_CHILD_PATH";

/// Runs only as the child of `second_process_gets_locked_fast`: it opens the store the parent
/// holds, and fails (non-zero exit) unless both kinds of open report Locked quickly.
#[test]
fn lock_child_process() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = Path::new(&path);
    let started = Instant::now();
    let reader = Store::open_existing(path);
    let writer = Store::create_or_open(path);
    let elapsed = started.elapsed();
    assert!(
        matches!(reader, Err(StoreError::Locked { .. })),
        "reader: {:?}",
        reader.err()
    );
    assert!(
        matches!(writer, Err(StoreError::Locked { .. })),
        "writer: {:?}",
        writer.err()
    );
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
}

#[test]
fn second_process_gets_locked_fast() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::create_or_open(dir.path())?;
    store.append(&[ev("a", b"1")], at(0))?;
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "lock_child_process", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .status()?;
    assert!(status.success(), "child saw no Locked: {status}");
    drop(store);
    Ok(())
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

/// One generated step: a batch of (id index, body index) pairs, or a reopen.
#[derive(Debug, Clone)]
enum Step {
    Append(Vec<(u8, u8)>),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => prop::collection::vec((0u8..40, 0u8..3), 0..30).prop_map(Step::Append),
        1 => Just(Step::Reopen),
    ]
}

fn body_of(id: u8, variant: u8) -> Vec<u8> {
    // Some bodies are large so that segments also split by size.
    let len = if id.is_multiple_of(7) { 5000 } else { 10 };
    let mut body = vec![id; len];
    body.push(variant);
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_match_the_model(steps in prop::collection::vec(step(), 1..12)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let fail = |e: StoreError| TestCaseError::fail(e.to_string());
        let mut store = Some(Store::create_or_open(dir.path()).map_err(fail)?);
        let mut model: Vec<(String, Vec<u8>)> = Vec::new();
        let mut by_id: HashMap<String, Vec<u8>> = HashMap::new();
        for (n, step) in steps.iter().enumerate() {
            match step {
                Step::Reopen => {
                    // Close before reopening: the lock allows one handle at a time. A child
                    // that another test of this binary spawns holds a copy of every open
                    // descriptor, the lock's included, from its fork to its exec: the reopen
                    // waits out that instant instead of failing as locked.
                    drop(store.take());
                    let opening = store::Opening {
                        wait: std::time::Duration::from_secs(5),
                        holder: None,
                    };
                    store = Some(Store::open_existing_with(dir.path(), &opening).map_err(fail)?);
                }
                Step::Append(pairs) => {
                    let ids: Vec<String> = pairs.iter().map(|(i, _)| format!("id-{i}")).collect();
                    let bodies: Vec<Vec<u8>> = pairs.iter().map(|&(i, v)| body_of(i, v)).collect();
                    let batch: Vec<NewEvent<'_>> =
                        ids.iter().zip(&bodies).map(|(i, b)| NewEvent { id: i, body: b }).collect();
                    // The model's verdict: conflict, or the list of new events.
                    let mut pending: HashMap<&str, &[u8]> = HashMap::new();
                    let mut fresh = Vec::new();
                    let mut conflict = false;
                    for e in &batch {
                        let known = by_id.get(e.id).map(|b| b.as_slice()).or(pending.get(e.id).copied());
                        match known {
                            Some(b) if b == e.body => {}
                            Some(_) => conflict = true,
                            None => {
                                pending.insert(e.id, e.body);
                                fresh.push((e.id.to_owned(), e.body.to_vec()));
                            }
                        }
                    }
                    let s = store.as_ref().ok_or_else(|| TestCaseError::fail("no store"))?;
                    let result = s.append(&batch, at(n as i64));
                    if conflict {
                        let is_conflict = matches!(result, Err(StoreError::IdConflict { .. }));
                        prop_assert!(is_conflict, "expected IdConflict, got {:?}", result);
                    } else {
                        let r = result.map_err(fail)?;
                        prop_assert_eq!(r.appended, fresh.len() as u64);
                        prop_assert_eq!(r.skipped, (batch.len() - fresh.len()) as u64);
                        for (id, body) in fresh {
                            by_id.insert(id.clone(), body.clone());
                            model.push((id, body));
                        }
                    }
                }
            }
        }
        drop(store);
        let store = Store::open_existing(dir.path()).map_err(fail)?;
        let records = all(&store).map_err(fail)?;
        prop_assert_eq!(records.len(), model.len());
        for (i, (r, (id, body))) in records.iter().zip(&model).enumerate() {
            prop_assert_eq!(r.seq, i as u64 + 1);
            prop_assert_eq!(&r.id, id);
            prop_assert_eq!(&r.body, body);
        }
        let head = store.verify().map_err(fail)?;
        prop_assert_eq!(head.map(|h| h.seq), if model.is_empty() { None } else { Some(model.len() as u64) });
    }
}

#[test]
fn aux_writes_land_with_the_batch_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_or_open(dir.path()).unwrap();
    let body = b"{}".to_vec();
    let first = [NewEvent {
        id: "a",
        body: &body,
    }];
    let set = [AuxWrite {
        key: b"k".to_vec(),
        value: Some(b"v1".to_vec()),
    }];
    store
        .append_with(&first, chrono::Utc::now(), Some((1, &set)))
        .unwrap();
    assert_eq!(store.aux_get(b"k").unwrap(), Some(b"v1".to_vec()));
    // A wrong expected seq, or an already recorded event, writes nothing.
    let second = [NewEvent {
        id: "b",
        body: &body,
    }];
    let remove = [AuxWrite {
        key: b"k".to_vec(),
        value: None,
    }];
    assert!(store
        .append_with(&second, chrono::Utc::now(), Some((5, &remove)))
        .is_err());
    assert!(store
        .append_with(&first, chrono::Utc::now(), Some((2, &remove)))
        .is_err());
    assert_eq!(store.len(), 1);
    assert_eq!(store.aux_get(b"k").unwrap(), Some(b"v1".to_vec()));
    store
        .append_with(&second, chrono::Utc::now(), Some((2, &remove)))
        .unwrap();
    assert_eq!(store.aux_get(b"k").unwrap(), None);
    assert_eq!(store.len(), 2);
    let ids: Vec<String> = store
        .records_at(&[2, 1, 2])
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["b", "a", "b"]);
    assert!(store.records_at(&[3]).is_err());
    store.verify().unwrap();
}
