//! One record and its headers: the varint-framed form inside a v2 batch.
//!
//! Decoding is zero-copy: keys, values and headers are [`Bytes`] slices of
//! the buffer the batch came in (or of its decompressed records section).
//! Encoding writes straight into the batch buffer from a precomputed size.

use bytes::{BufMut, Bytes, BytesMut};

use crate::primitives::{read_i8, read_varint, read_varlong, take, varint_len, varlong_len};
use crate::primitives::{write_varint, write_varlong};
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

/// Decodes the next v2 record from `buf`. `log_append_time` replaces every
/// record's timestamp when the batch says the broker stamped it.
#[inline]
pub(crate) fn decode_record(
    buf: &mut Bytes,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<Record, DecodeError> {
    let len = read_varint(buf)?;
    if len < 0 || len as usize > buf.len() {
        return Err(DecodeError::InvalidLength {
            length: i64::from(len),
            remaining: buf.len(),
        });
    }
    let len = len as usize;
    let end = buf.len() - len;
    let _attributes = read_i8(buf)?;
    let timestamp_delta = read_varlong(buf)?;
    let offset_delta = read_varint(buf)?;
    let key = read_nullable(buf)?;
    let value = read_nullable(buf)?;
    let header_count = read_varint(buf)?;
    let headers = if header_count == 0 {
        Headers::default()
    } else {
        // The headers run to the end of the record.
        let Some(headers_len) = buf.len().checked_sub(end) else {
            return Err(malformed_record("fields overrun the record length"));
        };
        Headers::parse(take(buf, headers_len)?, header_count)?
    };
    if buf.len() != end {
        return Err(malformed_record("record length does not match its fields"));
    }
    Ok(Record {
        offset: base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp: log_append_time.unwrap_or(base_timestamp.wrapping_add(timestamp_delta)),
        key,
        value,
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
    let too_long = |length: usize| EncodeError::TooLong { length };
    let check = |v: Option<&[u8]>| match v {
        Some(v) if v.len() > i32::MAX as usize => Err(too_long(v.len())),
        _ => Ok(()),
    };
    check(key)?;
    check(value)?;
    let mut len = 1
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + bytes_field_len(key)
        + bytes_field_len(value)
        + varint_len(headers.len() as i32);
    for header in headers {
        check(header.value.as_deref())?;
        len += header.encoded_len();
    }
    if len > i32::MAX as usize {
        return Err(too_long(len));
    }
    Ok(len)
}

/// The size of a whole record, length prefix included.
#[inline]
pub(crate) fn record_len(body_len: usize) -> usize {
    varint_len(body_len as i32) + body_len
}

#[inline]
fn put_nullable(buf: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => write_varint(buf, -1),
        Some(v) => {
            write_varint(buf, v.len() as i32);
            buf.put_slice(v);
        }
    }
}

/// Writes a record whose body length `record_body_len` computed.
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
    buf.put_i8(0);
    write_varlong(buf, timestamp_delta);
    write_varint(buf, offset_delta);
    put_nullable(buf, key);
    put_nullable(buf, value);
    write_varint(buf, headers.len() as i32);
    for header in headers {
        put_nullable(buf, Some(&header.key));
        put_nullable(buf, header.value.as_deref());
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
        let mut wire = encode(-5, 3, None, Some(b"value"), &headers);
        let record = decode_record(&mut wire, 100, 1_000, None).unwrap();
        assert!(wire.is_empty());
        assert_eq!(record.offset, 103);
        assert_eq!(record.timestamp, 995);
        assert_eq!(record.key, None);
        assert_eq!(record.value.as_deref(), Some(&b"value"[..]));
        assert_eq!(record.headers.to_vec(), headers);
        assert_eq!(record.headers.last("b").unwrap().value(), None);
    }

    #[test]
    fn log_append_time_overrides_the_delta() {
        let mut wire = encode(7, 0, Some(b"k"), None, &[]);
        let record = decode_record(&mut wire, 0, 1, Some(42)).unwrap();
        assert_eq!(record.timestamp, 42);
    }

    #[test]
    fn a_length_that_disagrees_with_the_fields_is_an_error() {
        let wire = encode(0, 0, Some(b"k"), Some(b"v"), &[]);
        let mut longer = BytesMut::from(&wire[..]);
        longer[0] += 2; // zig-zag: +1 in the length
        longer.put_u8(0);
        assert!(decode_record(&mut longer.freeze(), 0, 0, None).is_err());
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
