//! A catalog of bad inputs. Each one is appended, as a file, to a store that
//! holds the imported sample log, and must be refused with exit 1: standard
//! error is one line that starts `error: `, names the file's line and the
//! event, standard output is empty, and the log (`accord log --format json`
//! and `accord head`) is byte-identical before and after.
//!
//! Most files start with a valid event on line 1, so every case also checks
//! that a file is one atomic batch.

use std::path::{Path, PathBuf};

use testkit::{accord, ok, ok_stdin};

/// A valid first line: refused along with the bad one.
const FRESH: &str = r#"{"id": "fresh-party", "type": "party_registered", "effective": "2025-11-01", "party": "fresh", "name": "Fresh Ltd", "kind": "corporation"}"#;

/// The imported sample log, then `setup` (JSON Lines, may be empty).
fn sample_store(dir: &Path, setup: &str) -> PathBuf {
    let store = testkit::sample_store(dir);
    if !setup.is_empty() {
        ok_stdin(&store, &["append", "-"], setup);
    }
    store
}

/// Appends `bad` as a file and checks the refusal. `id` is the event the
/// message must name (None for a line that is not an event at all), `line`
/// its line in the file, `rule` a fragment of the broken rule in plain words.
fn refused(setup: &str, bad: &str, line: usize, id: Option<&str>, rule: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store(dir.path(), setup);
    let log_before = ok(&store, &["log", "--format", "json"]);
    let head_before = ok(&store, &["head"]);
    let file = dir.path().join("bad.jsonl");
    std::fs::write(&file, bad).unwrap();

    for dry_run in [true, false] {
        let mut cmd = accord(&store);
        cmd.arg("append").arg(&file);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8(o.stderr).unwrap();
        let what = if dry_run {
            "append --dry-run"
        } else {
            "append"
        };
        assert_eq!(
            o.status.code(),
            Some(1),
            "{what}: exit code; stderr: {stderr}"
        );
        assert!(
            o.stdout.is_empty(),
            "{what}: stdout: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(stderr.starts_with("error: "), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: not one line: {stderr}");
        assert!(
            stderr.contains(&format!("bad.jsonl: line {line}: ")),
            "{what}: the message does not name line {line}: {stderr}"
        );
        if let Some(id) = id {
            assert!(
                stderr.contains(&format!("event `{id}`")),
                "{what}: the message does not name event `{id}`: {stderr}"
            );
        }
        assert!(
            stderr.contains(rule),
            "{what}: the message does not say {rule:?}: {stderr}"
        );
    }

    assert_eq!(
        ok(&store, &["log", "--format", "json"]),
        log_before,
        "the log changed"
    );
    assert_eq!(ok(&store, &["head"]), head_before, "the head changed");
}

/// `FRESH` on line 1, then `bad` on line 2.
fn after_fresh(bad: &str) -> String {
    format!("{FRESH}\n{bad}\n")
}

// Each test runs on the embedded store and again on PostgreSQL.
testkit::both_backends! {
    #[test]
    fn malformed_line() {
        refused(
            "",
            &after_fresh(r#"{"id": "half", "type": "#),
            2,
            None,
            "not a JSON object",
        );
    }

    #[test]
    fn not_an_object() {
        refused("", &after_fresh("[1, 2]"), 2, None, "JSON object");
    }

    #[test]
    fn json_number_for_an_amount() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "num", "type": "investment_made", "effective": "2025-11-01", "investor": "microsoft", "investee": "openai-group", "amount": {"amount": 5, "currency": "USD"}}"#,
            ),
            2,
            Some("num"),
            "JSON number",
        );
    }

    #[test]
    fn exponent_in_a_decimal() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "exp", "type": "valuation_recorded", "effective": "2025-11-01", "entity": "openai-group", "post_money": {"amount": "1e9", "currency": "USD"}}"#,
            ),
            2,
            Some("exp"),
            "invalid decimal",
        );
    }

    #[test]
    fn negative_amount() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "neg", "type": "valuation_recorded", "effective": "2025-11-01", "entity": "openai-group", "post_money": {"amount": "-5", "currency": "USD"}}"#,
            ),
            2,
            Some("neg"),
            "strictly positive",
        );
    }

    #[test]
    fn lowercase_currency() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "cur", "type": "valuation_recorded", "effective": "2025-11-01", "entity": "openai-group", "post_money": {"amount": "5", "currency": "usd"}}"#,
            ),
            2,
            Some("cur"),
            "currency",
        );
    }

    #[test]
    fn unknown_field() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "colourful", "type": "party_registered", "effective": "2025-11-01", "party": "acme", "name": "Acme", "kind": "corporation", "colour": "red"}"#,
            ),
            2,
            Some("colourful"),
            "colour",
        );
    }

    #[test]
    fn missing_field() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "nameless", "type": "party_registered", "effective": "2025-11-01", "party": "acme", "kind": "corporation"}"#,
            ),
            2,
            Some("nameless"),
            "missing field `name`",
        );
    }

    #[test]
    fn unknown_type() {
        refused(
            "",
            &after_fresh(r#"{"id": "boom", "type": "party_exploded", "effective": "2025-11-01"}"#),
            2,
            Some("boom"),
            "unknown event type",
        );
    }

    #[test]
    fn bad_event_id() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "x 5!", "type": "party_registered", "effective": "2025-11-01", "party": "acme", "name": "Acme", "kind": "corporation"}"#,
            ),
            2,
            Some("x 5!"),
            "invalid event id",
        );
    }

    #[test]
    fn bad_party_id() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "upper", "type": "party_registered", "effective": "2025-11-01", "party": "Acme", "name": "Acme", "kind": "corporation"}"#,
            ),
            2,
            Some("upper"),
            "invalid id \"Acme\"",
        );
    }

    #[test]
    fn impossible_date() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "feb30", "type": "party_registered", "effective": "2025-02-30", "party": "acme", "name": "Acme", "kind": "corporation"}"#,
            ),
            2,
            Some("feb30"),
            "impossible date",
        );
    }

    #[test]
    fn unknown_party() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "ghost-investment", "type": "investment_made", "effective": "2025-11-01", "investor": "nobody", "investee": "openai-group", "amount": {"amount": "5", "currency": "USD"}}"#,
            ),
            2,
            Some("ghost-investment"),
            "party `nobody` is not registered on or before 2025-11-01",
        );
    }

    #[test]
    fn party_registered_too_late() {
        refused(
            "",
            concat!(
                r#"{"id": "late-party", "type": "party_registered", "effective": "2025-12-01", "party": "late", "name": "Late", "kind": "fund"}"#,
                "\n",
                r#"{"id": "early-investment", "type": "investment_made", "effective": "2025-11-01", "investor": "late", "investee": "openai-group", "amount": {"amount": "5", "currency": "USD"}}"#,
                "\n"
            ),
            2,
            Some("early-investment"),
            "party `late` is not registered on or before 2025-11-01",
        );
    }

    #[test]
    fn party_registered_twice() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "msft-again", "type": "party_registered", "effective": "2025-11-01", "party": "microsoft", "name": "MS", "kind": "corporation"}"#,
            ),
            2,
            Some("msft-again"),
            "already registered",
        );
    }

    #[test]
    fn over_settlement() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "too-much", "type": "obligation_settled", "effective": "2025-11-01", "obligation": "foundation-pledge", "amount": {"amount": "30000000000", "currency": "USD"}}"#,
            ),
            2,
            Some("too-much"),
            "exceeds its outstanding 25000000000",
        );
    }

    #[test]
    fn settlement_of_an_unknown_obligation() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "who-owes", "type": "obligation_settled", "effective": "2025-11-01", "obligation": "no-such-thing", "amount": {"amount": "1", "currency": "USD"}}"#,
            ),
            2,
            Some("who-owes"),
            "no-such-thing",
        );
    }

    #[test]
    fn settlement_after_release() {
        refused(
            r#"{"id": "pledge-released", "type": "obligation_released", "effective": "2025-11-01", "obligation": "foundation-pledge"}"#,
            &after_fresh(
                r#"{"id": "late-payment", "type": "obligation_settled", "effective": "2025-11-02", "obligation": "foundation-pledge", "amount": {"amount": "1", "currency": "USD"}}"#,
            ),
            2,
            Some("late-payment"),
            "nothing can be settled after a release",
        );
    }

    #[test]
    fn wrong_currency() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "in-euros", "type": "obligation_settled", "effective": "2025-11-01", "obligation": "foundation-pledge", "amount": {"amount": "1", "currency": "EUR"}}"#,
            ),
            2,
            Some("in-euros"),
            "is in USD, not EUR",
        );
    }

    #[test]
    fn transfer_beyond_holdings() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "too-many-shares", "type": "shares_transferred", "effective": "2025-11-01", "issuer": "openai-group", "from": "microsoft", "to": "openai-foundation", "units": "270000001"}"#,
            ),
            2,
            Some("too-many-shares"),
            "cannot go negative",
        );
    }

    #[test]
    fn percents_not_100() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "leaky-recap", "type": "recapitalized", "effective": "2025-11-01", "issuer": "openai-group", "holdings": [{"holder": "microsoft", "percent": "50"}, {"holder": "other-holders", "percent": "49.999"}]}"#,
            ),
            2,
            Some("leaky-recap"),
            "add up to 99.999, not 100",
        );
    }

    #[test]
    fn empty_holdings() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "empty-recap", "type": "recapitalized", "effective": "2025-11-01", "issuer": "openai-group", "holdings": []}"#,
            ),
            2,
            Some("empty-recap"),
            "must not be empty",
        );
    }

    #[test]
    fn mixed_holding_forms() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "mixed-recap", "type": "recapitalized", "effective": "2025-11-01", "issuer": "openai-group", "holdings": [{"holder": "microsoft", "percent": "50"}, {"holder": "other-holders", "units": "5"}]}"#,
            ),
            2,
            Some("mixed-recap"),
            "same form",
        );
    }

    #[test]
    fn holder_twice_in_holdings() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "twice-recap", "type": "recapitalized", "effective": "2025-11-01", "issuer": "openai-group", "holdings": [{"holder": "microsoft", "percent": "50"}, {"holder": "microsoft", "percent": "50"}]}"#,
            ),
            2,
            Some("twice-recap"),
            "appears twice",
        );
    }

    #[test]
    fn backdated_event_breaking_a_later_date() {
        // Valid on 2025-12-15 itself; on 2026-01-31 the settlement would exceed the amount.
        refused(
            r#"{"id": "azure-2026-01", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}}"#,
            &after_fresh(
                r#"{"id": "azure-cut", "type": "obligation_amended", "effective": "2025-12-15", "obligation": "azure-commitment", "amount": {"amount": "1000000000", "currency": "USD"}}"#,
            ),
            2,
            Some("azure-cut"),
            "would break a later event: event `azure-2026-01`",
        );
    }

    #[test]
    fn reversal_of_a_reversal() {
        refused(
            "",
            concat!(
                r#"{"id": "undo", "type": "event_reversed", "effective": "2025-11-01", "reverses": "2025-10-28-right-research-ip", "reason": "oops"}"#,
                "\n",
                r#"{"id": "undo-undo", "type": "event_reversed", "effective": "2025-11-02", "reverses": "undo", "reason": "oops again"}"#,
                "\n"
            ),
            2,
            Some("undo-undo"),
            "a reversal cannot be reversed",
        );
    }

    #[test]
    fn reversal_with_dependants() {
        // The opening holdings of 2023 name `other-holders`.
        refused(
            "",
            &after_fresh(
                r#"{"id": "unregister", "type": "event_reversed", "effective": "2025-11-01", "reverses": "2019-03-11-party-other-holders", "reason": "oops"}"#,
            ),
            2,
            Some("unregister"),
            "would break a later event",
        );
    }

    #[test]
    fn reversal_before_the_reversed_event() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "early-undo", "type": "event_reversed", "effective": "2025-01-01", "reverses": "2025-10-28-right-research-ip", "reason": "oops"}"#,
            ),
            2,
            Some("early-undo"),
            "cannot precede",
        );
    }

    #[test]
    fn reversal_of_an_unknown_event() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "undo-nothing", "type": "event_reversed", "effective": "2025-11-01", "reverses": "nope", "reason": "oops"}"#,
            ),
            2,
            Some("undo-nothing"),
            "nope",
        );
    }

    #[test]
    fn verification_of_an_undeclared_milestone() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "agi-verified", "type": "milestone_verified", "effective": "2025-11-01", "milestone": "agi", "verified_by": "panel"}"#,
            ),
            2,
            Some("agi-verified"),
            "not declared on or before 2025-11-01",
        );
    }

    #[test]
    fn verification_before_the_declaration() {
        refused(
            r#"{"id": "agi-declared", "type": "milestone_declared", "effective": "2027-01-01", "milestone": "agi", "declared_by": "openai-group"}"#,
            &after_fresh(
                r#"{"id": "agi-verified-early", "type": "milestone_verified", "effective": "2026-12-31", "milestone": "agi", "verified_by": "panel"}"#,
            ),
            2,
            Some("agi-verified-early"),
            "not declared on or before 2026-12-31",
        );
    }

    #[test]
    fn duplicate_id_with_other_content() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "2025-10-28-azure-commitment", "type": "obligation_incurred", "effective": "2025-10-28", "obligation": "azure-commitment-2", "kind": "purchase_commitment", "obligor": "openai-group", "obligee": "microsoft", "amount": {"amount": "250000000000", "currency": "USD"}}"#,
            ),
            2,
            Some("2025-10-28-azure-commitment"),
            "different content",
        );
    }

    #[test]
    fn duplicate_id_within_the_file() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "fresh-party", "type": "party_registered", "effective": "2025-11-01", "party": "fresh2", "name": "Fresh Ltd", "kind": "corporation"}"#,
            ),
            2,
            Some("fresh-party"),
            "different content",
        );
    }

    #[test]
    fn right_amended_without_a_limit() {
        refused(
            "",
            &after_fresh(
                r#"{"id": "vague-amendment", "type": "right_amended", "effective": "2025-11-01", "right": "ip-rights"}"#,
            ),
            2,
            Some("vague-amendment"),
            "until",
        );
    }

    #[test]
    fn blank_lines_count_in_line_numbers() {
        refused(
            "",
            &format!(
                "{FRESH}\n\n\n{}\n",
                r#"{"id": "line-four", "type": "party_exploded", "effective": "2025-11-01"}"#
            ),
            4,
            Some("line-four"),
            "unknown event type",
        );
    }
}
