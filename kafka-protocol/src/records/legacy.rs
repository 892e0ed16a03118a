//! Legacy message sets, magic 0 and 1 (before Kafka 0.11): decode only, so a
//! consumer can read old data still in a log.
//!
//! Each entry is `offset: i64, size: i32` then a message: `crc: u32` (CRC32
//! IEEE of the rest), `magic: i8`, `attributes: i8` (bits 0-2 codec, bit 3
//! timestamp type in v1), `timestamp: i64` (v1 only), key and value as
//! i32-length bytes (-1 for null). A compressed message's value is a whole
//! inner message set; in magic 1 the inner offsets are relative (KIP-31).

use bytes::Bytes;

use crate::DecodeError;
use crate::primitives::{read_i8, read_i32, read_i64, read_u32, take};

use super::batch::{BatchHeader, LOG_OVERHEAD, MAGIC_OFFSET};
use super::compression::Compression;
use super::record::{Headers, Record};

/// The smallest v0 message: crc, magic, attributes and two null lengths.
pub(crate) const MIN_MESSAGE_SIZE: usize = 14;
/// v1 adds the timestamp.
const MIN_MESSAGE_SIZE_V1: usize = MIN_MESSAGE_SIZE + 8;
const CODEC_MASK: i8 = 0x07;
const LOG_APPEND_TIME_FLAG: i8 = 0x08;
const NO_TIMESTAMP: i64 = -1;

/// A message after its offset and size.
struct Message {
    crc: u32,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

fn malformed(reason: &str) -> DecodeError {
    DecodeError::Malformed {
        what: "legacy message",
        reason: reason.into(),
    }
}

fn read_nullable(buf: &mut Bytes) -> Result<Option<Bytes>, DecodeError> {
    let len = read_i32(buf)?;
    match len {
        -1 => Ok(None),
        len if len < 0 => Err(DecodeError::InvalidLength {
            length: i64::from(len),
            remaining: buf.len(),
        }),
        len => take(buf, len as usize).map(Some),
    }
}

/// Parses exactly one message (the bytes after offset and size).
fn parse_message(mut buf: Bytes) -> Result<Message, DecodeError> {
    let crc = read_u32(&mut buf)?;
    let magic = read_i8(&mut buf)?;
    let attributes = read_i8(&mut buf)?;
    let timestamp = match magic {
        0 => NO_TIMESTAMP,
        1 => read_i64(&mut buf)?,
        other => return Err(DecodeError::UnsupportedMagic(other)),
    };
    let key = read_nullable(&mut buf)?;
    let value = read_nullable(&mut buf)?;
    if !buf.is_empty() {
        return Err(malformed("bytes left after the value"));
    }
    Ok(Message {
        crc,
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

fn min_size(magic: i8) -> usize {
    if magic == 0 {
        MIN_MESSAGE_SIZE
    } else {
        MIN_MESSAGE_SIZE_V1
    }
}

/// The synthesised header of a top-level legacy entry (`raw` includes the
/// offset and size, which the caller checked against its length).
pub(crate) fn parse_header(raw: &Bytes) -> Result<BatchHeader, DecodeError> {
    let mut cursor = raw.clone();
    let offset = read_i64(&mut cursor)?;
    let size = read_i32(&mut cursor)?;
    let message = parse_message(cursor)?;
    if (size as usize) < min_size(message.magic) {
        return Err(DecodeError::InvalidLength {
            length: i64::from(size),
            remaining: raw.len() - LOG_OVERHEAD,
        });
    }
    // v0 has no timestamp type bit; keep only the bits the version defines.
    let attributes = if message.magic == 0 {
        message.attributes & CODEC_MASK
    } else {
        message.attributes & (CODEC_MASK | LOG_APPEND_TIME_FLAG)
    };
    Ok(BatchHeader {
        base_offset: offset,
        batch_length: size,
        partition_leader_epoch: -1,
        magic: message.magic,
        crc: message.crc,
        attributes: i16::from(attributes as u8),
        last_offset_delta: 0,
        base_timestamp: message.timestamp,
        max_timestamp: message.timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: if attributes & CODEC_MASK == 0 { 1 } else { -1 },
    })
}

/// The records of a top-level legacy entry: itself, or its inner messages
/// with absolute offsets.
pub(crate) fn decode_records(
    raw: &Bytes,
    limit: usize,
    verify_crc: bool,
) -> Result<Vec<Record>, DecodeError> {
    let mut cursor = raw.clone();
    let wrapper_offset = read_i64(&mut cursor)?;
    read_i32(&mut cursor)?;
    let wrapper = parse_message(cursor)?;
    let codec = match wrapper.attributes & CODEC_MASK {
        0 => {
            return Ok(vec![Record {
                offset: wrapper_offset,
                timestamp: wrapper.timestamp,
                key: wrapper.key,
                value: wrapper.value,
                headers: Headers::default(),
            }]);
        }
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        // zstd arrived with magic 2 (KIP-110) and is invalid here.
        other => return Err(DecodeError::UnknownCompression(other as u8)),
    };
    let compressed = wrapper.value.ok_or(DecodeError::UnexpectedNull {
        field: "Message.value",
    })?;
    let mut data = if codec == Compression::Lz4 && wrapper.magic == 0 {
        codec.decompress(&fix_lz4_header_checksum(&compressed), limit)?
    } else {
        codec.decompress(&compressed, limit)?
    };
    // Broker-stamped wrappers carry the time for every inner message.
    let wrapper_time = (wrapper.magic == 1 && wrapper.attributes & LOG_APPEND_TIME_FLAG != 0)
        .then_some(wrapper.timestamp);

    let mut records = Vec::with_capacity(data.len() / (LOG_OVERHEAD + MIN_MESSAGE_SIZE));
    while !data.is_empty() {
        let offset = read_i64(&mut data)?;
        let size = read_i32(&mut data)?;
        if size < MIN_MESSAGE_SIZE as i32 {
            return Err(DecodeError::InvalidLength {
                length: i64::from(size),
                remaining: data.len(),
            });
        }
        let bytes = take(&mut data, size as usize)?;
        if verify_crc {
            let computed = crc32fast::hash(&bytes[MAGIC_OFFSET - LOG_OVERHEAD..]);
            let stored = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if computed != stored {
                return Err(DecodeError::CrcMismatch { stored, computed });
            }
        }
        let inner = parse_message(bytes)?;
        if inner.attributes & CODEC_MASK != 0 {
            return Err(malformed("compressed message inside a compressed message"));
        }
        records.push(Record {
            offset,
            timestamp: wrapper_time.unwrap_or(inner.timestamp),
            key: inner.key,
            value: inner.value,
            headers: Headers::default(),
        });
    }
    let Some(last) = records.last() else {
        return Err(malformed("compressed message with no inner messages"));
    };
    // Magic 1 inner offsets count from 0; the wrapper has the last one's absolute offset.
    if wrapper.magic == 1 {
        let base = wrapper_offset.wrapping_sub(last.offset);
        for record in &mut records {
            record.offset = base.wrapping_add(record.offset);
        }
    }
    Ok(records)
}

/// Kafka before 0.10 (magic 0) computed the LZ4 frame header checksum over
/// the frame magic too (KAFKA-3160); rewrite it so a standard decoder
/// accepts the frame. Anything unrecognisable is passed through untouched.
fn fix_lz4_header_checksum(frame: &[u8]) -> Vec<u8> {
    let mut fixed = frame.to_vec();
    if frame.len() < 7 || frame[..4] != [0x04, 0x22, 0x4d, 0x18] {
        return fixed;
    }
    let flags = frame[4];
    let mut checksum_at = 6;
    if flags & 0x08 != 0 {
        checksum_at += 8; // content size
    }
    if flags & 0x01 != 0 {
        checksum_at += 4; // dictionary id
    }
    if checksum_at < frame.len() {
        fixed[checksum_at] = (xxh32_short(&frame[4..checksum_at]) >> 8) as u8;
    }
    fixed
}

/// XXH32 with seed 0 for inputs under 16 bytes (a frame descriptor is at most 14).
fn xxh32_short(data: &[u8]) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    let mut hash = P5.wrapping_add(data.len() as u32);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let word = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        hash = hash
            .wrapping_add(word.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &byte in words.remainder() {
        hash = hash
            .wrapping_add(u32::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    hash ^= hash >> 15;
    hash = hash.wrapping_mul(P2);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(P3);
    hash ^ (hash >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use std::io::Write;

    fn lz4_frame(input: &[u8]) -> Vec<u8> {
        let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
        encoder.write_all(input).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn header_checksum_matches_a_standard_encoder() {
        let frame = lz4_frame(b"hello hello hello");
        // lz4_flex writes FLG, BD, then the checksum byte.
        assert_eq!((xxh32_short(&frame[4..6]) >> 8) as u8, frame[6]);
    }

    /// An entry with a magic 0 message, its CRC computed per the format.
    fn v0_entry(offset: i64, attributes: i8, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
        let mut message = BytesMut::new();
        message.put_i8(0);
        message.put_i8(attributes);
        for field in [key, value] {
            match field {
                None => message.put_i32(-1),
                Some(b) => {
                    message.put_i32(b.len() as i32);
                    message.put_slice(b);
                }
            }
        }
        let mut entry = BytesMut::new();
        entry.put_i64(offset);
        entry.put_i32(message.len() as i32 + 4);
        entry.put_u32(crc32fast::hash(&message));
        entry.put_slice(&message);
        entry.to_vec()
    }

    #[test]
    fn magic_0_lz4_with_the_old_checksum_is_read() {
        let inner = [
            v0_entry(5, 0, None, Some(b"a")),
            v0_entry(6, 0, None, Some(b"b")),
        ]
        .concat();
        let mut frame = lz4_frame(&inner);
        // Reproduce the pre-0.10 bug: checksum over magic and descriptor.
        frame[6] = (xxh32_short(&frame[..6]) >> 8) as u8;
        let wrapper = Bytes::from(v0_entry(6, 3, None, Some(&frame)));
        let records = decode_records(&wrapper, 1 << 20, true).unwrap();
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [5, 6]);
        assert_eq!(records[1].timestamp, NO_TIMESTAMP);
    }

    #[test]
    fn nested_compression_is_rejected() {
        let inner = v0_entry(0, 1, None, Some(b"not really gzip"));
        let mut gz = BytesMut::new();
        Compression::Gzip.compress(&inner, None, &mut gz).unwrap();
        let wrapper = Bytes::from(v0_entry(0, 1, None, Some(&gz)));
        assert!(matches!(
            decode_records(&wrapper, 1 << 20, true),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
