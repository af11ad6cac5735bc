//! Output for people (aligned tables) and for programs (JSON, RFC 4180 CSV).
//!
//! Tables are free to improve; the JSON and CSV shapes are the contract of
//! CLI.md and change only by adding.

use std::io::{self, Write};

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

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the table, each line after `indent`, the header row in bold when `style` says.
    pub fn write(&self, out: &mut dyn Write, indent: &str, style: Style) -> io::Result<()> {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain(std::iter::once(self.header[i].chars().count()))
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
                match self.align[i] {
                    Align::Left => s.push_str(&format!("{c:<w$}")),
                    Align::Right => s.push_str(&format!("{c:>w$}")),
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

/// Money for people: `135,000,000,000 USD`.
pub fn money(m: &Money) -> String {
    format!("{} {}", group_thousands(&m.amount.to_string()), m.currency)
}

pub fn opt_money(m: &Option<Money>) -> String {
    m.as_ref().map(money).unwrap_or_else(|| "-".to_string())
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
    // Serialized first, so that an error writing (a closed pipe) keeps its kind.
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    writeln!(out, "{text}")
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
