//! Robustness: the parser and the batch planner never panic, whatever they
//! are fed, and every event that parses round-trips through its canonical
//! encoding to an equal event.
//!
//! (a) arbitrary bytes (lossy UTF-8) to `parse_jsonl` and `Event::from_line`;
//! (b) arbitrary JSON values, biased towards the real field names and event
//!     types of EVENTS.md, to `Event::from_json`;
//! (c) valid-looking batches from a small vocabulary to `plan_batch` against
//!     a random (not necessarily valid) log.

use chrono::{Duration, TimeZone, Utc};
use domain::{parse_jsonl, plan_batch, BatchEvent, Event, RecordedEvent, EVENT_TYPES};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use testkit::vocab::Vocabulary;

/// Every field name that EVENTS.md mentions, envelope and payloads.
const FIELDS: &[&str] = &[
    "id",
    "type",
    "effective",
    "source",
    "note",
    "party",
    "name",
    "kind",
    "issuer",
    "holder",
    "units",
    "class",
    "price",
    "from",
    "to",
    "numerator",
    "denominator",
    "holdings",
    "percent",
    "total_units",
    "reason",
    "entity",
    "post_money",
    "basis",
    "investor",
    "investee",
    "amount",
    "currency",
    "instrument",
    "label",
    "obligation",
    "obligor",
    "obligee",
    "purpose",
    "due",
    "reference",
    "right",
    "grantor",
    "description",
    "until",
    "until_milestone",
    "milestone",
    "declared_by",
    "verified_by",
    "reverses",
];

/// String values that mean something to the parser.
const WORDS: &[&str] = &[
    "",
    "a",
    "acme",
    "beta",
    "USD",
    "EUR",
    "usd",
    "common",
    "pref",
    "fund",
    "corporation",
    "group",
    "equity",
    "pledge",
    "loan",
    "ip_rights",
    "2020-01-01",
    "2024-02-29",
    "2023-02-29",
    "9999-12-31",
    "0000-01-01",
    "2020-1-1",
    "0",
    "1",
    "-1",
    "100",
    "0.5",
    "1e5",
    "1,000",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "0.0000000000000000000000000001",
    "99999999999999999999999999999999",
    "NaN",
    " 1",
    "e1",
    "ob-a",
    "r-a",
    "m1",
    "-x",
    "A:b.c_d-e",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.to_string())),
        prop::sample::select(EVENT_TYPES).prop_map(|s| Value::String(s.to_string())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS).prop_map(str::to_string),
        1 => "[a-z_]{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object that usually has a plausible envelope, plus random fields.
fn event_like() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.9, prop::sample::select(WORDS)),
        prop::option::weighted(0.9, prop::sample::select(EVENT_TYPES)),
        prop::option::weighted(0.9, prop::sample::select(WORDS)),
        prop::collection::btree_map(key(), json_value(), 0..7),
    )
        .prop_map(|(id, ty, eff, rest)| {
            let mut map: Map<String, Value> = rest.into_iter().collect();
            if let Some(id) = id {
                map.insert("id".into(), json!(id));
            }
            if let Some(ty) = ty {
                map.insert("type".into(), json!(ty));
            }
            if let Some(eff) = eff {
                map.insert("effective".into(), json!(eff));
            }
            Value::Object(map)
        })
}

/// A parsed event must re-read from its canonical bytes as an equal event
/// with the same bytes.
fn assert_round_trip(e: &Event) -> Result<(), TestCaseError> {
    let bytes = e.canonical_bytes();
    prop_assert!(!bytes.is_empty(), "empty canonical bytes for {e:?}");
    let text = std::str::from_utf8(&bytes).map_err(|x| TestCaseError::fail(x.to_string()))?;
    let again = Event::from_line(text)
        .map_err(|x| TestCaseError::fail(format!("canonical {text} does not re-parse: {x}")))?;
    prop_assert_eq!(&again, e, "canonical {}", text);
    prop_assert_eq!(again.canonical_bytes(), bytes);
    Ok(())
}

// ------------------------------------------------ a small valid-ish world

/// Ids `e0` to `e23`, 40 dates, one amount in five in EUR; a table may name
/// one holder twice.
const VOCAB: Vocabulary = Vocabulary {
    ids: 24,
    days: 40,
    eur_one_in: 5,
    distinct_holders: false,
};

/// An event from the vocabulary; a third are party registrations so that
/// many of the others find their parties.
fn vocab_event() -> impl Strategy<Value = Event> {
    VOCAB
        .events(prop_oneof![1 => Just(0usize), 2 => 0..EVENT_TYPES.len()])
        .prop_filter_map("does not parse", |v| Event::from_json(v).ok())
}

/// Lines that a `Value` cannot hold (escapes in keys and values) and shapes
/// refused after the fields are read: `from_line` (mostly a faster path) must
/// read each exactly as `from_json` does. A repeated key, which a `Value`
/// would keep the last of, is refused by `from_line` on either path.
#[test]
fn tricky_lines_read_as_the_strict_path_reads_them() {
    let base = r#""effective":"2024-01-01","kind":"fund","name":"N","party":"p""#;
    for (line, field) in [
        (
            format!(r#"{{"id":"a","id":"b","type":"party_registered",{base}}}"#),
            "id",
        ),
        (
            format!(r#"{{"id":"a","type":"party_registered",{base},"name":"M"}}"#),
            "name",
        ),
    ] {
        let refused = Event::from_line(&line).map_err(|e| e.to_string());
        assert_eq!(
            refused,
            Err(format!(
                "event `{}`: field `{field}` is given twice: give each field once",
                if field == "id" { "b" } else { "a" }
            )),
            "{line}"
        );
    }
    for line in [
        format!(r#"{{"i\u0064":"a","type":"party_registered",{base}}}"#),
        format!(r#"{{"id":"\u0061","type":"party_registered",{base}}}"#),
        format!(r#"{{"id":"a","type":"party_registered",{base},"note":"x\ny"}}"#),
        // Shapes that only `check_shape` refuses.
        r#"{"id":"a","type":"party_updated","effective":"2024-01-01","party":"p"}"#.into(),
        r#"{"id":"a","type":"right_amended","effective":"2024-01-01","right":"r"}"#.into(),
        r#"{"id":"a","type":"recapitalized","effective":"2024-01-01","issuer":"p","holdings":[]}"#
            .into(),
    ] {
        let strict = serde_json::from_str::<Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| Event::from_json(v).map_err(|e| e.to_string()));
        let fast = Event::from_line(&line).map_err(|e| e.to_string());
        assert_eq!(fast, strict, "{line}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(events) = parse_jsonl(&text) {
            for (_, e) in &events {
                assert_round_trip(e)?;
            }
        }
        if let Ok(e) = Event::from_line(&text) {
            assert_round_trip(&e)?;
        }
    }

    #[test]
    fn json_lines_never_panic(lines in prop::collection::vec(event_like(), 1..4)) {
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        if let Ok(events) = parse_jsonl(&text.join("\n")) {
            prop_assert_eq!(events.len(), lines.len());
            for (_, e) in &events {
                assert_round_trip(e)?;
            }
        }
        for (v, line) in lines.iter().zip(&text) {
            // `from_line` reads most lines by a faster path than `from_json`;
            // both must give the same event or the same refusal, word for word.
            let a = Event::from_json(v.clone());
            let b = Event::from_line(line);
            prop_assert_eq!(&a, &b, "from_json and from_line disagree on {}", line);
            if let Ok(e) = a {
                assert_round_trip(&e)?;
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        if let Ok(e) = Event::from_json(v) {
            assert_round_trip(&e)?;
        }
    }

    #[test]
    fn vocabulary_events_round_trip(e in vocab_event()) {
        assert_round_trip(&e)?;
    }

    #[test]
    fn plan_batch_never_panics(
        log in prop::collection::vec(vocab_event(), 0..12),
        batch in prop::collection::vec(vocab_event(), 1..5),
    ) {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let log: Vec<RecordedEvent> = log
            .into_iter()
            .enumerate()
            .map(|(i, event)| RecordedEvent {
                seq: i as u64 + 1,
                recorded: t0 + Duration::seconds(i as i64),
                event,
            })
            .collect();
        let batch: Vec<BatchEvent> = batch
            .into_iter()
            .enumerate()
            .map(|(i, event)| BatchEvent { line: Some(i + 1), event })
            .collect();
        if let Ok(plan) = plan_batch(&log, &batch) {
            prop_assert_eq!(plan.new.len() + plan.skipped, batch.len());
            prop_assert!(plan.new.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
