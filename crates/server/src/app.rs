//! The server's state: its ledgers (each an engine over one store, opened once, and the one
//! writer thread that group-commits its appends), its tokens and its metrics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use engine::{Access, Engine, ExpectedHead, FileReceipt, Head, Parsed};
use tokio::sync::{oneshot, watch};

use crate::auth::Tokens;
use crate::metrics::Metrics;
use crate::problem::Problem;

/// What every handler sees.
pub struct App {
    pub ledgers: Vec<Arc<Ledger>>,
    /// `None`: no token file, every request is allowed (loopback only).
    pub tokens: Option<Tokens>,
    pub metrics: Metrics,
    pub max_body: usize,
    /// Turns true when the server stops: live streams end so that the shutdown can finish.
    pub stopping: watch::Receiver<bool>,
    /// Engine calls running at once: CPU-bound work beyond the cores only adds memory and
    /// latency, so the others wait their turn.
    pub compute: tokio::sync::Semaphore,
    pub answers: crate::cache::Answers,
}

impl App {
    pub fn ledger(&self, name: &str) -> Option<&Arc<Ledger>> {
        self.ledgers.iter().find(|l| l.name == name)
    }
}

/// An append waiting for the writer: the parsed batch, its `expect_head`, and where to answer.
struct Job {
    parsed: Parsed,
    expect_head: Option<ExpectedHead>,
    reply: oneshot::Sender<Result<Vec<FileReceipt>, engine::Error>>,
}

/// One served ledger.
pub struct Ledger {
    pub name: String,
    pub path: PathBuf,
    config: engine::Config,
    /// `None` until the store exists (it is created by the first append).
    engine: RwLock<Option<Arc<Engine>>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The head's seq after every commit, for live streams.
    pub head_seq: watch::Sender<u64>,
    /// Events appended since the server started.
    pub appended: AtomicU64,
}

/// At most this many appends share one group commit.
const GROUP_REQUESTS: usize = 512;
/// A group stops taking requests once it holds this many events.
const GROUP_EVENTS: usize = 50_000;

impl Ledger {
    /// Opens the ledger's store if it exists (holding it for the server's lifetime), and
    /// starts its writer.
    pub fn open(
        name: String,
        path: PathBuf,
        config: engine::Config,
    ) -> Result<Arc<Ledger>, engine::Error> {
        let in_database = path.to_str().is_some_and(engine::is_database_url);
        let engine = if path.exists() || in_database {
            Some(Arc::new(Engine::open(
                &path,
                Access::Write,
                config.clone(),
            )?))
        } else {
            None
        };
        let head = match &engine {
            Some(e) => e.head()?.map_or(0, |h| h.seq),
            None => 0,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let ledger = Arc::new(Ledger {
            name,
            path,
            config,
            engine: RwLock::new(engine),
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
            head_seq: watch::Sender::new(head),
            appended: AtomicU64::new(0),
        });
        let writer = ledger.clone();
        let handle = std::thread::Builder::new()
            .name(format!("accord-writer-{}", ledger.name))
            .spawn(move || writer.write_loop(rx))
            .map_err(|e| engine::Error::Unavailable {
                reason: engine::Unavailable::Failed,
                message: format!("cannot start the writer thread: {e}"),
            })?;
        *ledger.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(ledger)
    }

    /// The engine, for a read; a store not created yet is unavailable, as for the CLI.
    pub fn reader(&self) -> Result<Arc<Engine>, Problem> {
        let missing = || {
            Problem::unavailable(format!(
                "no store at {} yet: ledger {} is created by its first append (POST /v1/ledgers/{}/events)",
                engine::shown_location(&self.path),
                self.name,
                self.name
            ))
        };
        let engine = self.engine_if_open().ok_or_else(missing)?;
        // A database ledger is open from the start, but exists only from its first append.
        if self.in_database() {
            let exists = tokio::task::block_in_place(|| engine.exists());
            if !exists.map_err(|e| Problem::unavailable(e.to_string()))? {
                return Err(missing());
            }
        }
        Ok(engine)
    }

    pub fn engine_if_open(&self) -> Option<Arc<Engine>> {
        self.engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn config(&self) -> &engine::Config {
        &self.config
    }

    /// The head, `None` for an empty or missing store.
    pub fn head(&self) -> Result<Option<Head>, engine::Error> {
        match self.engine_if_open() {
            Some(e) => e.head(),
            None => Ok(None),
        }
    }

    /// `head`, from an async task: a database ledger asks its server, so the wait is taken
    /// off the async threads (`block_in_place`); an embedded one answers from memory, and is
    /// asked directly (moving a worker to a new thread on every request grew the server by
    /// a thread and its allocator arena each time).
    pub fn head_from_async(&self) -> Result<Option<Head>, engine::Error> {
        if self.in_database() {
            tokio::task::block_in_place(|| self.head())
        } else {
            self.head()
        }
    }

    /// The ledger lives in a database (a `postgres://` URL), not in a directory.
    pub fn in_database(&self) -> bool {
        self.path.to_str().is_some_and(engine::is_database_url)
    }

    /// Hands a parsed batch to the writer and waits until it is durable or refused.
    pub async fn append(
        &self,
        parsed: Parsed,
        expect_head: Option<ExpectedHead>,
    ) -> Result<Vec<FileReceipt>, engine::Error> {
        let (reply, answer) = oneshot::channel();
        let sent = match &*self.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(jobs) => jobs
                .send(Job {
                    parsed,
                    expect_head,
                    reply,
                })
                .is_ok(),
            None => false,
        };
        let stopped = || engine::Error::Unavailable {
            reason: engine::Unavailable::Failed,
            message: "the server is stopping: nothing was written".into(),
        };
        if !sent {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops taking appends; the writer finishes the ones queued, then ends.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Waits for the writer to have committed and answered every append queued before
    /// `close`.
    pub fn join_writer(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// The writer: takes every append waiting, validates them one after the other against
    /// the log as each commits, makes the group durable with one flush, then answers each.
    fn write_loop(self: Arc<Ledger>, jobs: mpsc::Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut events = first.parsed.events();
            let mut group = vec![first];
            while group.len() < GROUP_REQUESTS && events < GROUP_EVENTS {
                match jobs.try_recv() {
                    Ok(job) => {
                        events += job.parsed.events();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            // A ledger whose store does not exist yet: batches refused even against an empty
            // log are answered at once, so that nothing refused creates the store.
            if self.engine_if_open().is_none() {
                let mut rest = Vec::with_capacity(group.len());
                for job in group {
                    if !rest.is_empty() {
                        rest.push(job);
                        continue;
                    }
                    let options = engine::Options {
                        dry_run: true,
                        expect_head: job.expect_head.as_ref(),
                        progress: None,
                    };
                    match engine::dry_run_on_empty(job.parsed.clone(), &self.config, &options) {
                        Ok(_) => rest.push(job),
                        Err(e) => {
                            let _ = job.reply.send(Err(e));
                        }
                    }
                }
                if rest.is_empty() {
                    continue;
                }
                group = rest;
            }
            let engine = match self.writer_engine() {
                Ok(engine) => engine,
                Err(e) => {
                    let message = e.to_string();
                    for job in group {
                        let _ = job.reply.send(Err(engine::Error::Unavailable {
                            reason: engine::Unavailable::Failed,
                            message: message.clone(),
                        }));
                    }
                    continue;
                }
            };
            let (requests, replies): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|j| ((j.parsed, j.expect_head), j.reply))
                .unzip();
            let answers = engine.append_group(requests);
            let written: u64 = answers
                .iter()
                .filter_map(|a| a.as_ref().ok())
                .flat_map(|files| files.iter().map(|f| f.receipt.appended))
                .sum();
            self.appended.fetch_add(written, Ordering::Relaxed);
            if let Ok(Some(head)) = engine.head() {
                self.head_seq.send_replace(head.seq);
            }
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        }
    }

    /// The engine for an append, creating the store on the first one.
    fn writer_engine(&self) -> Result<Arc<Engine>, engine::Error> {
        if let Some(e) = self.engine_if_open() {
            return Ok(e);
        }
        let engine = Arc::new(Engine::open(
            &self.path,
            Access::Write,
            self.config.clone(),
        )?);
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Some(engine.clone());
        Ok(engine)
    }
}
