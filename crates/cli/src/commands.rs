//! What each command does: open the store, ask domain and projector, print.
//!
//! Every failure becomes a `Failure` whose kind decides the exit code; the
//! message is one line that names the event and the broken rule.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use domain::event::Event;
use domain::values::{Date, Slug};
use domain::{parse_jsonl, plan_batch, BatchEvent, KnownAt, RecordedEvent};
use projector::{project, Projection, Scope};
use serde_json::{json, Value};
use store::{NewEvent, Record, Store, StoreError};

use crate::progress::Progress;
use crate::record::{self, FlagError};
use crate::render::{self, Align, Table};
use crate::{Cli, Command, ExportFormat, ReadFormat, TimeArgs, WriteFormat};

/// A command that did not succeed, by exit code.
#[derive(Debug)]
pub enum Failure {
    /// 1: input refused; nothing was written.
    Refused(String),
    /// 2: usage error.
    Usage(String),
    /// 3: integrity check failed.
    Integrity(String),
    /// 4: the store is unavailable.
    Unavailable(String),
    /// The reader of standard output went away (`accord log | head`):
    /// not an error, stop quietly.
    BrokenPipe,
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Integrity(_) => 3,
            Failure::Unavailable(_) => 4,
            Failure::BrokenPipe => 0,
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Failure::Refused(m)
            | Failure::Usage(m)
            | Failure::Integrity(m)
            | Failure::Unavailable(m) => m,
            Failure::BrokenPipe => "",
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::IdConflict { .. } => Failure::Refused(e.to_string()),
            other => Failure::Unavailable(other.to_string()),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Failure::BrokenPipe;
        }
        Failure::Unavailable(format!("cannot write the output: {e}"))
    }
}

pub(crate) type Out<'a> = &'a mut dyn Write;

fn store_path(cli_store: Option<PathBuf>) -> PathBuf {
    cli_store.unwrap_or_else(|| PathBuf::from("accord.db"))
}

pub(crate) fn open_for_read(path: &Path) -> Result<Store, Failure> {
    Store::open_existing(path).map_err(|e| read_failure(path, e))
}

fn read_failure(path: &Path, e: StoreError) -> Failure {
    match e {
        StoreError::Missing { .. } => Failure::Unavailable(format!(
            "no store at {} (create one with `accord append FILE` or `accord demo`, or pass --store)",
            path.display()
        )),
        other => other.into(),
    }
}

/// The decoded log, with the store's records alongside for hashes.
pub(crate) struct Loaded {
    pub(crate) records: Vec<Record>,
    pub(crate) events: Vec<RecordedEvent>,
}

pub(crate) fn decode(r: &Record) -> Result<RecordedEvent, String> {
    let text = std::str::from_utf8(&r.body).map_err(|_| "the event is not UTF-8".to_string())?;
    let event = Event::from_line(text).map_err(|e| e.to_string())?;
    if event.id.as_str() != r.id {
        return Err(format!(
            "the stored id `{}` differs from the event's id `{}`",
            r.id, event.id
        ));
    }
    let recorded = DateTime::parse_from_rfc3339(&r.recorded)
        .map_err(|_| format!("bad recorded time {:?}", r.recorded))?
        .with_timezone(&Utc);
    Ok(RecordedEvent {
        seq: r.seq,
        recorded,
        event,
    })
}

pub(crate) fn load(store: &Store) -> Result<Loaded, Failure> {
    let mut records = Vec::new();
    let mut events = Vec::new();
    for r in store.iter() {
        let r = r?;
        let e = decode(&r).map_err(|m| {
            Failure::Unavailable(format!(
                "the store is corrupt: seq {} does not decode: {m}",
                r.seq
            ))
        })?;
        records.push(r);
        events.push(e);
    }
    Ok(Loaded { records, events })
}

/// The decoded log without the stored records, for commands that need no hashes.
pub(crate) fn load_events(store: &Store) -> Result<Vec<RecordedEvent>, Failure> {
    decode_records(store.iter(), |_| {}).map_err(|e| match e {
        DecodeFailure::Store(e) => Failure::from(e),
        DecodeFailure::Event(seq, m) => Failure::Unavailable(format!(
            "the store is corrupt: seq {seq} does not decode: {m}"
        )),
    })
}

/// Decodes every record in order, showing each to `each` first. Decoding JSON is most of a
/// replay's time, so each round of records is split over two threads.
fn decode_records(
    mut records: store::Records<'_>,
    mut each: impl FnMut(&Record),
) -> Result<Vec<RecordedEvent>, DecodeFailure> {
    /// Records decoded per round: enough to keep both threads busy, few enough that the raw
    /// records of one round stay small next to the decoded log.
    const CHUNK: usize = 16 * 1024;
    let decode_chunk = |chunk: &[Record]| -> Result<Vec<RecordedEvent>, DecodeFailure> {
        chunk
            .iter()
            .map(|r| decode(r).map_err(|m| DecodeFailure::Event(r.seq, m)))
            .collect()
    };
    let mut events = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        for r in records.by_ref().take(CHUNK) {
            let r = r.map_err(DecodeFailure::Store)?;
            each(&r);
            chunk.push(r);
        }
        if chunk.is_empty() {
            break;
        }
        let (first, second) = chunk.split_at(chunk.len() / 2);
        let (a, b) = std::thread::scope(|scope| {
            let other = scope.spawn(|| decode_chunk(second));
            let a = decode_chunk(first);
            let b = other.join().unwrap_or_else(|_| {
                Err(DecodeFailure::Event(
                    second.first().map_or(0, |r| r.seq),
                    "decoding panicked".into(),
                ))
            });
            (a, b)
        });
        events.extend(a?);
        events.extend(b?);
    }
    Ok(events)
}

pub(crate) fn today() -> Date {
    Date(Utc::now().date_naive())
}

pub(crate) fn slug(flag: &str, s: &str) -> Result<Slug, Failure> {
    Slug::parse(s).map_err(|e| Failure::Usage(format!("--{flag}: {e}")))
}

pub fn execute(cli: Cli, out: Out) -> Result<(), Failure> {
    let path = store_path(cli.store);
    match cli.command {
        Command::Append {
            file,
            dry_run,
            format,
        } => {
            let text = read_input(&file)?;
            let name = if file == "-" {
                "<stdin>".to_string()
            } else {
                file.clone()
            };
            let receipts = append_files(&path, vec![(name, text)], dry_run)?;
            print_receipt(out, format, &receipts[0].1, dry_run, None)
        }
        Command::Import {
            dir,
            dry_run,
            format,
        } => import(&path, &dir, dry_run, format, out),
        Command::Record { type_name, args } => record_event(&path, &type_name, &args, out),
        Command::Log { since, format } => log(&path, since, format, out),
        Command::Ownership {
            entity,
            time,
            with,
            format,
        } => {
            let entity = entity.map(|e| slug("entity", &e)).transpose()?;
            let p = projection(&path, time, entity.as_ref(), with.as_deref())?;
            print_ownership(out, format, &p.ownership(entity.as_ref()))
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
            print_obligations(out, format, &p.obligations(party.as_ref(), scope(all)))
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
            print_rights(out, format, &p.rights(party.as_ref(), scope(all)))
        }
        Command::Position {
            party,
            all,
            time,
            with,
            format,
        } => {
            let party = slug("party", &party)?;
            let p = projection(&path, time, Some(&party), with.as_deref())?;
            print_position(out, format, &p.position(&party, scope(all)))
        }
        Command::Verify {
            expect_head,
            format,
        } => verify(&path, expect_head.as_deref(), format, out),
        Command::Head { format } => head(&path, format, out),
        Command::Export { format, time } => export(&path, format, time, out),
        Command::Demo { format } => demo(&path, format, out),
        Command::Completions { shell } => crate::manual::completions(shell, out),
        Command::Man { command } => crate::manual::man(command.as_deref(), out),
        Command::Timeline {
            entity,
            time,
            format,
        } => crate::timeline::run(&path, entity.as_deref(), time, format, out),
        Command::Diff {
            as_of,
            known_at,
            vs_known_at,
            format,
        } => crate::diff::run(&path, as_of, &known_at, vs_known_at.as_deref(), format, out),
    }
}

fn scope(all: bool) -> Scope {
    if all {
        Scope::All
    } else {
        Scope::Current
    }
}

pub(crate) fn read_input(file: &str) -> Result<String, Failure> {
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

/// What one batch did (or, on a dry run, would do).
#[derive(Clone, Debug, Default)]
pub(crate) struct Receipt {
    pub(crate) appended: u64,
    pub(crate) skipped: u64,
    pub(crate) first_seq: Option<u64>,
    pub(crate) last_seq: Option<u64>,
    pub(crate) head: Option<String>,
    /// The seq of `head`, for people (`head SEQ:HASH`).
    pub(crate) head_seq: Option<u64>,
}

impl Receipt {
    fn to_json(&self) -> Value {
        json!({
            "appended": self.appended,
            "skipped": self.skipped,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": self.head,
        })
    }
}

/// Validates every file against the log as it grows, then appends each file
/// as one atomic batch. Nothing is written unless every file is valid.
fn append_files(
    path: &Path,
    files: Vec<(String, String)>,
    dry_run: bool,
) -> Result<Vec<(String, Receipt)>, Failure> {
    // Shown on a terminal only, once the command has run for a second.
    let progress = Progress::start();
    let mut parsed = Vec::new();
    for (name, text) in files {
        let events = parse_file(&name, &text)?;
        drop(text);
        parsed.push((name, events));
    }
    // A dry run never creates a store; a missing one is empty.
    let store = if dry_run && !path.exists() {
        None
    } else if dry_run {
        Some(open_for_read(path)?)
    } else {
        Some(Store::create_or_open(path)?)
    };
    // One small file: validated against what it touches only.
    if let (false, Some(s), [(name, events)]) = (dry_run, &store, &parsed[..]) {
        if let Some(receipt) = crate::fast_append::try_append(s, name, events)? {
            return Ok(vec![(name.clone(), receipt)]);
        }
    }
    let mut log = match &store {
        Some(s) => load_events(s)?,
        None => Vec::new(),
    };
    let now = Utc::now();
    let current_head = match &store {
        Some(s) => s.head()?,
        None => None,
    };
    let total: usize = parsed.iter().map(|(_, events)| events.len()).sum();
    progress.phase("validated", total as u64);
    let mut plans = Vec::new();
    for (name, events) in parsed {
        let next = log.last().map_or(1, |r| r.seq + 1);
        let count = events.len();
        let start = log.len();
        let (fresh, skipped) = plan_file(&mut log, &name, events, now)?;
        let receipt = Receipt {
            appended: fresh as u64,
            skipped: skipped as u64,
            first_seq: (fresh > 0).then_some(next),
            last_seq: (fresh > 0).then(|| next + fresh as u64 - 1),
            head: current_head.as_ref().map(|h| h.hash_hex()),
            head_seq: current_head.as_ref().map(|h| h.seq),
        };
        plans.push((name, start..log.len(), receipt));
        progress.advance(count as u64);
    }
    if dry_run {
        return Ok(plans.into_iter().map(|(n, _, r)| (n, r)).collect());
    }
    let Some(store) = store else {
        return Err(Failure::Unavailable("no store to append to".into()));
    };
    let new_total: usize = plans.iter().map(|(_, range, _)| range.len()).sum();
    progress.phase("written", new_total as u64);
    let mut receipts = Vec::new();
    for (name, range, planned) in plans {
        let events: Vec<&Event> = log[range.clone()].iter().map(|r| &r.event).collect();
        let r = if events.is_empty() {
            None
        } else {
            // The query indexes and checkpoints change in the same atomic batch. They are
            // worked out on a second thread while this one encodes the events.
            let (bodies, aux) = std::thread::scope(|scope| {
                let aux = scope
                    .spawn(|| crate::checkpoints::maintain(&store, &log[..range.end], range.start));
                let bodies: Vec<Vec<u8>> = events.iter().map(|e| e.canonical_bytes()).collect();
                (bodies, aux.join())
            });
            let aux = aux.unwrap_or_else(|_| {
                Err(Failure::Unavailable(
                    "maintaining the query checkpoints panicked".into(),
                ))
            })?;
            let batch: Vec<NewEvent<'_>> = events
                .iter()
                .zip(&bodies)
                .map(|(e, b)| NewEvent {
                    id: e.id.as_str(),
                    body: b,
                })
                .collect();
            Some(store.append_with(&batch, Utc::now(), Some((store.len() + 1, &aux)))?)
        };
        progress.advance(events.len() as u64);
        let head = store.head()?;
        receipts.push((
            name,
            Receipt {
                appended: r.as_ref().map_or(0, |r| r.appended),
                skipped: planned.skipped + r.as_ref().map_or(0, |r| r.skipped),
                first_seq: r.as_ref().and_then(|r| r.first_seq),
                last_seq: r.as_ref().and_then(|r| r.last_seq),
                head: head.as_ref().map(|h| h.hash_hex()),
                head_seq: head.as_ref().map(|h| h.seq),
            },
        ));
    }
    Ok(receipts)
}

/// Parses one event file; a bad line is refused naming the file and the line.
pub(crate) fn parse_file(name: &str, text: &str) -> Result<Vec<(usize, Event)>, Failure> {
    parse_jsonl(text).map_err(|e| Failure::Refused(format!("{name}: {e}")))
}

/// Validates one parsed file against `log` with `plan_batch`, as an append
/// does, and pushes its new events onto `log` with the next seqs and
/// `recorded`. Returns the new events and how many were skipped as already
/// recorded. Used by `append`, `import`, `record`, `demo` and what-if
/// (`--with`), so that all refuse the same files with the same words.
pub(crate) fn plan_file(
    log: &mut Vec<RecordedEvent>,
    name: &str,
    events: Vec<(usize, Event)>,
    recorded: DateTime<Utc>,
) -> Result<(usize, usize), Failure> {
    let batch: Vec<BatchEvent> = events
        .into_iter()
        .map(|(line, event)| BatchEvent {
            line: Some(line),
            event,
        })
        .collect();
    let plan = plan_batch(log, &batch).map_err(|e| Failure::Refused(format!("{name}: {e}")))?;
    let next = log.last().map_or(1, |r| r.seq + 1);
    let fresh = plan.new.len();
    // The batch is consumed: its new events move into the log, in batch order.
    let mut keep = vec![false; batch.len()];
    for &i in &plan.new {
        keep[i] = true;
    }
    log.reserve(fresh);
    for (k, b) in batch
        .into_iter()
        .zip(keep)
        .filter_map(|(b, keep)| keep.then_some(b))
        .enumerate()
    {
        log.push(RecordedEvent {
            seq: next + k as u64,
            recorded,
            event: b.event,
        });
    }
    Ok((fresh, plan.skipped))
}

fn print_receipt(
    out: Out,
    format: WriteFormat,
    r: &Receipt,
    dry_run: bool,
    id: Option<&str>,
) -> Result<(), Failure> {
    match format {
        WriteFormat::Json => {
            let mut v = r.to_json();
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            if dry_run {
                v["dry_run"] = json!(true);
            }
            writeln!(out, "{v}")?;
        }
        WriteFormat::Table => {
            let verb = if dry_run { "would append" } else { "appended" };
            let mut line = format!("{verb} {} event{}", r.appended, plural(r.appended));
            if let (Some(a), Some(b)) = (r.first_seq, r.last_seq) {
                let _ = if a == b {
                    write!(line, " (seq {a})")
                } else {
                    write!(line, " (seq {a}-{b})")
                };
            }
            if r.skipped > 0 {
                let _ = write!(line, ", skipped {} already recorded", r.skipped);
            }
            if let Some(id) = id {
                let _ = write!(line, "; id {id}");
            }
            writeln!(out, "{line}")?;
            if !dry_run {
                if let (Some(h), Some(s)) = (&r.head, r.head_seq) {
                    writeln!(out, "head {s}:{h}")?;
                }
            }
        }
    }
    Ok(())
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn jsonl_files(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Refused(format!("cannot read directory {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.display().to_string();
            read_input(&name).map(|t| (name, t))
        })
        .collect()
}

fn import(
    path: &Path,
    dir: &Path,
    dry_run: bool,
    format: WriteFormat,
    out: Out,
) -> Result<(), Failure> {
    let files = jsonl_files(dir)?;
    if files.is_empty() {
        return Err(Failure::Refused(format!(
            "{} holds no *.jsonl file",
            dir.display()
        )));
    }
    let receipts = append_files(path, files, dry_run)?;
    print_import(out, format, &receipts, dry_run)
}

fn print_import(
    out: Out,
    format: WriteFormat,
    receipts: &[(String, Receipt)],
    dry_run: bool,
) -> Result<(), Failure> {
    let appended: u64 = receipts.iter().map(|(_, r)| r.appended).sum();
    let skipped: u64 = receipts.iter().map(|(_, r)| r.skipped).sum();
    let first_seq = receipts.iter().find_map(|(_, r)| r.first_seq);
    let last_seq = receipts.iter().rev().find_map(|(_, r)| r.last_seq);
    let head = receipts.last().and_then(|(_, r)| r.head.clone());
    let head_seq = receipts.last().and_then(|(_, r)| r.head_seq);
    match format {
        WriteFormat::Json => {
            let files: Vec<Value> = receipts
                .iter()
                .map(|(name, r)| {
                    let mut v = r.to_json();
                    v["file"] = json!(name);
                    v
                })
                .collect();
            let mut v = json!({
                "files": files, "appended": appended, "skipped": skipped,
                "first_seq": first_seq, "last_seq": last_seq, "head": head,
            });
            if dry_run {
                v["dry_run"] = json!(true);
            }
            writeln!(out, "{v}")?;
        }
        WriteFormat::Table => {
            let mut t = Table::new(&[
                ("file", Align::Left),
                ("appended", Align::Right),
                ("skipped", Align::Right),
                ("seq", Align::Left),
            ]);
            for (name, r) in receipts {
                let seq = match (r.first_seq, r.last_seq) {
                    (Some(a), Some(b)) => format!("{a}-{b}"),
                    _ => "-".into(),
                };
                t.row(vec![
                    name.clone(),
                    r.appended.to_string(),
                    r.skipped.to_string(),
                    seq,
                ]);
            }
            t.write(out, "")?;
            let verb = if dry_run { "would append" } else { "appended" };
            writeln!(
                out,
                "{verb} {appended} event{}, skipped {skipped}",
                plural(appended)
            )?;
            if let (false, Some(h), Some(s)) = (dry_run, &head, head_seq) {
                writeln!(out, "head {s}:{h}")?;
            }
        }
    }
    Ok(())
}

fn record_event(path: &Path, type_name: &str, args: &[String], out: Out) -> Result<(), Failure> {
    let usage = |e: FlagError| match e {
        FlagError::Usage(m) => Failure::Usage(m),
        FlagError::Value(m) => Failure::Refused(m),
    };
    // clap's help flag is off for `record`, so that `record TYPE --help`
    // reaches here and lists the flags of TYPE; `record --help` is clap's help.
    if type_name == "--help" || type_name == "-h" {
        let mut cmd = crate::command();
        cmd.build();
        if let Some(record) = cmd.find_subcommand_mut("record") {
            write!(out, "{}", record.render_long_help())?;
        }
        return Ok(());
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        // An unknown type is refused as for an append (exit 2).
        record::payload(type_name, &[]).map_err(usage)?;
        writeln!(
            out,
            "accord record {type_name}: {}\nalso: --id ID (generated when absent), --effective DATE (default today), --source TEXT, --note TEXT, --format table|json",
            record::flag_list(type_name)
        )?;
        return Ok(());
    }
    let mut pairs = record::pairs(args).map_err(usage)?;
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
        Some(p) => PathBuf::from(p),
        None => path.to_path_buf(),
    };
    let mut map = record::payload(type_name, &pairs).map_err(usage)?;
    let now = Utc::now();
    let effective = match effective {
        Some(e) => Date::parse(&e).map_err(|m| Failure::Usage(format!("--effective: {m}")))?,
        None => today(),
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
    let receipts =
        append_files(&path, vec![("record".to_string(), line)], false).map_err(|f| match f {
            Failure::Refused(m) => Failure::Refused(
                m.trim_start_matches("record: ")
                    .trim_start_matches("line 1: ")
                    .to_string(),
            ),
            other => other,
        })?;
    print_receipt(out, format, &receipts[0].1, false, Some(&id))
}

fn log(path: &Path, since: Option<u64>, format: ReadFormat, out: Out) -> Result<(), Failure> {
    let store = open_for_read(path)?;
    let loaded = load(&store)?;
    let since = since.unwrap_or(0);
    let rows = loaded
        .records
        .iter()
        .zip(&loaded.events)
        .filter(|(r, _)| r.seq > since);
    match format {
        ReadFormat::Json => {
            for (r, e) in rows {
                let mut map = e.event.to_json();
                map.insert("seq".into(), json!(r.seq));
                map.insert("recorded".into(), json!(r.recorded));
                map.insert("hash".into(), json!(r.hash_hex()));
                writeln!(out, "{}", Value::Object(map))?;
            }
        }
        ReadFormat::Csv => {
            let rows: Vec<Vec<String>> = rows
                .map(|(r, e)| {
                    let mut payload = e.event.to_json();
                    for k in ["id", "type", "effective", "source", "note"] {
                        payload.remove(k);
                    }
                    vec![
                        r.seq.to_string(),
                        r.recorded.clone(),
                        e.event.effective.to_string(),
                        e.event.payload.type_name().to_string(),
                        e.event.id.to_string(),
                        Value::Object(payload).to_string(),
                        e.event
                            .source
                            .as_ref()
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        e.event
                            .note
                            .as_ref()
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        r.hash_hex(),
                    ]
                })
                .collect();
            render::csv(
                out,
                &[
                    "seq",
                    "recorded",
                    "effective",
                    "type",
                    "id",
                    "payload",
                    "source",
                    "note",
                    "hash",
                ],
                &rows,
            )?;
        }
        ReadFormat::Table => {
            let mut t = Table::new(&[
                ("seq", Align::Right),
                ("effective", Align::Left),
                ("type", Align::Left),
                ("id", Align::Left),
                ("recorded", Align::Left),
            ]);
            for (r, e) in rows {
                t.row(vec![
                    r.seq.to_string(),
                    e.event.effective.to_string(),
                    e.event.payload.type_name().into(),
                    e.event.id.to_string(),
                    r.recorded.clone(),
                ]);
            }
            t.write(out, "")?;
        }
    }
    Ok(())
}

/// Projects the store; `party`, when given, must be registered somewhere in
/// the log, so that a mistyped id is an error rather than an empty report.
/// With `with`, the events of that file count as appended after the log
/// (what-if; nothing is written).
fn projection(
    path: &Path,
    time: TimeArgs,
    party: Option<&Slug>,
    with: Option<&str>,
) -> Result<Projection, Failure> {
    let with = with.map(crate::whatif::read).transpose()?;
    let store = open_for_read(path)?;
    // As known now and without a what-if file, checkpoints answer without a replay.
    if with.is_none() && matches!(time.known_at, None | Some(KnownAt::Everything)) {
        let known = match party {
            Some(p) => crate::checkpoints::party_registered(&store, p)?,
            None => Some(true),
        };
        if known == Some(false) {
            if let Some(party) = party {
                return Err(unknown_party(party));
            }
        }
        if known.is_some() {
            let as_of = time.as_of.unwrap_or_else(today);
            if let Some(ledger) = crate::checkpoints::ledger_as_of(&store, as_of)? {
                return Ok(Projection { as_of, ledger });
            }
        }
    }
    let mut events = load_events(&store)?;
    drop(store);
    if let Some(file) = &with {
        crate::whatif::extend(&mut events, file)?;
    }
    if let Some(party) = party {
        let known = events.iter().any(|r| {
            matches!(&r.event.payload, domain::Payload::PartyRegistered(p) if p.party == *party)
        });
        if !known {
            return Err(unknown_party(party));
        }
    }
    project_log(&events, time)
}

fn unknown_party(party: &Slug) -> Failure {
    Failure::Refused(format!(
        "unknown party `{party}`: no event registers it (see `accord log`)"
    ))
}

pub(crate) fn project_log(events: &[RecordedEvent], time: TimeArgs) -> Result<Projection, Failure> {
    let as_of = time.as_of.unwrap_or_else(today);
    project(events, as_of, time.known_at.unwrap_or(KnownAt::Everything)).map_err(|e| {
        Failure::Unavailable(format!(
            "the store is corrupt: replaying seq {} breaks a rule: {}",
            e.seq, e.rejection
        ))
    })
}

fn print_ownership(
    out: Out,
    format: ReadFormat,
    r: &projector::OwnershipReport,
) -> Result<(), Failure> {
    match format {
        ReadFormat::Json => render::json(out, r)?,
        ReadFormat::Csv => {
            let mut rows = Vec::new();
            for e in &r.entities {
                for h in &e.holders {
                    rows.push(vec![
                        r.as_of.to_string(),
                        e.entity.to_string(),
                        e.name.clone().unwrap_or_default(),
                        h.holder.to_string(),
                        h.class.clone(),
                        h.units.to_string(),
                        h.percent.to_string(),
                        h.value
                            .as_ref()
                            .map(|v| v.amount.to_string())
                            .unwrap_or_default(),
                        h.value
                            .as_ref()
                            .map(|v| v.currency.to_string())
                            .unwrap_or_default(),
                    ]);
                }
            }
            render::csv(
                out,
                &[
                    "as_of", "entity", "name", "holder", "class", "units", "percent", "value",
                    "currency",
                ],
                &rows,
            )?;
        }
        ReadFormat::Table => {
            if r.entities.is_empty() {
                writeln!(out, "No holdings on {}.", r.as_of)?;
            }
            for (i, e) in r.entities.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(
                    out,
                    "{} ({}) on {}: {} units, post-money {}",
                    e.name.as_deref().unwrap_or("?"),
                    e.entity,
                    r.as_of,
                    crate::human::group_thousands(&e.total_units.to_string()),
                    render::opt_money(&e.post_money)
                )?;
                let mut t = Table::new(&[
                    ("holder", Align::Left),
                    ("class", Align::Left),
                    ("units", Align::Right),
                    ("percent", Align::Right),
                    ("value", Align::Right),
                ]);
                for h in &e.holders {
                    t.row(vec![
                        h.holder.to_string(),
                        h.class.clone(),
                        crate::human::group_thousands(&h.units.to_string()),
                        render::percent(&h.percent),
                        render::opt_money(&h.value),
                    ]);
                }
                t.write(out, "  ")?;
            }
        }
    }
    Ok(())
}

fn obligation_table(rows: &[projector::ObligationRow]) -> Table {
    let mut t = Table::new(&[
        ("obligation", Align::Left),
        ("kind", Align::Left),
        ("obligor", Align::Left),
        ("obligee", Align::Left),
        ("amount", Align::Right),
        ("settled", Align::Right),
        ("outstanding", Align::Right),
        ("status", Align::Left),
        ("due", Align::Left),
    ]);
    for o in rows {
        t.row(vec![
            o.obligation.clone(),
            o.kind.into(),
            o.obligor.to_string(),
            render::opt(&o.obligee),
            render::money(&o.amount),
            render::money(&o.settled),
            render::money(&o.outstanding),
            o.status.into(),
            render::opt(&o.due),
        ]);
    }
    t
}

fn obligation_csv_row(as_of: Date, o: &projector::ObligationRow) -> Vec<String> {
    vec![
        as_of.to_string(),
        o.obligation.clone(),
        o.kind.into(),
        o.obligor.to_string(),
        o.obligee
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        o.amount.currency.to_string(),
        o.amount.amount.to_string(),
        o.settled.amount.to_string(),
        o.outstanding.amount.to_string(),
        o.status.into(),
        o.due.map(|d| d.to_string()).unwrap_or_default(),
    ]
}

const OBLIGATION_CSV: &[&str] = &[
    "as_of",
    "obligation",
    "kind",
    "obligor",
    "obligee",
    "currency",
    "amount",
    "settled",
    "outstanding",
    "status",
    "due",
];

fn print_obligations(
    out: Out,
    format: ReadFormat,
    r: &projector::ObligationsReport,
) -> Result<(), Failure> {
    match format {
        ReadFormat::Json => render::json(out, r)?,
        ReadFormat::Csv => {
            let rows: Vec<Vec<String>> = r
                .obligations
                .iter()
                .map(|o| obligation_csv_row(r.as_of, o))
                .collect();
            render::csv(out, OBLIGATION_CSV, &rows)?;
        }
        ReadFormat::Table => {
            writeln!(out, "Obligations on {}:", r.as_of)?;
            if r.obligations.is_empty() {
                writeln!(out, "  none")?;
                return Ok(());
            }
            obligation_table(&r.obligations).write(out, "  ")?;
            writeln!(out, "Outstanding by obligor:")?;
            let mut t = Table::new(&[("obligor", Align::Left), ("outstanding", Align::Right)]);
            for total in &r.totals {
                t.row(vec![
                    total.obligor.to_string(),
                    format!(
                        "{} {}",
                        crate::human::group_thousands(&total.outstanding.to_string()),
                        total.currency
                    ),
                ]);
            }
            t.write(out, "  ")?;
        }
    }
    Ok(())
}

fn rights_table(rows: &[projector::RightRow]) -> Table {
    let mut t = Table::new(&[
        ("right", Align::Left),
        ("kind", Align::Left),
        ("holder", Align::Left),
        ("grantor", Align::Left),
        ("until", Align::Left),
        ("until milestone", Align::Left),
        ("in force", Align::Left),
    ]);
    for r in rows {
        let state = match r.ended {
            None => "yes".to_string(),
            Some(why) => format!("no ({why})"),
        };
        t.row(vec![
            r.right.clone(),
            r.kind.clone(),
            r.holder.to_string(),
            r.grantor.to_string(),
            render::opt(&r.until),
            render::opt(&r.until_milestone),
            state,
        ]);
    }
    t
}

fn print_rights(out: Out, format: ReadFormat, r: &projector::RightsReport) -> Result<(), Failure> {
    match format {
        ReadFormat::Json => render::json(out, r)?,
        ReadFormat::Csv => {
            let rows: Vec<Vec<String>> = r
                .rights
                .iter()
                .map(|x| {
                    vec![
                        r.as_of.to_string(),
                        x.right.clone(),
                        x.kind.clone(),
                        x.holder.to_string(),
                        x.grantor.to_string(),
                        x.until.map(|d| d.to_string()).unwrap_or_default(),
                        x.until_milestone.clone().unwrap_or_default(),
                        x.in_force.to_string(),
                        x.ended.unwrap_or_default().to_string(),
                    ]
                })
                .collect();
            render::csv(
                out,
                &[
                    "as_of",
                    "right",
                    "kind",
                    "holder",
                    "grantor",
                    "until",
                    "until_milestone",
                    "in_force",
                    "ended",
                ],
                &rows,
            )?;
        }
        ReadFormat::Table => {
            writeln!(out, "Rights on {}:", r.as_of)?;
            if r.rights.is_empty() {
                writeln!(out, "  none")?;
            } else {
                rights_table(&r.rights).write(out, "  ")?;
            }
            if !r.milestones.is_empty() {
                writeln!(out, "Milestones:")?;
                let mut t = Table::new(&[
                    ("milestone", Align::Left),
                    ("declared", Align::Left),
                    ("verified", Align::Left),
                ]);
                for m in &r.milestones {
                    t.row(vec![
                        m.milestone.clone(),
                        render::opt(&m.declared),
                        render::opt(&m.verified),
                    ]);
                }
                t.write(out, "  ")?;
            }
        }
    }
    Ok(())
}

fn print_position(
    out: Out,
    format: ReadFormat,
    p: &projector::PositionReport,
) -> Result<(), Failure> {
    match format {
        ReadFormat::Json => render::json(out, p)?,
        ReadFormat::Csv => {
            // One row per item, tagged by section, so a spreadsheet can filter.
            let amount = |m: &Option<domain::values::Money>| {
                m.as_ref().map(|v| v.amount.to_string()).unwrap_or_default()
            };
            let mut rows: Vec<Vec<String>> = Vec::new();
            for h in &p.holdings {
                let currency = h.value.as_ref().map(|v| v.currency.to_string());
                rows.push(vec![
                    "holding".into(),
                    h.entity.to_string(),
                    h.class.clone(),
                    h.units.to_string(),
                    h.percent.to_string(),
                    String::new(),
                    amount(&h.value),
                    currency.unwrap_or_default(),
                    String::new(),
                    String::new(),
                ]);
            }
            for i in &p.invested {
                rows.push(vec![
                    "invested".into(),
                    i.investee.to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    i.amount.amount.to_string(),
                    amount(&i.value),
                    i.amount.currency.to_string(),
                    i.multiple.map(|m| m.to_string()).unwrap_or_default(),
                    String::new(),
                ]);
            }
            for (section, list) in [("owes", &p.owes), ("owed", &p.owed)] {
                for o in list {
                    rows.push(vec![
                        section.into(),
                        o.obligation.clone(),
                        o.kind.into(),
                        String::new(),
                        String::new(),
                        o.outstanding.amount.to_string(),
                        String::new(),
                        o.outstanding.currency.to_string(),
                        String::new(),
                        o.status.into(),
                    ]);
                }
            }
            for (section, list) in [
                ("right_held", &p.rights_held),
                ("right_granted", &p.rights_granted),
            ] {
                for r in list {
                    let mut row = vec![section.to_string(), r.right.clone(), r.kind.clone()];
                    row.extend(std::iter::repeat_n(String::new(), 6));
                    row.push(r.ended.unwrap_or("in_force").to_string());
                    rows.push(row);
                }
            }
            render::csv(
                out,
                &[
                    "section", "item", "detail", "units", "percent", "amount", "value", "currency",
                    "multiple", "status",
                ],
                &rows,
            )?;
        }
        ReadFormat::Table => {
            writeln!(
                out,
                "{} ({}) on {}",
                p.name.as_deref().unwrap_or("unregistered party"),
                p.party,
                p.as_of
            )?;
            writeln!(out, "Holdings:")?;
            if p.holdings.is_empty() {
                writeln!(out, "  none")?;
            } else {
                let mut t = Table::new(&[
                    ("entity", Align::Left),
                    ("class", Align::Left),
                    ("units", Align::Right),
                    ("percent", Align::Right),
                    ("value", Align::Right),
                ]);
                for h in &p.holdings {
                    t.row(vec![
                        h.entity.to_string(),
                        h.class.clone(),
                        crate::human::group_thousands(&h.units.to_string()),
                        render::percent(&h.percent),
                        render::opt_money(&h.value),
                    ]);
                }
                t.write(out, "  ")?;
            }
            writeln!(out, "Invested:")?;
            if p.invested.is_empty() {
                writeln!(out, "  none")?;
            } else {
                let mut t = Table::new(&[
                    ("investee", Align::Left),
                    ("invested", Align::Right),
                    ("value", Align::Right),
                    ("multiple", Align::Right),
                ]);
                for i in &p.invested {
                    t.row(vec![
                        i.investee.to_string(),
                        render::money(&i.amount),
                        render::opt_money(&i.value),
                        i.multiple
                            .map(|m| format!("{m}x"))
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                t.write(out, "  ")?;
            }
            for (title, list) in [("Owes", &p.owes), ("Owed", &p.owed)] {
                writeln!(out, "{title}:")?;
                if list.is_empty() {
                    writeln!(out, "  none")?;
                } else {
                    obligation_table(list).write(out, "  ")?;
                }
            }
            for (title, list) in [
                ("Rights held", &p.rights_held),
                ("Rights granted", &p.rights_granted),
            ] {
                writeln!(out, "{title}:")?;
                if list.is_empty() {
                    writeln!(out, "  none")?;
                } else {
                    rights_table(list).write(out, "  ")?;
                }
            }
        }
    }
    Ok(())
}

fn parse_expected_head(s: &str) -> Result<(u64, String), Failure> {
    let bad = || {
        Failure::Usage(format!(
            "invalid --expect-head {s:?}: write SEQ:HASH as printed by `accord head`"
        ))
    };
    let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((seq, hash.to_ascii_lowercase()))
}

enum DecodeFailure {
    Store(StoreError),
    Event(u64, String),
}

/// Decodes every record, keeping the hash at `keep_hash_of` (the seq `--expect-head` names).
fn decode_all(
    records: store::Records<'_>,
    keep_hash_of: Option<u64>,
) -> Result<(Vec<RecordedEvent>, Option<String>), DecodeFailure> {
    let mut hash = None;
    let events = decode_records(records, |r| {
        if keep_hash_of == Some(r.seq) {
            hash = Some(r.hash_hex());
        }
    })?;
    Ok((events, hash))
}

fn verify(
    path: &Path,
    expect_head: Option<&str>,
    format: WriteFormat,
    out: Out,
) -> Result<(), Failure> {
    let expected = expect_head.map(parse_expected_head).transpose()?;
    let integrity = |e: StoreError| match e {
        StoreError::Corrupt { seq, detail } => Failure::Integrity(match seq {
            Some(s) => format!("integrity check failed at seq {s}: {detail}"),
            None => format!("integrity check failed: {detail}"),
        }),
        other => Failure::from(other),
    };
    // Damage found while opening (sled's own checks, a log shorter than its acknowledged head)
    // is an integrity failure too.
    let store = match Store::open_existing(path) {
        Ok(store) => store,
        Err(e @ StoreError::Corrupt { .. }) => return Err(integrity(e)),
        Err(e) => return Err(read_failure(path, e)),
    };
    // Two passes over the log, on two threads: the store checks the hash chain and its own
    // indexes while this thread decodes every event for the replay below. The record
    // iterator is made first: it fixes the head it reads up to without waiting for `verify`.
    let records = store.iter();
    let (head, decoded) = std::thread::scope(|scope| {
        let chain = scope.spawn(|| store.verify());
        let decoded = decode_all(records, expected.as_ref().map(|(seq, _)| *seq));
        let head = chain.join().unwrap_or_else(|_| {
            Err(StoreError::Corrupt {
                seq: None,
                detail: "the hash check panicked".into(),
            })
        });
        (head, decoded)
    });
    let head = head.map_err(integrity)?;
    let (events, hash_at_expected) = decoded.map_err(|e| match e {
        DecodeFailure::Store(e) => integrity(e),
        DecodeFailure::Event(seq, m) => Failure::Integrity(format!(
            "integrity check failed at seq {seq}: the event does not decode: {m}"
        )),
    })?;
    // One replay checks every rule and, against it, the query checkpoints and
    // indexes derived from the log.
    crate::checkpoints::check(&store, &events).map_err(|f| match f {
        crate::checkpoints::CheckFailure::Rule(e) => Failure::Integrity(format!(
            "integrity check failed at seq {}: replaying it breaks a rule: {}",
            e.seq, e.rejection
        )),
        crate::checkpoints::CheckFailure::Keys(m) => Failure::Integrity(format!(
            "integrity check failed: the query checkpoints disagree with the log: {m}"
        )),
    })?;
    if let Some((seq, hash)) = &expected {
        match &hash_at_expected {
            Some(h) if h == hash => {}
            Some(h) => {
                return Err(Failure::Integrity(format!(
                    "the log does not hold the expected prefix: seq {seq} has hash {h}, not {hash}: history up to seq {seq} was rewritten"
                )))
            }
            None => {
                return Err(Failure::Integrity(format!(
                    "the log does not hold the expected prefix: it has {} events, fewer than seq {seq}: it was truncated or replaced",
                    events.len()
                )))
            }
        }
    }
    let n = events.len();
    let head_hex = head.as_ref().map(|h| h.hash_hex());
    match format {
        WriteFormat::Json => writeln!(
            out,
            "{}",
            json!({"ok": true, "events": n, "head": head_hex, "seq": head.as_ref().map(|h| h.seq)})
        )?,
        WriteFormat::Table => writeln!(
            out,
            "ok: {n} events, head {}",
            head_hex.unwrap_or_else(|| "none".into())
        )?,
    }
    Ok(())
}

fn head(path: &Path, format: WriteFormat, out: Out) -> Result<(), Failure> {
    let store = open_for_read(path)?;
    let head = store.head()?;
    match (format, head) {
        (WriteFormat::Table, Some(h)) => writeln!(out, "{}:{}", h.seq, h.hash_hex())?,
        (WriteFormat::Table, None) => {}
        (WriteFormat::Json, Some(h)) => writeln!(
            out,
            "{}",
            json!({"seq": h.seq, "hash": h.hash_hex(), "recorded": h.recorded})
        )?,
        (WriteFormat::Json, None) => writeln!(out, "null")?,
    }
    Ok(())
}

fn export(path: &Path, format: ExportFormat, time: TimeArgs, out: Out) -> Result<(), Failure> {
    let store = open_for_read(path)?;
    let loaded = load(&store)?;
    let known_at = time.known_at.unwrap_or_default();
    match format {
        ExportFormat::Jsonl => {
            for r in loaded.events.iter().filter(|r| known_at.includes(r)) {
                if time.as_of.is_some_and(|d| r.event.effective > d) {
                    continue;
                }
                out.write_all(&r.event.canonical_bytes())?;
                writeln!(out)?;
            }
            Ok(())
        }
        ExportFormat::Ledger => ledger_export(&loaded.events, time, out),
    }
}

/// `export --format ledger`: one transaction per event, reversed events left
/// out, so that hledger and ledger-cli can cross-check balances.
fn ledger_export(events: &[RecordedEvent], time: TimeArgs, out: Out) -> Result<(), Failure> {
    use domain::event::Payload;
    let known_at = time.known_at.unwrap_or_default();
    let ordered = domain::timeline(events, known_at);
    // Amounts per obligation as the fold goes, to post amendments and releases.
    let mut obligations: HashMap<
        String,
        (String, rust_decimal::Decimal, rust_decimal::Decimal, String),
    > = HashMap::new();
    // `normalize` drops trailing zeros; a zero is written `0`, never `-0`.
    let amt = |d: rust_decimal::Decimal, c: &str| {
        if d.is_zero() {
            format!("{c} 0")
        } else {
            format!("{c} {}", d.normalize())
        }
    };
    for (_, e) in ordered {
        if time.as_of.is_some_and(|d| e.effective > d) {
            break;
        }
        let mut post = |title: String, lines: Vec<(String, String)>| -> io::Result<()> {
            writeln!(out, "{} {title}", e.effective)?;
            writeln!(out, "    ; id: {}", e.id)?;
            for (account, amount) in lines {
                writeln!(out, "    {account:<50}  {amount}")?;
            }
            writeln!(out)
        };
        match &e.payload {
            Payload::ObligationIncurred(p) => {
                let c = p.amount.currency.to_string();
                let a = p.amount.amount.0;
                obligations.insert(
                    p.obligation.to_string(),
                    (
                        p.obligor.to_string(),
                        a,
                        rust_decimal::Decimal::ZERO,
                        c.clone(),
                    ),
                );
                post(
                    format!("{} incurred", p.obligation),
                    vec![
                        (
                            format!("obligations:{}:{}", p.obligor, p.obligation),
                            amt(-a, &c),
                        ),
                        (format!("commitments:{}", p.obligor), amt(a, &c)),
                    ],
                )?;
            }
            Payload::ObligationSettled(p) => {
                if let Some((obligor, _, settled, c)) = obligations.get_mut(p.obligation.as_str()) {
                    let a = p.amount.amount.0;
                    *settled += a;
                    let (obligor, c) = (obligor.clone(), c.clone());
                    post(
                        format!("{} settled", p.obligation),
                        vec![
                            (
                                format!("obligations:{obligor}:{}", p.obligation),
                                amt(a, &c),
                            ),
                            (format!("settlements:{obligor}"), amt(-a, &c)),
                        ],
                    )?;
                }
            }
            Payload::ObligationAmended(p) => {
                if let Some((obligor, amount, _, c)) = obligations.get_mut(p.obligation.as_str()) {
                    let change = p.amount.amount.0 - *amount;
                    *amount = p.amount.amount.0;
                    let (obligor, c) = (obligor.clone(), c.clone());
                    // One transaction per event, even when it changes nothing
                    // (zero postings), so that `hledger reg` shows every event.
                    post(
                        format!("{} amended", p.obligation),
                        vec![
                            (
                                format!("obligations:{obligor}:{}", p.obligation),
                                amt(-change, &c),
                            ),
                            (format!("commitments:{obligor}"), amt(change, &c)),
                        ],
                    )?;
                }
            }
            Payload::ObligationReleased(p) => {
                if let Some((obligor, amount, settled, c)) = obligations.get(p.obligation.as_str())
                {
                    let rest = *amount - *settled;
                    post(
                        format!("{} released", p.obligation),
                        vec![
                            (
                                format!("obligations:{obligor}:{}", p.obligation),
                                amt(rest, c),
                            ),
                            (format!("releases:{obligor}"), amt(-rest, c)),
                        ],
                    )?;
                }
            }
            Payload::InvestmentMade(p) => {
                let c = p.amount.currency.to_string();
                let a = p.amount.amount.0;
                post(
                    format!("investment {} in {}", p.investor, p.investee),
                    vec![
                        (
                            format!("investments:{}:{}", p.investor, p.investee),
                            amt(a, &c),
                        ),
                        (format!("funding:{}", p.investor), amt(-a, &c)),
                    ],
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

mod demo_files {
    include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));
}

fn demo(path: &Path, format: WriteFormat, out: Out) -> Result<(), Failure> {
    let files: Vec<(String, String)> = demo_files::DEMO_FILES
        .iter()
        .map(|(n, t)| (format!("events/{n}"), t.to_string()))
        .collect();
    let receipts = append_files(path, files, false)?;
    let appended: u64 = receipts.iter().map(|(_, r)| r.appended).sum();
    let skipped: u64 = receipts.iter().map(|(_, r)| r.skipped).sum();
    let store = open_for_read(path)?;
    let loaded = load(&store)?;
    drop(store);
    let dates = ["2025-10-27", "2025-10-28"];
    if format == WriteFormat::Json {
        let mut days = Vec::new();
        for d in dates {
            let time = TimeArgs {
                as_of: Date::parse(d).ok(),
                known_at: None,
            };
            let p = project_log(&loaded.events, time)?;
            days.push(json!({
                "as_of": d,
                "ownership": p.ownership(None),
                "obligations": p.obligations(None, Scope::All),
                "rights": p.rights(None, Scope::All),
            }));
        }
        render::json(
            out,
            &json!({"store": path.display().to_string(), "appended": appended, "skipped": skipped, "days": days}),
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "accord demo: the Microsoft-OpenAI agreement of 28 October 2025 ({} events in {}; {appended} appended, {skipped} already there)",
        loaded.events.len(),
        path.display()
    )?;
    for d in dates {
        let time = TimeArgs {
            as_of: Date::parse(d).ok(),
            known_at: None,
        };
        let p = project_log(&loaded.events, time)?;
        let bar = "=".repeat(72);
        writeln!(out, "\n{bar}\nAs of {d}\n{bar}\n")?;
        print_ownership(out, ReadFormat::Table, &p.ownership(None))?;
        writeln!(out)?;
        print_obligations(out, ReadFormat::Table, &p.obligations(None, Scope::All))?;
        writeln!(out)?;
        print_rights(out, ReadFormat::Table, &p.rights(None, Scope::All))?;
    }
    writeln!(
        out,
        "\nTry: accord --store {} position microsoft --as-of 2025-10-28",
        path.display()
    )?;
    Ok(())
}
