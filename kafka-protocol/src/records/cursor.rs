//! Index-based reading of record fields over plain slices.
//!
//! The per-record loops are the codec's hottest paths. Reading through a
//! position into `&[u8]` instead of advancing a `Bytes` avoids a bounds
//! check and pointer update per byte, and lets a field be cut out with one
//! `Bytes::slice` only when it is actually returned.

use std::ops::Range;

use crate::DecodeError;

/// A read position in a slice; every read checks the end and fails with a
/// [`DecodeError`], never a panic.
pub(crate) struct SliceReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SliceReader<'a> {
    /// Reads `data` from `pos`.
    #[inline]
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        Self { data, pos }
    }

    /// The position of the next read.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Stops reading at `end` (an absolute position at or before the current end).
    #[inline]
    pub(crate) fn limit(&mut self, end: usize) {
        if end < self.data.len() {
            self.data = &self.data[..end];
        }
    }

    fn eof(&self, needed: usize) -> DecodeError {
        DecodeError::UnexpectedEof {
            needed,
            remaining: self.remaining(),
        }
    }

    /// One byte.
    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.data.get(self.pos).ok_or_else(|| self.eof(1))?;
        self.pos += 1;
        Ok(byte)
    }

    /// An unsigned varint of at most `max_bytes` bytes whose last byte holds
    /// at most `last_max`.
    #[inline]
    fn unsigned(&mut self, max_bytes: u32, last_max: u8) -> Result<u64, DecodeError> {
        // Most lengths and deltas fit in one byte.
        let first = self.u8()?;
        if first < 0x80 {
            return Ok(u64::from(first));
        }
        let mut value = u64::from(first & 0x7f);
        for i in 1..max_bytes {
            let byte = self.u8()?;
            if i == max_bytes - 1 && byte > last_max {
                return Err(DecodeError::VarintTooLong);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong)
    }

    /// A zig-zag 32-bit varint.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<i32, DecodeError> {
        let raw = self.unsigned(5, 0x0f)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag 64-bit varint.
    #[inline]
    pub(crate) fn varlong(&mut self) -> Result<i64, DecodeError> {
        let raw = self.unsigned(10, 0x01)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Skips `len` bytes and returns where they were.
    #[inline]
    pub(crate) fn skip(&mut self, len: usize) -> Result<Range<usize>, DecodeError> {
        if len > self.remaining() {
            return Err(self.eof(len));
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..self.pos)
    }

    /// Varint-length-prefixed nullable bytes, as the range they occupy.
    #[inline]
    pub(crate) fn nullable(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        let len = self.varint()?;
        if len >= 0 {
            return self.skip(len as usize).map(Some);
        }
        if len == -1 {
            return Ok(None);
        }
        Err(DecodeError::InvalidLength {
            length: i64::from(len),
            remaining: self.remaining(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{varint_len, varlong_len, write_varint, write_varlong};
    use bytes::BytesMut;

    #[test]
    fn varints_written_are_read_back_at_the_edges() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = BytesMut::new();
            write_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            assert_eq!(SliceReader::new(&out, 0).varlong().unwrap(), v);
        }
        for v in [0i32, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = BytesMut::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(SliceReader::new(&out, 0).varint().unwrap(), v);
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        let overlong = [0xff, 0xff, 0xff, 0xff, 0x1f];
        assert_eq!(
            SliceReader::new(&overlong, 0).varint(),
            Err(DecodeError::VarintTooLong)
        );
        assert!(matches!(
            SliceReader::new(&[0x80, 0x80], 0).varint(),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }

    #[test]
    fn a_limit_bounds_skips() {
        let data = [6u8, 1, 2, 3, 4, 5]; // zig-zag 6 is a length of 3
        let mut r = SliceReader::new(&data, 0);
        r.limit(3);
        assert!(matches!(
            r.nullable(),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }
}
