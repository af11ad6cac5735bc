//! `accord log`: the stored events, as JSON Lines (each event with its `seq`, `recorded` and
//! `hash`), CSV or a table.

use std::io::{self, Write};

use domain::event::Event;
use serde_json::{json, Value};

use crate::render::{self, Align, Table};
use crate::{Format, Style};

/// One stored event and its place in the log.
pub struct Entry<'a> {
    pub seq: u64,
    pub recorded: &'a str,
    pub hash: &'a str,
    pub event: &'a Event,
    /// The reversal that removed it, as known now.
    pub reversed_by: Option<&'a str>,
}

impl<'a> From<&'a engine::LogEntry> for Entry<'a> {
    fn from(e: &'a engine::LogEntry) -> Entry<'a> {
        Entry {
            seq: e.seq,
            recorded: &e.recorded,
            hash: &e.hash,
            event: &e.event,
            reversed_by: e.reversed_by.as_deref(),
        }
    }
}

/// What a row says of reversals: the event a reversal reverses, or the reversal that
/// removed this event.
fn reversal(e: &Entry<'_>) -> Option<String> {
    if let domain::Payload::EventReversed(p) = &e.event.payload {
        return Some(format!("reverses {}", p.reverses));
    }
    e.reversed_by.map(|r| format!("reversed by {r}"))
}

/// The log line of one event: the event's fields with `seq`, `recorded` and `hash`.
pub fn json_line(e: &Entry<'_>) -> String {
    let mut map = e.event.to_json();
    map.insert("seq".into(), json!(e.seq));
    map.insert("recorded".into(), json!(e.recorded));
    map.insert("hash".into(), json!(e.hash));
    Value::Object(map).to_string()
}

pub fn entries(
    out: &mut dyn Write,
    format: Format,
    rows: &[Entry<'_>],
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => {
            for e in rows {
                writeln!(out, "{}", json_line(e))?;
            }
        }
        Format::Csv => {
            let rows: Vec<Vec<String>> = rows.iter().map(csv_row).collect();
            render::csv(out, CSV_HEADER, &rows)?;
        }
        Format::Table => {
            // The reversal column shows only where a row has something to say.
            let marks: Vec<Option<String>> = rows.iter().map(reversal).collect();
            let any = marks.iter().any(Option::is_some);
            let mut columns = vec![
                ("seq", Align::Right),
                ("effective", Align::Left),
                ("type", Align::Left),
                ("id", Align::Left),
                ("recorded", Align::Left),
            ];
            if any {
                columns.push(("reversal", Align::Left));
            }
            let mut t = Table::new(&columns);
            for (e, mark) in rows.iter().zip(marks) {
                let mut row = vec![
                    e.seq.to_string(),
                    e.event.effective.to_string(),
                    e.event.payload.type_name().into(),
                    e.event.id.to_string(),
                    e.recorded.to_string(),
                ];
                if any {
                    row.push(mark.unwrap_or_default());
                }
                t.row(row);
            }
            t.write(out, "", style)?;
        }
    }
    Ok(())
}

const CSV_HEADER: &[&str] = &[
    "seq",
    "recorded",
    "effective",
    "type",
    "id",
    "payload",
    "source",
    "note",
    "hash",
];

fn csv_row(e: &Entry<'_>) -> Vec<String> {
    let mut payload = e.event.to_json();
    for k in ["id", "type", "effective", "source", "note"] {
        payload.remove(k);
    }
    vec![
        e.seq.to_string(),
        e.recorded.to_string(),
        e.event.effective.to_string(),
        e.event.payload.type_name().to_string(),
        e.event.id.to_string(),
        Value::Object(payload).to_string(),
        e.event
            .source
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        e.event
            .note
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        e.hash.to_string(),
    ]
}

/// `accord show ID`: one event, with what reversed it. JSON: its log line's fields plus
/// `reversed_by`; CSV: the log's columns plus `reversed_by`; for people, one field a line.
pub fn show(out: &mut dyn Write, format: Format, e: &Entry<'_>, style: Style) -> io::Result<()> {
    match format {
        Format::Json => {
            let mut line: serde_json::Map<String, Value> =
                serde_json::from_str(&json_line(e)).map_err(io::Error::other)?;
            line.insert("reversed_by".into(), json!(e.reversed_by));
            writeln!(out, "{}", Value::Object(line))
        }
        Format::Csv => {
            let mut header = CSV_HEADER.to_vec();
            header.push("reversed_by");
            let mut row = csv_row(e);
            row.push(e.reversed_by.unwrap_or_default().to_string());
            render::csv(out, &header, &[row])
        }
        Format::Table => {
            let mut t = Table::new(&[("field", Align::Left), ("value", Align::Left)]);
            t.row(vec!["seq".into(), e.seq.to_string()]);
            t.row(vec!["recorded".into(), e.recorded.to_string()]);
            for (k, v) in e.event.to_json() {
                let v = match v {
                    Value::String(s) => s,
                    Value::Null => "-".into(),
                    other => other.to_string(),
                };
                t.row(vec![k, v]);
            }
            t.row(vec!["hash".into(), e.hash.to_string()]);
            if let Some(m) = reversal(e) {
                t.row(vec!["reversal".into(), m]);
            }
            t.write(out, "", style)
        }
    }
}
