//! Writers for strings, bytes and array lengths.

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::write_unsigned_varint;
use crate::EncodeError;

/// Writes a length prefix (`None` for null); see [`super::read_array_length`].
#[inline]
fn write_length(
    buf: &mut BytesMut,
    compact: bool,
    wide: bool,
    length: Option<usize>,
) -> Result<(), EncodeError> {
    match (length, compact) {
        (None, true) => buf.put_u8(0),
        (None, false) if wide => buf.put_i32(-1),
        (None, false) => buf.put_i16(-1),
        (Some(len), true) => {
            let prefixed = u32::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(1))
                .ok_or(EncodeError::TooLong { length: len })?;
            write_unsigned_varint(buf, prefixed);
        }
        (Some(len), false) if wide => {
            buf.put_i32(i32::try_from(len).map_err(|_| EncodeError::TooLong { length: len })?)
        }
        (Some(len), false) => {
            buf.put_i16(i16::try_from(len).map_err(|_| EncodeError::TooLong { length: len })?)
        }
    }
    Ok(())
}

/// Writes a (compact) nullable string.
#[inline]
pub fn write_string(
    buf: &mut BytesMut,
    compact: bool,
    value: Option<&str>,
) -> Result<(), EncodeError> {
    write_length(buf, compact, false, value.map(str::len))?;
    if let Some(text) = value {
        buf.put_slice(text.as_bytes());
    }
    Ok(())
}

/// Writes (compact) nullable bytes.
#[inline]
pub fn write_bytes(
    buf: &mut BytesMut,
    compact: bool,
    value: Option<&[u8]>,
) -> Result<(), EncodeError> {
    write_length(buf, compact, true, value.map(<[u8]>::len))?;
    if let Some(data) = value {
        buf.put_slice(data);
    }
    Ok(())
}

/// Writes only the length prefix of a (compact) nullable bytes field, for a
/// value whose bytes go out separately (see [`crate::vectored`]).
#[inline]
pub fn write_bytes_length(
    buf: &mut BytesMut,
    compact: bool,
    length: Option<usize>,
) -> Result<(), EncodeError> {
    write_length(buf, compact, true, length)
}

/// Writes a (compact) nullable array length.
#[inline]
pub fn write_array_length(
    buf: &mut BytesMut,
    compact: bool,
    length: Option<usize>,
) -> Result<(), EncodeError> {
    write_length(buf, compact, true, length)
}

/// Writes a 16-byte UUID.
#[inline]
pub fn write_uuid(buf: &mut BytesMut, value: &Uuid) {
    buf.put_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{read_bytes, read_string};

    #[test]
    fn strings_and_bytes_round_trip_in_both_forms() {
        for compact in [false, true] {
            let mut out = BytesMut::new();
            write_string(&mut out, compact, Some("topic")).unwrap();
            write_string(&mut out, compact, None).unwrap();
            write_bytes(&mut out, compact, Some(b"\x00\x01")).unwrap();
            write_bytes(&mut out, compact, None).unwrap();
            let mut input = out.freeze();
            assert_eq!(
                read_string(&mut input, compact).unwrap().as_deref(),
                Some("topic")
            );
            assert_eq!(read_string(&mut input, compact).unwrap(), None);
            assert_eq!(
                read_bytes(&mut input, compact).unwrap().as_deref(),
                Some(&b"\x00\x01"[..])
            );
            assert_eq!(read_bytes(&mut input, compact).unwrap(), None);
            assert!(input.is_empty());
        }
    }

    #[test]
    fn a_string_longer_than_int16_is_an_error() {
        let long = "x".repeat(40_000);
        let mut out = BytesMut::new();
        assert_eq!(
            write_string(&mut out, false, Some(&long)),
            Err(EncodeError::TooLong { length: 40_000 })
        );
        assert!(write_string(&mut out, true, Some(&long)).is_ok());
    }
}
