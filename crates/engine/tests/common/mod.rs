//! Helpers shared by the engine's integration tests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use engine::{Config, Engine, EventFile, Options, Parsed};

/// The default configuration with a clock that records one second later at every batch,
/// from 2026-01-01.
pub fn ticking_config() -> Config {
    let seconds = Arc::new(AtomicI64::new(0));
    Config::new(move || {
        let s = seconds.fetch_add(1, Ordering::SeqCst);
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    })
}

/// Appends `lines` (one event each) as one batch named `name`, which must be valid.
pub fn append(engine: &Engine, name: &str, lines: &[String]) {
    let text = lines.join("\n") + "\n";
    let parsed = Parsed::files(vec![EventFile::new(name, text)]).expect("parses");
    engine
        .append(parsed, &Options::default())
        .expect("the batch is valid");
}
