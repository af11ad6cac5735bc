//! Queries answered from checkpoints (as known now) must equal a full replay
//! of the log (`ACCORD_FULL_REPLAY=1` forces one), on every date, after an
//! import, after backdated appends and after a reversal; `verify` recomputes
//! the checkpoints and indexes and must agree. Checkpoints are taken every
//! 97 events here (`ACCORD_CHECKPOINT_EVERY`) so that a small log has many.

use std::path::Path;

use accord_bench::workload;

const EVERY: &str = "97";

/// `accord ARGS` with a checkpoint every `EVERY` events; must exit 0.
fn accord(store: &Path, args: &[&str]) -> String {
    let mut cmd = testkit::accord(store);
    cmd.env("ACCORD_CHECKPOINT_EVERY", EVERY)
        .env("NO_COLOR", "1")
        .args(args);
    testkit::checked(&mut cmd, args).stdout
}

/// Past transaction times to ask at: in the middle of the import, its last event, and one
/// event before the head (when the head is past them).
fn known_seqs(head: &str) -> Vec<String> {
    let head: u64 = head.parse().unwrap();
    let mut seqs: Vec<u64> = [1000, 2000, head.saturating_sub(1)]
        .into_iter()
        .filter(|s| (1..head).contains(s))
        .collect();
    seqs.dedup();
    seqs.iter().map(u64::to_string).collect()
}

fn head_seq(store: &Path) -> String {
    let head = accord(store, &["head"]);
    head.trim().split(':').next().unwrap().to_string()
}

/// Every report, on `dates`, from checkpoints and from a full replay.
fn same_answers(store: &Path, dates: &[String]) {
    let seq = head_seq(store);
    for d in dates {
        for cmd in [
            vec!["ownership", "--format", "json"],
            vec!["obligations", "--all", "--format", "json"],
            vec!["rights", "--all", "--format", "json"],
            vec!["position", "p1", "--all", "--format", "json"],
        ] {
            let mut fast: Vec<&str> = cmd.clone();
            fast.extend(["--as-of", d]);
            assert_eq!(
                accord(store, &fast),
                testkit::replayed(store, &fast),
                "{cmd:?} as of {d}"
            );
            // As known at every earlier batch boundary and in the middle of the import.
            for known in known_seqs(&seq) {
                let mut past = fast.clone();
                past.extend(["--known-at", &known]);
                assert_eq!(
                    accord(store, &past),
                    testkit::replayed(store, &past),
                    "{cmd:?} as of {d}, known at {known}"
                );
            }
        }
    }
    assert!(accord(store, &["verify"]).starts_with("ok"));
}

// Each test runs on the embedded store and again on PostgreSQL.
testkit::both_backends! {
    #[test]
    fn checkpoints_answer_like_a_replay() {
        let (dir, store) = testkit::temp_store();
        let w = workload::generate(2000, 7).unwrap();
        let file = dir.path().join("w.jsonl");
        let mut text = Vec::new();
        w.write_jsonl(&mut text).unwrap();
        std::fs::write(&file, &text).unwrap();
        accord(&store, &["append", file.to_str().unwrap()]);

        let last = w.last_day();
        let mut dates: Vec<String> = [0, 1, 400, 1200, 2500, last / 2, last - 1, last, last + 30]
            .iter()
            .map(|d| workload::date_str(*d))
            .collect();
        dates.push("2014-01-01".into());
        same_answers(&store, &dates);

        // A backdated settlement, a normal one, then a reversal of the backdated one.
        let back = dir.path().join("back.jsonl");
        std::fs::write(&back, w.probe_settlement("probe-back", last / 3)).unwrap();
        accord(&store, &["append", back.to_str().unwrap()]);
        let normal = dir.path().join("normal.jsonl");
        std::fs::write(&normal, w.probe_settlement("probe-late", last + 1)).unwrap();
        accord(&store, &["append", normal.to_str().unwrap()]);
        let reversal = format!(
            "{{\"id\": \"undo-probe-back\", \"type\": \"event_reversed\", \"effective\": \"{}\", \"reverses\": \"probe-back\", \"reason\": \"test\"}}\n",
            workload::date_str(last + 2)
        );
        let rev = dir.path().join("rev.jsonl");
        std::fs::write(&rev, reversal).unwrap();
        accord(&store, &["append", rev.to_str().unwrap()]);
        dates.push(workload::date_str(last / 3));
        dates.push(workload::date_str(last + 2));
        same_answers(&store, &dates);
    }
}
