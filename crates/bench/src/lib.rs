//! The benchmark harness of issue 4: a synthetic, valid workload
//! ([`workload`]), fresh processes timed with their own peak memory
//! ([`measure`]), and the Markdown table ([`report`]). The binary
//! `accord-bench` ties them together; see its `--help`.

pub mod measure;
pub mod postgres;
pub mod report;
pub mod serve;
pub mod workload;

/// Runs of `verify` per size and store (the median is reported, with the largest peak RSS).
pub const VERIFY_RUNS: usize = 3;

/// Issue 15's questions after the import of `n` events and the bench's single appends (the
/// log's head is then `head`): as known at the import's end (by seq and by the time
/// `after_import`), inside the import, a what-if of `what_if`, a diff, one entity's
/// timeline, the log's last 10 events and the ledger export. Each is (row label, command
/// line after `--store STORE`, whether its output goes to a file).
pub fn bitemporal_commands(
    n: usize,
    head: usize,
    after_import: &str,
    what_if: &std::path::Path,
) -> Vec<(&'static str, String, bool)> {
    let d80 = workload::date_str(workload::LAST_DAY * 4 / 5);
    let last = workload::date_str(workload::LAST_DAY);
    let entity = workload::party_id(0);
    vec![
        (
            "`obligations --as-of D --known-at N` (a seq)",
            format!("obligations --as-of {d80} --known-at {n} --format json"),
            false,
        ),
        (
            "`obligations --as-of D --known-at T` (a timestamp)",
            format!("obligations --as-of {d80} --known-at {after_import} --format json"),
            false,
        ),
        (
            "`obligations --as-of D --known-at N/2` (inside the import)",
            format!(
                "obligations --as-of {d80} --known-at {} --format json",
                n / 2
            ),
            false,
        ),
        (
            "`obligations --as-of D --with FILE` (what-if, one backdated event)",
            format!(
                "obligations --as-of {d80} --with {} --format json",
                what_if.display()
            ),
            false,
        ),
        (
            "`diff --as-of D --known-at N`",
            format!("diff --as-of {d80} --known-at {n} --format json"),
            false,
        ),
        (
            "`timeline --entity E`",
            format!("timeline --entity {entity} --as-of {last} --format json"),
            false,
        ),
        (
            "`log --since HEAD-10`",
            format!("log --since {} --format json", head - 10),
            false,
        ),
        (
            "`export --format ledger`",
            "export --format ledger".to_string(),
            true,
        ),
    ]
}
