//! Encoding with large record sets referenced instead of copied.
//!
//! A Fetch response or a Produce request is mostly record batches that
//! already exist as [`Bytes`]: copying them into the encode buffer costs as
//! much as everything else in the message together. [`VectoredBuf`] writes
//! the small fields into one buffer as usual and keeps each large records
//! field as a reference, so that the frame can go out with one vectored
//! write ([`VectoredBuf::into_chunks`]) without touching the batches.
//!
//! Only the message types that carry records fields implement
//! [`EncodeVectored`]; its output is byte for byte what [`Encode`] writes.
//!
//! [`Encode`]: crate::Encode

use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::{Deref, DerefMut};

use bytes::{Buf, Bytes, BytesMut};

use crate::EncodeError;
use crate::primitives::{write_bytes, write_bytes_length};

/// A records field shorter than this is copied: a separate slice costs more
/// than copying a few hundred bytes.
const MIN_REFERENCED: usize = 1024;

/// Encodes a message, referencing its records fields instead of copying them.
pub trait EncodeVectored {
    /// Appends the value, as `version` lays it out, to `buf`. Fails exactly
    /// where [`Encode::encode`](crate::Encode::encode) fails, and also when
    /// [queued records](VectoredBuf::queue_records) do not fit the message.
    fn encode_vectored(&self, buf: &mut VectoredBuf, version: i16) -> Result<(), EncodeError>;
}

/// An encode buffer whose records fields may be references to other
/// buffers. Dereferences to the [`BytesMut`] that holds everything else.
///
/// ```
/// use bytes::Bytes;
/// use kafka_protocol::messages::ProduceRequest;
/// use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
/// use kafka_protocol::vectored::{EncodeVectored, VectoredBuf};
/// use kafka_protocol::Encode;
///
/// let batch = Bytes::from(vec![7u8; 4096]);
/// let request = ProduceRequest {
///     acks: -1,
///     timeout_ms: 30_000,
///     topic_data: vec![TopicProduceData {
///         name: "orders".into(),
///         partition_data: vec![PartitionProduceData {
///             index: 0,
///             records: Some(batch.clone()),
///             ..Default::default()
///         }],
///         ..Default::default()
///     }],
///     ..Default::default()
/// };
/// let mut buf = VectoredBuf::new();
/// request.encode_vectored(&mut buf, 9).unwrap();
/// let chunks = buf.into_chunks().unwrap();
/// // The batch went out as itself, not as a copy.
/// assert!(chunks.iter().any(|c| c.as_ptr() == batch.as_ptr()));
/// assert_eq!(chunks.concat(), request.to_bytes(9).unwrap());
/// ```
#[derive(Debug, Default)]
pub struct VectoredBuf {
    head: BytesMut,
    /// Each reference goes before `head[at..]`, in order of `at`.
    refs: Vec<(usize, Bytes)>,
    referenced_len: usize,
    queued: VecDeque<Vec<Bytes>>,
}

impl VectoredBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Supplies the next records field written, in encode order, as the
    /// concatenation of `parts` (for example consecutive stored batches).
    /// While parts are queued, the records fields of the message must be
    /// empty or null placeholders; each one written takes the next parts.
    pub fn queue_records(&mut self, parts: Vec<Bytes>) {
        self.queued.push_back(parts);
    }

    /// The encoded length so far, references included. (`len()` through
    /// the deref is the length of the directly written part only.)
    pub fn encoded_len(&self) -> usize {
        self.head.len() + self.referenced_len
    }

    /// Writes a (compact) nullable records field: its length prefix here,
    /// its bytes by reference when large.
    pub fn records(&mut self, compact: bool, value: Option<&Bytes>) -> Result<(), EncodeError> {
        let Some(parts) = self.queued.pop_front() else {
            let Some(bytes) = value else {
                return write_bytes(&mut self.head, compact, None);
            };
            write_bytes_length(&mut self.head, compact, Some(bytes.len()))?;
            self.append(bytes);
            return Ok(());
        };
        if value.is_some_and(|b| !b.is_empty()) {
            return Err(EncodeError::QueuedRecords {
                reason: "a records field that takes queued parts must be empty",
            });
        }
        let total = parts.iter().map(Bytes::len).sum();
        write_bytes_length(&mut self.head, compact, Some(total))?;
        for part in &parts {
            self.append(part);
        }
        Ok(())
    }

    /// Appends records bytes: by reference when large, else copied.
    fn append(&mut self, bytes: &Bytes) {
        if bytes.len() >= MIN_REFERENCED {
            self.referenced_len += bytes.len();
            self.refs.push((self.head.len(), bytes.clone()));
        } else {
            self.head.extend_from_slice(bytes);
        }
    }

    /// The output as consecutive chunks, ready for a vectored write. Fails
    /// if queued records were not all used.
    pub fn into_chunks(self) -> Result<Vec<Bytes>, EncodeError> {
        if !self.queued.is_empty() {
            return Err(EncodeError::QueuedRecords {
                reason: "more parts were queued than the message has records fields",
            });
        }
        let mut head = self.head.freeze();
        let mut chunks = Vec::with_capacity(self.refs.len() * 2 + 1);
        let mut taken = 0;
        for (at, bytes) in self.refs {
            if at > taken {
                chunks.push(head.split_to(at - taken));
                taken = at;
            }
            chunks.push(bytes);
        }
        if !head.is_empty() {
            chunks.push(head);
        }
        Ok(chunks)
    }
}

impl Deref for VectoredBuf {
    type Target = BytesMut;

    fn deref(&self) -> &BytesMut {
        &self.head
    }
}

impl DerefMut for VectoredBuf {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.head
    }
}

/// Consecutive chunks read as one [`Buf`], whose
/// [`chunks_vectored`](Buf::chunks_vectored) lets a writer such as tokio's
/// `write_all_buf` send them with `writev`.
#[derive(Debug, Default)]
pub struct ChunkBuf {
    chunks: Vec<Bytes>,
    first: usize,
    remaining: usize,
}

impl ChunkBuf {
    /// Reads `chunks` in order (empty ones are dropped).
    pub fn new(mut chunks: Vec<Bytes>) -> Self {
        chunks.retain(|c| !c.is_empty());
        let remaining = chunks.iter().map(Bytes::len).sum();
        Self {
            chunks,
            first: 0,
            remaining,
        }
    }
}

impl From<Bytes> for ChunkBuf {
    fn from(bytes: Bytes) -> Self {
        Self::new(vec![bytes])
    }
}

impl Buf for ChunkBuf {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.get(self.first).map_or(&[], |c| &c[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        // Past the end is a caller bug; stopping at the end keeps it harmless.
        while cnt > 0 {
            let Some(chunk) = self.chunks.get_mut(self.first) else {
                return;
            };
            let n = cnt.min(chunk.len());
            chunk.advance(n);
            cnt -= n;
            self.remaining -= n;
            if chunk.is_empty() {
                self.first += 1;
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, chunk) in dst.iter_mut().zip(&self.chunks[self.first..]) {
            *slot = IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }
}
