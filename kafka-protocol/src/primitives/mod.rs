//! The encodings Kafka messages are built from.
//!
//! Readers take `&mut Bytes` and advance it; they check the remaining length
//! before every read, so truncated or hostile input is a [`DecodeError`],
//! never a panic. Byte fields are returned as slices of the input (zero-copy).
//! Writers append to a `BytesMut`.
//!
//! "Compact" means the flexible-version encodings of KIP-482: lengths as
//! unsigned varints holding `length + 1`, with 0 for null.

mod read;
mod tagged;
mod varint;
mod write;

#[cfg(feature = "test-support")]
pub mod random;

pub use read::*;
pub use tagged::{
    RawTaggedField, TaggedFieldsWriter, read_tagged_field, write_unknown_tagged_fields,
};
pub use varint::*;
pub use write::*;

use crate::DecodeError;
