//! Size-prefixed frames, and the request/response headers that go with each
//! API version.
//!
//! On the wire every request and response is `INT32 size` followed by
//! `size` bytes: a header, then the body. Which header version a message
//! uses depends on the API and its version (KIP-482): flexible versions use
//! request header v2 and response header v1, with one exception:
//! ApiVersions responses always use header v0, because a client parses them
//! before it knows what the broker speaks.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::message::{Decode, Encode, Request, Response};
use crate::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use crate::primitives::{read_i16, read_i32};
use crate::vectored::{EncodeVectored, VectoredBuf};
use crate::{DecodeError, EncodeError};

/// The largest frame [`FrameDecoder`] accepts unless told otherwise: the
/// broker default of `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

impl ApiKey {
    /// Whether `version` of this API's request is a flexible version.
    pub fn is_request_flexible(self, version: i16) -> bool {
        self.request_flexible_since()
            .is_some_and(|since| version >= since)
    }

    /// The request header version that goes with `version` of this API.
    pub fn request_header_version(self, version: i16) -> i16 {
        if self.is_request_flexible(version) {
            2
        } else if self == ApiKey::ControlledShutdown && version == 0 {
            // ControlledShutdown v0 predates the client id.
            0
        } else {
            1
        }
    }

    /// The response header version that goes with `version` of this API.
    pub fn response_header_version(self, version: i16) -> i16 {
        let flexible = self
            .response_flexible_since()
            .is_some_and(|since| version >= since);
        if flexible && self != ApiKey::ApiVersions {
            1
        } else {
            0
        }
    }
}

/// Why a frame could not be cut from a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative or above the limit; the stream cannot be
    /// resynchronised and the connection should be closed.
    #[error("frame size {size} is outside 0..={max}")]
    BadSize {
        /// The size prefix read.
        size: i64,
        /// The limit in force.
        max: usize,
    },
}

/// Cuts size-prefixed frames out of a growing read buffer without copying.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    /// The next whole frame (without its size prefix), or `None` if `buf`
    /// does not hold one yet. The size is checked as soon as its 4 bytes
    /// arrive, so an oversized frame is refused before it is buffered.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if size < 0 || size as usize > self.max_frame_size {
            return Err(FrameError::BadSize {
                size: i64::from(size),
                max: self.max_frame_size,
            });
        }
        let size = size as usize;
        if buf.len() < 4 + size {
            buf.reserve(4 + size - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(size).freeze()))
    }
}

/// Appends `INT32 size` and whatever `write` appends, patching the size in
/// afterwards so the body is encoded once, straight into `buf`.
pub fn write_size_prefixed(
    buf: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    write(buf)?;
    let size = buf.len() - start - 4;
    let size = i32::try_from(size).map_err(|_| EncodeError::TooLong { length: size })?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// [`write_size_prefixed`] into a [`VectoredBuf`], whose referenced records
/// count towards the size.
pub fn write_size_prefixed_vectored(
    buf: &mut VectoredBuf,
    write: impl FnOnce(&mut VectoredBuf) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    // The prefix is in the directly written part, before any reference
    // taken while the frame is written.
    let at = buf.len();
    let start = buf.encoded_len();
    buf.put_i32(0);
    write(buf)?;
    let size = buf.encoded_len() - start - 4;
    let size = i32::try_from(size).map_err(|_| EncodeError::TooLong { length: size })?;
    buf[at..at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Appends a whole request frame: size, header, body.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &R,
) -> Result<(), EncodeError> {
    let header = request_header::<R>(correlation_id, client_id, version);
    let header_version = R::API_KEY.request_header_version(version);
    write_size_prefixed(buf, |buf| {
        header.encode(buf, header_version)?;
        body.encode(buf, version)
    })
}

/// [`encode_request`] with the body's records fields referenced rather
/// than copied (see [`crate::vectored`]).
pub fn encode_request_vectored<R: Request + EncodeVectored>(
    buf: &mut VectoredBuf,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &R,
) -> Result<(), EncodeError> {
    let header = request_header::<R>(correlation_id, client_id, version);
    let header_version = R::API_KEY.request_header_version(version);
    write_size_prefixed_vectored(buf, |buf| {
        header.encode(buf, header_version)?;
        body.encode_vectored(buf, version)
    })
}

fn request_header<R: Request>(
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
) -> RequestHeader {
    RequestHeader {
        request_api_key: R::API_KEY as i16,
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    }
}

/// Appends a whole response frame: size, header, body.
pub fn encode_response<R: Response>(
    buf: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &R,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    let header_version = R::API_KEY.response_header_version(version);
    write_size_prefixed(buf, |buf| {
        header.encode(buf, header_version)?;
        body.encode(buf, version)
    })
}

/// The fixed start of every request header, readable before the API version
/// is known to be supported: what a broker needs to answer
/// UNSUPPORTED_VERSION with the right correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPreamble {
    /// The raw API key.
    pub api_key: i16,
    /// The API version asked for.
    pub api_version: i16,
    /// The correlation id to echo.
    pub correlation_id: i32,
}

/// Reads the preamble of a request frame (without the size prefix).
pub fn peek_request(frame: &Bytes) -> Result<RequestPreamble, DecodeError> {
    let mut view = frame.slice(..frame.len().min(8));
    Ok(RequestPreamble {
        api_key: read_i16(&mut view)?,
        api_version: read_i16(&mut view)?,
        correlation_id: read_i32(&mut view)?,
    })
}

/// Decodes a request frame (without the size prefix): its header and body.
/// Bytes after the body are ignored, as Kafka brokers do, since newer
/// clients may append fields an older codec does not know.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestKind), DecodeError> {
    let preamble = peek_request(&frame)?;
    let api_key = ApiKey::try_from(preamble.api_key)?;
    if !api_key.valid_versions().contains(preamble.api_version) {
        return Err(DecodeError::UnsupportedVersion {
            message: api_key.name(),
            version: preamble.api_version,
        });
    }
    let header = RequestHeader::decode(
        &mut frame,
        api_key.request_header_version(preamble.api_version),
    )?;
    let body = RequestKind::decode(api_key, &mut frame, preamble.api_version)?;
    Ok((header, body))
}

/// Decodes a response frame (without the size prefix) to a request of API
/// `api_key` sent at `version`: its header and body.
pub fn decode_response(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseKind), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
    let body = ResponseKind::decode(api_key, &mut frame, version)?;
    Ok((header, body))
}

/// Decodes a response frame whose type is known statically.
pub fn decode_response_as<R: Response>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
    let body = R::decode(&mut frame, version)?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

    #[test]
    fn header_versions_follow_flexibility() {
        assert_eq!(ApiKey::Metadata.request_header_version(8), 1);
        assert_eq!(ApiKey::Metadata.request_header_version(9), 2);
        assert_eq!(ApiKey::Metadata.response_header_version(9), 1);
        assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
        // ApiVersions responses keep header v0 even in flexible versions.
        assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
        assert_eq!(ApiKey::Produce.request_header_version(3), 1);
    }

    #[test]
    fn a_request_frame_round_trips() {
        let request = MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 42, Some("tester"), 12, &request).unwrap();
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        let (header, body) = decode_request(frame).unwrap();
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.client_id.as_deref(), Some("tester"));
        assert_eq!(body, RequestKind::Metadata(request));
    }

    #[test]
    fn a_response_frame_round_trips() {
        let response = ApiVersionsResponse {
            error_code: 35,
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_response(&mut buf, 7, 3, &response).unwrap();
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        let (header, body) = decode_response_as::<ApiVersionsResponse>(frame, 3).unwrap();
        assert_eq!(header.correlation_id, 7);
        assert_eq!(body, response);
    }

    #[test]
    fn partial_and_oversized_frames() {
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 1, None, 3, &ApiVersionsRequest::default()).unwrap();
        let whole = buf.clone();
        let mut partial = BytesMut::from(&whole[..whole.len() - 1]);
        assert_eq!(FrameDecoder::default().decode(&mut partial), Ok(None));
        let mut huge = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            FrameDecoder::new(1024).decode(&mut huge),
            Err(FrameError::BadSize {
                size: 2147483647,
                max: 1024
            })
        ));
        let mut negative = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert!(FrameDecoder::default().decode(&mut negative).is_err());
    }

    #[test]
    fn unknown_keys_and_versions_are_errors_with_a_readable_preamble() {
        let frame = Bytes::from_static(&[0x7f, 0x00, 0x00, 0x01, 0, 0, 0, 9]);
        assert_eq!(peek_request(&frame).unwrap().correlation_id, 9);
        assert_eq!(
            decode_request(frame).unwrap_err(),
            DecodeError::UnknownApiKey(0x7f00)
        );
        let frame = Bytes::from_static(&[0, 18, 0x7f, 0, 0, 0, 0, 5]);
        assert!(matches!(
            decode_request(frame),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        assert!(peek_request(&Bytes::from_static(&[0, 1])).is_err());
    }
}
