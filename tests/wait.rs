//! `--wait SECONDS` (default 5): a command waits for an embedded store that another process
//! holds, then exits 4 naming the holder where it can.

use std::time::{Duration, Instant};

use std::path::Path;
use std::process::{Child, Command, Stdio};

use testkit::{accord, run, sample_store};

/// `accord --store STORE ARGS` started in the background, with the default `--wait`.
fn spawn(store: &Path, args: &[&str]) -> Child {
    Command::new(testkit::bin())
        .env_remove("ACCORD_WAIT")
        .env_remove("ACCORD_STORE")
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn twenty_reads_started_together_all_answer() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let children: Vec<_> = (0..20)
        .map(|_| {
            spawn(
                &store,
                &["ownership", "--as-of", "2025-10-28", "--format", "json"],
            )
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let first = &outputs[0].stdout;
    for o in &outputs {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(&o.stdout, first);
    }
}

#[test]
fn a_held_store_is_waited_for_then_refused_naming_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let held = store::Store::open_existing_with(
        &store,
        &store::Opening {
            wait: Duration::ZERO,
            holder: Some("accord serve on 127.0.0.1:8080".into()),
        },
    )
    .unwrap();
    let started = Instant::now();
    let r = run(accord(&store).args(["--wait", "1", "head"]));
    let took = started.elapsed();
    assert_eq!(r.code, 4, "{r:?}");
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}");
    let pid = std::process::id();
    assert!(
        r.stderr
            .contains(&format!("(pid {pid}: accord serve on 127.0.0.1:8080)"))
            && r.stderr.contains("gave up after waiting 1 s"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    // `--wait 0` fails at once.
    let started = Instant::now();
    let r = run(accord(&store).args(["--wait", "0", "head"]));
    assert_eq!(r.code, 4, "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(900));
    drop(held);
}

#[test]
fn a_store_released_while_waiting_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let held = store::Store::open_existing(&store).unwrap();
    let child = spawn(&store, &["--wait", "10", "head"]);
    std::thread::sleep(Duration::from_millis(400));
    drop(held);
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("42:"));
}

#[test]
fn a_silent_holder_clears_what_an_earlier_holder_said() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    // `accord head` held the store before this test holds it silently: what it said of
    // itself is cleared, so no stale holder is named.
    let held = store::Store::open_existing(&store).unwrap();
    let r = run(accord(&store).args(["--wait", "0", "log"]));
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        !r.stderr.contains("pid"),
        "a stale holder was named: {}",
        r.stderr
    );
    drop(held);
}

#[test]
fn usage_lines_do_not_show_a_store_taken_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path());
    let o = Command::new(testkit::bin())
        .env("ACCORD_STORE", &store)
        .arg("position")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("Usage: accord position <PARTY>"), "{err}");
    // The environment still names the store, and a bad $ACCORD_WAIT is a usage error.
    let o = Command::new(testkit::bin())
        .env("ACCORD_STORE", &store)
        .arg("head")
        .output()
        .unwrap();
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("42:"));
    let o = Command::new(testkit::bin())
        .env("ACCORD_STORE", &store)
        .env("ACCORD_WAIT", "soon")
        .arg("head")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
