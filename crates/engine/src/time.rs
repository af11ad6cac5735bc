//! The arguments every face takes in the same form: a transaction time (`--known-at`,
//! `known_at=`) and an expected head (`SEQ:HASH`).

use chrono::{DateTime, NaiveTime, Utc};
use domain::values::Date;
use domain::KnownAt;

use crate::Error;

/// A transaction time: a positive seq, a date (the end of that day, UTC) or an RFC 3339
/// timestamp. The error is the words to show after the argument's name.
pub fn parse_known_at(s: &str) -> Result<KnownAt, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(0) | Err(_) => Err(format!("invalid seq {s:?}: use a positive integer")),
            Ok(n) => Ok(KnownAt::Seq(n)),
        };
    }
    if s.len() == 10 {
        let d = Date::parse(s)?;
        let end = d
            .naive()
            .and_time(NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or_default())
            .and_utc();
        return Ok(KnownAt::Time(end));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| KnownAt::Time(t.with_timezone(&Utc)))
        .map_err(|_| {
            format!("invalid time {s:?}: use an RFC 3339 timestamp, a date YYYY-MM-DD or a seq")
        })
}

/// A head someone wrote down, `SEQ:HASH` as `accord head` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedHead {
    pub seq: u64,
    /// 64 lowercase hex digits.
    pub hash: String,
}

impl ExpectedHead {
    /// Parses `SEQ:HASH` (surrounding blanks allowed, hex in either case), or `0`: the head
    /// of an empty log.
    pub fn parse(s: &str) -> Result<ExpectedHead, Error> {
        let bad = || {
            Error::BadArgument(format!(
                "invalid --expect-head {s:?}: write SEQ:HASH as printed by `accord head`, or 0 for an empty log"
            ))
        };
        if s.trim() == "0" {
            return Ok(ExpectedHead::empty());
        }
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        if seq == 0 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(ExpectedHead {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

impl std::fmt::Display for ExpectedHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.seq == 0 {
            return f.write_str("0");
        }
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl ExpectedHead {
    /// The head of an empty log, for an append that must be the first.
    pub fn empty() -> ExpectedHead {
        ExpectedHead {
            seq: 0,
            hash: String::new(),
        }
    }

    /// Whether `head` is this one.
    pub fn matches(&self, head: Option<&store::Head>) -> bool {
        match head {
            None => self.seq == 0,
            Some(h) => h.seq == self.seq && h.hash_hex() == self.hash,
        }
    }
}
