//! Bitemporal answers from the keys (`engine::known_at`) must equal a replay of the whole
//! log, for every form of known-at, on random logs with backdated events and reversals.
//!
//! Each case generates a valid workload (backdated settlements and transfers, reversals),
//! cuts it into batches at random places and appends them one by one with a clock that moves
//! a second per batch, so reversals are often recorded batches after what they reverse. Then
//! backdated probe settlements and reversals of them follow, one batch each. With a
//! checkpoint every few dozen events and corrections merged after a handful, every path of
//! the keys is used. Then, on several dates, as known at: everything, every batch boundary
//! and the seqs either side of it, random seqs, each batch's recorded time and the instant
//! before it, the ledger from the keys must equal `project_events` over the decoded log; and
//! what-if files (a backdated settlement, a reversal, an over-settlement that is refused)
//! must answer as the replay path does, refusals included; so must restatements (`diff`)
//! between pairs of those transaction times, timelines of one entity and the ledger journal
//! of `export --format ledger`.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use accord_bench::workload::{self, Rng};
use chrono::{DateTime, TimeZone, Utc};
use domain::values::{Date, Slug};
use domain::KnownAt;
use engine::{Access, Config, Engine, EventFile, Options, Parsed, Query, WhatIf};
use proptest::prelude::*;

/// A clock that moves one second per reading from 2026-01-01 (one reading per batch).
fn config(seconds: Arc<AtomicI64>, full_replay: bool) -> Config {
    let mut c = Config::new(move || {
        let s = seconds.fetch_add(1, Ordering::SeqCst);
        start() + chrono::Duration::seconds(s)
    });
    c.checkpoint_every = 41;
    c.max_corrections = 3;
    c.full_replay = full_replay;
    c
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn append(engine: &Engine, name: &str, text: String) {
    let parsed = Parsed::files(vec![EventFile::new(name, text)]).expect("the batch parses");
    engine
        .append(parsed, &Options::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn reversal(id: &str, target: &str, day: u32) -> String {
    format!(
        "{{\"id\": \"{id}\", \"type\": \"event_reversed\", \"effective\": \"{}\", \"reverses\": \"{target}\", \"reason\": \"test\"}}\n",
        workload::date_str(day)
    )
}

/// Builds the store; returns the seqs at which batches end.
fn build(path: &Path, seed: u64, cuts: usize, seconds: &Arc<AtomicI64>) -> (Vec<u64>, u32) {
    let w = workload::generate(1000, seed).unwrap();
    let mut text = Vec::new();
    w.write_jsonl(&mut text).unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
    let engine = Engine::open(path, Access::Write, config(seconds.clone(), false)).unwrap();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut ends: Vec<usize> = (0..cuts)
        .map(|_| 1 + rng.below(lines.len() as u64 - 1) as usize)
        .collect();
    ends.push(lines.len());
    ends.sort_unstable();
    ends.dedup();
    let mut from = 0;
    let mut boundaries = Vec::new();
    for (k, end) in ends.into_iter().enumerate() {
        append(
            &engine,
            &format!("part{k}"),
            lines[from..end].join("\n") + "\n",
        );
        from = end;
        boundaries.push(engine.head().unwrap().map_or(0, |h| h.seq));
    }
    let last = w.last_day();
    // Backdated probes, one batch each, and reversals of some of them in later batches.
    for k in 0..6u32 {
        let day = 1 + rng.below(u64::from(last)) as u32;
        append(
            &engine,
            "probe",
            w.probe_settlement(&format!("probe-{k}"), day) + "\n",
        );
        boundaries.push(engine.head().unwrap().unwrap().seq);
        if k % 2 == 1 {
            append(
                &engine,
                "undo",
                reversal(&format!("undo-{k}"), &format!("probe-{}", k - 1), last + k),
            );
            boundaries.push(engine.head().unwrap().unwrap().seq);
        }
    }
    (boundaries, last)
}

fn known_ats(boundaries: &[u64], rng: &mut Rng) -> Vec<KnownAt> {
    let head = *boundaries.last().unwrap();
    let mut out = vec![KnownAt::Everything, KnownAt::Seq(head + 5)];
    for (k, b) in boundaries.iter().enumerate() {
        for s in [b.saturating_sub(1), *b, b + 1] {
            if s > 0 {
                out.push(KnownAt::Seq(s));
            }
        }
        let t = start() + chrono::Duration::seconds(k as i64);
        out.push(KnownAt::Time(t));
        out.push(KnownAt::Time(t - chrono::Duration::microseconds(1)));
    }
    for _ in 0..6 {
        out.push(KnownAt::Seq(1 + rng.below(head)));
    }
    out.push(KnownAt::Time(start() - chrono::Duration::days(1)));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn answers_from_the_keys_equal_a_replay(seed in 0u64..1_000_000, cuts in 1usize..12) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let seconds = Arc::new(AtomicI64::new(0));
        let (boundaries, last) = build(&path, seed, cuts, &seconds);
        let fast = Engine::open(&path, Access::Read, config(seconds.clone(), false)).unwrap();
        let verified = fast.verify(None).unwrap();
        prop_assert!(verified.streamed, "a healthy store is verified in one streamed pass");
        let log = fast.events().unwrap();
        let mut rng = Rng::new(seed);
        let days = [0, 1 + rng.below(u64::from(last)) as u32, last / 3, last / 2, last, last + 20];
        let knowns = known_ats(&boundaries, &mut rng);
        for day in days {
            let as_of = Date::parse(&workload::date_str(day)).unwrap();
            for known_at in &knowns {
                let query = Query { as_of, known_at: *known_at };
                let from_keys = fast.projection(&query, None, None).unwrap();
                let replayed = engine::project_events(&log, &query).unwrap();
                prop_assert!(
                    from_keys.ledger == replayed.ledger,
                    "as of {as_of}, known at {known_at:?}: the keys' answer differs from a replay"
                );
            }
        }
        drop(fast);

        // What-if, from the keys and by a replay: the same answers and the same refusals.
        let w = workload::generate(1000, seed).unwrap();
        let files = [
            w.probe_settlement("what-if-back", last / 4),
            w.probe_settlement("what-if-late", last + 3),
            reversal("what-if-undo", "probe-0", last + 30),
            // Already reversed: refused.
            reversal("what-if-undo-again", "probe-2", last + 30),
            // An id recorded with other content: refused.
            w.probe_settlement("probe-1", last + 1),
            // More than the obligation: refused.
            w.probe_settlement("what-if-big", last / 4).replace("\"1.00\"", "\"100000000000.00\""),
        ];
        let entities: Vec<Slug> = (0..3).map(|p| Slug::parse(&workload::party_id(p)).unwrap()).collect();
        let mut answers = Vec::new();
        let mut reports = Vec::new();
        for full_replay in [false, true] {
            let engine = Engine::open(&path, Access::Read, config(seconds.clone(), full_replay)).unwrap();
            // Restatements between pairs of transaction times, and one entity's timeline.
            let mut these = Vec::new();
            for day in [days[1], last / 2, last] {
                let as_of = Date::parse(&workload::date_str(day)).unwrap();
                for pair in knowns.windows(2).step_by(3) {
                    let diff = engine.diff(as_of, pair[0], pair[1]).map_err(|e| e.to_string());
                    these.push(format!("diff as of {as_of} from {:?} to {:?}: {diff:?}", pair[0], pair[1]));
                }
                for known_at in knowns.iter().step_by(4) {
                    for e in &entities {
                        let query = Query { as_of, known_at: *known_at };
                        let t = engine.timeline(&query, Some(e)).map_err(|e| e.to_string());
                        these.push(format!("timeline of {e} as of {as_of} known at {known_at:?}: {t:?}"));
                    }
                }
            }
            // The ledger journal, written in one pass from the keys or from the decoded log.
            for known_at in knowns.iter().step_by(5) {
                for as_of in [None, Some(Date::parse(&workload::date_str(last / 2)).unwrap())] {
                    let mut journal = Vec::new();
                    let r = engine.export_ledger(as_of, *known_at, &mut journal).map_err(|e| e.to_string());
                    these.push(format!("journal as of {as_of:?} known at {known_at:?}: {r:?}\n{}", String::from_utf8_lossy(&journal)));
                }
            }
            reports.push(these);
            let mut these = Vec::new();
            for text in &files {
                let what_if = WhatIf::parse(&EventFile::new("what-if.jsonl", text.clone() + "\n")).unwrap();
                for day in [last / 5, last / 4, last, last + 40] {
                    let query = Query::as_of(Date::parse(&workload::date_str(day)).unwrap());
                    let answer = engine.projection(&query, None, Some(&what_if)).map(|p| p.ledger).map_err(|e| e.to_string());
                    these.push((text.clone(), day, answer));
                }
            }
            answers.push(these);
        }
        for (fast, slow) in reports[0].iter().zip(&reports[1]) {
            prop_assert!(fast == slow, "from the keys:\n{fast}\nby a replay:\n{slow}");
        }
        for (fast, slow) in answers[0].iter().zip(&answers[1]) {
            prop_assert!(fast == slow, "what-if {} as of day {}: {:?} / {:?}", fast.0, fast.1, fast.2.as_ref().err(), slow.2.as_ref().err());
        }
    }
}

/// A reversed party registration, the party registered again, then a backdated change of
/// another party: the checkpoints' history of that other party must fold as the log does
/// (the reversed registration left out), so `verify` passes, and every answer as known at
/// each seq equals a replay. (A second reading of the history check found `verify`
/// refusing this valid store.)
#[test]
fn history_folds_around_a_reversed_registration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let seconds = Arc::new(AtomicI64::new(0));
    let mut c = config(seconds.clone(), false);
    c.checkpoint_every = 2;
    let engine = Engine::open(&path, Access::Write, c).unwrap();
    let register = |id: &str, party: &str, day: &str| {
        format!("{{\"id\": \"{id}\", \"type\": \"party_registered\", \"effective\": \"2020-01-{day}\", \"party\": \"{party}\", \"name\": \"{party}\", \"kind\": \"corporation\"}}\n")
    };
    let update = |id: &str, day: &str| {
        format!("{{\"id\": \"{id}\", \"type\": \"party_updated\", \"effective\": \"2020-01-{day}\", \"party\": \"bob\", \"name\": \"Bob {id}\"}}\n")
    };
    append(
        &engine,
        "one",
        register("a1", "alice", "01")
            + &register("b1", "bob", "01")
            + &update("u2", "02")
            + &update("u3", "03")
            + &update("u4", "04"),
    );
    append(&engine, "two", "{\"id\": \"undo-a1\", \"type\": \"event_reversed\", \"effective\": \"2020-01-05\", \"reverses\": \"a1\", \"reason\": \"test\"}\n".to_string());
    append(&engine, "three", register("a2", "alice", "02"));
    append(&engine, "four", update("u5", "02"));
    let verified = engine.verify(None).expect("the store verifies");
    assert!(
        verified.streamed,
        "a healthy store is verified in one streamed pass"
    );
    let log = engine.events().unwrap();
    let head = log.len() as u64;
    for day in ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-10"] {
        for known in 1..=head {
            let query = Query {
                as_of: Date::parse(day).unwrap(),
                known_at: KnownAt::Seq(known),
            };
            let from_keys = engine.projection(&query, None, None).unwrap().ledger;
            let replayed = engine::project_events(&log, &query).unwrap().ledger;
            assert!(from_keys == replayed, "as of {day}, known at {known}");
        }
    }
}

/// Copies the store directory `from` to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every kind of query key, removed, changed, given another key's value or added to: the
/// streamed `verify` gives exactly the verdict of the reference check over the log decoded
/// whole (which it falls back to for every store it does not accept), and the damage the
/// reference catches is caught.
#[test]
fn a_tampered_key_gets_the_same_verdict_streamed_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let seconds = Arc::new(AtomicI64::new(0));
    build(&path, 7, 5, &seconds);
    let verdict = |store: &Path, full: bool| -> Result<bool, String> {
        let engine = Engine::open(store, Access::Read, config(seconds.clone(), full)).unwrap();
        engine
            .verify(None)
            .map(|v| v.streamed)
            .map_err(|e| e.to_string())
    };
    assert_eq!(verdict(&path, false), Ok(true));
    assert_eq!(verdict(&path, true), Ok(false));
    let keys: Vec<(Vec<u8>, Vec<u8>)> = {
        let store = store::Store::open_existing(&path).unwrap();
        let read = store.read();
        store::Snapshot::aux_range(&read, b"", &[0xff], false).unwrap()
    };
    // The keys by kind: the part before the first `/`, or the whole key.
    type Entry = (Vec<u8>, Vec<u8>);
    let mut kinds: std::collections::BTreeMap<Vec<u8>, Vec<Entry>> =
        std::collections::BTreeMap::new();
    for (k, v) in &keys {
        let kind = k.split(|b| *b == b'/').next().unwrap().to_vec();
        kinds.entry(kind).or_default().push((k.clone(), v.clone()));
    }
    for kind in [
        "ck", "cl", "cp", "cs", "oh", "ov", "ag", "at", "dx", "rv", "rs", "pt",
    ] {
        assert!(
            kinds.contains_key(kind.as_bytes()),
            "the store has {kind} keys"
        );
    }
    let mut tampers: Vec<(String, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for (kind, list) in &kinds {
        let name = String::from_utf8_lossy(kind).to_string();
        let mut chosen = vec![&list[0], &list[list.len() / 2], &list[list.len() - 1]];
        chosen.dedup();
        for (i, (k, v)) in chosen.iter().enumerate() {
            let shown = String::from_utf8_lossy(k).to_string();
            tampers.push((format!("{shown} removed"), k.clone(), None));
            if let Some(last) = v.last() {
                let mut changed = v.clone();
                *changed.last_mut().unwrap() = last.wrapping_add(1);
                tampers.push((
                    format!("{shown}: last byte changed"),
                    k.clone(),
                    Some(changed),
                ));
                tampers.push((
                    format!("{shown}: cut short"),
                    k.clone(),
                    Some(v[..v.len() - 1].to_vec()),
                ));
            }
            let mut longer = v.clone();
            longer.push(0);
            tampers.push((format!("{shown}: a byte added"), k.clone(), Some(longer)));
            if let Some((_, other)) = list.iter().find(|(_, o)| o != v) {
                tampers.push((
                    format!("{shown}: another {name} key's value"),
                    k.clone(),
                    Some(other.clone()),
                ));
            }
            if i == 0 && k.len() > kind.len() {
                let mut added = k.clone();
                *added.last_mut().unwrap() ^= 1;
                if !keys.iter().any(|(o, _)| *o == added) {
                    tampers.push((
                        format!("{shown}: a {name} key added"),
                        added,
                        Some(v.clone()),
                    ));
                }
            }
        }
    }
    // A checkpoint stating a larger size than its encoding has: the decoder would cut its
    // output back without a word; the check must not.
    let (k, v) = &kinds[b"cp".as_slice()][0];
    let mut larger = v.clone();
    larger[0] = larger[0].wrapping_add(1);
    tampers.push(("a checkpoint's stated size".into(), k.clone(), Some(larger)));
    let mut caught = 0;
    for (n, (what, key, value)) in tampers.iter().enumerate() {
        let copy = dir.path().join(format!("t{n}"));
        copy_dir(&path, &copy);
        {
            let db = sled::open(&copy).unwrap();
            let mut full = b"aux".to_vec();
            full.extend_from_slice(key);
            match value {
                Some(v) => db.insert(full, v.clone()).unwrap(),
                None => db.remove(full).unwrap(),
            };
            db.flush().unwrap();
        }
        let streamed = verdict(&copy, false);
        let reference = verdict(&copy, true);
        assert_eq!(
            streamed.clone().map(|_| ()),
            reference.clone().map(|_| ()),
            "{what}: streamed {streamed:?}, reference {reference:?}"
        );
        if what.ends_with("stated size") {
            assert!(streamed.is_err(), "{what}: {streamed:?}");
        }
        if streamed.is_err() {
            caught += 1;
        } else {
            // Accepted by both: only the reference may have been used if the keys are not
            // current any more (a changed `ck`).
            assert!(
                streamed == Ok(true) || key == b"ck",
                "{what}: accepted, but not streamed"
            );
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
    assert!(
        caught * 10 >= tampers.len() * 8,
        "{caught} of {} tampers caught",
        tampers.len()
    );
}
