//! The compression codecs of record batches, with bounded decompression.
//!
//! Every decompression takes a limit in bytes: a batch that inflates beyond it
//! is [`DecodeError::DecompressionLimit`], and the output buffer never grows
//! past `limit + 1` bytes, so a few kilobytes from the network cannot make us
//! allocate gigabytes.

use std::cell::RefCell;
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
                compress_zstd(input, level, out).map_err(fail)?;
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
            Self::Lz4 => match decompress_lz4_frame(input, limit) {
                Some(out) => out,
                None => read_lz4_frames(input, limit)?,
            },
            Self::Zstd => match decompress_zstd(input, limit) {
                Some(out) => out,
                None => {
                    let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
                        .map_err(|e| codec_error(codec, &e))?;
                    decoder
                        .window_log_max(ZSTD_WINDOW_LOG_MAX)
                        .map_err(|e| codec_error(codec, &e))?;
                    read_bounded(decoder, input.len(), limit, codec)?
                }
            },
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

thread_local! {
    /// The zstd contexts of this thread, kept between batches: creating a
    /// context and sizing its tables (and, decoding a frame without a content
    /// size, its window buffer) per batch costs about a tenth of compressing
    /// or decompressing a 100 KB batch.
    static ZSTD_CCTX: RefCell<Option<zstd::zstd_safe::CCtx<'static>>> = const { RefCell::new(None) };
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

/// A context that grew past this (a high level, a large window) is freed
/// after use instead of being kept for the life of the thread.
const ZSTD_CONTEXT_KEEP_MAX: usize = 16 << 20;

/// Compresses `input` as one zstd frame at `level` with this thread's
/// context. The whole input is at hand, so the frame is compressed in one
/// call that knows its size: libzstd then takes the level's parameters for
/// that size (smaller tables for a small batch; level 3 stays level 3) and
/// records the content size in the frame header, which lets decoders
/// allocate the output once.
fn compress_zstd(input: &[u8], level: i32, out: &mut BytesMut) -> Result<(), String> {
    use zstd::zstd_safe::{CCtx, CParameter, ResetDirective};
    let fail = |code| zstd::zstd_safe::get_error_name(code).to_string();
    ZSTD_CCTX.with(|slot| {
        let mut slot = slot.borrow_mut();
        let cctx = match slot.as_mut() {
            Some(cctx) => cctx,
            None => slot.insert(CCtx::try_create().ok_or("cannot create a zstd context")?),
        };
        // A failed call leaves the session to be reset; the level is set anew.
        cctx.reset(ResetDirective::SessionOnly).map_err(fail)?;
        cctx.set_parameter(CParameter::CompressionLevel(level))
            .map_err(fail)?;
        let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(input.len()));
        let result = cctx.compress2(&mut frame, input).map_err(fail);
        if cctx.sizeof() > ZSTD_CONTEXT_KEEP_MAX {
            *slot = None;
        }
        result?;
        out.extend_from_slice(&frame);
        Ok(())
    })
}

/// Decompresses zstd frames with this thread's context straight into the
/// output, which is sized from the frame's content size when it declares
/// one (as [`compress_zstd`]'s frames do) and grown within `limit`
/// otherwise, instead of zero-filled and doubled ahead of the decoder.
///
/// The context has the same window cap as the streaming decoder; `None`
/// hands the input to that decoder (errors, a frame over `limit`, a frame
/// that declares more than `limit`), so every error is reported as before.
fn decompress_zstd(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    use zstd::zstd_safe::{DCtx, DParameter};
    let initial = match zstd::zstd_safe::get_frame_content_size(input).ok()? {
        Some(size) if size > limit as u64 => return None,
        Some(size) => size as usize,
        // Batches typically inflate 2-5x.
        None => input.len().saturating_mul(4).max(16 * 1024).min(limit),
    };
    ZSTD_DCTX.with(|slot| {
        let mut slot = slot.try_borrow_mut().ok()?;
        let dctx = match slot.as_mut() {
            Some(dctx) => dctx,
            None => {
                let mut dctx = DCtx::try_create()?;
                dctx.set_parameter(DParameter::WindowLogMax(ZSTD_WINDOW_LOG_MAX))
                    .ok()?;
                slot.insert(dctx)
            }
        };
        let out = decompress_zstd_with(dctx, input, initial, limit);
        if dctx.sizeof() > ZSTD_CONTEXT_KEEP_MAX {
            *slot = None;
        }
        out
    })
}

fn decompress_zstd_with(
    dctx: &mut zstd::zstd_safe::DCtx<'static>,
    input: &[u8],
    initial: usize,
    limit: usize,
) -> Option<Vec<u8>> {
    use zstd::zstd_safe::{InBuffer, OutBuffer, ResetDirective};
    // The session of an earlier failed call is reset; parameters are kept.
    dctx.reset(ResetDirective::SessionOnly).ok()?;
    let mut out = Vec::with_capacity(initial);
    let mut source = InBuffer::around(input);
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                // More may follow: whether it does is the general decoder's to say.
                return None;
            }
            grow_within(&mut out, 1, limit);
        }
        let (filled, consumed) = (out.len(), source.pos());
        // Writes into the spare capacity and extends `out` past what it wrote.
        let hint = dctx
            .decompress_stream(&mut OutBuffer::around_pos(&mut out, filled), &mut source)
            .ok()?;
        if source.pos() == input.len() {
            if hint == 0 {
                return Some(out);
            }
            if out.len() < out.capacity() {
                // Input ended inside a frame.
                return None;
            }
        } else if source.pos() == consumed && out.len() == filled && out.len() < out.capacity() {
            return None;
        }
    }
}

/// The LZ4 frame magic number, little-endian on the wire.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
const LZ4_FLG_VERSION_MASK: u8 = 0xc0;
const LZ4_FLG_VERSION_1: u8 = 0x40;
const LZ4_FLG_INDEPENDENT_BLOCKS: u8 = 0x20;
const LZ4_FLG_BLOCK_CHECKSUMS: u8 = 0x10;
const LZ4_FLG_CONTENT_SIZE: u8 = 0x08;
const LZ4_FLG_CONTENT_CHECKSUM: u8 = 0x04;
const LZ4_FLG_RESERVED: u8 = 0x02;
const LZ4_FLG_DICTIONARY_ID: u8 = 0x01;
const LZ4_BD_RESERVED: u8 = 0x8f;
/// The high bit of a block size marks a stored (uncompressed) block.
const LZ4_UNCOMPRESSED_BLOCK: u32 = 0x8000_0000;

/// Decodes what Kafka producers write, one LZ4 frame of independent blocks,
/// straight into the output: each block is decompressed in place with
/// `lz4_flex::block`, where `FrameDecoder` behind `io::Read` decompresses
/// into its own buffer and copies out of it, and the output is sized per
/// block instead of doubled and zero-filled ahead.
///
/// The header checksum, block and content checksums (when the frame has
/// them) and the content size (when declared) are verified as the frame
/// decoder does. The output never exceeds `limit`: each block is given at
/// most the room left under it.
///
/// `None` leaves the input to the general decoder: linked blocks,
/// dictionaries, legacy or skippable frames, several frames, a frame over
/// the limit and anything malformed, so that every error (and the limit
/// error) is reported exactly as before.
fn decompress_lz4_frame(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    let (magic, rest) = input.split_first_chunk::<4>()?;
    let (&[flg, bd], _) = rest.split_first_chunk::<2>()?;
    if *magic != LZ4_MAGIC
        || flg & LZ4_FLG_VERSION_MASK != LZ4_FLG_VERSION_1
        || flg & (LZ4_FLG_RESERVED | LZ4_FLG_DICTIONARY_ID) != 0
        || flg & LZ4_FLG_INDEPENDENT_BLOCKS == 0
        || bd & LZ4_BD_RESERVED != 0
    {
        return None;
    }
    let max_block = match bd >> 4 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return None,
    };
    let descriptor_end = 6 + if flg & LZ4_FLG_CONTENT_SIZE != 0 {
        8
    } else {
        0
    };
    let descriptor = input.get(4..descriptor_end)?;
    let content_size = descriptor
        .get(2..10)
        .map(|size| u64::from_le_bytes(size.try_into().unwrap_or_default()));
    let header_checksum = *input.get(descriptor_end)?;
    if (twox_hash::XxHash32::oneshot(0, descriptor) >> 8) as u8 != header_checksum {
        return None;
    }
    let block_checksums = flg & LZ4_FLG_BLOCK_CHECKSUMS != 0;
    let content_checksum = flg & LZ4_FLG_CONTENT_CHECKSUM != 0;
    if content_size.is_some_and(|size| size > limit as u64) {
        return None;
    }
    // A declared size is exact; otherwise batches typically inflate 2-5x.
    let expected = content_size.map_or(input.len().saturating_mul(4), |size| size as usize);
    let mut out = Vec::with_capacity(expected.min(limit));
    let mut rest = &input[descriptor_end + 1..];
    loop {
        let (size, after) = rest.split_first_chunk::<4>()?;
        let size = u32::from_le_bytes(*size);
        rest = after;
        if size == 0 {
            break;
        }
        let stored = size & LZ4_UNCOMPRESSED_BLOCK != 0;
        let len = (size & !LZ4_UNCOMPRESSED_BLOCK) as usize;
        if len > max_block || len > rest.len() {
            return None;
        }
        let (block, after) = rest.split_at(len);
        rest = after;
        if block_checksums {
            let (checksum, after) = rest.split_first_chunk::<4>()?;
            rest = after;
            if twox_hash::XxHash32::oneshot(0, block) != u32::from_le_bytes(*checksum) {
                return None;
            }
        }
        let filled = out.len();
        if stored {
            if len > limit - filled {
                return None;
            }
            grow_within(&mut out, len, limit);
            out.extend_from_slice(block);
        } else {
            let room = max_block.min(limit - filled);
            grow_within(&mut out, room, limit);
            out.resize(filled + room, 0);
            let written = lz4_flex::block::decompress_into(block, &mut out[filled..]).ok()?;
            out.truncate(filled + written);
        }
    }
    if content_checksum {
        let (checksum, after) = rest.split_first_chunk::<4>()?;
        rest = after;
        if twox_hash::XxHash32::oneshot(0, &out) != u32::from_le_bytes(*checksum) {
            return None;
        }
    }
    // Another frame (or trailing bytes) is the general decoder's to read.
    if !rest.is_empty() || content_size.is_some_and(|size| size != out.len() as u64) {
        return None;
    }
    Some(out)
}

/// Makes room for `additional` more bytes, doubling as `Vec` does but never
/// past `limit` (which `out.len() + additional` is within).
fn grow_within(out: &mut Vec<u8>, additional: usize, limit: usize) {
    let needed = out.len() + additional;
    if needed > out.capacity() {
        let target = needed.max(out.capacity().saturating_mul(2).min(limit));
        out.reserve_exact(target - out.len());
    }
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

/// Every LZ4 frame in `input`, one after the other: the format allows
/// concatenated frames (librdkafka reads them all), and a frame decoder
/// stops at the end of the first. The limit applies to them together.
fn read_lz4_frames(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let codec = "lz4";
    let mut rest = input;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let before = rest.len();
        let room = limit.saturating_sub(out.len());
        let frame = read_bounded(
            lz4_flex::frame::FrameDecoder::new(&mut rest),
            before,
            room,
            codec,
        )
        .map_err(|e| match e {
            DecodeError::DecompressionLimit { .. } => DecodeError::DecompressionLimit { limit },
            other => other,
        })?;
        if out.is_empty() {
            out = frame;
        } else {
            out.extend_from_slice(&frame);
        }
        if rest.is_empty() {
            return Ok(out);
        }
        // A frame decoder takes what is too short for a frame as the end,
        // so what follows a frame must visibly be one: a frame or a
        // skippable frame (magic 0x184D2A50-5F).
        let next_is_frame = rest.starts_with(&LZ4_MAGIC)
            || rest.len() >= 4 && rest[0] & 0xf0 == 0x50 && rest[1..4] == [0x2a, 0x4d, 0x18];
        if rest.len() == before || !next_is_frame {
            return Err(DecodeError::Decompression {
                codec,
                reason: "bytes after the last frame are not a frame".into(),
            });
        }
    }
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

    fn lz4_frame(input: &[u8], info: lz4_flex::frame::FrameInfo) -> Vec<u8> {
        let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(input).unwrap();
        encoder.finish().unwrap()
    }

    fn general_lz4(frame: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        read_lz4_frames(frame, limit)
    }

    #[test]
    fn the_lz4_fast_path_reads_every_independent_frame_as_the_frame_decoder_does() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let mut input = sample();
        input.extend((0..300_000u64).map(|i| (i.wrapping_mul(0x9e37_79b9) >> 13) as u8));
        let mut checked = 0;
        for size in [
            BlockSize::Max64KB,
            BlockSize::Max256KB,
            BlockSize::Max1MB,
            BlockSize::Max4MB,
        ] {
            for (block_checksums, content_checksum, content_size) in [
                (false, false, false),
                (true, false, false),
                (false, true, false),
                (false, false, true),
                (true, true, true),
            ] {
                let info = FrameInfo::new()
                    .block_size(size)
                    .block_mode(BlockMode::Independent)
                    .block_checksums(block_checksums)
                    .content_checksum(content_checksum)
                    .content_size(content_size.then_some(input.len() as u64));
                let frame = lz4_frame(&input, info);
                let fast = decompress_lz4_frame(&frame, input.len()).expect("fast path");
                assert!(
                    fast == input,
                    "{size:?} {block_checksums} {content_checksum}"
                );
                assert!(fast.capacity() <= input.len());
                assert_eq!(general_lz4(&frame, input.len()).unwrap(), fast);
                // One byte under the limit: left to the general path, which refuses it.
                assert_eq!(decompress_lz4_frame(&frame, input.len() - 1), None);
                checked += 1;
            }
        }
        assert_eq!(checked, 20);
    }

    #[test]
    fn lz4_frames_the_fast_path_leaves_alone_still_decode_or_fail_as_before() {
        use lz4_flex::frame::{BlockMode, FrameInfo};
        let input = sample();
        let linked = lz4_frame(&input, FrameInfo::new().block_mode(BlockMode::Linked));
        let independent = lz4_frame(&input, FrameInfo::new().block_mode(BlockMode::Independent));
        let two_frames = [&independent[..], &independent[..]].concat();
        let mut bad_header_checksum = independent.clone();
        bad_header_checksum[6] ^= 1;
        let mut bad_block = independent.clone();
        bad_block[12] ^= 0x55;
        let truncated = &independent[..independent.len() - 4];
        let limit = 2 * input.len();
        for frame in [
            &linked[..],
            &two_frames,
            &bad_header_checksum,
            &bad_block,
            truncated,
        ] {
            assert_eq!(decompress_lz4_frame(frame, limit), None);
            let general = general_lz4(frame, limit).map(Bytes::from);
            assert_eq!(Compression::Lz4.decompress(frame, limit), general);
        }
        assert!(
            Compression::Lz4
                .decompress(&bad_header_checksum, limit)
                .is_err()
        );
        assert_eq!(
            Compression::Lz4.decompress(&two_frames, limit).as_deref(),
            Ok(&[&input[..], &input[..]].concat()[..])
        );
    }

    fn general_zstd(frame: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        let mut decoder = zstd::stream::read::Decoder::with_buffer(frame).unwrap();
        decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).unwrap();
        read_bounded(decoder, frame.len(), limit, "zstd")
    }

    #[test]
    fn zstd_frames_of_the_one_shot_encoder_declare_their_size_and_decode_anywhere() {
        let input = sample();
        for level in [1, 3, 9] {
            let mut out = BytesMut::new();
            Compression::Zstd
                .compress(&input, Some(level), &mut out)
                .unwrap();
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&out).ok(),
                Some(Some(input.len() as u64))
            );
            assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
            let fast = decompress_zstd(&out, input.len()).expect("fast path");
            assert!(fast == input, "level {level}");
            assert_eq!(fast.capacity(), input.len());
            assert_eq!(decompress_zstd(&out, input.len() - 1), None);
        }
    }

    #[test]
    fn concatenated_lz4_frames_are_all_read_within_one_limit() {
        let mut wire = Vec::new();
        for part in [&b"first frame, "[..], &b"second frame"[..]] {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(part).expect("write");
            wire.extend(encoder.finish().expect("frame"));
        }
        let out = Compression::Lz4
            .decompress(&wire, 1 << 20)
            .expect("both frames");
        assert_eq!(&out[..], b"first frame, second frame");
        // The limit counts both frames: 25 bytes fit in 25, not in 20.
        assert!(Compression::Lz4.decompress(&wire, 25).is_ok());
        assert_eq!(
            Compression::Lz4.decompress(&wire, 20),
            Err(DecodeError::DecompressionLimit { limit: 20 })
        );
        // Bytes after a frame that are no frame are an error, not ignored.
        let mut trailing = wire.clone();
        trailing.extend_from_slice(b"junk");
        assert!(matches!(
            Compression::Lz4.decompress(&trailing, 1 << 20),
            Err(DecodeError::Decompression { .. })
        ));
    }

    #[test]
    fn the_zstd_fast_path_reads_streamed_and_concatenated_frames_as_the_stream_decoder_does() {
        let input = sample();
        // The Java producer's kind of frame: streamed, no content size.
        let streamed = zstd::stream::encode_all(&input[..], 3).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed).ok(),
            Some(None)
        );
        let mut one_shot = BytesMut::new();
        Compression::Zstd
            .compress(&input[..1000], None, &mut one_shot)
            .unwrap();
        let two = [&streamed[..], &one_shot[..]].concat();
        let truncated = &streamed[..streamed.len() - 3];
        let garbage = [0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff];
        for (frame, decoded) in [
            (&streamed[..], true),
            (&two[..], true),
            (truncated, false),
            (&garbage[..], false),
        ] {
            for limit in [1 << 20, input.len() + 1000, input.len(), 1000, 0] {
                let fast = decompress_zstd(frame, limit);
                let general = general_zstd(frame, limit);
                if let Some(fast) = &fast {
                    assert_eq!(Ok(fast), general.as_ref(), "limit {limit}");
                    assert!(fast.len() <= limit);
                } else {
                    assert!(general.is_err() || !decoded, "limit {limit}");
                }
                assert_eq!(
                    Compression::Zstd.decompress(frame, limit),
                    general.map(Bytes::from),
                    "limit {limit}"
                );
            }
            // The thread's context is usable again after any of these.
            assert_eq!(
                decompress_zstd(&streamed, 1 << 20).as_deref(),
                Some(&input[..])
            );
        }
    }
}
