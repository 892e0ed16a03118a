//! One record and its headers: the varint-framed form inside a v2 batch.
//!
//! Decoding is zero-copy: keys, values and headers are [`Bytes`] slices of
//! the buffer the batch came in (or of its decompressed records section).
//! Encoding writes straight into the batch buffer from a precomputed size.

use bytes::{BufMut, Bytes, BytesMut};

use super::cursor::SliceReader;
use crate::primitives::{read_varint, take, varint_len, varlong_len, write_varint, write_varlong};
use crate::{DecodeError, EncodeError};

/// The smallest possible encoded record: length, attributes, timestamp
/// delta, offset delta, key length, value length and header count, one byte
/// each. Bounds how many records a buffer can hold, whatever a count claims.
pub(crate) const MIN_RECORD_SIZE: usize = 7;

/// A decoded record, from a v2 batch or a legacy message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The absolute offset: the batch's base offset plus the record's delta.
    pub offset: i64,
    /// Milliseconds since the epoch: create time or, for batches stamped with
    /// log append time, the batch's max timestamp. -1 in magic 0 messages.
    pub timestamp: i64,
    /// The key; `None` for a null key.
    pub key: Option<Bytes>,
    /// The value; `None` for a null value (a tombstone in compacted topics).
    pub value: Option<Bytes>,
    /// The headers, decoded lazily from their wire form.
    pub headers: Headers,
}

/// One record header: a UTF-8 key and nullable bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    key: Bytes,
    value: Option<Bytes>,
}

impl Header {
    /// A header with the given key and value.
    pub fn new(key: impl Into<String>, value: Option<Bytes>) -> Self {
        Self {
            key: Bytes::from(key.into()),
            value,
        }
    }

    /// A header whose key is a static string, without allocating.
    pub fn from_static(key: &'static str, value: Option<Bytes>) -> Self {
        Self {
            key: Bytes::from_static(key.as_bytes()),
            value,
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        // Every constructor and the decoder guarantee UTF-8; the fallback only
        // keeps this infallible without an unchecked conversion.
        std::str::from_utf8(&self.key).unwrap_or_default()
    }

    /// The key as the bytes it was decoded from (a slice of the batch).
    pub fn key_bytes(&self) -> &Bytes {
        &self.key
    }

    /// The value; `None` for null.
    pub fn value(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }

    /// The encoded size of this header inside a record.
    fn encoded_len(&self) -> usize {
        bytes_field_len(Some(&self.key)) + bytes_field_len(self.value.as_deref())
    }
}

/// The headers of a decoded record: their validated wire bytes, so that
/// decoding a record allocates nothing whatever its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `None` for no headers, the common case: then a record holds no third
    /// `Bytes` to build and drop. The count is not kept: headers are rare,
    /// and every decoded record is smaller without it.
    raw: Option<Bytes>,
}

impl Headers {
    /// Validates `count` headers filling exactly `raw`.
    fn parse(raw: Bytes, count: i32) -> Result<Self, DecodeError> {
        if count < 0 || count as usize > raw.len() / 2 {
            return Err(DecodeError::InvalidLength {
                length: i64::from(count),
                remaining: raw.len(),
            });
        }
        let mut cursor = raw.clone();
        for _ in 0..count {
            let key = read_nullable(&mut cursor)?.ok_or(DecodeError::UnexpectedNull {
                field: "Record.headerKey",
            })?;
            std::str::from_utf8(&key).map_err(|_| DecodeError::InvalidUtf8)?;
            read_nullable(&mut cursor)?;
        }
        if !cursor.is_empty() {
            return Err(malformed_record("bytes left after the headers"));
        }
        Ok(Self {
            raw: (!raw.is_empty()).then_some(raw),
        })
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_none()
    }

    /// The headers in wire order.
    pub fn iter(&self) -> HeaderIter {
        HeaderIter {
            cursor: self.raw.clone().unwrap_or_default(),
        }
    }

    /// The value of the last header with this key (Kafka allows repeats; the
    /// last one wins, as in the Java client's `lastHeader`).
    pub fn last(&self, key: &str) -> Option<Header> {
        self.iter().filter(|h| h.key() == key).last()
    }

    /// Collects the headers into owned values.
    pub fn to_vec(&self) -> Vec<Header> {
        self.iter().collect()
    }
}

impl IntoIterator for &Headers {
    type Item = Header;
    type IntoIter = HeaderIter;

    fn into_iter(self) -> HeaderIter {
        self.iter()
    }
}

/// Iterates the headers of a record; they were validated when it was
/// decoded to fill their bytes exactly, so they end where the bytes do.
#[derive(Debug, Clone)]
pub struct HeaderIter {
    cursor: Bytes,
}

impl Iterator for HeaderIter {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        if self.cursor.is_empty() {
            return None;
        }
        // Validated at decode, so these cannot fail; stopping is the safe answer if they did.
        let key = read_nullable(&mut self.cursor).ok().flatten();
        let value = read_nullable(&mut self.cursor);
        match (key, value) {
            (Some(key), Ok(value)) => Some(Header { key, value }),
            _ => {
                self.cursor = Bytes::new();
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Each header takes at least two bytes (two length varints).
        (
            usize::from(!self.cursor.is_empty()),
            Some(self.cursor.len() / 2),
        )
    }
}

fn malformed_record(reason: &str) -> DecodeError {
    DecodeError::Malformed {
        what: "record",
        reason: reason.into(),
    }
}

/// Reads varint-length-prefixed nullable bytes.
#[inline]
fn read_nullable(buf: &mut Bytes) -> Result<Option<Bytes>, DecodeError> {
    let len = read_varint(buf)?;
    if len < 0 {
        if len == -1 {
            return Ok(None);
        }
        return Err(DecodeError::InvalidLength {
            length: i64::from(len),
            remaining: buf.len(),
        });
    }
    take(buf, len as usize).map(Some)
}

/// Decodes the v2 record at `*pos` in `buf` and moves `*pos` past it.
/// `log_append_time` replaces every record's timestamp when the batch says
/// the broker stamped it. Only the fields returned touch `buf`'s refcount.
///
/// Well-formed records with short varints take [`decode_record_fast`]; any
/// other input is decoded again by [`decode_record_checked`], which is what
/// reports the precise error.
#[inline(always)]
pub(crate) fn decode_record(
    buf: &Bytes,
    pos: &mut usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<Record, DecodeError> {
    match decode_record_fast(buf, *pos, base_offset, base_timestamp, log_append_time) {
        Some((record, end)) => {
            *pos = end;
            Ok(record)
        }
        None => decode_record_checked(buf, pos, base_offset, base_timestamp, log_append_time),
    }
}

/// An unsigned varint of at most three bytes at `pos`, and the position
/// after it; `None` for a longer one or the end of `data`. A three-byte
/// varint is within the limits of both the 32- and the 64-bit form, so this
/// reads exactly what [`SliceReader`] reads, where it reads anything.
#[inline(always)]
fn short_varint(data: &[u8], pos: usize) -> Option<(u64, usize)> {
    let b0 = u64::from(*data.get(pos)?);
    if b0 < 0x80 {
        return Some((b0, pos + 1));
    }
    let b1 = u64::from(*data.get(pos + 1)?);
    if b1 < 0x80 {
        return Some(((b0 & 0x7f) | (b1 << 7), pos + 2));
    }
    let b2 = u64::from(*data.get(pos + 2)?);
    if b2 < 0x80 {
        return Some(((b0 & 0x7f) | ((b1 & 0x7f) << 7) | (b2 << 14), pos + 3));
    }
    None
}

/// Zig-zag decoding of a short varint: below 2^21, so any `i32`/`i64` form agrees.
#[inline(always)]
fn unzigzag(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// Nullable bytes with a short length, as the range they take in `data`.
/// `Some(None)` is null; `None` is anything [`decode_record_checked`] must see.
#[inline(always)]
fn short_nullable(data: &[u8], pos: &mut usize) -> Option<Option<std::ops::Range<usize>>> {
    let (raw, at) = short_varint(data, *pos)?;
    let len = unzigzag(raw);
    if len < 0 {
        if len != -1 {
            return None;
        }
        *pos = at;
        return Some(None);
    }
    let end = at + len as usize;
    if end > data.len() {
        return None;
    }
    *pos = end;
    Some(Some(at..end))
}

/// Where the fields of a record are, found by [`scan_record_fast`].
struct FastRecord {
    end: usize,
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<std::ops::Range<usize>>,
    value: Option<std::ops::Range<usize>>,
    headers: Headers,
}

/// The common case of [`decode_record`]: every varint at most three bytes
/// and the record well formed. `None` hands the record to the checked path,
/// never an error of its own, so both paths accept and reject the same input.
#[inline(always)]
fn scan_record_fast(buf: &Bytes, pos: usize) -> Option<FastRecord> {
    let (raw, start) = short_varint(buf, pos)?;
    let len = unzigzag(raw);
    if len < 0 || len as usize > buf.len() - start {
        return None;
    }
    let end = start + len as usize;
    // Every read below stops at the record's end.
    let data = &buf[..end];
    let mut at = start + 1; // attributes: unused in v2 records
    if at > end {
        return None;
    }
    let (timestamp_delta, next) = short_varint(data, at)?;
    let (offset_delta, next) = short_varint(data, next)?;
    at = next;
    let key = short_nullable(data, &mut at)?;
    let value = short_nullable(data, &mut at)?;
    let (header_count, next) = short_varint(data, at)?;
    let headers = if header_count == 0 {
        if next != end {
            return None;
        }
        Headers::default()
    } else {
        let count = i32::try_from(unzigzag(header_count)).ok()?;
        Headers::parse(buf.slice(next..end), count).ok()?
    };
    Some(FastRecord {
        end,
        timestamp_delta: unzigzag(timestamp_delta),
        offset_delta: unzigzag(offset_delta),
        key,
        value,
        headers,
    })
}

impl FastRecord {
    #[inline(always)]
    fn into_record(
        self,
        buf: &Bytes,
        base_offset: i64,
        base_timestamp: i64,
        log_append_time: Option<i64>,
    ) -> Record {
        Record {
            offset: base_offset.wrapping_add(self.offset_delta),
            timestamp: log_append_time.unwrap_or(base_timestamp.wrapping_add(self.timestamp_delta)),
            key: self.key.map(|range| buf.slice(range)),
            value: self.value.map(|range| buf.slice(range)),
            headers: self.headers,
        }
    }
}

/// [`decode_record_fast`] for the records of a whole batch: each record is
/// built in its slot of `out` rather than returned and moved there.
#[inline(always)]
pub(crate) fn decode_record_into(
    buf: &Bytes,
    pos: &mut usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    out: &mut Vec<Record>,
) -> Result<(), DecodeError> {
    match scan_record_fast(buf, *pos) {
        Some(fields) => {
            *pos = fields.end;
            out.push(fields.into_record(buf, base_offset, base_timestamp, log_append_time));
        }
        None => out.push(decode_record_checked(
            buf,
            pos,
            base_offset,
            base_timestamp,
            log_append_time,
        )?),
    }
    Ok(())
}

/// The fast path of [`decode_record`]: the record and the position after it.
#[inline(always)]
fn decode_record_fast(
    buf: &Bytes,
    pos: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Option<(Record, usize)> {
    let fields = scan_record_fast(buf, pos)?;
    let end = fields.end;
    Some((
        fields.into_record(buf, base_offset, base_timestamp, log_append_time),
        end,
    ))
}

/// Decodes the v2 record at `*pos` checking every field: the path that
/// reports what is wrong with a malformed record.
#[inline(never)]
pub(crate) fn decode_record_checked(
    buf: &Bytes,
    pos: &mut usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<Record, DecodeError> {
    let mut reader = SliceReader::new(buf, *pos);
    let len = reader.varint()?;
    if len < 0 || len as usize > reader.remaining() {
        return Err(DecodeError::InvalidLength {
            length: i64::from(len),
            remaining: reader.remaining(),
        });
    }
    let end = reader.pos() + len as usize;
    reader.limit(end);
    let _attributes = reader.u8()?;
    let timestamp_delta = reader.varlong()?;
    let offset_delta = reader.varint()?;
    let key = reader.nullable()?;
    let value = reader.nullable()?;
    let header_count = reader.varint()?;
    let headers = if header_count == 0 {
        if reader.pos() != end {
            return Err(malformed_record("record length does not match its fields"));
        }
        Headers::default()
    } else {
        // The headers run to the end of the record.
        Headers::parse(buf.slice(reader.pos()..end), header_count)?
    };
    *pos = end;
    Ok(Record {
        offset: base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp: log_append_time.unwrap_or(base_timestamp.wrapping_add(timestamp_delta)),
        key: key.map(|range| buf.slice(range)),
        value: value.map(|range| buf.slice(range)),
        headers,
    })
}

/// The encoded size of nullable bytes with a varint length.
#[inline]
fn bytes_field_len(value: Option<&[u8]>) -> usize {
    match value {
        None => 1,
        Some(v) => varint_len(v.len() as i32) + v.len(),
    }
}

/// The size of a record after its length prefix.
#[inline(always)]
pub(crate) fn record_body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> Result<usize, EncodeError> {
    let mut len = 1
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + bytes_field_len(key)
        + bytes_field_len(value)
        + varint_len(headers.len() as i32);
    for header in headers {
        len += header.encoded_len();
    }
    // Every field is part of the sum, so this one check also catches a key,
    // value or header whose own length would not fit its i32 prefix.
    if len > i32::MAX as usize {
        return Err(EncodeError::TooLong { length: len });
    }
    Ok(len)
}

/// The size of a whole record, length prefix included.
#[inline]
pub(crate) fn record_len(body_len: usize) -> usize {
    varint_len(body_len as i32) + body_len
}

/// Appends a record whose body length `record_body_len` computed: the
/// general form, for records with headers or fields too large for
/// [`PackedRecord`].
#[inline]
pub(crate) fn write_record(
    buf: &mut BytesMut,
    body_len: usize,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) {
    buf.reserve(record_len(body_len));
    write_varint(buf, body_len as i32);
    buf.put_u8(0);
    write_varlong(buf, timestamp_delta);
    write_varint(buf, offset_delta);
    put_nullable(buf, key);
    put_nullable(buf, value);
    write_headers(buf, headers);
}

/// A record without headers whose varints all take at most three bytes
/// (lengths and deltas below 2^20): the common case, sized and encoded in one
/// pass with its small fields packed into two words.
///
/// Writing the small fields as eight-byte stores from registers, each cut
/// back to its real length, saves a capacity check per field and the
/// store-forwarding stall of gathering them in memory first.
pub(crate) struct PackedRecord {
    /// Length, attributes and timestamp delta: at most 3 + 1 + 3 bytes.
    first: Packed,
    /// Offset delta, key length and, for a null key, value length.
    second: Packed,
    /// The value length, after a present key.
    tail: Packed,
    record_len: usize,
}

/// Up to eight bytes of encoded fields, little-endian in a word.
#[derive(Clone, Copy)]
struct Packed {
    bits: u64,
    len: u32,
}

impl Packed {
    const EMPTY: Self = Self { bits: 0, len: 0 };

    /// The largest value [`Packed::varint`] takes: three bytes of seven bits.
    const VARINT_MAX: u64 = (1 << 21) - 1;

    /// A zig-zagged varint of at most three bytes (`v <= VARINT_MAX`).
    /// Branches, well predicted in a batch of similar records, beat
    /// computing the length and continuation bits arithmetically.
    #[inline(always)]
    fn varint(v: u64) -> Self {
        debug_assert!(v <= Self::VARINT_MAX);
        if v < 0x80 {
            Self { bits: v, len: 1 }
        } else if v < 0x4000 {
            Self {
                bits: (v & 0x7f) | 0x80 | ((v >> 7) << 8),
                len: 2,
            }
        } else {
            Self {
                bits: (v & 0x7f) | 0x80 | ((((v >> 7) & 0x7f) | 0x80) << 8) | ((v >> 14) << 16),
                len: 3,
            }
        }
    }

    /// `self` followed by `next`. Callers keep the sum within eight bytes:
    /// at most three-byte varints, three at a time, one of them a single byte.
    #[inline(always)]
    fn then(self, next: Self) -> Self {
        Self {
            bits: self.bits | (next.bits << (8 * self.len)),
            len: self.len + next.len,
        }
    }

    /// Appends the packed bytes; the caller reserved eight bytes beyond them.
    #[inline(always)]
    fn put(self, buf: &mut BytesMut) {
        let end = buf.len() + self.len as usize;
        buf.extend_from_slice(&self.bits.to_le_bytes());
        buf.truncate(end);
    }
}

#[inline(always)]
fn zigzag32(value: i32) -> u64 {
    u64::from(((value << 1) ^ (value >> 31)) as u32)
}

#[inline(always)]
fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

impl PackedRecord {
    /// The packed form of a record without headers, or `None` when a field
    /// needs the general path.
    #[inline(always)]
    pub(crate) fn new(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Option<Self> {
        let key_len = key.map_or(0, <[u8]>::len);
        let value_len = value.map_or(0, <[u8]>::len);
        // Keeps the body below 2^20 (its other parts take at most 16 bytes),
        // so its zig-zagged length fits three bytes, and the `as i32` below
        // from wrapping.
        if key_len + value_len >= (1 << 20) - 16 {
            return None;
        }
        let length_of = |v: Option<&[u8]>, len: usize| zigzag32(v.map_or(-1, |_| len as i32));
        let (timestamp, offset) = (zigzag64(timestamp_delta), zigzag32(offset_delta));
        let (key_field, value_field) = (length_of(key, key_len), length_of(value, value_len));
        if (timestamp | offset | key_field | value_field) > Packed::VARINT_MAX {
            return None;
        }
        let timestamp = Packed::varint(timestamp);
        let offset = Packed::varint(offset);
        let key_field = Packed::varint(key_field);
        let value_field = Packed::varint(value_field);
        // Seven bytes at most in each word: a null key's length is one byte.
        let (second, tail) = match key {
            None => (offset.then(key_field).then(value_field), Packed::EMPTY),
            Some(_) => (offset.then(key_field), value_field),
        };
        // Attributes, the fields, the bytes and a header count of 0.
        let body = 1 + timestamp.len + second.len + tail.len + 1;
        let body = body as usize + key_len + value_len;
        let length = Packed::varint(zigzag32(body as i32));
        let first = length.then(Packed { bits: 0, len: 1 }).then(timestamp);
        Some(Self {
            first,
            second,
            tail,
            record_len: length.len as usize + body,
        })
    }

    /// The encoded size, length prefix included.
    #[inline(always)]
    pub(crate) fn record_len(&self) -> usize {
        self.record_len
    }

    /// Appends the record; `key` and `value` are those given to `new`.
    #[inline(always)]
    pub(crate) fn write(&self, buf: &mut BytesMut, key: Option<&[u8]>, value: Option<&[u8]>) {
        // The slack covers the last word store before it is cut back.
        buf.reserve(self.record_len + 8);
        self.first.put(buf);
        self.second.put(buf);
        if let Some(key) = key {
            buf.extend_from_slice(key);
            self.tail.put(buf);
        }
        if let Some(value) = value {
            buf.extend_from_slice(value);
        }
        buf.put_u8(0);
    }
}

fn write_headers(buf: &mut BytesMut, headers: &[Header]) {
    write_varint(buf, headers.len() as i32);
    for header in headers {
        put_nullable(buf, Some(&header.key));
        put_nullable(buf, header.value.as_deref());
    }
}

#[inline]
fn put_nullable(buf: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => write_varint(buf, -1),
        Some(v) => {
            write_varint(buf, v.len() as i32);
            buf.extend_from_slice(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Bytes {
        let body = record_body_len(ts_delta, offset_delta, key, value, headers).unwrap();
        let mut buf = BytesMut::new();
        write_record(&mut buf, body, ts_delta, offset_delta, key, value, headers);
        assert_eq!(buf.len(), record_len(body));
        buf.freeze()
    }

    #[test]
    fn record_round_trips_with_headers_and_nulls() {
        let headers = [
            Header::new("a", Some(Bytes::from_static(b"1"))),
            Header::from_static("b", None),
        ];
        let wire = encode(-5, 3, None, Some(b"value"), &headers);
        let mut pos = 0;
        let record = decode_record(&wire, &mut pos, 100, 1_000, None).unwrap();
        assert_eq!(pos, wire.len());
        assert_eq!(record.offset, 103);
        assert_eq!(record.timestamp, 995);
        assert_eq!(record.key, None);
        assert_eq!(record.value.as_deref(), Some(&b"value"[..]));
        assert_eq!(record.headers.to_vec(), headers);
        assert_eq!(record.headers.last("b").unwrap().value(), None);
        assert_eq!(
            (record.headers.len(), record.headers.is_empty()),
            (2, false)
        );
        let sizes = record.headers.iter().size_hint();
        assert!(sizes.0 >= 1 && sizes.1 >= Some(2), "{sizes:?}");
        let bare = decode_record(&encode(0, 0, None, None, &[]), &mut 0, 0, 0, None).unwrap();
        assert_eq!((bare.headers.len(), bare.headers.is_empty()), (0, true));
        assert_eq!(bare.headers.iter().next(), None);
    }

    #[test]
    fn log_append_time_overrides_the_delta() {
        let wire = encode(7, 0, Some(b"k"), None, &[]);
        let record = decode_record(&wire, &mut 0, 0, 1, Some(42)).unwrap();
        assert_eq!(record.timestamp, 42);
    }

    #[test]
    fn a_length_that_disagrees_with_the_fields_is_an_error() {
        let wire = encode(0, 0, Some(b"k"), Some(b"v"), &[]);
        let mut longer = BytesMut::from(&wire[..]);
        longer[0] += 2; // zig-zag: +1 in the length
        longer.put_u8(0);
        assert!(decode_record(&longer.freeze(), &mut 0, 0, 0, None).is_err());
    }

    #[test]
    fn a_null_header_key_is_an_error() {
        let mut raw = BytesMut::new();
        write_varint(&mut raw, -1);
        write_varint(&mut raw, -1);
        assert!(matches!(
            Headers::parse(raw.freeze(), 1),
            Err(DecodeError::UnexpectedNull { .. })
        ));
    }

    /// The general encoder's bytes for a record: what the packed path must match.
    fn general(
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Bytes {
        encode(ts_delta, offset_delta, key, value, &[])
    }

    /// Lengths and deltas at each varint byte boundary, up to the packed limit and past it.
    const EDGES: [i64; 14] = [
        0,
        1,
        63,
        64,
        8191,
        8192,
        (1 << 20) - 1,
        1 << 20,
        -1,
        -64,
        -65,
        -8193,
        i32::MAX as i64,
        i64::MIN,
    ];

    #[test]
    fn packed_records_are_byte_for_byte_the_general_encoding() {
        let big = vec![7u8; (1 << 20) + 1];
        let lengths = [
            0usize,
            1,
            50,
            63,
            64,
            100,
            8180,
            8192,
            (1 << 20) - 40,
            1 << 20,
        ];
        let mut checked = 0;
        for ts in EDGES {
            for offset in EDGES.iter().filter_map(|&o| i32::try_from(o).ok()) {
                for &(key_len, value_len) in &[(None, Some(100)), (Some(0), None), (None, None)] {
                    let key = key_len.map(|n: usize| &big[..n]);
                    let value = value_len.map(|n: usize| &big[..n]);
                    let Some(packed) = PackedRecord::new(ts, offset, key, value) else {
                        // Only a field beyond three varint bytes leaves the packed path.
                        assert!(zigzag64(ts) >= 1 << 21 || zigzag32(offset) >= 1 << 21);
                        continue;
                    };
                    let mut buf = BytesMut::new();
                    packed.write(&mut buf, key, value);
                    assert_eq!(buf.len(), packed.record_len());
                    assert_eq!(
                        buf,
                        general(ts, offset, key, value),
                        "ts {ts} offset {offset}"
                    );
                    checked += 1;
                }
            }
        }
        for key_len in lengths {
            for value_len in lengths {
                let (key, value) = (Some(&big[..key_len]), Some(&big[..value_len]));
                for key in [key, None] {
                    match PackedRecord::new(-3, 5, key, value) {
                        Some(packed) => {
                            let mut buf = BytesMut::from(&b"prefix"[..]);
                            packed.write(&mut buf, key, value);
                            assert_eq!(buf[6..], general(-3, 5, key, value)[..]);
                            assert_eq!(buf.len() - 6, packed.record_len());
                            checked += 1;
                        }
                        None => assert!(key.map_or(0, <[u8]>::len) + value_len >= (1 << 20) - 16),
                    }
                }
            }
        }
        assert!(checked > 300, "{checked}");
    }

    /// Decoding through the fast path must agree with the checked path on
    /// every input: the same record and end where the fast path answers.
    fn assert_paths_agree(wire: &Bytes, log_append_time: Option<i64>) {
        let fast = decode_record_fast(wire, 0, 1000, -50, log_append_time);
        let mut pos = 0;
        let checked = decode_record_checked(wire, &mut pos, 1000, -50, log_append_time);
        if let Some((record, end)) = fast {
            assert_eq!(checked.as_ref(), Ok(&record), "{wire:02x?}");
            assert_eq!(end, pos, "{wire:02x?}");
        }
        let mut pos = 0;
        assert_eq!(
            decode_record(wire, &mut pos, 1000, -50, log_append_time),
            checked,
            "{wire:02x?}"
        );
    }

    #[test]
    fn the_fast_decoder_agrees_with_the_checked_one_on_tricky_records() {
        let headers = [
            Header::new("trace", Some(Bytes::from_static(b"0af7651916cd43dd"))),
            Header::from_static("null", None),
        ];
        let long = vec![b'x'; 20_000];
        let mut wires = Vec::new();
        for ts in EDGES {
            for offset in [0i32, 1, -1, 8191, 8192, 1 << 20, i32::MAX, i32::MIN] {
                for (key, value) in [
                    (None, Some(&b"value"[..])),
                    (Some(&b"k"[..]), None),
                    (None, None),
                    (Some(&b""[..]), Some(&long[..])),
                ] {
                    for headers in [&headers[..], &headers[1..], &[]] {
                        wires.push(encode(ts, offset, key, value, headers));
                    }
                }
            }
        }
        let mut fast = 0;
        for wire in &wires {
            assert_paths_agree(wire, None);
            assert_paths_agree(wire, Some(77));
            fast += usize::from(decode_record_fast(wire, 0, 0, 0, None).is_some());
        }
        // Small deltas (half the timestamps, 4 of 8 offsets) take the fast path.
        assert!(fast >= wires.len() / 4, "{fast} of {}", wires.len());
        // Every truncation, and every single-byte change, of a few of them.
        for wire in wires.iter().filter(|w| w.len() < 80).step_by(7) {
            for cut in 0..wire.len() {
                assert_paths_agree(&wire.slice(..cut), None);
            }
            for at in 0..wire.len() {
                for byte in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff] {
                    let mut changed = wire.to_vec();
                    changed[at] = byte;
                    assert_paths_agree(&Bytes::from(changed), None);
                }
            }
        }
    }

    #[test]
    fn non_minimal_varints_read_the_same_on_both_paths() {
        // Length 7, then attributes, ts delta 0 as two bytes (0x80 0x00),
        // offset delta 0, null key, null value, no headers.
        let wire = Bytes::from_static(&[0x0e, 0x00, 0x80, 0x00, 0x00, 0x01, 0x01, 0x00]);
        assert_paths_agree(&wire, None);
        assert!(decode_record_fast(&wire, 0, 0, 0, None).is_some());
        // A four-byte length: the fast path declines, the checked one reads it.
        let wire =
            Bytes::from_static(&[0x8c, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00]);
        assert!(decode_record_fast(&wire, 0, 0, 0, None).is_none());
        assert_paths_agree(&wire, None);
        assert!(decode_record(&wire, &mut 0, 0, 0, None).is_ok());
    }
}
