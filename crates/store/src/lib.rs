//! The append-only event log of accord: bytes on disk, sequence numbers, a hash chain and
//! atomic batches. It deliberately knows nothing about money, parties or event types: an event
//! is an opaque `id` plus an opaque `body` (the caller's canonical encoding), and this crate is
//! the only one that touches the disk. (The dictionary its frames compress with holds text that
//! bodies usually contain; LZ4 refers to it, nothing here reads it as events.)
//!
//! # Hash chain
//!
//! Every record carries `hash(seq)`, a SHA-256 digest over
//!
//! ```text
//! prev_hash            32 bytes: hash(seq - 1), or 32 zero bytes for seq 1
//! seq                  u64 big-endian
//! len(recorded)        u32 big-endian, then the recorded bytes (RFC 3339 UTC, microseconds)
//! len(id)              u32 big-endian, then the id's UTF-8 bytes
//! len(body)            u64 big-endian, then the body bytes
//! ```
//!
//! Hashes are displayed as lowercase hex. Changing any byte of any earlier record changes every
//! later hash, so the head hash commits to the whole log.
//!
//! # On-disk layout
//!
//! A store is a directory holding a sled database (sled's own `db`, `conf`, `blobs/`, `snap.*`),
//! `accord.log`, the log file (see below), `accord.lock`, the file this crate locks exclusively
//! so that a second process fails fast with [`StoreError::Locked`], and `accord.head`, the head
//! sidecar (see below). All keys live in sled's default tree:
//!
//! - `b"meta"` -> the head: format byte `1`, seq (u64 BE), hash (32 bytes), varint length +
//!   recorded bytes.
//! - `b"seg"` + first seq (u64 BE) -> a *segment* of consecutive records, so that sled's key
//!   order is seq order and one sled value holds up to [`SEGMENT_MAX_EVENTS`] records or about
//!   [`SEGMENT_MAX_BYTES`] bytes (one key per event would cost sled tens of bytes each). A segment
//!   is format byte `1`, record count (u32 BE), then per record: varint length + recorded bytes
//!   (length 0 means "same as the previous record of this segment", since a batch shares one
//!   timestamp), the 32-byte hash, varint length + id, varint length + body. Seqs are implicit:
//!   `first_seq + index`. An append fills up the last segment before starting new ones. That is
//!   the *plain* form (format 1, still read); what is stored is format 2: format byte `2`, the
//!   count, then the records as one LZ4 block with its length prepended (u32 LE). Hashes are
//!   computed over the record fields, never over stored bytes, so compression changes no hash.
//!   A full (*sealed*) segment is kept in the log file instead, cut into *frames*, and its value
//!   in sled is format 4: format byte `4`, the count (u32 BE), the offset (u64 BE) and length
//!   (u32 BE) of its bytes in `accord.log`, the length of its frame table (u32 BE) and the
//!   table's CRC-32 (u32 BE). There, the frame table comes first: per frame its record count
//!   (varint), its length (varint) and the CRC-32 of its bytes (u32 BE); then the frames end to
//!   end, each an LZ4 block (length prepended, u32 LE) of about [`FRAME_MAX_BYTES`] of plain
//!   records whose first record spells out its recorded time, compressed with a fixed LZ4
//!   dictionary (the event format's field names and types, `codec::FRAME_DICTIONARY`) without
//!   which it does not decode. So reading a few scattered
//!   records (an aggregate's stream) reads and decompresses one frame each, not whole
//!   segments. Only the last segment, which appends extend, lives in sled itself. Older stores
//!   are read as they are: sealed segments in sled (before the log file existed), and format
//!   3 (before frames: format byte `3`, count, offset, length, then the CRC-32 of the
//!   segment's format-2 bytes in `accord.log`); new sealed segments are framed.
//! - `b"logend"` -> the committed length of `accord.log` (u64 BE).
//! - `b"sdx"` + first seq (u64 BE) -> a chunk of the *segment directory*: every segment but the
//!   last, in seq order, 512 per chunk, the key naming the chunk's first; format byte `1`, then
//!   per segment the difference of its first seq from the previous one's (varint) and its sled
//!   value when that is a log file entry (varint length + bytes; length 0: the segment is in
//!   sled). `b"sdend"` -> the first seq of the last segment (u64 BE), where the directory
//!   ends. A read of scattered records (an aggregate's stream) finds its segments there, in a
//!   few chunks, instead of walking sled's segment keys between them, which in sled 0.34 costs
//!   a descent of the tree per key. Appends extend it in their batch. It is current only while
//!   `sdend` names the last segment: a store appended by an older accord is read by the walk,
//!   and its next writer rebuilds the directory when it opens it. `verify` checks a current
//!   one against the segments.
//! - `b"ix"` + bucket (u16 BE) -> the id index, used for idempotent appends: 4096 buckets, each
//!   format byte `1` then (fingerprint u64 BE, seq varint) pairs in order; the fingerprint is
//!   FNV-1a 64 of the id followed by the SplitMix64 finalizer, and the bucket is fingerprint mod
//!   4096. A lookup confirms a fingerprint match against the record's id. Stores of the first
//!   format (one `b"id"` + id key per event) are migrated to buckets when opened.
//! - `b"aux"` + the caller's key -> the caller's value, written only by `Store::append_with` in
//!   the same batch as the events it derives from.
//!
//! Every append writes all its keys with one `sled::Batch` (atomic in sled 0.34, also across a
//! crash) and then flushes sled to disk before reporting success.
//!
//! # Log file
//!
//! `accord.log` holds the sealed segments end to end, each written once and never changed, so
//! the bulk of the log costs no more than its compressed bytes: sled's space overhead, and the
//! time sled takes to open a large file, apply only to the small keys. An append that seals
//! segments writes them at the committed end of the file and `fdatasync`s it *before* applying
//! the sled batch that refers to them (with the new `logend`): until that batch commits, the new
//! bytes belong to no append, and a crash leaves them as garbage past `logend`, which the next
//! writer truncates when it opens the store. Every open checks that the file holds at least
//! `logend` bytes (a shorter or missing file is [`StoreError::Corrupt`]), and every read of a
//! sealed segment checks the CRC-32 of what it reads (the frame table and the frames it
//! decodes), so a damaged byte is reported by any command that reads it, and by
//! [`Store::verify`] (whose hash chain covers the records anyway).
//!
//! # Head sidecar: detecting a lost tail
//!
//! sled recovers to the last state it can read back, silently: a `db` file that was truncated,
//! partly overwritten at its end or replaced by an older copy opens as a shorter but perfectly
//! consistent log, and the hash chain cannot tell, since every prefix of a chain is a valid
//! chain. So the store keeps a second, independent record of what it has acknowledged:
//!
//! - `accord.head` in the store directory holds one line, `SEQ:HASH\n` (decimal seq, 64
//!   lowercase hex digits), naming the head of the last append that succeeded.
//! - It is written only after the append's `flush` returned, by writing `accord.head.tmp`,
//!   fsyncing it, renaming it over `accord.head` and fsyncing the directory, so it is always
//!   either the old line or the new one, and never names events sled has not made durable.
//! - Every open (reader or writer) and [`Store::verify`] compare it with sled: a sidecar seq
//!   beyond sled's head ("the store lost acknowledged events: it ends at seq 22 but seq 23
//!   (hash ...) was acknowledged", `seq` = the first lost one), or a different hash at that seq
//!   (history rewritten or replaced), is [`StoreError::Corrupt`]; a sidecar that does not parse
//!   is `Corrupt` too.
//! - A sidecar *behind* sled is normal (a crash between sled's flush and the rename) and so is a
//!   missing one (a new store, or one written before the sidecar existed): both are accepted, and
//!   the next append, even one whose events are all skipped as already recorded, flushes sled
//!   and brings the sidecar up to date. Readers never write it.
//!
//! What it cannot detect: losing the sidecar together with sled's tail (e.g. the whole
//! directory restored from an old backup), and losses that happen between sled's flush and the
//! sidecar's rename. `accord head` / `verify --expect-head` cover the first case for anyone who
//! wrote a head down elsewhere.

mod backend;
mod codec;
mod error;
pub mod pg;
mod store;

pub use backend::{
    open, open_with, settle, Access, Backend, EmptyLog, RecordIter, Snapshot, Transaction,
};
pub use error::StoreError;
pub use store::{AuxEntries, AuxWrite, EmbeddedRead, EmbeddedWrite, Opening, Records, Store};

/// A frame of a sealed segment stops taking records once its plain bytes would pass this (a
/// larger record gets a frame of its own).
pub const FRAME_MAX_BYTES: usize = codec::FRAME_MAX_BYTES;

/// Most records one segment holds.
pub const SEGMENT_MAX_EVENTS: u32 = 1024;
/// A segment stops taking records once its encoding reaches about this many bytes (a single
/// record larger than this still gets a segment of its own).
pub const SEGMENT_MAX_BYTES: usize = 32 * 1024;

/// One stored event with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    /// When the store recorded the event, see [`recorded_string`].
    pub recorded: String,
    pub hash: [u8; 32],
    pub id: String,
    pub body: Vec<u8>,
}

impl Record {
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// The last record of the log: its seq, hash and recorded time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
    pub recorded: String,
}

impl Head {
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// An event to append: the caller's id and canonical body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub body: &'a [u8],
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Events that got a new seq.
    pub appended: u64,
    /// Events whose id was already recorded (or repeated in the batch) with identical body.
    pub skipped: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The head after the append (unchanged if nothing was appended; None for an empty log).
    pub head: Option<Head>,
}

/// The store's text form of a recording time: RFC 3339 in UTC with exactly six fractional
/// digits and a `Z`, e.g. `2026-11-28T10:00:00.123456Z`. Sub-microsecond digits are dropped.
pub fn recorded_string(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
