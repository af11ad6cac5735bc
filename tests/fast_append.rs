//! Appends validated against the aggregates they touch (`fast_append`) must
//! behave exactly like appends validated against the whole log: the same
//! acceptances, the same refusals with the same words, and afterwards the
//! same reports. Two stores get the same generated log and then the same
//! random batches (settlements, transfers, registrations, reversals, re-sent
//! and conflicting ids, new obligations and rights, backdated or not); one
//! takes the full path (`ACCORD_FULL_APPEND=1`). Checkpoints are taken every
//! 25 events and rewritten after 8 corrections, so that corrections, merged
//! corrections and new checkpoints all happen on a small log; the fast
//! store's queries must equal a full replay of it, and `verify` must agree.

use std::path::{Path, PathBuf};

use accord_bench::workload::{self, Rng, Workload};
use testkit::Run;

/// `accord ARGS` with checkpoints every 25 events, rewritten after 8
/// corrections; `full` validates appends against the whole log.
fn accord(store: &Path, full: bool, args: &[&str]) -> Run {
    let mut cmd = testkit::accord(store);
    cmd.env("ACCORD_CHECKPOINT_EVERY", "25")
        .env("ACCORD_MAX_CORRECTIONS", "8")
        .env("NO_COLOR", "1")
        .args(args);
    if full {
        cmd.env("ACCORD_FULL_APPEND", "1");
    } else {
        cmd.env_remove("ACCORD_FULL_APPEND");
    }
    testkit::run(&mut cmd)
}

fn ok(store: &Path, args: &[&str]) -> String {
    let r = accord(store, false, args);
    assert_eq!(r.code, 0, "accord {args:?}: {}", r.stderr);
    r.stdout
}

/// Hashes differ between the two stores (their recorded times differ).
fn mask_hashes(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '"' || c == ',')
        .map(|w| {
            if w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                "HASH"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One random batch of 1 to 3 events; `sent` holds the lines accepted so far.
fn batch(w: &Workload, rng: &mut Rng, step: usize, sent: &[String]) -> String {
    let events = w.events.len() as u64;
    let last = w.last_day();
    let parties = w.parties.len() as u64;
    let mut lines = Vec::new();
    for k in 0..=rng.below(3) as usize {
        let id = format!("s{step}-{k}");
        // Mostly backdated into the log, sometimes after its end.
        let day = if rng.below(3) == 0 {
            last + rng.below(20) as u32
        } else {
            rng.below(u64::from(last)) as u32
        };
        let date = workload::date_str(day);
        let party = |rng: &mut Rng| workload::party_id(rng.below(parties) as u32);
        let line = match rng.below(12) {
            0..=2 => {
                let o = rng.below(w.obligations.len() as u64) as u32;
                let currency = w.obligations[o as usize].currency.code();
                // Small amounts pass, huge ones overdraw (now or later).
                let cents = if rng.below(4) == 0 {
                    rng.range(1, 1 << 50)
                } else {
                    rng.range(1, 100_000)
                };
                format!(
                    r#"{{"id":"{id}","type":"obligation_settled","effective":"{date}","obligation":"{}","amount":{{"amount":"{}","currency":"{currency}"}}}}"#,
                    workload::obligation_id(o),
                    workload::cents(cents)
                )
            }
            3..=4 => {
                let issuer = workload::party_id(rng.below(w.entities as u64) as u32);
                let units = if rng.below(3) == 0 {
                    rng.range(1, 1 << 40)
                } else {
                    rng.range(1, 5000)
                };
                format!(
                    r#"{{"id":"{id}","type":"shares_transferred","effective":"{date}","issuer":"{issuer}","from":"{}","to":"{}","units":"{units}"}}"#,
                    party(rng),
                    party(rng)
                )
            }
            5..=6 => {
                // Any recorded event, or one sent earlier in this test.
                let target = if !sent.is_empty() && rng.below(2) == 0 {
                    let line = &sent[rng.below(sent.len() as u64) as usize];
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    v["id"].as_str().unwrap().to_string()
                } else {
                    workload::event_id(rng.range(1, events + 1) as u32)
                };
                format!(
                    r#"{{"id":"{id}","type":"event_reversed","effective":"{date}","reverses":"{target}","reason":"test"}}"#
                )
            }
            7 => {
                // A new party, or one registered already.
                let p = if rng.below(2) == 0 {
                    format!("new-{step}-{k}")
                } else {
                    party(rng)
                };
                format!(
                    r#"{{"id":"{id}","type":"party_registered","effective":"{date}","party":"{p}","name":"P","kind":"fund"}}"#
                )
            }
            8 => match sent.get(rng.below(sent.len() as u64 + 1) as usize) {
                // Re-sent identically.
                Some(earlier) if rng.below(2) == 0 => earlier.clone(),
                // The same id with other content.
                Some(earlier) => {
                    let mut v: serde_json::Value = serde_json::from_str(earlier).unwrap();
                    v["note"] = "changed".into();
                    v.to_string()
                }
                // A line of the generated log, re-sent.
                None => w.event_json(rng.below(events) as u32).to_string(),
            },
            9 => format!(
                r#"{{"id":"{id}","type":"obligation_incurred","effective":"{date}","obligation":"ob-{id}","kind":"loan","obligor":"{}","amount":{{"amount":"100.00","currency":"USD"}}}}"#,
                party(rng)
            ),
            10 => format!(
                r#"{{"id":"{id}","type":"investment_made","effective":"{date}","investor":"{}","investee":"{}","amount":{{"amount":"3.00","currency":"EUR"}}}}"#,
                party(rng),
                party(rng)
            ),
            _ => {
                let r = rng.below(w.rights.len() as u64 + 2) as u32;
                format!(
                    r#"{{"id":"{id}","type":"right_ended","effective":"{date}","right":"{}"}}"#,
                    workload::right_id(r)
                )
            }
        };
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

fn import(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let store = testkit::store_at(dir, name);
    let file = dir.join(format!("{name}.jsonl"));
    std::fs::write(&file, text).unwrap();
    ok(&store, &["append", file.to_str().unwrap()]);
    store
}

// Each test runs on the embedded store and again on PostgreSQL.
testkit::both_backends! {
    #[test]
    fn fast_appends_decide_like_full_ones() {
        let dir = tempfile::tempdir().unwrap();
        let w = workload::generate(1500, 11).unwrap();
        let mut text = Vec::new();
        w.write_jsonl(&mut text).unwrap();
        let fast = import(dir.path(), "fast", &text);
        let full = import(dir.path(), "full", &text);

        let mut rng = Rng::new(5);
        let mut sent: Vec<String> = Vec::new();
        let (mut accepted, mut refused) = (0, 0);
        for step in 0..90 {
            let text = batch(&w, &mut rng, step, &sent);
            let file = dir.path().join(format!("step{step}.jsonl"));
            std::fs::write(&file, &text).unwrap();
            let file = file.to_str().unwrap();
            let a = accord(&fast, false, &["append", file]);
            let b = accord(&full, true, &["append", file]);
            assert_eq!(
                (
                    a.code,
                    mask_hashes(&a.stdout),
                    a.stderr.replace(&*fast.to_string_lossy(), "S")
                ),
                (
                    b.code,
                    mask_hashes(&b.stdout),
                    b.stderr.replace(&*full.to_string_lossy(), "S")
                ),
                "step {step}:\n{text}"
            );
            if a.code == 0 {
                accepted += 1;
                sent.extend(text.lines().map(str::to_string));
            } else {
                refused += 1;
            }
        }
        // The random batches must exercise both outcomes.
        assert!(
            accepted >= 20 && refused >= 20,
            "{accepted} accepted, {refused} refused"
        );

        let last = w.last_day();
        for day in [
            0,
            200,
            last / 3,
            last / 2,
            last - 1,
            last,
            last + 10,
            last + 40,
        ] {
            let d = workload::date_str(day);
            for cmd in [
                vec!["ownership", "--format", "json"],
                vec!["obligations", "--all", "--format", "json"],
                vec!["rights", "--all", "--format", "json"],
                vec!["position", "p1", "--all", "--format", "json"],
            ] {
                let mut args = cmd.clone();
                args.extend(["--as-of", &d]);
                let answer = ok(&fast, &args);
                assert_eq!(answer, ok(&full, &args), "{args:?}: the two stores differ");
                assert_eq!(
                    answer,
                    testkit::replayed(&fast, &args),
                    "{args:?}: checkpoints differ from a replay"
                );
            }
        }
        for store in [&fast, &full] {
            assert!(ok(store, &["verify"]).starts_with("ok"));
        }
    }

    /// Appends one at a time after the end of the log take new checkpoints from
    /// the last one (every 25 events here): each must equal a replay.
    #[test]
    fn appends_after_the_end_take_checkpoints_that_match_a_replay() {
        let dir = tempfile::tempdir().unwrap();
        let w = workload::generate(1000, 3).unwrap();
        let mut text = Vec::new();
        w.write_jsonl(&mut text).unwrap();
        let store = import(dir.path(), "store", &text);
        let last = w.last_day();
        let before = ok(&store, &["head"]);
        for k in 0..60u32 {
            let day = last + 1 + k / 2;
            let file = dir.path().join(format!("late{k}.jsonl"));
            std::fs::write(&file, w.probe_settlement(&format!("late-{k}"), day)).unwrap();
            ok(&store, &["append", file.to_str().unwrap()]);
        }
        assert_ne!(ok(&store, &["head"]), before);
        for day in (last..last + 32).step_by(3) {
            let d = workload::date_str(day);
            for cmd in [
                vec!["obligations", "--all", "--format", "json"],
                vec!["position", "p1", "--all", "--format", "json"],
            ] {
                let mut args = cmd.clone();
                args.extend(["--as-of", &d]);
                assert_eq!(ok(&store, &args), testkit::replayed(&store, &args), "{args:?}");
            }
        }
        assert!(ok(&store, &["verify"]).starts_with("ok"));
    }
}
