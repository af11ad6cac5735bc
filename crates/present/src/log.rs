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
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|e| {
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
                })
                .collect();
            render::csv(
                out,
                &[
                    "seq",
                    "recorded",
                    "effective",
                    "type",
                    "id",
                    "payload",
                    "source",
                    "note",
                    "hash",
                ],
                &rows,
            )?;
        }
        Format::Table => {
            let mut t = Table::new(&[
                ("seq", Align::Right),
                ("effective", Align::Left),
                ("type", Align::Left),
                ("id", Align::Left),
                ("recorded", Align::Left),
            ]);
            for e in rows {
                t.row(vec![
                    e.seq.to_string(),
                    e.event.effective.to_string(),
                    e.event.payload.type_name().into(),
                    e.event.id.to_string(),
                    e.recorded.to_string(),
                ]);
            }
            t.write(out, "", style)?;
        }
    }
    Ok(())
}
