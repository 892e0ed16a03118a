//! One record and its headers: the varint-framed form inside a v2 batch.
//!
//! Decoding is zero-copy: keys, values and headers are [`Bytes`] slices of
//! the buffer the batch came in (or of its decompressed records section).
//! Encoding writes straight into the batch buffer from a precomputed size.

use bytes::{Bytes, BytesMut};

use super::cursor::{SliceReader, SliceWriter};
use crate::primitives::{read_varint, take, varint_len, varlong_len, write_varint};
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

/// The headers of a decoded record: their validated wire bytes and count,
/// so that decoding a record allocates nothing whatever its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    raw: Bytes,
    count: u32,
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
            raw,
            count: count as u32,
        })
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The headers in wire order.
    pub fn iter(&self) -> HeaderIter {
        HeaderIter {
            cursor: self.raw.clone(),
            remaining: self.count,
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

/// Iterates the headers of a record; they were validated when it was decoded.
#[derive(Debug, Clone)]
pub struct HeaderIter {
    cursor: Bytes,
    remaining: u32,
}

impl Iterator for HeaderIter {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Validated at decode, so these cannot fail; stopping is the safe answer if they did.
        let key = read_nullable(&mut self.cursor).ok().flatten();
        let value = read_nullable(&mut self.cursor);
        match (key, value) {
            (Some(key), Ok(value)) => Some(Header { key, value }),
            _ => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
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
#[inline]
pub(crate) fn decode_record(
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
#[inline]
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

/// Appends a record whose body length `record_body_len` computed.
///
/// The small fields are gathered on the stack and the key and value copied
/// in after them, so the buffer is neither zero-filled nor grown per byte.
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
    // Length, attributes, timestamp delta, offset delta and a key length:
    // at most 5 + 1 + 10 + 5 + 5 bytes.
    let mut scratch = [0u8; 32];
    let mut small = SliceWriter::new(&mut scratch);
    small.varint(body_len as i32);
    small.u8(0);
    small.varlong(timestamp_delta);
    small.varint(offset_delta);
    small.length_of(key);
    if let Some(key) = key {
        buf.extend_from_slice(small.filled());
        buf.extend_from_slice(key);
        small.clear();
    }
    small.length_of(value);
    buf.extend_from_slice(small.filled());
    if let Some(value) = value {
        buf.extend_from_slice(value);
    }
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
    use bytes::BufMut;

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
}
