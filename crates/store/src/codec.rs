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
pub(crate) const ID_PREFIX: &[u8] = b"id";
/// Key of the head record.
pub(crate) const META_KEY: &[u8] = b"meta";

/// Format byte at the start of every segment value, so a future layout can be told apart.
const SEGMENT_FORMAT: u8 = 1;
/// Format byte at the start of the head value.
const META_FORMAT: u8 = 1;
/// Format byte + record count (u32 big-endian). The count is fixed-width so that a tail segment
/// can be extended by appending bytes and patching the count in place.
pub(crate) const SEGMENT_HEADER_LEN: usize = 5;
/// The smallest possible encoded record: three one-byte lengths and the 32-byte hash.
const MIN_RECORD_LEN: usize = 1 + 32 + 1 + 1;

pub(crate) fn seg_key(first_seq: u64) -> [u8; 11] {
    let mut key = [0u8; 11];
    key[..3].copy_from_slice(SEG_PREFIX);
    key[3..].copy_from_slice(&first_seq.to_be_bytes());
    key
}

/// The first seq named by a segment key, or None when the key is not a well-formed segment key.
pub(crate) fn parse_seg_key(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(SEG_PREFIX)?;
    let bytes: [u8; 8] = rest.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

pub(crate) fn id_key(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(ID_PREFIX.len() + id.len());
    key.extend_from_slice(ID_PREFIX);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The hash of record `seq`, chained to the previous record's hash; the layout is documented
/// in the crate docs and must never change for existing stores.
///
/// The caller guarantees that `recorded` and `id` fit a u32 length (checked when appending and
/// when decoding); a longer value would be a bug, so it saturates rather than panicking, which
/// can only make the hash disagree, never crash.
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

/// Reads the record count of a segment without decoding its records.
pub(crate) fn segment_count(first_seq: u64, bytes: &[u8]) -> Result<u32, StoreError> {
    let mut r = Reader::new(bytes);
    let format = r
        .u8()
        .map_err(|e| StoreError::corrupt(Some(first_seq), e))?;
    if format != SEGMENT_FORMAT {
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

/// Decodes every record of the segment whose key names `first_seq`. Seqs are implicit
/// (`first_seq + index`); continuity between segments is the caller's check.
pub(crate) fn decode_segment(first_seq: u64, bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
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
    let mut previous_recorded: Option<String> = None;
    for index in 0..u64::from(count) {
        let seq = first_seq.checked_add(index).ok_or_else(|| {
            StoreError::corrupt(Some(first_seq), "segment runs past the largest seq")
        })?;
        let bad = |e: String| StoreError::corrupt(Some(seq), e);
        let recorded = r.str_field("recorded").map_err(bad)?;
        let recorded = if recorded.is_empty() {
            previous_recorded.clone().ok_or_else(|| {
                bad("first record of a segment repeats a missing timestamp".into())
            })?
        } else {
            recorded.to_owned()
        };
        if u32::try_from(recorded.len()).is_err() {
            return Err(bad("recorded is longer than u32".into()));
        }
        let hash = r.array::<32>().map_err(bad)?;
        let id = r.str_field("id").map_err(bad)?;
        if u32::try_from(id.len()).is_err() {
            return Err(bad("id is longer than u32".into()));
        }
        let body = r.bytes_field().map_err(bad)?;
        previous_recorded = Some(recorded.clone());
        out.push(Record {
            seq,
            recorded,
            hash,
            id: id.to_owned(),
            body: body.to_vec(),
        });
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
pub(crate) fn decode_index_seq(id: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::corrupt(
            None,
            format!("id index entry for {id:?} is {} bytes, not 8", bytes.len()),
        )
    })?;
    Ok(u64::from_be_bytes(arr))
}

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

    #[test]
    fn seg_keys_sort_in_seq_order() {
        assert!(seg_key(255) < seg_key(256));
        assert_eq!(parse_seg_key(&seg_key(42)), Some(42));
        assert_eq!(parse_seg_key(b"seg123"), None);
    }
}
