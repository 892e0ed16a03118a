//! The traits every generated message implements.

use bytes::{Bytes, BytesMut};

use crate::messages::ApiKey;
use crate::{DecodeError, EncodeError};

/// An inclusive range of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// The oldest version.
    pub min: i16,
    /// The newest version.
    pub max: i16,
}

impl VersionRange {
    /// Whether `version` is in the range.
    pub fn contains(self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }

    /// The overlap of two ranges, if any: what a client and a broker can both speak.
    pub fn intersect(self, other: VersionRange) -> Option<VersionRange> {
        let range = VersionRange {
            min: self.min.max(other.min),
            max: self.max.min(other.max),
        };
        (range.min <= range.max).then_some(range)
    }
}

/// Writes a value in the wire format of a given version.
pub trait Encode {
    /// Appends the value, as `version` lays it out, to `buf`.
    ///
    /// Fails if the version is not supported, or if a field the version does
    /// not carry holds a non-default value and is not ignorable (sending
    /// would silently drop it), or if a null is not allowed in this version.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;

    /// Encodes into a new buffer.
    fn to_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        self.encode(&mut buf, version)?;
        Ok(buf.freeze())
    }
}

/// Reads a value in the wire format of a given version.
pub trait Decode: Sized {
    /// Reads one value from the front of `buf`, advancing it. Byte fields
    /// are zero-copy slices of `buf`.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

/// A top-level schema: a request, a response, a header or a data record.
pub trait Message: Encode + Decode + Default + Clone + std::fmt::Debug + PartialEq {
    /// The schema's name (`FetchRequest`).
    const NAME: &'static str;
    /// The versions the schema defines.
    const VERSIONS: VersionRange;
    /// The first flexible (KIP-482) version, if any.
    const FLEXIBLE_SINCE: Option<i16>;
}

/// A request, with the response it gets.
pub trait Request: Message {
    /// The API the request belongs to.
    const API_KEY: ApiKey;
    /// The response type.
    type Response: Response;
}

/// A response.
pub trait Response: Message {
    /// The API the response belongs to.
    const API_KEY: ApiKey;
}
