//! What people see of accord, for every face (the command line today, a web page next):
//! human amounts (`13.8B USD`), aligned tables, the CSV rows and the JSON shapes of every
//! answer, and the SVG ownership chart. Everything writes to a `std::io::Write` the caller
//! gives; nothing here reads a store, a terminal or the environment.

pub mod diff;
pub mod human;
pub mod log;
pub mod render;
pub mod reports;
pub mod timeline;
pub mod writes;

/// The forms of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned tables, for people.
    #[default]
    Table,
    /// Pretty JSON (JSON Lines for the log), the contract for programs.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// How tables look: plain, or with bold header rows (for a colour terminal; the caller
/// decides when that is allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Style {
    pub bold_headers: bool,
}

impl Style {
    /// A table's header row, in bold when asked.
    pub fn header(&self, line: &str) -> String {
        if self.bold_headers && !line.is_empty() {
            format!("\x1b[1m{line}\x1b[0m")
        } else {
            line.to_string()
        }
    }
}
