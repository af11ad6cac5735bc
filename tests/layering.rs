//! The shape of the code, held true by CI: the command line does not depend on the store,
//! its modules import each other in no circle, and the engine's own code never prints, never
//! reads argv, the environment or the clock, and never names the embedded store's engine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use testkit::root;

/// The non-comment lines of every `.rs` file below `dir`, by file name without `.rs`.
fn sources(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(name, code.join("\n"));
        }
    }
    out
}

/// The code of a file before its `#[cfg(test)]` module, if any.
fn non_test(code: &str) -> &str {
    code.split("#[cfg(test)]").next().unwrap_or(code)
}

/// The dependency names of a manifest's `[dependencies]` table.
fn dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).expect("a manifest");
    text.lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split(['=', '.', ' ']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_cli_depends_on_the_engine_and_not_on_the_store() {
    let deps = dependencies(&root().join("crates/cli/Cargo.toml"));
    assert!(deps.contains("engine"), "{deps:?}");
    assert!(
        !deps.contains("store"),
        "cli must not depend on store: {deps:?}"
    );
    let engine = dependencies(&root().join("crates/engine/Cargo.toml"));
    assert!(
        !engine.contains("clap"),
        "engine must not depend on clap: {engine:?}"
    );
    let server = dependencies(&root().join("crates/server/Cargo.toml"));
    assert!(server.contains("engine"), "{server:?}");
    assert!(
        !server.contains("store"),
        "server must reach stores through the engine only: {server:?}"
    );
    let present = dependencies(&root().join("crates/present/Cargo.toml"));
    assert!(
        !present.contains("store"),
        "present must not depend on store: {present:?}"
    );
}

#[test]
fn no_two_modules_of_the_cli_import_each_other() {
    let files = sources(&root().join("crates/cli/src"));
    let names: BTreeSet<String> = files.keys().cloned().collect();
    // module -> the modules it names as `crate::NAME`; `lib` is the crate root.
    let mut uses: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, code) in &files {
        let mut named = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(m) = names.get(&module) {
                if m != name {
                    named.insert(m.as_str());
                }
            }
            // `crate::{a, b}` and `crate::Item` (an item of the root) count as the root.
            if !names.contains(&module) && name != "lib" {
                named.insert("lib");
            }
        }
        uses.insert(name.as_str(), named);
    }
    // A circle is a module that reaches itself.
    for start in uses.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = uses[start].iter().copied().collect();
        while let Some(m) = todo.pop() {
            assert_ne!(
                m, *start,
                "the cli module `{start}` reaches itself: {uses:?}"
            );
            if seen.insert(m) {
                todo.extend(uses.get(m).into_iter().flatten().copied());
            }
        }
    }
}

#[test]
fn the_engine_never_prints_nor_reads_argv_the_environment_or_the_clock() {
    let files = sources(&root().join("crates/engine/src"));
    assert!(files.len() > 5, "the engine's sources are found");
    for (name, code) in &files {
        let code = non_test(code);
        for banned in [
            "println!",
            "eprintln!",
            "print!",
            "eprint!",
            "dbg!",
            "process::exit",
            "env::var",
            "env::args",
            "Utc::now",
            "Local::now",
            "SystemTime",
            "Instant::now",
            "stdout()",
            "stderr()",
            "stdin()",
            "sled",
        ] {
            assert!(
                !code.contains(banned),
                "crates/engine/src/{name}.rs uses `{banned}`"
            );
        }
    }
    for (name, code) in sources(&root().join("crates/present/src")) {
        for banned in ["env::var", "stdout()", "stderr()", "Utc::now", "sled"] {
            assert!(
                !non_test(&code).contains(banned),
                "crates/present/src/{name}.rs uses `{banned}`"
            );
        }
    }
}
