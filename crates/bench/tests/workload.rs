//! The generated workload is valid by the rules of `domain` itself: a batch
//! of N events on an empty log is accepted whole, with backdated events,
//! reversals and many settlements in it, and the bench's single appends are
//! accepted on top of it. No timing here: the benchmark measures, tests check.

use accord_bench::workload::{self, Workload, LAST_DAY};
use chrono::{TimeZone, Utc};
use domain::{parse_jsonl, plan_batch, BatchEvent, Event, Payload, RecordedEvent};

fn events_of(w: &Workload) -> Vec<BatchEvent> {
    let mut jsonl = Vec::new();
    w.write_jsonl(&mut jsonl).unwrap();
    let text = String::from_utf8(jsonl).unwrap();
    parse_jsonl(&text)
        .unwrap_or_else(|e| panic!("the workload does not parse: {e}"))
        .into_iter()
        .map(|(line, event)| BatchEvent {
            line: Some(line),
            event,
        })
        .collect()
}

fn check(n: usize, seed: u64) {
    let w = workload::generate(n, seed).unwrap();
    let batch = events_of(&w);
    assert_eq!(batch.len(), n);

    let plan = plan_batch(&[], &batch).unwrap_or_else(|e| panic!("seed {seed}: refused: {e}"));
    assert_eq!(plan.new.len(), n, "every event is new");
    assert_eq!(plan.skipped, 0);

    // Backdated: effective before an event earlier in the file.
    let mut latest = None;
    let mut backdated = 0;
    let (mut reversals, mut settlements) = (0, 0);
    for b in &batch {
        let e: &Event = &b.event;
        if latest.is_some_and(|l| e.effective < l) {
            backdated += 1;
        }
        latest = latest.max(Some(e.effective));
        match e.payload {
            Payload::EventReversed(_) => reversals += 1,
            Payload::ObligationSettled(_) => settlements += 1,
            _ => {}
        }
    }
    assert!(backdated >= 1, "seed {seed}: no backdated event");
    assert!(reversals >= 1, "seed {seed}: no reversal");
    assert!(
        settlements >= n / 4,
        "seed {seed}: only {settlements} settlements"
    );
    let stats = w.stats();
    assert_eq!(stats.backdated, backdated);
    assert_eq!(stats.reversals, reversals);
    assert_eq!(stats.settlements, settlements);

    // The bench's single appends, after the last date and backdated to the
    // middle of the range, are accepted on the recorded log.
    let recorded = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let log: Vec<RecordedEvent> = batch
        .into_iter()
        .enumerate()
        .map(|(i, b)| RecordedEvent {
            seq: i as u64 + 1,
            recorded,
            event: b.event,
        })
        .collect();
    let probes: Vec<BatchEvent> = (1..=5)
        .flat_map(|k| {
            [
                w.probe_settlement(&format!("bench-normal-{k}"), LAST_DAY + 1),
                w.probe_settlement(&format!("bench-backdated-{k}"), LAST_DAY / 2),
            ]
        })
        .map(|line| BatchEvent {
            line: None,
            event: Event::from_line(&line).unwrap(),
        })
        .collect();
    let plan = plan_batch(&log, &probes).unwrap_or_else(|e| panic!("probe refused: {e}"));
    assert_eq!(plan.new.len(), probes.len());
}

#[test]
fn a_workload_of_3000_events_is_valid() {
    check(3000, 42);
}

#[test]
fn a_workload_with_another_seed_is_valid() {
    check(3000, 20_251_028);
}

#[test]
fn the_ledger_journal_has_a_transaction_per_money_event() {
    let w = workload::generate(3000, 42).unwrap();
    let mut journal = Vec::new();
    w.write_ledger(&mut journal).unwrap();
    let text = String::from_utf8(journal).unwrap();
    let transactions = text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .count();
    let s = w.stats();
    // Reversed settlements are left out.
    let expected =
        s.obligations + s.settlements - s.reversals + s.amendments + s.releases + s.investments;
    assert_eq!(transactions, expected);
}
