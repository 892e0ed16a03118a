//! Variable-length integers: unsigned LEB128 (`UNSIGNED_VARINT`) and the
//! zig-zag signed forms (`VARINT`, `VARLONG`) used inside record batches.

use bytes::{Buf, BufMut, Bytes};

use super::DecodeError;

/// Reads an unsigned varint of at most 5 bytes.
#[inline]
pub fn read_unsigned_varint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        if !buf.has_remaining() {
            return Err(DecodeError::UnexpectedEof {
                needed: 1,
                remaining: 0,
            });
        }
        let byte = buf.get_u8();
        // The fifth byte may only carry the top 4 bits of a u32.
        if i == 4 && byte > 0x0f {
            return Err(DecodeError::VarintTooLong);
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

/// Reads an unsigned varint of at most 10 bytes.
#[inline]
pub fn read_unsigned_varlong(buf: &mut Bytes) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        if !buf.has_remaining() {
            return Err(DecodeError::UnexpectedEof {
                needed: 1,
                remaining: 0,
            });
        }
        let byte = buf.get_u8();
        if i == 9 && byte > 0x01 {
            return Err(DecodeError::VarintTooLong);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

/// Reads a zig-zag encoded 32-bit varint.
#[inline]
pub fn read_varint(buf: &mut Bytes) -> Result<i32, DecodeError> {
    let raw = read_unsigned_varint(buf)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag encoded 64-bit varint.
#[inline]
pub fn read_varlong(buf: &mut Bytes) -> Result<i64, DecodeError> {
    let raw = read_unsigned_varlong(buf)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Writes an unsigned varint.
#[inline]
pub fn write_unsigned_varint<B: BufMut>(buf: &mut B, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes an unsigned 64-bit varint.
#[inline]
pub fn write_unsigned_varlong<B: BufMut>(buf: &mut B, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes a zig-zag encoded 32-bit varint.
#[inline]
pub fn write_varint<B: BufMut>(buf: &mut B, value: i32) {
    write_unsigned_varint(buf, ((value << 1) ^ (value >> 31)) as u32);
}

/// Writes a zig-zag encoded 64-bit varint.
#[inline]
pub fn write_varlong<B: BufMut>(buf: &mut B, value: i64) {
    write_unsigned_varlong(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// The encoded size of an unsigned varint.
#[inline]
pub fn unsigned_varint_len(value: u32) -> usize {
    // 1 byte per 7 significant bits, at least one byte: (9 * bits + 64) / 64
    // equals bits.div_ceil(7) for 1..=64 bits, without the division.
    let bits = 32 - (value | 1).leading_zeros() as usize;
    (9 * bits + 64) / 64
}

/// The encoded size of a zig-zag 32-bit varint.
#[inline]
pub fn varint_len(value: i32) -> usize {
    unsigned_varint_len(((value << 1) ^ (value >> 31)) as u32)
}

/// The encoded size of a zig-zag 64-bit varint.
#[inline]
pub fn varlong_len(value: i64) -> usize {
    let raw = ((value << 1) ^ (value >> 63)) as u64;
    let bits = 64 - (raw | 1).leading_zeros() as usize;
    (9 * bits + 64) / 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn the_length_formula_matches_seven_bits_per_byte() {
        for bits in 1..=64usize {
            assert_eq!((9 * bits + 64) / 64, bits.div_ceil(7), "{bits} bits");
        }
    }

    fn round_trip_varlong(v: i64) {
        let mut out = BytesMut::new();
        write_varlong(&mut out, v);
        assert_eq!(out.len(), varlong_len(v), "length of {v}");
        assert_eq!(read_varlong(&mut out.freeze()).unwrap(), v);
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = BytesMut::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "length of {v}");
            assert_eq!(read_varint(&mut out.freeze()).unwrap(), v);
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1 << 40] {
            round_trip_varlong(v);
        }
        for v in [0u32, 127, 128, 16383, 16384, u32::MAX] {
            let mut out = BytesMut::new();
            write_unsigned_varint(&mut out, v);
            assert_eq!(out.len(), unsigned_varint_len(v));
            assert_eq!(read_unsigned_varint(&mut out.freeze()).unwrap(), v);
        }
    }

    #[test]
    fn zigzag_matches_the_protocol_guide() {
        let mut out = BytesMut::new();
        write_varint(&mut out, -1);
        write_varint(&mut out, 1);
        write_varint(&mut out, -2);
        assert_eq!(&out[..], &[0x01, 0x02, 0x03]);
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        let mut overlong = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(
            read_unsigned_varint(&mut overlong),
            Err(DecodeError::VarintTooLong)
        );
        let mut truncated = Bytes::from_static(&[0x80, 0x80]);
        assert!(matches!(
            read_varlong(&mut truncated),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }
}
