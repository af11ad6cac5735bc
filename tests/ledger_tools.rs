//! Cross-checks `accord export --format ledger` with the real plain-text
//! accounting tools: `hledger` and `ledger` (ledger-cli) read the exported
//! journal, and their balances of `obligations:OBLIGOR:X` and
//! `investments:INVESTOR:INVESTEE` must equal minus accord's outstanding
//! amounts (`obligations --all --format json`) and accord's invested amounts
//! (`position PARTY --format json`), on several dates and as known at several
//! points of the log.
//!
//! Two logs: the sample (`events/`) and a generated log with settlements,
//! amendments, releases, investments in two currencies, fractional amounts
//! and reversals, appended in several batches so that `--known-at` matters.
//!
//! The tools are Debian packages (`apt-get install -y hledger ledger`;
//! `.ci/run` installs them). With `CI=true` a missing tool fails the test;
//! elsewhere the test says what is missing and passes without checking.

use std::collections::BTreeMap;
use std::path::Path;
use std::process;

use chrono::{Days, NaiveDate};
use serde_json::{json, Value};
use testkit::{ok, ok_stdin, temp_store, Rng};

/// True when both tools run. A missing tool fails under CI (`CI=true`), and
/// is reported and skipped elsewhere.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["hledger", "ledger"]
        .into_iter()
        .filter(|t| {
            process::Command::new(t)
                .arg("--version")
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{} not found: install with `apt-get install -y hledger ledger`",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {msg}");
    }
    eprintln!("SKIPPED the hledger/ledger cross-check: {msg}");
    false
}

/// Account -> currency -> amount, amounts normalized (no trailing zeros);
/// zero balances left out, as the tools leave them out.
type Balances = BTreeMap<String, BTreeMap<String, String>>;

/// `1000.500` -> `1000.5`, `-3.000` -> `-3`, `0.0` -> `0`.
fn norm(s: &str) -> String {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let mut d = digits.trim_start_matches('0').to_string();
    if d.contains('.') {
        d = d.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if d.is_empty() || d.starts_with('.') {
        d.insert(0, '0');
    }
    if d == "0" {
        return d;
    }
    if neg {
        format!("-{d}")
    } else {
        d
    }
}

fn negate(s: &str) -> String {
    match s.strip_prefix('-') {
        Some(p) => p.to_string(),
        None => norm(&format!("-{s}")),
    }
}

/// Adds `CUR AMOUNT` (as the tools print it) to `account`.
fn add_tool_amount(b: &mut Balances, account: &str, amount: &str) {
    let amount = amount.trim();
    if amount.is_empty() || amount == "0" {
        return;
    }
    let (cur, value) = amount
        .split_once(' ')
        .unwrap_or_else(|| panic!("unexpected amount {amount:?} for {account}"));
    let value = norm(value);
    assert!(
        value
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-'),
        "{account}: {amount:?} is not a plain decimal"
    );
    if value != "0" {
        let old = b
            .entry(account.to_string())
            .or_default()
            .insert(cur.to_string(), value);
        assert!(old.is_none(), "{account} {cur} listed twice");
    }
}

/// What accord says, as the journal should show it on `as_of`, as known at `known_at`.
fn accord_balances(
    store: &Path,
    investors: &[String],
    as_of: &str,
    known_at: Option<&str>,
) -> Balances {
    let mut time = vec!["--as-of", as_of];
    if let Some(k) = known_at {
        time.extend(["--known-at", k]);
    }
    let mut b = Balances::new();
    let mut args = vec!["obligations", "--all", "--format", "json"];
    args.extend(&time);
    let report: Value = serde_json::from_str(&ok(store, &args)).unwrap();
    for o in report["obligations"].as_array().unwrap() {
        let outstanding = norm(o["outstanding"]["amount"].as_str().unwrap());
        if outstanding != "0" {
            let account = format!(
                "obligations:{}:{}",
                o["obligor"].as_str().unwrap(),
                o["obligation"].as_str().unwrap()
            );
            let cur = o["outstanding"]["currency"].as_str().unwrap().to_string();
            b.entry(account)
                .or_default()
                .insert(cur, negate(&outstanding));
        }
    }
    for party in investors {
        let mut args = vec!["position", party.as_str(), "--format", "json"];
        args.extend(&time);
        let report: Value = serde_json::from_str(&ok(store, &args)).unwrap();
        for i in report["invested"].as_array().unwrap() {
            let account = format!("investments:{party}:{}", i["investee"].as_str().unwrap());
            let amount = norm(i["amount"]["amount"].as_str().unwrap());
            let cur = i["amount"]["currency"].as_str().unwrap().to_string();
            if amount != "0" {
                b.entry(account).or_default().insert(cur, amount);
            }
        }
    }
    b
}

fn run_tool(program: &str, args: &[&str]) -> String {
    let o = process::Command::new(program).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `hledger bal --flat -N -O csv`: `"account","CUR A, CUR B"` lines.
fn hledger_balances(journal: &Path, end: Option<&str>) -> Balances {
    let j = journal.to_str().unwrap();
    let mut args = vec!["-f", j, "bal", "--flat", "-N", "-O", "csv"];
    if let Some(e) = end {
        args.extend(["-e", e]);
    }
    args.extend(["^obligations:", "^investments:"]);
    let text = run_tool("hledger", &args);
    let mut b = Balances::new();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        rdr.headers().unwrap(),
        vec!["account", "balance"],
        "hledger csv header"
    );
    for rec in rdr.records() {
        let rec = rec.unwrap();
        for amount in rec[1].split(", ") {
            add_tool_amount(&mut b, &rec[0], amount);
        }
    }
    b
}

/// `ledger bal --flat` with one `ACCOUNT<TAB>AMOUNTS` line per account.
fn ledger_balances(journal: &Path, end: Option<&str>) -> Balances {
    let j = journal.to_str().unwrap();
    let mut args = vec![
        "-f",
        j,
        "bal",
        "--flat",
        "--no-total",
        "--balance-format",
        "%(account)\t%(join(scrub(display_total)))\n",
    ];
    if let Some(e) = end {
        args.extend(["-e", e]);
    }
    args.extend(["^obligations:", "^investments:"]);
    let text = run_tool("ledger", &args);
    let mut b = Balances::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (account, amounts) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("unexpected ledger line {line:?}"));
        for amount in amounts.split("\\n") {
            add_tool_amount(&mut b, account, amount);
        }
    }
    b
}

/// The number of obligation and investment events recorded up to `known_at`
/// and not reversed by a reversal recorded up to `known_at`.
fn expected_transactions(store: &Path, known_at: Option<&str>) -> usize {
    let limit: u64 = known_at.map_or(u64::MAX, |k| k.parse().unwrap());
    let log = ok(store, &["log", "--format", "json"]);
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["seq"].as_u64().unwrap() <= limit)
        .collect();
    let reversed: Vec<&str> = events
        .iter()
        .filter_map(|e| e["reverses"].as_str())
        .collect();
    events
        .iter()
        .filter(|e| {
            let t = e["type"].as_str().unwrap();
            (t.starts_with("obligation_") || t == "investment_made")
                && !reversed.contains(&e["id"].as_str().unwrap())
        })
        .count()
}

fn day_after(d: &str) -> String {
    let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    d.checked_add_days(Days::new(1)).unwrap().to_string()
}

/// Every check on one store: for each known-at point and date, the whole
/// journal read up to the day after, and the journal exported `--as-of` that
/// date read whole, by both tools, equal accord's reports. Returns the number
/// of comparisons made.
fn cross_check(
    dir: &Path,
    store: &Path,
    investors: &[String],
    known_ats: &[Option<&str>],
    dates: &[&str],
) -> usize {
    let mut compared = 0;
    let journal = dir.join("all.journal");
    let cut = dir.join("as-of.journal");
    for known_at in known_ats {
        let mut export = vec!["export", "--format", "ledger"];
        if let Some(k) = known_at {
            export.extend(["--known-at", k]);
        }
        let text = ok(store, &export);
        assert_eq!(
            text.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_digit())).count(),
            expected_transactions(store, *known_at),
            "one transaction per obligation or investment event not reversed, known at {known_at:?}:\n{text}"
        );
        std::fs::write(&journal, text).unwrap();
        // The journal is valid for both tools as a whole (every transaction balances).
        run_tool("hledger", &["-f", journal.to_str().unwrap(), "check"]);
        for as_of in dates {
            let expected = accord_balances(store, investors, as_of, *known_at);
            let end = day_after(as_of);
            let ctx = format!("as of {as_of}, known at {known_at:?}");
            assert_eq!(
                hledger_balances(&journal, Some(&end)),
                expected,
                "hledger -e {end}, {ctx}"
            );
            assert_eq!(
                ledger_balances(&journal, Some(&end)),
                expected,
                "ledger -e {end}, {ctx}"
            );
            let mut export_cut = export.clone();
            export_cut.extend(["--as-of", as_of]);
            std::fs::write(&cut, ok(store, &export_cut)).unwrap();
            assert_eq!(
                hledger_balances(&cut, None),
                expected,
                "hledger on export --as-of, {ctx}"
            );
            assert_eq!(
                ledger_balances(&cut, None),
                expected,
                "ledger on export --as-of, {ctx}"
            );
            compared += 4;
        }
    }
    compared
}

#[test]
fn hledger_and_ledger_balances_equal_accord_on_the_sample_log() {
    if !tools_present() {
        return;
    }
    let (dir, store) = temp_store();
    testkit::import_sample(&store);
    // A settlement, an amendment, a release and a reversal on top of the sample,
    // each in its own batch (seq 43 to 47 after the 42 sample events).
    let extra = [
        r#"{"id": "azure-2026-01", "type": "obligation_settled", "effective": "2026-01-31", "obligation": "azure-commitment", "amount": {"amount": "2500000000", "currency": "USD"}}"#,
        r#"{"id": "pledge-amended", "type": "obligation_amended", "effective": "2026-01-31", "obligation": "foundation-pledge", "amount": {"amount": "30000000000.5", "currency": "USD"}}"#,
        r#"{"id": "pledge-released", "type": "obligation_released", "effective": "2026-03-01", "obligation": "foundation-pledge", "reason": "met otherwise"}"#,
        r#"{"id": "azure-2026-01-reversed", "type": "event_reversed", "effective": "2026-02-15", "reverses": "azure-2026-01", "reason": "booked twice"}"#,
        // An amendment that changes nothing still gets its (zero) transaction.
        r#"{"id": "azure-restated", "type": "obligation_amended", "effective": "2026-04-01", "obligation": "azure-commitment", "amount": {"amount": "250000000000.00", "currency": "USD"}}"#,
    ];
    for line in extra {
        ok_stdin(&store, &["append", "-"], line);
    }
    let head = ok(&store, &["head"]);
    assert!(head.starts_with("47:"), "{head}");
    let investors = [
        "microsoft",
        "openai-foundation",
        "openai-group",
        "other-holders",
    ]
    .map(String::from);
    let n = cross_check(
        dir.path(),
        &store,
        &investors,
        &[Some("42"), Some("44"), Some("45"), Some("46"), None],
        &[
            "2019-07-21",
            "2019-07-22",
            "2023-12-31",
            "2025-10-27",
            "2025-10-28",
            "2026-01-31",
            "2026-03-01",
            "2026-04-01",
        ],
    );
    assert_eq!(n, 5 * 8 * 4);
}

/// One obligation event of the generator's model, in effective order.
#[derive(Clone)]
enum Step {
    Amended(i64),
    Settled(i64),
    Released,
}

/// The model of one obligation: its incurred amount and its steps with their
/// event ids; `reversed` ids are left out of every replay. Amounts are in
/// thousandths, so that fractional amounts (`12.345`) come up.
struct Obligation {
    id: String,
    obligor: String,
    currency: &'static str,
    amount: i64,
    steps: Vec<(String, Step)>,
}

impl Obligation {
    /// (amount, settled, released) after replaying the steps not in
    /// `without`, or None when the replay breaks a rule of EVENTS.md.
    fn replay(&self, without: &[String]) -> Option<(i64, i64, bool)> {
        let (mut amount, mut settled, mut released) = (self.amount, 0, false);
        for (id, step) in &self.steps {
            if without.contains(id) {
                continue;
            }
            match step {
                Step::Amended(a) if !released && *a >= settled => amount = *a,
                Step::Settled(s) if !released && settled + s <= amount => settled += s,
                Step::Released if !released => released = true,
                _ => return None,
            }
        }
        Some((amount, settled, released))
    }
}

fn money(thousandths: i64, currency: &str) -> Value {
    let s = format!("{}.{:03}", thousandths / 1000, thousandths % 1000);
    json!({"amount": s, "currency": currency})
}

/// A log of about 150 events in 8 batches: obligations in USD and EUR with
/// partial and full settlements, amendments up and down, releases,
/// investments, and reversals of settlements, amendments, releases and
/// investments, recorded batches after the events they reverse.
fn generated_batches() -> (Vec<String>, Vec<String>) {
    let parties: Vec<String> = (1..=5).map(|i| format!("party-{i}")).collect();
    // A fixed stream, so the generated log is the same on every run.
    let mut rng = Rng::from_state(0x5eed_acc0_4d00_0001);
    let mut batches: Vec<Vec<Value>> = vec![parties
        .iter()
        .map(|p| {
            json!({"id": format!("reg-{p}"), "type": "party_registered", "effective": "2020-01-01",
                   "party": p, "kind": "corporation", "name": format!("Party {p}")})
        })
        .collect()];
    let mut obligations: Vec<Obligation> = Vec::new();
    let mut reversible: Vec<String> = Vec::new();
    let mut reversed: Vec<String> = Vec::new();
    let mut date = NaiveDate::from_ymd_opt(2020, 1, 2).unwrap();
    let mut n = 0;
    for _batch in 0..8 {
        let mut batch = Vec::new();
        // Reversals name events of earlier batches only.
        let mut made: Vec<String> = Vec::new();
        for _ in 0..18 {
            n += 1;
            date = date.checked_add_days(Days::new(rng.below(12))).unwrap();
            let effective = date.to_string();
            let id = format!("ev-{n:03}");
            let roll = rng.below(100);
            let open: Vec<usize> = (0..obligations.len())
                .filter(|&i| obligations[i].replay(&reversed).is_some_and(|(_, _, r)| !r))
                .collect();
            if obligations.len() < 3 || open.is_empty() || roll < 15 {
                let currency = *rng.pick(&["USD", "EUR"]);
                let amount = 1_000 * (1 + rng.below(5_000) as i64) + rng.below(1000) as i64;
                let o = Obligation {
                    id: format!("obl-{n}"),
                    obligor: rng.pick(&parties).clone(),
                    currency,
                    amount,
                    steps: Vec::new(),
                };
                let mut e = json!({"id": id, "type": "obligation_incurred", "effective": effective,
                    "obligation": o.id, "kind": "purchase_commitment", "obligor": o.obligor,
                    "amount": money(amount, currency)});
                if rng.below(2) == 0 {
                    e["obligee"] = json!(rng.pick(&parties));
                }
                batch.push(e);
                obligations.push(o);
            } else if roll < 30 {
                let investor = rng.pick(&parties).clone();
                let investee = rng.pick(&parties).clone();
                let currency = *rng.pick(&["USD", "USD", "EUR"]);
                let amount = 1_000 * (1 + rng.below(900) as i64) + rng.below(3) as i64 * 125;
                if investee != investor {
                    batch.push(json!({"id": id, "type": "investment_made", "effective": effective,
                        "investor": investor, "investee": investee, "amount": money(amount, currency)}));
                    made.push(id);
                }
            } else if roll < 40 && !reversible.is_empty() {
                // Reverse an earlier event whose removal leaves a valid timeline.
                let k = rng.below(reversible.len() as u64) as usize;
                let target = reversible.remove(k);
                let mut without = reversed.clone();
                without.push(target.clone());
                if obligations.iter().all(|o| o.replay(&without).is_some()) {
                    batch.push(
                        json!({"id": id, "type": "event_reversed", "effective": effective,
                        "reverses": target, "reason": "generated correction"}),
                    );
                    reversed.push(target);
                }
            } else {
                let i = *rng.pick(&open);
                let (amount, settled, _) = obligations[i].replay(&reversed).unwrap();
                let o = &mut obligations[i];
                let (kind, step) = match rng.below(10) {
                    0..=5 if settled < amount => {
                        let rest = amount - settled;
                        let s = if rng.below(4) == 0 {
                            rest
                        } else {
                            1 + rng.below(rest as u64) as i64
                        };
                        ("obligation_settled", Step::Settled(s))
                    }
                    6..=7 => {
                        let a = settled.max(1) + rng.below(2 * amount as u64) as i64;
                        ("obligation_amended", Step::Amended(a))
                    }
                    _ => ("obligation_released", Step::Released),
                };
                let mut e =
                    json!({"id": id, "type": kind, "effective": effective, "obligation": o.id});
                match step {
                    Step::Settled(s) | Step::Amended(s) => e["amount"] = money(s, o.currency),
                    Step::Released => {}
                }
                o.steps.push((id.clone(), step));
                batch.push(e);
                made.push(id);
            }
        }
        reversible.extend(made);
        batches.push(batch);
    }
    assert!(
        reversed.len() >= 4,
        "the generator reversed only {reversed:?}"
    );
    let kinds = batches
        .iter()
        .flatten()
        .map(|e| e["type"].as_str().unwrap().to_string());
    for kind in [
        "obligation_settled",
        "obligation_amended",
        "obligation_released",
        "investment_made",
    ] {
        assert!(
            kinds.clone().any(|k| k == kind),
            "the generator made no {kind}"
        );
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in batches.iter().flatten() {
        *counts
            .entry(e["type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    eprintln!("generated log: {counts:?}");
    let files = batches
        .into_iter()
        .map(|b| b.iter().map(|e| format!("{e}\n")).collect())
        .collect();
    (files, parties)
}

#[test]
fn hledger_and_ledger_balances_equal_accord_on_a_generated_log() {
    if !tools_present() {
        return;
    }
    let (dir, store) = temp_store();
    let (batches, parties) = generated_batches();
    let mut ends = Vec::new();
    for b in &batches {
        ok_stdin(&store, &["append", "-"], b);
        let head = ok(&store, &["head"]);
        ends.push(head.split(':').next().unwrap().to_string());
    }
    let log = ok(&store, &["log", "--format", "json"]);
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = events[1]["effective"].as_str().unwrap().to_string();
    let last = events.last().unwrap()["effective"]
        .as_str()
        .unwrap()
        .to_string();
    // Dates: before anything, the first obligation day, a spread in between, the end.
    let span = NaiveDate::parse_from_str(&last, "%Y-%m-%d").unwrap()
        - NaiveDate::parse_from_str(&first, "%Y-%m-%d").unwrap();
    let mut dates: Vec<String> = vec!["2020-01-01".into(), first.clone()];
    for k in 1..=4 {
        let d = NaiveDate::parse_from_str(&first, "%Y-%m-%d").unwrap()
            + chrono::Duration::days(span.num_days() * k / 5);
        dates.push(d.to_string());
    }
    dates.push(last);
    let dates: Vec<&str> = dates.iter().map(String::as_str).collect();
    let known_ats: Vec<Option<&str>> = [2, 4, 6]
        .iter()
        .map(|&i| Some(ends[i].as_str()))
        .chain([None])
        .collect();
    let n = cross_check(dir.path(), &store, &parties, &known_ats, &dates);
    assert_eq!(n, known_ats.len() * dates.len() * 4);
}
