//! `accord diff`: the restatement report. What changed on date D between what was known at
//! T1 and at T2, row by row (ownership, obligations, rights), and the recorded events and
//! reversals responsible. The comparison is `projector::restatement`, run by the engine; this
//! module formats the answer.
//!
//! JSON (documented in README.md):
//! `{"as_of", "from", "from_seq", "to", "to_seq", "changes": [{"area", "key",
//! "before", "after", "events"}], "events": [{"seq", "id", "type",
//! "effective", "reverses"}]}`; `from` and `to` are the times as given,
//! `to` is `null` without `--vs-known-at` (everything recorded).

use std::io::{self, Write};

use engine::DiffReport;
use projector::{Change, Restatement};
use serde_json::{json, Map, Value};

use crate::human::group_thousands;
use crate::render::{self, Align, Table};
use crate::{Format, Style};

/// Writes the restatement; `from` is the earlier transaction time as the user gave it, `to`
/// the later one (`None`: everything recorded).
pub fn diff(
    out: &mut dyn Write,
    format: Format,
    report: &DiffReport,
    from: &str,
    to: Option<&str>,
    style: Style,
) -> io::Result<()> {
    let view = View {
        from: from.to_string(),
        from_seq: report.from_seq,
        to: to.map(str::to_string),
        to_seq: report.to_seq,
    };
    let r = &report.restatement;
    match format {
        Format::Json => render::json(out, &to_json(r, &view)),
        Format::Csv => print_csv(out, r, &view),
        Format::Table => print_table(out, r, &view, style),
    }
}

/// The two transaction times as given, and the last seq each one sees.
struct View {
    from: String,
    from_seq: Option<u64>,
    to: Option<String>,
    to_seq: Option<u64>,
}

impl View {
    fn describe(t: Option<&str>, seq: Option<u64>) -> String {
        let upto = seq.map_or("no event".to_string(), |s| format!("up to seq {s}"));
        match t {
            Some(t) => format!("known at {t} ({upto})"),
            None => format!("everything recorded ({upto})"),
        }
    }
}

fn to_json(r: &Restatement, v: &View) -> Value {
    json!({
        "as_of": r.as_of,
        "from": v.from,
        "from_seq": v.from_seq,
        "to": v.to,
        "to_seq": v.to_seq,
        "changes": r.changes,
        "events": r.events,
    })
}

/// The fields of a row that name it (they are in the change's key).
fn key_fields(area: &str) -> &'static [&'static str] {
    match area {
        "ownership" => &["entity", "holder", "class"],
        "obligations" => &["obligation"],
        _ => &["right"],
    }
}

/// `(field, before, after)` for each field that differs; every field of the
/// row that exists when the other side has none.
fn fields<'a>(c: &'a Change) -> Vec<(String, Option<&'a Value>, Option<&'a Value>)> {
    let empty = Map::new();
    let b = c.before.as_ref().and_then(Value::as_object);
    let a = c.after.as_ref().and_then(Value::as_object);
    let mut names: Vec<&String> = b.unwrap_or(&empty).keys().collect();
    for k in a.unwrap_or(&empty).keys() {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    names
        .into_iter()
        .filter(|k| !key_fields(c.area).contains(&k.as_str()))
        .filter_map(|k| {
            // A missing row and a null field are both "nothing".
            let get = |m: Option<&'a Map<String, Value>>| {
                m.and_then(|m| m.get(k)).filter(|v| !v.is_null())
            };
            let (x, y) = (get(b), get(a));
            (x != y).then(|| (k.clone(), x, y))
        })
        .collect()
}

/// A row's value for people: money with thousands, a percent with `%`.
fn show(field: &str, v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        Some(Value::String(s)) if field == "percent" => format!("{s} %"),
        Some(Value::String(s)) if field == "units" => group_thousands(s),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => match (m.get("amount"), m.get("currency")) {
            (Some(Value::String(a)), Some(Value::String(c))) => {
                format!("{} {c}", group_thousands(a))
            }
            _ => Value::Object(m.clone()).to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// A whole row in a few words, for a row that exists on one side only.
fn summary(area: &str, row: Option<&Value>) -> String {
    let Some(row) = row else {
        return "-".into();
    };
    let get = |k: &str| row.get(k);
    match area {
        "ownership" => format!(
            "{} ({} units)",
            show("percent", get("percent")),
            show("units", get("units"))
        ),
        "obligations" => format!(
            "{} outstanding of {}, {}",
            show("outstanding", get("outstanding")),
            show("amount", get("amount")),
            show("status", get("status"))
        ),
        _ => match get("ended").and_then(Value::as_str) {
            None => format!("{}, in force", show("kind", get("kind"))),
            Some(why) => format!("{}, not in force ({why})", show("kind", get("kind"))),
        },
    }
}

/// A row's value for a spreadsheet: plain decimals, money as `AMOUNT CUR`.
fn plain(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => match (m.get("amount"), m.get("currency")) {
            (Some(Value::String(a)), Some(Value::String(c))) => format!("{a} {c}"),
            _ => Value::Object(m.clone()).to_string(),
        },
        Some(other) => other.to_string(),
    }
}

fn print_csv(out: &mut dyn Write, r: &Restatement, v: &View) -> io::Result<()> {
    let mut rows = Vec::new();
    for c in &r.changes {
        for (field, b, a) in fields(c) {
            rows.push(vec![
                r.as_of.to_string(),
                v.from.clone(),
                v.to.clone().unwrap_or_default(),
                c.area.to_string(),
                c.key.clone(),
                field,
                plain(b),
                plain(a),
                c.events.join(" "),
            ]);
        }
    }
    render::csv(
        out,
        &[
            "as_of", "from", "to", "area", "key", "field", "before", "after", "events",
        ],
        &rows,
    )?;
    Ok(())
}

fn print_table(out: &mut dyn Write, r: &Restatement, v: &View, style: Style) -> io::Result<()> {
    writeln!(
        out,
        "Restatement of {}: {} vs {}",
        r.as_of,
        View::describe(Some(&v.from), v.from_seq),
        View::describe(v.to.as_deref(), v.to_seq)
    )?;
    if r.changes.is_empty() {
        writeln!(
            out,
            "No change in ownership, obligations or rights on {}.",
            r.as_of
        )?;
    } else {
        writeln!(out, "Changes:")?;
        let mut t = Table::new(&[
            ("area", Align::Left),
            ("key", Align::Left),
            ("field", Align::Left),
            ("before", Align::Right),
            ("after", Align::Right),
            ("events", Align::Left),
        ]);
        for c in &r.changes {
            if c.before.is_none() || c.after.is_none() {
                // A row that appears or disappears: one line that sums it up.
                t.row(vec![
                    c.area.into(),
                    c.key.clone(),
                    if c.before.is_none() { "new" } else { "gone" }.into(),
                    summary(c.area, c.before.as_ref()),
                    summary(c.area, c.after.as_ref()),
                    c.events.join(" "),
                ]);
                continue;
            }
            for (k, (field, b, a)) in fields(c).into_iter().enumerate() {
                let first = k == 0;
                t.row(vec![
                    if first { c.area.into() } else { String::new() },
                    if first { c.key.clone() } else { String::new() },
                    field.clone(),
                    show(&field, b),
                    show(&field, a),
                    if first {
                        c.events.join(" ")
                    } else {
                        String::new()
                    },
                ]);
            }
        }
        t.write(out, "  ", style)?;
    }
    if !r.events.is_empty() {
        writeln!(
            out,
            "Events known on one side only that affect {}:",
            r.as_of
        )?;
        let mut t = Table::new(&[
            ("seq", Align::Right),
            ("effective", Align::Left),
            ("type", Align::Left),
            ("id", Align::Left),
            ("reverses", Align::Left),
        ]);
        for e in &r.events {
            t.row(vec![
                e.seq.to_string(),
                e.effective.to_string(),
                e.type_name.to_string(),
                e.id.clone(),
                render::opt(&e.reverses),
            ]);
        }
        t.write(out, "  ", style)?;
    }
    Ok(())
}
