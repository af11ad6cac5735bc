//! The log in PostgreSQL: one schema per ledger (`schema=NAME` in the URL, default `accord`),
//! shared by every process and machine that opens the same URL.
//!
//! Tables (layout version 1):
//!
//! - `meta`: one row, the layout version and the head (`head_seq`, `head_hash`,
//!   `head_recorded`); every write transaction locks it first (`SELECT ... FOR UPDATE`), so
//!   appends are applied one after the other, each validated against the log as it stands
//!   once the lock is held;
//! - `events`: `seq` (primary key), `recorded`, `hash`, `id` (unique), `body`: the very bytes
//!   the hash chain covers, so a copy between stores keeps every hash;
//! - `aux`: the caller's keys (checkpoints, indexes, tails), written in the transaction of the
//!   events they describe.
//!
//! A snapshot is a `REPEATABLE READ READ ONLY` transaction: one consistent view, which no
//! writer blocks. Nothing relies on advisory locks, triggers or `LISTEN`/`NOTIFY`.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use postgres::{Client, NoTls};

use crate::codec::chain_hash;
use crate::{
    recorded_string, AuxEntries, AuxWrite, Head, NewEvent, Receipt, Record, RecordIter, StoreError,
};

/// The layout this accord writes.
const LAYOUT: i32 = 1;
/// Records read per query when iterating.
const PAGE: i64 = 10_000;
/// Keys written per statement.
const AUX_CHUNK: usize = 5_000;

/// A connection and the statements prepared on it (a statement is parsed once per
/// connection: each query is then one round trip, not two).
struct Conn {
    client: Client,
    prepared: std::collections::HashMap<String, postgres::Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<postgres::Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_one(&s, params)
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.client.batch_execute(sql)
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Is this store location a PostgreSQL URL?
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// A ledger in PostgreSQL.
pub struct PgStore {
    config: postgres::Config,
    schema: String,
    /// The URL without its password, for messages.
    shown: String,
    idle: Mutex<Vec<Conn>>,
    /// The schema is known to exist (it never goes away once made).
    exists: std::sync::atomic::AtomicBool,
}

impl PgStore {
    /// Connects to the ledger at `url`. For reads (`create` false) a ledger whose schema does
    /// not exist is `Missing`; for writes the schema is created by the first write.
    pub fn open(url: &str, create: bool) -> Result<PgStore, StoreError> {
        let (config, schema, shown) = parse_url(url)?;
        let store = PgStore {
            config,
            schema,
            shown,
            idle: Mutex::new(Vec::new()),
            exists: std::sync::atomic::AtomicBool::new(false),
        };
        let mut client = store.connect()?;
        // (`to_regclass` reads the catalog's cache; `information_schema` would cost a few ms.)
        let meta = store.table("meta");
        let exists = client
            .query_one("SELECT to_regclass($1)::text", &[&meta])
            .map_err(|e| store.failed(&e))?
            .get::<_, Option<String>>(0)
            .is_some();
        store
            .exists
            .store(exists, std::sync::atomic::Ordering::Relaxed);
        if !exists && !create {
            return Err(StoreError::Missing {
                path: store.shown.clone().into(),
            });
        }
        if exists {
            let version: i32 = client
                .query_one(&format!("SELECT version FROM {}.meta", store.schema), &[])
                .map_err(|e| store.failed(&e))?
                .get(0);
            if version != LAYOUT {
                return Err(StoreError::Backend {
                    path: store.shown.clone().into(),
                    detail: format!(
                        "the ledger's layout is version {version}, this accord knows version {LAYOUT}"
                    ),
                });
            }
        }
        store.give_back(client);
        Ok(store)
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        if let Some(c) = self.lock_idle().pop() {
            if !c.is_closed() {
                return Ok(c);
            }
        }
        let client = self.config.connect(NoTls).map_err(|e| self.failed(&e))?;
        Ok(Conn {
            client,
            prepared: std::collections::HashMap::new(),
        })
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn give_back(&self, client: Conn) {
        if !client.is_closed() {
            let mut idle = self.lock_idle();
            if idle.len() < 8 {
                idle.push(client);
            }
        }
    }

    fn failed(&self, e: &postgres::Error) -> StoreError {
        let reason = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => match std::error::Error::source(e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        };
        StoreError::Backend {
            path: self.shown.clone().into(),
            detail: reason,
        }
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.schema)
    }

    /// Opens the write transaction of a ledger whose tables are not there yet: the schema (if
    /// missing) and the tables are created inside it, so that nobody sees them before the
    /// first batch is committed, and `events` gets its indexes after that batch's `COPY`
    /// (building an index over a million rows at once costs a fraction of a million
    /// insertions into it). `false`, with nothing left open, when another writer created
    /// them meanwhile: the caller then locks the head as usual.
    fn begin_fresh(&self, client: &mut Conn) -> Result<bool, StoreError> {
        let s = &self.schema;
        let meta = self.table("meta");
        let visible = |client: &mut Conn| -> Result<bool, StoreError> {
            let found: Option<String> = client
                .query_one("SELECT to_regclass($1)::text", &[&meta])
                .map_err(|e| self.failed(&e))?
                .get(0);
            Ok(found.is_some())
        };
        if visible(client)? {
            return Ok(false);
        }
        let ddl = format!(
            "BEGIN;
             CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE {s}.meta (
                 one boolean PRIMARY KEY DEFAULT true CHECK (one),
                 version integer NOT NULL,
                 head_seq bigint NOT NULL,
                 head_hash bytea,
                 head_recorded text);
             CREATE TABLE {s}.events (
                 seq bigint NOT NULL,
                 recorded text NOT NULL,
                 hash bytea NOT NULL,
                 id text NOT NULL,
                 body bytea NOT NULL);
             CREATE TABLE {s}.aux (
                 key bytea PRIMARY KEY,
                 value bytea NOT NULL);
             INSERT INTO {s}.meta (version, head_seq) VALUES ({LAYOUT}, 0);
             SELECT head_seq FROM {s}.meta FOR UPDATE;"
        );
        match client.batch_execute(&ddl) {
            Ok(()) => Ok(true),
            Err(e) => {
                // A creator racing this one committed first (its schema or tables): use them.
                let _ = client.batch_execute("ROLLBACK");
                if visible(client)? {
                    Ok(false)
                } else {
                    Err(self.failed(&e))
                }
            }
        }
    }

    /// A consistent read of the log as it is now.
    pub fn read(&self) -> Result<PgRead<'_>, StoreError> {
        let mut client = self.connect()?;
        // A ledger opened for writing whose first append has not come yet reads as empty.
        if !self.exists.load(std::sync::atomic::Ordering::Relaxed) {
            let meta = self.table("meta");
            let found: Option<String> = client
                .query_one("SELECT to_regclass($1)::text", &[&meta])
                .map_err(|e| self.failed(&e))?
                .get(0);
            if found.is_none() {
                self.give_back(client);
                return Ok(PgRead {
                    view: View {
                        store: self,
                        client: Mutex::new(None),
                        head: None,
                        empty: true,
                    },
                });
            }
            self.exists
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| self.failed(&e))?;
        let head = read_head(self, &mut client, false)?;
        Ok(PgRead {
            view: View {
                store: self,
                client: Mutex::new(Some(client)),
                head,
                empty: false,
            },
        })
    }

    /// A write: the head row locked until the last commit.
    pub fn write(&self) -> Result<PgWrite<'_>, StoreError> {
        let mut client = self.connect()?;
        if !self.exists.load(std::sync::atomic::Ordering::Relaxed)
            && self.begin_fresh(&mut client)?
        {
            return Ok(PgWrite {
                view: View {
                    store: self,
                    client: Mutex::new(Some(client)),
                    head: None,
                    empty: false,
                },
                grouped: false,
                open: true,
                unindexed: true,
                keep: false,
            });
        }
        // A serialization failure or a deadlock while the lock is taken (a database that
        // resolves a conflict by aborting one side) is tried again a few times.
        let mut tries = 0u32;
        let head = loop {
            client.batch_execute("BEGIN").map_err(|e| self.failed(&e))?;
            match read_head_raw(self, &mut client, true) {
                Ok(row) => break decode_head(row)?,
                Err(e) if tries < 5 && retryable(&e) => {
                    let _ = client.batch_execute("ROLLBACK");
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10 << tries));
                }
                Err(e) => return Err(self.failed(&e)),
            }
        };
        self.exists
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(PgWrite {
            view: View {
                store: self,
                client: Mutex::new(Some(client)),
                head,
                empty: false,
            },
            grouped: false,
            open: true,
            unindexed: false,
            keep: false,
        })
    }
}

fn parse_url(url: &str) -> Result<(postgres::Config, String, String), StoreError> {
    let bad = |detail: String| StoreError::Backend {
        path: "postgres".into(),
        detail,
    };
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut schema = "accord".to_string();
    let mut rest = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) => schema = v.to_string(),
            _ => rest.push(pair),
        }
    }
    if schema.is_empty()
        || schema.len() > 63
        || !schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(bad(format!(
            "schema={schema:?}: use 1 to 63 characters of a-z, 0-9 and _"
        )));
    }
    let cleaned = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config: postgres::Config = cleaned
        .parse()
        .map_err(|e| bad(format!("{}: {e}", without_password(url))))?;
    if config.get_password().is_none() {
        if let Ok(p) = std::env::var("PGPASSWORD") {
            config.password(p);
        }
    }
    config.connect_timeout(std::time::Duration::from_secs(5));
    Ok((config, schema, without_password(url)))
}

/// The URL with its password (if any) replaced, for messages.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// The constraints of `events`, added once its first rows are in (the same as declaring
/// them in `CREATE TABLE`).
fn index_events(events: &str) -> String {
    format!("ALTER TABLE {events} ADD PRIMARY KEY (seq), ADD UNIQUE (id)")
}

/// A serialization failure or a deadlock: the transaction may simply be tried again.
fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// The head row as stored: (seq, hash, recorded), locked when `lock`.
type HeadRow = (i64, Option<Vec<u8>>, Option<String>);

fn read_head_raw(
    store: &PgStore,
    client: &mut Conn,
    lock: bool,
) -> Result<HeadRow, postgres::Error> {
    let sql = format!(
        "SELECT head_seq, head_hash, head_recorded FROM {}{}",
        store.table("meta"),
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = client.query_one(&sql, &[])?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

fn decode_head((seq, hash, recorded): HeadRow) -> Result<Option<Head>, StoreError> {
    if seq == 0 {
        return Ok(None);
    }
    let bad = |detail: &str| StoreError::Corrupt {
        seq: Some(seq as u64),
        detail: detail.into(),
    };
    Ok(Some(Head {
        seq: seq as u64,
        hash: hash
            .as_deref()
            .and_then(to_hash)
            .ok_or_else(|| bad("the head's hash is not 32 bytes"))?,
        recorded: recorded.ok_or_else(|| bad("the head has no recorded time"))?,
    }))
}

fn read_head(store: &PgStore, client: &mut Conn, lock: bool) -> Result<Option<Head>, StoreError> {
    let row = read_head_raw(store, client, lock).map_err(|e| store.failed(&e))?;
    decode_head(row)
}

fn to_hash(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

/// A transaction's view of the log, up to `head`.
struct View<'s> {
    store: &'s PgStore,
    /// `None` once the transaction is over (a failed commit).
    client: Mutex<Option<Conn>>,
    head: Option<Head>,
    /// The schema does not exist yet: an empty log, read without a query.
    empty: bool,
}

impl View<'_> {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let client = guard.as_mut().ok_or_else(|| StoreError::Backend {
            path: self.store.shown.clone().into(),
            detail: "the transaction is over".into(),
        })?;
        f(client).map_err(|e| self.store.failed(&e))
    }

    fn len(&self) -> u64 {
        self.head.as_ref().map_or(0, |h| h.seq)
    }

    fn row(&self, row: &postgres::Row) -> Result<Record, StoreError> {
        let seq: i64 = row.get(0);
        let hash: Vec<u8> = row.get(2);
        Ok(Record {
            seq: seq as u64,
            recorded: row.get(1),
            hash: to_hash(&hash).ok_or_else(|| StoreError::Corrupt {
                seq: Some(seq as u64),
                detail: "its hash is not 32 bytes".into(),
            })?,
            id: row.get(3),
            body: row.get(4),
        })
    }

    fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        if self.empty {
            return Ok(None);
        }
        let sql = format!(
            "SELECT seq FROM {} WHERE id = $1 AND seq <= $2",
            self.store.table("events")
        );
        let len = self.len() as i64;
        let row = self.with(|c| c.query_opt(&sql, &[&id, &len]))?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    fn records_at(&self, seqs: &[u64]) -> Result<Vec<Record>, StoreError> {
        if let Some(&bad) = seqs.iter().find(|&&s| s == 0 || s > self.len()) {
            return Err(StoreError::Corrupt {
                seq: Some(bad),
                detail: "asked for a seq past the head".into(),
            });
        }
        let wanted: Vec<i64> = seqs.iter().map(|&s| s as i64).collect();
        let sql = format!(
            "SELECT seq, recorded, hash, id, body FROM {} WHERE seq = ANY($1)",
            self.store.table("events")
        );
        let rows = self.with(|c| c.query(&sql, &[&wanted]))?;
        let mut by_seq = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let rec = self.row(r)?;
            by_seq.insert(rec.seq, rec);
        }
        seqs.iter()
            .map(|s| {
                by_seq.get(s).cloned().ok_or_else(|| StoreError::Corrupt {
                    seq: Some(*s),
                    detail: "the record is missing".into(),
                })
            })
            .collect()
    }

    fn page(&self, after: u64) -> Result<Vec<Record>, StoreError> {
        let sql = format!(
            "SELECT seq, recorded, hash, id, body FROM {} WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            self.store.table("events")
        );
        let (after, len) = (after as i64, self.len() as i64);
        let rows = self.with(|c| c.query(&sql, &[&after, &len, &PAGE]))?;
        rows.iter().map(|r| self.row(r)).collect()
    }

    fn records_after(&self, after: u64) -> RecordIter<'_> {
        let mut cursor = after;
        let mut buffer: std::collections::VecDeque<Record> = std::collections::VecDeque::new();
        let mut done = false;
        let mut expected = after + 1;
        Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            if buffer.is_empty() && cursor < self.len() {
                match self.page(cursor) {
                    Ok(page) => buffer.extend(page),
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                }
            }
            match buffer.pop_front() {
                Some(r) if r.seq == expected => {
                    cursor = r.seq;
                    expected += 1;
                    Some(Ok(r))
                }
                Some(r) => {
                    done = true;
                    Some(Err(StoreError::Corrupt {
                        seq: Some(expected),
                        detail: format!("the log jumps from seq {} to {}", expected - 1, r.seq),
                    }))
                }
                None if cursor < self.len() => {
                    done = true;
                    Some(Err(StoreError::Corrupt {
                        seq: Some(cursor + 1),
                        detail: "the record is missing".into(),
                    }))
                }
                None => None,
            }
        }))
    }

    fn aux_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if self.empty {
            return Ok(None);
        }
        let sql = format!(
            "SELECT value FROM {} WHERE key = $1",
            self.store.table("aux")
        );
        let row = self.with(|c| c.query_opt(&sql, &[&key]))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn aux_range(&self, from: &[u8], to: &[u8], last_only: bool) -> Result<AuxEntries, StoreError> {
        if self.empty {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key, value FROM {} WHERE key >= $1 AND key < $2 ORDER BY key {}",
            self.store.table("aux"),
            if last_only { "DESC LIMIT 1" } else { "" }
        );
        let rows = self.with(|c| c.query(&sql, &[&from, &to]))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn aux_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        if self.empty {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key FROM {} WHERE key >= $1 AND key < $2 ORDER BY key",
            self.store.table("aux")
        );
        let rows = self.with(|c| c.query(&sql, &[&from, &to]))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Every record re-read: seqs gapless, every hash recomputed and chained, ids unique, the
    /// head row naming the last record.
    fn verify(&self) -> Result<Option<Head>, StoreError> {
        if self.empty {
            return Ok(None);
        }
        let mut prev = [0u8; 32];
        let mut last: Option<Record> = None;
        for r in self.records_after(0) {
            let r = r?;
            let hash = chain_hash(&prev, r.seq, &r.recorded, &r.id, &r.body);
            if hash != r.hash {
                return Err(StoreError::Corrupt {
                    seq: Some(r.seq),
                    detail: "its hash does not follow from its contents and the hash before".into(),
                });
            }
            prev = hash;
            last = Some(r);
        }
        let count_sql = format!(
            "SELECT count(*), coalesce(max(seq), 0) FROM {}",
            self.store.table("events")
        );
        let row = self.with(|c| c.query_one(&count_sql, &[]))?;
        let (count, max): (i64, i64) = (row.get(0), row.get(1));
        if max as u64 > self.len() || count as u64 != self.len() {
            return Err(StoreError::Corrupt {
                seq: Some(self.len() + 1),
                detail: format!(
                    "the events table holds {count} rows up to seq {max}, but the head is seq {}",
                    self.len()
                ),
            });
        }
        match (&last, &self.head) {
            (None, None) => Ok(None),
            (Some(r), Some(h)) if r.seq == h.seq && r.hash == h.hash => Ok(self.head.clone()),
            _ => Err(StoreError::Corrupt {
                seq: Some(self.len()),
                detail: "the head row does not name the last record".into(),
            }),
        }
    }
}

/// A consistent read of a PostgreSQL ledger.
pub struct PgRead<'s> {
    view: View<'s>,
}

/// A write transaction on a PostgreSQL ledger: the head row locked from its first read to its
/// last commit.
pub struct PgWrite<'s> {
    view: View<'s>,
    /// Commits are grouped: each is applied in the SQL transaction, `flush` commits them all.
    grouped: bool,
    /// The SQL transaction is open.
    open: bool,
    /// This transaction created the tables, and `events` has no index yet (see
    /// `PgStore::begin_fresh`).
    unindexed: bool,
    /// An append of nothing succeeded in this transaction: the tables it created are kept
    /// even without a batch.
    keep: bool,
}

impl View<'_> {
    /// Ends the view's transaction (rolled back when `open`) and keeps its connection for
    /// the next one, unless the connection failed.
    fn end(&self, open: bool) {
        let taken = self.client.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut c) = taken {
            if !open || c.batch_execute("ROLLBACK").is_ok() {
                self.store.give_back(c);
            }
        }
    }
}

impl Drop for PgRead<'_> {
    fn drop(&mut self) {
        self.view.end(true);
    }
}

impl Drop for PgWrite<'_> {
    fn drop(&mut self) {
        self.view.end(self.open);
    }
}

macro_rules! pg_snapshot {
    ($view:ident) => {
        impl crate::Snapshot for $view<'_> {
            fn head(&self) -> Option<Head> {
                self.view.head.clone()
            }
            fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
                self.view.seq_of(id)
            }
            fn records_at(&self, seqs: &[u64]) -> Result<Vec<Record>, StoreError> {
                self.view.records_at(seqs)
            }
            fn records_after(&self, after: u64) -> RecordIter<'_> {
                self.view.records_after(after)
            }
            fn aux_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                self.view.aux_get(key)
            }
            fn aux_range(
                &self,
                from: &[u8],
                to: &[u8],
                last_only: bool,
            ) -> Result<AuxEntries, StoreError> {
                self.view.aux_range(from, to, last_only)
            }
            fn aux_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
                self.view.aux_keys(from, to)
            }
            fn verify(&self) -> Result<Option<Head>, StoreError> {
                self.view.verify()
            }
        }
    };
}

pg_snapshot!(PgRead);
pg_snapshot!(PgWrite);

impl PgWrite<'_> {
    /// Reopens the SQL transaction after a commit: the lock is taken again, and the head must
    /// be the one this transaction left (else another writer got in between, and what was
    /// validated against the old head no longer holds).
    fn reopen(&mut self) -> Result<(), StoreError> {
        if self.open {
            return Ok(());
        }
        let store = self.view.store;
        self.view.with(|c| c.batch_execute("BEGIN"))?;
        self.open = true;
        let head = {
            let mut guard = self.view.client.lock().unwrap_or_else(|p| p.into_inner());
            let client = guard.as_mut().ok_or_else(|| StoreError::Backend {
                path: store.shown.clone().into(),
                detail: "the transaction is over".into(),
            })?;
            read_head(store, client, true)?
        };
        if head != self.view.head {
            return Err(StoreError::Backend {
                path: store.shown.clone().into(),
                detail: "another writer appended between two batches of this transaction".into(),
            });
        }
        Ok(())
    }

    fn write_batch(&mut self, records: &[Record], aux: &[AuxWrite]) -> Result<(), StoreError> {
        self.reopen()?;
        let store = self.view.store;
        let events = store.table("events");
        let aux_table = store.table("aux");
        let meta = store.table("meta");
        let last = records.last().cloned();
        let unindexed = self.unindexed;
        self.view.with(|c| {
            let sink = c.client.copy_in(&format!(
                "COPY {events} (seq, recorded, hash, id, body) FROM STDIN WITH (FORMAT binary{})",
                if unindexed { ", FREEZE" } else { "" }
            ))?;
            let types = [
                postgres::types::Type::INT8,
                postgres::types::Type::TEXT,
                postgres::types::Type::BYTEA,
                postgres::types::Type::TEXT,
                postgres::types::Type::BYTEA,
            ];
            let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
            for r in records {
                let seq = r.seq as i64;
                let hash: &[u8] = &r.hash;
                let body: &[u8] = &r.body;
                writer.write(&[&seq, &r.recorded, &hash, &r.id, &body])?;
            }
            writer.finish()?;
            if unindexed {
                c.batch_execute(&index_events(&events))?;
            }
            // The keys are written a few thousand per statement: each key's last write
            // wins (a statement may not touch one row twice), set or removed.
            let mut last_write: std::collections::HashMap<&[u8], Option<&[u8]>> =
                std::collections::HashMap::with_capacity(aux.len());
            for w in aux {
                last_write.insert(&w.key, w.value.as_deref());
            }
            let mut set: Vec<(&[u8], &[u8])> = Vec::new();
            let mut removed: Vec<&[u8]> = Vec::new();
            for (k, v) in last_write {
                match v {
                    Some(v) => set.push((k, v)),
                    None => removed.push(k),
                }
            }
            set.sort_unstable();
            removed.sort_unstable();
            let upsert = format!(
                "INSERT INTO {aux_table} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            );
            for chunk in set.chunks(AUX_CHUNK) {
                let (keys, values): (Vec<&[u8]>, Vec<&[u8]>) = chunk.iter().copied().unzip();
                c.execute(&upsert, &[&keys, &values])?;
            }
            let delete = format!("DELETE FROM {aux_table} WHERE key = ANY($1)");
            for chunk in removed.chunks(AUX_CHUNK) {
                c.execute(&delete, &[&chunk])?;
            }
            if let Some(h) = &last {
                let seq = h.seq as i64;
                let hash: &[u8] = &h.hash;
                c.execute(
                    &format!("UPDATE {meta} SET head_seq = $1, head_hash = $2, head_recorded = $3"),
                    &[&seq, &hash, &h.recorded],
                )?;
            }
            Ok(())
        })?;
        self.unindexed = false;
        if let Some(h) = last {
            self.view.head = Some(Head {
                seq: h.seq,
                hash: h.hash,
                recorded: h.recorded,
            });
        }
        if !self.grouped {
            self.finish()?;
        }
        Ok(())
    }

    /// Commits the SQL transaction: every batch written so far is durable when this returns.
    fn finish(&mut self) -> Result<(), StoreError> {
        if !self.open {
            return Ok(());
        }
        if self.unindexed {
            if !self.keep {
                // Nothing was appended: the ledger stays as it was, without tables.
                self.open = false;
                return self.view.with(|c| c.batch_execute("ROLLBACK"));
            }
            let events = self.view.store.table("events");
            self.view
                .with(|c| c.batch_execute(&index_events(&events)))?;
            self.unindexed = false;
        }
        let done = self.view.with(|c| c.batch_execute("COMMIT"));
        self.open = false;
        if done.is_ok() {
            self.view
                .store
                .exists
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        done
    }
}

impl crate::Transaction for PgWrite<'_> {
    fn commit(
        &mut self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError> {
        let head = self.view.head.clone();
        let head_seq = head.as_ref().map_or(0, |h| h.seq);
        // The caller validated the batch: every event is new. Check it all the same, a
        // chunk of ids per query (the unique index on `id` would refuse one anyway).
        if head_seq > 0 {
            let events = self.view.store.table("events");
            for chunk in batch.chunks(10_000) {
                let ids: Vec<&str> = chunk.iter().map(|e| e.id).collect();
                let sql = format!("SELECT id FROM {events} WHERE id = ANY($1) LIMIT 1");
                if let Some(row) = self.view.with(|c| c.query_opt(&sql, &[&ids]))? {
                    let id: String = row.get(0);
                    let index = batch.iter().position(|e| e.id == id).unwrap_or(0);
                    return Err(StoreError::InvalidEvent {
                        index,
                        detail: format!("event id {id:?} is already recorded"),
                    });
                }
            }
        }
        if batch.is_empty() {
            // A valid append of nothing: a ledger this transaction created is kept.
            if self.unindexed {
                self.keep = true;
                if !self.grouped {
                    self.finish()?;
                }
            }
            return Ok(Receipt {
                appended: 0,
                skipped: 0,
                first_seq: None,
                last_seq: None,
                head,
            });
        }
        let last_recorded = match &head {
            Some(h) => DateTime::parse_from_rfc3339(&h.recorded)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| StoreError::Corrupt {
                    seq: Some(h.seq),
                    detail: format!("its recorded time does not parse: {e}"),
                })?,
            None => now,
        };
        let recorded = recorded_string(now.max(last_recorded));
        let mut prev = head.as_ref().map_or([0u8; 32], |h| h.hash);
        let records: Vec<Record> = batch
            .iter()
            .zip(head_seq + 1..)
            .map(|(e, seq)| {
                let hash = chain_hash(&prev, seq, &recorded, e.id, e.body);
                prev = hash;
                Record {
                    seq,
                    recorded: recorded.clone(),
                    hash,
                    id: e.id.to_string(),
                    body: e.body.to_vec(),
                }
            })
            .collect();
        self.write_batch(&records, aux)?;
        Ok(Receipt {
            appended: records.len() as u64,
            skipped: 0,
            first_seq: Some(head_seq + 1),
            last_seq: Some(head_seq + records.len() as u64),
            head: self.view.head.clone(),
        })
    }

    fn commit_records(
        &mut self,
        records: &[Record],
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError> {
        let head = self.view.head.clone();
        let mut prev = head.as_ref().map_or([0u8; 32], |h| h.hash);
        let mut expected = head.as_ref().map_or(0, |h| h.seq) + 1;
        let mut last_recorded = head.as_ref().map(|h| h.recorded.clone());
        for (index, r) in records.iter().enumerate() {
            let bad = |detail: String| StoreError::InvalidEvent { index, detail };
            if r.seq != expected {
                return Err(bad(format!(
                    "seq {} does not follow seq {}",
                    r.seq,
                    expected - 1
                )));
            }
            if last_recorded
                .as_deref()
                .is_some_and(|l| r.recorded.as_str() < l)
            {
                return Err(bad("its recorded time goes back".into()));
            }
            if chain_hash(&prev, r.seq, &r.recorded, &r.id, &r.body) != r.hash {
                return Err(bad("its hash does not chain from the one before".into()));
            }
            prev = r.hash;
            expected += 1;
            last_recorded = Some(r.recorded.clone());
        }
        if records.is_empty() {
            return Ok(Receipt {
                appended: 0,
                skipped: 0,
                first_seq: None,
                last_seq: None,
                head,
            });
        }
        let first = records[0].seq;
        self.write_batch(records, aux)?;
        Ok(Receipt {
            appended: records.len() as u64,
            skipped: 0,
            first_seq: Some(first),
            last_seq: Some(expected - 1),
            head: self.view.head.clone(),
        })
    }

    fn group(&mut self) {
        self.grouped = true;
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.finish()
    }
}

impl Drop for PgStore {
    /// Connections are closed on a thread of their own: closing one runs a small runtime of
    /// the client's, which may not start on a thread that drives another (`accord serve`).
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.lock_idle());
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl crate::Backend for PgStore {
    fn read(&self) -> Result<Box<dyn crate::Snapshot + '_>, StoreError> {
        Ok(Box::new(PgStore::read(self)?))
    }
    fn write(&self) -> Result<Box<dyn crate::Transaction + '_>, StoreError> {
        Ok(Box::new(PgStore::write(self)?))
    }
    fn location(&self) -> String {
        self.shown.clone()
    }
}
