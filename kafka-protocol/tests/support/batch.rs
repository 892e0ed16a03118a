//! A deliberately small, independent reader (and a one-shape writer) for v2
//! record batches, written from the Kafka protocol documentation. It lets the
//! fixture tests check record values without relying on the crate's own
//! `records` module, so the two can cross-check each other.

use std::io::Read;

/// Compression codecs, as the low three bits of the batch attributes.
pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// Size of the fixed v2 batch header, up to and including the record count.
const HEADER_LEN: usize = 61;

/// One record batch, with its records decompressed and parsed.
#[derive(Debug, Clone)]
pub struct Batch {
    pub base_offset: i64,
    pub magic: i8,
    pub crc: u32,
    pub computed_crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records: Vec<Record>,
}

impl Batch {
    /// The compression codec (attributes bits 0-2).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    /// Whether the batch belongs to a transaction (attributes bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
}

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// CRC-32C (Castagnoli), bitwise; plenty fast for fixtures.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// Total records announced by the batch headers in `records`, without
/// decompressing; `None` if the bytes are not whole v2 batches. Used by the
/// capture listener to advance offsets, so it never panics on bad input.
pub fn record_count(records: &[u8]) -> Option<i64> {
    let mut rest = records;
    let mut total = 0i64;
    while !rest.is_empty() {
        if rest.len() < HEADER_LEN || rest[16] != 2 {
            return None;
        }
        let length = usize::try_from(be_i32(rest, 8)).ok()?;
        let end = 12usize.checked_add(length)?;
        if end > rest.len() || end < HEADER_LEN {
            return None;
        }
        total += i64::from(be_i32(rest, 57).max(0));
        rest = &rest[end..];
    }
    Some(total)
}

/// An uncompressed v2 batch holding `values` (null keys), starting at
/// `base_offset`: what the capture listener serves to fetching consumers.
pub fn build_batch(base_offset: i64, timestamp: i64, values: &[String]) -> Vec<u8> {
    let mut records = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let mut body = vec![0u8]; // attributes
        put_varlong(&mut body, 0); // timestamp delta
        put_varlong(&mut body, i as i64); // offset delta
        put_varlong(&mut body, -1); // null key
        put_varlong(&mut body, value.len() as i64);
        body.extend_from_slice(value.as_bytes());
        put_varlong(&mut body, 0); // no headers
        put_varlong(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let last_offset_delta = values.len().saturating_sub(1) as i32;
    let mut after_crc = Vec::new();
    after_crc.extend_from_slice(&0i16.to_be_bytes()); // attributes
    after_crc.extend_from_slice(&last_offset_delta.to_be_bytes());
    after_crc.extend_from_slice(&timestamp.to_be_bytes()); // base timestamp
    after_crc.extend_from_slice(&timestamp.to_be_bytes()); // max timestamp
    after_crc.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    after_crc.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    after_crc.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    after_crc.extend_from_slice(&(values.len() as i32).to_be_bytes());
    after_crc.extend_from_slice(&records);
    let mut out = Vec::new();
    out.extend_from_slice(&base_offset.to_be_bytes());
    // Length counts everything after the length field itself.
    let length = 4 + 1 + 4 + after_crc.len();
    out.extend_from_slice(&(length as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&crc32c(&after_crc).to_be_bytes());
    out.extend_from_slice(&after_crc);
    out
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| format!("record data ends at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn varlong(&mut self) -> Result<i64, String> {
        let mut raw = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn bytes(&mut self) -> Result<Option<Vec<u8>>, String> {
        let len = self.varlong()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self.pos + len as usize;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| format!("a {len}-byte field overruns the records"))?
            .to_vec();
        self.pos = end;
        Ok(Some(out))
    }
}

/// Decompresses a batch's records section.
pub fn decompress(codec: i16, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match codec {
        NONE => out.extend_from_slice(data),
        GZIP => {
            flate2::read::MultiGzDecoder::new(data)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
        }
        SNAPPY => {
            // Java clients and kafka-python use xerial framing; librdkafka
            // writes a raw snappy block. Brokers accept both.
            const XERIAL: &[u8] = b"\x82SNAPPY\x00";
            if data.starts_with(XERIAL) {
                let mut at = 16;
                while at < data.len() {
                    if data.len() - at < 4 {
                        return Err("truncated xerial snappy block length".into());
                    }
                    let len = usize::try_from(be_i32(data, at)).map_err(|_| "negative length")?;
                    at += 4;
                    let block = data
                        .get(at..at + len)
                        .ok_or("xerial snappy block overruns the data")?;
                    out.extend(
                        snap::raw::Decoder::new()
                            .decompress_vec(block)
                            .map_err(|e| format!("snappy: {e}"))?,
                    );
                    at += len;
                }
            } else {
                out = snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|e| format!("snappy: {e}"))?;
            }
        }
        LZ4 => {
            lz4_flex::frame::FrameDecoder::new(data)
                .read_to_end(&mut out)
                .map_err(|e| format!("lz4: {e}"))?;
        }
        ZSTD => out = zstd::stream::decode_all(data).map_err(|e| format!("zstd: {e}"))?,
        other => return Err(format!("unknown compression codec {other}")),
    }
    Ok(out)
}

/// Parses every v2 batch in a Produce partition's `records` field.
pub fn parse_batches(data: &[u8]) -> Result<Vec<Batch>, String> {
    let mut batches = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < HEADER_LEN {
            return Err(format!("{} trailing bytes, not a batch", rest.len()));
        }
        let magic = rest[16] as i8;
        if magic != 2 {
            return Err(format!("magic {magic}: only v2 batches are expected"));
        }
        let end =
            usize::try_from(be_i32(rest, 8)).map_err(|_| "negative batch length".to_string())? + 12;
        if end > rest.len() {
            return Err(format!("batch of {end} bytes overruns {}", rest.len()));
        }
        let batch = &rest[..end];
        let attributes = be_i16(batch, 21);
        let count = be_i32(batch, 57);
        let plain = decompress(attributes & 0x7, &batch[HEADER_LEN..])?;
        let mut cursor = Cursor {
            buf: &plain,
            pos: 0,
        };
        let mut records = Vec::new();
        for _ in 0..count {
            let length = cursor.varlong()? as usize;
            let record_end = cursor.pos + length;
            let _attributes = cursor.byte()?;
            let timestamp_delta = cursor.varlong()?;
            let offset_delta = cursor.varlong()? as i32;
            let key = cursor.bytes()?;
            let value = cursor.bytes()?;
            let mut headers = Vec::new();
            for _ in 0..cursor.varlong()? {
                let name = cursor.bytes()?.unwrap_or_default();
                headers.push((name, cursor.bytes()?));
            }
            if cursor.pos != record_end {
                return Err(format!(
                    "record length says it ends at {record_end}, fields end at {}",
                    cursor.pos
                ));
            }
            records.push(Record {
                offset_delta,
                timestamp_delta,
                key,
                value,
                headers,
            });
        }
        if cursor.pos != plain.len() {
            return Err(format!(
                "{} bytes after the last of {count} records",
                plain.len() - cursor.pos
            ));
        }
        batches.push(Batch {
            base_offset: be_i64(batch, 0),
            magic,
            crc: be_i32(batch, 17) as u32,
            computed_crc: crc32c(&batch[21..]),
            attributes,
            last_offset_delta: be_i32(batch, 23),
            base_timestamp: be_i64(batch, 27),
            producer_id: be_i64(batch, 43),
            producer_epoch: be_i16(batch, 51),
            base_sequence: be_i32(batch, 53),
            records,
        });
        rest = &rest[end..];
    }
    Ok(batches)
}
