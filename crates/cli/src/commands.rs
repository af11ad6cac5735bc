//! What each command does: read its input, ask the engine, render the answer with
//! `present`. Every failure becomes a `Failure` whose kind decides the exit code; the
//! message is one line that names the event and the broken rule.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use domain::values::{Date, Slug};
use domain::KnownAt;
use engine::{ExpectedHead, Query, WhatIf};
use present::Format;
use projector::Scope;
use serde_json::{json, Value};

use crate::args::{Cli, Command, ExportFormat, TimeArgs, TimelineFormat, WriteFormat};
use crate::failure::Failure;
use crate::input::{event_file, jsonl_files};
use crate::ledger::{append_files, append_parsed, open_for_read, store_path, today};
use crate::record::{self, FlagError};
use crate::style;

pub(crate) type Out<'a> = &'a mut dyn Write;

pub(crate) fn slug(flag: &str, s: &str) -> Result<Slug, Failure> {
    Slug::parse(s).map_err(|e| Failure::Usage(format!("--{flag}: {e}")))
}

fn scope(all: bool) -> Scope {
    if all {
        Scope::All
    } else {
        Scope::Current
    }
}

/// The question of `--as-of` and `--known-at`: today and everything recorded by default.
pub(crate) fn query(time: TimeArgs) -> Query {
    Query {
        as_of: time.as_of.unwrap_or_else(today),
        known_at: time.known_at.unwrap_or(KnownAt::Everything),
    }
}

pub fn execute(cli: Cli, out: Out) -> Result<(), Failure> {
    let wait = match cli.wait {
        Some(w) => w,
        None => crate::ledger::env_wait()?,
    };
    crate::ledger::set_opening(wait, cli.command.name());
    let store_flag = cli.store.is_some();
    let path = store_path(cli.store);
    let look = style::tables();
    match cli.command {
        Command::Append {
            file,
            dry_run,
            format,
        } => {
            let file = event_file(&file)?;
            let receipts = append_files(&path, vec![file], dry_run)?;
            present::writes::receipt(out, format.into(), &receipts[0].receipt, dry_run, None)?;
            Ok(())
        }
        Command::Import {
            dir,
            dry_run,
            format,
        } => {
            // A directory without a *.jsonl file is refused there, naming near misses.
            let files = jsonl_files(&dir)?;
            let receipts = append_files(&path, files, dry_run)?;
            present::writes::import(out, format.into(), &receipts, dry_run, look)?;
            Ok(())
        }
        Command::Record { type_name, args } => record_event(&path, &type_name, &args, out),
        Command::Log { since, format } => {
            let entries = open_for_read(&path)?.log(since.unwrap_or(0))?;
            let rows: Vec<present::log::Entry<'_>> = entries.iter().map(Into::into).collect();
            present::log::entries(out, format.into(), &rows, look)?;
            Ok(())
        }
        Command::Show { id, format } => {
            let entry = open_for_read(&path)?.show(&id)?;
            present::log::show(out, format.into(), &(&entry).into(), look)?;
            Ok(())
        }
        Command::Ownership {
            entity,
            time,
            with,
            format,
        } => {
            let entity = entity.map(|e| slug("entity", &e)).transpose()?;
            let p = projection(&path, time, entity.as_ref(), with.as_deref())?;
            present::reports::ownership(out, format.into(), &p.ownership(entity.as_ref()), look)?;
            Ok(())
        }
        Command::Obligations {
            party,
            all,
            time,
            with,
            format,
        } => {
            let party = party.map(|e| slug("party", &e)).transpose()?;
            let p = projection(&path, time, party.as_ref(), with.as_deref())?;
            let report = p.obligations(party.as_ref(), scope(all));
            present::reports::obligations(out, format.into(), &report, look)?;
            Ok(())
        }
        Command::Rights {
            party,
            all,
            time,
            with,
            format,
        } => {
            let party = party.map(|e| slug("party", &e)).transpose()?;
            let p = projection(&path, time, party.as_ref(), with.as_deref())?;
            let report = p.rights(party.as_ref(), scope(all));
            present::reports::rights(out, format.into(), &report, look)?;
            Ok(())
        }
        Command::Position {
            party,
            all,
            time,
            with,
            format,
        } => {
            let party = Slug::parse(&party).map_err(|e| Failure::Usage(format!("PARTY: {e}")))?;
            let p = projection(&path, time, Some(&party), with.as_deref())?;
            let report = p.position(&party, scope(all));
            // Asked about before it is registered: the table says from when it is.
            let from = match (&report.name, format) {
                (None, crate::args::ReadFormat::Table) => {
                    open_for_read(&path)?.registered_from(&party)?
                }
                _ => None,
            };
            present::reports::position(out, format.into(), &report, from, look)?;
            Ok(())
        }
        Command::Verify {
            expect_head,
            format,
        } => {
            let expected = expect_head
                .as_deref()
                .map(ExpectedHead::parse)
                .transpose()?;
            let ledger = engine::Engine::open_for_verify(&path, crate::ledger::config())
                .map_err(|e| crate::ledger::read_failure(&path, e))?;
            let verified = ledger.verify(expected.as_ref())?;
            present::writes::verified(out, format.into(), &verified)?;
            Ok(())
        }
        Command::Head { format } => {
            let head = open_for_read(&path)?.head()?;
            present::writes::head(out, format.into(), head.as_ref())?;
            Ok(())
        }
        Command::Export { format, time } => {
            let ledger = open_for_read(&path)?;
            let known_at = time.known_at.unwrap_or_default();
            // Standard output flushes at every line; an export writes millions of them.
            let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
            match format {
                ExportFormat::Jsonl => ledger.export_jsonl(time.as_of, known_at, &mut buffered)?,
                ExportFormat::Ledger => {
                    ledger.export_ledger(time.as_of, known_at, &mut buffered)?
                }
            }
            buffered.flush().map_err(engine::Error::Output)?;
            Ok(())
        }
        Command::Copy { from, to, format } => {
            let verified = copy(&from, &to)?;
            present::writes::copied(out, format.into(), &verified)?;
            Ok(())
        }
        Command::Demo { format } => crate::demo::run(&path, format, out),
        Command::Serve {
            listen,
            ledgers,
            tokens,
            max_body,
            cors,
        } => crate::serve::serve(
            crate::serve::Serve {
                listen,
                ledgers,
                tokens,
                max_body,
                cors,
                store: path,
                store_flag,
            },
            out,
        ),
        Command::Token { command } => crate::serve::token(command, out),
        Command::Completions { shell } => crate::manual::completions(shell, out),
        Command::Man { command } => crate::manual::man(command.as_deref(), out),
        Command::Timeline {
            entity,
            time,
            format,
        } => timeline(&path, entity.as_deref(), time, format, out),
        Command::Diff {
            as_of,
            known_at,
            vs_known_at,
            format,
        } => {
            let from = crate::args::parse_known_at(&known_at)
                .map_err(|m| Failure::Usage(format!("invalid value for --known-at: {m}")))?;
            let to = vs_known_at
                .as_deref()
                .map(|t| {
                    crate::args::parse_known_at(t).map_err(|m| {
                        Failure::Usage(format!("invalid value for --vs-known-at: {m}"))
                    })
                })
                .transpose()?
                .unwrap_or(KnownAt::Everything);
            let as_of = as_of.unwrap_or_else(today);
            let report = open_for_read(&path)?.diff(as_of, from, to)?;
            present::diff::diff(
                out,
                format.into(),
                &report,
                &known_at,
                vs_known_at.as_deref(),
                look,
            )?;
            Ok(())
        }
    }
}

/// `copy FROM TO`: FROM is read and checked before TO is created, and a TO that holds events
/// (or is FROM itself) is refused (exit 1) before FROM is read.
fn copy(from: &Path, to: &Path) -> Result<engine::Verified, Failure> {
    let source = open_for_read(from)?;
    let in_database = |p: &Path| p.to_str().is_some_and(engine::is_database_url);
    let same = match (std::fs::canonicalize(from), std::fs::canonicalize(to)) {
        (Ok(a), Ok(b)) => a == b,
        // Two database URLs: the same ledger when they are the same URL.
        _ => in_database(from) && from == to,
    };
    if same {
        return Err(Failure::Refused(format!(
            "{} and {} are the same store: copy needs another target",
            engine::shown_location(from),
            engine::shown_location(to)
        )));
    }
    let config = crate::ledger::config();
    // A database ledger may exist without a path on this machine: asked like a directory.
    let target = if to.exists() || (in_database(to) && target_exists(to, &config)) {
        let target = engine::Engine::open(to, engine::Access::Write, config.clone())?;
        if let Err(refusal) = target.check_empty() {
            // Refused (exit 1) as CLI.md says; a target that already holds this very log (the
            // same head: the hash chain makes it the same records) is said to be one.
            return match (source.head()?, target.head()?) {
                (Some(a), Some(b)) if a == b => Err(Failure::Refused(format!(
                    "{} already holds this very log ({} events, head {}:{}): nothing to copy",
                    engine::shown_location(to),
                    b.seq,
                    b.seq,
                    b.hash_hex()
                ))),
                _ => Err(refusal.into()),
            };
        }
        Some(target)
    } else {
        None
    };
    let progress = crate::progress::Progress::start(&["read", "written"]);
    let log = source.copy_out(Some(&progress))?;
    drop(source);
    let (target, created) = match target {
        Some(t) => (t, false),
        None => {
            progress.created(to.to_path_buf());
            (
                engine::Engine::open(to, engine::Access::Write, config)?,
                true,
            )
        }
    };
    let copied = target.copy_in(log, Some(&progress));
    drop(target);
    // A copy that failed before its one batch committed leaves no store it created.
    if created
        && matches!(
            copied,
            Err(engine::Error::Refused(_) | engine::Error::Unavailable { .. })
        )
    {
        crate::ledger::remove_created(to);
    }
    let copied = copied?;
    crate::ledger::settle_after(to, copied.events as u64);
    Ok(copied)
}

/// Whether a database ledger exists (its schema is there): a read open succeeds.
fn target_exists(to: &Path, config: &engine::Config) -> bool {
    engine::Engine::open(to, engine::Access::Read, config.clone()).is_ok()
}

/// The projection a report command asks for. With `with`, the events of that file count as
/// appended after the log (what-if; nothing is written); the file is read and parsed before
/// the store is opened, as `append` does.
fn projection(
    path: &Path,
    time: TimeArgs,
    party: Option<&Slug>,
    with: Option<&str>,
) -> Result<projector::Projection, Failure> {
    let with = with
        .map(|file| event_file(file).and_then(|f| Ok(WhatIf::parse(&f)?)))
        .transpose()?;
    let ledger = open_for_read(path)?;
    Ok(ledger.projection(&query(time), party, with.as_ref())?)
}

fn timeline(
    path: &Path,
    entity: Option<&str>,
    time: TimeArgs,
    format: TimelineFormat,
    out: Out,
) -> Result<(), Failure> {
    let entity = entity.map(|e| slug("entity", e)).transpose()?;
    let question = query(time);
    let report = open_for_read(path)?.timeline(&question, entity.as_ref())?;
    let look = style::tables();
    let format = match format {
        TimelineFormat::Table => Format::Table,
        TimelineFormat::Json => Format::Json,
        TimelineFormat::Csv => Format::Csv,
        TimelineFormat::Svg => {
            use present::timeline::{ChartError, Pick};
            return match present::timeline::chart(out, &report, entity.as_ref(), question.known_at)
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(Pick::Nothing(m))) => Err(Failure::Refused(m)),
                Ok(Err(Pick::Several(m))) => Err(Failure::Usage(m)),
                Err(ChartError::Draw(m)) => Err(Failure::Unavailable(m)),
                Err(ChartError::Output(e)) => Err(e.into()),
            };
        }
    };
    present::timeline::timeline(out, format, &report, look)?;
    Ok(())
}

fn record_event(path: &Path, type_name: &str, args: &[String], out: Out) -> Result<(), Failure> {
    // A flag or a value of the wrong form is a usage error (exit 2), like a bad flag value of
    // any other command; an event that breaks a rule is refused (exit 1).
    let usage = |e: FlagError| match e {
        FlagError::Usage(m) | FlagError::Value(m) => Failure::Usage(m),
    };
    // clap's help flag is off for `record`, so that `record TYPE --help`
    // reaches here and lists the flags of TYPE; `record --help` is clap's help.
    if type_name == "--help" || type_name == "-h" {
        let mut cmd = crate::args::command();
        cmd.build();
        if let Some(record) = cmd.find_subcommand_mut("record") {
            write!(out, "{}", record.render_long_help())?;
        }
        return Ok(());
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        // An unknown type is refused as for an append (exit 2).
        record::payload(type_name, &[]).map_err(usage)?;
        write!(out, "{}", record::help(type_name).unwrap_or_default())?;
        return Ok(());
    }
    // `--dry-run` is the one flag without a value.
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let args: Vec<String> = args.iter().filter(|a| *a != "--dry-run").cloned().collect();
    let mut pairs = record::pairs(&args).map_err(usage)?;
    for name in ["id", "effective", "source", "note", "format", "store"] {
        if pairs.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(Failure::Usage(format!("--{name} is given twice")));
        }
    }
    let mut take = |name: &str| -> Option<String> {
        let i = pairs.iter().position(|(n, _)| n == name)?;
        Some(pairs.remove(i).1)
    };
    let id = take("id");
    let effective = take("effective");
    let source = take("source");
    let note = take("note");
    let format = match take("format").as_deref() {
        None | Some("table") => WriteFormat::Table,
        Some("json") => WriteFormat::Json,
        Some(other) => {
            return Err(Failure::Usage(format!(
                "invalid --format {other:?} for record: use table or json"
            )))
        }
    };
    let path = match take("store") {
        Some(p) => std::path::PathBuf::from(p),
        None => path.to_path_buf(),
    };
    let mut map = record::payload(type_name, &pairs).map_err(usage)?;
    let now = Utc::now();
    let effective = match effective {
        Some(e) => Date::parse(&e).map_err(|m| Failure::Usage(format!("--effective: {m}")))?,
        // A reversal takes effect when the event it reverses did.
        None => match map.get("reverses").and_then(Value::as_str) {
            Some(target) if type_name == "event_reversed" && crate::ledger::may_exist(&path) => {
                match open_for_read(&path)?.show(target) {
                    Ok(entry) => entry.event.effective,
                    Err(_) => today(),
                }
            }
            _ => today(),
        },
    };
    let id = id.unwrap_or_else(|| {
        format!("{type_name}-{}", now.format("%Y%m%dT%H%M%S%.6fZ")).replace('.', "")
    });
    map.insert("id".into(), json!(id));
    map.insert("type".into(), json!(type_name));
    map.insert("effective".into(), json!(effective.to_string()));
    if let Some(s) = source {
        map.insert("source".into(), json!(s));
    }
    if let Some(n) = note {
        map.insert("note".into(), json!(n));
    }
    let line = Value::Object(map).to_string();
    let plain = |m: String| {
        let m = m
            .trim_start_matches("record: ")
            .trim_start_matches("line 1: ")
            .to_string();
        // The parser speaks of fields; `record` of its flags.
        if let Some(field) = m
            .split("missing field `")
            .nth(1)
            .and_then(|r| r.split('`').next())
        {
            return format!("--{} is required", field.replace('_', "-"));
        }
        // A value that is not one of a field's words: named by the flag that gave it.
        if let Some(at) = m.find("unknown variant `") {
            let rest = &m[at..];
            let word = rest["unknown variant `".len()..]
                .split('`')
                .next()
                .unwrap_or("");
            if let Some((flag, _)) = pairs.iter().find(|(_, v)| v == word) {
                return format!(
                    "--{flag}: {}",
                    rest.replacen("unknown variant", "unknown value", 1)
                );
            }
        }
        m
    };
    let progress = crate::progress::Progress::for_append(dry_run);
    // A flag value the event parser refuses is a bad flag value (exit 2), said before any
    // store is opened.
    let parsed = engine::Parsed::files(vec![engine::EventFile::new("record", line)]).map_err(
        |e| match e {
            engine::Error::Refused(r) => Failure::Usage(plain(r.message)),
            other => other.into(),
        },
    )?;
    let receipts = append_parsed(&path, parsed, dry_run, &progress).map_err(|f| match f {
        Failure::Refused(m) => Failure::Refused(plain(m)),
        other => other,
    })?;
    present::writes::receipt(out, format.into(), &receipts[0].receipt, dry_run, Some(&id))?;
    Ok(())
}
