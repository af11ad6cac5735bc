//! The answers of commands that write or check: an append's receipt, an import's receipts,
//! `verify`'s verdict and the head. Each is one line (or a short table) for people, or one
//! JSON object for programs; these have no CSV form, and `Format::Csv` prints the table.

use std::fmt::Write as _;
use std::io::{self, Write};

use engine::{FileReceipt, Receipt, Verified};
use serde_json::{json, Value};

use crate::render::{Align, Table};
use crate::{Format, Style};

/// The JSON of one batch's receipt.
pub fn receipt_json(r: &Receipt) -> Value {
    json!({
        "appended": r.appended,
        "skipped": r.skipped,
        "first_seq": r.first_seq,
        "last_seq": r.last_seq,
        "head": r.head,
    })
}

/// The receipt of one batch (`append`, `record`): a line for people, or one JSON object.
/// `id` names the event `record` built.
pub fn receipt(
    out: &mut dyn Write,
    format: Format,
    r: &Receipt,
    dry_run: bool,
    id: Option<&str>,
) -> io::Result<()> {
    match format {
        Format::Json => {
            let mut v = receipt_json(r);
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            if dry_run {
                v["dry_run"] = json!(true);
            }
            writeln!(out, "{v}")?;
        }
        Format::Table | Format::Csv => {
            let verb = if dry_run { "would append" } else { "appended" };
            let mut line = format!("{verb} {} event{}", r.appended, plural(r.appended));
            if let (Some(a), Some(b)) = (r.first_seq, r.last_seq) {
                let _ = if a == b {
                    write!(line, " (seq {a})")
                } else {
                    write!(line, " (seq {a}-{b})")
                };
            }
            if r.skipped > 0 {
                let _ = write!(line, ", skipped {} already recorded", r.skipped);
            }
            if let Some(id) = id {
                let _ = write!(line, "; id {id}");
            }
            writeln!(out, "{line}")?;
            for (event, by) in &r.reversed {
                writeln!(
                    out,
                    "note: {event} is recorded but was reversed by {by}: sending it again does not restore it; record it again under a new id"
                )?;
            }
            if !dry_run {
                if let (Some(h), Some(s)) = (&r.head, r.head_seq) {
                    writeln!(out, "head {s}:{h}")?;
                }
            }
        }
    }
    Ok(())
}

pub fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The receipts of an import: a table of its files and a total, or one JSON object with
/// the files under `files`.
pub fn import(
    out: &mut dyn Write,
    format: Format,
    receipts: &[FileReceipt],
    dry_run: bool,
    style: Style,
) -> io::Result<()> {
    let appended: u64 = receipts.iter().map(|f| f.receipt.appended).sum();
    let skipped: u64 = receipts.iter().map(|f| f.receipt.skipped).sum();
    let first_seq = receipts.iter().find_map(|f| f.receipt.first_seq);
    let last_seq = receipts.iter().rev().find_map(|f| f.receipt.last_seq);
    let head = receipts.last().and_then(|f| f.receipt.head.clone());
    let head_seq = receipts.last().and_then(|f| f.receipt.head_seq);
    match format {
        Format::Json => {
            let files: Vec<Value> = receipts
                .iter()
                .map(|f| {
                    let mut v = receipt_json(&f.receipt);
                    v["file"] = json!(f.name);
                    v
                })
                .collect();
            let mut v = json!({
                "files": files, "appended": appended, "skipped": skipped,
                "first_seq": first_seq, "last_seq": last_seq, "head": head,
            });
            if dry_run {
                v["dry_run"] = json!(true);
            }
            writeln!(out, "{v}")?;
        }
        Format::Table | Format::Csv => {
            let mut t = Table::new(&[
                ("file", Align::Left),
                ("appended", Align::Right),
                ("skipped", Align::Right),
                ("seq", Align::Left),
            ]);
            for FileReceipt { name, receipt: r } in receipts {
                let seq = match (r.first_seq, r.last_seq) {
                    (Some(a), Some(b)) if a == b => a.to_string(),
                    (Some(a), Some(b)) => format!("{a}-{b}"),
                    _ => "-".into(),
                };
                t.row(vec![
                    name.clone(),
                    r.appended.to_string(),
                    r.skipped.to_string(),
                    seq,
                ]);
            }
            t.write(out, "", style)?;
            let verb = if dry_run { "would append" } else { "appended" };
            writeln!(
                out,
                "{verb} {appended} event{}, skipped {skipped}",
                plural(appended)
            )?;
            if let (false, Some(h), Some(s)) = (dry_run, &head, head_seq) {
                writeln!(out, "head {s}:{h}")?;
            }
        }
    }
    Ok(())
}

/// `verify`'s verdict once it passed.
pub fn verified(out: &mut dyn Write, format: Format, v: &Verified) -> io::Result<()> {
    let n = v.events;
    let head_hex = v.head.as_ref().map(|h| h.hash_hex());
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            json!({"ok": true, "events": n, "head": head_hex, "seq": v.head.as_ref().map(|h| h.seq)})
        ),
        Format::Table | Format::Csv => writeln!(
            out,
            "ok: {n} events, head {}",
            head_hex.unwrap_or_else(|| "none".into())
        ),
    }
}

/// The head: `SEQ:HASH` (nothing for an empty log), or its JSON (`null` when empty).
pub fn head(out: &mut dyn Write, format: Format, head: Option<&engine::Head>) -> io::Result<()> {
    match (format, head) {
        (Format::Table | Format::Csv, Some(h)) => writeln!(out, "{}:{}", h.seq, h.hash_hex()),
        (Format::Table | Format::Csv, None) => Ok(()),
        (Format::Json, Some(h)) => writeln!(
            out,
            "{}",
            json!({"seq": h.seq, "hash": h.hash_hex(), "recorded": h.recorded})
        ),
        (Format::Json, None) => writeln!(out, "null"),
    }
}

/// The answer of `copy`: how many events the target holds, and its head.
pub fn copied(out: &mut dyn Write, format: Format, v: &Verified) -> io::Result<()> {
    let head = v
        .head
        .as_ref()
        .map(|h| format!("{}:{}", h.seq, h.hash_hex()));
    match format {
        Format::Json => writeln!(out, "{}", json!({"copied": v.events, "head": head})),
        Format::Table | Format::Csv => writeln!(
            out,
            "copied {} event{}, head {}",
            v.events,
            plural(v.events as u64),
            head.as_deref().unwrap_or("none")
        ),
    }
}
