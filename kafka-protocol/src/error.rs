//! Errors of the codec. Decoding never trusts a length from the wire: every
//! failure is one of these values, never a panic or an oversized allocation.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ended before the value did.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} left")]
    UnexpectedEof {
        /// Bytes the value still needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix that is negative (and not the null marker) or larger than the input.
    #[error("invalid length {length} with {remaining} bytes remaining")]
    InvalidLength {
        /// The length read from the wire.
        length: i64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A varint longer than its type allows.
    #[error("varint is too long")]
    VarintTooLong,
    /// A string field that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A null where the version does not allow one.
    #[error("null value for non-nullable field {field}")]
    UnexpectedNull {
        /// The field, as `Message.Field`.
        field: &'static str,
    },
    /// A version outside the message's `validVersions`.
    #[error("{message} does not support version {version}")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// An API key this codec does not know.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A record batch whose stored CRC does not match its contents.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the batch header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A record batch or message with a magic byte this codec does not read.
    #[error("unsupported magic byte {0}")]
    UnsupportedMagic(i8),
    /// Compressed data that claims to inflate beyond the configured limit.
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    DecompressionLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// A compression codec id this codec does not know.
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// Compressed data the codec rejected.
    #[error("{codec} decompression failed: {reason}")]
    Decompression {
        /// The codec name.
        codec: &'static str,
        /// What the codec said.
        reason: String,
    },
    /// Well-formed bytes that break a rule of the format.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A version outside the message's `validVersions`.
    #[error("{message} does not support version {version}")]
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A field set to a non-default value in a version that does not carry it
    /// and is not marked ignorable: sending would silently lose data.
    #[error("field {field} is not in version {version} and is not ignorable")]
    FieldNotInVersion {
        /// The field, as `Message.Field`.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A null in a version where the field is not nullable.
    #[error("field {field} is null but not nullable in version {version}")]
    NullNotAllowed {
        /// The field, as `Message.Field`.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A value too long for its length prefix.
    #[error("value of {length} bytes is too long for its length prefix")]
    TooLong {
        /// The length of the value.
        length: usize,
    },
    /// Compression failed.
    #[error("{codec} compression failed: {reason}")]
    Compression {
        /// The codec name.
        codec: &'static str,
        /// What the codec said.
        reason: String,
    },
    /// Records parts queued on a [`VectoredBuf`](crate::vectored::VectoredBuf)
    /// did not match the message's records fields.
    #[error("queued records parts do not match the message: {reason}")]
    QueuedRecords {
        /// What did not match.
        reason: &'static str,
    },
}
