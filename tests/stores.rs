//! Where a store may be made (CLI.md, Stores): only at a path that does not exist yet, whose
//! parent does, or in an empty directory; a regular file or a directory of other things is
//! refused with exit 4 and left as it was; and nothing refused creates anything.

use std::path::Path;

use testkit::{accord, root, run, Run};

const PARTY: &str = r#"{"id": "p-1", "type": "party_registered", "effective": "2020-01-01", "party": "alice", "name": "Alice", "kind": "individual"}"#;

fn append(store: &Path) -> Run {
    run(accord(store)
        .args(["append", "-"])
        .write_stdin(PARTY.to_string()))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn missing_parents_are_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("no/such/dir/x.db");
    let r = append(&store);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn a_directory_of_other_files_is_not_made_a_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    std::fs::write(dir.path().join("photo.jpg"), "mine too").unwrap();
    for args in [vec!["append", "-"], vec!["log"], vec!["ownership"]] {
        let r = run(accord(dir.path())
            .args(&args)
            .write_stdin(PARTY.to_string()));
        assert_eq!(r.code, 4, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("is not an accord store") && r.stderr.contains("\"notes.txt\""),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(listing(dir.path()), ["notes.txt", "photo.jpg"], "{args:?}");
    }
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).unwrap(),
        b"mine"
    );
}

#[test]
fn a_regular_file_is_refused_for_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regular.txt");
    std::fs::write(&file, "hello").unwrap();
    for args in [vec!["append", "-"], vec!["head"]] {
        let r = run(accord(&file).args(&args).write_stdin(PARTY.to_string()));
        assert_eq!(r.code, 4, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("is a file, not an accord store"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("create one with"), "{}", r.stderr);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");
}

#[test]
fn an_empty_directory_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let r = append(dir.path());
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(accord(dir.path()).arg("verify"));
    assert!(r.stdout.starts_with("ok: 1 events"), "{r:?}");
}

#[test]
fn a_refused_append_or_record_on_a_missing_store_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("new.db");
    // Valid JSON, refused by a rule: no party registers `bob`.
    let bad = r#"{"id": "x", "type": "shares_issued", "effective": "2020-01-01", "issuer": "bob", "holder": "bob", "units": "1", "class": "common"}"#;
    let r = run(accord(&store)
        .args(["append", "-"])
        .write_stdin(bad.to_string()));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!store.exists(), "a refused append created the store");
    let r = run(accord(&store).args([
        "record",
        "obligation_settled",
        "--obligation",
        "nothing",
        "--amount",
        "$1",
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!store.exists(), "a refused record created the store");
    // Then a read still says there is no store (exit 4), not an empty answer.
    let r = run(accord(&store).args(["ownership"]));
    assert_eq!(r.code, 4, "{r:?}");
    // An import whose second file is refused: nothing at all.
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::copy(
        root().join("events/01-parties.jsonl"),
        files.join("01-parties.jsonl"),
    )
    .unwrap();
    std::fs::write(files.join("02-bad.jsonl"), bad).unwrap();
    let r = run(accord(&store).arg("import").arg(&files));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("02-bad.jsonl"), "{}", r.stderr);
    assert!(!store.exists(), "a refused import created the store");
}
