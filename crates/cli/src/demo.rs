//! `accord demo`: the bundled Microsoft-OpenAI sample appended (idempotently) and shown
//! around 28 October 2025.

use std::io::Write;
use std::path::Path;

use domain::values::Date;
use domain::KnownAt;
use engine::{EventFile, Query};
use present::Format;
use projector::Scope;
use serde_json::json;

use crate::args::WriteFormat;
use crate::failure::Failure;
use crate::ledger::{append_files, open_for_read};
use crate::style;

mod demo_files {
    include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));
}

pub(crate) fn run(path: &Path, format: WriteFormat, out: &mut dyn Write) -> Result<(), Failure> {
    let files: Vec<EventFile> = demo_files::DEMO_FILES
        .iter()
        .map(|(n, t)| EventFile::new(format!("events/{n}"), *t))
        .collect();
    refuse_foreign(path, &files)?;
    let receipts = append_files(path, files, false)?;
    let appended: u64 = receipts.iter().map(|f| f.receipt.appended).sum();
    let skipped: u64 = receipts.iter().map(|f| f.receipt.skipped).sum();
    let events = open_for_read(path)?.events()?;
    // The eve of the 2025-10-28 agreement, its day, and the day after the 2026-04-27 amendment.
    let dates = ["2025-10-27", "2025-10-28", "2026-04-28"];
    let day = |d: &str| -> Result<projector::Projection, Failure> {
        let as_of = Date::parse(d).map_err(Failure::Usage)?;
        Ok(engine::project_events(
            &events,
            &Query {
                as_of,
                known_at: KnownAt::Everything,
            },
        )?)
    };
    if format == WriteFormat::Json {
        let mut days = Vec::new();
        for d in dates {
            let p = day(d)?;
            days.push(json!({
                "as_of": d,
                "ownership": p.ownership(None),
                "obligations": p.obligations(None, Scope::All),
                "rights": p.rights(None, Scope::All),
            }));
        }
        present::render::json(
            out,
            &json!({"store": engine::shown_location(path), "appended": appended, "skipped": skipped, "days": days}),
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "accord demo: the Microsoft-OpenAI agreement of 28 October 2025 and its amendment of 27 April 2026 ({} events in {}; {appended} appended, {skipped} already there)",
        events.len(),
        engine::shown_location(path)
    )?;
    let look = style::tables();
    for d in dates {
        let p = day(d)?;
        let bar = "=".repeat(72);
        writeln!(out, "\n{bar}\nAs of {d}\n{bar}\n")?;
        present::reports::ownership(out, Format::Table, &p.ownership(None), look)?;
        writeln!(out)?;
        present::reports::obligations(out, Format::Table, &p.obligations(None, Scope::All), look)?;
        writeln!(out)?;
        present::reports::rights(out, Format::Table, &p.rights(None, Scope::All), look)?;
    }
    let (accord, on_path) = invoked_as();
    let store = engine::shown_location(path);
    let store = if store.contains(|c: char| c.is_whitespace() || "'\"$`\\?*&;|<>()[]{}".contains(c))
    {
        format!("'{}'", store.replace('\'', r"'\''"))
    } else {
        store
    };
    writeln!(
        out,
        "\nTry: {accord} --store {store} position microsoft --as-of 2025-10-28"
    )?;
    if let Some(dir) = on_path {
        writeln!(
            out,
            "(accord is not on your PATH; to type just `accord`: export PATH=\"{dir}:$PATH\")"
        )?;
    }
    Ok(())
}

/// How to run this binary from the current directory: `accord` when that name on the PATH is
/// this very binary; else its path (relative when it lies below the current directory), and
/// the directory to put on the PATH.
fn invoked_as() -> (String, Option<String>) {
    let Ok(exe) = std::env::current_exe().and_then(|e| e.canonicalize()) else {
        return ("accord".into(), None);
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            dir.join("accord")
                .canonicalize()
                .is_ok_and(|found| found == exe)
        })
    });
    if on_path {
        return ("accord".into(), None);
    }
    let dir = exe.parent().map(|d| d.display().to_string());
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| exe.display().to_string());
    (shown, dir)
}

/// `demo` loads the sample into a new store or one that holds only the sample: a store with
/// any other event (a user's own ledger) is refused, and nothing is written.
fn refuse_foreign(path: &Path, files: &[EventFile]) -> Result<(), Failure> {
    if !crate::ledger::may_exist(path) {
        return Ok(());
    }
    let sample: std::collections::BTreeSet<String> = files
        .iter()
        .flat_map(|f| domain::parse_jsonl(&f.text).into_iter().flatten())
        .map(|(_, e)| e.id.to_string())
        .collect();
    let events = match engine::Engine::open(path, engine::Access::Read, crate::ledger::config()) {
        Ok(ledger) => ledger.events()?,
        // A database ledger not created yet holds nothing.
        Err(engine::Error::Unavailable {
            reason: engine::Unavailable::Missing,
            ..
        }) => return Ok(()),
        Err(e) => return Err(crate::ledger::read_failure(path, e)),
    };
    let foreign: Vec<&str> = events
        .iter()
        .map(|r| r.event.id.as_str())
        .filter(|id| !sample.contains(*id))
        .collect();
    match foreign.first() {
        None => Ok(()),
        Some(first) => Err(Failure::Refused(format!(
            "the store {} holds events that are not the sample's ({}; the first: `{first}`): `accord demo` loads the sample only into a new store or one that holds it; try `accord --store demo.db demo`",
            engine::shown_location(path),
            foreign.len()
        ))),
    }
}
