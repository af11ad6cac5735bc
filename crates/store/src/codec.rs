//! Byte layout of the log: sled keys, the segment encoding, the head record and the hash chain.
//! It deliberately knows nothing about sled handles, files or locking: it turns values into
//! bytes and back, and answers bytes that do not decode with `StoreError::Corrupt`, never a panic.

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::Record;

/// Prefix of segment keys; the rest of the key is the first seq as u64 big-endian, so sled's
/// byte order is seq order.
pub(crate) const SEG_PREFIX: &[u8] = b"seg";
/// Prefix of id-index keys; the rest of the key is the id's UTF-8 bytes.
/// Id index buckets (`ix` + bucket u16 BE).
pub(crate) const ID_PREFIX: &[u8] = b"ix";
/// The id index of format-1 stores: one key per event (`id` + id), migrated on open.
pub(crate) const LEGACY_ID_PREFIX: &[u8] = b"id";
/// Keys that belong to callers (`Store::append_with` and the cache methods).
pub(crate) const AUX_PREFIX: &[u8] = b"aux";
/// Key of the head record.
pub(crate) const META_KEY: &[u8] = b"meta";

/// Format byte at the start of every segment value, so a future layout can be told apart.
/// A plain segment; still read, and the in-memory form of a segment being built.
const SEGMENT_FORMAT: u8 = 1;
/// A segment whose records are LZ4-compressed (see `compress_segment`); what appends write.
const SEGMENT_FORMAT_LZ4: u8 = 2;
/// A sealed segment kept in the log file (`accord.log`): the value in sled is only where its
/// bytes are (see `encode_pointer`); the bytes there are a format-2 segment.
pub(crate) const SEGMENT_FORMAT_FILE: u8 = 3;
/// A sealed segment kept in the log file as *frames* (what appends write since this format):
/// runs of consecutive records of about [`FRAME_MAX_BYTES`] plain bytes, each its own LZ4 block
/// with its own CRC-32, so that reading one record decompresses and checks one frame, not the
/// whole segment. In the file, a table of the frames comes first (see `frame_segment`); the
/// value in sled only says where (see `encode_framed_pointer`).
pub(crate) const SEGMENT_FORMAT_FRAMED: u8 = 4;
/// A frame stops taking records once its plain bytes would pass this (a record larger than
/// this still gets a frame of its own).
pub(crate) const FRAME_MAX_BYTES: usize = 2048;
/// The LZ4 dictionary of every frame: text common in the bodies accord stores (the event
/// format's field names and types, in canonical key order) and in recorded times. A frame is
/// too small to hold many repeats of its own, and without these a framed log took 103 instead
/// of 91 MB at 1M events (one LZ4 block per segment: 79 MB). Part of the format: frames
/// decode only with these exact bytes, so changing them needs a new format byte (a test pins
/// their checksum).
pub(crate) const FRAME_DICTIONARY: &[u8] = concat!(
    r#"{"effective":"2025-01-01","id":"","kind":"corporation","name":"","party":"","type":"party_registered"}"#,
    r#"{"amount":{"amount":"","currency":"USD"},"effective":"2025-01-01","id":"","obligation":"","reference":"","type":"obligation_settled"}"#,
    r#"{"amount":{"amount":"","currency":"EUR"},"effective":"2025-01-01","id":"","obligation":"","reference":"","type":"obligation_settled"}"#,
    r#"{"effective":"2025-01-01","from":"","id":"","issuer":"","to":"","type":"shares_transferred","units":""}"#,
    r#"{"effective":"2025-01-01","id":"","reason":"","reverses":"","type":"event_reversed"}"#,
    r#"{"effective":"2025-01-01","entity":"","id":"","post_money":{"amount":"","currency":"USD"},"type":"valuation_recorded"}"#,
    r#"{"amount":{"amount":"","currency":"USD"},"due":"","effective":"2025-01-01","id":"","kind":"funding_commitment","obligation":"","obligee":"","obligor":"","type":"obligation_incurred"}"#,
    r#"{"amount":{"amount":"","currency":"USD"},"effective":"2025-01-01","id":"","investor":"","issuer":"","type":"investment_made"}"#,
    r#"{"effective":"2025-01-01","holder":"","id":"","issuer":"","type":"shares_issued","units":""}"#,
    r#"{"effective":"2025-01-01","grantee":"","grantor":"","id":"","kind":"revenue_share","right":"","type":"right_granted"}"#,
    r#"{"effective":"2025-01-01","id":"","right":"","type":"right_ended"}"#,
    r#"{"effective":"2025-01-01","id":"","obligation":"","type":"obligation_released"}"#,
    r#"{"amount":{"amount":"","currency":"USD"},"effective":"2025-01-01","id":"","obligation":"","type":"obligation_amended"}"#,
    "2026-12-01T00:00:00.000000Z",
)
.as_bytes();
/// Length of a framed segment's value: format, count, offset, length, table length, CRC-32.
const FRAMED_POINTER_LEN: usize = SEGMENT_HEADER_LEN + 8 + 4 + 4 + 4;
/// Length of a file segment's value: format, count, offset, length, CRC-32.
const POINTER_LEN: usize = SEGMENT_HEADER_LEN + 8 + 4 + 4;
/// A segment in the log file is never larger than this (a bigger length is damage, and must not
/// become a huge allocation).
pub(crate) const FILE_SEGMENT_MAX: u64 = 1 << 30;
/// Prefix of the segment directory's chunks; the rest of the key is the first seq of the
/// chunk's first segment (u64 BE). See `encode_directory`.
pub(crate) const DIR_PREFIX: &[u8] = b"sdx";
/// Just past every directory chunk key.
pub(crate) const DIR_END: &[u8] = b"sdy";
/// Key of the seq the segment directory ends at (u64 BE): the first seq of the last segment,
/// which it does not list. The directory is current only while that is the last segment.
pub(crate) const DIR_END_KEY: &[u8] = b"sdend";
/// Segments listed per directory chunk.
pub(crate) const DIR_CHUNK: usize = 512;
/// Key of the log file's committed length (u64 BE): bytes past it belong to no append.
pub(crate) const LOG_END_KEY: &[u8] = b"logend";
/// Format byte at the start of the head value.
const META_FORMAT: u8 = 1;
/// Format byte + record count (u32 big-endian). The count is fixed-width so that a tail segment
/// can be extended by appending bytes and patching the count in place.
pub(crate) const SEGMENT_HEADER_LEN: usize = 5;
/// The smallest possible encoded record: three one-byte lengths and the 32-byte hash.
const MIN_RECORD_LEN: usize = 1 + 32 + 1 + 1;

pub(crate) fn seg_key(first_seq: u64) -> [u8; 11] {
    seq_key(SEG_PREFIX, first_seq)
}

/// The key of the directory chunk whose first segment starts at `first_seq`.
pub(crate) fn dir_key(first_seq: u64) -> [u8; 11] {
    seq_key(DIR_PREFIX, first_seq)
}

/// A three-byte `prefix` and then `seq` (u64 BE), so that key order is seq order.
fn seq_key(prefix: &[u8], seq: u64) -> [u8; 11] {
    let mut key = [0u8; 11];
    key[..3].copy_from_slice(prefix);
    key[3..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The seq of a `seq_key` under `prefix`, or None when the key is not one.
fn parse_seq_key(prefix: &[u8], key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(prefix)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// The first seq named by a directory chunk key.
pub(crate) fn parse_dir_key(key: &[u8]) -> Option<u64> {
    parse_seq_key(DIR_PREFIX, key)
}

/// One segment the directory lists: its first seq and its sled value when that names bytes in
/// the log file, or nothing when the segment is in sled itself (a full segment that was never
/// sealed, or one written before the log file existed).
pub(crate) type DirEntry = (u64, Option<Vec<u8>>);

/// The directory's entry for the segment `first` whose sled value is `value`.
pub(crate) fn dir_entry(first: u64, value: &[u8]) -> Result<DirEntry, StoreError> {
    Ok((first, decode_pointer(first, value)?.map(|_| value.to_vec())))
}

/// The directory chunks listing `entries` (in seq order, chunk after chunk from the first),
/// as (key, value) pairs.
pub(crate) fn directory_chunks(
    entries: &[DirEntry],
) -> impl Iterator<Item = ([u8; 11], Vec<u8>)> + '_ {
    entries
        .chunks(DIR_CHUNK)
        .map(|chunk| (dir_key(chunk[0].0), encode_directory(chunk)))
}

/// A directory chunk: format byte `1`, then per segment the difference between its first seq
/// and the previous one's (varint; for the first, from the chunk key's seq, so 0), and the
/// length (varint, 0 for a segment in sled) and bytes of its sled value.
pub(crate) fn encode_directory(entries: &[DirEntry]) -> Vec<u8> {
    let mut out = vec![1u8];
    let mut previous = entries.first().map_or(0, |e| e.0);
    for (first, value) in entries {
        put_varint(&mut out, first - previous);
        previous = *first;
        let value = value.as_deref().unwrap_or_default();
        put_varint(&mut out, value.len() as u64);
        out.extend_from_slice(value);
    }
    out
}

/// The entries of the directory chunk stored under `dir_key(first_seq)`.
pub(crate) fn decode_directory(first_seq: u64, bytes: &[u8]) -> Result<Vec<DirEntry>, StoreError> {
    let bad = |e: String| StoreError::corrupt(Some(first_seq), format!("segment directory: {e}"));
    let mut r = Reader::new(bytes);
    if r.u8().map_err(bad)? != 1 {
        return Err(bad("unknown format".into()));
    }
    let mut out = Vec::new();
    let mut first = first_seq;
    while !r.is_done() {
        let delta = r.varint().map_err(bad)?;
        if !out.is_empty() && delta == 0 {
            return Err(bad("two entries for one segment".into()));
        }
        first = first
            .checked_add(delta)
            .ok_or_else(|| bad("a segment past the largest seq".into()))?;
        let value = r.bytes_field().map_err(bad)?;
        out.push((first, (!value.is_empty()).then(|| value.to_vec())));
    }
    if out.first().is_none_or(|e| e.0 != first_seq) {
        return Err(bad("a chunk that does not start at its key".into()));
    }
    Ok(out)
}

/// The first seq named by a segment key, or None when the key is not a well-formed segment key.
pub(crate) fn parse_seg_key(key: &[u8]) -> Option<u64> {
    parse_seq_key(SEG_PREFIX, key)
}

/// Buckets of the id index: a store holds `ID_BUCKETS` keys for its ids however many events
/// it has, instead of one sled key per event.
pub(crate) const ID_BUCKETS: u64 = 4096;

/// A 64-bit fingerprint of an id: FNV-1a, then the SplitMix64 finalizer to spread it over all
/// bits. Stable forever: it is part of the on-disk format.
pub(crate) fn id_fingerprint(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

pub(crate) fn id_bucket(fingerprint: u64) -> u16 {
    (fingerprint % ID_BUCKETS) as u16
}

pub(crate) fn id_bucket_key(bucket: u16) -> [u8; 4] {
    let mut key = [0u8; 4];
    key[..2].copy_from_slice(ID_PREFIX);
    key[2..].copy_from_slice(&bucket.to_be_bytes());
    key
}

pub(crate) fn parse_id_bucket_key(key: &[u8]) -> Option<u16> {
    let rest = key.strip_prefix(ID_PREFIX)?;
    Some(u16::from_be_bytes(rest.try_into().ok()?))
}

/// A bucket of the id index: format byte `1`, then (fingerprint u64 BE, seq varint) pairs
/// sorted by fingerprint then seq. Ids themselves are not repeated here: a lookup confirms a
/// fingerprint match against the record it points at.
pub(crate) fn encode_id_bucket(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + entries.len() * 12);
    buf.push(1);
    for (fp, seq) in entries {
        buf.extend_from_slice(&fp.to_be_bytes());
        put_varint(&mut buf, *seq);
    }
    buf
}

pub(crate) fn decode_id_bucket(bucket: u16, bytes: &[u8]) -> Result<Vec<(u64, u64)>, StoreError> {
    let bad = |e: String| StoreError::corrupt(None, format!("id index bucket {bucket}: {e}"));
    let mut r = Reader::new(bytes);
    let format = r.u8().map_err(bad)?;
    if format != 1 {
        return Err(bad(format!("unknown format {format}")));
    }
    let mut out = Vec::with_capacity(r.remaining() / 9);
    while !r.is_done() {
        let fp = u64::from_be_bytes(r.array::<8>().map_err(bad)?);
        let seq = r.varint().map_err(bad)?;
        if id_bucket(fp) != bucket {
            return Err(bad(format!(
                "fingerprint {fp:016x} belongs to another bucket"
            )));
        }
        out.push((fp, seq));
    }
    if out.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("entries out of order".into()));
    }
    Ok(out)
}

pub(crate) fn chain_hash(
    prev: &[u8; 32],
    seq: u64,
    recorded: &str,
    id: &str,
    body: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(
        u32::try_from(recorded.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    h.update(recorded.as_bytes());
    h.update(u32::try_from(id.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(id.as_bytes());
    h.update((body.len() as u64).to_be_bytes());
    h.update(body);
    h.finalize().into()
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A cursor over stored bytes that reports short or malformed input as an error message
/// instead of panicking; the caller attaches the seq.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn is_done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "needs {n} bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let low = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && low > 1 {
                return Err("varint overflows u64".into());
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    /// A length-prefixed byte string; the length is checked against what is left before
    /// anything is allocated, so a corrupt length cannot trigger a huge allocation.
    fn bytes_field(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| format!("length {len} does not fit memory"))?;
        self.take(len)
    }

    fn str_field(&mut self, what: &str) -> Result<&'a str, String> {
        let bytes = self.bytes_field()?;
        std::str::from_utf8(bytes).map_err(|e| format!("{what} is not UTF-8: {e}"))
    }
}

/// Appends one record to a segment buffer. `recorded` is written as an empty string when it
/// equals the previous record's in the same segment, since a batch shares one timestamp.
pub(crate) fn encode_record(
    buf: &mut Vec<u8>,
    same_recorded_as_previous: bool,
    recorded: &str,
    hash: &[u8; 32],
    id: &str,
    body: &[u8],
) {
    if same_recorded_as_previous {
        put_varint(buf, 0);
    } else {
        put_varint(buf, recorded.len() as u64);
        buf.extend_from_slice(recorded.as_bytes());
    }
    buf.extend_from_slice(hash);
    put_varint(buf, id.len() as u64);
    buf.extend_from_slice(id.as_bytes());
    put_varint(buf, body.len() as u64);
    buf.extend_from_slice(body);
}

/// Upper bound of `encode_record`'s output, used to decide when a segment is full.
pub(crate) fn encoded_record_len(recorded: &str, id: &str, body: &[u8]) -> usize {
    10 + recorded.len() + 32 + 10 + id.len() + 10 + body.len()
}

pub(crate) fn segment_header(count: u32) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    out[0] = SEGMENT_FORMAT;
    out[1..].copy_from_slice(&count.to_be_bytes());
    out
}

/// Compresses a plain segment (format 1: header then records) into the stored form, format 2:
/// format byte `2`, record count (u32 BE), then the records as one LZ4 block with its
/// decompressed length prepended (u32 LE). Consecutive events share ids, field names and
/// dates, so a segment shrinks about threefold; hashes are over the plain bytes and do not
/// depend on this.
pub(crate) fn compress_segment(plain: &[u8]) -> Vec<u8> {
    let (header, records) = plain.split_at(SEGMENT_HEADER_LEN.min(plain.len()));
    let mut out = Vec::with_capacity(SEGMENT_HEADER_LEN + records.len() / 2 + 16);
    out.push(SEGMENT_FORMAT_LZ4);
    out.extend_from_slice(&header[1..]);
    out.extend_from_slice(&lz4_flex::block::compress_prepend_size(records));
    out
}

/// The plain form (format 1) of a segment stored in sled, in either of its formats.
pub(crate) fn plain_segment(
    first_seq: u64,
    bytes: &[u8],
) -> Result<std::borrow::Cow<'_, [u8]>, StoreError> {
    let bad = |e: String| StoreError::corrupt(Some(first_seq), e);
    let mut r = Reader::new(bytes);
    let format = r.u8().map_err(bad)?;
    let count = r.array::<4>().map_err(bad)?;
    match format {
        SEGMENT_FORMAT => Ok(std::borrow::Cow::Borrowed(bytes)),
        SEGMENT_FORMAT_LZ4 => {
            let size = u32::from_le_bytes(r.array::<4>().map_err(bad)?) as usize;
            let block = &bytes[SEGMENT_HEADER_LEN + 4..];
            // LZ4 expands at most about 255-fold: a larger claimed size is damage, and must
            // not become a huge allocation.
            if size > block.len().saturating_mul(255).saturating_add(16) {
                return Err(bad(format!(
                    "compressed segment claims {size} bytes from {} stored",
                    block.len()
                )));
            }
            let mut out = Vec::with_capacity(SEGMENT_HEADER_LEN + size);
            out.push(SEGMENT_FORMAT);
            out.extend_from_slice(&count);
            out.resize(SEGMENT_HEADER_LEN + size, 0);
            let written =
                lz4_flex::block::decompress_into(block, &mut out[SEGMENT_HEADER_LEN..])
                    .map_err(|e| bad(format!("compressed segment does not decompress: {e}")))?;
            if written != size {
                return Err(bad(format!(
                    "compressed segment holds {written} bytes, not the {size} it claims"
                )));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        other => Err(bad(format!("unknown segment format {other}"))),
    }
}

/// Where a sealed segment's bytes are in the log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileSegment {
    pub(crate) count: u32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    /// The CRC-32 of all its bytes (a format-3 segment), or of its frame table (a framed one).
    pub(crate) crc: u32,
    /// The length of its frame table, the first bytes of a framed segment; `None` for a
    /// format-3 segment (one LZ4 block).
    pub(crate) table: Option<u64>,
}

/// One frame of a framed segment: consecutive records compressed on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The index in its segment of its first record.
    pub(crate) first: u32,
    pub(crate) count: u32,
    /// Where its bytes start, counted from the segment's first byte (its table's).
    pub(crate) at: u64,
    pub(crate) len: u64,
    pub(crate) crc: u32,
}

impl Frame {
    /// Whether the frame of a segment starting at `first_seq` holds `seq`.
    pub(crate) fn holds(&self, first_seq: u64, seq: u64) -> bool {
        let start = first_seq + u64::from(self.first);
        (start..start + u64::from(self.count)).contains(&seq)
    }
}

/// A plain segment (format 1, `plain`) cut into frames: the bytes to store and the length of
/// their table. The bytes are the table, then the frames end to end. The table holds, per
/// frame, its record count (varint), its length (varint) and the CRC-32 of its bytes (u32
/// BE). Each frame is an LZ4 block (decompressed length prepended, u32 LE) of whole records,
/// and its first record always spells out its recorded time, so a frame decodes without the
/// records before it. The records' bytes are otherwise unchanged (hashes never cover stored
/// bytes anyway).
pub(crate) fn frame_segment(first_seq: u64, plain: &[u8]) -> Result<(Vec<u8>, usize), StoreError> {
    let bad = |seq: u64, e: String| StoreError::corrupt(Some(seq), e);
    if plain.first() != Some(&SEGMENT_FORMAT) {
        return Err(bad(first_seq, "only a plain segment can be framed".into()));
    }
    let count = segment_count(first_seq, plain)?;
    let mut r = Reader::new(plain);
    r.pos = SEGMENT_HEADER_LEN;
    let mut stored = Vec::with_capacity(plain.len() / 2);
    let mut frames = Vec::new();
    let mut records = Vec::with_capacity(FRAME_MAX_BYTES + 256);
    let (mut frame_first, mut in_frame) = (0u32, 0u32);
    let mut previous: Option<&[u8]> = None;
    for index in 0..count {
        let seq = first_seq.saturating_add(u64::from(index));
        let start = r.pos;
        let recorded = r.bytes_field().map_err(|e| bad(seq, e))?;
        let rest = r.pos;
        r.take(32).map_err(|e| bad(seq, e))?;
        r.bytes_field().map_err(|e| bad(seq, e))?;
        r.bytes_field().map_err(|e| bad(seq, e))?;
        let end = r.pos;
        let spelled = if recorded.is_empty() {
            previous.ok_or_else(|| {
                bad(
                    seq,
                    "first record of a segment repeats a missing timestamp".into(),
                )
            })?
        } else {
            recorded
        };
        previous = Some(spelled);
        if in_frame > 0 && records.len() + (end - start) + spelled.len() > FRAME_MAX_BYTES {
            push_frame(&mut stored, &mut frames, &records, frame_first, in_frame);
            records.clear();
            (frame_first, in_frame) = (index, 0);
        }
        if in_frame == 0 && recorded.is_empty() {
            put_varint(&mut records, spelled.len() as u64);
            records.extend_from_slice(spelled);
            records.extend_from_slice(&plain[rest..end]);
        } else {
            records.extend_from_slice(&plain[start..end]);
        }
        in_frame += 1;
    }
    if !r.is_done() {
        let last = first_seq.saturating_add(u64::from(count.max(1) - 1));
        return Err(bad(
            last,
            format!("{} stray bytes after the last record", r.remaining()),
        ));
    }
    if in_frame > 0 {
        push_frame(&mut stored, &mut frames, &records, frame_first, in_frame);
    }
    let mut out = Vec::with_capacity(frames.len() * 8 + stored.len());
    for f in &frames {
        put_varint(&mut out, u64::from(f.count));
        put_varint(&mut out, f.len);
        out.extend_from_slice(&f.crc.to_be_bytes());
    }
    let table = out.len();
    out.extend_from_slice(&stored);
    Ok((out, table))
}

fn push_frame(
    stored: &mut Vec<u8>,
    frames: &mut Vec<Frame>,
    records: &[u8],
    first: u32,
    count: u32,
) {
    let block = lz4_flex::block::compress_prepend_size_with_dict(records, FRAME_DICTIONARY);
    frames.push(Frame {
        first,
        count,
        at: stored.len() as u64,
        len: block.len() as u64,
        crc: crc32fast::hash(&block),
    });
    stored.extend_from_slice(&block);
}

/// The sled value of a framed segment of `count` records whose bytes (`stored`, from
/// `frame_segment`, its first `table` bytes the frame table) are at `offset` in the log file:
/// format byte `4`, count (u32 BE), offset (u64 BE), length (u32 BE), the table's length (u32
/// BE) and the table's CRC-32 (u32 BE): 25 bytes, about as small as a format-3 value (21), so
/// that sled's segment keys take no more room than before.
pub(crate) fn encode_framed_pointer(
    count: u32,
    offset: u64,
    stored: &[u8],
    table: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAMED_POINTER_LEN);
    out.push(SEGMENT_FORMAT_FRAMED);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(stored.len() as u32).to_be_bytes());
    out.extend_from_slice(&(table as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&stored[..table]).to_be_bytes());
    out
}

/// The frames of the framed segment `at` (of the segment `first_seq`), from its table's
/// bytes, checked against the table's CRC-32 and against the segment's count and length.
pub(crate) fn frame_table(
    first_seq: u64,
    at: &FileSegment,
    table: &[u8],
) -> Result<Vec<Frame>, StoreError> {
    let bad = |e: String| StoreError::corrupt(Some(first_seq), e);
    if crc32fast::hash(table) != at.crc {
        return Err(bad(format!(
            "the frame table at byte {} of the log file does not match its checksum",
            at.offset
        )));
    }
    let count = at.count;
    let mut r = Reader::new(table);
    let (mut first, mut pos) = (0u32, table.len() as u64);
    let mut frames = Vec::new();
    while !r.is_done() {
        let n = r.varint().map_err(bad)?;
        let size = r.varint().map_err(bad)?;
        let crc = u32::from_be_bytes(r.array::<4>().map_err(bad)?);
        let n = u32::try_from(n)
            .ok()
            .filter(|n| *n > 0 && u64::from(first) + u64::from(*n) <= u64::from(count))
            .ok_or_else(|| bad(format!("a frame entry counts {n} of {count} records")))?;
        if size < 4 || pos.saturating_add(size) > at.len {
            return Err(bad(format!(
                "a frame entry names {size} bytes at {pos} of a {}-byte segment",
                at.len
            )));
        }
        frames.push(Frame {
            first,
            count: n,
            at: pos,
            len: size,
            crc,
        });
        first += n;
        pos += size;
    }
    if first != count || pos != at.len {
        return Err(bad(format!(
            "the frames hold {first} records in {pos} bytes, the segment {count} in {}",
            at.len
        )));
    }
    Ok(frames)
}

/// The plain form (format 1, `count` records starting at the frame's first record) of one
/// frame of the segment `first_seq`, from its stored `bytes`, checked against its CRC-32,
/// written into `out` (whatever it held is dropped; its capacity is reused).
pub(crate) fn frame_plain(
    first_seq: u64,
    at: &FileSegment,
    frame: &Frame,
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let seq = first_seq.saturating_add(u64::from(frame.first));
    let bad = |e: String| StoreError::corrupt(Some(seq), e);
    if crc32fast::hash(bytes) != frame.crc {
        return Err(bad(format!(
            "the frame at byte {} of the log file does not match its checksum",
            at.offset + frame.at
        )));
    }
    let size = u32::from_le_bytes(
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("a frame is shorter than its length".into()))?,
    ) as usize;
    let block = &bytes[4..];
    if size > block.len().saturating_mul(255).saturating_add(16) {
        return Err(bad(format!(
            "a frame claims {size} bytes from {} stored",
            block.len()
        )));
    }
    out.clear();
    out.push(SEGMENT_FORMAT);
    out.extend_from_slice(&frame.count.to_be_bytes());
    out.resize(SEGMENT_HEADER_LEN + size, 0);
    let written = lz4_flex::block::decompress_into_with_dict(
        block,
        &mut out[SEGMENT_HEADER_LEN..],
        FRAME_DICTIONARY,
    )
    .map_err(|e| bad(format!("a frame does not decompress: {e}")))?;
    if written != size {
        return Err(bad(format!(
            "a frame holds {written} bytes, not the {size} it claims"
        )));
    }
    Ok(())
}

/// The sled value of a segment whose bytes (`stored`, a format-2 segment of `count` records) are
/// at `offset` in the log file (what appends wrote before segments were framed; still read): format byte `3`, count (u32 BE), offset (u64 BE), length (u32
/// BE), CRC-32 of the bytes (u32 BE).
#[cfg(test)]
pub(crate) fn encode_pointer(count: u32, offset: u64, stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(POINTER_LEN);
    out.push(SEGMENT_FORMAT_FILE);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(stored.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(stored).to_be_bytes());
    out
}

/// The file segment a sled value names, or None for a segment stored in sled itself: a
/// format-3 value (count, offset, length, CRC-32 of the bytes) or a framed one (count, offset,
/// length, table length, CRC-32 of the table).
pub(crate) fn decode_pointer(
    first_seq: u64,
    value: &[u8],
) -> Result<Option<FileSegment>, StoreError> {
    let framed = match value.first() {
        Some(&SEGMENT_FORMAT_FILE) => false,
        Some(&SEGMENT_FORMAT_FRAMED) => true,
        _ => return Ok(None),
    };
    let bad = |e: String| StoreError::corrupt(Some(first_seq), e);
    let want = if framed {
        FRAMED_POINTER_LEN
    } else {
        POINTER_LEN
    };
    if value.len() != want {
        return Err(bad(format!(
            "a log file segment entry is {} bytes, not {want}",
            value.len()
        )));
    }
    let mut r = Reader::new(value);
    r.pos = 1;
    let count = u32::from_be_bytes(r.array::<4>().map_err(bad)?);
    let offset = u64::from_be_bytes(r.array::<8>().map_err(bad)?);
    let len = u64::from(u32::from_be_bytes(r.array::<4>().map_err(bad)?));
    let table = match framed {
        true => Some(u64::from(u32::from_be_bytes(r.array::<4>().map_err(bad)?))),
        false => None,
    };
    let crc = u32::from_be_bytes(r.array::<4>().map_err(bad)?);
    let bad_table = table.is_some_and(|t| count == 0 || t == 0 || t >= len);
    if bad_table || len > FILE_SEGMENT_MAX || offset.checked_add(len).is_none() {
        return Err(bad(format!(
            "a log file segment entry names {count} records in {len} bytes at {offset}{}",
            table.map_or(String::new(), |t| format!(", {t} of them its table"))
        )));
    }
    Ok(Some(FileSegment {
        count,
        offset,
        len,
        crc,
        table,
    }))
}

/// Checks bytes read back from the log file against their entry.
pub(crate) fn check_file_segment(
    first_seq: u64,
    at: &FileSegment,
    bytes: &[u8],
) -> Result<(), StoreError> {
    if crc32fast::hash(bytes) != at.crc {
        return Err(StoreError::corrupt(
            Some(first_seq),
            format!(
                "the segment at byte {} of the log file does not match its checksum",
                at.offset
            ),
        ));
    }
    if segment_count(first_seq, bytes)? != at.count {
        return Err(StoreError::corrupt(
            Some(first_seq),
            "the segment in the log file holds another record count than its entry",
        ));
    }
    Ok(())
}

pub(crate) fn segment_count(first_seq: u64, bytes: &[u8]) -> Result<u32, StoreError> {
    let mut r = Reader::new(bytes);
    let format = r
        .u8()
        .map_err(|e| StoreError::corrupt(Some(first_seq), e))?;
    if ![
        SEGMENT_FORMAT,
        SEGMENT_FORMAT_LZ4,
        SEGMENT_FORMAT_FILE,
        SEGMENT_FORMAT_FRAMED,
    ]
    .contains(&format)
    {
        return Err(StoreError::corrupt(
            Some(first_seq),
            format!("unknown segment format {format}"),
        ));
    }
    let count = r
        .array::<4>()
        .map_err(|e| StoreError::corrupt(Some(first_seq), e))?;
    Ok(u32::from_be_bytes(count))
}

/// Every record of a segment stored in sled (format 1 or 2).
#[cfg(test)]
pub(crate) fn decode_segment(first_seq: u64, stored: &[u8]) -> Result<Vec<Record>, StoreError> {
    decode_segment_upto(first_seq, stored, |_| true, u64::MAX)
}

/// The records of a segment stored in sled (format 1 or 2) whose seq `keep` accepts, up to
/// seq `upto`: every record's framing up to there is checked, but only the kept ones are
/// copied out and their text checked as UTF-8 (`verify` keeps every record).
pub(crate) fn decode_segment_upto(
    first_seq: u64,
    stored: &[u8],
    keep: impl Fn(u64) -> bool,
    upto: u64,
) -> Result<Vec<Record>, StoreError> {
    let plain = plain_segment(first_seq, stored)?;
    decode_plain_upto(first_seq, &plain, keep, upto)
}

/// `decode_segment_upto` for a plain segment (format 1): a segment's, or a frame's.
pub(crate) fn decode_plain_upto(
    first_seq: u64,
    bytes: &[u8],
    keep: impl Fn(u64) -> bool,
    upto: u64,
) -> Result<Vec<Record>, StoreError> {
    let count = segment_count(first_seq, bytes)?;
    if count == 0 {
        return Err(StoreError::corrupt(Some(first_seq), "empty segment"));
    }
    let mut r = Reader::new(bytes);
    // The header was validated by segment_count.
    r.pos = SEGMENT_HEADER_LEN;
    // Cap the allocation by what the bytes can possibly hold, so a corrupt count cannot
    // reserve gigabytes.
    let capacity = (count as usize).min(r.remaining() / MIN_RECORD_LEN + 1);
    let mut out: Vec<Record> = Vec::with_capacity(capacity);
    let mut previous_recorded: Option<&[u8]> = None;
    for index in 0..u64::from(count) {
        let seq = first_seq.checked_add(index).ok_or_else(|| {
            StoreError::corrupt(Some(first_seq), "segment runs past the largest seq")
        })?;
        if seq > upto {
            return Ok(out);
        }
        let bad = |e: String| StoreError::corrupt(Some(seq), e);
        let recorded = r.bytes_field().map_err(bad)?;
        let recorded = if recorded.is_empty() {
            previous_recorded.ok_or_else(|| {
                bad("first record of a segment repeats a missing timestamp".into())
            })?
        } else {
            recorded
        };
        if u32::try_from(recorded.len()).is_err() {
            return Err(bad("recorded is longer than u32".into()));
        }
        let hash = r.array::<32>().map_err(bad)?;
        let id = r.bytes_field().map_err(bad)?;
        if u32::try_from(id.len()).is_err() {
            return Err(bad("id is longer than u32".into()));
        }
        let body = r.bytes_field().map_err(bad)?;
        previous_recorded = Some(recorded);
        if keep(seq) {
            let text = |what: &str, b: &[u8]| {
                std::str::from_utf8(b)
                    .map(str::to_owned)
                    .map_err(|e| bad(format!("{what} is not UTF-8: {e}")))
            };
            out.push(Record {
                seq,
                recorded: text("recorded", recorded)?,
                hash,
                id: text("id", id)?,
                body: body.to_vec(),
            });
        }
    }
    if !r.is_done() {
        let last = first_seq.saturating_add(u64::from(count) - 1);
        return Err(StoreError::corrupt(
            Some(last),
            format!("{} stray bytes after the last record", r.remaining()),
        ));
    }
    Ok(out)
}

/// The head as stored under `META_KEY`: format, seq, hash, recorded.
pub(crate) fn encode_head(seq: u64, hash: &[u8; 32], recorded: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + 8 + 32 + 1 + recorded.len());
    buf.push(META_FORMAT);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(hash);
    put_varint(&mut buf, recorded.len() as u64);
    buf.extend_from_slice(recorded.as_bytes());
    buf
}

pub(crate) fn decode_head(bytes: &[u8]) -> Result<(u64, [u8; 32], String), StoreError> {
    let bad = |e: String| StoreError::corrupt(None, format!("head record: {e}"));
    let mut r = Reader::new(bytes);
    let format = r.u8().map_err(bad)?;
    if format != META_FORMAT {
        return Err(bad(format!("unknown head format {format}")));
    }
    let seq = u64::from_be_bytes(r.array::<8>().map_err(bad)?);
    let hash = r.array::<32>().map_err(bad)?;
    let recorded = r.str_field("recorded").map_err(bad)?.to_owned();
    if !r.is_done() {
        return Err(bad("stray bytes after the head".into()));
    }
    Ok((seq, hash, recorded))
}

/// The seq stored in an id-index value.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_edges() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.is_done());
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let buf = [0xffu8; 11];
        assert!(Reader::new(&buf).varint().is_err());
    }

    #[test]
    fn truncated_segments_are_corrupt_not_panics() {
        let mut buf = segment_header(2).to_vec();
        let hash = [7u8; 32];
        encode_record(
            &mut buf,
            false,
            "2026-01-01T00:00:00.000000Z",
            &hash,
            "a",
            b"x",
        );
        encode_record(
            &mut buf,
            true,
            "2026-01-01T00:00:00.000000Z",
            &hash,
            "b",
            b"yy",
        );
        let full = decode_segment(10, &buf).map(|v| v.len());
        assert!(matches!(full, Ok(2)));
        for cut in 0..buf.len() {
            match decode_segment(10, &buf[..cut]) {
                Err(StoreError::Corrupt { seq: Some(s), .. }) => assert!(s == 10 || s == 11),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        // A huge count must not allocate or panic either.
        let mut huge = segment_header(u32::MAX).to_vec();
        huge.extend_from_slice(&buf[SEGMENT_HEADER_LEN..]);
        assert!(decode_segment(1, &huge).is_err());
    }

    /// A plain segment of `count` records from seq 100, a new recorded time every `batch`
    /// records, bodies of varying length.
    fn plain_segment_of(count: u32, batch: u32) -> Vec<u8> {
        let mut buf = segment_header(count).to_vec();
        for i in 0..count {
            let recorded = format!("2026-01-01T00:00:{:02}.000000Z", (i / batch) % 60);
            let body = format!(
                "{{\"n\":{i},\"pad\":\"{}\"}}",
                "x".repeat((i * 37 % 300) as usize)
            );
            encode_record(
                &mut buf,
                i % batch != 0,
                &recorded,
                &[i as u8; 32],
                &format!("event-{i}"),
                body.as_bytes(),
            );
        }
        buf
    }

    /// The records of a framed segment, frame by frame.
    fn read_frames(first: u64, at: &FileSegment, stored: &[u8]) -> Result<Vec<Record>, StoreError> {
        let table = at.table.expect("a framed segment") as usize;
        let mut out = Vec::new();
        let mut plain = Vec::new();
        for f in frame_table(first, at, &stored[..table])? {
            let bytes = &stored[f.at as usize..(f.at + f.len) as usize];
            frame_plain(first, at, &f, bytes, &mut plain)?;
            if f.count > 1 {
                assert!(plain.len() <= SEGMENT_HEADER_LEN + FRAME_MAX_BYTES, "{f:?}");
            }
            let start = first + u64::from(f.first);
            out.extend(decode_plain_upto(start, &plain, |_| true, u64::MAX)?);
        }
        Ok(out)
    }

    #[test]
    fn frames_hold_exactly_the_records_of_the_segment() {
        for (count, batch) in [(1, 1), (7, 3), (300, 1), (300, 1000), (1024, 50)] {
            let plain = plain_segment_of(count, batch);
            let expected = decode_segment(100, &plain).expect("a plain segment decodes");
            let (stored, table) = frame_segment(100, &plain).expect("frames");
            let pointer = encode_framed_pointer(count, 4096, &stored, table);
            let at = decode_pointer(100, &pointer)
                .expect("a framed pointer decodes")
                .expect("it names the log file");
            assert_eq!(
                (at.count, at.offset, at.len),
                (count, 4096, stored.len() as u64)
            );
            let frames = frame_table(100, &at, &stored[..table]).expect("its table");
            assert!(
                count < 50 || frames.len() > 4,
                "{count} records in {} frames",
                frames.len()
            );
            assert_eq!(
                read_frames(100, &at, &stored).expect("frames decode"),
                expected
            );
            // Each frame decodes alone, its first record included.
            for f in &frames {
                let mut plain = Vec::new();
                frame_plain(
                    100,
                    &at,
                    f,
                    &stored[f.at as usize..(f.at + f.len) as usize],
                    &mut plain,
                )
                .expect("one frame");
                let start = 100 + u64::from(f.first);
                let got = decode_plain_upto(start, &plain, |_| true, u64::MAX).expect("decodes");
                assert_eq!(
                    got[..],
                    expected[f.first as usize..(f.first + f.count) as usize]
                );
            }
        }
    }

    #[test]
    fn any_damaged_byte_of_a_framed_segment_is_corrupt_in_it() {
        let plain = plain_segment_of(120, 4);
        let (stored, table) = frame_segment(100, &plain).expect("frames");
        let pointer = encode_framed_pointer(120, 0, &stored, table);
        let at = decode_pointer(100, &pointer)
            .expect("decodes")
            .expect("a file segment");
        for i in 0..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x41;
            match read_frames(100, &at, &bad) {
                Err(StoreError::Corrupt { seq: Some(s), .. }) => assert!((100..220).contains(&s)),
                other => panic!("byte {i}: {other:?}"),
            }
        }
        // A pointer cut short, or with a count or length its table does not add up to, is
        // refused; none panics.
        for cut in 0..pointer.len() {
            assert!(decode_pointer(100, &pointer[..cut]).is_err() || cut == 0);
        }
        for (count, len) in [
            (119, stored.len()),
            (121, stored.len()),
            (120, stored.len() - 1),
        ] {
            let p = encode_framed_pointer(count, 0, &stored[..len], table);
            let wrong = decode_pointer(100, &p)
                .expect("decodes")
                .expect("a file segment");
            assert!(
                read_frames(100, &wrong, &stored[..len]).is_err(),
                "{count} {len}"
            );
        }
    }

    #[test]
    fn the_frame_dictionary_never_changes() {
        // Stored frames decode only with these bytes: a change needs a new format byte.
        assert_eq!(
            (FRAME_DICTIONARY.len(), crc32fast::hash(FRAME_DICTIONARY)),
            (1479, 2_128_998_763)
        );
    }

    #[test]
    fn format_3_pointers_still_decode() {
        let stored = compress_segment(&plain_segment_of(10, 2));
        let pointer = encode_pointer(10, 77, &stored);
        let at = decode_pointer(5, &pointer)
            .expect("decodes")
            .expect("a file segment");
        assert_eq!((at.count, at.offset, at.table), (10, 77, None));
        check_file_segment(5, &at, &stored).expect("the checksum matches");
        assert_eq!(decode_segment(5, &stored).expect("decodes").len(), 10);
    }

    #[test]
    fn seg_keys_sort_in_seq_order() {
        assert!(seg_key(255) < seg_key(256));
        assert_eq!(parse_seg_key(&seg_key(42)), Some(42));
        assert_eq!(parse_seg_key(b"seg123"), None);
    }
}
