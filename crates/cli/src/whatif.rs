//! What-if projections (`--with FILE` on `ownership`, `obligations`,
//! `rights` and `position`): the events of FILE are validated exactly as
//! `accord append FILE` would validate them (same parser, same `plan_batch`,
//! same refusals and exit codes) and then projected as if appended after the
//! log, recorded now.
//!
//! Nothing here opens the store for writing: the store is opened read-only
//! by the caller and the extra events live only in memory. What-if does not
//! combine with `--known-at` (the file's events would be recorded now, after
//! any past transaction time, so they could never count).

use chrono::Utc;
use domain::event::Event;
use domain::RecordedEvent;

use crate::commands::{parse_file, plan_file, read_input, Failure};

/// A what-if file, read and parsed, with the name its refusals use.
pub(crate) struct WhatIf {
    name: String,
    events: Vec<(usize, Event)>,
}

/// Reads and parses FILE (`-`: standard input) before the store is opened,
/// as `append` does, so a bad file is refused the same way.
pub(crate) fn read(file: &str) -> Result<WhatIf, Failure> {
    let text = read_input(file)?;
    let name = if file == "-" {
        "<stdin>".to_string()
    } else {
        file.to_string()
    };
    let events = parse_file(&name, &text)?;
    Ok(WhatIf { name, events })
}

/// Validates the file against `log` as an append would and adds its new
/// events (those not already recorded) after the log.
pub(crate) fn extend(log: &mut Vec<RecordedEvent>, file: &WhatIf) -> Result<(), Failure> {
    plan_file(log, &file.name, file.events.clone(), Utc::now()).map(|_| ())
}
