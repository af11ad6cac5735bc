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
/// How a ledger of an older layout is brought to `LAYOUT`: `(from, SQL)` takes version
/// `from` to `from + 1` (`{schema}` stands for the ledger's schema). A later accord that
/// changes the layout adds its step here and bumps `LAYOUT`; opening an older ledger then
/// applies the missing steps in order (see `PgStore::migrate`). Layout 1 is the first.
const MIGRATIONS: &[(i32, &str)] = &[];
/// Records read per query when iterating.
const PAGE: i64 = 10_000;
/// Keys written per statement.
const AUX_CHUNK: usize = 5_000;
/// A batch of at most this many events and keys is written in one round trip.
const SMALL_ROWS: usize = 64;
const SMALL_KEYS: usize = 512;

/// `bytes` as an SQL expression of type `bytea`: hexadecimal digits only, whatever they hold
/// and whatever the server's string settings.
fn hex_bytes(bytes: &[u8]) -> String {
    format!("decode('{}', 'hex')", hex::encode(bytes))
}

/// UTF-8 `bytes` as an SQL expression of type `text`, written the same way.
fn hex_text(bytes: &[u8]) -> String {
    format!(
        "convert_from(decode('{}', 'hex'), 'UTF8')",
        hex::encode(bytes)
    )
}

/// A small batch's write and its commit as one string of statements (see `write_batch`).
fn literal_write(
    events: &str,
    aux: &str,
    meta: &str,
    records: &[Record],
    set: &[(&[u8], &[u8])],
    removed: &[&[u8]],
) -> String {
    let mut sql = String::new();
    if !records.is_empty() {
        let rows: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "({}, {}, {}, {}, {})",
                    r.seq,
                    hex_text(r.recorded.as_bytes()),
                    hex_bytes(&r.hash),
                    hex_text(r.id.as_bytes()),
                    hex_bytes(&r.body)
                )
            })
            .collect();
        sql.push_str(&format!(
            "INSERT INTO {events} (seq, recorded, hash, id, body) VALUES {};\n",
            rows.join(",")
        ));
    }
    if !set.is_empty() {
        let rows: Vec<String> = set
            .iter()
            .map(|(k, v)| format!("({}, {})", hex_bytes(k), hex_bytes(v)))
            .collect();
        sql.push_str(&format!(
            "INSERT INTO {aux} (key, value) VALUES {} ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;\n",
            rows.join(",")
        ));
    }
    if !removed.is_empty() {
        let keys: Vec<String> = removed.iter().map(|k| hex_bytes(k)).collect();
        sql.push_str(&format!(
            "DELETE FROM {aux} WHERE key IN ({});\n",
            keys.join(",")
        ));
    }
    if let Some(h) = records.last() {
        sql.push_str(&format!(
            "UPDATE {meta} SET head_seq = {}, head_hash = {}, head_recorded = {};\n",
            h.seq,
            hex_bytes(&h.hash),
            hex_text(h.recorded.as_bytes())
        ));
    }
    sql.push_str("COMMIT;");
    sql
}

/// A small batch's whole write as one statement (prepared once per connection, so one round
/// trip): its events, its keys set and removed, and the head (unchanged when `$9` is null).
fn small_write(events: &str, aux: &str, meta: &str) -> String {
    format!(
        "WITH e AS (INSERT INTO {events} (seq, recorded, hash, id, body) \
             SELECT * FROM unnest($1::int8[], $2::text[], $3::bytea[], $4::text[], $5::bytea[])), \
         k AS (INSERT INTO {aux} (key, value) SELECT * FROM unnest($6::bytea[], $7::bytea[]) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value), \
         d AS (DELETE FROM {aux} WHERE key = ANY($8::bytea[])) \
         UPDATE {meta} SET head_seq = coalesce($9::int8, head_seq), \
             head_hash = coalesce($10::bytea, head_hash), \
             head_recorded = coalesce($11::text, head_recorded)"
    )
}

/// A connection and the statements prepared on it (a statement is parsed once per
/// connection: each query is then one round trip, not two).
struct Conn {
    client: Client,
    prepared: std::collections::HashMap<String, postgres::Statement>,
    /// How often each statement not prepared yet was sent (see `rows`).
    sent: std::collections::HashMap<String, u32>,
}

impl Conn {
    /// The rows of a query with these parameters of these types. Its first use on this
    /// connection sends it with its types (one round trip); from the second on it is
    /// prepared and kept, so a fresh process (a CLI command) pays no round trip to prepare
    /// what it asks once, and a long-lived one (a server) parses each statement once.
    fn rows(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        types: &[postgres::types::Type],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            let s = s.clone();
            return self.client.query(&s, params);
        }
        let sent = self.sent.entry(sql.to_string()).or_insert(0);
        *sent += 1;
        if *sent > 1 {
            let s = self.statement(sql)?;
            return self.client.query(&s, params);
        }
        let typed: Vec<(&(dyn postgres::types::ToSql + Sync), postgres::types::Type)> = params
            .iter()
            .zip(types)
            .map(|(p, t)| (*p, t.clone()))
            .collect();
        self.client.query_typed(sql, &typed)
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql.to_string(), s.clone());
        Ok(s)
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
    /// The server exports snapshots (`pg_export_snapshot`): asked once.
    exports: std::sync::OnceLock<bool>,
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
            exports: std::sync::OnceLock::new(),
        };
        let mut client = store.connect()?;
        let exists = store.meta_visible(&mut client)?;
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
                .rows(
                    &format!("SELECT version FROM {}.meta", store.schema),
                    &[],
                    &[],
                )
                .map_err(|e| store.failed(&e))?
                .first()
                .map_or(0, |r| r.get(0));
            if version != LAYOUT {
                store.migrate(&mut client, version)?;
            }
        }
        store.give_back(client);
        Ok(store)
    }

    /// Brings a ledger of an older layout to `LAYOUT`, one step after the other, in one
    /// transaction that holds the head lock (so no append runs meanwhile, and a failure
    /// leaves the ledger as it was). A ledger of a newer layout, written by a later accord,
    /// is refused: this one would not know how to keep it whole.
    fn migrate(&self, client: &mut Conn, version: i32) -> Result<(), StoreError> {
        let refuse = |detail: String| StoreError::Backend {
            path: self.shown.clone().into(),
            detail,
        };
        if version > LAYOUT {
            return Err(refuse(format!(
                "the ledger's layout is version {version}, written by a later accord; this one \
                 knows versions up to {LAYOUT}: upgrade accord"
            )));
        }
        let steps: Vec<&(i32, &str)> = MIGRATIONS
            .iter()
            .filter(|(from, _)| *from >= version)
            .collect();
        if version < 1 || steps.len() != (LAYOUT - version) as usize {
            return Err(refuse(format!(
                "the ledger's layout is version {version}, which no accord wrote"
            )));
        }
        let meta = self.table("meta");
        let run = |client: &mut Conn| -> Result<(), postgres::Error> {
            client.batch_execute("BEGIN")?;
            let now: i32 = client
                .query_one(&format!("SELECT version FROM {meta} FOR UPDATE"), &[])?
                .get(0);
            for (from, sql) in MIGRATIONS.iter().filter(|(from, _)| *from >= now) {
                client.batch_execute(&sql.replace("{schema}", &self.schema))?;
                client.execute(&format!("UPDATE {meta} SET version = $1"), &[&(from + 1)])?;
            }
            client.batch_execute("COMMIT")
        };
        run(client).map_err(|e| {
            let _ = client.batch_execute("ROLLBACK");
            refuse(format!(
                "bringing the ledger's layout from version {version} to {LAYOUT} failed: {}",
                reason(&e)
            ))
        })
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
            sent: std::collections::HashMap::new(),
        })
    }

    /// Whether the server can share a snapshot between connections: PostgreSQL can;
    /// CockroachDB, which speaks its protocol, cannot.
    fn exports_snapshots(&self) -> bool {
        *self.exports.get_or_init(|| {
            self.connect()
                .ok()
                .and_then(|mut c| {
                    let v: String = c.query_one("SELECT version()", &[]).ok()?.get(0);
                    self.give_back(c);
                    Some(v.starts_with("PostgreSQL"))
                })
                .unwrap_or(false)
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
        if retryable(e) {
            return StoreError::Conflict {
                path: self.shown.clone().into(),
                detail: reason(e),
            };
        }
        StoreError::Backend {
            path: self.shown.clone().into(),
            detail: reason(e),
        }
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.schema)
    }

    /// Whether the ledger's tables are there (committed, as this connection sees them).
    /// `to_regclass` reads the catalog's cache; `information_schema` would cost a few ms.
    fn meta_visible(&self, client: &mut Conn) -> Result<bool, StoreError> {
        let meta = self.table("meta");
        Ok(client
            .rows(
                "SELECT to_regclass($1)::text",
                &[&meta],
                &[postgres::types::Type::TEXT],
            )
            .map_err(|e| self.failed(&e))?
            .first()
            .is_some_and(|r| r.get::<_, Option<String>>(0).is_some()))
    }

    /// Opens the write transaction of a ledger whose tables are not there yet: the schema (if
    /// missing) and the tables are created inside it, so that nobody sees them before the
    /// first batch is committed, and `events` gets its indexes after that batch's `COPY`
    /// (building an index over a million rows at once costs a fraction of a million
    /// insertions into it). `false`, with nothing left open, when another writer created
    /// them meanwhile: the caller then locks the head as usual.
    fn begin_fresh(&self, client: &mut Conn) -> Result<bool, StoreError> {
        let s = &self.schema;
        if self.meta_visible(client)? {
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
                if self.meta_visible(client)? {
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
            if !self.meta_visible(&mut client)? {
                self.give_back(client);
                return Ok(PgRead {
                    view: View {
                        store: self,
                        client: Mutex::new(None),
                        head: None,
                        empty: true,
                        cache: None,
                        broken: Mutex::new(None),
                    },
                });
            }
            self.exists
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let head = read_head(
            self,
            &mut client,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            false,
        )?;
        Ok(PgRead {
            view: View {
                store: self,
                client: Mutex::new(Some(client)),
                head,
                empty: false,
                cache: None,
                broken: Mutex::new(None),
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
                    cache: Some(Mutex::default()),
                    broken: Mutex::new(None),
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
            match begin_reading_head(self, &mut client, "BEGIN", true) {
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
                cache: Some(Mutex::default()),
                broken: Mutex::new(None),
            },
            grouped: false,
            open: true,
            unindexed: false,
            keep: false,
        })
    }
}

fn parse_url(url: &str) -> Result<(postgres::Config, String, String), StoreError> {
    let shown = without_password(url);
    let bad = |detail: String| StoreError::NotAStore {
        path: shown.clone().into(),
        detail: format!("{shown} is not a PostgreSQL URL accord can use: {detail}"),
    };
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut schema = None;
    let mut rest = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) if schema.is_none() => schema = Some(v.to_string()),
            Some(("schema", _)) => return Err(bad("`schema` is given twice".into())),
            _ => rest.push(pair),
        }
    }
    let schema = schema.unwrap_or_else(|| "accord".to_string());
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
    let mut config: postgres::Config = cleaned.parse().map_err(|e| bad(format!("{e}")))?;
    if config.get_password().is_none() {
        if let Ok(p) = std::env::var("PGPASSWORD") {
            config.password(p);
        }
    }
    config.connect_timeout(std::time::Duration::from_secs(5));
    Ok((config, schema, shown))
}

/// The server's reason for an error (its message), or the client's.
fn reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// The URL with its password (in the user part or as `password=`) replaced, for messages.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}:***@{host}")
        }
        _ => authority.to_string(),
    };
    // libpq's `password=` parameter, too.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| {
                    let key = pair.split('=').next().unwrap_or("");
                    if key.eq_ignore_ascii_case("password") {
                        "password=***".to_string()
                    } else {
                        pair.to_string()
                    }
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A store's location as it may be shown to anyone: a path as it is, a database URL
/// without its password.
pub fn shown(location: &std::path::Path) -> String {
    match location.to_str() {
        Some(url) if is_url(url) => without_password(url),
        _ => location.display().to_string(),
    }
}

/// `COPY`s records into `events` (with `FREEZE` into a table made by this transaction, which
/// then gets its indexes).
fn copy_records(
    c: &mut Conn,
    events: &str,
    records: &[Record],
    unindexed: bool,
) -> Result<(), postgres::Error> {
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
        c.batch_execute(&index_events(events))?;
    }
    Ok(())
}

/// The constraints of `events`, added once its first rows are in (the same as declaring
/// them in `CREATE TABLE`).
fn index_events(events: &str) -> String {
    // Statistics too: a table the planner knows nothing of gets plans made for a few rows
    // (a page of the log would sort the whole table) until autovacuum comes by.
    format!("ALTER TABLE {events} ADD PRIMARY KEY (seq), ADD UNIQUE (id); ANALYZE {events}")
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

/// Begins a transaction (`begin`, e.g. `BEGIN`) and reads the head row in it, locked when
/// `lock`: one round trip.
fn begin_reading_head(
    store: &PgStore,
    client: &mut Conn,
    begin: &str,
    lock: bool,
) -> Result<HeadRow, postgres::Error> {
    let sql = format!(
        "{begin}; SELECT head_seq, encode(head_hash, 'hex'), head_recorded FROM {}{}",
        store.table("meta"),
        if lock { " FOR UPDATE" } else { "" }
    );
    let mut head = None;
    for message in client.client.simple_query(&sql)? {
        if let postgres::SimpleQueryMessage::Row(row) = message {
            head = Some((
                row.get(0).and_then(|s| s.parse::<i64>().ok()),
                row.get(1).map(|h| hex::decode(h).unwrap_or_default()),
                row.get(2).map(str::to_string),
            ));
        }
    }
    // The row is always there (made with the tables); a missing or garbled one reads as a
    // head that `decode_head` refuses.
    Ok(match head {
        Some((Some(seq), hash, recorded)) => (seq, hash, recorded),
        _ => (-1, None, None),
    })
}

fn decode_head((seq, hash, recorded): HeadRow) -> Result<Option<Head>, StoreError> {
    if seq < 0 {
        return Err(StoreError::Corrupt {
            seq: None,
            detail: "the head row is missing or unreadable".into(),
        });
    }
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

fn read_head(
    store: &PgStore,
    client: &mut Conn,
    begin: &str,
    lock: bool,
) -> Result<Option<Head>, StoreError> {
    let row = begin_reading_head(store, client, begin, lock).map_err(|e| store.failed(&e))?;
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
    /// A write transaction's reads, kept for its duration: nobody else writes while it holds
    /// the head lock, and its own writes update or drop what they change. (A group of
    /// appends validates each against mostly the same keys.)
    cache: Option<Mutex<ReadCache>>,
    /// The first failure of a statement in this transaction, which the database then
    /// aborted.
    broken: Mutex<Option<String>>,
}

/// A range of keys asked for: from (included), to (excluded).
type KeyRange = (Vec<u8>, Vec<u8>);

/// What a write transaction has read (see `View::cache`).
#[derive(Default)]
struct ReadCache {
    ids: std::collections::HashMap<String, Option<u64>>,
    aux: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// By range and "the last entry only".
    ranges: std::collections::HashMap<(Vec<u8>, Vec<u8>, bool), AuxEntries>,
    keys: std::collections::HashMap<KeyRange, Vec<Vec<u8>>>,
}

impl ReadCache {
    /// What a batch just wrote: its records' ids and its keys (`None`: removed).
    fn wrote(&mut self, records: &[Record], keys: &[(&[u8], Option<&[u8]>)]) {
        if records.len() + keys.len() > 10_000 {
            *self = ReadCache::default();
            return;
        }
        for r in records {
            self.ids.insert(r.id.clone(), Some(r.seq));
        }
        for (k, v) in keys {
            self.aux.insert(k.to_vec(), v.map(<[u8]>::to_vec));
        }
        // A range read is brought up to date with the keys written inside it (a range that
        // asked for its last key only is dropped when that key is removed).
        self.ranges.retain(|(from, to, last_only), entries| {
            for &(k, v) in keys.iter().filter(|(k, _)| *k >= &from[..] && *k < &to[..]) {
                let at = entries.binary_search_by(|(e, _)| e.as_slice().cmp(k));
                match (v, at, *last_only) {
                    (Some(v), Ok(i), _) => entries[i].1 = v.to_vec(),
                    (Some(v), Err(i), false) => entries.insert(i, (k.to_vec(), v.to_vec())),
                    (Some(v), Err(i), true) => {
                        if i == entries.len() {
                            *entries = vec![(k.to_vec(), v.to_vec())];
                        }
                    }
                    (None, Ok(_), true) => return false,
                    (None, Ok(i), false) => {
                        entries.remove(i);
                    }
                    (None, Err(_), _) => {}
                }
            }
            true
        });
        self.keys.retain(|(from, to), list| {
            for &(k, v) in keys.iter().filter(|(k, _)| *k >= &from[..] && *k < &to[..]) {
                match (v.is_some(), list.binary_search_by(|e| e.as_slice().cmp(k))) {
                    (true, Err(i)) => list.insert(i, k.to_vec()),
                    (false, Ok(i)) => {
                        list.remove(i);
                    }
                    _ => {}
                }
            }
            true
        });
    }
}

impl<'s> View<'s> {
    fn cached<T>(&self, f: impl FnOnce(&mut ReadCache) -> Option<T>) -> Option<T> {
        let cache = self.cache.as_ref()?;
        f(&mut cache.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let client = guard.as_mut().ok_or_else(|| StoreError::Backend {
            path: self.store.shown.clone().into(),
            detail: "the transaction is over".into(),
        })?;
        f(client).map_err(|e| {
            // The database has aborted the transaction: nothing of it may be committed (a
            // `COMMIT` now would quietly roll it back), see `PgWrite::finish`.
            let failed = self.store.failed(&e);
            self.broken
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| failed.to_string());
            failed
        })
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
        if let Some(seq) = self.cached(|c| c.ids.get(id).copied()) {
            return Ok(seq);
        }
        let len = self.len() as i64;
        let rows = self.with(|c| {
            c.rows(
                &sql,
                &[&id, &len],
                &[postgres::types::Type::TEXT, postgres::types::Type::INT8],
            )
        })?;
        let seq = rows.first().map(|r| r.get::<_, i64>(0) as u64);
        self.cached(|c| c.ids.insert(id.to_string(), seq));
        Ok(seq)
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
        let rows = self.with(|c| c.rows(&sql, &[&wanted], &[postgres::types::Type::INT8_ARRAY]))?;
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

    /// The records after `after`, `PAGE` seqs at most. (A range of seqs, not a `LIMIT`: seqs
    /// are gapless, and whatever plan the database picks, it only ever sorts one page.)
    fn page(&self, after: u64) -> Result<Vec<Record>, StoreError> {
        let sql = format!(
            "SELECT seq, recorded, hash, id, body FROM {} WHERE seq > $1 AND seq <= $2 ORDER BY seq",
            self.store.table("events")
        );
        let until = (after + PAGE as u64).min(self.len());
        let (after, until) = (after as i64, until as i64);
        let rows = self.with(|c| {
            c.rows(
                &sql,
                &[&after, &until],
                &[postgres::types::Type::INT8, postgres::types::Type::INT8],
            )
        })?;
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
        if let Some(value) = self.cached(|c| c.aux.get(key).cloned()) {
            return Ok(value);
        }
        let rows = self.with(|c| c.rows(&sql, &[&key], &[postgres::types::Type::BYTEA]))?;
        let value: Option<Vec<u8>> = rows.first().map(|r| r.get(0));
        self.cached(|c| c.aux.insert(key.to_vec(), value.clone()));
        Ok(value)
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
        let at = (from.to_vec(), to.to_vec(), last_only);
        if let Some(entries) = self.cached(|c| c.ranges.get(&at).cloned()) {
            return Ok(entries);
        }
        let rows = self.with(|c| {
            c.rows(
                &sql,
                &[&from, &to],
                &[postgres::types::Type::BYTEA, postgres::types::Type::BYTEA],
            )
        })?;
        let entries: AuxEntries = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        self.cached(|c| c.ranges.insert(at, entries.clone()));
        Ok(entries)
    }

    fn aux_keys(&self, from: &[u8], to: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        if self.empty {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key FROM {} WHERE key >= $1 AND key < $2 ORDER BY key",
            self.store.table("aux")
        );
        let at = (from.to_vec(), to.to_vec());
        if let Some(keys) = self.cached(|c| c.keys.get(&at).cloned()) {
            return Ok(keys);
        }
        let rows = self.with(|c| {
            c.rows(
                &sql,
                &[&from, &to],
                &[postgres::types::Type::BYTEA, postgres::types::Type::BYTEA],
            )
        })?;
        let keys: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
        self.cached(|c| c.keys.insert(at, keys.clone()));
        Ok(keys)
    }

    /// Every record re-read: seqs gapless, every hash recomputed and chained, ids unique, the
    /// head row naming the last record.
    fn verify(&self, each: &mut dyn FnMut(Record)) -> Result<Option<Head>, StoreError> {
        if self.empty {
            return Ok(None);
        }
        // A read checks the chain on a connection of its own in the very same snapshot, so
        // that the check runs beside the other reads of this snapshot (`accord verify`
        // decodes every event meanwhile) instead of taking turns with them.
        if let Some(side) = self.attach() {
            let checked = side.check_chain(each);
            side.end(true);
            return checked;
        }
        self.check_chain(each)
    }

    /// A second connection reading this read's snapshot (`pg_export_snapshot`), when the
    /// database has them (PostgreSQL does; a write transaction's view is its own).
    fn attach(&self) -> Option<View<'s>> {
        if self.cache.is_some() || !self.store.exports_snapshots() {
            return None;
        }
        let id: String = self
            .with(|c| c.query_one("SELECT pg_export_snapshot()", &[]))
            .ok()?
            .get(0);
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        let mut conn = self.store.connect().ok()?;
        conn.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
        ))
        .ok()?;
        Some(View {
            store: self.store,
            client: Mutex::new(Some(conn)),
            head: self.head.clone(),
            empty: false,
            cache: None,
            broken: Mutex::new(None),
        })
    }

    fn check_chain(&self, each: &mut dyn FnMut(Record)) -> Result<Option<Head>, StoreError> {
        let mut prev = [0u8; 32];
        let mut last: Option<(u64, [u8; 32])> = None;
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
            last = Some((r.seq, hash));
            each(r);
        }
        // Rows past the head (inserted behind accord's back) are named by the first of them.
        let count_sql = format!(
            "SELECT count(*), coalesce(max(seq), 0), min(seq) FILTER (WHERE seq > $1) FROM {}",
            self.store.table("events")
        );
        let len = self.len() as i64;
        let row = self.with(|c| c.query_one(&count_sql, &[&len]))?;
        let (count, max, past): (i64, i64, Option<i64>) = (row.get(0), row.get(1), row.get(2));
        if max as u64 > self.len() || count as u64 != self.len() {
            return Err(StoreError::Corrupt {
                seq: Some(past.map_or(self.len() + 1, |s| s as u64)),
                detail: format!(
                    "the events table holds {count} rows up to seq {max}, but the head is seq {}",
                    self.len()
                ),
            });
        }
        match (&last, &self.head) {
            (None, None) => Ok(None),
            (Some((seq, hash)), Some(h)) if *seq == h.seq && *hash == h.hash => {
                Ok(self.head.clone())
            }
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
            fn verify_each(
                &self,
                each: &mut dyn FnMut(Record),
            ) -> Result<Option<Head>, StoreError> {
                self.view.verify(each)
            }
        }
    };
}

pg_snapshot!(PgRead);
pg_snapshot!(PgWrite);

impl PgWrite<'_> {
    /// Records that keep their seq, time and hash must follow the head: the next seq, a
    /// recorded time not before the head's, a hash chained from the one before.
    fn check_records(&self, records: &[Record]) -> Result<(), StoreError> {
        let head = &self.view.head;
        let mut prev = head.as_ref().map_or([0u8; 32], |h| h.hash);
        let first = head.as_ref().map_or(0, |h| h.seq) + 1;
        let mut last_recorded = head.as_ref().map(|h| h.recorded.as_str());
        for (expected, (index, r)) in (first..).zip(records.iter().enumerate()) {
            let bad = |detail: String| StoreError::InvalidEvent { index, detail };
            if r.seq != expected {
                return Err(bad(format!(
                    "seq {} does not follow seq {}",
                    r.seq,
                    expected - 1
                )));
            }
            if last_recorded.is_some_and(|l| r.recorded.as_str() < l) {
                return Err(bad("its recorded time goes back".into()));
            }
            if chain_hash(&prev, r.seq, &r.recorded, &r.id, &r.body) != r.hash {
                return Err(bad("its hash does not chain from the one before".into()));
            }
            prev = r.hash;
            last_recorded = Some(r.recorded.as_str());
        }
        Ok(())
    }

    /// The records of a new batch after the head: the next seqs, one recorded time (never
    /// before the head's), the chain continued.
    fn new_records(
        &self,
        batch: &[NewEvent<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Record>, StoreError> {
        let head = &self.view.head;
        let head_seq = head.as_ref().map_or(0, |h| h.seq);
        let last_recorded = match head {
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
        Ok(batch
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
            .collect())
    }

    /// Writes big `records`: they stream into `COPY` (and a new table gets its indexes) on a
    /// second thread while `aux` works out their keys on this one; then the keys and the
    /// head, and the commit unless grouped.
    fn copy_then(
        &mut self,
        records: &[Record],
        aux: &mut dyn FnMut() -> Option<Vec<AuxWrite>>,
    ) -> Result<Option<Receipt>, StoreError> {
        self.reopen()?;
        let events = self.view.store.table("events");
        let (view, unindexed) = (&self.view, self.unindexed);
        let (copied, aux) = std::thread::scope(|scope| {
            let copy = scope.spawn(|| view.with(|c| copy_records(c, &events, records, unindexed)));
            let aux = aux();
            (copy.join(), aux)
        });
        copied.unwrap_or_else(|_| {
            Err(StoreError::Backend {
                path: self.view.store.shown.clone().into(),
                detail: "writing the records panicked".into(),
            })
        })?;
        let Some(aux) = aux else {
            return Ok(None);
        };
        self.unindexed = false;
        self.write_batch(records, &aux, true)?;
        Ok(Some(self.receipt(records)))
    }

    /// The receipt of an empty batch.
    fn nothing(&self) -> Receipt {
        Receipt {
            appended: 0,
            skipped: 0,
            first_seq: None,
            last_seq: None,
            head: self.view.head.clone(),
        }
    }

    /// The receipt of `records`, just written.
    fn receipt(&self, records: &[Record]) -> Receipt {
        Receipt {
            appended: records.len() as u64,
            skipped: 0,
            first_seq: records.first().map(|r| r.seq),
            last_seq: records.last().map(|r| r.seq),
            head: self.view.head.clone(),
        }
    }

    /// Reopens the SQL transaction after a commit: the lock is taken again, and the head must
    /// be the one this transaction left (else another writer got in between, and what was
    /// validated against the old head no longer holds).
    fn reopen(&mut self) -> Result<(), StoreError> {
        if self.open {
            return Ok(());
        }
        let store = self.view.store;
        self.open = true;
        let head = {
            let mut guard = self.view.client.lock().unwrap_or_else(|p| p.into_inner());
            let client = guard.as_mut().ok_or_else(|| StoreError::Backend {
                path: store.shown.clone().into(),
                detail: "the transaction is over".into(),
            })?;
            read_head(store, client, "BEGIN", true)?
        };
        if head != self.view.head {
            return Err(StoreError::Backend {
                path: store.shown.clone().into(),
                detail: "another writer appended between two batches of this transaction".into(),
            });
        }
        Ok(())
    }

    /// Writes a batch and its keys (the records already there when `copied`, by
    /// `copy_records`), then commits unless grouped.
    fn write_batch(
        &mut self,
        records: &[Record],
        aux: &[AuxWrite],
        copied: bool,
    ) -> Result<(), StoreError> {
        self.reopen()?;
        let store = self.view.store;
        let events = store.table("events");
        let aux_table = store.table("aux");
        let meta = store.table("meta");
        let last = records.last().cloned();
        let unindexed = self.unindexed;
        // Each key's last write wins (one statement may not touch a row twice).
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
        // A small batch (an append of a few events) is one statement (`small_write`), then
        // the commit unless grouped; a big one is `COPY` and array statements.
        let small =
            !unindexed && records.len() <= SMALL_ROWS && set.len() + removed.len() <= SMALL_KEYS;
        let commit_too = small && !self.grouped;
        let done = self.view.with(|c| {
            let prepared = small_write(&events, &aux_table, &meta);
            if small && commit_too && !c.prepared.contains_key(&prepared) {
                // A lone append on a new connection (a CLI process): the batch and the commit
                // as one string of statements, one round trip, its values all hexadecimal
                // (`decode('..', 'hex')`) so that no text of an event is ever read as SQL.
                return c.batch_execute(&literal_write(
                    &events,
                    &aux_table,
                    &meta,
                    records,
                    &set,
                    &removed,
                ));
            }
            if small {
                let seqs: Vec<i64> = records.iter().map(|r| r.seq as i64).collect();
                let recorded: Vec<&str> = records.iter().map(|r| r.recorded.as_str()).collect();
                let hashes: Vec<&[u8]> = records.iter().map(|r| &r.hash[..]).collect();
                let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
                let bodies: Vec<&[u8]> = records.iter().map(|r| &r.body[..]).collect();
                let (keys, values): (Vec<&[u8]>, Vec<&[u8]>) = set.iter().copied().unzip();
                let head_seq = last.as_ref().map(|h| h.seq as i64);
                let head_hash: Option<&[u8]> = last.as_ref().map(|h| &h.hash[..]);
                let head_recorded: Option<&str> = last.as_ref().map(|h| h.recorded.as_str());
                c.execute(
                    &prepared,
                    &[
                        &seqs,
                        &recorded,
                        &hashes,
                        &ids,
                        &bodies,
                        &keys,
                        &values,
                        &removed,
                        &head_seq,
                        &head_hash,
                        &head_recorded,
                    ],
                )?;
                if commit_too {
                    c.batch_execute("COMMIT")?;
                }
                return Ok(());
            }
            if !copied {
                copy_records(c, &events, records, unindexed)?;
            }
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
        });
        if commit_too && done.is_ok() {
            // Committed in the same round trip. (A failure leaves the transaction open, for
            // the rollback of `Drop`.)
            self.open = false;
        }
        done?;
        let written: Vec<(&[u8], Option<&[u8]>)> = set
            .iter()
            .map(|(k, v)| (*k, Some(*v)))
            .chain(removed.iter().map(|k| (*k, None)))
            .collect();
        self.view.cached(|c| {
            c.wrote(records, &written);
            Some(())
        });
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
        let broken = self
            .view
            .broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(why) = broken {
            // A statement of the transaction failed, so the database aborted all of it: the
            // batches applied before it are gone too, and none may be acknowledged.
            self.open = false;
            let _ = self.view.with(|c| c.batch_execute("ROLLBACK"));
            return Err(StoreError::Backend {
                path: self.view.store.shown.clone().into(),
                detail: format!("nothing of the transaction was committed, as one of its statements failed: {why}"),
            });
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
        // The caller validated the batch against this transaction's view: every event is
        // new (and the unique index on `id` would refuse one that is not).
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
        let records = self.new_records(batch, now)?;
        self.write_batch(&records, aux, false)?;
        Ok(self.receipt(&records))
    }

    fn commit_records(
        &mut self,
        records: &[Record],
        aux: &[AuxWrite],
    ) -> Result<Receipt, StoreError> {
        self.check_records(records)?;
        if records.is_empty() {
            return Ok(self.nothing());
        }
        self.write_batch(records, aux, false)?;
        Ok(self.receipt(records))
    }

    fn commit_records_then(
        &mut self,
        records: &[Record],
        aux: &mut dyn FnMut() -> Option<Vec<AuxWrite>>,
    ) -> Result<Option<Receipt>, StoreError> {
        self.check_records(records)?;
        if records.len() <= SMALL_ROWS {
            return match aux() {
                Some(aux) => self.commit_records(records, &aux).map(Some),
                None => Ok(None),
            };
        }
        self.copy_then(records, aux)
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
    fn exists(&self) -> Result<bool, StoreError> {
        if self.exists.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(true);
        }
        let mut client = self.connect()?;
        let found = self.meta_visible(&mut client)?;
        self.give_back(client);
        if found {
            self.exists
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(found)
    }
}
