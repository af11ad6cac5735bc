//! Appends: every file parsed, validated against the log as the earlier files leave it, and
//! only then written, each file as one atomic batch with the query keys it changes.
//!
//! A single small file takes the fast path (`fast_append`), which reads only what the batch
//! touches; anything else is validated against the whole log with `plan_batch`.

use chrono::{DateTime, Utc};
use domain::event::Event;
use domain::{check_timeline, parse_jsonl_ticked, plan_ids, BatchEvent, Ledger, RecordedEvent};
use store::{NewEvent, Snapshot, Transaction};

use crate::error::{Error, Refusal};
use crate::load::load_events;
use crate::receipt::{FileReceipt, Receipt};
use crate::{Config, Engine, ExpectedHead};

/// An event file: the name refusals use (a path, `<stdin>`) and its text (JSON Lines).
#[derive(Clone, Debug)]
pub struct EventFile {
    pub name: String,
    pub text: String,
}

impl EventFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> EventFile {
        EventFile {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// Told how far an append, an import or a copy has got, for a progress bar. Each step
/// reports `len` and then advances, in small steps, up to it.
pub trait Progress: Sync {
    /// A step over `len` events starts: "read" (parsed, or read from a store), "checked"
    /// (validated against the log) or "written" (encoded and indexed for the store).
    fn phase(&self, message: &'static str, len: u64);
    /// `events` more are done (called from any thread).
    fn advance(&self, events: u64);
    /// A batch of `events` starts to commit: until `committed`, it will end whole or not at
    /// all, and nothing about it is known.
    fn committing(&self, _events: u64) {}
    /// The batch that was committing is durable.
    fn committed(&self) {}
}

/// How to append.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// Validate against the store and write nothing.
    pub dry_run: bool,
    /// Refuse (`Error::HeadMoved`), writing nothing, unless the head is this one when the
    /// batch commits.
    pub expect_head: Option<&'a ExpectedHead>,
    pub progress: Option<&'a dyn Progress>,
}

impl Options<'_> {
    fn phase(&self, message: &'static str, len: u64) {
        if let Some(p) = self.progress {
            p.phase(message, len);
        }
    }
    fn advance(&self, events: u64) {
        if let Some(p) = self.progress {
            p.advance(events);
        }
    }
}

/// Event files parsed, ready to append: a file that does not parse is refused before any
/// store is opened.
#[derive(Clone, Debug)]
pub struct Parsed {
    files: Vec<(String, Vec<(usize, Event)>)>,
}

impl Parsed {
    /// Parses every file; the first bad line is refused naming its file and line.
    pub fn files(files: Vec<EventFile>) -> Result<Parsed, Error> {
        Parsed::files_with(files, None)
    }

    /// `files`, telling `progress` of the lines parsed (step "read").
    pub fn files_with(
        files: Vec<EventFile>,
        progress: Option<&dyn Progress>,
    ) -> Result<Parsed, Error> {
        // Lines, counted by their ends (one cheap pass, only for a bar); blank ones are made
        // up for at the end.
        let lines = progress.map(|p| {
            let n: u64 = files
                .iter()
                .map(|f| {
                    let ends = f.text.bytes().filter(|&b| b == b'\n').count() as u64;
                    ends + u64::from(!f.text.is_empty() && !f.text.ends_with('\n'))
                })
                .sum();
            p.phase("read", n);
            n
        });
        let advance = |n: u64| {
            if let Some(p) = progress {
                p.advance(n);
            }
        };
        let tick: Option<domain::Tick<'_>> = progress.map(|_| &advance as domain::Tick<'_>);
        let mut parsed = Vec::with_capacity(files.len());
        for file in files {
            let events = parse_file_ticked(&file.name, &file.text, tick)?;
            drop(file.text);
            parsed.push((file.name, events));
        }
        let parsed = Parsed { files: parsed };
        if let Some(lines) = lines {
            advance(lines.saturating_sub(parsed.events() as u64));
        }
        Ok(parsed)
    }

    /// How many events the files hold.
    pub fn events(&self) -> usize {
        self.files.iter().map(|(_, events)| events.len()).sum()
    }
}

impl Engine {
    /// Validates every file against the log as it grows, then appends each file as one
    /// atomic batch (or, with `dry_run`, writes nothing). Nothing is written unless every
    /// file is valid.
    pub fn append(&self, parsed: Parsed, options: &Options<'_>) -> Result<Vec<FileReceipt>, Error> {
        let parsed = parsed.files;
        if options.dry_run {
            let snapshot = self.store.read()?;
            check_head(options, snapshot.head().as_ref())?;
            let log = load_events(&*snapshot)?;
            let head = snapshot.head();
            drop(snapshot);
            return plan_files(log, head.as_ref(), parsed, &self.config, options)
                .map(|planned| planned.receipts());
        }
        // A write the database gave up on (a serialization failure or a deadlock) wrote
        // nothing: it is tried again whole, validation included, against the log as it is
        // then. The batch is kept for that when it is small enough to copy.
        let mut tries = 0;
        let mut parsed = parsed;
        loop {
            let again = (tries < CONFLICT_TRIES
                && parsed.iter().map(|(_, e)| e.len()).sum::<usize>() <= RETRY_EVENTS)
                .then(|| parsed.clone());
            let mut txn = self.store.write()?;
            match append_in(&mut *txn, parsed, &self.config, options) {
                Err(Error::Unavailable {
                    reason: crate::Unavailable::Conflict,
                    ..
                }) if again.is_some() => {
                    drop(txn);
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20 << tries));
                    parsed = again.unwrap_or_default();
                }
                done => return done,
            }
        }
    }

    /// Group commit: appends each request (its files, its `expect_head`) one after the other
    /// in one write transaction, each validated against the log as the requests before it
    /// left it, and then makes all of them durable with one flush. Each request stays whole
    /// and independent: a refused one writes nothing and the others go on. The answers come
    /// back in the order asked, and an `Ok` is durable (a failed flush turns every `Ok` into
    /// the store's error).
    pub fn append_group(
        &self,
        requests: Vec<(Parsed, Option<ExpectedHead>)>,
    ) -> Vec<Result<Vec<FileReceipt>, Error>> {
        let n = requests.len();
        let mut txn = match self.store.write() {
            Ok(txn) => txn,
            Err(e) => {
                let e = Error::from(e);
                return (0..n).map(|_| Err(same_error(&e))).collect();
            }
        };
        txn.group();
        let mut answers: Vec<Result<Vec<FileReceipt>, Error>> = requests
            .into_iter()
            .map(|(parsed, expect_head)| {
                let options = Options {
                    dry_run: false,
                    expect_head: expect_head.as_ref(),
                    progress: None,
                };
                append_in(&mut *txn, parsed.files, &self.config, &options)
            })
            .collect();
        if let Err(e) = txn.flush() {
            let e = Error::from(e);
            for answer in answers.iter_mut().filter(|a| a.is_ok()) {
                *answer = Err(same_error(&e));
            }
        }
        answers
    }
}

/// How many times a write the database gave up on is tried again, and up to how many events
/// a batch is kept (copied) for that.
const CONFLICT_TRIES: u32 = 5;
const RETRY_EVENTS: usize = 100_000;

/// Appends validated files inside the caller's transaction (see `Engine::append`).
fn append_in(
    txn: &mut dyn Transaction,
    parsed: Files,
    config: &Config,
    options: &Options<'_>,
) -> Result<Vec<FileReceipt>, Error> {
    check_head(options, txn.head().as_ref())?;
    // One small file: validated against what it touches only.
    if let [(name, events)] = &parsed[..] {
        if let Some(receipt) = crate::fast_append::try_append(txn, name, events, config)? {
            return Ok(vec![FileReceipt {
                name: name.clone(),
                receipt,
            }]);
        }
    }
    let log = load_events(&*txn)?;
    let head = txn.head();
    let planned = plan_files(log, head.as_ref(), parsed, config, options)?;
    write_planned(txn, planned, config, options)
}

/// One store error said to each request of a group.
fn same_error(e: &Error) -> Error {
    match e {
        Error::Unavailable { reason, message } => Error::Unavailable {
            reason: *reason,
            message: message.clone(),
        },
        other => Error::failed(other.to_string()),
    }
}

/// A dry run against an empty log, for a store that does not exist yet.
pub fn dry_run_on_empty(
    parsed: Parsed,
    config: &Config,
    options: &Options<'_>,
) -> Result<Vec<FileReceipt>, Error> {
    check_head(options, None)?;
    plan_files(Vec::new(), None, parsed.files, config, options).map(|planned| planned.receipts())
}

fn check_head(options: &Options<'_>, head: Option<&store::Head>) -> Result<(), Error> {
    match options.expect_head {
        Some(expected) if !expected.matches(head) => Err(Error::HeadMoved {
            expected: expected.to_string(),
            actual: head.map_or("0".to_string(), |h| format!("{}:{}", h.seq, h.hash_hex())),
        }),
        _ => Ok(()),
    }
}

type Files = Vec<(String, Vec<(usize, Event)>)>;

/// Parses one event file; a bad line is refused naming the file and the line.
pub(crate) fn parse_file(name: &str, text: &str) -> Result<Vec<(usize, Event)>, Error> {
    parse_file_ticked(name, text, None)
}

fn parse_file_ticked(
    name: &str,
    text: &str,
    tick: Option<domain::Tick<'_>>,
) -> Result<Vec<(usize, Event)>, Error> {
    parse_jsonl_ticked(text, tick).map_err(|e| {
        Error::Refused(Refusal {
            code: "parse_error",
            event: e.error.id.clone(),
            line: Some(e.line),
            message: format!("{name}: {e}"),
        })
    })
}

/// Validated files: the log with every file's new events after it, and for each file
/// where its new events sit in that log and its receipt.
struct Planned {
    files: Vec<(String, std::ops::Range<usize>, Receipt)>,
    log: Vec<RecordedEvent>,
    /// An import of one file: its timeline is checked by the fold that works out its keys,
    /// while its records are written (`first_batch`), not before.
    deferred: Option<Deferred>,
}

/// What an import's deferred check needs to refuse the file as `check_timeline` would: the
/// file's name and the line of each new event.
struct Deferred {
    name: String,
    lines: Lines,
}

/// The line of each new event of a file, in order (`None`: not from a file).
type Lines = Vec<Option<usize>>;

impl Planned {
    fn receipts(&self) -> Vec<FileReceipt> {
        self.files
            .iter()
            .map(|(name, _, r)| FileReceipt {
                name: name.clone(),
                receipt: r.clone(),
            })
            .collect()
    }
}

/// Validates each file in turn against `log`, which grows by each file's new events.
fn plan_files(
    mut log: Vec<RecordedEvent>,
    head: Option<&store::Head>,
    parsed: Files,
    config: &Config,
    options: &Options<'_>,
) -> Result<Planned, Error> {
    let now = config.now();
    let total: usize = parsed.iter().map(|(_, events)| events.len()).sum();
    options.phase("checked", total as u64);
    let advance = |n: u64| options.advance(n);
    let tick: Option<domain::Tick<'_>> = options.progress.map(|_| &advance as domain::Tick<'_>);
    let mut plans = Vec::new();
    // An import of one file into an empty log is checked by the fold that works out its keys,
    // while its records are written: a refusal then writes nothing all the same. (With more
    // files, each later one is checked against the first, which must be checked first; a dry
    // run writes nothing to check beside.)
    let defer = log.is_empty() && !options.dry_run && parsed.len() == 1;
    let mut deferred = None;
    for (name, events) in parsed {
        let next = log.last().map_or(1, |r| r.seq + 1);
        let count = events.len();
        let start = log.len();
        // Only an empty log holds nothing to skip, and a big batch into one is the commonest.
        let ids: Vec<String> = if start == 0 {
            Vec::new()
        } else {
            events.iter().map(|(_, e)| e.id.to_string()).collect()
        };
        let (fresh, skipped, lines) = plan_file_ticked(&mut log, &name, events, now, tick, defer)?;
        if let Some(lines) = lines {
            deferred = Some(Deferred {
                name: name.clone(),
                lines,
            });
        }
        let reversed = if skipped > 0 {
            reversed_among(&log, start, &ids)
        } else {
            Vec::new()
        };
        let receipt = Receipt {
            appended: fresh as u64,
            skipped: skipped as u64,
            first_seq: (fresh > 0).then_some(next),
            last_seq: (fresh > 0).then(|| next + fresh as u64 - 1),
            head: head.map(|h| h.hash_hex()),
            head_seq: head.map(|h| h.seq),
            reversed,
        };
        // The checks counted the new events; the ones skipped as already recorded count too.
        options.advance((count - fresh) as u64);
        plans.push((name, start..log.len(), receipt));
    }
    Ok(Planned {
        files: plans,
        log,
        deferred,
    })
}

/// Writes each planned file as one batch: its events and the query keys they change.
fn write_planned(
    txn: &mut dyn Transaction,
    Planned {
        files: plans,
        log,
        mut deferred,
    }: Planned,
    config: &Config,
    options: &Options<'_>,
) -> Result<Vec<FileReceipt>, Error> {
    let new_total: usize = plans.iter().map(|(_, range, _)| range.len()).sum();
    // A deferred check goes on ticking "checked" as it folds; "written" follows it.
    if deferred.is_none() {
        options.phase("written", new_total as u64);
    }
    let mut receipts = Vec::new();
    for (name, range, planned) in plans {
        let events: Vec<&Event> = log[range.clone()].iter().map(|r| &r.event).collect();
        let written = if events.is_empty() {
            // An empty file on an empty log still makes the ledger: a store that creates
            // itself inside its first transaction (PostgreSQL) keeps it on this commit.
            if txn.is_empty() {
                txn.commit(&[], config.now(), &[])?;
            }
            None
        } else if range.start == 0 && txn.is_empty() {
            // The first batch of an empty log (an import): its keys are worked out against
            // the empty log on a second thread, while this one encodes the events and the
            // store writes them.
            Some(first_batch(
                txn,
                &log[..range.end],
                &events,
                deferred.take(),
                config,
                options,
            )?)
        } else {
            // The query indexes and checkpoints change in the same atomic batch. They are
            // worked out on a second thread while this one encodes the events.
            let (bodies, aux) = std::thread::scope(|scope| {
                let snapshot: &dyn Snapshot = &*txn;
                let aux = scope.spawn(|| {
                    crate::checkpoints::maintain(snapshot, &log[..range.end], range.start, config)
                });
                (encode(&events, options), aux.join())
            });
            let aux = aux.unwrap_or_else(|_| {
                Err(Error::failed("maintaining the query checkpoints panicked"))
            })?;
            let batch = as_batch(&events, &bodies);
            if let Some(p) = options.progress {
                p.committing(batch.len() as u64);
            }
            let receipt = txn.commit(&batch, config.now(), &aux)?;
            if let Some(p) = options.progress {
                p.committed();
            }
            Some(receipt)
        };
        let head = txn.head();
        receipts.push(FileReceipt {
            name,
            receipt: Receipt {
                appended: written.as_ref().map_or(0, |r| r.appended),
                skipped: planned.skipped + written.as_ref().map_or(0, |r| r.skipped),
                first_seq: written.as_ref().and_then(|r| r.first_seq),
                last_seq: written.as_ref().and_then(|r| r.last_seq),
                head: head.as_ref().map(|h| h.hash_hex()),
                head_seq: head.as_ref().map(|h| h.seq),
                reversed: planned.reversed.clone(),
            },
        });
    }
    Ok(receipts)
}

/// The events' canonical bytes (what the store keeps and the chain covers), telling the
/// progress as it goes.
fn encode(events: &[&Event], options: &Options<'_>) -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = Vec::with_capacity(events.len());
    for chunk in events.chunks(domain::TICK_EVERY as usize) {
        bodies.extend(chunk.iter().map(|e| e.canonical_bytes()));
        options.advance(chunk.len() as u64);
    }
    bodies
}

/// The store's batch of `events` with their `bodies`.
fn as_batch<'a>(events: &[&'a Event], bodies: &'a [Vec<u8>]) -> Vec<NewEvent<'a>> {
    events
        .iter()
        .zip(bodies)
        .map(|(e, b)| NewEvent {
            id: e.id.as_str(),
            body: b,
        })
        .collect()
}

/// Writes the first batch of an empty log with its keys. The keys are worked out
/// (`checkpoints::maintain`, a fold of the whole timeline) on a second thread while this one
/// encodes the events and the store writes their records where nothing refers to them yet;
/// the commit waits for the keys. With `deferred`, that fold is the batch's check: if it
/// fails, the store writes nothing and the file is refused as `check_timeline` words it.
fn first_batch(
    txn: &mut dyn Transaction,
    log: &[RecordedEvent],
    events: &[&Event],
    deferred: Option<Deferred>,
    config: &Config,
    options: &Options<'_>,
) -> Result<store::Receipt, Error> {
    let advance = |n: u64| options.advance(n);
    let tick: Option<domain::Tick<'_>> = match (&deferred, options.progress) {
        (Some(_), Some(_)) => Some(&advance),
        _ => None,
    };
    let work_out = || crate::checkpoints::maintain_ticked(&store::EmptyLog, log, 0, config, tick);
    let quiet = Options {
        dry_run: false,
        expect_head: None,
        progress: None,
    };
    let mut refusal: Option<Error> = None;
    let receipt = std::thread::scope(|scope| {
        let mut keys = std::thread::Builder::new()
            .spawn_scoped(scope, work_out)
            .ok();
        let bodies = encode(events, if deferred.is_some() { &quiet } else { options });
        let batch = as_batch(events, &bodies);
        let mut aux = || {
            let worked_out = match keys.take() {
                Some(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::failed("working out the query keys panicked"))),
                // No second thread: worked out here.
                None => work_out(),
            };
            match worked_out {
                Ok(aux) => {
                    if deferred.is_some() {
                        options.phase("written", events.len() as u64);
                        options.advance(events.len() as u64);
                    }
                    if let Some(p) = options.progress {
                        p.committing(events.len() as u64);
                    }
                    Some(aux)
                }
                Err(e) => {
                    refusal = Some(match &deferred {
                        Some(d) => deferred_refusal(log, d, e),
                        None => e,
                    });
                    None
                }
            }
        };
        txn.commit_then(&batch, config.now(), &mut aux)
    });
    if let Some(e) = refusal {
        return Err(e);
    }
    let receipt = receipt?.ok_or_else(|| Error::failed("the import's keys were declined"))?;
    if let Some(p) = options.progress {
        p.committed();
    }
    Ok(receipt)
}

/// Why the fold of an import's timeline failed, as the check of its file words it (the
/// check finds the event at fault, bisecting when a later one broke an earlier one); the
/// fold's own error should the check pass (it cannot: both fold the same timeline).
fn deferred_refusal(log: &[RecordedEvent], deferred: &Deferred, failed: Error) -> Error {
    let new: Vec<(Option<usize>, &Event)> = deferred
        .lines
        .iter()
        .zip(log)
        .map(|(line, r)| (*line, &r.event))
        .collect();
    match check_timeline(&Ledger::new(), &[], 1, &new, None) {
        Err(e) => Error::batch(&deferred.name, &e),
        Ok(()) => failed,
    }
}

/// Of a file's `ids`, those skipped as already recorded (not among the new events from
/// `start` on) that a recorded reversal removed, with that reversal's id.
fn reversed_among(log: &[RecordedEvent], start: usize, ids: &[String]) -> Vec<(String, String)> {
    let new: std::collections::HashSet<&str> =
        log[start..].iter().map(|r| r.event.id.as_str()).collect();
    let by: std::collections::HashMap<&str, &str> = log
        .iter()
        .filter_map(|r| match &r.event.payload {
            domain::Payload::EventReversed(p) => Some((p.reverses.as_str(), r.event.id.as_str())),
            _ => None,
        })
        .collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for id in ids {
        if new.contains(id.as_str()) || out.iter().any(|(i, _)| i == id) {
            continue;
        }
        if let Some(rev) = by.get(id.as_str()) {
            out.push((id.clone(), rev.to_string()));
        }
    }
    out
}

/// Validates one parsed file against `log` with `plan_batch`, as an append
/// does, and pushes its new events onto `log` with the next seqs and
/// `recorded`. Returns how many events are new and how many were skipped as
/// already recorded. Used by appends, imports and what-if (`--with`), so that
/// all refuse the same files with the same words.
pub(crate) fn plan_file(
    log: &mut Vec<RecordedEvent>,
    name: &str,
    events: Vec<(usize, Event)>,
    recorded: DateTime<Utc>,
) -> Result<(usize, usize), Error> {
    plan_file_ticked(log, name, events, recorded, None, false).map(|(f, s, _)| (f, s))
}

/// `plan_file`, telling `tick` of the new events checked.
///
/// With `defer` and an empty `log` (an import), the timeline is not checked here: the new
/// events go into `log` with the line of each, returned for the check that `first_batch`
/// makes as it writes them.
fn plan_file_ticked(
    log: &mut Vec<RecordedEvent>,
    name: &str,
    events: Vec<(usize, Event)>,
    recorded: DateTime<Utc>,
    tick: Option<domain::Tick<'_>>,
    defer: bool,
) -> Result<(usize, usize, Option<Lines>), Error> {
    let batch: Vec<BatchEvent> = events
        .into_iter()
        .map(|(line, event)| BatchEvent {
            line: Some(line),
            event,
        })
        .collect();
    let next = log.last().map_or(1, |r| r.seq + 1);
    let plan = plan_ids(log, &batch).map_err(|e| Error::batch(name, &e))?;
    let fresh = plan.new.len();
    // The batch is consumed: its new events move into the log, in batch order (and out of
    // it again if the timeline they make fails).
    let start = log.len();
    let mut keep = vec![false; batch.len()];
    for &i in &plan.new {
        keep[i] = true;
    }
    log.reserve(fresh);
    let mut lines = Vec::with_capacity(fresh);
    for (k, b) in batch
        .into_iter()
        .zip(keep)
        .filter_map(|(b, keep)| keep.then_some(b))
        .enumerate()
    {
        lines.push(b.line);
        log.push(RecordedEvent {
            seq: next + k as u64,
            recorded,
            event: b.event,
        });
    }
    if defer && start == 0 && fresh > 0 {
        return Ok((fresh, plan.skipped, Some(lines)));
    }
    let checked = {
        let (before, added) = log.split_at(start);
        let new: Vec<(Option<usize>, &Event)> = lines
            .iter()
            .zip(added)
            .map(|(line, r)| (*line, &r.event))
            .collect();
        check_timeline(&Ledger::new(), before, next, &new, tick).map_err(|e| Error::batch(name, &e))
    };
    if let Err(e) = checked {
        log.truncate(start);
        return Err(e);
    }
    Ok((fresh, plan.skipped, None))
}
