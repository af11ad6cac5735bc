//! The store through its interface (`Backend`, `Snapshot`, `Transaction`): snapshots see the
//! head they were taken at, a transaction commits batches one after the other, and records
//! copied from another log keep their seq, time and hash or are refused whole.

use chrono::{DateTime, TimeZone, Utc};
use store::{Access, AuxWrite, Backend, NewEvent, Record, Store, StoreError};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0)
        .single()
        .expect("in-range timestamp")
}

fn ev<'a>(id: &'a str, body: &'a [u8]) -> NewEvent<'a> {
    NewEvent { id, body }
}

/// A store of `n` events over several batches (and several recorded times), with a caller
/// key.
fn source(dir: &std::path::Path, n: usize) -> Box<dyn Backend> {
    let store = store::open(&dir.join("from"), Access::Write).expect("open");
    let ids: Vec<String> = (0..n).map(|i| format!("e-{i}")).collect();
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| format!("body {i}").into_bytes()).collect();
    for (k, chunk) in (0..n).collect::<Vec<_>>().chunks(700).enumerate() {
        let batch: Vec<NewEvent<'_>> = chunk.iter().map(|&i| ev(&ids[i], &bodies[i])).collect();
        let mut txn = store.write().expect("write");
        let aux = [AuxWrite {
            key: b"k".to_vec(),
            value: Some(vec![k as u8]),
        }];
        txn.commit(&batch, at(k as i64), &aux).expect("commit");
    }
    store
}

fn records(store: &dyn Backend) -> Vec<Record> {
    store
        .read()
        .expect("read")
        .records()
        .collect::<Result<_, _>>()
        .expect("records")
}

#[test]
fn a_snapshot_sees_the_head_it_was_taken_at() {
    let dir = tempfile::tempdir().unwrap();
    let store = source(dir.path(), 10);
    let before = store.read().unwrap();
    assert_eq!(before.len(), 10);
    assert_eq!(before.aux_get(b"k").unwrap(), Some(vec![0]));
    let head = before.head();
    let listed: Vec<u64> = before
        .records()
        .map(|r| r.map(|r| r.seq))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(listed, (1..=10).collect::<Vec<u64>>());
    assert_eq!(before.seq_of("e-3").unwrap(), Some(4));
    assert_eq!(before.seq_of("nope").unwrap(), None);
    drop(before);
    // A transaction that commits twice sees its own first batch.
    let mut txn = store.write().unwrap();
    txn.commit(&[ev("x-1", b"one")], at(100), &[]).unwrap();
    assert_eq!(txn.len(), 11);
    assert_eq!(txn.seq_of("x-1").unwrap(), Some(11));
    txn.commit(&[ev("x-2", b"two")], at(101), &[]).unwrap();
    drop(txn);
    let after = store.read().unwrap();
    assert_eq!(after.len(), 12);
    assert_ne!(after.head(), head);
    assert_eq!(store.read().unwrap().verify().unwrap(), after.head());
}

#[test]
fn copied_records_keep_seq_time_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let from = source(dir.path(), 2500);
    let all = records(&*from);
    let to = store::open(&dir.path().join("to"), Access::Write).unwrap();
    let mut txn = to.write().unwrap();
    let aux = [AuxWrite {
        key: b"k".to_vec(),
        value: Some(b"copied".to_vec()),
    }];
    let receipt = txn.commit_records(&all, &aux).unwrap();
    assert_eq!((receipt.first_seq, receipt.last_seq), (Some(1), Some(2500)));
    drop(txn);
    assert_eq!(records(&*to), all);
    assert_eq!(
        to.read().unwrap().verify().unwrap(),
        from.read().unwrap().verify().unwrap()
    );
    assert_eq!(
        to.read().unwrap().aux_get(b"k").unwrap(),
        Some(b"copied".to_vec())
    );
    // Reopened, it is the same log, and plain appends go on from its head.
    drop(to);
    let to = Store::open_existing(&dir.path().join("to")).unwrap();
    assert_eq!(to.len(), 2500);
    to.append(&[ev("after", b"x")], at(10_000)).unwrap();
    assert_eq!(to.verify().unwrap().map(|h| h.seq), Some(2501));
}

#[test]
fn records_that_do_not_follow_the_head_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let from = source(dir.path(), 30);
    let all = records(&*from);
    let cases: Vec<(&str, Vec<Record>)> = vec![
        ("a gap", {
            let mut r = all.clone();
            r.remove(5);
            r
        }),
        ("a changed body", {
            let mut r = all.clone();
            r[7].body = b"forged".to_vec();
            r
        }),
        ("a changed hash", {
            let mut r = all.clone();
            r[9].hash[0] ^= 1;
            r
        }),
        ("time going back", {
            let mut r = all.clone();
            r[0].recorded = store::recorded_string(at(5000));
            r
        }),
        ("not starting at seq 1", all[1..].to_vec()),
    ];
    for (what, batch) in cases {
        let to = store::open(&dir.path().join(what.replace(' ', "-")), Access::Write).unwrap();
        let mut txn = to.write().unwrap();
        match txn.commit_records(&batch, &[]) {
            Err(StoreError::InvalidEvent { .. }) => {}
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        drop(txn);
        assert_eq!(to.read().unwrap().len(), 0, "{what}: nothing was written");
        assert_eq!(to.read().unwrap().verify().unwrap(), None);
    }
    // An id already recorded in the target.
    let to = store::open(&dir.path().join("dup"), Access::Write).unwrap();
    let mut txn = to.write().unwrap();
    txn.commit_records(&all[..10], &[]).unwrap();
    let mut again = all[10..12].to_vec();
    again[1].id = all[0].id.clone();
    assert!(matches!(
        txn.commit_records(&again, &[]),
        Err(StoreError::InvalidEvent { .. })
    ));
    assert_eq!(txn.len(), 10);
}
