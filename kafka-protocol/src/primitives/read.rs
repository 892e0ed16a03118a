//! Readers for fixed-width values, strings, bytes and array lengths.

use bytes::{Buf, Bytes};
use uuid::Uuid;

use super::{DecodeError, read_unsigned_varint};

#[inline]
fn need(buf: &Bytes, needed: usize) -> Result<(), DecodeError> {
    if buf.remaining() < needed {
        Err(DecodeError::UnexpectedEof {
            needed,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

/// Splits off the next `len` bytes without copying them.
#[inline]
pub fn take(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    need(buf, len)?;
    Ok(buf.split_to(len))
}

macro_rules! fixed_readers {
    ($($name:ident -> $ty:ty = $get:ident;)*) => {$(
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        #[inline]
        pub fn $name(buf: &mut Bytes) -> Result<$ty, DecodeError> {
            need(buf, std::mem::size_of::<$ty>())?;
            Ok(buf.$get())
        }
    )*};
}

fixed_readers! {
    read_i8 -> i8 = get_i8;
    read_u8 -> u8 = get_u8;
    read_i16 -> i16 = get_i16;
    read_u16 -> u16 = get_u16;
    read_i32 -> i32 = get_i32;
    read_u32 -> u32 = get_u32;
    read_i64 -> i64 = get_i64;
    read_f64 -> f64 = get_f64;
}

/// Reads a boolean: any non-zero byte is true, as in the Java client.
#[inline]
pub fn read_bool(buf: &mut Bytes) -> Result<bool, DecodeError> {
    Ok(read_u8(buf)? != 0)
}

/// Reads a 16-byte UUID.
#[inline]
pub fn read_uuid(buf: &mut Bytes) -> Result<Uuid, DecodeError> {
    need(buf, 16)?;
    let mut raw = [0u8; 16];
    buf.copy_to_slice(&mut raw);
    Ok(Uuid::from_bytes(raw))
}

/// Reads a length prefix: `None` for null, otherwise a length that fits in
/// what is left of the buffer. `compact` selects the unsigned varint form;
/// otherwise `wide` selects INT32 (bytes, arrays) over INT16 (strings).
#[inline]
fn read_length(buf: &mut Bytes, compact: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
    let length: i64 = if compact {
        i64::from(read_unsigned_varint(buf)?) - 1
    } else if wide {
        i64::from(read_i32(buf)?)
    } else {
        i64::from(read_i16(buf)?)
    };
    if length == -1 {
        return Ok(None);
    }
    if length < 0 || length as u64 > buf.remaining() as u64 {
        return Err(DecodeError::InvalidLength {
            length,
            remaining: buf.remaining(),
        });
    }
    Ok(Some(length as usize))
}

/// Reads a (compact) nullable string.
#[inline]
pub fn read_string(buf: &mut Bytes, compact: bool) -> Result<Option<String>, DecodeError> {
    match read_length(buf, compact, false)? {
        None => Ok(None),
        Some(len) => {
            let text = std::str::from_utf8(&buf[..len]).map_err(|_| DecodeError::InvalidUtf8)?;
            let owned = text.to_owned();
            buf.advance(len);
            Ok(Some(owned))
        }
    }
}

/// Reads (compact) nullable bytes as a slice of the input.
#[inline]
pub fn read_bytes(buf: &mut Bytes, compact: bool) -> Result<Option<Bytes>, DecodeError> {
    match read_length(buf, compact, true)? {
        None => Ok(None),
        Some(len) => Ok(Some(buf.split_to(len))),
    }
}

/// Reads a (compact) nullable array length. The length is bounded by the
/// bytes left, so a hostile count cannot force a large allocation.
#[inline]
pub fn read_array_length(buf: &mut Bytes, compact: bool) -> Result<Option<usize>, DecodeError> {
    read_length(buf, compact, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_beyond_the_input_are_errors_not_allocations() {
        let mut huge_array = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0]);
        assert!(matches!(
            read_array_length(&mut huge_array, false),
            Err(DecodeError::InvalidLength {
                length: 2147483647,
                remaining: 1
            })
        ));
        let mut negative = Bytes::from_static(&[0xff, 0xfe]);
        assert!(matches!(
            read_string(&mut negative, false),
            Err(DecodeError::InvalidLength { length: -2, .. })
        ));
        let mut short = Bytes::from_static(&[0, 1]);
        assert!(matches!(
            read_i32(&mut short),
            Err(DecodeError::UnexpectedEof {
                needed: 4,
                remaining: 2
            })
        ));
    }

    #[test]
    fn null_and_compact_forms() {
        let mut null = Bytes::from_static(&[0xff, 0xff]);
        assert_eq!(read_string(&mut null, false).unwrap(), None);
        let mut compact_null = Bytes::from_static(&[0]);
        assert_eq!(read_bytes(&mut compact_null, true).unwrap(), None);
        let mut compact = Bytes::from_static(&[3, b'h', b'i', 9]);
        assert_eq!(
            read_string(&mut compact, true).unwrap().as_deref(),
            Some("hi")
        );
        assert_eq!(compact.as_ref(), &[9]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut bad = Bytes::from_static(&[0, 2, 0xc3, 0x28]);
        assert_eq!(read_string(&mut bad, false), Err(DecodeError::InvalidUtf8));
    }
}
