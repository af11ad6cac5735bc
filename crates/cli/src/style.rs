//! Colour for people, and only for people: table header rows in bold and the
//! `error:` prefix in red, when the stream is a terminal, `NO_COLOR` is not
//! set (to anything, even empty) and `TERM` is not `dumb`. Piped output,
//! JSON and CSV never hold an escape code.

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT: AtomicBool = AtomicBool::new(false);
static STDERR: AtomicBool = AtomicBool::new(false);

/// Whether the environment allows colour at all.
pub fn allowed() -> bool {
    allowed_by(
        std::env::var_os("NO_COLOR").is_some(),
        std::env::var_os("TERM").as_deref(),
    )
}

fn allowed_by(no_color: bool, term: Option<&std::ffi::OsStr>) -> bool {
    !no_color && term.is_none_or(|t| t != "dumb")
}

/// Decides once, at start, for standard output and standard error.
pub fn init() {
    let allowed = allowed();
    STDOUT.store(allowed && io::stdout().is_terminal(), Ordering::Relaxed);
    STDERR.store(allowed && io::stderr().is_terminal(), Ordering::Relaxed);
}

/// How tables on standard output look: header rows in bold on a colour terminal.
pub fn tables() -> present::Style {
    present::Style {
        bold_headers: STDOUT.load(Ordering::Relaxed),
    }
}

/// `error:`, in bold red on a colour terminal.
pub fn error_prefix() -> &'static str {
    if STDERR.load(Ordering::Relaxed) {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    }
}

#[cfg(test)]
mod tests {
    use super::allowed_by;
    use std::ffi::OsStr;

    #[test]
    fn no_color_set_to_anything_or_a_dumb_terminal_turns_colour_off() {
        assert!(allowed_by(false, None));
        assert!(allowed_by(false, Some(OsStr::new("xterm-256color"))));
        assert!(!allowed_by(true, Some(OsStr::new("xterm-256color"))));
        assert!(!allowed_by(false, Some(OsStr::new("dumb"))));
    }
}
