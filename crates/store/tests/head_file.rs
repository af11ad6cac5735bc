//! The head sidecar `accord.head`: written after every durable append, checked at every open,
//! so that sled recovering an older state (a truncated or replaced file) is reported as
//! `Corrupt` instead of passing for a shorter log.

use std::fs;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use store::{Head, NewEvent, Store, StoreError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0)
        .single()
        .expect("in-range timestamp")
}

fn ev<'a>(id: &'a str, body: &'a [u8]) -> NewEvent<'a> {
    NewEvent { id, body }
}

fn head_file(path: &Path) -> String {
    fs::read_to_string(path.join("accord.head")).expect("head file exists")
}

fn line(head: &Head) -> String {
    format!("{}:{}\n", head.seq, head.hash_hex())
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn corrupt_detail(result: Result<Store, StoreError>) -> (Option<u64>, String) {
    match result {
        Err(StoreError::Corrupt { seq, detail }) => (seq, detail),
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("expected Corrupt, the store opened"),
    }
}

#[test]
fn every_append_records_the_head() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    let store = Store::create_or_open(&path)?;
    assert!(
        !path.join("accord.head").exists(),
        "an empty store has none"
    );
    let r = store.append(&[ev("a", b"1"), ev("b", b"2")], at(0))?;
    assert_eq!(head_file(&path), line(r.head.as_ref().expect("head")));
    let r = store.append(&[ev("c", b"3")], at(1))?;
    assert_eq!(head_file(&path), line(r.head.as_ref().expect("head")));
    assert!(!path.join("accord.head.tmp").exists());
    Ok(())
}

#[test]
fn a_missing_head_file_is_accepted_and_recreated() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    let head = {
        let store = Store::create_or_open(&path)?;
        store.append(&[ev("a", b"1")], at(0))?;
        store.head()?.expect("head")
    };
    // A store written before the sidecar existed.
    fs::remove_file(path.join("accord.head"))?;
    {
        let store = Store::open_existing(&path)?;
        assert_eq!(store.verify()?, Some(head.clone()));
    }
    assert!(!path.join("accord.head").exists(), "readers do not write");
    // Even an append that only skips brings it back.
    let store = Store::create_or_open(&path)?;
    let r = store.append(&[ev("a", b"1")], at(1))?;
    assert_eq!((r.appended, r.skipped), (0, 1));
    assert_eq!(head_file(&path), line(&head));
    Ok(())
}

#[test]
fn a_head_file_behind_sled_is_accepted_and_refreshed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    let old = {
        let store = Store::create_or_open(&path)?;
        store.append(&[ev("a", b"1"), ev("b", b"2")], at(0))?;
        let old = head_file(&path);
        store.append(&[ev("c", b"3")], at(1))?;
        old
    };
    // A crash between sled's flush and the sidecar's rename leaves the older line.
    fs::write(path.join("accord.head"), &old)?;
    let store = Store::create_or_open(&path)?;
    assert_eq!(store.len(), 3);
    store.verify()?;
    let r = store.append(&[ev("d", b"4")], at(2))?;
    assert_eq!(head_file(&path), line(r.head.as_ref().expect("head")));
    Ok(())
}

#[test]
fn sled_recovering_an_older_state_is_corrupt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    let older = dir.path().join("older");
    {
        let store = Store::create_or_open(&path)?;
        store.append(&[ev("a", b"1")], at(0))?;
    }
    copy_dir(&path, &older);
    let acknowledged = {
        let store = Store::create_or_open(&path)?;
        store.append(&[ev("b", b"2"), ev("c", b"3")], at(1))?;
        store.head()?.expect("head")
    };
    // sled's files as they were after the first append, under the newer sidecar.
    fs::copy(path.join("accord.head"), older.join("accord.head"))?;
    for open in [Store::open_existing, Store::create_or_open] {
        let (seq, detail) = corrupt_detail(open(&older));
        assert_eq!(seq, Some(2), "the first lost seq");
        assert!(
            detail.contains("lost acknowledged events")
                && detail.contains("ends at seq 1")
                && detail.contains("seq 3")
                && detail.contains(&acknowledged.hash_hex()),
            "{detail}"
        );
    }
    // A fresh sled database under an existing sidecar (sled's files deleted): a writer must not
    // silently start a new log.
    let emptied = dir.path().join("emptied");
    fs::create_dir_all(&emptied)?;
    fs::copy(path.join("accord.head"), emptied.join("accord.head"))?;
    let (seq, detail) = corrupt_detail(Store::create_or_open(&emptied));
    assert_eq!(seq, Some(1));
    assert!(detail.contains("ends at seq 0"), "{detail}");
    Ok(())
}

#[test]
fn a_rewritten_history_is_corrupt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    let other = dir.path().join("other");
    {
        let store = Store::create_or_open(&path)?;
        store.append(&[ev("a", b"1"), ev("b", b"2")], at(0))?;
        store.append(&[ev("c", b"3")], at(1))?;
        let store = Store::create_or_open(&other)?;
        store.append(&[ev("a", b"1"), ev("b", b"changed")], at(0))?;
        store.append(&[ev("c", b"3"), ev("d", b"4")], at(1))?;
    }
    // `other` is longer, but its seq 3 is not the acknowledged seq 3.
    fs::copy(path.join("accord.head"), other.join("accord.head"))?;
    let (seq, detail) = corrupt_detail(Store::open_existing(&other));
    assert_eq!(seq, Some(3));
    assert!(detail.contains("was acknowledged"), "{detail}");
    // The same at the head itself.
    let (seq, _) = {
        let text = head_file(&path);
        let (n, hash) = text.trim_end().split_once(':').expect("SEQ:HASH");
        let flipped = if hash.starts_with('0') { "1" } else { "0" };
        fs::write(
            path.join("accord.head"),
            format!("{n}:{flipped}{}\n", &hash[1..]),
        )?;
        corrupt_detail(Store::open_existing(&path))
    };
    assert_eq!(seq, Some(3));
    Ok(())
}

#[test]
fn a_damaged_head_file_is_corrupt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    {
        let store = Store::create_or_open(&path)?;
        store.append(&[ev("a", b"1")], at(0))?;
    }
    let good = head_file(&path);
    let hash = good
        .trim_end()
        .split_once(':')
        .expect("SEQ:HASH")
        .1
        .to_string();
    for bad in [
        String::new(),
        "1:".into(),
        format!("1:{hash}"),
        format!("0:{hash}\n"),
        format!("x:{hash}\n"),
        format!("+1:{hash}\n"),
        format!("1:{}\n", hash.to_uppercase()),
        format!("1:{}\n", &hash[1..]),
        format!("1:{hash}\n\n"),
        "\u{0}\u{0}\u{0}".into(),
    ] {
        fs::write(path.join("accord.head"), &bad)?;
        let (_, detail) = corrupt_detail(Store::open_existing(&path));
        assert!(
            detail.contains("accord.head is damaged"),
            "{bad:?}: {detail}"
        );
    }
    fs::write(path.join("accord.head"), &good)?;
    Store::open_existing(&path)?;
    Ok(())
}

#[test]
fn verify_checks_the_head_file_too() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s");
    let store = Store::create_or_open(&path)?;
    store.append(&[ev("a", b"1")], at(0))?;
    let hash = store.head()?.expect("head").hash_hex();
    // Changed behind the open store's back.
    fs::write(path.join("accord.head"), format!("5:{hash}\n"))?;
    match store.verify() {
        Err(StoreError::Corrupt { seq, detail }) => {
            assert_eq!(seq, Some(2));
            assert!(detail.contains("lost acknowledged events"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

/// Regression: a reader used to let sled reinitialize a directory whose `db`
/// was not a sled file, printing an empty log instead of refusing.
#[test]
fn a_reader_refuses_a_directory_with_a_foreign_db_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db"), b"garbage").unwrap();
    let err = store::Store::open_existing(dir.path())
        .err()
        .expect("refused");
    assert!(
        matches!(err, store::StoreError::Corrupt { .. }),
        "got {err:?}"
    );
    assert_eq!(std::fs::read(dir.path().join("db")).unwrap(), b"garbage");
    assert!(!dir.path().join("conf").exists());
}
