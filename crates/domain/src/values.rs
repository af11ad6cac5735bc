//! Value types of the event format: ids, decimals, money, dates.
//!
//! Each type can only be built valid, so the rest of the crate never re-checks
//! a string. Parsing refuses JSON numbers where a decimal is expected, so no
//! amount ever passes through a binary float. Nothing here reads a clock.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Longest free-text field (names, notes, sources, reasons) we accept, in characters.
pub const TEXT_LEN_MAX: usize = 4096;
/// Most significant digits a decimal may carry (rust_decimal's exact range).
pub const DECIMAL_DIGITS_MAX: usize = 28;

fn is_event_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// An event id: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

impl EventId {
    pub fn parse(s: &str) -> Result<EventId, String> {
        if s.is_empty() || s.chars().count() > 128 || !s.chars().all(is_event_id_char) {
            return Err(format!(
                "invalid event id {s:?}: use 1 to 128 characters of A-Z a-z 0-9 . _ : -"
            ));
        }
        Ok(EventId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of a party, obligation, right or milestone: 1 to 64 characters of
/// `a-z 0-9 -`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

pub type PartyId = Slug;
pub type ObligationId = Slug;
pub type RightId = Slug;
pub type MilestoneId = Slug;

impl Slug {
    pub fn parse(s: &str) -> Result<Slug, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-');
        if !ok {
            return Err(format!(
                "invalid id {s:?}: use 1 to 64 characters of a-z 0-9 -, starting with a letter or digit"
            ));
        }
        Ok(Slug(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_serde {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(de::Error::custom)
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t>::parse(s)
            }
        }
    };
}
string_newtype_serde!(EventId);
string_newtype_serde!(Slug);
string_newtype_serde!(Currency);
string_newtype_serde!(ClassName);
string_newtype_serde!(Text);
string_newtype_serde!(KindSlug);

/// A free kind slug, such as a right's kind (`ip_rights`): 1 to 64
/// characters of `a-z 0-9 _ -`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindSlug(String);

impl KindSlug {
    pub fn parse(s: &str) -> Result<KindSlug, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "invalid kind {s:?}: use 1 to 64 characters of a-z 0-9 _ -, starting with a letter or digit"
            ));
        }
        Ok(KindSlug(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A share class name: 1 to 64 printable characters. Default `common`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClassName(String);

impl ClassName {
    pub fn parse(s: &str) -> Result<ClassName, String> {
        if s.is_empty() || s.chars().count() > 64 || s.chars().any(|c| c.is_control()) {
            return Err(format!(
                "invalid share class {s:?}: use 1 to 64 printable characters"
            ));
        }
        Ok(ClassName(s.to_string()))
    }
    pub fn common() -> ClassName {
        ClassName("common".to_string())
    }
    /// The empty name, which no class has: it sorts before every class, for ranges over a
    /// table keyed by (holder, class).
    pub(crate) fn before_all() -> ClassName {
        ClassName(String::new())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text (names, notes, sources, reasons): at most [`TEXT_LEN_MAX`] characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(String);

impl Text {
    pub fn parse(s: &str) -> Result<Text, String> {
        if s.chars().count() > TEXT_LEN_MAX {
            return Err(format!(
                "text of {} characters is longer than the limit of {TEXT_LEN_MAX}",
                s.chars().count()
            ));
        }
        Ok(Text(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 4217 currency code: three uppercase letters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Currency, String> {
        if s.len() != 3 || !s.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "invalid currency {s:?}: use three uppercase letters (ISO 4217), e.g. \"USD\""
            ));
        }
        Ok(Currency(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a plain decimal string: optional `-`, digits, optional `.digits`;
/// no exponent, no separators, at most 28 significant digits.
pub fn parse_decimal(s: &str) -> Result<Decimal, String> {
    let bad = || {
        format!("invalid decimal {s:?}: write a plain number such as \"13800000000\" or \"32.5\"")
    };
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    // The digits after the leading zeros of `int` and `frac` written together, counted
    // without writing them: every amount of a replay passes here.
    let frac_digits = frac.unwrap_or("");
    let int_significant = int.trim_start_matches('0').len();
    let significant = if int_significant > 0 {
        int_significant + frac_digits.len()
    } else {
        frac_digits.trim_start_matches('0').len()
    };
    if significant > DECIMAL_DIGITS_MAX || frac.map_or(0, str::len) > DECIMAL_DIGITS_MAX {
        return Err(format!(
            "decimal {s:?} has more than {DECIMAL_DIGITS_MAX} significant digits"
        ));
    }
    Decimal::from_str_exact(s).map_err(|_| bad())
}

/// A decimal read only from a JSON string; serialized as its normalized string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec(pub Decimal);

impl Dec {
    pub fn value(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

impl Serialize for Dec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written from a buffer on the stack, without a String per number or the formatting
        // machinery: reports serialize hundreds of thousands of them.
        let mut buf = DecimalText::new();
        match buf.format(self.0) {
            Some(text) => s.serialize_str(text),
            None => s.collect_str(&self.0.normalize()),
        }
    }
}

/// The text of a normalized decimal, as `Display` writes it (`-12.5`, `0.000001`, `0`),
/// written into a buffer of its own.
struct DecimalText {
    buf: [u8; 64],
}

impl DecimalText {
    fn new() -> DecimalText {
        DecimalText { buf: [0; 64] }
    }

    fn format(&mut self, value: Decimal) -> Option<&str> {
        let value = value.normalize();
        // A mantissa has at most 29 digits and a scale at most 28: with a sign, a point and
        // a leading zero, never more than 31 bytes of the 64.
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value.mantissa().unsigned_abs());
        let scale = value.scale() as usize;
        let mut len = 0;
        let mut put = |bytes: &[u8], buf: &mut [u8; 64]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        if value.is_sign_negative() && !value.is_zero() {
            put(b"-", &mut self.buf);
        }
        let bytes = text.as_bytes();
        if scale == 0 {
            put(bytes, &mut self.buf);
        } else if bytes.len() > scale {
            let (int, frac) = bytes.split_at(bytes.len() - scale);
            put(int, &mut self.buf);
            put(b".", &mut self.buf);
            put(frac, &mut self.buf);
        } else {
            put(b"0.", &mut self.buf);
            for _ in bytes.len()..scale {
                put(b"0", &mut self.buf);
            }
            put(bytes, &mut self.buf);
        }
        // Only ASCII digits, `-` and `.` were written, so this is always `Some`.
        std::str::from_utf8(&self.buf[..len]).ok()
    }
}

struct DecVisitor;

impl Visitor<'_> for DecVisitor {
    type Value = Dec;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal written as a JSON string, e.g. \"13800000000\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Dec, E> {
        parse_decimal(v).map(Dec).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dec, E> {
        Err(E::custom(format!(
            "the JSON number {v} is not accepted for a decimal: write it as a string, \"{v}\""
        )))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dec, E> {
        Err(E::custom(format!(
            "the JSON number {v} is not accepted for a decimal: write it as a string, \"{v}\""
        )))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dec, E> {
        Err(E::custom(format!(
            "the JSON number {v} is not accepted for a decimal: write it as a string so that no binary float is involved"
        )))
    }
}

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DecVisitor)
    }
}

/// A strictly positive decimal (units, split ratios).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Positive(pub Dec);

impl Positive {
    pub fn value(self) -> Decimal {
        self.0 .0
    }

    /// `v`, if strictly positive: the one rule of every reader (serde's and the compact one).
    pub fn of(v: Dec) -> Result<Positive, String> {
        if v.0 <= Decimal::ZERO {
            return Err(format!(
                "{v} is not accepted: the value must be strictly positive"
            ));
        }
        Ok(Positive(v))
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Positive::of(Dec::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// An amount of money: a strictly positive decimal and a currency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Money {
    pub amount: Dec,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money {
            amount: Dec(amount),
            currency,
        }
    }

    /// An amount as read from an event: strictly positive (the one rule of every reader,
    /// serde's and the compact one).
    pub fn of(amount: Dec, currency: Currency) -> Result<Money, String> {
        if amount.0 <= Decimal::ZERO {
            return Err(format!(
                "amount {amount} is not accepted: amounts must be strictly positive"
            ));
        }
        Ok(Money { amount, currency })
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = r#"an amount object such as {"amount": "5000000", "currency": "USD"}"#
        )]
        struct Raw {
            amount: Dec,
            currency: Currency,
        }
        let raw = Raw::deserialize(d)?;
        Money::of(raw.amount, raw.currency).map_err(de::Error::custom)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.amount)
    }
}

/// A calendar date written `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub NaiveDate);

impl Date {
    pub fn parse(s: &str) -> Result<Date, String> {
        let b = s.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape {
            return Err(format!("invalid date {s:?}: write YYYY-MM-DD"));
        }
        // The shape is checked: the digits are read directly (`parse_from_str` would parse
        // the format string again for every date of every event read).
        let number =
            |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
        let year = i32::try_from(number(0..4)).unwrap_or(0);
        NaiveDate::from_ymd_opt(year, number(5..7), number(8..10))
            .map(Date)
            .ok_or_else(|| format!("impossible date {s:?}: no such day in the calendar"))
    }
    pub fn naive(self) -> NaiveDate {
        self.0
    }
    /// The last representable day; stands for "no end" in comparisons.
    pub fn max() -> Date {
        Date(NaiveDate::from_ymd_opt(9999, 12, 31).expect("9999-12-31 is a valid date"))
    }
    pub fn year(self) -> i32 {
        self.0.year()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `%Y-%m-%d` writes it, without parsing the format each time (dates are written
        // millions of times by an export and by the keys of checkpoints).
        use chrono::Datelike;
        let (y, m, d) = (self.0.year(), self.0.month(), self.0.day());
        if (0..=9999).contains(&y) {
            write!(f, "{y:04}-{m:02}-{d:02}")
        } else {
            write!(f, "{}", self.0.format("%Y-%m-%d"))
        }
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).map_err(de::Error::custom)
    }
}

impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Date::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn serialized(d: Decimal) -> String {
        serde_json::to_string(&Dec(d)).unwrap()
    }

    #[test]
    fn a_dec_serializes_as_display_writes_it() {
        let cases = [
            Decimal::ZERO,
            Decimal::from_parts(0, 0, 0, true, 5),
            Decimal::from_parts(0, 0, 0, false, 28),
            Decimal::new(1, 28),
            Decimal::new(-1, 28),
            Decimal::new(123_400, 2),
            Decimal::new(-5, 1),
            Decimal::new(7, 0),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, true, 28),
            Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, false, 0),
        ];
        for d in cases {
            assert_eq!(serialized(d), format!("\"{}\"", d.normalize()), "{d:?}");
        }
        assert_eq!(serialized(Decimal::new(-1500, 3)), "\"-1.5\"");
        assert_eq!(serialized(Decimal::new(5, 6)), "\"0.000005\"");
    }

    proptest! {
        #[test]
        fn every_dec_serializes_as_display_writes_it(
            lo in any::<u32>(), mid in any::<u32>(), hi in any::<u32>(),
            negative in any::<bool>(), scale in 0u32..=28,
        ) {
            let d = Decimal::from_parts(lo, mid, hi, negative, scale);
            prop_assert_eq!(serialized(d), format!("\"{}\"", d.normalize()));
        }
    }

    #[test]
    fn decimals_are_plain_strings() {
        assert_eq!(parse_decimal("32.5").unwrap(), Decimal::new(325, 1));
        assert_eq!(parse_decimal("-1").unwrap(), Decimal::NEGATIVE_ONE);
        for bad in [
            "", "1e5", "1,000", "+1", ".5", "5.", "1.2.3", " 1", "0x10", "NaN",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse_decimal("12345678901234567890123456789").is_err());
        assert!(parse_decimal("0000000000000000000000000000001").is_ok());
        // Significant digits run across the point, and leading zeros after it count only
        // when a digit before it is not zero.
        assert!(parse_decimal("1234567890123456789012345678.0").is_err());
        assert!(parse_decimal("123456789012345678901234567.8").is_ok());
        assert!(parse_decimal("0.0000000000000000000000000001").is_ok());
        assert!(parse_decimal("00.0000000000000000000000000001").is_ok());
        assert!(parse_decimal("1.0000000000000000000000000001").is_err());
        assert!(parse_decimal("0.00000000000000000000000000001").is_err());
    }

    #[test]
    fn json_numbers_are_refused_for_decimals() {
        let err = serde_json::from_str::<Dec>("13.8").unwrap_err().to_string();
        assert!(err.contains("write it as a string"), "{err}");
        assert!(serde_json::from_str::<Dec>("13").is_err());
        assert_eq!(
            serde_json::from_str::<Dec>("\"13.80\"")
                .unwrap()
                .to_string(),
            "13.8"
        );
    }

    #[test]
    fn dates_must_exist() {
        assert!(Date::parse("2025-10-28").is_ok());
        assert!(Date::parse("2025-02-30")
            .unwrap_err()
            .contains("impossible"));
        assert!(Date::parse("2025-1-5").is_err());
        assert!(Date::parse("20251028").is_err());
    }

    #[test]
    fn ids_follow_their_alphabets() {
        assert!(Slug::parse("openai-group").is_ok());
        assert!(Slug::parse("OpenAI").is_err());
        assert!(Slug::parse("-x").is_err());
        assert!(Slug::parse(&"a".repeat(65)).is_err());
        assert!(EventId::parse("2025-10-28:recap_1.A").is_ok());
        assert!(EventId::parse("a b").is_err());
        assert!(EventId::parse("").is_err());
    }

    #[test]
    fn money_is_strictly_positive() {
        let ok: Money = serde_json::from_str(r#"{"amount":"1","currency":"USD"}"#).unwrap();
        assert_eq!(ok.to_string(), "USD 1");
        assert!(serde_json::from_str::<Money>(r#"{"amount":"0","currency":"USD"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"usd"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"USD","x":1}"#).is_err());
    }
}
