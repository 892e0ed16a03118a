//! The compression codecs of record batches, with bounded decompression.
//!
//! Every decompression takes a limit in bytes: a batch that inflates beyond it
//! is [`DecodeError::DecompressionLimit`], and the output buffer never grows
//! past `limit + 1` bytes, so a few kilobytes from the network cannot make us
//! allocate gigabytes.

use std::io::{self, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use crate::{DecodeError, EncodeError};

/// The decompression limit used unless the caller configures another: 64 MiB,
/// comfortably above Kafka's default `message.max.bytes` (1 MiB) and
/// `fetch.max.bytes` (50 MiB) even for well-compressed batches.
pub const DEFAULT_DECOMPRESSION_LIMIT: usize = 64 * 1024 * 1024;

/// The header the Java client (snappy-java's `SnappyOutputStream`) writes
/// before its blocks: magic, then version and compatible version as i32.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
const XERIAL_VERSION: i32 = 1;
const XERIAL_COMPATIBLE_VERSION: i32 = 1;
/// snappy-java's default block size; matching it keeps our output shaped
/// like the Java client's.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// The largest zstd window (as a power of two) the decoder accepts: 128 MiB.
///
/// The streaming decoder allocates a buffer of about the window a frame header
/// declares (up to 2 GiB on 64-bit) unless the frame also declares a smaller
/// content size, which the Java producer never does (it streams). libzstd
/// refuses a frame declaring more than this cap before sizing that buffer.
///
/// 27 is the smallest cap that still reads every batch a Kafka producer can
/// write: windows come from the level's table (level 3, the default of the
/// Java client and librdkafka: 2^21; level 19: 2^23; level 22: 2^27), and
/// KIP-390 (`compression.zstd.level`, Kafka 3.8) and librdkafka's
/// `compression.level` allow up to 22. It is also exactly what the Java
/// consumer reads: zstd-jni's streaming decoder keeps libzstd's default limit
/// (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`). Set here rather than inherited, so that a
/// different libzstd build or default cannot widen it.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// A record batch compression codec: bits 0-2 of the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (RFC 1952), via `flate2`.
    Gzip,
    /// Snappy: written in the xerial framing the Java client uses; raw
    /// snappy and xerial are both read.
    Snappy,
    /// The LZ4 frame format (with the header checksum fixed by magic 1, KAFKA-3160).
    Lz4,
    /// Zstandard (KIP-110); only valid in magic 2 batches.
    Zstd,
}

impl Compression {
    /// The codec for an attribute id (0-4).
    pub fn from_id(id: u8) -> Result<Self, DecodeError> {
        Ok(match id {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            other => return Err(DecodeError::UnknownCompression(other)),
        })
    }

    /// The id stored in bits 0-2 of the batch attributes.
    pub const fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The name used by the `compression.type` property.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// The codec for a `compression.type` value, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd]
            .into_iter()
            .find(|codec| codec.name().eq_ignore_ascii_case(name))
    }

    /// Appends the compressed form of `input` to `out`.
    ///
    /// `level` is the codec's own scale (gzip 0-9, zstd 1-22); `None` picks
    /// the Java client's default. LZ4 and snappy have no level and ignore it.
    pub fn compress(
        self,
        input: &[u8],
        level: Option<i32>,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let codec = self.name();
        let fail = |reason: String| EncodeError::Compression { codec, reason };
        match self {
            Self::None => out.extend_from_slice(input),
            Self::Gzip => {
                let level = level.map_or(flate2::Compression::default(), |l| {
                    flate2::Compression::new(l.clamp(0, 9) as u32)
                });
                let mut encoder = flate2::write::GzEncoder::new(out.writer(), level);
                encoder.write_all(input).map_err(|e| fail(e.to_string()))?;
                encoder.finish().map_err(|e| fail(e.to_string()))?;
            }
            Self::Snappy => compress_xerial(input, out).map_err(|e| fail(e.to_string()))?,
            Self::Lz4 => compress_lz4(input, out).map_err(|e| fail(e.to_string()))?,
            Self::Zstd => {
                let level = level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
                zstd::stream::copy_encode(input, out.writer(), level)
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// About how many bytes `compress` appends for `len` input bytes, to
    /// size the output buffer once: the worst case for LZ4 (its output
    /// buffer is written in place), a guess for the streaming codecs.
    pub(crate) fn output_capacity(self, len: usize) -> usize {
        match self {
            Self::None => len,
            Self::Lz4 => lz4_frame_bound(len),
            _ => len / 2,
        }
    }

    /// Decompresses `input`, failing with [`DecodeError::DecompressionLimit`]
    /// rather than producing more than `limit` bytes.
    pub fn decompress(self, input: &[u8], limit: usize) -> Result<Bytes, DecodeError> {
        let codec = self.name();
        let out = match self {
            Self::None => {
                if input.len() > limit {
                    return Err(DecodeError::DecompressionLimit { limit });
                }
                input.to_vec()
            }
            Self::Gzip => read_bounded(
                flate2::bufread::MultiGzDecoder::new(input),
                input.len(),
                limit,
                codec,
            )?,
            Self::Snappy => decompress_snappy(input, limit)?,
            Self::Lz4 => read_bounded(
                lz4_flex::frame::FrameDecoder::new(input),
                input.len(),
                limit,
                codec,
            )?,
            Self::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| codec_error(codec, &e))?;
                decoder
                    .window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(|e| codec_error(codec, &e))?;
                read_bounded(decoder, input.len(), limit, codec)?
            }
        };
        Ok(Bytes::from(out))
    }
}

/// The LZ4 frame header Kafka's producers write (magic 1, KAFKA-3160):
/// magic number, FLG 0x60 (version 1, independent blocks, no block or
/// content checksums, no content size), BD 0x40 (64 KiB blocks) and the
/// header checksum, byte 1 of xxh32 of FLG and BD.
const LZ4_FRAME_HEADER: [u8; 7] = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];
/// The largest block the header above allows.
const LZ4_BLOCK_SIZE: usize = 64 * 1024;

fn lz4_frame_bound(len: usize) -> usize {
    let blocks = len.div_ceil(LZ4_BLOCK_SIZE);
    LZ4_FRAME_HEADER.len()
        + blocks * 4
        + lz4_flex::block::get_maximum_output_size(len.min(LZ4_BLOCK_SIZE)) * blocks
        + 4
}

/// Kafka's LZ4 stream: 64 KiB independent blocks, each compressed straight
/// into `out` (stored as is where compression would not shrink it), then
/// the end mark: the frame lz4_flex's `FrameEncoder` writes with those
/// settings, without its per-frame buffers and the copy into them (its
/// blocks can differ: the block compressor's table for small inputs finds
/// other matches, usually a few percent smaller).
fn compress_lz4(input: &[u8], out: &mut BytesMut) -> Result<(), lz4_flex::block::CompressError> {
    out.reserve(lz4_frame_bound(input.len()));
    out.extend_from_slice(&LZ4_FRAME_HEADER);
    for block in input.chunks(LZ4_BLOCK_SIZE) {
        let start = out.len();
        let bound = lz4_flex::block::get_maximum_output_size(block.len());
        out.resize(start + 4 + bound, 0);
        let written = lz4_flex::block::compress_into(block, &mut out[start + 4..])?;
        if written < block.len() {
            out[start..start + 4].copy_from_slice(&(written as u32).to_le_bytes());
            out.truncate(start + 4 + written);
        } else {
            // The high bit of the size marks an uncompressed block.
            out.truncate(start);
            out.extend_from_slice(&(block.len() as u32 | 0x8000_0000).to_le_bytes());
            out.extend_from_slice(block);
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    Ok(())
}

fn codec_error(codec: &'static str, error: &dyn std::fmt::Display) -> DecodeError {
    DecodeError::Decompression {
        codec,
        reason: error.to_string(),
    }
}

/// Reads `reader` to its end into a buffer that never exceeds `limit + 1`
/// bytes: the one extra byte is how an overflow is told apart from an exact fit.
///
/// `compressed_len` sizes the first buffer (batches typically inflate 2-5x),
/// saving most of the regrowth copies without trusting anything in the input.
fn read_bounded<R: Read>(
    mut reader: R,
    compressed_len: usize,
    limit: usize,
    codec: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let cap = limit.saturating_add(1);
    let initial = compressed_len.saturating_mul(4).max(16 * 1024);
    let mut out = vec![0u8; cap.min(initial)];
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if out.len() >= cap {
                return Err(DecodeError::DecompressionLimit { limit });
            }
            let grown = out.len().saturating_mul(2).min(cap);
            out.resize(grown, 0);
        }
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(codec_error(codec, &e)),
        }
    }
    if filled > limit {
        return Err(DecodeError::DecompressionLimit { limit });
    }
    out.truncate(filled);
    Ok(out)
}

/// Reads raw snappy or the xerial framing, sizing the output once from the
/// lengths the blocks claim (checked against `limit` before allocating).
fn decompress_snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let codec = "snappy";
    if !(input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC) {
        let len = snap::raw::decompress_len(input).map_err(|e| codec_error(codec, &e))?;
        if len > limit {
            return Err(DecodeError::DecompressionLimit { limit });
        }
        let mut out = vec![0u8; len];
        let written = snap::raw::Decoder::new()
            .decompress(input, &mut out)
            .map_err(|e| codec_error(codec, &e))?;
        out.truncate(written);
        return Ok(out);
    }
    let blocks = &input[XERIAL_HEADER_LEN..];
    let mut total: usize = 0;
    for block in XerialBlocks(blocks) {
        let len = snap::raw::decompress_len(block?).map_err(|e| codec_error(codec, &e))?;
        total = total.saturating_add(len);
        if total > limit {
            return Err(DecodeError::DecompressionLimit { limit });
        }
    }
    let mut out = vec![0u8; total];
    let mut decoder = snap::raw::Decoder::new();
    let mut filled = 0;
    for block in XerialBlocks(blocks) {
        filled += decoder
            .decompress(block?, &mut out[filled..])
            .map_err(|e| codec_error(codec, &e))?;
    }
    out.truncate(filled);
    Ok(out)
}

/// The `[i32 length][raw snappy block]` sequence after the xerial header.
struct XerialBlocks<'a>(&'a [u8]);

impl<'a> Iterator for XerialBlocks<'a> {
    type Item = Result<&'a [u8], DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let rest = self.0;
        let Some((len, rest)) = rest.split_first_chunk::<4>() else {
            self.0 = &[];
            return Some(Err(DecodeError::Malformed {
                what: "xerial snappy stream",
                reason: "truncated block length".into(),
            }));
        };
        let len = i32::from_be_bytes(*len);
        if len < 0 || len as usize > rest.len() {
            self.0 = &[];
            return Some(Err(DecodeError::InvalidLength {
                length: i64::from(len),
                remaining: rest.len(),
            }));
        }
        let (block, rest) = rest.split_at(len as usize);
        self.0 = rest;
        Some(Ok(block))
    }
}

fn compress_xerial(input: &[u8], out: &mut BytesMut) -> Result<(), snap::Error> {
    out.reserve(
        XERIAL_HEADER_LEN + snap::raw::max_compress_len(input.len().min(XERIAL_BLOCK_SIZE)),
    );
    out.extend_from_slice(&XERIAL_MAGIC);
    out.put_i32(XERIAL_VERSION);
    out.put_i32(XERIAL_COMPATIBLE_VERSION);
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
        let start = out.len();
        let max = snap::raw::max_compress_len(chunk.len());
        out.put_i32(0);
        out.resize(start + 4 + max, 0);
        let written = encoder.compress(chunk, &mut out[start + 4..])?;
        out.truncate(start + 4 + written);
        out[start..start + 4].copy_from_slice(&(written as i32).to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect()
    }

    #[test]
    fn lz4_frames_have_the_frame_encoders_header_and_round_trip() {
        let incompressible: Vec<u8> = (0..70_000u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
            .collect();
        let inputs = [
            Vec::new(),
            b"x".to_vec(),
            sample()[..16_000].to_vec(),
            sample(),
            incompressible,
        ];
        for input in inputs {
            let mut ours = BytesMut::new();
            compress_lz4(&input, &mut ours).unwrap();
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut theirs = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            theirs.write_all(&input).unwrap();
            let theirs = theirs.finish().unwrap();
            assert_eq!(ours[..7], theirs[..7], "header, {} bytes", input.len());
            let back = Compression::Lz4
                .decompress(&ours, input.len().max(1))
                .unwrap();
            assert_eq!(back.as_ref(), input.as_slice(), "{} bytes", input.len());
            assert!(ours.len() <= lz4_frame_bound(input.len()));
        }
    }

    #[test]
    fn every_codec_round_trips() {
        let input = sample();
        for codec in ALL {
            let mut out = BytesMut::new();
            codec.compress(&input, None, &mut out).unwrap();
            let back = codec.decompress(&out, input.len()).unwrap();
            assert_eq!(back.as_ref(), input.as_slice(), "{}", codec.name());
            assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
            assert_eq!(Compression::from_name(codec.name()), Some(codec));
        }
        assert!(matches!(
            Compression::from_id(5),
            Err(DecodeError::UnknownCompression(5))
        ));
    }

    #[test]
    fn empty_input_round_trips() {
        for codec in ALL {
            let mut out = BytesMut::new();
            codec.compress(&[], Some(1), &mut out).unwrap();
            assert!(
                codec.decompress(&out, 0).unwrap().is_empty(),
                "{}",
                codec.name()
            );
        }
    }

    #[test]
    fn one_byte_over_the_limit_is_an_error() {
        let input = sample();
        for codec in ALL {
            let mut out = BytesMut::new();
            codec.compress(&input, None, &mut out).unwrap();
            assert_eq!(
                codec.decompress(&out, input.len() - 1),
                Err(DecodeError::DecompressionLimit {
                    limit: input.len() - 1
                }),
                "{}",
                codec.name()
            );
        }
    }

    #[test]
    fn snappy_writes_xerial_and_reads_raw() {
        let input = sample();
        let mut out = BytesMut::new();
        Compression::Snappy
            .compress(&input, None, &mut out)
            .unwrap();
        assert_eq!(out[..8], XERIAL_MAGIC);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        let back = Compression::Snappy.decompress(&raw, input.len()).unwrap();
        assert_eq!(back.as_ref(), input.as_slice());
    }

    /// A zstd frame holding `payload` as one raw block, whose header
    /// declares a window of 2^`window_log` bytes and no content size, as a
    /// streaming producer writes it.
    fn zstd_frame_with_window(window_log: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd];
        // Frame header descriptor: no content size, not single-segment (so
        // the window descriptor is present), no checksum, no dictionary.
        frame.push(0x00);
        // Window descriptor: exponent in the top five bits, mantissa 0.
        frame.push((window_log - 10) << 3);
        // Block header, 24 bits little-endian: size, type raw (0), last block.
        let block_header = ((payload.len() as u32) << 3) | 1;
        frame.extend_from_slice(&block_header.to_le_bytes()[..3]);
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn zstd_reads_every_window_a_kafka_producer_writes() {
        // 21: level 3, the Java client's and librdkafka's default; 23: level
        // 19; 27: level 22, the highest KIP-390 allows.
        for window_log in [10, 21, 23, ZSTD_WINDOW_LOG_MAX as u8] {
            let frame = zstd_frame_with_window(window_log, b"records");
            assert_eq!(
                Compression::Zstd
                    .decompress(&frame, DEFAULT_DECOMPRESSION_LIMIT)
                    .as_deref(),
                Ok(&b"records"[..]),
                "window 2^{window_log}"
            );
        }
    }

    #[test]
    fn zstd_frame_declaring_a_window_above_the_cap_is_refused() {
        // The same well-formed frame as above, but claiming up to 2 GiB of
        // window: libzstd compares the declared window with the cap before it
        // sizes its buffers, so this fails without allocating the window.
        for window_log in [ZSTD_WINDOW_LOG_MAX as u8 + 1, 31] {
            let frame = zstd_frame_with_window(window_log, b"records");
            match Compression::Zstd.decompress(&frame, DEFAULT_DECOMPRESSION_LIMIT) {
                Err(DecodeError::Decompression { codec, reason }) => {
                    assert_eq!(codec, "zstd", "window 2^{window_log}: {reason}");
                }
                other => panic!("window 2^{window_log}: expected a zstd error, got {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in ALL {
            let _ = codec.decompress(&[0x82, b'S', 1, 2, 3, 0xff, 0xff], 1024);
        }
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 1]);
        assert!(matches!(
            Compression::Snappy.decompress(&xerial, 1024),
            Err(DecodeError::InvalidLength { .. })
        ));
    }
}
