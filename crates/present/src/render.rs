//! Output for people (aligned tables) and for programs (JSON, RFC 4180 CSV).
//!
//! Tables are free to improve; the JSON and CSV shapes are the contract of
//! CLI.md and change only by adding.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use crate::human::group_thousands;
use crate::Style;
use domain::values::Money;

/// Alignment of a table column.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header, printed with aligned columns.
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            header: columns.iter().map(|(h, _)| h.to_string()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; control characters in its cells (a name recorded before they were
    /// refused) are shown escaped, so that a cell can neither drive the terminal nor break
    /// the table's lines.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| visible(&c)).collect());
    }

    /// Writes the table, each line after `indent`, the header row in bold when `style` says.
    pub fn write(&self, out: &mut dyn Write, indent: &str, style: Style) -> io::Result<()> {
        // Columns line up by display width: a wide character (`优先股`) takes two columns.
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.width()))
                .chain(std::iter::once(self.header[i].width()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let line = |cells: &[String]| {
            let mut s = String::from(indent);
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = " ".repeat(w.saturating_sub(c.width()));
                match self.align[i] {
                    Align::Left => {
                        s.push_str(c);
                        s.push_str(&pad);
                    }
                    Align::Right => {
                        s.push_str(&pad);
                        s.push_str(c);
                    }
                }
            }
            s.trim_end().to_string()
        };
        writeln!(out, "{}", style.header(&line(&self.header)))?;
        for r in &self.rows {
            writeln!(out, "{}", line(r))?;
        }
        Ok(())
    }
}

/// Money for people: `135,000,000,000 USD`; a fraction shows at least two decimals
/// (`3,467,422.10 USD`, not `.1`), and every digit it has beyond them (amounts are exact).
pub fn money(m: &Money) -> String {
    let mut text = m.amount.to_string();
    if let Some((_, frac)) = text.split_once('.') {
        if frac.len() == 1 {
            text.push('0');
        }
    }
    format!("{} {}", group_thousands(&text), m.currency)
}

pub fn opt_money(m: &Option<Money>) -> String {
    m.as_ref().map(money).unwrap_or_else(|| "-".to_string())
}

/// Units for people: thousands grouped, and a fraction (a split by 3 leaves 28 digits of one)
/// rounded to 6 places; JSON and CSV keep every digit.
pub fn units(u: &domain::values::Dec) -> String {
    let shown =
        u.0.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointNearestEven)
            .normalize();
    group_thousands(&shown.to_string())
}

pub fn percent(p: &domain::values::Dec) -> String {
    format!("{p} %")
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".to_string())
}

/// Writes pretty JSON and a newline.
pub fn json<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    // Written as it is serialized, through a buffer: a report of megabytes (a timeline) is
    // never held whole. An error writing (a closed pipe) comes back as the `io::Error` it
    // was, so it keeps its kind.
    let mut buffered = io::BufWriter::with_capacity(64 * 1024, out);
    match serde_json::to_writer_pretty(&mut buffered, value) {
        Ok(()) => {
            buffered.write_all(b"\n")?;
            buffered.flush()
        }
        // What is still buffered is dropped, not written: a report that cannot be serialized
        // (none of accord's can) leaves at most the 64 KiB pieces already written.
        Err(e) => {
            let _ = buffered.into_parts();
            Err(if e.is_io() {
                io::Error::from(e)
            } else {
                io::Error::other(e)
            })
        }
    }
}

/// Writes CSV (RFC 4180, header first): fields with a comma, a quote or a
/// line break are quoted, quotes doubled. Records end with LF, the `csv`
/// crate's default, which every spreadsheet reads; CRLF would change the
/// bytes that scripts have read since version 1. An empty report is its
/// header alone. `tests/csv_output.rs` parses every CSV output.
pub fn csv(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(io::Error::other)?;
    for r in rows {
        w.write_record(r).map_err(io::Error::other)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    out.write_all(&bytes)
}

/// A character that changes how the text around it reads without showing itself: the bidi
/// embeddings, overrides, isolates and marks (a right-to-left override turns the rest of a
/// terminal line around), zero-width space and word joiner, the byte-order mark, and the
/// line and paragraph separators. Stored text may hold them (right-to-left names use the
/// marks); output for people shows them escaped. Joiners (U+200C, U+200D), which scripts and
/// emoji need, are left alone.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{61c}'
            | '\u{200b}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Text for people: every control character (U+0000 to U+001F, U+007F to U+009F) and every
/// invisible character that changes how text reads ([`is_deceptive`]) shown as an escape
/// (`\n`, `\t`, `\u{1b}`, `\u{202e}`), so that recorded text never reaches a terminal raw.
pub fn visible(s: &str) -> String {
    let hidden = |c: char| domain::event::is_control(c) || is_deceptive(c);
    if !s.chars().any(hidden) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_wide_ones_aligned() {
        assert_eq!(visible("a\u{1b}]0;x\u{7}b"), "a\\u{1b}]0;x\\u{7}b");
        assert_eq!(visible("two\nlines"), "two\\nlines");
        assert_eq!(visible("plain"), "plain");
        let m = |a: &str| {
            Money::new(
                a.parse().unwrap(),
                domain::values::Currency::parse("USD").unwrap(),
            )
        };
        assert_eq!(money(&m("3467422.1")), "3,467,422.10 USD");
        assert_eq!(money(&m("0.125")), "0.125 USD");
        assert_eq!(money(&m("135000000000")), "135,000,000,000 USD");
        assert_eq!(visible("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(
            visible("a\u{200b}b\u{2028}c\u{feff}"),
            "a\\u{200b}b\\u{2028}c\\u{feff}"
        );
        // Joiners stay: emoji and scripts need them.
        assert_eq!(visible("👩\u{200d}💻"), "👩\u{200d}💻");
        let third = domain::values::Dec("7733333.3333333333333333333333".parse().unwrap());
        assert_eq!(units(&third), "7,733,333.333333");
        let whole = domain::values::Dec("270000000".parse().unwrap());
        assert_eq!(units(&whole), "270,000,000");
        let mut t = Table::new(&[("class", Align::Left), ("units", Align::Right)]);
        t.row(vec!["优先股".into(), "1".into()]);
        t.row(vec!["common".into(), "22".into()]);
        let mut out = Vec::new();
        t.write(&mut out, "", Style::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let widths: Vec<usize> = text.lines().map(UnicodeWidthStr::width).collect();
        assert_eq!(widths, vec![widths[0]; 3], "{text}");
    }
}
