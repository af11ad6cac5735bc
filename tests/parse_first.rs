//! An event file is parsed before any store is opened: a file that does not parse is refused
//! (exit 1) without creating a store, and wins over a store held by another process.

use testkit::{accord, run, sample_store};

#[test]
fn a_file_that_does_not_parse_creates_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n").unwrap();
    let store = dir.path().join("new.db");
    for args in [
        vec!["append", bad.to_str().unwrap()],
        vec!["append", "--dry-run", bad.to_str().unwrap()],
        vec!["import", dir.path().to_str().unwrap()],
    ] {
        let r = run(accord(&store).args(&args));
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains("line 1"), "{args:?}: {}", r.stderr);
        assert!(!store.exists(), "{args:?} created the store");
    }
}

#[test]
fn a_file_that_does_not_parse_is_refused_even_when_the_store_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": 1}\n").unwrap();
    let _held = store::Store::open_existing(&store).expect("the test holds the store");
    let r = run(accord(&store).args(["append", bad.to_str().unwrap()]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
}
