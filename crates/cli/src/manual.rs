//! Documentation generated from the clap definitions of `args.rs`, so that it
//! cannot drift from the flags: shell completion scripts (`clap_complete`)
//! and manual pages in roff (`clap_mangen`). Needs no store.

use clap_complete::Shell;

use crate::args::{CompletionShell, VERSION};
use crate::failure::Failure;

/// `accord completions SHELL`: the completion script on standard output.
pub fn completions(shell: CompletionShell, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    // Written to a buffer first: `generate` panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut crate::args::command(), "accord", &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// `accord man [COMMAND]`: the page of accord, or of one command as
/// `accord-COMMAND(1)`, in roff on standard output.
pub fn man(command: Option<&str>, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let mut cli = crate::args::command();
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => {
            let Some(sub) = cli.find_subcommand(name).cloned() else {
                let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
                return Err(Failure::Usage(format!(
                    "no command {name:?}: use one of {}",
                    names.join(", ")
                )));
            };
            let sub = sub.bin_name(format!("accord {name}"));
            match VERSION.get() {
                Some(v) => sub.version(*v),
                None => sub,
            }
        }
    };
    let title = match command {
        None => "accord".to_string(),
        Some(name) => format!("accord-{name}"),
    };
    let mut roff = Vec::new();
    render(&page, &title, &mut roff)?;
    out.write_all(&roff)?;
    Ok(())
}

/// clap_mangen's sections (as `Man::render` picks them), with the `--help`
/// examples in an EXAMPLES section printed as written (no-fill), where
/// clap_mangen's own EXTRA section would reflow them.
fn render(page: &clap::Command, title: &str, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap_mangen::roff::{roman, Roff};
    let man = clap_mangen::Man::new(page.clone()).title(title);
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if page.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if page.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    if let Some(text) = page.get_after_help() {
        let mut roff = Roff::new();
        roff.control("SH", ["EXAMPLES"]).control("nf", []);
        for line in text.to_string().lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
        roff.to_writer(w)?;
    }
    if title == "accord" {
        reference_sections(w)?;
    }
    if page.get_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// What the page of accord itself says beyond its flags: exit codes, the environment, and
/// the event types (each listed with its fields by `accord record TYPE --help`).
fn reference_sections(w: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap_mangen::roff::{bold, roman, Roff};
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "success"),
        (
            "1",
            "input refused: a parse error, a broken rule; nothing was written",
        ),
        (
            "2",
            "usage error: an unknown command or flag, a bad flag value",
        ),
        ("3", "integrity check failed (verify)"),
        (
            "4",
            "store unavailable: missing, held by another process past --wait, not a store, damaged",
        ),
        (
            "130",
            "interrupted (Ctrl-C) during an append, import or copy: one line says what was written (whole batches only)",
        ),
    ] {
        roff.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in [
        (
            "ACCORD_STORE",
            "the store when --store is not given (default ./accord.db)",
        ),
        (
            "ACCORD_WAIT",
            "seconds to wait for a store another process holds, as --wait (default 5)",
        ),
        ("NO_COLOR", "set to anything: no colour, even on a terminal"),
        ("TERM", "dumb: no colour"),
    ] {
        roff.control("TP", [])
            .text([bold(name)])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["EVENT TYPES"]);
    roff.text([roman(
        "An event file holds one JSON object per line (JSON Lines); accord record TYPE --help lists the flags of one type. The types:",
    )]);
    roff.control("nf", []);
    for t in domain::EVENT_TYPES {
        roff.text([roman(format!("  {t}"))]);
    }
    roff.control("fi", []);
    roff.to_writer(w)
}
