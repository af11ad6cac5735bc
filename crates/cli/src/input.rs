//! Event files from the file system and standard input.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use engine::EventFile;

use crate::failure::Failure;

/// Reads FILE (`-`: standard input) as UTF-8 text, named as refusals will name it.
pub(crate) fn event_file(file: &str) -> Result<EventFile, Failure> {
    let text = read_input(file)?;
    let name = if file == "-" {
        "<stdin>".to_string()
    } else {
        file.to_string()
    };
    Ok(EventFile::new(name, text))
}

fn read_input(file: &str) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    let result = if file == "-" {
        io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    result.map_err(|e| Failure::Refused(format!("cannot read {file}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::Refused(format!(
            "{file}: not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Every `*.jsonl` file of `dir`, in file-name order.
pub(crate) fn jsonl_files(dir: &Path) -> Result<Vec<EventFile>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Refused(format!("cannot read directory {}: {e}", dir.display())))?;
    let all: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    let mut paths: Vec<PathBuf> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.is_file())
        .cloned()
        .collect();
    paths.sort();
    // Files that look like event files under another name are not read: say so, so that a
    // `.json` or `.JSONL` file is not skipped unnoticed.
    let mut near: Vec<String> = all
        .iter()
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                x != "jsonl"
                    && ["jsonl", "json", "ndjson"].contains(&x.to_ascii_lowercase().as_str())
            })
        })
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    near.sort();
    if paths.is_empty() {
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (not read: {}; rename them *.jsonl)", near.join(", "))
        };
        return Err(Failure::Refused(format!(
            "{} holds no *.jsonl file{hint}",
            dir.display()
        )));
    }
    if !near.is_empty() {
        eprintln!(
            "note: not read (import reads *.jsonl files only): {}",
            near.join(", ")
        );
    }
    paths
        .into_iter()
        .map(|p| {
            let name = p.display().to_string();
            read_input(&name).map(|t| EventFile::new(name, t))
        })
        .collect()
}
