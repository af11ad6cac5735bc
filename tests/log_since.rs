//! `accord log --since N` reads only the records after N (issue 15: it costs what it shows,
//! not the log), and must show exactly the tail of the whole log: the same rows, with the
//! same "reversed by" marks, for every N, on both backends.

use testkit::{ok, ok_stdin};

testkit::both_backends! {
    #[test]
    fn every_tail_of_the_log_is_the_log_after_n() {
        let dir = tempfile::tempdir().unwrap();
        let store = testkit::sample_store(dir.path());
        // A settlement, its reversal, and an event after both: marks that span the cut.
        ok_stdin(
            &store,
            &["append", "-"],
            r#"{"id": "azure-2026-01", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}}
"#,
        );
        ok_stdin(
            &store,
            &["append", "-"],
            r#"{"id": "rev-azure-2026-01", "type": "event_reversed", "effective": "2026-01-31", "reverses": "azure-2026-01", "reason": "booked twice"}
{"id": "azure-2026-02", "type": "obligation_settled", "effective": "2026-02-28", "obligation": "azure-commitment", "amount": {"amount": "1000000000", "currency": "USD"}}
"#,
        );
        let head: u64 = ok(&store, &["head"]).trim().split(':').next().unwrap().parse().unwrap();
        let full = ok(&store, &["log", "--format", "csv"]);
        let mut lines = full.lines();
        let header = lines.next().unwrap().to_string();
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len() as u64, head);
        assert!(full.contains("rev-azure-2026-01"), "{full}");
        for n in 0..=head + 1 {
            let tail = ok(&store, &["log", "--since", &n.to_string(), "--format", "csv"]);
            let mut want = vec![header.as_str()];
            want.extend(rows.iter().skip(n as usize));
            assert_eq!(tail, want.join("\n") + "\n", "log --since {n}");
        }
        // The table marks the reversed event even when the cut falls right before it.
        let table = ok(&store, &["log", "--since", &(head - 3).to_string()]);
        assert!(table.contains("reversed by rev-azure-2026-01"), "{table}");
    }
}
