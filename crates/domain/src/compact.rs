//! A reader of the two commonest events (`obligation_settled`, `shares_transferred`) in the
//! narrowest form a line can take: compact JSON, keys in byte order, every string without an
//! escape. That is the form of every stored event (canonical bytes) and of most generated
//! files, and reading it by hand is several times cheaper than through serde (`verify` and an
//! import decode a million of them).
//!
//! It is never laxer than `Event::from_line`: it accepts a strict subset of JSON (no
//! whitespace, no number, no escape, no key twice: keys must ascend), only the fields the
//! event's type has, and every value goes through the same `parse` as in the serde path, with
//! the same checks (strictly positive units and amounts). Anything else is `None`, and the
//! caller reads the line the usual way, so refusals and their words are unchanged. A property
//! test holds it to that: whatever line it accepts, `from_line`'s strict path reads to the
//! same event.

use crate::event::{Event, ObligationSettled, Payload, SharesTransferred};
use crate::values::{
    parse_decimal, ClassName, Currency, Date, Dec, EventId, Money, Positive, Slug, Text,
};

/// One value of the subset: a string, or (for `amount`) an object of strings.
enum Value<'a> {
    Str(&'a str),
    Object(Vec<(&'a str, &'a str)>),
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.s.as_bytes().get(self.pos) == Some(&b)).then(|| self.pos += 1)
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// A string without escapes or control characters: its text is its value.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = &self.s.as_bytes()[start..];
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.pos = start + len + 1;
        // Quotes are ASCII, so both ends are character boundaries.
        self.s.get(start..start + len)
    }

    /// `{"k":"v",...}` with ascending keys; `nested` allows one level of object values.
    fn object(&mut self, nested: bool) -> Option<Vec<(&'a str, Value<'a>)>> {
        self.eat(b'{')?;
        let mut fields: Vec<(&'a str, Value<'a>)> = Vec::with_capacity(8);
        if self.eat(b'}').is_some() {
            return Some(fields);
        }
        loop {
            let key = self.string()?;
            if fields.last().is_some_and(|(k, _)| *k >= key) {
                return None;
            }
            self.eat(b':')?;
            let value = match self.peek()? {
                b'"' => Value::Str(self.string()?),
                b'{' if nested => Value::Object(
                    self.object(false)?
                        .into_iter()
                        .map(|(k, v)| match v {
                            Value::Str(s) => Some((k, s)),
                            Value::Object(_) => None,
                        })
                        .collect::<Option<_>>()?,
                ),
                _ => return None,
            };
            fields.push((key, value));
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(fields);
                }
                _ => return None,
            }
        }
    }
}

/// The event of `line` when it is one of the two types in the narrow form; `None` otherwise
/// (not an error: the caller reads the line the usual way).
pub(crate) fn parse(line: &str) -> Option<Event> {
    let mut c = Cursor { s: line, pos: 0 };
    let fields = c.object(true)?;
    if c.pos != line.len() {
        return None;
    }
    let mut envelope = Envelope::default();
    let mut payload: Vec<(&str, Value<'_>)> = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        let slot = match k {
            "id" => &mut envelope.id,
            "type" => &mut envelope.type_name,
            "effective" => &mut envelope.effective,
            "source" => &mut envelope.source,
            "note" => &mut envelope.note,
            _ => {
                payload.push((k, v));
                continue;
            }
        };
        match v {
            Value::Str(s) => *slot = Some(s),
            Value::Object(_) => return None,
        }
    }
    let payload = match envelope.type_name? {
        "obligation_settled" => Payload::ObligationSettled(settled(payload)?),
        "shares_transferred" => Payload::SharesTransferred(transferred(payload)?),
        _ => return None,
    };
    Some(Event {
        id: EventId::parse(envelope.id?).ok()?,
        effective: Date::parse(envelope.effective?).ok()?,
        source: envelope.source.map(Text::parse).transpose().ok()?,
        note: envelope.note.map(Text::parse).transpose().ok()?,
        payload,
    })
}

#[derive(Default)]
struct Envelope<'a> {
    id: Option<&'a str>,
    type_name: Option<&'a str>,
    effective: Option<&'a str>,
    source: Option<&'a str>,
    note: Option<&'a str>,
}

fn str_of<'a>(v: &Value<'a>) -> Option<&'a str> {
    match v {
        Value::Str(s) => Some(s),
        Value::Object(_) => None,
    }
}

/// A strictly positive decimal, as `Positive` deserializes one.
fn positive(s: &str) -> Option<Dec> {
    let d = parse_decimal(s).ok()?;
    (d > rust_decimal::Decimal::ZERO).then_some(Dec(d))
}

fn settled(fields: Vec<(&str, Value<'_>)>) -> Option<ObligationSettled> {
    let (mut obligation, mut amount, mut reference) = (None, None, None);
    for (k, v) in fields {
        match (k, v) {
            ("obligation", v) => obligation = Some(Slug::parse(str_of(&v)?).ok()?),
            ("reference", v) => reference = Some(Text::parse(str_of(&v)?).ok()?),
            ("amount", Value::Object(m)) => amount = Some(money(&m)?),
            _ => return None,
        }
    }
    Some(ObligationSettled {
        obligation: obligation?,
        amount: amount?,
        reference,
    })
}

/// `{"amount":"...","currency":"..."}`, both and nothing else (keys ascend, so in that order).
fn money(m: &[(&str, &str)]) -> Option<Money> {
    match m {
        [("amount", a), ("currency", c)] => Some(Money {
            amount: positive(a)?,
            currency: Currency::parse(c).ok()?,
        }),
        _ => None,
    }
}

fn transferred(fields: Vec<(&str, Value<'_>)>) -> Option<SharesTransferred> {
    let (mut issuer, mut from, mut to, mut units, mut class) = (None, None, None, None, None);
    for (k, v) in fields {
        let s = str_of(&v)?;
        match k {
            "issuer" => issuer = Some(Slug::parse(s).ok()?),
            "from" => from = Some(Slug::parse(s).ok()?),
            "to" => to = Some(Slug::parse(s).ok()?),
            "units" => units = Some(Positive(positive(s)?)),
            "class" => class = Some(ClassName::parse(s).ok()?),
            _ => return None,
        }
    }
    Some(SharesTransferred {
        issuer: issuer?,
        from: from?,
        to: to?,
        units: units?,
        class,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::event::Event;
    use proptest::prelude::*;

    /// Lines of both types in the compact form, with and without their optional fields.
    fn lines() -> Vec<String> {
        [
            r#"{"amount":{"amount":"1.00","currency":"USD"},"effective":"2020-12-31","id":"ev-1","obligation":"ob-0","reference":"bench","type":"obligation_settled"}"#,
            r#"{"amount":{"amount":"250000000","currency":"EUR"},"effective":"2025-10-28","id":"s1","note":"é ünïcode — \u2028 ok","obligation":"azure-commitment","source":"press","type":"obligation_settled"}"#,
            r#"{"effective":"2016-01-02","from":"p1","id":"ev-9","issuer":"e0","to":"p2","type":"shares_transferred","units":"10.5"}"#,
            r#"{"class":"series-a preferred","effective":"2016-01-02","from":"p1","id":"ev-10","issuer":"e0","note":"n","source":"s","to":"p2","type":"shares_transferred","units":"3"}"#,
        ]
        .iter()
        .map(|s| s.replace(r"\u2028", "\u{2028}"))
        .collect()
    }

    #[test]
    fn the_compact_form_reads_as_the_strict_parser_reads_it() {
        for line in lines() {
            let fast = parse(&line).unwrap_or_else(|| panic!("not read: {line}"));
            assert_eq!(Ok(fast.clone()), Event::from_line_strict(&line), "{line}");
            // A stored event's canonical bytes are in that form.
            let canonical = String::from_utf8(fast.canonical_bytes()).unwrap();
            assert_eq!(parse(&canonical), Some(fast));
        }
    }

    #[test]
    fn anything_outside_the_narrow_form_is_left_to_the_usual_reader() {
        let base = &lines()[0];
        for (from, to) in [
            (r#""amount":"1.00""#, r#""amount":"0""#),
            (r#""amount":"1.00""#, r#""amount":"-1""#),
            (r#""amount":"1.00""#, r#""amount":1"#),
            (r#""currency":"USD""#, r#""currency":"usd""#),
            (r#""obligation":"ob-0""#, r#""obligation":"Ob 0""#),
            (r#""id":"ev-1","#, r#""id":"ev-1","id":"ev-2","#),
            (r#""id":"ev-1","#, ""),
            (r#","reference":"bench""#, r#","reference":"be\"nch""#),
            (r#","reference":"bench""#, r#","reference":"b\nch""#),
            (r#","reference":"bench""#, r#","zzz":"x""#),
            (
                r#""effective":"2020-12-31","#,
                r#""effective":"2020-02-30","#,
            ),
            (
                r#""effective":"2020-12-31","id":"ev-1","#,
                r#""id":"ev-1","effective":"2020-12-31","#,
            ),
            (
                r#""type":"obligation_settled""#,
                r#""type":"obligation_amended""#,
            ),
            (r#","currency":"USD""#, r#","currency":"USD","extra":"x""#),
            ("{", "{ "),
        ] {
            let line = base.replacen(from, to, 1);
            assert_ne!(&line, base, "{from} not in the line");
            assert_eq!(parse(&line), None, "{line}");
        }
        assert_eq!(parse(&format!("{base}\n")), None);
        let units = &lines()[2];
        for bad in [r#""units":"0""#, r#""units":"1e3""#, r#""units":"""#] {
            assert_eq!(
                parse(&units.replacen(r#""units":"10.5""#, bad, 1)),
                None,
                "{bad}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever line the hand reader accepts, the strict parser reads to the same event:
        /// lines of the narrow form cut, changed and lengthened at random.
        #[test]
        fn never_laxer_than_the_strict_parser(
            which in 0usize..4,
            edits in proptest::collection::vec((0usize..400, 0usize..3, 0usize..24), 1..4),
        ) {
            let alphabet = [
                "\"", ":", ",", "{", "}", " ", "\\", "0", "1", "-", ".", "a", "é", "x",
                "amount", "currency", "class", "note", "id", "type", "units", "\"\"", "USD", "\n",
            ];
            let mut line = lines()[which].clone();
            for (at, op, what) in edits {
                let mut at = at % (line.len() + 1);
                while !line.is_char_boundary(at) {
                    at -= 1;
                }
                match op {
                    0 => line.insert_str(at, alphabet[what]),
                    1 => {
                        let end = (at + 1 + what % 4).min(line.len());
                        let mut end = end;
                        while !line.is_char_boundary(end) {
                            end += 1;
                        }
                        line.replace_range(at..end, "");
                    }
                    _ => {
                        let end = (at + 1).min(line.len());
                        let mut end = end;
                        while !line.is_char_boundary(end) {
                            end += 1;
                        }
                        line.replace_range(at..end, alphabet[what]);
                    }
                }
            }
            if let Some(fast) = parse(&line) {
                prop_assert_eq!(Ok(fast), Event::from_line_strict(&line), "{}", line);
            }
        }
    }
}
