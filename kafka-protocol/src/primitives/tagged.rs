//! Tagged fields (KIP-482): optional fields of flexible versions, written as
//! `count, (tag, size, bytes)*` in ascending tag order.

use bytes::{BufMut, Bytes, BytesMut};

use super::{read_unsigned_varint, take, write_unsigned_varint};
use crate::{DecodeError, EncodeError};

/// A tagged field this codec does not know, kept as raw bytes so that
/// decode -> encode preserves it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTaggedField {
    /// The field's tag.
    pub tag: u32,
    /// The field's encoded value.
    pub data: Bytes,
}

/// Reads the next field of a tagged-fields section: its tag and its bytes.
///
/// Tags must be strictly ascending (KIP-482). A repeated or out-of-order tag
/// is malformed: accepting it would make decode -> encode change the value,
/// since encoding writes tags in order.
#[inline]
pub fn read_tagged_field(
    buf: &mut Bytes,
    previous: &mut Option<u32>,
) -> Result<(u32, Bytes), DecodeError> {
    let tag = read_unsigned_varint(buf)?;
    if let Some(before) = *previous
        && tag <= before
    {
        return Err(DecodeError::Malformed {
            what: "tagged fields",
            reason: format!("tag {tag} follows tag {before}"),
        });
    }
    *previous = Some(tag);
    let size = read_unsigned_varint(buf)? as usize;
    Ok((tag, take(buf, size)?))
}

/// Writes a tagged-fields section holding only unknown fields.
#[inline]
pub fn write_unknown_tagged_fields(
    buf: &mut BytesMut,
    unknown: &[RawTaggedField],
) -> Result<(), EncodeError> {
    let count = u32::try_from(unknown.len()).map_err(|_| EncodeError::TooLong {
        length: unknown.len(),
    })?;
    write_unsigned_varint(buf, count);
    for field in unknown {
        write_raw(buf, field.tag, &field.data)?;
    }
    Ok(())
}

fn write_raw(buf: &mut BytesMut, tag: u32, data: &[u8]) -> Result<(), EncodeError> {
    write_unsigned_varint(buf, tag);
    let size =
        u32::try_from(data.len()).map_err(|_| EncodeError::TooLong { length: data.len() })?;
    write_unsigned_varint(buf, size);
    buf.put_slice(data);
    Ok(())
}

/// Collects the known tagged fields of one struct, then writes them merged
/// with the unknown ones in ascending tag order. Known fields are encoded
/// into a scratch buffer first because their size prefix comes before them.
#[derive(Default)]
pub struct TaggedFieldsWriter {
    known: Vec<(u32, Bytes)>,
}

impl TaggedFieldsWriter {
    /// A writer with no fields yet (does not allocate).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a known field, encoded by `encode`.
    pub fn field(
        &mut self,
        tag: u32,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mut scratch = BytesMut::new();
        encode(&mut scratch)?;
        self.known.push((tag, scratch.freeze()));
        Ok(())
    }

    /// Writes the count and every field, known and unknown, sorted by tag.
    pub fn finish(
        mut self,
        buf: &mut BytesMut,
        unknown: &[RawTaggedField],
    ) -> Result<(), EncodeError> {
        if self.known.is_empty() {
            return write_unknown_tagged_fields(buf, unknown);
        }
        self.known
            .extend(unknown.iter().map(|field| (field.tag, field.data.clone())));
        self.known.sort_by_key(|(tag, _)| *tag);
        let count = self.known.len();
        write_unsigned_varint(
            buf,
            u32::try_from(count).map_err(|_| EncodeError::TooLong { length: count })?,
        );
        for (tag, data) in &self.known {
            write_raw(buf, *tag, data)?;
        }
        Ok(())
    }
}
