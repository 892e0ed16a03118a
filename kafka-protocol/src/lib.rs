//! The Kafka wire protocol, with no I/O.
//!
//! - [`messages`]: every request, response and header of every API version,
//!   generated from Kafka's own JSON schemas (do not edit those files by hand).
//! - [`primitives`]: the encodings the messages are built from: fixed-width
//!   integers, (unsigned) varints, (compact) strings, bytes and arrays, tagged fields.
//! - [`records`]: record batches (v2, and legacy v0/v1 message sets for
//!   reading), CRC32C, compression, and a batch builder that writes wire bytes.
//! - [`frame`]: size-prefixed frames and the request/response headers that
//!   go with each API version.

pub mod error;
pub mod error_code;
pub mod frame;
pub mod message;
// Generated code keeps the generator's layout; the freshness test compares it byte for byte.
#[rustfmt::skip]
pub mod messages;
pub mod primitives;
pub mod records;
pub mod vectored;

pub use error::{DecodeError, EncodeError};
pub use error_code::ErrorCode;
pub use message::{Decode, Encode, Message, Request, Response, VersionRange};
pub use messages::ApiKey;
