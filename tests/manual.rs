//! `accord completions SHELL` and `accord man [COMMAND]`: generated from the
//! clap definitions, so they name every command; they need no store.

use std::path::Path;
use std::process;

fn run(args: &[&str]) -> process::Output {
    testkit::output(Path::new("/nonexistent/accord.db"), args)
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "accord {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stderr.is_empty());
    String::from_utf8(o.stdout).unwrap()
}

const COMMANDS: &[&str] = &[
    "append",
    "import",
    "record",
    "log",
    "ownership",
    "obligations",
    "rights",
    "position",
    "verify",
    "head",
    "export",
    "demo",
    "completions",
    "man",
];

#[test]
fn completion_scripts_name_every_command_and_flag() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completions", shell]);
        for c in COMMANDS {
            assert!(script.contains(c), "{shell}: no {c}");
        }
        for flag in ["--as-of", "--known-at", "--store", "--format"] {
            assert!(
                script.contains(flag.trim_start_matches('-')),
                "{shell}: no {flag}"
            );
        }
    }
    assert!(ok(&["completions", "zsh"]).starts_with("#compdef accord"));
    // The bash script is valid bash.
    let script = ok(&["completions", "bash"]);
    let o = process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let o = run(&["completions", "powershell"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(o.stderr.starts_with(b"error: "));
}

#[test]
fn man_pages_for_accord_and_each_command() {
    let page = ok(&["man"]);
    assert!(page.contains(".TH accord 1"), "{page}");
    assert!(page.contains(".SH EXAMPLES"));
    for c in COMMANDS {
        assert!(
            page.contains(&format!("accord\\-{}", c.replace('-', "\\-"))),
            "no {c}"
        );
        let sub = ok(&["man", c]);
        assert!(sub.contains(&format!(".TH accord-{c} 1")), "{c}: {sub}");
        assert!(sub.contains(".SH EXAMPLES"), "{c}");
        assert!(sub.contains(".SH SYNOPSIS"), "{c}");
    }
    let o = run(&["man", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: no command \"nope\""));
}

#[test]
fn the_manual_has_exit_status_environment_and_event_types_and_completion_knows_the_types() {
    let page = ok(&["man"]);
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH \"EVENT TYPES\"",
    ] {
        assert!(page.contains(section), "no {section} in the manual");
    }
    for name in [
        "ACCORD_STORE",
        "ACCORD_WAIT",
        "NO_COLOR",
        "obligation_settled",
        "event_reversed",
    ] {
        assert!(page.contains(name), "the manual does not name {name}");
    }
    // clap's fish generator completes flags, not the values of a positional argument.
    for shell in ["bash", "zsh"] {
        let script = ok(&["completions", shell]);
        assert!(
            script.contains("obligation_settled") && script.contains("party_registered"),
            "{shell} completion does not offer the event types"
        );
    }
}
